/* Actor: contexts rendered from an episode's history, the decisions' log-probabilities (masked,
 * tempered, normalised), and every parameter's gradient against central finite differences, for
 * both readers (bag, sequence) and every kind of decision (tool, first slot, slot after others). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/actor.h"
#include "engine/policy.h"
#include "engine_check.h"

/* Three states: a bare query, one with a call and its result, one with an observation and agent
 * candidates. */
static void make_states(ac_states_t *S, ac_context_t *ctx)
{
    ac_err_t err = AC_ERR_INIT;
    const char *names[2] = {"a", "b"};
    json_t *args = json_pack("{s:i, s:i}", "a", 7, "b", 5);
    json_t *result = json_pack("{s:i}", "value", 12);
    ac_context_step_t step = {"add", names, args, 2, result, NULL};
    json_t *cands = json_pack("[s, s, i]", "ORD-17", "red shoes", 42);
    CHECK(ac_context_build(&ctx[0], "Start with 7, add 5, then multiply by 3.", NULL, 0, NULL, NULL, &err) == 0);
    CHECK(ac_context_build(&ctx[1], "Start with 7, add 5, then multiply by 3.", &step, 1, NULL, NULL, &err) == 0);
    CHECK(ac_context_build(&ctx[2], "refund order ORD-17 of 42 dollars", &step, 1, "customer said: hurry", cands,
                           &err) == 0);
    for (int i = 0; i < 3; i++)
        CHECK(ac_states_add(S, &ctx[i], &err) == i);
    json_decref(args);
    json_decref(result);
    json_decref(cands);
}

static void test_context(void)
{
    ac_err_t err = AC_ERR_INIT;
    ac_context_t c[3];
    ac_states_t S = {0};
    for (int i = 0; i < 3; i++)
        CHECK(ac_context_init(&c[i], 64, &err) == 0);
    make_states(&S, c);
    CHECK(strcmp(c[1].text, "query: Start with 7, add 5, then multiply by 3.\ncall: add a 7 b 5\nresult: value 12") == 0);
    int cand[64];
    int n = ac_context_candidates(&c[1], AC_ARG_NUMBER, cand, 64);
    /* 7, 5 and 3 of the query and the result's 12; the call's copies are not candidates */
    CHECK(n == 4);
    json_t *v = ac_context_value(&c[1], AC_ARG_NUMBER, cand[3], NULL);
    CHECK(json_integer_value(v) == 12);
    json_decref(v);
    /* the query's 7 and 5 were used by the call; 3 was not */
    CHECK((c[1].tok[cand[0]].flags & AC_TOKF_IN_CALL) && (c[1].tok[cand[1]].flags & AC_TOKF_IN_CALL) &&
          !(c[1].tok[cand[2]].flags & AC_TOKF_IN_CALL));
    n = ac_context_candidates(&c[2], AC_ARG_CANDIDATE, cand, 64);
    CHECK(n == 3);
    json_t *cands2 = json_pack("[s, s, i]", "ORD-17", "red shoes", 42);
    v = ac_context_value(&c[2], AC_ARG_CANDIDATE, cand[1], cands2);
    CHECK(json_is_string(v) && strcmp(json_string_value(v), "red shoes") == 0);
    json_decref(v);
    json_decref(cands2);
    n = ac_context_candidates(&c[2], AC_ARG_ID, cand, 64);
    CHECK(n >= 1 && strncmp(c[2].text + c[2].tok[cand[0]].start, "ORD-17", 6) == 0);
    /* values printed in exponent notation (%.15g beyond 1e15 and below 1e-4) are one number each,
     * not a mantissa, an identifier and a spurious exponent */
    {
        ac_context_t e;
        CHECK(ac_context_init(&e, 64, &err) == 0);
        const char *nm[2] = {"a", "b"};
        json_t *a2 = json_pack("{s:f, s:f}", "a", 2.2483074023424e19, "b", 1e-05);
        json_t *r2 = json_pack("{s:f, s:s}", "value", -3.5e-07, "note", "1e5x and 10e");
        ac_context_step_t st2 = {"power", nm, a2, 2, r2, NULL};
        CHECK(ac_context_build(&e, "raise 1680 to 6", &st2, 1, NULL, NULL, &err) == 0);
        int nc = ac_context_candidates(&e, AC_ARG_NUMBER, cand, 64);
        double want[] = {1680, 6, -3.5e-07};
        int good = nc == 3;
        for (int k = 0; good && k < 3; k++) {
            json_t *x = ac_context_value(&e, AC_ARG_NUMBER, cand[k], NULL);
            good = x && json_number_value(x) == want[k];
            json_decref(x);
        }
        if (!good)
            fprintf(stderr, "  exponents: %d number candidates in '%s'\n", nc, e.text);
        CHECK(good);
        int words = 0, ids = 0;
        for (int k = 0; k < e.n; k++) {
            words += e.tok[k].kind == AC_TOK_WORD;
            ids += e.tok[k].kind == AC_TOK_ID && e.tok[k].seg == AC_SEG_RESULT;
        }
        CHECK(ids == 2 && words > 0); /* "1e5x" and "10e" stay identifiers */
        json_decref(a2);
        json_decref(r2);
        ac_context_free(&e);
    }
    /* a capped context keeps the query and drops the oldest steps first */
    ac_context_t small;
    CHECK(ac_context_init(&small, 16, &err) == 0);
    const char *names[2] = {"a", "b"};
    json_t *args = json_pack("{s:i, s:i}", "a", 1, "b", 2), *res = json_pack("{s:i}", "value", 3);
    ac_context_step_t steps[3] = {{"add", names, args, 2, res, NULL}, {"add", names, args, 2, res, NULL}, {"add", names, args, 2, res, NULL}};
    CHECK(ac_context_build(&small, "add one and two", steps, 3, NULL, NULL, &err) == 0);
    CHECK(small.n <= 16 && small.tok[small.n - 1].age == 1);
    json_decref(args);
    json_decref(res);
    ac_context_free(&small);
    for (int i = 0; i < 3; i++)
        ac_context_free(&c[i]);
    ac_states_free(&S);
}

