#!/usr/bin/env python3
"""PyTorch reference for the actor (core/engine/actor.c, actor_bag.c, actor_seq.c).

`actor_dump FILE` (tests/ref/actor_dump.c) writes, for a bag policy and two sequence policies
(as initialised, and with perturbed weights), the flat parameters, the states' raw tokens as
context.c rendered them from fixed episodes, the decisions (tool, then argument slots over
candidate tokens, given the earlier slots' choices), a GRPO batch (advantages, behaviour and
reference log-probs, loss config), and what the C code computed: log-probabilities, loss,
gradient of the loss w.r.t. every parameter, and the intermediates (token inputs X, encoder
outputs Y, state vectors h, candidate vectors).

This script rebuilds the same model in torch (float64) from the same weights, written from the
model's description, not from the C code's loops: hashing of tokens into buckets (the bag's
unigram/bigram/magnitude/copy features and candidate features, the sequence reader's word and
affix rows), the embeddings and the structure embeddings (kind, segment, age, copy flags,
ordinal, number value features, sinusoidal position), the pre-norm Transformer
(tests/ref/encoder_ref.py's encode: torch's layer_norm, softmax, gelu), mean pooling, the bag's
ReLU layer, the tool head and the pointer heads, and the GRPO loss (clipped ratio, k3 KL to the
reference, entropy bonus, per-episode mean then mean over episodes). Autograd gives the
gradients, compared with the C backward block by block; each check is named by its layer, so a
failure says where the two models part.

    test_actor_torch.py --bin build/actor_dump    # runs the dump into a temp file, then compares
    test_actor_torch.py FILE                      # compares an existing dump

Exit status 0 when everything matches, 1 otherwise (also when torch is missing: the check must
not pass by being skipped).
"""
import json
import math
import os
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import torch
except ImportError as e:
    print(f"FAIL: cannot import torch/numpy with {sys.executable} ({e}); install Debian's python3-torch "
          "(tests/setup.sh does) and re-run cmake so that ref_actor_torch finds it")
    sys.exit(1)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import encoder_ref  # noqa: E402  (the encoder in torch, shared with ref_encoder)

# float32 C against float64 torch: |c - ref| <= RTOL |ref| + ATOL max|ref of the tensor| + 1e-9
RTOL, ATOL = 1e-4, 1e-5
M64 = (1 << 64) - 1
TOK_SPECIAL, TOK_WORD, TOK_NUMBER, TOK_ID, TOK_PUNCT = 0, 1, 2, 3, 4
SEG_QUERY, SEG_CALL, SEG_RESULT = 1, 2, 3
TOKF_IN_QUERY, TOKF_IN_CALL, TOKF_TAKEN = 1, 2, 16
N_KINDS, N_SEGS, MAX_AGE, N_FLAGS, N_ORD, N_NUMF = 5, 6, 7, 8, 16, 6
AHEAD_TOKENS = 8
HISTORY_FEATURES = 64
FNV = 0x100000001b3
POS_SCALE = 0.3
failures = 0
checks = 0


# ---- hashing (the host's featurisation) ------------------------------------------------------

def mix_bag(h):
    """The bag's bucket mix (murmur3 finaliser)."""
    h ^= h >> 33
    h = (h * 0xff51afd7ed558ccd) & M64
    h ^= h >> 33
    h = (h * 0xc4ceb9fe1a85ec53) & M64
    h ^= h >> 33
    return h


def bucket_bag(h, n):
    return mix_bag(h & M64) % n


def bucket_seq(h, n):
    """The sequence reader's bucket: the first half of the same finaliser."""
    h &= M64
    h ^= h >> 33
    h = (h * 0xff51afd7ed558ccd) & M64
    h ^= h >> 33
    return h % n


def magnitude(t):
    """A number's order of magnitude (1 + floor(log2 |v|), 0 below 1, at most 40) and sign."""
    if t["kind"] != TOK_NUMBER:
        return 0
    v = np.float32(t["value"])
    a = abs(v)
    m = 0 if a < 1 else 1 + int(np.log2(a))
    return (min(m, 40) << 1) | int(v < 0)


