/* The embedded store: one LMDB environment in the data directory with a named database per kind
 * of record. The interface is deliberately narrow (get/put/del/scan inside a transaction
 * callback) so that another engine (PostgreSQL) can stand behind it later.
 *
 * Writes run inside ac_store_write(): the callback may be run more than once (when the map is
 * full the store grows it and replays the callback in a fresh transaction), so it must not have
 * side effects outside the transaction other than idempotent ones. Values handed out by get and
 * scan are valid only until the callback returns: copy them.
 *
 * One process per data directory: opening takes an exclusive flock on DIR/agentcore.lock, held
 * until ac_store_close or the process ends (kill -9 included). LMDB's own lock.mdb lets several
 * processes share an environment by design, and two servers growing the map independently make
 * each other fail (MDB_MAP_RESIZED) while both run jobs.
 *
 * Health: a write the store cannot commit (a full disk, an I/O error, a map that cannot grow)
 * fails with an error whose data is {"field": "store", "error": "cannot write: <cause>"}, and
 * marks the store degraded with that cause. Only a successful ac_store_probe clears it: a small
 * commit succeeding says little, because LMDB reuses freed pages, so a status update can fit
 * where an iteration's trajectories cannot. The probe wants AC_STORE_RESERVE_BYTES free beyond
 * the reserve: the store keeps that much in DIR/agentcore.reserve, a file it releases when a write
 * that records a failure cannot commit (ac_store_write_reserved), so that such a record can
 * still be written on a full disk. */
#ifndef AC_STORE_H
#define AC_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

enum ac_db {
    AC_DB_META,         /* schema version, counters */
    AC_DB_JOBS,         /* job_id -> job record (JSON) */
    AC_DB_JOB_DATA,     /* job_id -> training/evaluation data (JSON) */
    AC_DB_QUEUE,        /* be64 sequence -> job_id: queued jobs in arrival order */
    AC_DB_OWNER_JOBS,   /* owner \0 be64 created_ms job_id -> "" : a principal's jobs */
    AC_DB_EVENTS,       /* job_id be64 seq -> event (JSON) */
    AC_DB_TRAJECTORIES, /* job_id be32 iteration be32 index -> trajectory (JSON) */
    AC_DB_TRAJ_INDEX,   /* same key -> {reward f64, success u8}: export filters without parsing */
    AC_DB_CHECKPOINTS,  /* job_id checkpoint_id -> checkpoint (binary) */
    AC_DB_OUTBOX,       /* be64 seq -> webhook work (JSON): events to fan out, deliveries to make */
    AC_DB_WEBHOOKS,     /* owner \0 subscription_id -> subscription (JSON) */
    AC_DB_METRICS,      /* job_id be32 iteration -> that iteration's metrics (JSON) */
    AC_DB_COUNT
};

typedef struct ac_store ac_store_t;
typedef struct ac_txn ac_txn_t;

typedef struct ac_store_stats {
    size_t map_size;   /* bytes of address space mapped */
    size_t used_bytes; /* pages in use * page size */
    int grows;         /* times the map grew since open */
} ac_store_stats_t;

/* Space kept in DIR/agentcore.reserve for the records that say a write failed. */
#define AC_STORE_RESERVE_BYTES ((size_t)2 << 20)

/* Opens (creating when missing) the environment in dir, which must exist or be creatable.
 * The map starts at 256 MiB of address space and doubles whenever it is full.
 * Returns NULL with err set on failure; when another process holds the directory, the message
 * is "data directory DIR is in use by another agentcore (pid N)". */
ac_store_t *ac_store_open(const char *dir, ac_err_t *err);
/* Likewise with the first map size in bytes (tests use a small one to make it grow). */
ac_store_t *ac_store_open_sized(const char *dir, size_t initial_map, ac_err_t *err);
/* Closes the environment; NULL is a no-op. No transaction may be running. */
void ac_store_close(ac_store_t *s);

