/* Per principal x method-class request limits over fixed windows (docs/api.md, "Rate limits").
 * Thread-safe: the event-loop threads share one limiter. */
#ifndef AC_RATELIMIT_H
#define AC_RATELIMIT_H

#include <stdint.h>

#include "lua/config.h"

typedef struct ac_rate_info {
    int limit;            /* X-RateLimit-Limit */
    int remaining;        /* X-RateLimit-Remaining */
    int64_t reset_s;      /* X-RateLimit-Reset: epoch seconds when the window restarts */
    int retry_after_s;    /* when refused: seconds until a call will pass */
} ac_rate_info_t;

typedef struct ac_ratelimit ac_ratelimit_t;

/* rules: AC_RL_COUNT rules, copied. */
ac_ratelimit_t *ac_ratelimit_create(const ac_rate_rule_t *rules);
void ac_ratelimit_destroy(ac_ratelimit_t *rl); /* NULL is a no-op */

/* Counts one call of class cls by principal sub at now_ms. Returns 1 when it may proceed, 0
 * when the window's budget is spent; info describes the window either way. A class whose
 * limit is 0 always passes (info->limit is then 0). */
int ac_ratelimit_take(ac_ratelimit_t *rl, const char *sub, int cls, int64_t now_ms, ac_rate_info_t *info);

/* Describes the window without counting a call. */
void ac_ratelimit_peek(ac_ratelimit_t *rl, const char *sub, int cls, int64_t now_ms, ac_rate_info_t *info);

#endif
