/* Webhook records in LMDB (hooks_backend.h). Their key layouts live here only:
 *
 *   AC_DB_WEBHOOKS  owner \0 subscription_id -> subscription (JSON)
 *   AC_DB_OUTBOX    be64 seq                  -> work (JSON), seq from the counter "outbox_seq"
 *
 * One process holds the data directory and one thread delivers: a claim is a read, and every
 * entry is always this process's. */
#include <stdlib.h>
#include <string.h>

#include "base/uuid.h"
#include "store/hooks_backend.h"

typedef struct lmdb_hooks {
    ac_hooks_t base;
    ac_store_t *store;
} lmdb_hooks_t;

typedef struct lmdb_txn {
    ac_hooks_txn_t base;
    ac_txn_t *t;
} lmdb_txn_t;

#define TXN(x) (((lmdb_txn_t *)(x))->t)
#define STORE(h) (((lmdb_hooks_t *)(h))->store)

typedef struct tramp {
    ac_hooks_t *hooks;
    ac_hooks_fn fn;
    void *ud;
} tramp_t;

static int run_txn(ac_txn_t *t, void *ud, ac_err_t *err)
{
    tramp_t *x = ud;
    lmdb_txn_t lt = {{x->hooks}, t};
    return x->fn(&lt.base, x->ud, err);
}

static int lmdb_write(ac_hooks_t *h, ac_hooks_fn fn, void *ud, ac_err_t *err)
{
    tramp_t x = {h, fn, ud};
    return ac_store_write(STORE(h), run_txn, &x, err);
}

static int lmdb_read(ac_hooks_t *h, ac_hooks_fn fn, void *ud, ac_err_t *err)
{
    tramp_t x = {h, fn, ud};
    return ac_store_read(STORE(h), run_txn, &x, err);
}

static void lmdb_close(ac_hooks_t *h)
{
    free(h);
}

static int put_json(ac_txn_t *t, int db, const void *key, size_t klen, const json_t *v, ac_err_t *err)
{
    char *text = json_dumps(v, JSON_COMPACT);
    if (text == NULL)
        return ac_err_set(err, AC_ERR_INTERNAL, "webhooks: cannot encode a record");
    int rc = ac_txn_put(t, db, key, klen, text, strlen(text), err);
    free(text);
    return rc;
}

/* owner \0 id: a principal's subscriptions together */
static size_t sub_key(char key[AC_HOOKS_OWNER_MAX + 2 + AC_UUID_LEN], const char *owner, const char *id)
{
    size_t olen = strlen(owner);
    memcpy(key, owner, olen);
    key[olen] = 0;
    memcpy(key + olen + 1, id, AC_UUID_LEN);
    return olen + 1 + AC_UUID_LEN;
}

static int lmdb_sub_put(ac_hooks_txn_t *x, const char *owner, const char *id, const json_t *sub, ac_err_t *err)
{
    char key[AC_HOOKS_OWNER_MAX + 2 + AC_UUID_LEN];
    return put_json(TXN(x), AC_DB_WEBHOOKS, key, sub_key(key, owner, id), sub, err);
}

static int lmdb_sub_get(ac_hooks_txn_t *x, const char *owner, const char *id, json_t **sub, ac_err_t *err)
{
    char key[AC_HOOKS_OWNER_MAX + 2 + AC_UUID_LEN];
    size_t vlen = 0;
    const void *val;
    int found = ac_txn_get(TXN(x), AC_DB_WEBHOOKS, key, sub_key(key, owner, id), &val, &vlen, err);
    if (found <= 0)
        return found;
    *sub = json_loadb(val, vlen, 0, NULL);
    return *sub != NULL;
}

static int lmdb_sub_del(ac_hooks_txn_t *x, const char *owner, const char *id, ac_err_t *err)
{
    char key[AC_HOOKS_OWNER_MAX + 2 + AC_UUID_LEN];
    return ac_txn_del(TXN(x), AC_DB_WEBHOOKS, key, sub_key(key, owner, id), err);
}

typedef struct each_ctx {
    ac_subs_fn subs;
    ac_outbox_fn outbox;
    void *ud;
} each_ctx_t;

static int each_sub(const void *key, size_t klen, const void *val, size_t vlen, void *ud, ac_err_t *err)
{
    (void)key, (void)klen;
    each_ctx_t *e = ud;
    json_t *sub = json_loadb(val, vlen, 0, NULL);
    return sub != NULL ? e->subs(sub, e->ud, err) : 0; /* a record that cannot be read is passed over */
}

static int lmdb_sub_each(ac_hooks_txn_t *x, const char *owner, ac_subs_fn fn, void *ud, ac_err_t *err)
{
    each_ctx_t e = {fn, NULL, ud};
    /* the prefix holds the \0 after the owner: "bob" does not see "bobby"'s */
    return ac_txn_scan(TXN(x), AC_DB_WEBHOOKS, owner, strlen(owner) + 1, NULL, 0, each_sub, &e, err);
}

