/* Checkpoints: exact round trip; every corrupt byte, every truncation, a wrong version and bad
 * magic are refused; training resumed from a checkpoint is bit-identical to an uninterrupted run. */
#include <stdlib.h>

#include "engine/blas.h"
#include "engine/checkpoint.h"
#include "engine_check.h"
#include "engine/grpo.h"

static const ac_policy_config_t CFG = {.n_buckets = 128, .d_emb = 8, .n_hidden = 2, .hidden = {16, 12},
                                       .activation = AC_POLICY_RELU, .n_actions = 4,
                                       .max_features = 16, .seed = 77};

/* One GRPO update whose every random choice comes from rng: observations, sampled actions.
 * 4 queries x 4 samples, one step each. */
static int update(ac_policy_t *p, const ac_policy_t *ref, ac_optim_t *o, ac_rng_t *rng)
{
    enum { Q = 4, G = 4, B = Q * G, NA = 4 };
    static const char *W[] = {"add", "mul", "sub", "div", "the", "numbers", "please", "now"};
    ac_err_t err = AC_ERR_INIT;
    ac_policy_batch_t b;
    if (ac_policy_batch_init(&b, &p->cfg, B, &err))
        return -1;
    int target[Q];
    char text[64];
    for (int q = 0; q < Q; q++) {
        target[q] = (int)(ac_rng_u64(rng) % NA);
        int n = snprintf(text, sizeof text, "%s %s %s", W[4 + ac_rng_u64(rng) % 4], W[target[q]],
                         W[4 + ac_rng_u64(rng) % 4]);
        for (int g = 0; g < G; g++)
            ac_policy_batch_add(&b, text, (size_t)n, &err);
    }
    float logp[B * NA], ref_logp[B * NA], dl[B * NA];
    ac_grpo_step_t st[B];
    ac_grpo_token_t tk[B];
    ac_grpo_episode_t ep[B];
    int rc = ac_policy_forward((ac_policy_t *)ref, ref_logp, &b, NULL, &err) ||
             ac_policy_forward(p, logp, &b, NULL, &err);
    for (int i = 0; i < B && !rc; i++) {
        float lt;
        int a = ac_policy_sample(logp + i * NA, NA, 1.0f, rng, &lt);
        st[i] = (ac_grpo_step_t){.episode = i};
        tk[i] = (ac_grpo_token_t){.step = i, .off = (size_t)i * NA, .n = NA, .chosen = a, .logp_old = lt};
        ep[i] = (ac_grpo_episode_t){.group = i / G, .reward = a == target[i / G]};
    }
    ac_grpo_config_t gc;
    ac_grpo_config_default(&gc);
    rc = rc || ac_grpo_advantages(st, NULL, B, ep, B, &gc, &err) ||
         ac_grpo_loss(dl, NULL, logp, ref_logp, (size_t)B * NA, tk, B, st, B, ep, B, &gc, &err);
    if (!rc) {
        ac_policy_zero_grad(p);
        rc = ac_policy_backward(p, dl, &b, &err);
        ac_optim_clip_grad_norm(p->grads, p->n_params, 1.0);
        ac_optim_step(o, p->params, p->grads);
    }
    ac_policy_batch_free(&b);
    return rc ? -1 : 0;
}

static int make_state(ac_checkpoint_t *ck, int n_updates)
{
    ac_err_t err = AC_ERR_INIT;
    memset(ck, 0, sizeof *ck);
    ck->policy = ac_policy_create(&CFG, &err);
    ac_optim_config_t oc;
    ac_optim_config_default(&oc);
    oc.lr = 0.01f;
    oc.weight_decay = 1e-4f;
    ck->optim = ac_optim_create(ck->policy->n_params, &oc, &err);
    ac_rng_seed(&ck->rng, 5);
    ac_policy_t *ref = ac_policy_clone(ck->policy, &err);
    for (int i = 0; i < n_updates; i++)
        if (update(ck->policy, ref, ck->optim, &ck->rng))
            return -1;
    ck->iteration = (uint64_t)n_updates;
    ac_policy_destroy(ref);
    return 0;
}

static int same_state(const ac_checkpoint_t *a, const ac_checkpoint_t *b)
{
    size_t n = a->policy->n_params;
    return b->policy->n_params == n && memcmp(&a->policy->cfg, &b->policy->cfg, sizeof a->policy->cfg) == 0 &&
           memcmp(a->policy->params, b->policy->params, n * sizeof(float)) == 0 &&
           memcmp(&a->optim->cfg, &b->optim->cfg, sizeof a->optim->cfg) == 0 &&
           a->optim->step == b->optim->step && a->optim->n == b->optim->n &&
           memcmp(a->optim->m, b->optim->m, n * sizeof(float)) == 0 &&
           memcmp(a->optim->v, b->optim->v, n * sizeof(float)) == 0 &&
           memcmp(&a->rng, &b->rng, sizeof a->rng) == 0 && a->iteration == b->iteration;
}

