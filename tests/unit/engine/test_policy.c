/* Policy: featurizer, fast forward vs the naive double reference, masked softmax, every
 * parameter gradient vs central finite differences, determinism, sampling. */
#include <stdlib.h>

#include "engine/blas.h"
#include "engine_check.h"
#include "engine/policy.h"

static const char *TEXTS[] = {
    "Please ADD 3 and 5, then report.",
    "mul 7 by 6",
    "", /* no words: zero features, the bag is the zero vector */
    "search the web for the capital of France; then answer",
    "add add add",
    "tool result: 42 (ok) -- next step?",
};
#define N_TEXTS (int)(sizeof TEXTS / sizeof *TEXTS)

static ac_policy_config_t small_config(int activation)
{
    ac_policy_config_t c = {0};
    c.n_buckets = 64; /* small: embedding rows are shared between states, as in real use */
    c.d_emb = 8;
    c.n_hidden = 2;
    c.hidden[0] = 12;
    c.hidden[1] = 10;
    c.activation = activation;
    c.n_actions = 5;
    c.max_features = 16;
    c.seed = 42;
    return c;
}

static void test_featurizer(void)
{
    int a[64], b[64];
    int na = ac_policy_featurize(a, 64, "Hello, World!", 13, 1 << 20);
    int nb = ac_policy_featurize(b, 64, "hello world", 11, 1 << 20);
    /* unigram hello, unigram world, bigram "hello world"; case and punctuation ignored */
    CHECK(na == 3 && nb == 3);
    CHECK(memcmp(a, b, sizeof(int) * 3) == 0);
    CHECK(a[2] != a[0] && a[2] != a[1]); /* the bigram is its own feature */
    int c[64];
    int nc = ac_policy_featurize(c, 64, "world hello", 11, 1 << 20);
    CHECK(nc == 3 && c[0] == a[1] && c[1] == a[0]); /* same unigrams */
    CHECK(c[2] != a[2]);                            /* bigrams are ordered */
    /* "hello" alone: its unigram is the same id as inside the bigram text */
    int d[4];
    CHECK(ac_policy_featurize(d, 4, "hello", 5, 1 << 20) == 1 && d[0] == a[0]);
    /* determinism across calls, and the cap */
    const char *t = "a b c d e f g h i j k l m n o p";
    int e1[64], e2[64];
    int n1 = ac_policy_featurize(e1, 64, t, strlen(t), 97);
    int n2 = ac_policy_featurize(e2, 64, t, strlen(t), 97);
    CHECK(n1 == 16 + 15 && n2 == n1 && memcmp(e1, e2, sizeof(int) * n1) == 0);
    CHECK(ac_policy_featurize(e1, 5, t, strlen(t), 97) == 5);
    for (int i = 0; i < n2; i++)
        CHECK(e2[i] >= 0 && e2[i] < 97);
    CHECK(ac_policy_featurize(e1, 8, "  ,;  ", 6, 97) == 0);
}

static int make_batch(ac_policy_batch_t *b, const ac_policy_config_t *c, int n)
{
    ac_err_t err = AC_ERR_INIT;
    if (ac_policy_batch_init(b, c, 2, &err) != 0) /* tiny capacity: exercises growth */
        return -1;
    for (int i = 0; i < n; i++)
        if (ac_policy_batch_add(b, TEXTS[i % N_TEXTS], strlen(TEXTS[i % N_TEXTS]), &err) != i)
            return -1;
    return 0;
}

/* mask (n, A): a varied pattern, at least one legal action per state */
static void make_mask(uint8_t *mask, int n, int A)
{
    for (int i = 0; i < n; i++)
        for (int a = 0; a < A; a++)
            mask[i * A + a] = (uint8_t)(a == i % A || (i * 7 + a * 3) % 4 != 0);
}

