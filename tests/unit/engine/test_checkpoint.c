/* Checkpoints of the actor (both kinds): exact round trip; every corrupt byte, every truncation,
 * a wrong version, bad magic and forged sizes are refused; training resumed from a checkpoint is
 * bit-identical to an uninterrupted run; a version-1 checkpoint (the bag policy before argument
 * slots), written here by hand in the old layout, still loads. */
#include <stdlib.h>

#include "engine/actor.h"
#include "engine/blas.h"
#include "engine/checkpoint.h"
#include "engine/grpo.h"
#include "engine/policy.h"
#include "engine_check.h"

/* Three tools: add(a, b), negate(x), answer: 2 + 1 + 0 argument slots. */
static ac_actor_config_t config_of(int kind)
{
    ac_actor_config_t c = {.kind = kind, .reader = AC_ACTOR_READER_CURRENT, .n_tools = 3, .n_args = {2, 1, 0},
                           .max_tokens = 64, .seed = 77, .n_buckets = 64};
    c.d_emb = 8; /* the sequence policy reads the bag too */
    if (kind == AC_ACTOR_BAG)
        c.hidden = 8;
    else
        c.enc = (ac_encoder_config_t){8, 2, 2, 16, 64};
    return c;
}

/* One GRPO update whose every random choice comes from rng: the queries, the sampled tools and
 * arguments. 4 queries x 4 samples, one step each (a tool decision and one decision per argument). */
static int update(ac_actor_t *p, ac_actor_t *ref, ac_optim_t *o, ac_rng_t *rng)
{
    enum { Q = 4, G = 4, B = Q * G, MAXD = B * 3 };
    static const char *W[] = {"add", "negate", "answer", "the", "numbers", "please", "now", "quickly"};
    ac_err_t err = AC_ERR_INIT;
    ac_context_t ctx;
    ac_states_t S = {0};
    if (ac_context_init(&ctx, 64, &err) != 0)
        return -1;
    int target[Q], cand[B][64], n_cand[B];
    char text[128];
    for (int q = 0; q < Q; q++) {
        target[q] = (int)(ac_rng_u64(rng) % 3);
        snprintf(text, sizeof text, "%s %s %d and %d %s", W[3 + ac_rng_u64(rng) % 5], W[target[q]],
                 (int)(ac_rng_u64(rng) % 50), (int)(ac_rng_u64(rng) % 50) + 50, W[3 + ac_rng_u64(rng) % 5]);
        if (ac_context_build(&ctx, text, NULL, 0, NULL, NULL, &err) != 0)
            return -1;
        for (int g = 0; g < G; g++) {
            int s = ac_states_add(&S, &ctx, &err);
            n_cand[s] = ac_context_candidates(&ctx, AC_ARG_NUMBER, cand[s], 64);
        }
    }
    ac_context_free(&ctx);
    /* acting: the tool, then each argument among the numbers, sampled */
    ac_decision_t d[MAXD];
    ac_grpo_token_t tk[MAXD];
    ac_grpo_step_t st[B];
    ac_grpo_episode_t ep[B];
    int prev[B][AC_AGENT_MAX_ARGS], n_d = 0, rc = ac_actor_read(p, &S, 0, B, &err);
    size_t off = 0;
    float row[64], lt;
    const int A = ac_actor_config(p)->n_tools;
    for (int i = 0; i < B && rc == 0; i++) {
        rc |= ac_actor_tool_logp(p, i, NULL, row);
        int a = ac_policy_sample(row, A, 1.0f, rng, &lt);
        d[n_d] = (ac_decision_t){i, a, -1, off, A, NULL, NULL, NULL, 0, a};
        tk[n_d++] = (ac_grpo_token_t){.step = i, .off = off, .n = A, .chosen = a, .logp_old = lt};
        off += (size_t)A;
        int first = -1;
        for (int k = 0; k < ac_actor_config(p)->n_args[a]; k++) {
            rc |= ac_actor_slot_logp(p, i, a, k, cand[i], n_cand[i], prev[i], k, row);
            int c = ac_policy_sample(row, n_cand[i], 1.0f, rng, &lt);
            prev[i][k] = cand[i][c];
            first = k == 0 ? c : first;
            d[n_d] = (ac_decision_t){i, a, k, off, n_cand[i], NULL, cand[i], prev[i], k, c};
            tk[n_d++] = (ac_grpo_token_t){.step = i, .off = off, .n = n_cand[i], .chosen = c, .logp_old = lt};
            off += (size_t)n_cand[i];
        }
        st[i] = (ac_grpo_step_t){.episode = i};
        /* the query's tool, and for a tool with arguments its first number first */
        ep[i] = (ac_grpo_episode_t){.group = i / G, .reward = (a == target[i / G]) + 0.5f * (first == 0)};
    }
    float *logp = malloc(sizeof(float) * off), *ref_logp = malloc(sizeof(float) * off);
    float *dl = malloc(sizeof(float) * off);
    ac_grpo_config_t gc;
    ac_grpo_config_default(&gc);
    rc = rc || ac_actor_forward(ref, &S, 0, B, d, n_d, ref_logp, &err) ||
         ac_actor_forward(p, &S, 0, B, d, n_d, logp, &err) || ac_grpo_advantages(st, NULL, B, ep, B, &gc, &err) ||
         ac_grpo_loss(dl, NULL, logp, ref_logp, off, tk, n_d, st, B, ep, B, &gc, &err);
    if (!rc) {
        ac_actor_zero_grad(p);
        rc = ac_actor_backward(p, dl, &err);
        ac_optim_clip_grad_norm(ac_actor_grads(p), ac_actor_n_params(p), 1.0);
        ac_optim_step(o, ac_actor_params(p), ac_actor_grads(p));
    }
    if (rc)
        fprintf(stderr, "update: %s\n", err.message);
    free(logp);
    free(ref_logp);
    free(dl);
    ac_states_free(&S);
    ac_err_clear(&err);
    return rc ? -1 : 0;
}

