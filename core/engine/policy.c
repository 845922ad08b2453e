#include "engine/policy.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- featurizer ------------------------------------------------------------------------- */

#define FNV_BASIS 14695981039346656037ULL
#define FNV_PRIME 1099511628211ULL

static inline uint64_t fnv_byte(uint64_t h, unsigned char c) { return (h ^ c) * FNV_PRIME; }

/* FNV-1a's low bits are weak for small moduli: a 64-bit finaliser spreads every input bit. */
static inline int bucket(uint64_t h, int n_buckets)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return (int)(h % (uint64_t)n_buckets);
}

static inline int is_word_byte(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80;
}

int ac_policy_featurize(int *ids, int cap, const char *text, size_t len, int n_buckets)
{
    const uint64_t uni_basis = fnv_byte(FNV_BASIS, 'U'); /* tags keep "a" and "a b" apart */
    const uint64_t bi_basis = fnv_byte(FNV_BASIS, 'B');
    int n = 0, have_prev = 0;
    uint64_t prev_prefix = 0; /* FNV of 'B', previous word, ' ': the start of the next bigram */
    size_t i = 0;
    while (i < len && n < cap) {
        while (i < len && !is_word_byte((unsigned char)text[i]))
            i++;
        if (i == len)
            break;
        uint64_t hu = uni_basis, hb = prev_prefix, hnext = bi_basis;
        for (; i < len && is_word_byte((unsigned char)text[i]); i++) {
            unsigned char c = (unsigned char)text[i];
            if (c >= 'A' && c <= 'Z')
                c = (unsigned char)(c - 'A' + 'a');
            hu = fnv_byte(hu, c);
            hb = fnv_byte(hb, c);
            hnext = fnv_byte(hnext, c);
        }
        ids[n++] = bucket(hu, n_buckets);
        if (have_prev && n < cap)
            ids[n++] = bucket(hb, n_buckets);
        prev_prefix = fnv_byte(hnext, ' ');
        have_prev = 1;
    }
    return n;
}

static int check_config(const ac_policy_config_t *c, ac_err_t *err)
{
    if (c->n_buckets < 1)
        return ac_err_field(err, AC_ERR_INVALID_PARAMS, "n_buckets", "must be >= 1");
    if (c->d_emb < 1)
        return ac_err_field(err, AC_ERR_INVALID_PARAMS, "d_emb", "must be >= 1");
    if (c->n_hidden < 0 || c->n_hidden > AC_POLICY_MAX_HIDDEN)
        return ac_err_field(err, AC_ERR_INVALID_PARAMS, "n_hidden", "must be in 0..%d",
                            AC_POLICY_MAX_HIDDEN);
    for (int l = 0; l < c->n_hidden; l++)
        if (c->hidden[l] < 1)
            return ac_err_field(err, AC_ERR_INVALID_PARAMS, "hidden", "layer %d width must be >= 1", l);
    if (c->activation != AC_POLICY_TANH && c->activation != AC_POLICY_RELU)
        return ac_err_field(err, AC_ERR_INVALID_PARAMS, "activation", "must be tanh (0) or relu (1)");
    if (c->n_actions < 1)
        return ac_err_field(err, AC_ERR_INVALID_PARAMS, "n_actions", "must be >= 1");
    if (c->max_features < 1)
        return ac_err_field(err, AC_ERR_INVALID_PARAMS, "max_features", "must be >= 1");
    /* Keep every index computation inside int/size_t comfortably. */
    if ((double)c->n_buckets * c->d_emb > 1e9)
        return ac_err_field(err, AC_ERR_INVALID_PARAMS, "n_buckets", "n_buckets * d_emb too large");
    return 0;
}

static int batch_grow(ac_policy_batch_t *b, int cap, ac_err_t *err)
{
    if (cap <= b->_cap)
        return 0;
    int *offsets = realloc(b->offsets, sizeof(int) * ((size_t)cap + 1));
    if (offsets == NULL)
        return ac_err_set(err, AC_ERR_INTERNAL, "policy batch: out of memory");
    b->offsets = offsets;
    int *ids = realloc(b->ids, sizeof(int) * (size_t)cap * b->max_features);
    if (ids == NULL)
        return ac_err_set(err, AC_ERR_INTERNAL, "policy batch: out of memory");
    b->ids = ids;
    b->_cap = cap;
    return 0;
}

