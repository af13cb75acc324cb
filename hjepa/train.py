"""Training the JEPA world model: a pure jitted train step and `fit()` around it."""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import time
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from hjepa import checkpoint as ckpt
from hjepa import data as data_lib
from hjepa import hierarchy, losses
from hjepa import model as model_lib
from hjepa.model import ModelConfig

PyTree = Any


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """How to train. Hashable; saved in the run directory.

    Attributes:
      steps: optimiser steps.
      batch_size: windows per batch.
      window: prediction steps per window (the multi-step rollout length).
      learning_rate: peak Adam learning rate (cosine decay to 10% over `steps`).
      grad_clip: global-norm gradient clipping.
      seed: seeds parameters and the batches (batch t uses fold_in(key, t)).
      checkpoint_every: steps between checkpoints.
      log_every: steps between metric records (steps run in jitted chunks of this size).
      loss: term weights.
    """

    steps: int = 3000
    batch_size: int = 256
    window: int = 8
    learning_rate: float = 1e-3
    grad_clip: float = 1.0
    seed: int = 0
    checkpoint_every: int = 1000
    log_every: int = 100
    loss: losses.LossConfig = losses.LossConfig()

    def validate(self, episode_length: int | None = None) -> None:
        for name in ("steps", "batch_size", "window", "checkpoint_every", "log_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name}: expected a positive integer, got {value!r}")
        if self.batch_size < 2:
            raise ValueError(f"batch_size: expected at least 2 (VICReg needs a batch), got "
                             f"{self.batch_size}")
        for name in ("learning_rate", "grad_clip"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"{name}: expected a positive number, got {value!r}")
        if episode_length is not None and self.window > episode_length:
            raise ValueError(
                f"window: expected at most the dataset's episode length {episode_length}, "
                f"got {self.window}"
            )

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        data = dict(data)
        data["loss"] = losses.LossConfig(**data["loss"])
        return cls(**data)


class TrainState(NamedTuple):
    step: jax.Array  # []
    params: PyTree
    opt_state: PyTree


def optimizer(config: TrainConfig) -> optax.GradientTransformation:
    schedule = optax.cosine_decay_schedule(config.learning_rate, config.steps, alpha=0.1)
    return optax.chain(optax.clip_by_global_norm(config.grad_clip), optax.adam(schedule))


def init_params(model_config: ModelConfig | hierarchy.HierarchyConfig, key: jax.Array,
                obs_mean=None, obs_std=None) -> PyTree:
    """Initial params of a flat model or a hierarchy."""
    if isinstance(model_config, hierarchy.HierarchyConfig):
        return hierarchy.init(model_config, key, obs_mean, obs_std)
    return model_lib.init(model_config, key, obs_mean, obs_std)


def init_state(model_config: ModelConfig, config: TrainConfig, obs_mean, obs_std) -> TrainState:
    params = init_params(model_config, jax.random.key(config.seed), obs_mean, obs_std)
    return TrainState(jnp.zeros((), jnp.int32), params, optimizer(config).init(params))


def loss_fn(params, model_config: ModelConfig, loss_config: losses.LossConfig, obs, actions):
    """JEPA loss on windows obs [B, W+1, *obs_shape], actions [B, W, A] (of every level of a
    `HierarchyConfig`: `hjepa.hierarchy.loss`)."""
    if isinstance(model_config, hierarchy.HierarchyConfig):
        return hierarchy.loss(params, model_config, loss_config, obs, actions)
    latents = model_lib.encode(model_config, params, obs)  # [B, W+1, D]
    predicted = jax.vmap(lambda z, a: model_lib.rollout(model_config, params, z, a))(
        latents[:, 0], actions
    )  # [B, W, D]
    loss, metrics = losses.jepa_loss(latents, predicted, loss_config)
    if loss_config.inverse_dynamics_weight:
        inferred = model_lib.infer_actions(model_config, params, latents[:, :-1],
                                           latents[:, 1:])  # [B, W, A]
        inverse = jnp.mean((inferred - actions) ** 2)
        loss = loss + loss_config.inverse_dynamics_weight * inverse
        metrics = {**metrics, "loss": loss, "inverse_dynamics": inverse}
    return loss, metrics


