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
-- target = { url = ..., events = { ... }, source = "config" | "job" | "subscription",
--            subscription_id = ... }
return {
  name = "default",
  version = "1.0.0",
  description = "delivers every subscribed event unchanged",
  route = function(event, target)
    return true
  end,
}
