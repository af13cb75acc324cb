"""The benchmark suite: tasks x models x planners -> JSON, a Markdown table and PNG plots.

    python -m benchmarks --profile quick            # <= 20 minutes on 2 CPU cores
    python -m benchmarks --profile full             # sized for one GPU
    hjepa bench --profile quick                     # the same, from the command line

For every (task, observation kind) of the profile: collect a reward-free dataset and train
the JEPA (both reused or resumed from `--work`), then run closed-loop MPC episodes on
held-out start/goal pairs (the same pairs for every row) with every planner, through the
learned model and through the true physics (the oracle). Each row records success with a
95% Wilson interval, mean final distance, planning time per environment step, predictor
calls per environment step, training time, dataset size and seeds. The run records the
machine (`hjepa.sysinfo`), its load average and library versions.

Outputs in `--out` (default `benchmarks/results`), named `bench_<profile>_<platform>`:
`.json` (rewritten atomically after every row, so an interrupted run keeps what it
measured; `--resume` continues it), `.md` (the table, with published results in a separate,
quoted section), `_budget.png` (success against planning budget per planner) and
`_traces.png` (each planner's best cost against predictor calls within one plan,
`planners.Plan.trace`). An existing results file is never replaced without `--overwrite`.

Models are looked up in `MODELS` and planners in `PLANNERS`; `register_model` and
`register_planner` add more (the hierarchical JEPA and its planner plug in there).

How predictor calls are counted (per environment step, i.e. per plan): MPPI and CEM
samples x horizon x iterations; gradient descent candidates x horizon x iterations (a
forward step through the model; its backward pass, about twice the cost, is not counted);
beam search beam width x branching x horizon x rounds. For the oracle a "call" is one
physics step.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

import planners
from benchmarks import reacher_planners
from benchmarks.reacher_planners import wilson
from hjepa import data as data_lib
from hjepa import evaluate as evaluate_lib
from hjepa import io as hjepa_io
from hjepa import model as model_lib
from hjepa import pipeline, provenance, splits, sysinfo
from hjepa import train as train_lib
from hjepa.inspection import train_seconds_from_metrics
from hjepa.model import ModelConfig
from hjepa.tasks import Episode, Task

FORMAT = "hjepa-bench"

# --------------------------------------------------------------------------- planners


class PlannerEntry(NamedTuple):
    """A planner the suite can run.

    Attributes:
      fn: `(problem, init_actions [H, A], key, **options) -> planners.Plan`.
      calls_per_step: `(options, horizon) -> int`, predictor calls per plan.
      size_option: the option that `Budget.scaled` scales (samples, candidates, beam width).
    """

    fn: Callable
    calls_per_step: Callable[[dict, int], int]
    size_option: str


def _counter(name: str) -> Callable[[dict, int], int]:
    return lambda options, horizon: reacher_planners.calls_per_step(name, options, horizon)


PLANNERS: dict[str, PlannerEntry] = {
    "mppi": PlannerEntry(planners.mppi, _counter("mppi"), "num_samples"),
    "cem": PlannerEntry(planners.cem, _counter("cem"), "num_samples"),
    "gd": PlannerEntry(planners.gradient_descent, _counter("gd"), "num_candidates"),
    "beam": PlannerEntry(planners.beam_search, _counter("beam"), "beam_width"),
}


HIERARCHICAL_OPTIONS = ("high_horizon", "high_noise_std", "snap_radius")


def _hierarchical_calls(options: dict, horizon: int) -> int:
    """Two levels of MPPI (the same samples and iterations), plus the subgoal rollout."""
    from hjepa.hierarchy import predictor_calls_per_step

    high = options["high_horizon"]
    return predictor_calls_per_step((high, horizon), (options["num_samples"],) * 2,
                                    (options["iterations"],) * 2)


# "hierarchical": MPPI on macro-actions (horizon high_horizon, noise high_noise_std), whose
# first predicted latent is the goal of MPPI on primitive actions (`hjepa.hierarchy`); only
# the hierarchical model plans with it.
PLANNERS["hierarchical"] = PlannerEntry(planners.mppi, _hierarchical_calls, "num_samples")


def register_planner(name: str, entry: PlannerEntry) -> None:
    """Adds a planner to the suite (e.g. "hierarchical"); its name can then go in budgets."""
    PLANNERS[name] = entry


@dataclasses.dataclass(frozen=True)
class Budget:
    """One planner and its hyperparameters.

    Attributes:
      planner: a key of `PLANNERS`.
      options: keyword hyperparameters, as sorted (name, value) pairs (hashable).
      horizon: H, the length of the planned action sequence.
    """

    planner: str
    options: tuple[tuple[str, Any], ...]
    horizon: int

    @classmethod
    def of(cls, planner: str, horizon: int, **options) -> Budget:
        return cls(planner, tuple(sorted(options.items())), horizon)

    @property
    def kwargs(self) -> dict:
        return dict(self.options)

    def calls_per_step(self) -> int:
        return PLANNERS[self.planner].calls_per_step(self.kwargs, self.horizon)

    def scaled(self, factor: float) -> Budget:
        """The same planner with its size option (and CEM's elites) times `factor`, >= 2."""
        if factor == 1.0:
            return self
        options = self.kwargs
        size = PLANNERS[self.planner].size_option
        options[size] = max(2, int(round(options[size] * factor)))
        if "num_elites" in options:
            options["num_elites"] = max(2, min(options[size],
                                               int(round(options["num_elites"] * factor))))
        return Budget.of(self.planner, self.horizon, **options)

    def describe(self) -> str:
        """e.g. "256 samples x 4 it, H16"."""
        o = self.kwargs
        if self.planner == "mppi":
            text = f"{o['num_samples']} samples x {o['iterations']} it"
        elif self.planner == "cem":
            text = f"{o['num_samples']} samples ({o['num_elites']} elites) x {o['iterations']} it"
        elif self.planner == "gd":
            text = f"{o['num_candidates']} starts x {o['iterations']} steps"
        elif self.planner == "beam":
            text = f"width {o['beam_width']} x {o['branching']} branches x {o['iterations']} rounds"
        elif self.planner == "hierarchical":
            return (f"{o['num_samples']} samples x {o['iterations']} it per level, "
                    f"H{o['high_horizon']} macro + H{self.horizon}")
        else:
            text = ", ".join(f"{k}={v}" for k, v in self.options)
        return f"{text}, H{self.horizon}"

    def to_dict(self) -> dict:
        return {"planner": self.planner, "horizon": self.horizon, "options": self.kwargs}


# --------------------------------------------------------------------------- profiles


@dataclasses.dataclass(frozen=True)
class TaskSpec:
    """How one (task, observation kind) is collected, trained and planned.

    Attributes:
      task, obs: what `hjepa.tasks.make` takes.
      collect: the reward-free dataset (its seed is replaced by the profile's seed).
      model: `ModelConfig` fields other than obs_shape and action_size.
      train: training (its seed is replaced by the profile's seed).
      learned: one budget per planner for the learned model.
      oracle: one budget per planner for the oracle (true physics costs more per call).
      terminal_weight: weight of the terminal latent distance (learned model).
      hierarchy: the two-level JEPA of the "hierarchical" model, `hjepa.hierarchy.make_config`
        options (chunk, macro_size) plus its training `window`; empty: no hierarchical rows.
      hierarchical: budgets (planner "hierarchical") for the hierarchical model.
    """

    task: str
    obs: str
    collect: data_lib.CollectConfig
    model: tuple[tuple[str, Any], ...]
    train: train_lib.TrainConfig
    learned: tuple[Budget, ...]
    oracle: tuple[Budget, ...]
    terminal_weight: float = 4.0
    hierarchy: tuple[tuple[str, Any], ...] = ()
    hierarchical: tuple[Budget, ...] = ()

    def budgets(self, model: str) -> tuple[Budget, ...]:
        """The budgets that `model` plans with."""
        return {"oracle": self.oracle, "hierarchical": self.hierarchical}.get(model,
                                                                             self.learned)

    @property
    def name(self) -> str:
        return f"{self.task}/{self.obs}"

    def to_dict(self) -> dict:
        return {"task": self.task, "obs": self.obs, "collect": self.collect.to_dict(),
                "model": dict(self.model), "train": self.train.to_dict(),
                "learned": [b.to_dict() for b in self.learned],
                "oracle": [b.to_dict() for b in self.oracle],
                "terminal_weight": self.terminal_weight,
                **({"hierarchy": dict(self.hierarchy),
                    "hierarchical": [b.to_dict() for b in self.hierarchical]}
                   if self.hierarchy else {})}


@dataclasses.dataclass(frozen=True)
class Profile:
    """A whole benchmark run.

    Attributes:
      name: "quick", "full", "tiny", ...
      tasks: the task specs.
      models: model names (keys of `MODELS`), in order.
      episodes: closed-loop episodes per learned-model row.
      oracle_episodes: episodes per oracle row (the first ones of the same pairs).
      budget_scales: size factors of each budget; 1.0 is the main row, the others are
        only for the success-against-budget plot (and only for `sweep_models`).
      sweep_models: which models get the extra budgets.
      seeds: data and training seeds; each gives its own dataset, run and rows.
      eval_seed: seed of the held-out start/goal pairs and the planners' keys: the `test`
        pairs of `hjepa.splits` (reported figures) unless `--split val` (for choices).
    """

    name: str
    tasks: tuple[TaskSpec, ...]
    models: tuple[str, ...] = ("learned", "oracle")
    episodes: int = 32
    oracle_episodes: int = 16
    budget_scales: tuple[float, ...] = (1.0,)
    sweep_models: tuple[str, ...] = ("learned",)
    seeds: tuple[int, ...] = (0,)
    eval_seed: int = splits.seed("test")

    def to_dict(self) -> dict:
        return {"name": self.name, "tasks": [t.to_dict() for t in self.tasks],
                "models": list(self.models), "episodes": self.episodes,
                "oracle_episodes": self.oracle_episodes,
                "budget_scales": list(self.budget_scales),
                "sweep_models": list(self.sweep_models), "seeds": list(self.seeds),
                "eval_seed": self.eval_seed}


def _budgets(horizon: int, *, samples: int, iterations: int, elites: int, temperature: float,
             noise_std: float, gd_candidates: int, gd_iterations: int, beam: int,
             oracle: bool = False) -> tuple[Budget, ...]:
    """MPPI, CEM, gradient descent and beam search budgets of comparable size."""
    return (
        Budget.of("mppi", horizon, num_samples=samples, iterations=iterations,
                  temperature=temperature, noise_std=noise_std,
                  noise_decay=1.0 if oracle else 0.6),
        Budget.of("cem", horizon, num_samples=samples, num_elites=elites, iterations=iterations,
                  noise_std=noise_std, min_std=0.02),
        Budget.of("gd", horizon, num_candidates=gd_candidates, iterations=gd_iterations,
                  learning_rate=0.1, noise_std=noise_std),
        Budget.of("beam", horizon, beam_width=beam, branching=beam, iterations=1,
                  noise_std=noise_std),
    )


def _state_model(latent: int, hidden: int) -> tuple[tuple[str, Any], ...]:
    return (("encoder_hidden", (hidden, hidden)), ("latent_size", latent),
            ("predictor_hidden", (hidden, hidden)))


def _spec(task: str, *, episodes: int, length: int, steps: int, latent: int, hidden: int,
          batch: int, learned: tuple[Budget, ...], oracle: tuple[Budget, ...],
          per_shard: int = 500) -> TaskSpec:
    return TaskSpec(
        task, "state",
        data_lib.CollectConfig(task=task, obs="state", num_episodes=episodes,
                               episode_length=length, episodes_per_shard=per_shard),
        _state_model(latent, hidden),
        train_lib.TrainConfig(steps=steps, batch_size=batch, window=min(8, length),
                              checkpoint_every=steps, log_every=min(100, steps)),
        learned, oracle)


QUICK = Profile(
    name="quick",
    tasks=(
        _spec("reacher", episodes=2000, length=50, steps=3000, latent=32, hidden=128,
              batch=256,
              learned=_budgets(16, samples=128, iterations=3, elites=16, temperature=0.03,
                               noise_std=0.3, gd_candidates=8, gd_iterations=10, beam=8),
              oracle=_budgets(12, samples=32, iterations=2, elites=8, temperature=0.1,
                              noise_std=0.3, gd_candidates=4, gd_iterations=4, beam=4,
                              oracle=True)),
        _spec("two_rooms", episodes=1000, length=100, steps=3000, latent=32, hidden=128,
              batch=256,
              learned=_budgets(24, samples=128, iterations=3, elites=16, temperature=0.03,
                               noise_std=0.6, gd_candidates=8, gd_iterations=10, beam=8),
              oracle=_budgets(24, samples=32, iterations=2, elites=8, temperature=0.1,
                              noise_std=0.6, gd_candidates=4, gd_iterations=4, beam=4,
                              oracle=True)),
    ),
    episodes=32, oracle_episodes=8, budget_scales=(0.25, 1.0),
)

FULL = Profile(
    name="full",
    tasks=(
        _spec("reacher", episodes=4000, length=50, steps=5000, latent=32, hidden=256,
              batch=256,
              learned=_budgets(16, samples=512, iterations=4, elites=32, temperature=0.03,
                               noise_std=0.3, gd_candidates=16, gd_iterations=20, beam=16),
              oracle=_budgets(12, samples=128, iterations=3, elites=16, temperature=0.1,
                              noise_std=0.3, gd_candidates=8, gd_iterations=8, beam=8,
                              oracle=True)),
        _spec("two_rooms", episodes=3000, length=100, steps=5000, latent=32, hidden=256,
              batch=256,
              learned=_budgets(32, samples=512, iterations=4, elites=32, temperature=0.03,
                               noise_std=0.6, gd_candidates=16, gd_iterations=20, beam=16),
              oracle=_budgets(32, samples=128, iterations=3, elites=16, temperature=0.1,
                              noise_std=0.6, gd_candidates=8, gd_iterations=8, beam=8,
                              oracle=True)),
        dataclasses.replace(
            _spec("umaze", episodes=3000, length=200, steps=5000, latent=32, hidden=256,
                  batch=256,
                  learned=_budgets(32, samples=512, iterations=4, elites=32, temperature=0.03,
                                   noise_std=0.6, gd_candidates=16, gd_iterations=20, beam=16),
                  oracle=_budgets(32, samples=128, iterations=3, elites=16, temperature=0.1,
                                  noise_std=0.6, gd_candidates=8, gd_iterations=8, beam=8,
                                  oracle=True)),
            # the settings of benchmarks/hierarchy.py's umaze rows, with 4x the samples
            hierarchy=(("chunk", 8), ("macro_size", 2), ("window", 32)),
            hierarchical=(Budget.of("hierarchical", 8, num_samples=512, iterations=4,
                                    temperature=0.03, noise_std=0.6, noise_decay=0.5,
                                    high_horizon=8, high_noise_std=1.0, snap_radius=1.0),)),
    ),
    models=("learned", "oracle", "hierarchical"),
    episodes=128, oracle_episodes=64, budget_scales=(0.125, 0.25, 0.5, 1.0),
    sweep_models=("learned", "oracle"), seeds=(0, 1, 2),
)

# End to end in well under a minute on 2 CPU cores: the learned model only (the oracle's
# physics takes longer to compile than all of this), sizes of tests/conftest.py's tiny run.
TINY = Profile(
    name="tiny",
    tasks=(
        TaskSpec(
            "reacher", "state",
            data_lib.CollectConfig(task="reacher", obs="state", num_episodes=8,
                                   episode_length=10, episodes_per_shard=4),
            (("encoder_hidden", (32, 32)), ("latent_size", 8), ("predictor_hidden", (32, 32))),
            train_lib.TrainConfig(steps=60, batch_size=32, window=4, checkpoint_every=30,
                                  log_every=10),
            learned=_budgets(4, samples=8, iterations=2, elites=4, temperature=0.1,
                             noise_std=0.3, gd_candidates=2, gd_iterations=2, beam=2),
            oracle=_budgets(4, samples=4, iterations=1, elites=2, temperature=0.1,
                            noise_std=0.3, gd_candidates=2, gd_iterations=1, beam=2,
                            oracle=True),
            hierarchy=(("chunk", 2), ("macro_size", 2), ("base_window", 4), ("window", 4)),
            hierarchical=(Budget.of("hierarchical", 4, num_samples=8, iterations=2,
                                    temperature=0.1, noise_std=0.3, noise_decay=1.0,
                                    high_horizon=2, high_noise_std=1.0, snap_radius=None),)),
    ),
    models=("learned",), episodes=2, oracle_episodes=2, budget_scales=(0.5, 1.0),
)

PROFILES = {"quick": QUICK, "full": FULL, "tiny": TINY}


# --------------------------------------------------------------------------- models


class ModelRun(NamedTuple):
    """A model ready to plan with, as the suite sees it.

    Attributes:
      name: the model's name in the rows ("learned", "oracle", ...).
      obs: the observation kind the planner sees ("-" for the oracle: it sees the state).
      evaluate: `(task, key, num_episodes, planner_fn, options, horizon) -> EvalResult`.
      problem: `(task, episode) -> planners.Problem` for one open-loop plan (cost traces).
      info: JSON-ready facts for the rows (training time, dataset size, configs).
      traces: whether rows get a cost trace of one open-loop plan (through `problem`).
    """

    name: str
    obs: str
    evaluate: Callable[..., evaluate_lib.EvalResult]
    problem: Callable[[Task, Episode], planners.Problem] | None
    info: dict
    traces: bool = True


def _oracle(spec: TaskSpec, task: Task, seed: int, work: str, log: Callable) -> ModelRun:
    """Plans through the task's true physics."""
    del spec, seed, work, log

    def run(task, key, num_episodes, planner, options, horizon):
        return evaluate_lib.evaluate(task, key, num_episodes=num_episodes, planner=planner,
                                     planner_options=options, horizon=horizon)

    def problem(task, episode):
        return task.oracle_problem(episode.state, episode.goal)

    return ModelRun("oracle", "-", run, problem, {"train_seconds": None})


def _collect_and_train(spec: TaskSpec, seed: int, work: str, log: Callable, model_config,
                       train_config: train_lib.TrainConfig, run_name: str,
                       what: str = "") -> tuple[Any, dict]:
    """Collects (or reuses) the spec's dataset for `seed` and trains (or resumes) a model of
    `model_config` on it in `work/runs/run_name`. Returns (params, the rows' facts)."""
    name = f"{spec.task}_{spec.obs}_seed{seed}"
    collect = dataclasses.replace(spec.collect, seed=seed)
    data_path = os.path.join(work, "data", name)
    run_dir = os.path.join(work, "runs", run_name)
    log(f"{spec.name} seed {seed}: dataset of {collect.num_episodes} episodes x "
        f"{collect.episode_length} steps -> {data_path}")
    log(f"{spec.name} seed {seed}: then training {what}{train_config.steps} steps -> "
        f"{run_dir}")
    trained = pipeline.train_world_model(collect, model_config, train_config,
                                         data_path=data_path, run_dir=run_dir, progress=False)
    dataset, state = trained.dataset, trained.state
    collect_seconds, train_wall = trained.collect_seconds, trained.train_seconds
    metrics = hjepa_io.last_metrics(run_dir)
    info = {
        "train_seconds": train_seconds_from_metrics(run_dir),
        "train_wall_seconds_this_run": train_wall,
        "train_steps": train_config.steps,
        "final_loss": metrics.get("loss"),
        "final_prediction_loss": metrics.get("prediction"),
        "collect_seconds_this_run": collect_seconds,
        "dataset_episodes": dataset.num_episodes,
        "dataset_episode_length": dataset.episode_length,
        "dataset_transitions": dataset.num_episodes * dataset.episode_length,
        "dataset_bytes": _dir_bytes(dataset.path),
        "model_config": model_config.to_dict(),
    }
    if "level2_prediction" in metrics:
        info["final_level2_prediction_loss"] = metrics["level2_prediction"]
    return state.params, info


def _learned(spec: TaskSpec, task: Task, seed: int, work: str, log: Callable) -> ModelRun:
    """Collects (or reuses) the dataset, trains (or resumes) the JEPA, plans through it."""
    model_config = ModelConfig(obs_shape=tuple(task.obs_shape), action_size=task.action_size,
                               **dict(spec.model))
    params, info = _collect_and_train(spec, seed, work, log, model_config,
                                      dataclasses.replace(spec.train, seed=seed),
                                      f"{spec.task}_{spec.obs}_seed{seed}")
    terminal_weight = spec.terminal_weight

    def run(task, key, num_episodes, planner, options, horizon):
        return evaluate_lib.evaluate(task, key, num_episodes=num_episodes,
                                     model_config=model_config, params=params, planner=planner,
                                     planner_options=options, horizon=horizon,
                                     terminal_weight=terminal_weight)

    def problem(task, episode):
        return model_lib.problem(model_config, params, task.observe(episode.state),
                                 episode.goal.obs, task.action_low, task.action_high,
                                 terminal_weight=terminal_weight)

    return ModelRun("learned", spec.obs, run, problem, info)


def _hierarchical(spec: TaskSpec, task: Task, seed: int, work: str, log: Callable) -> ModelRun:
    """A two-level JEPA (`hjepa.hierarchy`) on the learned model's dataset, planned with
    MPPI at both levels (`planners.hierarchical_mpc`). No cost trace: a hierarchical plan
    has one per level."""
    from hjepa import hierarchy

    if not spec.hierarchy:
        raise ValueError(f"models: {spec.name} has no hierarchy settings for 'hierarchical'")
    options = dict(spec.hierarchy)
    window = options.pop("window")
    base = ModelConfig(obs_shape=tuple(task.obs_shape), action_size=task.action_size,
                       **dict(spec.model))
    config = hierarchy.make_config(base, num_levels=2, **options)
    params, info = _collect_and_train(spec, seed, work, log, config,
                                      dataclasses.replace(spec.train, seed=seed, window=window),
                                      f"{spec.task}_{spec.obs}_seed{seed}_hierarchy",
                                      what="a two-level JEPA, ")

    def run(task, key, num_episodes, planner, options, horizon):
        low = {k: v for k, v in options.items() if k not in HIERARCHICAL_OPTIONS}
        high = dict(low, noise_std=options["high_noise_std"], noise_decay=1.0)
        return evaluate_lib.evaluate_hierarchy(task, key, config, params, num_episodes=num_episodes,
                                  horizons=(options["high_horizon"], horizon), planner=planner,
                                  planner_options=(high, low),
                                  terminal_weights=spec.terminal_weight,
                                  snap_radius=options.get("snap_radius"))

    return ModelRun("hierarchical", spec.obs, run, None, info, traces=False)


# name -> (spec, task, seed, work dir, log) -> ModelRun; `register_model` adds more.
MODELS: dict[str, Callable[..., ModelRun]] = {"learned": _learned, "oracle": _oracle,
                                              "hierarchical": _hierarchical}


def register_model(name: str, builder: Callable[..., ModelRun]) -> None:
    """Adds a model to the suite: `builder(spec, task, seed, work, log) -> ModelRun`."""
    MODELS[name] = builder


def _dir_bytes(path: str) -> int:
    return sum(os.path.getsize(os.path.join(root, f))
               for root, _, files in os.walk(path) for f in files)


# --------------------------------------------------------------------------- rows


def row_key(row: dict) -> str:
    """A row's identity: task/obs/model/planner/budget scale/seed."""
    return (f"{row['task']}/{row['obs']}/{row['model']}/{row['planner']}/"
            f"x{row['budget_scale']:g}/seed{row['seed']}")


def make_row(spec: TaskSpec, run: ModelRun, budget: Budget, scale: float, seed: int,
             eval_seed: int, result: evaluate_lib.EvalResult) -> dict:
    """One measured row (JSON-ready) from an evaluation."""
    successes = int(np.sum(result.success))
    low, high = wilson(successes, result.num_episodes)
    return {
        "task": spec.task, "obs": run.obs, "model": run.name, "planner": budget.planner,
        "budget_scale": scale, "budget": budget.to_dict(), "budget_text": budget.describe(),
        "seed": seed,
        "seeds": {"data": seed, "train": seed if run.name != "oracle" else None,
                  "eval": eval_seed},
        "pairs": splits.describe(None, eval_seed),
        "episodes": result.num_episodes, "successes": successes,
        "success_rate": successes / result.num_episodes, "success_ci95": [low, high],
        "mean_final_distance": float(np.mean(result.final_distance)),
        "steps_per_episode": result.num_steps,
        "ms_per_env_step": result.ms_per_step,
        "ms_per_batched_step": result.ms_per_batched_step,
        "calls_per_step": budget.calls_per_step(),
        "compile_seconds": result.compile_seconds,
        "run_seconds": result.run_seconds,
        **run.info,
    }


def cost_trace(run: ModelRun, task: Task, budget: Budget, key: jax.Array) -> list[float]:
    """Best cost after each iteration of one open-loop plan from a held-out start [I]."""
    reset_key, plan_key = jax.random.split(key)
    episode = jax.jit(task.reset)(reset_key)  # eagerly, brax compiles its init op by op
    problem = run.problem(task, episode)
    plan = PLANNERS[budget.planner].fn(problem, jnp.zeros((budget.horizon, task.action_size)),
                                       plan_key, **budget.kwargs)
    return [float(c) for c in np.asarray(plan.trace)]


# --------------------------------------------------------------------------- running


def output_paths(out_dir: str, profile: str, platform: str) -> dict[str, str]:
    stem = os.path.join(out_dir, f"bench_{profile}_{platform}")
    return {"json": stem + ".json", "markdown": stem + ".md", "budget_plot": stem + "_budget.png",
            "trace_plot": stem + "_traces.png"}


def _start(paths: dict, profile: Profile, *, overwrite: bool, resume: bool) -> dict:
    """The results dict to fill: fresh, or the rows of an interrupted run of the same profile."""
    if overwrite and resume:
        raise ValueError("overwrite and resume: pass one of them, not both")
    path = paths["json"]
    wanted = json.loads(json.dumps(profile.to_dict()))
    if os.path.exists(path) and not overwrite:
        if not resume:
            raise ValueError(f"out: {path} already exists; pass --overwrite to replace it or "
                             "--resume to continue an interrupted run of the same profile")
        with open(path) as f:
            results = json.load(f)
        if results.get("format") != FORMAT or results.get("profile") != wanted:
            raise ValueError(f"resume: {path} holds results of another profile or format; "
                             "pass --overwrite to replace it, or choose another --out")
        return results
    return {"format": FORMAT, "profile": wanted, "hardware": sysinfo.hardware(),
            "machine": None, "sessions": [], "rows": [], "complete": False}


def _save(results: dict, paths: dict) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(paths["json"])), exist_ok=True)
    data_lib.atomic_write_json(paths["json"], results)
    data_lib.atomic_write_bytes(paths["markdown"], markdown(results).encode())


