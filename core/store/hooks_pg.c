/* Webhook records in PostgreSQL (hooks_backend.h; tables webhook_subscriptions and outbox,
 * pg_schema.c). Claims: an entry is held by the node that claimed it (claimed_by) until
 * claim_until, on the database's clock; a node changes or removes an entry only while it holds
 * it, and FOR UPDATE SKIP LOCKED keeps two nodes that claim at the same moment off each other's
 * entries. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/hooks_backend.h"

typedef struct pg_hooks {
    ac_hooks_t base;
    ac_pg_t *pg;
} pg_hooks_t;

typedef struct pg_txn {
    ac_hooks_txn_t base;
    ac_pg_txn_t *t;
} pg_txn_t;

#define TXN(x) (((pg_txn_t *)(x))->t)
#define PG(h) (((pg_hooks_t *)(h))->pg)

typedef struct tramp {
    ac_hooks_t *hooks;
    ac_hooks_fn fn;
    void *ud;
} tramp_t;

static int run_txn(ac_pg_txn_t *t, void *ud, ac_err_t *err)
{
    tramp_t *x = ud;
    pg_txn_t pt = {{x->hooks}, t};
    return x->fn(&pt.base, x->ud, err);
}

static int pg_write(ac_hooks_t *h, ac_hooks_fn fn, void *ud, ac_err_t *err)
{
    tramp_t x = {h, fn, ud};
    return ac_pg_write(PG(h), 0, run_txn, &x, err);
}

static int pg_read(ac_hooks_t *h, ac_hooks_fn fn, void *ud, ac_err_t *err)
{
    tramp_t x = {h, fn, ud};
    return ac_pg_read(PG(h), run_txn, &x, err);
}

static void pg_close(ac_hooks_t *h)
{
    free(h);
}

/* One statement whose result only says whether it ran: the rows it changed, or -1. */
static int64_t changed(ac_pg_txn_t *t, const char *sql, int n, const char *const *p, ac_err_t *err)
{
    PGresult *res = ac_pg_exec(t, sql, n, p, err);
    int64_t rows = res ? ac_pg_changed(res) : -1;
    PQclear(res);
    return rows;
}

static int pg_sub_put(ac_hooks_txn_t *x, const char *owner, const char *id, const json_t *sub, ac_err_t *err)
{
    static const char sql[] = "INSERT INTO webhook_subscriptions (owner, subscription_id, body) VALUES ($1, $2, $3) "
                              "ON CONFLICT (owner, subscription_id) DO UPDATE SET body = excluded.body";
    char *text = json_dumps(sub, JSON_COMPACT);
    if (text == NULL)
        return ac_err_set(err, AC_ERR_INTERNAL, "webhooks: cannot encode a record");
    const char *p[] = {owner, id, text};
    int64_t rows = changed(TXN(x), sql, 3, p, err);
    free(text);
    return rows < 0 ? -1 : 0;
}

static int pg_sub_get(ac_hooks_txn_t *x, const char *owner, const char *id, json_t **sub, ac_err_t *err)
{
    /* in a write the row is locked: two nodes counting deliveries on one subscription add up */
    static const char read_sql[] = "SELECT body FROM webhook_subscriptions WHERE owner = $1 AND subscription_id = $2";
    static const char lock_sql[] = "SELECT body FROM webhook_subscriptions WHERE owner = $1 AND subscription_id = $2 "
                                   "FOR UPDATE";
    const char *p[] = {owner, id};
    PGresult *res = ac_pg_exec(TXN(x), ac_pg_txn_writes(TXN(x)) ? lock_sql : read_sql, 2, p, err);
    if (res == NULL)
        return -1;
    int found = PQntuples(res) == 1;
    if (found)
        *sub = json_loads(PQgetvalue(res, 0, 0), 0, NULL);
    PQclear(res);
    return found && *sub != NULL;
}

static int pg_sub_del(ac_hooks_txn_t *x, const char *owner, const char *id, ac_err_t *err)
{
    static const char sql[] = "DELETE FROM webhook_subscriptions WHERE owner = $1 AND subscription_id = $2";
    const char *p[] = {owner, id};
    int64_t rows = changed(TXN(x), sql, 2, p, err);
    return rows < 0 ? -1 : rows > 0;
}

