#include "net/http.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <h2o.h>
#include <h2o/http2.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "base/clock.h"

#define RPC_PATH "/api/v1/jsonrpc"
#define UI_PATH "/ui/"
/* The chart library the dashboard loads, from Debian's libjs-chart.js (never a copy of ours) */
#define UI_CHARTJS_URL "vendor/chart.min.js"
#define UI_CHARTJS_FILE "/usr/share/javascript/chart.js/chart.min.js"
#define UI_MAX_FILE_BYTES ((size_t)8 << 20)

typedef struct loop loop_t;
typedef struct req_guard req_guard_t;

/* A request handed to an RPC worker. It owns copies of what the worker needs, because the
 * client may go away (and h2o free the request) before the worker is done. */
typedef struct task {
    h2o_multithread_message_t super; /* the worker posts the task back to its loop with it */
    struct task *next;               /* worker queue */
    loop_t *loop;
    h2o_req_t *req;     /* NULL once the client has gone; touched on the loop thread only */
    req_guard_t *guard; /* likewise */
    char *body;         /* freed by the worker once handled */
    size_t len;
    int large;                 /* body above parse_on_loop_bytes: parsed on the worker, in a large slot */
    ac_principal_t principal;  /* authenticated on the loop, from the headers */
    ac_rpc_response_t resp;
} task_t;

/* Lives in the request's pool: its dispose callback tells the loop the request is gone. */
struct req_guard {
    loop_t *loop;
    task_t *task;
    int trim; /* the body or the response was large: return free heap to the kernel afterwards */
};

struct loop {
    ac_http_t *http;
    int index;
    pthread_t tid;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept_plain, accept_tls;
    h2o_socket_t *listeners[AC_MAX_LISTEN + 1];
    int n_listeners;
    h2o_multithread_receiver_t done_receiver; /* tasks back from the workers */
    h2o_multithread_receiver_t ctl_receiver;  /* stop and exit requests */
    h2o_multithread_message_t ctl_msg[2];
    /* loop-thread state */
    int in_flight;     /* requests whose pool is alive */
    int tasks_pending; /* tasks sent to workers and not yet back */
    int stopping;
    int exit_now;
    h2o_timeout_entry_t trim_entry; /* malloc_trim on the next turn of the loop (see schedule_trim) */
    atomic_int drained; /* read by the stopping thread */
};

typedef struct handler {
    h2o_handler_t super;
    ac_http_t *http;
} handler_t;

struct ac_http {
    const ac_config_t *cfg;
    ac_rpc_t *rpc;
    h2o_globalconf_t globalconf;
    SSL_CTX *ssl_ctx;
    int n_loops;
    loop_t *loops;
    int *fds; /* n_loops x (n_listen + tls) listening sockets */
    int n_addrs;
    int ports[AC_MAX_LISTEN + 1];
    int tls_port;
    int started;
    int ever_started; /* the listening sockets then belong to h2o */
    /* the RPC workers' queues: deferred calls (small bodies), and large bodies, of which at most
     * max_parallel_parses run at once and max_queued_parses wait (all under qlock) */
    pthread_mutex_t qlock;
    pthread_cond_t qcond;
    task_t *qhead, *qtail;
    task_t *lhead, *ltail;
    int large_waiting; /* in lhead's list, or about to be (a slot reserved by defer_request) */
    int large_running; /* taken by a worker and not yet finished */
    int qstop;
    pthread_t *workers;
    int n_workers;
    /* start-up barrier: loops register their receivers before anyone may message them */
    pthread_mutex_t ready_lock;
    pthread_cond_t ready_cond;
    int ready;
    ac_http_metrics_fn metrics;
    void *metrics_ud;
    ac_http_health_fn health;
    void *health_ud;
};

/* ---- responses ------------------------------------------------------------------------------ */

static const char *reason_of(int status)
{
    switch (status) {
    case 200: return "OK";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 304: return "Not Modified";
    case 401: return "Unauthorized";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 413: return "Payload Too Large";
    case 415: return "Unsupported Media Type";
    case 429: return "Too Many Requests";
    case 503: return "Service Unavailable";
    default: return "Internal Server Error";
    }
}

static void add_header_num(h2o_req_t *req, const char *name, size_t nlen, long long v)
{
    /* digits written straight into the request's pool: three of these on every response */
    char tmp[24];
    size_t n = 0;
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    do
        tmp[n++] = (char)('0' + u % 10);
    while ((u /= 10) != 0);
    if (v < 0)
        tmp[n++] = '-';
    char *out = h2o_mem_alloc_pool(&req->pool, n);
    for (size_t i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    h2o_add_header_by_str(&req->pool, &req->res.headers, name, nlen, 0, NULL, out, n);
}

static void send_body(h2o_req_t *req, int status, const char *ctype, const char *body, size_t len)
{
    static h2o_generator_t generator = {NULL, NULL};
    req->res.status = status;
    req->res.reason = reason_of(status);
    req->res.content_length = len; /* else HTTP/1.1 answers chunked */
    if (ctype != NULL)
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, ctype, strlen(ctype));
    h2o_iovec_t buf = h2o_strdup(&req->pool, body != NULL ? body : "", len);
    h2o_start_response(req, &generator);
    h2o_send(req, &buf, 1, H2O_SEND_STATE_FINAL);
}

static void free_linked(void *p)
{
    free(*(char **)p);
}

/* Like send_body for a malloc'd body, without copying it: the request's pool frees it. */
static void send_owned(h2o_req_t *req, int status, const char *ctype, char *body, size_t len)
{
    static h2o_generator_t generator = {NULL, NULL};
    char **slot = h2o_mem_alloc_shared(&req->pool, sizeof *slot, free_linked);
    *slot = body;
    req->res.status = status;
    req->res.reason = reason_of(status);
    req->res.content_length = len;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, ctype, strlen(ctype));
    h2o_iovec_t buf = h2o_iovec_init(body, len);
    h2o_start_response(req, &generator);
    h2o_send(req, &buf, 1, H2O_SEND_STATE_FINAL);
}

