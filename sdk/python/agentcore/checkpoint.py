"""Checkpoint files (docs/checkpoints.md) in NumPy: read_checkpoint() parses the versioned binary
layout into arrays, and BagPolicy scores a bag policy's decisions from the tokens agents.act's
``explain`` gives, so a trained policy can be checked or used outside the server.

Only NumPy is needed (Debian: python3-numpy); this module is imported on demand by the SDK."""
import json
import struct
import zlib
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np

MAGIC = b"ACCKPT\r\n"
VERSION = 2
KINDS = {0: "bag", 1: "sequence"}
MAX_TOOLS = 64          # AC_AGENT_MAX_ACTIONS: the config record has one argument count per tool
CONFIG_INTS = 9 + MAX_TOOLS + 5
SEQ_NUM_FEATURES = 6
TOKEN_KINDS = 5         # special, word, number, id, punct
SEGMENT_KINDS = 6       # cls, query, call, result, observe, candidates
MAX_AGE = 7
ENCODER_LAYER_TENSORS = ("ln1_g", "ln1_b", "Wqkv", "bqkv", "Wo", "bo", "ln2_g", "ln2_b", "W1", "b1", "W2", "b2")

__all__ = ["Checkpoint", "CheckpointError", "read_checkpoint", "tensor_layout", "BagPolicy"]


class CheckpointError(ValueError):
    """The bytes are not a checkpoint this reader understands (the message says why)."""


class Checkpoint:
    """A checkpoint file, parsed.

    version, flags: the header's; config: the policy's shape (kind, n_tools, max_tokens,
    n_buckets, d_emb, hidden, d_model, n_heads, n_layers, d_ff, n_args, seed); params: every
    parameter (float32, in layout order); tensors: name -> a read-only view of params with its
    shape (tensor_layout); adam: {lr, beta1, beta2, eps, weight_decay, step, m, v}; rng: the
    generator's four words; iteration; meta: the metadata as JSON (or the raw bytes when it is
    not JSON); crc32."""

    def __init__(self, **kw: Any):
        self.__dict__.update(kw)

    @property
    def agent(self) -> Optional[Dict[str, Any]]:
        """The agent's declarations the metadata carries ({name, tools: [{name, args}]}), or None."""
        return self.meta.get("agent") if isinstance(self.meta, dict) else None

    def __repr__(self) -> str:
        return (f"Checkpoint(kind={self.config['kind']!r}, n_params={self.params.size}, "
                f"iteration={self.iteration})")


def tensor_layout(config: Dict[str, Any]) -> List[tuple]:
    """[(name, offset, shape)] of a policy's parameters, in layout order (docs/checkpoints.md):
    they tile the parameter vector exactly."""
    kind, A = config["kind"], config["n_tools"]
    H = config["hidden"] if kind == "bag" else config["d_model"]
    B, De = config["n_buckets"], config["d_emb"]
    slots = sum(config["n_args"][:A]) or 1
    shapes = [("E", (B, De)), ("W0", (De, H)), ("b0", (H,)), ("Wt", (H, A)), ("bt", (A,)), ("Wq", (H, H)),
              ("S", (slots, H)), ("U", (H, H)), ("Wk", (H, H)), ("Ec", (B, H))]
    if kind == "sequence":
        shapes += [("Etok", (B, H)), ("Wnum", (SEQ_NUM_FEATURES, H)), ("Ekind", (TOKEN_KINDS, H)),
                   ("Eseg", (SEGMENT_KINDS, H)), ("Eage", (MAX_AGE + 1, H)), ("Eflag", (8, H)), ("Eord", (16, H))]
        D, F = config["d_model"], config["d_ff"]
        layer = {"ln1_g": (D,), "ln1_b": (D,), "Wqkv": (D, 3 * D), "bqkv": (3 * D,), "Wo": (D, D), "bo": (D,),
                 "ln2_g": (D,), "ln2_b": (D,), "W1": (D, F), "b1": (F,), "W2": (F, D), "b2": (D,)}
        for n in range(config["n_layers"]):
            shapes += [(f"enc.{n}.{t}", layer[t]) for t in ENCODER_LAYER_TENSORS]
        shapes += [("enc.lnf_g", (D,)), ("enc.lnf_b", (D,))]
    out, off = [], 0
    for name, shape in shapes:
        out.append((name, off, shape))
        off += int(np.prod(shape))
    return out


