"""The configuration docs against the field tables the readers use (`agentcore config --reference`):
docs/configuration.md holds the reference's output verbatim, examples/server.lua writes every server
key (and no other), docs/grpo.md names no GRPO key the config would refuse, and the README points to
the reference. tests/unit/lua/test_config.c checks that the values examples/server.lua writes are
the defaults.

Regenerate the docs' part after changing a table:
    AGENTCORE_BIN=build/agentcore python3 tests/e2e/test_configdoc.py --write
"""
import difflib
import json
import os
import re
import subprocess
import sys
import unittest

from harness import BIN, SRC, main

BEGIN = "<!-- generated: agentcore config --reference -->\n"
END = "<!-- end -->"
DOC = os.path.join(SRC, "docs", "configuration.md")
REGENERATE = "AGENTCORE_BIN=build/agentcore python3 tests/e2e/test_configdoc.py --write"


def reference(*flags):
    r = subprocess.run([BIN, "config", "--reference", *flags], capture_output=True, timeout=30)
    if r.returncode != 0:
        raise AssertionError("agentcore config --reference failed: " + r.stderr.decode())
    return r.stdout.decode()


def split_doc(text):
    """(before, generated, after) around the markers."""
    start = text.index(BEGIN) + len(BEGIN)
    end = text.index(END, start)
    return text[:start], text[start:end], text[end:]


def server_keys():
    """{full key path: reference row} of the server config, and the set of its sections."""
    keys, sections = {}, {""}
    for sec in json.loads(reference("--json"))["server"]:
        for row in sec["keys"]:
            path = (sec["section"] + "." if sec["section"] else "") + row["key"]
            keys[path] = row
            parts = path.split(".")
            sections.update(".".join(parts[:i]) for i in range(1, len(parts)))
    return keys, sections


TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|\'[^\']*\'|\[\s*"([^"]*)"\s*\]\s*=(?!=)|([A-Za-z_]\w*)\s*=(?!=)|([{}])')


def lua_assignments(text, sections):
    """{path: (line, live)} of every `key =` of examples/server.lua inside known sections. A comment
    that starts with `name = ` is read as code (a key written out but commented: no default, or an
    example); prose in comments must not start that way."""
    found = {}
    stack = []  # the names of the open tables ("" for a table that is not a key's value)
    for lineno, line in enumerate(text.splitlines(), 1):
        code, _, comment = line.partition("--")
        live = True
        if not code.strip() and re.match(r'\s*(\w+|\[".*?"\])\s*=[^=]', comment):
            code, live = comment.partition("--")[0], False
        last_assigned = None
        for m in TOKEN.finditer(code):
            name = m.group(1) or m.group(2)
            if name is not None:
                last_assigned = name
                outer = stack[1:]  # stack[0] is the table the file returns
                if all(".".join(outer[:i + 1]) in sections for i in range(len(outer))):
                    found.setdefault(".".join(outer + [name]), (lineno, live))
            elif m.group(3) == "{":
                stack.append(last_assigned or "")
                last_assigned = None
            elif m.group(3) == "}":
                stack.pop()
                last_assigned = None
            else:
                last_assigned = None  # a string value
    return found


# Names docs/grpo.md writes in backticks that are not GRPO config keys, and why.
NOT_KEYS = {
    # metrics (metrics.csv, training.get_metrics)
    "avg_reward", "success_rate", "clip_fraction", "clip_low", "clip_high", "clip_region", "kl_exact", "kl_k3",
    "zero_var_frac",
    # symbols of the formulas and constants of the code, not settings
    "logp_old", "r_t", "max_tokens", "max_features", "std_eps", "beta1", "beta2", "eps", "c_j",
    # the loss's batch-wide normalisers (set by the trainer per slice), an identifier in an example
    "norm_tokens", "norm_episodes", "sku_7",
    # an event's field, ctest names, a loss_type value
    "groups_short", "ref_grpo", "ref_actor_torch", "dr_grpo",
}


