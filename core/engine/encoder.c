#include "engine/encoder.h"

#include <assert.h>
#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LN_EPS 1e-5f
#define GELU_K 0.7978845608028654 /* sqrt(2 / pi) */
#define GELU_C 0.044715

/* ---- config and parameter layout ---------------------------------------------------------- */

int ac_encoder_config_check(const ac_encoder_config_t *c, ac_err_t *err)
{
    if (c == NULL)
        return ac_err_set(err, AC_ERR_INVALID_PARAMS, "encoder: no config");
    if (c->n_heads < 1 || c->n_heads > AC_ENCODER_MAX_HEADS)
        return ac_err_field(err, AC_ERR_INVALID_PARAMS, "n_heads", "must be in 1..%d (got %d)",
                            AC_ENCODER_MAX_HEADS, c->n_heads);
    if (c->d_model < 8 || c->d_model > AC_ENCODER_MAX_D)
        return ac_err_field(err, AC_ERR_INVALID_PARAMS, "d_model", "must be in 8..%d (got %d)",
                            AC_ENCODER_MAX_D, c->d_model);
    if (c->d_model % c->n_heads != 0)
        return ac_err_field(err, AC_ERR_INVALID_PARAMS, "d_model",
                            "must be a multiple of n_heads (%d is not a multiple of %d)", c->d_model,
                            c->n_heads);
    if (c->n_layers < 1 || c->n_layers > AC_ENCODER_MAX_LAYERS)
        return ac_err_field(err, AC_ERR_INVALID_PARAMS, "n_layers", "must be in 1..%d (got %d)",
                            AC_ENCODER_MAX_LAYERS, c->n_layers);
    if (c->d_ff < 1 || c->d_ff > AC_ENCODER_MAX_FF)
        return ac_err_field(err, AC_ERR_INVALID_PARAMS, "d_ff", "must be in 1..%d (got %d)",
                            AC_ENCODER_MAX_FF, c->d_ff);
    if (c->max_len < 1 || c->max_len > AC_ENCODER_MAX_LEN)
        return ac_err_field(err, AC_ERR_INVALID_PARAMS, "max_len", "must be in 1..%d (got %d)",
                            AC_ENCODER_MAX_LEN, c->max_len);
    return 0;
}

/* Element counts of a layer's tensors, in layout order. */
static void layer_sizes(size_t sz[AC_ENCODER_N_LAYER_TENSORS], const ac_encoder_config_t *c)
{
    size_t D = (size_t)c->d_model, F = (size_t)c->d_ff;
    sz[AC_ENCODER_LN1_G] = D;
    sz[AC_ENCODER_LN1_B] = D;
    sz[AC_ENCODER_WQKV] = D * 3 * D;
    sz[AC_ENCODER_BQKV] = 3 * D;
    sz[AC_ENCODER_WO] = D * D;
    sz[AC_ENCODER_BO] = D;
    sz[AC_ENCODER_LN2_G] = D;
    sz[AC_ENCODER_LN2_B] = D;
    sz[AC_ENCODER_W1] = D * F;
    sz[AC_ENCODER_B1] = F;
    sz[AC_ENCODER_W2] = F * D;
    sz[AC_ENCODER_B2] = D;
}

static size_t layer_params(const ac_encoder_config_t *c)
{
    size_t sz[AC_ENCODER_N_LAYER_TENSORS], n = 0;
    layer_sizes(sz, c);
    for (int k = 0; k < AC_ENCODER_N_LAYER_TENSORS; k++)
        n += sz[k];
    return n;
}

size_t ac_encoder_n_params(const ac_encoder_config_t *c)
{
    if (ac_encoder_config_check(c, NULL) != 0)
        return 0;
    return (size_t)c->n_layers * layer_params(c) + 2 * (size_t)c->d_model;
}

size_t ac_encoder_tensor(const ac_encoder_config_t *c, int layer, int which, size_t *size)
{
    assert(layer >= 0 && layer <= c->n_layers);
    size_t off = (size_t)layer * layer_params(c);
    if (layer == c->n_layers) {
        assert(which == AC_ENCODER_LNF_G || which == AC_ENCODER_LNF_B);
        if (size)
            *size = (size_t)c->d_model;
        return off + (size_t)which * c->d_model;
    }
    assert(which >= 0 && which < AC_ENCODER_N_LAYER_TENSORS);
    size_t sz[AC_ENCODER_N_LAYER_TENSORS];
    layer_sizes(sz, c);
    for (int k = 0; k < which; k++)
        off += sz[k];
    if (size)
        *size = sz[which];
    return off;
}

const char *ac_encoder_tensor_name(int which, int final)
{
    static const char *names[AC_ENCODER_N_LAYER_TENSORS] = {
        "ln1_g", "ln1_b", "Wqkv", "bqkv", "Wo", "bo", "ln2_g", "ln2_b", "W1", "b1", "W2", "b2"};
    if (final)
        return which == AC_ENCODER_LNF_G ? "lnf_g" : "lnf_b";
    return which >= 0 && which < AC_ENCODER_N_LAYER_TENSORS ? names[which] : "?";
}

void ac_encoder_init(float *params, const ac_encoder_config_t *c, ac_rng_t *rng)
{
    double resid_scale = 1.0 / sqrt(2.0 * c->n_layers);
    for (int l = 0; l <= c->n_layers; l++) {
        int n_t = l == c->n_layers ? 2 : AC_ENCODER_N_LAYER_TENSORS;
        for (int k = 0; k < n_t; k++) {
            size_t n, off = ac_encoder_tensor(c, l, k, &n);
            float *p = params + off;
            int is_gain = l == c->n_layers ? k == AC_ENCODER_LNF_G
                                           : (k == AC_ENCODER_LN1_G || k == AC_ENCODER_LN2_G);
            int is_matrix = l < c->n_layers && (k == AC_ENCODER_WQKV || k == AC_ENCODER_WO ||
                                                k == AC_ENCODER_W1 || k == AC_ENCODER_W2);
            if (is_matrix) {
                double std = 0.02;
                if (k == AC_ENCODER_WO || k == AC_ENCODER_W2)
                    std *= resid_scale;
                for (size_t i = 0; i < n; i++)
                    p[i] = (float)(std * ac_rng_normal(rng));
            } else {
                for (size_t i = 0; i < n; i++)
                    p[i] = is_gain ? 1.0f : 0.0f;
            }
        }
    }
}