/* The query token of text `text` (the n-th such, from 0) in context c, or -1. */
static int query_token(const ac_context_t *c, const char *text, int nth)
{
    for (int i = 0; i < c->n && c->tok[i].seg <= AC_SEG_QUERY; i++)
        if (c->tok[i].seg == AC_SEG_QUERY && c->tok[i].len == strlen(text) &&
            strncmp(c->text + c->tok[i].start, text, c->tok[i].len) == 0 && nth-- == 0)
            return i;
    return -1;
}

/* AC_TOKF_TAKEN: the query tokens calls took as arguments. A number: with origins, exactly the
 * token it came from, so the same values mark different tokens when they came from elsewhere;
 * without (a history given from outside), by the values: a call's number an earlier result showed
 * comes from that result. A word: whenever a call used its text, wherever it took it. */
static void test_taken(void)
{
    ac_err_t err = AC_ERR_INIT;
    const char *q = "Start with 22, divide by 11, then multiply by 5, then divide by 2.";
    const char *ab[2] = {"a", "b"};
    json_t *div = json_pack("{s:i, s:i}", "a", 22, "b", 11), *div_r = json_pack("{s:i}", "value", 2);
    json_t *mul = json_pack("{s:i, s:i}", "a", 2, "b", 5), *mul_r = json_pack("{s:i}", "value", 10);
    ac_context_t c;
    CHECK(ac_context_init(&c, 64, &err) == 0);
    CHECK(ac_context_build(&c, q, NULL, 0, NULL, NULL, &err) == 0); /* to find the tokens' places */
    const int t22 = query_token(&c, "22", 0), t11 = query_token(&c, "11", 0), t5 = query_token(&c, "5", 0),
              t2 = query_token(&c, "2", 0);
    CHECK(t22 > 0 && t11 > 0 && t5 > 0 && t2 > 0);
    for (int i = 0; i < c.n; i++)
        CHECK(!(c.tok[i].flags & AC_TOKF_TAKEN));
    int o_div[2] = {ac_context_query_origin(&c, t22), ac_context_query_origin(&c, t11)};
    int o_mul[2] = {-1, ac_context_query_origin(&c, t5)}; /* the 2 from divide's result */
    CHECK(o_div[0] >= 0 && o_mul[1] >= 0 && ac_context_query_origin(&c, 0) == -1);
    ac_context_step_t known[2] = {{"divide", ab, div, 2, div_r, o_div}, {"multiply", ab, mul, 2, mul_r, o_mul}};
    CHECK(ac_context_build(&c, q, known, 2, NULL, NULL, &err) == 0);
    int marked = 0;
    for (int i = 0; i < c.n; i++)
        marked += (c.tok[i].flags & AC_TOKF_TAKEN) != 0;
    CHECK(marked == 3 && (c.tok[t22].flags & c.tok[t11].flags & c.tok[t5].flags & AC_TOKF_TAKEN));
    CHECK(!(c.tok[t2].flags & AC_TOKF_TAKEN) && (c.tok[t2].flags & AC_TOKF_IN_CALL)); /* same text, not taken */
    /* the same calls, but multiply took the query's own 2 */
    int o_mul_q[2] = {ac_context_query_origin(&c, t2), ac_context_query_origin(&c, t5)};
    known[1].from_query = o_mul_q;
    CHECK(ac_context_build(&c, q, known, 2, NULL, NULL, &err) == 0);
    CHECK(c.tok[t2].flags & AC_TOKF_TAKEN);
    /* no origins: by the values, the 2 came from the result */
    ac_context_step_t given[2] = {{"divide", ab, div, 2, div_r, NULL}, {"multiply", ab, mul, 2, mul_r, NULL}};
    CHECK(ac_context_build(&c, q, given, 2, NULL, NULL, &err) == 0);
    CHECK((c.tok[t22].flags & c.tok[t11].flags & c.tok[t5].flags & AC_TOKF_TAKEN) &&
          !(c.tok[t2].flags & AC_TOKF_TAKEN));
    /* ... and a number no result showed came from the query, even when a result shows it later */
    ac_context_step_t first_only[1] = {{"multiply", ab, mul, 2, div_r, NULL}};
    CHECK(ac_context_build(&c, q, first_only, 1, NULL, NULL, &err) == 0);
    CHECK((c.tok[t2].flags & AC_TOKF_TAKEN) && (c.tok[t5].flags & AC_TOKF_TAKEN));
    /* a search by the item a result row showed: the request's "kettle" is dealt with */
    const char *text[1] = {"text"};
    json_t *search = json_pack("{s:s}", "text", "Lopez"), *rows = json_pack("{s:[s]}", "orders", "ORD-5 kettle, Lopez");
    json_t *by_item = json_pack("{s:s}", "text", "kettle");
    const char *rq = "Lopez here: refund the kettle, then the lamp";
    CHECK(ac_context_build(&c, rq, NULL, 0, NULL, NULL, &err) == 0);
    const int lopez = query_token(&c, "Lopez", 0), kettle = query_token(&c, "kettle", 0);
    int o_search[1] = {ac_context_query_origin(&c, lopez)}, o_item[1] = {-1};
    ac_context_step_t two[2] = {{"search_orders", text, search, 1, rows, o_search},
                                {"search_orders", text, by_item, 1, rows, o_item}};
    CHECK(ac_context_build(&c, rq, two, 2, NULL, NULL, &err) == 0);
    CHECK(lopez > 0 && kettle > 0 && (c.tok[lopez].flags & AC_TOKF_TAKEN) && (c.tok[kettle].flags & AC_TOKF_TAKEN) &&
          !(c.tok[query_token(&c, "lamp", 0)].flags & AC_TOKF_TAKEN));
    json_decref(search), json_decref(rows), json_decref(by_item);
    json_decref(div), json_decref(div_r), json_decref(mul), json_decref(mul_r);
    ac_context_free(&c);
}