class _Reader:
    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise CheckpointError("checkpoint: truncated")
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def unpack(self, fmt: str):
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt)))

    def floats(self, n: int) -> np.ndarray:
        return np.frombuffer(self.take(4 * n), dtype="<f4").astype(np.float32)


def read_checkpoint(source: Union[str, bytes, bytearray]) -> Checkpoint:
    """Parses a checkpoint file (a path, or its bytes) and checks what the server checks: the
    magic, the version, the declared length, the CRC-32, the shapes. Raises CheckpointError."""
    if isinstance(source, (bytes, bytearray)):
        data = bytes(source)
    else:
        with open(source, "rb") as f:
            data = f.read()
    if len(data) < 24 + 4:
        raise CheckpointError("checkpoint: truncated")
    if data[:8] != MAGIC:
        raise CheckpointError("checkpoint: bad magic (not an agentcore checkpoint)")
    r = _Reader(data)
    r.take(8)
    version, flags, body_len = r.unpack("IIQ")
    if version != VERSION:
        raise CheckpointError(f"checkpoint: version {version} not supported (this reader reads {VERSION})")
    if 24 + body_len + 4 != len(data):
        raise CheckpointError(f"checkpoint: the header says {24 + body_len + 4} bytes, the file has {len(data)}")
    (crc,) = struct.unpack("<I", data[-4:])
    if zlib.crc32(data[:-4]) != crc:
        raise CheckpointError("checkpoint: checksum mismatch (corrupt)")
    cfg_version, seed_lo, seed_hi = r.unpack("III")
    if cfg_version != 1:
        raise CheckpointError(f"checkpoint: policy config version {cfg_version} not supported")
    v = r.unpack("%di" % CONFIG_INTS)
    if v[0] not in KINDS:
        raise CheckpointError(f"checkpoint: unknown policy kind {v[0]}")
    config = {"kind": KINDS[v[0]], "n_tools": v[1], "max_tokens": v[2], "n_buckets": v[3], "d_emb": v[4],
              "hidden": v[5], "d_model": v[6], "n_heads": v[7], "n_layers": v[8],
              "n_args": list(v[9:9 + v[1]]), "d_ff": v[9 + MAX_TOOLS], "reader": v[10 + MAX_TOOLS],
              "seed": seed_lo | seed_hi << 32}
    (n_params,) = r.unpack("Q")
    layout = tensor_layout(config)
    expect = layout[-1][1] + int(np.prod(layout[-1][2]))
    if n_params != expect:
        raise CheckpointError(f"checkpoint: {n_params} parameters, the config's shapes make {expect}")
    params = r.floats(n_params)
    params.setflags(write=False)
    lr, beta1, beta2, eps, wd = r.unpack("5f")
    step, n_m = r.unpack("qQ")
    if n_m != n_params:
        raise CheckpointError(f"checkpoint: optimizer has {n_m} parameters, policy {n_params}")
    m, v_ = r.floats(n_m), r.floats(n_m)
    rng = list(r.unpack("4Q"))
    (iteration,) = r.unpack("Q")
    (meta_len,) = r.unpack("I")
    raw = r.take(meta_len)
    if r.pos != len(data) - 4:
        raise CheckpointError("checkpoint: trailing bytes before the checksum")
    try:
        meta: Any = json.loads(raw) if raw else {}
    except ValueError:
        meta = raw
    tensors = {name: params[off:off + int(np.prod(shape))].reshape(shape) for name, off, shape in layout}
    return Checkpoint(version=version, flags=flags, config=config, params=params, tensors=tensors,
                      adam={"lr": lr, "beta1": beta1, "beta2": beta2, "eps": eps, "weight_decay": wd, "step": step,
                            "m": m, "v": v_},
                      rng=rng, iteration=iteration, meta=meta, crc32=crc)


# ---- the bag policy's forward pass ----------------------------------------------------------------

_M64 = (1 << 64) - 1
SPECIAL, WORD, NUMBER, ID, PUNCT = 0, 1, 2, 3, 4
SEG_QUERY, SEG_CALL, SEG_RESULT = 1, 2, 3
IN_QUERY, IN_CALL, TAKEN = 1, 2, 16  # token flags (docs/checkpoints.md)
AHEAD_TOKENS = 8
ROW_WORDS = 64
HISTORY_FEATURES = 64
_FNV = 0x100000001B3


def _mix(h: int) -> int:
    h ^= h >> 33
    h = (h * 0xFF51AFD7ED558CCD) & _M64
    h ^= h >> 33
    h = (h * 0xC4CEB9FE1A85EC53) & _M64
    h ^= h >> 33
    return h


