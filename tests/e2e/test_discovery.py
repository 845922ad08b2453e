"""rpc.discover (OpenRPC) kept true against the server's own method table, and GET /metrics in
Prometheus text format."""
import re

from harness import ServerTest, claims, make_jwt, main
from test_training import final, job_params, wait

def types(schema):
    """A schema's type as a list (JSON Schema allows one name or a list of them)."""
    t = schema["type"]
    return t if isinstance(t, list) else [t]


def good(schema):
    if schema.get("format") == "uuid":
        return "550e8400-e29b-41d4-a716-446655440000"
    return {"string": "x", "integer": 1, "number": 1.0, "boolean": True, "object": {}, "array": []}[types(schema)[0]]


OWN_ERRORS = {"training.start_grpo": {-40001, -40002}, "training.get_status": {-32001},
               "training.cancel": {-32001, -40003}, "training.evaluate": {-32001, -40004},
               "training.export_trajectories": {-32001, -40005}}


class DiscoveryTest(ServerTest):
    # every method called with each parameter wrong: start_grpo and import_checkpoint share a window
    CONFIG = "return { rate_limits = { start_grpo = { limit = 100 } } }"

    def test_document(self):
        _, _, resp = self.server.call("rpc.discover", {})
        doc = resp["result"]
        self.assertEqual(doc["openrpc"], "1.2.6")
        names = [m["name"] for m in doc["methods"]]
        for name in ("training.start_grpo", "training.get_status", "training.cancel", "training.evaluate",
                     "training.export_trajectories", "training.list_jobs", "training.list_checkpoints",
                     "training.list_events", "webhooks.subscribe", "webhooks.list", "webhooks.unsubscribe",
                     "rpc.discover"):
            self.assertIn(name, names)
        for name, codes in OWN_ERRORS.items():
            m = next(x for x in doc["methods"] if x["name"] == name)
            self.assertTrue(codes <= {e["code"] for e in m["errors"]}, name)

    def test_grpo_config_schema_is_what_the_server_checks(self):
        """components.schemas.GRPOConfig (the dashboard's start form) gives every config field with
        its type, default and range; the bounds are the ones start_grpo enforces."""
        _, _, resp = self.server.call("rpc.discover", {})
        schema = resp["result"]["components"]["schemas"]["GRPOConfig"]
        props = schema["properties"]
        self.assertFalse(schema["additionalProperties"])
        self.assertEqual({k: props["n_iterations"][k] for k in ("type", "minimum", "maximum", "default")},
                         {"type": "integer", "minimum": 1, "maximum": 10000, "default": 1000})
        self.assertEqual(props["loss_type"]["enum"], ["grpo", "dr_grpo", "dapo"])
        self.assertEqual(props["scale_rewards"], dict(props["scale_rewards"], type="boolean", default=True))
        self.assertAlmostEqual(props["learning_rate"]["default"], 0.0001)
        token = make_jwt(claims("schema-reader"))  # its own start_grpo window (10/min)
        for name in ("batch_size", "n_trajectories_per_query"):
            p = props[name]
            for value, ok in ((p["maximum"], True), (p["maximum"] + 1, False), (p["minimum"] - 1, False)):
                _, _, r = self.server.call("training.start_grpo", {"agent_id": "calculator", "config": {name: value},
                                                                   "training_data": []}, token)
                # within range the config passes and the (empty) data is what is refused
                self.assertEqual(r["error"]["data"].get("field") == name, not ok, (name, value, r))

    def test_every_documented_method_matches_the_server(self):
        """Each documented method exists, refuses an unknown parameter, requires exactly its
        required parameters, and checks each parameter's declared type."""
        _, _, resp = self.server.call("rpc.discover", {})
        token = make_jwt(claims(perms="training:start,training:view,training:cancel,training:evaluate,"
                                      "data:export,webhooks:manage,agents:invoke"))
        wrong = {"string": 12345, "integer": "x", "number": "x", "boolean": "x", "object": [], "array": {}}
        for m in resp["result"]["methods"]:
            _, _, r = self.server.call(m["name"], {"no_such_param": 1}, token)
            self.assertNotEqual(r.get("error", {}).get("code"), -32601, m["name"])
            self.assertIn(r["error"]["code"], (-32600, -32602), (m["name"], r))
            required = [p["name"] for p in m["params"] if p["required"]]
            if required:
                self.assertEqual(r["error"]["data"]["field"], required[0], (m["name"], r))
                self.assertEqual(r["error"]["data"]["error"], "is required")
            else:
                self.assertEqual(r["error"]["data"]["field"], "no_such_param", m["name"])
            for p in m["params"]:
                # every required parameter well-typed, then this one wrong
                params = {q["name"]: good(q["schema"]) for q in m["params"] if q["required"]}
                # a value of none of its types (for a string or an array: 12345)
                params[p["name"]] = wrong[types(p["schema"])[0]]
                _, _, r = self.server.call(m["name"], params, token)
                self.assertEqual(r["error"].get("data", {}).get("field"), p["name"], (m["name"], p, r))
        _, _, r = self.server.call("training.not_documented", {}, token)
        self.assertEqual(r["error"]["code"], -32601)


class MetricsTest(ServerTest):
    def test_prometheus_text(self):
        self.server.call("training.get_status", {"job_id": "550e8400-e29b-41d4-a716-446655440000"})
        _, _, r = self.server.call("training.start_grpo", job_params(n_iterations=10))
        wait(self.server, r["result"]["job_id"], final)
        status, headers, _ = self.server.request("GET", "/metrics")
        self.assertEqual(status, 401)
        status, _, _ = self.server.request("GET", "/metrics",
                                           headers={"Authorization": "Bearer " + make_jwt(claims())})
        self.assertEqual(status, 403)
        status, headers, body = self.server.request(
            "GET", "/metrics", headers={"Authorization": "Bearer " + make_jwt(claims(perms="metrics:view"))})
        self.assertEqual(status, 200)
        self.assertTrue(headers["content-type"].startswith("text/plain"))
        text = body.decode()
        self.assertIn('agentcore_requests_total{method="training.get_status",code="-32001"} 1\n', text)
        self.assertRegex(text, r'agentcore_requests_total\{method="training.start_grpo",code="0"\} 1\n')
        self.assertRegex(text, r'agentcore_request_duration_seconds_count\{method="training.get_status"\} \d+')
        self.assertIn('agentcore_request_duration_seconds_bucket{method="training.get_status",le="+Inf"}', text)
        self.assertIn('agentcore_jobs{status="completed"} 1\n', text)
        self.assertIn("agentcore_iterations_total 10\n", text)
        self.assertRegex(text, r"agentcore_trajectories_total \d+")
        self.assertIn("agentcore_webhook_deliveries_total 0\n", text)
        # every sample line is name{labels} value
        for line in text.splitlines():
            if not line.startswith("#"):
                self.assertRegex(line, r'^[a-z_]+(\{[^}]*\})? [0-9.e+-]+$')


if __name__ == "__main__":
    main()