/* An episode's contexts built step by step (renderings kept, ac_context_begin_episode) equal the
 * same contexts rendered from scratch: tokens, ages, flags, text and candidate spans; also when a
 * longer observation at one step pushes older steps out and a shorter one lets them back in,
 * and for a second episode on the same context. */
static void test_episode_builds(void)
{
    ac_err_t err = AC_ERR_INIT;
    ac_context_t inc, fresh;
    CHECK(ac_context_init(&inc, 48, &err) == 0 && ac_context_init(&fresh, 48, &err) == 0);
    const char *names[2] = {"a", "b"};
    json_t *args[6], *res[6];
    ac_context_step_t steps[6];
    for (int k = 0; k < 6; k++) {
        args[k] = json_pack("{s:i, s:f}", "a", k * 7 - 3, "b", k + 0.5);
        res[k] = k % 2 ? json_pack("{s:f, s:[s, i]}", "value", k * 1e15 + 0.25, "tags", "ORD-9", -k)
                       : json_pack("{s:i}", "value", 1000000000LL * k);
        steps[k] = (ac_context_step_t){k % 2 ? "add" : "multiply", names, args[k], 2, res[k], NULL};
    }
    const char *observe[7] = {NULL, "short", "a much longer observation that takes a good share of the tokens here",
                              NULL, "5.0 05 -0 0", NULL, "x"};
    json_t *cands = json_pack("[s, i]", "ORD-1", 17);
    for (int episode = 0; episode < 2; episode++) {
        char query[64];
        snprintf(query, sizeof query, "episode %d: add 3 and 4.5, then -2", episode);
        ac_context_begin_episode(&inc);
        for (int t = 0; t <= 6; t++) {
            const json_t *cd = t == 3 ? cands : NULL;
            CHECK(ac_context_build(&inc, query, steps + episode, t - episode > 0 ? t - episode : 0, observe[t], cd,
                                   &err) == 0);
            CHECK(ac_context_build(&fresh, query, steps + episode, t - episode > 0 ? t - episode : 0, observe[t], cd,
                                   &err) == 0);
            int same = inc.n == fresh.n && memcmp(inc.tok, fresh.tok, sizeof *inc.tok * (size_t)inc.n) == 0 &&
                       strcmp(inc.text, fresh.text) == 0 && inc.n_spans == fresh.n_spans &&
                       memcmp(inc.span_first, fresh.span_first, sizeof(int) * (size_t)inc.n_spans) == 0;
            if (!same)
                fprintf(stderr, "  episode %d step %d:\n%s\n-- vs --\n%s\n", episode, t, inc.text, fresh.text);
            CHECK(same);
        }
    }
    /* "5", "5.0" and "05" are one value (one hash), as "2.5" and "2.50"; "-0" stays apart from "0" */
    CHECK(ac_context_build(&fresh, "5 5.0 05 -0 0 2.5 2.50", NULL, 0, NULL, NULL, &err) == 0);
    uint64_t h[7];
    for (int i = 0, k = 0; i < fresh.n && k < 7; i++)
        if (fresh.tok[i].kind == AC_TOK_NUMBER)
            h[k++] = fresh.tok[i].hash;
    CHECK(h[0] == h[1] && h[1] == h[2] && h[3] != h[4] && h[5] == h[6] && h[0] != h[5] && h[0] != h[4]);
    for (int k = 0; k < 6; k++) {
        json_decref(args[k]);
        json_decref(res[k]);
    }
    json_decref(cands);
    ac_context_free(&inc);
    ac_context_free(&fresh);
}

