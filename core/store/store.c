#include "store/store.h"

#include "base/clock.h"
#include "base/fault.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

static const char *const db_names[AC_DB_COUNT] = {
    "meta", "jobs", "job_data", "queue", "owner_jobs", "events", "trajectories", "traj_index", "checkpoints", "outbox", "webhooks",
    "metrics",
};

#define AC_STORE_INITIAL_MAP ((size_t)256 << 20)

struct ac_store {
    MDB_env *env;
    MDB_dbi dbi[AC_DB_COUNT];
    /* Transactions hold it shared; growing the map holds it exclusive, because LMDB allows
     * mdb_env_set_mapsize only while this process has no transaction open. */
    pthread_rwlock_t resize_lock;
    size_t map_size;
    int grows;
    char *dir;
    int lock_fd; /* holds the flock on DIR/agentcore.lock */
    /* health (store.h): set by a write fault, cleared by a successful probe */
    atomic_int degraded;
    pthread_mutex_t health_lock;
    char cause[200];
    unsigned long faults; /* write faults so far: a probe clears only when none came meanwhile */
};

struct ac_txn {
    ac_store_t *store;
    MDB_txn *txn;
    int map_full; /* a put hit MDB_MAP_FULL: grow and replay */
};

static int lmdb_err(ac_err_t *err, const char *what, int rc)
{
    return ac_err_set(err, AC_ERR_INTERNAL, "store: %s: %s", what, mdb_strerror(rc));
}

ac_store_t *ac_store_open(const char *dir, ac_err_t *err)
{
    return ac_store_open_sized(dir, 0, err);
}

static void path_in(const ac_store_t *s, const char *name, char *out, size_t n)
{
    snprintf(out, n, "%s/%s", s->dir, name);
}

/* The directory's lock: an exclusive flock, which the kernel drops when the process ends however
 * it ends. The holder's pid is written into the file for the message a second process prints. */
static int lock_dir(ac_store_t *s, ac_err_t *err)
{
    return (s->lock_fd = ac_store_lock_dir(s->dir, err)) < 0 ? -1 : 0;
}

int ac_store_lock_dir(const char *dir, ac_err_t *err)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/agentcore.lock", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return ac_err_set(err, AC_ERR_INTERNAL, "store: cannot open %s: %s", path, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        char pid[17] = {0};
        ssize_t n = pread(fd, pid, sizeof pid - 1, 0);
        long holder = n > 0 ? strtol(pid, NULL, 10) : 0;
        close(fd);
        if (e != EWOULDBLOCK)
            return ac_err_set(err, AC_ERR_INTERNAL, "store: cannot lock %s: %s", path, strerror(e));
        if (holder > 0)
            return ac_err_set(err, AC_ERR_INTERNAL, "data directory %s is in use by another agentcore (pid %ld)",
                              dir, holder);
        return ac_err_set(err, AC_ERR_INTERNAL, "data directory %s is in use by another agentcore (pid unknown)",
                          dir);
    }
    /* a fixed-width record over the previous one: on a full disk the file keeps its size and
     * needs no new block */
    char rec[17];
    snprintf(rec, sizeof rec, "%15ld\n", (long)getpid());
    if (pwrite(fd, rec, 16, 0) == 16 && ftruncate(fd, 16) != 0) {
        /* the pid only improves another process's message: the lock is what matters */
    }
    return fd;
}

