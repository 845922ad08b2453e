/* Authentication: see auth.h.
 *
 * Verification order: cheap shape checks, the cache, our own parse of the header (pinned
 * algorithm) and of the payload, libjwt for the signature only, then the claims. Claims are read
 * from our parse of the very bytes libjwt verified, so libjwt's lax getters (a missing or
 * non-integer `exp` reads as -1 or 0) never decide anything. */
#include "net/auth.h"

#include <assert.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jwt.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#define AC_AUTH_STRIPES 64 /* cache locks (power of two): far more than event-loop threads */
#define AC_AUTH_HASH_TAIL 64 /* bytes of the token's end that pick its cache slot */
#define AC_AUTH_KEY_FILE_MAX (64 * 1024)
#define AC_AUTH_LEEWAY_DEFAULT 30
#define AC_AUTH_LEEWAY_MAX 3600
#define AC_AUTH_CACHE_DEFAULT 4096
#define AC_AUTH_CACHE_MAX (1 << 20)
#define AC_AUTH_TTL_MAX (10 * 366 * 86400LL)
#define AC_AUTH_SECRET_MIN 16
#define NO_TIME INT64_MIN /* an absent nbf/iat */

static const struct {
    uint32_t bit;
    const char *name;
} perm_table[] = {
    {AC_PERM_TRAINING_START, "training:start"},
    {AC_PERM_TRAINING_VIEW, "training:view"},
    {AC_PERM_TRAINING_CANCEL, "training:cancel"},
    {AC_PERM_TRAINING_EVALUATE, "training:evaluate"},
    {AC_PERM_DATA_EXPORT, "data:export"},
    {AC_PERM_TRAINING_ADMIN, "training:admin"},
    {AC_PERM_WEBHOOKS_MANAGE, "webhooks:manage"},
    {AC_PERM_METRICS_VIEW, "metrics:view"},
    {AC_PERM_AGENTS_INVOKE, "agents:invoke"},
};
#define PERM_COUNT (sizeof perm_table / sizeof perm_table[0])

/* What a verified token grants, plus the time claims that are re-checked on every cache hit. */
typedef struct ac_auth_entry {
    ac_principal_t who; /* who.exp is the `exp` claim */
    int64_t nbf, iat;   /* NO_TIME when absent */
} ac_auth_entry_t;

typedef struct ac_auth_slot {
    char *token; /* malloc'd copy of the token bytes (the key); NULL when the slot is empty */
    size_t len;
    uint64_t hash;
    ac_auth_entry_t e;
} ac_auth_slot_t;

typedef struct ac_auth_stripe {
    _Alignas(64) pthread_mutex_t lock; /* own cache line: no false sharing between stripes */
    uint64_t hits, misses;             /* guarded by lock */
} ac_auth_stripe_t;

struct ac_auth {
    ac_auth_stripe_t stripes[AC_AUTH_STRIPES]; /* stripe i guards the slots s with s % STRIPES == i */
    int locks_ready;                          /* stripes initialised so far (for destroy) */
    jwt_alg_t alg;                             /* the pinned algorithm */
    const char *alg_name;                      /* its header name, static */
    unsigned char *key; /* verify key: HS256 secret or public PEM; never NULL, since libjwt
                         * given a NULL key verifies nothing (libjwt 1.10) */
    int key_len;
    unsigned char *sign_key; /* issue key: == key for HS256, the private PEM, or NULL */
    int sign_key_len;
    char *issuer, *audience; /* NULL when not checked */
    int64_t leeway;
    size_t mask; /* slot count - 1 (a power of two) */
    ac_auth_slot_t *slots;
};

/* ---- errors ------------------------------------------------------------------------------- */

/* The one rejection path of verification: fixed reasons only, so no token text is echoed. */
static int deny(ac_err_t *err, const char *reason)
{
    if (err == NULL)
        return -1;
    ac_err_set(err, AC_ERR_UNAUTHORIZED, "%s", ac_err_name(AC_ERR_UNAUTHORIZED));
    ac_err_set_data(err, json_pack("{s:s}", "error", reason));
    return -1;
}

static int oom(ac_err_t *err)
{
    return ac_err_set(err, AC_ERR_INTERNAL, "auth: out of memory");
}

