/* PostgreSQL connections, transactions, schema and notifications (pg.h). */
#include "store/pg.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/fault.h"

/* pg_schema.c */
extern const char *const ac_pg_migrations[];
extern const int ac_pg_n_migrations;

/* The advisory lock every migrating process takes: two nodes starting at once migrate one after
 * the other. */
#define MIGRATE_LOCK "4242015"
/* Statements prepared on one connection at most (the backends have about forty). */
#define MAX_PREPARED 128

typedef struct conn {
    PGconn *c;
    int busy;
    const char *prepared[MAX_PREPARED]; /* the sql constants prepared as "s<i>" on this connection */
    int n_prepared;
} conn_t;

struct ac_pg {
    char *dsn;
    char where[200]; /* "HOST:PORT/DB" for messages */
    char node[AC_PG_NODE_MAX];
    int lease_ms;
    pthread_mutex_t lock;
    pthread_cond_t freed;
    conn_t *pool;
    int size;
    /* health: set by a write fault, cleared by a successful probe */
    atomic_int degraded;
    pthread_mutex_t health_lock;
    char cause[512]; /* as long as the longest cause a write makes (write_txn's): kept whole */
    unsigned long faults;
    /* LISTEN (one thread) */
    PGconn *listener;
};

struct ac_pg_txn {
    ac_pg_t *pg;
    conn_t *conn;
    int write;
    int retry; /* a statement failed with a serialization failure or a deadlock */
    int fault; /* a statement failed because the server cannot write or be reached */
};

const char *ac_pg_node(const ac_pg_t *pg)
{
    return pg->node;
}

int ac_pg_lease_ms(const ac_pg_t *pg)
{
    return pg->lease_ms;
}

int ac_pg_txn_writes(const ac_pg_txn_t *t)
{
    return t->write;
}

ac_pg_t *ac_pg_txn_pg(const ac_pg_txn_t *t)
{
    return t->pg;
}

/* ---- connecting ------------------------------------------------------------------------------ */

/* "HOST:PORT/DB" of a connection string, for messages (never the string: it may hold a
 * password). 0, or -1 with err when the string does not parse. */
static int describe_dsn(const char *dsn, char *out, size_t n, ac_err_t *err)
{
    char *why = NULL;
    PQconninfoOption *opts = PQconninfoParse(dsn, &why);
    if (opts == NULL) {
        ac_err_set(err, AC_ERR_INTERNAL, "store.dsn is not a PostgreSQL connection string: %s",
                   why ? why : "out of memory");
        PQfreemem(why);
        return -1;
    }
    const char *host = NULL, *addr = NULL, *port = NULL, *db = NULL, *user = NULL;
    for (PQconninfoOption *o = opts; o->keyword != NULL; o++) {
        if (o->val == NULL || o->val[0] == '\0')
            continue;
        if (strcmp(o->keyword, "host") == 0)
            host = o->val;
        else if (strcmp(o->keyword, "hostaddr") == 0)
            addr = o->val;
        else if (strcmp(o->keyword, "port") == 0)
            port = o->val;
        else if (strcmp(o->keyword, "dbname") == 0)
            db = o->val;
        else if (strcmp(o->keyword, "user") == 0)
            user = o->val;
    }
    snprintf(out, n, "%s:%s/%s", host ? host : addr ? addr : "localhost", port ? port : "5432",
             db ? db : user ? user : "(default)");
    PQconninfoFree(opts);
    return 0;
}

/* A new connection: libpq's defaults, then ours (a connect timeout, the application name), then
 * the DSN's, which win. NULL with err (the server's address and libpq's reason). */
