/* A small pre-norm Transformer encoder (bidirectional) over packed variable-length sequences,
 * with hand-written forward and backward passes.
 *
 * Input: B sequences packed back to back, X (Ntok, D), offsets (B + 1): sequence b is rows
 * offsets[b] .. offsets[b + 1] - 1 (offsets[0] = 0, Ntok = offsets[B]). No padding: attention only
 * ever looks at the rows of the sequence's own span. Per layer l = 1..L:
 *
 *   a = LN1(x)                    a: (Ntok, D)
 *   qkv = a Wqkv + bqkv           qkv: (Ntok, 3D), columns [q | k | v], head h at h*dh .. h*dh+dh-1
 *   per sequence and head: P = softmax(q k^T / sqrt(dh)) (rows), o = P v    o: (Ntok, D)
 *   x = x + (o Wo + bo)
 *   m = LN2(x)                    m: (Ntok, D)
 *   u = gelu(m W1 + b1)           u: (Ntok, F), GELU tanh approximation (GPT-2)
 *   x = x + (u W2 + b2)
 *
 * then Y = LNf(x). LayerNorm: eps 1e-5, biased variance, gain and bias.
 *
 * Parameters live in ONE caller-owned float array (params), gradients in a second array of the
 * same layout (grads), so that the policy's Adam, clipping and checkpoints stay flat loops.
 * Layout, per layer l = 0..L-1, in this order (matrices row-major, (in, out)):
 *   ln1_g (D), ln1_b (D), Wqkv (D, 3D), bqkv (3D), Wo (D, D), bo (D), ln2_g (D), ln2_b (D),
 *   W1 (D, F), b1 (F), W2 (F, D), b2 (D)
 * then lnf_g (D), lnf_b (D). ac_encoder_tensor() gives each tensor's offset and size.
 *
 * Ownership and lifetimes: the encoder (ac_encoder_t) owns its configuration, its workspace and
 * its worker threads (ac_encoder_set_threads), all freed by ac_encoder_destroy. params, grads, X,
 * offsets, Y, dY, dX belong to the caller; the encoder keeps no pointer to any of them after a
 * call returns (forward copies X and offsets into its workspace, so the caller may reuse them
 * before backward). The one pointer it keeps is the timing record of ac_encoder_set_timing.
 * Backward uses the activations of the last successful forward.
 *
 * Thread safety: an encoder is used by one thread at a time (forward and backward share its
 * workspace); give each thread its own. The kernels below are reentrant.
 *
 * Threads: projections are cblas_sgemm calls over all Ntok rows at once, with the BLAS thread
 * count the process set (ac_blas_set_threads). The attention and GELU kernels run on the calling
 * thread, or split over ac_encoder_set_threads threads; LayerNorm and the bias passes always on
 * the calling thread. */
#ifndef AC_ENCODER_H
#define AC_ENCODER_H

#include <stddef.h>

#include "base/err.h"
#include "base/rng.h"

/* Limits accepted by ac_encoder_config_check. */
#define AC_ENCODER_MAX_D 256
#define AC_ENCODER_MAX_HEADS 8
#define AC_ENCODER_MAX_LAYERS 4
#define AC_ENCODER_MAX_FF 1024
#define AC_ENCODER_MAX_LEN 256
#define AC_ENCODER_MAX_THREADS 8

typedef struct ac_encoder_config {
    int d_model;  /* D, 8..256, a multiple of n_heads */
    int n_heads;  /* H, 1..8; head width dh = D / H */
    int n_layers; /* L, 1..4 */
    int d_ff;     /* F, hidden width of the MLP, 1..1024 */
    int max_len;  /* longest sequence accepted, 1..256 */
} ac_encoder_config_t;

/* 0 when cfg is within the limits above; else -1 with AC_ERR_INVALID_PARAMS whose data names the
 * field ({"field": "d_model", "error": "..."}). */
int ac_encoder_config_check(const ac_encoder_config_t *cfg, ac_err_t *err);

