"""Mode 1 from mode 2: a policy distilled from the planner's decisions (DAgger-style).

    hjepa distill --run-dir runs/reacher                # writes policy.msgpack + policy.json

Round 0 runs the planner closed-loop on the learned model in practice episodes (start/goal
pairs of `hjepa.splits.practice_key`, never evaluated on) and records, at every step, the
latent, the goal latent and the planner's first action. The policy (`hjepa.policy`) is fitted
to them by regression through `hjepa.train.train_loop`. From round 1 the fitted policy acts
(the planner's action at a share `expert_share ** round` of the steps) and the planner labels
every state the policy visits; the policy is refitted on all labels so far. The planner is the
same `PlannerConfig` the run plans with.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import time
from collections.abc import Callable
from typing import Any

import flax.serialization
import jax
import jax.numpy as jnp
import numpy as np
import optax

import planners
from hjepa import evaluate as evaluate_lib
from hjepa import io, splits, world_model
from hjepa import policy as policy_lib
from hjepa.checkpoint import read_json
from hjepa.configs import ModelConfig, PlannerConfig, PolicyConfig
from hjepa.tasks import Task
from hjepa.train import TrainState, train_loop

PyTree = Any
POLICY_FILE, POLICY_RECORD = "policy.msgpack", "policy.json"


@dataclasses.dataclass(frozen=True)
class Labels:
    """The planner's decisions: latents [M, D], goal latents [M, D], first actions [M, A]."""

    latents: np.ndarray
    goals: np.ndarray
    actions: np.ndarray

    def __len__(self) -> int:
        return len(self.actions)

    def extend(self, other: Labels) -> Labels:
        return Labels(*(np.concatenate([a, b]) for a, b in
                        zip(dataclasses.astuple(self), dataclasses.astuple(other), strict=True)))


def _labelling_episode(task: Task, model_config: ModelConfig, planner: PlannerConfig,
                       policy_act: Callable | None, expert_share: float):
    """`(params, episode, key) -> (final distance, (positions [T, P], (latents [T, D],
    goals [T, D], planner actions [T, A])))` for `evaluate.run_episodes`: the planner plans at
    every step (warm-started from its previous plan); the environment takes its action, or
    with `policy_act` the policy's at a share 1 - `expert_share` of the steps. `params` is
    (model params, policy params or None)."""
    family = world_model.of(model_config)
    low, high = jnp.asarray(task.action_low), jnp.asarray(task.action_high)
    plan_fn, options = planner.function(), planner.kwargs()
    observe = family.observe(task)

    def run(params, episode, key):
        model_params, policy_params = params
        (problem,) = family.problems(model_params, task.observe(episode.state),
                                     episode.goal.obs, low, high)
        goal = problem.params["goal"]  # [D]

        def control_step(carry, step_key):
            env_state, warm_start = carry
            plan_key, mix_key = jax.random.split(step_key)
            latent = observe(problem.params, env_state)
            step_problem = problem.replace(init_state=latent)
            plan = plan_fn(step_problem, warm_start, plan_key, **options)
            expert = plan.actions[0]
            action = expert
            if policy_act is not None:
                own = policy_act(policy_params, step_problem.params, latent)
                action = jnp.where(jax.random.uniform(mix_key) < expert_share, expert, own)
            env_state = task.dynamics(task.env_params, env_state, action)
            outputs = (task.position(env_state), (latent, goal, expert))
            return (env_state, planners.shift_actions(plan.actions)), outputs

        init_actions = jnp.zeros((planner.horizon, task.action_size))
        keys = jax.random.split(key, task.episode_length)
        (final_state, _), (positions, labels) = jax.lax.scan(
            control_step, (episode.state, init_actions), keys)
        return task.distance(final_state, episode.goal), (positions, labels)

    return run