/* Decisions over the three states: tool decisions (one masked), slots 0 and 1 of tool 1 (two
 * number arguments) with the first's choice as prev, and a candidate slot of tool 2. */
typedef struct setup {
    ac_states_t S;
    ac_context_t ctx[3];
    ac_decision_t d[8];
    int n_d;
    size_t len;
    int cand[3][64], n_cand[3];
    int prev[2];
    uint8_t mask[4];
} setup_t;

static void make_decisions(setup_t *s)
{
    ac_err_t err = AC_ERR_INIT;
    memset(s, 0, sizeof *s);
    for (int i = 0; i < 3; i++)
        CHECK(ac_context_init(&s->ctx[i], 64, &err) == 0);
    make_states(&s->S, s->ctx);
    s->n_cand[0] = ac_context_candidates(&s->ctx[1], AC_ARG_NUMBER, s->cand[0], 64);
    s->n_cand[1] = ac_context_candidates(&s->ctx[2], AC_ARG_CANDIDATE, s->cand[1], 64);
    s->n_cand[2] = ac_context_candidates(&s->ctx[0], AC_ARG_NUMBER, s->cand[2], 64);
    s->prev[0] = s->cand[0][2];
    memcpy(s->mask, (uint8_t[4]){1, 0, 1, 1}, 4);
    size_t off = 0;
    ac_decision_t *d = s->d;
    d[s->n_d++] = (ac_decision_t){0, 1, -1, off, 4, NULL, NULL, NULL, 0, 1};
    off += 4;
    d[s->n_d++] = (ac_decision_t){1, 1, -1, off, 4, s->mask, NULL, NULL, 0, 2};
    off += 4;
    d[s->n_d++] = (ac_decision_t){1, 1, 0, off, s->n_cand[0], NULL, s->cand[0], NULL, 0, 2};
    off += (size_t)s->n_cand[0];
    d[s->n_d++] = (ac_decision_t){1, 1, 1, off, s->n_cand[0], NULL, s->cand[0], s->prev, 1, 3};
    off += (size_t)s->n_cand[0];
    d[s->n_d++] = (ac_decision_t){2, 2, 0, off, s->n_cand[1], NULL, s->cand[1], NULL, 0, 0};
    off += (size_t)s->n_cand[1];
    d[s->n_d++] = (ac_decision_t){0, 1, 0, off, s->n_cand[2], NULL, s->cand[2], NULL, 0, 0};
    off += (size_t)s->n_cand[2];
    s->len = off;
}

