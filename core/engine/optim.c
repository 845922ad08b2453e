#include "engine/optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void ac_optim_config_default(ac_optim_config_t *c)
{
    c->lr = 1e-3f;
    c->beta1 = 0.9f;
    c->beta2 = 0.999f;
    c->eps = 1e-8f;
    c->weight_decay = 0.0f;
}

ac_optim_t *ac_optim_create(size_t n, const ac_optim_config_t *cfg, ac_err_t *err)
{
    if (!(cfg->lr > 0)) {
        ac_err_field(err, AC_ERR_INVALID_PARAMS, "learning_rate", "must be > 0");
        return NULL;
    }
    if (!(cfg->beta1 >= 0 && cfg->beta1 < 1) || !(cfg->beta2 >= 0 && cfg->beta2 < 1)) {
        ac_err_field(err, AC_ERR_INVALID_PARAMS, "beta", "beta1 and beta2 must be in [0, 1)");
        return NULL;
    }
    if (!(cfg->eps > 0) || !(cfg->weight_decay >= 0)) {
        ac_err_field(err, AC_ERR_INVALID_PARAMS, "eps", "eps must be > 0 and weight_decay >= 0");
        return NULL;
    }
    ac_optim_t *o = calloc(1, sizeof *o);
    if (o != NULL) {
        o->cfg = *cfg;
        o->n = n;
        o->m = calloc(n ? n : 1, sizeof(float));
        o->v = calloc(n ? n : 1, sizeof(float));
    }
    if (o == NULL || o->m == NULL || o->v == NULL) {
        ac_optim_destroy(o);
        ac_err_set(err, AC_ERR_INTERNAL, "optim: out of memory (%zu parameters)", n);
        return NULL;
    }
    return o;
}

void ac_optim_destroy(ac_optim_t *o)
{
    if (o == NULL)
        return;
    free(o->m);
    free(o->v);
    free(o);
}

int ac_optim_set_lr_scale(ac_optim_t *o, const size_t *ends, const float *scale, int n, ac_err_t *err)
{
    if (n < 0 || n > AC_OPTIM_MAX_GROUPS)
        return ac_err_set(err, AC_ERR_INVALID_PARAMS, "optim: %d groups (at most %d)", n, AC_OPTIM_MAX_GROUPS);
    for (int i = 0; i < n; i++)
        if ((i > 0 && ends[i] < ends[i - 1]) || ends[i] > o->n || !(scale[i] > 0))
            return ac_err_set(err, AC_ERR_INVALID_PARAMS, "optim: group %d (end %zu, scale %g) is invalid", i,
                              ends[i], (double)scale[i]);
    o->n_groups = n;
    memcpy(o->group_end, ends, sizeof *ends * (size_t)n);
    memcpy(o->group_scale, scale, sizeof *scale * (size_t)n);
    return 0;
}

/* Adam over params[from, to) with learning rate lr. */
static void adam_range(ac_optim_t *o, float *params, const float *grads, size_t from, size_t to, double lr)
{
    const float b1 = o->cfg.beta1, b2 = o->cfg.beta2, eps = o->cfg.eps;
    /* Bias corrections folded into two scalars, computed in double: pow at large step counts
     * must not lose the tiny 1 - b^t. */
    const float step_size = (float)(lr / (1.0 - pow(b1, (double)o->step)));
    const float inv_sqrt_c2 = (float)(1.0 / sqrt(1.0 - pow(b2, (double)o->step)));
    const float decay = (float)lr * o->cfg.weight_decay;
    float *m = o->m, *v = o->v;
    for (size_t i = from; i < to; i++) {
        float g = grads[i];
        m[i] = b1 * m[i] + (1.0f - b1) * g;
        v[i] = b2 * v[i] + (1.0f - b2) * g * g;
        float denom = sqrtf(v[i]) * inv_sqrt_c2 + eps;
        params[i] -= step_size * m[i] / denom + decay * params[i];
    }
}

void ac_optim_step(ac_optim_t *o, float *params, const float *grads)
{
    o->step++;
    size_t from = 0;
    for (int g = 0; g < o->n_groups; g++) {
        adam_range(o, params, grads, from, o->group_end[g], (double)o->cfg.lr * o->group_scale[g]);
        from = o->group_end[g];
    }
    adam_range(o, params, grads, from, o->n, o->cfg.lr);
}

double ac_optim_clip_grad_norm(float *grads, size_t n, double max_norm)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += (double)grads[i] * grads[i];
    double norm = sqrt(s);
    if (max_norm > 0 && norm > max_norm) {
        float scale = (float)(max_norm / norm);
        for (size_t i = 0; i < n; i++)
            grads[i] *= scale;
    }
    return norm;
}
