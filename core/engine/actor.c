/* The actor's shared part: configuration, parameter layout, the tool and pointer heads, and the
 * decisions' forward and backward. The readers (how a state becomes h and the candidates' c)
 * are in actor_bag.c and actor_seq.c. */
#include "engine/actor_internal.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/keyword.h"
#include "engine/policy.h"

/* ---- states ----------------------------------------------------------------------------------- */

void ac_states_clear(ac_states_t *s)
{
    s->n = 0;
    s->n_tok = 0;
    if (s->off != NULL)
        s->off[0] = 0;
}

void ac_states_free(ac_states_t *s)
{
    free(s->off);
    free(s->tok);
    memset(s, 0, sizeof *s);
}

static int states_append(ac_states_t *s, const ac_token_t *tok, int n, ac_err_t *err)
{
    if (s->n + 1 >= s->_cap) {
        int cap = s->_cap ? s->_cap * 2 : 256;
        int *off = realloc(s->off, sizeof *off * (size_t)(cap + 1));
        if (off == NULL)
            return ac_err_set(err, AC_ERR_INTERNAL, "states: out of memory");
        if (s->_cap == 0)
            off[0] = 0;
        s->off = off;
        s->_cap = cap;
    }
    if (s->n_tok + (size_t)n > s->_cap_tok) {
        size_t cap = s->_cap_tok ? s->_cap_tok : 4096;
        while (cap < s->n_tok + (size_t)n)
            cap *= 2;
        ac_token_t *t = realloc(s->tok, sizeof *t * cap);
        if (t == NULL)
            return ac_err_set(err, AC_ERR_INTERNAL, "states: out of memory");
        s->tok = t;
        s->_cap_tok = cap;
    }
    memcpy(s->tok + s->n_tok, tok, sizeof *tok * (size_t)n);
    s->n_tok += (size_t)n;
    s->off[++s->n] = (int)s->n_tok;
    return s->n - 1;
}

int ac_states_add(ac_states_t *s, const ac_context_t *ctx, ac_err_t *err)
{
    return states_append(s, ctx->tok, ctx->n, err);
}

int ac_states_copy(ac_states_t *s, const ac_states_t *from, int i, ac_err_t *err)
{
    return states_append(s, from->tok + from->off[i], from->off[i + 1] - from->off[i], err);
}

/* ---- configuration and layout ----------------------------------------------------------------- */

static int known_reader(int reader) { return reader >= AC_ACTOR_READER_V0 && reader <= AC_ACTOR_READER_CURRENT; }

static int check_config(const ac_actor_config_t *c, ac_err_t *err)
{
    if (c->kind != AC_ACTOR_BAG && c->kind != AC_ACTOR_SEQUENCE)
        return ac_err_field(err, AC_ERR_INVALID_PARAMS, "policy.kind", "must be \"bag\" or \"sequence\"");
    if (c->n_tools < 1 || c->n_tools > AC_AGENT_MAX_ACTIONS)
        return ac_err_field(err, AC_ERR_INVALID_PARAMS, "n_tools", "must be from 1 to %d", AC_AGENT_MAX_ACTIONS);
    int slots = 0;
    for (int a = 0; a < c->n_tools; a++) {
        if (c->n_args[a] < 0 || c->n_args[a] > AC_AGENT_MAX_ARGS)
            return ac_err_field(err, AC_ERR_INVALID_PARAMS, "n_args", "tool %d takes 0 to %d arguments", a,
                                AC_AGENT_MAX_ARGS);
        slots += c->n_args[a];
    }
    if (slots > AC_ACTOR_MAX_SLOTS)
        return ac_err_field(err, AC_ERR_INVALID_PARAMS, "n_args", "more than %d argument slots", AC_ACTOR_MAX_SLOTS);
    if (c->max_tokens < 8 || c->max_tokens > AC_CONTEXT_MAX_TOKENS)
        return ac_err_field(err, AC_ERR_INVALID_PARAMS, "policy.max_tokens", "must be from 8 to %d",
                            AC_CONTEXT_MAX_TOKENS);
    if (!known_reader(c->reader))
        return ac_err_field(err, AC_ERR_INVALID_PARAMS, "reader", "feature set %d is newer than this build (at most %d)",
                            c->reader, AC_ACTOR_READER_CURRENT);
    if (c->n_buckets < 16 || c->n_buckets > (1 << 22))
        return ac_err_field(err, AC_ERR_INVALID_PARAMS, "n_buckets", "must be from 16 to %d", 1 << 22);
    if (c->d_emb < 1 || c->d_emb > 1024)
        return ac_err_field(err, AC_ERR_INVALID_PARAMS, "embed_dim", "must be from 1 to 1024");
    if (c->kind == AC_ACTOR_BAG) {
        if (c->hidden < 1 || c->hidden > 1024)
            return ac_err_field(err, AC_ERR_INVALID_PARAMS, "hidden_size", "must be from 1 to 1024");
        return 0;
    }
    ac_encoder_config_t e = c->enc;
    e.max_len = c->max_tokens;
    return ac_encoder_config_check(&e, err);
}

