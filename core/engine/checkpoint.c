#include "engine/checkpoint.h"

#include "engine/policy.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static const char MAGIC[8] = {'A', 'C', 'C', 'K', 'P', 'T', '\r', '\n'};
enum { HEADER = 8 + 4 + 4 + 8, TRAILER = 4 };

static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_table[i] = c;
    }
}

uint32_t ac_checkpoint_crc32(const void *data, size_t n)
{
    /* Byte-wise table CRC: ~1 GB/s, plenty for checkpoints of tens of MB. Workers may save
     * concurrently, hence the once-initialised table. */
    pthread_once(&crc_once, crc_init);
    const uint32_t *table = crc_table;
    const uint8_t *p = data;
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++)
        c = table[(c ^ p[i]) & 0xFF] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

/* ---- writer: explicit little-endian, independent of the host's byte order ---------------- */

typedef struct {
    uint8_t *p;
} wr_t;

static void put_u32(wr_t *w, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        *w->p++ = (uint8_t)(v >> (8 * i));
}
static void put_u64(wr_t *w, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        *w->p++ = (uint8_t)(v >> (8 * i));
}
static void put_f32(wr_t *w, float f)
{
    uint32_t v;
    memcpy(&v, &f, 4);
    put_u32(w, v);
}
static void put_f32s(wr_t *w, const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        put_f32(w, x[i]);
}

static size_t body_size(size_t n_params, size_t meta_len)
{
    return ac_actor_config_size()                      /* the policy's config */
           + 8 + 4 * n_params                          /* params */
           + 5 * 4 + 8 + 8 + 8 * n_params              /* optim config, step, n, m, v */
           + 4 * 8 + 8                                 /* rng, iteration */
           + 4 + meta_len;
}

int ac_checkpoint_save(uint8_t **out, size_t *out_len, const ac_checkpoint_t *ck, ac_err_t *err)
{
    *out = NULL;
    *out_len = 0;
    ac_actor_t *p = ck->policy;
    const ac_optim_t *o = ck->optim;
    if (p == NULL || o == NULL)
        return ac_err_set(err, AC_ERR_INVALID_PARAMS, "checkpoint: policy and optimizer required");
    const size_t n_params = ac_actor_n_params(p);
    if (o->n != n_params)
        return ac_err_set(err, AC_ERR_INVALID_PARAMS,
                          "checkpoint: optimizer has %zu parameters, policy %zu", o->n, n_params);
    if (ck->meta_len > AC_CHECKPOINT_MAX_META || (ck->meta_len && ck->meta == NULL))
        return ac_err_set(err, AC_ERR_INVALID_PARAMS, "checkpoint: metadata too large (%zu bytes)",
                          ck->meta_len);
    size_t body = body_size(n_params, ck->meta_len), total = HEADER + body + TRAILER;
    uint8_t *buf = malloc(total);
    if (buf == NULL)
        return ac_err_set(err, AC_ERR_INTERNAL, "checkpoint: out of memory (%zu bytes)", total);
    wr_t w = {buf};
    memcpy(w.p, MAGIC, 8);
    w.p += 8;
    put_u32(&w, AC_CHECKPOINT_VERSION);
    put_u32(&w, 0);
    put_u64(&w, body);
    ac_actor_config_write(ac_actor_config(p), w.p);
    w.p += ac_actor_config_size();
    put_u64(&w, n_params);
    put_f32s(&w, ac_actor_params(p), n_params);
    put_f32(&w, o->cfg.lr);
    put_f32(&w, o->cfg.beta1);
    put_f32(&w, o->cfg.beta2);
    put_f32(&w, o->cfg.eps);
    put_f32(&w, o->cfg.weight_decay);
    put_u64(&w, (uint64_t)o->step);
    put_u64(&w, o->n);
    put_f32s(&w, o->m, o->n);
    put_f32s(&w, o->v, o->n);

    for (int i = 0; i < 4; i++)
        put_u64(&w, ck->rng.s[i]);
    put_u64(&w, ck->iteration);
    put_u32(&w, (uint32_t)ck->meta_len);
    if (ck->meta_len)
        memcpy(w.p, ck->meta, ck->meta_len);
    w.p += ck->meta_len;
    put_u32(&w, ac_checkpoint_crc32(buf, HEADER + body));
    /* body_size and the writes above must agree to the byte. */
    if ((size_t)(w.p - buf) != total) {
        free(buf);
        return ac_err_set(err, AC_ERR_INTERNAL, "checkpoint: size mismatch (bug)");
    }
    *out = buf;
    *out_len = total;
    return 0;
}

/* ---- reader: every read is bounds-checked against the body ------------------------------ */

typedef struct {
    const uint8_t *p, *end;
    int bad; /* a read ran past the end */
} rd_t;

