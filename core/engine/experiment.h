/* Offline, config-driven experiments: `agentcore train EXPERIMENT.lua`.
 *
 * The experiment file (a Lua table, see examples/calculator/experiment.lua) names the agent,
 * reward and validator plugins, the data (JSON files or a Lua generator), the GRPO config and
 * optionally a sweep over config values and a number of seeds. Three splits: training trains,
 * validation (given, or held out of the training data) selects the policy a run reports (the best
 * validation success along the learning curve) and a sweep's winner, and the evaluation data only
 * reports: random, untrained and trained policies side by side, exact McNemar on paired success,
 * Wilson 95 % intervals, a paired sign-flip test on rewards, and across seeds the mean with a
 * Student-t 95 % interval. metrics.csv (per iteration, with validation every eval_interval),
 * report.json and report.html (report_html.h: the curves and tables, self-contained) go to the
 * output directory, with each run's selected policy as a checkpoint file
 * (checkpoints/<run>-seed<N>.ckpt, docs/checkpoints.md) and the winner's as best.ckpt. */
#ifndef AC_EXPERIMENT_H
#define AC_EXPERIMENT_H

#include "base/err.h"
#include "lua/lua_host.h"

typedef struct ac_experiment_opts {
    const char *path;        /* the experiment file */
    long long seed;          /* < 0: the file's (or 1); seed k of a run is seed + k */
    int seeds;               /* 0: the file's `seeds` (or 1) */
    const char *out_dir;     /* NULL: runs/<name> */
    int json;                /* print the report as the last line of stdout */
    int progress;            /* draw a progress bar on stderr */
    const json_t *overrides; /* GRPO config keys set over the file's config (--set), or NULL */
    const char *lua_dir;
    const char *plugins_dir;
    /* the server config's training settings, so that an agent behaves the same offline and in
     * the service */
    const ac_lua_limits_t *limits; /* plugin_limits; NULL: the defaults */
    double max_failure_rate;       /* training.max_failure_rate */
    double step_cost_usd;          /* training.step_cost_usd */
} ac_experiment_opts_t;

int ac_experiment_run(const ac_experiment_opts_t *opts, ac_err_t *err);

/* The agent and reward plugin names an experiment file gives (opts: path, lua_dir, plugins_dir,
 * limits), for `agentcore run`. 0, or -1 with err as ac_experiment_run's for a bad file. */
int ac_experiment_plugins(const ac_experiment_opts_t *opts, char *agent, char *reward, size_t len, ac_err_t *err);

/* The keys of an experiment file (the same table the loader checks files against: an unknown
 * key, a wrong type or an integer out of range stops the run), in ac_config_reference's shape:
 * [{section ("" or "data"), doc, keys: [{key, type, default (null), default_doc, range, doc, and
 * for integers min and max}]}]. New reference. */
json_t *ac_experiment_reference(void);

#endif