def label(task: Task, model_config: ModelConfig, model_params: PyTree, planner: PlannerConfig,
          key: jax.Array, *, num_episodes: int, policy: tuple[policy_lib.Act, PyTree] | None = None,
          expert_share: float = 1.0) -> tuple[Labels, evaluate_lib.EvalResult]:
    """The planner's decisions along `num_episodes` closed-loop practice episodes (see
    `_labelling_episode`), with the episodes' outcome."""
    policy_act, policy_params = policy if policy is not None else (None, None)
    run = _labelling_episode(task, model_config, planner, policy_act, float(expert_share))
    result = evaluate_lib.run_episodes(
        task, run, (model_params, policy_params), key, num_episodes=num_episodes,
        num_steps=task.episode_length)
    latents, goals, actions = result.records
    flat = lambda x: np.asarray(x).reshape(-1, np.shape(x)[-1])  # noqa: E731 - [N*T, .]
    return Labels(flat(latents), flat(goals), flat(actions)), result


@functools.partial(jax.jit, static_argnames=("config", "num_steps"))
def _fit_chunk(state: TrainState, labels: tuple, low: jax.Array, high: jax.Array, *,
               config: PolicyConfig, num_steps: int):
    """`num_steps` Adam steps on minibatches of `labels` (latents, goals, actions), drawn from
    fold_in(key(seed), step)."""
    latents, goals, actions = labels
    optimizer = _optimizer(config)

    def body(state, _):
        index = jax.random.randint(jax.random.fold_in(jax.random.key(config.seed), state.step),
                                   (config.batch_size,), 0, actions.shape[0])
        (value, metrics), grads = jax.value_and_grad(
            lambda p: policy_lib.loss(config, p, latents[index], goals[index], actions[index],
                                      low, high), has_aux=True)(state.params)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        return TrainState(state.step + 1, params, opt_state), metrics

    state, metrics = jax.lax.scan(body, state, None, length=num_steps)
    return state, jax.tree.map(lambda x: x[-1], metrics)


def _optimizer(config: PolicyConfig) -> optax.GradientTransformation:
    return optax.adam(optax.cosine_decay_schedule(config.learning_rate, config.steps, 0.1))


def fit(config: PolicyConfig, labels: Labels, action_low, action_high, *,
        log_every: int = 500) -> tuple[PyTree, list[dict]]:
    """A policy fitted to `labels` from scratch, through the one training loop.

    Returns:
      (policy params, metric records [{"step", "loss", "steps_per_second"}]).
    """
    config.validate()
    if len(labels) == 0:
        raise ValueError("labels: expected at least one planner decision, got none")
    low = jnp.asarray(action_low, jnp.float32)
    high = jnp.asarray(action_high, jnp.float32)
    params = policy_lib.init(config, jax.random.key(config.seed), labels.latents.shape[-1],
                             labels.actions.shape[-1])
    state = TrainState(jnp.zeros((), jnp.int32), params, _optimizer(config).init(params))
    data = tuple(jnp.asarray(x, jnp.float32) for x in dataclasses.astuple(labels))
    history = []
    state = train_loop(
        state, lambda state, n: _fit_chunk(state, data, low, high, config=config, num_steps=n),
        steps=config.steps, log_every=log_every,
        record=lambda step, metrics: history.append({"step": step, **metrics}))
    return state.params, history


def distill(task: Task, model_config: ModelConfig, model_params: PyTree,
            planner: PlannerConfig, config: PolicyConfig, *, log: Callable[[str], None] = print
            ) -> tuple[PyTree, dict]:
    """Distils the planner into a policy (module docstring). Returns (policy params, a record
    of the rounds: labels, the practice episodes' success, seconds)."""
    config.validate()
    planner.validate()
    if world_model.of(model_config).num_levels != 1:
        raise ValueError("model: distillation plans with a flat model (a hierarchy's level 1: "
                         "pass its base config and params)")
    act = policy_lib.Act.of(config, task.action_low, task.action_high)
    labels, params, rounds = None, None, []
    t_start = time.perf_counter()
    for round_index in range(config.rounds):
        share = 1.0 if round_index == 0 else config.expert_share ** round_index
        t0 = time.perf_counter()
        new, result = label(task, model_config, model_params, planner,
                            splits.practice_key(round_index), num_episodes=config.episodes,
                            policy=None if params is None else (act, params),
                            expert_share=share)
        labels = new if labels is None else labels.extend(new)
        label_seconds = time.perf_counter() - t0
        log(f"round {round_index}: {len(new)} planner decisions ({label_seconds:.0f} s; "
            f"practice episodes {100 * result.success_rate:.1f}% with the planner's action at "
            f"{100 * share:.0f}% of the steps); fitting on {len(labels)}")
        t0 = time.perf_counter()
        params, history = fit(config, labels, task.action_low, task.action_high)
        rounds.append({"round": round_index, "expert_share": share, "labels": len(new),
                       "practice_success_rate": result.success_rate,
                       "label_seconds": label_seconds,
                       "fit_seconds": time.perf_counter() - t0, "final_loss": history[-1]["loss"]})
    return params, {"rounds": rounds, "seconds": time.perf_counter() - t_start}