def row_words(toks):
    """Reader 3: the hashes of the words (kind word, in the query too: flags & 1) within two tokens,
    in the same segment, of a result's identifier or number that a call passed (flags & 2)."""
    out = []
    for i, t in enumerate(toks):
        if t["seg"] != SEG_RESULT or not t["flags"] & TOKF_IN_CALL or t["kind"] not in (TOK_ID, TOK_NUMBER):
            continue
        for j in range(i - 2, i + 3):
            if (j != i and 0 <= j < len(toks) and toks[j]["seg"] == t["seg"] and toks[j]["kind"] == TOK_WORD
                    and toks[j]["flags"] & TOKF_IN_QUERY):
                out.append(toks[j]["hash"])
    return out[:64]


def cursor(toks, reader):
    """The query's cursor: its last token (not the label) whose value a call passed (reader 3: or
    whose text is one of row_words; reader 4: that a call took from it, flags & 16), else its
    first token; None without a query."""
    rows = set(row_words(toks)) if reader >= 3 else set()
    first = last = None
    for i, t in enumerate(toks):
        if t["seg"] == SEG_QUERY:
            first = i if first is None else first
            if reader >= 4:
                used = t["flags"] & TOKF_TAKEN
            else:
                used = t["kind"] != TOK_SPECIAL and t["flags"] & TOKF_IN_CALL
            if used or t["hash"] in rows:
                last = i
    return last if last is not None else first


def history_features(toks, nb):
    """Reader 5: per earlier step (a call segment: its label, then the tool's name), the tool with
    the first key of its result (the first special token after the result's label; 0 when none)
    and how many of the result's tokens are values (not special, not punctuation; at most 3),
    hashed alone and with how many steps ago (the age, at most 3); then the number of steps (at
    most 15). At most HISTORY_FEATURES ids."""
    ids, steps = [], 0
    for i in range(len(toks) - 1):
        if len(ids) + 2 >= HISTORY_FEATURES:
            break
        t = toks[i]
        if t["seg"] != SEG_CALL or (i > 0 and toks[i - 1]["seg"] == SEG_CALL and toks[i - 1]["age"] == t["age"]):
            continue
        call = _run(toks, i, SEG_CALL, t["age"])
        result = _run(toks, i + len(call), SEG_RESULT, t["age"])
        keys = [u["hash"] for u in result[1:] if u["kind"] == TOK_SPECIAL]
        values = min(sum(1 for u in result if u["kind"] not in (TOK_SPECIAL, TOK_PUNCT)), 3)
        sig = ((((call[1]["hash"] * FNV) & M64) ^ (keys[0] if keys else 0)) * FNV & M64) ^ values
        ids.append(bucket_bag(sig ^ 0x7a7a7a7a7a7a7a7a, nb))
        ids.append(bucket_bag(((sig * 0x9e3779b97f4a7c15) & M64) ^ min(t["age"], 3) ^ 0x3b3b3b3b3b3b3b3b, nb))
        steps += 1
    ids.append(bucket_bag(min(steps, 15) ^ 0x6c6c6c6c6c6c6c6c, nb))
    return ids


def _run(toks, i, seg, age):
    """The tokens from i on that are in segment seg with the given age."""
    out = []
    while i < len(toks) and toks[i]["seg"] == seg and toks[i]["age"] == age:
        out.append(toks[i])
        i += 1
    return out


