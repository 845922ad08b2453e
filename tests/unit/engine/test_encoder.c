/* Encoder: fast forward vs the naive double reference; every kernel's gradient (LayerNorm,
 * attention, GELU MLP, one block, the whole encoder) vs central differences of the double
 * reference; packing is exact (no leak across sequences, gradients add up); errors.
 *
 * `test_encoder --dump FILE` writes inputs and this build's outputs and gradients as JSON for
 * tests/ref/encoder_ref.py (PyTorch autograd in float64). */
#include <stdlib.h>

#include "engine/blas.h"
#include "engine/encoder.h"
#include "engine_check.h"

/* ---- helpers ------------------------------------------------------------------------------ */

static const char *g_flav = ""; /* the SIMD flavour under test, in the check names */

static void fill_normal(float *x, size_t n, double std, ac_rng_t *rng)
{
    for (size_t i = 0; i < n; i++)
        x[i] = (float)(std * ac_rng_normal(rng));
}

static void fill_normal_d(double *x, size_t n, double std, ac_rng_t *rng)
{
    for (size_t i = 0; i < n; i++)
        x[i] = std * ac_rng_normal(rng);
}

/* Parameters far from the init, so that every path carries weight: matrices N(0, 1/fan_in)
 * (scores and activations O(1), softmax far from uniform), gains 1 + N(0, 0.2^2), biases
 * N(0, 0.2^2). */
static void random_params(float *p, const ac_encoder_config_t *c, ac_rng_t *rng)
{
    for (int l = 0; l <= c->n_layers; l++) {
        int final = l == c->n_layers, n_t = final ? 2 : AC_ENCODER_N_LAYER_TENSORS;
        for (int k = 0; k < n_t; k++) {
            size_t n, off = ac_encoder_tensor(c, l, k, &n);
            int gain = final ? k == AC_ENCODER_LNF_G : (k == AC_ENCODER_LN1_G || k == AC_ENCODER_LN2_G);
            int fan_in = 0;
            if (!final && (k == AC_ENCODER_WQKV || k == AC_ENCODER_WO || k == AC_ENCODER_W1))
                fan_in = c->d_model;
            if (!final && k == AC_ENCODER_W2)
                fan_in = c->d_ff;
            if (fan_in) {
                fill_normal(p + off, n, 1.0 / sqrt(fan_in), rng);
            } else {
                fill_normal(p + off, n, 0.2, rng);
                for (size_t i = 0; gain && i < n; i++)
                    p[off + i] += 1.0f;
            }
        }
    }
}

static void lens_to_offsets(int *offsets, const int *lens, int B)
{
    offsets[0] = 0;
    for (int b = 0; b < B; b++)
        offsets[b + 1] = offsets[b] + lens[b];
}

/* Worst element of analytic a vs numeric n by |a - n| / max(floor, |a| + |n|), where floor is
 * 1e-2 of the tensor's largest numeric gradient (at least floor_abs): robust to tiny and exactly
 * zero gradients (the key bias's is 0 in exact arithmetic: softmax ignores a per-row constant),
 * whose float analytic value is rounding noise. Fails above tol, on NaN, or when the numeric
 * gradient is all zero (the check would then prove nothing). */
static int check_grad(const float *a, const double *n, size_t cnt, size_t stride, double floor_abs, double tol,
                      const char *what)
{
    double worst = 0, mag = 0;
    size_t wi = 0;
    for (size_t i = 0; i < cnt; i += stride)
        mag = fabs(n[i]) > mag ? fabs(n[i]) : mag;
    double floor = 1e-2 * mag > floor_abs ? 1e-2 * mag : floor_abs;
    for (size_t i = 0; i < cnt; i += stride) {
        double den = fabs(a[i]) + fabs(n[i]);
        double e = fabs(a[i] - n[i]) / (den > floor ? den : floor);
        if (!(e <= worst)) { /* NaN-safe */
            worst = isnan(e) ? INFINITY : e;
            wi = i;
        }
    }
    int ok = worst <= tol && mag > 0;
    fprintf(stderr, "%s %-26s max rel err %.2e at [%zu] (analytic %.6g, numeric %.6g), max|g| %.3g, n=%zu\n",
            ok ? "ok  " : "FAIL", what, worst, wi, cnt ? a[wi] : 0.0, cnt ? n[wi] : 0.0, mag,
            (cnt + stride - 1) / stride);
    if (!ok)
        failures++;
    return ok;
}

/* Central difference of f at x[i] in double: (f(x + h) - f(x - h)) / 2h. */
typedef double (*loss_fn)(void *ctx);
static double central(double *x, double h, loss_fn f, void *ctx)
{
    double orig = *x;
    *x = orig + h;
    double lp = f(ctx);
    *x = orig - h;
    double lm = f(ctx);
    *x = orig;
    return (lp - lm) / (2 * h);
}

#define FD_H 1e-4   /* step: truncation O(h^2) ~ 1e-8 relative, rounding ~1e-12 */
#define FD_FLOOR 1e-3
#define FD_TOL 1e-3 /* float analytic vs double numeric: observed <= ~1e-4; a wrong term gives O(1) */

static double dot_d(const double *y, const double *r, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += y[i] * r[i];
    return s;
}

/* ---- 1. fast forward vs the double reference ---------------------------------------------- */

