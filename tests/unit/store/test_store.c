/* The LMDB store: records survive reopening, scans keep key order, the map grows when full
 * instead of failing, and a write callback that fails leaves nothing behind. One process per
 * data directory. A commit that fails is an error value with its cause and makes the store
 * degraded until a probe succeeds; nothing committed before is lost. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/fault.h"
#include "store/store.h"

#include "check.h"

typedef struct fill {
    int from, n;
    size_t vsize;
} fill_t;

static int fill_txn(ac_txn_t *t, void *ud, ac_err_t *err)
{
    fill_t *f = ud;
    char *val = malloc(f->vsize);
    memset(val, 'v', f->vsize);
    for (int i = f->from; i < f->from + f->n; i++) {
        uint8_t key[8];
        ac_be64_put(key, (uint64_t)i);
        snprintf(val, f->vsize, "value-%d", i);
        if (ac_txn_put(t, AC_DB_TRAJECTORIES, key, 8, val, f->vsize, err) != 0) {
            free(val);
            return -1;
        }
    }
    free(val);
    return 0;
}

static int fail_txn(ac_txn_t *t, void *ud, ac_err_t *err)
{
    (void)ud;
    ac_txn_put(t, AC_DB_JOBS, "ghost", 5, "x", 1, err);
    return ac_err_set(err, AC_ERR_INTERNAL, "deliberate");
}

typedef struct scan_state {
    int n;
    uint64_t last;
    int ordered;
} scan_state_t;

static int scan_cb(const void *key, size_t klen, const void *val, size_t vlen, void *ud, ac_err_t *err)
{
    (void)val, (void)vlen, (void)err;
    scan_state_t *s = ud;
    uint64_t k = klen == 8 ? ac_be64_get(key) : 0;
    if (s->n > 0 && k <= s->last)
        s->ordered = 0;
    s->last = k;
    s->n++;
    return 0;
}

typedef struct check {
    int key;
    char val[32];
    int found;
    size_t count;
    scan_state_t scan;
} check_t;

static int read_txn(ac_txn_t *t, void *ud, ac_err_t *err)
{
    check_t *c = ud;
    uint8_t key[8];
    ac_be64_put(key, (uint64_t)c->key);
    const void *v;
    size_t vl;
    c->found = ac_txn_get(t, AC_DB_TRAJECTORIES, key, 8, &v, &vl, err);
    if (c->found == 1)
        snprintf(c->val, sizeof c->val, "%s", (const char *)v);
    c->count = ac_txn_count(t, AC_DB_TRAJECTORIES);
    c->scan = (scan_state_t){0, 0, 1};
    const void *gv;
    size_t gl;
    if (ac_txn_get(t, AC_DB_JOBS, "ghost", 5, &gv, &gl, err) != 0)
        c->found = -2; /* the failed transaction left a record */
    return ac_txn_scan(t, AC_DB_TRAJECTORIES, NULL, 0, NULL, 0, scan_cb, &c->scan, err);
}

static int put_one_txn(ac_txn_t *t, void *ud, ac_err_t *err)
{
    const char *key = ud;
    return ac_txn_put(t, AC_DB_META, key, strlen(key), "1", 1, err);
}

typedef struct has_ctx {
    const char *key;
    int found;
} has_ctx_t;

static int has_txn(ac_txn_t *t, void *ud, ac_err_t *err)
{
    has_ctx_t *h = ud;
    const void *v;
    size_t vl;
    h->found = ac_txn_get(t, AC_DB_META, h->key, strlen(h->key), &v, &vl, err);
    return h->found < 0 ? -1 : 0;
}

static int has(ac_store_t *s, const char *key)
{
    has_ctx_t h = {key, -1};
    ac_err_t err = AC_ERR_INIT;
    ac_store_read(s, has_txn, &h, &err);
    ac_err_clear(&err);
    return h.found;
}

static off_t file_size(const char *dir, const char *name)
{
    char path[512];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return stat(path, &st) == 0 ? st.st_size : -1;
}

