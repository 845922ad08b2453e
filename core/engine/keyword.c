#include "engine/keyword.h"

#include <stdlib.h>
#include <string.h>

#define MIN_SUPPORT 3
#define TABLE_BITS 14

typedef struct entry {
    uint64_t hash; /* 0: empty */
    int total;
    int votes[AC_AGENT_MAX_ACTIONS];
} entry_t;

struct ac_keyword {
    int n_tools;
    entry_t *table; /* open addressing, 1 << TABLE_BITS entries */
    int fallback;   /* the tool called most often */
};

static entry_t *slot(entry_t *t, uint64_t h, int insert)
{
    size_t mask = ((size_t)1 << TABLE_BITS) - 1, i = (size_t)(h ^ (h >> 31)) & mask;
    for (size_t probes = 0; probes <= mask; probes++, i = (i + 1) & mask) {
        if (t[i].hash == h)
            return &t[i];
        if (t[i].hash == 0) {
            if (!insert)
                return NULL;
            t[i].hash = h;
            return &t[i];
        }
    }
    return NULL; /* full: the word is not counted */
}

static int is_word(const ac_token_t *t) { return t->kind == AC_TOK_WORD || t->kind == AC_TOK_ID; }

ac_keyword_t *ac_keyword_fit(const ac_rollout_t *ro, int n_tools, ac_err_t *err)
{
    ac_keyword_t *k = calloc(1, sizeof *k);
    if (k == NULL || (k->table = calloc((size_t)1 << TABLE_BITS, sizeof *k->table)) == NULL) {
        free(k);
        ac_err_set(err, AC_ERR_INTERNAL, "keyword rule: out of memory");
        return NULL;
    }
    k->n_tools = n_tools;
    int calls[AC_AGENT_MAX_ACTIONS] = {0};
    for (int e = 0; e < ro->n_eps; e++) {
        const ac_episode_rec_t *ep = &ro->eps[e];
        if (ep->failed || !ep->success)
            continue;
        for (int i = ep->first_step; i >= 0; i = ro->steps[i].next) {
            const ac_step_rec_t *s = &ro->steps[i];
            const ac_token_t *tok = ro->states.tok + ro->states.off[s->state];
            int n = ro->states.off[s->state + 1] - ro->states.off[s->state];
            calls[s->action]++;
            for (int j = 0; j < n; j++) {
                if (!is_word(&tok[j]))
                    continue;
                int seen = 0; /* each distinct word votes once per step */
                for (int m = 0; m < j && !seen; m++)
                    seen = tok[m].hash == tok[j].hash;
                entry_t *en = seen ? NULL : slot(k->table, tok[j].hash ? tok[j].hash : 1, 1);
                if (en != NULL) {
                    en->total++;
                    en->votes[s->action]++;
                }
            }
        }
    }
    for (int a = 1; a < n_tools; a++)
        if (calls[a] > calls[k->fallback])
            k->fallback = a;
    return k;
}

void ac_keyword_free(ac_keyword_t *k)
{
    if (k != NULL)
        free(k->table);
    free(k);
}

int ac_keyword_tool(const ac_keyword_t *k, const ac_token_t *tok, int n, const uint8_t *mask)
{
    int best = -1;
    double best_conf = -1;
    int best_support = 0;
    for (int j = 0; j < n; j++) {
        if (!is_word(&tok[j]))
            continue;
        const entry_t *en = slot(k->table, tok[j].hash ? tok[j].hash : 1, 0);
        if (en == NULL || en->total < MIN_SUPPORT)
            continue;
        int top = -1;
        for (int a = 0; a < k->n_tools; a++)
            if ((mask == NULL || mask[a]) && (top < 0 || en->votes[a] > en->votes[top]))
                top = a;
        if (top < 0)
            continue;
        double conf = (double)en->votes[top] / en->total;
        if (conf > best_conf || (conf == best_conf && en->total > best_support)) {
            best_conf = conf;
            best_support = en->total;
            best = top;
        }
    }
    if (best >= 0)
        return best;
    if (mask == NULL || mask[k->fallback])
        return k->fallback;
    for (int a = 0; a < k->n_tools; a++)
        if (mask[a])
            return a;
    return -1;
}

/* Order of preference: results, newest first; then every other candidate in context order. */
static int rank(const ac_token_t *t, int index)
{
    if (t->seg == AC_SEG_RESULT)
        return t->age * 4096 + index;
    return (AC_CONTEXT_MAX_AGE + 1) * 4096 + index;
}

int ac_keyword_arg(const ac_token_t *tok, const int *cand, int n_cand, const int *prev, int n_prev)
{
    int best = -1, best_rank = 0, fallback = 0;
    for (int j = 0; j < n_cand; j++) {
        const ac_token_t *t = &tok[cand[j]];
        int taken = 0;
        for (int m = 0; m < n_prev && !taken; m++)
            taken = prev[m] == cand[j];
        if (taken)
            continue;
        fallback = j;
        if (t->flags & AC_TOKF_IN_CALL) /* an earlier call used this value */
            continue;
        int r = rank(t, cand[j]);
        if (best < 0 || r < best_rank) {
            best = j;
            best_rank = r;
        }
    }
    return best >= 0 ? best : fallback;
}