/* ---- 4-wide SIMD for LayerNorm and the bias passes -------------------------------------------
 * GCC/Clang vector extensions: SSE2 on any x86-64, no -march flags (as in policy.c). memcpy
 * makes loads and stores alignment-free; the compiler turns them into movups. The attention and
 * GELU kernels, where the time goes, have an 8-wide AVX2 flavour too: encoder_simd.h. */
typedef float v4f __attribute__((vector_size(16)));

static inline v4f load4(const float *p)
{
    v4f v;
    memcpy(&v, p, sizeof v);
    return v;
}
static inline void store4(float *p, v4f v) { memcpy(p, &v, sizeof v); }
static inline v4f splat4(float a) { return (v4f){a, a, a, a}; }
static inline float hsum4(v4f v) { return (v[0] + v[1]) + (v[2] + v[3]); }

/* ---- LayerNorm ---------------------------------------------------------------------------- */

void ac_encoder_layernorm_forward(float *out, float *mean, float *rstd, const float *x, const float *g,
                                  const float *b, int N, int C)
{
    for (int i = 0; i < N; i++) {
        const float *xi = x + (size_t)i * C;
        float *oi = out + (size_t)i * C;
        v4f acc = {0};
        int c = 0;
        for (; c + 4 <= C; c += 4)
            acc += load4(xi + c);
        float s = hsum4(acc);
        for (; c < C; c++)
            s += xi[c];
        float m = s / (float)C;
        /* two passes: the variance of values with a large mean does not cancel */
        v4f vm = splat4(m);
        acc = (v4f){0};
        for (c = 0; c + 4 <= C; c += 4) {
            v4f d = load4(xi + c) - vm;
            acc += d * d;
        }
        float v = hsum4(acc);
        for (; c < C; c++)
            v += (xi[c] - m) * (xi[c] - m);
        float rs = 1.0f / sqrtf(v / (float)C + LN_EPS);
        v4f vr = splat4(rs);
        for (c = 0; c + 4 <= C; c += 4)
            store4(oi + c, (load4(xi + c) - vm) * vr * load4(g + c) + load4(b + c));
        for (; c < C; c++)
            oi[c] = (xi[c] - m) * rs * g[c] + b[c];
        mean[i] = m;
        rstd[i] = rs;
    }
}

/* With n = (x - mean) rstd and y = n g + b:
 *   dg += dout n;  db += dout;
 *   dx += rstd (dn - mean(dn) - n mean(dn n)),  dn = dout g   (the mean and variance paths). */
void ac_encoder_layernorm_backward(float *dx, float *dg, float *db, const float *dout, const float *x,
                                   const float *mean, const float *rstd, const float *g, int N, int C)
{
    for (int i = 0; i < N; i++) {
        const float *xi = x + (size_t)i * C, *gi = dout + (size_t)i * C;
        float *dxi = dx + (size_t)i * C;
        v4f vm = splat4(mean[i]), vr = splat4(rstd[i]);
        v4f a1 = {0}, a2 = {0};
        int c = 0;
        for (; c + 4 <= C; c += 4) {
            v4f n = (load4(xi + c) - vm) * vr, dn = load4(gi + c) * load4(g + c);
            a1 += dn;
            a2 += dn * n;
        }
        float s1 = hsum4(a1), s2 = hsum4(a2);
        for (; c < C; c++) {
            float n = (xi[c] - mean[i]) * rstd[i], dn = gi[c] * g[c];
            s1 += dn;
            s2 += dn * n;
        }
        float m1 = s1 / (float)C, m2 = s2 / (float)C;
        v4f vm1 = splat4(m1), vm2 = splat4(m2);
        for (c = 0; c + 4 <= C; c += 4) {
            v4f n = (load4(xi + c) - vm) * vr, go = load4(gi + c), dn = go * load4(g + c);
            store4(db + c, load4(db + c) + go);
            store4(dg + c, load4(dg + c) + go * n);
            store4(dxi + c, load4(dxi + c) + vr * (dn - vm1 - n * vm2));
        }
        for (; c < C; c++) {
            float n = (xi[c] - mean[i]) * rstd[i], dn = gi[c] * g[c];
            db[c] += gi[c];
            dg[c] += gi[c] * n;
            dxi[c] += rstd[i] * (dn - m1 - n * m2);
        }
    }
}

/* ---- projections (cblas_sgemm over all rows) ---------------------------------------------- */

/* The pieces of the two matmul kernels, apart so that the encoder can time the sgemms alone. */

/* out (N, OC) = resid (N, OC) (or 0) + bias (OC): the sgemm then accumulates onto it (beta = 1),
 * so the bias and the residual add cost no pass of their own. */
static void matmul_init(float *out, const float *resid, const float *bias, int N, int OC)
{
    for (int i = 0; i < N; i++) {
        float *o = out + (size_t)i * OC;
        const float *r = resid ? resid + (size_t)i * OC : NULL;
        int k = 0;
        if (r) {
            for (; k + 4 <= OC; k += 4)
                store4(o + k, load4(r + k) + load4(bias + k));
            for (; k < OC; k++)
                o[k] = r[k] + bias[k];
        } else {
            memcpy(o, bias, sizeof(float) * (size_t)OC);
        }
    }
}

/* out (N, OC) += inp (N, C) W (C, OC) */
static void matmul_sgemm(float *out, const float *inp, const float *W, int N, int C, int OC)
{
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, OC, C, 1.0f, inp, C, W, OC, 1.0f, out, OC);
}

/* db (OC) += column sums of dout (N, OC) */
static void bias_backward(float *db, const float *dout, int N, int OC)
{
    for (int i = 0; i < N; i++) {
        const float *g = dout + (size_t)i * OC;
        int k = 0;
        for (; k + 4 <= OC; k += 4)
            store4(db + k, load4(db + k) + load4(g + k));
        for (; k < OC; k++)
            db[k] += g[k];
    }
}

/* dW (C, OC) += inp^T dout */
static void matmul_sgemm_dw(float *dW, const float *dout, const float *inp, int N, int C, int OC)
{
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, C, OC, N, 1.0f, inp, C, dout, OC, 1.0f, dW, OC);
}

/* dinp (N, C) = dout W^T, overwritten */
static void matmul_sgemm_dx(float *dinp, const float *dout, const float *W, int N, int C, int OC)
{
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, C, OC, 1.0f, dout, OC, W, OC, 0.0f, dinp, C);
}