ac_store_t *ac_store_open_sized(const char *dir, size_t initial_map, ac_err_t *err)
{
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        ac_err_set(err, AC_ERR_INTERNAL, "store: cannot create %s: %s", dir, strerror(errno));
        return NULL;
    }
    ac_store_t *s = calloc(1, sizeof *s);
    if (s == NULL || (s->dir = strdup(dir)) == NULL) {
        free(s);
        ac_err_set(err, AC_ERR_INTERNAL, "store: out of memory");
        return NULL;
    }
    s->lock_fd = -1;
    if (lock_dir(s, err) != 0) {
        free(s->dir);
        free(s);
        return NULL;
    }
    pthread_rwlock_init(&s->resize_lock, NULL);
    pthread_mutex_init(&s->health_lock, NULL);
    int rc;
    MDB_txn *txn = NULL;
    if ((rc = mdb_env_create(&s->env)) != 0)
        goto fail;
    mdb_env_set_maxdbs(s->env, AC_DB_COUNT + 4);
    mdb_env_set_maxreaders(s->env, 254);
    /* The map is address space, not memory: start generous, grow on MDB_MAP_FULL. */
    mdb_env_set_mapsize(s->env, initial_map > 0 ? initial_map : AC_STORE_INITIAL_MAP);
    /* NOTLS: read transactions are not tied to threads (jobs move between threads). */
    if ((rc = mdb_env_open(s->env, dir, MDB_NOTLS, 0600)) != 0)
        goto fail;
    int dead = 0;
    mdb_reader_check(s->env, &dead); /* clear reader slots a killed process left behind */
    MDB_envinfo info;
    mdb_env_info(s->env, &info);
    s->map_size = info.me_mapsize;
    if ((rc = mdb_txn_begin(s->env, NULL, 0, &txn)) != 0)
        goto fail;
    for (int i = 0; i < AC_DB_COUNT; i++)
        if ((rc = mdb_dbi_open(txn, db_names[i], MDB_CREATE, &s->dbi[i])) != 0)
            goto fail;
    if ((rc = mdb_txn_commit(txn)) != 0) {
        txn = NULL;
        goto fail;
    }
    return s;
fail:
    if (txn != NULL)
        mdb_txn_abort(txn);
    ac_err_set(err, AC_ERR_INTERNAL, "store: cannot open %s: %s", dir, mdb_strerror(rc));
    if (s->env != NULL)
        mdb_env_close(s->env);
    pthread_rwlock_destroy(&s->resize_lock);
    pthread_mutex_destroy(&s->health_lock);
    close(s->lock_fd);
    free(s->dir);
    free(s);
    return NULL;
}

void ac_store_close(ac_store_t *s)
{
    if (s == NULL)
        return;
    mdb_env_sync(s->env, 1);
    mdb_env_close(s->env);
    pthread_rwlock_destroy(&s->resize_lock);
    pthread_mutex_destroy(&s->health_lock);
    close(s->lock_fd); /* releases the directory: closed after LMDB, so no successor sees it open */
    free(s->dir);
    free(s);
}

/* ---- health ------------------------------------------------------------------------------------ */

/* Marks the store degraded and fills err: message "store: <cause>", data {field: store, error:
 * <cause>}. cause reads "cannot write: ...". Returns -1. */
static int fault_err(ac_err_t *err, const char *cause)
{
    ac_err_set(err, AC_ERR_INTERNAL, "store: %s", cause);
    ac_err_set_data(err, json_pack("{s:s, s:s}", "field", "store", "error", cause));
    return -1;
}

static int write_fault(ac_store_t *s, const char *cause, ac_err_t *err)
{
    pthread_mutex_lock(&s->health_lock);
    snprintf(s->cause, sizeof s->cause, "%s", cause);
    s->faults++;
    atomic_store(&s->degraded, 1);
    pthread_mutex_unlock(&s->health_lock);
    return fault_err(err, cause);
}

/* Why LMDB could not write, in words an operator acts on. On a full file system LMDB's page
 * flush often ends in a short write, which it reports as EIO ("Input/output error"): the free
 * space tells the two apart. */
static void describe(const ac_store_t *s, const char *what, int rc, char *out, size_t n)
{
    struct statvfs v;
    if ((rc == ENOSPC || rc == EIO) && statvfs(s->dir, &v) == 0) {
        unsigned long long avail = (unsigned long long)v.f_bavail * v.f_frsize;
        if (rc == ENOSPC || avail < AC_STORE_RESERVE_BYTES) {
            snprintf(out, n, "cannot write: No space left on device (%llu KiB free in %.80s%s)", avail / 1024, s->dir,
                     rc == EIO ? "; LMDB: Input/output error" : "");
            return;
        }
    }
    snprintf(out, n, "cannot write: %s: %s", what, mdb_strerror(rc));
}

static int lmdb_write_fault(ac_store_t *s, const char *what, int rc, ac_err_t *err)
{
    char cause[200];
    describe(s, what, rc, cause, sizeof cause);
    return write_fault(s, cause, err);
}

