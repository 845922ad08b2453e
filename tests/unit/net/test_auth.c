/* Unit tests for core/net/auth.c. Every check names what it checks; exit status 1 on any failure.
 * Tokens that ac_auth_issue would never make (bad claims, foreign algorithms, alg "none") are
 * signed here with libjwt or by hand with HMAC; RSA and EC key pairs are generated per run. */
#include "net/auth.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jwt.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include "check.h"

#define T0 1700000000LL /* "now" for every test */
#define SECRET "test-secret-0123456789abcdef"


static const char *err_field(const ac_err_t *err, const char *key)
{
    return json_string_value(json_object_get(err->data, key));
}

/* ---- token makers ------------------------------------------------------------------------- */

static void b64url(const unsigned char *in, size_t n, char *out)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t i;
    for (i = 0; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        *out++ = abc[v >> 18], *out++ = abc[v >> 12 & 63], *out++ = abc[v >> 6 & 63], *out++ = abc[v & 63];
    }
    if (n - i == 1) {
        *out++ = abc[in[i] >> 2], *out++ = abc[(in[i] & 3) << 4];
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 8 | in[i + 1];
        *out++ = abc[v >> 10], *out++ = abc[v >> 4 & 63], *out++ = abc[(v & 15) << 2];
    }
    *out = '\0';
}

/* "b64(header).b64(payload)." plus an HS256 signature with `secret`, or nothing when NULL. */
static char *handmade(const char *header, const char *payload, const char *secret)
{
    size_t hn = strlen(header), pn = strlen(payload);
    char *t = malloc(hn * 2 + pn * 2 + 64);
    unsigned char mac[32];
    unsigned int maclen = 0;
    b64url((const unsigned char *)header, hn, t);
    strcat(t, ".");
    b64url((const unsigned char *)payload, pn, t + strlen(t));
    if (secret != NULL)
        HMAC(EVP_sha256(), secret, (int)strlen(secret), (unsigned char *)t, strlen(t), mac, &maclen);
    strcat(t, ".");
    b64url(mac, maclen, t + strlen(t));
    return t;
}

/* Signs claims (JSON object text) with libjwt; free() the result. */
static char *sign(jwt_alg_t alg, const void *key, size_t keylen, const char *claims)
{
    jwt_t *j;
    char *t = NULL;
    if (jwt_new(&j) != 0)
        return NULL;
    if (jwt_add_grants_json(j, claims) == 0 && jwt_set_alg(j, alg, key, (int)keylen) == 0)
        t = jwt_encode_str(j);
    jwt_free(j);
    return t;
}

/* HS256 with the test secret: libjwt when it takes the claims, else by hand (libjwt refuses
 * \u0000 in claims; a token from another issuer may still carry one). */
static char *hs(const char *claims)
{
    char *t = sign(JWT_ALG_HS256, SECRET, strlen(SECRET), claims);
    return t != NULL ? t : handmade("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", claims, SECRET);
}

/* ---- expectations ------------------------------------------------------------------------- */

static void expect_deny_n(ac_auth_t *a, const char *tok, size_t len, int64_t now, const char *reason,
                          const char *what)
{
    ac_principal_t p;
    ac_err_t err = AC_ERR_INIT;
    int rc = ac_auth_verify(a, tok, len, now, &p, &err);
    const char *got = err_field(&err, "error");
    int ok = rc == -1 && err.code == AC_ERR_UNAUTHORIZED && got != NULL && strcmp(got, reason) == 0 &&
             p.sub[0] == '\0' && p.perms == 0;
    if (!ok)
        fprintf(stderr, "  %s: rc=%d code=%d error=\"%s\", want \"%s\"\n", what, rc, err.code,
                got ? got : "", reason);
    CHECK(ok, what);
    ac_err_clear(&err);
}

static void expect_deny(ac_auth_t *a, const char *tok, int64_t now, const char *reason, const char *what)
{
    expect_deny_n(a, tok, tok ? strlen(tok) : 0, now, reason, what);
}

static void expect_ok(ac_auth_t *a, const char *tok, int64_t now, const char *sub, uint32_t perms,
                      const char *what)
{
    ac_principal_t p;
    ac_err_t err = AC_ERR_INIT;
    int rc = tok ? ac_auth_verify(a, tok, strlen(tok), now, &p, &err) : -1;
    int ok = rc == 0 && strcmp(p.sub, sub) == 0 && p.perms == perms;
    if (!ok)
        fprintf(stderr, "  %s: rc=%d error=\"%s\" sub=\"%s\" perms=%#x\n", what, rc,
                err_field(&err, "error") ? err_field(&err, "error") : "", rc == 0 ? p.sub : "",
                rc == 0 ? p.perms : 0);
    CHECK(ok, what);
    ac_err_clear(&err);
}

/* Signs claims with the test secret, expects `reason` (NULL: accepted as sub "t", perms). */
static void hs_case(ac_auth_t *a, const char *claims, const char *reason, uint32_t perms, const char *what)
{
    char *t = hs(claims);
    CHECK(t != NULL, "libjwt signs the test claims");
    if (reason != NULL)
        expect_deny(a, t, T0, reason, what);
    else
        expect_ok(a, t, T0, "t", perms, what);
    free(t);
}

