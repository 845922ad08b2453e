"""Authentication (every token failure), permissions, tenancy, and RS256/ES256 key configs."""
import os
import subprocess
import time
import unittest

from harness import BIN, SECRET, Server, ServerTest, claims, make_jwt, main, queries, temp_dir

UNKNOWN = "550e8400-e29b-41d4-a716-446655440000"


class TokenTest(ServerTest):
    def get_status(self, token, headers_only=False):
        return self.server.post({"jsonrpc": "2.0", "method": "training.get_status",
                                 "params": {"job_id": UNKNOWN}, "id": "a"}, token)

    def assertUnauthorized(self, token, reason):
        status, headers, resp = self.get_status(token)
        self.assertEqual(status, 401, resp)
        self.assertEqual(headers.get("www-authenticate"), 'Bearer error="invalid_token"')
        self.assertEqual(resp["error"]["code"], -32002)
        # id null although the call had one: the body of an unauthenticated request is never
        # parsed (docs/api.md, "Authentication before work")
        self.assertIsNone(resp["id"])
        if reason:
            self.assertEqual(resp["error"]["data"]["error"], reason)

    def test_valid_token(self):
        status, headers, resp = self.get_status(make_jwt(claims()))
        self.assertEqual(status, 200)
        self.assertEqual(resp["error"]["code"], -32001)

    def test_token_from_cli(self):
        out = subprocess.run([BIN, "token", "--sub", "carol", "--perms", "training:view"], capture_output=True,
                             env=dict(os.environ, AGENTCORE_JWT_SECRET=SECRET), check=True)
        status, _, resp = self.get_status(out.stdout.decode().strip())
        self.assertEqual(status, 200)
        self.assertEqual(resp["error"]["code"], -32001)

    def test_missing_token(self):
        status, headers, resp = self.server.post({"jsonrpc": "2.0", "method": "training.get_status",
                                                  "params": {"job_id": UNKNOWN}, "id": "a"}, None)
        self.assertEqual(status, 401)
        self.assertEqual(resp["error"]["code"], -32002)
        self.assertEqual(headers.get("www-authenticate"), 'Bearer error="invalid_token"')

    def test_garbage(self):
        self.assertUnauthorized("garbage", None)
        self.assertUnauthorized("a.b.c", None)

    def test_wrong_key(self):
        self.assertUnauthorized(make_jwt(claims(), secret="another-secret-0123456789"), "bad signature")

    def test_alg_none(self):
        self.assertUnauthorized(make_jwt(claims(), alg="none"), "algorithm not allowed")

    def test_other_alg(self):
        tok = make_jwt(claims(), header={"alg": "HS512", "typ": "JWT"})
        self.assertUnauthorized(tok, "algorithm not allowed")

    def test_expired(self):
        self.assertUnauthorized(make_jwt(claims(ttl=-120)), "token expired")

    def test_not_yet_valid(self):
        self.assertUnauthorized(make_jwt(claims(nbf=int(time.time()) + 600)), "token not yet valid")

    def test_missing_exp(self):
        c = claims()
        del c["exp"]
        status, _, resp = self.get_status(make_jwt(c))
        self.assertEqual(status, 401)
        self.assertIn("exp", resp["error"]["data"]["error"])

    def test_scope_claim(self):
        c = claims(perms=[])
        del c["permissions"]
        c["scope"] = "training:view openid"
        status, _, resp = self.get_status(make_jwt(c))
        self.assertEqual(status, 200)
        self.assertEqual(resp["error"]["code"], -32001)

    def test_missing_permission_is_forbidden(self):
        status, headers, resp = self.get_status(make_jwt(claims(perms="training:start")))
        self.assertEqual(status, 200)
        self.assertEqual(resp["error"]["code"], -32003)
        self.assertEqual(resp["error"]["data"]["required"], "training:view")
        self.assertIn("x-ratelimit-limit", headers)


