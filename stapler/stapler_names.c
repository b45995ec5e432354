/* Names of the stapler's enums, generated from the same lists as the enums
 * so that a new state or reason cannot be left unnamed. */
#include <errno.h>
#include <string.h>

#include "stapler.h"

static const char *const state_names[] = {
#define X(e, s, d) [STAPLER_STATE_##e] = s,
#include "stapler_state.def"
#undef X
};

static const char *const state_descriptions[] = {
#define X(e, s, d) [STAPLER_STATE_##e] = d,
#include "stapler_state.def"
#undef X
};

static const char *const reason_names[] = {
#define X(e, s, d) [STAPLER_REASON_##e] = s,
#include "stapler_reason.def"
#undef X
};

static const char *const reason_descriptions[] = {
#define X(e, s, d) [STAPLER_REASON_##e] = d,
#include "stapler_reason.def"
#undef X
};

static const char *const policy_names[] = {
#define X(e, s) [STAPLER_POLICY_##e] = s,
    STAPLER_POLICIES(X)
#undef X
};

const char *stapler_state_name(enum stapler_state st)
{
    return (unsigned)st < STAPLER_STATE__COUNT ? state_names[st] : "?";
}

const char *stapler_state_description(enum stapler_state st)
{
    return (unsigned)st < STAPLER_STATE__COUNT ? state_descriptions[st] : "?";
}

const char *stapler_reason_name(enum stapler_reason r)
{
    return (unsigned)r < STAPLER_REASON__COUNT ? reason_names[r] : "?";
}

const char *stapler_reason_description(enum stapler_reason r)
{
    return (unsigned)r < STAPLER_REASON__COUNT ? reason_descriptions[r] : "?";
}

const char *stapler_policy_name(enum stapler_policy p)
{
    return (unsigned)p < STAPLER_POLICY__COUNT ? policy_names[p] : "?";
}

const char *stapler_ocsp_status_name(enum stapler_ocsp_status c)
{
    switch (c) {
    case STAPLER_OCSP_NONE: return "none";
    case STAPLER_OCSP_GOOD: return "good";
    case STAPLER_OCSP_REVOKED: return "revoked";
    case STAPLER_OCSP_UNKNOWN: return "unknown";
    default: return "?";
    }
}

int stapler_policy_parse(const char *name, enum stapler_policy *p)
{
    if (name == NULL)
        return -EINVAL;
    for (unsigned i = 0; i < STAPLER_POLICY__COUNT; i++) {
        if (strcmp(name, policy_names[i]) == 0) {
            *p = (enum stapler_policy)i;
            return 0;
        }
    }
    if (strcmp(name, "must-staple") == 0) {
        *p = STAPLER_POLICY_MUST_STAPLE;
        return 0;
    }
    return -EINVAL;
}