static int pg_sub_each(ac_hooks_txn_t *x, const char *owner, ac_subs_fn fn, void *ud, ac_err_t *err)
{
    static const char sql[] = "SELECT body FROM webhook_subscriptions WHERE owner = $1 ORDER BY subscription_id";
    const char *p[] = {owner};
    PGresult *res = ac_pg_exec(TXN(x), sql, 1, p, err);
    if (res == NULL)
        return -1;
    int rc = 0;
    for (int i = 0; rc == 0 && i < PQntuples(res); i++) {
        json_t *sub = json_loads(PQgetvalue(res, i, 0), 0, NULL);
        if (sub != NULL) /* a record that cannot be read is passed over */
            rc = fn(sub, ud, err);
    }
    PQclear(res);
    return rc < 0 ? -1 : 0;
}

/* The entry's kind and due time, the columns claims select on. */
static void entry_columns(const json_t *work, char kind[16], char due[24])
{
    const char *k = json_string_value(json_object_get(work, "kind"));
    snprintf(kind, 16, "%s", k ? k : "");
    snprintf(due, 24, "%lld", (long long)json_integer_value(json_object_get(work, "next_at_ms")));
}

int ac_hooks_pg_push(ac_pg_txn_t *t, const json_t *work, ac_err_t *err)
{
    static const char sql[] = "INSERT INTO outbox (kind, next_at_ms, body) VALUES ($1, $2, $3)";
    char kind[16], due[24];
    entry_columns(work, kind, due);
    char *text = json_dumps(work, JSON_COMPACT);
    if (text == NULL)
        return ac_err_set(err, AC_ERR_INTERNAL, "webhooks: cannot encode an outbox entry");
    const char *p[] = {kind, due, text};
    int64_t rows = changed(t, sql, 3, p, err);
    free(text);
    return rows < 0 ? -1 : 0;
}

static int pg_outbox_push(ac_hooks_txn_t *x, const json_t *work, ac_err_t *err)
{
    return ac_hooks_pg_push(TXN(x), work, err);
}

static int pg_outbox_put(ac_hooks_txn_t *x, uint64_t seq, const json_t *work, ac_err_t *err)
{
    static const char sql[] = "UPDATE outbox SET kind = $2, next_at_ms = $3, body = $4, claimed_by = NULL, "
                              "claim_until = NULL WHERE seq = $1 AND claimed_by = $5";
    char s[24], kind[16], due[24];
    snprintf(s, sizeof s, "%llu", (unsigned long long)seq);
    entry_columns(work, kind, due);
    char *text = json_dumps(work, JSON_COMPACT);
    if (text == NULL)
        return ac_err_set(err, AC_ERR_INTERNAL, "webhooks: cannot encode an outbox entry");
    const char *p[] = {s, kind, due, text, ac_pg_node(ac_pg_txn_pg(TXN(x)))};
    int64_t rows = changed(TXN(x), sql, 5, p, err);
    free(text);
    return rows < 0 ? -1 : rows > 0;
}

static int pg_outbox_del(ac_hooks_txn_t *x, uint64_t seq, ac_err_t *err)
{
    static const char sql[] = "DELETE FROM outbox WHERE seq = $1 AND claimed_by = $2";
    char s[24];
    snprintf(s, sizeof s, "%llu", (unsigned long long)seq);
    const char *p[] = {s, ac_pg_node(ac_pg_txn_pg(TXN(x)))};
    int64_t rows = changed(TXN(x), sql, 2, p, err);
    return rows < 0 ? -1 : rows > 0;
}

static int pg_outbox_each(ac_hooks_txn_t *x, ac_outbox_fn fn, void *ud, ac_err_t *err)
{
    static const char sql[] = "SELECT seq, body FROM outbox ORDER BY seq";
    PGresult *res = ac_pg_exec(TXN(x), sql, 0, NULL, err);
    if (res == NULL)
        return -1;
    int rc = 0;
    for (int i = 0; rc == 0 && i < PQntuples(res); i++) {
        json_t *work = json_loads(PQgetvalue(res, i, 1), 0, NULL);
        if (work != NULL)
            rc = fn((uint64_t)ac_pg_int(res, i, 0), work, ud, err);
    }
    PQclear(res);
    return rc < 0 ? -1 : 0;
}

typedef struct claim_ctx {
    const char *kind;
    int64_t now_ms, claim_ms, next_due;
    int max;
    PGresult *rows; /* seq, body of the entries claimed, oldest first */
} claim_ctx_t;

