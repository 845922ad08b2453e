"""HTTP front: paths, verbs, media type, body limit on HTTP/1.1 and HTTP/2, h2c, TLS h2."""
import json
import os
import subprocess
import unittest

from harness import Server, ServerTest, claims, make_jwt, main, queries, temp_dir

LIMIT = 65536


class HttpTest(ServerTest):
    CONFIG = "return { limits = { max_body_bytes = %d }, threads = 2 }" % LIMIT

    def test_healthz(self):
        status, _, body = self.server.request("GET", "/healthz")
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(body), {"status": "ok"})

    def test_unknown_path_is_404(self):
        status, _, _ = self.server.request("POST", "/api/v2/jsonrpc", b"{}", {"Content-Type": "application/json"})
        self.assertEqual(status, 404)

    def test_other_verbs_are_405(self):
        for verb in ("GET", "PUT", "DELETE"):
            status, headers, _ = self.server.request(verb, "/api/v1/jsonrpc")
            self.assertEqual(status, 405, verb)
            self.assertEqual(headers.get("allow"), "POST")

    def test_non_json_content_type_is_415(self):
        status, _, resp = self.server.post({"jsonrpc": "2.0", "method": "training.get_status", "id": 1},
                                           make_jwt(claims()), content_type="text/plain")
        self.assertEqual(status, 415)
        self.assertEqual(resp["error"]["data"]["field"], "Content-Type")
        status, _, _ = self.server.post({"jsonrpc": "2.0", "method": "x", "id": 1}, make_jwt(claims()),
                                        content_type=None)
        self.assertEqual(status, 415)

    def test_json_with_charset_is_accepted(self):
        status, _, resp = self.server.post({"jsonrpc": "2.0", "method": "training.get_status",
                                            "params": {"job_id": "550e8400-e29b-41d4-a716-446655440000"}, "id": 1},
                                           make_jwt(claims()), content_type="application/json; charset=utf-8")
        self.assertEqual(status, 200)
        self.assertEqual(resp["error"]["code"], -32001)

    def big_body(self, size):
        pad = "x" * size
        return json.dumps({"jsonrpc": "2.0", "method": "training.get_status", "params": {"pad": pad},
                           "id": 1}).encode()

    def test_body_over_limit_is_413_on_http1(self):
        status, _, body = self.server.request("POST", "/api/v1/jsonrpc", self.big_body(LIMIT + 10),
                                              {"Content-Type": "application/json",
                                               "Authorization": "Bearer " + make_jwt(claims())})
        self.assertEqual(status, 413)
        err = json.loads(body)["error"]
        self.assertEqual(err["code"], -32600)
        self.assertEqual(err["data"]["field"], "body")

    def test_body_over_limit_is_413_on_http2(self):
        rc, out, errout = self.server.curl(self.big_body(LIMIT + 10), make_jwt(claims()), "--http2-prior-knowledge")
        self.assertEqual(rc, 0, errout)
        self.assertTrue(out.startswith("HTTP/2 413"), out[:200])
        self.assertIn('"field":"body"', out)

    def test_body_at_limit_is_processed(self):
        body = self.big_body(LIMIT - 200)
        self.assertLessEqual(len(body), LIMIT)
        status, _, resp = self.server.request("POST", "/api/v1/jsonrpc", body,
                                              {"Content-Type": "application/json",
                                               "Authorization": "Bearer " + make_jwt(claims())})
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(resp)["error"]["code"], -32602)  # "pad" is no parameter

    def test_h2c_prior_knowledge(self):
        body = json.dumps({"jsonrpc": "2.0", "method": "training.get_status",
                           "params": {"job_id": "550e8400-e29b-41d4-a716-446655440000"}, "id": "h2"}).encode()
        rc, out, errout = self.server.curl(body, make_jwt(claims()), "--http2-prior-knowledge")
        self.assertEqual(rc, 0, errout)
        self.assertTrue(out.startswith("HTTP/2 200"), out[:100])
        self.assertIn("x-ratelimit-limit: 100", out.lower())
        resp = json.loads(out.split("\r\n\r\n", 1)[1])
        self.assertEqual(resp["id"], "h2")
        self.assertEqual(resp["error"]["code"], -32001)

    def test_start_grpo_over_h2c_runs_deferred(self):
        # start_grpo is a deferred method: a worker thread answers through the event loop
        body = json.dumps({"jsonrpc": "2.0", "method": "training.start_grpo",
                           "params": {"agent_id": "calculator", "config": {"n_iterations": 3},
                                      "training_data": queries(100)}, "id": 7}).encode()
        rc, out, errout = self.server.curl(body, make_jwt(claims()), "--http2-prior-knowledge")
        self.assertEqual(rc, 0, errout)
        resp = json.loads(out.split("\r\n\r\n", 1)[1])
        self.assertEqual(resp["result"]["status"], "queued", resp)


class TlsTest(unittest.TestCase):
    def test_tls_alpn_h2(self):
        d = temp_dir(self, "ac-tls-")
        cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                        "-days", "1", "-subj", "/CN=localhost"], check=True, capture_output=True, timeout=120)
        server = Server('return { tls = { listen = "127.0.0.1:0", cert_file = "%s", key_file = "%s" } }'
                        % (cert, key))
        try:
            self.assertIsNotNone(server.tls_port)
            body = json.dumps({"jsonrpc": "2.0", "method": "training.get_status",
                               "params": {"job_id": "550e8400-e29b-41d4-a716-446655440000"}, "id": 1}).encode()
            url = f"https://127.0.0.1:{server.tls_port}/api/v1/jsonrpc"
            rc, out, errout = server.curl(body, make_jwt(claims()), "--http2", "--cacert", cert,
                                          "--resolve", f"localhost:{server.tls_port}:127.0.0.1",
                                          url=url.replace("127.0.0.1", "localhost"))
            self.assertEqual(rc, 0, errout)
            self.assertTrue(out.startswith("HTTP/2 200"), out[:100])
            self.assertEqual(json.loads(out.split("\r\n\r\n", 1)[1])["error"]["code"], -32001)
            # HTTP/1.1 over TLS still works (ALPN falls back)
            rc, out, errout = server.curl(body, make_jwt(claims()), "--http1.1", "-k", url=url)
            self.assertEqual(rc, 0, errout)
            self.assertTrue(out.startswith("HTTP/1.1 200"), out[:100])
        finally:
            server.close()


if __name__ == "__main__":
    main()
