/* The cache of loaded policies (policies.h). One mutex guards the table, the pools and the job
 * memos; loading, cloning and freeing actors happen outside it. */
#include "service/policies.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define POOL_MAX 8      /* idle actors kept per policy: the event-loop threads and RPC workers */
#define JOB_SLOTS 1024  /* job memos, direct-mapped by the job id's hash */
#define ACTOR_OVERHEAD (64 * 1024) /* workspace and scratch of one actor beside its parameters */

typedef struct policy_slot {
    ac_actor_t *actor;
    ac_infer_scratch_t scratch;
    struct policy_slot *next;
} policy_slot_t;

typedef struct policy_entry {
    char ckpt[AC_UUID_LEN + 1], job[AC_UUID_LEN + 1];
    ac_actor_t *master; /* read-only: what the uses' actors are cloned from */
    ac_agent_decl_t decl;
    policy_slot_t *idle;
    int n_idle;
    int refs;     /* uses out, plus one while in the table */
    int in_table;
    uint64_t used;
    size_t per_actor; /* bytes of one actor of this policy */
    int actors;       /* the master and every clone alive */
} policy_entry_t;

/* What a job's record said at revision rev: enough to pick a checkpoint without reading it. */
typedef struct job_memo {
    char job[AC_UUID_LEN + 1];
    uint64_t rev;
    char owner[401];
    char best[AC_UUID_LEN + 1];
    const char *best_by; /* "validation" or "latest" */
    int64_t best_iteration;
    int n_kept;
    ac_job_checkpoint_t *kept;
} job_memo_t;

struct ac_policies {
    pthread_mutex_t lock;
    policy_entry_t **e;
    int n, cap;
    int max_entries;
    size_t max_bytes, bytes;
    uint64_t tick;
    job_memo_t memo[JOB_SLOTS];
    ac_policies_stats_t st;
};

ac_policies_t *ac_policies_create(int max_entries, size_t max_bytes)
{
    ac_policies_t *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    pthread_mutex_init(&c->lock, NULL);
    c->max_entries = max_entries > 0 ? max_entries : 1;
    c->max_bytes = max_bytes;
    return c;
}

static void slot_free(policy_slot_t *s)
{
    if (s == NULL)
        return;
    ac_actor_destroy(s->actor);
    ac_infer_scratch_free(&s->scratch);
    free(s);
}

static void entry_free(policy_entry_t *e)
{
    while (e->idle != NULL) {
        policy_slot_t *s = e->idle;
        e->idle = s->next;
        slot_free(s);
    }
    ac_actor_destroy(e->master);
    ac_agent_decl_free(&e->decl);
    free(e);
}

