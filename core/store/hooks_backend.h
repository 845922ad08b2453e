/* The seam between the webhook records (hooks.c: argument checks, written once) and their
 * backends (hooks_lmdb.c, hooks_pg.c). Only hooks.c, the backends and the jobs backends (which
 * put an event's outbox entry in the transaction that records the event) include it. */
#ifndef AC_HOOKS_BACKEND_H
#define AC_HOOKS_BACKEND_H

#include "store/hooks.h"
#include "store/pg.h"

typedef struct ac_hooks_ops {
    const char *name;
    void (*close)(ac_hooks_t *h);
    int (*write)(ac_hooks_t *h, ac_hooks_fn fn, void *ud, ac_err_t *err);
    int (*read)(ac_hooks_t *h, ac_hooks_fn fn, void *ud, ac_err_t *err);
    /* owner and id are checked by hooks.c (owner at most AC_HOOKS_OWNER_MAX, id a UUID) */
    int (*sub_put)(ac_hooks_txn_t *t, const char *owner, const char *id, const json_t *sub, ac_err_t *err);
    int (*sub_get)(ac_hooks_txn_t *t, const char *owner, const char *id, json_t **sub, ac_err_t *err);
    int (*sub_del)(ac_hooks_txn_t *t, const char *owner, const char *id, ac_err_t *err);
    int (*sub_each)(ac_hooks_txn_t *t, const char *owner, ac_subs_fn fn, void *ud, ac_err_t *err);
    int (*outbox_push)(ac_hooks_txn_t *t, const json_t *work, ac_err_t *err);
    int (*outbox_put)(ac_hooks_txn_t *t, uint64_t seq, const json_t *work, ac_err_t *err);
    int (*outbox_del)(ac_hooks_txn_t *t, uint64_t seq, ac_err_t *err);
    int (*outbox_each)(ac_hooks_txn_t *t, ac_outbox_fn fn, void *ud, ac_err_t *err);
    int (*outbox_claim)(ac_hooks_t *h, const char *kind, int64_t now_ms, int max, int64_t claim_ms, ac_outbox_fn fn,
                        void *ud, int64_t *next_due, ac_err_t *err);
} ac_hooks_ops_t;

struct ac_hooks {
    const ac_hooks_ops_t *ops;
};
struct ac_hooks_txn {
    ac_hooks_t *hooks;
};

/* An outbox entry inside another store transaction: an LMDB one (jobs_lmdb.c) / a PostgreSQL
 * one (jobs_pg.c). */
int ac_hooks_lmdb_push(ac_txn_t *t, const json_t *work, ac_err_t *err);
int ac_hooks_pg_push(ac_pg_txn_t *t, const json_t *work, ac_err_t *err);

#endif
