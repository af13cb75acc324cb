"""The main job end to end: collect reward-free data, train the JEPA, plan to held-out goals."""

from __future__ import annotations

import dataclasses
import os
import time

import jax

from hjepa import data as data_lib
from hjepa import evaluate as evaluate_lib
from hjepa import io as hjepa_io
from hjepa import ownership, pipeline, provenance, splits
from hjepa import train as train_lib
from hjepa.configs import ModelConfig, PlannerConfig
from hjepa.sysinfo import hardware  # noqa: F401  (re-exported: results files use it)
from hjepa.tasks import make


@dataclasses.dataclass(frozen=True)
class DemoConfig:
    """Sizes of the demo. The defaults aim at well under 6 minutes on 2 CPU cores.

    The learned model's MPPI budget (256 samples x horizon 16 x 2 iterations) and training
    length were chosen on the `val` pairs by `python -m benchmarks.demo_budget`
    (benchmarks/results/demo_budget_val_cpu.json): the cheapest setting whose `val` success
    was at least the full budget's (4 iterations); the demo reports the `test` pairs.

    The oracle steps real physics, which costs far more per predicted step on a CPU than the
    learned model (about 180 ms per MPC step of one episode on 2 cores), so it runs on the
    first 4 of the 64 pairs with a smaller MPPI budget: enough to show that the task is
    solvable and what planning on the true dynamics costs, while the time goes to the
    learned model the user came for.
    """

    task: str = "reacher"
    seed: int = 0
    collect: data_lib.CollectConfig = data_lib.CollectConfig(num_episodes=2000, episode_length=50)
    latent_size: int = 32
    hidden: int = 256
    train: train_lib.TrainConfig = train_lib.TrainConfig(steps=3000, window=8,
                                                         checkpoint_every=1000, log_every=250)
    eval_episodes: int = 64
    planner: PlannerConfig = PlannerConfig().replace(iterations=2)
    oracle_episodes: int = 4
    oracle_planner: PlannerConfig = PlannerConfig().replace(horizon=12, num_samples=64,
                                                            iterations=2, temperature=0.1,
                                                            noise_decay=1.0)

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), "planner": self.planner.to_dict(),
                "oracle_planner": self.oracle_planner.to_dict()}


QUICK = DemoConfig(
    collect=data_lib.CollectConfig(num_episodes=200, episode_length=50, episodes_per_shard=100),
    train=train_lib.TrainConfig(steps=200, window=8, checkpoint_every=100, log_every=50),
    eval_episodes=16,
    oracle_episodes=2,
    planner=PlannerConfig().replace(horizon=8, num_samples=32, iterations=2),
    oracle_planner=PlannerConfig().replace(horizon=8, num_samples=16, iterations=1),
)


def run_demo(config: DemoConfig, out_dir: str, *, overwrite: bool = False,
             progress: bool = True, log=print) -> dict:
    """Collects, trains and evaluates; returns (and writes to out_dir/results.json) the results.

    Re-running with the same config reuses the dataset and resumes or reuses the training run.
    """
    hjepa_io.check_writable_directory(out_dir, name="out")
    if os.path.isdir(out_dir) and ownership.unknown_entries(out_dir, "demo"):
        ownership.check_removable(out_dir, "demo", name="out")  # refuses, naming the files
    with ownership.locked(out_dir, name="out"):
        ownership.mark(out_dir, "demo")
        return _run_demo_locked(config, out_dir, overwrite=overwrite, progress=progress, log=log)