int ac_policy_batch_init(ac_policy_batch_t *b, const ac_policy_config_t *cfg, int cap, ac_err_t *err)
{
    memset(b, 0, sizeof *b);
    if (check_config(cfg, err) != 0)
        return -1;
    b->n_buckets = cfg->n_buckets;
    b->max_features = cfg->max_features;
    if (batch_grow(b, cap < 1 ? 1 : cap, err) != 0) {
        ac_policy_batch_free(b);
        return -1;
    }
    b->offsets[0] = 0;
    return 0;
}

void ac_policy_batch_free(ac_policy_batch_t *b)
{
    if (b == NULL)
        return;
    free(b->offsets);
    free(b->ids);
    memset(b, 0, sizeof *b);
}

void ac_policy_batch_clear(ac_policy_batch_t *b)
{
    b->n = 0;
    b->offsets[0] = 0;
}

int ac_policy_batch_add(ac_policy_batch_t *b, const char *text, size_t len, ac_err_t *err)
{
    if (b->n == b->_cap && batch_grow(b, b->_cap * 2, err) != 0)
        return -1;
    int start = b->offsets[b->n];
    int k = ac_policy_featurize(b->ids + start, b->max_features, text, len, b->n_buckets);
    b->offsets[b->n + 1] = start + k;
    return b->n++;
}

/* ---- creation ----------------------------------------------------------------------------- */

static void layout(ac_policy_t *p)
{
    const ac_policy_config_t *c = &p->cfg;
    p->n_layers = c->n_hidden + 1;
    p->dim[0] = c->d_emb;
    for (int l = 0; l < c->n_hidden; l++)
        p->dim[l + 1] = c->hidden[l];
    p->dim[p->n_layers] = c->n_actions;
    size_t off = (size_t)c->n_buckets * c->d_emb;
    for (int l = 0; l < p->n_layers; l++) {
        p->off_w[l] = off;
        off += (size_t)p->dim[l] * p->dim[l + 1];
        p->off_b[l] = off;
        off += (size_t)p->dim[l + 1];
    }
    p->n_params = off;
}

static ac_policy_t *alloc_policy(const ac_policy_config_t *cfg, ac_err_t *err)
{
    if (check_config(cfg, err) != 0)
        return NULL;
    ac_policy_t *p = calloc(1, sizeof *p);
    if (p == NULL) {
        ac_err_set(err, AC_ERR_INTERNAL, "policy: out of memory");
        return NULL;
    }
    p->cfg = *cfg;
    p->temperature = 1.0f;
    layout(p);
    p->params = calloc(p->n_params, sizeof(float));
    p->grads = calloc(p->n_params, sizeof(float));
    if (p->params == NULL || p->grads == NULL) {
        ac_err_set(err, AC_ERR_INTERNAL, "policy: out of memory (%zu parameters)", p->n_params);
        ac_policy_destroy(p);
        return NULL;
    }
    return p;
}

ac_policy_t *ac_policy_create(const ac_policy_config_t *cfg, ac_err_t *err)
{
    ac_policy_t *p = alloc_policy(cfg, err);
    if (p == NULL)
        return NULL;
    ac_rng_t rng;
    ac_rng_seed(&rng, cfg->seed);
    size_t n_emb = (size_t)cfg->n_buckets * cfg->d_emb;
    for (size_t i = 0; i < n_emb; i++)
        p->params[i] = (float)ac_rng_normal(&rng);
    for (int l = 0; l < p->n_layers; l++) {
        int in = p->dim[l], out = p->dim[l + 1];
        int is_out = l == p->n_layers - 1;
        double std = (!is_out && cfg->activation == AC_POLICY_RELU) ? sqrt(2.0 / in)
                                                                    : sqrt(2.0 / (in + out));
        if (is_out)
            std *= 0.1;
        float *w = p->params + p->off_w[l];
        for (size_t i = 0; i < (size_t)in * out; i++)
            w[i] = (float)(std * ac_rng_normal(&rng));
        /* biases stay 0 (calloc) */
    }
    return p;
}

void ac_policy_destroy(ac_policy_t *p)
{
    if (p == NULL)
        return;
    for (int l = 0; l < AC_POLICY_MAX_HIDDEN + 2; l++)
        free(p->_act[l]);
    free(p->_dbuf[0]);
    free(p->_dbuf[1]);
    free(p->params);
    free(p->grads);
    free(p);
}