/* A config error: the message names the member (the operator reads it at startup), the data
 * has the usual {"field", "error"} shape. */
__attribute__((format(printf, 3, 4))) static int bad_config(ac_err_t *err, const char *field,
                                                            const char *fmt, ...)
{
    char text[256];
    va_list ap;
    if (err == NULL)
        return -1;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    ac_err_set(err, AC_ERR_INVALID_PARAMS, "auth config: %s: %s", field, text);
    ac_err_set_data(err, json_pack("{s:s, s:s}", "field", field, "error", text));
    return -1;
}

/* ---- permissions -------------------------------------------------------------------------- */

uint32_t ac_perm_from_name(const char *name, size_t len)
{
    for (size_t i = 0; i < PERM_COUNT; i++)
        if (strlen(perm_table[i].name) == len && memcmp(perm_table[i].name, name, len) == 0)
            return perm_table[i].bit;
    return 0;
}

const char *ac_perm_name(uint32_t bit)
{
    for (size_t i = 0; i < PERM_COUNT; i++)
        if (perm_table[i].bit == bit)
            return perm_table[i].name;
    return NULL;
}

/* ---- token pieces ------------------------------------------------------------------------- */

static int b64url_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    return c == '-' ? 62 : c == '_' ? 63 : -1;
}

/* Decodes unpadded base64url (RFC 7515 section 2). Returns a malloc'd buffer of *outlen bytes,
 * or NULL when s is not canonical base64url (bad length, stray bits) or memory runs out. */
static unsigned char *b64url_decode(const char *s, size_t n, size_t *outlen)
{
    unsigned char *out, *o;
    uint32_t acc = 0;
    int bits = 0;
    if (n % 4 == 1)
        return NULL;
    if ((o = out = malloc(n / 4 * 3 + 3)) == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        int v = b64url_value((unsigned char)s[i]);
        if (v < 0)
            goto bad;
        acc = (acc << 6 | (uint32_t)v) & 0xfff; /* at most 12 pending bits */
        if ((bits += 6) >= 8)
            *o++ = (unsigned char)(acc >> (bits -= 8));
    }
    if (acc & ((1u << bits) - 1)) /* the unused low bits of the last character must be zero */
        goto bad;
    *outlen = (size_t)(o - out);
    return out;
bad:
    free(out);
    return NULL;
}

/* One base64url segment holding a JSON object, or NULL. Duplicate keys are rejected: a claim
 * that says two things would be read one way here and perhaps another way elsewhere. */
static json_t *segment_object(const char *s, size_t n)
{
    size_t len;
    unsigned char *raw = b64url_decode(s, n, &len);
    json_t *o;
    if (raw == NULL)
        return NULL;
    o = json_loadb((const char *)raw, len, JSON_REJECT_DUPLICATES, NULL);
    free(raw);
    if (o != NULL && !json_is_object(o)) {
        json_decref(o);
        o = NULL;
    }
    return o;
}

/* String equality that sees the whole JSON string: "api\u0000x" must not equal "api". */
static int json_str_eq(const json_t *v, const char *s)
{
    size_t n = strlen(s);
    return json_is_string(v) && json_string_length(v) == n && memcmp(json_string_value(v), s, n) == 0;
}

