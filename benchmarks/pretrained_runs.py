"""Every run shipped with hjepa (`hjepa.pretrained`), planned as a user plans it.

    python -m benchmarks.pretrained_runs [--split test] [--episodes 64] [--only NAME,...]

Each run plans `--episodes` start/goal pairs of `--split` through `hjepa plan --pretrained
NAME` itself (the planner settings it ships with), so the figure is what a user gets. Writes
`benchmarks/results/pretrained_<split>_<platform>.{json,md}` (one row per run, each with its
own provenance: commit, command, configs, pairs, versions, machine and load) and, for the
`test` split, `hjepa/pretrained/NAME/evaluation.json`: the figure the run's description
quotes, that `hjepa plan TASK --pretrained` ranks the runs of a task by, and that the quality
guards in the tests derive their floors from.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys

from hjepa import cli, pretrained, provenance, splits, stats, sysinfo
from hjepa.io import atomic_write_bytes, atomic_write_json

HERE = os.path.dirname(os.path.abspath(__file__))


def measure(name: str, *, split: str, episodes: int) -> dict:
    """Plans `episodes` pairs of `split` with the shipped run `name`: a results row."""
    argv = ["plan", "--pretrained", name, "--episodes", str(episodes), "--split", split, "--json"]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli.main(argv)
    if code != 0:
        raise RuntimeError(f"hjepa {' '.join(argv)} exited {code}")
    summary = json.loads(out.getvalue())
    successes = round(summary["success_rate"] * summary["episodes"])
    entry = pretrained.PRETRAINED[name]
    return {
        "name": name, "task": entry.task, "successes": successes,
        "success_ci95": list(stats.wilson(successes, summary["episodes"])), **summary,
        "provenance": provenance.record(
            command="hjepa " + " ".join(argv[:-1]),
            configs={"plan": summary, "run": _run_config(name)},
            pairs={**splits.describe(split, splits.seed(split)), "episodes": episodes}),
    }


def _run_config(name: str) -> dict:
    with open(os.path.join(pretrained.path(name), "config.json")) as f:
        return json.load(f)


def markdown(rows: list[dict], split: str) -> str:
    lines = [f"# Shipped runs on the `{split}` pairs (`python -m benchmarks.pretrained_runs`)",
             "", "| run | task | model | success (95% CI) | mean final distance | "
             "ms / MPC step | commit | machine |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        low, high = r["success_ci95"]
        p = r["provenance"]
        commit = (p["commit"] or "?")[:7] + ("+dirty" if p["dirty"] else "")
        lines.append(f"| {r['name']} | {r['task']} | {r['model']} | "
                     f"{100 * r['success_rate']:.1f}% ({100 * low:.0f}-{100 * high:.0f}) of "
                     f"{r['episodes']} | {r['mean_final_distance']:.4f} | "
                     f"{r['ms_per_step_amortised']:.2f} | {commit} | "
                     f"{sysinfo.describe(p['hardware'])} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", choices=splits.SPLITS, default="test")
    parser.add_argument("--episodes", type=int, default=64)
    parser.add_argument("--only", default=None, help="comma-separated run names")
    parser.add_argument("--out", default=os.path.join(HERE, "results"))
    args = parser.parse_args(argv)
    names = args.only.split(",") if args.only else list(pretrained.PRETRAINED)
    os.makedirs(args.out, exist_ok=True)
    import jax

    platform = jax.devices()[0].platform
    path = os.path.join(args.out, f"pretrained_{args.split}_{platform}.json")
    rows = {}
    if os.path.exists(path):  # rows of other runs, measured before, keep their provenance
        with open(path) as f:
            rows = {r["name"]: r for r in json.load(f)["rows"]}
    for name in names:
        row = measure(name, split=args.split, episodes=args.episodes)
        rows[name] = row
        print(f"{name}: {100 * row['success_rate']:.1f}% of {row['episodes']} "
              f"({args.split} pairs)", flush=True)
        if args.split == "test":
            atomic_write_json(os.path.join(pretrained.path(name), "evaluation.json"), row)
        ordered = [rows[n] for n in pretrained.PRETRAINED if n in rows]
        atomic_write_json(path, {"format": "hjepa-pretrained-runs", "split": args.split,
                                 "rows": ordered})
        atomic_write_bytes(path[:-5] + ".md", markdown(ordered, args.split).encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
