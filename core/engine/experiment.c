#include "engine/experiment.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/blas.h"
#include "base/clock.h"
#include "engine/eval.h"
#include "base/file.h"
#include "lua/lua_host.h"
#include "lua/plugin.h"
#include "base/train_config.h"
#include "engine/trainer.h"

#define MAX_RUNS 64

typedef struct experiment {
    const ac_experiment_opts_t *opts;
    char dir[1024]; /* the experiment file's directory: relative paths start here */
    json_t *spec;   /* the file's table */
    const char *name, *agent, *reward, *validator;
    json_t *training, *evaluation;
    ac_lua_host_t *host;
    FILE *csv;
} experiment_t;

static int bad(ac_err_t *err, const experiment_t *x, const char *fmt, const char *a)
{
    char msg[512];
    snprintf(msg, sizeof msg, fmt, a);
    return ac_err_set(err, AC_ERR_INVALID_PARAMS, "%s: %s", x->opts->path, msg);
}

static void resolve(char *out, size_t len, const experiment_t *x, const char *rel)
{
    if (rel[0] == '/')
        snprintf(out, len, "%s", rel);
    else
        snprintf(out, len, "%s/%s", x->dir, rel);
}

/* Runs a Lua file in the plugin sandbox and returns its result as JSON. `call`, when given,
 * is appended to the module's value ("(...).generate(1, 200, 50)"): the module is wrapped on its
 * first line, so error messages keep the file's own line numbers. */
static json_t *run_lua_file(experiment_t *x, const char *path, const char *call, ac_err_t *err)
{
    char *text = ac_file_read(path, NULL);
    if (text == NULL) {
        ac_err_set(err, AC_ERR_INVALID_PARAMS, "%s: cannot read: %s", path, strerror(errno));
        return NULL;
    }
    size_t n = strlen(text) + (call ? strlen(call) : 0) + 64;
    char *code = malloc(n);
    char chunk[1100];
    snprintf(chunk, sizeof chunk, "@%s", path);
    if (call != NULL)
        snprintf(code, n, "return (function(...) %s\nend)()%s", text, call);
    else
        snprintf(code, n, "%s", text);
    free(text);
    json_t *result = NULL;
    int rc = ac_lua_host_run(x->host, code, chunk, &result, err);
    free(code);
    return rc == 0 ? result : NULL;
}

static const char *str_field(json_t *o, const char *k, const char *def)
{
    json_t *v = json_object_get(o, k);
    return json_is_string(v) ? json_string_value(v) : def;
}

static int load_spec(experiment_t *x, ac_err_t *err)
{
    if ((x->spec = run_lua_file(x, x->opts->path, NULL, err)) == NULL)
        return -1;
    if (!json_is_object(x->spec))
        return bad(err, x, "the experiment must return a table%s", "");
    static const char *const keys[] = {"name", "agent", "reward", "validator", "seed", "data", "config", "sweep",
                                       "description", NULL};
    const char *k;
    json_t *v;
    json_object_foreach(x->spec, k, v) {
        int known = 0;
        for (const char *const *p = keys; *p; p++)
            known |= strcmp(*p, k) == 0;
        if (!known)
            return bad(err, x, "unknown key '%s'", k);
    }
    x->agent = str_field(x->spec, "agent", NULL);
    x->reward = str_field(x->spec, "reward", x->agent);
    x->validator = str_field(x->spec, "validator", "default");
    x->name = str_field(x->spec, "name", x->agent);
    if (x->agent == NULL)
        return bad(err, x, "'agent' (a plugin name) is required%s", "");
    if (!json_is_object(json_object_get(x->spec, "data")))
        return bad(err, x, "'data' must be a table: {generator = FILE, ...} or {training = FILE, evaluation = FILE}%s",
                   "");
    json_t *cfg = json_object_get(x->spec, "config");
    if (cfg != NULL && !json_is_object(cfg))
        return bad(err, x, "'config' must be a table of GRPO settings%s", "");
    return 0;
}