ac_policy_t *ac_policy_clone(const ac_policy_t *src, ac_err_t *err)
{
    ac_policy_t *p = alloc_policy(&src->cfg, err);
    if (p != NULL)
        memcpy(p->params, src->params, sizeof(float) * src->n_params);
    return p;
}

int ac_policy_reserve(ac_policy_t *p, int n, ac_err_t *err)
{
    if (n <= p->_cap)
        return 0;
    int maxdim = 0;
    for (int l = 0; l <= p->n_layers; l++)
        maxdim = p->dim[l] > maxdim ? p->dim[l] : maxdim;
    /* Free first: the contents need not survive, and realloc would copy them. */
    for (int l = 0; l <= p->n_layers; l++) {
        free(p->_act[l]);
        p->_act[l] = malloc(sizeof(float) * (size_t)n * p->dim[l]);
    }
    for (int k = 0; k < 2; k++) {
        free(p->_dbuf[k]);
        p->_dbuf[k] = malloc(sizeof(float) * (size_t)n * maxdim);
    }
    int ok = p->_dbuf[0] && p->_dbuf[1];
    for (int l = 0; l <= p->n_layers; l++)
        ok = ok && p->_act[l];
    p->_n_fwd = 0;
    if (!ok) {
        p->_cap = 0; /* the next reserve reallocates everything */
        return ac_err_set(err, AC_ERR_INTERNAL, "policy workspace: out of memory (%d states)", n);
    }
    p->_cap = n;
    return 0;
}

int ac_policy_lr_groups(const ac_policy_t *p, size_t *ends, float *scale)
{
    int n = 0;
    ends[n] = p->off_w[0]; /* the embedding table */
    scale[n++] = AC_POLICY_LR_SCALE;
    for (int l = 0; l < p->n_layers; l++) { /* each dense layer, weights and bias */
        ends[n] = l + 1 < p->n_layers ? p->off_w[l + 1] : p->n_params;
        scale[n++] = AC_POLICY_LR_SCALE;
    }
    return n;
}

void ac_policy_zero_grad(ac_policy_t *p) { memset(p->grads, 0, sizeof(float) * p->n_params); }

/* ---- kernels (outputs first, then inputs, then sizes) ------------------------------------- */

/* The embedding bag is a gather of N * F rows: with plain loops the compiler must assume the
 * output row may alias a table row, and adds one float at a time (it was 2/3 of a forward).
 * GCC/Clang vector extensions give 4-wide SIMD on any x86-64 (SSE2) without -march flags;
 * memcpy makes the loads and stores alignment-free. */
typedef float v4f __attribute__((vector_size(16)));
static inline v4f load4(const float *p)
{
    v4f v;
    memcpy(&v, p, sizeof v);
    return v;
}
static inline void store4(float *p, v4f v) { memcpy(p, &v, sizeof v); }

/* x (N, D) out: mean of the embedding rows of each state's ids; zeros for a state without ids.
 * E (n_buckets, D); offsets (N + 1), ids as in ac_policy_batch_t. The sum over ids runs in id
 * order for every element, so the result does not depend on D's chunking. */
static void embag_forward(float *x, const float *E, const int *offsets, const int *ids, int N, int D)
{
    for (int i = 0; i < N; i++) {
        float *xi = x + (size_t)i * D;
        int k0 = offsets[i], k1 = offsets[i + 1];
        float inv = k1 > k0 ? 1.0f / (float)(k1 - k0) : 0.0f;
        int d = 0;
        for (; d + 16 <= D; d += 16) { /* four independent 4-wide accumulators */
            v4f a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
            for (int k = k0; k < k1; k++) {
                const float *e = E + (size_t)ids[k] * D + d;
                a0 += load4(e);
                a1 += load4(e + 4);
                a2 += load4(e + 8);
                a3 += load4(e + 12);
            }
            store4(xi + d, a0 * inv);
            store4(xi + d + 4, a1 * inv);
            store4(xi + d + 8, a2 * inv);
            store4(xi + d + 12, a3 * inv);
        }
        for (; d < D; d++) {
            float a = 0.0f;
            for (int k = k0; k < k1; k++)
                a += E[(size_t)ids[k] * D + d];
            xi[d] = a * inv;
        }
    }
}

/* dE (n_buckets, D) accumulated: each id's row gets dx[i] / count_i. dx (N, D). An id repeated
 * within a state is added once per occurrence (loads and stores go in order). */