static void test_forward_vs_ref(ac_encoder_config_t c, const int *lens, int B, const char *label)
{
    ac_err_t err = AC_ERR_INIT;
    ac_rng_t rng;
    ac_rng_seed(&rng, 1);
    int offsets[64];
    lens_to_offsets(offsets, lens, B);
    int N = offsets[B], D = c.d_model;
    size_t np = ac_encoder_n_params(&c);
    float *p = malloc(sizeof(float) * np), *X = malloc(sizeof(float) * N * D), *Y = malloc(sizeof(float) * N * D);
    double *Yr = malloc(sizeof(double) * N * D), *Yd = malloc(sizeof(double) * N * D);
    ac_encoder_t *e = ac_encoder_create(&c, &err);
    CHECK(e != NULL);
    char name[96];
    for (int variant = 0; variant < 2; variant++) {
        if (variant == 0)
            ac_encoder_init(p, &c, &rng); /* what training starts from */
        else
            random_params(p, &c, &rng); /* far from it */
        fill_normal(X, (size_t)N * D, 1.0, &rng);
        CHECK(ac_encoder_forward(e, Y, p, X, offsets, B, &err) == 0);
        CHECK(ac_encoder_forward_ref(Yr, p, &c, X, offsets, B, &err) == 0);
        for (int i = 0; i < N * D; i++)
            Yd[i] = Y[i];
        snprintf(name, sizeof name, "Y fast vs ref/%s/%s/%s", label, variant ? "random" : "init", g_flav);
        check_close_d(Yd, Yr, (size_t)N * D, 0, 1e-4, name);
    }
    ac_encoder_destroy(e);
    free(p);
    free(X);
    free(Y);
    free(Yr);
    free(Yd);
}

/* ---- 2. finite differences, kernel by kernel ---------------------------------------------- */

/* LayerNorm: L = sum(LN(x; g, b) * R). */
typedef struct {
    int N, C;
    double *x, *g, *b, *R, *y;
} ln_ctx;

static double ln_loss(void *v)
{
    ln_ctx *t = v;
    ac_encoder_ref_layernorm(t->y, t->x, t->g, t->b, t->N, t->C);
    return dot_d(t->y, t->R, (size_t)t->N * t->C);
}

static void test_fd_layernorm(void)
{
    enum { N = 6, C = 13 }; /* C not a multiple of 4: the scalar tails run too */
    ac_rng_t rng;
    ac_rng_seed(&rng, 2);
    double x[N * C], g[C], b[C], R[N * C], y[N * C], num[N * C];
    fill_normal_d(x, N * C, 1.5, &rng);
    for (int i = 0; i < N * C; i++)
        x[i] += 0.7 * (i / C); /* rows with different means */
    fill_normal_d(g, C, 0.3, &rng);
    for (int i = 0; i < C; i++)
        g[i] += 1.0;
    fill_normal_d(b, C, 0.3, &rng);
    fill_normal_d(R, N * C, 1.0, &rng);
    float xf[N * C], gf[C], bf[C], Rf[N * C], out[N * C], mean[N], rstd[N];
    float dx[N * C] = {0}, dg[C] = {0}, db[C] = {0};
    for (int i = 0; i < N * C; i++)
        xf[i] = (float)x[i], Rf[i] = (float)R[i];
    for (int i = 0; i < C; i++)
        gf[i] = (float)g[i], bf[i] = (float)b[i];
    ac_encoder_layernorm_forward(out, mean, rstd, xf, gf, bf, N, C);
    ac_encoder_layernorm_backward(dx, dg, db, Rf, xf, mean, rstd, gf, N, C);
    ln_ctx t = {N, C, x, g, b, R, y};
    for (int i = 0; i < N * C; i++)
        num[i] = central(&x[i], FD_H, ln_loss, &t);
    check_grad(dx, num, N * C, 1, FD_FLOOR, FD_TOL, "layernorm dx");
    for (int i = 0; i < C; i++)
        num[i] = central(&g[i], FD_H, ln_loss, &t);
    check_grad(dg, num, C, 1, FD_FLOOR, FD_TOL, "layernorm dg");
    for (int i = 0; i < C; i++)
        num[i] = central(&b[i], FD_H, ln_loss, &t);
    check_grad(db, num, C, 1, FD_FLOOR, FD_TOL, "layernorm db");
    /* forward vs the reference too */
    double od[N * C];
    ac_encoder_ref_layernorm(y, x, g, b, N, C);
    for (int i = 0; i < N * C; i++)
        od[i] = out[i];
    check_close_d(od, y, N * C, 0, 1e-5, "layernorm forward");
}

/* Attention: L = sum(attn(qkv) * R). */
typedef struct {
    const int *offsets;
    int B, D, H, N;
    double *qkv, *R, *o;
} attn_ctx;

static double attn_loss(void *v)
{
    attn_ctx *t = v;
    ac_encoder_ref_attention(t->o, t->qkv, t->offsets, t->B, t->D, t->H);
    return dot_d(t->o, t->R, (size_t)t->N * t->D);
}

