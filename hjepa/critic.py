"""A trainable cost: a learned temporal distance between latents (steps to go).

The critic embeds a latent z [D] of the trained world model as φ(z) [E] and reads the cost to
go from z to a goal latent g as d(z, g) = ||φ(z) − φ(g)||, in environment steps. It is trained
from the same reward-free windows as the world model, with the encoder frozen:

- every observed stretch of k steps bounds the distance: d(z_t, z_{t+k}) ≤ k (a hinge on the
  excess, squared, for every k in the window);
- pairs of latents drawn at random from the batch are pushed apart (their mean distance is
  maximised, each capped at `max_steps`).

Because d is a distance in an embedding space it obeys the triangle inequality, so the
largest d the bounds allow between two latents is the fewest steps that join them through the
data: the geodesic through a maze's free space, where the latent distance of the world model
(the intrinsic cost) is a straight line through walls. Used as the cost (or terminal cost) of
short-horizon plans, it says how far a state still is from the goal along the way there.

    params = {"embed": MLP params}
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import time
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from hjepa import data as data_lib
from hjepa.configs import CriticConfig
from hjepa.configs import critic_config_from_dict as config_from_dict
from hjepa.io import read_json
from hjepa.modules import MLP

PyTree = Any


def _embed(config: CriticConfig) -> MLP:
    return MLP(config.hidden, config.embedding_size)


def init(config: CriticConfig, key: jax.Array, latent_size: int) -> PyTree:
    """Initial critic params for latents [D = latent_size]."""
    config.validate()
    return {"embed": _embed(config).init(key, jnp.zeros(latent_size))}


def distance(config: CriticConfig, params: PyTree, latent: jax.Array,
             goal: jax.Array) -> jax.Array:
    """Steps to go [...] from latents [..., D] to goal latents [..., D]."""
    embed = _embed(config)
    difference = embed.apply(params["embed"], latent) - embed.apply(params["embed"], goal)
    return jnp.sqrt(jnp.sum(difference**2, axis=-1) + 1e-6)


def loss(params: PyTree, config: CriticConfig, latents: jax.Array,
         key: jax.Array) -> tuple[jax.Array, dict]:
    """The critic's loss on latent windows [B, W+1, D] (constants: the encoder is frozen).

    Returns (loss [], metrics): `bound_excess` (mean squared excess of d(z_t, z_{t+k}) over k,
    0 when every bound holds) and `random_pair_steps` (mean capped distance of random pairs).
    """
    batch, length, _ = latents.shape
    embeddings = _embed(config).apply(params["embed"], latents)  # [B, W+1, E]
    # every stretch of k = 1..W steps from the window's first latent bounds the distance
    gaps = jnp.sqrt(jnp.sum((embeddings[:, 1:] - embeddings[:, :1]) ** 2, -1) + 1e-6)  # [B, W]
    steps = jnp.arange(1, length, dtype=gaps.dtype)
    excess = jnp.mean(jax.nn.relu(gaps - steps) ** 2)
    # random pairs: each window's first latent against another window's random latent
    other = jax.random.permutation(key, batch)
    index = jax.random.randint(jax.random.fold_in(key, 1), (batch,), 0, length)
    partner = embeddings[other, index]  # [B, E]
    pair = jnp.sqrt(jnp.sum((embeddings[:, 0] - partner) ** 2, -1) + 1e-6)
    spread = jnp.mean(jnp.minimum(pair, config.max_steps))
    total = config.bound_weight * excess - spread / config.max_steps
    return total, {"loss": total, "bound_excess": excess, "random_pair_steps": spread}


class CriticState(NamedTuple):
    step: jax.Array
    params: PyTree
    opt_state: PyTree


def _optimizer(config: CriticConfig) -> optax.GradientTransformation:
    return optax.adam(optax.cosine_decay_schedule(config.learning_rate, config.steps, 0.1))


@functools.partial(jax.jit, static_argnames=("config", "encode", "num_steps"))
def _train_chunk(state: CriticState, all_obs, all_actions, model_params, *,
                 config: CriticConfig, encode, num_steps: int):
    data_key = jax.random.key(config.seed + 2)

    def body(state, _):
        key = jax.random.fold_in(data_key, state.step)
        obs, _ = data_lib.sample_windows(all_obs, all_actions, key, batch_size=config.batch_size,
                                         window=config.window)
        latents = jax.lax.stop_gradient(encode(model_params, obs))  # [B, W+1, D]
        grads, metrics = jax.grad(loss, has_aux=True)(state.params, config, latents,
                                                      jax.random.fold_in(key, 7))
        updates, opt_state = _optimizer(config).update(grads, state.opt_state, state.params)
        return CriticState(state.step + 1, optax.apply_updates(state.params, updates),
                           opt_state), metrics

    state, metrics = jax.lax.scan(body, state, None, length=num_steps)
    return state, jax.tree.map(jnp.mean, metrics)


def fit(config: CriticConfig, dataset: data_lib.Dataset, encode, model_params: PyTree, *,
        latent_size: int, log_every: int = 500) -> tuple[PyTree, list[dict]]:
    """Trains the critic on a state dataset's windows, encoded by a frozen world model.

    Args:
      config: the critic's config.
      dataset: reward-free episodes (held in memory).
      encode: `(model_params, obs [..., *obs_shape]) -> latents [..., D]`, static (hashable),
        e.g. `hjepa.hierarchy.Encoder(hierarchy_config)`.
      model_params: the trained world model's params (not changed).
      latent_size: D.
      log_every: steps per jitted chunk and per metrics record.

    Returns:
      (critic params, metrics records [{"step", "loss", "bound_excess", ...}]).
    """
    if config.window > dataset.episode_length:
        raise ValueError(f"window: expected at most the dataset's episode length "
                         f"{dataset.episode_length}, got {config.window}")
    all_obs, all_actions = dataset.arrays()
    return fit_arrays(config, all_obs, all_actions, encode, model_params,
                      latent_size=latent_size, log_every=log_every)


def fit_arrays(config: CriticConfig, all_obs, all_actions, encode, model_params: PyTree, *,
               latent_size: int, log_every: int = 500) -> tuple[PyTree, list[dict]]:
    """`fit` on in-memory episodes obs [N, T+1, *obs_shape], actions [N, T, A]."""
    config.validate()
    if config.window > all_actions.shape[1]:
        raise ValueError(f"window: expected at most the episode length {all_actions.shape[1]}, "
                         f"got {config.window}")
    all_obs, all_actions = jnp.asarray(all_obs), jnp.asarray(all_actions)
    params = init(config, jax.random.key(config.seed), latent_size)
    state = CriticState(jnp.zeros((), jnp.int32), params, _optimizer(config).init(params))
    history = []
    while int(state.step) < config.steps:
        chunk = min(log_every, config.steps - int(state.step))
        state, metrics = _train_chunk(state, all_obs, all_actions, model_params, config=config,
                                      encode=encode, num_steps=chunk)
        history.append({"step": int(state.step), **{k: float(v) for k, v in metrics.items()}})
    return state.params, history


def encode_dataset(encode, model_params: PyTree, dataset: data_lib.Dataset, *,
                   chunk_episodes: int = 16):
    """Latents [N, T+1, D] (numpy) of every observation of a dataset, encoded `chunk_episodes`
    episodes at a time from its memory-mapped shards: a pixel dataset never sits in memory
    whole, only its latents do.

    Args:
      encode: `(model_params, obs [..., *obs_shape]) -> latents [..., D]`, static (hashable).
      model_params: the trained world model's params.
      dataset: an opened dataset.
      chunk_episodes: episodes encoded per compiled call (memory bound).
    """
    encode_chunk = jax.jit(encode)
    parts = []
    for shard in dataset.obs_shards:
        for first in range(0, len(shard), chunk_episodes):
            block = np.asarray(shard[first:first + chunk_episodes])  # [n, T+1, *obs_shape]
            if len(block) < chunk_episodes:  # pad to keep one compiled shape
                pad = np.repeat(block[-1:], chunk_episodes - len(block), axis=0)
                parts.append(np.asarray(encode_chunk(model_params,
                                                     np.concatenate([block, pad])))[:len(block)])
            else:
                parts.append(np.asarray(encode_chunk(model_params, block)))
    return np.concatenate(parts)


def _given_latents(model_params, latents):
    """`encode` of `fit_latents`: the windows are latents already."""
    del model_params
    return latents


def fit_latents(config: CriticConfig, latents, *, log_every: int = 500
                ) -> tuple[PyTree, list[dict]]:
    """`fit` on latent episodes [N, T+1, D] encoded beforehand (`encode_dataset`): the way to
    train a critic for a pixel model, whose encoder would otherwise run on every batch."""
    latents = np.asarray(latents, np.float32)
    if latents.ndim != 3:
        raise ValueError(f"latents: expected episodes [N, T+1, D], got shape {latents.shape}")
    no_actions = np.zeros((latents.shape[0], latents.shape[1] - 1, 1), np.float32)
    return fit_arrays(config, latents, no_actions, _given_latents, None,
                      latent_size=latents.shape[-1], log_every=log_every)


def fit_cached(config: CriticConfig, run_dir: str, latent_size: int, train
               ) -> tuple[PyTree, float]:
    """A critic for the world model of `run_dir`, trained once and kept beside it.

    Reads `run_dir/critic.msgpack` when `run_dir/critic.json` records the same config; else
    calls `train() -> (params, history)` and writes both files atomically (params, config,
    training seconds and the metric history).

    Returns:
      (critic params, seconds its training took).
    """
    import flax.serialization

    path = os.path.join(run_dir, "critic.msgpack")
    record_path = os.path.join(run_dir, "critic.json")
    wanted = json.loads(json.dumps(dataclasses.asdict(config)))
    if os.path.exists(path) and os.path.exists(record_path):
        with open(record_path) as f:
            record = json.load(f)
        if record.get("config") == wanted:
            return load(run_dir, latent_size)[1], record["seconds"]
    t0 = time.perf_counter()
    params, history = train()
    seconds = time.perf_counter() - t0
    payload = flax.serialization.to_bytes(params)
    data_lib.atomic_write_bytes(path, payload)
    data_lib.atomic_write_json(record_path, {"config": wanted, "seconds": seconds,
                                             "history": history,
                                             "sha256": hashlib.sha256(payload).hexdigest()})
    return params, seconds


def load(run_dir: str, latent_size: int) -> tuple[CriticConfig, PyTree]:
    """The critic kept in `run_dir` by `fit_cached` (or `hjepa critic`): (config, params).

    Raises:
      ValueError: the run directory holds no critic, or its files do not match.
    """
    import flax.serialization

    path = os.path.join(run_dir, "critic.msgpack")
    record_path = os.path.join(run_dir, "critic.json")
    if not (os.path.exists(path) and os.path.exists(record_path)):
        raise ValueError(f"critic: {run_dir} holds no critic (critic.json and critic.msgpack); "
                         f"train one with `hjepa critic --run-dir {run_dir} --data DATA`")
    record = read_json(record_path)
    try:
        config = config_from_dict(record["config"])
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"critic: {record_path} is not a critic record hjepa can read "
                         f"({type(error).__name__}: {error})") from None
    like = init(config, jax.random.key(0), latent_size)
    with open(path, "rb") as f:
        payload = f.read()
    if record.get("sha256") not in (None, hashlib.sha256(payload).hexdigest()):
        raise ValueError(f"critic: {path} is corrupt: it does not match the digest recorded in "
                         f"{record_path} (its bytes changed since it was saved)")
    try:
        params = flax.serialization.from_bytes(like, payload)
    except (ValueError, KeyError) as error:
        raise ValueError(f"critic: {path} does not match its config in {record_path} "
                         f"for latents of size {latent_size}: {error}") from None
    return config, params


def fit_for_run(config: CriticConfig, encode, model_params: PyTree, dataset: data_lib.Dataset,
                run_dir: str, *, latent_size: int, log=None) -> tuple[PyTree, float]:
    """The critic of a world model's run, kept in `run_dir`: the dataset encoded once, shard by
    shard (`encode_dataset`), then `fit_latents`; cached by `fit_cached`.

    Args:
      encode: `(model_params, obs [..., *obs_shape]) -> latents [..., D]`, e.g.
        `functools.partial(hjepa.model.encode, model_config)`.
      latent_size: D.
      log: called with a line before each phase, if given.

    Returns:
      (critic params, seconds its training took, encoding included).
    """

    def train():
        if log is not None:
            log(f"encoding {dataset.num_episodes} episodes of {dataset.path}")
        latents = encode_dataset(encode, model_params, dataset)
        if log is not None:
            log(f"training the critic for {config.steps} steps")
        return fit_latents(config, latents)

    return fit_cached(config, run_dir, latent_size, train)