static void embag_backward(float *dE, const float *dx, const int *offsets, const int *ids, int N, int D)
{
    for (int i = 0; i < N; i++) {
        int k0 = offsets[i], k1 = offsets[i + 1];
        if (k1 == k0)
            continue;
        float inv = 1.0f / (float)(k1 - k0);
        const float *g = dx + (size_t)i * D;
        for (int k = k0; k < k1; k++) {
            float *de = dE + (size_t)ids[k] * D;
            int d = 0;
            for (; d + 4 <= D; d += 4)
                store4(de + d, load4(de + d) + load4(g + d) * inv);
            for (; d < D; d++)
                de[d] += g[d] * inv;
        }
    }
}

/* y (N, OC) out = x (N, C) . W (C, OC) + b (OC). */
static void dense_forward(float *y, const float *x, const float *W, const float *b, int N, int C, int OC)
{
    for (int i = 0; i < N; i++)
        memcpy(y + (size_t)i * OC, b, sizeof(float) * OC);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, OC, C, 1.0f, x, C, W, OC, 1.0f, y, OC);
}

/* dW (C, OC) += x^T dy; db (OC) += column sums of dy; dx (N, C) out = dy W^T (skipped when NULL).
 * x (N, C), W (C, OC), dy (N, OC). */
static void dense_backward(float *dx, float *dW, float *db, const float *dy, const float *x,
                           const float *W, int N, int C, int OC)
{
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, C, OC, N, 1.0f, x, C, dy, OC, 1.0f, dW, OC);
    for (int i = 0; i < N; i++) {
        const float *g = dy + (size_t)i * OC;
        for (int o = 0; o < OC; o++)
            db[o] += g[o];
    }
    if (dx != NULL)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, C, OC, 1.0f, dy, OC, W, OC, 0.0f, dx, C);
}

/* tanh through one expf. glibc's tanhf goes through expm1f, costs ~4 expf, and was a third of
 * a forward's time. |x| < 0.4: the odd Taylor series to x^13 (truncation < 2e-9 absolute);
 * beyond: (1 - t) / (1 + t) with t = exp(-2|x|) <= 0.45, so 1 - t >= 0.55 and the subtraction
 * loses nothing. Within ~2 ulp of tanh; NaN stays NaN; large |x| gives exactly +-1. */
static inline float tanh_fast(float x)
{
    float ax = fabsf(x);
    if (ax < 0.4f) {
        float x2 = x * x;
        return x * (1.0f + x2 * (-1.0f / 3 + x2 * (2.0f / 15 + x2 * (-17.0f / 315 +
                    x2 * (62.0f / 2835 + x2 * (-1382.0f / 155925 + x2 * (21844.0f / 6081075)))))));
    }
    float t = expf(-2.0f * ax);
    return copysignf((1.0f - t) / (1.0f + t), x);
}

/* h (n) in place: activation. */
static void act_forward(float *h, size_t n, int act)
{
    if (act == AC_POLICY_TANH)
        for (size_t i = 0; i < n; i++)
            h[i] = tanh_fast(h[i]);
    else
        for (size_t i = 0; i < n; i++)
            h[i] = h[i] > 0.0f ? h[i] : 0.0f;
}

/* dh (n) in place: times the activation's derivative, written in terms of its output h (n). */
static void act_backward(float *dh, const float *h, size_t n, int act)
{
    if (act == AC_POLICY_TANH)
        for (size_t i = 0; i < n; i++)
            dh[i] *= 1.0f - h[i] * h[i];
    else
        for (size_t i = 0; i < n; i++)
            dh[i] = h[i] > 0.0f ? dh[i] : 0.0f;
}

int ac_policy_log_softmax_forward(float *logp, const float *logits, const uint8_t *mask, int N, int A)
{
    for (int i = 0; i < N; i++) {
        const float *z = logits + (size_t)i * A;
        const uint8_t *m = mask ? mask + (size_t)i * A : NULL;
        float *out = logp + (size_t)i * A;
        float mx = -INFINITY;
        int n_legal = 0;
        for (int a = 0; a < A; a++)
            if (!m || m[a]) {
                n_legal++;
                mx = z[a] > mx ? z[a] : mx;
            }
        if (n_legal == 0)
            return -1 - i;
        /* NaN logits (diverged weights) give NaN log-probs here, which ac_grpo_loss reports,
         * rather than being mistaken for "no legal action". */
        double s = 0.0;
        for (int a = 0; a < A; a++)
            if (!m || m[a])
                s += exp((double)(z[a] - mx));
        float lse = mx + (float)log(s);
        for (int a = 0; a < A; a++)
            out[a] = (!m || m[a]) ? z[a] - lse : -INFINITY;
    }
    return 0;
}