int ac_store_is_write_fault(const ac_err_t *err)
{
    const char *field = err != NULL ? json_string_value(json_object_get(err->data, "field")) : NULL;
    return field != NULL && strcmp(field, "store") == 0;
}

int ac_store_degraded(ac_store_t *s, char *cause, size_t n)
{
    if (!atomic_load(&s->degraded))
        return 0;
    if (cause != NULL) {
        pthread_mutex_lock(&s->health_lock);
        snprintf(cause, n, "%s", s->cause);
        pthread_mutex_unlock(&s->health_lock);
    }
    return 1;
}

/* The reserve: AC_STORE_RESERVE_BYTES of allocated (not sparse) file. 0 when it is there. */
static int reserve_make(ac_store_t *s, char *cause, size_t n)
{
    char path[PATH_MAX];
    path_in(s, "agentcore.reserve", path, sizeof path);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(cause, n, "cannot write: cannot create %.100s: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    int rc = fstat(fd, &st) == 0 && (size_t)st.st_blocks * 512 >= AC_STORE_RESERVE_BYTES
                 ? 0
                 : posix_fallocate(fd, 0, (off_t)AC_STORE_RESERVE_BYTES);
    if (rc == 0 && fsync(fd) != 0)
        rc = errno;
    close(fd);
    if (rc != 0) {
        unlink(path); /* a partial reserve would only hold space nobody can use */
        snprintf(cause, n, "cannot write: %s (cannot keep the %zu MiB reserve in %.80s)",
                 rc == ENOSPC ? "No space left on device" : strerror(rc), AC_STORE_RESERVE_BYTES >> 20, s->dir);
        return -1;
    }
    return 0;
}

/* Free space beyond the reserve: as much again, allocated for real and given back (statvfs
 * would miss quotas and the blocks kept for root). */
static int headroom_check(ac_store_t *s, char *cause, size_t n)
{
    char path[PATH_MAX];
    path_in(s, "agentcore.probe", path, sizeof path);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(cause, n, "cannot write: cannot create %.100s: %s", path, strerror(errno));
        return -1;
    }
    int rc = posix_fallocate(fd, 0, (off_t)AC_STORE_RESERVE_BYTES);
    close(fd);
    unlink(path);
    if (rc != 0) {
        snprintf(cause, n, "cannot write: %s (less than %zu MiB free in %.80s beyond the reserve)",
                 rc == ENOSPC ? "No space left on device" : strerror(rc), AC_STORE_RESERVE_BYTES >> 20, s->dir);
        return -1;
    }
    return 0;
}

/* 0 when a reserve was there and is now free space, -1 when there was none. */
static int reserve_release(ac_store_t *s)
{
    char path[PATH_MAX];
    path_in(s, "agentcore.reserve", path, sizeof path);
    return unlink(path);
}

static int grow(ac_store_t *s, size_t seen, ac_err_t *err)
{
    pthread_rwlock_wrlock(&s->resize_lock);
    int rc = 0;
    if (s->map_size == seen) { /* another thread may have grown it meanwhile */
        size_t next = s->map_size * 2;
        if ((rc = mdb_env_set_mapsize(s->env, next)) == 0) {
            s->map_size = next;
            s->grows++;
        }
    }
    pthread_rwlock_unlock(&s->resize_lock);
    return rc == 0 ? 0 : lmdb_write_fault(s, "the map is full and cannot grow", rc, err);
}

static int run(ac_store_t *s, unsigned flags, ac_store_fn fn, void *ud, ac_err_t *err)
{
    for (;;) {
        pthread_rwlock_rdlock(&s->resize_lock);
        size_t seen = s->map_size;
        struct ac_txn t = {s, NULL, 0};
        int rc = mdb_txn_begin(s->env, NULL, flags, &t.txn);
        if (rc != 0) {
            pthread_rwlock_unlock(&s->resize_lock);
            return flags & MDB_RDONLY ? lmdb_err(err, "begin", rc) : lmdb_write_fault(s, "begin", rc, err);
        }
        int ret = fn(&t, ud, err);
        if (flags & MDB_RDONLY) {
            mdb_txn_abort(t.txn);
            pthread_rwlock_unlock(&s->resize_lock);
            return ret;
        }
        int full = 0;
        if (ret == 0) {
            if (ac_fault("store.commit")) {
                mdb_txn_abort(t.txn);
                ret = write_fault(s, "cannot write: No space left on device (injected fault store.commit)", err);
            } else if ((rc = mdb_txn_commit(t.txn)) == MDB_MAP_FULL) {
                full = 1;
            } else if (rc != 0) {
                ret = lmdb_write_fault(s, "commit", rc, err);
            }
        } else {
            full = t.map_full;
            mdb_txn_abort(t.txn);
        }
        pthread_rwlock_unlock(&s->resize_lock);
        if (!full)
            return ret;
        ac_err_clear(err);
        if (grow(s, seen, err) != 0)
            return -1;
    }
}