static void test_forward_vs_naive(int activation, const char *label)
{
    ac_err_t err = AC_ERR_INIT;
    ac_policy_config_t c = small_config(activation);
    c.n_buckets = 512;
    c.d_emb = 24;
    c.hidden[0] = 40;
    c.hidden[1] = 33;
    c.n_actions = 7;
    ac_policy_t *p = ac_policy_create(&c, &err);
    CHECK(p != NULL);
    int N = 37, A = c.n_actions;
    /* Perturb biases so that they are exercised (they start at 0). */
    for (int l = 0; l < p->n_layers; l++)
        for (int o = 0; o < p->dim[l + 1]; o++)
            p->params[p->off_b[l] + o] = 0.1f * (float)((o * 37 + l) % 11 - 5);
    ac_policy_batch_t b;
    CHECK(make_batch(&b, &c, N) == 0);
    uint8_t *mask = malloc((size_t)N * A);
    make_mask(mask, N, A);
    float *logp = malloc(sizeof(float) * N * A);
    double *ref = malloc(sizeof(double) * N * A);
    CHECK(ac_policy_forward(p, logp, &b, mask, &err) == 0);
    CHECK(ac_policy_forward_ref(p, ref, &b, mask, &err) == 0);
    /* Compare finite entries; the -inf pattern must be identical. */
    double *fa = malloc(sizeof(double) * N * A), *fb = malloc(sizeof(double) * N * A);
    int same_inf = 1;
    for (int i = 0; i < N * A; i++) {
        int ia = logp[i] == -INFINITY, ib = ref[i] == -INFINITY;
        same_inf &= ia == ib && ia == !mask[i];
        fa[i] = ia ? 0 : logp[i];
        fb[i] = ib ? 0 : ref[i];
    }
    CHECK(same_inf);
    char name[64];
    snprintf(name, sizeof name, "logp sgemm/%s", label);
    check_close_d(fa, fb, (size_t)N * A, 1e-5, 2e-6, name);
    /* masked softmax: probabilities of legal actions sum to 1, illegal ones are exactly 0 */
    double worst = 0;
    for (int i = 0; i < N; i++) {
        double s = 0;
        for (int a = 0; a < A; a++)
            s += expf(logp[i * A + a]); /* expf(-inf) == 0 exactly */
        worst = fmax(worst, fabs(s - 1));
    }
    CHECK(worst < 1e-6);
    /* a state with no legal action is an error, not NaNs */
    memset(mask + 3 * A, 0, A);
    CHECK(ac_policy_forward(p, logp, &b, mask, &err) == -1 && err.code == AC_ERR_INVALID_PARAMS);
    CHECK(strstr(err.message, "state 3") != NULL);
    ac_err_clear(&err);
    free(fa);
    free(fb);
    free(mask);
    free(logp);
    free(ref);
    ac_policy_batch_free(&b);
    ac_policy_destroy(p);
}

/* L(theta) = sum over legal (i, a) of w[i, a] * logp[i, a], in double via the reference forward. */
static double loss_ref(const ac_policy_t *p, const ac_policy_batch_t *b, const uint8_t *mask,
                       const double *w, double *scratch)
{
    ac_policy_forward_ref(p, scratch, b, mask, NULL);
    double L = 0;
    int n = b->n * p->cfg.n_actions;
    for (int i = 0; i < n; i++)
        if (mask[i])
            L += w[i] * scratch[i];
    return L;
}

