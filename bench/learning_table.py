"""The learning benchmark's table from `agentcore train` outputs (bench/learning.sh runs it).

Usage: python3 bench/learning_table.py --md OUT.md --csv OUT.csv [--machine TEXT] AGENT:POLICY:DIR...

Each DIR holds a run's report.json and metrics.csv. Per agent and policy, for each split (the
evaluation data, i.e. test_iid, and every `tests` set), the mean success over seeds with its
95 % interval for the random policy, the untrained policy, the keyword rule and the trained
policy (selected on validation); then the trajectories and the wall time until the validation
success first reached 0.9 (median over seeds; "not reached" when a seed never did).

An AGENT named <agent>-<variant> is a control run of examples/<agent>/experiment_<variant>.lua
(bench/learning.sh): its rows keep that name in the CSV and read, in the Markdown table, as the
agent with what the control changes ("inventory (control: blind to tool results)")."""
import argparse
import csv
import json
import math
import os
import statistics


# What each control variant of an agent changes, as the table names it.
CONTROLS = {"blind": "blind to tool results"}


def label(agent):
    """The agent's name in the Markdown table: "inventory-blind" -> "inventory (control: blind to
    tool results)"; an agent without a variant keeps its name."""
    base, sep, variant = agent.partition("-")
    if not sep:
        return agent
    return f"{base} (control: {CONTROLS.get(variant, variant)})"


def interval(values):
    """Mean and Student-t 95 % half-width (the same rule as agentcore train's report)."""
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, 0.0
    t = {2: 12.706, 3: 4.303, 4: 3.182, 5: 2.776, 6: 2.571, 7: 2.447, 8: 2.365, 9: 2.306, 10: 2.262}.get(n, 1.96)
    return mean, t * statistics.stdev(values) / math.sqrt(n)


def to_threshold(metrics_csv, threshold=0.9):
    """Per seed: (trajectories, seconds) until validation success >= threshold, or None."""
    out = {}
    with open(metrics_csv) as f:
        for row in csv.DictReader(f):
            seed = row["seed"]
            acc = out.setdefault(seed, {"traj": 0, "ms": 0.0, "hit": None})
            if acc["hit"] is not None:
                continue
            if row["trajectories"]:
                acc["traj"] += int(row["trajectories"])
                acc["ms"] += float(row["wall_ms"] or 0)
            if row["validation_success"] and float(row["validation_success"]) >= threshold:
                acc["hit"] = (acc["traj"], acc["ms"] / 1000.0)
    return [v["hit"] for v in out.values()]


def splits(report):
    """{split name: [per-seed {random, baseline, keyword, trained} success rates]}."""
    out = {}
    for s in report["seeds"]:
        sides = {k: s[k]["success_rate"] for k in ("random", "baseline", "keyword", "trained")}
        out.setdefault("test_iid", []).append(sides)
        for name, t in (s.get("tests") or {}).items():
            out.setdefault("test_" + name, []).append({k: t[k]["success_rate"] for k in sides})
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--md", required=True)
    ap.add_argument("--csv", required=True)
    ap.add_argument("--machine", default="")
    ap.add_argument("runs", nargs="+")
    args = ap.parse_args()
    rows = []
    for spec in args.runs:
        agent, policy, d = spec.split(":", 2)
        with open(os.path.join(d, "report.json")) as f:
            report = json.load(f)
        hits = to_threshold(os.path.join(d, "metrics.csv"))
        reached = [h for h in hits if h is not None]
        n_seeds = len(report["seeds"])
        wall = statistics.median(s["wall_ms"] / 1000.0 for s in report["seeds"])
        val = interval([s["selected"]["validation_success_rate"] for s in report["seeds"]])
        for split, per_seed in splits(report).items():
            row = {"agent": agent, "policy": policy, "split": split, "seeds": n_seeds,
                   "validation": val[0], "run_s": wall,
                   "traj_to_0.9": statistics.median(h[0] for h in reached) if len(reached) == len(hits) else None,
                   "s_to_0.9": statistics.median(h[1] for h in reached) if len(reached) == len(hits) else None}
            for side in ("random", "baseline", "keyword", "trained"):
                m, hw = interval([x[side] for x in per_seed])
                row[side], row[side + "_ci"] = m, hw
            rows.append(row)
    with open(args.csv, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
        w.writeheader()
        w.writerows(rows)
    with open(args.md, "w") as f:
        f.write("# Learning benchmark\n\n")
        f.write("Written by `bash bench/learning.sh`" + (f" on {args.machine}" if args.machine else "") + ". "
                "Success rate on each held-out split, mean over seeds with the 95 % interval (Student t); "
                "`untrained` is the policy before training, `keyword` the keyword rule fitted on the training "
                "split (core/engine/keyword.h: on the trained policy's successful episodes, so each policy's row "
                "has its own), `trained` the policy selected on validation. "
                "`to 0.9`: median trajectories and seconds until validation success first reached 0.9.")
        if any(label(r["agent"]) != r["agent"] for r in rows):
            f.write(" A `(control: ...)` row is the agent with that change, on the same data and settings "
                    "(`blind to tool results`: every tool call shows the policy an empty result, so "
                    "nothing a tool returns can guide it).")
        f.write("\n\n")
        f.write("| agent | policy | split | random | untrained | keyword | trained | validation | to 0.9 | time per seed |\n")
        f.write("|---|---|---|---|---|---|---|---|---|---|\n")
        for r in rows:
            to9 = "not reached" if r["traj_to_0.9"] is None else f"{r['traj_to_0.9']:.0f} traj, {r['s_to_0.9']:.0f} s"
            f.write(f"| {label(r['agent'])} | {r['policy']} | {r['split']} | {r['random']:.2f} | {r['baseline']:.2f} | "
                    f"{r['keyword']:.2f} ± {r['keyword_ci']:.2f} | **{r['trained']:.2f} ± {r['trained_ci']:.2f}** | "
                    f"{r['validation']:.2f} | {to9} | {r['run_s']:.0f} s x {r['seeds']} seeds |\n")


if __name__ == "__main__":
    main()