def train_step(state: TrainState, obs, actions, *, model_config: ModelConfig,
               config: TrainConfig) -> tuple[TrainState, dict]:
    """One optimiser step on a batch. Pure."""
    grads, metrics = jax.grad(loss_fn, has_aux=True)(
        state.params, model_config, config.loss, obs, actions
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
    fold_in(key(seed + 1), t), so the result depends only on the seed and the step.
    Returns the final state and the metrics averaged over the chunk.
    """
    data_key = jax.random.key(config.seed + 1)

    def body(state, _):
        key = jax.random.fold_in(data_key, state.step)
        obs, actions = data_lib.sample_windows(
            all_obs, all_actions, key, batch_size=config.batch_size, window=config.window
        )
        return train_step(state, obs, actions, model_config=model_config, config=config)

    state, metrics = jax.lax.scan(body, state, None, length=num_steps)
    return state, jax.tree.map(jnp.mean, metrics)


_train_step_jit = jax.jit(train_step, static_argnames=("model_config", "config"))


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


class TrainingError(RuntimeError):
    """Training stopped on a fault (non-finite loss, collapsed latents)."""


def _run_record(model_config: ModelConfig, config: TrainConfig, dataset) -> dict:
    return {
        "model": model_config.to_dict(),
        "train": config.to_dict(),
        "dataset": {"task": dataset.task, "obs_kind": dataset.obs_kind,
                    "path": dataset.path, "num_episodes": dataset.num_episodes},
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
) -> TrainState:
    """Trains the world model, checkpointing to `run_dir` and resuming from it.

    `run_dir` holds `config.json` (model, train and dataset configs), `metrics.jsonl`,
    TensorBoard events under `tb/` and orbax checkpoints under `checkpoints/`. Calling
    `fit` again with the same configs resumes from the latest checkpoint and, for the same
    seed, ends with the same parameters as an uninterrupted run.

    With a `mesh` (`hjepa.parallel.make_mesh`) training is sharded: episodes and batches
    split over its data axis, parameters replicated (or split over its model axis), the same
    global batches as on one device. Call it in every process of a multi-process job; only
    process 0 writes the config, metrics, TensorBoard events and progress, and checkpoints
    are saved by all processes together. A checkpoint restores on any mesh.

    Raises:
      ValueError: bad configs, `run_dir` holds a run of another configuration, or the
        batch size does not divide over the mesh's data axis.
      TrainingError: the loss became non-finite or the latents collapsed (the last good
        checkpoint is kept).
    """
    model_config.validate()
    config.validate(dataset.episode_length)
    if isinstance(model_config, hierarchy.HierarchyConfig):
        model_config.check_window(config.window)
        if mesh is not None:
            raise ValueError("mesh: hierarchical models train on one device (mesh=None)")
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
        from hjepa import parallel

        if pixels:
            raise ValueError("mesh: sharded training reads state datasets into device memory; "
                             "pixel datasets train streamed from disk on one device (mesh=None)")
        parallel.check_divisible(mesh, config.batch_size, "batch_size")
    main = mesh is None or jax.process_index() == 0
    record = _run_record(model_config, config, dataset)
    record_for_compare = json.loads(json.dumps(record))
    config_path = os.path.join(run_dir, "config.json")
    same = True
    if os.path.exists(config_path):
        previous = ckpt.read_json(config_path)
        same = _normalised(previous) == {
            k: record_for_compare[k] for k in ("model", "train")}
        old_data, new_data = previous.get("dataset", {}), record_for_compare["dataset"]
        for key in ("task", "obs_kind"):
            if same and old_data.get(key) != new_data[key] and not overwrite:
                raise ValueError(
                    f"dataset: the run in {run_dir} was trained on {key} "
                    f"{old_data.get(key)!r}, got a dataset of {new_data[key]!r}; choose another "
                    "run directory or pass overwrite=True (--overwrite)"
                )
        if not same and not overwrite:
            raise ValueError(
                f"run_dir: {run_dir} holds a run of another configuration; choose another "
                "directory or pass overwrite=True (--overwrite)"
            )
    if mesh is not None:  # every process has read it before process 0 replaces it
        parallel.barrier("hjepa-fit-config-read")
    if not same and main:
        import shutil

        shutil.rmtree(run_dir)
    if main:
        os.makedirs(run_dir, exist_ok=True)
        data_lib.atomic_write_json(config_path, record)

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
        all_obs, all_actions = parallel.load_episodes(dataset, mesh)
        mean, std = parallel.normalizer_stats(all_obs, dataset.num_episodes)
        state = parallel.init_state(mesh, model_config, config, mean, std)
        parallel.barrier("hjepa-fit-run-dir")
    mngr = ckpt.manager(os.path.join(run_dir, "checkpoints"))
    if mngr.latest_step() is not None:
        state = ckpt.restore(mngr, state)  # into `state`'s shardings, whatever mesh saved it
    start = int(state.step)
    writer = bar = None
    if main:
        _truncate_metrics(os.path.join(run_dir, "metrics.jsonl"), start)
        from tensorboardX import SummaryWriter

        writer = SummaryWriter(os.path.join(run_dir, "tb"))
    if mesh is None and not pixels:
        all_obs, all_actions = jnp.asarray(all_obs), jnp.asarray(all_actions)
    if progress and main:
        from tqdm.auto import tqdm

        bar = tqdm(total=config.steps, initial=start, desc="train", unit="step")
    try:
        step = start
        while step < config.steps:
            chunk = min(config.log_every, config.steps - step,
                        config.checkpoint_every - step % config.checkpoint_every)
            t0 = time.perf_counter()
            if pixels:
                new_state, metrics = train_chunk_streamed(
                    state, dataset, model_config=model_config, config=config, num_steps=chunk)
            elif mesh is None:
                new_state, metrics = train_chunk(state, all_obs, all_actions,
                                                 model_config=model_config, config=config,
                                                 num_steps=chunk)
            else:
                new_state, metrics = parallel.train_chunk(
                    state, all_obs, all_actions, mesh=mesh, model_config=model_config,
                    config=config, num_steps=chunk, num_episodes=dataset.num_episodes)
            metrics = {k: float(v) for k, v in metrics.items()}
            elapsed = time.perf_counter() - t0
            if not np.isfinite(metrics["loss"]):
                raise TrainingError(
                    f"non-finite loss at step {step + chunk}; {_kept(mngr, run_dir)}"
                )
            if metrics["latent_std_min"] < collapse_std:
                raise TrainingError(
                    f"latents collapsed at step {step + chunk}: a latent dimension's std is "
                    f"{metrics['latent_std_min']:.2e} < {collapse_std:.0e}; "
                    f"{_kept(mngr, run_dir)}"
                )
            state, step = new_state, step + chunk
            metrics["steps_per_second"] = chunk / elapsed
            if main:
                _log(run_dir, writer, step, metrics)
            if bar is not None:
                bar.update(chunk)
                bar.set_postfix(loss=f"{metrics['loss']:.4f}", pred=f"{metrics['prediction']:.4f}")
            if step % config.checkpoint_every == 0 or step == config.steps:
                ckpt.save(mngr, step, state)
    finally:
        if bar is not None:
            bar.close()
        if writer is not None:
            writer.close()
        mngr.close()
    return state


def _normalised(record: dict) -> dict | None:
    """A run record's model and train configs as this version writes them (fields added
    since it was written take their defaults); None when they cannot be read."""
    try:
        return json.loads(json.dumps({
            "model": hierarchy.config_from_dict(record["model"]).to_dict(),
            "train": TrainConfig.from_dict(record["train"]).to_dict()}))
    except (KeyError, TypeError, ValueError):
        return None


def _kept(mngr, run_dir: str) -> str:
    latest = mngr.latest_step()
    if latest is None:
        return f"no checkpoint had been saved yet in {run_dir}"
    return f"the last good checkpoint (step {latest}) is kept in {run_dir}"


def _log(run_dir: str, writer, step: int, metrics: dict) -> None:
    for name, value in metrics.items():
        writer.add_scalar(f"train/{name}", value, step)
    with open(os.path.join(run_dir, "metrics.jsonl"), "a") as f:
        f.write(json.dumps({"step": step, **metrics}) + "\n")


def _truncate_metrics(path: str, step: int) -> None:
    """Drops metric lines past `step` (left by a run interrupted after its last checkpoint)."""
    if not os.path.exists(path):
        return
    kept = []
    with open(path) as f:
        for line in f:
            try:
                if json.loads(line)["step"] <= step:
                    kept.append(line)
            except (json.JSONDecodeError, KeyError):
                break
    data_lib.atomic_write_bytes(path, "".join(kept).encode())


def load_run(run_dir: str, *, task: str | None = None,
             mesh: jax.sharding.Mesh | None = None) -> tuple[ModelConfig, TrainConfig, PyTree]:
    """Loads a trained model from a run directory: (model config, train config, params).

    With a `mesh`, the whole train state is restored replicated on it (in every process of
    a multi-process job, together), whatever mesh saved it.

    Raises:
      ValueError: missing or corrupt files, a run of another task, or a checkpoint that
        does not match the run's configuration.
    """
    record = ckpt.read_json(os.path.join(run_dir, "config.json"))
    if task is not None and record["dataset"]["task"] != task:
        raise ValueError(
            f"run {run_dir}: expected a model of task {task!r}, it was trained on "
            f"{record['dataset']['task']!r}"
        )
    model_config = hierarchy.config_from_dict(record["model"])
    config = TrainConfig.from_dict(record["train"])
    params = init_params(model_config, jax.random.key(0))
    like = TrainState(jnp.zeros((), jnp.int32), params, optimizer(config).init(params))
    if mesh is not None:
        sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
        like = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding),
                            like)
    mngr = ckpt.manager(os.path.join(run_dir, "checkpoints"))
    try:
        state = ckpt.restore(mngr, like)
    finally:
        mngr.close()
    return model_config, config, state.params