/* Parameters (floats) of the layout above; 0 for a config that fails the check. */
size_t ac_encoder_n_params(const ac_encoder_config_t *cfg);

/* Tensors of a layer, in layout order (the `which` of ac_encoder_tensor). */
enum {
    AC_ENCODER_LN1_G,
    AC_ENCODER_LN1_B,
    AC_ENCODER_WQKV,
    AC_ENCODER_BQKV,
    AC_ENCODER_WO,
    AC_ENCODER_BO,
    AC_ENCODER_LN2_G,
    AC_ENCODER_LN2_B,
    AC_ENCODER_W1,
    AC_ENCODER_B1,
    AC_ENCODER_W2,
    AC_ENCODER_B2,
    AC_ENCODER_N_LAYER_TENSORS
};
/* The final LayerNorm is "layer" n_layers with these two tensors. */
enum { AC_ENCODER_LNF_G = 0, AC_ENCODER_LNF_B = 1 };

/* Offset (in floats) of tensor `which` of layer `layer` (0..L-1, or L for the final LayerNorm)
 * in params; *size (may be NULL) receives its element count. cfg must pass the check and
 * (layer, which) must name a tensor (asserted). */
size_t ac_encoder_tensor(const ac_encoder_config_t *cfg, int layer, int which, size_t *size);
/* "ln1_g", "Wqkv", ... for a layer tensor; "lnf_g" / "lnf_b" with final != 0. Static storage. */
const char *ac_encoder_tensor_name(int which, int final);

/* Fills params (n_params) from rng: matrices N(0, 0.02), the two residual output projections
 * (Wo, W2) further scaled by 1/sqrt(2 L) (GPT-2: the residual stream's variance then does not
 * grow with depth), biases 0, LayerNorm gains 1. cfg must pass the check. Consumes one normal
 * per matrix element, in layout order. */
void ac_encoder_init(float *params, const ac_encoder_config_t *cfg, ac_rng_t *rng);

/* ---- the model ---------------------------------------------------------------------------- */

/* Config + workspace (the activations kept for backward). Opaque. */
typedef struct ac_encoder ac_encoder_t;

/* Validates cfg (errors as ac_encoder_config_check) and allocates an encoder with an empty
 * workspace. NULL with AC_ERR_INTERNAL when out of memory. Free with ac_encoder_destroy. */
ac_encoder_t *ac_encoder_create(const ac_encoder_config_t *cfg, ac_err_t *err);
/* NULL: no-op. */
void ac_encoder_destroy(ac_encoder_t *e);
/* The config the encoder was created with. */
const ac_encoder_config_t *ac_encoder_config(const ac_encoder_t *e);

/* Grows the workspace to hold n_tok tokens in n_seq sequences (never shrinks), so that later
 * forwards and backwards of up to that size do not allocate. Growing discards the activations
 * of the last forward (backward then refuses until the next forward). -1 with
 * AC_ERR_INVALID_PARAMS for n_tok or n_seq < 1, AC_ERR_INTERNAL when out of memory (the old
 * workspace is then gone too). The workspace takes (8 D + 2 F + H + 4) L + 6 D + F + 2 floats per
 * token (D 64, F 256, H 4, L 2: 2,706 floats, 10.6 KB; 334 MB for 30,885 tokens), plus the
 * attention scratch of each thread (2 (dh + max_len) max_len floats). */
int ac_encoder_reserve(ac_encoder_t *e, int n_tok, int n_seq, ac_err_t *err);

/* Forward pass.
 *   Y (Ntok, D) out; params (n_params); X (Ntok, D); offsets (B + 1), B >= 1.
 * offsets must start at 0 and every sequence must have 1..max_len rows; else -1 with
 * AC_ERR_INVALID_PARAMS naming the sequence, and nothing is computed. Grows the workspace when
 * the batch is bigger than any before (AC_ERR_INTERNAL when out of memory). Keeps what backward
 * needs (including copies of X and offsets). Y may be X (X is copied first). */
