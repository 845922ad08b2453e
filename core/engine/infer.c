#include "engine/infer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "engine/policy.h"
#include "engine/rollout.h"

/* ---- an agent's declarations ------------------------------------------------------------------ */

static char *dup_or_null(const char *s)
{
    return s != NULL ? strdup(s) : NULL;
}

void ac_agent_decl_free(ac_agent_decl_t *d)
{
    if (d == NULL)
        return;
    free(d->name);
    free(d->version);
    free(d->description);
    for (int i = 0; i < d->n_tools; i++) {
        free(d->tools[i].name);
        free(d->tools[i].description);
        for (int k = 0; k < d->tools[i].n_args; k++)
            free(d->tools[i].args[k].name);
    }
    memset(d, 0, sizeof *d);
}

int ac_agent_decl_of(ac_agent_decl_t *d, const ac_agent_t *a, ac_err_t *err)
{
    memset(d, 0, sizeof *d);
    int oom = (d->name = strdup(a->name ? a->name : "")) == NULL;
    d->version = dup_or_null(a->version);
    d->description = dup_or_null(a->description);
    d->max_steps = a->max_steps;
    for (int i = 0; i < a->n_actions; i++, d->n_tools++) {
        const ac_tool_t *src = &a->tools[i];
        ac_tool_t *t = &d->tools[i];
        oom |= (t->name = strdup(src->name)) == NULL;
        t->description = dup_or_null(src->description);
        t->cost_micro_usd = src->cost_micro_usd;
        for (int k = 0; k < src->n_args; k++, t->n_args++) {
            oom |= (t->args[k].name = strdup(src->args[k].name)) == NULL;
            t->args[k].kind = src->args[k].kind;
        }
    }
    if (oom || (a->version && !d->version) || (a->description && !d->description)) {
        ac_agent_decl_free(d);
        return ac_err_set(err, AC_ERR_INTERNAL, "agent declarations: out of memory");
    }
    return 0;
}

static json_t *string_or_null(const char *s)
{
    return s != NULL ? json_string(s) : json_null();
}

json_t *ac_agent_decl_json(const ac_agent_decl_t *d)
{
    json_t *tools = json_array();
    for (int i = 0; i < d->n_tools; i++) {
        const ac_tool_t *t = &d->tools[i];
        json_t *args = json_array();
        for (int k = 0; k < t->n_args; k++)
            json_array_append_new(args, json_pack("{s:s, s:s}", "name", t->args[k].name, "type",
                                                  ac_arg_kind_name(t->args[k].kind)));
        json_array_append_new(tools, json_pack("{s:s, s:o, s:f, s:o}", "name", t->name, "description",
                                               string_or_null(t->description), "cost_usd",
                                               (double)t->cost_micro_usd / 1e6, "args", args));
    }
    return json_pack("{s:s, s:o, s:o, s:i, s:o}", "name", d->name ? d->name : "", "version",
                     string_or_null(d->version), "description", string_or_null(d->description), "max_steps",
                     d->max_steps, "tools", tools);
}

/* A member that must be a string or null: 0 with *out (a copy, or NULL), -1 otherwise. */
static int opt_str(const json_t *o, const char *key, char **out)
{
    json_t *v = json_object_get(o, key);
    *out = NULL;
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return -1;
    return (*out = strdup(json_string_value(v))) == NULL ? -1 : 0;
}

#define DECL_BAD(...) (ac_agent_decl_free(d), ac_err_set(err, AC_ERR_INVALID_PARAMS, __VA_ARGS__))