static void test_fd_attention(int D, int H, const char *label)
{
    /* lengths cover 1 (softmax of one), the 4x8 blocks and every tail */
    static const int lens[] = {5, 1, 11, 3, 17, 8};
    const int B = 6, max_len = 17;
    int offsets[7];
    lens_to_offsets(offsets, lens, B);
    const int N = offsets[B], D3 = 3 * D;
    ac_rng_t rng;
    ac_rng_seed(&rng, 3);
    double *qkv = malloc(sizeof(double) * N * D3), *R = malloc(sizeof(double) * N * D);
    double *o = malloc(sizeof(double) * N * D), *num = malloc(sizeof(double) * N * D3);
    float *qf = malloc(sizeof(float) * N * D3), *Rf = malloc(sizeof(float) * N * D);
    float *of = malloc(sizeof(float) * N * D), *lse = malloc(sizeof(float) * N * H);
    float *dqkv = malloc(sizeof(float) * N * D3);
    float *scratch = malloc(sizeof(float) * ac_encoder_attention_scratch_floats(D, H, max_len));
    /* scores q.k / sqrt(dh) of O(1..3): peaked but not one-hot softmax rows */
    fill_normal_d(qkv, (size_t)N * D3, 1.2, &rng);
    fill_normal_d(R, (size_t)N * D, 1.0, &rng);
    for (int i = 0; i < N * D3; i++)
        qf[i] = (float)qkv[i];
    for (int i = 0; i < N * D; i++)
        Rf[i] = (float)R[i];
    ac_encoder_attention_forward(of, lse, qf, offsets, B, D, H, scratch);
    ac_encoder_attention_backward(dqkv, Rf, qf, lse, offsets, B, D, H, scratch);
    attn_ctx t = {offsets, B, D, H, N, qkv, R, o};
    ac_encoder_ref_attention(o, qkv, offsets, B, D, H);
    double *od = malloc(sizeof(double) * N * D);
    for (int i = 0; i < N * D; i++)
        od[i] = of[i];
    char name[96];
    snprintf(name, sizeof name, "attention forward/%s/%s", label, g_flav);
    check_close_d(od, o, (size_t)N * D, 0, 1e-5, name);
    for (int i = 0; i < N * D3; i++)
        num[i] = central(&qkv[i], FD_H, attn_loss, &t);
    /* q, k and v columns reported apart: gather them per part */
    float *a = malloc(sizeof(float) * N * D);
    double *nn = malloc(sizeof(double) * N * D);
    const char *part[3] = {"dq", "dk", "dv"};
    for (int s = 0; s < 3; s++) {
        for (int i = 0; i < N; i++)
            for (int d = 0; d < D; d++) {
                a[i * D + d] = dqkv[(size_t)i * D3 + s * D + d];
                nn[i * D + d] = num[(size_t)i * D3 + s * D + d];
            }
        snprintf(name, sizeof name, "attention %s/%s/%s", part[s], label, g_flav);
        check_grad(a, nn, (size_t)N * D, 1, FD_FLOOR, FD_TOL, name);
    }
    free(a);
    free(nn);
    free(od);
    free(qkv);
    free(R);
    free(o);
    free(num);
    free(qf);
    free(Rf);
    free(of);
    free(lse);
    free(dqkv);
    free(scratch);
}

/* GELU MLP: y = gelu(m W1 + b1) W2 + b2, L = sum(y * R). */
typedef struct {
    int N, D, F;
    double *m, *W1, *b1, *W2, *b2, *R, *h, *y;
} mlp_ctx;

static double mlp_loss(void *v)
{
    mlp_ctx *t = v;
    ac_encoder_ref_matmul(t->h, t->m, t->W1, t->b1, t->N, t->D, t->F);
    ac_encoder_ref_gelu(t->h, t->h, (size_t)t->N * t->F);
    ac_encoder_ref_matmul(t->y, t->h, t->W2, t->b2, t->N, t->F, t->D);
    return dot_d(t->y, t->R, (size_t)t->N * t->D);
}

