/* `actor_dump FILE`: one GRPO loss step of the actor (engine/actor.h) on fixed inputs, written as
 * JSON for tests/ref/test_actor_torch.py, which rebuilds the same model in PyTorch on the same
 * weights and compares.
 *
 * Per case (bag; sequence as initialised; sequence with perturbed weights): the config, every
 * parameter, the states' raw tokens (hashes, kinds, segments, ages, flags, positions, ordinals,
 * values: what context.c rendered from the fixed queries and histories below), the decisions
 * (tool, then argument slots over candidate tokens, with the earlier slots' choices), the GRPO
 * batch (steps, episodes, advantages, behaviour and reference log-probs, the loss config), and
 * what this build computed: the log-probabilities, the loss, the per-parameter gradient of the
 * loss, and the intermediate vectors (token inputs X, encoder outputs Y, state vectors h,
 * candidate vectors) so that a mismatch can be traced to the layer that makes it.
 *
 * It reads the actor's workspace for those intermediates, hence the internal header: a test
 * program, not a user of the actor. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/actor_internal.h"
#include "engine/grpo.h"

#define N_STATES 6
#define MAX_DEC 32
#define CTX_TOKENS 64

typedef struct batch {
    ac_context_t ctx[N_STATES];
    ac_states_t S;
    ac_decision_t d[MAX_DEC];
    int n_d;
    size_t len;
    int cand[MAX_DEC][CTX_TOKENS];
    int prev[MAX_DEC][2];
    uint8_t mask[N_STATES][4];
} batch_t;

/* Six states from fixed episodes: bare queries, calls with results (numbers, words, identifiers
 * in rows), an observation, agent candidates; numbers negative, fractional and large. */
static int make_states(batch_t *b, ac_err_t *err)
{
    const char *ab[2] = {"a", "b"}, *vu[2] = {"value", "unit"};
    /* 22 / 11 answered 2, which multiply took: the query's 2 of "divide by 2" is still ahead (reader
     * 4: the cursor stays on the 5, the context telling by the values, as for any history given
     * without origins; reader 3 put it on that 2) */
    json_t *div = json_pack("{s:i, s:i}", "a", 22, "b", 11), *div_r = json_pack("{s:i}", "value", 2);
    json_t *mul = json_pack("{s:i, s:i}", "a", 2, "b", 5), *mul_r = json_pack("{s:i}", "value", 10);
    json_t *conv = json_pack("{s:f, s:s}", "value", 12.5, "unit", "cm");
    json_t *conv_r = json_pack("{s:f, s:s}", "value", 381.0, "unit", "cm");
    json_t *sub = json_pack("{s:i, s:i}", "a", 20, "b", 9), *sub_r = json_pack("{s:i}", "value", 11);
    json_t *cands = json_pack("[s, s, i]", "ORD-17", "red shoes", 42);
    /* a search by name whose row of ORD-5 names the shoes, then a read of ORD-5: the cursor (reader
     * 3) passes "shoes" */
    const char *text[1] = {"text"}, *oid[1] = {"order_id"};
    json_t *search = json_pack("{s:s}", "text", "Alice");
    json_t *search_r = json_pack("{s:[s, s]}", "orders", "ORD-5 shoes, Alice", "ORD-17 hat, Alice");
    json_t *read = json_pack("{s:s}", "order_id", "ORD-5"), *read_r = json_pack("{s:i, s:s}", "amount", 42, "order", "ORD-5");
    ac_context_step_t rows[2] = {{"search", text, search, 1, search_r, NULL}, {"read", oid, read, 1, read_r, NULL}};
    json_t *cands2 = json_pack("[s, s]", "ORD-1042", "ORD-77");
    ac_context_step_t taken[2] = {{"divide", ab, div, 2, div_r, NULL}, {"multiply", ab, mul, 2, mul_r, NULL}};
    ac_context_step_t two[2] = {{"convert", vu, conv, 2, conv_r, NULL}, {"subtract", ab, sub, 2, sub_r, NULL}};
    int rc = 0;
    for (int i = 0; i < N_STATES && rc == 0; i++)
        rc = ac_context_init(&b->ctx[i], CTX_TOKENS, err);
    rc = rc || ac_context_build(&b->ctx[0], "Start with 7, add 5, then multiply by 3.", NULL, 0, NULL, NULL, err);
    rc = rc || ac_context_build(&b->ctx[1], "Start with 22, divide by 11, then multiply by 5, then divide by 2.", taken,
                                2, NULL, NULL, err);
    rc = rc || ac_context_build(&b->ctx[2], "Alice here: refund the shoes, then exchange order ORD-17 for a hat",
                                rows, 2, "customer said: hurry", cands, err);
    rc = rc || ac_context_build(&b->ctx[3], "convert 12.5 feet to cm, then subtract 9 from 20", two, 2, NULL, NULL,
                                err);
    rc = rc || ac_context_build(&b->ctx[4], "What is -3.5 times 0.25 plus 1000000?", NULL, 0, NULL, NULL, err);
    rc = rc || ac_context_build(&b->ctx[5], "look up the last order of Alice Smith", NULL, 0, "orders: ORD-1042 ORD-77",
                                cands2, err);
    for (int i = 0; i < N_STATES && rc == 0; i++)
        if (ac_states_add(&b->S, &b->ctx[i], err) != i)
            rc = -1;
    json_decref(div), json_decref(div_r), json_decref(mul), json_decref(mul_r), json_decref(conv), json_decref(conv_r);
    json_decref(sub), json_decref(sub_r), json_decref(cands), json_decref(cands2);
    json_decref(search), json_decref(search_r), json_decref(read), json_decref(read_r);
    return rc;
}

