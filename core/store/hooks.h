/* Webhook records in the store: a principal's subscriptions, and the outbox of webhook work
 * (events to fan out, deliveries to make) in arrival order, over a backend (hooks_lmdb.c,
 * hooks_pg.c; the ops table is store/hooks_backend.h).
 *
 * The records' contents are webhook.c's (and jobs.c's events); these functions store them inside
 * a transaction of the backend. Values handed to callbacks are parsed copies the callee may keep.
 *
 * Claims: with several nodes over one database each outbox entry must be handled by one of them.
 * ac_outbox_claim hands out the entries that are due and that no other node holds, and holds them
 * for this node for claim_ms; ac_outbox_put and ac_outbox_del then change an entry only while
 * this node still holds it (0 otherwise: its claim ran out and another node took the entry).
 * A put gives the claim up: the entry's next attempt may be made by any node. With LMDB there is
 * one process and one delivery thread: a claim is a read. */
#ifndef AC_HOOKS_H
#define AC_HOOKS_H

#include <stdint.h>

#include "base/err.h"
#include "store/store.h"

typedef struct ac_pg ac_pg_t;
typedef struct ac_hooks ac_hooks_t;
typedef struct ac_hooks_txn ac_hooks_txn_t;

/* Longest owner a key holds (the principal's sub is at most 128 bytes). */
#define AC_HOOKS_OWNER_MAX 400

/* The webhook records of an LMDB store / of a PostgreSQL database (both borrowed: they must
 * outlive the handle). On PostgreSQL, claims this node's previous process held (a crash, a
 * stop) are given up at open. NULL with err on failure. */
ac_hooks_t *ac_hooks_open_lmdb(ac_store_t *store, ac_err_t *err);
ac_hooks_t *ac_hooks_open_pg(ac_pg_t *pg, ac_err_t *err);
/* NULL is a no-op. */
void ac_hooks_close(ac_hooks_t *h);

/* Transactions as jobs_backend.h describes them: a write commits when fn returns 0 and may run
 * fn more than once. */
typedef int (*ac_hooks_fn)(ac_hooks_txn_t *t, void *ud, ac_err_t *err);
int ac_hooks_write(ac_hooks_t *h, ac_hooks_fn fn, void *ud, ac_err_t *err);
int ac_hooks_read(ac_hooks_t *h, ac_hooks_fn fn, void *ud, ac_err_t *err);

/* Stores sub (it holds its "subscription_id") under owner, replacing one with the same id. */
int ac_subs_put(ac_hooks_txn_t *t, const char *owner, const json_t *sub, ac_err_t *err);
/* 1 with *sub (new reference), 0 when there is none (or its record cannot be read), -1. */
int ac_subs_get(ac_hooks_txn_t *t, const char *owner, const char *id, json_t **sub, ac_err_t *err);
/* 1 when deleted, 0 when there was none, -1. */
int ac_subs_del(ac_hooks_txn_t *t, const char *owner, const char *id, ac_err_t *err);
/* The owner's subscriptions in id order: fn gets each (sub stolen); 0 to go on, 1 to stop, -1. */
typedef int (*ac_subs_fn)(json_t *sub, void *ud, ac_err_t *err);
int ac_subs_each(ac_hooks_txn_t *t, const char *owner, ac_subs_fn fn, void *ud, ac_err_t *err);

/* Appends work after every other entry. Its "kind" ("event" or "delivery") and "next_at_ms"
 * (when it is due; absent: at once) are what claims select on. */
int ac_outbox_push(ac_hooks_txn_t *t, const json_t *work, ac_err_t *err);
/* Replaces entry seq (a delivery's next attempt) and gives this node's claim on it up. 1 when
 * replaced, 0 when this node no longer holds it (nothing written), -1. */
int ac_outbox_put(ac_hooks_txn_t *t, uint64_t seq, const json_t *work, ac_err_t *err);
/* Removes entry seq (done): 1, or 0 when this node no longer holds it (or it is gone), -1. */
int ac_outbox_del(ac_hooks_txn_t *t, uint64_t seq, ac_err_t *err);

/* Claims at most max entries of `kind` that are due at now_ms and not held by another node,
 * oldest first, for claim_ms: fn gets each (work stolen; 0 to go on, 1 to stop, -1).
 * *next_due gets the earliest due time of the entries of that kind not due yet (0: none). */
typedef int (*ac_outbox_fn)(uint64_t seq, json_t *work, void *ud, ac_err_t *err);
int ac_outbox_claim(ac_hooks_t *h, const char *kind, int64_t now_ms, int max, int64_t claim_ms, ac_outbox_fn fn,
                    void *ud, int64_t *next_due, ac_err_t *err);

/* Every entry, oldest first, claimed or not (tests, tools): fn as above. */
int ac_outbox_each(ac_hooks_txn_t *t, ac_outbox_fn fn, void *ud, ac_err_t *err);

#endif