/* The optimiser as the trainer sets it up: the actor's learning-rate groups (not checkpointed). */
static ac_optim_t *optim_for(ac_actor_t *p, const ac_optim_config_t *oc)
{
    ac_err_t err = AC_ERR_INIT;
    ac_optim_t *o = ac_optim_create(ac_actor_n_params(p), oc, &err);
    size_t ends[8];
    float scale[8];
    int n = ac_actor_lr_groups(p, ends, scale);
    if (o == NULL || ac_optim_set_lr_scale(o, ends, scale, n, &err) != 0) {
        fprintf(stderr, "optim: %s\n", err.message);
        ac_optim_destroy(o);
        return NULL;
    }
    return o;
}

static int make_state(ac_checkpoint_t *ck, int kind, int n_updates)
{
    ac_err_t err = AC_ERR_INIT;
    memset(ck, 0, sizeof *ck);
    ac_actor_config_t cfg = config_of(kind);
    ck->policy = ac_actor_create(&cfg, &err);
    ac_optim_config_t oc;
    ac_optim_config_default(&oc);
    oc.lr = 1e-4f;
    oc.weight_decay = 1e-4f;
    ck->optim = ck->policy ? optim_for(ck->policy, &oc) : NULL;
    ac_rng_seed(&ck->rng, 5);
    ac_actor_t *ref = ck->optim ? ac_actor_clone(ck->policy, &err) : NULL;
    if (ref == NULL)
        return -1;
    for (int i = 0; i < n_updates; i++)
        if (update(ck->policy, ref, ck->optim, &ck->rng)) {
            ac_actor_destroy(ref);
            return -1;
        }
    ck->iteration = (uint64_t)n_updates;
    ac_actor_destroy(ref);
    return 0;
}

static int same_config(const ac_actor_t *a, const ac_actor_t *b)
{
    uint8_t x[1024], y[1024];
    size_t n = ac_actor_config_size();
    if (n > sizeof x)
        return 0;
    ac_actor_config_write(ac_actor_config(a), x);
    ac_actor_config_write(ac_actor_config(b), y);
    return memcmp(x, y, n) == 0;
}

static int same_state(const ac_checkpoint_t *a, const ac_checkpoint_t *b)
{
    size_t n = ac_actor_n_params(a->policy);
    return ac_actor_n_params(b->policy) == n && same_config(a->policy, b->policy) &&
           memcmp(ac_actor_params(a->policy), ac_actor_params(b->policy), n * sizeof(float)) == 0 &&
           memcmp(&a->optim->cfg, &b->optim->cfg, sizeof a->optim->cfg) == 0 &&
           a->optim->step == b->optim->step && a->optim->n == b->optim->n &&
           memcmp(a->optim->m, b->optim->m, n * sizeof(float)) == 0 &&
           memcmp(a->optim->v, b->optim->v, n * sizeof(float)) == 0 &&
           memcmp(&a->rng, &b->rng, sizeof a->rng) == 0 && a->iteration == b->iteration;
}

