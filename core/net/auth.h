/* Authentication: a JWT bearer token -> a principal {sub, permissions}.
 *
 * The algorithm is pinned by the config: a token whose header names any other algorithm
 * (`none` included) is rejected before any signature work, and again after libjwt has decoded it.
 * libjwt 1.10.2 checks no claims, so exp/nbf/iat/iss/aud/sub are all checked here.
 *
 * Verified tokens are cached (key: the exact token bytes) so that a client presenting the same
 * token again costs a hash and a memcmp instead of a signature check (RS256 ~400 us). The time
 * claims are checked again on every hit, so a cached token still expires on time.
 *
 * Every verification failure is code AC_ERR_UNAUTHORIZED, message "Unauthorized", data
 * {"error": "<reason>"}; the reasons are fixed strings ("missing token", "malformed token",
 * "bad signature", "algorithm not allowed", "token expired", ...) and never echo token text. */
#ifndef AC_AUTH_H
#define AC_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

/* Permissions, as bits of ac_principal_t.perms. Names (the strings in tokens) in ac_perm_name. */
#define AC_PERM_TRAINING_START (1u << 0)    /* "training:start" */
#define AC_PERM_TRAINING_VIEW (1u << 1)     /* "training:view" */
#define AC_PERM_TRAINING_CANCEL (1u << 2)   /* "training:cancel" */
#define AC_PERM_TRAINING_EVALUATE (1u << 3) /* "training:evaluate" */
#define AC_PERM_DATA_EXPORT (1u << 4)       /* "data:export" */
#define AC_PERM_TRAINING_ADMIN (1u << 5)    /* "training:admin" (implies nothing by itself) */
#define AC_PERM_WEBHOOKS_MANAGE (1u << 6)   /* "webhooks:manage" */
#define AC_PERM_METRICS_VIEW (1u << 7)      /* "metrics:view" */
#define AC_PERM_AGENTS_INVOKE (1u << 8)     /* "agents:invoke": use a trained policy (agents.act, agents.run) */
#define AC_PERM_ALL 0x1ffu

/* Longest token accepted (bytes). Longer ones are "malformed token" without further work. */
#define AC_AUTH_TOKEN_MAX 8192
/* Longest principal name (`sub`), in bytes. */
#define AC_AUTH_SUB_MAX 128

typedef struct ac_auth_config {
    const char *alg;              /* "HS256" (default when NULL), "RS256", "ES256" */
    const char *secret;           /* HS256 shared secret: required for HS256, >= 16 bytes;
                                   * must be NULL otherwise */
    const char *public_key_file;  /* RS256/ES256: PEM public key used to verify (required);
                                   * must be NULL for HS256 */
    const char *private_key_file; /* RS256/ES256: unencrypted PEM private key used by
                                   * ac_auth_issue (optional; must match the public key) */
    const char *issuer;           /* when non-NULL, `iss` must equal it (non-empty) */
    const char *audience;         /* when non-NULL, `aud` (string or array) must contain it */
    int leeway_s;                 /* clock skew allowed for exp/nbf/iat; <0 means 30; max 3600 */
    int cache_entries;            /* verified-token cache slots; 0 means 4096; rounded up to a
                                   * power of two; max 1 << 20 */
} ac_auth_config_t;

typedef struct ac_principal {
    char sub[AC_AUTH_SUB_MAX + 1]; /* NUL-terminated; 1..128 printable ASCII bytes */
    uint32_t perms;                /* AC_PERM_* bits */
    int64_t exp;                   /* the token's `exp` (seconds since the epoch) */
} ac_principal_t;

typedef struct ac_auth_stats {
    uint64_t cache_hits;   /* verifications answered from the cache */
    uint64_t cache_misses; /* lookups that found nothing: a full verification followed */
} ac_auth_stats_t;

typedef struct ac_auth ac_auth_t;

/* Builds a verifier from cfg. Copies every string it needs (cfg may be freed afterwards) and reads
 * and checks the key files now, so that a bad key fails at startup rather than per request: the
 * public key must be RSA >= 2048 bits for RS256 or EC P-256 for ES256, and the private key, when
 * given, must be its pair.
 * Returns NULL on error with err = AC_ERR_INVALID_PARAMS, data {"field": <cfg member>, "error"},
 * and a message naming both (AC_ERR_INTERNAL when out of memory). */
ac_auth_t *ac_auth_create(const ac_auth_config_t *cfg, ac_err_t *err);

/* Frees a (wiping the secret and the cache). NULL is a no-op. No call on `a` may be running. */
void ac_auth_destroy(ac_auth_t *a);

/* Verifies `token` (len bytes, not necessarily NUL-terminated) at time `now` (seconds since the
 * epoch) and fills *out. Thread-safe. Required claims: `sub`, `exp`, and `permissions` (array of
 * strings) or `scope` (space-separated string); `nbf`, `iat` are checked when present, `iss` and
 * `aud` when configured. Unknown permission names are ignored.
 * Returns 0, or -1 with err = AC_ERR_UNAUTHORIZED and data {"error": reason} (AC_ERR_INTERNAL
 * when out of memory); *out is zeroed on failure. */
int ac_auth_verify(ac_auth_t *a, const char *token, size_t len, int64_t now, ac_principal_t *out,
                   ac_err_t *err);

/* Like ac_auth_verify on the token of an Authorization header value "Bearer <token>" (scheme
 * case-insensitive, spaces/tabs around the token allowed). header_value may be NULL (no header):
 * "missing token". Another scheme: "unsupported authorization scheme". */
int ac_auth_bearer(ac_auth_t *a, const char *header_value, size_t len, int64_t now,
                   ac_principal_t *out, ac_err_t *err);

/* Issues a token signed with the configured algorithm (the `agentcore token` command): claims
 * `sub`, `permissions` (from perms_csv, "p1,p2"; spaces around names allowed; NULL or "" gives
 * []), `iat` = now, `exp` = now + ttl_s, plus `iss`/`aud` when configured.
 * Returns a malloc'd NUL-terminated token that the caller frees, or NULL with err =
 * AC_ERR_INVALID_PARAMS and data {"field": "sub" | "perms" | "ttl" | "private_key_file",
 * "error"} (an unknown permission is named: "unknown permission: foo"); AC_ERR_INTERNAL when
 * signing fails. RS256/ES256 need private_key_file in the config. Thread-safe. */
char *ac_auth_issue(ac_auth_t *a, const char *sub, const char *perms_csv, int64_t ttl_s,
                    int64_t now, ac_err_t *err);

/* Adds up the cache counters of all stripes into *out. Thread-safe. */
void ac_auth_stats(ac_auth_t *a, ac_auth_stats_t *out);

/* The AC_PERM_* bit of a permission name (len bytes, exact match), 0 when unknown. */
uint32_t ac_perm_from_name(const char *name, size_t len);

/* The name of a single AC_PERM_* bit (static string), NULL when `bit` is not exactly one known
 * permission. */
const char *ac_perm_name(uint32_t bit);

/* 1 when p holds every bit of `perm` (so perm may combine several permissions). */
static inline int ac_principal_has(const ac_principal_t *p, uint32_t perm)
{
    return (p->perms & perm) == perm;
}

#endif
