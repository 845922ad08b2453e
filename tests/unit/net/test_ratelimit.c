/* Fixed-window rate limits per principal x class: counting, reset, independence, headers. */
#include <stdio.h>
#include <string.h>

#include "net/ratelimit.h"

#include "check.h"

int main(void)
{
    ac_rate_rule_t rules[AC_RL_COUNT];
    for (int i = 0; i < AC_RL_COUNT; i++)
        rules[i] = (ac_rate_rule_t){3, 60};
    rules[AC_RL_OTHER] = (ac_rate_rule_t){0, 60}; /* disabled */
    ac_ratelimit_t *rl = ac_ratelimit_create(rules);
    ac_rate_info_t info;
    int64_t t0 = 1700000000000;
    int passed = 0;
    for (int i = 0; i < 3; i++)
        passed += ac_ratelimit_take(rl, "alice", AC_RL_STATUS, t0 + i * 1000, &info);
    CHECK(passed == 3 && info.remaining == 0 && info.limit == 3, "three calls pass, none remain");
    CHECK(info.reset_s == (t0 + 60000) / 1000, "reset is the end of the window");
    CHECK(!ac_ratelimit_take(rl, "alice", AC_RL_STATUS, t0 + 10000, &info) && info.retry_after_s == 50,
          "the fourth is refused with retry-after up to the window's end");
    CHECK(ac_ratelimit_take(rl, "bob", AC_RL_STATUS, t0 + 10000, &info), "another principal has its own window");
    CHECK(ac_ratelimit_take(rl, "alice", AC_RL_START, t0 + 10000, &info), "another class has its own window");
    CHECK(ac_ratelimit_take(rl, "alice", AC_RL_STATUS, t0 + 60000, &info) && info.remaining == 2,
          "a new window starts after window_s");
    ac_ratelimit_peek(rl, "alice", AC_RL_STATUS, t0 + 60001, &info);
    CHECK(info.remaining == 2, "peek does not count");
    int all = 1;
    for (int i = 0; i < 100; i++)
        all &= ac_ratelimit_take(rl, "alice", AC_RL_OTHER, t0, &info);
    CHECK(all && info.limit == 0, "a limit of 0 disables the class");
    /* many principals: expired windows are swept, and the fresh ones still count */
    char sub[32];
    for (int i = 0; i < 100000; i++) {
        snprintf(sub, sizeof sub, "p%d", i);
        ac_ratelimit_take(rl, sub, AC_RL_CANCEL, t0 + (int64_t)i * 10, &info);
    }
    CHECK(ac_ratelimit_take(rl, "p99999", AC_RL_CANCEL, t0 + 999990, &info) && info.remaining == 1,
          "windows of 100000 principals stay exact");
    ac_ratelimit_destroy(rl);
    return check_done(__FILE__);
}