void ac_policy_log_softmax_backward(float *dlogits, const float *dlogp, const float *logp, int N, int A)
{
    for (int i = 0; i < N; i++) {
        const float *g = dlogp + (size_t)i * A, *lp = logp + (size_t)i * A;
        float *dz = dlogits + (size_t)i * A;
        double gs = 0.0;
        for (int a = 0; a < A; a++)
            if (lp[a] != -INFINITY)
                gs += g[a];
        for (int a = 0; a < A; a++)
            dz[a] = lp[a] != -INFINITY ? g[a] - expf(lp[a]) * (float)gs : 0.0f;
    }
}

/* ---- forward / backward ------------------------------------------------------------------ */

static int check_batch(const ac_policy_t *p, const ac_policy_batch_t *b, ac_err_t *err)
{
    if (b->n_buckets != p->cfg.n_buckets)
        return ac_err_set(err, AC_ERR_INVALID_PARAMS,
                          "policy: batch featurized for %d buckets, policy has %d", b->n_buckets,
                          p->cfg.n_buckets);
    return 0;
}

int ac_policy_forward(ac_policy_t *p, float *logp, const ac_policy_batch_t *b, const uint8_t *mask,
                      ac_err_t *err)
{
    if (check_batch(p, b, err) != 0 || ac_policy_reserve(p, b->n, err) != 0)
        return -1;
    int N = b->n, L = p->n_layers;
    p->_n_fwd = 0;
    if (N == 0)
        return 0;
    embag_forward(p->_act[0], p->params, b->offsets, b->ids, N, p->dim[0]);
    for (int l = 0; l < L; l++) {
        dense_forward(p->_act[l + 1], p->_act[l], p->params + p->off_w[l], p->params + p->off_b[l],
                      N, p->dim[l], p->dim[l + 1]);
        if (l < L - 1)
            act_forward(p->_act[l + 1], (size_t)N * p->dim[l + 1], p->cfg.activation);
    }
    if (p->temperature != 1.0f) {
        float inv = 1.0f / p->temperature;
        float *z = p->_act[L];
        for (size_t i = 0; i < (size_t)N * p->cfg.n_actions; i++)
            z[i] *= inv;
    }
    int rc = ac_policy_log_softmax_forward(logp, p->_act[L], mask, N, p->cfg.n_actions);
    if (rc != 0)
        return ac_err_set(err, AC_ERR_INVALID_PARAMS, "policy: state %d has no legal action", -1 - rc);
    p->_n_fwd = N;
    return 0;
}

int ac_policy_backward(ac_policy_t *p, const float *dlogits, const ac_policy_batch_t *b, ac_err_t *err)
{
    if (p->_n_fwd != b->n || b->n == 0)
        return ac_err_set(err, AC_ERR_INTERNAL,
                          "policy backward: needs the forward of the same batch (%d states, last "
                          "forward %d)", b->n, p->_n_fwd);
    int N = b->n, L = p->n_layers;
    const float *dy = dlogits;
    if (p->temperature != 1.0f) { /* z / T: the logits' gradient is dL/d(z/T) / T */
        float inv = 1.0f / p->temperature, *scaled = p->_dbuf[L & 1]; /* not written by layer L-1 */
        for (size_t i = 0; i < (size_t)N * p->cfg.n_actions; i++)
            scaled[i] = dlogits[i] * inv;
        dy = scaled;
    }
    for (int l = L - 1; l >= 0; l--) {
        float *dx = p->_dbuf[l & 1]; /* never the buffer dy points into */
        dense_backward(dx, p->grads + p->off_w[l], p->grads + p->off_b[l], dy, p->_act[l],
                       p->params + p->off_w[l], N, p->dim[l], p->dim[l + 1]);
        if (l > 0)
            act_backward(dx, p->_act[l], (size_t)N * p->dim[l], p->cfg.activation);
        dy = dx;
    }
    embag_backward(p->grads, dy, b->offsets, b->ids, N, p->dim[0]);
    return 0;
}

