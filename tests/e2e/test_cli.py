"""The command line: help, version, flags over config, config errors with file:line."""
import os
import subprocess
import unittest

from harness import BIN, SECRET, Server, main, temp_dir

ENV = dict(os.environ, AGENTCORE_JWT_SECRET=SECRET)


def run(*args, env=ENV):
    return subprocess.run([BIN, *args], capture_output=True, env=env, timeout=30)


class CliTest(unittest.TestCase):
    def test_help_and_version(self):
        r = run("--help")
        self.assertEqual(r.returncode, 0)
        self.assertIn(b"serve", r.stdout)
        self.assertIn(b"token", r.stdout)
        self.assertIn(b"config", r.stdout)
        r = run("--version")
        self.assertEqual(r.returncode, 0)
        self.assertRegex(r.stdout.decode(), r"^agentcore \d+\.\d+\.\d+")
        for cmd in ("serve", "token", "train", "config", "act", "run"):
            r = run(cmd, "--help")
            self.assertEqual(r.returncode, 0, cmd)
            self.assertIn(b"usage: agentcore " + cmd.encode(), r.stdout)

    def test_bad_usage_exits_2(self):
        self.assertEqual(run("frobnicate").returncode, 2)
        self.assertEqual(run("token", "--sub", "x").returncode, 2)
        self.assertEqual(run("serve", "--bogus").returncode, 2)

    def test_token_rejects_unknown_permission(self):
        r = run("token", "--sub", "x", "--perms", "training:fly")
        self.assertEqual(r.returncode, 1)
        self.assertIn(b"training:fly", r.stderr)

    def test_serve_needs_a_secret(self):
        env = {k: v for k, v in os.environ.items() if k != "AGENTCORE_JWT_SECRET"}
        d = temp_dir(self)
        r = run("serve", "--listen", "127.0.0.1:0", "--data", d, env=env)
        self.assertEqual(r.returncode, 1)
        self.assertIn(b"AGENTCORE_JWT_SECRET", r.stderr)

    def config_error(self, text):
        d = temp_dir(self)
        path = os.path.join(d, "bad.lua")
        with open(path, "w") as f:
            f.write(text)
        r = run("serve", "--config", path, "--data", d)
        self.assertEqual(r.returncode, 1)
        return path, r.stderr.decode()

    def test_broken_config_names_file_and_line(self):
        path, err = self.config_error("return {\n  threads = 2,\n  listen = ,\n}\n")
        self.assertIn(path + ":3:", err)
        path, err = self.config_error("return {\n  threads = 2,\n  limits = {\n    max_body_bytes = 'big',\n  },\n}\n")
        self.assertIn(path + ":4:", err)
        self.assertIn("max_body_bytes", err)
        path, err = self.config_error("return {\n  threads = 2,\n  thread = 4,\n}\n")
        self.assertIn(path + ":3:", err)
        self.assertIn("thread", err)
        path, err = self.config_error("error('boom')\n")
        self.assertIn(path + ":1:", err)
        _, err = self.config_error('return { agents = { x = { agent = "calculator", validator = "nope" } } }')
        self.assertIn('agents["x"]', err)
        self.assertIn("no validators/nope.lua (searched ", err)

    def test_flags_override_config(self):
        d = temp_dir(self)
        cfg_data = os.path.join(d, "from-config")
        flag_data = os.path.join(d, "from-flag")
        server = Server('return { listen = "127.0.0.1:1", data_dir = "%s" }' % cfg_data, data_dir=flag_data)
        try:
            self.assertTrue(os.path.exists(os.path.join(flag_data, "data.mdb")))
            self.assertFalse(os.path.exists(cfg_data))
            status, _, _ = server.request("GET", "/healthz")  # --listen 127.0.0.1:0 won over port 1
            self.assertEqual(status, 200)
        finally:
            server.close()

    def test_example_config_is_valid(self):
        with open(os.path.join(os.environ.get("AC_SOURCE_DIR", "."), "examples/server.lua")) as f:
            server = Server(f.read())
        try:
            status, _, _ = server.request("GET", "/healthz")
            self.assertEqual(status, 200)
        finally:
            server.close()


class PluginPathTest(unittest.TestCase):
    def test_user_directories_first_then_the_built_in_plugins(self):
        """plugins_dir lists the user's directories; the built-in plugins (the default validator,
        the calculator's reward) stay found after them, and a missing plugin names every
        directory searched."""
        a, b = temp_dir(self, "ac-plugins-a-"), temp_dir(self, "ac-plugins-b-")
        root = os.environ.get("AC_SOURCE_DIR") or os.path.join(os.path.dirname(__file__), "../..")
        os.makedirs(os.path.join(b, "agents"))
        with open(os.path.join(root, "plugins/agents/calculator.lua")) as f:
            text = f.read()
        with open(os.path.join(b, "agents", "mycalc.lua"), "w") as f:
            f.write(text.replace('name = "calculator"', 'name = "mycalc"'))
        cfg = os.path.join(a, "server.lua")
        with open(cfg, "w") as f:
            f.write('return { plugins_dir = { "%s", "%s" } }\n' % (a, b))
        exp = os.path.join(a, "exp.lua")
        with open(exp, "w") as f:
            f.write('return { agent = "mycalc", reward = "calculator", data = { generator = "%s" },\n'
                    '  config = { n_iterations = 1, batch_size = 2, n_trajectories_per_query = 2 } }\n'
                    % os.path.join(root, "examples/calculator/data.lua"))
        r = run("train", exp, "--config", cfg, "--out", os.path.join(a, "out"))
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        with open(exp, "w") as f:
            f.write('return { agent = "nope", data = { generator = "%s" } }\n'
                    % os.path.join(root, "examples/calculator/data.lua"))
        r = run("train", exp, "--config", cfg, "--out", os.path.join(a, "out"))
        self.assertEqual(r.returncode, 1)
        err = r.stderr.decode()
        for d in (a, b, os.path.join(root, "plugins")):
            self.assertIn(os.path.join(d, "agents"), err)


if __name__ == "__main__":
    main()