static void send_json(h2o_req_t *req, int status, const char *json)
{
    send_body(req, status, "application/json", json, strlen(json));
}

/* Sends an RPC response; its body moves to the request (r->body is NULL afterwards). */
static void send_rpc(h2o_req_t *req, req_guard_t *guard, ac_rpc_response_t *r)
{
    size_t trim_after = guard->loop->http->cfg->trim_after_bytes;
    if (trim_after > 0 && r->len > trim_after)
        guard->trim = 1;
    if (r->has_rate && r->rate.limit > 0) {
        add_header_num(req, H2O_STRLIT("x-ratelimit-limit"), r->rate.limit);
        add_header_num(req, H2O_STRLIT("x-ratelimit-remaining"), r->rate.remaining);
        add_header_num(req, H2O_STRLIT("x-ratelimit-reset"), r->rate.reset_s);
    }
    if (r->retry_after_s > 0)
        add_header_num(req, H2O_STRLIT("retry-after"), r->retry_after_s);
    if (r->unauthorized)
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_WWW_AUTHENTICATE, NULL,
                       H2O_STRLIT("Bearer error=\"invalid_token\""));
    if (r->status == 204 || r->body == NULL) {
        send_body(req, r->status == 204 ? 204 : 500, NULL, NULL, 0);
    } else {
        send_owned(req, r->status, "application/json", r->body, r->len);
        r->body = NULL;
    }
}

/* ---- memory ----------------------------------------------------------------------------------- */

/* glibc keeps freed heap memory for later mallocs (per arena) unless asked to give it back: after
 * a large request the process would stay at its peak size. malloc_trim(0) returns every whole free
 * page of every arena (a few ms for tens of MB freed), so it runs only after large requests. */
static void on_trim(h2o_timeout_entry_t *entry)
{
    (void)entry;
    malloc_trim(0);
}

/* Called when a large request's pool is disposed. h2o frees the request's body buffer after
 * that (HTTP/1.1: once the response is written, h2o_buffer_consume of the socket's input), in
 * the same callback: trimming on the next turn of the loop finds it freed. */
static void schedule_trim(loop_t *l)
{
    if (!h2o_timeout_is_linked(&l->trim_entry))
        h2o_timeout_link(l->ctx.loop, &l->ctx.zero_timeout, &l->trim_entry);
}

/* ---- deferred calls and large bodies ------------------------------------------------------------ */

static void task_free(task_t *t)
{
    free(t->body);
    ac_rpc_response_free(&t->resp);
    free(t);
}

static void on_guard_dispose(void *p)
{
    req_guard_t *g = p;
    g->loop->in_flight--;
    if (g->task != NULL) { /* the client left before the worker answered */
        g->task->req = NULL;
        g->task->guard = NULL;
    }
    if (g->trim)
        schedule_trim(g->loop);
}

/* The next task a worker may run, or NULL. Deferred calls first (they are few, and a client is
 * waiting on each); a large body only while fewer than max_parallel_parses run, so that large
 * bodies can never hold every worker. Called with qlock held. */
static task_t *take_task(ac_http_t *h)
{
    task_t *t = h->qhead;
    if (t != NULL) {
        if ((h->qhead = t->next) == NULL)
            h->qtail = NULL;
        return t;
    }
    t = h->lhead;
    if (t == NULL || h->large_running >= h->cfg->max_parallel_parses)
        return NULL;
    if ((h->lhead = t->next) == NULL)
        h->ltail = NULL;
    h->large_waiting--;
    h->large_running++;
    return t;
}

static void *worker_main(void *arg)
{
    ac_http_t *h = arg;
    for (;;) {
        pthread_mutex_lock(&h->qlock);
        task_t *t;
        while ((t = take_task(h)) == NULL && !h->qstop)
            pthread_cond_wait(&h->qcond, &h->qlock);
        pthread_mutex_unlock(&h->qlock);
        if (t == NULL) /* stopping, and nothing this worker may take */
            return NULL;

        ac_rpc_handle_as(h->rpc, &t->principal, t->body, t->len, 0, &t->resp);
        /* The copy of the body goes here, on the thread whose parse left garbage in its arena. */
        size_t trim_after = h->cfg->trim_after_bytes;
        int trim = trim_after > 0 && t->len > trim_after;
        free(t->body);
        t->body = NULL;
        if (t->large) {
            pthread_mutex_lock(&h->qlock);
            h->large_running--;
            pthread_cond_broadcast(&h->qcond); /* a large body may be waiting for this slot */
            pthread_mutex_unlock(&h->qlock);
        }
        h2o_multithread_send_message(&t->loop->done_receiver, &t->super); /* t is the loop's now */
        if (trim) /* after the answer is on its way: this takes a few ms per 10 MB freed */
            malloc_trim(0);
    }
}

/* Runs on the loop thread with the tasks the workers finished. */
static void on_tasks_done(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    loop_t *l = H2O_STRUCT_FROM_MEMBER(loop_t, done_receiver, receiver);
    while (!h2o_linklist_is_empty(messages)) {
        h2o_multithread_message_t *msg = H2O_STRUCT_FROM_MEMBER(h2o_multithread_message_t, link, messages->next);
        h2o_linklist_unlink(&msg->link);
        task_t *t = H2O_STRUCT_FROM_MEMBER(task_t, super, msg);
        l->tasks_pending--;
        if (t->req != NULL) {
            t->guard->task = NULL; /* the guard must not reach the task after this */
            send_rpc(t->req, t->guard, &t->resp);
        }
        task_free(t);
    }
}

enum { DEFER_OK, DEFER_BUSY, DEFER_STOPPING, DEFER_NO_MEMORY };

/* Hands the request to the RPC workers: a deferred call (large = 0), or a large body to parse
 * and handle there (large = 1). Large bodies admitted at once are bounded, and so is the memory
 * their copies hold: max_parallel_parses running plus max_queued_parses waiting; beyond that
 * DEFER_BUSY, decided before the body is copied. */