/* 1..128 bytes of printable ASCII: the principal is a tenant name used in keys and log lines. */
static int sub_ok(const char *s, size_t n)
{
    if (n == 0 || n > AC_AUTH_SUB_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
            return 0;
    return 1;
}

/* ---- claims ------------------------------------------------------------------------------- */

/* Reads the NumericDate claim `name` into *out (NO_TIME when absent). RFC 7519 allows fractions;
 * they are rounded toward the stricter side (exp down, nbf/iat up). -1 when not a number. */
static int claim_time(json_t *claims, const char *name, int round_up, int64_t *out)
{
    json_t *v = json_object_get(claims, name);
    *out = NO_TIME;
    if (v == NULL)
        return 0;
    if (json_is_integer(v)) {
        *out = json_integer_value(v);
        return *out == NO_TIME ? -1 : 0;
    }
    if (json_is_real(v)) {
        double d = round_up ? ceil(json_real_value(v)) : floor(json_real_value(v));
        if (!(d > -9.2e18 && d < 9.2e18)) /* representable; NaN fails too */
            return -1;
        *out = (int64_t)d;
        return 0;
    }
    return -1;
}

/* `permissions` (array of strings) and OAuth `scope` (space-separated) both grant; at least one
 * must be present. Unknown names are ignored: issuers may serve other services too. */
static int claim_perms(json_t *claims, uint32_t *perms, ac_err_t *err)
{
    json_t *list = json_object_get(claims, "permissions"), *scope = json_object_get(claims, "scope");
    json_t *v;
    size_t i;
    *perms = 0;
    if (list == NULL && scope == NULL)
        return deny(err, "missing claim: permissions");
    if (list != NULL) {
        if (!json_is_array(list))
            return deny(err, "invalid claim: permissions");
        json_array_foreach(list, i, v) {
            if (!json_is_string(v))
                return deny(err, "invalid claim: permissions");
            *perms |= ac_perm_from_name(json_string_value(v), json_string_length(v));
        }
    }
    if (scope != NULL) {
        const char *s, *end, *w;
        if (!json_is_string(scope))
            return deny(err, "invalid claim: scope");
        for (s = json_string_value(scope), end = s + json_string_length(scope); s < end; s = w + 1) {
            if ((w = memchr(s, ' ', (size_t)(end - s))) == NULL)
                w = end;
            *perms |= ac_perm_from_name(s, (size_t)(w - s));
        }
    }
    return 0;
}

static int aud_contains(json_t *aud, const char *want)
{
    json_t *v;
    size_t i;
    if (json_is_string(aud))
        return json_str_eq(aud, want);
    json_array_foreach(aud, i, v) /* a no-op on a non-array: not contained */
        if (json_str_eq(v, want))
            return 1;
    return 0;
}

/* Checks every claim except the times of a token whose signature is good, and fills *e. */
static int check_claims(const ac_auth_t *a, json_t *claims, ac_auth_entry_t *e, ac_err_t *err)
{
    json_t *v;
    memset(e, 0, sizeof *e); /* no stray bytes after sub's NUL in what callers get */
    if (claim_time(claims, "exp", 0, &e->who.exp) != 0)
        return deny(err, "invalid claim: exp");
    if (e->who.exp == NO_TIME)
        return deny(err, "missing claim: exp");
    if (claim_time(claims, "nbf", 1, &e->nbf) != 0)
        return deny(err, "invalid claim: nbf");
    if (claim_time(claims, "iat", 1, &e->iat) != 0)
        return deny(err, "invalid claim: iat");
    if (a->issuer != NULL) {
        if ((v = json_object_get(claims, "iss")) == NULL)
            return deny(err, "missing claim: iss");
        if (!json_str_eq(v, a->issuer))
            return deny(err, "wrong issuer");
    }
    if (a->audience != NULL) {
        if ((v = json_object_get(claims, "aud")) == NULL)
            return deny(err, "missing claim: aud");
        if (!aud_contains(v, a->audience))
            return deny(err, "wrong audience");
    }
    if ((v = json_object_get(claims, "sub")) == NULL)
        return deny(err, "missing claim: sub");
    if (!json_is_string(v) || !sub_ok(json_string_value(v), json_string_length(v)))
        return deny(err, "invalid sub");
    memcpy(e->who.sub, json_string_value(v), json_string_length(v) + 1);
    return claim_perms(claims, &e->who.perms, err);
}

/* The time rules, shared by the full path and the cache hit so that a cached token expires
 * exactly when an uncached one would. exp is exclusive (RFC 7519 4.1.4); claims are compared
 * against now +- leeway rather than adding the leeway to them, so huge claims cannot overflow. */
static int check_times(const ac_auth_t *a, const ac_auth_entry_t *e, int64_t now, ac_err_t *err)
{
    if (e->who.exp <= now - a->leeway)
        return deny(err, "token expired");
    if (e->nbf != NO_TIME && e->nbf > now + a->leeway)
        return deny(err, "token not yet valid");
    if (e->iat != NO_TIME && e->iat > now + a->leeway)
        return deny(err, "issued in the future");
    return 0;
}

/* ---- verified-token cache ----------------------------------------------------------------- */

/* FNV-1a of the token's last bytes (its signature) and its length, to pick a slot. Only verified
 * tokens are stored and a hit needs the exact bytes, so a collision costs a miss, never a wrong
 * answer; and nobody without the key can mint signatures that aim at one slot. */
static uint64_t token_hash(const char *t, size_t len)
{
    size_t n = len < AC_AUTH_HASH_TAIL ? len : AC_AUTH_HASH_TAIL;
    const unsigned char *p = (const unsigned char *)t + len - n;
    uint64_t h = 0xcbf29ce484222325ull ^ len;
    while (n--)
        h = (h ^ *p++) * 0x100000001b3ull;
    return h ^ h >> 29;
}

static int cache_get(ac_auth_t *a, const char *t, size_t len, uint64_t h, ac_auth_entry_t *e)
{
    size_t i = h & a->mask;
    ac_auth_slot_t *s = &a->slots[i];
    ac_auth_stripe_t *st = &a->stripes[i % AC_AUTH_STRIPES];
    int hit;
    pthread_mutex_lock(&st->lock);
    /* The 64-bit hash first: the early-exit memcmp then only runs for someone who already holds
     * the token's signature, so its timing tells nothing. */
    hit = s->token != NULL && s->hash == h && s->len == len && memcmp(s->token, t, len) == 0;
    if (hit) {
        *e = s->e;
        st->hits++;
    } else {
        st->misses++;
    }
    pthread_mutex_unlock(&st->lock);
    return hit;
}

/* Stores (overwriting whatever held the slot). Allocation and free happen outside the lock. */
static void cache_put(ac_auth_t *a, const char *t, size_t len, uint64_t h, const ac_auth_entry_t *e)
{
    size_t i = h & a->mask;
    ac_auth_slot_t *s = &a->slots[i];
    ac_auth_stripe_t *st = &a->stripes[i % AC_AUTH_STRIPES];
    char *copy = malloc(len), *old;
    if (copy == NULL)
        return; /* the cache only saves work: skip it rather than fail a good token */
    memcpy(copy, t, len);
    pthread_mutex_lock(&st->lock);
    old = s->token;
    s->token = copy;
    s->len = len;
    s->hash = h;
    s->e = *e;
    pthread_mutex_unlock(&st->lock);
    free(old);
}

void ac_auth_stats(ac_auth_t *a, ac_auth_stats_t *out)
{
    memset(out, 0, sizeof *out);
    for (int i = 0; i < AC_AUTH_STRIPES; i++) {
        pthread_mutex_lock(&a->stripes[i].lock);
        out->cache_hits += a->stripes[i].hits;
        out->cache_misses += a->stripes[i].misses;
        pthread_mutex_unlock(&a->stripes[i].lock);
    }
}

/* ---- verification ------------------------------------------------------------------------- */

/* The uncached path: shape, pinned algorithm, signature (libjwt), claims (not the times). */
/* Two dots and base64url between them, nothing else (this also keeps NULs out of the C string
 * that libjwt gets), and a canonical signature: libjwt ignores the unused low bits of its last
 * character for RS/ES, so without this one token would have up to 16 spellings, each a separate
 * cache entry and a separate ~300 us verification. dot: the two dots' positions. 0, or -1. */
static int token_shape(const char *t, size_t len, size_t dot[2])
{
    size_t ndots = 0;
    for (size_t i = 0; i < len; i++) {
        if (t[i] == '.') {
            if (ndots == 2)
                return -1;
            dot[ndots++] = i;
        } else if (b64url_value((unsigned char)t[i]) < 0) {
            return -1;
        }
    }
    if (ndots != 2 || dot[0] == 0 || dot[1] == dot[0] + 1)
        return -1;
    size_t sig_len = len - dot[1] - 1;
    if (sig_len % 4 == 1 ||
        (sig_len % 4 != 0 && (b64url_value((unsigned char)t[len - 1]) & (sig_len % 4 == 2 ? 0xf : 0x3))))
        return -1;
    return 0;
}

static int verify_full(ac_auth_t *a, const char *t, size_t len, ac_auth_entry_t *e, ac_err_t *err)
{
    size_t dot[2];
    json_t *head = NULL, *claims = NULL, *v;
    jwt_t *j = NULL;
    char *z = NULL;
    int rc = -1, jrc;

    if (token_shape(t, len, dot) != 0)
        return deny(err, "malformed token");

    /* Pin the algorithm before any signature work: `none`, and HS256 made with the RSA public
     * PEM as secret (which libjwt would accept, given that PEM as key), stop here. */
    if ((head = segment_object(t, dot[0])) == NULL || !json_is_string(json_object_get(head, "alg"))) {
        deny(err, "malformed token");
        goto done;
    }
    if (!json_str_eq(json_object_get(head, "alg"), a->alg_name)) {
        deny(err, "algorithm not allowed");
        goto done;
    }
    /* libjwt rejects any typ but "JWT" (any case); say so rather than "bad signature". */
    if ((v = json_object_get(head, "typ")) != NULL &&
        !(json_is_string(v) && json_string_length(v) == 3 && strcasecmp(json_string_value(v), "JWT") == 0)) {
        deny(err, "unsupported token type");
        goto done;
    }
    /* RFC 7515 4.1.11: extensions we do not implement must not be ignored. */
    if (json_object_get(head, "crit") != NULL) {
        deny(err, "unsupported header: crit");
        goto done;
    }
    if ((claims = segment_object(t + dot[0] + 1, dot[1] - dot[0] - 1)) == NULL) {
        deny(err, "malformed token");
        goto done;
    }

    if ((z = strndup(t, len)) == NULL) {
        oom(err);
        goto done;
    }
    assert(a->key != NULL && a->key_len > 0); /* a NULL key would verify nothing */
    if ((jrc = jwt_decode(&j, z, a->key, a->key_len)) != 0) {
        /* OpenSSL leaves its reasons on this thread's error queue; a stale entry there would
         * make a later SSL_get_error on this event-loop thread report a TLS failure. */
        ERR_clear_error();
        if (jrc == ENOMEM)
            oom(err);
        else
            deny(err, "bad signature");
        goto done;
    }
    if (jwt_get_alg(j) != a->alg) { /* checked above; libjwt's own view must agree */
        deny(err, "algorithm not allowed");
        goto done;
    }
    rc = check_claims(a, claims, e, err);
done:
    jwt_free(j);
    free(z);
    json_decref(claims);
    json_decref(head);
    return rc;
}

int ac_auth_verify(ac_auth_t *a, const char *token, size_t len, int64_t now, ac_principal_t *out,
                   ac_err_t *err)
{
    ac_auth_entry_t e;
    uint64_t h;
    int hit;
    memset(out, 0, sizeof *out);
    if (token == NULL || len == 0)
        return deny(err, "missing token");
    if (len > AC_AUTH_TOKEN_MAX)
        return deny(err, "malformed token");
    h = token_hash(token, len);
    hit = cache_get(a, token, len, h, &e);
    if (!hit && verify_full(a, token, len, &e, err) != 0)
        return -1;
    if (check_times(a, &e, now, err) != 0)
        return -1;
    if (!hit) /* only tokens valid now: an expired entry would just evict a useful one */
        cache_put(a, token, len, h, &e);
    *out = e.who;
    return 0;
}

static int is_ows(char c)
{
    return c == ' ' || c == '\t';
}

int ac_auth_bearer(ac_auth_t *a, const char *header_value, size_t len, int64_t now,
                   ac_principal_t *out, ac_err_t *err)
{
    const char *s = header_value, *end;
    memset(out, 0, sizeof *out);
    if (header_value == NULL)
        return deny(err, "missing token");
    for (end = s + len; s < end && is_ows(*s); s++)
        ;
    while (end > s && is_ows(end[-1]))
        end--;
    if (s == end)
        return deny(err, "missing token");
    /* RFC 6750 2.1: "Bearer" 1*SP token; the scheme is case-insensitive (RFC 7235 2.1). */
    if (end - s < 6 || strncasecmp(s, "Bearer", 6) != 0 || (end - s > 6 && !is_ows(s[6])))
        return deny(err, "unsupported authorization scheme");
    for (s += 6; s < end && is_ows(*s); s++)
        ;
    return ac_auth_verify(a, s, (size_t)(end - s), now, out, err); /* empty: "missing token" */
}

/* ---- issuing ------------------------------------------------------------------------------ */

/* "p1, p2" -> bits; every name must be known (a typo must not silently mint a weaker token). */
static int parse_perms_csv(const char *csv, uint32_t *perms, ac_err_t *err)
{
    const char *p = csv, *comma, *b, *e;
    *perms = 0;
    if (csv == NULL || *csv == '\0')
        return 0;
    for (;;) {
        comma = strchr(p, ',');
        e = comma != NULL ? comma : p + strlen(p);
        for (b = p; b < e && is_ows(*b); b++)
            ;
        while (e > b && is_ows(e[-1]))
            e--;
        if (b == e)
            return ac_err_field(err, AC_ERR_INVALID_PARAMS, "perms", "empty permission name");
        uint32_t bit = ac_perm_from_name(b, (size_t)(e - b));
        if (bit == 0)
            return ac_err_field(err, AC_ERR_INVALID_PARAMS, "perms", "unknown permission: %.*s",
                                (int)(e - b > 64 ? 64 : e - b), b);
        *perms |= bit;
        if (comma == NULL)
            return 0;
        p = comma + 1;
    }
}

char *ac_auth_issue(ac_auth_t *a, const char *sub, const char *perms_csv, int64_t ttl_s,
                    int64_t now, ac_err_t *err)
{
    uint32_t perms;
    json_t *claims = NULL, *list;
    char *body = NULL, *tok = NULL;
    jwt_t *j = NULL;
    int jrc;

    /* every argument first, then allocate */
    if (a->sign_key == NULL) {
        ac_err_field(err, AC_ERR_INVALID_PARAMS, "private_key_file",
                     "%s tokens are signed with the private key: set private_key_file", a->alg_name);
        return NULL;
    }
    if (sub == NULL || !sub_ok(sub, strlen(sub))) {
        ac_err_field(err, AC_ERR_INVALID_PARAMS, "sub", "must be 1 to %d printable ASCII characters",
                     AC_AUTH_SUB_MAX);
        return NULL;
    }
    if (ttl_s <= 0 || ttl_s > AC_AUTH_TTL_MAX || now > INT64_MAX - ttl_s) {
        ac_err_field(err, AC_ERR_INVALID_PARAMS, "ttl", "must be 1 to %lld seconds", AC_AUTH_TTL_MAX);
        return NULL;
    }
    if (parse_perms_csv(perms_csv, &perms, err) != 0)
        return NULL;

    if ((claims = json_pack("{s:s, s:[], s:I, s:I}", "sub", sub, "permissions", "iat", (json_int_t)now,
                            "exp", (json_int_t)(now + ttl_s))) == NULL)
        goto nomem;
    list = json_object_get(claims, "permissions");
    for (size_t i = 0; i < PERM_COUNT; i++)
        if ((perms & perm_table[i].bit) && json_array_append_new(list, json_string(perm_table[i].name)) != 0)
            goto nomem;
    if ((a->issuer && json_object_set_new(claims, "iss", json_string(a->issuer)) != 0) ||
        (a->audience && json_object_set_new(claims, "aud", json_string(a->audience)) != 0) ||
        (body = json_dumps(claims, JSON_COMPACT)) == NULL || jwt_new(&j) != 0)
        goto nomem;
    if ((jrc = jwt_add_grants_json(j, body)) != 0 ||
        (jrc = jwt_set_alg(j, a->alg, a->sign_key, a->sign_key_len)) != 0 ||
        (tok = jwt_encode_str(j)) == NULL) {
        ERR_clear_error(); /* see verify_full */
        ac_err_set(err, AC_ERR_INTERNAL, "auth: cannot sign a %s token", a->alg_name);
    }
    goto done;
nomem:
    oom(err);
done:
    jwt_free(j);
    free(body);
    json_decref(claims);
    return tok;
}

/* ---- create / destroy --------------------------------------------------------------------- */

/* A PEM file, whole: libjwt wants the bytes on every call. NULL with errno set on failure. */
static unsigned char *read_pem(const char *path, int *len)
{
    FILE *f = fopen(path, "rb");
    unsigned char *buf;
    size_t n;
    int e = 0;
    if (f == NULL)
        return NULL;
    if ((buf = malloc(AC_AUTH_KEY_FILE_MAX + 1)) == NULL)
        e = ENOMEM;
    else if ((n = fread(buf, 1, AC_AUTH_KEY_FILE_MAX + 1, f)) > AC_AUTH_KEY_FILE_MAX)
        e = EFBIG;
    else if (ferror(f))
        e = EIO;
    else if (n == 0)
        e = ENODATA;
    fclose(f);
    if (e != 0) {
        free(buf);
        errno = e;
        return NULL;
    }
    *len = (int)n;
    return buf;
}

/* Never prompt on a terminal for a passphrase (OpenSSL's default): an encrypted key fails. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf, (void)size, (void)rwflag, (void)u;
    return 0;
}

/* Parses a PEM the way libjwt will (PEM_read_bio_PUBKEY / PEM_read_bio_PrivateKey) and checks
 * that it fits the algorithm, so a wrong key fails at startup and not on every request.
 * Returns the key (caller frees) or NULL after setting err. */
static EVP_PKEY *load_key(const ac_auth_t *a, const unsigned char *pem, int len, int private,
                          const char *field, ac_err_t *err)
{
    BIO *bio = BIO_new_mem_buf(pem, len);
    EVP_PKEY *k = NULL;
    char group[32];
    const char *why = NULL;
    if (bio != NULL)
        k = private ? PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL)
                    : PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
    BIO_free(bio);
    if (k == NULL)
        why = private ? "not an unencrypted PEM private key" : "not a PEM public key";
    else if (a->alg == JWT_ALG_RS256 && EVP_PKEY_get_base_id(k) != EVP_PKEY_RSA)
        why = "RS256 needs an RSA key";
    else if (a->alg == JWT_ALG_RS256 && EVP_PKEY_get_bits(k) < 2048)
        why = "RSA key shorter than 2048 bits";
    else if (a->alg == JWT_ALG_ES256 &&
             (EVP_PKEY_get_base_id(k) != EVP_PKEY_EC ||
              !EVP_PKEY_get_group_name(k, group, sizeof group, NULL) || strcmp(group, "prime256v1") != 0))
        why = "ES256 needs an EC P-256 key";
    ERR_clear_error();
    if (why != NULL) {
        EVP_PKEY_free(k);
        bad_config(err, field, "%s", why);
        return NULL;
    }
    return k;
}

