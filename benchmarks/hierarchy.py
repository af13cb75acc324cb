"""Hierarchical against flat planning with one learned two-level JEPA, at equal compute.

    python -m benchmarks.hierarchy [--tasks umaze,maze_medium] [--work DIR] [--episodes 64]
        [--json benchmarks/results/hierarchy_cpu.json]

For each task: collect a reward-free dataset (reused when present in --work), train a
two-level JEPA (`hjepa.hierarchy`, resumed when interrupted), then run closed-loop MPC on
held-out start/goal pairs (seed 10000) with

- `flat`: MPPI on level 1 alone (the hierarchy's own flat model), at two horizons;
- `hierarchical`: MPPI on macro-actions at level 2, whose first predicted latent is the goal
  of MPPI on primitive actions at level 1 (`planners.hierarchical_mpc`);

every method with the same number of predictor calls per environment step (samples × horizon
× iterations, summed over levels). Each row: success with a 95% Wilson interval, mean final
distance, predictor calls and ms per environment step (amortised over the batch), training
time, dataset size, hardware. Rows are written to the JSON as each finishes (a rerun replaces
rows with the same key, keeps the others) and to a Markdown table beside it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys

import jax

import planners
from benchmarks.reacher_planners import wilson
from benchmarks.split_args import add_split_arguments, results_path
from hjepa import critic as critic_lib
from hjepa import data as data_lib
from hjepa import evaluate as evaluate_lib
from hjepa import hierarchy, pipeline, provenance, splits
from hjepa import io as hjepa_io
from hjepa import train as train_lib
from hjepa.model import ModelConfig
from hjepa.sysinfo import describe, hardware
from hjepa.tasks.ant_maze import WaypointPolicy


@dataclasses.dataclass(frozen=True)
class Method:
    """One planning method: MPPI per level, top first (one level: flat). With `critic`, the
    learned steps to go (`hjepa.critic`) are every level's cost instead of the latent
    distance."""

    name: str
    horizons: tuple[int, ...]
    samples: tuple[int, ...]
    iterations: tuple[int, ...]
    noise_std: tuple[float, ...]
    temperature: float = 0.03
    terminal_weights: tuple[float, ...] = (4.0,)
    critic: bool = False
    critic_levels: tuple[int, ...] | None = None  # levels (1-based) the critic costs; all
    snap_radius: float | None = None
    noise_decay: tuple[float, ...] | None = None

    @property
    def calls_per_step(self) -> int:
        return hierarchy.predictor_calls_per_step(self.horizons, self.samples, self.iterations)

    def options(self) -> tuple[dict, ...]:
        decays = self.noise_decay or (1.0,) * len(self.samples)
        return tuple(dict(num_samples=s, iterations=i, noise_std=n, temperature=self.temperature,
                          noise_decay=d)
                     for s, i, n, d in zip(self.samples, self.iterations, self.noise_std, decays,
                                           strict=True))


@dataclasses.dataclass(frozen=True)
class Spec:
    task: str
    collect: data_lib.CollectConfig
    model: hierarchy.HierarchyConfig
    train: train_lib.TrainConfig
    methods: tuple[Method, ...]
    critic: critic_lib.CriticConfig = critic_lib.CriticConfig()


MAZE_BASE = dict(latent_size=16, encoder_hidden=(128, 128), predictor_hidden=(128, 128))
MAZE_LEVEL = hierarchy.LevelConfig(chunk=8, macro_size=2, predictor_hidden=(128, 128),
                                   chunk_hidden=(128, 128))
# 8192 predictor calls per environment step for every method (+ 8 for the subgoal rollout);
# the critic's calls (two embeddings per cost) come on top and are reported as ms per step.
# Level 1 refines its noise (decay 0.5 per iteration) so that the executed action settles;
# the top level explores widely (noise 1.0 in the macro box). Subgoals within latent distance
# 1.0 of the goal (about 0.13 of the arena's side for these models) snap to the goal.
MAZE_METHODS = (
    Method("flat H16", (16,), (128,), (4,), (0.6,), noise_decay=(0.5,)),
    Method("flat H32", (32,), (64,), (4,), (0.6,), noise_decay=(0.5,)),
    Method("hierarchical", (8, 8), (128, 128), (4, 4), (1.0, 0.6), terminal_weights=(4.0, 4.0),
           snap_radius=1.0, noise_decay=(1.0, 0.5)),
    Method("flat H16 + critic", (16,), (128,), (4,), (0.6,), critic=True, noise_decay=(0.5,)),
    Method("hierarchical + critic at level 2", (8, 8), (128, 128), (4, 4), (1.0, 0.6),
           terminal_weights=(4.0, 4.0), critic=True, critic_levels=(2,), snap_radius=1.0,
           noise_decay=(1.0, 0.5)),
)


def _spec(task: str, episodes: int, length: int) -> Spec:
    collect = data_lib.CollectConfig(task=task, obs="state", num_episodes=episodes,
                                     episode_length=length, episodes_per_shard=1000)
    base = ModelConfig(obs_shape=(2,), action_size=2, **MAZE_BASE)
    return Spec(task, collect, hierarchy.HierarchyConfig(base, (MAZE_LEVEL,)),
                train_lib.TrainConfig(steps=3000, batch_size=128, window=32, log_every=250),
                MAZE_METHODS)


# Brax's ant (8 torques, state observation [31]) in the U maze, 500-step episodes. Its
# reward-free data come from the waypoint gait controller (random torques barely move an
# ant). Level 2 sees 8 steps (0.4 s, two thirds of a gait cycle) as a 4-d macro-action.
ANT_LEVEL = hierarchy.LevelConfig(chunk=8, macro_size=4, predictor_hidden=(256, 256),
                                  chunk_hidden=(256, 256))
ANT_METHODS = tuple(m for m in MAZE_METHODS if m.name != "flat H32")  # 500-step episodes


def _ant_spec(episodes: int) -> Spec:
    collect = data_lib.CollectConfig(task="ant_umaze", obs="state", num_episodes=episodes,
                                     episode_length=500, episodes_per_shard=250,
                                     policy=WaypointPolicy())
    base = ModelConfig(obs_shape=(31,), action_size=8, latent_size=32,
                       encoder_hidden=(256, 256), predictor_hidden=(256, 256))
    return Spec("ant_umaze", collect, hierarchy.HierarchyConfig(base, (ANT_LEVEL,)),
                train_lib.TrainConfig(steps=3000, batch_size=128, window=32, log_every=250),
                ANT_METHODS, critic_lib.CriticConfig(max_steps=300.0, window=32))


SPECS = {
    "umaze": _spec("umaze", 2000, 200),
    "maze_medium": _spec("maze_medium", 2000, 200),
    "ant_umaze": _ant_spec(1000),
}


def _write(rows: list[dict], path: str, meta: dict) -> None:
    data_lib.atomic_write_json(path, {"meta": meta, "rows": rows})
    lines = [
        "# Hierarchical against flat planning, one learned two-level JEPA per task",
        "",
        f"Machine: {describe(meta['hardware'])} at the start (shared with other jobs: "
        "ms / step is noisy, compare within a row group). Versions: "
        + ", ".join(f"{k} {v}" for k, v in meta["hardware"].get("versions", {}).items())
        + ".",
        "",
        "64 held-out start/goal pairs per row ("
        + ", ".join(sorted({f"{r['pairs']['split']} pairs, seed {r['pairs']['seed']}"
                            if "pairs" in r else "seed 10000 (now the val pairs)"
                            for r in rows}))
        + "; the same pairs for every method of a task). Predictor calls per environment "
        "step: samples x horizon x iterations summed "
        "over levels, plus the 8 calls of the subgoal rollout; the critic's embeddings (2 per "
        "cost) are not counted and show in ms / step. Train s: world-model optimiser time "
        "(+ the critic's training for + critic rows).",
        "",
        f"Reproduce every row: `{reproduce_command(rows)}` (datasets, runs and critics are "
        "reused from --work when present). Load average at the start of each task's rows: "
        + (", ".join(f"{task} {load:.1f}" for task, load in _row_loads(rows).items())
           or "not recorded") + ".",
        "",
        "| task | method | success | 95% CI | mean final dist | predictor calls / step "
        "| ms / step | train s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['task']} | {r['method']} | {100 * r['success_rate']:.1f}% "
            f"({r['successes']}/{r['episodes']}) | {100 * r['ci'][0]:.0f}–{100 * r['ci'][1]:.0f}% "
            f"| {r['mean_final_distance']:.3f} | {r['predictor_calls_per_step']} "
            f"| {r['ms_per_step_amortised']:.2f} | {r['train_seconds']:.0f} |")
    lines += ["", "Methods (MPPI at every level; top level first):", ""]
    methods = {}
    measured = {(r["task"], r["method"]) for r in rows}
    for task, spec in SPECS.items():  # the methods of the table's rows, in the specs' order
        for method in spec.methods:
            if (task, method.name) in measured:
                methods.setdefault((task == "ant_umaze", method.name), method)
    for (ant, _), method in methods.items():
        prefix = "ant_umaze " if ant else ""
        lines.append(f"- {prefix}{method.name}: horizons {method.horizons}, "
                     f"samples {method.samples}, "
                     f"iterations {method.iterations}, noise {method.noise_std}, noise decay "
                     f"{method.noise_decay}, snap radius {method.snap_radius}, critic: "
                     f"{_critic_levels_text(method)}")
    data_lib.atomic_write_bytes(os.path.splitext(path)[0] + ".md",
                                ("\n".join(lines) + "\n").encode())


def reproduce_command(rows: list[dict]) -> str:
    """The one command that measures every task in `rows` again."""
    tasks = list(dict.fromkeys(r["task"] for r in rows))
    episodes = sorted({r["episodes"] for r in rows})
    return (f"python -m benchmarks.hierarchy --tasks {','.join(tasks)}"
            + (f" --episodes {episodes[0]}" if len(episodes) == 1 else ""))


def _row_loads(rows: list[dict]) -> dict[str, float]:
    """Task -> the 1-minute load average when its first row started (where recorded)."""
    loads = {}
    for r in rows:
        if r.get("load_average") is not None:
            loads.setdefault(r["task"], r["load_average"])
    return loads


def _critic_levels_text(method: Method) -> str:
    if not method.critic:
        return "none"
    return "every level" if method.critic_levels is None else f"levels {method.critic_levels}"


def _train(spec: Spec, work: str) -> tuple[object, float, int]:
    data_dir = os.path.join(work, "data", spec.task)
    run_dir = os.path.join(work, "runs", spec.task)
    trained = pipeline.train_world_model(spec.collect, spec.model, spec.train,
                                         data_path=data_dir, run_dir=run_dir, progress=False)
    dataset, state = trained.dataset, trained.state
    critic_params, critic_seconds = _critic(spec, run_dir, dataset, state.params)
    return (state.params, critic_params, train_seconds(run_dir), critic_seconds,
            dataset.num_episodes * dataset.episode_length)


def _critic(spec: Spec, run_dir: str, dataset, model_params) -> tuple[object, float]:
    """The critic trained on the run's latents; cached in the run directory with its config
    and training time (retrained when the config differs)."""

    def train():
        latents = critic_lib.encode_dataset(hierarchy.Encoder(spec.model), model_params, dataset)
        params, history = train_lib.fit_critic(spec.critic, latents)
        print(json.dumps({"critic": history[-1]}), flush=True)
        return params, history

    return critic_lib.fit_cached(spec.critic, run_dir, spec.model.latent_size, train)


def train_seconds(run_dir: str) -> float:
    """Training wall time from the run's metrics (chunk steps / steps per second), so a
    resumed or reused run reports the time its steps took (`hjepa.io.train_seconds`)."""
    return hjepa_io.train_seconds(run_dir) or 0.0


def evaluate_method(spec: Spec, method: Method, params, critic_params=None, *, episodes: int,
                    seed: int = splits.seed("test")) -> evaluate_lib.EvalResult:
    """Closed-loop success of one method on `episodes` held-out pairs of `spec.task`: a
    one-level method plans with the hierarchy's level 1 alone."""
    task = spec.collect.make_task()
    config = spec.model
    if len(method.horizons) == 1:
        config, params = hierarchy.flat_view(config, params)
    critic = (spec.critic, critic_params) if method.critic else None
    return evaluate_lib.evaluate_hierarchy(task, jax.random.key(seed), config, params,
                              num_episodes=episodes, horizons=method.horizons,
                              planner=planners.mppi, planner_options=method.options(),
                              terminal_weights=method.terminal_weights, critic=critic,
                              critic_levels=method.critic_levels,
                              snap_radius=method.snap_radius)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", default="umaze,maze_medium")
    parser.add_argument("--methods", default=None, help="comma-separated method names")
    parser.add_argument("--work", default="/tmp/hjepa-hierarchy")
    parser.add_argument("--episodes", type=int, default=64)
    add_split_arguments(parser, "hierarchy")
    args = parser.parse_args(argv)
    args.json = results_path(args, "hierarchy")
    meta = {"hardware": hardware(), "jax": jax.__version__,
            "command": "python -m benchmarks.hierarchy " + " ".join(argv or sys.argv[1:])}
    rows = []
    if os.path.exists(args.json):
        with open(args.json) as f:
            rows = json.load(f)["rows"]
    for name in args.tasks.split(","):
        spec = SPECS[name]
        params, critic_params, seconds, critic_seconds, transitions = _train(spec, args.work)
        for method in spec.methods:
            if args.methods and method.name not in args.methods.split(","):
                continue
            load = (hardware()["load_average"] or [None])[0]
            result = evaluate_method(spec, method, params, critic_params, episodes=args.episodes,
                                     seed=splits.seed(args.split))
            successes = int(result.success.sum())
            row = {"task": name, "method": method.name, **result.summary(),
                   "successes": successes, "ci": wilson(successes, args.episodes),
                   "predictor_calls_per_step": method.calls_per_step,
                   "horizons": method.horizons, "samples": method.samples,
                   "iterations": method.iterations, "critic": method.critic,
                   "train_seconds": seconds + (critic_seconds if method.critic else 0.0),
                   "train_steps": spec.train.steps, "dataset_transitions": transitions,
                   "load_average": load, "command": meta["command"],
                   "pairs": splits.describe(args.split, splits.seed(args.split))}
            row["provenance"] = provenance.record(
                command=meta["command"],
                configs={"model": dataclasses.asdict(spec.model),
                         "train": spec.train.to_dict(), "method": dataclasses.asdict(method),
                         "critic": dataclasses.asdict(spec.critic) if method.critic else None},
                pairs={**row["pairs"], "episodes": args.episodes})
            print(json.dumps({k: row[k] for k in ("task", "method", "success_rate",
                                                  "mean_final_distance",
                                                  "ms_per_step_amortised")}), flush=True)
            rows = [r for r in rows if (r["task"], r["method"]) != (name, method.name)] + [row]
            _write(rows, args.json, meta)
    return 0


if __name__ == "__main__":
    sys.exit(main())
