"""The JEPA world model as pure functions over a params pytree.

    params = {"encoder": ..., "predictor": ..., "normalizer": {"mean": [O], "std": [O]}}

`encode` maps observations to latents, `predict` steps a latent with an action, `rollout`
chains predictions, and `problem` builds the `planners.Problem` that plans in latent space
toward a goal observation's latent.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp

import planners
from hjepa import cost as cost_lib
from hjepa.modules import ActionPredictor, MLPEncoder

PyTree = Any


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Architecture of the world model. Hashable; saved beside checkpoints.

    Attributes:
      obs_shape: shape of one observation (state: (O,)).
      action_size: A.
      latent_size: D.
      encoder_hidden: hidden layer sizes of the encoder MLP.
      predictor_hidden: hidden layer sizes of the predictor MLP.
    """

    obs_shape: tuple[int, ...]
    action_size: int
    latent_size: int = 32
    encoder_hidden: tuple[int, ...] = (256, 256)
    predictor_hidden: tuple[int, ...] = (256, 256)

    def validate(self) -> None:
        if not self.obs_shape or any(int(s) <= 0 for s in self.obs_shape):
            raise ValueError(f"obs_shape: expected positive sizes, got {self.obs_shape!r}")
        if len(self.obs_shape) != 1:
            raise ValueError(
                f"obs_shape: the MLP encoder takes flat observations (O,), got {self.obs_shape!r}"
            )
        for name in ("action_size", "latent_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name}: expected a positive integer, got {value!r}")
        for name in ("encoder_hidden", "predictor_hidden"):
            if any(int(s) <= 0 for s in getattr(self, name)):
                raise ValueError(
                    f"{name}: expected positive layer sizes, got {getattr(self, name)}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ModelConfig:
        data = dict(data)
        for name in ("obs_shape", "encoder_hidden", "predictor_hidden"):
            data[name] = tuple(data[name])
        return cls(**data)


def _encoder(config: ModelConfig) -> MLPEncoder:
    return MLPEncoder(config.latent_size, config.encoder_hidden)


def _predictor(config: ModelConfig) -> ActionPredictor:
    return ActionPredictor(config.predictor_hidden)


def init(config: ModelConfig, key: jax.Array, obs_mean: jax.Array | None = None,
         obs_std: jax.Array | None = None) -> PyTree:
    """Initial params. `obs_mean`/`obs_std` [*obs_shape] normalise observations (frozen)."""
    config.validate()
    encoder_key, predictor_key = jax.random.split(key)
    obs = jnp.zeros(config.obs_shape)
    latent = jnp.zeros(config.latent_size)
    action = jnp.zeros(config.action_size)
    mean = jnp.zeros(config.obs_shape) if obs_mean is None else jnp.asarray(obs_mean, jnp.float32)
    std = jnp.ones(config.obs_shape) if obs_std is None else jnp.asarray(obs_std, jnp.float32)
    return {
        "encoder": _encoder(config).init(encoder_key, obs),
        "predictor": _predictor(config).init(predictor_key, latent, action),
        "normalizer": {"mean": mean, "std": jnp.maximum(std, 1e-6)},
    }


def encode(config: ModelConfig, params: PyTree, obs: jax.Array) -> jax.Array:
    """Latents [..., D] of observations [..., *obs_shape]."""
    normalizer = jax.lax.stop_gradient(params["normalizer"])
    x = (obs - normalizer["mean"]) / normalizer["std"]
    return _encoder(config).apply(params["encoder"], x)


def predict(config: ModelConfig, params: PyTree, latent: jax.Array, action: jax.Array) -> jax.Array:
    """Next latent [..., D] from latent [..., D] and action [..., A]."""
    return _predictor(config).apply(params["predictor"], latent, action)


def rollout(config: ModelConfig, params: PyTree, latent: jax.Array,
            actions: jax.Array) -> jax.Array:
    """Predicted latents [H, D] after each of `actions` [H, A], starting from latent [D]."""

    def body(z, a):
        z = predict(config, params, z, a)
        return z, z

    _, latents = jax.lax.scan(body, latent, actions)
    return latents


# ----------------------------------------------------------------------------- planning


@dataclasses.dataclass(frozen=True)
class LatentStep:
    """Planning step in latent space: `(params, z [D], a [A]) -> (z' [D], cost [])`.

    `params` is `{"model": model params, "goal": goal latent [D]}`.
    """

    config: ModelConfig

    def __call__(self, params, latent, action):
        next_latent = predict(self.config, params["model"], latent, action)
        return next_latent, cost_lib.latent_distance(next_latent, params["goal"])


@dataclasses.dataclass(frozen=True)
class LatentTerminal:
    """Terminal cost: `weight` times the latent distance to the goal."""

    weight: float = 4.0

    def __call__(self, params, latent):
        return self.weight * cost_lib.latent_distance(latent, params["goal"])


@dataclasses.dataclass(frozen=True)
class EncodeObservation:
    """`observe` for `planners.mpc`: encodes the task's observation of an environment state."""

    config: ModelConfig
    task: Any  # a cached hjepa Task (hashable by identity)

    def __call__(self, params, env_state):
        return encode(self.config, params["model"], self.task.observe(env_state))


def problem(config: ModelConfig, params: PyTree, obs: jax.Array, goal_obs: jax.Array,
            action_low: jax.Array, action_high: jax.Array,
            terminal_weight: float = 4.0) -> planners.Problem:
    """A `planners.Problem` that plans in latent space from `obs` toward `goal_obs`.

    Args:
      config: the model's config.
      params: the model's params.
      obs: the current observation [*obs_shape].
      goal_obs: the goal observation [*obs_shape].
      action_low, action_high: bounds [A].
      terminal_weight: weight of the latent distance at the end of the horizon.
    """
    for name, value in (("obs", obs), ("goal_obs", goal_obs)):
        if tuple(jnp.shape(value)) != tuple(config.obs_shape):
            raise ValueError(
                f"{name}: expected an observation of shape {tuple(config.obs_shape)}, "
                f"got {tuple(jnp.shape(value))}"
            )
    for name, value in (("action_low", action_low), ("action_high", action_high)):
        if tuple(jnp.shape(value)) != (config.action_size,):
            raise ValueError(
                f"{name}: expected shape ({config.action_size},), got {tuple(jnp.shape(value))}"
            )
    return planners.Problem(
        step=LatentStep(config),
        terminal_cost=LatentTerminal(terminal_weight),
        params={"model": params, "goal": encode(config, params, goal_obs)},
        init_state=encode(config, params, obs),
        action_low=jnp.asarray(action_low, jnp.float32),
        action_high=jnp.asarray(action_high, jnp.float32),
    )