static void test_fd_mlp(void)
{
    enum { N = 9, D = 10, F = 23 };
    ac_rng_t rng;
    ac_rng_seed(&rng, 4);
    double m[N * D], W1[D * F], b1[F], W2[F * D], b2[D], R[N * D], h[N * F], y[N * D], num[D * F];
    fill_normal_d(m, N * D, 1.0, &rng);
    fill_normal_d(W1, D * F, 2.0 / sqrt(D), &rng); /* pre-activations N(0, 4): GELU's whole range */
    fill_normal_d(b1, F, 0.5, &rng);
    fill_normal_d(W2, F * D, 1.0 / sqrt(F), &rng);
    fill_normal_d(b2, D, 0.5, &rng);
    fill_normal_d(R, N * D, 1.0, &rng);
    float mf[N * D], W1f[D * F], b1f[F], W2f[F * D], b2f[D], Rf[N * D], hf[N * F], uf[N * F], yf[N * D];
    float dm[N * D], dW1[D * F] = {0}, db1[F] = {0}, dW2[F * D] = {0}, db2[D] = {0}, dh[N * F];
#define TOF(dst, src, n)                                                                          \
    for (int i = 0; i < (n); i++)                                                                 \
        dst[i] = (float)src[i];
    TOF(mf, m, N * D) TOF(W1f, W1, D * F) TOF(b1f, b1, F) TOF(W2f, W2, F * D) TOF(b2f, b2, D) TOF(Rf, R, N * D)
#undef TOF
    ac_encoder_matmul_forward(hf, NULL, mf, W1f, b1f, N, D, F);
    ac_encoder_gelu_forward(uf, hf, N * F);
    ac_encoder_matmul_forward(yf, NULL, uf, W2f, b2f, N, F, D);
    ac_encoder_matmul_backward(dh, dW2, db2, Rf, uf, W2f, N, F, D);
    ac_encoder_gelu_backward(dh, dh, hf, N * F);
    ac_encoder_matmul_backward(dm, dW1, db1, dh, mf, W1f, N, D, F);
    mlp_ctx t = {N, D, F, m, W1, b1, W2, b2, R, h, y};
    mlp_loss(&t);
    double yd[N * D];
    for (int i = 0; i < N * D; i++)
        yd[i] = yf[i];
    char name[96];
    snprintf(name, sizeof name, "gelu mlp forward/%s", g_flav);
    check_close_d(yd, y, N * D, 0, 2e-5, name);
    struct {
        double *x;
        float *g;
        int n;
        const char *name;
    } ts[] = {{m, dm, N * D, "mlp dm"}, {W1, dW1, D * F, "mlp dW1"}, {b1, db1, F, "mlp db1"},
              {W2, dW2, F * D, "mlp dW2"}, {b2, db2, D, "mlp db2"}};
    for (int k = 0; k < 5; k++) {
        for (int i = 0; i < ts[k].n; i++)
            num[i] = central(&ts[k].x[i], FD_H, mlp_loss, &t);
        snprintf(name, sizeof name, "%s/%s", ts[k].name, g_flav);
        check_grad(ts[k].g, num, ts[k].n, 1, FD_FLOOR, FD_TOL, name);
    }
    /* GELU itself, far into both tails and at 0: the sigmoid form against 0.5 h (1 + tanh) */
    float hv[11] = {-12, -6, -3, -1, -0.1f, 0, 0.1f, 1, 3, 6, 12}, uv[11], gv[11], one[11];
    double hd[11], ud[11], gn[11];
    for (int i = 0; i < 11; i++)
        hd[i] = hv[i], one[i] = 1.0f;
    ac_encoder_gelu_forward(uv, hv, 11);
    ac_encoder_gelu_backward(gv, one, hv, 11);
    ac_encoder_ref_gelu(ud, hd, 11);
    for (int i = 0; i < 11; i++) {
        double up = hd[i] + FD_H, dn = hd[i] - FD_H, u1, u0;
        ac_encoder_ref_gelu(&u1, &up, 1);
        ac_encoder_ref_gelu(&u0, &dn, 1);
        gn[i] = (u1 - u0) / (2 * FD_H);
    }
    double uvd[11];
    for (int i = 0; i < 11; i++)
        uvd[i] = uv[i];
    snprintf(name, sizeof name, "gelu values -12..12/%s", g_flav);
    check_close_d(uvd, ud, 11, 1e-6, 1e-7, name);
    snprintf(name, sizeof name, "gelu' -12..12/%s", g_flav);
    check_grad(gv, gn, 11, 1, FD_FLOOR, FD_TOL, name);
}

/* Whole encoder (L = 1: one block + LNf; L = 2, 3: the stack): L = sum(Y * R). */
typedef struct {
    const ac_encoder_config_t *c;
    const int *offsets;
    int B;
    double *p, *X, *R, *Y;
    size_t nY;
} enc_ctx;

static double enc_loss(void *v)
{
    enc_ctx *t = v;
    ac_encoder_forward_ref_d(t->Y, t->p, t->c, t->X, t->offsets, t->B, NULL);
    return dot_d(t->Y, t->R, t->nY);
}

/* stride > 1 samples every stride-th element of each tensor (large configs). */
static void test_fd_encoder(ac_encoder_config_t c, const int *lens, int B, size_t stride, const char *label)
{
    ac_err_t err = AC_ERR_INIT;
    ac_rng_t rng;
    ac_rng_seed(&rng, 5);
    int offsets[64];
    lens_to_offsets(offsets, lens, B);
    const int N = offsets[B], D = c.d_model;
    size_t np = ac_encoder_n_params(&c), nY = (size_t)N * D;
    float *p = malloc(sizeof(float) * np), *grads = calloc(np, sizeof(float));
    float *X = malloc(sizeof(float) * nY), *Y = malloc(sizeof(float) * nY), *R = malloc(sizeof(float) * nY);
    float *dX = malloc(sizeof(float) * nY);
    double *pd = malloc(sizeof(double) * np), *Xd = malloc(sizeof(double) * nY), *Rd = malloc(sizeof(double) * nY);
    double *Yd = malloc(sizeof(double) * nY), *num = calloc(np > nY ? np : nY, sizeof(double));
    random_params(p, &c, &rng);
    fill_normal(X, nY, 1.0, &rng);
    fill_normal(R, nY, 1.0, &rng);
    for (size_t i = 0; i < np; i++)
        pd[i] = p[i];
    for (size_t i = 0; i < nY; i++)
        Xd[i] = X[i], Rd[i] = R[i];
    ac_encoder_t *e = ac_encoder_create(&c, &err);
    CHECK(e != NULL);
    CHECK(ac_encoder_forward(e, Y, p, X, offsets, B, &err) == 0);
    CHECK(ac_encoder_backward(e, dX, grads, p, R, &err) == 0);
    enc_ctx t = {&c, offsets, B, pd, Xd, Rd, Yd, nY};
    char name[96];
    for (int l = 0; l <= c.n_layers; l++) {
        int final = l == c.n_layers, n_t = final ? 2 : AC_ENCODER_N_LAYER_TENSORS;
        for (int k = 0; k < n_t; k++) {
            size_t n, off = ac_encoder_tensor(&c, l, k, &n);
            size_t s = stride < n / 16 ? stride : 1; /* small tensors in full */
            for (size_t i = 0; i < n; i += s)
                num[off + i] = central(&pd[off + i], FD_H, enc_loss, &t);
            char layer[16];
            snprintf(layer, sizeof layer, final ? "final" : "L%d", l);
            snprintf(name, sizeof name, "%s d%s/%s/%s", layer, ac_encoder_tensor_name(k, final), label, g_flav);
            check_grad(grads + off, num + off, n, s, FD_FLOOR, FD_TOL, name);
        }
    }
    for (size_t i = 0; i < nY; i += stride)
        num[i] = central(&Xd[i], FD_H, enc_loss, &t);
    snprintf(name, sizeof name, "dX/%s/%s", label, g_flav);
    check_grad(dX, num, nY, stride, FD_FLOOR, FD_TOL, name);
    ac_encoder_destroy(e);
    free(p);
    free(grads);
    free(X);
    free(Y);
    free(R);
    free(dX);
    free(pd);
    free(Xd);
    free(Rd);
    free(Yd);
    free(num);
}