static void test_gradients(int activation, const char *label)
{
    ac_err_t err = AC_ERR_INIT;
    ac_policy_config_t c = small_config(activation);
    ac_policy_t *p = ac_policy_create(&c, &err);
    /* A larger output layer than the init's 0.1 scale, so hidden-layer gradients are not tiny
     * compared to the float rounding of the backward pass. */
    for (int i = 0; i < p->dim[p->n_layers - 1] * c.n_actions; i++)
        p->params[p->off_w[p->n_layers - 1] + i] *= 10.0f;
    /* Non-zero biases: with b = 0 the empty-text state (bag = 0) sits exactly on the ReLU kink,
     * where a central difference measures half a slope and no gradient is "right". */
    for (int l = 0; l < p->n_layers; l++)
        for (int o = 0; o < p->dim[l + 1]; o++)
            p->params[p->off_b[l] + o] = 0.05f * (float)((o * 37 + l) % 11 - 5) + 0.01f;
    int N = N_TEXTS + 2, A = c.n_actions;
    ac_policy_batch_t b;
    CHECK(make_batch(&b, &c, N) == 0);
    uint8_t *mask = malloc((size_t)N * A);
    make_mask(mask, N, A);
    double *w = malloc(sizeof(double) * N * A), *scratch = malloc(sizeof(double) * N * A);
    float *wf = malloc(sizeof(float) * N * A), *logp = malloc(sizeof(float) * N * A);
    float *dlogits = malloc(sizeof(float) * N * A);
    for (int i = 0; i < N * A; i++) {
        w[i] = ((i * 7919) % 13 - 6) / 6.0; /* fixed, mixed-sign weights */
        wf[i] = (float)w[i];
    }
    /* analytic: forward, dL/dlogp = w, through the masked softmax, backward */
    CHECK(ac_policy_forward(p, logp, &b, mask, &err) == 0);
    ac_policy_log_softmax_backward(dlogits, wf, logp, N, A);
    ac_policy_zero_grad(p);
    CHECK(ac_policy_backward(p, dlogits, &b, &err) == 0);

    /* numeric: central differences on every parameter. The reference forward is double, so the
     * only error left is O(h^2) truncation; h is the actual float step taken. */
    float *fd = malloc(sizeof(float) * p->n_params);
    for (size_t k = 0; k < p->n_params; k++) {
        float orig = p->params[k];
        float up = orig + 1e-3f, dn = orig - 1e-3f;
        p->params[k] = up;
        double Lp = loss_ref(p, &b, mask, w, scratch);
        p->params[k] = dn;
        double Lm = loss_ref(p, &b, mask, w, scratch);
        p->params[k] = orig;
        fd[k] = (float)((Lp - Lm) / ((double)up - (double)dn));
    }
    /* tensor by tensor */
    char name[64];
    size_t n_emb = (size_t)c.n_buckets * c.d_emb;
    snprintf(name, sizeof name, "dE/%s", label);
    check_close(p->grads, fd, n_emb, 1e-3, 2e-6, name);
    for (int l = 0; l < p->n_layers; l++) {
        const char *kind = l == p->n_layers - 1 ? "out" : "hid";
        snprintf(name, sizeof name, "dW%d(%s)/%s", l, kind, label);
        check_close(p->grads + p->off_w[l], fd + p->off_w[l], (size_t)p->dim[l] * p->dim[l + 1], 1e-3,
                    2e-6, name);
        snprintf(name, sizeof name, "db%d(%s)/%s", l, kind, label);
        check_close(p->grads + p->off_b[l], fd + p->off_b[l], (size_t)p->dim[l + 1], 1e-3, 2e-6, name);
    }
    /* The gradient must not be trivially zero. */
    double gn = 0;
    for (size_t k = 0; k < p->n_params; k++)
        gn += fabs(fd[k]);
    CHECK(gn > 1.0);
    /* Backward accumulates: a second backward doubles the gradient. */
    float *g1 = malloc(sizeof(float) * p->n_params);
    memcpy(g1, p->grads, sizeof(float) * p->n_params);
    CHECK(ac_policy_backward(p, dlogits, &b, &err) == 0);
    for (size_t k = 0; k < p->n_params; k++)
        g1[k] *= 2;
    snprintf(name, sizeof name, "accumulate/%s", label);
    check_close(p->grads, g1, p->n_params, 1e-6, 1e-6, name); /* column sums re-associate */
    free(g1);
    free(fd);
    free(w);
    free(scratch);
    free(wf);
    free(logp);
    free(dlogits);
    free(mask);
    ac_policy_batch_free(&b);
    ac_policy_destroy(p);
}