static void expect_config_error(const ac_auth_config_t *cfg, const char *field, const char *what)
{
    ac_err_t err = AC_ERR_INIT;
    ac_auth_t *a = ac_auth_create(cfg, &err);
    const char *got = err_field(&err, "field");
    int ok = a == NULL && err.code == AC_ERR_INVALID_PARAMS && got != NULL && strcmp(got, field) == 0;
    if (!ok)
        fprintf(stderr, "  %s: code=%d field=%s message=%s\n", what, err.code, got ? got : "", err.message);
    CHECK(ok, what);
    ac_auth_destroy(a);
    ac_err_clear(&err);
}

/* ---- tests -------------------------------------------------------------------------------- */

static void test_perm_names(void)
{
    int all = 1;
    for (uint32_t bit = 1; bit & AC_PERM_ALL; bit <<= 1) {
        const char *n = ac_perm_name(bit);
        all &= n != NULL && ac_perm_from_name(n, strlen(n)) == bit;
    }
    CHECK(all, "every AC_PERM_* bit has a name that maps back to it");
    CHECK(ac_perm_from_name("data:export", 11) == AC_PERM_DATA_EXPORT, "data:export is known");
    CHECK(ac_perm_from_name("training:star", 13) == 0, "a prefix of a name is unknown");
    CHECK(ac_perm_from_name("training:startx", 15) == 0, "a name with a suffix is unknown");
    CHECK(ac_perm_name(AC_PERM_TRAINING_START | AC_PERM_TRAINING_VIEW) == NULL, "two bits have no single name");
    CHECK(ac_perm_name(1u << 20) == NULL, "an unknown bit has no name");
    ac_principal_t p = {.perms = AC_PERM_TRAINING_VIEW | AC_PERM_DATA_EXPORT};
    CHECK(ac_principal_has(&p, AC_PERM_TRAINING_VIEW | AC_PERM_DATA_EXPORT), "has: all held bits");
    CHECK(!ac_principal_has(&p, AC_PERM_TRAINING_VIEW | AC_PERM_TRAINING_START), "has: one bit missing");
}

static void test_config(void)
{
    expect_config_error(&(ac_auth_config_t){.secret = "short"}, "secret", "HS256 secret under 16 bytes");
    expect_config_error(&(ac_auth_config_t){0}, "secret", "HS256 without a secret");
    expect_config_error(&(ac_auth_config_t){.alg = "HS512", .secret = SECRET}, "alg", "HS512 is not offered");
    expect_config_error(&(ac_auth_config_t){.alg = "none", .secret = SECRET}, "alg", "none is not offered");
    expect_config_error(&(ac_auth_config_t){.alg = "RS256"}, "public_key_file", "RS256 without a public key");
    expect_config_error(&(ac_auth_config_t){.alg = "RS256", .secret = SECRET, .public_key_file = "/x"}, "secret",
                        "RS256 with a secret");
    expect_config_error(&(ac_auth_config_t){.secret = SECRET, .public_key_file = "/x"}, "public_key_file",
                        "HS256 with a public key file");
    expect_config_error(&(ac_auth_config_t){.alg = "RS256", .public_key_file = "/nonexistent/pub.pem"},
                        "public_key_file", "an unreadable public key file");
    expect_config_error(&(ac_auth_config_t){.secret = SECRET, .leeway_s = 4000}, "leeway_s", "leeway over an hour");
    expect_config_error(&(ac_auth_config_t){.secret = SECRET, .cache_entries = -1}, "cache_entries",
                        "negative cache size");
    expect_config_error(&(ac_auth_config_t){.secret = SECRET, .issuer = ""}, "issuer", "empty issuer");
    ac_auth_destroy(NULL);
}

