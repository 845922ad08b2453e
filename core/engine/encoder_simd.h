/* The encoder's attention and GELU kernels, written once for a vector width VW and included twice
 * by encoder.c: VW 4 with no target attribute (SSE2, any x86-64), and VW 8 with
 * target("avx2,fma") (8-wide fused multiply-adds), chosen at run time from CPUID. No -march flag:
 * the binary still runs everywhere. Not a public header.
 *
 * Expects: VW (4 or 8), SIMD_TARGET (a function attribute or nothing), SIMD(name) (appends the
 * flavour's suffix to name). Defines the static functions SIMD(attention_forward),
 * SIMD(attention_backward), SIMD(gelu_forward) and SIMD(gelu_backward) with the signatures of the
 * public kernels. */

#define vf SIMD(vf_t)
#define vi SIMD(vi_t)
typedef float vf __attribute__((vector_size(VW * 4)));
typedef int32_t vi __attribute__((vector_size(VW * 4)));
#define FN SIMD_TARGET static inline

/* memcpy makes loads and stores alignment-free (movups / vmovups). */
FN vf SIMD(vload)(const float *p)
{
    vf v;
    memcpy(&v, p, sizeof v);
    return v;
}
FN void SIMD(vstore)(float *p, vf v) { memcpy(p, &v, sizeof v); }
/* a - 0 is a for every a (a + 0 is not: -0 + 0 = +0), so this compiles to one broadcast. */
FN vf SIMD(vsplat)(float a) { return a - (vf){0}; }
/* the first n (< VW) lanes; the others 0 */
FN vf SIMD(vload_tail)(const float *p, int n)
{
    vf v = {0};
    for (int i = 0; i < n; i++)
        v[i] = p[i];
    return v;
}
FN void SIMD(vstore_tail)(float *p, vf v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = v[i];
}
/* mask ? a : b per lane; mask lanes all-ones or all-zeros (a vector comparison's result). */
FN vf SIMD(vselect)(vi mask, vf a, vf b) { return (vf)((mask & (vi)a) | (~mask & (vi)b)); }
FN float SIMD(vhsum)(vf v)
{
    float s = 0;
    for (int i = 0; i < VW; i++)
        s += v[i];
    return s;
}

/* exp (Cephes expf: range reduction by ln 2 in two parts, degree-6 polynomial): relative error
 * ~2e-7 over the float range; libm's expf is scalar and was most of the softmax and GELU time.
 * Inputs are clamped to [-87.3, 88.3], so no infinities and no denormals come out (exp(-1e30)
 * is 1.2e-38, not 0). NaN stays NaN. */
FN vf SIMD(vexp)(vf x)
{
    const vf hi = SIMD(vsplat)(88.3762626647949f), lo = SIMD(vsplat)(-87.3365447504f);
    x = SIMD(vselect)(x > hi, hi, x);
    x = SIMD(vselect)(x < lo, lo, x);
    vf fx = x * 1.44269504088896341f + 0.5f;
    vf t = __builtin_convertvector(__builtin_convertvector(fx, vi), vf); /* truncation */
    /* floor: truncation rounds negative values up; a true comparison is -1, i.e. subtract 1 */
    vf n = t + __builtin_convertvector(t > fx, vf);
    vf r = x - n * 0.693359375f - n * -2.12194440e-4f;
    vf p = r * 1.9875691500E-4f + 1.3981999507E-3f;
    p = p * r + 8.3334519073E-3f;
    p = p * r + 4.1665795894E-2f;
    p = p * r + 1.6666665459E-1f;
    p = p * r + 5.0000001201E-1f;
    p = p * (r * r) + r + 1.0f;
    vi e = (__builtin_convertvector(n, vi) + 127) << 23; /* 2^n as float bits */
    return p * (vf)e;
}

/* ---- GELU ---- */

FN vf SIMD(vgelu)(vf h)
{
    vf y2 = (float)(2 * GELU_K) * (h + (float)GELU_C * h * h * h);
    return h / (1.0f + SIMD(vexp)(-y2));
}