static void test_determinism_and_clone(void)
{
    ac_err_t err = AC_ERR_INIT;
    ac_policy_config_t c = small_config(AC_POLICY_TANH);
    ac_policy_t *p1 = ac_policy_create(&c, &err), *p2 = ac_policy_create(&c, &err);
    CHECK(memcmp(p1->params, p2->params, sizeof(float) * p1->n_params) == 0);
    c.seed = 43;
    ac_policy_t *p3 = ac_policy_create(&c, &err);
    CHECK(memcmp(p1->params, p3->params, sizeof(float) * p1->n_params) != 0);
    ac_policy_t *cl = ac_policy_clone(p1, &err);
    CHECK(cl && cl->n_params == p1->n_params &&
          memcmp(cl->params, p1->params, sizeof(float) * p1->n_params) == 0);
    int N = 6, A = c.n_actions;
    ac_policy_batch_t b;
    CHECK(make_batch(&b, &c, N) == 0);
    float x[6 * 5], y[6 * 5], z[6 * 5];
    CHECK(ac_policy_forward(p1, x, &b, NULL, &err) == 0);
    CHECK(ac_policy_forward(p1, y, &b, NULL, &err) == 0);
    CHECK(ac_policy_forward(cl, z, &b, NULL, &err) == 0);
    CHECK(memcmp(x, y, sizeof x) == 0 && memcmp(x, z, sizeof x) == 0);
    /* initial policy is near uniform (output layer scaled down) */
    for (int i = 0; i < N * A; i++)
        CHECK(fabsf(x[i] - logf(1.0f / A)) < 0.5f);
    /* backward after a forward of another batch size is refused */
    ac_policy_batch_t b2;
    CHECK(make_batch(&b2, &c, 3) == 0);
    CHECK(ac_policy_backward(p1, x, &b2, &err) == -1);
    ac_err_clear(&err);
    /* a batch made for another bucket count is refused */
    ac_policy_config_t c2 = c;
    c2.n_buckets = 100;
    ac_policy_batch_t b3;
    CHECK(ac_policy_batch_init(&b3, &c2, 4, &err) == 0);
    ac_policy_batch_add(&b3, "x", 1, &err);
    CHECK(ac_policy_forward(p1, x, &b3, NULL, &err) == -1 && err.code == AC_ERR_INVALID_PARAMS);
    ac_err_clear(&err);
    /* NaN weights propagate as NaN log-probs (GRPO then reports them), not as "no legal action" */
    p1->params[p1->off_b[p1->n_layers - 1]] = NAN;
    CHECK(ac_policy_forward(p1, x, &b, NULL, &err) == 0 && isnan(x[0]));
    /* config validation names the field */
    c2.n_hidden = 9;
    CHECK(ac_policy_create(&c2, &err) == NULL && err.code == AC_ERR_INVALID_PARAMS);
    ac_err_clear(&err);
    ac_policy_batch_free(&b);
    ac_policy_batch_free(&b2);
    ac_policy_batch_free(&b3);
    ac_policy_destroy(p1);
    ac_policy_destroy(p2);
    ac_policy_destroy(p3);
    ac_policy_destroy(cl);
    ac_policy_destroy(NULL);
}

static void test_sampling(void)
{
    /* logp of [0.1, 0, 0.6, 0.3, 0] with actions 1 and 4 illegal */
    float logp[5] = {logf(0.1f), -INFINITY, logf(0.6f), logf(0.3f), -INFINITY};
    ac_rng_t rng;
    ac_rng_seed(&rng, 7);
    int counts[5] = {0};
    int n = 20000, ok_logp = 1;
    for (int i = 0; i < n; i++) {
        float lt;
        int a = ac_policy_sample(logp, 5, 1.0f, &rng, &lt);
        counts[a]++;
        ok_logp &= lt == logp[a]; /* at T = 1 the stored behaviour logp is the row's value */
    }
    CHECK(ok_logp);
    CHECK(counts[1] == 0 && counts[4] == 0);
    /* 20000 draws: the binomial std of a frequency is <= 0.0035; 0.015 is > 4 sigma */
    CHECK(fabs(counts[0] / (double)n - 0.1) < 0.015);
    CHECK(fabs(counts[2] / (double)n - 0.6) < 0.015);
    CHECK(fabs(counts[3] / (double)n - 0.3) < 0.015);
    CHECK(ac_policy_greedy(logp, 5) == 2);
    float lt;
    CHECK(ac_policy_sample(logp, 5, 0.0f, &rng, &lt) == 2 && lt == 0.0f);
    /* tempered: T = 2 gives q ~ sqrt(p); the returned logp is that distribution's */
    int a = ac_policy_sample(logp, 5, 2.0f, &rng, &lt);
    double z = sqrt(0.1) + sqrt(0.6) + sqrt(0.3);
    double p_exp[5] = {0.1, 0, 0.6, 0.3, 0};
    check_scalar(lt, log(sqrt(p_exp[a]) / z), 1e-5, 1e-6, "tempered logp");
    float none[3] = {-INFINITY, -INFINITY, -INFINITY};
    CHECK(ac_policy_sample(none, 3, 1.0f, &rng, &lt) == -1 && ac_policy_greedy(none, 3) == -1);
}

int main(void)
{
    ac_blas_set_threads(1); /* bit-determinism checks are for one BLAS thread */
    test_featurizer();
    test_forward_vs_naive(AC_POLICY_TANH, "tanh");
    test_forward_vs_naive(AC_POLICY_RELU, "relu");
    test_gradients(AC_POLICY_TANH, "tanh");
    test_gradients(AC_POLICY_RELU, "relu");
    test_determinism_and_clone();
    test_sampling();
    return test_result("test_policy");
}