void ac_encoder_matmul_forward(float *out, const float *resid, const float *inp, const float *W,
                               const float *bias, int N, int C, int OC)
{
    matmul_init(out, resid, bias, N, OC);
    matmul_sgemm(out, inp, W, N, C, OC);
}

void ac_encoder_matmul_backward(float *dinp, float *dW, float *db, const float *dout, const float *inp,
                                const float *W, int N, int C, int OC)
{
    matmul_sgemm_dw(dW, dout, inp, N, C, OC);
    bias_backward(db, dout, N, OC);
    if (dinp != NULL)
        matmul_sgemm_dx(dinp, dout, W, N, C, OC);
}

/* ---- GELU (tanh approximation) -------------------------------------------------------------
 * 0.5 h (1 + tanh(y)) = h sigmoid(2 y), y = K (h + c h^3); with e = exp(-2 y), s = 1 / (1 + e):
 *   gelu(h) = h s,   gelu'(h) = s + h s (1 - s) 2 K (1 + 3 c h^2),   s (1 - s) = e s^2.
 * The kernels are in encoder_simd.h, dispatched below. */

/* ---- attention -----------------------------------------------------------------------------
 * Per sequence (T rows) and head, every product is a small matrix product (T x dh x T), done by
 * one register-blocked kernel that reads q, k, v, dout straight from the big row-major buffers
 * (strides 3D or D) and writes o, dq, dk, dv straight into them; only K and V are gathered
 * transposed (dh x T), so that the score rows come out contiguous.
 *
 * Forward keeps lse (log-sum-exp of each score row) instead of P: backward recomputes
 * P = exp(S - lse) into a T x T scratch that stays in cache, rather than storing B*H*T^2 floats
 * per layer and reading them back from memory. */

size_t ac_encoder_attention_scratch_floats(int D, int H, int max_len)
{
    size_t dh = (size_t)(D / H), L = (size_t)max_len;
    return 2 * dh * L + 2 * L * L; /* Kt, Vt (dh, L); S, dP (L, L) */
}

/* t (dh, T) = the dh columns of T rows of src (row stride ld), transposed. */
static void gather_t(float *t, const float *src, int ld, int T, int dh)
{
    for (int j = 0; j < T; j++) {
        const float *row = src + (size_t)j * ld;
        for (int d = 0; d < dh; d++)
            t[(size_t)d * T + j] = row[d];
    }
}

/* The two flavours of the attention and GELU kernels (encoder_simd.h). */
#define VW 4
#define SIMD_TARGET
#define SIMD(name) name##_sse
#include "engine/encoder_simd.h"
#undef VW
#undef SIMD_TARGET
#undef SIMD
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define AC_ENCODER_HAVE_AVX2 1
#define VW 8
#define SIMD_TARGET __attribute__((target("avx2,fma")))
#define SIMD(name) name##_avx2
#include "engine/encoder_simd.h"
#undef VW
#undef SIMD_TARGET
#undef SIMD
#endif

enum { SIMD_AUTO = 0, SIMD_SSE = 1, SIMD_AVX2 = 2 };
static _Atomic int simd_forced = SIMD_AUTO;

static int cpu_has_avx2(void)
{
#ifdef AC_ENCODER_HAVE_AVX2
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return 0;
#endif
}

/* 1 when the AVX2 flavour runs. Reading CPUID bits libgcc cached at start-up costs nothing. */
static int simd_avx2(void)
{
    int f = atomic_load_explicit(&simd_forced, memory_order_relaxed);
    return f == SIMD_AUTO ? cpu_has_avx2() : f == SIMD_AVX2;
}

const char *ac_encoder_simd(void) { return simd_avx2() ? "avx2" : "sse"; }

int ac_encoder_simd_force(const char *name)
{
    int f = name == NULL ? SIMD_AUTO : strcmp(name, "sse") == 0 ? SIMD_SSE : strcmp(name, "avx2") == 0 ? SIMD_AVX2 : -1;
    if (f < 0 || (f == SIMD_AVX2 && !cpu_has_avx2()))
        return -1;
    atomic_store_explicit(&simd_forced, f, memory_order_relaxed);
    return 0;
}

void ac_encoder_gelu_forward(float *u, const float *h, size_t n)
{
#ifdef AC_ENCODER_HAVE_AVX2
    if (simd_avx2()) {
        gelu_forward_avx2(u, h, n);
        return;
    }
#endif
    gelu_forward_sse(u, h, n);
}

void ac_encoder_gelu_backward(float *dh, const float *du, const float *h, size_t n)
{
#ifdef AC_ENCODER_HAVE_AVX2
    if (simd_avx2()) {
        gelu_backward_avx2(dh, du, h, n);
        return;
    }
#endif
    gelu_backward_sse(dh, du, h, n);
}

void ac_encoder_attention_forward(float *out, float *lse, const float *qkv, const int *offsets, int B, int D,
                                  int H, float *scratch)
{
#ifdef AC_ENCODER_HAVE_AVX2
    if (simd_avx2()) {
        attention_forward_avx2(out, lse, qkv, offsets, B, D, H, scratch);
        return;
    }
#endif
    attention_forward_sse(out, lse, qkv, offsets, B, D, H, scratch);
}

void ac_encoder_attention_backward(float *dqkv, const float *dout, const float *qkv, const float *lse,
                                   const int *offsets, int B, int D, int H, float *scratch)
{
#ifdef AC_ENCODER_HAVE_AVX2
    if (simd_avx2()) {
        attention_backward_avx2(dqkv, dout, qkv, lse, offsets, B, D, H, scratch);
        return;
    }
#endif
    attention_backward_sse(dqkv, dout, qkv, lse, offsets, B, D, H, scratch);
}

/* ---- double references (plain loops) ------------------------------------------------------ */

void ac_encoder_ref_layernorm(double *out, const double *x, const double *g, const double *b, int N, int C)
{
    for (int i = 0; i < N; i++) {
        const double *xi = x + (size_t)i * C;
        double m = 0, v = 0;
        for (int c = 0; c < C; c++)
            m += xi[c];
        m /= C;
        for (int c = 0; c < C; c++)
            v += (xi[c] - m) * (xi[c] - m);
        v /= C;
        double rs = 1.0 / sqrt(v + 1e-5);
        for (int c = 0; c < C; c++)
            out[(size_t)i * C + c] = (xi[c] - m) * rs * g[c] + b[c];
    }
}