FN vf SIMD(vgelu_grad)(vf h)
{
    vf y2 = (float)(2 * GELU_K) * (h + (float)GELU_C * h * h * h);
    vf e = SIMD(vexp)(-y2), s = 1.0f / (1.0f + e);
    vf dy2 = (float)(2 * GELU_K) * (1.0f + (float)(3 * GELU_C) * h * h);
    return s + h * dy2 * (e * s) * s;
}

SIMD_TARGET static void SIMD(gelu_forward)(float *u, const float *h, size_t n)
{
    size_t i = 0;
    for (; i + VW <= n; i += VW)
        SIMD(vstore)(u + i, SIMD(vgelu)(SIMD(vload)(h + i)));
    if (i < n)
        SIMD(vstore_tail)(u + i, SIMD(vgelu)(SIMD(vload_tail)(h + i, (int)(n - i))), (int)(n - i));
}

SIMD_TARGET static void SIMD(gelu_backward)(float *dh, const float *du, const float *h, size_t n)
{
    size_t i = 0;
    for (; i + VW <= n; i += VW)
        SIMD(vstore)(dh + i, SIMD(vload)(du + i) * SIMD(vgelu_grad)(SIMD(vload)(h + i)));
    if (i < n) {
        int r = (int)(n - i);
        SIMD(vstore_tail)(dh + i, SIMD(vload_tail)(du + i, r) * SIMD(vgelu_grad)(SIMD(vload_tail)(h + i, r)), r);
    }
}

/* ---- attention ---- */

/* c (M, N) = a (M, K) b (K, N), overwritten. Element (i, k) of a is a[i * ars + k * acs], so a
 * transposed operand is the same call with the strides swapped; b and c are row-major with row
 * strides ldb and ldc. Blocks of 4 rows x 2 vectors keep 8 accumulators in registers; every k
 * then costs 2 vector loads of b and 4 broadcasts of a for 8 vector multiply-adds. */
SIMD_TARGET static void SIMD(small_gemm)(float *c, int ldc, const float *a, int ars, int acs, const float *b,
                                         int ldb, int M, int N, int K)
{
    int i = 0;
    for (; i + 4 <= M; i += 4) {
        const float *a0 = a + (size_t)i * ars, *a1 = a0 + ars, *a2 = a1 + ars, *a3 = a2 + ars;
        float *c0 = c + (size_t)i * ldc, *c1 = c0 + ldc, *c2 = c1 + ldc, *c3 = c2 + ldc;
        int j = 0;
        for (; j + 2 * VW <= N; j += 2 * VW) {
            vf x00 = {0}, x01 = {0}, x10 = {0}, x11 = {0}, x20 = {0}, x21 = {0}, x30 = {0}, x31 = {0};
            const float *bk = b + j;
            for (int k = 0; k < K; k++, bk += ldb) {
                vf b0 = SIMD(vload)(bk), b1 = SIMD(vload)(bk + VW);
                vf s0 = SIMD(vsplat)(a0[k * acs]), s1 = SIMD(vsplat)(a1[k * acs]);
                vf s2 = SIMD(vsplat)(a2[k * acs]), s3 = SIMD(vsplat)(a3[k * acs]);
                x00 += s0 * b0, x01 += s0 * b1;
                x10 += s1 * b0, x11 += s1 * b1;
                x20 += s2 * b0, x21 += s2 * b1;
                x30 += s3 * b0, x31 += s3 * b1;
            }
            SIMD(vstore)(c0 + j, x00), SIMD(vstore)(c0 + j + VW, x01);
            SIMD(vstore)(c1 + j, x10), SIMD(vstore)(c1 + j + VW, x11);
            SIMD(vstore)(c2 + j, x20), SIMD(vstore)(c2 + j + VW, x21);
            SIMD(vstore)(c3 + j, x30), SIMD(vstore)(c3 + j + VW, x31);
        }
        for (; j < N; j += VW) { /* < 2 VW columns left: one vector at a time, the last partial */
            int w = N - j < VW ? N - j : VW;
            vf x0 = {0}, x1 = {0}, x2 = {0}, x3 = {0};
            const float *bk = b + j;
            if (w == VW) {
                for (int k = 0; k < K; k++, bk += ldb) {
                    vf bv = SIMD(vload)(bk);
                    x0 += SIMD(vsplat)(a0[k * acs]) * bv;
                    x1 += SIMD(vsplat)(a1[k * acs]) * bv;
                    x2 += SIMD(vsplat)(a2[k * acs]) * bv;
                    x3 += SIMD(vsplat)(a3[k * acs]) * bv;
                }
            } else {
                for (int k = 0; k < K; k++, bk += ldb) {
                    vf bv = SIMD(vload_tail)(bk, w);
                    x0 += SIMD(vsplat)(a0[k * acs]) * bv;
                    x1 += SIMD(vsplat)(a1[k * acs]) * bv;
                    x2 += SIMD(vsplat)(a2[k * acs]) * bv;
                    x3 += SIMD(vsplat)(a3[k * acs]) * bv;
                }
            }
            SIMD(vstore_tail)(c0 + j, x0, w), SIMD(vstore_tail)(c1 + j, x1, w);
            SIMD(vstore_tail)(c2 + j, x2, w), SIMD(vstore_tail)(c3 + j, x3, w);
        }
    }
    for (; i < M; i++) { /* 1..3 rows left */
        const float *ai = a + (size_t)i * ars;
        float *ci = c + (size_t)i * ldc;
        for (int j = 0; j < N; j += VW) {
            int w = N - j < VW ? N - j : VW;
            vf x = {0};
            const float *bk = b + j;
            for (int k = 0; k < K; k++, bk += ldb)
                x += SIMD(vsplat)(ai[k * acs]) * (w == VW ? SIMD(vload)(bk) : SIMD(vload_tail)(bk, w));
            SIMD(vstore_tail)(ci + j, x, w);
        }
    }
}