/* The directory's lock alone (a node whose data is in PostgreSQL keeps its name and crash log in
 * dir, which must exist): an exclusive flock on DIR/agentcore.lock, held until the returned
 * descriptor is closed or the process ends. -1 with err ("... in use by another agentcore (pid
 * N)") when another process holds it. */
int ac_store_lock_dir(const char *dir, ac_err_t *err);

typedef int (*ac_store_fn)(ac_txn_t *txn, void *ud, ac_err_t *err);
/* Runs fn in a write transaction and commits when it returns 0 (durably: the commit is on disk
 * when this returns). fn returning -1 aborts. Returns fn's result, or -1 with err set. */
int ac_store_write(ac_store_t *s, ac_store_fn fn, void *ud, ac_err_t *err);
/* Like ac_store_write, for the few writes that record that something failed (a job's failure,
 * re-queueing interrupted jobs): when the commit fails with a write fault, the reserve file is
 * deleted and the write tried once more with the space it held. */
int ac_store_write_reserved(ac_store_t *s, ac_store_fn fn, void *ud, ac_err_t *err);
/* Runs fn in a read-only snapshot. Reads work while the store is degraded. */
int ac_store_read(ac_store_t *s, ac_store_fn fn, void *ud, ac_err_t *err);

/* 1 when err comes from a write the store could not commit (its data names the field "store"),
 * 0 for any other error (a callback's own, a missing record, ...). */
int ac_store_is_write_fault(const ac_err_t *err);

/* 1 when the store is degraded, with the cause ("cannot write: No space left on device (...)")
 * copied into cause (NULL: not wanted); 0 when healthy. Cheap (an atomic load when healthy);
 * thread-safe. */
int ac_store_degraded(ac_store_t *s, char *cause, size_t n);

/* Checks that the store can write again: recreates the reserve file when it is missing, checks
 * that as much again is free beyond it (allocating a scratch file and deleting it), and commits
 * a small record. On success the store is healthy again and 0 is returned; else -1 with err set
 * as for a write fault (the store is, or stays, degraded with that cause). */
int ac_store_probe(ac_store_t *s, ac_err_t *err);

/* Looks a key up. Returns 1 and sets val and vlen (valid inside the transaction) when found,
 * 0 when not found, -1 on error. */
int ac_txn_get(ac_txn_t *t, int db, const void *key, size_t klen, const void **val, size_t *vlen, ac_err_t *err);
int ac_txn_put(ac_txn_t *t, int db, const void *key, size_t klen, const void *val, size_t vlen, ac_err_t *err);
/* Returns 1 when deleted, 0 when it was not there, -1 on error. */
int ac_txn_del(ac_txn_t *t, int db, const void *key, size_t klen, ac_err_t *err);

/* Calls cb for each record whose key starts with prefix, in key order, starting at the first
 * key >= start (start NULL: from the prefix). cb returns 0 to go on, 1 to stop, -1 for an error
 * (its err set). Returns 0 or -1. */
typedef int (*ac_scan_fn)(const void *key, size_t klen, const void *val, size_t vlen, void *ud, ac_err_t *err);
int ac_txn_scan(ac_txn_t *t, int db, const void *prefix, size_t plen, const void *start, size_t slen, ac_scan_fn cb,
                void *ud, ac_err_t *err);
/* Like ac_txn_scan, from the last key with the prefix backwards. */
int ac_txn_scan_rev(ac_txn_t *t, int db, const void *prefix, size_t plen, ac_scan_fn cb, void *ud, ac_err_t *err);
/* Number of records in db. */
size_t ac_txn_count(ac_txn_t *t, int db);

/* Next value of a named counter kept in AC_DB_META (write transactions only). */
int ac_txn_next_seq(ac_txn_t *t, const char *name, uint64_t *out, ac_err_t *err);

void ac_store_stats(ac_store_t *s, ac_store_stats_t *out);

/* Big-endian encoding keeps numeric keys in numeric order under LMDB's byte order. */
static inline void ac_be64_put(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}
static inline uint64_t ac_be64_get(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

#endif
