/* Offline, config-driven experiments: `agentcore train EXPERIMENT.lua`.
 *
 * The experiment file (a Lua table, see examples/calculator/experiment.lua) names the agent,
 * reward and validator plugins, the data (JSON files or a Lua generator), the GRPO config and
 * optionally a sweep over config values. Each run trains in-process, evaluates the untrained
 * (baseline) and the final policy greedily on the evaluation data, and compares them: exact
 * McNemar on paired success, Wilson 95 % intervals, and a paired sign-flip permutation test on
 * per-query rewards. metrics.csv and report.json go to the output directory. */
#ifndef AC_EXPERIMENT_H
#define AC_EXPERIMENT_H

#include "base/err.h"

typedef struct ac_experiment_opts {
    const char *path;        /* the experiment file */
    long long seed;          /* < 0: the file's (or 1) */
    const char *out_dir;     /* NULL: runs/<name> */
    int json;                /* print the report as the last line of stdout */
    int progress;            /* draw a progress bar on stderr */
    const char *lua_dir;
    const char *plugins_dir;
} ac_experiment_opts_t;

int ac_experiment_run(const ac_experiment_opts_t *opts, ac_err_t *err);

#endif
