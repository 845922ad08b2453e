#include "engine/trainer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/checkpoint.h"
#include "base/clock.h"

#define MAX_FEATURES 96

void ac_trainer_policy_config(ac_policy_config_t *pc, const ac_train_config_t *cfg, const ac_agent_t *agent,
                              uint64_t seed)
{
    memset(pc, 0, sizeof *pc);
    pc->n_buckets = cfg->n_buckets;
    pc->d_emb = cfg->embed_dim;
    pc->n_hidden = 1;
    pc->hidden[0] = cfg->hidden_size;
    pc->activation = AC_POLICY_RELU;
    pc->n_actions = agent->n_actions;
    pc->max_features = MAX_FEATURES;
    pc->seed = seed;
}

static void grpo_config(ac_grpo_config_t *g, const ac_train_config_t *cfg, int max_steps)
{
    ac_grpo_config_default(g);
    static const int loss_of[] = {AC_GRPO_LOSS_GRPO, AC_GRPO_LOSS_DR_GRPO, AC_GRPO_LOSS_DAPO};
    g->loss_type = loss_of[cfg->loss_type];
    g->clip_eps_low = (float)cfg->epsilon;
    g->clip_eps_high = (float)(cfg->epsilon_high >= 0 ? cfg->epsilon_high : cfg->epsilon);
    g->kl_beta = (float)cfg->beta;
    g->entropy_coef = (float)cfg->entropy_coef;
    /* Dr. GRPO's point is the unscaled advantage: its loss type implies it */
    g->scale_std = cfg->scale_rewards && cfg->loss_type != AC_LOSS_DR_GRPO;
    g->gamma = (float)cfg->gamma;
    g->mask_truncated = cfg->mask_truncated;
    g->max_steps = max_steps;
}

ac_trainer_t *ac_trainer_create(const ac_train_config_t *cfg, ac_agent_t *agent, ac_reward_t *reward,
                                uint64_t seed, int64_t step_cost_micro, ac_err_t *err)
{
    ac_trainer_t *t = calloc(1, sizeof *t);
    if (t == NULL) {
        ac_err_set(err, AC_ERR_INTERNAL, "trainer: out of memory");
        return NULL;
    }
    t->cfg = *cfg;
    t->agent = agent;
    t->reward = reward;
    t->seed = seed;
    t->step_cost_micro = step_cost_micro;
    int max_steps = cfg->max_steps_per_trajectory;
    if (agent->max_steps > 0 && agent->max_steps < max_steps)
        max_steps = agent->max_steps;
    grpo_config(&t->gcfg, cfg, max_steps);
    ac_policy_config_t pc;
    ac_trainer_policy_config(&pc, cfg, agent, seed);
    ac_optim_config_t oc;
    ac_optim_config_default(&oc);
    oc.lr = (float)cfg->learning_rate;
    /* the RNG stream is separate from the initialisation's */
    ac_rng_seed(&t->rng, seed ^ 0x9e3779b97f4a7c15ULL);
    if ((t->policy = ac_policy_create(&pc, err)) == NULL || (t->ref = ac_policy_clone(t->policy, err)) == NULL ||
        (oc.lr > 0 && (t->optim = ac_optim_create(t->policy->n_params, &oc, err)) == NULL) ||
        ac_rollout_init(&t->ro, &pc, err) != 0) {
        ac_trainer_destroy(t);
        return NULL;
    }
    return t;
}

void ac_trainer_destroy(ac_trainer_t *t)
{
    if (t == NULL)
        return;
    ac_rollout_free(&t->ro);
    ac_policy_destroy(t->policy);
    ac_policy_destroy(t->ref);
    ac_optim_destroy(t->optim);
    free(t->ep_advantage);
    free(t->ep_norm_reward);
    free(t->logp);
    free(t->ref_logp);
    free(t->dlogits);
    free(t->steps);
    free(t->eps);
    free(t->order);
    free(t);
}

/* Draws n query indices, without replacement while n <= n_queries (a partial Fisher-Yates).
 * The permutation starts from the identity every time, so the batch depends on the RNG state
 * alone: that is what a checkpoint restores. */
