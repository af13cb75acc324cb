"""Flax Linen modules of the world model: encoders and predictors."""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp


class MLP(nn.Module):
    """A multi-layer perceptron: [..., I] -> [..., out_size], LayerNorm + GELU between layers."""

    hidden_sizes: Sequence[int]
    out_size: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        for size in self.hidden_sizes:
            x = nn.Dense(size)(x)
            x = nn.LayerNorm()(x)
            x = nn.gelu(x)
        return nn.Dense(self.out_size)(x)


class MLPEncoder(nn.Module):
    """Encodes a flat observation [..., O] into a latent [..., D]."""

    latent_size: int
    hidden_sizes: Sequence[int] = (256, 256)

    @nn.compact
    def __call__(self, obs: jax.Array) -> jax.Array:
        return MLP(self.hidden_sizes, self.latent_size)(obs)


class ActionPredictor(nn.Module):
    """Predicts the next latent from a latent [..., D] and an action [..., A] (residual)."""

    hidden_sizes: Sequence[int] = (256, 256)

    @nn.compact
    def __call__(self, latent: jax.Array, action: jax.Array) -> jax.Array:
        delta = MLP(self.hidden_sizes, latent.shape[-1])(jnp.concatenate([latent, action], -1))
        return latent + delta