static int claim_txn(ac_pg_txn_t *t, void *ud, ac_err_t *err)
{
    /* the claim and the due time on the database's clock: the nodes' clocks may differ */
    static const char claim_sql[] =
        "WITH c AS (SELECT seq FROM outbox WHERE kind = $1 AND next_at_ms <= $2 "
        "  AND (claim_until IS NULL OR claim_until < clock_timestamp()) ORDER BY seq LIMIT $3 FOR UPDATE SKIP LOCKED), "
        "u AS (UPDATE outbox o SET claimed_by = $4, claim_until = clock_timestamp() + $5::float8 * interval '1 millisecond' "
        "  FROM c WHERE o.seq = c.seq RETURNING o.seq, o.body) "
        "SELECT seq, body FROM u ORDER BY seq";
    static const char due_sql[] = "SELECT min(next_at_ms) FROM outbox WHERE kind = $1 AND next_at_ms > $2";
    claim_ctx_t *c = ud;
    char now[24], max[16], claim[24];
    snprintf(now, sizeof now, "%lld", (long long)c->now_ms);
    snprintf(max, sizeof max, "%d", c->max);
    snprintf(claim, sizeof claim, "%lld", (long long)c->claim_ms);
    const char *p[] = {c->kind, now, max, ac_pg_node(ac_pg_txn_pg(t)), claim};
    PQclear(c->rows);
    c->rows = ac_pg_exec(t, claim_sql, 5, p, err);
    if (c->rows == NULL)
        return -1;
    PGresult *due = ac_pg_exec(t, due_sql, 2, p, err);
    if (due == NULL)
        return -1;
    c->next_due = PQgetisnull(due, 0, 0) ? 0 : ac_pg_int(due, 0, 0);
    PQclear(due);
    return 0;
}

static int pg_outbox_claim(ac_hooks_t *h, const char *kind, int64_t now_ms, int max, int64_t claim_ms,
                           ac_outbox_fn fn, void *ud, int64_t *next_due, ac_err_t *err)
{
    claim_ctx_t c = {kind, now_ms, claim_ms, 0, max, NULL};
    int rc = ac_pg_write(PG(h), 0, claim_txn, &c, err);
    for (int i = 0; rc == 0 && i < PQntuples(c.rows); i++) {
        json_t *work = json_loads(PQgetvalue(c.rows, i, 1), 0, NULL);
        if (work != NULL)
            rc = fn((uint64_t)ac_pg_int(c.rows, i, 0), work, ud, err);
    }
    PQclear(c.rows);
    *next_due = c.next_due;
    return rc < 0 ? -1 : 0;
}

static const ac_hooks_ops_t pg_ops = {
    .name = "postgresql",
    .close = pg_close,
    .write = pg_write,
    .read = pg_read,
    .sub_put = pg_sub_put,
    .sub_get = pg_sub_get,
    .sub_del = pg_sub_del,
    .sub_each = pg_sub_each,
    .outbox_push = pg_outbox_push,
    .outbox_put = pg_outbox_put,
    .outbox_del = pg_outbox_del,
    .outbox_each = pg_outbox_each,
    .outbox_claim = pg_outbox_claim,
};

static int release_txn(ac_pg_txn_t *t, void *ud, ac_err_t *err)
{
    (void)ud;
    static const char sql[] = "UPDATE outbox SET claimed_by = NULL, claim_until = NULL WHERE claimed_by = $1";
    const char *p[] = {ac_pg_node(ac_pg_txn_pg(t))};
    return changed(t, sql, 1, p, err) < 0 ? -1 : 0;
}

ac_hooks_t *ac_hooks_open_pg(ac_pg_t *pg, ac_err_t *err)
{
    pg_hooks_t *h = calloc(1, sizeof *h);
    if (h == NULL) {
        ac_err_set(err, AC_ERR_INTERNAL, "webhooks: out of memory");
        return NULL;
    }
    h->base.ops = &pg_ops;
    h->pg = pg;
    /* what this node's last process held (it crashed, or stopped mid-pass) is free again; when
     * that cannot be written the claims run out by themselves */
    ac_err_t e = AC_ERR_INIT;
    if (ac_pg_write(pg, 0, release_txn, NULL, &e) != 0)
        fprintf(stderr, "agentcore: webhooks: cannot give up this node's old claims: %s\n", e.message);
    ac_err_clear(&e);
    return &h->base;
}