static int sample_queries(ac_trainer_t *t, int n_queries, int *out, int n)
{
    if (t->n_order != n_queries) {
        free(t->order);
        if ((t->order = malloc(sizeof *t->order * (size_t)n_queries)) == NULL)
            return -1;
        t->n_order = n_queries;
    }
    for (int i = 0; i < n_queries; i++)
        t->order[i] = i;
    for (int k = 0; k < n; k++) {
        int pos = k % n_queries;
        if (pos == 0 && k > 0) /* more draws than queries: a fresh pass */
            for (int i = 0; i < n_queries; i++)
                t->order[i] = i;
        int j = pos + (int)(ac_rng_u64(&t->rng) % (uint64_t)(n_queries - pos));
        int tmp = t->order[pos];
        t->order[pos] = t->order[j];
        t->order[j] = tmp;
        out[k] = t->order[pos];
    }
    return 0;
}

static int ensure(void **p, int *cap, int need, size_t elem)
{
    if (need <= *cap)
        return 0;
    void *q = realloc(*p, (size_t)need * elem);
    if (q == NULL)
        return -1;
    *p = q;
    *cap = need;
    return 0;
}

/* logp, ref_logp and dlogits: (N, A) each, grown together. */
static int reserve_scratch(ac_trainer_t *t, int n)
{
    if (n <= t->cap_states)
        return 0;
    float *bufs[3] = {t->logp, t->ref_logp, t->dlogits};
    for (int i = 0; i < 3; i++) {
        float *p = realloc(bufs[i], sizeof(float) * (size_t)n);
        if (p == NULL) {
            t->logp = bufs[0], t->ref_logp = bufs[1], t->dlogits = bufs[2];
            return -1;
        }
        bufs[i] = p;
    }
    t->logp = bufs[0], t->ref_logp = bufs[1], t->dlogits = bufs[2];
    t->cap_states = n;
    return 0;
}

/* A group carries signal when its scored episodes do not all have the same reward. */
static void group_signal(const ac_rollout_t *ro, uint8_t *signal, int n_groups)
{
    for (int g = 0; g < n_groups; g++) {
        double first = NAN;
        signal[g] = 0;
        for (int e = 0; e < ro->n_eps; e++) {
            const ac_episode_rec_t *ep = &ro->eps[e];
            if (ep->group != g || ep->failed)
                continue;
            if (isnan(first))
                first = ep->reward;
            else if (ep->reward != first)
                signal[g] = 1;
        }
    }
}