def bag_features(toks, nb, reader):
    """Reader 1: the next AHEAD_TOKENS non-punctuation query tokens after the cursor, alone and
    with their place among them (0-based), and their count; in reader 2 the place is the clause
    (punctuation tokens passed since the cursor, at most 3) << 4 | the place in it (at most 15),
    and each token adds, after its two, its stem (pre, when not 0) alone and with its place. Then unigrams, bigrams of
    neighbouring non-punctuation tokens, numbers' magnitude per segment, tokens with their copy
    flags: bucket ids, as many as there are (capped: 512, reader 0: 256). Reader 5 puts
    history_features between the tokens ahead and the rest. Returns the ids, how many of the first
    are their own mean (reader 2: the tokens ahead; else 0, one mean of all) and how many after
    those are a mean of their own (reader 5: the history; else 0)."""
    ids, prev = [], None
    cap = 512 if reader >= 1 else 256
    cur = cursor(toks, reader) if reader >= 1 else None
    if cur is not None:
        ahead, clause, place = [], 0, 0  # (token, its place: reader 2 clause << 4 | place in it)
        for t in toks[cur + 1:]:
            if t["seg"] != SEG_QUERY or len(ahead) == AHEAD_TOKENS:
                break
            if t["kind"] == TOK_PUNCT:
                clause, place = min(clause + 1, 3), 0
                continue
            ahead.append((t, clause << 4 | min(place, 15) if reader >= 2 else len(ahead)))
            place += 1
        for t, d in ahead:
            ids.append(bucket_bag(t["hash"] ^ 0x1d1d1d1d1d1d1d1d, nb))
            ids.append(bucket_bag(((t["hash"] * 0x100000001b3) & M64) ^ d ^ 0x4f4f4f4f4f4f4f4f, nb))
            if reader >= 2 and t["pre"]:
                ids.append(bucket_bag(t["pre"] ^ 0x5d5d5d5d5d5d5d5d, nb))
                ids.append(bucket_bag(((t["pre"] * 0x100000001b3) & M64) ^ d ^ 0x6e6e6e6e6e6e6e6e, nb))
        ids.append(bucket_bag(len(ahead) ^ 0x2e2e2e2e2e2e2e2e, nb))
    n_ahead = len(ids) if reader >= 2 else 0
    n_hist = 0
    if reader >= 5:
        hist = history_features(toks, nb)
        ids += hist
        n_hist = len(hist)
    for t in toks:
        if t["kind"] == TOK_PUNCT:
            continue
        h = t["hash"]
        for f in ([h ^ 0x5555555555555555]
                  + ([((prev * 0x100000001b3) & M64) ^ h ^ 0xaaaaaaaaaaaaaaaa] if prev is not None else [])
                  + ([((magnitude(t) << 8) | t["seg"]) ^ 0xcccccccccccccccd] if t["kind"] == TOK_NUMBER else [])
                  + ([((h * 0x9e3779b97f4a7c15) & M64) ^ (t["flags"] & 7) ^ 0x3c3c3c3c3c3c3c3c]
                     if t["flags"] & 7 else [])):
            if len(ids) < cap:
                ids.append(bucket_bag(f, nb))
        prev = h
    return ids, n_ahead, n_hist


def pooled(E, ids, n_ahead, n_hist, d):
    """The bag's x: the mean of the ids after the first n_ahead + n_hist, plus the mean of the
    first n_ahead (reader 2), plus the mean of the n_hist after them (reader 5)."""
    k2 = n_ahead + n_hist
    x = E[ids[k2:]].mean(0) if len(ids) > k2 else torch.zeros(d, dtype=torch.float64)
    if n_ahead:
        x = x + E[ids[:n_ahead]].mean(0)
    return x + E[ids[n_ahead:k2]].mean(0) if n_hist else x


def cand_features(toks, j, nb, reader):
    """Candidate token j: its text, two neighbours each side within its segment (tags when
    absent), segment and age, magnitude + kind + copy flags, segment and ordinal; reader 1: its
    segment and where it stands from the cursor (1..24 tokens after, 62 at or before it, 63 out
    of the query), and its segment with its neighbours' copy flags (4 bits each, 8 if absent)."""
    x = toks[j]
    nbh = []
    for k, tag in ((j - 2, 1), (j - 1, 2), (j + 1, 3), (j + 2, 4)):
        same = 0 <= k < len(toks) and toks[k]["seg"] == x["seg"]
        nbh.append(toks[k]["hash"] if same else tag)
    feats = [x["hash"] ^ 0x1111111111111111, nbh[0] ^ 0x2222222222222222, nbh[1] ^ 0x3333333333333333,
             nbh[2] ^ 0x4444444444444444, nbh[3] ^ 0x6666666666666666,
             ((x["seg"] << 8) | x["age"]) ^ 0x7777777777777777,
             ((magnitude(x) << 16) | (x["kind"] << 8) | (x["flags"] & 7)) ^ 0x8888888888888888,
             ((x["seg"] << 8) | x["ord"]) ^ 0x9999999999999999]
    if reader >= 1:
        cur = cursor(toks, reader)
        rel = 63 if x["seg"] != SEG_QUERY or cur is None else 62 if j <= cur else min(j - cur, 24)
        if reader >= 6 and rel < 62:
            rel = 61  # reader 6: after the cursor, its clause is request_part's
        feats.append(((x["seg"] << 8) | rel) ^ 0xabababababababab)
        nf = 0
        for k in (j - 2, j - 1, j + 1, j + 2):
            nf = (nf << 4) | (toks[k]["flags"] & 7 if 0 <= k < len(toks) and toks[k]["seg"] == x["seg"] else 8)
        feats.append(((x["seg"] << 24) | nf) ^ 0xcdcdcdcdcdcdcdcd)
    if reader >= 5:
        feats.append(((x["seg"] << 8) | request_part(toks, j, cursor(toks, reader), reader)) ^ 0xefefefefefefefef)
    return [bucket_bag(f, nb) for f in feats]