static uint64_t get_n(rd_t *r, int bytes)
{
    if (r->end - r->p < bytes) {
        r->bad = 1;
        return 0;
    }
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++)
        v |= (uint64_t)r->p[i] << (8 * i);
    r->p += bytes;
    return v;
}
static uint32_t get_u32(rd_t *r) { return (uint32_t)get_n(r, 4); }
static uint64_t get_u64(rd_t *r) { return get_n(r, 8); }
static float get_f32(rd_t *r)
{
    uint32_t v = get_u32(r);
    float f;
    memcpy(&f, &v, 4);
    return f;
}
static void get_f32s(rd_t *r, float *x, size_t n)
{
    if ((size_t)(r->end - r->p) / 4 < n) {
        r->bad = 1;
        return;
    }
    for (size_t i = 0; i < n; i++)
        x[i] = get_f32(r);
}

/* The policy config of version 2: the actor's own record, then the parameter count. */
static int read_config(rd_t *r, ac_actor_config_t *c, uint64_t *n_params, ac_err_t *err)
{
    size_t len = ac_actor_config_size();
    if ((size_t)(r->end - r->p) < len + 8)
        return ac_err_set(err, AC_ERR_INVALID_PARAMS, "checkpoint: truncated policy config");
    if (ac_actor_config_read(c, r->p, len, err) != 0)
        return -1;
    r->p += len;
    *n_params = get_u64(r);
    return 0;
}

/* Version 1: the bag policy before argument slots (one ReLU layer over hashed n-grams, one
 * output per tool). Its parameters are the first ones of today's bag layout (E, W0, b0, Wt, bt);
 * the argument heads start fresh. */
static int read_config_v1(rd_t *r, ac_actor_config_t *c, uint64_t *n_params, ac_err_t *err)
{
    int32_t v[6 + AC_POLICY_MAX_HIDDEN];
    for (int i = 0; i < 6 + AC_POLICY_MAX_HIDDEN; i++)
        v[i] = (int32_t)get_u32(r);
    uint64_t seed = get_u64(r);
    *n_params = get_u64(r);
    if (r->bad)
        return ac_err_set(err, AC_ERR_INVALID_PARAMS, "checkpoint: truncated policy config");
    int n_buckets = v[0], d_emb = v[1], n_hidden = v[2], hidden = v[3], activation = v[3 + AC_POLICY_MAX_HIDDEN];
    int n_actions = v[4 + AC_POLICY_MAX_HIDDEN];
    if (n_hidden != 1 || activation != AC_POLICY_RELU)
        return ac_err_set(err, AC_ERR_INVALID_PARAMS, "checkpoint: version 1 with %d hidden layers (activation %d) "
                          "cannot be read: this build reads one ReLU layer", n_hidden, activation);
    memset(c, 0, sizeof *c);
    c->kind = AC_ACTOR_BAG;
    c->n_tools = n_actions;
    c->max_tokens = AC_ACTOR_DEFAULT_MAX_TOKENS;
    c->seed = seed;
    c->n_buckets = n_buckets;
    c->d_emb = d_emb;
    c->hidden = hidden;
    uint64_t expect = (uint64_t)(uint32_t)n_buckets * (uint32_t)d_emb + (uint64_t)(uint32_t)d_emb * (uint32_t)hidden +
                      (uint32_t)hidden + (uint64_t)(uint32_t)hidden * (uint32_t)n_actions + (uint32_t)n_actions;
    if (*n_params != expect)
        return ac_err_set(err, AC_ERR_INVALID_PARAMS, "checkpoint: %llu parameters stored, config implies %llu",
                          (unsigned long long)*n_params, (unsigned long long)expect);
    return 0;
}

#define BAD(...) (ac_checkpoint_release(ck), ac_err_set(err, AC_ERR_INVALID_PARAMS, __VA_ARGS__))

/* The envelope: magic, a version this build reads, no flags, the body's length matching the
 * buffer and the CRC over header and body. */
static int read_envelope(const uint8_t *buf, size_t len, uint32_t *version, uint64_t *body, ac_err_t *err)
{
    if (len < HEADER + TRAILER)
        return ac_err_set(err, AC_ERR_INVALID_PARAMS, "checkpoint: truncated (%zu bytes, header needs %d)", len,
                          HEADER + TRAILER);
    if (memcmp(buf, MAGIC, 8) != 0)
        return ac_err_set(err, AC_ERR_INVALID_PARAMS, "checkpoint: bad magic (not an agentcore checkpoint)");
    rd_t r = {buf + 8, buf + HEADER, 0};
    *version = get_u32(&r);
    uint32_t flags = get_u32(&r);
    *body = get_u64(&r);
    if (*version != AC_CHECKPOINT_VERSION && *version != 1)
        return ac_err_set(err, AC_ERR_INVALID_PARAMS, "checkpoint: version %u not supported (this build reads 1 and %u)",
                          *version, AC_CHECKPOINT_VERSION);
    if (flags != 0)
        return ac_err_set(err, AC_ERR_INVALID_PARAMS, "checkpoint: unknown flags 0x%x", flags);
    if (*body > len - HEADER - TRAILER)
        return ac_err_set(err, AC_ERR_INVALID_PARAMS, "checkpoint: truncated (%zu bytes, header declares %llu)", len,
                          (unsigned long long)(HEADER + *body + TRAILER));
    if (*body < len - HEADER - TRAILER)
        return ac_err_set(err, AC_ERR_INVALID_PARAMS, "checkpoint: %llu trailing bytes after the checksum",
                          (unsigned long long)(len - HEADER - TRAILER - *body));
    rd_t t = {buf + HEADER + *body, buf + len, 0};
    if (get_u32(&t) != ac_checkpoint_crc32(buf, HEADER + *body))
        return ac_err_set(err, AC_ERR_INVALID_PARAMS, "checkpoint: checksum mismatch (corrupt)");
    return 0;
}

