/* Webhook records in the store: subscriptions by owner (one owner's never another's, even when
 * one name starts the other), replaced in place, deleted once; the outbox in arrival order, an
 * entry replaced and removed by its sequence number. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/hooks.h"

#include "check.h"

static int count_sub(json_t *sub, void *ud, ac_err_t *err)
{
    (void)err;
    json_array_append_new(ud, sub);
    return 0;
}

typedef struct outbox_seen {
    uint64_t seq[8];
    json_t *work[8];
    int n;
} outbox_seen_t;

static int see_work(uint64_t seq, json_t *work, void *ud, ac_err_t *err)
{
    (void)err;
    outbox_seen_t *o = ud;
    if (o->n == 8) {
        json_decref(work);
        return 1;
    }
    o->seq[o->n] = seq;
    o->work[o->n++] = work;
    return 0;
}

static json_t *sub(const char *id, const char *url)
{
    return json_pack("{s:s, s:s}", "subscription_id", id, "url", url);
}

#define ID1 "11111111-1111-4111-8111-111111111111"
#define ID2 "22222222-2222-4222-8222-222222222222"

static int subs_txn(ac_hooks_txn_t *t, void *ud, ac_err_t *err)
{
    (void)ud;
    json_t *a = sub(ID1, "https://a.example/1"), *b = sub(ID2, "https://a.example/2"), *c = sub(ID1, "https://c/");
    json_t *a2 = sub(ID1, "https://a.example/one");
    int rc = ac_subs_put(t, "bob", a, err) || ac_subs_put(t, "bob", b, err) || ac_subs_put(t, "bobby", c, err) ||
             ac_subs_put(t, "bob", a2, err);
    json_decref(a), json_decref(b), json_decref(c), json_decref(a2);
    return rc ? -1 : 0;
}

static int outbox_txn(ac_hooks_txn_t *t, void *ud, ac_err_t *err)
{
    (void)ud;
    json_t *w[3] = {json_pack("{s:i}", "n", 1), json_pack("{s:i}", "n", 2), json_pack("{s:i}", "n", 3)};
    int rc = 0;
    for (int i = 0; i < 3; i++) {
        rc |= ac_outbox_push(t, w[i], err);
        json_decref(w[i]);
    }
    return rc;
}

typedef struct probe {
    json_t *bob, *bobby, *got;
    int found, deleted, deleted_again;
    outbox_seen_t seen;
} probe_t;

static int read_txn(ac_hooks_txn_t *t, void *ud, ac_err_t *err)
{
    probe_t *p = ud;
    json_array_clear(p->bob);
    json_array_clear(p->bobby);
    json_decref(p->got);
    p->got = NULL;
    return ac_subs_each(t, "bob", count_sub, p->bob, err) || ac_subs_each(t, "bobby", count_sub, p->bobby, err) ||
                   (p->found = ac_subs_get(t, "bob", ID1, &p->got, err)) < 0
               ? -1
               : 0;
}

static int del_txn(ac_hooks_txn_t *t, void *ud, ac_err_t *err)
{
    probe_t *p = ud;
    p->deleted = ac_subs_del(t, "bob", ID2, err);
    p->deleted_again = ac_subs_del(t, "bob", ID2, err);
    return p->deleted < 0 || p->deleted_again < 0 ? -1 : 0;
}

static int scan_outbox_txn(ac_hooks_txn_t *t, void *ud, ac_err_t *err)
{
    probe_t *p = ud;
    for (int i = 0; i < p->seen.n; i++)
        json_decref(p->seen.work[i]);
    p->seen.n = 0;
    return ac_outbox_each(t, see_work, &p->seen, err);
}

static int rework_txn(ac_hooks_txn_t *t, void *ud, ac_err_t *err)
{
    probe_t *p = ud;
    json_t *again = json_pack("{s:i, s:i}", "n", 2, "attempt", 1);
    /* 1 each: with one process every entry is this process's to change */
    int rc = ac_outbox_put(t, p->seen.seq[1], again, err) == 1 && ac_outbox_del(t, p->seen.seq[0], err) == 1;
    json_decref(again);
    return rc ? 0 : -1;
}

int main(void)
{
    char dir[] = "/tmp/ac-test-hooks-XXXXXX";
    if (mkdtemp(dir) == NULL)
        return 1;
    ac_err_t err = AC_ERR_INIT;
    ac_store_t *s = ac_store_open(dir, &err);
    CHECK(s != NULL, "open a store");
    if (s == NULL)
        return check_done(__FILE__);
    ac_hooks_t *h = ac_hooks_open_lmdb(s, &err);
    CHECK(h != NULL, "open the webhook records of the store");
    if (h == NULL)
        return check_done(__FILE__);
    probe_t p = {json_array(), json_array(), NULL, 0, 0, 0, {{0}, {0}, 0}};
    CHECK(ac_hooks_write(h, subs_txn, NULL, &err) == 0 && ac_hooks_read(h, read_txn, &p, &err) == 0,
          "subscriptions written and read back");
    CHECK(json_array_size(p.bob) == 2 && json_array_size(p.bobby) == 1,
          "each owner sees its own subscriptions only (bob is not bobby)");
    CHECK(p.found == 1 && strcmp(json_string_value(json_object_get(p.got, "url")), "https://a.example/one") == 0,
          "a put with the same id replaces the subscription");
    CHECK(ac_hooks_write(h, del_txn, &p, &err) == 0 && p.deleted == 1 && p.deleted_again == 0 &&
              ac_hooks_read(h, read_txn, &p, &err) == 0 && json_array_size(p.bob) == 1,
          "a subscription is deleted once; the second delete finds nothing");
    CHECK(ac_hooks_write(h, outbox_txn, NULL, &err) == 0 && ac_hooks_read(h, scan_outbox_txn, &p, &err) == 0 &&
              p.seen.n == 3 && p.seen.seq[0] < p.seen.seq[1] && p.seen.seq[1] < p.seen.seq[2] &&
              json_integer_value(json_object_get(p.seen.work[2], "n")) == 3,
          "the outbox hands its entries out in arrival order");
    CHECK(ac_hooks_write(h, rework_txn, &p, &err) == 0 && ac_hooks_read(h, scan_outbox_txn, &p, &err) == 0 &&
              p.seen.n == 2 && json_integer_value(json_object_get(p.seen.work[0], "attempt")) == 1,
          "an entry is replaced in its place and another removed, by sequence number");
    for (int i = 0; i < p.seen.n; i++)
        json_decref(p.seen.work[i]);
    json_decref(p.bob);
    json_decref(p.bobby);
    json_decref(p.got);
    ac_err_clear(&err);
    ac_hooks_close(h);
    ac_store_close(s);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        return 1;
    return check_done(__FILE__);
}