static void free_state(ac_checkpoint_t *ck)
{
    ac_actor_destroy(ck->policy);
    ac_optim_destroy(ck->optim);
    memset(ck, 0, sizeof *ck);
}

/* ---- little-endian fields of a buffer, and its checksum recomputed ---------------------------- */

static void set_u32(uint8_t *p, uint32_t v)
{
    for (int k = 0; k < 4; k++)
        p[k] = (uint8_t)(v >> (8 * k));
}

static void set_u64(uint8_t *p, uint64_t v)
{
    for (int k = 0; k < 8; k++)
        p[k] = (uint8_t)(v >> (8 * k));
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int k = 0; k < 8; k++)
        v |= (uint64_t)p[k] << (8 * k);
    return v;
}

/* Recomputes the trailing CRC, so that only the field checks can refuse a forged field. */
static void reseal(uint8_t *buf, size_t len)
{
    set_u32(buf + len - 4, ac_checkpoint_crc32(buf, len - 4));
}

/* Whether loading buf (len) fails with INVALID_PARAMS and a message containing part. */
static int refused(const uint8_t *buf, size_t len, const char *part, const char *what)
{
    ac_err_t err = AC_ERR_INIT;
    ac_checkpoint_t back;
    int rc = ac_checkpoint_load(&back, buf, len, &err);
    int ok = rc == -1 && err.code == AC_ERR_INVALID_PARAMS && (part == NULL || strstr(err.message, part) != NULL);
    if (!ok)
        fprintf(stderr, "  %s: rc %d, '%s'\n", what, rc, err.message);
    if (rc == 0)
        ac_checkpoint_release(&back);
    ac_err_clear(&err);
    return ok;
}

enum { HEADER = 24 };