static int load_data(experiment_t *x, long long seed, ac_err_t *err)
{
    json_t *data = json_object_get(x->spec, "data");
    char path[2048];
    const char *gen = str_field(data, "generator", NULL);
    if (gen != NULL) {
        json_t *s = json_object_get(data, "seed");
        long long dseed = json_is_integer(s) ? json_integer_value(s) : seed;
        json_t *nt = json_object_get(data, "n_train"), *ne = json_object_get(data, "n_eval");
        char call[128];
        snprintf(call, sizeof call, ".generate(%lld, %lld, %lld)", dseed,
                 json_is_integer(nt) ? json_integer_value(nt) : 200LL,
                 json_is_integer(ne) ? json_integer_value(ne) : 50LL);
        resolve(path, sizeof path, x, gen);
        json_t *out = run_lua_file(x, path, call, err);
        if (out == NULL)
            return -1;
        x->training = json_incref(json_object_get(out, "training_data"));
        x->evaluation = json_incref(json_object_get(out, "evaluation_data"));
        json_decref(out);
    } else {
        const char *tr = str_field(data, "training", NULL), *ev = str_field(data, "evaluation", NULL);
        if (tr == NULL || ev == NULL)
            return bad(err, x, "'data' needs a generator, or training and evaluation JSON files%s", "");
        json_error_t jerr;
        resolve(path, sizeof path, x, tr);
        if ((x->training = json_load_file(path, 0, &jerr)) == NULL)
            return ac_err_set(err, AC_ERR_INVALID_PARAMS, "%s:%d: %s", path, jerr.line, jerr.text);
        resolve(path, sizeof path, x, ev);
        if ((x->evaluation = json_load_file(path, 0, &jerr)) == NULL)
            return ac_err_set(err, AC_ERR_INVALID_PARAMS, "%s:%d: %s", path, jerr.line, jerr.text);
    }
    if (!json_is_array(x->training) || !json_is_array(x->evaluation))
        return bad(err, x, "the data must provide training_data and evaluation_data arrays%s", "");
    /* the same checks a job's data gets */
    ac_validator_t *v = ac_validator_open(x->host, x->validator, err);
    if (v == NULL)
        return -1;
    json_t *problems = NULL;
    int rc = ac_validator_run(v, x->training, x->evaluation, 100, &problems, err);
    ac_validator_close(v);
    if (rc != 0)
        return -1;
    if (json_array_size(problems) > 0) {
        json_t *p = json_array_get(problems, 0);
        ac_err_set(err, AC_ERR_VALIDATION_FAILED, "%s: the data fails validation (%zu problems), first: %s: %s",
                   x->opts->path, json_array_size(problems), str_field(p, "field", "?"), str_field(p, "error", "?"));
        json_decref(problems);
        return -1;
    }
    json_decref(problems);
    return 0;
}

/* The sweep's runs: the cartesian product of its value lists over the base config. */
static int expand_runs(experiment_t *x, json_t **runs, char labels[][160], int *n_runs, ac_err_t *err)
{
    json_t *base = json_object_get(x->spec, "config");
    runs[0] = base ? json_deep_copy(base) : json_object();
    labels[0][0] = '\0';
    *n_runs = 1;
    json_t *sweep = json_object_get(x->spec, "sweep");
    if (sweep == NULL)
        return 0;
    if (!json_is_object(sweep))
        return bad(err, x, "'sweep' must map config keys to lists of values%s", "");
    const char *k;
    json_t *vals;
    json_object_foreach(sweep, k, vals) {
        if (!json_is_array(vals) || json_array_size(vals) == 0)
            return bad(err, x, "sweep.%s must be a non-empty list", k);
        int n = *n_runs, m = (int)json_array_size(vals);
        if (n * m > MAX_RUNS)
            return bad(err, x, "the sweep makes more than 64 runs%s", "");
        for (int r = n - 1; r >= 0; r--) {
            for (int j = m - 1; j >= 0; j--) {
                int slot = r * m + j;
                json_t *c = json_deep_copy(runs[r]);
                json_object_set(c, k, json_array_get(vals, (size_t)j));
                char *vs = json_dumps(json_array_get(vals, (size_t)j), JSON_ENCODE_ANY);
                char label[160];
                snprintf(label, sizeof label, "%s%s%s=%s", labels[r], labels[r][0] ? "," : "", k, vs ? vs : "?");
                free(vs);
                if (j == 0)
                    json_decref(runs[r]);
                runs[slot] = c;
                snprintf(labels[slot], 160, "%s", label);
            }
        }
        *n_runs = n * m;
    }
    return 0;
}