static int defer_request(loop_t *l, h2o_req_t *req, req_guard_t *guard, const ac_principal_t *who, int large)
{
    ac_http_t *h = l->http;
    if (large) {
        pthread_mutex_lock(&h->qlock);
        int full = h->large_running + h->large_waiting >= h->cfg->max_parallel_parses + h->cfg->max_queued_parses;
        if (!full)
            h->large_waiting++; /* the slot is ours while the body is copied */
        pthread_mutex_unlock(&h->qlock);
        if (full)
            return DEFER_BUSY;
    }
    task_t *t = calloc(1, sizeof *t);
    if (t != NULL) {
        t->len = req->entity.len;
        t->body = malloc(t->len + 1);
    }
    if (t == NULL || t->body == NULL) {
        free(t);
        if (large) {
            pthread_mutex_lock(&h->qlock);
            h->large_waiting--;
            pthread_mutex_unlock(&h->qlock);
        }
        return DEFER_NO_MEMORY;
    }
    t->loop = l;
    t->req = req;
    t->guard = guard;
    t->large = large;
    t->principal = *who;
    if (t->len > 0) /* an empty body may have no buffer at all */
        memcpy(t->body, req->entity.base, t->len);
    pthread_mutex_lock(&h->qlock);
    if (h->qstop) { /* the workers are gone or going (ac_http_stop): nobody would run it */
        if (large)
            h->large_waiting--;
        pthread_mutex_unlock(&h->qlock);
        task_free(t);
        return DEFER_STOPPING;
    }
    task_t **head = large ? &h->lhead : &h->qhead, **tail = large ? &h->ltail : &h->qtail;
    if (*tail != NULL)
        (*tail)->next = t;
    else
        *head = t;
    *tail = t;
    pthread_cond_broadcast(&h->qcond);
    pthread_mutex_unlock(&h->qlock);
    guard->task = t; /* the loop's own fields: the worker never touches them */
    l->tasks_pending++;
    return DEFER_OK;
}

/* The 503 for a request the workers cannot take: why is DEFER_BUSY (large bodies only),
 * DEFER_STOPPING or DEFER_NO_MEMORY. */
static void refuse_deferral(const ac_http_t *h, int why, ac_rpc_response_t *resp)
{
    ac_err_t err = AC_ERR_INIT;
    if (why == DEFER_NO_MEMORY) {
        ac_err_field(&err, AC_ERR_INTERNAL, "body", "out of memory");
        ac_rpc_refuse(&err, 503, 0, resp);
    } else {
        char msg[160];
        if (why == DEFER_BUSY)
            snprintf(msg, sizeof msg, "%d large bodies already parsed or waiting (limits.max_parallel_parses + "
                     "limits.max_queued_parses); retry later", h->cfg->max_parallel_parses + h->cfg->max_queued_parses);
        else
            snprintf(msg, sizeof msg, "the server is stopping");
        ac_err_set(&err, AC_ERR_INTERNAL, "Server busy");
        ac_err_set_data(&err, json_pack("{s:s, s:s, s:i}", "field", "body", "error", msg, "retry_after_s", 1));
        ac_rpc_refuse(&err, 503, 1, resp);
    }
    ac_err_clear(&err);
}

/* ---- the dashboard: GET /ui/ ---------------------------------------------------------------------
 * Static files from cfg->dashboard_dir, plus the chart library from its Debian path. Everything
 * the pages show comes from the JSON-RPC API with the token the user pastes, so these answers
 * carry no data: no cookies, nothing per user. Each answer forbids inline scripts and every
 * origin but ours (CSP), content sniffing and framing. */

static const struct {
    const char *ext;
    const char *type;
} ui_types[] = {
    {".html", "text/html; charset=utf-8"}, {".css", "text/css; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"}, {".svg", "image/svg+xml"},
    {".png", "image/png"}, {".ico", "image/x-icon"},
    {".json", "application/json"}, {".txt", "text/plain; charset=utf-8"},
};

/* The Content-Type of a file name, or NULL: only these kinds are served. */
static const char *ui_type_of(const char *name, size_t len)
{
    for (size_t i = 0; i < sizeof ui_types / sizeof ui_types[0]; i++) {
        size_t el = strlen(ui_types[i].ext);
        if (len > el && memcmp(name + len - el, ui_types[i].ext, el) == 0)
            return ui_types[i].type;
    }
    return NULL;
}

/* A path below /ui/ (h2o has decoded %xx and removed dot segments already) names a file only if
 * it is made of plain segments: letters, digits, '_', '-' and '.', none empty and none starting
 * with '.'. That leaves no way out of the directory, whatever the request's spelling was (%2e%2e,
 * %2f, %00, backslashes), and no hidden files. */
static int ui_rel_ok(const char *p, size_t n)
{
    if (n == 0 || n > 200)
        return 0;
    int seg_start = 1;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (c == '/') {
            if (seg_start) /* empty segment */
                return 0;
            seg_start = 1;
            continue;
        }
        if (seg_start && c == '.')
            return 0;
        seg_start = 0;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
              c == '.'))
            return 0;
    }
    return !seg_start; /* a trailing '/' names a directory: the caller adds index.html first */
}

/* Opens path for reading, following no symbolic link at or after offset `from` (the part below
 * the served directory): each directory is opened with O_NOFOLLOW, then the file. A link planted
 * in the directory, to a file or to a directory, leads nowhere. Returns the descriptor or -1. */
