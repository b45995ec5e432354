/* Driver for fuzz targets when libFuzzer is not available (gcc builds).
 *
 * It replays every file named on the command line (or every file in a named
 * directory), then feeds a bounded number of pseudo-random mutations of those
 * inputs with a fixed seed, so a gcc build still exercises each parser with
 * the seed corpus and some noise, reproducibly. The real coverage-guided run
 * is the clang build with -Dfuzz=true. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REPLAY_MAX_INPUT (1u << 20)
#define REPLAY_MUTATIONS 2000

static uint8_t **inputs;
static size_t *input_sizes;
static size_t n_inputs;

static int replay_add_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        perror(path);
        return -1;
    }
    uint8_t *buf = malloc(REPLAY_MAX_INPUT);
    size_t n = buf ? fread(buf, 1, REPLAY_MAX_INPUT, f) : 0;
    fclose(f);
    if (buf == NULL)
        return -1;
    inputs = realloc(inputs, (n_inputs + 1) * sizeof(*inputs));
    input_sizes = realloc(input_sizes, (n_inputs + 1) * sizeof(*input_sizes));
    if (inputs == NULL || input_sizes == NULL)
        return -1;
    inputs[n_inputs] = buf;
    input_sizes[n_inputs] = n;
    n_inputs++;
    return 0;
}

static int replay_add_path(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        perror(path);
        return -1;
    }
    if (!S_ISDIR(st.st_mode))
        return replay_add_file(path);
    DIR *d = opendir(path);
    if (d == NULL) {
        perror(path);
        return -1;
    }
    struct dirent *e;
    int rc = 0;
    while ((e = readdir(d)) != NULL && rc == 0) {
        if (e->d_name[0] == '.')
            continue;
        char sub[4096];
        snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
        rc = replay_add_path(sub);
    }
    closedir(d);
    return rc;
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (replay_add_path(argv[i]) != 0)
            return 2;
    for (size_t i = 0; i < n_inputs; i++)
        LLVMFuzzerTestOneInput(inputs[i], input_sizes[i]);

    /* xorshift64: fixed seed so that a failure replays the same way. */
    uint64_t s = 0x9e3779b97f4a7c15ull;
    uint8_t *scratch = malloc(REPLAY_MAX_INPUT);
    if (scratch == NULL)
        return 2;
    for (int m = 0; m < REPLAY_MUTATIONS && n_inputs > 0; m++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        size_t k = s % n_inputs, len = input_sizes[k];
        memcpy(scratch, inputs[k], len);
        int flips = 1 + (int)(s >> 60);
        for (int f = 0; f < flips && len > 0; f++) {
            s ^= s << 13, s ^= s >> 7, s ^= s << 17;
            scratch[s % len] ^= (uint8_t)(s >> 32);
        }
        if ((s & 7) == 0 && len > 0)
            len = (s >> 8) % len; /* truncation */
        LLVMFuzzerTestOneInput(scratch, len);
    }
    printf("replayed %zu inputs and %d mutations\n", n_inputs, REPLAY_MUTATIONS);
    free(scratch);
    return 0;
}