static void test_hs256(void)
{
    ac_err_t err = AC_ERR_INIT;
    ac_auth_t *a = ac_auth_create(&(ac_auth_config_t){.secret = SECRET, .leeway_s = -1}, &err);
    char c[1024], *t;
    CHECK(a != NULL, "create HS256 with defaults");
    if (a == NULL)
        return;

    /* issue -> verify */
    t = ac_auth_issue(a, "tenant-a", "training:start, training:view,training:start", 3600, T0, &err);
    CHECK(t != NULL, "issue an HS256 token");
    expect_ok(a, t, T0, "tenant-a", AC_PERM_TRAINING_START | AC_PERM_TRAINING_VIEW, "issued token verifies");
    {
        ac_principal_t p;
        CHECK(ac_auth_verify(a, t, strlen(t), T0, &p, &err) == 0 && p.exp == T0 + 3600, "exp = now + ttl");
    }
    expect_deny(a, t, T0 + 3600 + 30, "token expired", "issued token expires at now + ttl (+ leeway)");
    free(t);
    t = ac_auth_issue(a, "tenant-a", "", 60, T0, &err);
    expect_ok(a, t, T0, "tenant-a", 0, "issue with no permissions gives an empty array");
    free(t);

    /* issue errors */
    t = ac_auth_issue(a, "tenant-a", "training:start,training:fly", 60, T0, &err);
    CHECK(t == NULL && err.code == AC_ERR_INVALID_PARAMS && err_field(&err, "error") &&
              strcmp(err_field(&err, "error"), "unknown permission: training:fly") == 0,
          "issue with an unknown permission fails naming it");
    free(t);
    t = ac_auth_issue(a, "tenant-a", "training:start,,data:export", 60, T0, &err);
    CHECK(t == NULL && err.code == AC_ERR_INVALID_PARAMS, "issue with an empty permission name fails");
    free(t);
    t = ac_auth_issue(a, "bad\nsub", "training:start", 60, T0, &err);
    CHECK(t == NULL && err_field(&err, "field") && strcmp(err_field(&err, "field"), "sub") == 0,
          "issue with a bad sub fails");
    free(t);
    t = ac_auth_issue(a, "tenant-a", "training:start", 0, T0, &err);
    CHECK(t == NULL && err_field(&err, "field") && strcmp(err_field(&err, "field"), "ttl") == 0,
          "issue with ttl 0 fails");
    free(t);
    ac_err_clear(&err);

    /* permissions and scope; only sub + permissions + exp are needed */
#define EXP "\"exp\": 1700000600"
    hs_case(a, "{\"sub\": \"t\", \"permissions\": [\"training:view\", \"no:such\"], " EXP "}", NULL,
            AC_PERM_TRAINING_VIEW, "permissions array; unknown names ignored");
    hs_case(a, "{\"sub\": \"t\", \"scope\": \"openid data:export  metrics:view\", " EXP "}", NULL,
            AC_PERM_DATA_EXPORT | AC_PERM_METRICS_VIEW, "OAuth scope string");
    hs_case(a, "{\"sub\": \"t\", \"permissions\": [\"training:cancel\"], \"scope\": \"webhooks:manage\", " EXP "}",
            NULL, AC_PERM_TRAINING_CANCEL | AC_PERM_WEBHOOKS_MANAGE, "permissions and scope add up");
    hs_case(a, "{\"sub\": \"t\", \"permissions\": [\"training:start\\u0000\"], " EXP "}", "malformed token",
            0, "\\u0000 in a claim (jansson refuses it; no prefix match either way)");
    hs_case(a, "{\"sub\": \"t\", " EXP "}", "missing claim: permissions", 0, "no permissions nor scope");
    hs_case(a, "{\"sub\": \"t\", \"permissions\": \"training:view\", " EXP "}", "invalid claim: permissions", 0,
            "permissions as a string");
    hs_case(a, "{\"sub\": \"t\", \"permissions\": [1], " EXP "}", "invalid claim: permissions", 0,
            "permissions with a number");
    hs_case(a, "{\"sub\": \"t\", \"scope\": [\"training:view\"], " EXP "}", "invalid claim: scope", 0,
            "scope as an array");

    /* shape */
    expect_deny(a, NULL, T0, "missing token", "NULL token");
    expect_deny(a, "", T0, "missing token", "empty token");
    expect_deny(a, "garbage", T0, "malformed token", "garbage");
    expect_deny(a, "a.b", T0, "malformed token", "one dot");
    expect_deny(a, "a.b.c.d", T0, "malformed token", "three dots");
    expect_deny(a, "eyJhbGciOiJIUzI1NiJ9..sig", T0, "malformed token", "empty payload");
    expect_deny(a, "e30.e30.", T0, "malformed token", "header without alg");
    expect_deny(a, "eyJhbGciOiJIUzI1NiJ9.!!!!.sig", T0, "malformed token", "non-base64url payload");
    expect_deny(a, "eyJhbGciOiJIUzI1NiJ9.WzFd.sig", T0, "malformed token", "payload not an object");
    t = hs("{\"sub\": \"t\", \"permissions\": [], " EXP "}");
    {
        char buf[1024];
        size_t n = strlen(t);
        memcpy(buf, t, n + 1);
        buf[n - 5] = '\0'; /* a NUL inside the signature: the length says it is part of the token */
        expect_deny_n(a, buf, n, T0, "malformed token", "a NUL byte inside the token");
        char *big = malloc(AC_AUTH_TOKEN_MAX + 2);
        memset(big, 'A', AC_AUTH_TOKEN_MAX + 1);
        big[AC_AUTH_TOKEN_MAX + 1] = '\0';
        expect_deny(a, big, T0, "malformed token", "a token over AC_AUTH_TOKEN_MAX");
        free(big);
    }
    free(t);

    /* signature and algorithm */
    t = sign(JWT_ALG_HS256, "another-secret-0123456789", 25, "{\"sub\": \"t\", \"permissions\": [], " EXP "}");
    expect_deny(a, t, T0, "bad signature", "wrong secret");
    free(t);
    t = handmade("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", "{\"sub\":\"t\",\"permissions\":[]," EXP "}", NULL);
    expect_deny(a, t, T0, "bad signature", "HS256 header with an empty signature");
    free(t);
    t = handmade("{\"alg\":\"none\",\"typ\":\"JWT\"}", "{\"sub\":\"t\",\"permissions\":[]," EXP "}", NULL);
    expect_deny(a, t, T0, "algorithm not allowed", "alg none");
    free(t);
    t = handmade("{\"alg\":\"none\"}", "{\"sub\":\"t\",\"permissions\":[]," EXP "}", SECRET);
    expect_deny(a, t, T0, "algorithm not allowed", "alg none with an HMAC signature appended");
    free(t);
    t = sign(JWT_ALG_HS512, SECRET, strlen(SECRET), "{\"sub\": \"t\", \"permissions\": [], " EXP "}");
    expect_deny(a, t, T0, "algorithm not allowed", "HS512 with the right secret");
    free(t);
    t = handmade("{\"alg\":\"HS256\",\"typ\":\"at+jwt\"}", "{\"sub\":\"t\",\"permissions\":[]," EXP "}", SECRET);
    expect_deny(a, t, T0, "unsupported token type", "typ other than JWT");
    free(t);
    t = handmade("{\"alg\":\"HS256\",\"crit\":[\"b64\"],\"b64\":false}", "{\"sub\":\"t\",\"permissions\":[]," EXP "}",
                 SECRET);
    expect_deny(a, t, T0, "unsupported header: crit", "crit header");
    free(t);
    t = handmade("{\"alg\":\"HS256\"}", "{\"sub\":\"t\",\"permissions\":[]," EXP "}", SECRET);
    expect_ok(a, t, T0, "t", 0, "hand-made HS256 token (control for the cases above)");
    free(t);
    t = handmade("{\"alg\":\"HS256\"}", "{\"sub\":\"admin\",\"sub\":\"t\",\"permissions\":[]," EXP "}", SECRET);
    expect_deny(a, t, T0, "malformed token", "duplicate sub claim");
    free(t);

    /* time claims, default leeway 30 s */
#define CL(extra) (snprintf(c, sizeof c, "{\"sub\": \"t\", \"permissions\": [] %s}", extra), c)
    char x[256];
#define AT(fmt, v) (snprintf(x, sizeof x, fmt, (long long)(v)), x)
    hs_case(a, CL(AT(", \"exp\": %lld", T0 - 31)), "token expired", 0, "exp 31 s ago");
    hs_case(a, CL(AT(", \"exp\": %lld", T0 - 30)), "token expired", 0, "exp exactly leeway ago");
    hs_case(a, CL(AT(", \"exp\": %lld", T0 - 29)), NULL, 0, "exp 29 s ago is within leeway");
    hs_case(a, CL(AT(", \"exp\": 1700000600, \"nbf\": %lld", T0 + 31)), "token not yet valid", 0, "nbf in 31 s");
    hs_case(a, CL(AT(", \"exp\": 1700000600, \"nbf\": %lld", T0 + 30)), NULL, 0, "nbf in 30 s is within leeway");
    hs_case(a, CL(AT(", \"exp\": 1700000600, \"iat\": %lld", T0 + 31)), "issued in the future", 0, "iat in 31 s");
    hs_case(a, CL(AT(", \"exp\": 1700000600, \"iat\": %lld", T0 + 30)), NULL, 0, "iat in 30 s is within leeway");
    hs_case(a, CL(""), "missing claim: exp", 0, "missing exp");
    hs_case(a, CL(", \"exp\": \"1700000600\""), "invalid claim: exp", 0, "exp as a string");
    hs_case(a, CL(", \"exp\": null"), "invalid claim: exp", 0, "exp null");
    hs_case(a, CL(", \"exp\": 1700000600.5"), NULL, 0, "fractional exp");
    hs_case(a, CL(", \"exp\": 1699999969.9"), "token expired", 0, "fractional exp rounds down");
    hs_case(a, CL(", \"exp\": 9223372036854775807"), NULL, 0, "exp at INT64_MAX does not overflow");
    hs_case(a, CL(", \"exp\": 1700000600, \"nbf\": 9223372036854775807"), "token not yet valid", 0,
            "nbf at INT64_MAX does not overflow");

    /* sub */
    hs_case(a, "{\"permissions\": [], " EXP "}", "missing claim: sub", 0, "missing sub");
    hs_case(a, "{\"sub\": \"\", \"permissions\": [], " EXP "}", "invalid sub", 0, "empty sub");
    hs_case(a, "{\"sub\": 42, \"permissions\": [], " EXP "}", "invalid sub", 0, "numeric sub");
    hs_case(a, "{\"sub\": \"a\\nb\", \"permissions\": [], " EXP "}", "invalid sub", 0, "sub with a newline");
    hs_case(a, "{\"sub\": \"a\\u0000b\", \"permissions\": [], " EXP "}", "malformed token", 0, "sub with a \\u0000");
    hs_case(a, "{\"sub\": \"caf\\u00e9\", \"permissions\": [], " EXP "}", "invalid sub", 0, "non-ASCII sub");
    {
        char sub[AC_AUTH_SUB_MAX + 2];
        memset(sub, 's', sizeof sub - 1);
        sub[AC_AUTH_SUB_MAX + 1] = '\0';
        snprintf(c, sizeof c, "{\"sub\": \"%s\", \"permissions\": [], " EXP "}", sub);
        hs_case(a, c, "invalid sub", 0, "sub of 129 bytes");
        sub[AC_AUTH_SUB_MAX] = '\0';
        snprintf(c, sizeof c, "{\"sub\": \"%s\", \"permissions\": [], " EXP "}", sub);
        t = hs(c);
        expect_ok(a, t, T0, sub, 0, "sub of 128 bytes");
        free(t);
    }

    /* Bearer header */
    t = hs("{\"sub\": \"t\", \"permissions\": [\"metrics:view\"], " EXP "}");
    {
        const char *forms[] = {"Bearer %s", "bearer\t%s  ", "  BEARER   %s"};
        char h[1024];
        ac_principal_t p;
        for (int i = 0; i < 3; i++) {
            snprintf(h, sizeof h, forms[i], t);
            snprintf(x, sizeof x, "bearer form \"%s\"", forms[i]);
            CHECK(ac_auth_bearer(a, h, strlen(h), T0, &p, &err) == 0 && strcmp(p.sub, "t") == 0 &&
                      p.perms == AC_PERM_METRICS_VIEW,
                  x);
        }
        struct {
            const char *h, *reason;
        } bad[] = {{"", "missing token"},          {"Bearer", "missing token"},
                   {"Bearer   ", "missing token"}, {"Basic dXNlcjpwYXNz", "unsupported authorization scheme"},
                   {"Bearerx abc", "unsupported authorization scheme"}, {"Bearer abc", "malformed token"}};
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            const char *got;
            int rc = ac_auth_bearer(a, bad[i].h, strlen(bad[i].h), T0, &p, &err);
            snprintf(x, sizeof x, "bearer \"%s\" -> %s", bad[i].h, bad[i].reason);
            CHECK(rc == -1 && (got = err_field(&err, "error")) != NULL && strcmp(got, bad[i].reason) == 0, x);
        }
        CHECK(ac_auth_bearer(a, NULL, 0, T0, &p, &err) == -1 && err.code == AC_ERR_UNAUTHORIZED &&
                  strcmp(err_field(&err, "error"), "missing token") == 0,
              "no Authorization header");
        CHECK(strcmp(err.message, "Unauthorized") == 0, "message is the code's name");
    }
    free(t);
    ac_err_clear(&err);
    ac_auth_destroy(a);

    /* leeway 0 */
    a = ac_auth_create(&(ac_auth_config_t){.secret = SECRET, .leeway_s = 0}, &err);
    CHECK(a != NULL, "create with leeway 0");
    if (a != NULL) {
        hs_case(a, CL(AT(", \"exp\": %lld", T0)), "token expired", 0, "leeway 0: exp == now is expired");
        hs_case(a, CL(AT(", \"exp\": %lld", T0 + 1)), NULL, 0, "leeway 0: exp == now + 1 is valid");
        hs_case(a, CL(AT(", \"exp\": 1700000600, \"nbf\": %lld", T0 + 1)), "token not yet valid", 0,
                "leeway 0: nbf == now + 1");
    }
    ac_auth_destroy(a);
    ac_err_clear(&err);
}