static PGconn *connect_to(const char *dsn, const char *where, const char *node, ac_err_t *err)
{
    char app[AC_PG_NODE_MAX + 16];
    snprintf(app, sizeof app, "agentcore %s", node ? node : "");
    const char *keys[] = {"connect_timeout", "application_name", "dbname", NULL};
    const char *vals[] = {"10", app, dsn, NULL};
    PGconn *c = PQconnectdbParams(keys, vals, 1);
    if (c != NULL && PQstatus(c) == CONNECTION_OK)
        return c;
    char why[300];
    snprintf(why, sizeof why, "%s", c ? PQerrorMessage(c) : "out of memory");
    why[strcspn(why, "\n")] = '\0';
    PQfinish(c);
    ac_err_set(err, AC_ERR_INTERNAL, "cannot connect to PostgreSQL at %s: %s", where, why);
    return NULL;
}

/* ---- health ------------------------------------------------------------------------------------ */

static int fault_err(ac_err_t *err, const char *cause)
{
    ac_err_set(err, AC_ERR_INTERNAL, "store: %s", cause);
    ac_err_set_data(err, json_pack("{s:s, s:s}", "field", "store", "error", cause));
    return -1;
}

static int write_fault(ac_pg_t *pg, const char *cause, ac_err_t *err)
{
    pthread_mutex_lock(&pg->health_lock);
    snprintf(pg->cause, sizeof pg->cause, "%s", cause);
    pg->faults++;
    atomic_store(&pg->degraded, 1);
    pthread_mutex_unlock(&pg->health_lock);
    return fault_err(err, cause);
}

int ac_pg_degraded(ac_pg_t *pg, char *cause, size_t n)
{
    if (!atomic_load(&pg->degraded))
        return 0;
    if (cause != NULL) {
        pthread_mutex_lock(&pg->health_lock);
        snprintf(cause, n, "%s", pg->cause);
        pthread_mutex_unlock(&pg->health_lock);
    }
    return 1;
}

/* ---- the pool ---------------------------------------------------------------------------------- */

/* A connection of the pool, connected (reconnected after a failure), for this thread alone until
 * release. NULL with err when the server cannot be reached. */
static conn_t *acquire(ac_pg_t *pg, ac_err_t *err)
{
    pthread_mutex_lock(&pg->lock);
    conn_t *k = NULL;
    for (;;) {
        /* an open idle connection first, then an idle slot */
        for (int i = 0; i < pg->size && k == NULL; i++)
            if (!pg->pool[i].busy && pg->pool[i].c != NULL)
                k = &pg->pool[i];
        for (int i = 0; i < pg->size && k == NULL; i++)
            if (!pg->pool[i].busy)
                k = &pg->pool[i];
        if (k != NULL)
            break;
        pthread_cond_wait(&pg->freed, &pg->lock);
    }
    k->busy = 1;
    pthread_mutex_unlock(&pg->lock);
    if (k->c != NULL && PQstatus(k->c) != CONNECTION_OK) {
        PQfinish(k->c); /* its prepared statements went with the session */
        k->c = NULL;
    }
    if (k->c == NULL) {
        k->n_prepared = 0;
        if ((k->c = connect_to(pg->dsn, pg->where, pg->node, err)) == NULL) {
            pthread_mutex_lock(&pg->lock);
            k->busy = 0;
            pthread_cond_signal(&pg->freed);
            pthread_mutex_unlock(&pg->lock);
            return NULL;
        }
    }
    return k;
}

static void release(ac_pg_t *pg, conn_t *k)
{
    pthread_mutex_lock(&pg->lock);
    k->busy = 0;
    pthread_cond_signal(&pg->freed);
    pthread_mutex_unlock(&pg->lock);
}

/* ---- statements ---------------------------------------------------------------------------------- */

/* SQLSTATEs of a server that cannot write or be reached: connection failures (08), insufficient
 * resources (53: disk full, out of memory, too many connections), a read-only transaction or
 * server (25006), and a shutdown (57P01-57P03). */
static int is_fault_state(const char *st)
{
    return st == NULL || strncmp(st, "08", 2) == 0 || strncmp(st, "53", 2) == 0 || strcmp(st, "25006") == 0 ||
           strncmp(st, "57P0", 4) == 0;
}

/* Records a failed statement's error in err (a write fault when the server cannot write or be
 * reached: then also in the health state) and in the transaction. Returns NULL. */