/* Reads and checks the RS256/ES256 key files into a. */
static int load_key_files(ac_auth_t *a, const ac_auth_config_t *cfg, ac_err_t *err)
{
    EVP_PKEY *pub = NULL, *priv = NULL;
    int rc = -1;
    if ((a->key = read_pem(cfg->public_key_file, &a->key_len)) == NULL)
        return bad_config(err, "public_key_file", "cannot read %s: %s", cfg->public_key_file, strerror(errno));
    if ((pub = load_key(a, a->key, a->key_len, 0, "public_key_file", err)) == NULL)
        return -1;
    if (cfg->private_key_file != NULL) {
        if ((a->sign_key = read_pem(cfg->private_key_file, &a->sign_key_len)) == NULL) {
            bad_config(err, "private_key_file", "cannot read %s: %s", cfg->private_key_file, strerror(errno));
            goto done;
        }
        if ((priv = load_key(a, a->sign_key, a->sign_key_len, 1, "private_key_file", err)) == NULL)
            goto done;
        /* a mismatched pair would issue tokens that this very server rejects */
        if (EVP_PKEY_eq(pub, priv) != 1) {
            ERR_clear_error();
            bad_config(err, "private_key_file", "does not match public_key_file");
            goto done;
        }
    }
    rc = 0;
done:
    EVP_PKEY_free(priv);
    EVP_PKEY_free(pub);
    return rc;
}

