/* The GRPO trainer through real Lua plugins: it learns a task that needs reading the query, its
 * metrics add up, a checkpoint restored and continued equals never stopping, and a spent budget,
 * a stop request or failing plugins change what they should and nothing else. */
#include <math.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "check.h"
#include "engine/trainer.h"
#include "lua/lua_host.h"
#include "lua/plugin.h"

static char tmp_dir[64];

static void write_file(const char *rel, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", tmp_dir, rel);
    FILE *f = fopen(path, "w");
    if (f == NULL || fputs(text, f) < 0) {
        perror(path);
        exit(2);
    }
    fclose(f);
}

/* One decision per episode: the query says which way; a wrong way is a wrong answer. Steps
 * cost 0.001 USD. On "boom" init fails (a failed episode); on "crash" step fails (a failed tool
 * call, which ends the episode and is recorded). */
static const char *AGENT =
    "local a = { name = 'way', version = '1', max_steps = 2,\n"
    "  tools = { { name = 'left', cost_usd = 0.001 }, { name = 'right', cost_usd = 0.001 },\n"
    "            { name = 'up', cost_usd = 0.001 } } }\n"
    "function a.init(q)\n"
    "  if q:find('boom', 1, true) then error('way: boom') end\n"
    "  return { q = q }\n"
    "end\n"
    "function a.step(s, tool)\n"
    "  if s.q:find('crash', 1, true) then error('way: crash') end\n"
    "  s.tool = tool\n"
    "  return { went = tool }, true\n"
    "end\n"
    "function a.final(s) return { tool = s.tool } end\n"
    "return a\n";

static const char *REWARD =
    "return { name = 'way', version = '1', range = { 0, 1 }, success_threshold = 1,\n"
    "  score = function(t, want)\n"
    "    if want.same then return 0.5, { success = false } end\n"
    "    local ok = t.final.tool == want.tool\n"
    "    return ok and 1 or 0, { success = ok }\n"
    "  end }\n";

static json_t *queries(const char *const *text, const char *const *tool, int n)
{
    json_t *a = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(a, json_pack("{s:s, s:{s:s}}", "query", text[i], "expected_outcome", "tool", tool[i]));
    return a;
}

typedef struct fixture {
    ac_lua_host_t *host;
    ac_agent_t *agent;
    ac_reward_t *reward;
    ac_train_config_t cfg;
} fixture_t;

static int fixture_open(fixture_t *f, int kind)
{
    ac_err_t err = AC_ERR_INIT;
    char lua_dir[1100];
    const char *src = getenv("AC_SOURCE_DIR");
    snprintf(lua_dir, sizeof lua_dir, "%s/lua", src && *src ? src : AC_SOURCE_DIR);
    memset(f, 0, sizeof *f);
    f->host = ac_lua_host_create(lua_dir, tmp_dir, NULL, &err);
    f->agent = f->host ? ac_agent_open(f->host, "way", &err) : NULL;
    f->reward = f->agent ? ac_reward_open(f->host, "way", &err) : NULL;
    if (f->reward == NULL) {
        fprintf(stderr, "  (fixture: %s)\n", err.message);
        ac_err_clear(&err);
        return -1;
    }
    ac_train_config_defaults(&f->cfg);
    f->cfg.batch_size = 6;
    f->cfg.n_trajectories_per_query = 8;
    f->cfg.policy_kind = kind;
    if (kind == AC_POLICY_KIND_SEQUENCE) {
        f->cfg.d_model = 16, f->cfg.n_heads = 2, f->cfg.n_layers = 1, f->cfg.d_ff = 32, f->cfg.max_tokens = 64;
    }
    ac_train_config_resolve(&f->cfg);
    return 0;
}

static void fixture_close(fixture_t *f)
{
    ac_reward_close(f->reward);
    ac_agent_close(f->agent);
    ac_lua_host_destroy(f->host);
}

static ac_trainer_t *trainer(fixture_t *f, uint64_t seed)
{
    ac_err_t err = AC_ERR_INIT;
    ac_trainer_t *t = ac_trainer_create(&f->cfg, f->agent, f->reward, seed, 250, &err);
    if (t == NULL)
        fprintf(stderr, "  (trainer: %s)\n", err.message);
    ac_err_clear(&err);
    return t;
}

static int iterate(ac_trainer_t *t, const json_t *data, int64_t budget, ac_iter_metrics_t *m)
{
    ac_err_t err = AC_ERR_INIT;
    int rc = ac_trainer_iterate(t, data, budget, m, &err);
    if (rc != 0)
        fprintf(stderr, "  (iterate: %s)\n", err.message);
    ac_err_clear(&err);
    return rc;
}