void ac_encoder_ref_matmul(double *out, const double *inp, const double *W, const double *bias, int N,
                           int C, int OC)
{
    for (int i = 0; i < N; i++)
        for (int o = 0; o < OC; o++) {
            double s = bias ? bias[o] : 0.0;
            for (int c = 0; c < C; c++)
                s += inp[(size_t)i * C + c] * W[(size_t)c * OC + o];
            out[(size_t)i * OC + o] = s;
        }
}

void ac_encoder_ref_gelu(double *u, const double *h, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        double x = h[i];
        u[i] = 0.5 * x * (1.0 + tanh(GELU_K * (x + GELU_C * x * x * x)));
    }
}

void ac_encoder_ref_attention(double *out, const double *qkv, const int *offsets, int B, int D, int H)
{
    int dh = D / H, D3 = 3 * D;
    double scale = 1.0 / sqrt((double)dh);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++)
            for (int i = offsets[b]; i < offsets[b + 1]; i++) {
                const double *q = qkv + (size_t)i * D3 + h * dh;
                double *o = out + (size_t)i * D + h * dh;
                /* three passes (max, sum, weighted values) instead of a row buffer */
                double mx = -INFINITY, sum = 0;
                for (int pass = 0; pass < 3; pass++)
                    for (int j = offsets[b]; j < offsets[b + 1]; j++) {
                        const double *k = qkv + (size_t)j * D3 + D + h * dh, *v = k + D;
                        double s = 0;
                        for (int d = 0; d < dh; d++)
                            s += q[d] * k[d];
                        s *= scale;
                        if (pass == 0) {
                            mx = s > mx ? s : mx;
                        } else if (pass == 1) {
                            sum += exp(s - mx);
                        } else {
                            if (j == offsets[b])
                                for (int d = 0; d < dh; d++)
                                    o[d] = 0;
                            double p = exp(s - mx) / sum;
                            for (int d = 0; d < dh; d++)
                                o[d] += p * v[d];
                        }
                    }
            }
}

/* ---- the model ---------------------------------------------------------------------------- */

typedef struct layer_acts {
    float *a;            /* (cap, D) LN1(x) */
    float *mean1, *rstd1; /* (cap) LN1 statistics */
    float *qkv;          /* (cap, 3D) a Wqkv + bqkv */
    float *o;            /* (cap, D) attention output, heads concatenated */
    float *lse;          /* (cap, H) log-sum-exp of each scaled score row */
    float *xmid;         /* (cap, D) x + o Wo + bo: the residual stream between the sublayers */
    float *m;            /* (cap, D) LN2(xmid) */
    float *mean2, *rstd2; /* (cap) LN2 statistics */
    float *h;            /* (cap, F) m W1 + b1, before GELU */
    float *u;            /* (cap, F) gelu(h) */
} layer_acts_t;

/* With threads, attention and GELU are cut into this many chunks of about equal work, which the
 * threads take from a shared counter: a thread that gets less of the CPU (the cores are shared
 * with OpenBLAS's spinning workers and other processes) just takes fewer chunks. */
#define N_CHUNKS 64

struct ac_encoder {
    ac_encoder_config_t cfg;
    size_t n_params;
    int _cap_tok, _cap_seq; /* what the workspace holds */
    int _n_tok, _n_seq;     /* the last successful forward; _n_seq == 0: none */
    int *_offsets;          /* (_cap_seq + 1) offsets of the last forward */
    float *_arena;          /* every float buffer below except _attn, one allocation */
    float *_x[AC_ENCODER_MAX_LAYERS + 1]; /* (cap, D) residual stream entering layer l; _x[0] = X,
                                             _x[L] enters LNf */
    layer_acts_t _l[AC_ENCODER_MAX_LAYERS];
    float *_meanf, *_rstdf; /* (cap) LNf statistics */
    float *_dres;           /* (cap, D) backward: dLoss/d(residual stream) when dX is NULL */
    float *_dtmp;           /* (cap, D) backward: do, da, dm */
    float *_dqkv;           /* (cap, 3D) backward */
    float *_dh;             /* (cap, F) backward: du, then dh in place */
    float *_attn[AC_ENCODER_MAX_THREADS]; /* attention scratch per thread
                                             (ac_encoder_attention_scratch_floats each) */
    int _chunk[N_CHUNKS + 1]; /* sequences of chunk c: _chunk[c] .. _chunk[c + 1] - 1 */
    ac_encoder_timing_t *_timing; /* caller's, or NULL: no timing */
    /* Worker threads (n_threads - 1 of them; the caller is part 0). A job is handed out by
     * bumping _gen; each worker runs it for its part and the last one to finish signals. */
    int _n_threads;
    pthread_t _workers[AC_ENCODER_MAX_THREADS - 1];
    pthread_mutex_t _mu;
    pthread_cond_t _go, _done;
    unsigned _gen;     /* job generation */
    int _pending;      /* workers still running the current job */
    int _quit;
    void (*_job)(ac_encoder_t *e, int part, void *arg);
    void *_job_arg;
};

typedef struct worker_arg {
    ac_encoder_t *e;
    int part;
    unsigned gen; /* the job generation when it was started: jobs after it are its to run */
} worker_arg_t;

static void *worker_main(void *p)
{
    worker_arg_t wa = *(worker_arg_t *)p;
    free(p);
    ac_encoder_t *e = wa.e;
    unsigned seen = wa.gen;
    pthread_mutex_lock(&e->_mu);
    for (;;) {
        while (e->_gen == seen && !e->_quit)
            pthread_cond_wait(&e->_go, &e->_mu);
        if (e->_quit)
            break;
        seen = e->_gen;
        void (*job)(ac_encoder_t *, int, void *) = e->_job;
        void *arg = e->_job_arg;
        pthread_mutex_unlock(&e->_mu);
        job(e, wa.part, arg);
        pthread_mutex_lock(&e->_mu);
        if (--e->_pending == 0)
            pthread_cond_signal(&e->_done);
    }
    pthread_mutex_unlock(&e->_mu);
    return NULL;
}

/* Runs job(e, part, arg) for every part 0..n_threads-1, part 0 on the calling thread; returns
 * when all are done. */
