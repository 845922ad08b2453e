/* Rollout throughput: agent steps per second, each step being the agent's optional observe,
 * legal and candidates in Lua, the host's rendering of the episode's context (engine/context.h),
 * the actor's batched read (OpenBLAS), sampling the tool and each of its arguments, and the tool
 * call in Lua — what a GRPO iteration spends its rollouts on. Not a test: it prints figures
 * (bench/README.md).
 *
 *   build/bench_rollout [--agent calculator] [--policy bag|sequence] [--episodes 512] [--runs 7]
 *                       [--no-reward]
 *
 * --no-reward leaves the episodes unscored: the difference is what the reward plugin costs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/stats.h"
#include "engine/blas.h"
#include "base/clock.h"
#include "lua/lua_host.h"
#include "lua/plugin.h"
#include "engine/rollout.h"
#include "base/train_config.h"
#include "engine/trainer.h"

int main(int argc, char **argv)
{
    ac_blas_maybe_reexec(argc, argv);
    const char *agent_name = "calculator", *kind = "bag";
    int episodes = 512, runs = 7, scored = 1;
    for (int i = 1; i < argc; i += 2) {
        if (strcmp(argv[i], "--no-reward") == 0) {
            scored = 0;
            i--;
        } else if (i + 1 >= argc) {
            episodes = 0; /* an option without its value: the usage below */
        } else if (strcmp(argv[i], "--agent") == 0)
            agent_name = argv[i + 1];
        else if (strcmp(argv[i], "--episodes") == 0)
            episodes = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--runs") == 0)
            runs = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--policy") == 0)
            kind = argv[i + 1];
    }
    if (episodes < 8 || runs < 1 || (strcmp(kind, "bag") != 0 && strcmp(kind, "sequence") != 0)) {
        fprintf(stderr, "usage: bench_rollout [--agent NAME] [--policy bag|sequence] [--episodes N>=8] [--runs N>=1] "
                        "[--no-reward]\n");
        return 2;
    }
    ac_blas_set_threads(1);
    ac_err_t err = AC_ERR_INIT;
    ac_lua_limits_t limits = AC_LUA_DEFAULT_LIMITS;
    ac_lua_host_t *host = ac_lua_host_create(AC_SOURCE_DIR "/lua", AC_SOURCE_DIR "/plugins", &limits, &err);
    /* the agent's own generator makes the queries */
    char path[512];
    snprintf(path, sizeof path, AC_SOURCE_DIR "/examples/%s/data.lua", agent_name);
    FILE *f = fopen(path, "rb");
    if (host == NULL || f == NULL) {
        fprintf(stderr, "bench_rollout: %s\n", host ? path : err.message);
        return 1;
    }
    static char text[1 << 20];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = 0;
    char *wrapped = malloc(n + 128);
    snprintf(wrapped, n + 128, "return (function(...) %s\nend)().generate(1, 256, 64)", text);
    json_t *data = NULL;
    if (ac_lua_host_run(host, wrapped, "=data", &data, &err) != 0) {
        fprintf(stderr, "bench_rollout: %s\n", err.message);
        return 1;
    }
    free(wrapped);
    json_t *queries = json_object_get(data, "training_data");
    ac_agent_t *agent = ac_agent_open(host, agent_name, &err);
    ac_reward_t *reward = agent ? ac_reward_open(host, agent_name, &err) : NULL;
    if (reward == NULL) {
        fprintf(stderr, "bench_rollout: %s\n", err.message);
        return 1;
    }
    ac_train_config_t cfg;
    ac_train_config_defaults(&cfg);
    cfg.policy_kind = strcmp(kind, "bag") == 0 ? AC_POLICY_KIND_BAG : AC_POLICY_KIND_SEQUENCE;
    ac_actor_config_t pc;
    ac_trainer_policy_config(&pc, &cfg, agent, 1);
    ac_actor_t *policy = ac_actor_create(&pc, &err);
    if (policy == NULL) {
        fprintf(stderr, "bench_rollout: %s\n", err.message);
        return 1;
    }
    ac_rng_t rng;
    ac_rng_seed(&rng, 7);
    int groups = episodes / 8;
    int *idx = malloc(sizeof *idx * (size_t)groups);
    for (int i = 0; i < groups; i++)
        idx[i] = i % (int)json_array_size(queries);
    double *rate = malloc(sizeof *rate * (size_t)runs);
    ac_rollout_t ro;
    ac_rollout_init(&ro, agent->n_actions, &err);
    int steps = 0;
    for (int r = -1; r < runs; r++) { /* one warm-up run */
        ac_rollout_clear(&ro);
        ac_rollout_spec_t spec = {.agent = agent, .reward = scored ? reward : NULL, .policy = policy, .rng = &rng,
                                  .queries = queries, .query_idx = idx, .n_groups = groups, .n_per_group = 8,
                                  .max_steps = 20, .temperature = 1.0f, .budget_micro = -1, .seed = 1,
                                  .iteration = 1};
        int64_t t0 = ac_clock_mono_ns();
        if (ac_rollout_run(&ro, &spec, &err) != 0) {
            fprintf(stderr, "bench_rollout: %s\n", err.message);
            return 1;
        }
        double s = (double)(ac_clock_mono_ns() - t0) / 1e9;
        steps = ro.n_steps;
        if (r >= 0)
            rate[r] = ro.n_steps / s;
    }
    double med = ac_stats_median(rate, runs);
    printf("agent %s, %s policy: %d episodes, %d steps per run, %s; BLAS kernel %s, 1 thread\n", agent_name,
           kind, groups * 8, steps, scored ? "rewards scored" : "no reward", ac_blas_kernel());
    printf("rollout throughput: median %.0f agent steps/s (min %.0f, max %.0f) over %d runs\n", med, rate[0],
           rate[runs - 1], runs);
    ac_rollout_free(&ro);
    ac_actor_destroy(policy);
    ac_reward_close(reward);
    ac_agent_close(agent);
    json_decref(data);
    ac_lua_host_destroy(host);
    free(idx);
    free(rate);
    return 0;
}