def request_part(toks, j, cur, reader):
    """Reader 5: which part of the request a token outside the query stands for. Its text and the
    words and identifiers within two tokens of it in its segment that the query has (flags & 1):
    the clause (1 + punctuation tokens passed after the cursor, at most 3) of the first query
    token after the cursor with one of their texts; else 5 if one occurs at or before the cursor,
    6 if none does (or no cursor, or no such neighbour); 7 for a query token. Reader 6: a query
    token after the cursor gets its own clause (9 + punctuation tokens between, at most 3), 13 at
    or before the cursor."""
    x = toks[j]
    if x["seg"] == SEG_QUERY:
        if reader < 6 or cur is None:
            return 7
        if j <= cur:
            return 13
        return 9 + min(sum(1 for t in toks[cur + 1:j] if t["kind"] == TOK_PUNCT), 3)
    near = {toks[i]["hash"] for i in range(j - 2, j + 3)
            if 0 <= i < len(toks) and toks[i]["seg"] == x["seg"] and toks[i]["flags"] & TOKF_IN_QUERY
            and toks[i]["kind"] in (TOK_WORD, TOK_ID)}
    if cur is None or not near:
        return 6
    clause = 0
    for t in toks[cur + 1:]:
        if t["seg"] != SEG_QUERY:
            break
        if t["kind"] == TOK_PUNCT:
            clause = min(clause + 1, 3)
        elif t["hash"] in near:
            return 1 + clause
    query = [i for i in range(cur + 1) if toks[i]["seg"] == SEG_QUERY]
    return 5 if any(toks[i]["hash"] in near for i in query) else 6


def num_features(v):
    """A number's value features: sign, log10(1+|v|)/3, fractional, |v| < 1, squared magnitude,
    small integer (|v| <= 10)."""
    v = np.float32(v)
    a = abs(v)
    m = np.log10(np.float32(1) + a)
    integral = v == np.floor(v)
    return [float(np.sign(v)), float(m / np.float32(3)), float(not integral), float(a < 1),
            float(m * m / np.float32(9)), float(integral and a <= 10)]


def sinusoid(T, D):
    pe = np.zeros((T, D), dtype=np.float32)
    for t in range(T):
        for d in range(0, D, 2):
            ang = t * 10000.0 ** (-d / D)
            pe[t, d] = POS_SCALE * math.sin(ang)
            if d + 1 < D:
                pe[t, d + 1] = POS_SCALE * math.cos(ang)
    return torch.tensor(pe, dtype=torch.float64)


# ---- the model ------------------------------------------------------------------------------