int ac_encoder_forward(ac_encoder_t *e, float *Y, const float *params, const float *X,
                       const int *offsets, int B, ac_err_t *err);

/* Backward of the last successful forward, with the same params:
 *   dY (Ntok, D) in: dLoss/dY;
 *   grads (n_params): ACCUMULATED (+=), zero it yourself for a fresh gradient;
 *   dX (Ntok, D) out, overwritten; NULL when the input gradient is not wanted. dX must not
 *   alias dY (it is cleared first and accumulates the residual stream's gradient).
 * May be called more than once per forward (each call adds again). Never allocates.
 * -1 with AC_ERR_INVALID_PARAMS when no forward preceded it (or reserve discarded it). */
int ac_encoder_backward(ac_encoder_t *e, float *dX, float *grads, const float *params,
                        const float *dY, ac_err_t *err);

/* Naive reference forward: plain loops, double precision throughout, its own scratch (allocates;
 * tests only). Same arguments and checks as ac_encoder_forward, no encoder needed. */
int ac_encoder_forward_ref(double *Y, const float *params, const ac_encoder_config_t *cfg,
                           const float *X, const int *offsets, int B, ac_err_t *err);
/* The same with double params (n_params) and X: finite differences perturb them in double. */
int ac_encoder_forward_ref_d(double *Y, const double *params, const ac_encoder_config_t *cfg,
                             const double *X, const int *offsets, int B, ac_err_t *err);

/* Threads for the attention and GELU kernels: the sequences (or elements) are cut into 64
 * chunks of about equal work that the threads take from a shared counter, so a thread that gets
 * less CPU takes fewer; each sequence is computed by one thread, so the results do not depend on
 * n. n - 1 worker threads are started, the caller being the n-th; 1 (the default) stops them. The BLAS
 * thread count is separate (ac_blas_set_threads). Keep n at 1 when several encoders run at once
 * on the cores. -1 with AC_ERR_INVALID_PARAMS for n outside 1..AC_ENCODER_MAX_THREADS,
 * AC_ERR_INTERNAL when a thread cannot be started (the encoder then runs on one). */
int ac_encoder_set_threads(ac_encoder_t *e, int n, ac_err_t *err);

/* Time spent per kind of kernel, for benchmarks and profiling (seconds, accumulated). */
typedef struct ac_encoder_timing {
    double sgemm; /* the projection sgemms alone (Wqkv, Wo, W1, W2: forward, dW and dX) */
    double bias;  /* the bias/residual fills before them and the bias-gradient column sums */
    double attn;  /* attention forward and backward */
    double norm;  /* LayerNorm forward and backward */
    double gelu;  /* GELU forward and backward */
    double other; /* copying X and offsets in, zeroing the residual gradient */
} ac_encoder_timing_t;
/* With t non-NULL, every later forward and backward adds its time per kernel kind to *t (two
 * monotonic clock reads per kernel call); NULL turns timing off (the default). The caller owns
 * *t and keeps it alive while set. */
void ac_encoder_set_timing(ac_encoder_t *e, ac_encoder_timing_t *t);

/* The attention and GELU kernels come in two flavours: "avx2" (AVX2 + FMA, 8 floats wide, chosen
 * automatically when the CPU has both) and "sse" (4 wide, any x86-64). No -march flag is needed.
 * ac_encoder_simd() names the flavour in use. ac_encoder_simd_force("sse" | "avx2") overrides
 * the choice process-wide (tests run both; NULL restores the automatic choice); -1 for an
 * unknown name or one this CPU cannot run. */
const char *ac_encoder_simd(void);
int ac_encoder_simd_force(const char *name);

/* ---- kernels -------------------------------------------------------------------------------
 * The layers the model is made of, public so that tests can check each one by finite
 * differences. Outputs first, then inputs, then sizes; N rows. They do not check their
 * arguments and never allocate. Each float kernel has a double reference (ac_encoder_ref_*) with
 * plain loops; ac_encoder_forward_ref is built from those. */

