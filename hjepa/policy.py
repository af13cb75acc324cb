"""Mode 1: a reactive goal-conditioned policy over latents, `(params, z, g) -> action`.

Pure functions, in the manner of `hjepa.critic`: `init`, `act`, `loss`, and `Act`, the
policy as a `planners.Proposal` act that reads its goal from the problem's params (so a
hierarchy's subgoals reach it). `hjepa.distill` trains it on the planner's decisions.

Example:
  >>> params = policy.init(PolicyConfig(), jax.random.key(0), latent_size=32, action_size=2)
  >>> action = policy.act(PolicyConfig(), params, z, goal_z, low, high)   # [A]
  >>> proposal = planners.Proposal(policy.Act(PolicyConfig(), low, high), params)
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp

from hjepa.configs import PolicyConfig
from hjepa.modules import MLP

PyTree = Any


def _network(config: PolicyConfig, action_size: int) -> MLP:
    return MLP(tuple(config.hidden), action_size, layer_norm=False)


def features(latent: jax.Array, goal: jax.Array) -> jax.Array:
    """What the policy reads: [z, g - z] [..., 2D] (the goal relative to where it is)."""
    return jnp.concatenate([latent, goal - latent], axis=-1)


def init(config: PolicyConfig, key: jax.Array, latent_size: int, action_size: int) -> PyTree:
    """Policy params for latents of size D = `latent_size` and actions of size A."""
    return _network(config, action_size).init(key, jnp.zeros((2 * latent_size,)))


def act(config: PolicyConfig, params: PyTree, latent: jax.Array, goal: jax.Array,
        action_low: jax.Array, action_high: jax.Array) -> jax.Array:
    """The policy's action [..., A] inside [low, high] from latents [..., D] toward goal
    latents [..., D] (a tanh squashed onto the bounds)."""
    action_size = jnp.shape(action_low)[-1]
    raw = _network(config, action_size).apply(params, features(latent, goal))
    return action_low + (action_high - action_low) * 0.5 * (jnp.tanh(raw) + 1.0)


def loss(config: PolicyConfig, params: PyTree, latents: jax.Array, goals: jax.Array,
         actions: jax.Array, action_low: jax.Array, action_high: jax.Array
         ) -> tuple[jax.Array, dict]:
    """Mean squared error [] between the policy's actions and the planner's `actions`
    [B, A] at `latents` [B, D] toward `goals` [B, D], in units of the action range."""
    predicted = act(config, params, latents, goals, action_low, action_high)
    scale = action_high - action_low
    error = jnp.mean(((predicted - actions) / scale) ** 2)
    return error, {"loss": error}


@dataclasses.dataclass(frozen=True)
class Act:
    """`(params, problem_params, latent [D]) -> action [A]` for `planners.Proposal`: the
    policy toward `problem_params["goal"]` (the latent goal of a `hjepa.model.problem`, or the
    subgoal a level above set). Bounds as tuples, so it is hashable (a static argument)."""

    config: PolicyConfig
    action_low: tuple[float, ...]
    action_high: tuple[float, ...]

    @classmethod
    def of(cls, config: PolicyConfig, action_low, action_high) -> Act:
        return cls(config, tuple(float(x) for x in jnp.ravel(jnp.asarray(action_low))),
                   tuple(float(x) for x in jnp.ravel(jnp.asarray(action_high))))

    def __call__(self, params: PyTree, problem_params: PyTree, latent: jax.Array) -> jax.Array:
        low = jnp.asarray(self.action_low, latent.dtype)
        high = jnp.asarray(self.action_high, latent.dtype)
        return act(self.config, params, latent, problem_params["goal"], low, high)
