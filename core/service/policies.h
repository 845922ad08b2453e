/* The trained policies agents.act and agents.run answer with: checkpoints loaded into memory,
 * each with the agent declarations it is used with, kept in a bounded cache (least recently used
 * out first, by count and by bytes), and per job which checkpoint a call on it means.
 *
 * A loaded policy is read-only; each use gets an actor of its own (a clone, pooled per policy), so
 * that event-loop threads and RPC workers use one policy at once. Every use is checked against
 * the job's record first (its revision, one cheap store read): a checkpoint that retention
 * deleted, or a job that is gone, is dropped from the cache and never answers again.
 *
 * Thread-safe. */
#ifndef AC_POLICIES_H
#define AC_POLICIES_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "base/uuid.h"
#include "engine/actor.h"
#include "engine/infer.h"
#include "store/jobs.h"

typedef struct ac_policies ac_policies_t;

/* max_entries policies, max_bytes of parameters at most (the one being added may pass it: the
 * others go first). NULL when out of memory. */
ac_policies_t *ac_policies_create(int max_entries, size_t max_bytes);
/* NULL is a no-op. No use may be out. */
void ac_policies_destroy(ac_policies_t *c);

/* One caller's use of a loaded policy, until ac_policies_release. */
typedef struct ac_policy_use {
    ac_actor_t *actor;              /* the caller's alone */
    ac_infer_scratch_t *scratch;    /* the caller's alone */
    const ac_agent_decl_t *decl;    /* shared, read-only */
    char checkpoint_id[AC_UUID_LEN + 1];
    char job_id[AC_UUID_LEN + 1];
    struct policy_entry *_entry;
    struct policy_slot *_slot;
} ac_policy_use_t;

/* 1 with *use when the checkpoint is loaded, 0 when it is not, -1 when out of memory. */
int ac_policies_get(ac_policies_t *c, const char *checkpoint_id, ac_policy_use_t *use, ac_err_t *err);
/* 1 when the checkpoint is loaded (no use taken). */
int ac_policies_has(ac_policies_t *c, const char *checkpoint_id);
/* Adds a policy loaded from checkpoint_id of job_id (actor and *decl are taken, even on failure;
 * *decl is zeroed) and returns a use of it, evicting the least recently used ones beyond the
 * bounds. When another thread added the same checkpoint meanwhile, that one is used and these
 * are freed. 0, or -1 when out of memory. */
int ac_policies_put(ac_policies_t *c, const char *checkpoint_id, const char *job_id, ac_actor_t *actor,
                    ac_agent_decl_t *decl, ac_policy_use_t *use, ac_err_t *err);
void ac_policies_release(ac_policies_t *c, ac_policy_use_t *use);

/* Which checkpoint a call means, checked against the job's record. */
typedef struct ac_policy_target {
    char job_id[AC_UUID_LEN + 1];
    char checkpoint_id[AC_UUID_LEN + 1];
    char owner[401];         /* the job's owner (jobs.c allows 400 bytes) */
    const char *selected_by; /* "given", "validation" (the best one) or "latest" */
    int64_t iteration;       /* the checkpoint's */
} ac_policy_target_t;

/* The checkpoint of job_id that checkpoint_id names (NULL: the job's best by validation, else its
 * latest). job_id NULL: the job of a loaded checkpoint_id. Returns 1 with *t when the job exists
 * (t->checkpoint_id "" when it keeps no such checkpoint, or none yet: retention deleted it, and
 * the cache dropped it), 0 when the job is not known (gone: the cache drops its policies; or
 * job_id NULL and checkpoint_id not loaded: the caller must find its job and ask again with it),
 * -1 on a store failure. Tenancy is the caller's to check (t->owner). */
int ac_policies_target(ac_policies_t *c, ac_jobs_t *jobs, const char *job_id, const char *checkpoint_id,
                       ac_policy_target_t *t, ac_err_t *err);

/* Drops every loaded policy (tests, shutdown). */
void ac_policies_clear(ac_policies_t *c);

/* Counters for GET /metrics and tests. */
typedef struct ac_policies_stats {
    uint64_t hits, misses, loads, evictions, invalidations;
    int entries;
    size_t bytes;
} ac_policies_stats_t;
void ac_policies_stats(ac_policies_t *c, ac_policies_stats_t *out);

#endif