static int field_is(const ac_err_t *err, const char *field)
{
    json_t *f = err->data ? json_object_get(err->data, "field") : NULL;
    return err->code == AC_ERR_INVALID_PARAMS && f && strcmp(json_string_value(f), field) == 0;
}

/* ---- 3. packing changes only rounding --------------------------------------------------------- */

static void test_packing(void)
{
    ac_err_t err = AC_ERR_INIT;
    ac_encoder_config_t c = {.d_model = 32, .n_heads = 4, .n_layers = 2, .d_ff = 64, .max_len = 64};
    static const int lens[] = {7, 1, 19, 12, 33, 5, 64};
    const int B = 7;
    int offsets[8];
    lens_to_offsets(offsets, lens, B);
    const int N = offsets[B], D = c.d_model;
    ac_rng_t rng;
    ac_rng_seed(&rng, 6);
    size_t np = ac_encoder_n_params(&c), nY = (size_t)N * D;
    float *p = malloc(sizeof(float) * np), *X = malloc(sizeof(float) * nY), *R = malloc(sizeof(float) * nY);
    float *Y = malloc(sizeof(float) * nY), *Y1 = malloc(sizeof(float) * nY);
    float *dX = malloc(sizeof(float) * nY), *dX1 = malloc(sizeof(float) * nY);
    float *g = calloc(np, sizeof(float)), *g1 = calloc(np, sizeof(float));
    random_params(p, &c, &rng);
    fill_normal(X, nY, 1.0, &rng);
    fill_normal(R, nY, 1.0, &rng);
    ac_encoder_t *e = ac_encoder_create(&c, &err);
    CHECK(ac_encoder_forward(e, Y, p, X, offsets, B, &err) == 0);
    CHECK(ac_encoder_backward(e, dX, g, p, R, &err) == 0);
    /* each sequence alone, at the start of its own buffers; gradients accumulate into g1 */
    for (int b = 0; b < B; b++) {
        int one[2] = {0, lens[b]};
        size_t at = (size_t)offsets[b] * D;
        CHECK(ac_encoder_forward(e, Y1 + at, p, X + at, one, 1, &err) == 0);
        CHECK(ac_encoder_backward(e, dX1 + at, g1, p, R + at, &err) == 0);
    }
    /* Equal up to float rounding, not bit for bit: the projections are one sgemm over the packed
     * rows, and OpenBLAS's blocking (so its order of summation) depends on the row count. On an
     * AMD EPYC of family 26 the packed and single outputs differed by up to 1.3e-6 (a few ulps of
     * outputs of size ~4); a sequence that attended to another's tokens would differ by what
     * that attention added, far above rounding. */
    check_close(Y, Y1, nY, 1e-5, 1e-6, "packed Y vs one by one");
    check_close(dX, dX1, nY, 1e-5, 1e-6, "packed dX vs one by one");
    /* gradients: per tensor, |batch - sum of singles| relative to the tensor's largest entry */
    for (int l = 0; l <= c.n_layers; l++) {
        int final = l == c.n_layers, n_t = final ? 2 : AC_ENCODER_N_LAYER_TENSORS;
        for (int k = 0; k < n_t; k++) {
            size_t n, off = ac_encoder_tensor(&c, l, k, &n);
            double dmax = 0, gmax = 0;
            for (size_t i = 0; i < n; i++) {
                dmax = fmax(dmax, fabs(g[off + i] - g1[off + i]));
                gmax = fmax(gmax, fabs(g1[off + i]));
            }
            double rel = dmax / (gmax > 0 ? gmax : 1);
            int ok = rel < 1e-5 && gmax > 0;
            fprintf(stderr, "%s packed d%s (layer %d) vs sum of singles/%s: rel %.2e\n", ok ? "ok  " : "FAIL",
                    ac_encoder_tensor_name(k, final), l, g_flav, rel);
            if (!ok)
                failures++;
        }
    }
    /* Leak check with teeth: changing another sequence's tokens must not move this one's outputs
     * at all. */
    float *Y2 = malloc(sizeof(float) * nY);
    for (size_t i = (size_t)offsets[3] * D; i < (size_t)offsets[4] * D; i++)
        X[i] += 1.0f;
    CHECK(ac_encoder_forward(e, Y2, p, X, offsets, B, &err) == 0);
    int same_others = 1, moved = 0;
    for (int b = 0; b < B; b++)
        for (size_t i = (size_t)offsets[b] * D; i < (size_t)offsets[b + 1] * D; i++) {
            if (b == 3)
                moved |= Y2[i] != Y[i];
            else
                same_others &= Y2[i] == Y[i];
        }
    CHECK(same_others && moved);
    /* Threads for attention and GELU: every sequence is still computed by one thread, so the
     * results are bitwise those of one thread (B = 7 sequences over 2, 3 and 8 parts: some parts
     * get a single long sequence, 8 parts leave one empty). */
    for (int nt = 2; nt <= 8; nt = nt == 3 ? 8 : nt + 1) {
        float *Yt = malloc(sizeof(float) * nY), *dXt = malloc(sizeof(float) * nY), *gt = calloc(np, sizeof(float));
        float *g0 = calloc(np, sizeof(float));
        CHECK(ac_encoder_forward(e, Y2, p, X, offsets, B, &err) == 0); /* one thread */
        CHECK(ac_encoder_backward(e, dX1, g0, p, R, &err) == 0);
        CHECK(ac_encoder_set_threads(e, nt, &err) == 0);
        CHECK(ac_encoder_forward(e, Yt, p, X, offsets, B, &err) == 0);
        CHECK(ac_encoder_backward(e, dXt, gt, p, R, &err) == 0);
        CHECK(ac_encoder_set_threads(e, 1, &err) == 0);
        int same = memcmp(Yt, Y2, sizeof(float) * nY) == 0 && memcmp(dXt, dX1, sizeof(float) * nY) == 0 &&
                   memcmp(gt, g0, sizeof(float) * np) == 0;
        fprintf(stderr, "%s %d threads: Y, dX and grads bitwise equal to one thread/%s\n", same ? "ok  " : "FAIL", nt,
                g_flav);
        if (!same)
            failures++;
        free(Yt);
        free(dXt);
        free(gt);
        free(g0);
    }
    CHECK(ac_encoder_set_threads(e, 0, &err) == -1 && field_is(&err, "threads"));
    ac_err_clear(&err);
    CHECK(ac_encoder_set_threads(e, AC_ENCODER_MAX_THREADS + 1, &err) == -1 && field_is(&err, "threads"));
    ac_err_clear(&err);
    /* backward accumulates: a second call adds the same again; dX NULL gives the same grads */
    float *g2 = calloc(np, sizeof(float)), *g3 = calloc(np, sizeof(float));
    CHECK(ac_encoder_forward(e, Y, p, X, offsets, B, &err) == 0);
    CHECK(ac_encoder_backward(e, NULL, g2, p, R, &err) == 0);
    CHECK(ac_encoder_backward(e, dX, g3, p, R, &err) == 0);
    CHECK(memcmp(g2, g3, sizeof(float) * np) == 0);
    CHECK(ac_encoder_backward(e, dX, g3, p, R, &err) == 0);
    for (size_t i = 0; i < np; i++)
        g2[i] *= 2;
    check_close(g3, g2, np, 1e-5, 1e-5, "backward accumulates (x2)"); /* sums re-associate */
    free(g2);
    free(g3);
    free(Y2);
    ac_encoder_destroy(e);
    free(p);
    free(X);
    free(R);
    free(Y);
    free(Y1);
    free(dX);
    free(dX1);
    free(g);
    free(g1);
}