static void free_setup(setup_t *s)
{
    for (int i = 0; i < 3; i++)
        ac_context_free(&s->ctx[i]);
    ac_states_free(&s->S);
}

/* L = sum over legal options of w . logp. */
static double loss(ac_actor_t *p, setup_t *s, const double *w, float *logp)
{
    ac_err_t err = AC_ERR_INIT;
    if (ac_actor_forward(p, &s->S, 0, 3, s->d, s->n_d, logp, &err) != 0) {
        fprintf(stderr, "forward: %s\n", err.message);
        failures++;
        return NAN;
    }
    double L = 0;
    for (size_t i = 0; i < s->len; i++)
        if (logp[i] != -INFINITY)
            L += w[i] * logp[i];
    return L;
}

static void fd_check(const ac_actor_config_t *cfg, const char *name)
{
    ac_err_t err = AC_ERR_INIT;
    setup_t s;
    make_decisions(&s);
    ac_actor_t *p = ac_actor_create(cfg, &err);
    CHECK(p != NULL);
    if (p == NULL) {
        fprintf(stderr, "create: %s\n", err.message);
        free_setup(&s);
        return;
    }
    ac_actor_set_temperature(p, 0.7f);
    float *P = ac_actor_params(p);
    size_t n = ac_actor_n_params(p);
    ac_rng_t rng;
    ac_rng_seed(&rng, 11);
    for (size_t i = 0; i < n; i++) /* larger weights than the near-uniform start: real gradients */
        P[i] += 0.3f * (float)ac_rng_normal(&rng);
    double *w = malloc(sizeof(double) * s.len);
    float *logp = malloc(sizeof(float) * s.len), *g = malloc(sizeof(float) * s.len);
    float *dl = malloc(sizeof(float) * s.len);
    for (size_t i = 0; i < s.len; i++)
        w[i] = ac_rng_normal(&rng);
    loss(p, &s, w, logp);
    /* dL/dlogits of each decision: through its log-softmax */
    for (int k = 0; k < s.n_d; k++) {
        const ac_decision_t *x = &s.d[k];
        for (int j = 0; j < x->n; j++)
            g[x->off + j] = (float)w[x->off + j];
        ac_policy_log_softmax_backward(dl + x->off, g + x->off, logp + x->off, 1, x->n);
    }
    ac_actor_zero_grad(p);
    CHECK(ac_actor_backward(p, dl, &err) == 0);
    const float *G = ac_actor_grads(p);
    /* sampled parameters: every one with a gradient is a candidate, plus some without */
    int checked = 0, bad = 0, nonzero = 0, kinks = 0;
    double worst = 0;
    const double l0 = loss(p, &s, w, logp);
    for (size_t i = 0; i < n && checked < 400; i += 1 + (size_t)(ac_rng_u64(&rng) % (n / 300 + 1))) {
        float keep = P[i];
        double h = 1e-2;
        P[i] = keep + (float)h;
        double lp = loss(p, &s, w, logp);
        P[i] = keep - (float)h;
        double lm = loss(p, &s, w, logp);
        P[i] = keep;
        double fd = (lp - lm) / (2 * h), an = G[i];
        double err_abs = fabs(fd - an), lim = 2e-3 + 3e-2 * fabs(fd);
        nonzero += fabs(an) > 1e-6;
        /* a ReLU's kink between keep - h and keep + h: the two one-sided slopes disagree and the
         * central difference is neither; there is no derivative there to check */
        if (fabs((lp - l0) / h - (l0 - lm) / h) > 2 * lim && err_abs > lim) {
            kinks++;
            checked++;
            continue;
        }
        if (err_abs > lim) {
            if (bad < 5)
                fprintf(stderr, "  %s param %zu: analytic %.6g, finite differences %.6g\n", name, i, an, fd);
            bad++;
        }
        worst = err_abs > worst ? err_abs : worst;
        checked++;
    }
    fprintf(stderr, "%s %s: %d parameters checked (%d with a gradient, %d across a kink), %d off, worst |diff| %.3g\n",
            bad ? "FAIL" : "ok  ", name, checked, nonzero, kinks, bad, worst);
    if (bad)
        failures++;
    CHECK(kinks < checked / 20); /* a few: most parameters must be checked */
    CHECK(nonzero > checked / 10);
    free(w);
    free(logp);
    free(g);
    free(dl);
    ac_actor_destroy(p);
    free_setup(&s);
}