class ConfigDocTest(unittest.TestCase):
    def test_configuration_md_holds_the_reference(self):
        with open(DOC) as f:
            text = f.read()
        self.assertTrue(BEGIN in text and END in text.split(BEGIN)[-1],
                        "docs/configuration.md lost its markers %s ... %s" % (BEGIN.strip(), END))
        _, generated, _ = split_doc(text)
        want = reference()
        if generated != want:
            diff = "".join(list(difflib.unified_diff(generated.splitlines(True), want.splitlines(True),
                                                     "docs/configuration.md", "agentcore config --reference"))[:40])
            self.fail("docs/configuration.md's generated part differs from `agentcore config --reference`; "
                      "regenerate it with\n    %s\n%s" % (REGENERATE, diff))

    def test_server_lua_writes_every_key(self):
        keys, sections = server_keys()
        with open(os.path.join(SRC, "examples", "server.lua")) as f:
            found = lua_assignments(f.read(), sections)
        missing = sorted(k for k in keys if k not in found)
        self.assertEqual(missing, [], "keys of the table that examples/server.lua does not write")
        unknown = sorted(p for p in found if p not in keys and p not in sections)
        self.assertEqual(unknown, [], "examples/server.lua writes keys the config refuses")
        # a key written only in a comment must have nothing to write: no default, or one that
        # is not a value (a path of this checkout) or an empty table
        commented = sorted(k for k, (_, live) in found.items() if k in keys and not live and
                           keys[k]["default"] not in (None, [], {}) and "default_doc" not in keys[k])
        self.assertEqual(commented, [], "keys with a default that examples/server.lua only writes in a comment")

    def test_scanner_sees_keys_and_comments(self):
        """The scanner above finds live, nested and commented keys, and skips map entries."""
        found = lua_assignments('return {\n  a = 1,\n  s = {\n    -- x = "y",\n    t = { b = 2 },\n'
                                '    m = { alice = 5 },\n  },\n  -- c = { d = 1 }\n}\n', {"", "s", "s.t", "c"})
        self.assertEqual(found, {"a": (2, True), "s": (3, True), "s.x": (4, False), "s.t": (5, True),
                                 "s.t.b": (5, True), "s.m": (6, True), "c": (8, False), "c.d": (8, False)})

    def test_grpo_md_names_only_config_keys(self):
        keys = {row["key"] for row in json.loads(reference("--json"))["grpo"][0]["keys"]}
        with open(os.path.join(SRC, "docs", "grpo.md")) as f:
            text = re.sub(r"```.*?```", "", f.read(), flags=re.S)
        bad = set()
        for span in re.findall(r"`([^`\n]+)`", text):
            m = re.fullmatch(r'([a-z][a-z0-9_]*)(\s*=\s*("[^"]*"|[-+0-9.e]+|true|false|[A-Za-z]+))?', span.strip())
            if m is None or m.group(1).startswith("ac_"):
                continue
            name, assigned = m.group(1), m.group(2) is not None
            # snake_case names and `name = value` settings must be keys (or named above)
            if ("_" in name or assigned) and name not in keys and name not in NOT_KEYS:
                bad.add(name)
        self.assertEqual(sorted(bad), [], "docs/grpo.md names settings the GRPO config does not have "
                                          "(rename them, or add them to NOT_KEYS if they are not settings)")
        for name in ("per_step_rewards", "scale_std"):
            self.assertNotIn(name, keys)

    def test_readme_points_to_the_reference(self):
        with open(os.path.join(SRC, "README.md")) as f:
            readme = f.read()
        for needle in ("docs/configuration.md", "agentcore config --reference"):
            self.assertTrue(needle in readme, "the README does not name " + needle)
        r = subprocess.run([BIN, "--help"], capture_output=True, timeout=30)
        self.assertIn(b"config", r.stdout)
        r = subprocess.run([BIN, "config", "--help"], capture_output=True, timeout=30)
        self.assertEqual(r.returncode, 0)
        self.assertIn(b"usage: agentcore config --reference", r.stdout)
        self.assertEqual(subprocess.run([BIN, "config"], capture_output=True, timeout=30).returncode, 2)

    def test_json_and_markdown_agree(self):
        ref = json.loads(reference("--json"))
        md = reference()
        for part in ("grpo", "server", "experiment"):
            for sec in ref[part]:
                for row in sec["keys"]:
                    self.assertIn("| `%s` |" % row["key"], md, (part, sec["section"], row["key"]))


def write():
    with open(DOC) as f:
        text = f.read()
    before, _, after = split_doc(text)
    with open(DOC, "w") as f:
        f.write(before + reference() + after)
    print("wrote", DOC)


if __name__ == "__main__":
    if "--write" in sys.argv:
        write()
    else:
        main()