def run(profile: Profile, *, out_dir: str = "benchmarks/results", work: str = "hjepa-bench",
        overwrite: bool = False, resume: bool = False, plots: bool = True,
        log: Callable[[str], None] = print) -> dict:
    """Runs a profile; returns the results dict (also written to `output_paths`).

    Raises:
      ValueError: the results file exists (without `overwrite` / `resume`), an unknown model
        or planner name, or a resumed file of another profile.
    """
    for name in profile.models:
        if name not in MODELS:
            raise ValueError(f"models: unknown model {name!r}; known: {sorted(MODELS)} "
                             "(register_model adds one)")
    for spec in profile.tasks:
        for budget in (*spec.learned, *spec.oracle, *spec.hierarchical):
            if budget.planner not in PLANNERS:
                raise ValueError(f"planner: unknown planner {budget.planner!r} in {spec.name}; "
                                 f"known: {sorted(PLANNERS)}")
    hw = sysinfo.hardware()
    paths = output_paths(out_dir, profile.name, hw["platform"])
    results = _start(paths, profile, overwrite=overwrite, resume=resume)
    results["machine"] = sysinfo.describe(hw)
    done = {row_key(r) for r in results["rows"]}
    session = {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
               "load_average_start": hw["load_average"], "wall_seconds": None,
               "cpu_seconds": None}
    cpu_start = time.process_time()
    results["sessions"].append(session)
    t_start = time.perf_counter()
    for spec in profile.tasks:
        task = spec.collect.make_task()
        for seed in profile.seeds:
            for model_name in profile.models:
                budgets = spec.budgets(model_name)
                scales = profile.budget_scales if model_name in profile.sweep_models else (1.0,)
                obs = "-" if model_name == "oracle" else spec.obs
                if model_name == "oracle" and seed != profile.seeds[0]:
                    continue  # the oracle does not depend on the data or training seed
                todo = [(b, s) for b in budgets for s in sorted(scales, reverse=True)
                        if row_key({"task": spec.task, "obs": obs, "model": model_name,
                                    "planner": b.planner, "budget_scale": s,
                                    "seed": seed}) not in done]
                if not todo:
                    continue
                model = MODELS[model_name](spec, task, seed, work, log)
                n = profile.oracle_episodes if model_name == "oracle" else profile.episodes
                key = jax.random.key(profile.eval_seed)
                for budget, scale in todo:
                    scaled = budget.scaled(scale)
                    entry = PLANNERS[scaled.planner]
                    result = model.evaluate(task, key, n, entry.fn, scaled.kwargs,
                                            scaled.horizon)
                    row = make_row(spec, model, scaled, scale, seed, profile.eval_seed, result)
                    row["provenance"] = provenance.record(  # rows may come from several runs
                        configs={"spec": spec.to_dict(), "budget": scaled.to_dict()},
                        pairs={**row["pairs"], "episodes": n})
                    if scale == 1.0 and model.traces:
                        row["trace"] = cost_trace(model, task, scaled,
                                                  jax.random.fold_in(key, 1))
                    results["rows"].append(row)
                    done.add(row_key(row))
                    session["wall_seconds"] = time.perf_counter() - t_start
                    session["cpu_seconds"] = time.process_time() - cpu_start
                    session["load_average_end"] = sysinfo.load_average()
                    _save(results, paths)
                    lo, hi = row["success_ci95"]
                    log(f"  {spec.name} {model_name:8s} {scaled.planner:5s} x{scale:<5g} "
                        f"success {100 * row['success_rate']:5.1f}% [{100 * lo:.0f}-"
                        f"{100 * hi:.0f}] dist {row['mean_final_distance']:.4f} "
                        f"{row['ms_per_env_step']:.2f} ms/step, {row['calls_per_step']} "
                        f"calls/step, compile {row['compile_seconds']:.1f} s")
    results["complete"] = True
    session["wall_seconds"] = time.perf_counter() - t_start
    session["cpu_seconds"] = time.process_time() - cpu_start
    session["load_average_end"] = sysinfo.load_average()
    if plots:
        budget_plot(results, paths["budget_plot"])
        trace_plot(results, paths["trace_plot"])
    _save(results, paths)
    results["paths"] = paths
    return results