/* p (n) = exp(scale * s (n) - shift), in place allowed; returns the sum. */
SIMD_TARGET static float SIMD(exp_row)(float *p, const float *s, float scale, float shift, int n)
{
    vf acc = {0};
    int j = 0;
    for (; j + VW <= n; j += VW) {
        vf e = SIMD(vexp)(SIMD(vload)(s + j) * scale - shift);
        SIMD(vstore)(p + j, e);
        acc += e;
    }
    float sum = SIMD(vhsum)(acc);
    if (j < n) {
        vf e = SIMD(vexp)(SIMD(vload_tail)(s + j, n - j) * scale - shift);
        SIMD(vstore_tail)(p + j, e, n - j);
        for (int k = 0; k < n - j; k++)
            sum += e[k]; /* padded lanes hold exp(-shift) != 0: left out */
    }
    return sum;
}

SIMD_TARGET static float SIMD(max_row)(const float *s, int n)
{
    vf m = SIMD(vsplat)(-INFINITY);
    int j = 0;
    for (; j + VW <= n; j += VW) {
        vf x = SIMD(vload)(s + j);
        m = SIMD(vselect)(x > m, x, m);
    }
    float mx = -INFINITY;
    for (int k = 0; k < VW; k++)
        mx = fmaxf(mx, m[k]);
    for (; j < n; j++)
        mx = fmaxf(mx, s[j]);
    return mx;
}

