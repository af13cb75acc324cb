"""Goals in a goal space: plan toward a point of the task's goal space, not a whole observation.

A task's goal space is where its success is measured (`Task.position`: the pusher's object
xy, the ant's torso xy, the reacher's fingertip). A goal given there says nothing of the rest
of the body (the ant's legs, the pusher's arm), so the latent distance to the latent of some
goal observation is the wrong cost: it is dominated by what the goal does not ask for. A
goal-space model learns, from the same reward-free data and with the world model frozen, two
ways to score a latent z against a goal point g [P]:

- the goal head, an MLP z -> p̂(z) [P] regressed onto the recorded positions of the data's
  states (`hjepa.data` records them); cost "distance": |p̂(z) − g|, in the goal space's
  units (metres), a straight line;
- a goal-conditioned critic: embeddings φ(z) [E] and ψ(p) [E], with d(z, g) = |φ(z) − ψ(g)|
  the steps to go from z to a state at g. Every observed stretch bounds it,
  d(z_t, p_{t+k}) <= k (a hinge on the excess, squared, for k = 0..W), and random pairs
  (z, p) of the batch are pushed apart (capped at `max_steps`), so d is the fewest steps
  through the data to get there: round a maze's walls, where the head's distance is a
  straight line through them. It counts on a coarser clock of `stride` environment steps
  (trained on every stride-th state), so a maze crossed in hundreds of steps spans a few
  dozen of its units; `steps_to_go` reports environment steps. Cost "steps".

    params = {"head": MLP params, "embed_latent": MLP params, "embed_position": MLP params,
              "position_mean": [P], "position_std": [P]}   (the data's position statistics)

`GoalSpaceCost` is the planning cost (a hashable callable `(problem params, z [D]) -> []`
reading `params["goal_space"]` and the goal point `params["goal"]` [P]); world models take it
where they take a critic (`hjepa.model.problem`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from typing import Any

import flax.serialization
import jax
import jax.numpy as jnp
import numpy as np

from hjepa import io
from hjepa.configs import GoalSpaceConfig
from hjepa.io import read_json
from hjepa.modules import MLP

PyTree = Any

COST_KINDS = ("distance", "steps")
GOAL_SPACE_FILE = "goal_space.msgpack"
GOAL_SPACE_RECORD = "goal_space.json"


def _head(config: GoalSpaceConfig, position_size: int) -> MLP:
    return MLP(config.hidden, position_size)


def _embed(config: GoalSpaceConfig) -> MLP:
    return MLP(config.hidden, config.embedding_size)


def init(config: GoalSpaceConfig, key: jax.Array, latent_size: int, position_size: int,
         position_mean=None, position_std=None) -> PyTree:
    """Initial params for latents [D = latent_size] and goal points [P = position_size];
    the position statistics (default 0 and 1) normalise the head's targets and ψ's input."""
    config.validate()
    head_key, latent_key, position_key = jax.random.split(key, 3)
    mean = jnp.zeros(position_size) if position_mean is None else jnp.asarray(position_mean)
    std = jnp.ones(position_size) if position_std is None else jnp.asarray(position_std)
    return {
        "head": _head(config, position_size).init(head_key, jnp.zeros(latent_size)),
        "embed_latent": _embed(config).init(latent_key, jnp.zeros(latent_size)),
        "embed_position": _embed(config).init(position_key, jnp.zeros(position_size)),
        "position_mean": mean.astype(jnp.float32),
        "position_std": jnp.maximum(std, 1e-6).astype(jnp.float32),
    }


def _scale(params: PyTree) -> tuple[jax.Array, jax.Array]:
    """The data's position statistics (constants: never trained)."""
    return (jax.lax.stop_gradient(params["position_mean"]),
            jax.lax.stop_gradient(params["position_std"]))


def predict_position(config: GoalSpaceConfig, params: PyTree, latent: jax.Array) -> jax.Array:
    """The goal head's position p̂(z) [..., P] of latents [..., D]."""
    mean, std = _scale(params)
    size = mean.shape[-1]
    return mean + std * _head(config, size).apply(params["head"], latent)