/* The trainer's whole state as its checkpoint bytes (the caller frees). */
static uint8_t *saved(const ac_trainer_t *t, size_t *len)
{
    ac_err_t err = AC_ERR_INIT;
    uint8_t *buf = NULL;
    if (ac_trainer_save(t, NULL, 0, &buf, len, &err) != 0) {
        fprintf(stderr, "  (save: %s)\n", err.message);
        *len = 0;
    }
    ac_err_clear(&err);
    return buf;
}

static int same_state(const ac_trainer_t *a, const ac_trainer_t *b)
{
    size_t la, lb;
    uint8_t *x = saved(a, &la), *y = saved(b, &lb);
    int same = x && y && la == lb && memcmp(x, y, la) == 0;
    free(x);
    free(y);
    return same;
}

static const char *const WAY_TEXT[] = {"please go left now", "turn right at the corner", "climb up the stairs",
                                       "left is the way",    "the right door",           "look up"};
static const char *const WAY_TOOL[] = {"left", "right", "up", "left", "right", "up"};

/* Three tools, the query names the right one in varying positions: the untrained policy is right
 * about a third of the time; trained, nearly always. */
static void test_learns(int kind, int iterations, const char *name)
{
    fixture_t f;
    if (fixture_open(&f, kind) != 0) {
        CHECK(0, "fixture");
        return;
    }
    json_t *data = queries(WAY_TEXT, WAY_TOOL, 6);
    ac_trainer_t *t = trainer(&f, 7);
    double first = -1, last = 0;
    int ok = t != NULL;
    for (int i = 0; ok && i < iterations; i++) {
        ac_iter_metrics_t m;
        ok = iterate(t, data, -1, &m) == 0;
        if (i == 0)
            first = m.success_rate;
        if (i >= iterations - 5)
            last += m.success_rate / 5;
    }
    printf("  %s: success %.3f at the first iteration, %.3f over the last five of %d\n", name, first, last,
           iterations);
    char what[160];
    snprintf(what, sizeof what, "%s policy: untrained success near chance (<= 0.6)", name);
    CHECK(ok && first <= 0.6, what);
    snprintf(what, sizeof what, "%s policy: trained success >= 0.95 over its last five iterations", name);
    CHECK(ok && last >= 0.95, what);
    ac_trainer_destroy(t);
    json_decref(data);
    fixture_close(&f);
}

static void test_metrics_add_up(void)
{
    fixture_t f;
    if (fixture_open(&f, AC_POLICY_KIND_BAG) != 0) {
        CHECK(0, "fixture");
        return;
    }
    json_t *data = queries(WAY_TEXT, WAY_TOOL, 6);
    ac_trainer_t *t = trainer(&f, 3);
    ac_iter_metrics_t m;
    int ok = t && iterate(t, data, -1, &m) == 0;
    CHECK(ok && m.iteration == 1 && t->iteration == 1, "the first iteration is number 1");
    CHECK(ok && m.trajectories == 6 * 8, "an iteration runs batch_size x n_trajectories_per_query episodes");
    CHECK(ok && m.steps == m.trajectories, "one step per episode of this agent");
    /* each step: the tool's 0.001 USD and the policy step's 250 micro-USD */
    CHECK(ok && m.cost_micro == (int64_t)m.steps * (1000 + 250), "cost = steps x (tool cost + step cost)");
    CHECK(ok && m.agent_failures == 0 && m.tool_failures == 0 && m.reward_failures == 0, "no failures counted");
    CHECK(ok && m.avg_reward >= 0 && m.avg_reward <= 1 && m.success_rate == m.avg_reward,
          "0/1 rewards: the average reward is the success rate");
    CHECK(ok && m.decisions == m.steps, "every step is a decision among three tools");
    CHECK(ok && isfinite(m.loss) && m.entropy > 0 && m.grad_norm > 0, "the update has a finite loss and a gradient");
    ac_trainer_destroy(t);
    json_decref(data);
    fixture_close(&f);
}

/* Stopping after two iterations, restoring into a new trainer and going on gives the same
 * numbers and the same state as four iterations in one go. */
/* reader: the feature set a and b train with (c, as a later build makes it, reads with the
 * current one until the checkpoint says otherwise). */