int ac_store_write(ac_store_t *s, ac_store_fn fn, void *ud, ac_err_t *err)
{
    if (ac_fault("store.write"))
        return write_fault(s, "cannot write: write failed (injected fault store.write)", err);
    return run(s, 0, fn, ud, err);
}

int ac_store_write_reserved(ac_store_t *s, ac_store_fn fn, void *ud, ac_err_t *err)
{
    if (ac_fault("store.reserved"))
        return write_fault(s, "cannot write: No space left on device (injected fault store.reserved)", err);
    int rc = ac_store_write(s, fn, ud, err);
    if (rc == 0 || !ac_store_is_write_fault(err) || reserve_release(s) != 0)
        return rc;
    ac_err_clear(err);
    return ac_store_write(s, fn, ud, err);
}

static int probe_txn(ac_txn_t *t, void *ud, ac_err_t *err)
{
    (void)ud;
    uint8_t now[8];
    ac_be64_put(now, (uint64_t)ac_clock_now_ms());
    return ac_txn_put(t, AC_DB_META, "probe", 5, now, sizeof now, err);
}

int ac_store_probe(ac_store_t *s, ac_err_t *err)
{
    char cause[200];
    pthread_mutex_lock(&s->health_lock);
    unsigned long faults = s->faults;
    pthread_mutex_unlock(&s->health_lock);
    if (reserve_make(s, cause, sizeof cause) != 0 || headroom_check(s, cause, sizeof cause) != 0)
        return write_fault(s, cause, err);
    if (ac_store_write(s, probe_txn, NULL, err) != 0)
        return -1;
    pthread_mutex_lock(&s->health_lock);
    if (s->faults == faults) /* else a write failed while this one succeeded: stay degraded */
        atomic_store(&s->degraded, 0);
    int degraded = atomic_load(&s->degraded);
    snprintf(cause, sizeof cause, "%s", s->cause);
    pthread_mutex_unlock(&s->health_lock);
    return degraded ? fault_err(err, cause) : 0;
}

int ac_store_read(ac_store_t *s, ac_store_fn fn, void *ud, ac_err_t *err)
{
    return run(s, MDB_RDONLY, fn, ud, err);
}

int ac_txn_get(ac_txn_t *t, int db, const void *key, size_t klen, const void **val, size_t *vlen, ac_err_t *err)
{
    MDB_val k = {klen, (void *)key}, v;
    int rc = mdb_get(t->txn, t->store->dbi[db], &k, &v);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc != 0)
        return lmdb_err(err, "get", rc);
    *val = v.mv_data;
    *vlen = v.mv_size;
    return 1;
}

int ac_txn_put(ac_txn_t *t, int db, const void *key, size_t klen, const void *val, size_t vlen, ac_err_t *err)
{
    MDB_val k = {klen, (void *)key}, v = {vlen, (void *)val};
    int rc = mdb_put(t->txn, t->store->dbi[db], &k, &v, 0);
    if (rc == MDB_MAP_FULL)
        t->map_full = 1;
    return rc == 0 ? 0 : lmdb_err(err, "put", rc);
}

int ac_txn_del(ac_txn_t *t, int db, const void *key, size_t klen, ac_err_t *err)
{
    MDB_val k = {klen, (void *)key};
    int rc = mdb_del(t->txn, t->store->dbi[db], &k, NULL);
    if (rc == MDB_NOTFOUND)
        return 0;
    return rc == 0 ? 1 : lmdb_err(err, "del", rc);
}

static int has_prefix(const MDB_val *k, const void *prefix, size_t plen)
{
    return plen == 0 || (k->mv_size >= plen && memcmp(k->mv_data, prefix, plen) == 0);
}