static PGresult *failed(ac_pg_txn_t *t, PGresult *res, ac_err_t *err)
{
    const char *st = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    char msg[200];
    const char *text = res && PQresultErrorMessage(res)[0] ? PQresultErrorMessage(res) : PQerrorMessage(t->conn->c);
    snprintf(msg, sizeof msg, "%s", text && text[0] ? text : "no answer");
    msg[strcspn(msg, "\n")] = '\0';
    int lost = PQstatus(t->conn->c) != CONNECTION_OK;
    if (st != NULL && (strcmp(st, "40001") == 0 || strcmp(st, "40P01") == 0))
        t->retry = 1;
    if (lost || is_fault_state(st)) {
        char cause[512];
        snprintf(cause, sizeof cause, "cannot write: PostgreSQL at %s: %s", t->pg->where, msg);
        t->fault = 1;
        if (t->write)
            write_fault(t->pg, cause, err);
        else
            ac_err_set(err, AC_ERR_INTERNAL, "store: PostgreSQL at %s: %s", t->pg->where, msg);
    } else {
        ac_err_set(err, AC_ERR_INTERNAL, "store: PostgreSQL: %s (SQLSTATE %s)", msg, st ? st : "?");
    }
    PQclear(res);
    return NULL;
}

/* The name of sql's statement on this connection, preparing it the first time. NULL after a
 * failure (err set). */
static const char *prepared(ac_pg_txn_t *t, const char *sql, int n, char name[16], ac_err_t *err)
{
    conn_t *k = t->conn;
    int i = 0;
    while (i < k->n_prepared && k->prepared[i] != sql)
        i++;
    snprintf(name, 16, "s%d", i);
    if (i < k->n_prepared)
        return name;
    if (i == MAX_PREPARED) {
        ac_err_set(err, AC_ERR_INTERNAL, "store: more than %d statements", MAX_PREPARED);
        return NULL;
    }
    PGresult *res = PQprepare(k->c, name, sql, n, NULL);
    if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK) {
        failed(t, res, err);
        return NULL;
    }
    PQclear(res);
    k->prepared[k->n_prepared++] = sql;
    return name;
}

PGresult *ac_pg_execb(ac_pg_txn_t *t, const char *sql, int n, const char *const *params, const int *lengths,
                      const int *formats, int binary_result, ac_err_t *err)
{
    char name[16];
    if (prepared(t, sql, n, name, err) == NULL)
        return NULL;
    PGresult *res = PQexecPrepared(t->conn->c, name, n, params, lengths, formats, binary_result);
    ExecStatusType s = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK)
        return res;
    return failed(t, res, err);
}

PGresult *ac_pg_exec(ac_pg_txn_t *t, const char *sql, int n, const char *const *params, ac_err_t *err)
{
    return ac_pg_execb(t, sql, n, params, NULL, NULL, 0, err);
}

int64_t ac_pg_changed(PGresult *res)
{
    return strtoll(PQcmdTuples(res), NULL, 10);
}

int64_t ac_pg_int(PGresult *res, int row, int col)
{
    const char *v = PQgetvalue(res, row, col);
    if (v[0] == 't' || v[0] == 'f')
        return v[0] == 't';
    return strtoll(v, NULL, 10);
}

/* A statement outside the prepared set (BEGIN, COMMIT, ROLLBACK, LISTEN...): 0 or -1. */
static int simple(ac_pg_txn_t *t, const char *sql, const char *want_status, ac_err_t *err)
{
    PGresult *res = PQexec(t->conn->c, sql);
    if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK) {
        failed(t, res, err);
        return -1;
    }
    /* COMMIT of a transaction a failed statement aborted answers "ROLLBACK" */
    int ok = want_status == NULL || strcmp(PQcmdStatus(res), want_status) == 0;
    PQclear(res);
    if (!ok)
        return ac_err_set(err, AC_ERR_INTERNAL, "store: PostgreSQL rolled the transaction back");
    return 0;
}