/* ---- 4. errors, layout, init -------------------------------------------------------------- */

static void test_errors_and_layout(void)
{
    ac_err_t err = AC_ERR_INIT;
    const ac_encoder_config_t good = {.d_model = 32, .n_heads = 4, .n_layers = 2, .d_ff = 64, .max_len = 16};
    CHECK(ac_encoder_config_check(&good, &err) == 0);
    struct {
        int field, value;
        const char *name;
    } bad[] = {{0, 7, "d_model"},  {0, 257, "d_model"}, {0, 30, "d_model"}, /* 30 % 4 != 0 */
               {1, 0, "n_heads"},  {1, 9, "n_heads"},   {2, 0, "n_layers"}, {2, 5, "n_layers"},
               {3, 0, "d_ff"},     {3, 1025, "d_ff"},   {4, 0, "max_len"},  {4, 257, "max_len"}};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        ac_encoder_config_t c = good;
        int *f[5] = {&c.d_model, &c.n_heads, &c.n_layers, &c.d_ff, &c.max_len};
        *f[bad[i].field] = bad[i].value;
        ac_encoder_t *e = ac_encoder_create(&c, &err);
        int ok = e == NULL && field_is(&err, bad[i].name) && ac_encoder_n_params(&c) == 0;
        fprintf(stderr, "%s config %s = %d refused naming the field\n", ok ? "ok  " : "FAIL", bad[i].name,
                bad[i].value);
        if (!ok)
            failures++;
        ac_encoder_destroy(e);
        ac_err_clear(&err);
    }
    CHECK(ac_encoder_config_check(NULL, &err) == -1 && err.code == AC_ERR_INVALID_PARAMS);
    ac_err_clear(&err);

    /* layout: tensors tile params exactly, in order */
    size_t np = ac_encoder_n_params(&good), at = 0;
    for (int l = 0; l <= good.n_layers; l++)
        for (int k = 0; k < (l == good.n_layers ? 2 : AC_ENCODER_N_LAYER_TENSORS); k++) {
            size_t n, off = ac_encoder_tensor(&good, l, k, &n);
            CHECK(off == at);
            at += n;
        }
    CHECK(at == np);
    CHECK(np == 2 * (4 * 32 * 32 + 2 * 32 * 64 + 9 * 32 + 64) + 2 * 32);

    /* init: gains 1, biases 0, std 0.02 and 0.02 / sqrt(2 L) */
    float *p = malloc(sizeof(float) * np);
    ac_rng_t rng;
    ac_rng_seed(&rng, 7);
    ac_encoder_init(p, &good, &rng);
    int ok_const = 1;
    for (int l = 0; l <= good.n_layers; l++)
        for (int k = 0; k < (l == good.n_layers ? 2 : AC_ENCODER_N_LAYER_TENSORS); k++) {
            size_t n, off = ac_encoder_tensor(&good, l, k, &n);
            int final = l == good.n_layers;
            int gain = final ? k == AC_ENCODER_LNF_G : (k == AC_ENCODER_LN1_G || k == AC_ENCODER_LN2_G);
            int matrix = !final && (k == AC_ENCODER_WQKV || k == AC_ENCODER_WO || k == AC_ENCODER_W1 ||
                                    k == AC_ENCODER_W2);
            if (matrix) {
                double ss = 0;
                for (size_t i = 0; i < n; i++)
                    ss += (double)p[off + i] * p[off + i];
                double std = sqrt(ss / n);
                double want = (k == AC_ENCODER_WO || k == AC_ENCODER_W2) ? 0.02 / sqrt(2.0 * good.n_layers) : 0.02;
                char name[64];
                snprintf(name, sizeof name, "init std L%d %s", l, ac_encoder_tensor_name(k, 0));
                check_scalar(std, want, 0.1, 0, name); /* >= 1024 samples: within 10% */
            } else {
                for (size_t i = 0; i < n; i++)
                    ok_const &= p[off + i] == (gain ? 1.0f : 0.0f);
            }
        }
    CHECK(ok_const);

    /* bad offsets: an error naming the problem, never a crash */
    ac_encoder_t *e = ac_encoder_create(&good, &err);
    enum { NT = 40 };
    float *X = calloc(NT * 32, sizeof(float)), *Y = calloc(NT * 32, sizeof(float)), *g = calloc(np, sizeof(float));
    double *Yr = calloc(NT * 32, sizeof(double));
    CHECK(ac_encoder_backward(e, NULL, g, p, Y, &err) == -1 && err.code == AC_ERR_INVALID_PARAMS);
    ac_err_clear(&err);
    struct {
        int offsets[4], B;
        const char *expect;
    } cases[] = {{{1, 3, 5, 0}, 2, "offsets[0] must be 0"},
                 {{0, 3, 3, 5}, 3, "sequence 1 is empty"},
                 {{0, 4, 2, 5}, 3, "sequence 1 is empty or offsets decrease"},
                 {{0, 3, 20, 21}, 3, "sequence 1 has 17 tokens, more than max_len 16"},
                 {{0, 3, 0, 0}, 0, "must be >= 1"},
                 {{0, 3, 0, 0}, -2, "must be >= 1"}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        int rc1 = ac_encoder_forward(e, Y, p, X, cases[i].offsets, cases[i].B, &err);
        const char *d = err.data ? json_string_value(json_object_get(err.data, "error")) : NULL;
        char data[256];
        snprintf(data, sizeof data, "%s", d ? d : "");
        int ok = rc1 == -1 && err.code == AC_ERR_INVALID_PARAMS && strstr(data, cases[i].expect);
        ac_err_clear(&err);
        int rc2 = ac_encoder_forward_ref(Yr, p, &good, X, cases[i].offsets, cases[i].B, &err);
        ok = ok && rc2 == -1 && err.code == AC_ERR_INVALID_PARAMS;
        fprintf(stderr, "%s bad offsets case %zu refused (%s)\n", ok ? "ok  " : "FAIL", i, data);
        if (!ok)
            failures++;
        ac_err_clear(&err);
    }
    /* a failed forward leaves no half state behind: backward still refuses */
    CHECK(ac_encoder_backward(e, NULL, g, p, Y, &err) == -1);
    ac_err_clear(&err);
    CHECK(ac_encoder_forward(e, Y, NULL, X, cases[0].offsets, 1, &err) == -1 && err.code == AC_ERR_INVALID_PARAMS);
    ac_err_clear(&err);
    /* reserve: invalid sizes refused; a bigger batch than reserved still works (grows) */
    CHECK(ac_encoder_reserve(e, 0, 1, &err) == -1 && err.code == AC_ERR_INVALID_PARAMS);
    ac_err_clear(&err);
    CHECK(ac_encoder_reserve(e, 8, 1, &err) == 0);
    int offs[3] = {0, 16, 32};
    CHECK(ac_encoder_forward(e, Y, p, X, offs, 2, &err) == 0);
    CHECK(ac_encoder_backward(e, NULL, g, p, Y, &err) == 0);
    /* growing discards the last forward */
    CHECK(ac_encoder_reserve(e, 64, 4, &err) == 0);
    CHECK(ac_encoder_backward(e, NULL, g, p, Y, &err) == -1);
    ac_err_clear(&err);
    ac_encoder_destroy(e);
    ac_encoder_destroy(NULL);
    free(X);
    free(Y);
    free(Yr);
    free(g);
    free(p);
}