int ac_policy_forward_ref(const ac_policy_t *p, double *logp, const ac_policy_batch_t *b,
                          const uint8_t *mask, ac_err_t *err)
{
    if (check_batch(p, b, err) != 0)
        return -1;
    int maxdim = 0;
    for (int l = 0; l <= p->n_layers; l++)
        maxdim = p->dim[l] > maxdim ? p->dim[l] : maxdim;
    double *x = malloc(sizeof(double) * maxdim), *y = malloc(sizeof(double) * maxdim);
    if (!x || !y) {
        free(x);
        free(y);
        return ac_err_set(err, AC_ERR_INTERNAL, "policy: out of memory");
    }
    int A = p->cfg.n_actions, rc = 0;
    for (int i = 0; i < b->n && rc == 0; i++) {
        int D = p->dim[0], k0 = b->offsets[i], k1 = b->offsets[i + 1];
        for (int d = 0; d < D; d++) {
            double s = 0.0;
            for (int k = k0; k < k1; k++)
                s += p->params[(size_t)b->ids[k] * D + d];
            x[d] = k1 > k0 ? s / (k1 - k0) : 0.0;
        }
        for (int l = 0; l < p->n_layers; l++) {
            const float *W = p->params + p->off_w[l], *bias = p->params + p->off_b[l];
            int C = p->dim[l], OC = p->dim[l + 1];
            for (int o = 0; o < OC; o++) {
                double s = bias[o];
                for (int j = 0; j < C; j++)
                    s += x[j] * W[(size_t)j * OC + o];
                if (l < p->n_layers - 1)
                    s = p->cfg.activation == AC_POLICY_TANH ? tanh(s) : (s > 0 ? s : 0);
                y[o] = s;
            }
            memcpy(x, y, sizeof(double) * OC);
        }
        for (int a = 0; a < A; a++)
            x[a] /= p->temperature;
        const uint8_t *m = mask ? mask + (size_t)i * A : NULL;
        double mx = -INFINITY, s = 0.0;
        for (int a = 0; a < A; a++)
            if ((!m || m[a]) && x[a] > mx)
                mx = x[a];
        if (mx == -INFINITY) {
            rc = ac_err_set(err, AC_ERR_INVALID_PARAMS, "policy: state %d has no legal action", i);
            break;
        }
        for (int a = 0; a < A; a++)
            if (!m || m[a])
                s += exp(x[a] - mx);
        for (int a = 0; a < A; a++)
            logp[(size_t)i * A + a] = (!m || m[a]) ? x[a] - mx - log(s) : -INFINITY;
    }
    free(x);
    free(y);
    return rc;
}

/* ---- acting --------------------------------------------------------------------------------- */

int ac_policy_greedy(const float *logp, int A)
{
    int best = -1;
    for (int a = 0; a < A; a++)
        if (logp[a] != -INFINITY && (best < 0 || logp[a] > logp[best]))
            best = a;
    return best;
}

int ac_policy_sample(const float *logp, int A, float temperature, ac_rng_t *rng, float *logp_taken)
{
    int best = ac_policy_greedy(logp, A);
    if (best < 0)
        return -1;
    if (temperature <= 0.0f) {
        if (logp_taken)
            *logp_taken = 0.0f; /* greedy is deterministic: probability 1 */
        return best;
    }
    /* q_a = exp((logp_a - max) / T) / Z. At T = 1 this is exp(logp_a) up to rounding, and the
     * returned log-prob is logp_a itself, so the ratio is 1 when nothing changed. */
    double inv_t = 1.0 / temperature, mx = logp[best], z = 0.0;
    for (int a = 0; a < A; a++)
        if (logp[a] != -INFINITY)
            z += exp((logp[a] - mx) * inv_t);
    double u = ac_rng_uniform_double(rng) * z, acc = 0.0;
    int pick = -1;
    for (int a = 0; a < A; a++)
        if (logp[a] != -INFINITY) {
            pick = a; /* rounding leftovers fall to the last legal action, never an illegal one */
            acc += exp((logp[a] - mx) * inv_t);
            if (u < acc)
                break;
        }
    if (logp_taken)
        *logp_taken = temperature == 1.0f ? logp[pick]
                                          : (float)((logp[pick] - mx) * inv_t - log(z));
    return pick;
}