void ac_policies_destroy(ac_policies_t *c)
{
    if (c == NULL)
        return;
    ac_policies_clear(c);
    for (int i = 0; i < JOB_SLOTS; i++)
        free(c->memo[i].kept);
    free(c->e);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

static int find(const ac_policies_t *c, const char *ckpt)
{
    for (int i = 0; i < c->n; i++)
        if (strcmp(c->e[i]->ckpt, ckpt) == 0)
            return i;
    return -1;
}

/* Takes entry i out of the table (lock held). Returns it when nothing uses it any more: the caller
 * frees it after unlocking. */
static policy_entry_t *unlink_entry(ac_policies_t *c, int i)
{
    policy_entry_t *e = c->e[i];
    c->e[i] = c->e[--c->n];
    e->in_table = 0;
    c->bytes -= e->per_actor * (size_t)e->actors;
    return --e->refs == 0 ? e : NULL;
}

/* Takes entries out beyond the bounds, least recently used first, never `keep` (lock held). The
 * ones nothing uses any more go to out (at most cap) for the caller to free after unlocking. */
static int evict(ac_policies_t *c, const policy_entry_t *keep, policy_entry_t **out, int cap)
{
    int n = 0;
    while ((c->n > c->max_entries || c->bytes > c->max_bytes) && c->n > 1 && n < cap) {
        int lru = -1;
        for (int i = 0; i < c->n; i++)
            if (c->e[i] != keep && (lru < 0 || c->e[i]->used < c->e[lru]->used))
                lru = i;
        if (lru < 0)
            break;
        c->st.evictions++;
        policy_entry_t *dead = unlink_entry(c, lru);
        if (dead != NULL)
            out[n++] = dead;
    }
    return n;
}

/* A use of entry e, which the caller has counted in e->refs: an idle actor, or a new clone. */
static int take(ac_policies_t *c, policy_entry_t *e, ac_policy_use_t *use, ac_err_t *err)
{
    pthread_mutex_lock(&c->lock);
    policy_slot_t *s = e->idle;
    if (s != NULL) {
        e->idle = s->next;
        e->n_idle--;
    }
    pthread_mutex_unlock(&c->lock);
    if (s == NULL) {
        /* the master is read-only: cloning it needs no lock */
        if ((s = calloc(1, sizeof *s)) == NULL || (s->actor = ac_actor_clone(e->master, err)) == NULL ||
            ac_infer_scratch_init(&s->scratch, ac_actor_config(e->master)->max_tokens, err) != 0) {
            slot_free(s);
            pthread_mutex_lock(&c->lock);
            int last = --e->refs == 0;
            pthread_mutex_unlock(&c->lock);
            if (last)
                entry_free(e);
            return err->code ? -1 : ac_err_set(err, AC_ERR_INTERNAL, "policies: out of memory");
        }
        pthread_mutex_lock(&c->lock);
        e->actors++;
        if (e->in_table)
            c->bytes += e->per_actor;
        pthread_mutex_unlock(&c->lock);
    }
    use->actor = s->actor;
    use->scratch = &s->scratch;
    use->decl = &e->decl;
    memcpy(use->checkpoint_id, e->ckpt, sizeof use->checkpoint_id);
    memcpy(use->job_id, e->job, sizeof use->job_id);
    use->_entry = e;
    use->_slot = s;
    return 0;
}

int ac_policies_get(ac_policies_t *c, const char *ckpt, ac_policy_use_t *use, ac_err_t *err)
{
    memset(use, 0, sizeof *use);
    pthread_mutex_lock(&c->lock);
    int i = find(c, ckpt);
    policy_entry_t *e = i >= 0 ? c->e[i] : NULL;
    if (e != NULL) {
        e->refs++;
        e->used = ++c->tick;
        c->st.hits++;
    } else {
        c->st.misses++;
    }
    pthread_mutex_unlock(&c->lock);
    if (e == NULL)
        return 0;
    return take(c, e, use, err) == 0 ? 1 : -1;
}

int ac_policies_has(ac_policies_t *c, const char *ckpt)
{
    pthread_mutex_lock(&c->lock);
    int i = find(c, ckpt);
    pthread_mutex_unlock(&c->lock);
    return i >= 0;
}

int ac_policies_put(ac_policies_t *c, const char *ckpt, const char *job, ac_actor_t *actor, ac_agent_decl_t *decl,
                    ac_policy_use_t *use, ac_err_t *err)
{
    memset(use, 0, sizeof *use);
    policy_entry_t *e = calloc(1, sizeof *e);
    if (e == NULL) {
        ac_actor_destroy(actor);
        ac_agent_decl_free(decl);
        return ac_err_set(err, AC_ERR_INTERNAL, "policies: out of memory");
    }
    snprintf(e->ckpt, sizeof e->ckpt, "%s", ckpt);
    snprintf(e->job, sizeof e->job, "%s", job);
    e->master = actor;
    e->decl = *decl;
    memset(decl, 0, sizeof *decl);
    e->per_actor = sizeof(float) * ac_actor_n_params(actor) + ACTOR_OVERHEAD;
    e->actors = 1;
    policy_entry_t *dead[16], *use_e = NULL;
    int n_dead = 0;
    pthread_mutex_lock(&c->lock);
    int i = find(c, ckpt);
    if (i >= 0) { /* loaded by another thread meanwhile: that one serves */
        use_e = c->e[i];
        use_e->refs++;
        use_e->used = ++c->tick;
    } else {
        if (c->n == c->cap) {
            int cap = c->cap ? c->cap * 2 : 16;
            policy_entry_t **ne = realloc(c->e, sizeof *ne * (size_t)cap);
            if (ne != NULL) {
                c->e = ne;
                c->cap = cap;
            }
        }
        if (c->n < c->cap) {
            e->in_table = 1;
            e->refs = 2; /* the table's and this use's */
            e->used = ++c->tick;
            c->e[c->n++] = e;
            c->bytes += e->per_actor;
            c->st.loads++;
            n_dead = evict(c, e, dead, 16);
            use_e = e;
            e = NULL;
        }
    }
    pthread_mutex_unlock(&c->lock);
    for (int k = 0; k < n_dead; k++)
        entry_free(dead[k]);
    if (e != NULL)
        entry_free(e);
    if (use_e == NULL)
        return ac_err_set(err, AC_ERR_INTERNAL, "policies: out of memory");
    return take(c, use_e, use, err);
}

void ac_policies_release(ac_policies_t *c, ac_policy_use_t *use)
{
    policy_entry_t *e = use->_entry;
    if (e == NULL)
        return;
    policy_slot_t *s = use->_slot, *drop = NULL;
    policy_entry_t *dead = NULL;
    pthread_mutex_lock(&c->lock);
    if (e->in_table && e->n_idle < POOL_MAX) {
        s->next = e->idle;
        e->idle = s;
        e->n_idle++;
    } else {
        drop = s;
        e->actors--;
        if (e->in_table)
            c->bytes -= e->per_actor;
    }
    if (--e->refs == 0)
        dead = e;
    pthread_mutex_unlock(&c->lock);
    slot_free(drop);
    if (dead != NULL)
        entry_free(dead);
    memset(use, 0, sizeof *use);
}

void ac_policies_clear(ac_policies_t *c)
{
    for (;;) {
        pthread_mutex_lock(&c->lock);
        policy_entry_t *dead = c->n > 0 ? unlink_entry(c, c->n - 1) : NULL;
        int left = c->n;
        pthread_mutex_unlock(&c->lock);
        if (dead != NULL)
            entry_free(dead);
        if (left == 0)
            break;
    }
}

void ac_policies_stats(ac_policies_t *c, ac_policies_stats_t *out)
{
    pthread_mutex_lock(&c->lock);
    *out = c->st;
    out->entries = c->n;
    out->bytes = c->bytes;
    pthread_mutex_unlock(&c->lock);
}

/* ---- targets ------------------------------------------------------------------------------------- */

static size_t memo_slot(const char *job)
{
    uint64_t h = 1469598103934665603ULL;
    for (const char *p = job; *p; p++)
        h = (h ^ (uint8_t)*p) * 1099511628211ULL;
    return (size_t)(h % JOB_SLOTS);
}

/* Drops the loaded policies of job whose checkpoint the memo no longer keeps (m NULL: all of
 * them). Lock held; the freed entries go to out. */
static int invalidate(ac_policies_t *c, const char *job, const job_memo_t *m, policy_entry_t **out, int cap)
{
    int n = 0;
    for (int i = 0; i < c->n && n < cap;) {
        int kept = 0;
        if (strcmp(c->e[i]->job, job) != 0) {
            i++;
            continue;
        }
        for (int k = 0; m != NULL && k < m->n_kept && !kept; k++)
            kept = strcmp(m->kept[k].id, c->e[i]->ckpt) == 0;
        if (kept) {
            i++;
            continue;
        }
        c->st.invalidations++;
        policy_entry_t *dead = unlink_entry(c, i); /* moves the last entry to i */
        if (dead != NULL)
            out[n++] = dead;
    }
    return n;
}

/* The memo of a job record (lock held). */
static int memo_set(job_memo_t *m, const ac_job_t *job, uint64_t rev)
{
    ac_job_checkpoint_t *kept = NULL;
    if (job->n_checkpoints > 0 && (kept = malloc(sizeof *kept * job->n_checkpoints)) == NULL)
        return -1;
    free(m->kept);
    memcpy(m->job, job->id, sizeof m->job);
    m->rev = rev;
    snprintf(m->owner, sizeof m->owner, "%s", job->owner ? job->owner : "");
    if (kept != NULL)
        memcpy(kept, job->checkpoints, sizeof *kept * job->n_checkpoints);
    m->kept = kept;
    m->n_kept = (int)job->n_checkpoints;
    /* the one training.evaluate picks: the best by validation, else the latest */
    const ac_job_checkpoint_t *b = ac_job_checkpoint_find(job, job->best_checkpoint);
    m->best_by = b != NULL && !isnan(b->validation_accuracy) ? "validation" : "latest";
    if (b == NULL || isnan(b->validation_accuracy))
        b = ac_job_checkpoint_find(job, job->latest_checkpoint);
    snprintf(m->best, sizeof m->best, "%s", b ? b->id : "");
    m->best_iteration = b ? b->iteration : 0;
    return 0;
}

int ac_policies_target(ac_policies_t *c, ac_jobs_t *jobs, const char *job_id, const char *ckpt,
                       ac_policy_target_t *t, ac_err_t *err)
{
    memset(t, 0, sizeof *t);
    char job[AC_UUID_LEN + 1];
    if (job_id == NULL) {
        pthread_mutex_lock(&c->lock);
        int i = ckpt ? find(c, ckpt) : -1;
        if (i >= 0)
            memcpy(job, c->e[i]->job, sizeof job);
        pthread_mutex_unlock(&c->lock);
        if (i < 0)
            return 0;
    } else {
        snprintf(job, sizeof job, "%s", job_id);
    }
    job_memo_t *m = &c->memo[memo_slot(job)];
    for (int attempt = 0; attempt < 3; attempt++) {
        pthread_mutex_lock(&c->lock);
        /* a revision no record has when the memo is another job's: the record is read */
        uint64_t known_rev = strcmp(m->job, job) == 0 ? m->rev : UINT64_MAX;
        pthread_mutex_unlock(&c->lock);
        ac_job_t rec;
        ac_job_init(&rec);
        uint64_t rev = 0;
        int rc = ac_jobs_get_if_changed(jobs, job, known_rev, &rev, &rec, err);
        if (rc < 0)
            return -1;
        policy_entry_t *dead[16];
        int n_dead = 0, ok = 1;
        pthread_mutex_lock(&c->lock);
        if (rc == 0) { /* the job is gone: so are its policies */
            if (strcmp(m->job, job) == 0)
                m->job[0] = '\0';
            n_dead = invalidate(c, job, NULL, dead, 16);
        } else if (rc == 1) {
            ok = memo_set(m, &rec, rev) == 0;
            if (ok)
                n_dead = invalidate(c, job, m, dead, 16);
        }
        int found = 0, again = 0;
        if (rc != 0 && ok) {
            if (strcmp(m->job, job) != 0) { /* another job took the memo slot meanwhile */
                again = 1;
            } else {
                const char *pick = NULL;
                for (int k = 0; ckpt != NULL && k < m->n_kept && pick == NULL; k++)
                    if (strcmp(m->kept[k].id, ckpt) == 0) {
                        pick = m->kept[k].id;
                        t->iteration = m->kept[k].iteration;
                    }
                if (ckpt == NULL && m->best[0] != '\0') {
                    pick = m->best;
                    t->iteration = m->best_iteration;
                }
                found = 1;
                memcpy(t->job_id, job, sizeof t->job_id);
                memcpy(t->owner, m->owner, sizeof t->owner);
                if (pick != NULL) {
                    memcpy(t->checkpoint_id, pick, sizeof t->checkpoint_id);
                    t->selected_by = ckpt != NULL ? "given" : m->best_by;
                }
            }
        }
        pthread_mutex_unlock(&c->lock);
        ac_job_free(&rec);
        for (int k = 0; k < n_dead; k++)
            entry_free(dead[k]);
        if (!ok)
            return ac_err_set(err, AC_ERR_INTERNAL, "policies: out of memory");
        if (!again)
            return found;
    }
    return ac_err_set(err, AC_ERR_INTERNAL, "policies: the job memo kept changing");
}