# ----------------------------------------------------------------------------- files


def save(run_dir: str, config: PolicyConfig, planner: PlannerConfig, params: PyTree,
         record: dict) -> None:
    """Writes `policy.msgpack` and `policy.json` (config, planner, rounds, digest) atomically
    into `run_dir`, the params first, so a record never names params that are not there."""
    payload = flax.serialization.to_bytes(params)
    io.atomic_write_bytes(os.path.join(run_dir, POLICY_FILE), payload)
    io.atomic_write_json(os.path.join(run_dir, POLICY_RECORD), {
        "config": dataclasses.asdict(config), "planner": dataclasses.asdict(planner),
        **record, "sha256": hashlib.sha256(payload).hexdigest()})


def kept_record(run_dir: str, config: PolicyConfig, planner: PlannerConfig) -> dict | None:
    """The record of the policy kept in `run_dir` if it was distilled with `config` and
    `planner`; None when there is none; ValueError when there is one of another
    configuration."""
    path = os.path.join(run_dir, POLICY_RECORD)
    if not os.path.exists(path):
        return None
    record = read_json(path)
    same = (record.get("config") == _as_json(dataclasses.asdict(config))
            and record.get("planner") == _as_json(dataclasses.asdict(planner)))
    if not same:
        raise ValueError(f"--run-dir: {run_dir} holds a policy of another configuration; pass "
                         "--overwrite to replace it")
    return record


def _as_json(value):
    """`value` as it reads back from a JSON file (tuples become lists)."""
    return json.loads(json.dumps(value))


def load(run_dir: str, latent_size: int, action_size: int) -> tuple[PolicyConfig, PyTree]:
    """The policy kept in `run_dir` by `save` (or `hjepa distill`): (config, params).

    Raises:
      ValueError: no policy there, a record hjepa cannot read, or params that do not match
        their digest or config.
    """
    path, record_path = (os.path.join(run_dir, name) for name in (POLICY_FILE, POLICY_RECORD))
    if not (os.path.exists(path) and os.path.exists(record_path)):
        raise ValueError(f"policy: {run_dir} holds no policy ({POLICY_RECORD} and "
                         f"{POLICY_FILE}); distil one with `hjepa distill --run-dir {run_dir}`")
    record = read_json(record_path)
    try:
        config = PolicyConfig.from_dict(record["config"])
        config.validate()
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"policy: {record_path} is not a policy record hjepa can read "
                         f"({type(error).__name__}: {error})") from None
    with open(path, "rb") as f:
        payload = f.read()
    if record.get("sha256") != hashlib.sha256(payload).hexdigest():
        raise ValueError(f"policy: {path} is corrupt: it does not match the digest recorded in "
                         f"{record_path}")
    like = jax.eval_shape(  # shapes only: nothing is initialised
        lambda: policy_lib.init(config, jax.random.key(0), latent_size, action_size))
    try:
        params = flax.serialization.from_bytes(like, payload)
    except (ValueError, KeyError) as error:
        raise ValueError(f"policy: {path} does not match its config in {record_path} for "
                         f"latents of size {latent_size} and actions of size {action_size}: "
                         f"{error}") from None
    return config, params