static int ui_open(char *path, size_t from)
{
    if (from == 0)
        return open(path, O_RDONLY | O_CLOEXEC);
    path[from - 1] = '\0';
    int dir = open(path, O_RDONLY | O_CLOEXEC | O_DIRECTORY);
    path[from - 1] = '/';
    for (char *seg = path + from, *slash; dir >= 0 && (slash = strchr(seg, '/')) != NULL; seg = slash + 1) {
        *slash = '\0';
        int next = openat(dir, seg, O_RDONLY | O_CLOEXEC | O_DIRECTORY | O_NOFOLLOW);
        *slash = '/';
        close(dir);
        dir = next;
    }
    if (dir < 0)
        return -1;
    int fd = openat(dir, strrchr(path, '/') + 1, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    close(dir);
    return fd;
}

static void add_ui_headers(h2o_req_t *req)
{
    /* connect-src 'self': the API is on this origin; img-src data: for the charts' exports */
    static const char csp[] = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                              "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; "
                              "frame-ancestors 'none'";
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("content-security-policy"), 0, NULL,
                          H2O_STRLIT(csp));
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-content-type-options"), 0, NULL,
                          H2O_STRLIT("nosniff"));
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-frame-options"), 0, NULL,
                          H2O_STRLIT("DENY"));
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("referrer-policy"), 0, NULL,
                          H2O_STRLIT("no-referrer"));
}

static void send_ui_error(h2o_req_t *req, int status, const char *text)
{
    add_ui_headers(req);
    send_body(req, status, "text/plain; charset=utf-8", text, strlen(text));
}

/* Serves GET/HEAD /ui/<rel>. Files are small and in the page cache: read on the loop, as h2o's
 * own file handler does. Answers carry an ETag and "no-cache", so a browser revalidates each
 * file (a 304 without a body) and an updated dashboard is seen at once. */
static void send_ui(ac_http_t *h, h2o_req_t *req, const char *rel, size_t rel_len, int is_head)
{
    char path[4096];
    const char *type;
    int is_chartjs = 0;
    if (rel_len == 0 || rel[rel_len - 1] == '/') { /* a directory: its index */
        char tmp[256];
        if (rel_len + sizeof "index.html" > sizeof tmp) {
            send_ui_error(req, 404, "not found\n");
            return;
        }
        memcpy(tmp, rel, rel_len);
        memcpy(tmp + rel_len, "index.html", sizeof "index.html");
        if (!(rel_len == 0 || ui_rel_ok(rel, rel_len - 1)) ||
            snprintf(path, sizeof path, "%s/%s", h->cfg->dashboard_dir, tmp) >= (int)sizeof path) {
            send_ui_error(req, 404, "not found\n");
            return;
        }
        type = ui_types[0].type;
    } else if (rel_len == strlen(UI_CHARTJS_URL) && memcmp(rel, UI_CHARTJS_URL, rel_len) == 0) {
        snprintf(path, sizeof path, "%s", UI_CHARTJS_FILE);
        is_chartjs = 1;
        type = "text/javascript; charset=utf-8";
    } else {
        if (!ui_rel_ok(rel, rel_len) || (type = ui_type_of(rel, rel_len)) == NULL ||
            snprintf(path, sizeof path, "%s/%.*s", h->cfg->dashboard_dir, (int)rel_len, rel) >= (int)sizeof path) {
            send_ui_error(req, 404, "not found\n");
            return;
        }
    }
    int fd = ui_open(path, is_chartjs ? 0 : strlen(h->cfg->dashboard_dir) + 1);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (size_t)st.st_size > UI_MAX_FILE_BYTES) {
        if (fd >= 0)
            close(fd);
        send_ui_error(req, 404, "not found\n");
        return;
    }
    char etag[64];
    int etag_len = snprintf(etag, sizeof etag, "\"%llx-%llx\"", (unsigned long long)st.st_size,
                            (unsigned long long)st.st_mtim.tv_sec * 1000000000ULL + (unsigned long long)st.st_mtim.tv_nsec);
    add_ui_headers(req);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, H2O_STRLIT("no-cache"));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ETAG, NULL, h2o_strdup(&req->pool, etag, (size_t)etag_len).base,
                   (size_t)etag_len);
    ssize_t inm = h2o_find_header(&req->headers, H2O_TOKEN_IF_NONE_MATCH, -1);
    if (inm >= 0 && h2o_contains_token(req->headers.entries[inm].value.base, req->headers.entries[inm].value.len,
                                       etag, (size_t)etag_len, ',')) {
        close(fd);
        static h2o_generator_t generator = {NULL, NULL};
        req->res.status = 304;
        req->res.reason = reason_of(304);
        h2o_start_response(req, &generator);
        h2o_send(req, NULL, 0, H2O_SEND_STATE_FINAL);
        return;
    }
    size_t size = (size_t)st.st_size;
    if (is_head) {
        static h2o_generator_t generator = {NULL, NULL};
        close(fd);
        req->res.status = 200;
        req->res.reason = reason_of(200);
        req->res.content_length = size;
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, type, strlen(type));
        h2o_start_response(req, &generator);
        h2o_send(req, NULL, 0, H2O_SEND_STATE_FINAL);
        return;
    }
    char *body = malloc(size + 1);
    size_t got = 0;
    while (body != NULL && got < size) {
        ssize_t n = read(fd, body + got, size - got);
        if (n <= 0) {
            if (n < 0 && errno == EINTR)
                continue;
            break;
        }
        got += (size_t)n;
    }
    close(fd);
    if (body == NULL || got != size) { /* out of memory, or a file cut short while read */
        free(body);
        send_ui_error(req, 503, "cannot read the file now; retry\n");
        return;
    }
    send_owned(req, 200, type, body, size);
}

/* ---- the request handler -------------------------------------------------------------------- */

static int is_json_type(h2o_req_t *req);

/* A body refused for what its headers say, before anything reads it: 413 over max_body_bytes,
 * 415 when it is not JSON. rpc.c renders the error (-32600, data.field body or Content-Type). */
