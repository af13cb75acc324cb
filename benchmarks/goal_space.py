"""Goals in a goal space: the flat learned planner toward a goal point (`hjepa.goal_space`)
against the latent distance to a goal observation, on the same start/goal pairs.

    python -m benchmarks.goal_space --task umaze --split test
    python -m benchmarks.goal_space --task ant_umaze --split test --episodes 32
    python -m benchmarks.goal_space --task pusher --split test --episodes 16 \
        --costs "latent distance,goal space: steps"

For a task of the suite (`benchmarks.task_suite.SPECS`, state observations): collect its
reward-free dataset with goal-space positions (reused when present), train its world model
(resumed when interrupted), train the goal-space model on the run's latents (`GOAL_SPACE`:
the critic's clock and reach per task, chosen on the data, not on start/goal pairs), then plan
the `--episodes` pairs of `--split` with the suite's planner for a learned cost three ways:

- `latent distance`: toward the goal observation's latent (the suite's `learned` row);
- `goal space: distance`: toward the goal point, the goal head's distance (a straight line);
- `goal space: steps`: toward the goal point, the goal-conditioned critic's steps to go.

Each row records success with a 95% Wilson interval, mean final distance, ms per MPC step
(amortised over the batched episodes), seconds per episode, training times and provenance.
Writes `benchmarks/results/goal_space_<split>_cpu.json` (rows of other tasks kept) and a `.md`
beside it.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import sys
import time

import planners
from benchmarks.hierarchy import train_seconds as run_train_seconds
from benchmarks.task_suite import SPECS
from hjepa import evaluate as evaluate_lib
from hjepa import goal_space, pipeline, provenance, splits, stats, sysinfo
from hjepa import model as model_lib
from hjepa import train as train_lib
from hjepa.configs import GoalSpaceConfig
from hjepa.io import atomic_write_bytes, atomic_write_json
from hjepa.model import ModelConfig

HERE = os.path.dirname(os.path.abspath(__file__))

# The goal-space model per task: its critic's clock (stride) puts an episode's length at
# about 50 strides, its window at a third of an episode, its reach at the longest way round.
GOAL_SPACE = {
    "umaze": GoalSpaceConfig(stride=4, window=16, max_steps=75.0, steps=2000),
    "two_rooms": GoalSpaceConfig(stride=2, window=16, max_steps=75.0, steps=2000),
    "ant_umaze": GoalSpaceConfig(stride=10, window=16, max_steps=60.0, steps=2000),
    "pusher": GoalSpaceConfig(stride=2, window=16, max_steps=50.0, steps=2000),
    "reacher": GoalSpaceConfig(stride=1, window=16, max_steps=50.0, steps=2000),
    "push_t": GoalSpaceConfig(stride=2, window=16, max_steps=50.0, steps=2000),
}
COSTS = ("latent distance", "goal space: distance", "goal space: steps")


def _row(method: str, result, seconds: dict) -> dict:
    successes = int(result.success.sum())
    return {"method": method, "successes": successes, "episodes": result.num_episodes,
            "success_rate": result.success_rate,
            "success_ci95": list(stats.wilson(successes, result.num_episodes)),
            "mean_final_distance": float(result.final_distance.mean()),
            "ms_per_step_amortised": result.ms_per_step,
            "seconds_per_episode": result.ms_per_step * result.num_steps / 1e3,
            "compile_seconds": result.compile_seconds, "run_seconds": result.run_seconds,
            **seconds}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", required=True, choices=sorted(GOAL_SPACE))
    parser.add_argument("--work", default="/tmp/hjepa-goal-space")
    parser.add_argument("--split", choices=splits.SPLITS, default="test")
    parser.add_argument("--episodes", type=int, default=64)
    parser.add_argument("--costs", default=",".join(COSTS),
                        help=f"comma-separated, of {list(COSTS)}")
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    costs = args.costs.split(",")
    unknown = [c for c in costs if c not in COSTS]
    if unknown:
        parser.error(f"--costs: expected items of {list(COSTS)}, got {unknown}")

    spec = SPECS[(args.task, "state")]
    planner = spec.critic_planner or spec.planner  # the suite's planner for a learned cost
    task = spec.collect.make_task()
    model_config = ModelConfig(obs_shape=tuple(task.obs_shape), action_size=task.action_size,
                               **spec.model)
    name = f"{args.task}_state"
    data_path = os.path.join(args.work, "data", name)
    run_dir = os.path.join(args.work, "runs", name)
    trained = pipeline.train_world_model(spec.collect, model_config, spec.train,
                                         data_path=data_path, run_dir=run_dir)
    params = trained.state.params
    seconds = {"collect_seconds": trained.collect_seconds,
               "train_seconds": run_train_seconds(run_dir)}
    config = GOAL_SPACE[args.task]
    kept = goal_space.kept_record(run_dir, config)  # ValueError for another configuration
    if kept is None:
        train_lib.fit_goal_space_for_run(
            config, functools.partial(model_lib.encode, model_config), params,
            trained.dataset, run_dir, log=print)
    gs_config, size, gs_params = goal_space.load(run_dir, model_config.latent_size)
    gs_record = goal_space.kept_record(run_dir, config)
    seconds["goal_space_train_seconds"] = gs_record["seconds"]

    episodes = min(args.episodes, spec.max_episodes or args.episodes)
    key = splits.key(args.split)
    rows = []
    for method in costs:
        critic = None
        if method != "latent distance":
            kind = method.split(": ")[1]
            critic = (goal_space.GoalSpaceCost(gs_config, size, kind), gs_params)
        print(f"{args.task}: {method} on {episodes} {args.split} pairs", flush=True)
        result = evaluate_lib.evaluate(
            task, key, num_episodes=episodes, model_config=model_config, params=params,
            planner=planners.mppi, planner_options=planner.kwargs(), horizon=planner.horizon,
            critic=critic)
        row = _row(method, result, seconds)
        row["provenance"] = provenance.record(
            configs={"collect": spec.collect.to_dict(), "model": model_config.to_dict(),
                     "train": spec.train.to_dict(), "planner": planner.to_dict(),
                     "goal_space": dataclasses.asdict(config)},
            pairs={**splits.describe(args.split, splits.seed(args.split)),
                   "episodes": episodes})
        rows.append(row)
        print(f"  {100 * row['success_rate']:.1f}% ({row['ms_per_step_amortised']:.2f} "
              "ms/step)", flush=True)

    path = args.json or os.path.join(HERE, "results", f"goal_space_{args.split}_cpu.json")
    tasks = {}
    if os.path.exists(path):
        with open(path) as f:
            tasks = {t["task"]: t for t in json.load(f)["tasks"]}
    tasks[args.task] = {"task": args.task, "planner": planner.to_dict(),
                        "goal_space": dataclasses.asdict(config), "rows": rows,
                        "time": time.time()}
    ordered = [tasks[n] for n in sorted(tasks)]
    atomic_write_json(path, {"format": "hjepa-goal-space", "split": args.split,
                             "tasks": ordered})
    atomic_write_bytes(os.path.splitext(path)[0] + ".md", markdown(ordered).encode())
    return 0


def markdown(entries: list[dict]) -> str:
    """The results as a Markdown table, then one line of provenance per task."""
    lines = ["| task | cost | planner | success (95% CI) | final distance | ms / step | "
             "s / episode | train s (model + goal space) |", "|---|---|---|---|---|---|---|---|"]
    for entry in entries:
        p = entry["planner"]
        options = p["options"]
        planner = f"MPPI {options['num_samples']} x H{p['horizon']} x {options['iterations']}"
        for r in entry["rows"]:
            low, high = r["success_ci95"]
            lines.append(
                f"| {entry['task']} | {r['method']} | {planner} | "
                f"{100 * r['success_rate']:.1f}% ({100 * low:.0f}-{100 * high:.0f}) of "
                f"{r['episodes']} | {r['mean_final_distance']:.3f} | "
                f"{r['ms_per_step_amortised']:.2f} | {r['seconds_per_episode']:.1f} | "
                f"{r['train_seconds']:.0f} + {r['goal_space_train_seconds']:.0f} |")
    lines.append("")
    for entry in entries:
        p = entry["rows"][0]["provenance"]
        commit = provenance.commit_label(p)
        g = entry["goal_space"]
        lines.append(f"- {entry['task']}: goal-space model stride {g['stride']}, window "
                     f"{g['window']}, max steps {g['max_steps']:g}, {g['steps']} steps; "
                     f"measured at {commit}, {sysinfo.describe(p['hardware'])}, "
                     f"{p['pairs']['split']} pairs (seed {p['pairs']['seed']}).")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