static int outbox_put(ac_txn_t *t, uint64_t seq, const json_t *work, ac_err_t *err)
{
    uint8_t key[8];
    ac_be64_put(key, seq);
    return put_json(t, AC_DB_OUTBOX, key, sizeof key, work, err);
}

int ac_hooks_lmdb_push(ac_txn_t *t, const json_t *work, ac_err_t *err)
{
    uint64_t seq;
    if (ac_txn_next_seq(t, "outbox_seq", &seq, err) != 0)
        return -1;
    return outbox_put(t, seq, work, err);
}

static int lmdb_outbox_push(ac_hooks_txn_t *x, const json_t *work, ac_err_t *err)
{
    return ac_hooks_lmdb_push(TXN(x), work, err);
}

static int lmdb_outbox_put(ac_hooks_txn_t *x, uint64_t seq, const json_t *work, ac_err_t *err)
{
    return outbox_put(TXN(x), seq, work, err) == 0 ? 1 : -1;
}

static int lmdb_outbox_del(ac_hooks_txn_t *x, uint64_t seq, ac_err_t *err)
{
    uint8_t key[8];
    ac_be64_put(key, seq);
    return ac_txn_del(TXN(x), AC_DB_OUTBOX, key, sizeof key, err);
}

static int each_work(const void *key, size_t klen, const void *val, size_t vlen, void *ud, ac_err_t *err)
{
    each_ctx_t *e = ud;
    if (klen != 8)
        return 0;
    json_t *work = json_loadb(val, vlen, 0, NULL);
    return work != NULL ? e->outbox(ac_be64_get(key), work, e->ud, err) : 0;
}

static int lmdb_outbox_each(ac_hooks_txn_t *x, ac_outbox_fn fn, void *ud, ac_err_t *err)
{
    each_ctx_t e = {NULL, fn, ud};
    return ac_txn_scan(TXN(x), AC_DB_OUTBOX, NULL, 0, NULL, 0, each_work, &e, err);
}

typedef struct claim_ctx {
    const char *kind;
    int64_t now_ms;
    int max, n;
    ac_outbox_fn fn;
    void *ud;
    int64_t *next_due;
} claim_ctx_t;

/* The entries of the kind that are due, in order, up to max. */
static int claim_one(uint64_t seq, json_t *v, void *ud, ac_err_t *err)
{
    claim_ctx_t *c = ud;
    const char *kind = json_string_value(json_object_get(v, "kind"));
    int take = kind != NULL && strcmp(kind, c->kind) == 0;
    int64_t at = json_integer_value(json_object_get(v, "next_at_ms"));
    if (take && at > c->now_ms) {
        if (*c->next_due == 0 || at < *c->next_due)
            *c->next_due = at;
        take = 0;
    }
    if (!take) {
        json_decref(v);
        return 0;
    }
    c->n++;
    int rc = c->fn(seq, v, c->ud, err);
    return rc != 0 ? rc : c->n == c->max;
}

static int claim_txn(ac_hooks_txn_t *x, void *ud, ac_err_t *err)
{
    claim_ctx_t *c = ud;
    c->n = 0;
    *c->next_due = 0;
    return lmdb_outbox_each(x, claim_one, c, err);
}

static int lmdb_outbox_claim(ac_hooks_t *h, const char *kind, int64_t now_ms, int max, int64_t claim_ms,
                             ac_outbox_fn fn, void *ud, int64_t *next_due, ac_err_t *err)
{
    (void)claim_ms;
    claim_ctx_t c = {kind, now_ms, max, 0, fn, ud, next_due};
    return lmdb_read(h, claim_txn, &c, err);
}

static const ac_hooks_ops_t lmdb_ops = {
    .name = "lmdb",
    .close = lmdb_close,
    .write = lmdb_write,
    .read = lmdb_read,
    .sub_put = lmdb_sub_put,
    .sub_get = lmdb_sub_get,
    .sub_del = lmdb_sub_del,
    .sub_each = lmdb_sub_each,
    .outbox_push = lmdb_outbox_push,
    .outbox_put = lmdb_outbox_put,
    .outbox_del = lmdb_outbox_del,
    .outbox_each = lmdb_outbox_each,
    .outbox_claim = lmdb_outbox_claim,
};

ac_hooks_t *ac_hooks_open_lmdb(ac_store_t *store, ac_err_t *err)
{
    lmdb_hooks_t *h = calloc(1, sizeof *h);
    if (h == NULL) {
        ac_err_set(err, AC_ERR_INTERNAL, "webhooks: out of memory");
        return NULL;
    }
    h->base.ops = &lmdb_ops;
    h->store = store;
    return &h->base;
}