def _run_demo_locked(config: DemoConfig, out_dir: str, *, overwrite: bool, progress: bool,
                     log) -> dict:
    """`run_demo`'s work, with the lock on `out_dir` held."""
    t_start = time.perf_counter()
    task = make(config.task)
    data_path = os.path.join(out_dir, "data")
    run_dir = os.path.join(out_dir, "run")

    log(f"[1/4] collecting {config.collect.num_episodes} reward-free episodes of "
        f"{config.collect.episode_length} steps on {config.task} -> {data_path}, then "
        f"[2/4] training the JEPA world model ({config.train.steps} steps) -> {run_dir}")
    model_config = ModelConfig(
        obs_shape=tuple(task.obs_shape), action_size=task.action_size,
        latent_size=config.latent_size, encoder_hidden=(config.hidden, config.hidden),
        predictor_hidden=(config.hidden, config.hidden),
    )
    trained = pipeline.train_world_model(config.collect, model_config, config.train,
                                         data_path=data_path, run_dir=run_dir,
                                         overwrite=overwrite, progress=progress)
    collect_seconds, train_seconds = trained.collect_seconds, trained.train_seconds
    last = hjepa_io.last_metrics(run_dir)

    pairs_seed = splits.seed("test") + config.seed  # test pairs: never used for a choice
    eval_key = jax.random.key(pairs_seed)
    log(f"[3/4] planning with the learned model: MPPI on {config.eval_episodes} held-out goals")
    t0 = time.perf_counter()
    learned = pipeline.evaluate_learned(task, eval_key, model_config, trained.params,
                                        config.planner, num_episodes=config.eval_episodes)
    learned_seconds = time.perf_counter() - t0
    random = evaluate_lib.random_actions(task, eval_key, num_episodes=config.eval_episodes)
    log(f"[4/4] planning with the oracle (true physics): MPPI on {config.oracle_episodes} of "
        "the same goals, smaller budget")
    t0 = time.perf_counter()
    oracle = pipeline.evaluate_oracle(task, eval_key, config.oracle_planner,
                                      num_episodes=config.oracle_episodes)
    oracle_seconds = time.perf_counter() - t0
    pairs = {**splits.describe("test" if config.seed == 0 else None, pairs_seed),
             "episodes": {"learned": config.eval_episodes, "oracle": config.oracle_episodes}}
    results = {
        "task": config.task,
        "config": config.to_dict(),
        "pairs": pairs,
        "learned": learned.summary(),
        "random": random.summary(),
        "oracle": oracle.summary(),
        "training": {"seconds": train_seconds, "final_metrics": last},
        "collect_seconds": collect_seconds,
        "phases": {"collect": collect_seconds, "train": train_seconds,
                   "plan_learned": learned_seconds, "plan_oracle": oracle_seconds},
        "total_seconds": time.perf_counter() - t_start,
        "hardware": hardware(),
        "provenance": provenance.record(configs={"demo": config.to_dict()}, pairs=pairs),
    }
    path = os.path.join(out_dir, "results.json")
    data_lib.atomic_write_json(path, results)
    return results


def format_results(results: dict) -> str:
    """A short table of demo results."""
    rows = [("model", "episodes", "success", "mean final dist", "ms / MPC step", "MPPI budget")]
    cfg = results["config"]
    for name, key, planner in (("learned JEPA", "learned", "planner"),
                               ("random actions", "random", None),
                               ("oracle (physics)", "oracle", "oracle_planner")):
        r = results[key]
        p = cfg[planner] if planner else None
        budget = (f"{p['options']['num_samples']} samples x H{p['horizon']} x "
                  f"{p['options']['iterations']} it") if p else "-"
        rows.append((name, str(r["episodes"]), f"{100 * r['success_rate']:.1f}%",
                     f"{r['mean_final_distance']:.4f}", f"{r['ms_per_step_amortised']:.2f}",
                     budget))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    hw = results["hardware"]
    pairs = results["pairs"]
    lines.append(f"({pairs['split'] or 'custom'} start/goal pairs, seed {pairs['seed']}; "
                 f"ms / MPC step: wall time of the batched episodes / (episodes x steps); "
                 f"{hw['platform']}: {hw['cpu']}, {hw['cpu_count']} cores)")
    phases = results["phases"]
    lines.append(f"time: collect {phases['collect']:.0f} s, train {phases['train']:.0f} s, "
                 f"plan learned {phases['plan_learned']:.0f} s, plan oracle "
                 f"{phases['plan_oracle']:.0f} s; total {results['total_seconds']:.0f} s")
    return "\n".join(lines)