static void test_resume_equals_uninterrupted(int kind, int reader, const char *name)
{
    fixture_t f;
    if (fixture_open(&f, kind) != 0) {
        CHECK(0, "fixture");
        return;
    }
    json_t *data = queries(WAY_TEXT, WAY_TOOL, 6);
    ac_trainer_t *a = trainer(&f, 11), *b = trainer(&f, 11), *c = trainer(&f, 11);
    ac_iter_metrics_t ma, mc;
    int ok = a && b && c;
    for (int i = 0; ok && i < 2; i++) {
        ac_trainer_t *t = i == 0 ? a : b;
        ok = ac_actor_set_reader(t->policy, reader) == 0 && ac_actor_set_reader(t->ref, reader) == 0;
    }
    for (int i = 0; ok && i < 4; i++)
        ok = iterate(a, data, -1, &ma) == 0;
    for (int i = 0; ok && i < 2; i++)
        ok = iterate(b, data, -1, &mc) == 0;
    size_t len = 0;
    uint8_t *ck = ok ? saved(b, &len) : NULL;
    ac_err_t err = AC_ERR_INIT;
    ok = ok && ck && ac_trainer_restore(c, ck, len, NULL, NULL, &err) == 0;
    if (!ok && err.message[0])
        fprintf(stderr, "  (restore: %s)\n", err.message);
    ac_err_clear(&err);
    for (int i = 0; ok && i < 2; i++)
        ok = iterate(c, data, -1, &mc) == 0;
    char what[160];
    snprintf(what, sizeof what, "%s: restored at 2 and continued to 4 = 4 in one go (metrics)", name);
    CHECK(ok && mc.iteration == 4 && ma.loss == mc.loss && ma.avg_reward == mc.avg_reward &&
              ma.grad_norm == mc.grad_norm && ma.kl == mc.kl,
          what);
    snprintf(what, sizeof what, "%s: ... and the same policy, Adam moments and RNG (checkpoint bytes)", name);
    CHECK(ok && same_state(a, c), what);
    /* fine-tuning from b's policy: the new job's policy and reference read as b's did */
    ac_trainer_t *d = ok ? trainer(&f, 12) : NULL;
    snprintf(what, sizeof what, "%s: a job started from a checkpoint reads with its feature set", name);
    CHECK(d && ac_trainer_start_from(d, b->policy) == 0 && ac_actor_config(d->policy)->reader == reader &&
              ac_actor_config(d->ref)->reader == reader &&
              memcmp(ac_actor_params(d->ref), ac_actor_params(b->policy),
                     sizeof(float) * ac_actor_n_params(b->policy)) == 0,
          what);
    ac_trainer_destroy(d);
    free(ck);
    ac_trainer_destroy(a);
    ac_trainer_destroy(b);
    ac_trainer_destroy(c);
    json_decref(data);
    fixture_close(&f);
}

/* A budget too small for the iteration, or a stop request: the iteration is abandoned and the
 * trainer is as it was (a resumed job then does that iteration in full). */
static void test_budget_and_stop_change_nothing(void)
{
    fixture_t f;
    if (fixture_open(&f, AC_POLICY_KIND_BAG) != 0) {
        CHECK(0, "fixture");
        return;
    }
    json_t *data = queries(WAY_TEXT, WAY_TOOL, 6);
    ac_trainer_t *t = trainer(&f, 5), *twin = trainer(&f, 5);
    ac_iter_metrics_t m;
    int ok = t && twin && iterate(t, data, 10 * 1250, &m) == 0;
    CHECK(ok && m.budget_exhausted && m.cost_micro <= 10 * 1250 && m.cost_micro >= 9 * 1250,
          "a budget of ten steps: the rollouts stop within it");
    CHECK(ok && t->iteration == 0 && same_state(t, twin), "... and the iteration changed nothing");
    atomic_int stop = 1;
    t->stop = &stop;
    ok = ok && iterate(t, data, -1, &m) == 0;
    CHECK(ok && m.stopped && !m.budget_exhausted && t->iteration == 0 && same_state(t, twin),
          "a stop request: the iteration is abandoned and changes nothing");
    t->stop = NULL;
    ac_iter_metrics_t mt, mw;
    ok = ok && iterate(t, data, -1, &mt) == 0 && iterate(twin, data, -1, &mw) == 0;
    CHECK(ok && mt.iteration == 1 && mt.loss == mw.loss && same_state(t, twin),
          "the next full iteration is the one an untouched trainer takes");
    ac_trainer_destroy(t);
    ac_trainer_destroy(twin);
    json_decref(data);
    fixture_close(&f);
}