static void layout(ac_actor_t *p)
{
    const ac_actor_config_t *c = &p->cfg;
    const int H = p->H, A = c->n_tools;
    size_t off = 0;
    /* both kinds read the bag (the sequence reader adds the Transformer's reading to it): E, W0,
     * b0 first, as the checkpoints of version 1 had them */
    ac_actor_bag_layout(p, &off);
    p->off_Wt = off;
    off += (size_t)H * A;
    p->off_bt = off;
    off += (size_t)A;
    p->off_Wq = off;
    off += (size_t)H * H;
    p->off_S = off;
    off += (size_t)(p->n_slots ? p->n_slots : 1) * H;
    p->off_U = off;
    off += (size_t)H * H;
    p->off_Wk = off;
    off += (size_t)H * H;
    p->off_end_heads = off;
    p->off_Ec = off;
    off += (size_t)c->n_buckets * H;
    if (c->kind == AC_ACTOR_SEQUENCE)
        ac_actor_seq_layout(p, &off);
    p->n_params = off;
}

static ac_actor_t *alloc_actor(const ac_actor_config_t *cfg, ac_err_t *err)
{
    if (check_config(cfg, err) != 0)
        return NULL;
    ac_actor_t *p = calloc(1, sizeof *p);
    if (p == NULL) {
        ac_err_set(err, AC_ERR_INTERNAL, "actor: out of memory");
        return NULL;
    }
    p->cfg = *cfg;
    p->cfg.enc.max_len = cfg->max_tokens;
    p->temperature = 1.0f;
    p->H = cfg->kind == AC_ACTOR_BAG ? cfg->hidden : cfg->enc.d_model;
    for (int a = 0; a < cfg->n_tools; a++) {
        p->slot_base[a] = p->n_slots;
        p->n_slots += cfg->n_args[a];
    }
    layout(p);
    p->params = calloc(p->n_params, sizeof(float));
    p->grads = calloc(p->n_params, sizeof(float));
    p->scratch = malloc(sizeof(float) * 4 * (size_t)p->H);
    if (cfg->kind == AC_ACTOR_SEQUENCE && p->params != NULL && ac_actor_seq_alloc(p) == 0)
        p->enc = ac_encoder_create(&p->cfg.enc, err);
    if (p->params == NULL || p->grads == NULL || p->scratch == NULL ||
        (cfg->kind == AC_ACTOR_SEQUENCE && p->enc == NULL)) {
        if (err && !err->code)
            ac_err_set(err, AC_ERR_INTERNAL, "actor: out of memory (%zu parameters)", p->n_params);
        ac_actor_destroy(p);
        return NULL;
    }
    return p;
}

static void fill_normal(float *w, size_t n, double std, ac_rng_t *rng)
{
    for (size_t i = 0; i < n; i++)
        w[i] = (float)(std * ac_rng_normal(rng));
}

ac_actor_t *ac_actor_keyword(const ac_actor_config_t *cfg, const struct ac_keyword *k, ac_err_t *err)
{
    ac_actor_t *p = calloc(1, sizeof *p);
    if (p == NULL) {
        ac_err_set(err, AC_ERR_INTERNAL, "actor: out of memory");
        return NULL;
    }
    p->cfg = *cfg;
    p->cfg.kind = AC_ACTOR_KEYWORD;
    p->temperature = 1.0f;
    p->keyword = k;
    return p;
}

