"""Non-contrastive JEPA losses: multi-step latent prediction and VICReg regularisers."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from hjepa.configs import LossConfig


def variance_loss(latents: jax.Array, target: float = 1.0, eps: float = 1e-4) -> jax.Array:
    """VICReg variance hinge [] of latents [N, D]: mean_d relu(target − std_d)."""
    std = jnp.sqrt(jnp.var(latents, axis=0) + eps)
    return jnp.mean(jax.nn.relu(target - std))


def covariance_loss(latents: jax.Array) -> jax.Array:
    """VICReg covariance [] of latents [N, D]: squared off-diagonal covariances / D."""
    n, d = latents.shape
    centred = latents - latents.mean(axis=0)
    cov = centred.T @ centred / (n - 1)  # [D, D]
    off_diagonal = cov - jnp.diag(jnp.diag(cov))
    return jnp.sum(off_diagonal**2) / d


def prediction_loss(predicted: jax.Array, target: jax.Array) -> jax.Array:
    """Mean squared error [] between predicted [..., D] and target [..., D] latents."""
    return jnp.mean((predicted - target) ** 2)


def jepa_loss(latents: jax.Array, predicted: jax.Array, config: LossConfig):
    """The JEPA objective on one batch of windows.

    Args:
      latents: encoded observations [B, W+1, D] (the targets are latents[:, 1:], gradient
        stopped when `config.stop_target_gradient`).
      predicted: multi-step predictions [B, W, D] from latents[:, 0].
      config: term weights.

    Returns:
      (loss [], metrics dict of scalars).
    """
    flat = latents.reshape(-1, latents.shape[-1])  # [B*(W+1), D]
    targets = latents[:, 1:]
    if config.stop_target_gradient:
        targets = jax.lax.stop_gradient(targets)
    prediction = prediction_loss(predicted, targets)
    variance = variance_loss(flat, config.variance_target)
    covariance = covariance_loss(flat)
    loss = (config.prediction_weight * prediction + config.variance_weight * variance
            + config.covariance_weight * covariance)
    std = jnp.sqrt(jnp.var(flat, axis=0))
    metrics = {
        "loss": loss,
        "prediction": prediction,
        "variance": variance,
        "covariance": covariance,
        "latent_std_min": jnp.min(std),
        "latent_std_mean": jnp.mean(std),
    }
    return loss, metrics