static void run_parts(ac_encoder_t *e, void (*job)(ac_encoder_t *, int, void *), void *arg)
{
    if (e->_n_threads > 1) {
        pthread_mutex_lock(&e->_mu);
        e->_job = job;
        e->_job_arg = arg;
        e->_pending = e->_n_threads - 1;
        e->_gen++;
        pthread_cond_broadcast(&e->_go);
        pthread_mutex_unlock(&e->_mu);
    }
    job(e, 0, arg);
    if (e->_n_threads > 1) {
        pthread_mutex_lock(&e->_mu);
        while (e->_pending > 0)
            pthread_cond_wait(&e->_done, &e->_mu);
        pthread_mutex_unlock(&e->_mu);
    }
}

static void stop_workers(ac_encoder_t *e)
{
    if (e->_n_threads <= 1)
        return;
    pthread_mutex_lock(&e->_mu);
    e->_quit = 1;
    pthread_cond_broadcast(&e->_go);
    pthread_mutex_unlock(&e->_mu);
    for (int t = 0; t < e->_n_threads - 1; t++)
        pthread_join(e->_workers[t], NULL);
    e->_quit = 0;
    e->_n_threads = 1;
}

int ac_encoder_set_threads(ac_encoder_t *e, int n, ac_err_t *err)
{
    if (n < 1 || n > AC_ENCODER_MAX_THREADS)
        return ac_err_field(err, AC_ERR_INVALID_PARAMS, "threads", "must be in 1..%d (got %d)",
                            AC_ENCODER_MAX_THREADS, n);
    stop_workers(e);
    size_t sf = ac_encoder_attention_scratch_floats(e->cfg.d_model, e->cfg.n_heads, e->cfg.max_len);
    for (int t = 1; t < n; t++)
        if (e->_attn[t] == NULL && (e->_attn[t] = malloc(sizeof(float) * sf)) == NULL)
            return ac_err_set(err, AC_ERR_INTERNAL, "encoder: out of memory");
    for (int t = 0; t < n - 1; t++) {
        worker_arg_t *wa = malloc(sizeof *wa); /* the worker frees it */
        if (wa != NULL)
            *wa = (worker_arg_t){e, t + 1, e->_gen};
        if (wa == NULL || pthread_create(&e->_workers[t], NULL, worker_main, wa) != 0) {
            free(wa);
            e->_n_threads = t + 1; /* the ones started so far */
            stop_workers(e);
            return ac_err_set(err, AC_ERR_INTERNAL, "encoder: cannot start a worker thread");
        }
    }
    e->_n_threads = n;
    return 0;
}

/* _chunk: the sequences of the last forward in N_CHUNKS contiguous chunks of about equal
 * attention work (~T^2 per sequence, plus the per-row work); some may be empty. */
static void split_chunks(ac_encoder_t *e, int B)
{
    const int *off = e->_offsets;
    double total = 0;
    for (int b = 0; b < B; b++) {
        double T = off[b + 1] - off[b];
        total += T * (T + 8);
    }
    double acc = 0;
    int c = 1;
    e->_chunk[0] = 0;
    for (int b = 0; b < B && c < N_CHUNKS; b++) {
        double T = off[b + 1] - off[b];
        acc += T * (T + 8);
        while (c < N_CHUNKS && acc >= total * c / N_CHUNKS)
            e->_chunk[c++] = b + 1;
    }
    while (c <= N_CHUNKS)
        e->_chunk[c++] = B;
}

/* Attention and GELU over all chunks (run_parts jobs: every thread takes chunks until none is
 * left). Which thread computes a chunk does not change its result. */
typedef struct attn_job {
    int backward;
    float *out;        /* forward: o (N, D); backward: dqkv (N, 3D) */
    float *lse;        /* (N, H): written by forward, read by backward */
    const float *qkv;  /* (N, 3D) */
    const float *dout; /* backward: do (N, D) */
    atomic_int next;   /* the next chunk to take */
} attn_job_t;

static void attn_part(ac_encoder_t *e, int part, void *arg)
{
    attn_job_t *j = arg;
    const int D = e->cfg.d_model, H = e->cfg.n_heads;
    for (;;) {
        int c = atomic_fetch_add_explicit(&j->next, 1, memory_order_relaxed);
        if (c >= N_CHUNKS)
            return;
        int b0 = e->_chunk[c], nb = e->_chunk[c + 1] - b0;
        if (nb <= 0)
            continue;
        if (j->backward)
            ac_encoder_attention_backward(j->out, j->dout, j->qkv, j->lse, e->_offsets + b0, nb, D, H,
                                          e->_attn[part]);
        else
            ac_encoder_attention_forward(j->out, j->lse, j->qkv, e->_offsets + b0, nb, D, H, e->_attn[part]);
    }
}

typedef struct gelu_job {
    int backward;
    float *out;      /* forward: u (n); backward: dh (n) */
    const float *in; /* forward: h (n); backward: du (n) */
    const float *h;  /* backward: h (n) */
    size_t n;
    atomic_int next; /* the next chunk to take */
} gelu_job_t;

static void gelu_part(ac_encoder_t *e, int part, void *arg)
{
    (void)e, (void)part;
    gelu_job_t *j = arg;
    size_t per = (j->n / N_CHUNKS + 16) & ~(size_t)15; /* whole vectors per chunk */
    for (;;) {
        size_t i0 = per * (size_t)atomic_fetch_add_explicit(&j->next, 1, memory_order_relaxed);
        if (i0 >= j->n)
            return;
        size_t i1 = i0 + per < j->n ? i0 + per : j->n;
        if (j->backward)
            ac_encoder_gelu_backward(j->out + i0, j->in + i0, j->h + i0, i1 - i0);
        else
            ac_encoder_gelu_forward(j->out + i0, j->in + i0, i1 - i0);
    }
}

void ac_encoder_set_timing(ac_encoder_t *e, ac_encoder_timing_t *t) { e->_timing = t; }

static inline double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Runs stmt, adding its duration to e->_timing->field when timing is on. */
#define TIMED(e, field, stmt)                                                                      \
    do {                                                                                           \
        double t0_ = (e)->_timing ? now_s() : 0.0;                                                 \
        stmt;                                                                                      \
        if ((e)->_timing)                                                                          \
            (e)->_timing->field += now_s() - t0_;                                                  \
    } while (0)