ac_actor_t *ac_actor_create(const ac_actor_config_t *cfg, ac_err_t *err)
{
    ac_actor_t *p = alloc_actor(cfg, err);
    if (p == NULL)
        return NULL;
    ac_rng_t rng;
    ac_rng_seed(&rng, cfg->seed);
    const int H = p->H, A = cfg->n_tools;
    ac_actor_bag_init(p, &rng);
    /* the heads start close to uniform, so that early rollouts explore */
    fill_normal(p->params + p->off_Wt, (size_t)H * A, 0.1 * sqrt(2.0 / (H + A)), &rng);
    fill_normal(p->params + p->off_Wq, (size_t)H * H, 0.1 / sqrt((double)H), &rng);
    fill_normal(p->params + p->off_S, (size_t)p->n_slots * H, 0.1, &rng);
    fill_normal(p->params + p->off_U, (size_t)H * H, 0.1 / sqrt((double)H), &rng);
    fill_normal(p->params + p->off_Wk, (size_t)H * H, 1.0 / sqrt((double)H), &rng);
    fill_normal(p->params + p->off_Ec, (size_t)cfg->n_buckets * H, 1.0, &rng);
    if (cfg->kind == AC_ACTOR_SEQUENCE)
        ac_actor_seq_init(p, &rng);
    return p;
}

void ac_actor_destroy(ac_actor_t *p)
{
    if (p == NULL)
        return;
    ac_encoder_destroy(p->enc);
    free(p->pos);
    free(p->params);
    free(p->grads);
    free(p->h);
    free(p->ids);
    free(p->ids_off);
    free(p->cursor);
    free(p->ids_ahead);
    free(p->ids_hist);
    free(p->x);
    free(p->a);
    free(p->C);
    free(p->dC);
    free(p->c_have);
    free(p->c_grad);
    free(p->X);
    free(p->Y);
    free(p->dY);
    free(p->seq_off);
    free(p->q);
    free(p->r);
    free(p->dh);
    free(p->scratch);
    free(p);
}

ac_actor_t *ac_actor_clone(const ac_actor_t *src, ac_err_t *err)
{
    ac_actor_t *p = alloc_actor(&src->cfg, err);
    if (p != NULL) {
        memcpy(p->params, src->params, sizeof(float) * src->n_params);
        p->temperature = src->temperature;
    }
    return p;
}

const ac_actor_config_t *ac_actor_config(const ac_actor_t *p) { return &p->cfg; }
size_t ac_actor_n_params(const ac_actor_t *p) { return p->n_params; }
float *ac_actor_params(ac_actor_t *p) { return p->params; }
float *ac_actor_grads(ac_actor_t *p) { return p->grads; }
void ac_actor_zero_grad(ac_actor_t *p) { memset(p->grads, 0, sizeof(float) * p->n_params); }
ac_encoder_t *ac_actor_encoder(ac_actor_t *p) { return p->enc; }
void ac_actor_set_temperature(ac_actor_t *p, float t) { p->temperature = t > 0 ? t : 1.0f; }
float ac_actor_temperature(const ac_actor_t *p) { return p->temperature; }

int ac_actor_set_reader(ac_actor_t *p, int reader)
{
    if (!known_reader(reader))
        return -1;
    p->cfg.reader = reader;
    return 0;
}

int ac_actor_lr_groups(const ac_actor_t *p, size_t *ends, float *scale)
{
    /* one group: every weight of the actor moves at the same multiple of the learning rate */
    ends[0] = p->n_params;
    scale[0] = p->cfg.kind == AC_ACTOR_BAG ? AC_ACTOR_BAG_LR_SCALE : AC_ACTOR_SEQ_LR_SCALE;
    return 1;
}

/* ---- workspace -------------------------------------------------------------------------------- */

static int grow(void **ptr, size_t need, ac_err_t *err)
{
    void *q = realloc(*ptr, need ? need : 1);
    if (q == NULL)
        return ac_err_set(err, AC_ERR_INTERNAL, "actor workspace: out of memory");
    *ptr = q;
    return 0;
}