int ac_agent_decl_parse(ac_agent_decl_t *d, const json_t *j, ac_err_t *err)
{
    memset(d, 0, sizeof *d);
    json_t *tools = json_object_get(j, "tools"), *ms = json_object_get(j, "max_steps");
    if (!json_is_object(j) || opt_str(j, "name", &d->name) != 0 || d->name == NULL ||
        opt_str(j, "version", &d->version) != 0 || opt_str(j, "description", &d->description) != 0)
        return DECL_BAD("agent declarations: name, version and description must be strings");
    if (ms != NULL && (!json_is_integer(ms) || json_integer_value(ms) < 0 ||
                       json_integer_value(ms) > AC_AGENT_MAX_STEPS))
        return DECL_BAD("agent declarations: max_steps must be an integer from 0 to %d", AC_AGENT_MAX_STEPS);
    d->max_steps = (int)json_integer_value(ms);
    if (!json_is_array(tools) || json_array_size(tools) < 1 || json_array_size(tools) > AC_AGENT_MAX_ACTIONS)
        return DECL_BAD("agent declarations: tools must be an array of 1 to %d tools", AC_AGENT_MAX_ACTIONS);
    size_t i;
    json_t *jt;
    json_array_foreach(tools, i, jt)
    {
        ac_tool_t *t = &d->tools[d->n_tools++];
        json_t *args = json_object_get(jt, "args"), *cost = json_object_get(jt, "cost_usd");
        if (!json_is_object(jt) || opt_str(jt, "name", &t->name) != 0 || t->name == NULL || t->name[0] == 0 ||
            opt_str(jt, "description", &t->description) != 0)
            return DECL_BAD("agent declarations: tools[%zu] needs a name (string)", i);
        if (ac_agent_decl_tool(d, t->name) != (int)i)
            return DECL_BAD("agent declarations: tools[%zu] repeats the tool '%s'", i, t->name);
        if (cost != NULL && (!json_is_number(cost) || !(json_number_value(cost) >= 0) || json_number_value(cost) > 1e6))
            return DECL_BAD("agent declarations: tools[%zu].cost_usd must be a number from 0 to 1e6", i);
        t->cost_micro_usd = cost ? llround(json_number_value(cost) * 1e6) : 0;
        if (args != NULL && (!json_is_array(args) || json_array_size(args) > AC_AGENT_MAX_ARGS))
            return DECL_BAD("agent declarations: tools[%zu].args must be an array of at most %d", i,
                            AC_AGENT_MAX_ARGS);
        size_t k;
        json_t *ja;
        json_array_foreach(args, k, ja)
        {
            ac_tool_arg_t *a = &t->args[t->n_args++];
            char *type = NULL;
            int bad = !json_is_object(ja) || opt_str(ja, "name", &a->name) != 0 || a->name == NULL ||
                      opt_str(ja, "type", &type) != 0 || type == NULL;
            a->kind = bad ? -1 : ac_arg_kind_from_name(type);
            free(type);
            if (a->kind < 0)
                return DECL_BAD("agent declarations: tools[%zu].args[%zu] needs a name and a type", i, k);
        }
    }
    return 0;
}

int ac_agent_decl_check(const ac_agent_decl_t *d, const ac_actor_config_t *cfg, ac_err_t *err)
{
    if (d->n_tools != cfg->n_tools)
        return ac_err_set(err, AC_ERR_INVALID_PARAMS, "the agent has %d tools, the policy was trained for %d",
                          d->n_tools, cfg->n_tools);
    for (int a = 0; a < d->n_tools; a++)
        if (d->tools[a].n_args != cfg->n_args[a])
            return ac_err_set(err, AC_ERR_INVALID_PARAMS,
                              "the agent's tool '%s' takes %d arguments, the policy was trained for %d",
                              d->tools[a].name, d->tools[a].n_args, cfg->n_args[a]);
    return 0;
}

int ac_agent_decl_tool(const ac_agent_decl_t *d, const char *name)
{
    for (int a = 0; name != NULL && a < d->n_tools; a++)
        if (strcmp(d->tools[a].name, name) == 0)
            return a;
    return -1;
}

int ac_agent_decl_from_meta(ac_agent_decl_t *d, const uint8_t *meta, size_t len, ac_err_t *err)
{
    memset(d, 0, sizeof *d);
    json_t *m = len > 0 ? json_loadb((const char *)meta, len, 0, NULL) : NULL;
    json_t *agent = json_object_get(m, "agent");
    int rc = agent == NULL ? 0 : ac_agent_decl_parse(d, agent, err) == 0 ? 1 : -1;
    json_decref(m);
    return rc;
}

/* ---- the call's parameters ----------------------------------------------------------------------- */

void ac_infer_call_free(ac_infer_call_t *c)
{
    free(c->steps);
    memset(c, 0, sizeof *c);
}

#define CALL_BAD(field, ...) (ac_infer_call_free(c), ac_err_field(err, code, field, __VA_ARGS__))