/* ---- transactions ---------------------------------------------------------------------------------- */

int ac_pg_write(ac_pg_t *pg, int reserved, ac_pg_fn fn, void *ud, ac_err_t *err)
{
    if (reserved && ac_fault("store.reserved"))
        return write_fault(pg, "cannot write: No space left on device (injected fault store.reserved)", err);
    if (ac_fault("store.write"))
        return write_fault(pg, "cannot write: write failed (injected fault store.write)", err);
    for (int attempt = 1;; attempt++) {
        ac_pg_txn_t t = {pg, NULL, 1, 0, 0};
        if ((t.conn = acquire(pg, err)) == NULL) {
            char cause[300];
            snprintf(cause, sizeof cause, "cannot write: %s", err->message);
            return write_fault(pg, cause, err);
        }
        int ret = simple(&t, "BEGIN", NULL, err);
        if (ret == 0)
            ret = fn(&t, ud, err);
        if (ret == 0 && ac_fault("store.commit")) {
            ac_err_clear(err);
            simple(&t, "ROLLBACK", NULL, err);
            ac_err_clear(err);
            ret = write_fault(pg, "cannot write: No space left on device (injected fault store.commit)", err);
        } else if (ret == 0) {
            ret = simple(&t, "COMMIT", "COMMIT", err);
        } else if (PQstatus(t.conn->c) == CONNECTION_OK) {
            ac_err_t ignored = AC_ERR_INIT;
            simple(&t, "ROLLBACK", NULL, &ignored);
            ac_err_clear(&ignored);
        }
        release(pg, t.conn);
        if (ret == 0 || !t.retry || attempt == AC_PG_MAX_RETRIES)
            return ret;
        ac_err_clear(err); /* a serialization failure or a deadlock: run it again */
        struct timespec pause = {0, (long)(attempt * 2) * 1000000L};
        nanosleep(&pause, NULL);
    }
}

int ac_pg_read(ac_pg_t *pg, ac_pg_fn fn, void *ud, ac_err_t *err)
{
    ac_pg_txn_t t = {pg, NULL, 0, 0, 0};
    if ((t.conn = acquire(pg, err)) == NULL)
        return -1;
    int ret = fn(&t, ud, err);
    release(pg, t.conn);
    return ret;
}

static int probe_txn(ac_pg_txn_t *t, void *ud, ac_err_t *err)
{
    (void)ud;
    static const char sql[] = "INSERT INTO probes (node, at) VALUES ($1, clock_timestamp()) "
                              "ON CONFLICT (node) DO UPDATE SET at = excluded.at";
    const char *p[] = {t->pg->node};
    PGresult *res = ac_pg_exec(t, sql, 1, p, err);
    PQclear(res);
    return res ? 0 : -1;
}

int ac_pg_probe(ac_pg_t *pg, ac_err_t *err)
{
    pthread_mutex_lock(&pg->health_lock);
    unsigned long faults = pg->faults;
    pthread_mutex_unlock(&pg->health_lock);
    if (ac_pg_write(pg, 0, probe_txn, NULL, err) != 0)
        return -1;
    char cause[sizeof pg->cause];
    pthread_mutex_lock(&pg->health_lock);
    if (pg->faults == faults) /* else a write failed while this one succeeded: stay degraded */
        atomic_store(&pg->degraded, 0);
    int degraded = atomic_load(&pg->degraded);
    snprintf(cause, sizeof cause, "%s", pg->cause);
    pthread_mutex_unlock(&pg->health_lock);
    return degraded ? fault_err(err, cause) : 0;
}

int ac_pg_notify(ac_pg_txn_t *t, const char *channel, const char *payload, ac_err_t *err)
{
    static const char sql[] = "SELECT pg_notify($1, $2)";
    const char *p[] = {channel, payload};
    PGresult *res = ac_pg_exec(t, sql, 2, p, err);
    PQclear(res);
    return res ? 0 : -1;
}

/* ---- the schema ---------------------------------------------------------------------------------- */