/* The log-probabilities are normalised, masked, and the acting path agrees with training's. */
static void test_acting_matches_training(const ac_actor_config_t *cfg)
{
    ac_err_t err = AC_ERR_INIT;
    setup_t s;
    make_decisions(&s);
    ac_actor_t *p = ac_actor_create(cfg, &err);
    float *logp = malloc(sizeof(float) * s.len), row[256];
    CHECK(ac_actor_forward(p, &s.S, 0, 3, s.d, s.n_d, logp, &err) == 0);
    for (int k = 0; k < s.n_d; k++) {
        const ac_decision_t *x = &s.d[k];
        double z = 0;
        for (int j = 0; j < x->n; j++)
            z += logp[x->off + j] == -INFINITY ? 0 : exp(logp[x->off + j]);
        CHECK(fabs(z - 1) < 1e-5);
    }
    CHECK(logp[s.d[1].off + 1] == -INFINITY); /* masked */
    CHECK(ac_actor_read(p, &s.S, 0, 3, &err) == 0);
    CHECK(ac_actor_tool_logp(p, 1, s.mask, row) == 0);
    for (int j = 0; j < 4; j++)
        CHECK(row[j] == logp[s.d[1].off + j] || (row[j] == -INFINITY && logp[s.d[1].off + j] == -INFINITY));
    CHECK(ac_actor_slot_logp(p, 1, 1, 1, s.cand[0], s.n_cand[0], s.prev, 1, row) == 0);
    for (int j = 0; j < s.n_cand[0]; j++)
        CHECK(fabsf(row[j] - logp[s.d[3].off + j]) < 1e-6f);
    /* zero weights: uniform over the legal tools and the candidates (the random baseline) */
    memset(ac_actor_params(p), 0, sizeof(float) * ac_actor_n_params(p));
    CHECK(ac_actor_read(p, &s.S, 0, 3, &err) == 0);
    CHECK(ac_actor_tool_logp(p, 1, s.mask, row) == 0 && fabsf(row[0] - logf(1.0f / 3)) < 1e-6f);
    CHECK(ac_actor_slot_logp(p, 1, 1, 0, s.cand[0], s.n_cand[0], NULL, 0, row) == 0 &&
          fabsf(row[0] - logf(1.0f / (float)s.n_cand[0])) < 1e-6f);
    free(logp);
    ac_actor_destroy(p);
    free_setup(&s);
}