def steps_to_go(config: GoalSpaceConfig, params: PyTree, latent: jax.Array,
                position: jax.Array) -> jax.Array:
    """The critic's steps to go d(z, p) [...] (environment steps: strides × `stride`) from
    latents [..., D] to goal points [..., P]."""
    mean, std = _scale(params)
    embed = _embed(config)
    difference = (embed.apply(params["embed_latent"], latent)
                  - embed.apply(params["embed_position"], (position - mean) / std))
    return config.stride * jnp.sqrt(jnp.sum(difference**2, axis=-1) + 1e-6)


def head_distance(config: GoalSpaceConfig, params: PyTree, latent: jax.Array,
                  position: jax.Array) -> jax.Array:
    """|p̂(z) − p| [...] in the goal space's units, latents [..., D], points [..., P]."""
    error = predict_position(config, params, latent) - position
    return jnp.sqrt(jnp.sum(error**2, axis=-1) + 1e-12)


def loss(params: PyTree, config: GoalSpaceConfig, latents: jax.Array, positions: jax.Array,
         key: jax.Array) -> tuple[jax.Array, dict]:
    """The goal-space model's loss on windows of latents [B, W+1, D] (constants: the encoder
    is frozen) and their states' positions [B, W+1, P], one stride apart (`fit_goal_space`
    subsamples the episodes); `key` draws the random pairs. Distances here are in strides.

    Returns (loss [], metrics): `head_error` (mean squared error of p̂ in normalised units),
    `bound_excess` (mean squared excess of d(z_t, p_{t+k}) over k; 0 when every bound holds)
    and `random_pair_steps` (mean capped d of random pairs).
    """
    batch, length, _ = positions.shape
    mean, std = _scale(params)
    normalised = (positions - mean) / std  # [B, W+1, P]
    head = _head(config, positions.shape[-1]).apply(params["head"], latents)  # [B, W+1, P]
    head_error = jnp.mean((head - normalised) ** 2)
    embed = _embed(config)
    start = embed.apply(params["embed_latent"], latents[:, 0])  # [B, E]
    targets = embed.apply(params["embed_position"], normalised)  # [B, W+1, E]
    gaps = jnp.sqrt(jnp.sum((targets - start[:, None]) ** 2, -1) + 1e-6)  # [B, W+1]
    steps = jnp.arange(length, dtype=gaps.dtype)  # k = 0..W
    excess = jnp.mean(jax.nn.relu(gaps - steps) ** 2)
    other = jax.random.permutation(key, batch)
    index = jax.random.randint(jax.random.fold_in(key, 1), (batch,), 0, length)
    pair = jnp.sqrt(jnp.sum((start - targets[other, index]) ** 2, -1) + 1e-6)  # [B]
    spread = jnp.mean(jnp.minimum(pair, config.max_steps))
    total = (config.head_weight * head_error + config.bound_weight * excess
             - spread / config.max_steps)
    return total, {"loss": total, "head_error": head_error, "bound_excess": excess,
                   "random_pair_steps": spread}


def check_goal(goal, position_size: int, *, name: str = "goal") -> jax.Array:
    """`goal` as a float32 point of a goal space of size P = `position_size`.

    Raises:
      ValueError: not a vector [P], or (when concrete) not finite.
    """
    shape = tuple(jnp.shape(goal))
    if shape != (position_size,):
        raise ValueError(f"{name}: expected a point of the task's goal space, shape "
                         f"({position_size},), got shape {shape}")
    if not isinstance(goal, jax.core.Tracer) and not np.all(np.isfinite(np.asarray(goal))):
        raise ValueError(f"{name}: expected finite coordinates, got {np.asarray(goal)}")
    return jnp.asarray(goal, jnp.float32)