static void refuse_body(const ac_http_t *h, h2o_req_t *req, req_guard_t *guard)
{
    ac_err_t err = AC_ERR_INIT;
    int status;
    if (req->entity.len > h->cfg->max_body_bytes) {
        status = 413;
        ac_err_set(&err, AC_ERR_INVALID_REQUEST, "Request body too large");
        char msg[64];
        snprintf(msg, sizeof msg, "larger than %zu bytes", h->cfg->max_body_bytes);
        ac_err_set_data(&err, json_pack("{s:s, s:s}", "field", "body", "error", msg));
    } else {
        status = 415;
        ac_err_set(&err, AC_ERR_INVALID_REQUEST, "Unsupported Media Type");
        ac_err_set_data(&err, json_pack("{s:s, s:s}", "field", "Content-Type", "error", "must be application/json"));
    }
    ac_rpc_response_t resp;
    ac_rpc_refuse(&err, status, 0, &resp);
    ac_err_clear(&err);
    send_rpc(req, guard, &resp);
    ac_rpc_response_free(&resp);
}

static int is_json_type(h2o_req_t *req)
{
    ssize_t i = h2o_find_header(&req->headers, H2O_TOKEN_CONTENT_TYPE, -1);
    if (i < 0)
        return 0;
    h2o_iovec_t v = req->headers.entries[i].value;
    size_t n = v.len;
    for (size_t k = 0; k < v.len; k++)
        if (v.base[k] == ';' || v.base[k] == ' ') {
            n = k;
            break;
        }
    return h2o_lcstris(v.base, n, H2O_STRLIT("application/json")) ||
           h2o_lcstris(v.base, n, H2O_STRLIT("application/json-rpc"));
}

/* 503 while degraded: load balancers and probes stop sending work that needs to write. */
static void send_health(ac_http_t *h, h2o_req_t *req)
{
    char cause[256];
    if (h->health == NULL || h->health(h->health_ud, cause, sizeof cause) == 0) {
        send_json(req, 200, "{\"status\":\"ok\"}");
        return;
    }
    json_t *body = json_pack("{s:s, s:s}", "status", "degraded", "store", cause);
    char *text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (text == NULL) {
        send_json(req, 503, "{\"status\":\"degraded\",\"store\":\"cannot write\"}");
        return;
    }
    send_owned(req, 503, "application/json", text, strlen(text));
}

/* GET /metrics: the service's text (ac_http_set_metrics), behind its own token check. */
static void send_metrics(ac_http_t *h, h2o_req_t *req)
{
    ssize_t ai = h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, -1);
    int status = 500;
    char *body = NULL;
    size_t len = 0;
    const char *ctype = "text/plain";
    h->metrics(h->metrics_ud, ai >= 0 ? req->headers.entries[ai].value.base : NULL,
               ai >= 0 ? req->headers.entries[ai].value.len : 0, &status, &body, &len, &ctype);
    if (status == 401)
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_WWW_AUTHENTICATE, NULL,
                       H2O_STRLIT("Bearer error=\"invalid_token\""));
    send_body(req, status, ctype, body, body ? len : 0);
    free(body);
}

/* POST /api/v1/jsonrpc with a body of acceptable size and type. */
static void serve_rpc(ac_http_t *h, loop_t *l, h2o_req_t *req, req_guard_t *guard)
{
    /* Everything up to here, and the token and the large-body checks below, comes from the
     * headers and the body's length: an unauthenticated client gets no parsing (nor copying) of
     * its body, whatever it sent (README, "Limits"). */
    const char *auth = NULL;
    size_t auth_len = 0;
    ssize_t ai = h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, -1);
    if (ai >= 0) {
        auth = req->headers.entries[ai].value.base;
        auth_len = req->headers.entries[ai].value.len;
    }
    ac_principal_t who;
    ac_rpc_response_t resp;
    int rc;
    if (ac_rpc_authenticate(h->rpc, auth, auth_len, &who, &resp) != 0) {
        rc = AC_RPC_DONE;
    } else if (req->entity.len > h->cfg->parse_on_loop_bytes) {
        /* Large: jansson would hold the loop for milliseconds per 64 KiB (README, "Limits"), so
         * the body is scanned, parsed and handled on a worker, after the principal's window. */
        if (ac_rpc_admit_large(h->rpc, &who, &resp) != 0) {
            rc = AC_RPC_DONE;
        } else {
            int d = defer_request(l, req, guard, &who, 1);
            if (d == DEFER_OK)
                return;
            refuse_deferral(h, d, &resp);
            rc = AC_RPC_DONE;
        }
    } else {
        rc = ac_rpc_handle_as(h->rpc, &who, req->entity.base, req->entity.len, 1, &resp);
    }
    if (rc == AC_RPC_DEFER) {
        int d = defer_request(l, req, guard, &who, 0);
        if (d == DEFER_OK)
            return;
        refuse_deferral(h, d, &resp);
    }
    send_rpc(req, guard, &resp);
    ac_rpc_response_free(&resp);
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    ac_http_t *h = ((handler_t *)self)->http;
    loop_t *l = H2O_STRUCT_FROM_MEMBER(loop_t, ctx, req->conn->ctx);
    req_guard_t *guard = h2o_mem_alloc_shared(&req->pool, sizeof *guard, on_guard_dispose);
    *guard = (req_guard_t){l, NULL, h->cfg->trim_after_bytes > 0 && req->entity.len > h->cfg->trim_after_bytes};
    l->in_flight++;

    h2o_iovec_t path = req->path_normalized;
    int is_get = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET")) ||
                 h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"));
    if (h2o_memis(path.base, path.len, H2O_STRLIT("/healthz"))) {
        if (!is_get) {
            h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL, H2O_STRLIT("GET, HEAD"));
            send_json(req, 405, "{\"error\":\"method not allowed\"}");
        } else {
            send_health(h, req);
        }
        return 0;
    }
    if (h2o_memis(path.base, path.len, H2O_STRLIT("/metrics")) && h->metrics != NULL) {
        if (!is_get) {
            h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL, H2O_STRLIT("GET, HEAD"));
            send_json(req, 405, "{\"error\":\"method not allowed\"}");
            return 0;
        }
        send_metrics(h, req);
        return 0;
    }
    if (path.len >= sizeof UI_PATH - 2 && memcmp(path.base, UI_PATH, sizeof UI_PATH - 2) == 0 &&
        (path.len == sizeof UI_PATH - 2 || path.base[sizeof UI_PATH - 2] == '/')) {
        if (!is_get) {
            h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL, H2O_STRLIT("GET, HEAD"));
            send_ui_error(req, 405, "method not allowed\n");
        } else if (path.len == sizeof UI_PATH - 2) { /* /ui: relative links need the slash */
            add_ui_headers(req);
            h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_LOCATION, NULL, H2O_STRLIT(UI_PATH));
            send_body(req, 301, "text/plain; charset=utf-8", "moved to /ui/\n", strlen("moved to /ui/\n"));
        } else {
            send_ui(h, req, path.base + sizeof UI_PATH - 1, path.len - (sizeof UI_PATH - 1),
                    h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD")));
        }
        return 0;
    }
    if (!h2o_memis(path.base, path.len, H2O_STRLIT(RPC_PATH))) {
        send_json(req, 404, "{\"error\":\"not found\"}");
        return 0;
    }
    if (!h2o_memis(req->method.base, req->method.len, H2O_STRLIT("POST"))) {
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL, H2O_STRLIT("POST"));
        send_json(req, 405, "{\"error\":\"method not allowed: use POST\"}");
        return 0;
    }
    if (req->entity.len > h->cfg->max_body_bytes || !is_json_type(req)) {
        refuse_body(h, req, guard);
        return 0;
    }
    serve_rpc(h, l, req, guard);
    return 0;
}