static void test_round_trip_and_corruption(int kind)
{
    ac_err_t err = AC_ERR_INIT;
    ac_checkpoint_t ck, back;
    if (make_state(&ck, kind, 3) != 0) {
        CHECK(!"make_state");
        return;
    }
    static uint8_t meta[] = "{\"job\":\"j-1\",\"note\":\"\\u0000 binary ok\"}\0\xff";
    ck.meta = meta;
    ck.meta_len = sizeof meta;
    uint8_t *buf, *buf2;
    size_t len, len2;
    CHECK(ac_checkpoint_save(&buf, &len, &ck, &err) == 0);
    CHECK(buf[8] == AC_CHECKPOINT_VERSION && AC_CHECKPOINT_VERSION == 2);
    CHECK(ac_checkpoint_load(&back, buf, len, &err) == 0);
    CHECK(same_state(&ck, &back));
    CHECK(ac_actor_config(back.policy)->kind == kind);
    CHECK(ac_actor_config(back.policy)->reader == AC_ACTOR_READER_CURRENT, "the policy reads as it was trained");
    CHECK(back.meta_len == sizeof meta && memcmp(back.meta, meta, sizeof meta) == 0);
    CHECK(ac_checkpoint_save(&buf2, &len2, &back, &err) == 0);
    CHECK(len2 == len && memcmp(buf, buf2, len) == 0); /* save(load(x)) == x, byte for byte */
    free(buf2);
    ac_checkpoint_release(&back);

    /* every single corrupt byte is caught (by the magic, version, length or CRC check) */
    int missed = 0;
    for (size_t i = 0; i < len; i++) {
        buf[i] ^= 0x5a;
        if (ac_checkpoint_load(&back, buf, len, &err) == 0) {
            missed++;
            ac_checkpoint_release(&back);
        } else if (err.code != AC_ERR_INVALID_PARAMS) {
            missed++;
        }
        buf[i] ^= 0x5a;
    }
    CHECK(missed == 0);
    /* every truncation, and one extra byte */
    for (size_t n = 0; n < len; n++)
        if (ac_checkpoint_load(&back, buf, n, &err) == 0) {
            missed++;
            ac_checkpoint_release(&back);
        }
    CHECK(missed == 0);
    CHECK(refused(buf, len - 1, "truncated", "one byte short"));
    uint8_t *longer = malloc(len + 1);
    memcpy(longer, buf, len);
    longer[len] = 0;
    CHECK(refused(longer, len + 1, NULL, "one byte more"));
    free(longer);

    /* forged fields, with the CRC recomputed so that only the field checks can refuse them */
    uint8_t *f = malloc(len);
    const size_t cs = ac_actor_config_size(), n = ac_actor_n_params(ck.policy);
    const size_t at_n = HEADER + cs, at_optim_n = at_n + 8 + 4 * n + 5 * 4 + 8;
    const size_t at_meta_len = at_optim_n + 8 + 8 * n + 4 * 8 + 8;
    CHECK(get_u64(buf + at_n) == n && get_u64(buf + at_optim_n) == n && at_meta_len + 4 + sizeof meta + 4 == len);
#define FORGE(stmt, part, what)                                                                               \
    do {                                                                                                      \
        memcpy(f, buf, len);                                                                                  \
        stmt;                                                                                                 \
        reseal(f, len);                                                                                       \
        CHECK(refused(f, len, part, what));                                                                   \
    } while (0)
    FORGE(f[8] = 3, "version 3 not supported", "version 3");
    FORGE(set_u32(f + 12, 1), "unknown flags", "flags");
    FORGE(set_u64(f + 16, get_u64(f + 16) + 4), "truncated", "body length past the buffer");
    FORGE(set_u64(f + 16, get_u64(f + 16) - 4), "trailing bytes", "body length short of the buffer");
    FORGE(set_u64(f + at_n, (uint64_t)1 << 40), "do not fit", "2^40 parameters");
    FORGE(set_u64(f + at_n, n + 1), "parameters stored, config implies", "one parameter more");
    FORGE(set_u64(f + at_n, n - 1), "parameters stored, config implies", "one parameter fewer");
    FORGE(set_u64(f + at_optim_n, n - 1), "optimizer state does not match", "optimizer of another size");
    FORGE(set_u64(f + at_optim_n - 8, (uint64_t)-1), "optimizer state does not match", "negative Adam step");
    FORGE(set_u32(f + at_meta_len, (uint32_t)sizeof meta + 1), "metadata length", "metadata one byte longer");
    FORGE(set_u32(f + at_meta_len, 0xffffffffu), "metadata length", "metadata of 4 GiB");
    FORGE(set_u32(f + HEADER + 12 + 4, 0), NULL, "a policy of 0 tools"); /* the config's n_tools */
    FORGE(set_u32(f + HEADER + 12, 7), NULL, "a policy kind 7");
    FORGE(set_u32(f + HEADER, 9), "policy config version 9", "the actor config's own version");
    /* the config's n_args of tool 0 (9 ints in): another shape, so another parameter count */
    FORGE(set_u32(f + HEADER + 12 + 4 * 9, 1), "parameters stored, config implies", "a tool with one argument fewer");
    /* a version-2 body labelled version 1 is read as the old layout and refused, not misread */
    FORGE(f[8] = 1, NULL, "a version-2 body labelled version 1");
#undef FORGE
    free(f);

    memcpy(buf, "PK\x03\x04", 4);
    CHECK(refused(buf, len, "magic", "bad magic"));
    /* the CRC is the standard one (zlib's crc32 of "123456789" is 0xCBF43926) */
    CHECK(ac_checkpoint_crc32("123456789", 9) == 0xCBF43926u);
    ac_err_clear(&err);
    free(buf);
    ck.meta = NULL;
    ck.meta_len = 0;
    free_state(&ck);
}

