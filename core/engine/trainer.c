#include "engine/trainer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/checkpoint.h"
#include "base/clock.h"

/* The update reads at most this many tokens (sequence) or states (bag) per slice: the sequence
 * reader's workspace keeps about 10 KB per token for its backward. */
#define SLICE_TOKENS 8192
#define SLICE_STATES 4096

void ac_trainer_policy_config(ac_actor_config_t *pc, const ac_train_config_t *cfg, const ac_agent_t *agent,
                              uint64_t seed)
{
    memset(pc, 0, sizeof *pc);
    pc->kind = cfg->policy_kind;
    pc->reader = AC_ACTOR_READER_CURRENT;
    pc->n_tools = agent->n_actions;
    for (int a = 0; a < agent->n_actions; a++)
        pc->n_args[a] = agent->tools[a].n_args;
    pc->max_tokens = cfg->max_tokens;
    pc->seed = seed;
    pc->n_buckets = cfg->n_buckets;
    pc->d_emb = cfg->embed_dim;
    pc->hidden = cfg->hidden_size;
    pc->enc = (ac_encoder_config_t){cfg->d_model, cfg->n_heads, cfg->n_layers, cfg->d_ff, cfg->max_tokens};
}

static void grpo_config(ac_grpo_config_t *g, const ac_train_config_t *cfg, int max_steps, int max_args)
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
    g->advantage = cfg->advantage;
    g->max_tokens = max_steps * (1 + max_args); /* a tool and its arguments per step */
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
    grpo_config(&t->gcfg, cfg, max_steps, agent->max_args);
    ac_actor_config_t pc;
    ac_trainer_policy_config(&pc, cfg, agent, seed);
    ac_optim_config_t oc;
    ac_optim_config_default(&oc);
    oc.lr = (float)cfg->learning_rate;
    /* the RNG stream is separate from the initialisation's */
    ac_rng_seed(&t->rng, seed ^ 0x9e3779b97f4a7c15ULL);
    if ((t->policy = ac_actor_create(&pc, err)) == NULL || (t->ref = ac_actor_clone(t->policy, err)) == NULL ||
        (oc.lr > 0 && (t->optim = ac_optim_create(ac_actor_n_params(t->policy), &oc, err)) == NULL) ||
        ac_rollout_init(&t->ro, agent->n_actions, err) != 0) {
        ac_trainer_destroy(t);
        return NULL;
    }
    if (t->optim != NULL) {
        size_t ends[8];
        float scale[8];
        int n = ac_actor_lr_groups(t->policy, ends, scale);
        if (ac_optim_set_lr_scale(t->optim, ends, scale, n, err) != 0) {
            ac_trainer_destroy(t);
            return NULL;
        }
    }
    return t;
}

int ac_trainer_set_threads(ac_trainer_t *t, int n, ac_err_t *err)
{
    ac_encoder_t *policy = ac_actor_encoder(t->policy), *ref = ac_actor_encoder(t->ref);
    if (policy != NULL && ac_encoder_set_threads(policy, n, err) != 0)
        return -1;
    return ref != NULL ? ac_encoder_set_threads(ref, n, err) : 0;
}