/* One process per data directory, and the health of the write path. */
static void test_lock_and_health(const char *dir)
{
    ac_err_t err = AC_ERR_INIT;
    ac_store_t *s = ac_store_open(dir, &err);
    CHECK(s != NULL, "open for the lock and health checks");
    if (s == NULL)
        return;
    /* flock belongs to the open file: a second open in the same process conflicts as another
     * process's would */
    ac_store_t *again = ac_store_open(dir, &err);
    char want[300];
    snprintf(want, sizeof want, "data directory %s is in use by another agentcore (pid %ld)", dir, (long)getpid());
    CHECK(again == NULL && strcmp(err.message, want) == 0, "a second open of the directory fails and names the holder");
    ac_err_clear(&err);

    CHECK(ac_store_degraded(s, NULL, 0) == 0, "a new store is healthy");
    CHECK(ac_store_probe(s, &err) == 0 && file_size(dir, "agentcore.reserve") == (off_t)AC_STORE_RESERVE_BYTES,
          "the probe keeps the reserve file");
    CHECK(ac_store_write(s, put_one_txn, "before", &err) == 0, "a write before the fault");
    CHECK(ac_store_write(s, fail_txn, NULL, &err) == -1 && !ac_store_is_write_fault(&err) &&
              ac_store_degraded(s, NULL, 0) == 0,
          "a callback's own error is not a write fault and leaves the store healthy");
    ac_err_clear(&err);

    ac_fault_set("store.commit");
    int rc = ac_store_write(s, put_one_txn, "lost", &err);
    const char *field = json_string_value(json_object_get(err.data, "field"));
    const char *why = json_string_value(json_object_get(err.data, "error"));
    CHECK(rc == -1 && err.code == AC_ERR_INTERNAL && ac_store_is_write_fault(&err), "a failed commit is an error value");
    CHECK(strstr(err.message, "store: cannot write: No space left on device") == err.message,
          "its message says the store cannot write and why");
    CHECK(field != NULL && strcmp(field, "store") == 0 && why != NULL && strncmp(why, "cannot write: ", 14) == 0,
          "its data is {field: store, error: the cause}");
    ac_err_clear(&err);
    char cause[256] = "";
    CHECK(ac_store_degraded(s, cause, sizeof cause) == 1 && strstr(cause, "No space left on device") != NULL,
          "the store is degraded with the cause");
    CHECK(has(s, "lost") == 0 && has(s, "before") == 1, "nothing of the failed commit is kept, the earlier one is");
    CHECK(ac_store_probe(s, &err) == -1 && ac_store_is_write_fault(&err) && ac_store_degraded(s, NULL, 0) == 1,
          "a probe while the fault lasts fails and the store stays degraded");
    ac_err_clear(&err);
    CHECK(ac_store_write_reserved(s, put_one_txn, "reserved", &err) == -1 && file_size(dir, "agentcore.reserve") == -1,
          "a reserved write that cannot commit releases the reserve");
    ac_err_clear(&err);

    ac_fault_set(NULL);
    CHECK(ac_store_write(s, put_one_txn, "small", &err) == 0 && ac_store_degraded(s, NULL, 0) == 1,
          "a commit that succeeds does not by itself clear the degraded state");
    CHECK(ac_store_probe(s, &err) == 0 && ac_store_degraded(s, NULL, 0) == 0, "when writes work again the probe clears it");
    CHECK(file_size(dir, "agentcore.reserve") == (off_t)AC_STORE_RESERVE_BYTES && file_size(dir, "agentcore.probe") == -1,
          "the probe made the reserve again and left no scratch file");
    ac_store_close(s);

    s = ac_store_open(dir, &err);
    CHECK(s != NULL, "after close the directory opens again");
    CHECK(s != NULL && has(s, "before") == 1 && has(s, "small") == 1 && has(s, "lost") == 0,
          "after reopening: the commits before and after the fault are there, the failed one is not");
    ac_store_close(s);
    ac_err_clear(&err);
}

int main(void)
{
    char dir[] = "/tmp/ac-test-store-XXXXXX";
    if (mkdtemp(dir) == NULL)
        return 1;
    ac_err_t err = AC_ERR_INIT;
    /* a 1 MiB map: 3000 records of 1 KiB need several doublings */
    ac_store_t *s = ac_store_open_sized(dir, (size_t)1 << 20, &err);
    CHECK(s != NULL, "open a store with a 1 MiB map");
    int ok = 1;
    for (int i = 0; i < 3 && ok; i++) {
        fill_t f = {i * 1000, 1000, 1024};
        ok = ac_store_write(s, fill_txn, &f, &err) == 0;
    }
    CHECK(ok, "3 MB of writes into a 1 MiB map succeed");
    ac_store_stats_t st;
    ac_store_stats(s, &st);
    CHECK(st.grows >= 2 && st.map_size >= ((size_t)4 << 20), "the map grew instead of failing");
    CHECK(ac_store_write(s, fail_txn, NULL, &err) == -1 && strcmp(err.message, "deliberate") == 0,
          "a failing write callback reports its error");
    ac_err_clear(&err);
    ac_store_close(s);

    s = ac_store_open(dir, &err);
    CHECK(s != NULL, "reopen");
    check_t c = {.key = 2345};
    CHECK(ac_store_read(s, read_txn, &c, &err) == 0, "read after reopen");
    CHECK(c.found == 1 && strcmp(c.val, "value-2345") == 0, "a record survives reopening");
    CHECK(c.count == 3000, "all 3000 records are there");
    CHECK(c.scan.n == 3000 && c.scan.ordered, "a scan visits every record in key order");
    c.key = 999999;
    ac_store_read(s, read_txn, &c, &err);
    CHECK(c.found == 0, "a missing key is not found (not an error)");
    ac_store_close(s);
    ac_store_close(NULL);

    test_lock_and_health(dir);

    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        return 1;
    return check_done(__FILE__);
}