ac_encoder_t *ac_encoder_create(const ac_encoder_config_t *cfg, ac_err_t *err)
{
    if (ac_encoder_config_check(cfg, err) != 0)
        return NULL;
    ac_encoder_t *e = calloc(1, sizeof *e);
    if (e == NULL) {
        ac_err_set(err, AC_ERR_INTERNAL, "encoder: out of memory");
        return NULL;
    }
    e->cfg = *cfg;
    e->n_params = ac_encoder_n_params(cfg);
    e->_n_threads = 1;
    pthread_mutex_init(&e->_mu, NULL);
    pthread_cond_init(&e->_go, NULL);
    pthread_cond_init(&e->_done, NULL);
    e->_attn[0] = malloc(sizeof(float) * ac_encoder_attention_scratch_floats(cfg->d_model, cfg->n_heads, cfg->max_len));
    if (e->_attn[0] == NULL) {
        ac_encoder_destroy(e);
        ac_err_set(err, AC_ERR_INTERNAL, "encoder: out of memory");
        return NULL;
    }
    return e;
}

void ac_encoder_destroy(ac_encoder_t *e)
{
    if (e == NULL)
        return;
    stop_workers(e);
    pthread_mutex_destroy(&e->_mu);
    pthread_cond_destroy(&e->_go);
    pthread_cond_destroy(&e->_done);
    free(e->_arena);
    free(e->_offsets);
    for (int t = 0; t < AC_ENCODER_MAX_THREADS; t++)
        free(e->_attn[t]);
    free(e);
}

const ac_encoder_config_t *ac_encoder_config(const ac_encoder_t *e) { return &e->cfg; }

/* Hands out n floats from *p, keeping every buffer 64-byte aligned (the arena is). When arena
 * is NULL only counts. */
static float *carve(float *arena, size_t *used, size_t n)
{
    float *p = arena ? arena + *used : NULL;
    *used += (n + 15) & ~(size_t)15;
    return p;
}

/* Lays out (or, with arena NULL, just sizes) the workspace for cap tokens. */
static size_t layout(ac_encoder_t *e, float *arena, size_t cap)
{
    const size_t D = (size_t)e->cfg.d_model, F = (size_t)e->cfg.d_ff, H = (size_t)e->cfg.n_heads;
    const int L = e->cfg.n_layers;
    size_t used = 0;
    for (int l = 0; l <= L; l++)
        e->_x[l] = carve(arena, &used, cap * D);
    for (int l = 0; l < L; l++) {
        layer_acts_t *a = &e->_l[l];
        a->a = carve(arena, &used, cap * D);
        a->mean1 = carve(arena, &used, cap);
        a->rstd1 = carve(arena, &used, cap);
        a->qkv = carve(arena, &used, cap * 3 * D);
        a->o = carve(arena, &used, cap * D);
        a->lse = carve(arena, &used, cap * H);
        a->xmid = carve(arena, &used, cap * D);
        a->m = carve(arena, &used, cap * D);
        a->mean2 = carve(arena, &used, cap);
        a->rstd2 = carve(arena, &used, cap);
        a->h = carve(arena, &used, cap * F);
        a->u = carve(arena, &used, cap * F);
    }
    e->_meanf = carve(arena, &used, cap);
    e->_rstdf = carve(arena, &used, cap);
    e->_dres = carve(arena, &used, cap * D);
    e->_dtmp = carve(arena, &used, cap * D);
    e->_dqkv = carve(arena, &used, cap * 3 * D);
    e->_dh = carve(arena, &used, cap * F);
    return used;
}

int ac_encoder_reserve(ac_encoder_t *e, int n_tok, int n_seq, ac_err_t *err)
{
    if (n_tok < 1 || n_seq < 1)
        return ac_err_set(err, AC_ERR_INVALID_PARAMS, "encoder reserve: n_tok and n_seq must be >= 1 (got %d, %d)",
                          n_tok, n_seq);
    if (n_seq > e->_cap_seq) {
        free(e->_offsets);
        e->_offsets = malloc(sizeof(int) * ((size_t)n_seq + 1));
        e->_n_seq = 0;
        e->_cap_seq = e->_offsets ? n_seq : 0;
        if (e->_offsets == NULL)
            return ac_err_set(err, AC_ERR_INTERNAL, "encoder workspace: out of memory (%d sequences)", n_seq);
    }
    if (n_tok > e->_cap_tok) {
        /* Free first: the contents need not survive, and realloc would copy them. */
        free(e->_arena);
        e->_n_seq = 0;
        size_t n = layout(e, NULL, (size_t)n_tok);
        e->_arena = aligned_alloc(64, sizeof(float) * n);
        e->_cap_tok = e->_arena ? n_tok : 0;
        if (e->_arena == NULL)
            return ac_err_set(err, AC_ERR_INTERNAL, "encoder workspace: out of memory (%d tokens, %zu MB)",
                              n_tok, sizeof(float) * n >> 20);
        layout(e, e->_arena, (size_t)n_tok);
    }
    return 0;
}

/* offsets (B + 1): start at 0, every sequence 1..max_len rows. */
static int check_offsets(const int *offsets, int B, int max_len, ac_err_t *err)
{
    if (B < 1)
        return ac_err_field(err, AC_ERR_INVALID_PARAMS, "B", "must be >= 1 (got %d)", B);
    if (offsets[0] != 0)
        return ac_err_field(err, AC_ERR_INVALID_PARAMS, "offsets", "offsets[0] must be 0 (got %d)",
                            offsets[0]);
    for (int b = 0; b < B; b++) {
        /* in 64 bits: offsets near INT_MAX must not overflow the difference */
        long long len = (long long)offsets[b + 1] - offsets[b];
        if (len < 1)
            return ac_err_field(err, AC_ERR_INVALID_PARAMS, "offsets",
                                "sequence %d is empty or offsets decrease (offsets[%d] = %d, offsets[%d] = %d)",
                                b, b, offsets[b], b + 1, offsets[b + 1]);
        if (len > max_len)
            return ac_err_field(err, AC_ERR_INVALID_PARAMS, "offsets",
                                "sequence %d has %lld tokens, more than max_len %d", b, len, max_len);
    }
    return 0;
}