int ac_infer_call_parse(ac_infer_call_t *c, const ac_agent_decl_t *d, const json_t *params, int code, ac_err_t *err)
{
    memset(c, 0, sizeof *c);
    for (int a = 0; a < d->n_tools; a++)
        for (int k = 0; k < d->tools[a].n_args; k++)
            c->_arg_names[a][k] = d->tools[a].args[k].name;
    json_t *q = json_object_get(params, "query"), *hist = json_object_get(params, "history");
    json_t *obs = json_object_get(params, "observation"), *cands = json_object_get(params, "candidates");
    json_t *legal = json_object_get(params, "legal");
    char field[64];
    if (!json_is_string(q) || json_string_length(q) == 0)
        return CALL_BAD("query", "must be a non-empty string");
    c->query = json_string_value(q);
    if (obs != NULL && !json_is_string(obs))
        return CALL_BAD("observation", "must be a string (what agent.observe returns)");
    c->observation = json_string_value(obs);
    if (cands != NULL && (!json_is_array(cands) || json_array_size(cands) > AC_AGENT_MAX_CANDIDATES))
        return CALL_BAD("candidates", "must be an array of at most %d strings or numbers", AC_AGENT_MAX_CANDIDATES);
    size_t i;
    json_t *v;
    json_array_foreach(cands, i, v) if (!json_is_string(v) && !json_is_number(v))
    {
        snprintf(field, sizeof field, "candidates[%zu]", i);
        return CALL_BAD(field, "must be a string or a number");
    }
    c->candidates = cands;
    memset(c->legal, legal == NULL, sizeof c->legal);
    if (legal != NULL && (!json_is_array(legal) || json_array_size(legal) == 0))
        return CALL_BAD("legal", "must be a non-empty array of tool names");
    json_array_foreach(legal, i, v)
    {
        int a = ac_agent_decl_tool(d, json_string_value(v));
        snprintf(field, sizeof field, "legal[%zu]", i);
        if (a < 0)
            return CALL_BAD(field, "is not one of the agent's tools");
        c->legal[a] = 1;
    }
    if (hist != NULL && !json_is_array(hist))
        return CALL_BAD("history", "must be an array of {tool, params, result}");
    size_t n = json_array_size(hist);
    if (n > AC_AGENT_MAX_STEPS)
        return CALL_BAD("history", "at most %d steps", AC_AGENT_MAX_STEPS);
    if (n > 0 && (c->steps = calloc(n, sizeof *c->steps)) == NULL)
        return ac_err_set(err, AC_ERR_INTERNAL, "out of memory");
    json_array_foreach(hist, i, v)
    {
        json_t *tool = json_object_get(v, "tool"), *args = json_object_get(v, "params");
        int a = ac_agent_decl_tool(d, json_string_value(tool));
        snprintf(field, sizeof field, "history[%zu]", i);
        if (!json_is_object(v))
            return CALL_BAD(field, "must be an object {tool, params, result}");
        snprintf(field, sizeof field, "history[%zu].tool", i);
        if (a < 0)
            return CALL_BAD(field, "must name one of the agent's tools");
        snprintf(field, sizeof field, "history[%zu].params", i);
        if (args != NULL && !json_is_null(args) && !json_is_object(args))
            return CALL_BAD(field, "must be an object: argument name -> value");
        const ac_tool_t *t = &d->tools[a];
        /* a history from outside does not say which token each argument came from: the context
         * tells by the values (ac_context_build) */
        c->steps[i] = (ac_context_step_t){t->name, c->_arg_names[a], json_is_object(args) ? args : NULL, t->n_args,
                                          json_object_get(v, "result"), NULL};
        c->n_steps++;
    }
    return 0;
}

/* ---- one call ------------------------------------------------------------------------------------- */

int ac_infer_scratch_init(ac_infer_scratch_t *s, int max_tokens, ac_err_t *err)
{
    memset(s, 0, sizeof *s);
    return ac_context_init(&s->ctx, max_tokens, err);
}

void ac_infer_scratch_free(ac_infer_scratch_t *s)
{
    ac_context_free(&s->ctx);
    ac_states_free(&s->states);
}