# --------------------------------------------------------------------------- reports

# Published results, quoted and never measured here. `checked` says what was verified.
QUOTED = (
    {"method": "PLDM", "task": "Two-Rooms", "success": "97.8%",
     "planning_time": "16 s per episode", "hardware": "not stated",
     "source": "Sobal et al., Learning from Reward-Free Offline Data: A Case for Planning "
               "with Latent Dynamics Models (arXiv 2502.14819)",
     "checked": "figures as quoted in hjepa issue 8; not re-read in the paper"},
    {"method": "DINO-WM", "task": "Two-Rooms", "success": "100%",
     "planning_time": "53 s per plan", "hardware": "not stated",
     "source": "Zhou et al., DINO-WM: World Models on Pre-trained Visual Features enable "
               "Zero-shot Planning (arXiv 2411.04983)",
     "checked": "figures as quoted in hjepa issue 8; not re-read in the paper"},
    {"method": "LeWM", "task": "Two-Rooms", "success": "87%", "planning_time": "not stated",
     "hardware": "not stated",
     "source": "Maes et al., LeWorldModel: Stable End-to-End Joint-Embedding Predictive "
               "Architecture from Pixels (arXiv 2603.19312)",
     "checked": "87% Two-Room in a summary of the paper"},
    {"method": "EB-JEPA", "task": "Two-Rooms", "success": "97%",
     "planning_time": "37 s per episode", "hardware": "not stated",
     "source": "Terver et al., A Lightweight Library for Energy-Based Joint-Embedding "
               "Predictive Architectures (arXiv 2602.03604)",
     "checked": "97% in the abstract; time as quoted in hjepa issue 8"},
    {"method": "HWM (hierarchical) vs flat", "task": "real Franka arm, pick-&-place from "
     "one goal image", "success": "70% vs 0%", "planning_time": "not stated",
     "hardware": "not stated",
     "source": "Zhang et al., Hierarchical Planning with Latent World Models "
               "(arXiv 2604.03208)",
     "checked": "70% vs 0% in the abstract"},
)