def layout(case):
    """[(block, shape)] in the order of the flat parameter array (matrices (in, out) row-major,
    except Wk, applied as r = Wk q)."""
    H, A, NB, De = case["H"], case["n_tools"], case["n_buckets"], case["d_emb"]
    n_slots = max(1, sum(case["n_args"]))
    out = [("bag/E", (NB, De)), ("bag/W0", (De, H)), ("bag/b0", (H,)),
           ("heads/Wt", (H, A)), ("heads/bt", (A,)), ("heads/Wq", (H, H)), ("heads/S", (n_slots, H)),
           ("heads/U", (H, H)), ("heads/Wk", (H, H)), ("bag/Ec", (NB, H))]
    if case["kind"] == "sequence":
        out += [("seq/Etok", (NB, H)), ("seq/Wnum", (N_NUMF, H)), ("seq/Ekind", (N_KINDS, H)),
                ("seq/Eseg", (N_SEGS, H)), ("seq/Eage", (MAX_AGE + 1, H)), ("seq/Eflag", (N_FLAGS, H)),
                ("seq/Eord", (N_ORD, H))]
        enc_lay, _ = encoder_ref.layout(enc_cfg(case))
        out += [(f"encoder/{layer}/{name}", shape) for layer, name, _, shape in enc_lay]
    return out


def enc_cfg(case):
    return {"d_model": case["d_model"], "n_heads": case["n_heads"], "n_layers": case["n_layers"],
            "d_ff": case["d_ff"]}


def close(name, c, ref):
    """c: the C values (float32), ref: torch float64, same number of elements."""
    global failures, checks
    checks += 1
    c = torch.as_tensor(np.asarray(c, dtype=np.float64)).reshape(ref.shape)
    ref = ref.detach()
    fin = torch.isfinite(ref)
    if not torch.equal(fin, torch.isfinite(c)) or not torch.equal(c[~fin], ref[~fin]):
        failures += 1
        print(f"FAIL {name:34s} masked (-inf) entries differ: C {c.flatten().tolist()} vs torch "
              f"{ref.flatten().tolist()}")
        return
    c, ref = torch.where(fin, c, 0.0), torch.where(fin, ref, 0.0)
    diff = (c - ref).abs()
    scale = ref.abs().max().item() if ref.numel() else 0.0
    lim = RTOL * ref.abs() + ATOL * scale + 1e-9
    bad = int((diff > lim).sum()) + int(torch.isnan(c).sum())
    if bad:
        i = int(torch.argmax(diff - lim))
        failures += 1
        print(f"FAIL {name:34s} {bad}/{ref.numel()} out of tolerance (rtol {RTOL}, atol {ATOL} x max|ref|); "
              f"worst [{i}]: C {c.flatten()[i].item():.9g} vs torch {ref.flatten()[i].item():.9g}")
    else:
        print(f"ok   {name:34s} n={ref.numel():<6d} max|diff| {diff.max().item() if ref.numel() else 0:.3g} "
              f"(max|ref| {scale:.3g})")