/* ---- dump for tests/ref/encoder_ref.py ----------------------------------------------------- */

static void dump_floats(FILE *f, const char *name, const float *x, size_t n, int last)
{
    fprintf(f, "\"%s\": [", name);
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%s%.9g", i ? "," : "", x[i]);
    fprintf(f, "]%s\n", last ? "" : ",");
}

static int dump_case(FILE *f, ac_encoder_config_t c, const int *lens, int B, uint64_t seed, int last)
{
    ac_err_t err = AC_ERR_INIT;
    int offsets[64];
    lens_to_offsets(offsets, lens, B);
    const int N = offsets[B], D = c.d_model;
    size_t np = ac_encoder_n_params(&c), nY = (size_t)N * D;
    ac_rng_t rng;
    ac_rng_seed(&rng, seed);
    float *p = malloc(sizeof(float) * np), *g = calloc(np, sizeof(float)), *X = malloc(sizeof(float) * nY);
    float *R = malloc(sizeof(float) * nY), *Y = malloc(sizeof(float) * nY), *dX = malloc(sizeof(float) * nY);
    random_params(p, &c, &rng);
    fill_normal(X, nY, 1.0, &rng);
    fill_normal(R, nY, 1.0, &rng);
    ac_encoder_t *e = ac_encoder_create(&c, &err);
    int rc = e && ac_encoder_forward(e, Y, p, X, offsets, B, &err) == 0 &&
                     ac_encoder_backward(e, dX, g, p, R, &err) == 0
                 ? 0
                 : -1;
    if (rc == 0) {
        fprintf(f, "{\"config\": {\"d_model\": %d, \"n_heads\": %d, \"n_layers\": %d, \"d_ff\": %d, "
                   "\"max_len\": %d},\n\"offsets\": [",
                c.d_model, c.n_heads, c.n_layers, c.d_ff, c.max_len);
        for (int b = 0; b <= B; b++)
            fprintf(f, "%s%d", b ? "," : "", offsets[b]);
        fprintf(f, "],\n");
        dump_floats(f, "params", p, np, 0);
        dump_floats(f, "X", X, nY, 0);
        dump_floats(f, "R", R, nY, 0);
        dump_floats(f, "Y", Y, nY, 0);
        dump_floats(f, "dparams", g, np, 0);
        dump_floats(f, "dX", dX, nY, 1);
        fprintf(f, "}%s\n", last ? "" : ",");
    } else {
        fprintf(stderr, "dump: %s\n", err.message);
    }
    ac_encoder_destroy(e);
    free(p);
    free(g);
    free(X);
    free(R);
    free(Y);
    free(dX);
    return rc;
}