/* The named tensors (docs/checkpoints.md's table, the SDK's reader) tile the parameters in order:
 * each starts where the one before ends, and the last ends at n_params. */
static void test_tensors_tile(const ac_actor_config_t *cfg, const char *what, int expect)
{
    ac_err_t err = AC_ERR_INIT;
    ac_actor_t *p = ac_actor_create(cfg, &err);
    CHECK(p != NULL);
    if (p == NULL)
        return;
    ac_actor_tensor_t t[AC_ACTOR_MAX_TENSORS];
    int n = ac_actor_tensors(p, t, AC_ACTOR_MAX_TENSORS), tiles = n == expect;
    size_t off = 0;
    for (int i = 0; i < n && i < AC_ACTOR_MAX_TENSORS; i++) {
        tiles &= t[i].offset == off && (t[i].ndim == 2 || t[i].rows == 1);
        off += (size_t)t[i].rows * (size_t)t[i].cols;
    }
    tiles &= off == ac_actor_n_params(p) && strcmp(t[0].name, "E") == 0 && strcmp(t[9].name, "Ec") == 0;
    if (cfg->kind == AC_ACTOR_SEQUENCE)
        tiles &= strcmp(t[17].name, "enc.0.ln1_g") == 0 && strcmp(t[n - 1].name, "enc.lnf_b") == 0;
    printf("%s  tensors of the %s policy tile its %zu parameters in order\n", tiles ? "ok  " : "FAIL", what,
           ac_actor_n_params(p));
    CHECK(tiles);
    ac_actor_destroy(p);
}

/* A tool result beyond float's range (a calculator multiplying its own results: 1e48, 1e300)
 * reads as the largest float, and the policy's log-probabilities stay finite. (Before, the
 * sequence policy's number features became inf and then NaN: training stopped at iteration 3.) */
static void test_huge_numbers(const ac_actor_config_t *cfg, const char *name)
{
    ac_err_t err = AC_ERR_INIT;
    ac_context_t c;
    ac_states_t S = {0};
    const char *nm[2] = {"a", "b"};
    json_t *args = json_pack("{s:f, s:f}", "a", 1e150, "b", -1e150);
    json_t *res = json_pack("{s:f}", "value", -1e300);
    ac_context_step_t st = {"multiply", nm, args, 2, res, NULL};
    int ok = ac_context_init(&c, 64, &err) == 0 && ac_context_build(&c, "multiply 1e150 by -1e150", &st, 1, NULL,
                                                                       NULL, &err) == 0;
    int finite_tokens = ok;
    for (int i = 0; ok && i < c.n; i++)
        finite_tokens &= isfinite(c.tok[i].value);
    ac_actor_t *p = ok ? ac_actor_create(cfg, &err) : NULL;
    float row[8];
    ok = p && ac_states_add(&S, &c, &err) == 0 && ac_actor_read(p, &S, 0, 1, &err) == 0 &&
         ac_actor_tool_logp(p, 0, NULL, row) == 0;
    int finite = ok;
    for (int j = 0; ok && j < cfg->n_tools; j++)
        finite &= isfinite(row[j]);
    printf("  %s: huge numbers -> tool log-probs %s\n", name, finite ? "finite" : "NOT finite");
    CHECK(finite_tokens);
    CHECK(finite);
    ac_actor_destroy(p);
    ac_states_free(&S);
    ac_context_free(&c);
    json_decref(args);
    json_decref(res);
    ac_err_clear(&err);
}