def check_case(case):
    global failures
    tag = case["name"]
    H, A, NB, T = case["H"], case["n_tools"], case["n_buckets"], case["temperature"]
    seq = case["kind"] == "sequence"
    lay = layout(case)
    sizes = [math.prod(s) for _, s in lay]
    if sum(sizes) != case["n_params"] or len(case["params"]) != case["n_params"]:
        failures += 1
        print(f"FAIL {tag}: the C actor has {case['n_params']} parameters ({len(case['params'])} dumped), "
              f"the reference layout {sum(sizes)}: the parameter blocks differ")
        return
    P, off = {}, 0
    flat = case["params"]
    for (name, shape), n in zip(lay, sizes):
        P[name] = torch.tensor(flat[off:off + n], dtype=torch.float64).reshape(shape).requires_grad_(True)
        off += n
    states = case["states"]

    # the bag's reading: h = relu(mean(E[features]) W0 + b0), candidates = mean(Ec[features])
    hs, cands = [], []
    for s in states:
        ids, n_ahead, n_hist = bag_features(s["tokens"], NB, case["reader"])
        x = pooled(P["bag/E"], ids, n_ahead, n_hist, case["d_emb"])
        hs.append(torch.relu(x @ P["bag/W0"] + P["bag/b0"]))
        cands.append(torch.stack([P["bag/Ec"][cand_features(s["tokens"], j, NB, case["reader"])].mean(0)
                                  for j in range(len(s["tokens"]))]))
    if seq:
        # the sequence reader: token inputs -> encoder per state -> h += mean(Y), c_j += Y_j
        pe = sinusoid(256, H)
        Xs, Ys = [], []
        ecfg = enc_cfg(case)
        EP = {}
        for layer, name, _, _ in encoder_ref.layout(ecfg)[0]:
            EP[(layer, name)] = P[f"encoder/{layer}/{name}"]
        for si, s in enumerate(states):
            rows = []
            for t in s["tokens"]:
                x = (P["seq/Etok"][bucket_seq(t["hash"], NB)] + P["seq/Ekind"][t["kind"]] + P["seq/Eseg"][t["seg"]]
                     + P["seq/Eage"][min(t["age"], MAX_AGE)] + P["seq/Eflag"][t["flags"] & 7]
                     + P["seq/Eord"][t["ord"]] + pe[t["pos"]])
                if t["pre"] or t["suf"]:
                    x = x + 0.5 * (P["seq/Etok"][bucket_seq(t["pre"], NB)] + P["seq/Etok"][bucket_seq(t["suf"], NB)])
                if t["kind"] == TOK_NUMBER:
                    x = x + torch.tensor(num_features(t["value"]), dtype=torch.float64) @ P["seq/Wnum"]
                rows.append(x)
            X = torch.stack(rows)
            Y = encoder_ref.encode(ecfg, EP, X)
            Xs.append(X)
            Ys.append(Y)
            hs[si] = hs[si] + Y.mean(0)
            cands[si] = cands[si] + Y
        close(f"{tag}/forward/seq token inputs X", case["X"], torch.cat(Xs))
        close(f"{tag}/forward/encoder outputs Y", case["Y"], torch.cat(Ys))
    close(f"{tag}/forward/state vectors h", case["h"], torch.stack(hs))
    close(f"{tag}/forward/candidate vectors", case["cand_vec"], torch.cat(cands))

    # the heads, decision by decision; z = logits / T
    slot_base, acc = [], 0
    for a in range(A):
        slot_base.append(acc)
        acc += case["n_args"][a]
    zs, logps = [], []
    for k, d in enumerate(case["decisions"]):
        h, C = hs[d["state"]], cands[d["state"]]
        if d["slot"] < 0:
            z = (h @ P["heads/Wt"] + P["heads/bt"]) / T
            z = torch.where(torch.tensor(d["mask"], dtype=torch.bool), z, torch.tensor(-math.inf, dtype=torch.float64))
            what = f"tool decision, state {d['state']}"
        else:
            q = h @ P["heads/Wq"] + P["heads/S"][slot_base[d["tool"]] + d["slot"]]
            if d["prev"]:
                q = q + C[d["prev"]].sum(0) @ P["heads/U"]
            r = P["heads/Wk"] @ q
            z = (C[d["cand"]] @ r) / math.sqrt(H) / T
            what = f"pointer: tool {d['tool']} slot {d['slot']}, state {d['state']}"
        z.retain_grad()
        lp = torch.log_softmax(z, 0)
        zs.append(z)
        logps.append(lp)
        close(f"{tag}/logp/{what}", case["logp"][d["off"]:d["off"] + d["n"]], lp)

    # GRPO: per decision, -min(r A, clip(r) A) + beta k3 - c H, mean over each episode's
    # decisions (with two or more legal options), then over the episodes
    g = case["grpo"]
    lo, hi = 1 - g["clip_eps_low"], 1 + g["clip_eps_high"]
    steps = case["steps"]
    use = [k for k, d in enumerate(case["decisions"]) if torch.isfinite(logps[k]).sum() > 1]
    per_ep = {}
    for k in use:
        e = steps[case["decisions"][k]["step"]]["episode"]
        per_ep[e] = per_ep.get(e, 0) + 1
    loss = torch.zeros((), dtype=torch.float64)
    for k in use:
        d, lp = case["decisions"][k], logps[k]
        adv = steps[d["step"]]["advantage"]
        w = 1.0 / (len(per_ep) * per_ep[steps[d["step"]]["episode"]])
        lpa = lp[d["chosen"]]
        ratio = torch.exp(lpa - d["logp_old"])
        surr = -torch.minimum(ratio * adv, torch.clamp(ratio, lo, hi) * adv)
        dref = case["ref_logp"][d["off"] + d["chosen"]] - lpa
        k3 = torch.exp(dref) - dref - 1
        fin = torch.isfinite(lp)
        p = torch.exp(lp[fin])
        ent = -(p * lp[fin]).sum()
        loss = loss + w * (surr + g["kl_beta"] * k3 - g["entropy_coef"] * ent)
    close(f"{tag}/GRPO loss", [case["loss"]], loss.reshape(1))
    loss.backward()
    dz = torch.zeros(len(case["dlogits"]), dtype=torch.float64)
    for k, d in enumerate(case["decisions"]):
        gz = zs[k].grad if zs[k].grad is not None else torch.zeros(d["n"], dtype=torch.float64)
        dz[d["off"]:d["off"] + d["n"]] += torch.where(torch.isfinite(logps[k]), gz, 0.0)
    close(f"{tag}/GRPO dL/dlogits", case["dlogits"], dz)

    # the C backward, block by block
    off = 0
    for (name, shape), n in zip(lay, sizes):
        ref = P[name].grad if P[name].grad is not None else torch.zeros(shape, dtype=torch.float64)
        if ref.abs().max().item() == 0.0:
            failures += 1
            print(f"FAIL {tag}/grad/{name}: the reference gradient is zero everywhere: this batch does not "
                  "exercise the block, so the comparison could not fail")
        close(f"{tag}/grad/{name}", case["grads"][off:off + n], ref)
        off += n


