-- The default webhook policy: every event a subscription asked for is delivered as it is.
--
-- A policy's route(event, target) sees each (event, subscription) pair and returns:
--   nil or false          drop it
--   true                  deliver the event as it is to target.url
--   { url = ..., payload = ..., headers = { ["x-name"] = "value" } }
--                         one delivery, each field optional (a different URL, a changed body,
--                         extra headers)
--   { {...}, {...} }      several deliveries (route one event to several URLs)
-- event = { event = "training.job.completed", timestamp = "...", data = { job_id = ..., ... } }
-- target = { url = ..., events = { ... } or "*", source = "config" | "job" | "subscription",
--            subscription_id = ... }
-- Headers must be HTTP tokens with values free of control characters, and cannot be Host,
-- Content-Length, Transfer-Encoding, Connection, Keep-Alive, TE, Trailer, Upgrade, Expect,
-- Proxy-*, Content-Type or the webhook-* signature headers. A policy that raises or breaks these
-- rules fails closed: the delivery is dropped (unless webhooks.on_policy_error = "deliver"),
-- counted and shown on the subscription (docs/plugins.md, "Webhook policies").
return {
  name = "default",
  version = "1.0.0",
  description = "delivers every subscribed event unchanged",
  route = function(event, target)
    return true
  end,
}