static void free_state(ac_checkpoint_t *ck)
{
    ac_policy_destroy(ck->policy);
    ac_optim_destroy(ck->optim);
    memset(ck, 0, sizeof *ck);
}

static void test_round_trip_and_corruption(void)
{
    ac_err_t err = AC_ERR_INIT;
    ac_checkpoint_t ck, back;
    CHECK(make_state(&ck, 3) == 0);
    static uint8_t meta[] = "{\"job\":\"j-1\",\"note\":\"\\u0000 binary ok\"}\0\xff";
    ck.meta = meta;
    ck.meta_len = sizeof meta;
    uint8_t *buf, *buf2;
    size_t len, len2;
    CHECK(ac_checkpoint_save(&buf, &len, &ck, &err) == 0);
    CHECK(ac_checkpoint_load(&back, buf, len, &err) == 0);
    CHECK(same_state(&ck, &back));
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
    CHECK(ac_checkpoint_load(&back, buf, len - 1, &err) == -1 && strstr(err.message, "truncated"));
    uint8_t *longer = malloc(len + 1);
    memcpy(longer, buf, len);
    longer[len] = 0;
    CHECK(ac_checkpoint_load(&back, longer, len + 1, &err) == -1);
    free(longer);

    /* wrong version, with the CRC recomputed so that only the version check can refuse it */
    buf[8] = 2;
    uint32_t crc = ac_checkpoint_crc32(buf, len - 4);
    for (int k = 0; k < 4; k++)
        buf[len - 4 + k] = (uint8_t)(crc >> (8 * k));
    CHECK(ac_checkpoint_load(&back, buf, len, &err) == -1 && strstr(err.message, "version 2"));
    buf[8] = 1;
    memcpy(buf, "PK\x03\x04", 4);
    CHECK(ac_checkpoint_load(&back, buf, len, &err) == -1 && strstr(err.message, "magic"));
    /* the CRC is the standard one (zlib's crc32 of "123456789" is 0xCBF43926) */
    CHECK(ac_checkpoint_crc32("123456789", 9) == 0xCBF43926u);
    ac_err_clear(&err);
    free(buf);
    ck.meta = NULL;
    ck.meta_len = 0;
    free_state(&ck);
}

static void test_resume_is_bit_identical(void)
{
    enum { K = 3, TOTAL = 7 };
    ac_err_t err = AC_ERR_INIT;
    ac_checkpoint_t straight, resumed;
    CHECK(make_state(&straight, TOTAL) == 0);

    /* K updates, checkpoint, throw everything away, load, the rest */
    CHECK(make_state(&resumed, K) == 0);
    uint8_t *buf;
    size_t len;
    CHECK(ac_checkpoint_save(&buf, &len, &resumed, &err) == 0);
    free_state(&resumed);
    ac_checkpoint_t ck;
    CHECK(ac_checkpoint_load(&ck, buf, len, &err) == 0);
    free(buf);
    /* the reference policy is the initial one: rebuilt from the stored config and seed */
    ac_policy_t *ref = ac_policy_create(&ck.policy->cfg, &err);
    ac_policy_t *init = ac_policy_create(&CFG, &err);
    CHECK(memcmp(ref->params, init->params, sizeof(float) * ref->n_params) == 0);
    for (uint64_t it = ck.iteration; it < TOTAL; it++)
        CHECK(update(ck.policy, ref, ck.optim, &ck.rng) == 0);
    ck.iteration = TOTAL;
    CHECK(same_state(&straight, &ck));
    /* and it did train: the parameters moved */
    CHECK(memcmp(ck.policy->params, init->params, sizeof(float) * init->n_params) != 0);
    ac_policy_destroy(ref);
    ac_policy_destroy(init);
    ac_checkpoint_release(&ck);
    free_state(&straight);
}

static void test_bad_input(void)
{
    ac_err_t err = AC_ERR_INIT;
    ac_checkpoint_t ck = {0};
    uint8_t *buf;
    size_t len;
    CHECK(ac_checkpoint_save(&buf, &len, &ck, &err) == -1 && err.code == AC_ERR_INVALID_PARAMS);
    ac_checkpoint_t back;
    CHECK(ac_checkpoint_load(&back, (const uint8_t *)"", 0, &err) == -1);
    ac_checkpoint_release(NULL);
    ac_err_clear(&err);
}

int main(void)
{
    ac_blas_set_threads(1); /* resumed == uninterrupted is promised on one BLAS thread */
    test_round_trip_and_corruption();
    test_resume_is_bit_identical();
    test_bad_input();
    return test_result("test_checkpoint");
}
