#include "server.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "app.h"
#include "http.h"
#include "rpc.h"
#include "training.h"

#define GRACE_MS 10000

static ac_auth_t *create_auth(const ac_config_t *cfg, ac_err_t *err)
{
    int hs = strcmp(cfg->auth_alg, "HS256") == 0;
    ac_auth_config_t ac = {
        .alg = cfg->auth_alg,
        .secret = hs ? cfg->auth_secret : NULL,
        .public_key_file = hs ? NULL : cfg->auth_public_key_file,
        .private_key_file = hs ? NULL : cfg->auth_private_key_file,
        .issuer = cfg->auth_issuer,
        .audience = cfg->auth_audience,
        .leeway_s = cfg->auth_leeway_s,
    };
    return ac_auth_create(&ac, err);
}

ac_auth_t *ac_server_auth(const ac_config_t *cfg, ac_err_t *err)
{
    return create_auth(cfg, err);
}

int ac_server_run(const ac_config_t *cfg, ac_err_t *err)
{
    /* Signals go to this thread only (sigwait below); every thread created later inherits the
     * mask. A client that vanishes must not kill the process with SIGPIPE. */
    sigset_t stop_set;
    sigemptyset(&stop_set);
    sigaddset(&stop_set, SIGTERM);
    sigaddset(&stop_set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop_set, NULL);
    signal(SIGPIPE, SIG_IGN);

    int ret = -1;
    ac_app_t app = {cfg, NULL, NULL, NULL, NULL, NULL};
    ac_rpc_t *rpc = NULL;
    ac_http_t *http = NULL;
    if ((app.store = ac_store_open(cfg->data_dir, err)) == NULL)
        goto out;
    if ((app.auth = create_auth(cfg, err)) == NULL)
        goto out;
    if ((app.rl = ac_ratelimit_create(cfg->rate)) == NULL ||
        (rpc = ac_rpc_create(ac_training_methods, &app, app.auth, app.rl, cfg)) == NULL) {
        ac_err_set(err, AC_ERR_INTERNAL, "out of memory");
        goto out;
    }
    if ((http = ac_http_create(cfg, rpc, err)) == NULL)
        goto out;
    if ((app.webhooks = ac_webhooks_start(cfg, app.store, err)) == NULL ||
        (app.workers = ac_workers_start(cfg, app.store, err)) == NULL || ac_http_start(http, err) != 0)
        goto out;

    /* the real port, which differs from the config's with port 0 */
    const char *colon = strrchr(cfg->listen[0], ':');
    printf("agentcore: listening on http://%.*s:%d port=%d", (int)(colon - cfg->listen[0]), cfg->listen[0],
           ac_http_port(http, 0), ac_http_port(http, 0));
    if (cfg->tls_listen != NULL)
        printf(" tls_port=%d", ac_http_tls_port(http));
    printf(" threads=%d data=%s\n", cfg->threads, cfg->data_dir);
    fflush(stdout);

    int sig = 0;
    sigwait(&stop_set, &sig);
    fprintf(stderr, "agentcore: %s received, finishing in-flight requests\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    ac_http_stop(http, GRACE_MS);
    ret = 0;
out:
    ac_workers_stop(app.workers); /* running jobs stop between iterations and resume at restart */
    ac_webhooks_stop(app.webhooks); /* undelivered events stay in the outbox */
    ac_http_destroy(http);
    ac_rpc_destroy(rpc);
    ac_ratelimit_destroy(app.rl);
    ac_auth_destroy(app.auth);
    ac_store_close(app.store); /* LMDB closed cleanly: nothing to recover at the next start */
    if (ret == 0)
        fprintf(stderr, "agentcore: stopped\n");
    return ret;
}