/* One statement on a bare connection; 0, or -1 with err naming what. */
static int run_sql(PGconn *c, const char *sql, const char *what, PGresult **out, ac_err_t *err)
{
    PGresult *res = PQexec(c, sql);
    ExecStatusType s = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK) {
        if (out != NULL)
            *out = res;
        else
            PQclear(res);
        return 0;
    }
    char msg[300];
    snprintf(msg, sizeof msg, "%s", res ? PQresultErrorMessage(res) : PQerrorMessage(c));
    msg[strcspn(msg, "\n")] = '\0';
    PQclear(res);
    return ac_err_set(err, AC_ERR_INTERNAL, "PostgreSQL: %s: %s", what, msg);
}

/* The recorded version (0: no schema yet). */
static int schema_version(PGconn *c, int *version, ac_err_t *err)
{
    PGresult *res = NULL;
    if (run_sql(c, "SELECT to_regclass('agentcore_schema') IS NOT NULL", "reading the schema version", &res, err) != 0)
        return -1;
    int exists = PQgetvalue(res, 0, 0)[0] == 't';
    PQclear(res);
    *version = 0;
    if (!exists)
        return 0;
    if (run_sql(c, "SELECT coalesce(max(version), 0) FROM agentcore_schema", "reading the schema version", &res,
                err) != 0)
        return -1;
    *version = atoi(PQgetvalue(res, 0, 0));
    PQclear(res);
    return 0;
}

/* Under the advisory lock: the missing migrations, each in its own transaction. */
static int apply_migrations(PGconn *c, const char *where, int *version, ac_err_t *err)
{
    if (run_sql(c,
                "CREATE TABLE IF NOT EXISTS agentcore_schema (version integer PRIMARY KEY, "
                "applied_at timestamptz NOT NULL DEFAULT now(), agentcore text NOT NULL)",
                "creating agentcore_schema", NULL, err) != 0 ||
        schema_version(c, version, err) != 0)
        return -1;
    while (*version < ac_pg_n_migrations) {
        int next = *version + 1;
        char what[64], record[160];
        snprintf(what, sizeof what, "migration %d", next);
        snprintf(record, sizeof record, "INSERT INTO agentcore_schema (version, agentcore) VALUES (%d, '%s')", next,
                 AC_VERSION);
        if (run_sql(c, "BEGIN", what, NULL, err) != 0)
            return -1;
        if (run_sql(c, ac_pg_migrations[next - 1], what, NULL, err) != 0 || run_sql(c, record, what, NULL, err) != 0 ||
            run_sql(c, "COMMIT", what, NULL, err) != 0) {
            ac_err_t ignored = AC_ERR_INIT;
            run_sql(c, "ROLLBACK", what, NULL, &ignored);
            ac_err_clear(&ignored);
            char msg[sizeof err->message];
            snprintf(msg, sizeof msg, "%s", err->message);
            return ac_err_set(err, AC_ERR_INTERNAL, "schema of %s: %s", where, msg);
        }
        fprintf(stderr, "agentcore: PostgreSQL at %s: schema migrated to version %d\n", where, next);
        *version = next;
    }
    return 0;
}

static int too_new(int version, const char *where, ac_err_t *err)
{
    return ac_err_set(err, AC_ERR_INTERNAL,
                      "the schema of PostgreSQL at %s is version %d, newer than this agentcore's (%d): another "
                      "node runs a newer release; upgrade this binary (docs/operations.md, \"Upgrades\")",
                      where, version, ac_pg_n_migrations);
}

