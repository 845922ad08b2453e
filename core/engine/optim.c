#include "engine/optim.h"

#include <math.h>
#include <stdlib.h>

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

void ac_optim_step(ac_optim_t *o, float *params, const float *grads)
{
    const float b1 = o->cfg.beta1, b2 = o->cfg.beta2, eps = o->cfg.eps;
    o->step++;
    /* Bias corrections folded into two scalars, computed in double: pow at large step counts
     * must not lose the tiny 1 - b^t. */
    const float step_size = (float)(o->cfg.lr / (1.0 - pow(b1, (double)o->step)));
    const float inv_sqrt_c2 = (float)(1.0 / sqrt(1.0 - pow(b2, (double)o->step)));
    const float decay = o->cfg.lr * o->cfg.weight_decay;
    float *m = o->m, *v = o->v;
    for (size_t i = 0; i < o->n; i++) {
        float g = grads[i];
        m[i] = b1 * m[i] + (1.0f - b1) * g;
        v[i] = b2 * v[i] + (1.0f - b2) * g * g;
        float denom = sqrtf(v[i]) * inv_sqrt_c2 + eps;
        params[i] -= step_size * m[i] / denom + decay * params[i];
    }
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