static void test_resume_is_bit_identical(int kind)
{
    enum { K = 3, TOTAL = 7 };
    ac_err_t err = AC_ERR_INIT;
    ac_checkpoint_t straight, resumed;
    CHECK(make_state(&straight, kind, TOTAL) == 0);

    /* K updates, checkpoint, throw everything away, load, the rest */
    CHECK(make_state(&resumed, kind, K) == 0);
    uint8_t *buf;
    size_t len;
    CHECK(ac_checkpoint_save(&buf, &len, &resumed, &err) == 0);
    free_state(&resumed);
    ac_checkpoint_t ck;
    CHECK(ac_checkpoint_load(&ck, buf, len, &err) == 0);
    free(buf);
    if (ck.policy == NULL)
        return;
    /* the optimiser's learning-rate groups come from the policy, as the trainer sets them */
    ac_optim_t *o = optim_for(ck.policy, &ck.optim->cfg);
    memcpy(o->m, ck.optim->m, sizeof(float) * o->n);
    memcpy(o->v, ck.optim->v, sizeof(float) * o->n);
    o->step = ck.optim->step;
    ac_optim_destroy(ck.optim);
    ck.optim = o;
    /* the reference policy is the initial one: rebuilt from the stored config and seed */
    ac_actor_config_t cfg = config_of(kind);
    ac_actor_t *ref = ac_actor_create(ac_actor_config(ck.policy), &err);
    ac_actor_t *init = ac_actor_create(&cfg, &err);
    size_t n = ac_actor_n_params(init);
    CHECK(ac_actor_n_params(ref) == n && memcmp(ac_actor_params(ref), ac_actor_params(init), sizeof(float) * n) == 0);
    for (uint64_t it = ck.iteration; it < TOTAL; it++)
        CHECK(update(ck.policy, ref, ck.optim, &ck.rng) == 0);
    ck.iteration = TOTAL;
    CHECK(same_state(&straight, &ck));
    /* and it did train: the parameters moved */
    CHECK(memcmp(ac_actor_params(ck.policy), ac_actor_params(init), sizeof(float) * n) != 0);
    ac_actor_destroy(ref);
    ac_actor_destroy(init);
    ac_checkpoint_release(&ck);
    free_state(&straight);
}

/* ---- version 1 -------------------------------------------------------------------------------- */

/* A version-1 checkpoint, byte by byte as the bag policy before argument slots wrote it
 * (checkpoint.h): the header; the policy config as ten i32 (n_buckets, d_emb, n_hidden,
 * hidden[4], activation, n_actions, max_features) and the seed u64; n_params u64 and the
 * parameters (E (n_buckets, d_emb), W0 (d_emb, H), b0 (H), W_out (H, A), b_out (A)); the
 * optimiser (lr, beta1, beta2, eps, weight_decay f32; step i64; n u64; m, v); the rng (4 u64);
 * the iteration u64; meta_len u32 and the meta; the CRC-32. */
typedef struct v1 {
    int n_buckets, d_emb, n_hidden, hidden, activation, n_actions;
    uint64_t seed;
    size_t n; /* parameters */
    float *params, *m, *v;
    int64_t step;
    uint64_t rng[4], iteration;
    const char *meta;
} v1_t;

static size_t v1_params(const v1_t *x)
{
    return (size_t)x->n_buckets * x->d_emb + (size_t)x->d_emb * x->hidden + x->hidden +
           (size_t)x->hidden * x->n_actions + x->n_actions;
}

static uint8_t *v1_write(const v1_t *x, size_t *len)
{
    size_t meta_len = strlen(x->meta);
    size_t body = 10 * 4 + 8 + 8 + 4 * x->n + 5 * 4 + 8 + 8 + 8 * x->n + 4 * 8 + 8 + 4 + meta_len;
    *len = HEADER + body + 4;
    uint8_t *buf = malloc(*len), *p = buf;
    memcpy(p, "ACCKPT\r\n", 8);
    set_u32(p + 8, 1);
    set_u32(p + 12, 0);
    set_u64(p + 16, body);
    p += HEADER;
    int32_t cfg[10] = {x->n_buckets, x->d_emb, x->n_hidden, x->hidden, x->n_hidden > 1 ? x->hidden : 0, 0, 0,
                       x->activation, x->n_actions, 64 /* max_features */};
    for (int i = 0; i < 10; i++, p += 4)
        set_u32(p, (uint32_t)cfg[i]);
    set_u64(p, x->seed), p += 8;
    set_u64(p, x->n), p += 8;
    for (size_t i = 0; i < x->n; i++, p += 4)
        memcpy(p, &x->params[i], 4); /* little-endian hosts: the f32 bits as they are */
    float oc[5] = {1e-4f, 0.9f, 0.999f, 1e-8f, 0.0f};
    for (int i = 0; i < 5; i++, p += 4)
        memcpy(p, &oc[i], 4);
    set_u64(p, (uint64_t)x->step), p += 8;
    set_u64(p, x->n), p += 8;
    for (size_t i = 0; i < x->n; i++, p += 4)
        memcpy(p, &x->m[i], 4);
    for (size_t i = 0; i < x->n; i++, p += 4)
        memcpy(p, &x->v[i], 4);
    for (int i = 0; i < 4; i++, p += 8)
        set_u64(p, x->rng[i]);
    set_u64(p, x->iteration), p += 8;
    set_u32(p, (uint32_t)meta_len), p += 4;
    memcpy(p, x->meta, meta_len), p += meta_len;
    set_u32(p, ac_checkpoint_crc32(buf, (size_t)(p - buf)));
    return buf;
}

