/* Adam against hand-computed values; weight decay; global-norm clipping. */
#include <stdlib.h>

#include "engine_check.h"
#include "engine/optim.h"

static void test_adam(void)
{
    ac_err_t err = AC_ERR_INIT;
    ac_optim_config_t c;
    ac_optim_config_default(&c);
    CHECK(c.beta1 == 0.9f && c.beta2 == 0.999f && c.eps == 1e-8f && c.weight_decay == 0);
    c.lr = 0.1f;
    ac_optim_t *o = ac_optim_create(4, &c, &err);
    CHECK(o != NULL && o->step == 0);
    float p[4] = {1, -2, 0.5f, 0};
    float g1[4] = {0.1f, -0.2f, 0, 1e-3f};
    float g2[4] = {-0.3f, 0.1f, 0.2f, 1e-3f};
    /* Step 1: bias-corrected m = g, v = g^2, so each weight moves by lr * g / (|g| + eps):
     * 1 - 0.1 * 0.1/(0.1 + 1e-8) = 0.90000001; a zero gradient does not move its weight. */
    ac_optim_step(o, p, g1);
    float want1[4] = {0.900000010f, -1.900000005f, 0.5f, -0.0999990000f};
    check_close(p, want1, 4, 1e-6, 1e-7, "adam step 1");
    /* Step 2, weight 0 by hand: m = .9*.01 + .1*(-.3) = -.021, v = .999*1e-5 + .001*.09 = 9.999e-5;
     * m^ = -.021/.19 = -.110526, v^ = 9.999e-5/.001999 = .050020, sqrt = .223651;
     * p = .9 - .1 * (-.110526/.223651) = .949419. */
    ac_optim_step(o, p, g2);
    float want2[4] = {0.94941899f, -1.87336630f, 0.42558632f, -0.19999800f};
    check_close(p, want2, 4, 1e-6, 1e-7, "adam step 2");
    CHECK(o->step == 2);
    ac_optim_destroy(o);

    /* decoupled weight decay: with a zero gradient only the decay acts, p *= 1 - lr * wd */
    c.weight_decay = 0.5f;
    o = ac_optim_create(2, &c, &err);
    float q[2] = {2, -4}, zero[2] = {0, 0};
    ac_optim_step(o, q, zero);
    float wantq[2] = {2 * 0.95f, -4 * 0.95f};
    check_close(q, wantq, 2, 1e-7, 0, "weight decay");
    ac_optim_destroy(o);

    /* bad hyper-parameters are refused with the field named */
    c.lr = 0;
    CHECK(ac_optim_create(2, &c, &err) == NULL && err.code == AC_ERR_INVALID_PARAMS);
    c.lr = 0.1f;
    c.beta2 = 1.0f;
    CHECK(ac_optim_create(2, &c, &err) == NULL && err.code == AC_ERR_INVALID_PARAMS);
    ac_err_clear(&err);
    ac_optim_destroy(NULL);
}

static void test_clip(void)
{
    float g[2] = {3, 4};
    double n = ac_optim_clip_grad_norm(g, 2, 1.0);
    float want[2] = {0.6f, 0.8f};
    check_scalar(n, 5.0, 0, 1e-12, "pre-clip norm");
    check_close(g, want, 2, 1e-6, 0, "clipped");
    float h[2] = {3, 4}, hw[2] = {3, 4};
    check_scalar(ac_optim_clip_grad_norm(h, 2, 10.0), 5.0, 0, 1e-12, "norm below max");
    check_close(h, hw, 2, 0, 0, "not clipped");
    check_scalar(ac_optim_clip_grad_norm(h, 2, 0.0), 5.0, 0, 1e-12, "measure only");
    check_close(h, hw, 2, 0, 0, "max_norm 0");
    /* a large vector: the norm is accumulated in double */
    enum { n_big = 1000000 };
    float *big = malloc(sizeof(float) * n_big);
    for (int i = 0; i < n_big; i++)
        big[i] = 1e-3f;
    check_scalar(ac_optim_clip_grad_norm(big, n_big, 0), 1.0, 1e-6, 0, "norm 1e6 terms");
    free(big);
}

int main(void)
{
    test_adam();
    test_clip();
    return test_result("test_optim");
}
