"""Costs: the intrinsic cost (distance to a goal embedding) and the trainable one (a critic)."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def latent_distance(latent: jax.Array, goal: jax.Array) -> jax.Array:
    """Mean squared distance [...] between latents [..., D] and a goal latent [..., D]."""
    return jnp.mean((latent - goal) ** 2, axis=-1)


def goal_cost(critic, params: dict, latent: jax.Array) -> jax.Array:
    """Cost [...] of latents [..., D] to the goal `params["goal"]`.

    The intrinsic cost (`latent_distance` to the goal latent [D]) when `critic` is None; the
    critic's learned steps to go when `critic` is a `hjepa.critic.CriticConfig` (its params
    in `params["critic"]`); a goal-space cost toward a goal point [P] when `critic` is a
    `hjepa.goal_space.GoalSpaceCost` (its params in `params["goal_space"]`).
    """
    if critic is None:
        return latent_distance(latent, params["goal"])
    if callable(critic):  # a goal-space cost
        return critic(params, latent)
    from hjepa import critic as critic_lib

    return critic_lib.distance(critic, params["critic"], latent, params["goal"])