int ac_encoder_forward(ac_encoder_t *e, float *Y, const float *params, const float *X, const int *offsets,
                       int B, ac_err_t *err)
{
    if (e == NULL || Y == NULL || params == NULL || X == NULL || offsets == NULL)
        return ac_err_set(err, AC_ERR_INVALID_PARAMS, "encoder forward: NULL argument");
    const ac_encoder_config_t *c = &e->cfg;
    if (check_offsets(offsets, B, c->max_len, err) != 0)
        return -1;
    const int N = offsets[B], D = c->d_model, F = c->d_ff, L = c->n_layers;
    if ((N > e->_cap_tok || B > e->_cap_seq) &&
        ac_encoder_reserve(e, N > e->_cap_tok ? N : e->_cap_tok, B > e->_cap_seq ? B : e->_cap_seq, err) != 0)
        return -1;
    e->_n_seq = 0; /* until this forward is complete */
    TIMED(e, other, memcpy(e->_offsets, offsets, sizeof(int) * ((size_t)B + 1));
          memcpy(e->_x[0], X, sizeof(float) * (size_t)N * D); split_chunks(e, B));
    for (int l = 0; l < L; l++) {
        layer_acts_t *a = &e->_l[l];
        const float *p[AC_ENCODER_N_LAYER_TENSORS];
        for (int k = 0; k < AC_ENCODER_N_LAYER_TENSORS; k++)
            p[k] = params + ac_encoder_tensor(c, l, k, NULL);
        TIMED(e, norm, ac_encoder_layernorm_forward(a->a, a->mean1, a->rstd1, e->_x[l], p[AC_ENCODER_LN1_G],
                                                    p[AC_ENCODER_LN1_B], N, D));
        /* qkv = a Wqkv + bqkv */
        TIMED(e, bias, matmul_init(a->qkv, NULL, p[AC_ENCODER_BQKV], N, 3 * D));
        TIMED(e, sgemm, matmul_sgemm(a->qkv, a->a, p[AC_ENCODER_WQKV], N, D, 3 * D));
        attn_job_t aj = {0, a->o, a->lse, a->qkv, NULL, 0};
        TIMED(e, attn, run_parts(e, attn_part, &aj));
        /* xmid = x + o Wo + bo */
        TIMED(e, bias, matmul_init(a->xmid, e->_x[l], p[AC_ENCODER_BO], N, D));
        TIMED(e, sgemm, matmul_sgemm(a->xmid, a->o, p[AC_ENCODER_WO], N, D, D));
        TIMED(e, norm, ac_encoder_layernorm_forward(a->m, a->mean2, a->rstd2, a->xmid, p[AC_ENCODER_LN2_G],
                                                    p[AC_ENCODER_LN2_B], N, D));
        /* u = gelu(m W1 + b1) */
        TIMED(e, bias, matmul_init(a->h, NULL, p[AC_ENCODER_B1], N, F));
        TIMED(e, sgemm, matmul_sgemm(a->h, a->m, p[AC_ENCODER_W1], N, D, F));
        gelu_job_t gj = {0, a->u, a->h, NULL, (size_t)N * F, 0};
        TIMED(e, gelu, run_parts(e, gelu_part, &gj));
        /* x_{l+1} = xmid + u W2 + b2 */
        TIMED(e, bias, matmul_init(e->_x[l + 1], a->xmid, p[AC_ENCODER_B2], N, D));
        TIMED(e, sgemm, matmul_sgemm(e->_x[l + 1], a->u, p[AC_ENCODER_W2], N, F, D));
    }
    TIMED(e, norm, ac_encoder_layernorm_forward(Y, e->_meanf, e->_rstdf, e->_x[L],
                                                params + ac_encoder_tensor(c, L, AC_ENCODER_LNF_G, NULL),
                                                params + ac_encoder_tensor(c, L, AC_ENCODER_LNF_B, NULL), N, D));
    e->_n_tok = N;
    e->_n_seq = B;
    return 0;
}

int ac_encoder_backward(ac_encoder_t *e, float *dX, float *grads, const float *params, const float *dY,
                        ac_err_t *err)
{
    if (e == NULL || grads == NULL || params == NULL || dY == NULL)
        return ac_err_set(err, AC_ERR_INVALID_PARAMS, "encoder backward: NULL argument");
    if (e->_n_seq == 0)
        return ac_err_set(err, AC_ERR_INVALID_PARAMS, "encoder backward: no forward to go back through");
    const ac_encoder_config_t *c = &e->cfg;
    const int N = e->_n_tok, D = c->d_model, F = c->d_ff, L = c->n_layers;
    /* The residual stream's gradient; dX itself when wanted (it ends there anyway). */
    float *dres = dX ? dX : e->_dres; /* (N, D) */
    float *dh = e->_dh, *dtmp = e->_dtmp, *dqkv = e->_dqkv; /* (N, F), (N, D), (N, 3D) */
    TIMED(e, other, memset(dres, 0, sizeof(float) * (size_t)N * D));
    size_t gf = ac_encoder_tensor(c, L, AC_ENCODER_LNF_G, NULL), bf = ac_encoder_tensor(c, L, AC_ENCODER_LNF_B, NULL);
    TIMED(e, norm, ac_encoder_layernorm_backward(dres, grads + gf, grads + bf, dY, e->_x[L], e->_meanf, e->_rstdf,
                                                 params + gf, N, D));
    for (int l = L - 1; l >= 0; l--) {
        layer_acts_t *a = &e->_l[l];
        const float *p[AC_ENCODER_N_LAYER_TENSORS];
        float *g[AC_ENCODER_N_LAYER_TENSORS];
        for (int k = 0; k < AC_ENCODER_N_LAYER_TENSORS; k++) {
            size_t off = ac_encoder_tensor(c, l, k, NULL);
            p[k] = params + off;
            g[k] = grads + off;
        }
        /* x_{l+1} = xmid + u W2 + b2: dres flows to xmid unchanged and through the MLP */
        TIMED(e, sgemm, matmul_sgemm_dw(g[AC_ENCODER_W2], dres, a->u, N, F, D));
        TIMED(e, bias, bias_backward(g[AC_ENCODER_B2], dres, N, D));
        TIMED(e, sgemm, matmul_sgemm_dx(dh, dres, p[AC_ENCODER_W2], N, F, D)); /* du */
        gelu_job_t gj = {1, dh, dh, a->h, (size_t)N * F, 0};
        TIMED(e, gelu, run_parts(e, gelu_part, &gj));
        TIMED(e, sgemm, matmul_sgemm_dw(g[AC_ENCODER_W1], dh, a->m, N, D, F));
        TIMED(e, bias, bias_backward(g[AC_ENCODER_B1], dh, N, F));
        TIMED(e, sgemm, matmul_sgemm_dx(dtmp, dh, p[AC_ENCODER_W1], N, D, F)); /* dm */
        TIMED(e, norm, ac_encoder_layernorm_backward(dres, g[AC_ENCODER_LN2_G], g[AC_ENCODER_LN2_B], dtmp, a->xmid,
                                                     a->mean2, a->rstd2, p[AC_ENCODER_LN2_G], N, D));
        /* xmid = x_l + o Wo + bo */
        TIMED(e, sgemm, matmul_sgemm_dw(g[AC_ENCODER_WO], dres, a->o, N, D, D));
        TIMED(e, bias, bias_backward(g[AC_ENCODER_BO], dres, N, D));
        TIMED(e, sgemm, matmul_sgemm_dx(dtmp, dres, p[AC_ENCODER_WO], N, D, D)); /* do */
        attn_job_t aj = {1, dqkv, a->lse, a->qkv, dtmp, 0};
        TIMED(e, attn, run_parts(e, attn_part, &aj));
        TIMED(e, sgemm, matmul_sgemm_dw(g[AC_ENCODER_WQKV], dqkv, a->a, N, D, 3 * D));
        TIMED(e, bias, bias_backward(g[AC_ENCODER_BQKV], dqkv, N, 3 * D));
        TIMED(e, sgemm, matmul_sgemm_dx(dtmp, dqkv, p[AC_ENCODER_WQKV], N, D, 3 * D)); /* da */
        TIMED(e, norm, ac_encoder_layernorm_backward(dres, g[AC_ENCODER_LN1_G], g[AC_ENCODER_LN1_B], dtmp, e->_x[l],
                                                     a->mean1, a->rstd1, p[AC_ENCODER_LN1_G], N, D));
    }
    return 0;
}