static void test_version_1(void)
{
    const uint16_t one = 1;
    uint8_t little;
    memcpy(&little, &one, 1);
    CHECK(little == 1); /* v1_write copies float bits as they are in memory */
    v1_t x = {.n_buckets = 64, .d_emb = 8, .n_hidden = 1, .hidden = 16, .activation = AC_POLICY_RELU,
              .n_actions = 5, .seed = 1234, .step = 9, .rng = {1, 2, 3, 4}, .iteration = 6,
              .meta = "{\"job\":\"old\"}"};
    x.n = v1_params(&x);
    x.params = malloc(sizeof(float) * x.n);
    x.m = malloc(sizeof(float) * x.n);
    x.v = malloc(sizeof(float) * x.n);
    ac_rng_t rng;
    ac_rng_seed(&rng, 99);
    for (size_t i = 0; i < x.n; i++) {
        x.params[i] = (float)ac_rng_normal(&rng);
        x.m[i] = (float)ac_rng_normal(&rng) * 1e-3f;
        x.v[i] = (float)(i + 1) * 1e-6f;
    }
    size_t len;
    uint8_t *buf = v1_write(&x, &len);
    ac_err_t err = AC_ERR_INIT;
    ac_checkpoint_t ck;
    CHECK(ac_checkpoint_load(&ck, buf, len, &err) == 0);
    if (ck.policy == NULL) {
        fprintf(stderr, "  version 1: %s\n", err.message);
        free(buf);
        return;
    }
    const ac_actor_config_t *c = ac_actor_config(ck.policy);
    CHECK(c->kind == AC_ACTOR_BAG && c->n_tools == 5 && c->n_buckets == 64 && c->d_emb == 8 && c->hidden == 16 &&
          c->seed == 1234 && c->max_tokens == AC_ACTOR_DEFAULT_MAX_TOKENS);
    CHECK(c->reader == AC_ACTOR_READER_V0, "an old checkpoint reads without the cursor, as it was trained");
    int no_args = 1;
    for (int a = 0; a < AC_AGENT_MAX_ACTIONS; a++)
        no_args &= c->n_args[a] == 0;
    CHECK(no_args); /* the old policy chose tools only */
    /* its parameters are the first ones of today's bag layout, bit for bit */
    size_t n = ac_actor_n_params(ck.policy);
    CHECK(n > x.n && memcmp(ac_actor_params(ck.policy), x.params, sizeof(float) * x.n) == 0);
    /* the rest (the argument heads and the candidates' embeddings) are the seed's */
    ac_actor_config_t want = {.kind = AC_ACTOR_BAG, .n_tools = 5, .max_tokens = AC_ACTOR_DEFAULT_MAX_TOKENS,
                              .seed = 1234, .n_buckets = 64, .d_emb = 8, .hidden = 16};
    ac_actor_t *fresh = ac_actor_create(&want, &err);
    CHECK(fresh && ac_actor_n_params(fresh) == n &&
          memcmp(ac_actor_params(ck.policy) + x.n, ac_actor_params(fresh) + x.n, sizeof(float) * (n - x.n)) == 0);
    CHECK(fresh && memcmp(ac_actor_params(fresh), x.params, sizeof(float) * x.n) != 0); /* ... not by chance */
    /* the optimiser's moments of the stored parameters, zero for the new ones; the rest as stored */
    int fresh_moments = 1;
    for (size_t i = x.n; i < n; i++)
        fresh_moments &= ck.optim->m[i] == 0.0f && ck.optim->v[i] == 0.0f;
    CHECK(ck.optim->n == n && memcmp(ck.optim->m, x.m, sizeof(float) * x.n) == 0 &&
          memcmp(ck.optim->v, x.v, sizeof(float) * x.n) == 0 && fresh_moments);
    CHECK(ck.optim->step == 9 && ck.optim->cfg.lr == 1e-4f && ck.optim->cfg.beta2 == 0.999f);
    CHECK(ck.rng.s[0] == 1 && ck.rng.s[3] == 4 && ck.iteration == 6 && ck.meta_len == strlen(x.meta) &&
          memcmp(ck.meta, x.meta, ck.meta_len) == 0);
    /* it is saved as version 2 and reloads as it was */
    uint8_t *buf2;
    size_t len2;
    ac_checkpoint_t back;
    CHECK(ac_checkpoint_save(&buf2, &len2, &ck, &err) == 0 && buf2[8] == 2);
    CHECK(ac_checkpoint_load(&back, buf2, len2, &err) == 0 && same_state(&ck, &back));
    ac_checkpoint_release(&back);
    free(buf2);
    ac_actor_destroy(fresh);
    ac_checkpoint_release(&ck);

    /* every truncation and every corrupt byte of a version-1 buffer refused */
    int missed = 0;
    for (size_t k = 0; k < len; k++) {
        if (ac_checkpoint_load(&back, buf, k, &err) == 0) {
            missed++;
            ac_checkpoint_release(&back);
        }
        buf[k] ^= 0x5a;
        if (ac_checkpoint_load(&back, buf, len, &err) == 0) {
            missed++;
            ac_checkpoint_release(&back);
        }
        buf[k] ^= 0x5a;
    }
    CHECK(missed == 0);
    free(buf);
    /* what version 1 could hold and this build cannot read: refused with the reason */
    v1_t two = x;
    two.n_hidden = 2; /* hidden = {16, 16}: another parameter count, but the layer count is the reason */
    buf = v1_write(&two, &len);
    CHECK(refused(buf, len, "version 1 with 2 hidden layers", "version 1, two layers"));
    free(buf);
    v1_t tanh_ = x;
    tanh_.activation = AC_POLICY_TANH;
    buf = v1_write(&tanh_, &len);
    CHECK(refused(buf, len, "cannot be read", "version 1, tanh"));
    free(buf);
    v1_t forged = x;
    forged.n = x.n - 1;
    buf = v1_write(&forged, &len);
    CHECK(refused(buf, len, "parameters stored, config implies", "version 1, one parameter fewer"));
    free(buf);
    free(x.params);
    free(x.m);
    free(x.v);
    ac_err_clear(&err);
}

