#include "net/ratelimit.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define SHARDS 64
/* Past this many windows in a shard, expired ones are swept before a new one is added, so a
 * stream of distinct principals cannot grow memory without bound. */
#define SWEEP_AT 1024

typedef struct window {
    struct window *next;
    uint64_t hash;
    int cls;
    int64_t start_ms;
    int count;
    char sub[]; /* NUL-terminated principal */
} window_t;

typedef struct shard {
    pthread_mutex_t lock;
    window_t *head;
    int n;
} shard_t;

struct ac_ratelimit {
    ac_rate_rule_t rules[AC_RL_COUNT];
    shard_t shards[SHARDS];
};

ac_ratelimit_t *ac_ratelimit_create(const ac_rate_rule_t *rules)
{
    ac_ratelimit_t *rl = calloc(1, sizeof *rl);
    if (rl == NULL)
        return NULL;
    memcpy(rl->rules, rules, sizeof rl->rules);
    for (int i = 0; i < SHARDS; i++)
        pthread_mutex_init(&rl->shards[i].lock, NULL);
    return rl;
}

void ac_ratelimit_destroy(ac_ratelimit_t *rl)
{
    if (rl == NULL)
        return;
    for (int i = 0; i < SHARDS; i++) {
        for (window_t *w = rl->shards[i].head, *next; w != NULL; w = next) {
            next = w->next;
            free(w);
        }
        pthread_mutex_destroy(&rl->shards[i].lock);
    }
    free(rl);
}

static uint64_t hash(const char *s, int cls)
{
    uint64_t h = 1469598103934665603ULL ^ (uint64_t)cls; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ULL;
    return h;
}

static void sweep(shard_t *sh, const ac_rate_rule_t *rules, int64_t now_ms)
{
    for (window_t **pp = &sh->head; *pp != NULL;) {
        window_t *w = *pp;
        if (now_ms - w->start_ms >= (int64_t)rules[w->cls].window_s * 1000) {
            *pp = w->next;
            free(w);
            sh->n--;
        } else {
            pp = &w->next;
        }
    }
}

/* Returns the current window of (sub, cls), restarted when expired, or NULL when out of memory
 * and create is set. With create unset a missing window is NULL. Called with the shard locked. */
static window_t *find(ac_ratelimit_t *rl, shard_t *sh, uint64_t h, const char *sub, int cls, int64_t now_ms,
                      int create)
{
    int64_t window_ms = (int64_t)rl->rules[cls].window_s * 1000;
    for (window_t *w = sh->head; w != NULL; w = w->next) {
        if (w->hash == h && w->cls == cls && strcmp(w->sub, sub) == 0) {
            if (now_ms - w->start_ms >= window_ms) {
                w->start_ms = now_ms;
                w->count = 0;
            }
            return w;
        }
    }
    if (!create)
        return NULL;
    if (sh->n >= SWEEP_AT)
        sweep(sh, rl->rules, now_ms);
    size_t len = strlen(sub);
    window_t *w = malloc(sizeof *w + len + 1);
    if (w == NULL)
        return NULL;
    *w = (window_t){sh->head, h, cls, now_ms, 0};
    memcpy(w->sub, sub, len + 1);
    sh->head = w;
    sh->n++;
    return w;
}

static void describe(const ac_rate_rule_t *rule, int count, int64_t start_ms, int64_t now_ms, ac_rate_info_t *info)
{
    int64_t end_ms = start_ms + (int64_t)rule->window_s * 1000;
    info->limit = rule->limit;
    info->remaining = rule->limit > count ? rule->limit - count : 0;
    info->reset_s = (end_ms + 999) / 1000;
    int64_t wait_ms = end_ms - now_ms;
    info->retry_after_s = wait_ms > 0 ? (int)((wait_ms + 999) / 1000) : 0;
}

int ac_ratelimit_take(ac_ratelimit_t *rl, const char *sub, int cls, int64_t now_ms, ac_rate_info_t *info)
{
    const ac_rate_rule_t *rule = &rl->rules[cls];
    if (rule->limit <= 0) {
        *info = (ac_rate_info_t){0, 0, 0, 0};
        return 1;
    }
    uint64_t h = hash(sub, cls);
    shard_t *sh = &rl->shards[h % SHARDS];
    pthread_mutex_lock(&sh->lock);
    window_t *w = find(rl, sh, h, sub, cls, now_ms, 1);
    int ok = 0;
    if (w == NULL) {
        /* out of memory: refuse rather than let an unlimited stream through */
        describe(rule, rule->limit, now_ms, now_ms, info);
    } else {
        ok = w->count < rule->limit;
        if (ok)
            w->count++;
        describe(rule, w->count, w->start_ms, now_ms, info);
    }
    pthread_mutex_unlock(&sh->lock);
    if (ok)
        info->retry_after_s = 0;
    return ok;
}

void ac_ratelimit_peek(ac_ratelimit_t *rl, const char *sub, int cls, int64_t now_ms, ac_rate_info_t *info)
{
    const ac_rate_rule_t *rule = &rl->rules[cls];
    if (rule->limit <= 0) {
        *info = (ac_rate_info_t){0, 0, 0, 0};
        return;
    }
    uint64_t h = hash(sub, cls);
    shard_t *sh = &rl->shards[h % SHARDS];
    pthread_mutex_lock(&sh->lock);
    window_t *w = find(rl, sh, h, sub, cls, now_ms, 0);
    if (w != NULL)
        describe(rule, w->count, w->start_ms, now_ms, info);
    else
        describe(rule, 0, now_ms, now_ms, info);
    pthread_mutex_unlock(&sh->lock);
    info->retry_after_s = 0;
}