int ac_trainer_iterate(ac_trainer_t *t, const json_t *training, int64_t budget_micro, ac_iter_metrics_t *m,
                       ac_err_t *err)
{
    int64_t t0 = ac_clock_mono_ns();
    memset(m, 0, sizeof *m);
    const ac_train_config_t *cfg = &t->cfg;
    int n_queries = (int)json_array_size(training);
    if (n_queries == 0)
        return ac_err_set(err, AC_ERR_INVALID_PARAMS, "trainer: no training queries");
    const int B = cfg->batch_size, G = cfg->n_trajectories_per_query, A = t->agent->n_actions;
    int dapo = cfg->loss_type == AC_LOSS_DAPO;
    int draws = dapo ? cfg->dapo_max_draws : 1;
    int *qidx = malloc(sizeof *qidx * (size_t)B);
    uint8_t *signal = NULL;
    int ret = -1;
    if (qidx == NULL)
        goto oom;

    /* ---- rollouts (with DAPO's dynamic sampling) ---- */
    ac_rollout_clear(&t->ro);
    int useful = 0, need = B;
    for (int d = 0; d < draws && need > 0; d++) {
        if (sample_queries(t, n_queries, qidx, need) != 0)
            goto oom;
        ac_rollout_spec_t spec = {t->agent,
                                  t->reward,
                                  t->policy,
                                  &t->rng,
                                  training,
                                  qidx,
                                  need,
                                  G,
                                  cfg->max_steps_per_trajectory,
                                  (float)cfg->temperature,
                                  t->step_cost_micro,
                                  budget_micro,
                                  t->stop};
        if (ac_rollout_run(&t->ro, &spec, err) != 0)
            goto out;
        if (t->ro.stopped) {
            m->stopped = 1;
            ret = 0;
            goto out;
        }
        if (t->ro.budget_exhausted) {
            m->budget_exhausted = 1;
            m->cost_micro = t->ro.cost_micro;
            m->trajectories = t->ro.n_eps;
            m->steps = t->ro.n_steps;
            ret = 0;
            goto out;
        }
        free(signal);
        if ((signal = malloc((size_t)t->ro.n_groups)) == NULL)
            goto oom;
        group_signal(&t->ro, signal, t->ro.n_groups);
        if (d == 0) {
            int flat = 0;
            for (int g = 0; g < t->ro.n_groups; g++)
                flat += !signal[g];
            m->zero_var_frac = (double)flat / t->ro.n_groups;
        }
        if (!dapo)
            break;
        useful = 0;
        for (int g = 0; g < t->ro.n_groups; g++)
            useful += signal[g];
        need = B - useful;
    }
    ac_rollout_t *ro = &t->ro;

    /* ---- the update's inputs: kept episodes and their steps ---- */
    if (ensure((void **)&t->eps, &t->cap_eps, ro->n_eps, sizeof *t->eps) ||
        ensure((void **)&t->steps, &t->cap_steps, ro->n_steps, sizeof *t->steps))
        goto oom;
    free(t->ep_advantage);
    free(t->ep_norm_reward);
    t->ep_advantage = malloc(sizeof(double) * (size_t)(ro->n_eps ? ro->n_eps : 1));
    t->ep_norm_reward = malloc(sizeof(double) * (size_t)(ro->n_eps ? ro->n_eps : 1));
    int *gmap = malloc(sizeof *gmap * (size_t)(ro->n_groups ? ro->n_groups : 1));
    int *emap = malloc(sizeof *emap * (size_t)(ro->n_eps ? ro->n_eps : 1));
    if (!t->ep_advantage || !t->ep_norm_reward || !gmap || !emap) {
        free(gmap);
        free(emap);
        goto oom;
    }
    int n_groups_used = 0;
    for (int g = 0; g < ro->n_groups; g++)
        gmap[g] = (!dapo || signal[g]) ? n_groups_used++ : -1;
    int n_eps = 0, n_steps = 0, all_step_rewards = 1, scored = 0, successes = 0;
    for (int e = 0; e < ro->n_eps; e++) {
        const ac_episode_rec_t *ep = &ro->eps[e];
        t->ep_advantage[e] = NAN;
        t->ep_norm_reward[e] = NAN;
        emap[e] = -1;
        if (!ep->failed) {
            scored++;
            successes += ep->success;
        }
        if (ep->failed || gmap[ep->group] < 0 || ep->n_steps == 0)
            continue;
        emap[e] = n_eps;
        t->eps[n_eps++] = (ac_grpo_episode_t){gmap[ep->group], (float)ep->reward, ep->truncated};
        all_step_rewards &= ep->step_rewards != NULL;
    }
    for (int e = 0; e < ro->n_eps; e++) {
        const ac_episode_rec_t *ep = &ro->eps[e];
        if (emap[e] < 0)
            continue;
        int k = 0;
        for (int i = ep->first_step; i >= 0; i = ro->steps[i].next, k++) {
            const ac_step_rec_t *s = &ro->steps[i];
            t->steps[n_steps++] = (ac_grpo_step_t){s->state, s->action, emap[e], s->logp_old, 0.0f,
                                                   ep->step_rewards ? (float)ep->step_rewards[k] : 0.0f, 0.0f};
        }
    }
    t->gcfg.per_step_rewards = all_step_rewards && n_eps > 0;
    /* every scored episode's reward normalised within its group, (R - mean) / (std + eps), for
     * the export API, whatever loss_type does with it */
    for (int g = 0; g < ro->n_groups; g++) {
        double sum = 0, sq = 0;
        int k = 0;
        for (int e = 0; e < ro->n_eps; e++)
            if (ro->eps[e].group == g && !ro->eps[e].failed) {
                sum += ro->eps[e].reward;
                sq += ro->eps[e].reward * ro->eps[e].reward;
                k++;
            }
        double mean = k ? sum / k : 0.0, var = k ? sq / k - mean * mean : 0.0;
        double sd = sqrt(var > 0 ? var : 0);
        for (int e = 0; e < ro->n_eps; e++)
            if (ro->eps[e].group == g && !ro->eps[e].failed)
                t->ep_norm_reward[e] = (ro->eps[e].reward - mean) / (sd + 1e-4);
    }
    m->trajectories = ro->n_eps;
    m->steps = ro->n_steps;
    m->groups_used = n_groups_used;
    m->success_rate = scored ? (double)successes / scored : 0.0;
    m->tool_failures = ro->tool_failures;
    m->agent_failures = ro->agent_failures;
    m->reward_failures = ro->reward_failures;
    m->cost_micro = ro->cost_micro;

    if (n_steps > 0) {
        /* ---- mu epochs of clipped-surrogate updates ---- */
        int N = ro->batch.n;
        if (reserve_scratch(t, N * A) != 0) {
            free(gmap);
            free(emap);
            goto oom;
        }
        ac_grpo_metrics_t gm;
        if (ac_policy_forward(t->ref, t->ref_logp, &ro->batch, ro->mask, err) != 0 ||
            ac_grpo_advantages(t->steps, &gm, n_steps, t->eps, n_eps, &t->gcfg, err) != 0) {
            free(gmap);
            free(emap);
            goto out;
        }
        for (int e = 0; e < ro->n_eps; e++) {
            if (emap[e] < 0)
                continue;
            /* the first step's advantage is the episode's (equal for all steps in outcome mode) */
            for (int k = 0; k < n_steps; k++)
                if (t->steps[k].episode == emap[e]) {
                    t->ep_advantage[e] = t->steps[k].advantage;
                    break;
                }
        }
        m->avg_reward = gm.avg_reward;
        m->reward_std = gm.reward_std;
        for (int epoch = 0; epoch < cfg->mu; epoch++) {
            if (ac_policy_forward(t->policy, t->logp, &ro->batch, ro->mask, err) != 0 ||
                ac_grpo_loss(t->dlogits, &gm, t->logp, t->ref_logp, N, A, t->steps, n_steps, t->eps, n_eps,
                             &t->gcfg, err) != 0) {
                free(gmap);
                free(emap);
                goto out;
            }
            ac_policy_zero_grad(t->policy);
            if (ac_policy_backward(t->policy, t->dlogits, &ro->batch, err) != 0) {
                free(gmap);
                free(emap);
                goto out;
            }
            m->grad_norm = ac_optim_clip_grad_norm(t->policy->grads, t->policy->n_params, cfg->max_grad_norm);
            if (t->optim != NULL)
                ac_optim_step(t->optim, t->policy->params, t->policy->grads);
        }
        m->loss = gm.loss;
        m->kl = gm.kl_k3;
        m->kl_exact = gm.kl_exact;
        m->entropy = gm.entropy;
        m->clip_fraction = gm.clip_fraction;
    } else {
        double sum = 0;
        for (int e = 0; e < ro->n_eps; e++)
            sum += ro->eps[e].failed ? 0 : ro->eps[e].reward;
        m->avg_reward = scored ? sum / scored : 0.0;
    }
    free(gmap);
    free(emap);
    t->iteration++;
    m->iteration = t->iteration;
    m->wall_ms = (double)(ac_clock_mono_ns() - t0) / 1e6;
    ret = 0;
    goto out;
oom:
    ac_err_set(err, AC_ERR_INTERNAL, "trainer: out of memory");
out:
    free(signal);
    free(qidx);
    return ret;
}