/* Adam's config, step and moments for `stored` parameters (a v1 prefix: the rest start at 0). */
static int read_optim(rd_t *r, ac_checkpoint_t *ck, uint64_t stored, uint64_t n_params, ac_err_t *err)
{
    ac_optim_config_t oc;
    oc.lr = get_f32(r);
    oc.beta1 = get_f32(r);
    oc.beta2 = get_f32(r);
    oc.eps = get_f32(r);
    oc.weight_decay = get_f32(r);
    int64_t step = (int64_t)get_u64(r);
    uint64_t n = get_u64(r);
    if (r->bad)
        return BAD("checkpoint: truncated parameters");
    if (n != stored || step < 0)
        return BAD("checkpoint: optimizer state does not match the policy");
    ck->optim = ac_optim_create(n_params, &oc, NULL);
    if (ck->optim == NULL)
        return BAD("checkpoint: invalid optimizer config");
    ck->optim->step = step;
    get_f32s(r, ck->optim->m, n);
    get_f32s(r, ck->optim->v, n);
    return 0;
}

int ac_checkpoint_load(ac_checkpoint_t *ck, const uint8_t *buf, size_t len, ac_err_t *err)
{
    memset(ck, 0, sizeof *ck);
    uint32_t version = 0;
    uint64_t body = 0;
    if (read_envelope(buf, len, &version, &body, err) != 0)
        return -1;

    /* Past the CRC the bytes are what a writer produced; the checks below still guard against a
     * buggy or hostile writer, since a CRC is not a signature. */
    rd_t r = (rd_t){buf + HEADER, buf + HEADER + body, 0};
    ac_actor_config_t c;
    uint64_t n_params, stored = 0;
    int rc = version == 1 ? read_config_v1(&r, &c, &stored, err) : read_config(&r, &c, &stored, err);
    if (rc != 0) {
        ac_checkpoint_release(ck);
        return -1;
    }
    if (stored > body / 12)
        return BAD("checkpoint: truncated (%llu parameters do not fit in the body)", (unsigned long long)stored);
    ac_err_t cerr = AC_ERR_INIT;
    ck->policy = ac_actor_create(&c, &cerr); /* initialises, then the stored params overwrite */
    if (ck->policy == NULL) {
        int code = cerr.code;
        ac_err_clear(&cerr);
        if (code == AC_ERR_INTERNAL)
            return ac_err_set(err, AC_ERR_INTERNAL, "checkpoint: out of memory");
        return BAD("checkpoint: invalid policy config");
    }
    n_params = ac_actor_n_params(ck->policy);
    /* version 1 (the bag policy of before argument slots) stored a prefix of today's layout */
    if (version == 1 ? stored > n_params : stored != n_params)
        return BAD("checkpoint: %llu parameters stored, config implies %llu", (unsigned long long)stored,
                   (unsigned long long)n_params);
    get_f32s(&r, ac_actor_params(ck->policy), stored);
    if (read_optim(&r, ck, stored, n_params, err) != 0)
        return -1;
    for (int i = 0; i < 4; i++)
        ck->rng.s[i] = get_u64(&r);
    ck->iteration = get_u64(&r);
    uint32_t meta_len = get_u32(&r);
    if (r.bad)
        return BAD("checkpoint: truncated optimizer or rng state");
    if (meta_len > AC_CHECKPOINT_MAX_META || meta_len != (size_t)(r.end - r.p))
        return BAD("checkpoint: metadata length %u does not match the body", meta_len);
    ck->meta = malloc(meta_len ? meta_len : 1);
    if (ck->meta == NULL) {
        ac_checkpoint_release(ck);
        return ac_err_set(err, AC_ERR_INTERNAL, "checkpoint: out of memory");
    }
    memcpy(ck->meta, r.p, meta_len);
    ck->meta_len = meta_len;
    return 0;
}

void ac_checkpoint_release(ac_checkpoint_t *ck)
{
    if (ck == NULL)
        return;
    ac_actor_destroy(ck->policy);
    ac_optim_destroy(ck->optim);
    free(ck->meta);
    memset(ck, 0, sizeof *ck);
}