/* out (N, C) = LayerNorm of each row of x (N, C) with gain g (C) and bias b (C), eps 1e-5.
 * mean (N), rstd (N) out: kept for backward. */
void ac_encoder_layernorm_forward(float *out, float *mean, float *rstd, const float *x,
                                  const float *g, const float *b, int N, int C);
/* dx (N, C) += dL/dx (accumulates: the residual stream's gradient arrives this way);
 * dg (C), db (C) += ; dout (N, C); x, mean, rstd, g as in forward. */
void ac_encoder_layernorm_backward(float *dx, float *dg, float *db, const float *dout, const float *x,
                                   const float *mean, const float *rstd, const float *g, int N, int C);

/* out (N, OC) = resid (N, OC) + inp (N, C) W (C, OC) + bias (OC). resid NULL: no residual;
 * resid == out is allowed (in-place residual add). One cblas_sgemm over all N rows. */
void ac_encoder_matmul_forward(float *out, const float *resid, const float *inp, const float *W,
                               const float *bias, int N, int C, int OC);
/* dW (C, OC) += inp^T dout; db (OC) += column sums of dout; dinp (N, C) = dout W^T, overwritten
 * (NULL: skipped). dout (N, OC), inp (N, C), W (C, OC). The residual's gradient is dout itself. */
void ac_encoder_matmul_backward(float *dinp, float *dW, float *db, const float *dout, const float *inp,
                                const float *W, int N, int C, int OC);

/* u (n) = gelu(h (n)), tanh approximation: 0.5 h (1 + tanh(sqrt(2/pi) (h + 0.044715 h^3))).
 * Computed as h * sigmoid(2 sqrt(2/pi) (h + 0.044715 h^3)), the same function without the
 * cancellation in 1 + tanh for negative h. u == h is allowed. */
void ac_encoder_gelu_forward(float *u, const float *h, size_t n);
/* dh (n) = du (n) * gelu'(h (n)), overwritten; dh == du is allowed. */
void ac_encoder_gelu_backward(float *dh, const float *du, const float *h, size_t n);

/* Floats of scratch the attention kernels need for sequences of up to max_len tokens. */
size_t ac_encoder_attention_scratch_floats(int D, int H, int max_len);
/* Multi-head self-attention within each sequence.
 *   out (Ntok, D) out: heads concatenated; lse (Ntok, H) out: log-sum-exp of each row of scaled
 *   scores, so that backward recomputes P = exp(S - lse) instead of keeping B*H*T^2 floats;
 *   qkv (Ntok, 3D); offsets (B + 1) valid (every length 1..max_len of the scratch);
 *   scratch (ac_encoder_attention_scratch_floats(D, H, max_len)). */
void ac_encoder_attention_forward(float *out, float *lse, const float *qkv, const int *offsets, int B,
                                  int D, int H, float *scratch);
/* dqkv (Ntok, 3D) out, overwritten (every element); dout (Ntok, D); qkv, lse, offsets as in
 * forward. */
void ac_encoder_attention_backward(float *dqkv, const float *dout, const float *qkv, const float *lse,
                                   const int *offsets, int B, int D, int H, float *scratch);

/* Double references (plain loops). */
void ac_encoder_ref_layernorm(double *out, const double *x, const double *g, const double *b, int N,
                              int C);
/* out (N, OC) = inp (N, C) W (C, OC) + bias (OC) (bias NULL: none). */
void ac_encoder_ref_matmul(double *out, const double *inp, const double *W, const double *bias, int N,
                           int C, int OC);
void ac_encoder_ref_gelu(double *u, const double *h, size_t n);
/* out (Ntok, D) from qkv (Ntok, 3D); plain softmax per row. */
void ac_encoder_ref_attention(double *out, const double *qkv, const int *offsets, int B, int D, int H);

#endif