def check_cursor_rules(cases):
    """Each reader's cursor rule must move the cursor in some state of the batch (reader 3: over a
    result row's words; reader 4: not onto a query number a call took from a result), or the
    comparisons could not tell a C side that ignores the rule."""
    global failures, checks
    states = cases[0]["states"] if cases else []
    for reader in (3, 4):
        checks += 1
        if all(cursor(s["tokens"], reader) == cursor(s["tokens"], reader - 1) for s in states):
            failures += 1
            print(f"FAIL cursor rule of reader {reader}: no state of the batch where it moves the cursor")
        else:
            print(f"ok   cursor rule of reader {reader} moves the cursor in some state")
    # reader 5: the history must have steps to read, and request_part must tell a row of what
    # comes next (1-4) from one dealt with (5)
    checks += 1
    parts = {request_part(s["tokens"], j, cursor(s["tokens"], 5), 5) for s in states for j in range(len(s["tokens"]))}
    steps = max((len(history_features(s["tokens"], 1 << 20)) - 1) // 2 for s in states) if states else 0
    if not (parts & {1, 2, 3, 4}) or 5 not in parts or steps < 2:
        failures += 1
        print(f"FAIL reader 5: the batch has request parts {sorted(parts)} and at most {steps} steps in a state")
    else:
        print(f"ok   reader 5: request parts {sorted(parts)}, up to {steps} steps in a state")
    # reader 6: query tokens in two clauses after the cursor and at or before it, or the clause
    # of a query token would go untested
    checks += 1
    parts = {request_part(s["tokens"], j, cursor(s["tokens"], 6), 6) for s in states for j in range(len(s["tokens"]))}
    if len(parts & {9, 10, 11, 12}) < 2 or 13 not in parts:
        failures += 1
        print(f"FAIL reader 6: the batch has request parts {sorted(parts)}")
    else:
        print(f"ok   reader 6: request parts {sorted(parts)}")


def main(argv):
    if len(argv) == 3 and argv[1] == "--bin":
        fd, path = tempfile.mkstemp(suffix=".json", prefix="actor_dump_")
        os.close(fd)
        try:
            subprocess.run([argv[2], path], check=True)
            with open(path) as f:
                cases = json.load(f)
        finally:
            os.unlink(path)
    elif len(argv) == 2:
        with open(argv[1]) as f:
            cases = json.load(f)
    else:
        print(__doc__, file=sys.stderr)
        return 2
    torch.set_num_threads(1)
    for case in cases:
        for s in case["states"]:
            for t in s["tokens"]:
                t["hash"] = int(t["hash"])
    check_cursor_rules(cases)
    for case in cases:
        check_case(case)
    print(f"test_actor_torch: torch {torch.__version__}, {len(cases)} cases, {checks} checks, "
          f"{failures} failure(s)")
    return 1 if failures or not cases else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