static void test_iss_aud(void)
{
    ac_err_t err = AC_ERR_INIT;
    ac_auth_t *a = ac_auth_create(
        &(ac_auth_config_t){.secret = SECRET, .issuer = "https://issuer.test", .audience = "agentcore"}, &err);
    CHECK(a != NULL, "create with issuer and audience");
    if (a == NULL)
        return;
#define IA(iss_aud) "{\"sub\": \"t\", \"permissions\": [], " EXP ", " iss_aud "}"
    hs_case(a, IA("\"iss\": \"https://issuer.test\", \"aud\": \"agentcore\""), NULL, 0, "right iss, aud string");
    hs_case(a, IA("\"iss\": \"https://issuer.test\", \"aud\": [\"other\", \"agentcore\"]"), NULL, 0,
            "aud array containing ours");
    hs_case(a, IA("\"iss\": \"https://evil.test\", \"aud\": \"agentcore\""), "wrong issuer", 0, "wrong iss");
    hs_case(a, IA("\"iss\": 1, \"aud\": \"agentcore\""), "wrong issuer", 0, "numeric iss");
    hs_case(a, IA("\"aud\": \"agentcore\""), "missing claim: iss", 0, "missing iss");
    hs_case(a, IA("\"iss\": \"https://issuer.test\", \"aud\": \"agentcorex\""), "wrong audience", 0,
            "aud string with a suffix");
    hs_case(a, IA("\"iss\": \"https://issuer.test\", \"aud\": \"agentcore\\u0000\""), "malformed token", 0,
            "aud with a \\u0000");
    hs_case(a, IA("\"iss\": \"https://issuer.test\", \"aud\": [\"other\", 7]"), "wrong audience", 0,
            "aud array without ours");
    hs_case(a, IA("\"iss\": \"https://issuer.test\", \"aud\": []"), "wrong audience", 0, "empty aud array");
    hs_case(a, IA("\"iss\": \"https://issuer.test\""), "missing claim: aud", 0, "missing aud");
    char *t = ac_auth_issue(a, "tenant-b", "training:admin", 60, T0, &err);
    expect_ok(a, t, T0, "tenant-b", AC_PERM_TRAINING_ADMIN, "issued token carries iss and aud");
    free(t);
    ac_auth_destroy(a);
    ac_err_clear(&err);
}

