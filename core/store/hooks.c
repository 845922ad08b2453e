/* Webhook records: the checks every backend relies on, written once (hooks.h). */
#include "store/hooks_backend.h"

#include <string.h>

#include "base/uuid.h"

#define OPS(h) ((h)->ops)
#define TOPS(t) ((t)->hooks->ops)

void ac_hooks_close(ac_hooks_t *h)
{
    if (h != NULL)
        OPS(h)->close(h);
}

int ac_hooks_write(ac_hooks_t *h, ac_hooks_fn fn, void *ud, ac_err_t *err)
{
    return OPS(h)->write(h, fn, ud, err);
}

int ac_hooks_read(ac_hooks_t *h, ac_hooks_fn fn, void *ud, ac_err_t *err)
{
    return OPS(h)->read(h, fn, ud, err);
}

/* 0 when owner fits a key and id is a subscription id, else -1 with err. */
static int key_check(const char *owner, const char *id, ac_err_t *err)
{
    if (strlen(owner) > AC_HOOKS_OWNER_MAX || id == NULL || strlen(id) != AC_UUID_LEN)
        return ac_err_set(err, AC_ERR_INTERNAL, "webhooks: owner too long or bad subscription id");
    return 0;
}

int ac_subs_put(ac_hooks_txn_t *t, const char *owner, const json_t *sub, ac_err_t *err)
{
    const char *id = json_string_value(json_object_get(sub, "subscription_id"));
    return key_check(owner, id, err) || TOPS(t)->sub_put(t, owner, id, sub, err) ? -1 : 0;
}

int ac_subs_get(ac_hooks_txn_t *t, const char *owner, const char *id, json_t **sub, ac_err_t *err)
{
    if (key_check(owner, id, err) != 0)
        return -1;
    return TOPS(t)->sub_get(t, owner, id, sub, err);
}

int ac_subs_del(ac_hooks_txn_t *t, const char *owner, const char *id, ac_err_t *err)
{
    if (strlen(owner) > AC_HOOKS_OWNER_MAX)
        return 0; /* no key holds it */
    if (key_check(owner, id, err) != 0)
        return -1;
    return TOPS(t)->sub_del(t, owner, id, err);
}

int ac_subs_each(ac_hooks_txn_t *t, const char *owner, ac_subs_fn fn, void *ud, ac_err_t *err)
{
    if (strlen(owner) > AC_HOOKS_OWNER_MAX)
        return 0;
    return TOPS(t)->sub_each(t, owner, fn, ud, err);
}

int ac_outbox_push(ac_hooks_txn_t *t, const json_t *work, ac_err_t *err)
{
    return TOPS(t)->outbox_push(t, work, err);
}

int ac_outbox_put(ac_hooks_txn_t *t, uint64_t seq, const json_t *work, ac_err_t *err)
{
    return TOPS(t)->outbox_put(t, seq, work, err);
}

int ac_outbox_del(ac_hooks_txn_t *t, uint64_t seq, ac_err_t *err)
{
    return TOPS(t)->outbox_del(t, seq, err);
}

int ac_outbox_each(ac_hooks_txn_t *t, ac_outbox_fn fn, void *ud, ac_err_t *err)
{
    return TOPS(t)->outbox_each(t, fn, ud, err);
}

int ac_outbox_claim(ac_hooks_t *h, const char *kind, int64_t now_ms, int max, int64_t claim_ms, ac_outbox_fn fn,
                    void *ud, int64_t *next_due, ac_err_t *err)
{
    *next_due = 0;
    return OPS(h)->outbox_claim(h, kind, now_ms, max, claim_ms, fn, ud, next_due, err);
}