static void progress(const char *label, uint64_t it, int total, const ac_iter_metrics_t *m, double elapsed_ms)
{
    int width = 24, fill = (int)(width * (double)it / total);
    char bar[32];
    for (int i = 0; i < width; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[width] = '\0';
    double eta = it > 0 ? elapsed_ms / it * (total - (int)it) / 1000.0 : 0;
    fprintf(stderr, "\r%-18.18s [%s] %4llu/%d  reward %.3f  success %.2f  ETA %3.0fs ", label[0] ? label : "train",
            bar, (unsigned long long)it, total, m->avg_reward, m->success_rate, eta);
    fflush(stderr);
}

static json_t *side_json(const ac_eval_result_t *r, const double ci[2])
{
    json_t *o = ac_eval_metrics_json(r);
    json_object_set_new(o, "success_rate_ci95", json_pack("[f, f]", ci[0], ci[1]));
    json_object_set_new(o, "queries", json_integer(r->n));
    json_object_set_new(o, "plugin_failures", json_integer(r->failures));
    return o;
}

static json_t *run_one(experiment_t *x, json_t *config, const char *label, long long seed_opt, ac_err_t *err)
{
    ac_train_config_t tc;
    ac_train_config_defaults(&tc);
    if (ac_train_config_from_json(&tc, config, AC_ERR_INVALID_PARAMS, err) != 0) {
        /* copy out of err->data: setting the new message frees it */
        json_t *f = err->data ? json_object_get(err->data, "field") : NULL;
        json_t *e = err->data ? json_object_get(err->data, "error") : NULL;
        char field[96], problem[160];
        snprintf(field, sizeof field, "%s", json_is_string(f) ? json_string_value(f) : "?");
        snprintf(problem, sizeof problem, "%s", json_is_string(e) ? json_string_value(e) : "?");
        ac_err_set(err, AC_ERR_INVALID_PARAMS, "%s: config.%s: %s", x->opts->path, field, problem);
        return NULL;
    }
    ac_train_config_resolve(&tc);
    json_t *js = json_object_get(x->spec, "seed");
    uint64_t seed = seed_opt >= 0 ? (uint64_t)seed_opt
                                  : json_is_integer(js) ? (uint64_t)json_integer_value(js)
                                                        : tc.seed > 0 ? (uint64_t)tc.seed : 1;
    json_t *report = NULL;
    ac_agent_t *agent = ac_agent_open(x->host, x->agent, err);
    ac_reward_t *reward = agent ? ac_reward_open(x->host, x->reward, err) : NULL;
    ac_trainer_t *tr = reward ? ac_trainer_create(&tc, agent, reward, seed, 0, err) : NULL;
    ac_eval_result_t base = {0}, trained = {0};
    if (tr == NULL)
        goto out;
    int64_t t0 = ac_clock_mono_ns();
    if (ac_eval_run(agent, reward, tr->policy, x->evaluation, tc.max_steps_per_trajectory, &base, err) != 0)
        goto out;
    ac_iter_metrics_t m = {0};
    long long trajectories = 0;
    int64_t cost = 0;
    int64_t train0 = ac_clock_mono_ns();
    for (int i = 0; i < tc.n_iterations; i++) {
        if (ac_trainer_iterate(tr, x->training, -1, &m, err) != 0)
            goto out;
        trajectories += m.trajectories;
        cost += m.cost_micro;
        if (x->csv != NULL)
            fprintf(x->csv, "\"%s\",%llu,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%d,%d,%.6f,%.3f,%d,%d,%d\n",
                    label, (unsigned long long)m.iteration, m.loss, m.avg_reward, m.reward_std, m.success_rate, m.kl,
                    m.kl_exact, m.entropy, m.clip_fraction, m.zero_var_frac, m.grad_norm, m.trajectories, m.steps,
                    (double)m.cost_micro / 1e6, m.wall_ms, m.tool_failures, m.agent_failures, m.reward_failures);
        if (x->opts->progress)
            progress(label, m.iteration, tc.n_iterations, &m, (double)(ac_clock_mono_ns() - train0) / 1e6);
    }
    if (x->opts->progress)
        fputc('\n', stderr);
    if (ac_eval_run(agent, reward, tr->policy, x->evaluation, tc.max_steps_per_trajectory, &trained, err) != 0)
        goto out;
    ac_eval_comparison_t cmp;
    ac_eval_compare(&base, &trained, &cmp);
    report = json_pack("{s:s, s:o, s:I, s:o, s:o, s:f, s:f, s:f, s:f, s:i, s:i, s:I, s:I, s:f, s:f}", "run", label,
                       "config", ac_train_config_to_json(&tc), "seed", (json_int_t)seed, "baseline",
                       side_json(&base, cmp.baseline_ci), "trained", side_json(&trained, cmp.trained_ci),
                       "success_rate_improvement", cmp.success_rate_improvement, "avg_reward_improvement",
                       cmp.avg_reward_improvement, "p_value", cmp.p_value, "p_value_reward", cmp.p_value_reward,
                       "only_baseline_solved", cmp.only_baseline, "only_trained_solved", cmp.only_trained,
                       "iterations", (json_int_t)tc.n_iterations, "trajectories", (json_int_t)trajectories,
                       "cost_usd", (double)cost / 1e6, "wall_ms", (double)(ac_clock_mono_ns() - t0) / 1e6);
    json_object_set_new(report, "final_iteration",
                        json_pack("{s:f, s:f, s:f, s:f, s:f, s:f, s:f}", "loss", m.loss, "avg_reward", m.avg_reward,
                                  "success_rate", m.success_rate, "kl", m.kl, "kl_exact", m.kl_exact, "entropy",
                                  m.entropy, "clip_fraction", m.clip_fraction));
out:
    ac_eval_result_free(&base);
    ac_eval_result_free(&trained);
    ac_trainer_destroy(tr);
    ac_reward_close(reward);
    ac_agent_close(agent);
    return report;
}

int ac_experiment_run(const ac_experiment_opts_t *opts, ac_err_t *err)
{
    experiment_t x = {.opts = opts};
    ac_file_dirname(x.dir, sizeof x.dir, opts->path);
    json_t *runs[MAX_RUNS] = {0};
    static char labels[MAX_RUNS][160];
    json_t *results = json_array(), *report = NULL;
    int n_runs = 0, ret = -1;
    ac_lua_limits_t limits = AC_LUA_DEFAULT_LIMITS;
    if ((x.host = ac_lua_host_create(opts->lua_dir, opts->plugins_dir, &limits, err)) == NULL)
        goto out;
    if (load_spec(&x, err) != 0 || load_data(&x, opts->seed >= 0 ? opts->seed : 1, err) != 0 ||
        expand_runs(&x, runs, labels, &n_runs, err) != 0)
        goto out;
    char out_dir[2048], path[2200];
    if (opts->out_dir != NULL)
        snprintf(out_dir, sizeof out_dir, "%s", opts->out_dir);
    else
        snprintf(out_dir, sizeof out_dir, "runs/%s", x.name);
    if (ac_file_mkdirs(out_dir) != 0) {
        ac_err_set(err, AC_ERR_INTERNAL, "cannot create %s: %s", out_dir, strerror(errno));
        goto out;
    }
    snprintf(path, sizeof path, "%s/metrics.csv", out_dir);
    if ((x.csv = fopen(path, "w")) == NULL) {
        ac_err_set(err, AC_ERR_INTERNAL, "cannot write %s: %s", path, strerror(errno));
        goto out;
    }
    fprintf(x.csv, "run,iteration,loss,avg_reward,reward_std,success_rate,kl,kl_exact,entropy,clip_fraction,"
                   "zero_var_frac,grad_norm,trajectories,steps,cost_usd,wall_ms,tool_failures,agent_failures,"
                   "reward_failures\n");
    int best = -1;
    double best_success = -1;
    for (int r = 0; r < n_runs; r++) {
        json_t *res = run_one(&x, runs[r], labels[r], opts->seed, err);
        if (res == NULL)
            goto out;
        double s = json_real_value(json_object_get(json_object_get(res, "trained"), "success_rate"));
        if (s > best_success)
            best_success = s, best = r;
        json_array_append_new(results, res);
        fflush(x.csv);
    }
    /* the report: the best run's figures at the top level, every run side by side */
    report = json_deep_copy(json_array_get(results, (size_t)best));
    json_object_set_new(report, "experiment", json_string(x.name));
    json_object_set_new(report, "agent", json_string(x.agent));
    json_object_set_new(report, "training_queries", json_integer((json_int_t)json_array_size(x.training)));
    json_object_set_new(report, "evaluation_queries", json_integer((json_int_t)json_array_size(x.evaluation)));
    json_object_set_new(report, "success_test", json_string("exact McNemar on paired success"));
    json_object_set_new(report, "reward_test",
                        json_string("paired sign-flip permutation test on per-query rewards (exact up to 20 "
                                    "queries, else 9999 random sign patterns)"));
    json_object_set_new(report, "blas_kernel", json_string(ac_blas_kernel()));
    if (n_runs > 1)
        json_object_set(report, "runs", results);
    snprintf(path, sizeof path, "%s/report.json", out_dir);
    if (json_dump_file(report, path, JSON_INDENT(2)) != 0) {
        ac_err_set(err, AC_ERR_INTERNAL, "cannot write %s", path);
        goto out;
    }
    /* people first, then (with --json) the machine line last */
    for (int r = 0; r < n_runs; r++) {
        json_t *res = json_array_get(results, (size_t)r);
        json_t *b = json_object_get(res, "baseline"), *t = json_object_get(res, "trained");
        fprintf(opts->json ? stderr : stdout,
                "%-28s baseline success %.2f reward %.3f -> trained success %.2f reward %.3f  p=%.3g  (%.1f s)\n",
                labels[r][0] ? labels[r] : x.name, json_real_value(json_object_get(b, "success_rate")),
                json_real_value(json_object_get(b, "avg_reward")), json_real_value(json_object_get(t, "success_rate")),
                json_real_value(json_object_get(t, "avg_reward")), json_real_value(json_object_get(res, "p_value")),
                json_real_value(json_object_get(res, "wall_ms")) / 1000.0);
    }
    fprintf(opts->json ? stderr : stdout, "wrote %s/metrics.csv and %s/report.json\n", out_dir, out_dir);
    if (opts->json) {
        char *line = json_dumps(report, JSON_COMPACT);
        printf("%s\n", line);
        free(line);
    }
    ret = 0;
out:
    if (x.csv != NULL)
        fclose(x.csv);
    for (int r = 0; r < n_runs; r++)
        json_decref(runs[r]);
    json_decref(results);
    json_decref(report);
    json_decref(x.training);
    json_decref(x.evaluation);
    json_decref(x.spec);
    ac_lua_host_destroy(x.host);
    return ret;
}