static void test_cache(void)
{
    ac_err_t err = AC_ERR_INIT;
    ac_auth_t *a = ac_auth_create(&(ac_auth_config_t){.secret = SECRET, .leeway_s = 0}, &err);
    ac_auth_stats_t s0, s1;
    ac_principal_t p1, p2;
    char *t, *u;
    size_t n;
    CHECK(a != NULL, "create for the cache tests");
    if (a == NULL)
        return;
    t = ac_auth_issue(a, "tenant-c", "training:start,data:export", 100, T0, &err);
    n = strlen(t);
    ac_auth_stats(a, &s0);
    int rc1 = ac_auth_verify(a, t, n, T0, &p1, &err);
    int rc2 = ac_auth_verify(a, t, n, T0 + 50, &p2, &err);
    ac_auth_stats(a, &s1);
    CHECK(rc1 == 0 && rc2 == 0 && memcmp(&p1, &p2, sizeof p1) == 0, "a cache hit returns the same principal");
    CHECK(s1.cache_misses == s0.cache_misses + 1 && s1.cache_hits == s0.cache_hits + 1,
          "first verify misses, second hits");
    expect_deny(a, t, T0 + 100, "token expired", "a cached token is refused at its exp");
    ac_auth_stats(a, &s0);
    CHECK(s0.cache_hits == s1.cache_hits + 1, "the expiry above was decided on a cache hit");

    {
        ac_principal_t p;
        int rc = ac_auth_verify(a, t, n - 1, T0, &p, &err); /* malformed or bad signature */
        CHECK(rc == -1 && err.code == AC_ERR_UNAUTHORIZED, "the cached token minus its last byte");
    }
    u = malloc(n + 2);
    memcpy(u, t, n);
    memcpy(u + n, "A", 2);
    expect_deny(a, u, T0, "bad signature", "the cached token plus one byte");
    free(u);
    /* Same length and same last 64 bytes, hence the same slot and hash: only the exact-bytes
     * compare can tell it from the cached token. */
    {
        ac_principal_t p;
        u = strdup(t);
        u[10] = u[10] == 'A' ? 'B' : 'A';
        ac_auth_stats(a, &s0);
        int rc = ac_auth_verify(a, u, n, T0, &p, &err);
        ac_auth_stats(a, &s1);
        CHECK(rc == -1 && err.code == AC_ERR_UNAUTHORIZED && s1.cache_hits == s0.cache_hits,
              "the cached token with one early byte changed (same slot) is not a hit");
        free(u);
    }
    /* Same signature on another payload. */
    {
        char *forged = handmade("{\"alg\":\"HS256\",\"typ\":\"JWT\"}",
                                "{\"sub\":\"root\",\"permissions\":[\"training:admin\"],\"exp\":1700000100}", NULL);
        const char *sig = strrchr(t, '.');
        u = malloc(strlen(forged) + strlen(sig) + 1);
        strcpy(u, forged);
        strcpy(strrchr(u, '.'), sig);
        expect_deny(a, u, T0, "bad signature", "another payload with the cached token's signature");
        free(u);
        free(forged);
    }
    free(t);

    /* nbf is re-checked on hits too */
    {
        char c[256];
        snprintf(c, sizeof c, "{\"sub\":\"t\",\"permissions\":[],\"exp\":%lld,\"nbf\":%lld}", T0 + 100, T0 + 10);
        t = hs(c);
        expect_ok(a, t, T0 + 20, "t", 0, "nbf token valid after nbf");
        ac_auth_stats(a, &s0);
        expect_deny(a, t, T0, "token not yet valid", "a cached token is refused before its nbf");
        ac_auth_stats(a, &s1);
        CHECK(s1.cache_hits == s0.cache_hits + 1, "the nbf refusal above was decided on a cache hit");
        free(t);
    }
    ac_auth_destroy(a);

    /* one slot: every new token overwrites; answers stay right */
    a = ac_auth_create(&(ac_auth_config_t){.secret = SECRET, .cache_entries = 1}, &err);
    CHECK(a != NULL, "create with a one-slot cache");
    if (a == NULL)
        return;
    t = ac_auth_issue(a, "one", "training:view", 100, T0, &err);
    u = ac_auth_issue(a, "two", "training:cancel", 100, T0, &err);
    for (int i = 0; i < 3; i++) {
        expect_ok(a, t, T0, "one", AC_PERM_TRAINING_VIEW, "one-slot cache: token one");
        expect_ok(a, u, T0, "two", AC_PERM_TRAINING_CANCEL, "one-slot cache: token two");
    }
    free(t);
    free(u);
    ac_auth_destroy(a);
    ac_err_clear(&err);
}