/* Each state is one step: the tool (some masked), then its argument slots. Tools: 0 and 3 take
 * none, 1 takes two numbers, 2 one candidate (or identifier). Choices drawn from rng. */
static void make_decisions(batch_t *b, ac_rng_t *rng)
{
    static const int tool_of[N_STATES] = {1, 1, 2, 1, 1, 2};
    static const uint8_t masks[N_STATES][4] = {{1, 1, 1, 1}, {1, 1, 1, 0}, {0, 1, 1, 1},
                                               {1, 1, 0, 1}, {1, 1, 1, 1}, {1, 0, 1, 1}};
    size_t off = 0;
    for (int s = 0; s < N_STATES; s++) {
        int tool = tool_of[s];
        memcpy(b->mask[s], masks[s], 4);
        b->d[b->n_d++] = (ac_decision_t){s, tool, -1, off, 4, s == 0 ? NULL : b->mask[s], NULL, NULL, 0, tool};
        off += 4;
        int kind = tool == 1 ? AC_ARG_NUMBER : (b->ctx[s].n_spans > 0 ? AC_ARG_CANDIDATE : AC_ARG_ID);
        int n_slots = tool == 1 ? 2 : 1;
        int chosen_tok[2] = {0, 0};
        for (int k = 0; k < n_slots; k++) {
            int i = b->n_d;
            int n = ac_context_candidates(&b->ctx[s], kind, b->cand[i], CTX_TOKENS);
            int pick = (int)(ac_rng_u64(rng) % (uint64_t)n);
            memcpy(b->prev[i], chosen_tok, sizeof chosen_tok);
            b->d[b->n_d++] = (ac_decision_t){s, tool, k, off, n, NULL, b->cand[i], b->prev[i], k, pick};
            chosen_tok[k] = b->cand[i][pick];
            off += (size_t)n;
        }
    }
    b->len = off;
}

static void free_batch(batch_t *b)
{
    for (int i = 0; i < N_STATES; i++)
        ac_context_free(&b->ctx[i]);
    ac_states_free(&b->S);
}