class TenancyTest(ServerTest):
    def test_other_tenant_sees_not_found(self):
        alice, bob = make_jwt(claims("alice")), make_jwt(claims("bob"))
        admin = make_jwt(claims("root", perms="training:view,training:cancel,training:admin"))
        _, _, resp = self.server.call("training.start_grpo", {"agent_id": "calculator", "config": {},
                                                              "training_data": queries(100)}, alice)
        job = resp["result"]["job_id"]
        _, _, resp = self.server.call("training.get_status", {"job_id": job}, bob)
        self.assertEqual(resp["error"]["code"], -32001)
        _, _, missing = self.server.call("training.get_status", {"job_id": UNKNOWN}, bob)
        # the same answer as for a job that does not exist: existence is not revealed
        self.assertEqual(resp["error"]["message"], missing["error"]["message"])
        self.assertEqual(resp["error"]["data"]["field"], missing["error"]["data"]["field"])
        _, _, resp = self.server.call("training.cancel", {"job_id": job}, bob)
        self.assertEqual(resp["error"]["code"], -32001)
        _, _, resp = self.server.call("training.get_status", {"job_id": job}, alice)
        self.assertEqual(resp["result"]["job_id"], job)
        _, _, resp = self.server.call("training.get_status", {"job_id": job}, admin)
        self.assertEqual(resp["result"]["job_id"], job)
        _, _, resp = self.server.call("training.cancel", {"job_id": job}, admin)
        self.assertIn(resp.get("result", {}).get("status") or resp["error"]["code"], ("cancelled", -40003), resp)


def keypair(d, kind):
    key, pub = os.path.join(d, kind + ".key"), os.path.join(d, kind + ".pub")
    if kind == "rsa":
        subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", key],
                       check=True, capture_output=True, timeout=120)
    else:
        subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key],
                       check=True, capture_output=True, timeout=120)
    subprocess.run(["openssl", "pkey", "-in", key, "-pubout", "-out", pub], check=True, capture_output=True,
                   timeout=60)
    return key, pub


class KeyConfigTest(unittest.TestCase):
    def run_alg(self, alg, kind):
        d = temp_dir(self, "ac-keys-")
        key, pub = keypair(d, kind)
        config = os.path.join(d, "server.lua")
        with open(config, "w") as f:
            f.write('return { auth = { alg = "%s", public_key_file = "%s", private_key_file = "%s", '
                    'issuer = "https://issuer.example", audience = "agentcore" } }' % (alg, pub, key))
        env = {k: v for k, v in os.environ.items() if k != "AGENTCORE_JWT_SECRET"}
        out = subprocess.run([BIN, "token", "--config", config, "--sub", "dave", "--perms", "training:view"],
                             capture_output=True, env=env, timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr)
        token = out.stdout.decode().strip()
        with open(config) as f:
            server = Server(f.read(), env={"AGENTCORE_JWT_SECRET": ""})
        try:
            status, _, resp = server.call("training.get_status", {"job_id": UNKNOWN}, token)
            self.assertEqual(status, 200, resp)
            self.assertEqual(resp["error"]["code"], -32001)
            # algorithm confusion: HS256 signed with the public key PEM as the secret
            forged = make_jwt(claims("dave", "training:view", iss="https://issuer.example", aud="agentcore"),
                              secret=open(pub).read())
            status, _, resp = server.call("training.get_status", {"job_id": UNKNOWN}, forged)
            self.assertEqual(status, 401)
            self.assertEqual(resp["error"]["data"]["error"], "algorithm not allowed")
        finally:
            server.close()

    def test_rs256(self):
        self.run_alg("RS256", "rsa")

    def test_es256(self):
        self.run_alg("ES256", "ec")

    def test_issuer_and_audience_checked(self):
        server = Server('return { auth = { issuer = "me", audience = "api" } }')
        try:
            good = make_jwt(claims(iss="me", aud=["other", "api"]))
            status, _, resp = server.call("training.get_status", {"job_id": UNKNOWN}, good)
            self.assertEqual(status, 200, resp)
            for bad, reason in [(claims(iss="you", aud="api"), "wrong issuer"),
                                (claims(iss="me", aud="web"), "wrong audience"),
                                (claims(aud="api"), "missing claim: iss")]:
                status, _, resp = server.call("training.get_status", {"job_id": UNKNOWN}, make_jwt(bad))
                self.assertEqual(status, 401)
                self.assertEqual(resp["error"]["data"]["error"], reason, resp)
        finally:
            server.close()


if __name__ == "__main__":
    main()
