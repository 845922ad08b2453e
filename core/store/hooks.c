#include "store/hooks.h"

#include <stdlib.h>
#include <string.h>

#include "base/uuid.h"

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
static int sub_key(char key[AC_HOOKS_OWNER_MAX + 2 + AC_UUID_LEN], const char *owner, const char *id, size_t *klen,
                   ac_err_t *err)
{
    size_t olen = strlen(owner);
    if (olen > AC_HOOKS_OWNER_MAX || id == NULL || strlen(id) != AC_UUID_LEN)
        return ac_err_set(err, AC_ERR_INTERNAL, "webhooks: owner too long or bad subscription id");
    memcpy(key, owner, olen);
    key[olen] = 0;
    memcpy(key + olen + 1, id, AC_UUID_LEN);
    *klen = olen + 1 + AC_UUID_LEN;
    return 0;
}

int ac_subs_put(ac_txn_t *t, const char *owner, const json_t *sub, ac_err_t *err)
{
    char key[AC_HOOKS_OWNER_MAX + 2 + AC_UUID_LEN];
    size_t klen;
    if (sub_key(key, owner, json_string_value(json_object_get(sub, "subscription_id")), &klen, err) != 0)
        return -1;
    return put_json(t, AC_DB_WEBHOOKS, key, klen, sub, err);
}

int ac_subs_get(ac_txn_t *t, const char *owner, const char *id, json_t **sub, ac_err_t *err)
{
    char key[AC_HOOKS_OWNER_MAX + 2 + AC_UUID_LEN];
    size_t klen, vlen = 0;
    const void *val;
    if (sub_key(key, owner, id, &klen, err) != 0)
        return -1;
    int found = ac_txn_get(t, AC_DB_WEBHOOKS, key, klen, &val, &vlen, err);
    if (found <= 0)
        return found;
    *sub = json_loadb(val, vlen, 0, NULL);
    return *sub != NULL;
}

int ac_subs_del(ac_txn_t *t, const char *owner, const char *id, ac_err_t *err)
{
    char key[AC_HOOKS_OWNER_MAX + 2 + AC_UUID_LEN];
    size_t klen;
    if (strlen(owner) > AC_HOOKS_OWNER_MAX)
        return 0; /* no key holds it */
    if (sub_key(key, owner, id, &klen, err) != 0)
        return -1;
    return ac_txn_del(t, AC_DB_WEBHOOKS, key, klen, err);
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

int ac_subs_each(ac_txn_t *t, const char *owner, ac_subs_fn fn, void *ud, ac_err_t *err)
{
    size_t olen = strlen(owner);
    if (olen > AC_HOOKS_OWNER_MAX)
        return 0;
    each_ctx_t e = {fn, NULL, ud};
    /* the prefix holds the \0 after the owner: "bob" does not see "bobby"'s */
    return ac_txn_scan(t, AC_DB_WEBHOOKS, owner, olen + 1, NULL, 0, each_sub, &e, err);
}

int ac_outbox_push(ac_txn_t *t, const json_t *work, ac_err_t *err)
{
    uint64_t seq;
    if (ac_txn_next_seq(t, "outbox_seq", &seq, err) != 0)
        return -1;
    return ac_outbox_put(t, seq, work, err);
}

int ac_outbox_put(ac_txn_t *t, uint64_t seq, const json_t *work, ac_err_t *err)
{
    uint8_t key[8];
    ac_be64_put(key, seq);
    return put_json(t, AC_DB_OUTBOX, key, sizeof key, work, err);
}

int ac_outbox_del(ac_txn_t *t, uint64_t seq, ac_err_t *err)
{
    uint8_t key[8];
    ac_be64_put(key, seq);
    return ac_txn_del(t, AC_DB_OUTBOX, key, sizeof key, err) < 0 ? -1 : 0;
}

static int each_work(const void *key, size_t klen, const void *val, size_t vlen, void *ud, ac_err_t *err)
{
    each_ctx_t *e = ud;
    if (klen != 8)
        return 0;
    json_t *work = json_loadb(val, vlen, 0, NULL);
    return work != NULL ? e->outbox(ac_be64_get(key), work, e->ud, err) : 0;
}

int ac_outbox_each(ac_txn_t *t, ac_outbox_fn fn, void *ud, ac_err_t *err)
{
    each_ctx_t e = {NULL, fn, ud};
    return ac_txn_scan(t, AC_DB_OUTBOX, NULL, 0, NULL, 0, each_work, &e, err);
}
