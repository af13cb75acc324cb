"""Collect or load → fit → evaluate: the one pipeline that the demo, the CLI and the benchmarks
use.

    trained = pipeline.train_world_model(collect_config, model_config, train_config,
                                         data_path="data/reacher", run_dir="runs/reacher")
    result = pipeline.evaluate_learned(task, key, trained.model_config, trained.params,
                                       PlannerConfig(), num_episodes=64)
    oracle = pipeline.evaluate_oracle(task, key, PlannerConfig(), num_episodes=8)

Every step is the library's own (`hjepa.data.collect_or_load`, `hjepa.train.fit`,
`hjepa.evaluate.evaluate` / `evaluate_hierarchy`), so a run of the pipeline resumes and
reuses what is on disk exactly as those do, and a `PlannerConfig` means the same planning
wherever it is used.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

import jax

import planners
from hjepa import data as data_lib
from hjepa import evaluate as evaluate_lib
from hjepa import train as train_lib
from hjepa import world_model
from hjepa.configs import PlannerConfig
from hjepa.tasks import Task

PyTree = Any


@dataclasses.dataclass(frozen=True)
class Trained:
    """A world model trained by `train_world_model`, with what it took."""

    dataset: data_lib.Dataset
    model_config: Any
    state: train_lib.TrainState
    run_dir: str
    collect_seconds: float  # collecting (or loading) the dataset
    train_seconds: float  # fitting (or resuming, or loading a finished run)

    @property
    def params(self) -> PyTree:
        return self.state.params


def train_world_model(collect: data_lib.CollectConfig, model_config, train_config, *,
                      data_path: str, run_dir: str, overwrite: bool = False,
                      progress: bool = True, report: Callable | None = None,
                      mesh: jax.sharding.Mesh | None = None) -> Trained:
    """Collects the dataset at `data_path` (or loads it when it holds `collect`'s data), then
    fits the world model into `run_dir` (resuming, or loading a finished run).

    Raises:
      ValueError: as `hjepa.data.collect_or_load` and `hjepa.train.fit`.
    """
    t0 = time.perf_counter()
    dataset = data_lib.collect_or_load(collect, data_path, overwrite=overwrite,
                                       progress=progress)
    collect_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    state = train_lib.fit(model_config, train_config, dataset, run_dir, overwrite=overwrite,
                          progress=progress, report=report, mesh=mesh)
    return Trained(dataset, model_config, state, run_dir, collect_seconds,
                   time.perf_counter() - t0)


def evaluate_learned(task: Task, key: jax.Array, model_config, params: PyTree,
                     planner: PlannerConfig, *, num_episodes: int,
                     critic: tuple[Any, PyTree] | None = None,
                     mesh: jax.sharding.Mesh | None = None,
                     record: Callable | None = None,
                     policy: tuple[Callable, PyTree] | None = None,
                     policy_alone: bool = False) -> evaluate_lib.EvalResult:
    """Closed-loop planning with a learned world model as `planner` says: a flat model with
    `planner.planner` over `planner.horizon` steps; a hierarchy with MPPI at every level
    (`high_horizon` macro-actions and `high_options` above, `horizon` and `options` at level
    1, `snap_radius`).

    `policy`, `(hjepa.policy.Act, params)` (`hjepa.distill`): the flat planner's proposal, or
    with `policy_alone` the only actor (mode 1, `planners.policy_only`).

    Raises:
      ValueError: a planner a hierarchy cannot plan with, or a critic for a hierarchy.
    """
    planner.validate()
    levels = world_model.of(model_config).num_levels
    if policy_alone and policy is None:
        raise ValueError("policy_alone: acting with the policy alone needs a policy")
    if levels == 1:
        function, options = planner.function(), planner.kwargs()
        if policy_alone:
            function, options = planners.policy_only, {}
        return evaluate_lib.evaluate(
            task, key, num_episodes=num_episodes, model_config=model_config, params=params,
            planner=function, planner_options=options, horizon=planner.horizon, mesh=mesh,
            record=record, critic=critic, policy=policy)
    if policy is not None:
        raise ValueError("policy: a distilled policy acts on a flat model (a hierarchy's level "
                         "1: plan it flat)")
    if planner.planner != "mppi":
        raise ValueError(f"planner: hierarchical models plan with mppi at every level, got "
                         f"{planner.planner!r}")
    if critic is not None:
        raise ValueError("critic: plans flat models (a hierarchy's critic comes from "
                         "benchmarks.hierarchy)")
    return evaluate_lib.evaluate_hierarchy(
        task, key, model_config, params, num_episodes=num_episodes,
        horizons=(planner.high_horizon,) * (levels - 1) + (planner.horizon,),
        planner_options=(planner.high_kwargs(),) * (levels - 1) + (planner.kwargs(),),
        snap_radius=planner.snap_radius, mesh=mesh, record=record)


def evaluate_oracle(task: Task, key: jax.Array, planner: PlannerConfig, *, num_episodes: int,
                    mesh: jax.sharding.Mesh | None = None,
                    record: Callable | None = None) -> evaluate_lib.EvalResult:
    """Closed-loop planning through the task's true physics as `planner` says."""
    planner.validate()
    return evaluate_lib.evaluate(task, key, num_episodes=num_episodes,
                                 planner=planner.function(), planner_options=planner.kwargs(),
                                 horizon=planner.horizon, mesh=mesh, record=record)