def _magnitude(tok: Dict[str, Any]) -> int:
    if tok["kind"] != NUMBER:
        return 0
    value = np.float32(tok["value"])
    a = abs(value)
    m = 0 if a < 1 else 1 + int(np.log2(a, dtype=np.float32))
    return min(m, 40) << 1 | int(value < 0)


def _log_softmax(z: np.ndarray, mask: Optional[Sequence[bool]] = None) -> np.ndarray:
    z = np.asarray(z, dtype=np.float64)
    if mask is not None:
        z = np.where(np.asarray(mask, dtype=bool), z, -np.inf)
    top = np.max(z)
    return z - top - np.log(np.sum(np.exp(z - top)))


class BagPolicy:
    """The bag policy of a checkpoint (config kind "bag"), in NumPy (float64): reads a state from
    its tokens (agents.act's explain.tokens) and gives the log-probabilities of the tool decision
    and of each argument decision, as the server computes them (docs/checkpoints.md, "A forward
    pass")."""

    def __init__(self, ckpt: Checkpoint):
        if ckpt.config["kind"] != "bag":
            raise CheckpointError(f"BagPolicy reads bag policies, not {ckpt.config['kind']!r}")
        self.cfg = ckpt.config
        self.t = {k: np.asarray(v, dtype=np.float64) for k, v in ckpt.tensors.items()}
        self.H = self.cfg["hidden"]
        self.slot_base, n = [], 0
        for a in range(self.cfg["n_tools"]):
            self.slot_base.append(n)
            n += self.cfg["n_args"][a]

    def _bucket(self, h: int) -> int:
        return _mix(h & _M64) % self.cfg["n_buckets"]

    @staticmethod
    def _row_words(toks: Sequence[Dict[str, Any]]) -> List[int]:
        """Reader 3: the words (also in the query) within two tokens, in its segment, of a result's
        identifier or number that a call passed: what that call dealt with."""
        out = []
        for i, t in enumerate(toks):
            if t["seg"] != SEG_RESULT or not t["flags"] & IN_CALL or t["kind"] not in (ID, NUMBER):
                continue
            for j in range(i - 2, i + 3):
                if (j != i and 0 <= j < len(toks) and toks[j]["seg"] == t["seg"] and toks[j]["kind"] == WORD
                        and toks[j]["flags"] & IN_QUERY):
                    out.append(toks[j]["h"])
        return out[:ROW_WORDS]

    def _history(self, toks: Sequence[Dict[str, Any]]) -> List[int]:
        """Reader 5: what each earlier step did (its tool, the first key of its result and how
        many values that result showed, at most 3), alone and with how long ago (at most 3 steps),
        then the number of steps (at most 15)."""
        ids, steps = [], 0

        def run(i: int, seg: int, age: int) -> List[Dict[str, Any]]:
            out = []
            while i < len(toks) and toks[i]["seg"] == seg and toks[i]["age"] == age:
                out.append(toks[i])
                i += 1
            return out

        for i in range(len(toks) - 1):
            if len(ids) + 2 >= HISTORY_FEATURES:
                break
            t = toks[i]
            if t["seg"] != SEG_CALL or (i > 0 and toks[i - 1]["seg"] == SEG_CALL and toks[i - 1]["age"] == t["age"]):
                continue  # not the label of a call
            call = run(i, SEG_CALL, t["age"])
            result = run(i + len(call), SEG_RESULT, t["age"])
            keys = [u["h"] for u in result[1:] if u["kind"] == SPECIAL]
            values = min(sum(1 for u in result if u["kind"] not in (SPECIAL, PUNCT)), 3)
            sig = ((((call[1]["h"] * _FNV) & _M64) ^ (keys[0] if keys else 0)) * _FNV & _M64) ^ values
            ids.append(self._bucket(sig ^ 0x7A7A7A7A7A7A7A7A))
            ids.append(self._bucket(((sig * 0x9E3779B97F4A7C15) & _M64) ^ min(t["age"], 3) ^ 0x3B3B3B3B3B3B3B3B))
            steps += 1
        ids.append(self._bucket(min(steps, 15) ^ 0x6C6C6C6C6C6C6C6C))
        return ids

    def _request_part(self, j: int) -> int:
        """Reader 5: which part of the request token j (outside the query) stands for: the clause
        (1-4) after the cursor where its text or a word of its row first occurs, 5 when only at or
        before the cursor, 6 when nowhere; 7 for a query token. Reader 6: a query token's own
        clause after the cursor (9-12), 13 at or before it."""
        t, x, cur = self._toks, self._toks[j], self._cur
        if x["seg"] == SEG_QUERY:
            if self.cfg.get("reader", 0) < 6 or cur is None:
                return 7
            if j <= cur:
                return 13
            return 9 + min(sum(1 for u in t[cur + 1:j] if u["kind"] == PUNCT), 3)
        near = {t[i]["h"] for i in range(j - 2, j + 3)
                if 0 <= i < len(t) and t[i]["seg"] == x["seg"] and t[i]["flags"] & IN_QUERY and t[i]["kind"] in (WORD, ID)}
        if cur is None or not near:
            return 6
        clause = 0
        for u in t[cur + 1:]:
            if u["seg"] != SEG_QUERY:
                break
            if u["kind"] == PUNCT:
                clause = min(clause + 1, 3)
            elif u["h"] in near:
                return 1 + clause
        return 5 if any(u["seg"] == SEG_QUERY and u["h"] in near for u in t[:cur + 1]) else 6

    @classmethod
    def _cursor(cls, toks: Sequence[Dict[str, Any]], reader: int) -> Optional[int]:
        """The query's cursor: its last token (not the label) whose value a call passed (reader 3:
        or one of _row_words; reader 4: that a call took from it, the TAKEN flag), else its first
        token; None without a query (docs/checkpoints.md, "A forward pass")."""
        rows = set(cls._row_words(toks)) if reader >= 3 else set()
        first = last = None
        for i, t in enumerate(toks):
            if t["seg"] == SEG_QUERY:
                first = i if first is None else first
                if reader >= 4:
                    used = t["flags"] & TAKEN
                else:
                    used = t["kind"] != SPECIAL and t["flags"] & IN_CALL
                if used or t["h"] in rows:
                    last = i
        return last if last is not None else first

    def read(self, tokens: Sequence[Dict[str, Any]]) -> np.ndarray:
        """The state's hidden vector h from its tokens."""
        toks = [dict(t, h=int(t["hash"], 16)) for t in tokens]
        ids, prev = [], None
        reader = self.cfg.get("reader", 0)
        cap = 512 if reader >= 1 else 256
        self._cur = self._cursor(toks, reader) if reader >= 1 else None
        if self._cur is not None:
            ahead, clause, place = [], 0, 0  # (token, its place), reader 2: clause << 4 | place in it
            for t in toks[self._cur + 1:]:
                if t["seg"] != SEG_QUERY or len(ahead) == AHEAD_TOKENS:
                    break
                if t["kind"] == PUNCT:  # punctuation ends a clause
                    clause, place = min(clause + 1, 3), 0
                    continue
                ahead.append((t, clause << 4 | min(place, 15) if reader >= 2 else len(ahead)))
                place += 1
            for t, d in ahead:  # each alone, and with its place
                ids.append(self._bucket(t["h"] ^ 0x1D1D1D1D1D1D1D1D))
                ids.append(self._bucket(((t["h"] * 0x100000001B3) & _M64) ^ d ^ 0x4F4F4F4F4F4F4F4F))
                if reader >= 2 and t["pre"]:  # its stem, alone and with its place
                    ids.append(self._bucket(t["pre"] ^ 0x5D5D5D5D5D5D5D5D))
                    ids.append(self._bucket(((t["pre"] * 0x100000001B3) & _M64) ^ d ^ 0x6E6E6E6E6E6E6E6E))
            ids.append(self._bucket(len(ahead) ^ 0x2E2E2E2E2E2E2E2E))
        n_ahead = len(ids) if reader >= 2 else 0  # reader 2: the tokens ahead are a mean of their own
        hist = self._history(toks) if reader >= 5 else []  # reader 5: and so are the steps done
        ids += hist
        k2 = n_ahead + len(hist)
        for t in toks:
            if len(ids) >= cap:
                break
            if t["kind"] == PUNCT:
                continue
            ids.append(self._bucket(t["h"] ^ 0x5555555555555555))
            if prev is not None and len(ids) < cap:
                ids.append(self._bucket(((prev * 0x100000001B3) & _M64) ^ t["h"] ^ 0xAAAAAAAAAAAAAAAA))
            if t["kind"] == NUMBER and len(ids) < cap:
                ids.append(self._bucket((_magnitude(t) << 8 | t["seg"]) ^ 0xCCCCCCCCCCCCCCCD))
            if (t["flags"] & 7) and len(ids) < cap:
                ids.append(self._bucket(((t["h"] * 0x9E3779B97F4A7C15) & _M64) ^ (t["flags"] & 7)
                                        ^ 0x3C3C3C3C3C3C3C3C))
            prev = t["h"]
        x = self.t["E"][ids[k2:]].mean(axis=0) if len(ids) > k2 else np.zeros(self.cfg["d_emb"])
        if n_ahead:
            x = x + self.t["E"][ids[:n_ahead]].mean(axis=0)
        if hist:
            x = x + self.t["E"][ids[n_ahead:k2]].mean(axis=0)
        self._toks = toks
        return np.maximum(self.t["b0"] + x @ self.t["W0"], 0.0)

    def candidate(self, j: int) -> np.ndarray:
        """Token j's candidate vector (of the state read last)."""
        t, x = self._toks, self._toks[j]
        nb = [1, 2, 3, 4]
        for k, d in ((0, -2), (1, -1), (2, 1), (3, 2)):
            if 0 <= j + d < len(t) and t[j + d]["seg"] == x["seg"]:
                nb[k] = t[j + d]["h"]
        ids = [self._bucket(x["h"] ^ 0x1111111111111111), self._bucket(nb[0] ^ 0x2222222222222222),
               self._bucket(nb[1] ^ 0x3333333333333333), self._bucket(nb[2] ^ 0x4444444444444444),
               self._bucket(nb[3] ^ 0x6666666666666666),
               self._bucket((x["seg"] << 8 | x["age"]) ^ 0x7777777777777777),
               self._bucket((_magnitude(x) << 16 | x["kind"] << 8 | (x["flags"] & 7)) ^ 0x8888888888888888),
               self._bucket((x["seg"] << 8 | x["ord"]) ^ 0x9999999999999999)]
        if self.cfg.get("reader", 0) >= 1:  # where it stands from the cursor, its neighbours' flags
            cur = self._cur
            rel = 63 if x["seg"] != SEG_QUERY or cur is None else 62 if j <= cur else min(j - cur, 24)
            if rel < 62 and self.cfg.get("reader", 0) >= 6:
                rel = 61  # reader 6: after the cursor, its clause is _request_part's
            ids.append(self._bucket((x["seg"] << 8 | rel) ^ 0xABABABABABABABAB))
            nf = 0  # the neighbours' copy flags, 4 bits each, 8 where there is none
            for k in (j - 2, j - 1, j + 1, j + 2):
                nf = nf << 4 | (t[k]["flags"] & 7 if 0 <= k < len(t) and t[k]["seg"] == x["seg"] else 8)
            ids.append(self._bucket((x["seg"] << 24 | nf) ^ 0xCDCDCDCDCDCDCDCD))
        if self.cfg.get("reader", 0) >= 5:  # which part of the request it stands for
            ids.append(self._bucket((x["seg"] << 8 | self._request_part(j)) ^ 0xEFEFEFEFEFEFEFEF))
        return self.t["Ec"][ids].sum(axis=0) / len(ids)

    def tool_logp(self, h: np.ndarray, legal: Optional[Sequence[bool]] = None) -> np.ndarray:
        """log p(tool) over the tools (-inf where not legal)."""
        return _log_softmax(self.t["bt"] + h @ self.t["Wt"], legal)

    def slot_logp(self, h: np.ndarray, tool: int, slot: int, candidates: Sequence[int],
                  prev: Sequence[int] = ()) -> np.ndarray:
        """log p(argument `slot` of `tool` = token j) over the candidate tokens, given the tokens
        the earlier arguments took (prev)."""
        q = self.t["S"][self.slot_base[tool] + slot] + h @ self.t["Wq"]
        if len(prev):
            q = q + sum(self.candidate(j) for j in prev) @ self.t["U"]
        r = self.t["Wk"] @ q
        z = np.array([self.candidate(j) @ r for j in candidates]) / np.sqrt(self.H)
        return _log_softmax(z)

    def decisions_logp(self, explain: Dict[str, Any], tools: Sequence[str]) -> List[np.ndarray]:
        """Every decision of an agents.act explain block, scored: one array per decision, as its
        log_probs (tools: the agent's tool names in order)."""
        h = self.read(explain["tokens"])
        out = []
        for d in explain["decisions"]:
            if d["decision"] == "tool":
                out.append(self.tool_logp(h, d["legal"]))
            else:
                out.append(self.slot_logp(h, list(tools).index(d["tool"]), d["slot"], d["candidates"], d["prev"]))
        return out
