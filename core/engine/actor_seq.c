/* The sequence reader: each token of a state becomes a vector
 *
 *   x = Etok[its text] (not for numbers) + (words, identifiers: Etok[first three letters] + Etok[last three]) / 2
 *     + Wnum^T phi(value) (numbers) + Ekind[kind] + Eseg[segment] + Eage[steps ago]
 *     + Eflag[copy flags] + 0.1 * sinusoid(position in its segment)
 *
 * and the states go through the Transformer encoder (engine/encoder.h) packed, without padding.
 * The state vector h is the mean of every output ([cls], token 0, included); candidate j's vector
 * is token j's output. */
#include "engine/actor_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static inline int bucket(uint64_t h, int n)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return (int)(h % (uint64_t)n);
}

void ac_actor_seq_layout(ac_actor_t *p, size_t *off)
{
    const size_t D = (size_t)p->H;
    p->off_Etok = *off;
    *off += (size_t)p->cfg.n_buckets * D;
    p->off_Wnum = *off;
    *off += SEQ_NUM_FEATURES * D;
    p->off_Ekind = *off;
    *off += AC_TOK_KINDS * D;
    p->off_Eseg = *off;
    *off += AC_SEG_KINDS * D;
    p->off_Eage = *off;
    *off += (AC_CONTEXT_MAX_AGE + 1) * D;
    p->off_Eflag = *off;
    *off += 8 * D;
    p->off_Eord = *off;
    *off += 16 * D;
    p->off_enc = *off;
    *off += ac_encoder_n_params(&p->cfg.enc);
}

int ac_actor_seq_alloc(ac_actor_t *p)
{
    const int D = p->H;
    if ((p->pos = malloc(sizeof(float) * 256 * (size_t)D)) == NULL)
        return -1;
    for (int t = 0; t < 256; t++)
        for (int d = 0; d < D; d += 2) { /* sin/cos pairs at geometric frequencies */
            double ang = t * pow(10000.0, -(double)d / D);
            p->pos[(size_t)t * D + d] = (float)(SEQ_POS_SCALE * sin(ang));
            if (d + 1 < D)
                p->pos[(size_t)t * D + d + 1] = (float)(SEQ_POS_SCALE * cos(ang));
        }
    return 0;
}

void ac_actor_seq_init(ac_actor_t *p, ac_rng_t *rng)
{
    /* the words start far apart and the structure (kind, segment, age, flags, ordinal) small
     * beside them: contexts that differ in a word then differ in what the heads read from the
     * first iteration (with all at one scale, every state starts within cos 0.99 of the others
     * and reinforcement learning barely moves) */
    for (size_t i = p->off_Etok; i < p->off_Wnum; i++)
        p->params[i] = (float)ac_rng_normal(rng);
    for (size_t i = p->off_Wnum; i < p->off_enc; i++)
        p->params[i] = (float)(SEQ_EMBED_STD * ac_rng_normal(rng));
    ac_encoder_init(p->params + p->off_enc, &p->cfg.enc, rng);
}

/* A number's value features: sign, magnitude (log10), not an integer, below 1 in size, squared
 * magnitude, a small integer (0..10). */
static void num_features(float v, float *f)
{
    float a = fabsf(v), m = log10f(1.0f + a);
    f[0] = v > 0 ? 1.0f : (v < 0 ? -1.0f : 0.0f);
    f[1] = m / 3.0f;
    f[2] = v != floorf(v) ? 1.0f : 0.0f;
    f[3] = a < 1.0f ? 1.0f : 0.0f;
    f[4] = m * m / 9.0f;
    f[5] = (v == floorf(v) && a <= 10.0f) ? 1.0f : 0.0f;
}

static void token_input(const ac_actor_t *p, const ac_token_t *t, float *x)
{
    const int D = p->H, NB = p->cfg.n_buckets;
    const float *P = p->params;
    const float *e = P + p->off_Etok + (size_t)bucket(t->hash, NB) * D;
    const float *ek = P + p->off_Ekind + (size_t)t->kind * D;
    const float *es = P + p->off_Eseg + (size_t)t->seg * D;
    const float *ea = P + p->off_Eage + (size_t)(t->age <= AC_CONTEXT_MAX_AGE ? t->age : AC_CONTEXT_MAX_AGE) * D;
    const float *ef = P + p->off_Eflag + (size_t)(t->flags & 7) * D;
    const float *eo = P + p->off_Eord + (size_t)t->ord * D;
    /* a number keeps its hashed vector, so that equal values read alike wherever they occur
     * (attention can match an operand with a result), and adds its value's features below */
    for (int d = 0; d < D; d++)
        x[d] = e[d] + ek[d] + es[d] + ea[d] + ef[d] + eo[d];
    if (t->pre || t->suf) {
        const float *e1 = P + p->off_Etok + (size_t)bucket(t->pre, NB) * D;
        const float *e2 = P + p->off_Etok + (size_t)bucket(t->suf, NB) * D;
        for (int d = 0; d < D; d++)
            x[d] += 0.5f * (e1[d] + e2[d]);
    }
    if (t->kind == AC_TOK_NUMBER) {
        float f[SEQ_NUM_FEATURES];
        num_features(t->value, f);
        const float *W = P + p->off_Wnum;
        for (int k = 0; k < SEQ_NUM_FEATURES; k++)
            if (f[k] != 0.0f)
                for (int d = 0; d < D; d++)
                    x[d] += f[k] * W[(size_t)k * D + d];
    }
    const float *pe = p->pos + (size_t)t->pos * D;
    for (int d = 0; d < D; d++)
        x[d] += pe[d];
}