/* Calls cb from the cursor's position (rc: the positioning result) while keys have the prefix,
 * stepping with `step`; closes the cursor. */
static int walk(MDB_cursor *c, int rc, MDB_val *k, MDB_val *v, MDB_cursor_op step, const void *prefix, size_t plen,
                ac_scan_fn cb, void *ud, ac_err_t *err)
{
    int ret = 0;
    while (rc == 0 && has_prefix(k, prefix, plen)) {
        int r = cb(k->mv_data, k->mv_size, v->mv_data, v->mv_size, ud, err);
        if (r != 0) {
            ret = r < 0 ? -1 : 0;
            break;
        }
        rc = mdb_cursor_get(c, k, v, step);
    }
    if (rc != 0 && rc != MDB_NOTFOUND && ret == 0)
        ret = lmdb_err(err, "scan", rc);
    mdb_cursor_close(c);
    return ret;
}

int ac_txn_scan(ac_txn_t *t, int db, const void *prefix, size_t plen, const void *start, size_t slen, ac_scan_fn cb,
                void *ud, ac_err_t *err)
{
    MDB_cursor *c;
    int rc = mdb_cursor_open(t->txn, t->store->dbi[db], &c);
    if (rc != 0)
        return lmdb_err(err, "cursor", rc);
    MDB_val k, v;
    if (start != NULL) {
        k.mv_data = (void *)start;
        k.mv_size = slen;
    } else {
        k.mv_data = (void *)prefix;
        k.mv_size = plen;
    }
    rc = k.mv_size > 0 ? mdb_cursor_get(c, &k, &v, MDB_SET_RANGE) : mdb_cursor_get(c, &k, &v, MDB_FIRST);
    return walk(c, rc, &k, &v, MDB_NEXT, prefix, plen, cb, ud, err);
}

int ac_txn_scan_rev(ac_txn_t *t, int db, const void *prefix, size_t plen, ac_scan_fn cb, void *ud, ac_err_t *err)
{
    MDB_cursor *c;
    int rc = mdb_cursor_open(t->txn, t->store->dbi[db], &c);
    if (rc != 0)
        return lmdb_err(err, "cursor", rc);
    MDB_val k, v;
    /* position after the last key with the prefix: the prefix followed by 0xff bytes */
    uint8_t upper[512];
    if (plen > 0 && plen + 8 <= sizeof upper) {
        memcpy(upper, prefix, plen);
        memset(upper + plen, 0xff, sizeof upper - plen);
        k.mv_data = upper;
        k.mv_size = 511;
        rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
        rc = rc == 0 ? mdb_cursor_get(c, &k, &v, MDB_PREV) : mdb_cursor_get(c, &k, &v, MDB_LAST);
    } else {
        rc = mdb_cursor_get(c, &k, &v, MDB_LAST);
    }
    return walk(c, rc, &k, &v, MDB_PREV, prefix, plen, cb, ud, err);
}

size_t ac_txn_count(ac_txn_t *t, int db)
{
    MDB_stat st;
    if (mdb_stat(t->txn, t->store->dbi[db], &st) != 0)
        return 0;
    return st.ms_entries;
}

int ac_txn_next_seq(ac_txn_t *t, const char *name, uint64_t *out, ac_err_t *err)
{
    const void *val = NULL;
    size_t vlen = 0;
    size_t klen = strlen(name);
    int found = ac_txn_get(t, AC_DB_META, name, klen, &val, &vlen, err);
    if (found < 0)
        return -1;
    uint64_t next = found && vlen == 8 ? ac_be64_get(val) + 1 : 1;
    uint8_t buf[8];
    ac_be64_put(buf, next);
    if (ac_txn_put(t, AC_DB_META, name, klen, buf, 8, err) != 0)
        return -1;
    *out = next;
    return 0;
}

void ac_store_stats(ac_store_t *s, ac_store_stats_t *out)
{
    MDB_envinfo info;
    MDB_stat st;
    mdb_env_info(s->env, &info);
    mdb_env_stat(s->env, &st);
    out->map_size = info.me_mapsize;
    out->used_bytes = (info.me_last_pgno + 1) * (size_t)st.ms_psize;
    out->grows = s->grows;
}