/* ---- threads: many verifiers, a tiny cache (constant overwrites), one answer per token ------ */

#define THREADS 4
#define TOKENS 8
#define ROUNDS 3000

static struct {
    ac_auth_t *a;
    char *tok[TOKENS];
    char sub[TOKENS][24];
} shared;

static void *verifier(void *arg)
{
    long wrong = 0, seed = (long)(intptr_t)arg;
    for (int r = 0; r < ROUNDS; r++) {
        int i = (int)((r * 7 + seed) % TOKENS);
        ac_principal_t p;
        ac_err_t err = AC_ERR_INIT;
        if (ac_auth_verify(shared.a, shared.tok[i], strlen(shared.tok[i]), T0, &p, &err) != 0 ||
            strcmp(p.sub, shared.sub[i]) != 0)
            wrong++;
        /* a near miss: same token but one byte short */
        if (ac_auth_verify(shared.a, shared.tok[i], strlen(shared.tok[i]) - 1, T0, &p, &err) == 0)
            wrong++;
        ac_err_clear(&err);
    }
    return (void *)(intptr_t)wrong;
}

static void test_threads(void)
{
    ac_err_t err = AC_ERR_INIT;
    pthread_t th[THREADS];
    long wrong = 0;
    ac_auth_stats_t s;
    shared.a = ac_auth_create(&(ac_auth_config_t){.secret = SECRET, .cache_entries = 4}, &err);
    CHECK(shared.a != NULL, "create for the thread test");
    if (shared.a == NULL)
        return;
    for (int i = 0; i < TOKENS; i++) {
        snprintf(shared.sub[i], sizeof shared.sub[i], "tenant-%d", i);
        shared.tok[i] = ac_auth_issue(shared.a, shared.sub[i], "training:view", 600, T0, &err);
    }
    for (long i = 0; i < THREADS; i++)
        pthread_create(&th[i], NULL, verifier, (void *)(intptr_t)i);
    for (int i = 0; i < THREADS; i++) {
        void *w;
        pthread_join(th[i], &w);
        wrong += (long)(intptr_t)w;
    }
    ac_auth_stats(shared.a, &s);
    CHECK(wrong == 0, "concurrent verifies with a 4-slot cache give each token its own principal");
    CHECK(s.cache_hits > 0 && s.cache_hits + s.cache_misses == 2ull * THREADS * ROUNDS,
          "concurrent verifies are all counted, some as hits");
    for (int i = 0; i < TOKENS; i++)
        free(shared.tok[i]);
    ac_auth_destroy(shared.a);
    ac_err_clear(&err);
}

