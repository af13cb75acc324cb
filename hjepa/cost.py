"""Costs: the intrinsic cost (distance to a goal embedding)."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def latent_distance(latent: jax.Array, goal: jax.Array) -> jax.Array:
    """Mean squared distance [...] between latents [..., D] and a goal latent [..., D]."""
    return jnp.mean((latent - goal) ** 2, axis=-1)
