"""Reacher closed-loop success with every planner, on the oracle and on a learned JEPA.

    python -m benchmarks.reacher_planners --run-dir hjepa-demo/run [--episodes 64]
        [--oracle-episodes 64] [--planners mppi,cem,gd,beam] [--json PATH] [--markdown PATH]
        [--split test|val] [--seed S] [--override '{"num_samples": 512}'] [--horizon H]

Each row: task, model (oracle: true Brax physics; learned: the JEPA in --run-dir), planner,
its budget, success rate with a 95% Wilson interval, mean final distance, planning time per
MPC step (amortised over the batched episodes), predictor calls per step, compile time, and
the hardware. The same start/goal pairs (--split: the `test` pairs of `hjepa.splits` by
default, for reported figures) are used for every row. Tune with `--split val` and
--override (a JSON dict merged into the options of every selected planner) and --horizon, so
that the test pairs stay held out. (The committed figures were measured on seed 10000, now
the val pairs, and the CEM and oracle settings chosen on seed 20000.)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys

import jax

import planners
from hjepa import evaluate as evaluate_lib
from hjepa import splits
from hjepa import train as train_lib
from hjepa.demo import hardware
from hjepa.tasks import make

# name -> (planner, options, horizon); learned and oracle budgets.
LEARNED = {
    "mppi": (planners.mppi, dict(num_samples=256, iterations=4, temperature=0.03,
                                 noise_std=0.3, noise_decay=0.6), 16),
    # Tuned on seed 20000 (64 episodes, 2 CPU cores): these settings did best there as they
    # are (62/64, mean final distance 0.0120) against keep_elites=4 (60/64, 0.0178) and
    # num_samples=512, num_elites=32 (59/64, 0.0124, twice the calls).
    "cem": (planners.cem, dict(num_samples=256, num_elites=16, iterations=4, noise_std=0.3,
                               min_std=0.02), 16),
    "gd": (planners.gradient_descent, dict(iterations=20, num_candidates=16, learning_rate=0.1,
                                           noise_std=0.3), 16),
    "beam": (planners.beam_search, dict(beam_width=16, branching=16, iterations=1,
                                        noise_std=0.3), 16),
}
ORACLE = {
    "mppi": (planners.mppi, dict(num_samples=64, iterations=2, temperature=0.1, noise_std=0.3),
             12),
    # keep_elites=4 (iCEM: the 4 best elites are rescored in the next iteration and MPC step)
    # was chosen on the start/goal pairs of seed 20000 (16 episodes: 15/16, mean final
    # distance 0.0064, against 14/16, 0.0078 without), not on the reported seed 10000.
    "cem": (planners.cem, dict(num_samples=64, num_elites=8, iterations=2, noise_std=0.3,
                               min_std=0.02, keep_elites=4), 12),
    "gd": (planners.gradient_descent, dict(iterations=8, num_candidates=8, learning_rate=0.1,
                                           noise_std=0.3), 12),
    "beam": (planners.beam_search, dict(beam_width=8, branching=8, iterations=1,
                                        noise_std=0.3), 12),
}


def calls_per_step(name: str, options: dict, horizon: int) -> int:
    """Predictor (or physics) step evaluations per MPC step (a gradient counts as one).

    CEM's carried elites (`keep_elites`) are scored again in every iteration, so they count.
    """
    if name == "cem":
        population = options["num_samples"] + options.get("keep_elites", 0)
        return population * options["iterations"] * horizon
    if name == "mppi":
        return options["num_samples"] * options["iterations"] * horizon
    if name == "gd":
        return options["num_candidates"] * options["iterations"] * horizon
    return options["beam_width"] * options["branching"] * options["iterations"] * horizon


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a success rate."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run-dir", default=None, help="trained reacher run (learned rows)")
    parser.add_argument("--episodes", type=int, default=64)
    parser.add_argument("--oracle-episodes", type=int, default=64)
    parser.add_argument("--planners", default="mppi,cem,gd,beam")
    parser.add_argument("--models", default="learned,oracle")
    parser.add_argument("--json", default=None)
    parser.add_argument("--markdown", default=None)
    parser.add_argument("--split", choices=splits.SPLITS, default="test",
                        help="start/goal pairs: test (reported figures) or val (tuning)")
    parser.add_argument("--seed", type=int, default=None,
                        help="a custom set of start/goal pairs instead of --split")
    parser.add_argument("--override", default=None,
                        help="JSON dict merged into every selected planner's options (tuning)")
    parser.add_argument("--horizon", type=int, default=None, help="override the horizon")
    args = parser.parse_args(argv)
    if args.seed is None:
        args.seed = splits.seed(args.split)
    override = json.loads(args.override) if args.override else {}
    if not isinstance(override, dict):
        parser.error(f"--override: expected a JSON object, got {args.override!r}")
    task = make("reacher")
    names = args.planners.split(",")
    rows = []
    model_config = params = None
    if "learned" in args.models:
        if args.run_dir is None:
            parser.error("--run-dir is required for the learned rows")
        model_config, _, params = train_lib.load_run(args.run_dir, task="reacher")
    hw = hardware()
    for model in args.models.split(","):
        for name in names:
            planner, options, horizon = (LEARNED if model == "learned" else ORACLE)[name]
            options = {**options, **override}
            horizon = args.horizon or horizon
            n = args.episodes if model == "learned" else args.oracle_episodes
            result = evaluate_lib.evaluate(
                task, jax.random.key(args.seed), num_episodes=n,
                model_config=model_config if model == "learned" else None,
                params=params if model == "learned" else None,
                planner=planner, planner_options=options, horizon=horizon)
            successes = int(result.success.sum())
            low, high = wilson(successes, n)
            row = {"task": "reacher", "model": model, "planner": name, "horizon": horizon,
                   "seed": args.seed,
                   "options": options, "episodes": n, "success_rate": successes / n,
                   "success_ci95": [low, high],
                   "mean_final_distance": float(result.final_distance.mean()),
                   "ms_per_step_amortised": result.ms_per_step,
                   "calls_per_step": calls_per_step(name, options, horizon),
                   "compile_seconds": result.compile_seconds}
            rows.append(row)
            if args.json:  # after every row: a run cut short keeps what it measured
                _write_json(args.json, {"hardware": hw, "rows": rows})
            print(f"{model:8s} {name:5s} success {100 * row['success_rate']:5.1f}% "
                  f"[{100 * low:.0f}-{100 * high:.0f}] dist {row['mean_final_distance']:.4f} "
                  f"{row['ms_per_step_amortised']:.2f} ms/step compile "
                  f"{row['compile_seconds']:.1f}s", flush=True)
    out = {"hardware": hw, "rows": rows}
    table = markdown(out)
    print(table)
    if args.json:
        _write_json(args.json, out)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(table + "\n")
    return 0


def _write_json(path: str, out: dict) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path + ".tmp", "w") as f:
        json.dump(out, f, indent=2)
    os.replace(path + ".tmp", path)


def markdown(out: dict) -> str:
    hw = out["hardware"]
    lines = [
        f"Reacher, closed-loop MPC, 50 steps per episode; hardware: {hw['platform']} "
        f"({', '.join(sorted(set(hw['devices'])))}; host {hw['cpu']}, {hw['cpu_count']} cores), "
        f"jax {hw['versions'].get('jax')}. Start/goal pairs: seed "
        f"{', '.join(str(s) for s in sorted({r.get('seed', 10_000) for r in out['rows']}))}.",
        "",
        "| model | planner | budget | episodes | success (95% CI) | mean final dist | "
        "ms / step | calls / step | compile s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in out["rows"]:
        budget = ", ".join(f"{k}={v}" for k, v in r["options"].items()) + f", H={r['horizon']}"
        lo, hi = r["success_ci95"]
        lines.append(
            f"| {r['model']} | {r['planner']} | {budget} | {r['episodes']} | "
            f"{100 * r['success_rate']:.1f}% ({100 * lo:.0f}–{100 * hi:.0f}) | "
            f"{r['mean_final_distance']:.4f} | {r['ms_per_step_amortised']:.2f} | "
            f"{r['calls_per_step']} | {r['compile_seconds']:.1f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