/* ---- reference forward -------------------------------------------------------------------- */

int ac_encoder_forward_ref_d(double *Y, const double *params, const ac_encoder_config_t *c, const double *X,
                             const int *offsets, int B, ac_err_t *err)
{
    if (Y == NULL || params == NULL || X == NULL || offsets == NULL)
        return ac_err_set(err, AC_ERR_INVALID_PARAMS, "encoder reference: NULL argument");
    if (ac_encoder_config_check(c, err) != 0 || check_offsets(offsets, B, c->max_len, err) != 0)
        return -1;
    const int N = offsets[B], D = c->d_model, F = c->d_ff, H = c->n_heads, L = c->n_layers;
    double *x = malloc(sizeof(double) * N * D);       /* (N, D) residual stream */
    double *a = malloc(sizeof(double) * N * D);       /* (N, D) LayerNorm output */
    double *qkv = malloc(sizeof(double) * N * 3 * D); /* (N, 3D) */
    double *o = malloc(sizeof(double) * N * D);       /* (N, D) attention output, then projections */
    double *h = malloc(sizeof(double) * N * F);       /* (N, F) MLP hidden */
    int rc = 0;
    if (!x || !a || !qkv || !o || !h) {
        rc = ac_err_set(err, AC_ERR_INTERNAL, "encoder reference: out of memory");
        goto out;
    }
    memcpy(x, X, sizeof(double) * N * D);
    for (int l = 0; l < L; l++) {
        const double *p[AC_ENCODER_N_LAYER_TENSORS];
        for (int k = 0; k < AC_ENCODER_N_LAYER_TENSORS; k++)
            p[k] = params + ac_encoder_tensor(c, l, k, NULL);
        ac_encoder_ref_layernorm(a, x, p[AC_ENCODER_LN1_G], p[AC_ENCODER_LN1_B], N, D);
        ac_encoder_ref_matmul(qkv, a, p[AC_ENCODER_WQKV], p[AC_ENCODER_BQKV], N, D, 3 * D);
        ac_encoder_ref_attention(o, qkv, offsets, B, D, H);
        ac_encoder_ref_matmul(a, o, p[AC_ENCODER_WO], p[AC_ENCODER_BO], N, D, D);
        for (size_t i = 0; i < (size_t)N * D; i++)
            x[i] += a[i];
        ac_encoder_ref_layernorm(a, x, p[AC_ENCODER_LN2_G], p[AC_ENCODER_LN2_B], N, D);
        ac_encoder_ref_matmul(h, a, p[AC_ENCODER_W1], p[AC_ENCODER_B1], N, D, F);
        ac_encoder_ref_gelu(h, h, (size_t)N * F);
        ac_encoder_ref_matmul(o, h, p[AC_ENCODER_W2], p[AC_ENCODER_B2], N, F, D);
        for (size_t i = 0; i < (size_t)N * D; i++)
            x[i] += o[i];
    }
    ac_encoder_ref_layernorm(Y, x, params + ac_encoder_tensor(c, L, AC_ENCODER_LNF_G, NULL),
                             params + ac_encoder_tensor(c, L, AC_ENCODER_LNF_B, NULL), N, D);
out:
    free(x);
    free(a);
    free(qkv);
    free(o);
    free(h);
    return rc;
}

int ac_encoder_forward_ref(double *Y, const float *params, const ac_encoder_config_t *c, const float *X,
                           const int *offsets, int B, ac_err_t *err)
{
    if (Y == NULL || params == NULL || X == NULL || offsets == NULL)
        return ac_err_set(err, AC_ERR_INVALID_PARAMS, "encoder reference: NULL argument");
    if (ac_encoder_config_check(c, err) != 0 || check_offsets(offsets, B, c->max_len, err) != 0)
        return -1;
    size_t np = ac_encoder_n_params(c), nx = (size_t)offsets[B] * c->d_model;
    double *pd = malloc(sizeof(double) * np), *xd = malloc(sizeof(double) * nx);
    int rc;
    if (!pd || !xd) {
        rc = ac_err_set(err, AC_ERR_INTERNAL, "encoder reference: out of memory");
    } else {
        for (size_t i = 0; i < np; i++)
            pd[i] = params[i];
        for (size_t i = 0; i < nx; i++)
            xd[i] = X[i];
        rc = ac_encoder_forward_ref_d(Y, pd, c, xd, offsets, B, err);
    }
    free(pd);
    free(xd);
    return rc;
}