int ac_actor_reserve(ac_actor_t *p, int n, size_t n_tok, ac_err_t *err)
{
    const size_t H = (size_t)p->H;
    if (n > p->cap_states) {
        int cap = n > 2 * p->cap_states ? n : 2 * p->cap_states;
        if (grow((void **)&p->h, sizeof(float) * (size_t)cap * H, err) ||
            grow((void **)&p->dh, sizeof(float) * (size_t)cap * H, err) ||
            grow((void **)&p->ids_off, sizeof(int) * (size_t)(cap + 1), err) ||
            grow((void **)&p->cursor, sizeof(int) * (size_t)cap, err) ||
            grow((void **)&p->ids_ahead, sizeof(int) * (size_t)cap, err) ||
            grow((void **)&p->ids_hist, sizeof(int) * (size_t)cap, err) ||
            grow((void **)&p->seq_off, sizeof(int) * (size_t)(cap + 1), err) ||
            grow((void **)&p->x, sizeof(float) * (size_t)cap * p->cfg.d_emb, err) ||
            grow((void **)&p->a, sizeof(float) * (size_t)cap * H, err) ||
            grow((void **)&p->ids, sizeof(int) * (size_t)cap * BAG_MAX_FEATURES, err))
            return -1;
        p->cap_states = cap;
    }
    if (n_tok > p->cap_C) {
        size_t cap = n_tok > 2 * p->cap_C ? n_tok : 2 * p->cap_C;
        if (grow((void **)&p->C, sizeof(float) * cap * H, err) || grow((void **)&p->dC, sizeof(float) * cap * H, err) ||
            grow((void **)&p->c_have, cap, err) || grow((void **)&p->c_grad, cap, err))
            return -1;
        p->cap_C = cap;
    }
    if (p->cfg.kind == AC_ACTOR_SEQUENCE && n_tok > p->cap_tok) {
        size_t cap = n_tok > 2 * p->cap_tok ? n_tok : 2 * p->cap_tok;
        if (grow((void **)&p->X, sizeof(float) * cap * H, err) || grow((void **)&p->Y, sizeof(float) * cap * H, err) ||
            grow((void **)&p->dY, sizeof(float) * cap * H, err))
            return -1;
        p->cap_tok = cap;
    }
    return 0;
}

/* ---- reading states --------------------------------------------------------------------------- */

int ac_actor_read(ac_actor_t *p, const ac_states_t *S, int first, int n, ac_err_t *err)
{
    p->forward_ok = 0;
    if (first < 0 || n < 1 || first + n > S->n)
        return ac_err_set(err, AC_ERR_INTERNAL, "actor: states %d..%d of %d", first, first + n - 1, S->n);
    p->S = S;
    p->first = first;
    p->n = n;
    if (p->cfg.kind == AC_ACTOR_KEYWORD)
        return 0;
    size_t n_tok = (size_t)(S->off[first + n] - S->off[first]);
    if (ac_actor_reserve(p, n, n_tok, err) != 0)
        return -1;
    for (int r = 0; r <= n; r++)
        p->seq_off[r] = S->off[first + r] - S->off[first];
    for (int r = 0; r < n; r++)
        if (p->seq_off[r + 1] - p->seq_off[r] < 1)
            return ac_err_set(err, AC_ERR_INTERNAL, "actor: state %d has no token", first + r);
    memset(p->c_have, 0, n_tok);
    if (ac_actor_bag_read(p, err) != 0)
        return -1;
    return p->cfg.kind == AC_ACTOR_SEQUENCE ? ac_actor_seq_read(p, err) : 0;
}

static const float *cand_vec(ac_actor_t *p, int r, int tok, float *buf)
{
    const float *c = ac_actor_bag_cand(p, r, tok);
    if (p->cfg.kind != AC_ACTOR_SEQUENCE)
        return c;
    memcpy(buf, c, sizeof(float) * (size_t)p->H);
    ac_actor_seq_cand(p, r, tok, buf);
    return buf;
}

static void cand_grad(ac_actor_t *p, int r, int tok, const float *g)
{
    ac_actor_bag_cand_grad(p, r, tok, g);
    if (p->cfg.kind == AC_ACTOR_SEQUENCE)
        ac_actor_seq_cand_grad(p, r, tok, g);
}

/* ---- heads ------------------------------------------------------------------------------------ */

/* logits (A) = h Wt + bt */
static void tool_logits(const ac_actor_t *p, const float *h, float *z)
{
    const int H = p->H, A = p->cfg.n_tools;
    memcpy(z, p->params + p->off_bt, sizeof(float) * (size_t)A);
    cblas_sgemv(CblasRowMajor, CblasTrans, H, A, 1.0f, p->params + p->off_Wt, A, h, 1, 1.0f, z, 1);
}

/* Tempered, masked log-softmax of z (n) into logp. -1 when nothing is legal. */
static int log_softmax(const ac_actor_t *p, float *logp, float *z, const uint8_t *mask, int n)
{
    if (p->temperature != 1.0f) {
        float inv = 1.0f / p->temperature;
        for (int i = 0; i < n; i++)
            z[i] *= inv;
    }
    return ac_policy_log_softmax_forward(logp, z, mask, 1, n) == 0 ? 0 : -1;
}

/* The pointer query of slot `slot` of `tool`: q (H) = h Wq + S[slot] + (sum of prev) U, and
 * r (H) = Wk q, so that score_j = c_j . r / sqrt(H). psum (H) out: the sum of the previous
 * choices' vectors. */