static void test_bad_input(void)
{
    ac_err_t err = AC_ERR_INIT;
    ac_checkpoint_t ck = {0};
    uint8_t *buf;
    size_t len;
    CHECK(ac_checkpoint_save(&buf, &len, &ck, &err) == -1 && err.code == AC_ERR_INVALID_PARAMS);
    /* an optimiser of another size than the policy */
    CHECK(make_state(&ck, AC_ACTOR_BAG, 0) == 0);
    ac_optim_config_t oc;
    ac_optim_config_default(&oc);
    ac_optim_t *small = ac_optim_create(10, &oc, &err), *keep = ck.optim;
    ck.optim = small;
    CHECK(ac_checkpoint_save(&buf, &len, &ck, &err) == -1 && err.code == AC_ERR_INVALID_PARAMS);
    ck.optim = keep;
    ac_optim_destroy(small);
    ck.meta_len = 5; /* no meta */
    CHECK(ac_checkpoint_save(&buf, &len, &ck, &err) == -1 && err.code == AC_ERR_INVALID_PARAMS);
    ck.meta_len = 0;
    free_state(&ck);
    ac_checkpoint_t back;
    CHECK(ac_checkpoint_load(&back, (const uint8_t *)"", 0, &err) == -1);
    ac_checkpoint_release(NULL);
    /* a feature set newer than this build: refused by name, not read some other way */
    ac_actor_config_t newer = config_of(AC_ACTOR_BAG);
    newer.reader = AC_ACTOR_READER_CURRENT + 1;
    CHECK(ac_actor_create(&newer, &err) == NULL && err.data &&
              strcmp(json_string_value(json_object_get(err.data, "field")), "reader") == 0,
          "a feature set newer than the build is refused by name");
    ac_err_clear(&err);
}

int main(void)
{
    ac_blas_set_threads(1); /* resumed == uninterrupted is promised on one BLAS thread */
    test_round_trip_and_corruption(AC_ACTOR_BAG);
    test_round_trip_and_corruption(AC_ACTOR_SEQUENCE);
    test_resume_is_bit_identical(AC_ACTOR_BAG);
    test_resume_is_bit_identical(AC_ACTOR_SEQUENCE);
    test_version_1();
    test_bad_input();
    return test_result("test_checkpoint");
}