/* ---- loops ---------------------------------------------------------------------------------- */

static void on_accept(h2o_socket_t *listener, const char *err)
{
    if (err != NULL)
        return;
    h2o_socket_t *sock = h2o_evloop_socket_accept(listener);
    if (sock != NULL)
        h2o_accept(listener->data, sock);
}

static void on_ctl(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    loop_t *l = H2O_STRUCT_FROM_MEMBER(loop_t, ctl_receiver, receiver);
    while (!h2o_linklist_is_empty(messages)) {
        h2o_multithread_message_t *msg = H2O_STRUCT_FROM_MEMBER(h2o_multithread_message_t, link, messages->next);
        h2o_linklist_unlink(&msg->link);
        if (msg == &l->ctl_msg[0] && !l->stopping) {
            l->stopping = 1;
            for (int i = 0; i < l->n_listeners; i++) {
                h2o_socket_read_stop(l->listeners[i]);
                h2o_socket_close(l->listeners[i]);
            }
            l->n_listeners = 0;
            h2o_context_request_shutdown(&l->ctx); /* GOAWAY to HTTP/2 clients */
        } else if (msg == &l->ctl_msg[1]) {
            l->exit_now = 1;
        }
    }
}

static void *loop_main(void *arg)
{
    loop_t *l = arg;
    ac_http_t *h = l->http;
    h2o_context_init(&l->ctx, h2o_evloop_create(), &h->globalconf);
    h2o_multithread_register_receiver(l->ctx.queue, &l->done_receiver, on_tasks_done);
    h2o_multithread_register_receiver(l->ctx.queue, &l->ctl_receiver, on_ctl);
    l->trim_entry = (h2o_timeout_entry_t){.cb = on_trim};
    l->accept_plain = (h2o_accept_ctx_t){.ctx = &l->ctx, .hosts = h->globalconf.hosts};
    l->accept_tls = l->accept_plain;
    l->accept_tls.ssl_ctx = h->ssl_ctx;
    int per = h->n_addrs;
    for (int i = 0; i < per; i++) {
        int fd = h->fds[l->index * per + i];
        h2o_socket_t *sock = h2o_evloop_socket_create(l->ctx.loop, fd, H2O_SOCKET_FLAG_DONT_READ);
        int is_tls = h->ssl_ctx != NULL && i == per - 1;
        sock->data = is_tls ? &l->accept_tls : &l->accept_plain;
        h2o_socket_read_start(sock, on_accept);
        l->listeners[l->n_listeners++] = sock;
    }
    pthread_mutex_lock(&h->ready_lock);
    h->ready++;
    pthread_cond_broadcast(&h->ready_cond);
    pthread_mutex_unlock(&h->ready_lock);

    while (!l->exit_now) {
        h2o_evloop_run(l->ctx.loop, l->stopping ? 20 : INT32_MAX);
        if (l->stopping)
            atomic_store(&l->drained, l->in_flight == 0 && l->tasks_pending == 0);
    }
    h2o_multithread_unregister_receiver(l->ctx.queue, &l->done_receiver);
    h2o_multithread_unregister_receiver(l->ctx.queue, &l->ctl_receiver);
    /* The context and loop stay allocated: h2o 2.2.5 cannot close the idle keep-alive
     * connections a context still has, and disposing it under them asserts. The process is
     * exiting; tests/lsan.supp names these allocations. */
    return NULL;
}

/* ---- set-up --------------------------------------------------------------------------------- */

static int parse_addr(const char *spec, char *host, size_t hlen, char *port, size_t plen)
{
    const char *colon = strrchr(spec, ':');
    if (colon == NULL || colon[1] == '\0')
        return -1;
    const char *h0 = spec, *h1 = colon;
    if (*h0 == '[' && h1 > h0 && h1[-1] == ']') { /* [::1]:8001 */
        h0++;
        h1--;
    }
    if ((size_t)(h1 - h0) >= hlen || strlen(colon + 1) >= plen)
        return -1;
    memcpy(host, h0, (size_t)(h1 - h0));
    host[h1 - h0] = '\0';
    strcpy(port, colon + 1);
    return 0;
}

/* Opens one listening socket per loop on the same address (SO_REUSEPORT: the kernel spreads
 * connections over the loops). With port 0 the first socket picks the port and the others
 * follow it. Returns the port, or -1 with err set. */
