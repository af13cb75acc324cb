"""Non-contrastive JEPA losses: multi-step latent prediction and VICReg regularisers."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp


@dataclasses.dataclass(frozen=True)
class LossConfig:
    """Weights of the JEPA loss terms. Hashable; saved beside checkpoints.

    Attributes:
      prediction_weight: multi-step latent prediction error.
      variance_weight: VICReg variance hinge (keeps each latent dimension's std >= 1).
      covariance_weight: VICReg covariance (decorrelates latent dimensions).
      variance_target: the std the variance hinge asks for.
      stop_target_gradient: whether the prediction targets (the encoded future observations)
        are constants of the prediction term. True: the encoder learns only through the
        prediction's input and the regularisers. False (as in VICReg): the prediction error
        also moves the targets toward what can be predicted, which pixel encoders need to
        drop unpredictable detail; the variance and covariance terms keep it from collapsing.
      inverse_dynamics_weight: weight of the inverse-dynamics error, the squared error of the
        actions inferred from consecutive latents (needs a model with an inverse-dynamics
        head, `ModelConfig.inverse_dynamics_hidden`; 0: no such term).
    """

    prediction_weight: float = 1.0
    variance_weight: float = 1.0
    covariance_weight: float = 0.04
    variance_target: float = 1.0
    stop_target_gradient: bool = True
    inverse_dynamics_weight: float = 0.0


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