/* All the checks that need no allocation, so create can fail before building anything. */
static int check_config(const ac_auth_config_t *cfg, jwt_alg_t alg, ac_err_t *err)
{
    if (alg == JWT_ALG_INVAL)
        return bad_config(err, "alg", "must be HS256, RS256 or ES256");
    if (alg == JWT_ALG_HS256) {
        if (cfg->secret == NULL || strlen(cfg->secret) < AC_AUTH_SECRET_MIN)
            return bad_config(err, "secret", "HS256 needs a secret of at least %d bytes", AC_AUTH_SECRET_MIN);
        if (cfg->public_key_file != NULL || cfg->private_key_file != NULL)
            return bad_config(err, cfg->public_key_file ? "public_key_file" : "private_key_file",
                              "is for RS256/ES256, not HS256");
    } else {
        if (cfg->public_key_file == NULL)
            return bad_config(err, "public_key_file", "%s needs a PEM public key to verify with",
                              jwt_alg_str(alg));
        if (cfg->secret != NULL) /* refuse a config that could be read as either algorithm */
            return bad_config(err, "secret", "is for HS256, not %s", jwt_alg_str(alg));
    }
    if (cfg->issuer != NULL && *cfg->issuer == '\0')
        return bad_config(err, "issuer", "must not be empty (leave it unset to skip the check)");
    if (cfg->audience != NULL && *cfg->audience == '\0')
        return bad_config(err, "audience", "must not be empty (leave it unset to skip the check)");
    if (cfg->leeway_s > AC_AUTH_LEEWAY_MAX)
        return bad_config(err, "leeway_s", "must be at most %d seconds", AC_AUTH_LEEWAY_MAX);
    if (cfg->cache_entries < 0 || cfg->cache_entries > AC_AUTH_CACHE_MAX)
        return bad_config(err, "cache_entries", "must be 0 (default) to %d", AC_AUTH_CACHE_MAX);
    return 0;
}

