"""Training the JEPA world model: a pure jitted train step and `fit()` around it."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from hjepa import checkpoint as ckpt
from hjepa import critic as critic_lib
from hjepa import data as data_lib
from hjepa import distributed, goal_space, losses, ownership, world_model
from hjepa import io as hjepa_io
from hjepa import skills as skills_lib
from hjepa.configs import (
    CriticConfig,
    CriticModel,
    GoalSpaceConfig,
    GoalSpaceModel,
    LatentVariableConfig,
    ModelConfig,
    SkillsConfig,
    SkillsModel,
    TrainConfig,
    model_config_from_dict,
)

PyTree = Any


class TrainState(NamedTuple):
    step: jax.Array  # []
    params: PyTree
    opt_state: PyTree


def optimizer(config: TrainConfig) -> optax.GradientTransformation:
    schedule = optax.cosine_decay_schedule(config.learning_rate, config.steps, alpha=0.1)
    return optax.chain(optax.clip_by_global_norm(config.grad_clip), optax.adam(schedule))


def init_params(model_config, key: jax.Array, obs_mean=None, obs_std=None) -> PyTree:
    """Initial params of any world model (`hjepa.world_model.of(model_config).init`)."""
    return world_model.of(model_config).init(key, obs_mean, obs_std)


@functools.partial(jax.jit, static_argnames=("model_config", "config"))
def init_state(model_config: ModelConfig, config: TrainConfig, obs_mean, obs_std) -> TrainState:
    """The train state at step 0 (params from `config.seed`, the optimiser's state), one
    compiled program: initialising op by op (eagerly) compiled each op apart, seconds per
    call for a conv encoder."""
    params = init_params(model_config, jax.random.key(config.seed), obs_mean, obs_std)
    return TrainState(jnp.zeros((), jnp.int32), params, optimizer(config).init(params))


def loss_fn(params, model_config, loss_config: losses.LossConfig, obs, actions, key=None):
    """The world model's loss on windows obs [B, W+1, *obs_shape], actions [B, W, A]
    (`hjepa.world_model.of(model_config).loss`; `key` draws what a family samples, e.g. the
    latent-variable model's u)."""
    return world_model.of(model_config).loss(params, loss_config, obs, actions, key)


def train_step(state: TrainState, obs, actions, key=None, *, model_config,
               config: TrainConfig) -> tuple[TrainState, dict]:
    """One optimiser step on a batch (obs [B, W+1, ...], actions [B, W, A]; `key` for the
    loss's draws) of any world model. Pure."""
    grads, metrics = jax.grad(loss_fn, has_aux=True)(
        state.params, model_config, config.loss, obs, actions, key
    )
    updates, opt_state = optimizer(config).update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    metrics["grad_norm"] = optax.global_norm(grads)
    return TrainState(state.step + 1, params, opt_state), metrics


@functools.partial(jax.jit, static_argnames=("model_config", "config", "num_steps"))
def train_chunk(state: TrainState, all_obs, all_actions, *, model_config: ModelConfig,
                config: TrainConfig, num_steps: int) -> tuple[TrainState, dict]:
    """`num_steps` train steps on windows sampled from in-memory episodes.

    all_obs [N, T+1, *obs_shape], all_actions [N, T, A]. Batch t is drawn with
    fold_in(key(seed + 1), t) and the loss's draws with fold_in(key(seed + 2), t), so the
    result depends only on the seed and the step. Returns the final state and the metrics
    averaged over the chunk. Every world model trains through it.
    """
    data_key = jax.random.key(config.seed + 1)

    def body(state, _):
        key = jax.random.fold_in(data_key, state.step)
        obs, actions = data_lib.sample_windows(
            all_obs, all_actions, key, batch_size=config.batch_size, window=config.window
        )
        return train_step(state, obs, actions, loss_key(config, state.step),
                          model_config=model_config, config=config)

    state, metrics = jax.lax.scan(body, state, None, length=num_steps)
    return state, jax.tree.map(jnp.mean, metrics)


def loss_key(config: TrainConfig, step) -> jax.Array:
    """The key of step `step`'s draws in the loss: fold_in(key(seed + 2), step)."""
    return jax.random.fold_in(jax.random.key(config.seed + 2), step)


@functools.partial(jax.jit, static_argnames=("model_config", "config"))
def _train_step_jit(state: TrainState, obs, actions, *, model_config,
                    config: TrainConfig) -> tuple[TrainState, dict]:
    """`train_step` with step t's loss key (`loss_key`), drawn inside the compiled step."""
    return train_step(state, obs, actions, loss_key(config, state.step),
                      model_config=model_config, config=config)


def streamed_batches(dataset: data_lib.Dataset, config: TrainConfig, start: int, stop: int):
    """Yields the batches (obs [B, W+1, *obs_shape], actions [B, W, A]) of steps start..stop-1,
    read from the dataset's memory-mapped shards: the same windows `train_chunk` samples in
    memory (batch t uses fold_in(key(seed + 1), t)), one batch in memory at a time, the next
    read by a background thread while the current one trains."""
    import concurrent.futures

    data_key = jax.random.key(config.seed + 1)

    def read(step: int):
        episodes, starts = data_lib.window_indices(
            jax.random.fold_in(data_key, step), dataset.num_episodes, dataset.episode_length,
            batch_size=config.batch_size, window=config.window)
        return data_lib.read_windows(dataset, np.asarray(episodes), np.asarray(starts),
                                     config.window)

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(read, start) if start < stop else None
        for step in range(start, stop):
            batch = pending.result()
            pending = pool.submit(read, step + 1) if step + 1 < stop else None
            yield batch


def train_chunk_streamed(state: TrainState, dataset: data_lib.Dataset, *,
                         model_config: ModelConfig, config: TrainConfig,
                         num_steps: int) -> tuple[TrainState, dict]:
    """`num_steps` train steps on windows read from disk (see `streamed_batches`): for
    datasets that need not fit in memory, e.g. pixels. Returns the final state and the
    metrics averaged over the chunk."""
    start = int(state.step)
    history = []
    for obs, actions in streamed_batches(dataset, config, start, start + num_steps):
        state, metrics = _train_step_jit(state, obs, actions, model_config=model_config,
                                         config=config)
        history.append(metrics)
    return state, jax.tree.map(lambda *v: jnp.mean(jnp.stack(v)), *history)


# ----------------------------------------------------------------------------- sharded training


def _abstract_state(model_config, config):
    shape = tuple(model_config.obs_shape)
    return jax.eval_shape(functools.partial(init_state, model_config, config),
                          jnp.zeros(shape), jnp.ones(shape))


def train_state_shardings(mesh: jax.sharding.Mesh, model_config, config, *,
                          min_size: int = distributed.MIN_SHARD_SIZE) -> PyTree:
    """The NamedShardings of a `hjepa.train.TrainState` for these configs."""
    return distributed.state_shardings(mesh, _abstract_state(model_config, config),
                                       min_size=min_size)


def abstract_train_state(mesh: jax.sharding.Mesh, model_config, config) -> PyTree:
    """ShapeDtypeStructs of a `hjepa.train.TrainState` in its shardings on the mesh.

    A restore target: ``hjepa.checkpoint.restore(manager, abstract_train_state(mesh, ...))``
    reads a checkpoint saved on any mesh straight into this mesh's layout.
    """
    return jax.tree.map(lambda s, sh: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sh),
                        _abstract_state(model_config, config),
                        train_state_shardings(mesh, model_config, config))


def init_sharded_state(mesh: jax.sharding.Mesh, model_config, config, obs_mean, obs_std):
    """`init_state`, created directly in its shardings on the mesh."""
    shardings = train_state_shardings(mesh, model_config, config)
    fn = jax.jit(functools.partial(init_state, model_config, config),
                 in_shardings=(distributed.replicated(mesh), distributed.replicated(mesh)),
                 out_shardings=shardings)
    return fn(obs_mean, obs_std)


@functools.lru_cache(maxsize=32)
def _train_chunk_fn(mesh, model_config, config, num_steps: int, num_episodes: int):
    shardings = train_state_shardings(mesh, model_config, config)
    data_key = jax.random.key(config.seed + 1)

    def chunk(state, obs, actions):
        def body(state, _):
            key = jax.random.fold_in(data_key, state.step)
            batch_obs, batch_actions = distributed.sample_windows(
                mesh, obs, actions, key, batch_size=config.batch_size, window=config.window,
                num_episodes=num_episodes)
            state, metrics = train_step(state, batch_obs, batch_actions,
                                        loss_key(config, state.step),
                                        model_config=model_config, config=config)
            return jax.lax.with_sharding_constraint(state, shardings), metrics

        state, metrics = jax.lax.scan(body, state, None, length=num_steps)
        return state, jax.tree.map(jnp.mean, metrics)

    data = distributed.data_sharding(mesh)
    return jax.jit(chunk, in_shardings=(shardings, data, data),
                   out_shardings=(shardings, distributed.replicated(mesh)))


def sharded_train_chunk(state, obs: jax.Array, actions: jax.Array, *, mesh: jax.sharding.Mesh,
                        model_config, config, num_steps: int, num_episodes: int):
    """`train_chunk` on the mesh: `num_steps` sharded train steps.

    Batch t is drawn from fold_in(key(seed + 1), t), exactly as on one device. obs and
    actions come from `load_episodes`; `num_episodes` is the number of real (unpadded) rows.
    Returns the new state (in `train_state_shardings`) and replicated chunk-mean metrics.

    Raises:
      ValueError: the batch size does not divide over the data axis.
    """
    distributed.check_divisible(mesh, config.batch_size, "batch_size")
    fn = _train_chunk_fn(mesh, model_config, config, int(num_steps), int(num_episodes))
    return fn(state, obs, actions)


class TrainingError(RuntimeError):
    """Training stopped on a fault (non-finite loss, collapsed latents)."""


# ------------------------------------------------------------------------ latent-variable model


def fit_latent_variable(config: LatentVariableConfig, train_config: TrainConfig, obs: np.ndarray,
        actions: np.ndarray, *, progress: bool = False) -> tuple[PyTree, list[dict]]:
    """Trains the latent-variable model on in-memory episodes.

    Args:
      config: the model.
      train_config: steps, batch, window, learning rate, loss weights and seed
        (`checkpoint_every` is unused: no checkpoints).
      obs: [N, T+1, O] state observations (e.g. `hjepa.data.Dataset.arrays()[0]`).
      actions: [N, T, A].
      progress: print a line per chunk of `train_config.log_every` steps.

    Returns:
      (params, history): history holds one dict of mean metrics per chunk, with "step" and
      "seconds" (wall time of the chunk, compilation included in the first).

    Raises:
      ValueError: bad configs or arrays that do not match them.
      TrainingError: a non-finite loss.
    """
    config.validate()
    obs, actions = np.asarray(obs, np.float32), np.asarray(actions, np.float32)
    if obs.ndim != 3 or obs.shape[2:] != tuple(config.model.obs_shape):
        raise ValueError(f"obs: expected [N, T+1, {config.model.obs_shape[0]}], got "
                         f"{list(obs.shape)}")
    if actions.shape != (obs.shape[0], obs.shape[1] - 1, config.model.action_size):
        raise ValueError(f"actions: expected [{obs.shape[0]}, {obs.shape[1] - 1}, "
                         f"{config.model.action_size}] to match obs, got {list(actions.shape)}")
    train_config.validate(actions.shape[1])
    flat = obs.reshape(-1, obs.shape[-1])
    params = world_model.of(config).init(jax.random.key(train_config.seed), flat.mean(0),
                                         flat.std(0))
    state = TrainState(jnp.zeros((), jnp.int32), params, optimizer(train_config).init(params))
    all_obs, all_actions = jnp.asarray(obs), jnp.asarray(actions)
    history = []

    def record(step: int, metrics: dict) -> None:
        seconds = (step - (history[-1]["step"] if history else 0)) / metrics.pop(
            "steps_per_second")
        history.append({**metrics, "step": step, "seconds": seconds})
        if progress:
            print(f"step {step}: loss {metrics['loss']:.4f} prediction "
                  f"{metrics['prediction']:.4f} kl {metrics['kl']:.3f} ({seconds:.1f} s)",
                  flush=True)

    state = train_loop(
        state, lambda state, num_steps: train_chunk(state, all_obs, all_actions,
                                                    model_config=config, config=train_config,
                                                    num_steps=num_steps),
        steps=train_config.steps, log_every=train_config.log_every, record=record)
    return state.params, history


# The critic trains without clipping: a bound no gradient reaches (clip_by_global_norm then
# passes every gradient through unchanged).
NO_CLIP = 1e30


def critic_train_config(config: CriticConfig, *, log_every: int) -> TrainConfig:
    """The `TrainConfig` a critic trains with through `train_chunk`: its steps, batch, window
    and learning rate (Adam, cosine decay to 10%), no clipping; windows drawn from
    fold_in(key(seed + 2), t) and random pairs from fold_in(key(seed + 3), t)."""
    return TrainConfig(steps=config.steps, batch_size=config.batch_size, window=config.window,
                       learning_rate=config.learning_rate, grad_clip=NO_CLIP,
                       seed=config.seed + 1, checkpoint_every=config.steps,
                       log_every=log_every)


def fit_critic(config: CriticConfig, latents, *, log_every: int = 500
               ) -> tuple[PyTree, list[dict]]:
    """Trains a critic on the latent episodes [N, T+1, D] of a frozen world model
    (`hjepa.critic.encode_dataset` encodes a dataset), through the one chunk and loop.

    Returns:
      (critic params, metrics records [{"step", "loss", "bound_excess", ...}], one per
      `log_every` steps).

    Raises:
      ValueError: a bad config, or latents that are not episodes [N, T+1, D] with T at least
        the window.
    """
    config.validate()
    latents = np.asarray(latents, np.float32)
    if latents.ndim != 3:
        raise ValueError(f"latents: expected episodes [N, T+1, D], got shape {latents.shape}")
    if config.window > latents.shape[1] - 1:
        raise ValueError(f"window: expected at most the episode length {latents.shape[1] - 1}, "
                         f"got {config.window}")
    model = CriticModel(config, latents.shape[-1])
    train_config = critic_train_config(config, log_every=log_every)
    train_config.validate(latents.shape[1] - 1)
    params = world_model.of(model).init(jax.random.key(config.seed))
    return _fit_on_episodes(model, train_config, params, latents, log_every=log_every)


def _fit_on_episodes(model, train_config: TrainConfig, params: PyTree, episodes: np.ndarray, *,
                     log_every: int) -> tuple[PyTree, list[dict]]:
    """A family over a frozen model's latents (critic, goal space, skills) trained from
    `params` on in-memory episodes [N, T+1, F] of latents and what rides with them (positions,
    actions), through the one chunk and loop. Returns (params, metrics records)."""
    state = TrainState(jnp.zeros((), jnp.int32), params, optimizer(train_config).init(params))
    all_episodes = jnp.asarray(episodes)
    no_actions = jnp.zeros((episodes.shape[0], episodes.shape[1] - 1, 1), jnp.float32)
    history = []
    state = train_loop(
        state, lambda state, num_steps: train_chunk(state, all_episodes, no_actions,
                                                    model_config=model, config=train_config,
                                                    num_steps=num_steps),
        steps=train_config.steps, log_every=log_every,
        record=lambda step, metrics: history.append({"step": step, **metrics}))
    return state.params, history


def fit_critic_for_run(config: CriticConfig, encode, model_params: PyTree,
                       dataset: data_lib.Dataset, run_dir: str, *, latent_size: int,
                       log=None) -> tuple[PyTree, float]:
    """The critic of a world model's run, kept in `run_dir`: the dataset encoded once, shard by
    shard (`hjepa.critic.encode_dataset`), then `fit_critic`; cached by
    `hjepa.critic.fit_cached`.

    Args:
      encode: `(model_params, obs [..., *obs_shape]) -> latents [..., D]`, static (hashable),
        e.g. `functools.partial(hjepa.model.encode, model_config)`.
      latent_size: D.
      log: called with a line before each phase, if given.

    Returns:
      (critic params, seconds its training took, encoding included).
    """

    def fit():
        if log is not None:
            log(f"encoding {dataset.num_episodes} episodes of {dataset.path}")
        latents = critic_lib.encode_dataset(encode, model_params, dataset)
        if log is not None:
            log(f"training the critic for {config.steps} steps")
        return fit_critic(config, latents)

    return critic_lib.fit_cached(config, run_dir, latent_size, fit)


def fit_goal_space(config: GoalSpaceConfig, latents, positions, *, log_every: int = 500
                   ) -> tuple[PyTree, list[dict]]:
    """Trains a goal-space model (`hjepa.goal_space`) on the latent episodes [N, T+1, D] of a
    frozen world model and their states' goal-space positions [N, T+1, P], through the one
    chunk and loop: every `config.stride`-th state of each episode, in windows of
    `config.window` strides.

    Returns:
      (goal-space params, metrics records [{"step", "loss", "head_error", ...}], one per
      `log_every` steps).

    Raises:
      ValueError: a bad config; latents and positions that are not matching episodes, or
        episodes shorter than the window.
    """
    config.validate()
    latents = np.asarray(latents, np.float32)
    positions = np.asarray(positions, np.float32)
    if latents.ndim != 3 or positions.ndim != 3 or latents.shape[:2] != positions.shape[:2]:
        raise ValueError(f"latents, positions: expected episodes [N, T+1, D] and [N, T+1, P], "
                         f"got shapes {latents.shape} and {positions.shape}")
    latents, positions = latents[:, ::config.stride], positions[:, ::config.stride]
    if config.window > latents.shape[1] - 1:
        raise ValueError(f"window: expected at most the episode's length in strides "
                         f"{latents.shape[1] - 1} (stride {config.stride}), got {config.window}")
    if not np.all(np.isfinite(positions)):
        raise ValueError("positions: expected finite goal-space positions")
    model = GoalSpaceModel(config, latents.shape[-1], positions.shape[-1])
    train_config = TrainConfig(steps=config.steps, batch_size=config.batch_size,
                               window=config.window, learning_rate=config.learning_rate,
                               grad_clip=NO_CLIP, seed=config.seed + 1,
                               checkpoint_every=config.steps, log_every=log_every)
    train_config.validate(latents.shape[1] - 1)
    rows = np.concatenate([latents, positions], axis=-1)  # [N, T+1, D + P]
    flat = rows.reshape(-1, rows.shape[-1])
    params = world_model.of(model).init(jax.random.key(config.seed), flat.mean(0), flat.std(0))
    return _fit_on_episodes(model, train_config, params, rows, log_every=log_every)


def fit_goal_space_for_run(config: GoalSpaceConfig, encode, model_params: PyTree,
                           dataset: data_lib.Dataset, run_dir: str, *, log=None
                           ) -> tuple[PyTree, dict]:
    """The goal-space model of a world model's run, trained on its dataset (encoded once,
    shard by shard) and written into `run_dir` (`hjepa.goal_space.save`).

    Args:
      encode: `(model_params, obs [..., *obs_shape]) -> latents [..., D]`, static (hashable).
      log: called with a line before each phase, if given.

    Returns:
      (params, the record written beside them).

    Raises:
      ValueError: the dataset records no goal-space positions.
    """
    positions = dataset.positions()  # raises for datasets without them
    t0 = time.perf_counter()
    if log is not None:
        log(f"encoding {dataset.num_episodes} episodes of {dataset.path}")
    latents = critic_lib.encode_dataset(encode, model_params, dataset)
    if log is not None:
        log(f"training the goal-space model for {config.steps} steps")
    params, history = fit_goal_space(config, latents, positions)
    record = {"position_size": int(positions.shape[-1]), "latent_size": int(latents.shape[-1]),
              "seconds": time.perf_counter() - t0, "history": history,
              "dataset": {"path": dataset.path, "fingerprint": dataset.fingerprint,
                          "task": dataset.task, "obs_kind": dataset.obs_kind}}
    goal_space.save(run_dir, config, params, record)
    return params, record


def fit_skills(config: SkillsConfig, latents, actions, action_low, action_high, *,
               log_every: int = 500) -> tuple[PyTree, list[dict]]:
    """Trains skills (`hjepa.skills`) on the latent episodes [N, T+1, D] of a frozen world
    model and the actions between them [N, T, A] inside [action_low, action_high] [A], through
    the one chunk and loop, on chunks of `config.chunk` steps.

    Returns:
      (skills params, metrics records [{"step", "loss", "decoding", ...}], one per
      `log_every` steps).

    Raises:
      ValueError: a bad config; latents and actions that are not matching episodes, actions
        outside their bounds, or episodes shorter than a chunk.
    """
    config.validate()
    latents = np.asarray(latents, np.float32)
    actions = np.asarray(actions, np.float32)
    low = np.asarray(action_low, np.float32).reshape(-1)
    high = np.asarray(action_high, np.float32).reshape(-1)
    if (latents.ndim != 3 or actions.ndim != 3 or latents.shape[0] != actions.shape[0]
            or latents.shape[1] != actions.shape[1] + 1 or actions.shape[-1] != low.shape[0]):
        raise ValueError(f"latents, actions: expected episodes [N, T+1, D] and [N, T, "
                         f"{low.shape[0]}], got shapes {latents.shape} and {actions.shape}")
    if not np.all(np.isfinite(actions)) or np.any(actions < low) or np.any(actions > high):
        raise ValueError(f"actions: expected finite actions inside [{low}, {high}]")
    if config.chunk > actions.shape[1]:
        raise ValueError(f"chunk: expected at most the episode's length {actions.shape[1]}, got "
                         f"{config.chunk}")
    model = SkillsModel(config, latents.shape[-1], tuple(float(x) for x in low),
                        tuple(float(x) for x in high))
    model.validate()
    train_config = TrainConfig(steps=config.steps, batch_size=config.batch_size,
                               window=config.chunk, learning_rate=config.learning_rate,
                               grad_clip=NO_CLIP, seed=config.seed + 1,
                               checkpoint_every=config.steps, log_every=log_every)
    train_config.validate(actions.shape[1])
    padded = np.concatenate([actions, np.zeros_like(actions[:, :1])], axis=1)  # [N, T+1, A]
    rows = np.concatenate([latents, padded], axis=-1)  # [N, T+1, D + A]
    params = world_model.of(model).init(jax.random.key(config.seed))
    return _fit_on_episodes(model, train_config, params, rows, log_every=log_every)


def fit_skills_for_run(config: SkillsConfig, encode, model_params: PyTree,
                       dataset: data_lib.Dataset, run_dir: str, action_low, action_high, *,
                       log=None) -> tuple[PyTree, dict]:
    """The skills of a world model's run, trained on its dataset (encoded once, shard by
    shard) and written into `run_dir` (`hjepa.skills.save`).

    Args:
      encode: `(model_params, obs [..., *obs_shape]) -> latents [..., D]`, static (hashable).
      action_low, action_high: the task's action bounds [A].
      log: called with a line before each phase, if given.

    Returns:
      (params, the record written beside them).
    """
    t0 = time.perf_counter()
    if log is not None:
        log(f"encoding {dataset.num_episodes} episodes of {dataset.path}")
    latents = critic_lib.encode_dataset(encode, model_params, dataset)
    actions = np.concatenate([np.asarray(shard) for shard in dataset.action_shards])
    if log is not None:
        log(f"training the skills for {config.steps} steps")
    params, history = fit_skills(config, latents, actions, action_low, action_high)
    record = {"action_size": int(actions.shape[-1]), "latent_size": int(latents.shape[-1]),
              "seconds": time.perf_counter() - t0, "history": history,
              "dataset": {"path": dataset.path, "fingerprint": dataset.fingerprint,
                          "task": dataset.task, "obs_kind": dataset.obs_kind}}
    skills_lib.save(run_dir, config, params, record)
    return params, record


def _run_record(model_config: ModelConfig, config: TrainConfig, dataset) -> dict:
    return {
        "model": model_config.to_dict(),
        "train": config.to_dict(),
        "dataset": {"task": dataset.task, "obs_kind": dataset.obs_kind,
                    "path": dataset.path, "num_episodes": dataset.num_episodes,
                    "fingerprint": dataset.fingerprint},
    }


def fit(
    model_config: ModelConfig,
    config: TrainConfig,
    dataset: data_lib.Dataset,
    run_dir: str,
    *,
    overwrite: bool = False,
    progress: bool = True,
    collapse_std: float = 1e-3,
    mesh: jax.sharding.Mesh | None = None,
    report: Callable[[int, dict], None] | None = None,
) -> TrainState:
    """Trains the world model, checkpointing to `run_dir` and resuming from it.

    `run_dir` holds `config.json` (model, train and dataset configs), `metrics.jsonl`,
    TensorBoard events under `tb/` and orbax checkpoints under `checkpoints/`. Calling
    `fit` again with the same configs resumes from the latest checkpoint and, for the same
    seed, ends with the same parameters as an uninterrupted run.

    With a `mesh` (`hjepa.distributed.make_mesh`) training is sharded: episodes and batches
    split over its data axis, parameters replicated (or split over its model axis), the same
    global batches as on one device. Call it in every process of a multi-process job; only
    process 0 writes the config, metrics, TensorBoard events and progress, and checkpoints
    are saved by all processes together. A checkpoint restores on any mesh.

    Every logged chunk's metrics are appended to `metrics.jsonl` (the run record, read by
    `hjepa.io.read_metrics`) and passed to `report(step, metrics)`, which decides what else
    to do with them (brax's `progress_fn`); without one, `default_reporters`: TensorBoard,
    and a progress bar when `progress`. A reporter with a `close()` is closed at the end.

    Raises:
      ValueError: bad configs, `run_dir` holds a run of another configuration, or the
        batch size does not divide over the mesh's data axis.
      TrainingError: the loss became non-finite or the latents collapsed (the last good
        checkpoint is kept).
    """
    model_config.validate()
    config.validate(dataset.episode_length)
    family = world_model.of(model_config)
    family.check_training(config.window)
    if mesh is not None and not family.shardable:
        raise ValueError(f"mesh: {family.name} models train on one device (mesh=None)")
    if config.loss.inverse_dynamics_weight and not getattr(model_config,
                                                           "inverse_dynamics_hidden", ()):
        raise ValueError("loss.inverse_dynamics_weight: needs a model with an inverse-dynamics "
                         "head (ModelConfig.inverse_dynamics_hidden), got none")
    pixels = dataset.obs_kind == "pixels"
    if pixels != model_config.takes_pixels:
        raise ValueError(
            f"dataset: a model with the {model_config.encoder!r} encoder takes "
            f"{'pixel' if model_config.takes_pixels else 'state'} observations, the dataset "
            f"holds {dataset.obs_kind} observations {tuple(dataset.manifest['obs_shape'])}"
        )
    if tuple(model_config.obs_shape) != tuple(dataset.manifest["obs_shape"]):
        raise ValueError(
            f"model obs_shape {tuple(model_config.obs_shape)} does not match the dataset's "
            f"observations {tuple(dataset.manifest['obs_shape'])} ({dataset.obs_kind})"
        )
    if model_config.action_size != dataset.manifest["action_size"]:
        raise ValueError(
            f"model action_size {model_config.action_size} does not match the dataset's "
            f"{dataset.manifest['action_size']}"
        )
    if mesh is not None:
        if pixels:
            raise ValueError("mesh: sharded training reads state datasets into device memory; "
                             "pixel datasets train streamed from disk on one device (mesh=None)")
        distributed.check_divisible(mesh, config.batch_size, "batch_size")
    main = mesh is None or jax.process_index() == 0
    hjepa_io.check_writable_directory(run_dir, name="run_dir")
    _check_run_dir(run_dir)  # before the lock, which would add its file to a user's directory
    lock = ownership.locked(run_dir, name="run_dir") if main else contextlib.nullcontext()
    with lock:
        return _fit_locked(model_config, config, dataset, run_dir, overwrite=overwrite,
                           progress=progress, collapse_std=collapse_std, mesh=mesh,
                           report=report, main=main)


def _check_run_dir(run_dir: str) -> None:
    """Raises ValueError when `run_dir` is neither new, nor empty, nor a run hjepa wrote
    (files a user added to a run stay, and are refused only when the run is replaced)."""
    if not os.path.isdir(run_dir) or ownership.recognised(run_dir, "run"):
        return
    if [e for e in os.listdir(run_dir) if e != ownership.LOCK]:
        ownership.check_removable(run_dir, "run", name="run_dir")  # refuses, naming them


def _prepare_run_dir(record: dict, run_dir: str, *, overwrite: bool, main: bool,
                     mesh) -> None:
    """Checks `run_dir` against the run `record` describes, empties it when `overwrite` asks
    to replace a run of another configuration or dataset, and writes the record.

    Raises:
      ValueError: `run_dir` holds files hjepa did not write; a run of another configuration
        or another dataset is there and `overwrite` is False.
    """
    config_path = os.path.join(run_dir, "config.json")
    record_for_compare = json.loads(json.dumps(record))
    replace = False
    _check_run_dir(run_dir)
    if os.path.exists(config_path):
        previous = ckpt.read_json(config_path)
        replace = _normalised(previous) != {k: record_for_compare[k] for k in ("model", "train")}
        if replace and not overwrite:
            raise ValueError(
                f"run_dir: {run_dir} holds a run of another configuration; choose another "
                "directory or pass overwrite=True (--overwrite)"
            )
        old_data, new_data = previous.get("dataset", {}), record_for_compare["dataset"]
        for key in ("task", "obs_kind", "fingerprint"):
            if replace or old_data.get(key) in (None, new_data[key]):
                continue
            if not overwrite:
                what = ("another dataset" if key == "fingerprint"
                        else f"{key} {old_data.get(key)!r}")
                raise ValueError(
                    f"dataset: the run in {run_dir} was trained on {what} "
                    f"({old_data.get('path')}, fingerprint {old_data.get('fingerprint')}), got "
                    f"{new_data['path']} ({new_data['task']!r}, {new_data['obs_kind']}, "
                    f"fingerprint {new_data['fingerprint']}); choose another run directory or "
                    "pass overwrite=True (--overwrite) to start it afresh"
                )
            replace = True
    if mesh is not None:  # every process has read it before process 0 replaces it
        distributed.barrier("hjepa-fit-config-read")
    if main:
        if replace:
            ownership.remove_contents(run_dir, "run", name="run_dir")
        ownership.mark(run_dir, "run")
        data_lib.atomic_write_json(config_path, record)


def _fit_locked(model_config, config, dataset, run_dir, *, overwrite, progress, collapse_std,
                mesh, report, main) -> TrainState:
    """`fit`'s work, with the lock on `run_dir` held (by process 0)."""
    pixels = dataset.obs_kind == "pixels"
    new = main and not os.path.exists(os.path.join(run_dir, ownership.MARKER)) \
        and not os.path.exists(os.path.join(run_dir, "config.json"))
    try:
        _prepare_run_dir(_run_record(model_config, config, dataset), run_dir,
                         overwrite=overwrite, main=main, mesh=mesh)
    except BaseException:
        if new:
            ownership.discard(run_dir)  # a first call that failed to start leaves nothing
        raise

    if pixels:  # streamed from the memory-mapped shards, never all in memory
        all_obs = all_actions = None
        mean, std = data_lib.observation_stats(dataset, per_channel=True)
        state = init_state(model_config, config, mean, std)
    elif mesh is None:
        all_obs, all_actions = dataset.arrays()
        mean = all_obs.reshape(-1, *all_obs.shape[2:]).mean(axis=0)
        std = all_obs.reshape(-1, *all_obs.shape[2:]).std(axis=0)
        state = init_state(model_config, config, mean, std)
    else:  # each process reads only the episodes its devices hold
        all_obs, all_actions = distributed.load_episodes(dataset, mesh)
        mean, std = distributed.normalizer_stats(all_obs, dataset.num_episodes)
        state = init_sharded_state(mesh, model_config, config, mean, std)
        distributed.barrier("hjepa-fit-run-dir")
    # into `state`'s shardings, whatever mesh saved it; a damaged latest checkpoint is moved
    # aside and training resumes from the one before
    mngr, restored = ckpt.restore_latest_good(
        os.path.join(run_dir, "checkpoints"), state,
        quarantine=os.path.join(run_dir, "corrupt-checkpoints"), log=_warn)
    state = state if restored is None else restored
    start = int(state.step)
    reporters = []
    if main:
        hjepa_io.truncate_metrics(run_dir, start)
        reporters = ([report] if report is not None
                     else default_reporters(run_dir, config.steps, start, progress=progress))
    if mesh is None and not pixels:
        all_obs, all_actions = jnp.asarray(all_obs), jnp.asarray(all_actions)
    if pixels:
        def run_chunk(state, num_steps):
            return train_chunk_streamed(state, dataset, model_config=model_config,
                                        config=config, num_steps=num_steps)
    elif mesh is None:
        def run_chunk(state, num_steps):
            return train_chunk(state, all_obs, all_actions, model_config=model_config,
                               config=config, num_steps=num_steps)
    else:
        def run_chunk(state, num_steps):
            return sharded_train_chunk(state, all_obs, all_actions, mesh=mesh,
                                       model_config=model_config, config=config,
                                       num_steps=num_steps, num_episodes=dataset.num_episodes)

    def check(step: int, metrics: dict) -> None:
        if metrics["latent_std_min"] < collapse_std:
            raise TrainingError(
                f"latents collapsed at step {step}: a latent dimension's std is "
                f"{metrics['latent_std_min']:.2e} < {collapse_std:.0e}; {_kept(mngr, run_dir)}")

    def record(step: int, metrics: dict) -> None:
        if main:
            hjepa_io.append_metrics(run_dir, {"step": step, **metrics})  # the run record
            for reporter in reporters:
                reporter(step, metrics)

    try:
        state = train_loop(state, run_chunk, steps=config.steps, log_every=config.log_every,
                           checkpoint_every=config.checkpoint_every, check=check,
                           record=record, save=lambda step, state: ckpt.save(mngr, step, state),
                           kept=lambda: _kept(mngr, run_dir))
    finally:
        for reporter in reporters:
            getattr(reporter, "close", lambda: None)()
        mngr.close()
    return state


def train_loop(state, run_chunk: Callable, *, steps: int, log_every: int,
               checkpoint_every: int | None = None, check: Callable | None = None,
               record: Callable | None = None, save: Callable | None = None,
               kept: Callable[[], str] | None = None):
    """The one training loop: jitted chunks of steps from `state.step` up to `steps`.

    Each chunk is `run_chunk(state, num_steps) -> (state, metrics)` of at most `log_every`
    steps, never across a multiple of `checkpoint_every`. After each: a non-finite loss
    raises TrainingError (the chunk's state is dropped, so the last saved state stays the last
    good one; `kept()` says where it is); `check(step, metrics)` may raise too; then
    `record(step, metrics)` (metrics as floats, with "steps_per_second") and, at multiples of
    `checkpoint_every` and at the end, `save(step, state)`. Returns the final state.
    """
    step = int(state.step)
    every = checkpoint_every or steps
    while step < steps:
        chunk = min(log_every, steps - step, every - step % every)
        t0 = time.perf_counter()
        new_state, metrics = run_chunk(state, chunk)
        metrics = {k: float(v) for k, v in metrics.items()}
        elapsed = time.perf_counter() - t0
        if not np.isfinite(metrics["loss"]):
            where = f"; {kept()}" if kept is not None else ""
            raise TrainingError(f"non-finite loss at step {step + chunk}{where}")
        if check is not None:
            check(step + chunk, metrics)
        state, step = new_state, step + chunk
        metrics["steps_per_second"] = chunk / elapsed
        if record is not None:
            record(step, metrics)
        if save is not None and (step % every == 0 or step == steps):
            save(step, state)
    return state


class TensorBoardReporter:
    """`report(step, metrics)` that writes each metric to TensorBoard under `train/`."""

    def __init__(self, run_dir: str):
        from tensorboardX import SummaryWriter

        self.writer = SummaryWriter(os.path.join(run_dir, "tb"))

    def __call__(self, step: int, metrics: dict) -> None:
        for name, value in metrics.items():
            self.writer.add_scalar(f"train/{name}", value, step)

    def close(self) -> None:
        self.writer.close()


class ProgressReporter:
    """`report(step, metrics)` that advances a tqdm progress bar with the loss."""

    def __init__(self, total: int, start: int):
        from tqdm.auto import tqdm

        self.bar = tqdm(total=total, initial=start, desc="train", unit="step")
        self.step = start

    def __call__(self, step: int, metrics: dict) -> None:
        self.bar.update(step - self.step)
        self.step = step
        self.bar.set_postfix(loss=f"{metrics['loss']:.4f}", pred=f"{metrics['prediction']:.4f}")

    def close(self) -> None:
        self.bar.close()


def default_reporters(run_dir: str, total: int, start: int, *, progress: bool) -> list:
    """What `fit` reports to when the caller passes no `report`: TensorBoard events in
    `run_dir/tb`, and a progress bar when `progress`."""
    reporters = [TensorBoardReporter(run_dir)]
    if progress:
        reporters.append(ProgressReporter(total, start))
    return reporters


def _normalised(record: dict) -> dict | None:
    """A run record's model and train configs as this version writes them (fields added
    since it was written take their defaults); None when they cannot be read."""
    try:
        return json.loads(json.dumps({
            "model": model_config_from_dict(record["model"]).to_dict(),
            "train": TrainConfig.from_dict(record["train"]).to_dict()}))
    except (KeyError, TypeError, ValueError):
        return None


def _warn(text: str) -> None:
    print(f"hjepa: warning: {text}", file=sys.stderr, flush=True)


def _kept(mngr, run_dir: str) -> str:
    latest = mngr.latest_step()
    if latest is None:
        return f"no checkpoint had been saved yet in {run_dir}"
    return f"the last good checkpoint (step {latest}) is kept in {run_dir}"


def read_run_record(run_dir: str) -> dict:
    """A run's `config.json`: {"model": ..., "train": ..., "dataset": {"task", "obs_kind",
    "path", ...}}.

    Raises:
      ValueError: `run_dir` is not a directory, or its record is missing, corrupt or
        edited into something hjepa did not write.
    """
    if not os.path.isdir(run_dir):
        raise ValueError(f"run_dir: expected a training run directory, {run_dir} "
                         f"{'is a file' if os.path.exists(run_dir) else 'does not exist'}")
    config_path = os.path.join(run_dir, "config.json")
    record = ckpt.read_json(config_path)
    dataset = record.get("dataset") if isinstance(record, dict) else None
    if (not isinstance(dataset, dict)
            or not all(isinstance(dataset.get(k), str) for k in ("task", "obs_kind"))
            or not all(isinstance(record.get(k), dict) for k in ("model", "train"))):
        raise ValueError(f"run {run_dir}: {config_path} is not a run record hjepa can read "
                         "(expected model, train and dataset entries with the dataset's task "
                         "and obs_kind)")
    return record


def load_run(run_dir: str, *, task: str | None = None,
             mesh: jax.sharding.Mesh | None = None) -> tuple[ModelConfig, TrainConfig, PyTree]:
    """Loads a trained model from a run directory: (model config, train config, params).

    With a `mesh`, the whole train state is restored replicated on it (in every process of
    a multi-process job, together), whatever mesh saved it.

    Raises:
      ValueError: missing or corrupt files, a run of another task, or a checkpoint that
        does not match the run's configuration.
    """
    record = read_run_record(run_dir)
    config_path = os.path.join(run_dir, "config.json")
    try:
        trained_on = record["dataset"]["task"]
        model_config = model_config_from_dict(record["model"])
        config = TrainConfig.from_dict(record["train"])
        model_config.validate()
    except (KeyError, TypeError, ValueError, AttributeError) as error:  # a hand-edited record
        raise ValueError(f"run {run_dir}: {config_path} is not a run record hjepa can read "
                         f"({type(error).__name__}: {error})") from None
    if task is not None and trained_on != task:
        raise ValueError(
            f"run {run_dir}: expected a model of task {task!r}, it was trained on "
            f"{trained_on!r}"
        )
    # shapes only (nothing is initialised); the checkpoint holds the normaliser's statistics
    like = jax.eval_shape(functools.partial(init_state, model_config, config), None, None)
    if mesh is not None:
        sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
    else:
        sharding = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    like = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding),
                        like)
    mngr = ckpt.manager(os.path.join(run_dir, "checkpoints"))
    try:
        state = ckpt.restore(mngr, like)
    finally:
        mngr.close()
    return model_config, config, state.params
