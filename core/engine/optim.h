/* Adam over a flat parameter buffer, and global-norm gradient clipping.
 *
 * The policy keeps every parameter in one float array, so the optimiser is a single loop; its
 * state (two moment arrays and the step count) is what a checkpoint stores. */
#ifndef AC_OPTIM_H
#define AC_OPTIM_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

typedef struct ac_optim_config {
    float lr;           /* learning rate, > 0 */
    float beta1;        /* default 0.9 */
    float beta2;        /* default 0.999 */
    float eps;          /* default 1e-8 */
    float weight_decay; /* decoupled (AdamW): p -= lr * weight_decay * p; default 0 */
} ac_optim_config_t;

#define AC_OPTIM_MAX_GROUPS 16

typedef struct ac_optim {
    ac_optim_config_t cfg;
    size_t n;     /* parameters */
    int64_t step; /* updates done; bias correction uses step after increment */
    float *m;     /* (n) first moment; owned */
    float *v;     /* (n) second moment; owned */
    /* learning-rate multipliers by parameter range: [group_end[g-1], group_end[g]) uses
     * lr * group_scale[g]; parameters past the last group use lr. Not part of the state a
     * checkpoint keeps: the policy sets them from its layout. */
    int n_groups;
    size_t group_end[AC_OPTIM_MAX_GROUPS];
    float group_scale[AC_OPTIM_MAX_GROUPS];
} ac_optim_t;

/* lr = 1e-3 and the defaults above. */
void ac_optim_config_default(ac_optim_config_t *cfg);

/* Zeroed moments, step 0. NULL with AC_ERR_INVALID_PARAMS (bad hyper-parameter: lr <= 0,
 * betas outside [0, 1), eps <= 0, weight_decay < 0) or AC_ERR_INTERNAL (memory). */
ac_optim_t *ac_optim_create(size_t n, const ac_optim_config_t *cfg, ac_err_t *err);
/* NULL: no-op. */
void ac_optim_destroy(ac_optim_t *o);

/* Sets the learning-rate multipliers of n consecutive parameter ranges ending at ends[i]
 * (non-decreasing, <= o->n) with scale[i] > 0. AC_ERR_INVALID_PARAMS otherwise. */
int ac_optim_set_lr_scale(ac_optim_t *o, const size_t *ends, const float *scale, int n, ac_err_t *err);

/* One Adam update: step += 1; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
 * params -= lr * (m / (1 - b1^step)) / (sqrt(v / (1 - b2^step)) + eps) + lr * wd * params.
 * params, grads (o->n). */
void ac_optim_step(ac_optim_t *o, float *params, const float *grads);

/* Global L2 norm of grads (n), accumulated in double. When max_norm > 0 and the norm exceeds it,
 * scales grads by max_norm / norm. Returns the norm before clipping (log it: it shows
 * instability before the loss does). max_norm <= 0 only measures. */
double ac_optim_clip_grad_norm(float *grads, size_t n, double max_norm);

#endif