static json_t *logp_json(const float *logp, int n)
{
    json_t *a = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(a, isinf(logp[i]) && logp[i] < 0 ? json_null() : json_real(logp[i]));
    return a;
}

static json_t *ints_json(const int *v, int n)
{
    json_t *a = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(a, json_integer(v[i]));
    return a;
}

/* Every token as the policy reads it: what a reader of the checkpoint needs to score the same
 * decisions (docs/checkpoints.md, "A forward pass"). */
static json_t *tokens_json(const ac_context_t *ctx)
{
    json_t *a = json_array();
    char hex[24];
    for (int i = 0; i < ctx->n; i++) {
        const ac_token_t *t = &ctx->tok[i];
        snprintf(hex, sizeof hex, "%016llx", (unsigned long long)t->hash);
        json_array_append_new(a, json_pack("{s:s%, s:s, s:I, s:I, s:i, s:i, s:i, s:i, s:i, s:i, s:f}", "text",
                                           ctx->text + t->start, (size_t)t->len, "hash", hex, "pre",
                                           (json_int_t)t->pre, "suf", (json_int_t)t->suf, "kind", t->kind, "seg",
                                           t->seg, "age", t->age, "flags", t->flags, "pos", t->pos, "ord", t->ord,
                                           "value", (double)t->value));
    }
    return a;
}

/* A decision path of the search for alternatives: the tool, the candidates' tokens chosen for
 * its first `depth` arguments, and the path's log-probability. */
typedef struct path {
    double lp;
    int tool, depth;
    int tok[AC_AGENT_MAX_ARGS];
} path_t;

#define HEAP_MAX 8192
#define KEEP_PER_SLOT 32 /* options of one argument decision the search follows, the best first */

typedef struct heap {
    path_t *v;
    int n;
} heap_t;

