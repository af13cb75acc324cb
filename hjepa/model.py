"""The JEPA world model as pure functions over a params pytree.

    params = {"encoder": ..., "predictor": ..., "normalizer": {"mean": [S], "std": [S]}}

S is the normaliser's shape: the observation's shape (O,) for the MLP encoder of state
observations, the channel count (C,) for the image encoders (conv, ViT) of pixels [H, W, C]
(uint8 pixels are standardised per channel, then encoded).

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
from hjepa import goal_space
from hjepa.configs import ENCODERS, ModelConfig  # noqa: F401  (re-exported)
from hjepa.modules import MLP, ActionPredictor, ConvEncoder, MLPEncoder, ViTEncoder

PyTree = Any

def _encoder(config: ModelConfig):
    if config.encoder == "conv":
        return ConvEncoder(config.latent_size, config.conv_channels, config.encoder_hidden,
                           config.frames)
    if config.encoder == "vit":
        return ViTEncoder(config.latent_size, config.patch_size)
    return MLPEncoder(config.latent_size, config.encoder_hidden)


def _predictor(config: ModelConfig) -> ActionPredictor:
    return ActionPredictor(config.predictor_hidden)


def _inverse_dynamics(config: ModelConfig) -> MLP:
    return MLP(config.inverse_dynamics_hidden, config.action_size)


def init(config: ModelConfig, key: jax.Array, obs_mean: jax.Array | None = None,
         obs_std: jax.Array | None = None) -> PyTree:
    """Initial params. `obs_mean`/`obs_std` [S] normalise observations (frozen).

    S is `config.normalizer_shape`: (O,) for state observations, (C,) for images.
    """
    config.validate()
    encoder_key, predictor_key = jax.random.split(key)
    obs = jnp.zeros(config.obs_shape)
    latent = jnp.zeros(config.latent_size)
    action = jnp.zeros(config.action_size)
    shape = config.normalizer_shape
    mean = jnp.zeros(shape) if obs_mean is None else jnp.asarray(obs_mean, jnp.float32)
    std = jnp.ones(shape) if obs_std is None else jnp.asarray(obs_std, jnp.float32)
    for name, value in (("obs_mean", mean), ("obs_std", std)):
        if value.shape != shape:
            raise ValueError(f"{name}: expected shape {shape}, got {value.shape}")
    params = {
        "encoder": _encoder(config).init(encoder_key, obs),
        "predictor": _predictor(config).init(predictor_key, latent, action),
        "normalizer": {"mean": mean, "std": jnp.maximum(std, 1e-6)},
    }
    if config.inverse_dynamics_hidden:  # its own key: the other params do not change
        pair = jnp.zeros(2 * config.latent_size)
        params["inverse_dynamics"] = _inverse_dynamics(config).init(jax.random.fold_in(key, 2),
                                                                    pair)
    return params


def encode(config: ModelConfig, params: PyTree, obs: jax.Array) -> jax.Array:
    """Latents [..., D] of observations [..., *obs_shape] (floats, or uint8 pixels)."""
    normalizer = jax.lax.stop_gradient(params["normalizer"])
    x = (jnp.asarray(obs, jnp.float32) - normalizer["mean"]) / normalizer["std"]
    return _encoder(config).apply(params["encoder"], x)


def predict(config: ModelConfig, params: PyTree, latent: jax.Array, action: jax.Array) -> jax.Array:
    """Next latent [..., D] from latent [..., D] and action [..., A]."""
    return _predictor(config).apply(params["predictor"], latent, action)


def infer_actions(config: ModelConfig, params: PyTree, latent: jax.Array,
                  next_latent: jax.Array) -> jax.Array:
    """The actions [..., A] the inverse-dynamics head infers between latents [..., D] and the
    next latents [..., D] (needs `config.inverse_dynamics_hidden`)."""
    if not config.inverse_dynamics_hidden:
        raise ValueError("infer_actions: the model has no inverse-dynamics head "
                         "(ModelConfig.inverse_dynamics_hidden is empty)")
    pair = jnp.concatenate([latent, next_latent], axis=-1)
    return _inverse_dynamics(config).apply(params["inverse_dynamics"], pair)


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

    `params` is `{"model": model params, "goal": goal latent [D]}`, plus `"critic"`: critic
    params when `critic` (a `hjepa.critic.CriticConfig`) is given, whose learned steps to go
    are then the cost instead of the latent distance (`hjepa.cost.goal_cost`). With a
    `hjepa.goal_space.GoalSpaceCost` as `critic`, `"goal"` is a goal point [P] and
    `"goal_space"` the goal-space model's params.
    """

    config: ModelConfig
    critic: Any = None  # a hjepa.critic.CriticConfig, a goal_space.GoalSpaceCost, or None

    def __call__(self, params, latent, action):
        next_latent = predict(self.config, params["model"], latent, action)
        return next_latent, cost_lib.goal_cost(self.critic, params, next_latent)


@dataclasses.dataclass(frozen=True)
class LatentTerminal:
    """Terminal cost: `weight` times the cost to the goal (see `LatentStep`)."""

    weight: float = 4.0
    critic: Any = None

    def __call__(self, params, latent):
        return self.weight * cost_lib.goal_cost(self.critic, params, latent)


@dataclasses.dataclass(frozen=True)
class EncodeObservation:
    """`observe` for `planners.mpc`: encodes the task's observation of an environment state."""

    config: ModelConfig
    task: Any  # a cached hjepa Task (hashable by identity)

    def __call__(self, params, env_state):
        return encode(self.config, params["model"], self.task.observe(env_state))


def problem(config: ModelConfig, params: PyTree, obs: jax.Array, goal_obs: jax.Array,
            action_low: jax.Array, action_high: jax.Array,
            terminal_weight: float = 4.0,
            critic: tuple[Any, PyTree] | None = None) -> planners.Problem:
    """A `planners.Problem` that plans in latent space from `obs` toward `goal_obs`.

    Args:
      config: the model's config.
      params: the model's params.
      obs: the current observation [*obs_shape].
      goal_obs: the goal observation [*obs_shape].
      action_low, action_high: bounds [A].
      terminal_weight: weight of the cost to the goal at the end of the horizon.
      critic: `(hjepa.critic.CriticConfig, critic params)`: a learned cost to go (steps)
        instead of the latent distance to the goal (the intrinsic cost); or
        `(hjepa.goal_space.GoalSpaceCost, goal-space params)`: then `goal_obs` is the goal
        as a point of the task's goal space [P].
    """
    critic_config, critic_params = critic if critic is not None else (None, None)
    in_goal_space = getattr(critic_config, "in_goal_space", False)
    checked = (("obs", obs),) if in_goal_space else (("obs", obs), ("goal_obs", goal_obs))
    for name, value in checked:
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
    if in_goal_space:
        problem_params = {"model": params, "goal_space": critic_params,
                          "goal": goal_space.check_goal(goal_obs, critic_config.position_size)}
    else:
        problem_params = {"model": params, "goal": encode(config, params, goal_obs)}
    if critic_config is not None and not in_goal_space:
        problem_params["critic"] = critic_params
    return planners.Problem(
        step=LatentStep(config, critic_config),
        terminal_cost=LatentTerminal(terminal_weight, critic_config),
        params=problem_params,
        init_state=encode(config, params, obs),
        action_low=jnp.asarray(action_low, jnp.float32),
        action_high=jnp.asarray(action_high, jnp.float32),
    )