static void test_failures_and_no_signal(void)
{
    fixture_t f;
    if (fixture_open(&f, AC_POLICY_KIND_BAG) != 0) {
        CHECK(0, "fixture");
        return;
    }
    static const char *const text[] = {"go left", "boom left", "crash left"};
    static const char *const tool[] = {"left", "left", "left"};
    json_t *data = queries(text, tool, 3);
    f.cfg.batch_size = 3;
    ac_trainer_t *t = trainer(&f, 9);
    ac_iter_metrics_t m;
    int ok = t && iterate(t, data, -1, &m) == 0;
    /* batch_size 3 over 3 queries: each is drawn once per iteration, 8 times */
    CHECK(ok && m.trajectories == 24 && m.agent_failures == 8,
          "an agent that fails in init: a failed episode per rollout, counted, not returned");
    CHECK(ok && m.tool_failures == 8 && m.steps == 16,
          "an agent that fails in step: a failed tool call that ends the episode, counted");
    char msg[160];
    CHECK(ac_trainer_failures_exceed(8, 16, 0.25, msg, sizeof msg) &&
              strstr(msg, "plugin failures: 8 of 16 episodes") != NULL,
          "8 failures in 16 episodes exceed a 25 % rate, with a message");
    CHECK(!ac_trainer_failures_exceed(4, 16, 0.25, msg, sizeof msg) && !ac_trainer_failures_exceed(0, 0, 0, msg, sizeof msg),
          "4 of 16 do not; no episodes never do");
    ac_trainer_destroy(t);
    json_decref(data);

    /* equal rewards in every group: no signal, and DAPO says it could not fill the batch */
    data = json_pack("[{s:s, s:{s:b}}]", "query", "anything", "expected_outcome", "same", 1);
    f.cfg.batch_size = 1;
    f.cfg.loss_type = AC_LOSS_DAPO;
    f.cfg.dapo_max_draws = 3;
    ac_train_config_resolve(&f.cfg);
    t = trainer(&f, 9);
    ok = t && iterate(t, data, -1, &m) == 0;
    CHECK(ok && m.zero_var_frac == 1.0 && m.groups_used == 0, "equal rewards: every group without signal, none used");
    CHECK(ok && m.zero_var_stall && m.groups_short == 1 && m.trajectories == 3 * 8,
          "DAPO draws up to dapo_max_draws batches, then reports the group it could not fill");
    ac_trainer_destroy(t);
    json_decref(data);
    fixture_close(&f);
}

int main(void)
{
    snprintf(tmp_dir, sizeof tmp_dir, "/tmp/ac_trainer_test.XXXXXX");
    if (mkdtemp(tmp_dir) == NULL) {
        perror("mkdtemp");
        return 2;
    }
    char d[128];
    snprintf(d, sizeof d, "%s/agents", tmp_dir);
    mkdir(d, 0700);
    snprintf(d, sizeof d, "%s/rewards", tmp_dir);
    mkdir(d, 0700);
    write_file("agents/way.lua", AGENT);
    write_file("rewards/way.lua", REWARD);

    test_metrics_add_up();
    test_learns(AC_POLICY_KIND_BAG, 40, "bag");
    test_learns(AC_POLICY_KIND_SEQUENCE, 60, "sequence");
    test_resume_equals_uninterrupted(AC_POLICY_KIND_BAG, AC_ACTOR_READER_CURRENT, "bag");
    test_resume_equals_uninterrupted(AC_POLICY_KIND_BAG, AC_ACTOR_READER_V0, "bag, reader 0");
    test_resume_equals_uninterrupted(AC_POLICY_KIND_BAG, AC_ACTOR_READER_CURSOR, "bag, reader 1");
    test_resume_equals_uninterrupted(AC_POLICY_KIND_BAG, AC_ACTOR_READER_STEMS, "bag, reader 2");
    test_resume_equals_uninterrupted(AC_POLICY_KIND_BAG, AC_ACTOR_READER_ROWS, "bag, reader 3");
    test_resume_equals_uninterrupted(AC_POLICY_KIND_BAG, AC_ACTOR_READER_TAKEN, "bag, reader 4");
    test_resume_equals_uninterrupted(AC_POLICY_KIND_BAG, AC_ACTOR_READER_HISTORY, "bag, reader 5");
    test_resume_equals_uninterrupted(AC_POLICY_KIND_SEQUENCE, AC_ACTOR_READER_CURRENT, "sequence");
    test_budget_and_stop_change_nothing();
    test_failures_and_no_signal();

    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmp_dir);
    return check_done(__FILE__);
}