static void put_floats(FILE *f, const char *name, const float *x, size_t n)
{
    fprintf(f, "\"%s\": [", name);
    for (size_t i = 0; i < n; i++) {
        if (isinf(x[i]))
            fprintf(f, "%s%s", i ? ", " : "", x[i] < 0 ? "-Infinity" : "Infinity");
        else
            fprintf(f, "%s%.9g", i ? ", " : "", x[i]);
    }
    fprintf(f, "],\n");
}

static void put_ints(FILE *f, const char *name, const int *x, int n)
{
    fprintf(f, "\"%s\": [", name);
    for (int i = 0; i < n; i++)
        fprintf(f, "%s%d", i ? ", " : "", x[i]);
    fprintf(f, "]");
}

static int dump_case(FILE *f, ac_actor_config_t cfg, float perturb, const char *name, int last)
{
    ac_err_t err = AC_ERR_INIT;
    batch_t *b = calloc(1, sizeof *b);
    ac_actor_t *p = NULL;
    float *logp = NULL, *ref = NULL, *dl = NULL, *cv = NULL;
    ac_grpo_token_t tk[MAX_DEC];
    ac_grpo_step_t st[N_STATES];
    ac_grpo_episode_t ep[4] = {{0, 1.0f, 0}, {0, 0.2f, 0}, {1, 0.0f, 0}, {1, 0.7f, 1}};
    static const int ep_of[N_STATES] = {0, 0, 1, 2, 3, 3};
    int rc = -1;
    ac_rng_t rng;
    ac_rng_seed(&rng, 17);
    if (b == NULL || make_states(b, &err) != 0)
        goto out;
    make_decisions(b, &rng);
    if ((p = ac_actor_create(&cfg, &err)) == NULL)
        goto out;
    ac_actor_set_temperature(p, 0.7f);
    float *P = ac_actor_params(p);
    const size_t np = ac_actor_n_params(p);
    for (size_t i = 0; perturb > 0 && i < np; i++) /* every path carries weight, not only the words */
        P[i] += perturb * (float)ac_rng_normal(&rng);
    logp = malloc(sizeof(float) * b->len), ref = malloc(sizeof(float) * b->len);
    dl = malloc(sizeof(float) * b->len);
    const int H = p->H, n_tok = (int)b->S.n_tok;
    cv = malloc(sizeof(float) * (size_t)n_tok * H);
    if (!logp || !ref || !dl || !cv) {
        ac_err_set(&err, AC_ERR_INTERNAL, "out of memory");
        goto out;
    }
    if (ac_actor_forward(p, &b->S, 0, N_STATES, b->d, b->n_d, logp, &err) != 0)
        goto out;
    /* the candidate vectors of every token (bag's, plus the encoder's output for sequence) */
    for (int s = 0; s < N_STATES; s++)
        for (int t = b->S.off[s]; t < b->S.off[s + 1]; t++) {
            memcpy(cv + (size_t)t * H, ac_actor_bag_cand(p, s, t - b->S.off[s]), sizeof(float) * (size_t)H);
            if (cfg.kind == AC_ACTOR_SEQUENCE)
                ac_actor_seq_cand(p, s, t - b->S.off[s], cv + (size_t)t * H);
        }

    /* the GRPO batch: behaviour log-probs off the current ones by up to +-0.3 (some ratios
     * clipped), a reference policy off by N(0, 0.3) per option */
    ac_grpo_config_t g;
    ac_grpo_config_default(&g);
    g.entropy_coef = 0.01f;
    g.mask_truncated = 0;
    for (int s = 0; s < N_STATES; s++)
        st[s] = (ac_grpo_step_t){ep_of[s], 0.0f, 0.0f};
    if (ac_grpo_advantages(st, NULL, N_STATES, ep, 4, &g, &err) != 0)
        goto out;
    for (size_t i = 0; i < b->len; i++)
        ref[i] = isinf(logp[i]) ? logp[i] : logp[i] + 0.3f * (float)ac_rng_normal(&rng);
    for (int i = 0; i < b->n_d; i++) {
        const ac_decision_t *x = &b->d[i];
        float old = logp[x->off + (size_t)x->chosen] + 0.6f * (ac_rng_uniform(&rng) - 0.5f);
        tk[i] = (ac_grpo_token_t){x->state, x->off, x->n, x->chosen, old, 0.0f};
    }
    ac_grpo_metrics_t m;
    if (ac_grpo_loss(dl, &m, logp, ref, b->len, tk, b->n_d, st, N_STATES, ep, 4, &g, &err) != 0)
        goto out;

    fprintf(f, "{\"name\": \"%s\", \"kind\": \"%s\", \"reader\": %d, \"n_tools\": %d, ", name,
            cfg.kind == AC_ACTOR_SEQUENCE ? "sequence" : "bag", cfg.reader, cfg.n_tools);
    put_ints(f, "n_args", cfg.n_args, cfg.n_tools);
    fprintf(f, ", \"n_buckets\": %d, \"d_emb\": %d, \"hidden\": %d, \"H\": %d, \"d_model\": %d, \"n_heads\": %d, "
               "\"n_layers\": %d, \"d_ff\": %d, \"temperature\": %.9g, \"n_params\": %zu,\n",
            cfg.n_buckets, cfg.d_emb, cfg.hidden, H, cfg.enc.d_model, cfg.enc.n_heads, cfg.enc.n_layers, cfg.enc.d_ff,
            ac_actor_temperature(p), np);
    fprintf(f, "\"grpo\": {\"clip_eps_low\": %.9g, \"clip_eps_high\": %.9g, \"kl_beta\": %.9g, "
               "\"entropy_coef\": %.9g},\n",
            g.clip_eps_low, g.clip_eps_high, g.kl_beta, g.entropy_coef);
    fprintf(f, "\"states\": [\n");
    for (int s = 0; s < N_STATES; s++) {
        fprintf(f, "  {\"text\": \"");
        for (const char *c = b->ctx[s].text; *c; c++) /* the rendering, for a reader of a failure */
            fputs(*c == '\n' ? " | " : (*c == '"' || *c == '\\') ? "?" : (char[2]){*c, 0}, f);
        fprintf(f, "\", \"tokens\": [");
        for (int t = b->S.off[s]; t < b->S.off[s + 1]; t++) {
            const ac_token_t *x = &b->S.tok[t];
            fprintf(f, "%s\n    {\"hash\": \"%" PRIu64 "\", \"pre\": %" PRIu32 ", \"suf\": %" PRIu32
                       ", \"kind\": %d, \"seg\": %d, \"age\": %d, \"flags\": %d, \"pos\": %d, \"ord\": %d, "
                       "\"value\": %.9g}",
                    t > b->S.off[s] ? "," : "", x->hash, x->pre, x->suf, x->kind, x->seg, x->age, x->flags, x->pos,
                    x->ord, (double)x->value);
        }
        fprintf(f, "]}%s\n", s + 1 < N_STATES ? "," : "");
    }
    fprintf(f, "],\n\"decisions\": [\n");
    for (int i = 0; i < b->n_d; i++) {
        const ac_decision_t *x = &b->d[i];
        fprintf(f, "  {\"state\": %d, \"tool\": %d, \"slot\": %d, \"off\": %zu, \"n\": %d, \"chosen\": %d, ",
                x->state, x->tool, x->slot, x->off, x->n, x->chosen);
        int mk[4] = {1, 1, 1, 1};
        for (int a = 0; x->mask && a < 4; a++)
            mk[a] = x->mask[a];
        put_ints(f, "mask", mk, x->slot < 0 ? 4 : 0);
        fprintf(f, ", ");
        put_ints(f, "cand", x->cand, x->slot < 0 ? 0 : x->n);
        fprintf(f, ", ");
        put_ints(f, "prev", x->prev, x->n_prev);
        fprintf(f, ", \"step\": %d, \"logp_old\": %.9g}%s\n", tk[i].step, tk[i].logp_old, i + 1 < b->n_d ? "," : "");
    }
    fprintf(f, "],\n\"steps\": [");
    for (int s = 0; s < N_STATES; s++)
        fprintf(f, "%s{\"episode\": %d, \"advantage\": %.9g}", s ? ", " : "", st[s].episode, st[s].advantage);
    fprintf(f, "],\n");
    put_floats(f, "params", P, np);
    put_floats(f, "ref_logp", ref, b->len);
    put_floats(f, "logp", logp, b->len);
    put_floats(f, "dlogits", dl, b->len);
    put_floats(f, "h", p->h, (size_t)N_STATES * H);
    put_floats(f, "cand_vec", cv, (size_t)n_tok * H);
    if (cfg.kind == AC_ACTOR_SEQUENCE) {
        put_floats(f, "X", p->X, (size_t)n_tok * H);
        put_floats(f, "Y", p->Y, (size_t)n_tok * H);
    }
    ac_actor_zero_grad(p);
    if (ac_actor_backward(p, dl, &err) != 0)
        goto out;
    put_floats(f, "grads", ac_actor_grads(p), np);
    fprintf(f, "\"loss\": %.17g}%s\n", m.loss, last ? "" : ",");
    rc = 0;
out:
    if (rc != 0)
        fprintf(stderr, "actor_dump %s: %s\n", name, err.message);
    ac_err_clear(&err);
    ac_actor_destroy(p);
    if (b != NULL)
        free_batch(b);
    free(b);
    free(logp), free(ref), free(dl), free(cv);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: actor_dump FILE  (JSON for tests/ref/test_actor_torch.py)\n");
        return 2;
    }
    FILE *f = fopen(argv[1], "w");
    if (f == NULL) {
        perror(argv[1]);
        return 1;
    }
    ac_actor_config_t bag = {.kind = AC_ACTOR_BAG, .reader = AC_ACTOR_READER_CURRENT, .n_tools = 4,
                             .n_args = {0, 2, 1, 0}, .max_tokens = 64, .seed = 5, .n_buckets = 128, .d_emb = 8,
                             .hidden = 16};
    ac_actor_config_t seq = {.kind = AC_ACTOR_SEQUENCE, .reader = AC_ACTOR_READER_CURRENT, .n_tools = 4,
                             .n_args = {0, 2, 1, 0}, .max_tokens = 64, .seed = 7, .n_buckets = 128, .d_emb = 8,
                             .enc = {16, 2, 2, 32, 64}};
    /* as checkpoints from before the cursor, before stems, before result rows, before the
     * numbers' sources, before the history, and before clauses, read */
    ac_actor_config_t bag0 = bag, bag1 = bag, bag2 = bag, bag3 = bag, bag4 = bag, bag5 = bag;
    bag0.reader = AC_ACTOR_READER_V0;
    bag1.reader = AC_ACTOR_READER_CURSOR;
    bag2.reader = AC_ACTOR_READER_STEMS;
    bag3.reader = AC_ACTOR_READER_ROWS;
    bag4.reader = AC_ACTOR_READER_TAKEN;
    bag5.reader = AC_ACTOR_READER_HISTORY;
    fprintf(f, "[\n");
    int rc = dump_case(f, bag, 0.3f, "bag", 0);
    rc = rc || dump_case(f, bag0, 0.3f, "bag-reader0", 0);
    rc = rc || dump_case(f, bag1, 0.3f, "bag-reader1", 0);
    rc = rc || dump_case(f, bag2, 0.3f, "bag-reader2", 0);
    rc = rc || dump_case(f, bag3, 0.3f, "bag-reader3", 0);
    rc = rc || dump_case(f, bag4, 0.3f, "bag-reader4", 0);
    rc = rc || dump_case(f, bag5, 0.3f, "bag-reader5", 0);
    rc = rc || dump_case(f, seq, 0.0f, "sequence-init", 0);
    rc = rc || dump_case(f, seq, 0.2f, "sequence-perturbed", 1);
    fprintf(f, "]\n");
    if (fclose(f) != 0)
        rc = -1;
    return rc ? 1 : 0;
}