/* Integers parsed without strtof/strtod (the tokenizer's fast path) must read as those do: the
 * float of a token and the value of a number argument, bit for bit, for signs, -0, leading
 * zeros, values float or double cannot hold exactly, and the 9e15 bound of integer values. */
static void test_number_values(void)
{
    static const char *const texts[] = {
        "0 -0 7 007 -12 16777216 16777217 16777219 -16777217 123456789",
        "2147483647 2147483649 4294967297 9007199254740993 -9007199254740993",
        "8999999999999999 9000000000000000 9000000000000001 999999999999999999",
        "1000000000000000000 12345678901234567890 -999999999999999999 0000000000000000001"};
    ac_err_t err = AC_ERR_INIT;
    ac_context_t c;
    CHECK(ac_context_init(&c, 64, &err) == 0);
    int ok = 1, numbers = 0;
    for (size_t q = 0; q < sizeof texts / sizeof texts[0]; q++) {
        ok &= ac_context_build(&c, texts[q], NULL, 0, NULL, NULL, &err) == 0;
        for (int i = 0; ok && i < c.n; i++) {
            const ac_token_t *t = &c.tok[i];
            if (t->kind != AC_TOK_NUMBER)
                continue;
            numbers++;
            char text[32];
            snprintf(text, sizeof text, "%.*s", (int)t->len, c.text + t->start);
            float f = strtof(text, NULL);
            double d = strtod(text, NULL);
            json_t *v = ac_context_value(&c, AC_ARG_NUMBER, i, NULL);
            json_t *want = d == floor(d) && fabs(d) < 9e15 ? json_integer((json_int_t)d) : json_real(d);
            if (memcmp(&f, &t->value, sizeof f) != 0 || !json_equal(v, want)) {
                fprintf(stderr, "  '%s': value %.9g (strtof %.9g), argument %s\n", text, (double)t->value,
                        (double)f, json_is_integer(v) ? "integer" : "real");
                ok = 0;
            }
            json_decref(v);
            json_decref(want);
        }
    }
    CHECK(ok && numbers == 23, "integer tokens read as strtof and strtod read them");
    ac_context_free(&c);
}

int main(void)
{
    test_context();
    test_number_values();
    test_taken();
    test_episode_builds();
    ac_actor_config_t bag = {.kind = AC_ACTOR_BAG, .n_tools = 4, .n_args = {0, 2, 1, 0}, .max_tokens = 64,
                             .seed = 3, .n_buckets = 64, .d_emb = 8, .hidden = 8};
    ac_actor_config_t seq = {.kind = AC_ACTOR_SEQUENCE, .n_tools = 4, .n_args = {0, 2, 1, 0}, .max_tokens = 64,
                             .seed = 3, .n_buckets = 64, .d_emb = 8, .enc = {8, 2, 2, 16, 64}};
    ac_actor_config_t bag_now = bag; /* the cursor, its own mean of the words ahead, their stems */
    bag_now.reader = AC_ACTOR_READER_CURRENT;
    fd_check(&bag, "bag, reader 0");
    fd_check(&bag_now, "bag, the current reader");
    fd_check(&seq, "sequence");
    test_acting_matches_training(&bag);
    test_acting_matches_training(&seq);
    test_tensors_tile(&bag, "bag", 10);
    test_tensors_tile(&seq, "sequence", 10 + 7 + 12 * 2 + 2);
    test_huge_numbers(&bag, "bag");
    test_huge_numbers(&seq, "sequence");
    ac_err_t err = AC_ERR_INIT;
    ac_actor_config_t bad = seq;
    bad.enc.n_heads = 3;
    CHECK(ac_actor_create(&bad, &err) == NULL && err.code == AC_ERR_INVALID_PARAMS);
    ac_err_clear(&err);
    printf("test_actor: %d failed\n", failures);
    return failures ? 1 : 0;
}
