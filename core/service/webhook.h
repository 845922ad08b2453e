/* Webhooks: job events delivered to subscribers, signed as Standard Webhooks does.
 *
 * Events enter the outbox (store/hooks.h) in the same transaction that records them (jobs.c),
 * so a restart loses none. One delivery thread per node then
 *   1. fans each event out to the subscriptions that want it: the config's (every job), the
 *      job's own (start_grpo's `webhooks`) and the owner's (webhooks.subscribe); the webhook
 *      policy plugin decides per subscription: drop, deliver, change the payload, route to other
 *      URLs, add headers; the resulting deliveries replace the event in the outbox, in one
 *      transaction;
 *   2. delivers what is due with libcurl (in parallel), signed with headers webhook-id (stable
 *      across retries: at-least-once delivery with deduplication by id), webhook-timestamp and
 *      webhook-signature = v1,<base64 HMAC-SHA256 over "id.timestamp.body">; any 2xx is
 *      success, 410 disables the subscription, anything else (or a timeout) is retried on the
 *      configured schedule with jitter, then dropped.
 * A policy that fails (raises, returns garbage, sets a header the delivery owns, routes to a
 * refused URL) drops that delivery unless webhooks.on_policy_error = "deliver": counted in
 * /metrics, logged, and shown on the subscription (policy_errors, last_policy_error).
 * URLs with control characters or blanks are always refused; loopback and private addresses are refused (at subscription and again at connect time, so a
 * name that later resolves to one is refused too) unless webhooks.allow_private is set. */
#ifndef AC_WEBHOOK_H
#define AC_WEBHOOK_H

#include <stddef.h>
#include <stdint.h>

#include "lua/config.h"
#include "base/err.h"
#include "store/hooks.h"

typedef struct ac_webhooks ac_webhooks_t;

/* The records live in hooks (borrowed: it must outlive the thread). With several nodes over one
 * database each outbox entry is claimed by one node's thread (hooks.h), which fans it out or
 * delivers it: an event goes to each subscriber once, whichever node recorded it. */
ac_webhooks_t *ac_webhooks_start(const ac_config_t *cfg, ac_hooks_t *hooks, ac_err_t *err);
/* Wakes the delivery thread (an event was recorded). Thread-safe; NULL is a no-op. */
void ac_webhooks_notify(ac_webhooks_t *w);
/* Delivery counters since start: delivered (2xx), failed attempts, dropped (retries exhausted or
 * 410), policy errors (the policy raised, returned something invalid, or routed to a refused
 * URL). NULL gives zeros. */
void ac_webhooks_counters(ac_webhooks_t *w, uint64_t *delivered, uint64_t *failed, uint64_t *dropped,
                          uint64_t *policy_errors);

/* Stops the thread; pending work stays in the outbox for the next start. NULL is a no-op. */
void ac_webhooks_stop(ac_webhooks_t *w);

/* Checks a target URL: no control character or blank (whatever webhooks.allow_private says),
 * http or https, a host, and (unless allowed) no loopback or private address for it. Returns 0,
 * or -1 with err = AC_ERR_INVALID_PARAMS naming `field`. */
int ac_webhook_url_check(const ac_config_t *cfg, const char *url, const char *field, ac_err_t *err);

/* Checks an events list: "*" (every event), or a non-empty array of known event names and "*". */
int ac_webhook_events_check(const json_t *events, const char *field, ac_err_t *err);

/* Subscriptions of a principal (webhooks.subscribe / list / unsubscribe). subscribe returns the
 * stored subscription with its signing secret (whsec_...), which only this answer shows. */
int ac_webhooks_subscribe(ac_hooks_t *s, const ac_config_t *cfg, const char *owner, const char *url,
                          const json_t *events, int64_t now_ms, json_t **out, ac_err_t *err);
int ac_webhooks_list(ac_hooks_t *s, const char *owner, json_t **out, ac_err_t *err);
/* 0, or AC_ERR_NOT_FOUND for an id the owner does not have. */
int ac_webhooks_unsubscribe(ac_hooks_t *s, const char *owner, const char *id, ac_err_t *err);

/* The webhook-signature header value for a message: "v1,<base64>". secret is whsec_<base64>.
 * Returns 0, or -1 when the secret is not valid. out: at least 64 bytes. */
int ac_webhook_sign(const char *secret, const char *msg_id, int64_t timestamp, const char *body, size_t len,
                    char *out, size_t outlen);

/* A new whsec_ secret (24 random bytes). out: at least 48 bytes. */
int ac_webhook_new_secret(char *out, size_t outlen);

#endif
