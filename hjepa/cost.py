"""Costs: the intrinsic cost (distance to a goal embedding) and the trainable one (a critic)."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def latent_distance(latent: jax.Array, goal: jax.Array) -> jax.Array:
    """Mean squared distance [...] between latents [..., D] and a goal latent [..., D]."""
    return jnp.mean((latent - goal) ** 2, axis=-1)


def goal_cost(critic, params: dict, latent: jax.Array) -> jax.Array:
    """Cost [...] of latents [..., D] to the goal latent `params["goal"]` [D].

    The intrinsic cost (`latent_distance`) when `critic` is None; else the critic's learned
    steps to go, `critic` being a `hjepa.critic.CriticConfig` and `params["critic"]` its
    params.
    """
    if critic is None:
        return latent_distance(latent, params["goal"])
    from hjepa import critic as critic_lib

    return critic_lib.distance(critic, params["critic"], latent, params["goal"])
