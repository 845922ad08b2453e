"""docs/api.md kept true against the server's own method table (rpc.discover): every method the
server has is documented there and every documented method exists; each method's documented
parameters have the server's names, types and required-ness; its permission, rate-limit class and
own error codes are the server's; it has an example that calls it. A method or parameter added
to the server without its documentation fails here.

Also: nothing the project ships to users (README, docs, SDK, examples, tests, benchmarks, the
OpenRPC document) points at files outside the repository."""
import os
import re
import unittest

from harness import SRC, ServerTest, main

DOC = os.path.join(SRC, "docs", "api.md")

# the type column of a parameter table, by the parameter's schema in rpc.discover
DOC_TYPES = ("uuid", "string or array", "string", "integer", "number", "boolean", "object", "array")


def discover_type(schema):
    if schema.get("format") == "uuid":
        return "uuid"
    t = schema["type"]
    return " or ".join(t) if isinstance(t, list) else t


def cells(line):
    """The cells of a Markdown table row, stripped."""
    return [c.strip() for c in line.strip().strip("|").split("|")]


def table_after(lines, start):
    """The first table at or after lines[start]: (header cells, [row cells]), or (None, [])."""
    i = start
    while i < len(lines) and not lines[i].startswith("|"):
        i += 1
    if i + 1 >= len(lines):
        return None, []
    header = [c.lower() for c in cells(lines[i])]
    rows = []
    for line in lines[i + 2:]:  # after the |---| line
        if not line.startswith("|"):
            break
        rows.append(cells(line))
    return header, rows


def code_name(cell):
    """`name` -> name."""
    m = re.fullmatch(r"`([^`]+)`", cell)
    return m.group(1) if m else None


def parse_sections(text):
    """{method: its section's lines} for the ### headings under "## Methods"."""
    lines = text.splitlines()
    start = lines.index("## Methods")
    sections, name, fenced = {}, None, False
    for line in lines[start + 1:]:
        if line.startswith("```"):
            fenced = not fenced
        if not fenced and line.startswith("## "):
            break
        if not fenced and line.startswith("### "):
            name = line[4:].strip().strip("`")
            sections[name] = []
        elif name is not None:
            sections[name].append(line)
    return sections


def parse_method(name, lines):
    """What a method's section says: permission, rate-limit class, params {name: (type,
    required)}, error codes, whether an example calls it. Raises AssertionError naming what is
    missing or malformed."""
    text = "\n".join(lines)
    doc = {}
    m = re.search(r"^- \*\*Permission:\*\* (?:`([a-z:_]+)`|none\b)", text, re.M)
    if not m:
        raise AssertionError(f"{name}: no '- **Permission:** `...`' (or 'none') line")
    doc["permission"] = m.group(1) or ""
    m = re.search(r"^- \*\*Rate limit:\*\* `([a-z_]+)`", text, re.M)
    if not m:
        raise AssertionError(f"{name}: no '- **Rate limit:** `<class>`' line")
    doc["rate"] = m.group(1)
    if re.search(r"^\*\*Parameters:\*\* none\.", text, re.M):
        doc["params"] = {}
    else:
        at = next((i for i, line in enumerate(lines) if line.strip() == "**Parameters**"), None)
        if at is None:
            raise AssertionError(f"{name}: neither a '**Parameters**' table nor '**Parameters:** none.'")
        header, rows = table_after(lines, at)
        for col in ("name", "type", "required"):
            if header is None or col not in header:
                raise AssertionError(f"{name}: the parameters table has no '{col}' column: {header}")
        params = {}
        for row in rows:
            pname = code_name(row[header.index("name")])
            ptype = row[header.index("type")].lower().replace("`", "")
            req = row[header.index("required")].lower()
            if pname is None or req not in ("yes", "no"):
                raise AssertionError(f"{name}: malformed parameter row {row}")
            t = next((t for t in DOC_TYPES if ptype == t or ptype.startswith(t + " ")), None)
            if t is None:
                raise AssertionError(f"{name}: parameter {pname}: type {ptype!r} is none of {DOC_TYPES}")
            params[pname] = (t, req == "yes")
        doc["params"] = params
    doc["errors"] = set()
    if not re.search(r"^\*\*Errors:\*\* only those every method can return", text, re.M):
        at = next((i for i, line in enumerate(lines) if line.strip() == "**Errors**"), None)
        if at is None:
            raise AssertionError(f"{name}: neither an '**Errors**' table nor "
                                 "'**Errors:** only those every method can return'")
        header, rows = table_after(lines, at)
        if header is None or "code" not in header:
            raise AssertionError(f"{name}: the errors table has no 'code' column")
        for row in rows:
            doc["errors"].add(int(row[header.index("code")]))
    doc["example"] = re.search(r'"method":\s*"%s"' % re.escape(name), text) is not None
    return doc


def first_column_table(text, heading):
    """The rows of the first table under `heading` (a whole line), as cell lists."""
    lines = text.splitlines()
    return table_after(lines, lines.index(heading))[1]