static void slot_query(ac_actor_t *p, int rr, int tool, int slot, const int *prev, int n_prev, float *q, float *r,
                       float *psum)
{
    const int H = p->H;
    float *buf = p->scratch + 3 * H;
    memcpy(q, p->params + p->off_S + (size_t)(p->slot_base[tool] + slot) * H, sizeof(float) * (size_t)H);
    cblas_sgemv(CblasRowMajor, CblasTrans, H, H, 1.0f, p->params + p->off_Wq, H, p->h + (size_t)rr * H, 1, 1.0f, q,
                1);
    memset(psum, 0, sizeof(float) * (size_t)H);
    for (int k = 0; k < n_prev; k++) {
        const float *c = cand_vec(p, rr, prev[k], buf);
        for (int i = 0; i < H; i++)
            psum[i] += c[i];
    }
    if (n_prev > 0)
        cblas_sgemv(CblasRowMajor, CblasTrans, H, H, 1.0f, p->params + p->off_U, H, psum, 1, 1.0f, q, 1);
    cblas_sgemv(CblasRowMajor, CblasNoTrans, H, H, 1.0f, p->params + p->off_Wk, H, q, 1, 0.0f, r, 1);
}

static void slot_scores(ac_actor_t *p, int rr, const int *cand, int n, const float *r, float *z)
{
    const int H = p->H;
    const float inv = 1.0f / sqrtf((float)H);
    float *buf = p->scratch + 3 * H;
    for (int j = 0; j < n; j++) {
        const float *c = cand_vec(p, rr, cand[j], buf);
        z[j] = cblas_sdot(H, c, 1, r, 1) * inv;
    }
}

/* The keyword rule's choice as log-probabilities: 0 for it, -INFINITY elsewhere. */
static int one_hot(float *logp, int n, int pick)
{
    if (pick < 0)
        return -1;
    for (int i = 0; i < n; i++)
        logp[i] = i == pick ? 0.0f : -INFINITY;
    return 0;
}

int ac_actor_tool_logp(ac_actor_t *p, int r, const uint8_t *mask, float *logp)
{
    if (p->cfg.kind == AC_ACTOR_KEYWORD) {
        int s = p->first + r;
        return one_hot(logp, p->cfg.n_tools,
                       ac_keyword_tool(p->keyword, p->S->tok + p->S->off[s], p->S->off[s + 1] - p->S->off[s], mask));
    }
    float z[AC_AGENT_MAX_ACTIONS];
    tool_logits(p, p->h + (size_t)r * p->H, z);
    return log_softmax(p, logp, z, mask, p->cfg.n_tools);
}

int ac_actor_slot_logp(ac_actor_t *p, int r, int tool, int slot, const int *cand, int n, const int *prev,
                       int n_prev, float *logp)
{
    if (n < 1 || n > AC_ACTOR_MAX_CANDS || tool < 0 || tool >= p->cfg.n_tools || slot < 0 ||
        slot >= p->cfg.n_args[tool])
        return -1;
    if (p->cfg.kind == AC_ACTOR_KEYWORD)
        return one_hot(logp, n, ac_keyword_arg(p->S->tok + p->S->off[p->first + r], cand, n, prev, n_prev));
    const int H = p->H;
    float z[AC_ACTOR_MAX_CANDS];
    slot_query(p, r, tool, slot, prev, n_prev, p->scratch, p->scratch + H, p->scratch + 2 * H);
    slot_scores(p, r, cand, n, p->scratch + H, z);
    return log_softmax(p, logp, z, NULL, n);
}

/* ---- training --------------------------------------------------------------------------------- */