static void token_input_backward(ac_actor_t *p, const ac_token_t *t, const float *g)
{
    const int D = p->H, NB = p->cfg.n_buckets;
    float *G = p->grads;
    float *rows[6] = {G + p->off_Etok + (size_t)bucket(t->hash, NB) * D, G + p->off_Ekind + (size_t)t->kind * D,
                      G + p->off_Eseg + (size_t)t->seg * D,
                      G + p->off_Eage + (size_t)(t->age <= AC_CONTEXT_MAX_AGE ? t->age : AC_CONTEXT_MAX_AGE) * D,
                      G + p->off_Eflag + (size_t)(t->flags & 7) * D, G + p->off_Eord + (size_t)t->ord * D};
    for (int k = 0; k < 6; k++) /* numbers have no text embedding */
        for (int d = 0; d < D; d++)
            rows[k][d] += g[d];
    if (t->pre || t->suf) {
        float *e1 = G + p->off_Etok + (size_t)bucket(t->pre, NB) * D;
        float *e2 = G + p->off_Etok + (size_t)bucket(t->suf, NB) * D;
        for (int d = 0; d < D; d++)
            e1[d] += 0.5f * g[d];
        for (int d = 0; d < D; d++)
            e2[d] += 0.5f * g[d];
    }
    if (t->kind == AC_TOK_NUMBER) {
        float f[SEQ_NUM_FEATURES];
        num_features(t->value, f);
        float *W = G + p->off_Wnum;
        for (int k = 0; k < SEQ_NUM_FEATURES; k++)
            if (f[k] != 0.0f)
                for (int d = 0; d < D; d++)
                    W[(size_t)k * D + d] += f[k] * g[d];
    }
}

int ac_actor_seq_read(ac_actor_t *p, ac_err_t *err)
{
    const int D = p->H, n = p->n;
    const ac_states_t *S = p->S;
    const int base = S->off[p->first];
    const int n_tok = p->seq_off[n]; /* ac_actor_read set the offsets */
    for (int i = 0; i < n_tok; i++)
        token_input(p, &S->tok[base + i], p->X + (size_t)i * D);
    if (ac_encoder_forward(p->enc, p->Y, p->params + p->off_enc, p->X, p->seq_off, n, err) != 0)
        return -1;
    /* h: the mean of every output ([cls] included, which attention can make a summary of): the
     * direct path from each word to the tool, as the bag has it */
    for (int r = 0; r < n; r++) {
        float *h = p->h + (size_t)r * D;
        const int t0 = p->seq_off[r], t1 = p->seq_off[r + 1];
        const float inv = 1.0f / (float)(t1 - t0);
        for (int t = t0; t < t1; t++) /* added to the bag's reading, already in h */
            for (int d = 0; d < D; d++)
                h[d] += inv * p->Y[(size_t)t * D + d];
    }
    return 0;
}

void ac_actor_seq_cand(ac_actor_t *p, int r, int tok, float *buf)
{
    const float *y = p->Y + (size_t)(p->seq_off[r] + tok) * p->H;
    for (int d = 0; d < p->H; d++)
        buf[d] += y[d];
}

void ac_actor_seq_cand_grad(ac_actor_t *p, int r, int tok, const float *g)
{
    float *dy = p->dY + (size_t)(p->seq_off[r] + tok) * p->H;
    for (int d = 0; d < p->H; d++)
        dy[d] += g[d];
}

void ac_actor_seq_begin_backward(ac_actor_t *p)
{
    memset(p->dY, 0, sizeof(float) * (size_t)p->seq_off[p->n] * p->H);
}

int ac_actor_seq_backward(ac_actor_t *p, ac_err_t *err)
{
    const int D = p->H, n = p->n;
    for (int r = 0; r < n; r++) { /* h = mean output */
        const int t0 = p->seq_off[r], t1 = p->seq_off[r + 1];
        const float inv = 1.0f / (float)(t1 - t0);
        const float *dh = p->dh + (size_t)r * D;
        for (int t = t0; t < t1; t++)
            for (int d = 0; d < D; d++)
                p->dY[(size_t)t * D + d] += inv * dh[d];
    }
    /* dX into X's buffer: the encoder kept its own copy of X for this backward */
    if (ac_encoder_backward(p->enc, p->X, p->grads + p->off_enc, p->params + p->off_enc, p->dY, err) != 0)
        return -1;
    const int base = p->S->off[p->first], n_tok = p->seq_off[n];
    for (int i = 0; i < n_tok; i++)
        token_input_backward(p, &p->S->tok[base + i], p->X + (size_t)i * D);
    return 0;
}