/* Checks (and with apply, brings up to date) the schema on c. */
static int migrate_on(PGconn *c, const char *where, int apply, int *from, int *to, ac_err_t *err)
{
    if (run_sql(c, "SELECT pg_advisory_lock(" MIGRATE_LOCK ")", "locking the schema", NULL, err) != 0)
        return -1;
    int rc = schema_version(c, from, err);
    *to = *from;
    if (rc == 0 && *from > ac_pg_n_migrations)
        rc = too_new(*from, where, err);
    else if (rc == 0 && apply && *from < ac_pg_n_migrations)
        rc = apply_migrations(c, where, to, err);
    ac_err_t ignored = AC_ERR_INIT;
    run_sql(c, "SELECT pg_advisory_unlock(" MIGRATE_LOCK ")", "unlocking the schema", NULL, &ignored);
    ac_err_clear(&ignored);
    return rc;
}

int ac_pg_migrate(const char *dsn, int apply, int *from, int *to, ac_err_t *err)
{
    char where[200];
    if (describe_dsn(dsn, where, sizeof where, err) != 0)
        return -1;
    PGconn *c = connect_to(dsn, where, "migrate", err);
    if (c == NULL)
        return -1;
    int rc = migrate_on(c, where, apply, from, to, err);
    PQfinish(c);
    return rc;
}

/* ---- open / close -------------------------------------------------------------------------------- */

ac_pg_t *ac_pg_open(const ac_pg_config_t *cfg, ac_err_t *err)
{
    if (cfg->dsn == NULL || cfg->dsn[0] == '\0') {
        ac_err_set(err, AC_ERR_INTERNAL, "store.backend = \"postgresql\" needs store.dsn (or AGENTCORE_STORE_DSN)");
        return NULL;
    }
    ac_pg_t *pg = calloc(1, sizeof *pg);
    int size = cfg->pool_size > 0 ? cfg->pool_size : 8;
    if (pg == NULL || (pg->dsn = strdup(cfg->dsn)) == NULL || (pg->pool = calloc((size_t)size, sizeof *pg->pool)) == NULL) {
        if (pg != NULL)
            free(pg->dsn);
        free(pg);
        ac_err_set(err, AC_ERR_INTERNAL, "store: out of memory");
        return NULL;
    }
    pg->size = size;
    pg->lease_ms = cfg->lease_ms > 0 ? cfg->lease_ms : 30000;
    snprintf(pg->node, sizeof pg->node, "%s", cfg->node ? cfg->node : "agentcore");
    pthread_mutex_init(&pg->lock, NULL);
    pthread_cond_init(&pg->freed, NULL);
    pthread_mutex_init(&pg->health_lock, NULL);
    if (describe_dsn(pg->dsn, pg->where, sizeof pg->where, err) != 0) {
        ac_pg_close(pg);
        return NULL;
    }
    /* the first connection checks the server and the schema, and stays in the pool */
    PGconn *c = connect_to(pg->dsn, pg->where, pg->node, err);
    int from = 0, to = 0;
    if (c == NULL || migrate_on(c, pg->where, cfg->auto_migrate, &from, &to, err) != 0) {
        PQfinish(c);
        ac_pg_close(pg);
        return NULL;
    }
    pg->pool[0].c = c;
    if (to < ac_pg_n_migrations) {
        ac_err_set(err, AC_ERR_INTERNAL,
                   "the schema of PostgreSQL at %s is version %d, older than this agentcore's (%d), and "
                   "store.auto_migrate is off: run `agentcore migrate --config FILE` first",
                   pg->where, to, ac_pg_n_migrations);
        ac_pg_close(pg);
        return NULL;
    }
    return pg;
}

void ac_pg_close(ac_pg_t *pg)
{
    if (pg == NULL)
        return;
    for (int i = 0; pg->pool != NULL && i < pg->size; i++)
        PQfinish(pg->pool[i].c);
    PQfinish(pg->listener);
    pthread_mutex_destroy(&pg->lock);
    pthread_cond_destroy(&pg->freed);
    pthread_mutex_destroy(&pg->health_lock);
    free(pg->pool);
    free(pg->dsn);
    free(pg);
}

/* ---- LISTEN ---------------------------------------------------------------------------------------- */