/* ---- RS256 / ES256 ------------------------------------------------------------------------ */

static int write_key(const char *path, EVP_PKEY *k, int private)
{
    FILE *f = fopen(path, "w");
    int ok = f != NULL && (private ? PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL) : PEM_write_PUBKEY(f, k));
    if (f != NULL)
        fclose(f);
    return ok;
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = calloc(1, 65536);
    *len = f ? fread(buf, 1, 65535, f) : 0;
    if (f)
        fclose(f);
    return buf;
}

/* Round trip and refusals for one public-key algorithm. dir holds pub/priv (the pair), other.pem
 * (a private key of the same type, not the pair) and foreign.pem (the other algorithm's public). */
static void test_pk(const char *alg, jwt_alg_t id, const char *dir)
{
    char pub[512], priv[512], other[512], foreign[512], what[128];
    ac_err_t err = AC_ERR_INIT;
    size_t publen, otherlen;
    snprintf(pub, sizeof pub, "%s/%s-pub.pem", dir, alg);
    snprintf(priv, sizeof priv, "%s/%s-priv.pem", dir, alg);
    snprintf(other, sizeof other, "%s/%s-other.pem", dir, alg);
    snprintf(foreign, sizeof foreign, "%s/%s-pub.pem", dir, id == JWT_ALG_RS256 ? "ES256" : "RS256");

    ac_auth_t *a = ac_auth_create(&(ac_auth_config_t){.alg = alg, .public_key_file = pub, .private_key_file = priv}, &err);
    snprintf(what, sizeof what, "%s: create with a key pair", alg);
    CHECK(a != NULL, what);
    ac_auth_t *v = ac_auth_create(&(ac_auth_config_t){.alg = alg, .public_key_file = pub}, &err);
    snprintf(what, sizeof what, "%s: create with the public key only", alg);
    CHECK(v != NULL, what);
    if (a == NULL || v == NULL)
        goto out;

    char *t = ac_auth_issue(a, "tenant-pk", "training:evaluate", 600, T0, &err);
    snprintf(what, sizeof what, "%s: issued token verifies with the public key alone", alg);
    expect_ok(v, t, T0, "tenant-pk", AC_PERM_TRAINING_EVALUATE, what);
    snprintf(what, sizeof what, "%s: issued token verifies again (cached)", alg);
    expect_ok(v, t, T0, "tenant-pk", AC_PERM_TRAINING_EVALUATE, what);
    snprintf(what, sizeof what, "%s: issued token expires", alg);
    expect_deny(v, t, T0 + 630, "token expired", what);
    free(t);

    /* Flip an unused low bit of the signature's last character: same signature bytes, another
     * spelling (RS256: 342 characters, ES256: 86; both leave 4 unused bits). */
    t = ac_auth_issue(a, "tenant-pk", "training:evaluate", 600, T0, &err);
    {
        static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        size_t n = strlen(t);
        t[n - 1] = abc[(strchr(abc, t[n - 1]) - abc) ^ 1];
        snprintf(what, sizeof what, "%s: a non-canonical spelling of the signature", alg);
        expect_deny(v, t, T0, "malformed token", what);
    }
    free(t);

    t = ac_auth_issue(v, "tenant-pk", "training:view", 600, T0, &err);
    snprintf(what, sizeof what, "%s: issuing without private_key_file fails clearly", alg);
    CHECK(t == NULL && err.code == AC_ERR_INVALID_PARAMS && err_field(&err, "field") &&
              strcmp(err_field(&err, "field"), "private_key_file") == 0,
          what);
    free(t);

    const char *claims = "{\"sub\": \"t\", \"permissions\": [], " EXP "}";
    char *pem = slurp(pub, &publen), *otherpem = slurp(other, &otherlen);
    t = sign(id, otherpem, otherlen, claims);
    snprintf(what, sizeof what, "%s: token signed by another key", alg);
    expect_deny(v, t, T0, "bad signature", what);
    free(t);
    t = hs(claims);
    snprintf(what, sizeof what, "%s: an HS256 token", alg);
    expect_deny(v, t, T0, "algorithm not allowed", what);
    free(t);

    /* Algorithm confusion: HMAC keyed with the public PEM, which an attacker can read. */
    t = sign(JWT_ALG_HS256, pem, publen, claims);
    {
        jwt_t *j = NULL;
        snprintf(what, sizeof what, "%s: precondition: libjwt alone accepts the confusion token", alg);
        CHECK(t != NULL && jwt_decode(&j, t, (const unsigned char *)pem, (int)publen) == 0, what);
        jwt_free(j);
    }
    snprintf(what, sizeof what, "%s: HS256 signed with the public PEM as secret", alg);
    expect_deny(v, t, T0, "algorithm not allowed", what);
    free(t);
    t = handmade(id == JWT_ALG_RS256 ? "{\"alg\":\"none\"}" : "{\"alg\":\"none\",\"typ\":\"JWT\"}", claims, NULL);
    snprintf(what, sizeof what, "%s: alg none", alg);
    expect_deny(v, t, T0, "algorithm not allowed", what);
    free(t);
    free(pem);
    free(otherpem);

    /* keys that do not fit */
    snprintf(what, sizeof what, "%s: a private key that is not the pair", alg);
    expect_config_error(&(ac_auth_config_t){.alg = alg, .public_key_file = pub, .private_key_file = other},
                        "private_key_file", what);
    snprintf(what, sizeof what, "%s: the other algorithm's key type", alg);
    expect_config_error(&(ac_auth_config_t){.alg = alg, .public_key_file = foreign}, "public_key_file", what);
    snprintf(what, sizeof what, "%s: a private key given as the public key", alg);
    expect_config_error(&(ac_auth_config_t){.alg = alg, .public_key_file = priv}, "public_key_file", what);
out:
    ac_err_clear(&err);
    ac_auth_destroy(a);
    ac_auth_destroy(v);
}