COUNTING = (
    "Predictor calls per environment step (one plan): MPPI and CEM samples x horizon x "
    "iterations; gradient descent candidates x horizon x iterations (forward steps; the "
    "backward pass, about twice a forward, is not counted); beam search width x branching x "
    "horizon x rounds. For the oracle a call is one physics step. ms / env step is the wall "
    "time of the batched closed-loop episodes (planning and the physics step) divided by "
    "episodes x steps, after compilation (compile time is in the JSON).")


def markdown(results: dict) -> str:
    """The results as Markdown: measured rows, then the quoted published ones apart."""
    profile = results["profile"]
    hw = results["hardware"]
    versions = ", ".join(f"{k} {v}" for k, v in hw["versions"].items())
    walls = [s["wall_seconds"] for s in results["sessions"] if s.get("wall_seconds")]
    loads = [s.get("load_average_start") for s in results["sessions"]] + \
            [s.get("load_average_end") for s in results["sessions"]]
    loads = [f"{x[0]:.1f}" for x in loads if x]
    lines = [
        f"# hjepa bench, profile `{profile['name']}`",
        "",
        f"Machine: {results['machine']}.  ",
        f"Versions: {versions}.  ",
        f"Wall time: {sum(walls):.0f} s over {len(walls)} session(s)"
        + (f"; 1-minute load average {', '.join(loads)} (start, end)" if loads else "")
        + ("" if results.get("complete") else "; **incomplete run**") + ".  ",
        f"Episodes per row: {profile['episodes']} (learned), {profile['oracle_episodes']} "
        f"(oracle); held-out start/goal pairs from seed {profile['eval_seed']} "
        f"({splits.describe(None, profile['eval_seed'])['split'] or 'custom'} pairs), the same "
        "for every row. Success: 95% Wilson interval in brackets.",
        "",
        "## Measured",
        "",
        "| task | obs | model | planner | budget | success (95% CI) | final dist | "
        "ms / env step | calls / step | train s | data | seed |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in sorted(results["rows"], key=_row_order):
        if r["budget_scale"] != 1.0:
            continue
        lo, hi = r["success_ci95"]
        train = f"{r['train_seconds']:.0f}" if r.get("train_seconds") is not None else "-"
        data = (f"{r['dataset_episodes']} x {r['dataset_episode_length']}"
                if r.get("dataset_episodes") else "-")
        lines.append(
            f"| {r['task']} | {r['obs']} | {r['model']} | {r['planner']} | {r['budget_text']} | "
            f"{100 * r['success_rate']:.1f}% ({100 * lo:.0f}-{100 * hi:.0f}) of "
            f"{r['episodes']} | {r['mean_final_distance']:.4f} | {r['ms_per_env_step']:.2f} | "
            f"{r['calls_per_step']} | {train} | {data} | {r['seed']} |")
    sweep = [r for r in results["rows"] if r["budget_scale"] != 1.0]
    if sweep:
        lines += ["", "Smaller budgets (for the success-against-budget plot):", "",
                  "| task | obs | model | planner | budget | success (95% CI) | ms / env step |",
                  "|---|---|---|---|---|---|---|"]
        for r in sorted(sweep, key=_row_order):
            lo, hi = r["success_ci95"]
            lines.append(
                f"| {r['task']} | {r['obs']} | {r['model']} | {r['planner']} | "
                f"{r['budget_text']} | {100 * r['success_rate']:.1f}% ({100 * lo:.0f}-"
                f"{100 * hi:.0f}) | {r['ms_per_env_step']:.2f} |")
    lines += ["", COUNTING, "", "Train s: optimiser time from the run's metrics (without "
              "compilation); data: reward-free episodes x steps.", ""]
    lines += quoted_markdown()
    return "\n".join(lines) + "\n"


def quoted_markdown() -> list[str]:
    """The published results, as their own table (quoted, not measured)."""
    lines = ["## Published results (quoted, not measured here)", "",
             "Other methods, tasks, observation kinds and machines: not comparable row by row "
             "with the measured table.", "",
             "| method | task | success | planning time | hardware | source | checked |",
             "|---|---|---|---|---|---|---|"]
    for q in QUOTED:
        lines.append(f"| {q['method']} | {q['task']} | {q['success']} | {q['planning_time']} | "
                     f"{q['hardware']} | {q['source']} | {q['checked']} |")
    return lines


def _row_order(r: dict):
    models = {"learned": 0, "oracle": 1}
    order = {name: i for i, name in enumerate(PLANNERS)}
    return (r["task"], r["obs"] == "-", models.get(r["model"], 2), r["model"],
            order.get(r["planner"], 99), r["seed"], -r["budget_scale"])


def _panels(rows: list[dict]) -> list[tuple[str, list[dict]]]:
    groups: dict[str, list[dict]] = {}
    for r in sorted(rows, key=_row_order):
        title = (f"{r['task']}, oracle (true physics)" if r["obs"] == "-"
                 else f"{r['task']} ({r['obs']}), {r['model']}")
        groups.setdefault(title, []).append(r)
    return list(groups.items())


def _figure(count: int):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = min(count, 2)
    rows = -(-count // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.5 * cols, 3.8 * rows), squeeze=False)
    for ax in axes.flat[count:]:
        ax.set_visible(False)
    return plt, fig, axes.flat


def budget_plot(results: dict, path: str) -> None:
    """Success (95% CI) against predictor calls per step, one line per planner and panel."""
    panels = _panels(results["rows"])
    if not panels:
        return
    plt, fig, axes = _figure(len(panels))
    for ax, (title, rows) in zip(axes, panels, strict=False):
        for planner in dict.fromkeys(r["planner"] for r in rows):
            mine = sorted((r for r in rows if r["planner"] == planner and r["seed"] == rows[0]
                           ["seed"]), key=lambda r: r["calls_per_step"])
            x = [r["calls_per_step"] for r in mine]
            y = [r["success_rate"] for r in mine]
            err = [[r["success_rate"] - r["success_ci95"][0] for r in mine],
                   [r["success_ci95"][1] - r["success_rate"] for r in mine]]
            ax.errorbar(x, y, yerr=err, marker="o", capsize=3, label=planner)
        _log_x(ax)
        ax.set_ylim(-0.03, 1.03)
        ax.set_xlabel("predictor calls per env step")
        ax.set_ylabel("success rate")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"hjepa bench {results['profile']['name']}: success against planning budget "
                 f"({results['machine']})", fontsize=9)
    fig.tight_layout()
    _save_figure(fig, path)
    plt.close(fig)


def trace_plot(results: dict, path: str) -> None:
    """Best cost against predictor calls within one plan (Plan.trace), per planner and panel."""
    panels = _panels([r for r in results["rows"] if r.get("trace")])
    if not panels:
        return
    plt, fig, axes = _figure(len(panels))
    for ax, (title, rows) in zip(axes, panels, strict=False):
        positive = True
        for r in rows:
            trace = np.asarray(r["trace"], dtype=float)
            per_iteration = r["calls_per_step"] / max(1, len(trace))
            x = per_iteration * np.arange(1, len(trace) + 1)
            ax.plot(x, trace, marker=".", label=f"{r['planner']} ({r['budget_text']})")
            positive = positive and bool(np.all(trace > 0))
        if positive:
            ax.set_yscale("log")
        _log_x(ax)
        ax.set_xlabel("predictor calls within the plan")
        ax.set_ylabel("best cost so far")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(f"hjepa bench {results['profile']['name']}: cost traces of one plan from a "
                 "held-out start", fontsize=9)
    fig.tight_layout()
    _save_figure(fig, path)
    plt.close(fig)


def _log_x(ax) -> None:
    """A log x axis labelled at powers of ten only (minor labels overlap)."""
    from matplotlib.ticker import NullFormatter

    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(NullFormatter())


def _save_figure(fig, path: str) -> None:
    tmp = path + ".tmp.png"
    fig.savefig(tmp, dpi=110)
    os.replace(tmp, path)


# --------------------------------------------------------------------------- command line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The suite's options (shared by `python -m benchmarks` and `hjepa bench`)."""
    parser.add_argument("--profile", choices=sorted(PROFILES), default="quick",
                        help="sizes: quick (<= 20 min on 2 CPU cores), full (a GPU), tiny "
                             "(seconds; a smoke test) (default: %(default)s)")
    parser.add_argument("--out", default="benchmarks/results",
                        help="where bench_<profile>_<platform>.{json,md,png} go "
                             "(default: %(default)s)")
    parser.add_argument("--work", default="hjepa-bench",
                        help="datasets and training runs (reused) (default: %(default)s)")
    parser.add_argument("--only", default=None, metavar="TASK[,TASK]",
                        help="only these tasks of the profile, e.g. reacher")
    parser.add_argument("--models", default=None, metavar="M[,M]",
                        help=f"only these models (known: {', '.join(sorted(MODELS))})")
    parser.add_argument("--planners", default=None, metavar="P[,P]",
                        help=f"only these planners (known: {', '.join(PLANNERS)})")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing results file")
    parser.add_argument("--split", choices=splits.SPLITS, default="test",
                        help="start/goal pairs: test (reported figures, never used for a "
                             "choice) or val (for choosing settings) (default: %(default)s)")
    parser.add_argument("--resume", action="store_true",
                        help="continue an interrupted run: keep its rows, measure the rest")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots")


def select(profile: Profile, *, only: str | None = None, models: str | None = None,
           planner_names: str | None = None) -> Profile:
    """The profile restricted to some tasks, models and planners (comma-separated names).

    Raises:
      ValueError: a name that the profile does not have.
    """
    def names(text, known, what):
        wanted = [n.strip() for n in text.split(",") if n.strip()]
        unknown = [n for n in wanted if n not in known]
        if unknown or not wanted:
            raise ValueError(f"--{what}: unknown {unknown or text!r}; known: {', '.join(known)}")
        return wanted

    if only:
        keep = names(only, [t.task for t in profile.tasks], "only")
        profile = dataclasses.replace(profile, tasks=tuple(t for t in profile.tasks
                                                           if t.task in keep))
    if models:
        profile = dataclasses.replace(profile, models=tuple(names(models, list(MODELS),
                                                                  "models")))
    if planner_names:
        keep = names(planner_names, list(PLANNERS), "planners")
        profile = dataclasses.replace(profile, tasks=tuple(
            dataclasses.replace(t, learned=tuple(b for b in t.learned if b.planner in keep),
                                oracle=tuple(b for b in t.oracle if b.planner in keep),
                                hierarchical=tuple(b for b in t.hierarchical
                                                   if b.planner in keep))
            for t in profile.tasks))
    return profile


def run_from_args(args: argparse.Namespace, log: Callable[[str], None] = print) -> dict:
    """Runs the suite from parsed `add_arguments` options."""
    profile = select(PROFILES[args.profile], only=args.only, models=args.models,
                     planner_names=args.planners)
    if profile is not PROFILES[args.profile]:
        profile = dataclasses.replace(profile, name=f"{profile.name}-subset")
    if args.split != "test":
        profile = dataclasses.replace(profile, name=f"{profile.name}-{args.split}",
                                      eval_seed=splits.seed(args.split))
    return run(profile, out_dir=args.out, work=args.work, overwrite=args.overwrite,
               resume=args.resume, plots=not args.no_plots, log=log)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        results = run_from_args(args)
    except ValueError as error:
        print(f"python -m benchmarks: error: {error}", file=sys.stderr)
        return 2
    print(markdown(results))
    print("wrote " + ", ".join(results["paths"].values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