void ac_trainer_destroy(ac_trainer_t *t)
{
    if (t == NULL)
        return;
    ac_rollout_free(&t->ro);
    ac_actor_destroy(t->policy);
    ac_actor_destroy(t->ref);
    ac_optim_destroy(t->optim);
    ac_states_free(&t->states);
    free(t->ep_advantage);
    free(t->ep_norm_reward);
    free(t->logp);
    free(t->ref_logp);
    free(t->dlogits);
    free(t->dec);
    free(t->tokens);
    free(t->steps);
    free(t->eps);
    free(t->slices);
    free(t->smap);
    free(t->emap);
    free(t->gmap);
    free(t->signal);
    free(t->first_adv);
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

/* logp, ref_logp and dlogits: n floats each, grown together. */
static int reserve_flat(ac_trainer_t *t, size_t n)
{
    if (n <= t->cap_flat)
        return 0;
    size_t cap = n > 2 * t->cap_flat ? n : 2 * t->cap_flat;
    float **bufs[3] = {&t->logp, &t->ref_logp, &t->dlogits};
    for (int i = 0; i < 3; i++) {
        float *p = realloc(*bufs[i], sizeof(float) * cap);
        if (p == NULL)
            return -1;
        *bufs[i] = p;
    }
    t->cap_flat = cap;
    return 0;
}

/* A group carries signal when its scored episodes do not all have the same reward.
 * signal (ro->n_groups) out. */
static void group_signal(const ac_rollout_t *ro, uint8_t *signal)
{
    for (int g = 0; g < ro->n_groups; g++) {
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

/* ---- one iteration ------------------------------------------------------------------------- */

/* The rollouts of an iteration. DAPO's dynamic sampling keeps drawing groups in place of those
 * without signal until the batch has B useful ones or the iteration has spent its rollout cap
 * (dapo_max_draws x B x G); the other loss types draw B groups once. t->signal ends up with
 * one flag per group (1: carries signal). Returns 0 (m->budget_exhausted, m->stopped and
 * m->zero_var_stall say how it ended) or -1. */
static int collect(ac_trainer_t *t, const json_t *training, int64_t budget_micro, ac_iter_metrics_t *m,
                   ac_err_t *err)
{
    const ac_train_config_t *cfg = &t->cfg;
    const int B = cfg->batch_size, G = cfg->n_trajectories_per_query;
    const int n_queries = (int)json_array_size(training);
    const int dapo = cfg->loss_type == AC_LOSS_DAPO;
    const long cap = dapo ? (long)cfg->dapo_max_draws * B * G : (long)B * G;
    int *qidx = malloc(sizeof *qidx * (size_t)B);
    if (qidx == NULL)
        return ac_err_set(err, AC_ERR_INTERNAL, "trainer: out of memory");
    ac_rollout_clear(&t->ro);
    int useful = 0, ret = 0;
    for (int need = B; need > 0;) {
        long room = (cap - t->ro.n_eps) / G; /* groups the cap still allows */
        if (room < need)
            need = (int)room;
        if (need <= 0)
            break;
        ac_rollout_spec_t spec = {t->agent, t->reward, t->policy, &t->rng, training, qidx, need, G,
                                  cfg->max_steps_per_trajectory, 1.0f, t->step_cost_micro,
                                  budget_micro < 0 ? -1 : budget_micro, t->stop, t->seed,
                                  (int64_t)t->iteration + 1};
        if (sample_queries(t, n_queries, qidx, need) != 0 || ac_rollout_run(&t->ro, &spec, err) != 0) {
            ret = err->code ? -1 : ac_err_set(err, AC_ERR_INTERNAL, "trainer: out of memory");
            break;
        }
        m->budget_exhausted = t->ro.budget_exhausted;
        m->stopped = t->ro.stopped;
        if (m->budget_exhausted || m->stopped)
            break;
        if (ensure((void **)&t->signal, &t->cap_signal, t->ro.n_groups, 1) != 0) {
            ret = ac_err_set(err, AC_ERR_INTERNAL, "trainer: out of memory");
            break;
        }
        group_signal(&t->ro, t->signal);
        useful = 0;
        for (int g = 0; g < t->ro.n_groups; g++)
            useful += t->signal[g];
        if (!dapo)
            break;
        need = B - useful;
    }
    if (dapo && ret == 0 && !m->budget_exhausted && !m->stopped && useful < B) {
        m->zero_var_stall = 1; /* the cap was hit before the batch filled */
        m->groups_short = B - useful;
    }
    free(qidx);
    return ret;
}

/* What every rollout says, whether or not it trains: rewards and success over all scored
 * episodes, failures, cost, groups without signal in the first draw. */
static void summarize(const ac_trainer_t *t, ac_iter_metrics_t *m)
{
    const ac_rollout_t *ro = &t->ro;
    const int B = t->cfg.batch_size;
    double sum = 0, sq = 0;
    int scored = 0, successes = 0, flat = 0;
    for (int e = 0; e < ro->n_eps; e++) {
        const ac_episode_rec_t *ep = &ro->eps[e];
        if (ep->failed)
            continue;
        scored++;
        successes += ep->success != 0;
        sum += ep->reward;
        sq += ep->reward * ep->reward;
    }
    for (int g = 0; g < ro->n_groups && g < B; g++)
        flat += !t->signal[g];
    double mean = scored ? sum / scored : 0.0, var = scored ? sq / scored - mean * mean : 0.0;
    m->avg_reward = mean;
    m->reward_std = sqrt(var > 0 ? var : 0);
    m->success_rate = scored ? (double)successes / scored : 0.0;
    m->zero_var_frac = ro->n_groups ? (double)flat / (ro->n_groups < B ? ro->n_groups : B) : 0.0;
    m->trajectories = ro->n_eps;
    m->steps = ro->n_steps;
    m->tool_failures = ro->tool_failures;
    m->agent_failures = ro->agent_failures;
    m->reward_failures = ro->reward_failures;
    m->failed_episodes = ro->failed_episodes;
    m->cost_micro = ro->cost_micro;
}

/* Each scored episode's reward normalised within its group, (R - mean) / (std + eps), for the
 * export API whatever the loss does with it: grpo.c's own group statistics, one step per
 * episode. t->ep_norm_reward (ro->n_eps), NaN for failed episodes. */
static int normalized_rewards(ac_trainer_t *t, ac_err_t *err)
{
    const ac_rollout_t *ro = &t->ro;
    int n = ro->n_eps;
    ac_grpo_episode_t *eps = malloc(sizeof *eps * (size_t)(n ? n : 1));
    ac_grpo_step_t *st = malloc(sizeof *st * (size_t)(n ? n : 1));
    int *of = malloc(sizeof *of * (size_t)(n ? n : 1));
    if (eps == NULL || st == NULL || of == NULL) {
        free(eps), free(st), free(of);
        return ac_err_set(err, AC_ERR_INTERNAL, "trainer: out of memory");
    }
    int k = 0;
    for (int e = 0; e < n; e++) {
        t->ep_norm_reward[e] = NAN;
        if (ro->eps[e].failed)
            continue;
        eps[k] = (ac_grpo_episode_t){ro->eps[e].group, (float)ro->eps[e].reward, 0};
        st[k] = (ac_grpo_step_t){k, 0, 0};
        of[k++] = e;
    }
    ac_grpo_config_t gc;
    ac_grpo_config_default(&gc); /* group, scaled by the std */
    int rc = k > 0 ? ac_grpo_advantages(st, NULL, k, eps, k, &gc, err) : 0;
    for (int i = 0; rc == 0 && i < k; i++)
        t->ep_norm_reward[of[i]] = st[i].advantage;
    free(eps), free(st), free(of);
    return rc;
}

/* Room for one more decision, step and slice. */
static int grow_batch(ac_trainer_t *t, int dec, int steps, int slices)
{
    return ensure((void **)&t->dec, &t->cap_dec, dec, sizeof *t->dec) ||
           ensure((void **)&t->tokens, &t->cap_tokens, dec, sizeof *t->tokens) ||
           ensure((void **)&t->steps, &t->cap_steps, steps, sizeof *t->steps) ||
           ensure((void **)&t->slices, &t->cap_slices, slices, sizeof *t->slices);
}

/* Appends one decision (and its GRPO token) of batch step `step`, with its options at the end of
 * the flat arrays of the current slice. */
static void add_decision(ac_trainer_t *t, const ac_decision_t *d, float logp_old)
{
    ac_trainer_slice_t *sl = &t->slices[t->n_slices - 1];
    ac_decision_t *x = &t->dec[t->n_dec];
    *x = *d;
    x->off = t->n_flat - sl->f0;
    t->tokens[t->n_dec] = (ac_grpo_token_t){t->n_steps, x->off, x->n, x->chosen, logp_old, 0};
    t->n_dec++;
    t->n_flat += (size_t)x->n;
    sl->d1 = t->n_dec;
    sl->f1 = t->n_flat;
}

/* Does a decision count in the loss (more than one legal option, episode not masked)? The same
 * rule as ac_grpo_loss, known before any forward: it sets the batch-wide normalisers. */
static int counts(const ac_trainer_t *t, const ac_decision_t *d, int truncated)
{
    if (t->gcfg.mask_truncated && truncated)
        return 0;
    if (d->slot >= 0 || d->mask == NULL)
        return d->n > 1;
    int legal = 0;
    for (int a = 0; a < d->n; a++)
        legal += d->mask[a] != 0;
    return legal > 1;
}

/* One episode's steps into the batch: its states copied (episodes stay contiguous, so the actor
 * reads whole episodes per slice), a tool decision and one decision per argument per step. */
static int add_episode(ac_trainer_t *t, const ac_episode_rec_t *ep, int be, int *used, int *eps_used, ac_err_t *err)
{
    ac_rollout_t *ro = &t->ro;
    const int A = t->agent->n_actions, seq = t->cfg.policy_kind == AC_ACTOR_SEQUENCE;
    int toks = 0, used_here = 0;
    for (int i = ep->first_step; i >= 0; i = ro->steps[i].next)
        toks += ro->states.off[ro->steps[i].state + 1] - ro->states.off[ro->steps[i].state];
    ac_trainer_slice_t *sl = t->n_slices ? &t->slices[t->n_slices - 1] : NULL;
    int in_slice = sl ? (seq ? t->states.off[sl->st1] - t->states.off[sl->st0] : sl->st1 - sl->st0) : 0;
    if (sl == NULL || (in_slice > 0 && in_slice + (seq ? toks : ep->n_steps) > (seq ? SLICE_TOKENS : SLICE_STATES))) {
        if (grow_batch(t, t->n_dec + 1, t->n_steps + 1, t->n_slices + 1) != 0)
            return ac_err_set(err, AC_ERR_INTERNAL, "trainer: out of memory");
        t->slices[t->n_slices++] = (ac_trainer_slice_t){t->states.n, t->states.n, t->n_dec, t->n_dec, t->n_flat,
                                                        t->n_flat};
    }
    int k = 0;
    for (int i = ep->first_step; i >= 0; i = ro->steps[i].next, k++) {
        const ac_step_rec_t *s = &ro->steps[i];
        /* a state several episodes share is read once per slice: its decisions' gradients add up */
        int *m = t->smap + 2 * (size_t)s->state, st = m[0] == t->n_slices ? m[1] : -1;
        if (st < 0 && (st = ac_states_copy(&t->states, &ro->states, s->state, err)) >= 0) {
            m[0] = t->n_slices;
            m[1] = st;
        }
        if (st < 0 || grow_batch(t, t->n_dec + 1 + s->n_slots, t->n_steps + 1, t->n_slices) != 0 ||
            reserve_flat(t, t->n_flat + (size_t)A + (size_t)s->n_slots * AC_ACTOR_MAX_CANDS) != 0)
            return ac_err_set(err, AC_ERR_INTERNAL, "trainer: out of memory");
        t->slices[t->n_slices - 1].st1 = t->states.n;
        ac_decision_t d = {st, s->action, -1, 0, A, ro->mask + (size_t)s->mask_row * A, NULL, NULL, 0, s->action};
        used_here += counts(t, &d, ep->truncated);
        add_decision(t, &d, s->logp_old);
        for (int j = 0; j < s->n_slots; j++) {
            d = (ac_decision_t){st, s->action, j, 0, s->n_cand[j], NULL, ro->cand + s->cand_off[j], s->chosen_tok, j,
                                s->chosen[j]};
            used_here += counts(t, &d, ep->truncated);
            add_decision(t, &d, s->slot_logp_old[j]);
        }
        t->steps[t->n_steps++] = (ac_grpo_step_t){be, ep->step_rewards ? (float)ep->step_rewards[k] : 0, 0};
    }
    *used += used_here;
    *eps_used += used_here > 0;
    return 0;
}

/* The update's inputs: the kept episodes (not failed, with steps, in a group with signal when
 * DAPO drops the others), their steps and decisions, in slices. Returns how many decisions. */
static int build_batch(ac_trainer_t *t, ac_err_t *err)
{
    ac_rollout_t *ro = &t->ro;
    const int dapo = t->cfg.loss_type == AC_LOSS_DAPO;
    if (ensure((void **)&t->eps, &t->cap_eps, ro->n_eps, sizeof *t->eps) ||
        ensure((void **)&t->smap, &t->cap_smap, 2 * ro->states.n, sizeof *t->smap) ||
        ensure((void **)&t->emap, &t->cap_emap, ro->n_eps, sizeof *t->emap) ||
        ensure((void **)&t->gmap, &t->cap_gmap, ro->n_groups, sizeof *t->gmap))
        return ac_err_set(err, AC_ERR_INTERNAL, "trainer: out of memory");
    ac_states_clear(&t->states);
    for (int i = 0; i < 2 * ro->states.n; i++)
        t->smap[i] = -1;
    t->n_dec = t->n_steps = t->n_slices = 0;
    t->n_flat = 0;
    int n_groups = 0;
    for (int g = 0; g < ro->n_groups; g++)
        t->gmap[g] = (!dapo || t->signal[g]) ? n_groups++ : -1;
    int n_eps = 0, all_step_rewards = 1, used = 0, eps_used = 0;
    for (int e = 0; e < ro->n_eps; e++) {
        const ac_episode_rec_t *ep = &ro->eps[e];
        t->emap[e] = -1;
        if (ep->failed || t->gmap[ep->group] < 0 || ep->n_steps == 0)
            continue;
        t->emap[e] = n_eps;
        t->eps[n_eps] = (ac_grpo_episode_t){t->gmap[ep->group], (float)ep->reward, ep->truncated};
        all_step_rewards &= ep->step_rewards != NULL;
        if (add_episode(t, ep, n_eps, &used, &eps_used, err) != 0)
            return -1;
        n_eps++;
    }
    t->n_batch_eps = n_eps;
    t->gcfg.per_step_rewards = all_step_rewards && n_eps > 0;
    t->gcfg.norm_tokens = used;
    t->gcfg.norm_episodes = eps_used;
    return t->n_dec;
}

/* Adds a slice's loss metrics into the batch's (means weighted by the decisions counted). */
static void add_metrics(ac_grpo_metrics_t *sum, const ac_grpo_metrics_t *m, int first)
{
    if (first) {
        *sum = *m;
        return;
    }
    int n0 = sum->n_tokens_used, n1 = m->n_tokens_used, n = n0 + n1;
    double w0 = n ? (double)n0 / n : 0, w1 = n ? (double)n1 / n : 0;
    sum->loss += m->loss;
    sum->surrogate = w0 * sum->surrogate + w1 * m->surrogate;
    sum->kl_k3 = w0 * sum->kl_k3 + w1 * m->kl_k3;
    sum->kl_exact = w0 * sum->kl_exact + w1 * m->kl_exact;
    sum->entropy = w0 * sum->entropy + w1 * m->entropy;
    sum->clip_low = w0 * sum->clip_low + w1 * m->clip_low;
    sum->clip_high = w0 * sum->clip_high + w1 * m->clip_high;
    sum->clip_region = w0 * sum->clip_region + w1 * m->clip_region;
    sum->ratio_mean = w0 * sum->ratio_mean + w1 * m->ratio_mean;
    sum->ratio_min = fmin(sum->ratio_min, m->ratio_min);
    sum->ratio_max = fmax(sum->ratio_max, m->ratio_max);
    sum->n_tokens_used = n;
}

/* One epoch: every slice's forward, loss and backward (the gradients add up to the batch's). */
static int epoch(ac_trainer_t *t, ac_grpo_metrics_t *gm, ac_err_t *err)
{
    ac_actor_zero_grad(t->policy);
    for (int j = 0; j < t->n_slices; j++) {
        const ac_trainer_slice_t *sl = &t->slices[j];
        ac_grpo_metrics_t m = *gm;
        if (ac_actor_forward(t->policy, &t->states, sl->st0, sl->st1 - sl->st0, t->dec + sl->d0, sl->d1 - sl->d0,
                             t->logp + sl->f0, err) != 0 ||
            ac_grpo_loss(t->dlogits + sl->f0, &m, t->logp + sl->f0, t->ref_logp + sl->f0, sl->f1 - sl->f0,
                         t->tokens + sl->d0, sl->d1 - sl->d0, t->steps, t->n_steps, t->eps, t->n_batch_eps, &t->gcfg,
                         err) != 0 ||
            ac_actor_backward(t->policy, t->dlogits + sl->f0, err) != 0)
            return -1;
        add_metrics(gm, &m, j == 0);
    }
    return 0;
}

/* mu epochs of clipped-surrogate updates over the batch build_batch made. */
static int update(ac_trainer_t *t, ac_iter_metrics_t *m, ac_err_t *err)
{
    ac_rollout_t *ro = &t->ro;
    ac_grpo_metrics_t gm;
    if (ac_grpo_advantages(t->steps, &gm, t->n_steps, t->eps, t->n_batch_eps, &t->gcfg, err) != 0)
        return -1;
    for (int j = 0; j < t->n_slices; j++) {
        const ac_trainer_slice_t *sl = &t->slices[j];
        if (ac_actor_forward(t->ref, &t->states, sl->st0, sl->st1 - sl->st0, t->dec + sl->d0, sl->d1 - sl->d0,
                             t->ref_logp + sl->f0, err) != 0)
            return -1;
    }
    /* an episode's advantage, as exported, is its first step's (all of them in outcome mode) */
    if (ensure((void **)&t->first_adv, &t->cap_first_adv, t->n_batch_eps, sizeof *t->first_adv) != 0)
        return ac_err_set(err, AC_ERR_INTERNAL, "trainer: out of memory");
    for (int k = t->n_steps - 1; k >= 0; k--)
        t->first_adv[t->steps[k].episode] = t->steps[k].advantage;
    for (int e = 0; e < ro->n_eps; e++)
        t->ep_advantage[e] = t->emap[e] >= 0 ? t->first_adv[t->emap[e]] : NAN;
    for (int k = 0; k < t->cfg.mu; k++) {
        if (epoch(t, &gm, err) != 0)
            return -1;
        m->grad_norm = ac_optim_clip_grad_norm(ac_actor_grads(t->policy), ac_actor_n_params(t->policy),
                                               t->cfg.max_grad_norm);
        if (t->optim != NULL)
            ac_optim_step(t->optim, ac_actor_params(t->policy), ac_actor_grads(t->policy));
    }
    m->loss = gm.loss;
    m->kl = gm.kl_k3;
    m->kl_exact = gm.kl_exact;
    m->entropy = gm.entropy;
    m->clip_low = gm.clip_low;
    m->clip_high = gm.clip_high;
    m->clip_region = gm.clip_region;
    m->clip_fraction = gm.clip_low + gm.clip_high;
    m->decisions = gm.n_tokens_used;
    return 0;
}

int ac_trainer_iterate(ac_trainer_t *t, const json_t *training, int64_t budget_micro, ac_iter_metrics_t *m,
                       ac_err_t *err)
{
    int64_t t0 = ac_clock_mono_ns();
    memset(m, 0, sizeof *m);
    if (json_array_size(training) == 0)
        return ac_err_set(err, AC_ERR_INVALID_PARAMS, "trainer: no training queries");
    ac_actor_set_temperature(t->policy, (float)t->cfg.temperature);
    ac_actor_set_temperature(t->ref, (float)t->cfg.temperature);
    /* an abandoned iteration leaves the trainer as it found it, RNG included: the iteration done
     * later in its place is the one an uninterrupted run takes */
    const ac_rng_t rng_before = t->rng;
    if (collect(t, training, budget_micro, m, err) != 0)
        return -1;
    if (m->budget_exhausted || m->stopped) { /* no update; the iteration does not count */
        t->rng = rng_before;
        m->cost_micro = t->ro.cost_micro;
        m->trajectories = t->ro.n_eps;
        m->steps = t->ro.n_steps;
        return 0;
    }
    summarize(t, m);
    const int n = t->ro.n_eps ? t->ro.n_eps : 1;
    free(t->ep_advantage);
    free(t->ep_norm_reward);
    t->ep_advantage = malloc(sizeof(double) * (size_t)n);
    t->ep_norm_reward = malloc(sizeof(double) * (size_t)n);
    if (t->ep_advantage == NULL || t->ep_norm_reward == NULL)
        return ac_err_set(err, AC_ERR_INTERNAL, "trainer: out of memory");
    for (int e = 0; e < t->ro.n_eps; e++)
        t->ep_advantage[e] = NAN;
    if (normalized_rewards(t, err) != 0)
        return -1;
    int n_tok = build_batch(t, err);
    if (n_tok < 0 || (n_tok > 0 && update(t, m, err) != 0))
        return -1;
    for (int g = 0; g < t->ro.n_groups; g++)
        m->groups_used += t->gmap[g] >= 0;
    t->iteration++;
    m->iteration = t->iteration;
    m->wall_ms = (double)(ac_clock_mono_ns() - t0) / 1e6;
    return 0;
}

int ac_trainer_failures_exceed(int64_t failures, int64_t episodes, double max_rate, char *msg, size_t len)
{
    if (episodes <= 0 || failures <= 0 || (double)failures / (double)episodes <= max_rate)
        return 0;
    snprintf(msg, len, "plugin failures: %lld of %lld episodes (rate above %.2f)", (long long)failures,
             (long long)episodes, max_rate);
    return 1;
}

int ac_trainer_save(const ac_trainer_t *t, const void *meta, size_t meta_len, uint8_t **buf, size_t *len,
                    ac_err_t *err)
{
    ac_checkpoint_t ck = {t->policy, t->optim, t->rng, t->iteration, (uint8_t *)meta, meta_len};
    return ac_checkpoint_save(buf, len, &ck, err);
}

/* The policy and the reference read with src's feature set. */
static void read_as(ac_trainer_t *t, const ac_actor_t *src)
{
    const int reader = ac_actor_config(src)->reader; /* a loaded checkpoint's is known to this build */
    ac_actor_set_reader(t->policy, reader);
    ac_actor_set_reader(t->ref, reader);
}

/* Whether src's weights fit the trainer's policy: the same kind and parameter count. */
static int fits(const ac_trainer_t *t, const ac_actor_t *src)
{
    return ac_actor_n_params(src) == ac_actor_n_params(t->policy) &&
           ac_actor_config(src)->kind == ac_actor_config(t->policy)->kind;
}

int ac_trainer_start_from(ac_trainer_t *t, ac_actor_t *init)
{
    const size_t n = ac_actor_n_params(t->policy);
    if (!fits(t, init))
        return -1;
    memcpy(ac_actor_params(t->policy), ac_actor_params(init), sizeof(float) * n);
    memcpy(ac_actor_params(t->ref), ac_actor_params(init), sizeof(float) * n);
    read_as(t, init);
    return 0;
}

int ac_trainer_restore(ac_trainer_t *t, const uint8_t *buf, size_t len, char **meta, size_t *meta_len,
                       ac_err_t *err)
{
    ac_checkpoint_t ck;
    if (ac_checkpoint_load(&ck, buf, len, err) != 0)
        return -1;
    const size_t n = ac_actor_n_params(t->policy);
    if (!fits(t, ck.policy) || (t->optim && (!ck.optim || ck.optim->n != t->optim->n))) {
        ac_checkpoint_release(&ck);
        return ac_err_set(err, AC_ERR_INVALID_PARAMS, "checkpoint: made for another policy shape");
    }
    memcpy(ac_actor_params(t->policy), ac_actor_params(ck.policy), sizeof(float) * n);
    read_as(t, ck.policy);
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
