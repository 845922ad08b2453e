/* The cache of loaded policies (service/policies.h) over a real jobs store: which checkpoint a
 * call means (the best, else the latest; a given one), LRU eviction by count and by bytes, and
 * invalidation: a checkpoint the job's record no longer keeps (retention), or a job that is gone,
 * is dropped from the cache and never answers again. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/train_config.h"
#include "service/policies.h"
#include "store/jobs.h"
#include "store/store.h"
#include "check.h"

static ac_train_config_t cfg;
static const ac_actor_config_t small = {.kind = AC_ACTOR_BAG, .n_tools = 2, .n_args = {1, 0}, .max_tokens = 32,
                                        .seed = 1, .n_buckets = 64, .d_emb = 4, .hidden = 4};

/* A job holding one imported checkpoint (its id into ckpt). */
static int new_job(ac_jobs_t *j, char *job_id, char *ckpt)
{
    ac_err_t err = AC_ERR_INIT;
    ac_job_new_t nj = {"alice", "calculator", &cfg, NULL, NULL, NULL, 1000, -1, NULL};
    ac_job_t job;
    int rc = ac_jobs_import(j, &nj, (const uint8_t *)"blob", 4, 7, &job, &err);
    if (rc == 0) {
        memcpy(job_id, job.id, AC_UUID_LEN + 1);
        memcpy(ckpt, job.checkpoints[0].id, AC_UUID_LEN + 1);
        ac_job_free(&job);
    }
    ac_err_clear(&err);
    return rc;
}

/* Loads a small policy for ckpt into the cache and releases the use. */
static int load(ac_policies_t *c, const char *ckpt, const char *job)
{
    ac_err_t err = AC_ERR_INIT;
    ac_actor_t *a = ac_actor_create(&small, &err);
    ac_agent_decl_t d;
    memset(&d, 0, sizeof d);
    ac_policy_use_t use;
    int rc = a != NULL ? ac_policies_put(c, ckpt, job, a, &d, &use, &err) : -1;
    if (rc == 0)
        ac_policies_release(c, &use);
    ac_err_clear(&err);
    return rc;
}

/* Retention: the record keeps no checkpoint any more. */
static int forget_fn(ac_jobs_txn_t *t, ac_job_t *job, void *ud, ac_err_t *err)
{
    (void)ud;
    if (ac_jobs_txn_del_checkpoint(t, job->id, job->checkpoints[0].id, err) != 0)
        return -1;
    job->n_checkpoints = 0;
    job->best_checkpoint[0] = job->latest_checkpoint[0] = '\0';
    return 0;
}

static void test_cache(ac_jobs_t *j)
{
    ac_err_t err = AC_ERR_INIT;
    char job[3][AC_UUID_LEN + 1], ck[3][AC_UUID_LEN + 1];
    int made = 1;
    for (int i = 0; i < 3; i++)
        made &= new_job(j, job[i], ck[i]) == 0;
    CHECK(made, "three jobs, one imported checkpoint each");
    ac_policies_t *c = ac_policies_create(2, (size_t)1 << 30);
    ac_policy_target_t t;
    CHECK(ac_policies_target(c, j, job[0], NULL, &t, &err) == 1 && strcmp(t.checkpoint_id, ck[0]) == 0 &&
              strcmp(t.selected_by, "latest") == 0 && t.iteration == 7 && strcmp(t.owner, "alice") == 0,
          "a job's policy without a checkpoint_id: its latest when none has a validation score");
    CHECK(ac_policies_target(c, j, job[0], ck[1], &t, &err) == 1 && t.checkpoint_id[0] == '\0',
          "another job's checkpoint is none of this job's");
    CHECK(ac_policies_target(c, j, NULL, ck[0], &t, &err) == 0, "a checkpoint alone, not loaded: not known here");

    CHECK(load(c, ck[0], job[0]) == 0 && load(c, ck[1], job[1]) == 0, "two policies loaded");
    ac_policy_use_t use;
    CHECK(ac_policies_get(c, ck[0], &use, &err) == 1 && strcmp(use.job_id, job[0]) == 0 && use.actor != NULL,
          "a loaded policy is a hit (and the most recently used now)");
    ac_policies_release(c, &use);
    CHECK(ac_policies_target(c, j, NULL, ck[0], &t, &err) == 1 && strcmp(t.job_id, job[0]) == 0,
          "a loaded checkpoint alone names its job");
    CHECK(load(c, ck[2], job[2]) == 0, "a third one loaded");
    ac_policies_stats_t st;
    ac_policies_stats(c, &st);
    CHECK(st.entries == 2 && st.evictions == 1 && ac_policies_has(c, ck[0]) && !ac_policies_has(c, ck[1]) &&
              ac_policies_has(c, ck[2]),
          "past max_entries the least recently used goes (not the one used since)");

    CHECK(ac_jobs_update(j, job[0], forget_fn, NULL, NULL, &err) == 0, "retention deletes job 0's checkpoint");
    CHECK(ac_policies_target(c, j, job[0], ck[0], &t, &err) == 1 && t.checkpoint_id[0] == '\0' &&
              !ac_policies_has(c, ck[0]),
          "a checkpoint the record no longer keeps is dropped from the cache and not chosen");
    CHECK(ac_jobs_delete(j, job[2], &err) == 0, "job 2 deleted");
    CHECK(ac_policies_target(c, j, job[2], NULL, &t, &err) == 0 && !ac_policies_has(c, ck[2]),
          "a job that is gone drops its policies");
    ac_policies_stats(c, &st);
    CHECK(st.entries == 0 && st.invalidations == 2 && st.hits == 1, "both counted as invalidations");
    ac_policies_destroy(c);

    /* by bytes: each small policy is 4 bytes a parameter plus 64 KiB of workspace */
    c = ac_policies_create(100, 100 * 1024);
    CHECK(load(c, ck[1], job[1]) == 0 && load(c, ck[0], job[0]) == 0, "two policies under a 100 KiB bound");
    ac_policies_stats(c, &st);
    CHECK(st.entries == 1 && ac_policies_has(c, ck[0]) && !ac_policies_has(c, ck[1]) && st.evictions == 1,
          "past max_bytes (the master and its pooled clones count) the older goes; the one added stays");
    ac_policies_destroy(c);
    ac_err_clear(&err);
}

int main(void)
{
    char dir[] = "/tmp/ac-test-policies-XXXXXX";
    if (mkdtemp(dir) == NULL)
        return 1;
    ac_train_config_defaults(&cfg);
    ac_err_t err = AC_ERR_INIT;
    ac_store_t *s = ac_store_open(dir, &err);
    ac_jobs_t *j = s ? ac_jobs_open_lmdb(s, &err) : NULL;
    CHECK(j != NULL, "open a store and its jobs");
    if (j != NULL)
        test_cache(j);
    ac_jobs_close(j);
    ac_store_close(s);
    ac_err_clear(&err);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        return 1;
    return check_done(__FILE__);
}
