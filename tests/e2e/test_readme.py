"""The README's examples stay true: its minimal agent and reward plugins load and train, and the
experiment file it shows is valid."""
import json
import os
import re
import shutil
import subprocess
import tempfile
import unittest

from harness import BIN, SRC, main


def lua_blocks():
    with open(os.path.join(SRC, "README.md")) as f:
        return re.findall(r"```lua\n(.*?)```", f.read(), re.S)


class ReadmeTest(unittest.TestCase):
    def test_minimal_agent_and_reward_train(self):
        blocks = lua_blocks()
        agent = next(b for b in blocks if 'name = "echo"' in b and "agent.step" in b)
        reward = next(b for b in blocks if 'name = "echo"' in b and "score" in b)
        d = tempfile.mkdtemp(prefix="ac-readme-")
        try:
            plugins = os.path.join(d, "plugins")
            for kind in ("agents", "rewards", "validators", "webhooks"):
                shutil.copytree(os.path.join(SRC, "plugins", kind), os.path.join(plugins, kind))
            with open(os.path.join(plugins, "agents", "echo.lua"), "w") as f:
                f.write(agent)
            with open(os.path.join(plugins, "rewards", "echo.lua"), "w") as f:
                f.write(reward)
            data = {"training_data": [{"query": f"q{i}", "expected_outcome": {"answer": f"q{i}"}} for i in range(100)],
                    "evaluation_data": [{"query": f"e{i}", "expected_outcome": {"answer": f"e{i}"}} for i in range(10)]}
            for name in ("training", "evaluation"):
                with open(os.path.join(d, name + ".json"), "w") as f:
                    json.dump(data[name + "_data"], f)
            with open(os.path.join(d, "exp.lua"), "w") as f:
                f.write('return { agent = "echo", data = { training = "training.json", evaluation = "evaluation.json" },'
                        ' config = { n_iterations = 2, batch_size = 4, n_trajectories_per_query = 2 } }')
            with open(os.path.join(d, "server.lua"), "w") as f:
                f.write('return { plugins_dir = "%s" }' % plugins)
            r = subprocess.run([BIN, "train", os.path.join(d, "exp.lua"), "--json", "--out", os.path.join(d, "out"),
                                "--config", os.path.join(d, "server.lua")], capture_output=True, timeout=120)
            self.assertEqual(r.returncode, 0, r.stderr.decode())
            report = json.loads(r.stdout.decode().splitlines()[-1])
            self.assertEqual(report["trained"]["success_rate"], 1.0)  # lookup then answer: always right
        finally:
            shutil.rmtree(d, ignore_errors=True)

    def test_experiment_example_is_valid(self):
        block = next(b for b in lua_blocks() if "sweep" in b and "data =" in b)
        d = tempfile.mkdtemp(prefix="ac-readme-")
        try:
            shutil.copy(os.path.join(SRC, "examples/calculator/data.lua"), d)
            # the README's file as written, with fewer iterations to keep the test short
            text = block.replace("n_iterations = 200", "n_iterations = 2")
            with open(os.path.join(d, "exp.lua"), "w") as f:
                f.write(text)
            r = subprocess.run([BIN, "train", os.path.join(d, "exp.lua"), "--json", "--out", os.path.join(d, "o")],
                               capture_output=True, timeout=300, cwd=SRC)
            self.assertEqual(r.returncode, 0, r.stderr.decode())
            self.assertEqual(len(json.loads(r.stdout.decode().splitlines()[-1])["runs"]), 3)
        finally:
            shutil.rmtree(d, ignore_errors=True)

    def test_demo_prints_the_dashboard_url(self):
        """Command 1 names the dashboard's address and the token to paste, as the README says."""
        with open(os.path.join(SRC, "examples/demo.sh")) as f:
            demo = f.read()
        listen = re.search(r'LISTEN="\$\{AGENTCORE_LISTEN:-([^}]+)\}"', demo).group(1)
        message = re.search(r"cat <<MSG\n(.*?)\nMSG", demo, re.S).group(1).replace("$LISTEN", listen)
        self.assertIn("Dashboard: open http://127.0.0.1:8001/ui/ and paste the demo token:\n\n  $TOKEN", message)
        with open(os.path.join(SRC, "README.md")) as f:
            readme = f.read()
        self.assertIn("## Dashboard\n\nOpen http://127.0.0.1:8001/ui/ and paste the demo token", readme)


if __name__ == "__main__":
    main()