int ac_actor_forward(ac_actor_t *p, const ac_states_t *S, int first, int n, const ac_decision_t *d, int n_d,
                     float *logp, ac_err_t *err)
{
    if (p->cfg.kind == AC_ACTOR_KEYWORD)
        return ac_err_set(err, AC_ERR_INTERNAL, "actor: the keyword rule is not trained");
    if (ac_actor_read(p, S, first, n, err) != 0)
        return -1;
    const int H = p->H;
    if (n_d > p->cap_d) {
        int cap = n_d > 2 * p->cap_d ? n_d : 2 * p->cap_d;
        if (grow((void **)&p->q, sizeof(float) * (size_t)cap * H, err) ||
            grow((void **)&p->r, sizeof(float) * (size_t)cap * H, err))
            return -1;
        p->cap_d = cap;
    }
    float z[AC_ACTOR_MAX_CANDS > AC_AGENT_MAX_ACTIONS ? AC_ACTOR_MAX_CANDS : AC_AGENT_MAX_ACTIONS];
    for (int i = 0; i < n_d; i++) {
        const ac_decision_t *x = &d[i];
        int rr = x->state - first;
        if (rr < 0 || rr >= n || x->tool < 0 || x->tool >= p->cfg.n_tools || x->n < 1 ||
            (x->slot < 0 && x->n != p->cfg.n_tools) ||
            (x->slot >= 0 && (x->slot >= p->cfg.n_args[x->tool] || x->n > AC_ACTOR_MAX_CANDS)))
            return ac_err_set(err, AC_ERR_INTERNAL, "actor: decision %d out of range", i);
        if (x->slot < 0) {
            tool_logits(p, p->h + (size_t)rr * H, z);
            if (log_softmax(p, logp + x->off, z, x->mask, x->n) != 0)
                return ac_err_set(err, AC_ERR_INVALID_PARAMS, "actor: decision %d has no legal tool", i);
        } else {
            slot_query(p, rr, x->tool, x->slot, x->prev, x->n_prev, p->q + (size_t)i * H, p->r + (size_t)i * H,
                       p->scratch + 2 * H);
            slot_scores(p, rr, x->cand, x->n, p->r + (size_t)i * H, z);
            log_softmax(p, logp + x->off, z, NULL, x->n);
        }
    }
    p->d = d;
    p->n_d = n_d;
    p->forward_ok = 1;
    return 0;
}

/* The backward of one slot decision: dz (n) is dL/dscore. */
static void slot_backward(ac_actor_t *p, const ac_decision_t *x, int i, const float *dz)
{
    const int H = p->H, rr = x->state - p->first;
    const float inv = 1.0f / sqrtf((float)H);
    const float *q = p->q + (size_t)i * H, *r = p->r + (size_t)i * H;
    float *dr = p->scratch, *dq = p->scratch + H, *g = p->scratch + 2 * H, *buf = p->scratch + 3 * H;
    memset(dr, 0, sizeof(float) * (size_t)H);
    for (int j = 0; j < x->n; j++) {
        if (dz[j] == 0.0f)
            continue;
        const float *c = cand_vec(p, rr, x->cand[j], buf);
        float s = dz[j] * inv;
        for (int k = 0; k < H; k++) {
            dr[k] += s * c[k];
            g[k] = s * r[k];
        }
        cand_grad(p, rr, x->cand[j], g);
    }
    /* r = Wk q: dWk += dr q^T (Wk is (H, H) with r_a = sum_b Wk[a][b] q_b); dq = Wk^T dr */
    cblas_sger(CblasRowMajor, H, H, 1.0f, dr, 1, q, 1, p->grads + p->off_Wk, H);
    cblas_sgemv(CblasRowMajor, CblasTrans, H, H, 1.0f, p->params + p->off_Wk, H, dr, 1, 0.0f, dq, 1);
    /* q = h Wq + S + psum U */
    cblas_sger(CblasRowMajor, H, H, 1.0f, p->h + (size_t)rr * H, 1, dq, 1, p->grads + p->off_Wq, H);
    cblas_sgemv(CblasRowMajor, CblasNoTrans, H, H, 1.0f, p->params + p->off_Wq, H, dq, 1, 1.0f,
                p->dh + (size_t)rr * H, 1);
    float *dS = p->grads + p->off_S + (size_t)(p->slot_base[x->tool] + x->slot) * H;
    for (int k = 0; k < H; k++)
        dS[k] += dq[k];
    if (x->n_prev > 0) {
        float *psum = g; /* recomputed: the sum of the previous choices' vectors */
        memset(psum, 0, sizeof(float) * (size_t)H);
        for (int k = 0; k < x->n_prev; k++) {
            const float *c = cand_vec(p, rr, x->prev[k], buf);
            for (int m = 0; m < H; m++)
                psum[m] += c[m];
        }
        cblas_sger(CblasRowMajor, H, H, 1.0f, psum, 1, dq, 1, p->grads + p->off_U, H);
        float *dp = buf; /* dL/dpsum = U dq, the same for every previous choice */
        cblas_sgemv(CblasRowMajor, CblasNoTrans, H, H, 1.0f, p->params + p->off_U, H, dq, 1, 0.0f, dp, 1);
        memcpy(psum, dp, sizeof(float) * (size_t)H); /* cand_vec may overwrite buf below */
        for (int k = 0; k < x->n_prev; k++)
            cand_grad(p, rr, x->prev[k], psum);
    }
}