ac_auth_t *ac_auth_create(const ac_auth_config_t *cfg, ac_err_t *err)
{
    const char *name = cfg->alg != NULL ? cfg->alg : "HS256";
    jwt_alg_t alg = strcmp(name, "HS256") == 0   ? JWT_ALG_HS256
                    : strcmp(name, "RS256") == 0 ? JWT_ALG_RS256
                    : strcmp(name, "ES256") == 0 ? JWT_ALG_ES256
                                                 : JWT_ALG_INVAL;
    size_t slots = AC_AUTH_CACHE_DEFAULT;
    ac_auth_t *a;

    if (check_config(cfg, alg, err) != 0)
        return NULL;
    if (cfg->cache_entries > 0)
        for (slots = 1; slots < (size_t)cfg->cache_entries; slots <<= 1)
            ;
    /* sizeof *a is a multiple of 64 (the stripes' alignment), as aligned_alloc requires */
    if ((a = aligned_alloc(_Alignof(ac_auth_t), sizeof *a)) == NULL) {
        oom(err);
        return NULL;
    }
    memset(a, 0, sizeof *a);
    a->alg = alg;
    a->alg_name = jwt_alg_str(alg);
    a->leeway = cfg->leeway_s < 0 ? AC_AUTH_LEEWAY_DEFAULT : cfg->leeway_s;
    a->mask = slots - 1;
    for (; a->locks_ready < AC_AUTH_STRIPES; a->locks_ready++)
        if (pthread_mutex_init(&a->stripes[a->locks_ready].lock, NULL) != 0)
            goto nomem;
    if ((a->slots = calloc(slots, sizeof *a->slots)) == NULL ||
        (cfg->issuer && (a->issuer = strdup(cfg->issuer)) == NULL) ||
        (cfg->audience && (a->audience = strdup(cfg->audience)) == NULL))
        goto nomem;
    if (alg == JWT_ALG_HS256) {
        a->key_len = (int)strlen(cfg->secret);
        if ((a->key = malloc((size_t)a->key_len)) == NULL)
            goto nomem;
        memcpy(a->key, cfg->secret, (size_t)a->key_len);
        a->sign_key = a->key;
        a->sign_key_len = a->key_len;
    } else if (load_key_files(a, cfg, err) != 0) {
        goto fail;
    }
    return a;
nomem:
    oom(err);
fail:
    ac_auth_destroy(a);
    return NULL;
}

static void wipe_free(unsigned char *p, int len)
{
    if (p != NULL)
        OPENSSL_cleanse(p, (size_t)len);
    free(p);
}

void ac_auth_destroy(ac_auth_t *a)
{
    if (a == NULL)
        return;
    if (a->slots != NULL)
        for (size_t i = 0; i <= a->mask; i++)
            free(a->slots[i].token);
    free(a->slots);
    for (int i = 0; i < a->locks_ready; i++)
        pthread_mutex_destroy(&a->stripes[i].lock);
    if (a->sign_key != a->key)
        wipe_free(a->sign_key, a->sign_key_len);
    wipe_free(a->key, a->key_len);
    free(a->issuer);
    free(a->audience);
    free(a);
}
