/* PostgreSQL under the stores (jobs_pg.c, hooks_pg.c): a pool of libpq connections, write
 * transactions that are run again after a serialization failure or a deadlock, statements
 * prepared once per connection, the versioned schema (migrations), health as store.h words it,
 * and the notifications nodes send each other (LISTEN/NOTIFY).
 *
 * Several agentcore processes ("nodes") share one database. Each names itself (ac_pg_node): the
 * leases of the jobs it runs and its claims on webhook work carry that name, so that a node that
 * restarts after a crash recognises what it held.
 *
 * Transactions: ac_pg_write runs fn between BEGIN and COMMIT (READ COMMITTED; rows a write reads
 * to change are locked with FOR UPDATE by the backends, which is what serialises two nodes
 * changing one job) and commits when fn returns 0. fn may run more than once: after a
 * serialization failure or a deadlock (SQLSTATE 40001, 40P01) the transaction is rolled back
 * and run again, at most AC_PG_MAX_RETRIES times. ac_pg_read runs fn without a transaction
 * block: each statement sees its own snapshot, so a query that must be consistent is written as
 * one statement.
 *
 * Errors: a write that cannot reach the server, or that the server cannot commit (disk full,
 * read-only, shutting down), fails with data {"field": "store", "error": "cannot write: ..."}
 * (ac_store_is_write_fault) and marks the database degraded until ac_pg_probe succeeds. Any
 * other statement error is AC_ERR_INTERNAL "store: PostgreSQL: <message>". The fault points of
 * base/fault.h ("store.write", "store.commit", "store.reserved") apply here as to LMDB.
 *
 * Connection strings are never printed: messages name the host, port and database only. */
#ifndef AC_PG_H
#define AC_PG_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

typedef struct ac_pg ac_pg_t;
typedef struct ac_pg_txn ac_pg_txn_t;

/* The schema version this binary writes and reads (pg_schema.c holds one migration per version). */
int ac_pg_schema_version(void);

/* Longest node name. */
#define AC_PG_NODE_MAX 64
#define AC_PG_MAX_RETRIES 8

typedef struct ac_pg_config {
    const char *dsn;  /* libpq connection string or URI */
    const char *node; /* this node's name (at most AC_PG_NODE_MAX - 1 bytes) */
    int pool_size;    /* connections at most (opened as needed) */
    int lease_ms;     /* how long a job's lease lasts without renewal */
    int auto_migrate; /* 0: a schema older than the binary is an error ("run agentcore migrate") */
} ac_pg_config_t;

/* Connects (once, to check the server and the schema), brings an older schema up to date when
 * auto_migrate is set, and returns the pool. NULL with err when the server cannot be reached
 * ("cannot connect to PostgreSQL at HOST:PORT/DB: <libpq's reason>"), when the schema is newer
 * than this binary ("... schema version N is newer than this agentcore's (M): upgrade the
 * binary") or older without auto_migrate, or when a migration fails. */
ac_pg_t *ac_pg_open(const ac_pg_config_t *c, ac_err_t *err);
/* NULL is a no-op. No transaction may be running. */
void ac_pg_close(ac_pg_t *pg);

const char *ac_pg_node(const ac_pg_t *pg);
int ac_pg_lease_ms(const ac_pg_t *pg);

/* `agentcore migrate`: connects to dsn and reads the schema version (*from; 0 for an empty
 * database); with apply, runs the missing migrations, each in its own transaction, under an
 * advisory lock that nodes starting at the same time also take. *to is the version after.
 * Errors as ac_pg_open's. */
int ac_pg_migrate(const char *dsn, int apply, int *from, int *to, ac_err_t *err);

/* This node's name for a data directory: the name kept in DIR/agentcore.node, made the first
 * time as "<hostname>-<8 hex digits>" (or `wanted` when not NULL, which replaces the file's).
 * out: AC_PG_NODE_MAX bytes. */
int ac_pg_node_name(const char *dir, const char *wanted, char *out, ac_err_t *err);

typedef int (*ac_pg_fn)(ac_pg_txn_t *t, void *ud, ac_err_t *err);
/* See above. reserved marks a write that records a failure (store.h): the fault point
 * "store.reserved" fails it; PostgreSQL keeps no reserve of its own. Returns fn's result, or -1
 * with err set. */
int ac_pg_write(ac_pg_t *pg, int reserved, ac_pg_fn fn, void *ud, ac_err_t *err);
int ac_pg_read(ac_pg_t *pg, ac_pg_fn fn, void *ud, ac_err_t *err);
/* 1 inside ac_pg_write. */
int ac_pg_txn_writes(const ac_pg_txn_t *t);
ac_pg_t *ac_pg_txn_pg(const ac_pg_txn_t *t);

/* Runs one statement. sql must be a string constant: its address names the statement prepared
 * for it on each connection. params: n values in text form (NULL: SQL NULL). Returns the result
 * (the caller PQclear()s it) when the statement succeeded, else NULL with err set; inside a write
 * the transaction is then aborted and fn must return -1. */
PGresult *ac_pg_exec(ac_pg_txn_t *t, const char *sql, int n, const char *const *params, ac_err_t *err);
/* The same with binary parameters where formats[i] is 1 (lengths[i] bytes) and the result in
 * binary form when binary_result. */
PGresult *ac_pg_execb(ac_pg_txn_t *t, const char *sql, int n, const char *const *params, const int *lengths,
                      const int *formats, int binary_result, ac_err_t *err);
/* Rows a statement changed (UPDATE, DELETE, INSERT). */
int64_t ac_pg_changed(PGresult *res);
/* A value of the result as an integer / as a boolean ("t"). */
int64_t ac_pg_int(PGresult *res, int row, int col);

/* 1 (with the cause) while the database cannot write; 0 when healthy. Cheap. */
int ac_pg_degraded(ac_pg_t *pg, char *cause, size_t n);
/* Commits a small write; on success the database is healthy again. 0, or -1 with err as a write
 * fault. */
int ac_pg_probe(ac_pg_t *pg, ac_err_t *err);

/* ---- notifications between nodes ----------------------------------------------------------- */

/* Sends a notification on channel (delivered to every listening node when the transaction
 * commits; a node's own included). */
int ac_pg_notify(ac_pg_txn_t *t, const char *channel, const char *payload, ac_err_t *err);

/* Waits up to timeout_ms for notifications on the channels (NULL-terminated) on a connection of
 * its own (opened, and LISTENed on, at the first call; reopened after a failure), calling
 * fn(channel, payload, ud) for each that arrived. One thread only. Returns 0 (also on a timeout),
 * or -1 with err when the connection fails (the next call reconnects). */
typedef void (*ac_pg_notify_fn)(const char *channel, const char *payload, void *ud);
int ac_pg_listen(ac_pg_t *pg, const char *const *channels, int timeout_ms, ac_pg_notify_fn fn, void *ud,
                 ac_err_t *err);

#endif