static int bind_all(ac_http_t *h, const char *spec, int slot, ac_err_t *err)
{
    char host[256], port[16];
    if (parse_addr(spec, host, sizeof host, port, sizeof port) != 0)
        return ac_err_set(err, AC_ERR_INVALID_PARAMS, "listen address '%s' is not HOST:PORT", spec);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *ai;
    int gai = getaddrinfo(host[0] ? host : NULL, port, &hints, &ai);
    if (gai != 0)
        return ac_err_set(err, AC_ERR_INVALID_PARAMS, "listen address '%s': %s", spec, gai_strerror(gai));
    int bound_port = -1;
    for (int i = 0; i < h->n_loops; i++) {
        int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int one = 1;
        /* Accepted connections inherit the receive buffer. h2o 2.2.5 reads a connection until
         * its socket is empty, growing the buffer as it goes: with the kernel's autotuning (up
         * to tcp_rmem's maximum, 32 MiB here) a fast upload is read whole in one callback, tens
         * of ms for 16 MiB, while the loop's other connections wait. A small buffer makes every
         * read short (README, "Limits"). */
        int rcvbuf = (int)h->cfg->recv_buffer_bytes;
        if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
            setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0 ||
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0 ||
            (rcvbuf > 0 && setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf) != 0)) {
            ac_err_set(err, AC_ERR_INTERNAL, "socket for %s: %s", spec, strerror(errno));
            if (fd >= 0)
                close(fd);
            freeaddrinfo(ai);
            return -1;
        }
        if (bound_port > 0) {
            if (ai->ai_family == AF_INET6)
                ((struct sockaddr_in6 *)ai->ai_addr)->sin6_port = htons((uint16_t)bound_port);
            else
                ((struct sockaddr_in *)ai->ai_addr)->sin_port = htons((uint16_t)bound_port);
        }
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, SOMAXCONN) != 0) {
            ac_err_set(err, AC_ERR_INTERNAL, "cannot listen on %s: %s", spec, strerror(errno));
            close(fd);
            freeaddrinfo(ai);
            return -1;
        }
        if (bound_port <= 0) {
            struct sockaddr_storage ss;
            socklen_t sl = sizeof ss;
            getsockname(fd, (struct sockaddr *)&ss, &sl);
            bound_port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                        : ((struct sockaddr_in *)&ss)->sin_port);
        }
        h->fds[i * h->n_addrs + slot] = fd;
    }
    freeaddrinfo(ai);
    return bound_port;
}

