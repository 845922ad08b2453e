"""Per principal x method rate limits with X-RateLimit-* headers; a batch counts each call."""
import time

from harness import ServerTest, claims, make_jwt, main

UNKNOWN = "550e8400-e29b-41d4-a716-446655440000"


class RateLimitTest(ServerTest):
    CONFIG = "return { rate_limits = { get_status = { limit = 3, window_s = 60 }, cancel = { limit = 2 } } }"

    def status(self, token, id=1):
        return self.server.call("training.get_status", {"job_id": UNKNOWN}, token, id=id)

    def test_overflow_is_429_with_retry_after(self):
        tok = make_jwt(claims("rl-single"))
        for i in range(3):
            status, headers, resp = self.status(tok)
            self.assertEqual(status, 200)
            self.assertEqual(headers["x-ratelimit-limit"], "3")
            self.assertEqual(headers["x-ratelimit-remaining"], str(2 - i))
            reset = int(headers["x-ratelimit-reset"])
            self.assertTrue(time.time() < reset <= time.time() + 61, reset)
        status, headers, resp = self.status(tok)
        self.assertEqual(status, 429)
        self.assertEqual(resp["error"]["code"], -32029)
        retry = resp["error"]["data"]["retry_after_s"]
        self.assertTrue(1 <= retry <= 60, retry)
        self.assertEqual(headers["retry-after"], str(retry))
        self.assertEqual(headers["x-ratelimit-remaining"], "0")

    def test_limits_are_per_principal_and_method(self):
        a, b = make_jwt(claims("rl-a")), make_jwt(claims("rl-b"))
        for _ in range(3):
            self.status(a)
        self.assertEqual(self.status(a)[0], 429)
        self.assertEqual(self.status(b)[0], 200)  # another principal has its own window
        status, headers, resp = self.server.call("training.cancel", {"job_id": UNKNOWN}, a)
        self.assertEqual(resp["error"]["code"], -32001)  # another method too
        self.assertEqual(headers["x-ratelimit-limit"], "2")

    def test_each_call_of_a_batch_counts(self):
        tok = make_jwt(claims("rl-batch"))
        call = {"jsonrpc": "2.0", "method": "training.get_status", "params": {"job_id": UNKNOWN}}
        batch = [dict(call, id=i) for i in range(4)]
        status, headers, resp = self.server.post(batch, tok)
        self.assertEqual(status, 200)  # a batch is answered 200 with per-call errors
        codes = [r["error"]["code"] for r in resp]
        self.assertEqual(codes, [-32001, -32001, -32001, -32029])
        self.assertEqual(headers["x-ratelimit-remaining"], "0")

    def test_unauthenticated_requests_do_not_spend_budget(self):
        tok = make_jwt(claims("rl-unauth"))
        self.server.call("training.get_status", {"job_id": UNKNOWN}, "garbage")
        status, headers, _ = self.status(tok)
        self.assertEqual(headers["x-ratelimit-remaining"], "2")


if __name__ == "__main__":
    main()
