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
import hashlib
import json
import os
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

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
    like = jax.eval_shape(lambda: init(config, jax.random.key(0), latent_size))  # shapes
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
