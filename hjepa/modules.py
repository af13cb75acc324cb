"""Flax Linen modules of the world model: encoders and predictors."""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp


class MLP(nn.Module):
    """A multi-layer perceptron: [..., I] -> [..., out_size], LayerNorm + GELU between layers
    (GELU alone with `layer_norm=False`, for outputs that must scale with the input, such as
    a policy's action with the distance to its goal)."""

    hidden_sizes: Sequence[int]
    out_size: int
    layer_norm: bool = True

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        for size in self.hidden_sizes:
            x = nn.Dense(size)(x)
            if self.layer_norm:
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


def _fold_batch(x: jax.Array, event_rank: int) -> tuple[jax.Array, tuple[int, ...]]:
    """Flattens the leading (batch) dims of x [..., *event] to one: ([N, *event], batch shape)."""
    batch_shape = x.shape[: x.ndim - event_rank]
    return x.reshape((-1, *x.shape[x.ndim - event_rank:])), batch_shape


class ConvEncoder(nn.Module):
    """Encodes images [..., H, W, C] (normalised floats) into latents [..., D].

    A stack of 3×3 convolutions, each halving the resolution (stride 2) and followed by
    LayerNorm over channels and GELU, then an MLP head on the flattened features.
    H and W must be at least 2**len(channels) (`ModelConfig.validate` checks this).

    With `frames` F > 1 the channels hold F frames stacked, the newest first (C = F·c): each
    frame is encoded alone by the shared stack into a pose [D / F], and the latent is the
    newest pose followed by its differences from the older ones,
    [p_0, p_0 − p_1, …, p_0 − p_{F−1}]. Motion then enters the latent as a difference of two
    encodings of the same kind, which keeps it however small it is in pixels, where an encoder
    of the stacked channels must learn to see it and may drop it.
    """

    latent_size: int
    channels: Sequence[int] = (32, 64, 64, 64)
    hidden_sizes: Sequence[int] = (256,)
    frames: int = 1

    @nn.compact
    def __call__(self, images: jax.Array) -> jax.Array:
        x, batch_shape = _fold_batch(images, 3)  # [N, H, W, C]
        n, height, width, channels = x.shape
        f = self.frames
        if f > 1:  # [N, H, W, F·c] -> [N·F, H, W, c]
            x = x.reshape((n, height, width, f, channels // f)).transpose((0, 3, 1, 2, 4))
            x = x.reshape((n * f, height, width, channels // f))
        for features in self.channels:
            x = nn.Conv(features, (3, 3), strides=(2, 2), padding="SAME")(x)
            x = nn.LayerNorm()(x)
            x = nn.gelu(x)
        x = x.reshape((x.shape[0], -1))  # [N·F, H' * W' * C']
        x = MLP(self.hidden_sizes, self.latent_size // f)(x)  # [N·F, D / F]
        if f > 1:
            poses = x.reshape((n, f, self.latent_size // f))
            motion = poses[:, :1] - poses[:, 1:]  # [N, F - 1, D / F]
            x = jnp.concatenate([poses[:, 0], motion.reshape((n, -1))], axis=-1)  # [N, D]
        return x.reshape((*batch_shape, self.latent_size))


class TransformerBlock(nn.Module):
    """Pre-norm self-attention and MLP block over tokens [N, L, E]."""

    num_heads: int
    mlp_ratio: int = 2

    @nn.compact
    def __call__(self, tokens: jax.Array) -> jax.Array:
        width = tokens.shape[-1]
        x = nn.LayerNorm()(tokens)
        tokens = tokens + nn.MultiHeadDotProductAttention(num_heads=self.num_heads)(x, x)
        x = nn.LayerNorm()(tokens)
        x = nn.Dense(self.mlp_ratio * width)(x)
        return tokens + nn.Dense(width)(nn.gelu(x))


class ViTEncoder(nn.Module):
    """A small vision transformer: images [..., H, W, C] -> latents [..., D].

    Non-overlapping `patch_size` patches (H and W must be multiples of it), a linear patch
    embedding plus learned position embeddings, `depth` transformer blocks, mean pooling over
    patches, LayerNorm and a linear head.
    """

    latent_size: int
    patch_size: int = 8
    width: int = 64
    depth: int = 2
    num_heads: int = 4

    @nn.compact
    def __call__(self, images: jax.Array) -> jax.Array:
        x, batch_shape = _fold_batch(images, 3)  # [N, H, W, C]
        p = self.patch_size
        x = nn.Conv(self.width, (p, p), strides=(p, p), padding="VALID")(x)  # [N, H/p, W/p, E]
        tokens = x.reshape((x.shape[0], -1, self.width))  # [N, L, E]
        position = self.param("position", nn.initializers.normal(0.02), tokens.shape[1:])
        tokens = tokens + position
        for _ in range(self.depth):
            tokens = TransformerBlock(self.num_heads)(tokens)
        pooled = nn.LayerNorm()(tokens.mean(axis=1))  # [N, E]
        return nn.Dense(self.latent_size)(pooled).reshape((*batch_shape, self.latent_size))


class ChunkEncoder(nn.Module):
    """Encodes a chunk of k actions [..., k, A] into a macro-action [..., M] in (-1, 1)."""

    macro_size: int
    hidden_sizes: Sequence[int] = (128, 128)

    @nn.compact
    def __call__(self, actions: jax.Array) -> jax.Array:
        flat = actions.reshape((*actions.shape[:-2], -1))  # [..., k * A]
        return jnp.tanh(MLP(self.hidden_sizes, self.macro_size)(flat))