class ApiDocTest(ServerTest):
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.openrpc = cls.server.result("rpc.discover", {})
        cls.methods = {m["name"]: m for m in cls.openrpc["methods"]}
        with open(DOC, encoding="utf-8") as f:
            cls.text = f.read()
        cls.sections = parse_sections(cls.text)

    def documented(self):
        """{method: parsed section} for the methods both sides have."""
        return {n: parse_method(n, self.sections[n]) for n in self.methods if n in self.sections}

    def test_every_method_the_server_has_is_documented(self):
        missing = sorted(set(self.methods) - set(self.sections))
        self.assertEqual(missing, [], "methods rpc.discover lists without a '### <method>' section under "
                                      "'## Methods' in docs/api.md")
        self.assertGreaterEqual(len(self.methods), 13)  # the parse found the table, not an empty list

    def test_every_documented_method_exists(self):
        extra = sorted(set(self.sections) - set(self.methods))
        self.assertEqual(extra, [], "sections of docs/api.md for methods rpc.discover does not list")

    def test_parameters_are_the_servers(self):
        for name, doc in self.documented().items():
            with self.subTest(method=name):
                served = {p["name"]: (discover_type(p["schema"]), p["required"])
                          for p in self.methods[name]["params"]}
                self.assertEqual(doc["params"], served,
                                 f"{name}: docs/api.md's parameters (type, required) against rpc.discover's")

    def test_permission_and_rate_limit_class_are_the_servers(self):
        for name, doc in self.documented().items():
            with self.subTest(method=name):
                m = self.methods[name]
                self.assertEqual(doc["permission"], m["x-permission"], f"{name}: permission")
                self.assertEqual(doc["rate"], m["x-rate-limit-class"], f"{name}: rate-limit class")

    def test_error_codes_are_the_servers(self):
        """A method's section lists its own codes (those not every method has) and no code the
        server does not declare for it; the codes table has every code."""
        declared = {n: {e["code"] for e in m["errors"]} for n, m in self.methods.items()}
        common = set.intersection(*declared.values())
        table = {int(row[0]) for row in first_column_table(self.text, "### Codes")}
        for name, doc in self.documented().items():
            with self.subTest(method=name):
                own = declared[name] - common
                self.assertEqual(own - doc["errors"], set(), f"{name}: its own codes missing from its section")
                self.assertEqual(doc["errors"] - declared[name], set(),
                                 f"{name}: codes in its section that rpc.discover does not declare for it")
                self.assertEqual(declared[name] - table, set(), f"{name}: codes missing from the Codes table")

    def test_every_method_has_an_example(self):
        for name, doc in self.documented().items():
            with self.subTest(method=name):
                self.assertTrue(doc["example"], f'{name}: no example request ("method": "{name}") in its section')

    def test_permissions_and_rate_limit_tables_name_every_method(self):
        perms = {code_name(row[0]): row[1] for row in first_column_table(self.text, "### Permissions")}
        classes = {code_name(row[0]) for row in first_column_table(self.text, "## Rate limits")}
        for name, m in self.methods.items():
            with self.subTest(method=name):
                if m["x-permission"]:
                    self.assertIn(m["x-permission"], perms, "the Permissions table has no row for it")
                    self.assertIn(f"`{name}`", perms[m["x-permission"]],
                                  f"the Permissions table's {m['x-permission']} row does not name {name}")
                self.assertIn(m["x-rate-limit-class"], classes, "the Rate limits table has no row for its class")

    def test_no_pointer_outside_the_repository(self):
        """Users have the repository and nothing beside it: no text we ship names a file outside
        it (the spec and notes the project started from)."""
        outside = re.compile(r"\.\./shared|/work/share[d]|\b(?:SPEC|STACK|STYLE|ARCHITECTURE)\.md\b")
        found = []
        for root in ("README.md", "docs", "sdk", "examples", "tests", "bench"):
            top = os.path.join(SRC, root)
            paths = [top] if os.path.isfile(top) else []
            for d, dirs, files in os.walk(top):
                dirs[:] = [x for x in dirs if not x.startswith((".", "build", "__pycache__"))]
                paths += [os.path.join(d, f) for f in files]
            for path in paths:
                try:
                    with open(path, encoding="utf-8") as f:
                        for n, line in enumerate(f, 1):
                            if outside.search(line):
                                found.append(f"{os.path.relpath(path, SRC)}:{n}: {line.strip()}")
                except UnicodeDecodeError:
                    continue  # binary fuzz inputs
        self.assertEqual(found, [])

        def strings(v):
            if isinstance(v, dict):
                for x in v.values():
                    yield from strings(x)
            elif isinstance(v, list):
                for x in v:
                    yield from strings(x)
            elif isinstance(v, str):
                yield v
        self.assertEqual([s for s in strings(self.openrpc) if outside.search(s)], [])


if __name__ == "__main__":
    main()
