/* Webhook records in the store: a principal's subscriptions, and the outbox of webhook work
 * (events to fan out, deliveries to make) in arrival order. Their key layouts live here only:
 *
 *   AC_DB_WEBHOOKS  owner \0 subscription_id -> subscription (JSON)
 *   AC_DB_OUTBOX    be64 seq                  -> work (JSON), seq from the counter "outbox_seq"
 *
 * The records' contents are webhook.c's (and jobs.c's events); these functions store them inside
 * a transaction of store.h. Values handed to callbacks are parsed copies the callee may keep. */
#ifndef AC_HOOKS_H
#define AC_HOOKS_H

#include <stdint.h>

#include "base/err.h"
#include "store/store.h"

/* Longest owner a key holds (the principal's sub is at most 128 bytes). */
#define AC_HOOKS_OWNER_MAX 400

/* Stores sub (it holds its "subscription_id") under owner, replacing one with the same id. */
int ac_subs_put(ac_txn_t *t, const char *owner, const json_t *sub, ac_err_t *err);
/* 1 with *sub (new reference), 0 when there is none (or its record cannot be read), -1. */
int ac_subs_get(ac_txn_t *t, const char *owner, const char *id, json_t **sub, ac_err_t *err);
/* 1 when deleted, 0 when there was none, -1. */
int ac_subs_del(ac_txn_t *t, const char *owner, const char *id, ac_err_t *err);
/* The owner's subscriptions in id order: fn gets each (sub stolen); 0 to go on, 1 to stop, -1. */
typedef int (*ac_subs_fn)(json_t *sub, void *ud, ac_err_t *err);
int ac_subs_each(ac_txn_t *t, const char *owner, ac_subs_fn fn, void *ud, ac_err_t *err);

/* Appends work after every other entry. */
int ac_outbox_push(ac_txn_t *t, const json_t *work, ac_err_t *err);
/* Replaces entry seq (a delivery's new attempt) / removes it (done). */
int ac_outbox_put(ac_txn_t *t, uint64_t seq, const json_t *work, ac_err_t *err);
int ac_outbox_del(ac_txn_t *t, uint64_t seq, ac_err_t *err);
/* The entries oldest first: fn gets each (work stolen); 0 to go on, 1 to stop, -1. */
typedef int (*ac_outbox_fn)(uint64_t seq, json_t *work, void *ud, ac_err_t *err);
int ac_outbox_each(ac_txn_t *t, ac_outbox_fn fn, void *ud, ac_err_t *err);

#endif
