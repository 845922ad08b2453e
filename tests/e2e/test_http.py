"""HTTP front: paths, verbs, media type, body limit on HTTP/1.1 and HTTP/2, h2c, TLS h2; the
dashboard's static files (GET /ui/): types, security headers, revalidation, no way out of the
directory."""
import json
import os
import socket
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


CHARTJS = "/usr/share/javascript/chart.js/chart.min.js"  # Debian's libjs-chart.js (tests/setup.sh)
SECRET_TEXT = b"TOPSECRET-outside-the-dashboard"


def raw_get(port, target, method="GET"):
    """One request with the target sent byte for byte (no client-side normalisation), over
    HTTP/1.1 with Connection: close; returns (status, headers, body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(f"{method} {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode("latin-1"))
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return int(lines[0].split()[1]), headers, body


class DashboardFilesTest(unittest.TestCase):
    """GET /ui/ serves dashboard_dir: a secret next to it, a link out of it and dot files stay
    unreachable however the path is spelled."""

    @classmethod
    def setUpClass(cls):
        cls.root = temp_dir(cls, "ac-ui-")
        ui = os.path.join(cls.root, "ui")
        os.makedirs(os.path.join(ui, "sub"))
        files = {"index.html": b"<!doctype html><title>t</title><script src=\"app.js\"></script>",
                 "app.js": b"console.log(1)", "style.css": b"body{}", "sub/pic.svg": b"<svg/>",
                 ".hidden.js": b"hidden", "notes.md": b"markdown"}
        for name, body in files.items():
            with open(os.path.join(ui, name), "wb") as f:
                f.write(body)
        with open(os.path.join(cls.root, "secret.txt"), "wb") as f:
            f.write(SECRET_TEXT)
        os.symlink(os.path.join(cls.root, "secret.txt"), os.path.join(ui, "link.txt"))
        os.symlink("/etc", os.path.join(ui, "etc"))
        os.symlink(cls.root, os.path.join(ui, "up"))
        cls.server = Server('return { dashboard_dir = "%s" }' % ui)
        cls.addClassCleanup(cls.server.close)

    def get(self, path, headers=None, method="GET"):
        return self.server.request(method, path, None, headers or {})

    def test_index_types_and_security_headers(self):
        status, h, body = self.get("/ui/")
        self.assertEqual(status, 200)
        self.assertTrue(body.startswith(b"<!doctype html>"))
        self.assertEqual(h["content-type"], "text/html; charset=utf-8")
        csp = h["content-security-policy"]
        self.assertIn("default-src 'none'", csp)
        self.assertIn("script-src 'self';", csp)
        self.assertIn("connect-src 'self'", csp)
        self.assertNotIn("unsafe-inline", csp)
        self.assertNotIn("unsafe-eval", csp)
        self.assertEqual(h["x-content-type-options"], "nosniff")
        self.assertEqual(h["x-frame-options"], "DENY")
        self.assertNotIn("set-cookie", h)
        for path, ctype in (("/ui/app.js", "text/javascript; charset=utf-8"), ("/ui/style.css", "text/css; charset=utf-8"),
                            ("/ui/sub/pic.svg", "image/svg+xml"), ("/ui/index.html", "text/html; charset=utf-8")):
            status, h, _ = self.get(path)
            self.assertEqual((status, h["content-type"]), (200, ctype), path)
            self.assertEqual(h["x-content-type-options"], "nosniff")

    def test_redirect_head_verbs_and_revalidation(self):
        status, h, _ = self.get("/ui")
        self.assertEqual((status, h["location"]), (301, "/ui/"))
        status, h, body = self.get("/ui/app.js")
        etag = h["etag"]
        self.assertEqual(h["cache-control"], "no-cache")
        status, h2, body2 = self.get("/ui/app.js", {"If-None-Match": etag})
        self.assertEqual((status, body2), (304, b""))
        self.assertEqual(self.get("/ui/app.js", {"If-None-Match": '"other"'})[0], 200)
        status, h, body = raw_get(self.server.port, "/ui/app.js", "HEAD")
        self.assertEqual((status, h["content-length"], body), (200, "14", b""))
        for verb in ("POST", "PUT", "DELETE"):
            status, h, _ = self.get("/ui/app.js", method=verb)
            self.assertEqual((status, h.get("allow")), (405, "GET, HEAD"), verb)

    def test_nothing_outside_the_directory(self):
        for target in ("/ui/../secret.txt", "/ui/..%2fsecret.txt", "/ui/%2e%2e/secret.txt", "/ui/%2E%2E%2Fsecret.txt",
                       "/ui/.%2e/secret.txt", "/ui/..%5csecret.txt", "/ui/..\\\\secret.txt", "/ui/%252e%252e/secret.txt",
                       "/ui/sub/../../secret.txt", "/ui/sub/%2e%2e/%2e%2e/secret.txt", "/ui/link.txt",
                       "/ui/../../etc/passwd", "/ui/..%2f..%2f..%2f..%2fetc%2fpasswd", "/ui/etc/passwd", "/ui/up/secret.txt", "/ui/up/ui/app.js",
                       "/ui//etc/passwd", "/ui/%2fetc%2fpasswd", "/ui/index.html%00.txt", "/ui/.hidden.js",
                       "/ui/%2ehidden.js", "/ui/notes.md", "/ui/sub", "/ui/nope.js"):
            status, _, body = raw_get(self.server.port, target)
            self.assertNotEqual(status, 200, target)
            self.assertNotIn(SECRET_TEXT, body, target)
            self.assertNotIn(b"root:", body, target)
        # dot segments that stay inside are fine: h2o resolves them before we look
        self.assertEqual(raw_get(self.server.port, "/ui/sub/../app.js")[0], 200)

    def test_chart_library_from_debian(self):
        status, h, body = self.get("/ui/vendor/chart.min.js")
        self.assertEqual((status, h["content-type"]), (200, "text/javascript; charset=utf-8"))
        with open(CHARTJS, "rb") as f:
            self.assertEqual(body, f.read())

    def test_http2_too(self):
        out = subprocess.run(["curl", "-s", "-i", "--http2-prior-knowledge", f"http://127.0.0.1:{self.server.port}/ui/"],
                             capture_output=True, timeout=60)
        text = out.stdout.decode(errors="replace")
        self.assertTrue(text.startswith("HTTP/2 200"), text[:200])
        self.assertIn("content-security-policy:", text)

    def test_missing_directory_stops_the_server(self):
        with self.assertRaises(RuntimeError) as ctx:
            Server('return { dashboard_dir = "%s/none" }' % self.root)
        self.assertIn("dashboard_dir", str(ctx.exception))
        self.assertIn("not a directory", str(ctx.exception))


if __name__ == "__main__":
    main()