SIMD_TARGET static void SIMD(attention_forward)(float *out, float *lse, const float *qkv, const int *offsets,
                                                int B, int D, int H, float *scratch)
{
    const int dh = D / H, D3 = 3 * D;
    const float scale = 1.0f / sqrtf((float)dh);
    for (int b = 0; b < B; b++) {
        const int base = offsets[b], T = offsets[b + 1] - base;
        float *Kt = scratch;                     /* (dh, T) keys of this head, transposed */
        float *S = scratch + 2 * (size_t)dh * T; /* (T, T) scores, then probabilities */
        for (int h = 0; h < H; h++) {
            const float *q = qkv + (size_t)base * D3 + h * dh; /* (T, dh), row stride 3D */
            const float *v = q + 2 * D;                        /* (T, dh), row stride 3D */
            gather_t(Kt, q + D, D3, T, dh);
            SIMD(small_gemm)(S, T, q, D3, 1, Kt, T, T, T, dh); /* S = q k^T (unscaled) */
            for (int i = 0; i < T; i++) {
                float *si = S + (size_t)i * T;
                float mx = scale * SIMD(max_row)(si, T);
                float sum = SIMD(exp_row)(si, si, scale, mx, T);
                float inv = 1.0f / sum;
                int j = 0;
                for (; j + VW <= T; j += VW)
                    SIMD(vstore)(si + j, SIMD(vload)(si + j) * inv);
                for (; j < T; j++)
                    si[j] *= inv;
                lse[(size_t)(base + i) * H + h] = mx + logf(sum);
            }
            SIMD(small_gemm)(out + (size_t)base * D + h * dh, D, S, T, 1, v, D3, T, dh, T); /* o = P v */
        }
    }
}

/* With S = scale q k^T, P = softmax(S) and o = P v:
 *   dP = do v^T;  dS = P * (dP - rowsum(P * dP));  dq = scale dS k;  dk = scale dS^T q;  dv = P^T do. */
SIMD_TARGET static void SIMD(attention_backward)(float *dqkv, const float *dout, const float *qkv,
                                                 const float *lse, const int *offsets, int B, int D, int H,
                                                 float *scratch)
{
    const int dh = D / H, D3 = 3 * D;
    const float scale = 1.0f / sqrtf((float)dh);
    for (int b = 0; b < B; b++) {
        const int base = offsets[b], T = offsets[b + 1] - base;
        float *Kt = scratch;             /* (dh, T) */
        float *Vt = Kt + (size_t)dh * T; /* (dh, T) */
        float *P = Vt + (size_t)dh * T;  /* (T, T) */
        float *dS = P + (size_t)T * T;   /* (T, T) dP, then dS */
        for (int h = 0; h < H; h++) {
            const float *q = qkv + (size_t)base * D3 + h * dh, *k = q + D, *v = q + 2 * D;
            const float *dO = dout + (size_t)base * D + h * dh; /* (T, dh), row stride D */
            float *dq = dqkv + (size_t)base * D3 + h * dh, *dk = dq + D, *dv = dq + 2 * D;
            gather_t(Kt, k, D3, T, dh);
            gather_t(Vt, v, D3, T, dh);
            SIMD(small_gemm)(P, T, q, D3, 1, Kt, T, T, T, dh);  /* q k^T */
            SIMD(small_gemm)(dS, T, dO, D, 1, Vt, T, T, T, dh); /* dP = do v^T */
            for (int i = 0; i < T; i++) {
                float *pi = P + (size_t)i * T, *di = dS + (size_t)i * T;
                SIMD(exp_row)(pi, pi, scale, lse[(size_t)(base + i) * H + h], T);
                vf acc = {0};
                int j = 0;
                for (; j + VW <= T; j += VW)
                    acc += SIMD(vload)(pi + j) * SIMD(vload)(di + j);
                float dot = SIMD(vhsum)(acc);
                for (; j < T; j++)
                    dot += pi[j] * di[j];
                /* scale folded in here: dq and dk both carry it */
                for (j = 0; j + VW <= T; j += VW)
                    SIMD(vstore)(di + j, scale * SIMD(vload)(pi + j) * (SIMD(vload)(di + j) - dot));
                for (; j < T; j++)
                    di[j] = scale * pi[j] * (di[j] - dot);
            }
            SIMD(small_gemm)(dq, D3, dS, T, 1, k, D3, T, dh, T); /* dq = dS k */
            SIMD(small_gemm)(dk, D3, dS, 1, T, q, D3, T, dh, T); /* dk = dS^T q */
            SIMD(small_gemm)(dv, D3, P, 1, T, dO, D, T, dh, T);  /* dv = P^T do */
        }
    }
}

#undef FN
#undef vf
#undef vi