int ac_pg_listen(ac_pg_t *pg, const char *const *channels, int timeout_ms, ac_pg_notify_fn fn, void *ud,
                 ac_err_t *err)
{
    if (pg->listener != NULL && PQstatus(pg->listener) != CONNECTION_OK) {
        PQfinish(pg->listener);
        pg->listener = NULL;
    }
    if (pg->listener == NULL) {
        if ((pg->listener = connect_to(pg->dsn, pg->where, pg->node, err)) == NULL) {
            struct timespec pause = {timeout_ms / 1000, (long)(timeout_ms % 1000) * 1000000L};
            nanosleep(&pause, NULL); /* the caller loops: not faster than its timeout */
            return -1;
        }
        for (const char *const *ch = channels; *ch != NULL; ch++) {
            char sql[128];
            snprintf(sql, sizeof sql, "LISTEN %s", *ch);
            if (run_sql(pg->listener, sql, "LISTEN", NULL, err) != 0) {
                PQfinish(pg->listener);
                pg->listener = NULL;
                return -1;
            }
        }
    }
    struct pollfd p = {PQsocket(pg->listener), POLLIN, 0};
    int ready = poll(&p, 1, timeout_ms);
    if (ready < 0 && errno != EINTR)
        return ac_err_set(err, AC_ERR_INTERNAL, "store: poll: %s", strerror(errno));
    if (ready > 0 && PQconsumeInput(pg->listener) == 0) {
        char msg[200];
        snprintf(msg, sizeof msg, "%s", PQerrorMessage(pg->listener));
        msg[strcspn(msg, "\n")] = '\0';
        PQfinish(pg->listener);
        pg->listener = NULL;
        return ac_err_set(err, AC_ERR_INTERNAL, "store: PostgreSQL at %s: LISTEN connection lost: %s", pg->where,
                          msg);
    }
    PGnotify *n;
    while ((n = PQnotifies(pg->listener)) != NULL) {
        fn(n->relname, n->extra, ud);
        PQfreemem(n);
    }
    return 0;
}

/* ---- the node's name ------------------------------------------------------------------------------ */

static int name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= AC_PG_NODE_MAX)
        return 0;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-' ||
              *p == '_' || *p == '.' || *p == ':'))
            return 0;
    return 1;
}

int ac_pg_node_name(const char *dir, const char *wanted, char *out, ac_err_t *err)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/agentcore.node", dir);
    if (wanted != NULL) {
        if (!name_ok(wanted))
            return ac_err_set(err, AC_ERR_INTERNAL,
                              "store.node must be 1-%d letters, digits, '-', '_', '.' or ':'", AC_PG_NODE_MAX - 1);
        snprintf(out, AC_PG_NODE_MAX, "%s", wanted);
    } else {
        FILE *f = fopen(path, "r");
        char line[AC_PG_NODE_MAX + 2] = "";
        if (f != NULL) {
            if (fgets(line, sizeof line, f) == NULL)
                line[0] = '\0';
            fclose(f);
        }
        line[strcspn(line, "\n")] = '\0';
        if (name_ok(line)) {
            snprintf(out, AC_PG_NODE_MAX, "%s", line);
            return 0;
        }
        char host[AC_PG_NODE_MAX] = "node";
        gethostname(host, sizeof host);
        host[sizeof host - 1] = '\0';
        for (char *p = host; *p; p++) /* a host name is almost always fine; anything else becomes '-' */
            if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '.'))
                *p = '-';
        host[40] = '\0';
        uint32_t r = 0;
        if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r)
            return ac_err_set(err, AC_ERR_INTERNAL, "no random source for the node's name");
        snprintf(out, AC_PG_NODE_MAX, "%s-%08x", host[0] ? host : "node", r);
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return ac_err_set(err, AC_ERR_INTERNAL, "cannot write %s: %s", path, strerror(errno));
    char line[AC_PG_NODE_MAX + 1];
    int n = snprintf(line, sizeof line, "%s\n", out);
    int ok = write(fd, line, (size_t)n) == n;
    close(fd);
    return ok ? 0 : ac_err_set(err, AC_ERR_INTERNAL, "cannot write %s", path);
}
