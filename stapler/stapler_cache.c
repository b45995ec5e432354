/* Disk cache of OCSP responses. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "stapler_cache.h"
#include "stapler_inventory.h"

int stapler_cache_path(const char *dir, const uint8_t key[STAPLE_TABLE_KEY_LEN],
                       char *buf, size_t cap)
{
    char hex[2 * STAPLE_TABLE_KEY_LEN + 1];
    stapler_key_hex(key, hex);
    int n = snprintf(buf, cap, "%s/%s.der", dir, hex);
    return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

static int write_all(int fd, const uint8_t *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int stapler_cache_write(const char *dir, const uint8_t key[STAPLE_TABLE_KEY_LEN],
                        const uint8_t *der, size_t len)
{
    char final[4096], tmp[4096 + 32]; /* room for the suffix */
    int rc = stapler_cache_path(dir, key, final, sizeof(final));
    if (rc < 0)
        return rc;
    /* Same directory (rename must not cross file systems); the PID keeps
     * two processes sharing a cache directory from clobbering each other's
     * temporary file. */
    int n = snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", final, (long)getpid());
    if (n < 0 || (size_t)n >= sizeof(tmp))
        return -ENAMETOOLONG;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    rc = write_all(fd, der, len);
    if (rc == 0 && fsync(fd) != 0)
        rc = -errno;
    if (close(fd) != 0 && rc == 0)
        rc = -errno;
    if (rc == 0 && rename(tmp, final) != 0)
        rc = -errno;
    if (rc < 0) {
        unlink(tmp);
        return rc;
    }
    /* The rename is durable only once the directory entry is on disk. */
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return -errno;
    if (fsync(dfd) != 0)
        rc = -errno;
    close(dfd);
    return rc;
}

static int tmp_path(const char *final, char *buf, size_t cap)
{
    int n = snprintf(buf, cap, "%s.tmp.%ld", final, (long)getpid());
    return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

/* Writes DER into a new temporary file next to FINAL, without flushing. */
static int write_tmp(const char *tmp, const uint8_t *der, size_t len)
{
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    int rc = write_all(fd, der, len);
    if (close(fd) != 0 && rc == 0)
        rc = -errno;
    if (rc < 0)
        unlink(tmp);
    return rc;
}

int stapler_cache_write_batch(const char *dir, struct stapler_cache_item *items, size_t n)
{
    char final[4096], tmp[4096 + 32]; /* room for the suffix */
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int failed = 0, rc;
    for (size_t i = 0; i < n; i++) {
        items[i].rc = dfd < 0 ? -errno : stapler_cache_path(dir, items[i].key, final, sizeof(final));
        if (items[i].rc == 0)
            items[i].rc = tmp_path(final, tmp, sizeof(tmp));
        if (items[i].rc == 0)
            items[i].rc = write_tmp(tmp, items[i].der, items[i].len);
    }
    /* Data first: a rename must never make a name point at blocks that
     * are not on disk yet. */
    rc = dfd >= 0 && syncfs(dfd) != 0 ? -errno : 0;
    for (size_t i = 0; i < n; i++) {
        if (items[i].rc != 0) {
            failed++;
            continue;
        }
        stapler_cache_path(dir, items[i].key, final, sizeof(final));
        tmp_path(final, tmp, sizeof(tmp));
        if (rc == 0 && rename(tmp, final) != 0)
            items[i].rc = -errno;
        else if (rc != 0)
            items[i].rc = rc;
        if (items[i].rc != 0) {
            unlink(tmp);
            failed++;
        }
    }
    if (dfd >= 0) {
        if (fsync(dfd) != 0)
            for (size_t i = 0; i < n; i++)
                if (items[i].rc == 0) {
                    items[i].rc = -errno;
                    failed++;
                }
        close(dfd);
    }
    return failed;
}

int stapler_cache_read(const char *dir, const uint8_t key[STAPLE_TABLE_KEY_LEN],
                       size_t max, uint8_t **der, size_t *len)
{
    char path[4096];
    *der = NULL;
    *len = 0;
    int rc = stapler_cache_path(dir, key, path, sizeof(path));
    if (rc < 0)
        return rc;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return -errno;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        rc = -errno;
        close(fd);
        return rc;
    }
    if (!S_ISREG(st.st_mode) || st.st_size <= 0) {
        close(fd);
        return S_ISREG(st.st_mode) ? -ENODATA : -EINVAL;
    }
    if ((size_t)st.st_size > max) {
        close(fd);
        return -EFBIG;
    }
    uint8_t *buf = malloc((size_t)st.st_size);
    if (buf == NULL) {
        close(fd);
        return -ENOMEM;
    }
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = n < 0 ? -errno : -EIO;
            break;
        }
        got += (size_t)n;
    }
    close(fd);
    if (rc < 0) {
        free(buf);
        return rc;
    }
    *der = buf;
    *len = got;
    return 0;
}