int ac_actor_backward(ac_actor_t *p, const float *dlogits, ac_err_t *err)
{
    if (!p->forward_ok)
        return ac_err_set(err, AC_ERR_INTERNAL, "actor backward: no forward to go back through");
    const int H = p->H, A = p->cfg.n_tools;
    const float invT = 1.0f / p->temperature;
    memset(p->dh, 0, sizeof(float) * (size_t)p->n * H);
    ac_actor_bag_begin_backward(p);
    if (p->cfg.kind == AC_ACTOR_SEQUENCE)
        ac_actor_seq_begin_backward(p);
    float dz[AC_ACTOR_MAX_CANDS > AC_AGENT_MAX_ACTIONS ? AC_ACTOR_MAX_CANDS : AC_AGENT_MAX_ACTIONS];
    for (int i = 0; i < p->n_d; i++) {
        const ac_decision_t *x = &p->d[i];
        int any = 0;
        for (int j = 0; j < x->n; j++) {
            dz[j] = dlogits[x->off + (size_t)j] * invT; /* through z / T */
            any |= dz[j] != 0.0f;
        }
        if (!any)
            continue;
        if (x->slot < 0) {
            int rr = x->state - p->first;
            const float *h = p->h + (size_t)rr * H;
            cblas_sger(CblasRowMajor, H, A, 1.0f, h, 1, dz, 1, p->grads + p->off_Wt, A);
            float *db = p->grads + p->off_bt;
            for (int a = 0; a < A; a++)
                db[a] += dz[a];
            cblas_sgemv(CblasRowMajor, CblasNoTrans, H, A, 1.0f, p->params + p->off_Wt, A, dz, 1, 1.0f,
                        p->dh + (size_t)rr * H, 1);
        } else {
            slot_backward(p, x, i, dz);
        }
    }
    /* the sequence reader first: the bag's backward goes through its ReLU in place in dh */
    int rc = p->cfg.kind == AC_ACTOR_SEQUENCE ? ac_actor_seq_backward(p, err) : 0;
    if (rc == 0)
        rc = ac_actor_bag_backward(p, err);
    p->forward_ok = 0;
    return rc;
}

/* ---- the parameter layout, by name ------------------------------------------------------------- */

typedef struct tensor_list {
    ac_actor_tensor_t *out;
    int cap, n;
} tensor_list_t;

static void tensor(tensor_list_t *l, const char *name, size_t offset, int rows, int cols, int ndim)
{
    if (l->n < l->cap) {
        ac_actor_tensor_t *t = &l->out[l->n];
        snprintf(t->name, sizeof t->name, "%s", name);
        t->offset = offset;
        t->ndim = ndim;
        t->rows = rows;
        t->cols = cols;
    }
    l->n++;
}

int ac_actor_tensors(const ac_actor_t *p, ac_actor_tensor_t *out, int cap)
{
    if (p->cfg.kind == AC_ACTOR_KEYWORD)
        return 0;
    const ac_actor_config_t *c = &p->cfg;
    const int H = p->H, A = c->n_tools;
    tensor_list_t l = {out, cap, 0};
    /* layout order (layout(), ac_actor_bag_layout, ac_actor_seq_layout) */
    tensor(&l, "E", p->off_E, c->n_buckets, c->d_emb, 2);
    tensor(&l, "W0", p->off_W0, c->d_emb, H, 2);
    tensor(&l, "b0", p->off_b0, 1, H, 1);
    tensor(&l, "Wt", p->off_Wt, H, A, 2);
    tensor(&l, "bt", p->off_bt, 1, A, 1);
    tensor(&l, "Wq", p->off_Wq, H, H, 2);
    tensor(&l, "S", p->off_S, p->n_slots ? p->n_slots : 1, H, 2);
    tensor(&l, "U", p->off_U, H, H, 2);
    tensor(&l, "Wk", p->off_Wk, H, H, 2);
    tensor(&l, "Ec", p->off_Ec, c->n_buckets, H, 2);
    if (c->kind == AC_ACTOR_SEQUENCE) {
        tensor(&l, "Etok", p->off_Etok, c->n_buckets, H, 2);
        tensor(&l, "Wnum", p->off_Wnum, SEQ_NUM_FEATURES, H, 2);
        tensor(&l, "Ekind", p->off_Ekind, AC_TOK_KINDS, H, 2);
        tensor(&l, "Eseg", p->off_Eseg, AC_SEG_KINDS, H, 2);
        tensor(&l, "Eage", p->off_Eage, AC_CONTEXT_MAX_AGE + 1, H, 2);
        tensor(&l, "Eflag", p->off_Eflag, 8, H, 2);
        tensor(&l, "Eord", p->off_Eord, 16, H, 2);
        const ac_encoder_config_t *e = &p->cfg.enc;
        const int D = e->d_model, F = e->d_ff;
        /* (rows, cols) of each layer tensor, in ac_encoder_tensor's order */
        const int shape[AC_ENCODER_N_LAYER_TENSORS][3] = {
            {1, D, 1}, {1, D, 1}, {D, 3 * D, 2}, {1, 3 * D, 1}, {D, D, 2}, {1, D, 1},
            {1, D, 1}, {1, D, 1}, {D, F, 2},     {1, F, 1},     {F, D, 2}, {1, D, 1}};
        char name[24];
        for (int layer = 0; layer < e->n_layers; layer++)
            for (int k = 0; k < AC_ENCODER_N_LAYER_TENSORS; k++) {
                snprintf(name, sizeof name, "enc.%d.%s", layer, ac_encoder_tensor_name(k, 0));
                tensor(&l, name, p->off_enc + ac_encoder_tensor(e, layer, k, NULL), shape[k][0], shape[k][1],
                       shape[k][2]);
            }
        for (int k = 0; k < 2; k++) {
            snprintf(name, sizeof name, "enc.%s", ac_encoder_tensor_name(k, 1));
            tensor(&l, name, p->off_enc + ac_encoder_tensor(e, e->n_layers, k, NULL), 1, D, 1);
        }
    }
    return l.n;
}

