"""Learned skills planned in a goal space (`hjepa.skills`) against flat planning on the same
start/goal pairs.

    python -m benchmarks.skills --task ant_umaze --split test
    python -m benchmarks.skills --task ant_umaze --split val --episodes 32 --work /tmp/w

For a task of `SKILLS`: collect the suite's reward-free dataset, train its world model and
its goal-space model exactly as `benchmarks.goal_space` does (same `--work` layout, so either
script reuses what the other made), learn the skills (`SKILLS`: chunk, skill size, bottleneck)
on the run's frozen latents, then plan the `--episodes` pairs of `--split` with MPPI over
skills (`PLANS`) toward each goal point, scored by the goal-space critic's steps to go, and
act with the skill decoder, replanning every `REPLAN_EVERY` steps from the last plan
(`hjepa plan --skills --goal-space steps`, `hjepa.evaluate.evaluate_skills`).

Each row records success with a 95% Wilson interval (the torso within reach of the goal at the
episode's end), the share of episodes within reach at some step and the median distance every
100 steps (arriving and staying apart), mean final distance, ms per step and
seconds per episode (amortised over the batched episodes), level-2 predictor calls per step,
training times and provenance. Writes `benchmarks/results/skills_<split>_cpu.json` (rows of
other tasks kept) and a `.md` beside it.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import sys
import time

import numpy as np

from benchmarks.goal_space import GOAL_SPACE
from benchmarks.goal_space import _row as goal_space_row
from benchmarks.hierarchy import train_seconds as run_train_seconds
from benchmarks.task_suite import SPECS
from hjepa import evaluate as evaluate_lib
from hjepa import goal_space, pipeline, provenance, skills, splits, sysinfo
from hjepa import model as model_lib
from hjepa import train as train_lib
from hjepa.configs import SkillsConfig
from hjepa.io import atomic_write_bytes, atomic_write_json
from hjepa.model import ModelConfig

HERE = os.path.dirname(os.path.abspath(__file__))

# Skills per task: a chunk of 12 steps (0.6 s, one cycle of the gait controller), 4 numbers
# per skill, a light bottleneck. Chosen on 16 val pairs against chunks of 8 (6 ahead) with
# KL weights 0.01 and 0.001 (closing note of the session; all within a few episodes).
SKILLS = {"ant_umaze": SkillsConfig(chunk=12, macro_size=4, kl_weight=0.01, steps=4000)}
# The plan over skills per task: 4 skills ahead (48 steps), 256 samples x 3 iterations.
PLANS = {"ant_umaze": dict(horizon=4, num_samples=256, iterations=3, temperature=0.03,
                           noise_std=1.0, noise_decay=0.7)}
# Steps between plans (every step: on val pairs, holding each skill for its chunk did worse).
REPLAN_EVERY = {"ant_umaze": 1}
COST = "steps"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", required=True, choices=sorted(SKILLS))
    parser.add_argument("--work", default="/tmp/hjepa-goal-space")
    parser.add_argument("--split", choices=splits.SPLITS, default="test")
    parser.add_argument("--episodes", type=int, default=64)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)

    spec = SPECS[(args.task, "state")]
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
    encode = functools.partial(model_lib.encode, model_config)
    gs_config = GOAL_SPACE[args.task]
    if goal_space.kept_record(run_dir, gs_config) is None:  # ValueError for another config
        train_lib.fit_goal_space_for_run(gs_config, encode, params, trained.dataset, run_dir,
                                         log=print)
    _, size, gs_params = goal_space.load(run_dir, model_config.latent_size)
    seconds["goal_space_train_seconds"] = goal_space.kept_record(run_dir, gs_config)["seconds"]
    config = SKILLS[args.task]
    if skills.kept_record(run_dir, config) is None:  # ValueError for another config
        train_lib.fit_skills_for_run(config, encode, params, trained.dataset, run_dir,
                                     task.action_low, task.action_high, log=print)
    _, skills_params = skills.load(run_dir, model_config.latent_size)
    record = skills.kept_record(run_dir, config)
    seconds["skills_train_seconds"] = record["seconds"]

    cost = goal_space.GoalSpaceCost(gs_config, size, COST)
    act = skills.Act(config, cost, **PLANS[args.task])
    key = splits.key(args.split)
    method = f"skills, goal space: {COST}"
    print(f"{args.task}: {method} on {args.episodes} {args.split} pairs", flush=True)
    replan_every = REPLAN_EVERY[args.task]
    result = evaluate_lib.evaluate_skills(task, key, model_config, params, act, skills_params,
                                          gs_params, num_episodes=args.episodes,
                                          replan_every=replan_every)
    row = goal_space_row(method, result, seconds)
    within = result.distances < task.success_threshold  # [E, T]
    row.update(predictor_calls_per_step=act.predictor_calls // replan_every,
               skills_final_metrics=record["history"][-1],
               reached_at_any_step=float(within.any(axis=1).mean()),
               median_distance_by_step={str(t): float(np.median(result.distances[:, t - 1]))
                                        for t in range(100, result.num_steps + 1, 100)})
    row["provenance"] = provenance.record(
        configs={"collect": spec.collect.to_dict(), "model": model_config.to_dict(),
                 "train": spec.train.to_dict(), "goal_space": dataclasses.asdict(gs_config),
                 "skills": dataclasses.asdict(config), "plan": PLANS[args.task],
                 "replan_every": replan_every},
        pairs={**splits.describe(args.split, splits.seed(args.split)),
               "episodes": args.episodes})
    print(f"  {100 * row['success_rate']:.1f}% ({row['ms_per_step_amortised']:.2f} ms/step)",
          flush=True)

    path = args.json or os.path.join(HERE, "results", f"skills_{args.split}_cpu.json")
    entries = {}
    if os.path.exists(path):
        with open(path) as f:
            entries = {t["task"]: t for t in json.load(f)["tasks"]}
    entries[args.task] = {"task": args.task, "skills": dataclasses.asdict(config),
                          "plan": {**PLANS[args.task], "replan_every": replan_every},
                          "rows": [row], "time": time.time()}
    ordered = [entries[n] for n in sorted(entries)]
    atomic_write_json(path, {"format": "hjepa-skills", "split": args.split, "tasks": ordered})
    atomic_write_bytes(os.path.splitext(path)[0] + ".md", markdown(ordered).encode())
    return 0


def markdown(entries: list[dict]) -> str:
    """The results as a Markdown table, then one line of provenance per task."""
    lines = ["| task | method | plan | success (95% CI) | within reach at some step | final "
             "distance | predictor calls / step | ms / step | s / episode | train s (model + "
             "goal space + skills) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for entry in entries:
        p, s = entry["plan"], entry["skills"]
        plan = (f"MPPI {p['num_samples']} x H{p['horizon']} skills of {s['chunk']} steps x "
                f"{p['iterations']}, every {p['replan_every']} step(s)")
        for r in entry["rows"]:
            low, high = r["success_ci95"]
            reached = ("-" if "reached_at_any_step" not in r
                       else f"{100 * r['reached_at_any_step']:.1f}%")
            lines.append(
                f"| {entry['task']} | {r['method']} | {plan} | "
                f"{100 * r['success_rate']:.1f}% ({100 * low:.0f}-{100 * high:.0f}) of "
                f"{r['episodes']} | {reached} | {r['mean_final_distance']:.3f} | "
                f"{r['predictor_calls_per_step']:,} | {r['ms_per_step_amortised']:.2f} | "
                f"{r['seconds_per_episode']:.1f} | {r['train_seconds']:.0f} + "
                f"{r['goal_space_train_seconds']:.0f} + {r['skills_train_seconds']:.0f} |")
    lines.append("")
    for entry in entries:
        p = entry["rows"][0]["provenance"]
        commit = provenance.commit_label(p)
        s = entry["skills"]
        lines.append(f"- {entry['task']}: skills of {s['chunk']} steps, size {s['macro_size']}, "
                     f"KL weight {s['kl_weight']:g}, {s['steps']} steps; measured at {commit}, "
                     f"{sysinfo.describe(p['hardware'])}, {p['pairs']['split']} pairs (seed "
                     f"{p['pairs']['seed']}).")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