@dataclasses.dataclass(frozen=True)
class GoalSpaceCost:
    """The planning cost toward a goal point: `(params, z [D]) -> []` with `params` holding
    `"goal_space"` (this model's params) and `"goal"` (the point [P]).

    kind "distance": the goal head's |p̂(z) − g| (goal-space units); "steps": the critic's
    steps to go d(z, g).
    """

    config: GoalSpaceConfig
    position_size: int
    kind: str = "distance"

    in_goal_space = True  # problems take the goal as a point [P], not as an observation

    def __post_init__(self):
        if self.kind not in COST_KINDS:
            raise ValueError(f"goal-space cost: expected one of {list(COST_KINDS)}, got "
                             f"{self.kind!r}")

    def __call__(self, params: PyTree, latent: jax.Array) -> jax.Array:
        if self.kind == "distance":
            return head_distance(self.config, params["goal_space"], latent, params["goal"])
        return steps_to_go(self.config, params["goal_space"], latent, params["goal"])


def in_goal_space(cost) -> bool:
    """Whether a planning cost (None, a critic config, a `GoalSpaceCost`) takes goal points."""
    return bool(getattr(cost, "in_goal_space", False))


# ----------------------------------------------------------------------------- files


def save(run_dir: str, config: GoalSpaceConfig, params: PyTree, record: dict) -> None:
    """Writes `goal_space.msgpack` and `goal_space.json` (config, sizes, training record,
    digest) atomically into `run_dir`, the params first."""
    payload = flax.serialization.to_bytes(params)
    io.atomic_write_bytes(os.path.join(run_dir, GOAL_SPACE_FILE), payload)
    io.atomic_write_json(os.path.join(run_dir, GOAL_SPACE_RECORD), {
        "config": dataclasses.asdict(config), **record,
        "sha256": hashlib.sha256(payload).hexdigest()})


def kept_record(run_dir: str, config: GoalSpaceConfig) -> dict | None:
    """The record of the goal-space model kept in `run_dir` if it was trained with `config`;
    None when there is none; ValueError when there is one of another configuration."""
    path = os.path.join(run_dir, GOAL_SPACE_RECORD)
    if not os.path.exists(path):
        return None
    record = read_json(path)
    if record.get("config") != json.loads(json.dumps(dataclasses.asdict(config))):
        raise ValueError(f"--run-dir: {run_dir} holds a goal-space model of another "
                         "configuration; pass --overwrite to replace it")
    return record


def load(run_dir: str, latent_size: int) -> tuple[GoalSpaceConfig, int, PyTree]:
    """The goal-space model kept in `run_dir` by `save` (or `hjepa goal-space`):
    (config, position size P, params).

    Raises:
      ValueError: none there, a record hjepa cannot read, or params that do not match their
        digest or config.
    """
    path, record_path = (os.path.join(run_dir, name)
                         for name in (GOAL_SPACE_FILE, GOAL_SPACE_RECORD))
    if not (os.path.exists(path) and os.path.exists(record_path)):
        raise ValueError(f"goal space: {run_dir} holds no goal-space model "
                         f"({GOAL_SPACE_RECORD} and {GOAL_SPACE_FILE}); train one with "
                         f"`hjepa goal-space --run-dir {run_dir} --data DATA`")
    record = read_json(record_path)
    try:
        config = GoalSpaceConfig.from_dict(record["config"])
        config.validate()
        position_size = int(record["position_size"])
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"goal space: {record_path} is not a goal-space record hjepa can read "
                         f"({type(error).__name__}: {error})") from None
    with open(path, "rb") as f:
        payload = f.read()
    if record.get("sha256") != hashlib.sha256(payload).hexdigest():
        raise ValueError(f"goal space: {path} is corrupt: it does not match the digest recorded "
                         f"in {record_path}")
    like = jax.eval_shape(  # shapes only: nothing is initialised
        lambda: init(config, jax.random.key(0), latent_size, position_size))
    try:
        params = flax.serialization.from_bytes(like, payload)
    except (ValueError, KeyError) as error:
        raise ValueError(f"goal space: {path} does not match its config in {record_path} for "
                         f"latents of size {latent_size}: {error}") from None
    return config, position_size, params