static int setup_tls(ac_http_t *h, ac_err_t *err)
{
    const ac_config_t *cfg = h->cfg;
    h->ssl_ctx = SSL_CTX_new(TLS_server_method());
    if (h->ssl_ctx == NULL)
        return ac_err_set(err, AC_ERR_INTERNAL, "TLS: cannot create a context");
    SSL_CTX_set_min_proto_version(h->ssl_ctx, TLS1_2_VERSION);
    if (SSL_CTX_use_certificate_chain_file(h->ssl_ctx, cfg->tls_cert_file) != 1)
        return ac_err_set(err, AC_ERR_INVALID_PARAMS, "TLS: cannot load certificate %s", cfg->tls_cert_file);
    if (SSL_CTX_use_PrivateKey_file(h->ssl_ctx, cfg->tls_key_file, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(h->ssl_ctx) != 1)
        return ac_err_set(err, AC_ERR_INVALID_PARAMS, "TLS: cannot load private key %s (or it does not match)",
                          cfg->tls_key_file);
    h2o_ssl_register_alpn_protocols(h->ssl_ctx, h2o_http2_alpn_protocols);
    return 0;
}

ac_http_t *ac_http_create(const ac_config_t *cfg, ac_rpc_t *rpc, ac_err_t *err)
{
    ac_http_t *h = calloc(1, sizeof *h);
    if (h == NULL) {
        ac_err_set(err, AC_ERR_INTERNAL, "http: out of memory");
        return NULL;
    }
    h->cfg = cfg;
    h->rpc = rpc;
    h->n_loops = cfg->threads > 0 ? cfg->threads : 1;
    h->n_addrs = cfg->n_listen + (cfg->tls_listen != NULL);
    h->loops = calloc((size_t)h->n_loops, sizeof *h->loops);
    h->fds = malloc(sizeof(int) * (size_t)(h->n_loops * h->n_addrs));
    pthread_mutex_init(&h->qlock, NULL);
    pthread_cond_init(&h->qcond, NULL);
    pthread_mutex_init(&h->ready_lock, NULL);
    pthread_cond_init(&h->ready_cond, NULL);
    if (h->loops == NULL || h->fds == NULL) {
        ac_err_set(err, AC_ERR_INTERNAL, "http: out of memory");
        goto fail;
    }
    for (int i = 0; i < h->n_loops * h->n_addrs; i++)
        h->fds[i] = -1;
    struct stat st;
    if (cfg->dashboard_dir == NULL || stat(cfg->dashboard_dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        ac_err_set(err, AC_ERR_INVALID_PARAMS, "dashboard_dir %s: not a directory",
                   cfg->dashboard_dir ? cfg->dashboard_dir : "(unset)");
        goto fail;
    }

    h2o_config_init(&h->globalconf);
    /* This setting and the next are process-wide (a server has one ac_http_t): they decide
     * where large buffers live and whether their memory goes back to the kernel.
     * h2o moves a socket buffer that grows to 32 MiB
     * into a temporary file under /tmp (a 16 MiB body does, with its headers): on a disk-backed
     * /tmp that puts page-cache faults, block allocation and truncation on the event loop, a
     * quarter of its time while 8 x 16 MiB bodies arrived, and /healthz p99 of 58-159 ms
     * instead of 38-61 ms (measured). Bodies are capped (max_request_entity_size below), so
     * keeping them in memory costs no more than the file's page cache did. */
    h2o_socket_buffer_mmap_settings.threshold = SIZE_MAX;
    if (cfg->trim_after_bytes > 0) {
        /* malloc_trim alone does not bring RSS back: glibc raises its mmap threshold to the size
         * of each mapped block freed and its trim threshold to twice that (up to 32 and 64 MiB),
         * after which the 16 MiB body buffers live in the loops' arenas, whose tops malloc_trim
         * does not shrink. Setting the mmap threshold freezes both: the trim threshold stays at
         * 128 KiB, so an arena's top is handed back as it is freed, and malloc_trim returns the
         * free blocks below it. 32 MiB is where the dynamic rule ends anyway, so smaller buffers
         * are still reused from the arenas within a burst of large requests. Measured from
         * 13 MiB at start: after 8 x 16 MiB bodies, 38-58 MiB without this, 13-14 MiB with it
         * (16-17 MiB with a 1 MiB threshold, which also costs a fresh mapping, and its page
         * faults, per buffer: /healthz p99 37-74 ms against 27-68 ms); after four parses of 900k
         * values, 92 MiB with neither, 73 MiB without malloc_trim, 16 MiB with both. */
        mallopt(M_MMAP_THRESHOLD, 32 << 20);
    }
    /* h2o refuses bodies above this on its own: with HTTP/2 by resetting the stream, which
     * clients report as a transport error. Leave room above our limit so that the common
     * oversized body gets our clear 413 on every protocol (see README, "Limits"). */
    h->globalconf.max_request_entity_size = cfg->max_body_bytes * 2 + ((size_t)1 << 20);
    h2o_hostconf_t *host = h2o_config_register_host(&h->globalconf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *path = h2o_config_register_path(host, "/", 0);
    handler_t *hd = (handler_t *)h2o_create_handler(path, sizeof *hd);
    hd->super.on_req = on_req;
    hd->http = h;

    if (cfg->tls_listen != NULL && setup_tls(h, err) != 0)
        goto fail;
    for (int i = 0; i < cfg->n_listen; i++)
        if ((h->ports[i] = bind_all(h, cfg->listen[i], i, err)) < 0)
            goto fail;
    if (cfg->tls_listen != NULL && (h->tls_port = bind_all(h, cfg->tls_listen, cfg->n_listen, err)) < 0)
        goto fail;
    for (int i = 0; i < h->n_loops; i++)
        h->loops[i] = (loop_t){.http = h, .index = i};
    return h;
fail:
    ac_http_destroy(h);
    return NULL;
}

int ac_http_start(ac_http_t *h, ac_err_t *err)
{
    h->n_workers = h->cfg->rpc_workers > 0 ? h->cfg->rpc_workers : 1;
    h->workers = calloc((size_t)h->n_workers, sizeof *h->workers);
    if (h->workers == NULL)
        return ac_err_set(err, AC_ERR_INTERNAL, "http: out of memory");
    for (int i = 0; i < h->n_workers; i++)
        pthread_create(&h->workers[i], NULL, worker_main, h);
    for (int i = 0; i < h->n_loops; i++)
        pthread_create(&h->loops[i].tid, NULL, loop_main, &h->loops[i]);
    pthread_mutex_lock(&h->ready_lock);
    while (h->ready < h->n_loops)
        pthread_cond_wait(&h->ready_cond, &h->ready_lock);
    pthread_mutex_unlock(&h->ready_lock);
    h->started = h->ever_started = 1;
    return 0;
}

void ac_http_stop(ac_http_t *h, int grace_ms)
{
    if (!h->started)
        return;
    for (int i = 0; i < h->n_loops; i++)
        h2o_multithread_send_message(&h->loops[i].ctl_receiver, &h->loops[i].ctl_msg[0]);
    int64_t deadline = ac_clock_mono_ns() + (int64_t)grace_ms * 1000000;
    for (;;) {
        int drained = 1;
        for (int i = 0; i < h->n_loops; i++)
            drained &= atomic_load(&h->loops[i].drained);
        if (drained || ac_clock_mono_ns() > deadline)
            break;
        usleep(10000);
    }
    /* Workers finish the call they are in (their answer still reaches a running loop); calls
     * not yet started are dropped with their connections. */
    pthread_mutex_lock(&h->qlock);
    h->qstop = 1;
    task_t *dropped = h->qhead;
    if (h->qtail != NULL)
        h->qtail->next = h->lhead;
    else
        dropped = h->lhead;
    h->qhead = h->qtail = h->lhead = h->ltail = NULL;
    h->large_waiting = 0;
    pthread_cond_broadcast(&h->qcond);
    pthread_mutex_unlock(&h->qlock);
    for (int i = 0; i < h->n_workers; i++)
        pthread_join(h->workers[i], NULL);
    for (int i = 0; i < h->n_loops; i++)
        h2o_multithread_send_message(&h->loops[i].ctl_receiver, &h->loops[i].ctl_msg[1]);
    for (int i = 0; i < h->n_loops; i++)
        pthread_join(h->loops[i].tid, NULL);
    while (dropped != NULL) {
        task_t *next = dropped->next;
        task_free(dropped);
        dropped = next;
    }
    h->started = 0;
}

void ac_http_destroy(ac_http_t *h)
{
    if (h == NULL)
        return;
    if (h->fds != NULL && !h->ever_started)
        for (int i = 0; i < h->n_loops * h->n_addrs; i++)
            if (h->fds[i] >= 0)
                close(h->fds[i]);
    if (h->globalconf.hosts != NULL)
        h2o_config_dispose(&h->globalconf);
    if (h->ssl_ctx != NULL)
        SSL_CTX_free(h->ssl_ctx);
    free(h->workers);
    free(h->loops);
    free(h->fds);
    pthread_mutex_destroy(&h->qlock);
    pthread_cond_destroy(&h->qcond);
    pthread_mutex_destroy(&h->ready_lock);
    pthread_cond_destroy(&h->ready_cond);
    free(h);
}

void ac_http_set_health(ac_http_t *h, ac_http_health_fn fn, void *ud)
{
    h->health = fn;
    h->health_ud = ud;
}

void ac_http_set_metrics(ac_http_t *h, ac_http_metrics_fn fn, void *ud)
{
    h->metrics = fn;
    h->metrics_ud = ud;
}

int ac_http_port(const ac_http_t *h, int i)
{
    return i >= 0 && i < h->cfg->n_listen ? h->ports[i] : 0;
}

int ac_http_tls_port(const ac_http_t *h)
{
    return h->tls_port;
}