static void heap_push(heap_t *h, const path_t *x)
{
    if (h->n >= HEAP_MAX)
        return; /* bounded: the search is best effort past this (docs/api.md) */
    int i = h->n++;
    while (i > 0 && h->v[(i - 1) / 2].lp < x->lp) {
        h->v[i] = h->v[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h->v[i] = *x;
}

static path_t heap_pop(heap_t *h)
{
    path_t top = h->v[0], last = h->v[--h->n];
    int i = 0;
    for (;;) {
        int c = 2 * i + 1;
        if (c >= h->n)
            break;
        if (c + 1 < h->n && h->v[c + 1].lp > h->v[c].lp)
            c++;
        if (h->v[c].lp <= last.lp)
            break;
        h->v[i] = h->v[c];
        i = c;
    }
    if (h->n > 0)
        h->v[i] = last;
    return top;
}

/* The arguments of a decision path as JSON: name -> value. */
static json_t *params_of(const ac_agent_decl_t *d, const ac_context_t *ctx, const json_t *cands, int tool,
                         const int *tok)
{
    const ac_tool_t *t = &d->tools[tool];
    json_t *params = json_object();
    for (int k = 0; params != NULL && k < t->n_args; k++) {
        json_t *v = ac_context_value(ctx, t->args[k].kind, tok[k], cands);
        if (v == NULL || json_object_set_new(params, t->args[k].name, v) != 0) {
            json_decref(params);
            return NULL;
        }
    }
    return params;
}

typedef struct alt {
    char *key; /* tool \0 params (sorted, compact) */
    json_t *params;
    int tool;
    double p, lp;
} alt_t;

static int alt_cmp(const void *a, const void *b)
{
    double pa = ((const alt_t *)a)->p, pb = ((const alt_t *)b)->p;
    return pa < pb ? 1 : pa > pb ? -1 : 0;
}

/* A whole call x joins alts: its probability is added to the same call's (same tool and
 * params) when another path already reached it. 0, or -1 when out of memory. */
static int add_alternative(alt_t *alts, int *n_alts, const ac_agent_decl_t *d, const ac_infer_call_t *c,
                           ac_context_t *ctx, const path_t *x)
{
    const ac_tool_t *t = &d->tools[x->tool];
    json_t *params = params_of(d, ctx, c->candidates, x->tool, x->tok);
    char *text = params ? json_dumps(params, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    size_t tl = strlen(t->name), pl = text ? strlen(text) : 0;
    char *key = text ? malloc(tl + pl + 2) : NULL;
    if (key == NULL) {
        free(text);
        json_decref(params);
        return -1;
    }
    memcpy(key, t->name, tl + 1);
    memcpy(key + tl + 1, text, pl + 1);
    free(text);
    for (int i = 0; i < *n_alts; i++)
        if (alts[i].tool == x->tool && strcmp(alts[i].key + tl + 1, key + tl + 1) == 0) {
            alts[i].p += exp(x->lp);
            free(key);
            json_decref(params);
            return 0;
        }
    alts[(*n_alts)++] = (alt_t){key, params, x->tool, exp(x->lp), x->lp};
    return 0;
}

/* Pushes x extended by each of its next slot's KEEP_PER_SLOT most probable candidates. */
static void expand(ac_actor_t *p, ac_context_t *ctx, const ac_tool_t *t, const path_t *x, heap_t *h)
{
    int cand[AC_ACTOR_MAX_CANDS], order[AC_ACTOR_MAX_CANDS];
    float logp[AC_ACTOR_MAX_CANDS];
    int n = ac_context_candidates(ctx, t->args[x->depth].kind, cand, AC_ACTOR_MAX_CANDS);
    if (n < 1 || ac_actor_slot_logp(p, 0, x->tool, x->depth, cand, n, x->tok, x->depth, logp) != 0)
        return;
    /* a partial selection sort: n <= 256 */
    for (int j = 0; j < n; j++)
        order[j] = j;
    int keep = n < KEEP_PER_SLOT ? n : KEEP_PER_SLOT;
    for (int j = 0; j < keep; j++) {
        int best = j;
        for (int m = j + 1; m < n; m++)
            if (logp[order[m]] > logp[order[best]])
                best = m;
        int tmp = order[j];
        order[j] = order[best];
        order[best] = tmp;
        if (isinf(logp[order[j]]))
            break;
        path_t y = *x;
        y.lp += logp[order[j]];
        y.tok[y.depth++] = cand[order[j]];
        heap_push(h, &y);
    }
}

/* Best-first over decision paths: complete paths come out most probable first; the same call
 * reached through different tokens is merged. */
static int alternatives(ac_actor_t *p, const ac_agent_decl_t *d, const ac_infer_call_t *c, ac_context_t *ctx,
                        const uint8_t *mask, const float *tlogp, int top_k, json_t **out, ac_err_t *err)
{
    const int want = top_k * 4 > 16 ? top_k * 4 : 16;
    heap_t h = {malloc(sizeof(path_t) * HEAP_MAX), 0};
    alt_t *alts = calloc((size_t)want, sizeof *alts);
    int n_alts = 0, found = 0, expansions = 0, rc = 0;
    if (h.v == NULL || alts == NULL) {
        rc = ac_err_set(err, AC_ERR_INTERNAL, "out of memory");
        goto out;
    }
    for (int a = 0; a < d->n_tools; a++)
        if (mask[a] && !isinf(tlogp[a]))
            heap_push(&h, &(path_t){tlogp[a], a, 0, {0}});
    while (h.n > 0 && found < want) {
        path_t x = heap_pop(&h);
        const ac_tool_t *t = &d->tools[x.tool];
        if (x.depth == t->n_args) { /* a whole call */
            found++;
            if (add_alternative(alts, &n_alts, d, c, ctx, &x) != 0) {
                rc = ac_err_set(err, AC_ERR_INTERNAL, "out of memory");
                goto out;
            }
            continue;
        }
        if (expansions++ >= AC_INFER_MAX_EXPANSIONS)
            break;
        expand(p, ctx, t, &x, &h);
    }
    qsort(alts, (size_t)n_alts, sizeof *alts, alt_cmp);
    *out = json_array();
    for (int i = 0; i < n_alts && i < top_k; i++) {
        json_array_append_new(*out, json_pack("{s:s, s:O, s:f, s:f}", "tool", d->tools[alts[i].tool].name, "params",
                                              alts[i].params, "log_prob", log(alts[i].p), "p", alts[i].p));
    }
out:
    for (int i = 0; i < n_alts; i++) {
        free(alts[i].key);
        json_decref(alts[i].params);
    }
    free(alts);
    free(h.v);
    return rc;
}

static int choose(const float *logp, int n, const ac_infer_opts_t *o)
{
    return o->greedy ? ac_policy_greedy(logp, n) : ac_policy_sample(logp, n, o->temperature, o->rng, NULL);
}

/* The legal tools whose arguments all have a candidate, as the rollouts mask them: whether any. */
static int callable_mask(const ac_agent_decl_t *d, const ac_infer_call_t *c, ac_context_t *ctx, uint8_t *mask)
{
    int cand[1], any = 0;
    for (int a = 0; a < d->n_tools; a++) {
        mask[a] = c->legal[a];
        for (int k = 0; mask[a] && k < d->tools[a].n_args; k++)
            if (ac_context_candidates(ctx, d->tools[a].args[k].kind, cand, 1) == 0)
                mask[a] = 0;
        any |= mask[a];
    }
    return any;
}

int ac_infer_act(ac_actor_t *p, const ac_agent_decl_t *d, const ac_infer_call_t *c, const ac_infer_opts_t *o,
                 ac_infer_scratch_t *s, json_t **out, ac_err_t *err)
{
    *out = NULL;
    const ac_actor_config_t *cfg = ac_actor_config(p);
    if (ac_agent_decl_check(d, cfg, err) != 0)
        return -1;
    ac_context_t *ctx = &s->ctx;
    if (ac_context_build(ctx, c->query, c->steps, c->n_steps, c->observation, c->candidates, err) != 0)
        return -1;
    const int A = d->n_tools;
    uint8_t mask[AC_AGENT_MAX_ACTIONS];
    int cand[AC_ACTOR_MAX_CANDS];
    if (!callable_mask(d, c, ctx, mask))
        return ac_err_field(err, AC_ERR_INVALID_PARAMS, "legal",
                            "no tool can be called: none of the legal tools has a candidate for every argument");
    ac_states_clear(&s->states);
    if (ac_states_add(&s->states, ctx, err) < 0 || ac_actor_read(p, &s->states, 0, 1, err) != 0)
        return -1;
    float tlogp[AC_AGENT_MAX_ACTIONS], logp[AC_ACTOR_MAX_CANDS];
    if (ac_actor_tool_logp(p, 0, mask, tlogp) != 0)
        return ac_err_set(err, AC_ERR_INTERNAL, "the policy found no legal tool");
    json_t *decisions = o->explain ? json_array() : NULL;
    int tool = choose(tlogp, A, o);
    double total = tlogp[tool];
    if (decisions != NULL) {
        json_t *opts = json_array(), *legal = json_array();
        for (int a = 0; a < A; a++) {
            json_array_append_new(opts, json_string(d->tools[a].name));
            json_array_append_new(legal, json_boolean(mask[a]));
        }
        json_array_append_new(decisions, json_pack("{s:s, s:o, s:o, s:o, s:i}", "decision", "tool", "options", opts,
                                                   "legal", legal, "log_probs", logp_json(tlogp, A), "chosen", tool));
    }
    const ac_tool_t *t = &d->tools[tool];
    int chosen_tok[AC_AGENT_MAX_ARGS] = {0};
    for (int k = 0; k < t->n_args; k++) {
        int n = ac_context_candidates(ctx, t->args[k].kind, cand, AC_ACTOR_MAX_CANDS);
        if (ac_actor_slot_logp(p, 0, tool, k, cand, n, chosen_tok, k, logp) != 0) {
            json_decref(decisions);
            return ac_err_set(err, AC_ERR_INTERNAL, "argument %d of %s has no candidate", k, t->name);
        }
        int j = choose(logp, n, o);
        total += logp[j];
        chosen_tok[k] = cand[j];
        if (decisions != NULL) {
            json_t *values = json_array();
            for (int i = 0; i < n; i++) {
                json_t *v = ac_context_value(ctx, t->args[k].kind, cand[i], c->candidates);
                json_array_append_new(values, v ? v : json_null());
            }
            json_array_append_new(decisions, json_pack("{s:s, s:s, s:s, s:i, s:o, s:o, s:o, s:o, s:i}", "decision",
                                                       "argument", "tool", t->name, "arg", t->args[k].name, "slot", k,
                                                       "candidates", ints_json(cand, n), "prev",
                                                       ints_json(chosen_tok, k), "values", values, "log_probs",
                                                       logp_json(logp, n), "chosen", j));
        }
    }
    json_t *params = params_of(d, ctx, c->candidates, tool, chosen_tok), *alts = NULL;
    if (params == NULL ||
        (o->top_k > 0 ? alternatives(p, d, c, ctx, mask, tlogp, o->top_k, &alts, err) : (alts = json_array(), 0)) != 0) {
        json_decref(params);
        json_decref(decisions);
        return err->code ? -1 : ac_err_set(err, AC_ERR_INTERNAL, "out of memory");
    }
    *out = json_pack("{s:s, s:o, s:f, s:o}", "tool", t->name, "params", params, "log_prob", total, "alternatives",
                     alts);
    if (*out != NULL && decisions != NULL)
        json_object_set_new(*out, "explain", json_pack("{s:s, s:o, s:o}", "context", ctx->text, "tokens",
                                                       tokens_json(ctx), "decisions", decisions));
    else
        json_decref(decisions);
    return *out != NULL ? 0 : ac_err_set(err, AC_ERR_INTERNAL, "out of memory");
}

/* ---- one episode ---------------------------------------------------------------------------------- */

int64_t ac_infer_max_cost(const ac_agent_t *agent, int max_steps, int64_t step_cost_micro)
{
    int64_t dearest = 0;
    for (int a = 0; a < agent->n_actions; a++)
        if (agent->tools[a].cost_micro_usd > dearest)
            dearest = agent->tools[a].cost_micro_usd;
    if (agent->max_steps > 0 && agent->max_steps < max_steps)
        max_steps = agent->max_steps;
    return (int64_t)max_steps * (step_cost_micro + dearest);
}

int ac_infer_run(ac_agent_t *agent, ac_reward_t *reward, ac_actor_t *p, const ac_infer_run_opts_t *o, json_t **traj,
                 int64_t *cost_micro, ac_err_t *err)
{
    *traj = NULL;
    *cost_micro = 0;
    json_t *queries = json_pack("[{s:s}]", "query", o->query);
    if (queries != NULL && o->expected != NULL)
        json_object_set(json_array_get(queries, 0), "expected_outcome", (json_t *)o->expected);
    ac_rollout_t ro;
    if (queries == NULL || ac_rollout_init(&ro, agent->n_actions, err) != 0) {
        json_decref(queries);
        return ac_err_set(err, AC_ERR_INTERNAL, "out of memory");
    }
    ac_rng_t rng;
    ac_rng_seed(&rng, o->seed);
    int idx = 0;
    ac_rollout_spec_t spec = {agent, o->expected ? reward : NULL, p, &rng, queries, &idx, 1, 1, o->max_steps,
                              o->greedy ? 0.0f : o->temperature, o->step_cost_micro, o->budget_micro, NULL, o->seed,
                              0};
    int64_t t0 = ac_clock_mono_ns();
    int rc = ac_rollout_run(&ro, &spec, err);
    if (rc == 0 && ro.n_eps == 1) {
        const ac_episode_rec_t *ep = &ro.eps[0];
        int scored = o->expected != NULL && !ep->failed && ep->final != NULL;
        *traj = ac_rollout_trajectory_json(&ro, agent, queries, 0);
        *cost_micro = ep->cost_micro;
        if (*traj != NULL) {
            json_object_set_new(*traj, "reward", scored ? json_real(ep->reward) : json_null());
            json_object_set_new(*traj, "success", scored ? json_boolean(ep->success) : json_null());
            json_object_set_new(*traj, "cost_usd", json_real((double)ep->cost_micro / 1e6));
            json_object_set_new(*traj, "execution_time_ms",
                                json_integer((json_int_t)((ac_clock_mono_ns() - t0) / 1000000)));
            json_object_set_new(*traj, "budget_exhausted", json_boolean(ro.budget_exhausted));
            json_object_set_new(*traj, "error", ep->error ? json_string(ep->error) : json_null());
        } else {
            rc = ac_err_set(err, AC_ERR_INTERNAL, "out of memory");
        }
    } else if (rc == 0) {
        rc = ac_err_set(err, AC_ERR_INTERNAL, "the episode did not start");
    }
    ac_rollout_free(&ro);
    json_decref(queries);
    return rc;
}
