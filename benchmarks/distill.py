"""Mode 1 from mode 2: the planner alone, the distilled policy alone, and the planner with
the policy as a proposal, on the same start/goal pairs, against network calls per step.

    python -m benchmarks.distill --task reacher --run-dir hjepa-demo/run --split val
    python -m benchmarks.distill --task two_rooms --pretrained two_rooms --split test

The run's policy is distilled first (`hjepa.distill`, with the planner the run plans with)
unless the run already holds one of the same configuration; a shipped run (`--pretrained`) is
copied into `--work` first. Then every row plans `--episodes` pairs of `--split`:

- `planner alone`: the planner at its budget (`--samples/--horizon/--iterations`);
- `policy alone`: one policy call per step (mode 1, `planners.policy_only`);
- `prior NxP xI`: MPPI with N own samples and P policy rollouts per iteration, I iterations,
  warm-started from the policy (`planners.proposal`), one row per `--prior-budgets` entry;
- `planner alone N xI`: the same N and I without the policy, to see what the prior adds.

Network calls per step count every predictor and policy call of a plan (the encoder's one
call a step, the same for every row, is left out): MPPI alone I*N*H + H (the final mean is
scored once more); with the policy 3H (its rollout and the warm start's cost) + I*(N*H + 2*P*H)
+ H; the policy alone 1. Each row records its success with a 95% Wilson interval, ms per step
(amortised over the batched episodes, all rows in the same process), the ratios of calls and
time to the `planner alone` row, and its provenance. Writes
`benchmarks/results/distill_<split>_cpu.json` (rows of other tasks kept) and a `.md` beside it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import sys
import time

import planners
from hjepa import distill, pretrained, provenance, splits, stats, sysinfo, train
from hjepa import evaluate as evaluate_lib
from hjepa import policy as policy_lib
from hjepa.configs import PlannerConfig, PolicyConfig
from hjepa.io import atomic_write_bytes, atomic_write_json
from hjepa.tasks import make

HERE = os.path.dirname(os.path.abspath(__file__))


def calls_per_step(planner: PlannerConfig, proposal_samples: int | None) -> int:
    """Predictor and policy calls of one MPPI plan (module docstring); None: no policy."""
    options = planner.kwargs()
    n, i, h = options["num_samples"], options["iterations"], planner.horizon
    if proposal_samples is None:
        return i * n * h + h
    return 3 * h + i * (n * h + 2 * proposal_samples * h) + h


def _row(name: str, result, calls: int, planner: PlannerConfig | None) -> dict:
    successes = int(result.success.sum())
    return {"method": name, "successes": successes, "episodes": result.num_episodes,
            "success_rate": result.success_rate,
            "success_ci95": list(stats.wilson(successes, result.num_episodes)),
            "mean_final_distance": float(result.final_distance.mean()),
            "calls_per_step": calls, "ms_per_step_amortised": result.ms_per_step,
            "compile_seconds": result.compile_seconds, "run_seconds": result.run_seconds,
            "planner": None if planner is None else dataclasses.asdict(planner)}


def _budgets(text: str) -> list[tuple[int, int, int]]:
    """"16x8x2,32x4x2" -> [(N, P, I), ...]."""
    budgets = []
    for item in text.split(","):
        parts = item.split("x")
        if len(parts) != 3 or not all(p.isdigit() and int(p) > 0 for p in parts[:1] + parts[2:]):
            raise ValueError(f"--prior-budgets: expected NxPxI items (e.g. 16x8x2), got {item!r}")
        budgets.append(tuple(int(p) for p in parts))
    return budgets


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", required=True)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--run-dir", help="a trained flat run (its policy is written there)")
    source.add_argument("--pretrained", help="a shipped run, copied into --work first")
    parser.add_argument("--work", default="/tmp/hjepa-distill")
    parser.add_argument("--split", choices=splits.SPLITS, default="test")
    parser.add_argument("--episodes", type=int, default=64)
    parser.add_argument("--samples", type=int, default=None, help="the planner alone: N")
    parser.add_argument("--horizon", type=int, default=None)
    parser.add_argument("--iterations", type=int, default=None)
    parser.add_argument("--noise-std", type=float, default=None)
    parser.add_argument("--prior-budgets", default="16x8x2,32x4x2")
    parser.add_argument("--prior-noise-std", type=float, default=0.1)
    parser.add_argument("--rounds", type=int, default=PolicyConfig.rounds)
    parser.add_argument("--distill-episodes", type=int, default=PolicyConfig.episodes)
    parser.add_argument("--steps", type=int, default=PolicyConfig.steps)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    budgets = _budgets(args.prior_budgets)

    planner = PlannerConfig().replace(iterations=2)  # the demo's planner
    run_dir = args.run_dir
    if args.pretrained is not None:
        planner = pretrained.PRETRAINED[args.pretrained].plan
        run_dir = os.path.join(args.work, args.pretrained)
        if not os.path.exists(run_dir):
            shutil.copytree(pretrained.path(args.pretrained), run_dir)
    planner = planner.replace(num_samples=args.samples, iterations=args.iterations,
                              noise_std=args.noise_std)
    if args.horizon is not None:
        planner = planner.replace(horizon=args.horizon)
    model_config, _, model_params = train.load_run(run_dir, task=args.task)
    task = make(args.task)
    config = PolicyConfig(rounds=args.rounds, episodes=args.distill_episodes, steps=args.steps)

    kept = distill.kept_record(run_dir, config, planner)
    distill_record = None if kept is None else {k: kept[k] for k in ("rounds", "seconds")}
    if distill_record is None:
        params, distill_record = distill.distill(task, model_config, model_params, planner,
                                                 config)
        distill.save(run_dir, config, planner, params, distill_record)
    _, policy_params = distill.load(run_dir, model_config.latent_size, task.action_size)
    policy = (policy_lib.Act.of(config, task.action_low, task.action_high), policy_params)
    print(f"{args.task}: distilled in {distill_record['seconds']:.0f} s", flush=True)

    key = splits.key(args.split)

    def run(planner_config, *, with_policy=False, alone=False):
        function, options = planner_config.function(), planner_config.kwargs()
        if alone:
            function, options = planners.policy_only, {}
        return evaluate_lib.evaluate(
            task, key, num_episodes=args.episodes, model_config=model_config,
            params=model_params, planner=function, planner_options=options,
            horizon=planner_config.horizon, policy=policy if (with_policy or alone) else None)

    rows = []

    def add(row):
        rows.append(row)
        print(f"  {row['method']}: {100 * row['success_rate']:.1f}% "
              f"({row['calls_per_step']} calls/step, {row['ms_per_step_amortised']:.2f} ms/step)",
              flush=True)

    add(_row("planner alone", run(planner), calls_per_step(planner, None), planner))
    add(_row("policy alone", run(planner, alone=True), 1, None))
    for n, p, i in budgets:
        small = planner.replace(num_samples=n, iterations=i)
        with_prior = small.replace(proposal_samples=p, proposal_noise_std=args.prior_noise_std)
        add(_row(f"prior {n}x{p}x{i}", run(with_prior, with_policy=True),
                 calls_per_step(small, p), with_prior))
        add(_row(f"planner alone {n}x{i}", run(small), calls_per_step(small, None), small))
    base = rows[0]
    for row in rows:
        row["calls_ratio"] = base["calls_per_step"] / row["calls_per_step"]
        row["time_ratio"] = base["ms_per_step_amortised"] / row["ms_per_step_amortised"]
        row["provenance"] = provenance.record(
            configs={"model": model_config.to_dict(), "policy": dataclasses.asdict(config),
                     "distill_planner": dataclasses.asdict(planner)},
            pairs={**splits.describe(args.split, splits.seed(args.split)),
                   "episodes": args.episodes})
    entry = {"task": args.task, "run_dir": run_dir, "pretrained": args.pretrained,
             "distill": distill_record, "rows": rows, "time": time.time()}

    path = args.json or os.path.join(HERE, "results", f"distill_{args.split}_cpu.json")
    tasks = {}
    if os.path.exists(path):
        with open(path) as f:
            tasks = {t["task"]: t for t in json.load(f)["tasks"]}
    tasks[args.task] = entry
    ordered = [tasks[name] for name in sorted(tasks)]
    atomic_write_json(path, {"format": "hjepa-distill", "split": args.split, "tasks": ordered})
    atomic_write_bytes(os.path.splitext(path)[0] + ".md", markdown(ordered, args.split).encode())
    return 0


def markdown(entries: list[dict], split: str) -> str:
    lines = [f"# Planner, policy and planner + policy prior on the `{split}` pairs "
             "(`python -m benchmarks.distill`)", "",
             "| task | method | success (95% CI) | calls / step | fewer calls | ms / step | "
             "less time |", "|---|---|---|---|---|---|---|"]
    for entry in entries:
        for r in entry["rows"]:
            low, high = r["success_ci95"]
            lines.append(f"| {entry['task']} | {r['method']} | {100 * r['success_rate']:.1f}% "
                         f"({100 * low:.0f}-{100 * high:.0f}) of {r['episodes']} | "
                         f"{r['calls_per_step']:,} | {r['calls_ratio']:.1f}x | "
                         f"{r['ms_per_step_amortised']:.2f} | {r['time_ratio']:.1f}x |")
    lines.append("")
    for entry in entries:
        p = entry["rows"][0]["provenance"]
        commit = provenance.commit_label(p)
        rounds = entry["distill"]["rounds"]
        lines.append(f"- {entry['task']}: distilled in {entry['distill']['seconds']:.0f} s "
                     f"({len(rounds)} rounds, {sum(r['labels'] for r in rounds)} planner "
                     f"decisions); measured at {commit}, {sysinfo.describe(p['hardware'])}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