static int dump(const char *path)
{
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        perror(path);
        return 1;
    }
    static const int lens_a[] = {9, 1, 17, 30, 4}, lens_b[] = {12, 40, 3};
    ac_encoder_config_t a = {.d_model = 32, .n_heads = 4, .n_layers = 2, .d_ff = 64, .max_len = 64};
    ac_encoder_config_t b = {.d_model = 64, .n_heads = 2, .n_layers = 1, .d_ff = 128, .max_len = 64};
    fprintf(f, "[\n");
    int rc = dump_case(f, a, lens_a, 5, 21, 0);
    rc = rc || dump_case(f, b, lens_b, 3, 22, 1);
    fprintf(f, "]\n");
    fclose(f);
    return rc ? 1 : 0;
}

int main(int argc, char **argv)
{
    ac_blas_set_threads(1); /* bit-exact packing checks are for one BLAS thread */
    if (argc == 3 && strcmp(argv[1], "--dump") == 0)
        return dump(argv[2]);

    static const int lens[] = {7, 1, 19, 12, 33, 5};
    ac_encoder_config_t spec = {.d_model = 32, .n_heads = 4, .n_layers = 2, .d_ff = 64, .max_len = 64};
    /* odd head width (dh = 5) and D, F not multiples of 4: every tail path */
    ac_encoder_config_t odd = {.d_model = 20, .n_heads = 4, .n_layers = 1, .d_ff = 13, .max_len = 40};
    static const int lens_odd[] = {1, 2, 3, 9, 40};
    static const int lens_fd[] = {5, 1, 8, 3};
    ac_encoder_config_t small = {.d_model = 16, .n_heads = 2, .n_layers = 1, .d_ff = 24, .max_len = 8};
    test_fd_layernorm(); /* one flavour: LayerNorm is 4-wide only */

    /* The attention and GELU kernels exist 4-wide (SSE) and 8-wide (AVX2 + FMA): check both. */
    CHECK(ac_encoder_simd_force("avx512") == -1);
    static const char *flavours[] = {"sse", "avx2"};
    int n_run = 0;
    for (int f = 0; f < 2; f++) {
        if (ac_encoder_simd_force(flavours[f]) != 0) {
            fprintf(stderr, "skip %s flavour: this CPU cannot run it\n", flavours[f]);
            continue;
        }
        g_flav = flavours[f];
        CHECK(strcmp(ac_encoder_simd(), flavours[f]) == 0);
        n_run++;
        test_forward_vs_ref(spec, lens, 6, "D32H4L2F64");
        test_forward_vs_ref(odd, lens_odd, 5, "D20H4L1F13");
        test_fd_attention(16, 2, "D16H2");
        test_fd_attention(15, 3, "D15H3"); /* dh = 5 */
        test_fd_attention(64, 2, "D64H2"); /* dh = 32: full 2-vector blocks in both flavours */
        test_fd_mlp();
        small.n_layers = 1;
        test_fd_encoder(small, lens_fd, 4, 1, "block D16H2F24");
        small.n_layers = 2;
        test_fd_encoder(small, lens_fd, 4, 1, "encoder L2 D16H2F24");
        test_fd_encoder(spec, lens, 3, 13, "encoder D32H4L2F64 (sampled)");
        test_packing();
    }
    CHECK(n_run >= 1 && ac_encoder_simd_force(NULL) == 0);
    test_errors_and_layout();
    return test_result("test_encoder");
}