/* ---- serialisation ---------------------------------------------------------------------------- */

#define CONFIG_VERSION 1u
#define CONFIG_INTS (9 + AC_AGENT_MAX_ACTIONS + 5)

size_t ac_actor_config_size(void) { return 4 + 8 + 4 * CONFIG_INTS; }

static void put_u32(uint8_t *o, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        o[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_u32(const uint8_t *in)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++)
        v |= (uint32_t)in[i] << (8 * i);
    return v;
}

void ac_actor_config_write(const ac_actor_config_t *c, uint8_t *out)
{
    put_u32(out, CONFIG_VERSION);
    put_u32(out + 4, (uint32_t)c->seed);
    put_u32(out + 8, (uint32_t)(c->seed >> 32));
    int32_t v[CONFIG_INTS] = {c->kind, c->n_tools, c->max_tokens, c->n_buckets, c->d_emb, c->hidden,
                              c->enc.d_model, c->enc.n_heads, c->enc.n_layers};
    for (int a = 0; a < AC_AGENT_MAX_ACTIONS; a++)
        v[9 + a] = c->n_args[a];
    v[9 + AC_AGENT_MAX_ACTIONS] = c->enc.d_ff;
    v[10 + AC_AGENT_MAX_ACTIONS] = c->reader;
    for (int i = 0; i < CONFIG_INTS; i++)
        put_u32(out + 12 + 4 * i, (uint32_t)v[i]);
}

int ac_actor_config_read(ac_actor_config_t *c, const uint8_t *in, size_t len, ac_err_t *err)
{
    if (len < ac_actor_config_size())
        return ac_err_set(err, AC_ERR_INVALID_PARAMS, "checkpoint: the policy config is truncated");
    if (get_u32(in) != CONFIG_VERSION)
        return ac_err_set(err, AC_ERR_INVALID_PARAMS, "checkpoint: policy config version %u not supported",
                          get_u32(in));
    memset(c, 0, sizeof *c);
    c->seed = (uint64_t)get_u32(in + 4) | (uint64_t)get_u32(in + 8) << 32;
    int32_t v[CONFIG_INTS];
    for (int i = 0; i < CONFIG_INTS; i++)
        v[i] = (int32_t)get_u32(in + 12 + 4 * i);
    c->kind = v[0], c->n_tools = v[1], c->max_tokens = v[2], c->n_buckets = v[3], c->d_emb = v[4];
    c->hidden = v[5], c->enc.d_model = v[6], c->enc.n_heads = v[7], c->enc.n_layers = v[8];
    for (int a = 0; a < AC_AGENT_MAX_ACTIONS; a++)
        c->n_args[a] = v[9 + a];
    c->enc.d_ff = v[9 + AC_AGENT_MAX_ACTIONS];
    c->reader = v[10 + AC_AGENT_MAX_ACTIONS]; /* 0 in checkpoints written before it existed */
    c->enc.max_len = c->max_tokens;
    return check_config(c, err);
}