int ac_trainer_save(const ac_trainer_t *t, const void *meta, size_t meta_len, uint8_t **buf, size_t *len,
                    ac_err_t *err)
{
    ac_checkpoint_t ck = {t->policy, t->optim, t->rng, t->iteration, (uint8_t *)meta, meta_len};
    return ac_checkpoint_save(buf, len, &ck, err);
}

int ac_trainer_restore(ac_trainer_t *t, const uint8_t *buf, size_t len, char **meta, size_t *meta_len,
                       ac_err_t *err)
{
    ac_checkpoint_t ck;
    if (ac_checkpoint_load(&ck, buf, len, err) != 0)
        return -1;
    if (ck.policy->n_params != t->policy->n_params || (t->optim && (!ck.optim || ck.optim->n != t->optim->n))) {
        ac_checkpoint_release(&ck);
        return ac_err_set(err, AC_ERR_INVALID_PARAMS, "checkpoint: made for another policy shape");
    }
    memcpy(t->policy->params, ck.policy->params, sizeof(float) * t->policy->n_params);
    if (t->optim != NULL) {
        memcpy(t->optim->m, ck.optim->m, sizeof(float) * t->optim->n);
        memcpy(t->optim->v, ck.optim->v, sizeof(float) * t->optim->n);
        t->optim->step = ck.optim->step;
    }
    t->rng = ck.rng;
    t->iteration = ck.iteration;
    if (meta != NULL) {
        *meta = NULL;
        *meta_len = ck.meta_len;
        if (ck.meta_len > 0 && (*meta = malloc(ck.meta_len + 1)) != NULL) {
            memcpy(*meta, ck.meta, ck.meta_len);
            (*meta)[ck.meta_len] = 0;
        }
    }
    ac_checkpoint_release(&ck);
    return 0;
}