static void test_public_key_algs(void)
{
    char dir[] = "/tmp/test_auth.XXXXXX", path[512];
    const char *files[] = {"RS256-pub.pem", "RS256-priv.pem", "RS256-other.pem",
                           "ES256-pub.pem", "ES256-priv.pem", "ES256-other.pem"};
    EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    EVP_PKEY *rsa2 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    EVP_PKEY *ec2 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    EVP_PKEY *keys[] = {rsa, rsa, rsa2, ec, ec, ec2};
    int ok = mkdtemp(dir) != NULL && rsa && rsa2 && ec && ec2;
    for (int i = 0; ok && i < 6; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        ok = write_key(path, keys[i], i % 3 != 0);
    }
    CHECK(ok, "generate RSA 2048 and EC P-256 key pairs");
    if (ok) {
        test_pk("RS256", JWT_ALG_RS256, dir);
        test_pk("ES256", JWT_ALG_ES256, dir);
    }
    for (int i = 0; i < 6; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        unlink(path);
    }
    rmdir(dir);
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(rsa2);
    EVP_PKEY_free(ec);
    EVP_PKEY_free(ec2);
}

int main(void)
{
    test_perm_names();
    test_config();
    test_hs256();
    test_iss_aud();
    test_cache();
    test_threads();
    test_public_key_algs();
    return check_done(__FILE__);
}
