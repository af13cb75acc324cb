"""A JEPA world model with a latent variable u, for worlds that are only partly predictable.

    z_{t+1} = predictor(z_t, a_t, u_t),     u_t ~ q(u | z_t, z_{t+1}) in training,
                                            u_t ~ N(0, I) when planning.

The predictor takes a low-dimensional latent variable u [U] beside the action: what the
latent z_t and action a_t cannot tell about the next latent (a random gust, say). In training
u is inferred from the pair of latents (z_t, z_{t+1}) by a Gaussian inference network q, a
regularised bottleneck: the loss adds `kl_weight` × KL(q(u | z_t, z_{t+1}) ‖ N(0, I)), the
information u carries about the transition (in nats), so u carries only what the predictor
cannot get from (z_t, a_t). The rest of the loss is `hjepa.losses.jepa_loss` (multi-step
prediction with VICReg's variance and covariance terms), the encoder is `hjepa.model`'s.

    params = {"encoder", "predictor", "normalizer": as in hjepa.model,
              "inference": the inference network's params}

The predictor is `hjepa.model`'s `ActionPredictor` taking the action and u concatenated
[A + U], so `hjepa.model.encode` and `hjepa.model.predict` serve (`predictor_config`).

Planning (`problem`): the state holds K latent trajectories [K, D], one per sample u^k of a
fixed set [K, H, U] drawn once per problem from an explicit key (`draw_samples`); each step
applies the predictor to every trajectory, and a sequence's cost is the mean over the K
samples of its total cost or a chosen quantile of it (a static option: `quantile`). The
problem is an ordinary `planners.Problem`, so every planner (MPPI, CEM, ...) works on it
unchanged. With K = 1 and u = 0 (`zero_samples`) it is the plain model's problem.

Training has its own compact loop (`fit`, `train_chunk`): `hjepa.train.fit` takes the plain
model's loss and params, and no other. It reuses `hjepa.train`'s `TrainConfig`, `TrainState`
and `optimizer`, and `hjepa.data.sample_windows`; it keeps no checkpoints (small models).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

import planners
from hjepa import cost as cost_lib
from hjepa import losses
from hjepa import model as model_lib
from hjepa.checks import is_int
from hjepa.configs import LatentVariableConfig, ModelConfig
from hjepa.modules import MLP

PyTree = Any

LOG_STD_MIN, LOG_STD_MAX = -6.0, 2.0


class InferenceNet(nn.Module):
    """q(u | z_t, z_{t+1}): latents [..., D] twice -> (mean [..., U], log_std [..., U])."""

    latent_variable_size: int
    hidden_sizes: tuple[int, ...] = (128, 128)

    @nn.compact
    def __call__(self, latent: jax.Array, next_latent: jax.Array):
        out = MLP(self.hidden_sizes, 2 * self.latent_variable_size)(
            jnp.concatenate([latent, next_latent], -1))
        mean, log_std = jnp.split(out, 2, axis=-1)
        return mean, jnp.clip(log_std, LOG_STD_MIN, LOG_STD_MAX)


def predictor_config(config: LatentVariableConfig) -> ModelConfig:
    """The `hjepa.model` config whose predictor takes [action ⊕ u] (A + U inputs)."""
    return dataclasses.replace(config.model,
                               action_size=config.model.action_size + config.latent_variable_size)


def _inference(config: LatentVariableConfig) -> InferenceNet:
    return InferenceNet(config.latent_variable_size, tuple(config.inference_hidden))


def init(config: LatentVariableConfig, key: jax.Array, obs_mean: jax.Array | None = None,
         obs_std: jax.Array | None = None) -> PyTree:
    """Initial params; `obs_mean`/`obs_std` [O] normalise observations (frozen)."""
    config.validate()
    model_key, inference_key = jax.random.split(key)
    params = model_lib.init(predictor_config(config), model_key, obs_mean, obs_std)
    latent = jnp.zeros(config.model.latent_size)
    params["inference"] = _inference(config).init(inference_key, latent, latent)
    return params


def from_plain(config: LatentVariableConfig, plain_params: PyTree, key: jax.Array) -> PyTree:
    """Latent-variable params that predict exactly as the plain model `plain_params` (of
    `config.model`) whatever u: the predictor's weights on u are zero. The inference network
    is freshly initialised from `key`."""
    params = init(config, key)

    def embed(new, old):  # the first layer's kernel [D + A + U, H] gets zero rows for u
        if new.shape == old.shape:
            return old
        return jnp.zeros_like(new).at[: old.shape[0]].set(old)

    params["encoder"] = plain_params["encoder"]
    params["normalizer"] = plain_params["normalizer"]
    params["predictor"] = jax.tree.map(embed, params["predictor"], plain_params["predictor"])
    return params


def encode(config: LatentVariableConfig, params: PyTree, obs: jax.Array) -> jax.Array:
    """Latents [..., D] of observations [..., O]."""
    return model_lib.encode(config.model, params, obs)


def predict(config: LatentVariableConfig, params: PyTree, latent: jax.Array, action: jax.Array,
            u: jax.Array) -> jax.Array:
    """Next latent [..., D] from latent [..., D], action [..., A] and u [..., U]."""
    return model_lib.predict(config.model, params, latent, jnp.concatenate([action, u], -1))


def infer(config: LatentVariableConfig, params: PyTree, latent: jax.Array,
          next_latent: jax.Array) -> tuple[jax.Array, jax.Array]:
    """q(u | z_t, z_{t+1}): (mean [..., U], log_std [..., U]) from latents [..., D] twice."""
    return _inference(config).apply(params["inference"], latent, next_latent)


def rollout(config: LatentVariableConfig, params: PyTree, latent: jax.Array, actions: jax.Array,
            u: jax.Array) -> jax.Array:
    """Predicted latents [H, D] from latent [D] with actions [H, A] and u [H, U]."""

    def body(z, inputs):
        a, v = inputs
        z = predict(config, params, z, a, v)
        return z, z

    _, latents = jax.lax.scan(body, latent, (actions, u))
    return latents


def kl_standard_normal(mean: jax.Array, log_std: jax.Array) -> jax.Array:
    """KL(N(mean, exp(log_std)²) ‖ N(0, I)) [...] in nats, summed over the last axis [..., U]."""
    return 0.5 * jnp.sum(mean**2 + jnp.exp(2 * log_std) - 1.0 - 2 * log_std, axis=-1)


# ----------------------------------------------------------------------------- training


def loss_fn(params: PyTree, config: LatentVariableConfig, loss_config: losses.LossConfig,
            obs: jax.Array, actions: jax.Array, key: jax.Array):
    """JEPA loss plus the bottleneck on windows obs [B, W+1, O], actions [B, W, A].

    u_t is drawn (reparameterised) from q(u | z_t, z_{t+1}) of the encoded pair, gradient
    stopped at the latents (the inference network does not shape the encoder); the
    predictions [B, W, D] roll out from z_0 with the actions and the drawn u's.

    Returns:
      (loss [], metrics: jepa_loss's, "kl" (nats per transition), "u_mean_abs").
    """
    latents = encode(config, params, obs)  # [B, W+1, D]
    pairs = jax.lax.stop_gradient(latents)
    mean, log_std = infer(config, params, pairs[:, :-1], pairs[:, 1:])  # [B, W, U] each
    u = mean + jnp.exp(log_std) * jax.random.normal(key, mean.shape)  # [B, W, U]
    predicted = jax.vmap(lambda z, a, v: rollout(config, params, z, a, v))(
        latents[:, 0], actions, u)  # [B, W, D]
    loss, metrics = losses.jepa_loss(latents, predicted, loss_config)
    kl = jnp.mean(kl_standard_normal(mean, log_std))
    metrics = {**metrics, "loss": loss + config.kl_weight * kl, "kl": kl,
               "u_mean_abs": jnp.mean(jnp.abs(mean))}
    return loss + config.kl_weight * kl, metrics


# ----------------------------------------------------------------------------- planning


class SampledState(NamedTuple):
    """Planning state: K latent trajectories advanced together.

    Attributes:
      latents: the current latent of each trajectory [K, D].
      running: each trajectory's cost so far [K] (read by the quantile statistic).
      t: steps taken [] (int32): the index into the u samples.
    """

    latents: jax.Array  # [K, D]
    running: jax.Array  # [K]
    t: jax.Array  # []


def initial_state(latent: jax.Array, num_samples: int) -> SampledState:
    """K copies of latent [D] with no cost so far."""
    latents = jnp.broadcast_to(latent, (num_samples, latent.shape[-1]))
    return SampledState(latents, jnp.zeros(num_samples, latent.dtype), jnp.zeros((), jnp.int32))


def _aggregate(running: jax.Array, quantile: float) -> jax.Array:
    return jnp.quantile(running, quantile)


@dataclasses.dataclass(frozen=True)
class SampledStep:
    """`(params, SampledState, action [A]) -> (SampledState, cost [])` over K samples of u.

    `params` is `{"model": predictor params, "goal": goal latent [D], "u": samples [K, H, U]}`.
    Step t applies `predict(params["model"], z [D], action [A], u [U]) -> z' [D]` to each
    trajectory with its sample u[k, t] (t clamped to H − 1) and scores each new latent with
    `cost(goal [D], z' [D]) -> []`. With `quantile=None` the step's cost is the mean over the
    K trajectories (so a sequence's total is the mean of the K totals). With a quantile q the
    step's cost is Q_q(running + c) − Q_q(running), which telescopes: a sequence's total cost
    (with `SampledTerminal`) is the q-quantile over the K trajectories of their total costs.
    `predict` and `cost` must be hashable (module-level functions or frozen dataclasses).
    """

    predict: Callable
    cost: Callable
    quantile: float | None = None

    def __call__(self, params, state: SampledState, action):
        horizon = params["u"].shape[1]
        u = params["u"][:, jnp.minimum(state.t, horizon - 1)]  # [K, U]
        latents = jax.vmap(lambda z, v: self.predict(params["model"], z, action, v))(
            state.latents, u)  # [K, D]
        costs = jax.vmap(lambda z: self.cost(params["goal"], z))(latents)  # [K]
        running = state.running + costs
        if self.quantile is None:
            step_cost = jnp.mean(costs)
        else:
            step_cost = (_aggregate(running, self.quantile)
                         - _aggregate(state.running, self.quantile))
        return SampledState(latents, running, state.t + 1), step_cost


@dataclasses.dataclass(frozen=True)
class SampledTerminal:
    """Terminal cost: `weight` × `cost(goal, z)` per trajectory, aggregated as `SampledStep`."""

    cost: Callable
    weight: float = 4.0
    quantile: float | None = None

    def __call__(self, params, state: SampledState):
        costs = self.weight * jax.vmap(lambda z: self.cost(params["goal"], z))(state.latents)
        if self.quantile is None:
            return jnp.mean(costs)
        return (_aggregate(state.running + costs, self.quantile)
                - _aggregate(state.running, self.quantile))


@dataclasses.dataclass(frozen=True)
class LatentVariablePredict:
    """`(params, z [D], a [A], u [U]) -> z' [D]`: the learned predictor of `config`."""

    config: LatentVariableConfig

    def __call__(self, params, latent, action, u):
        return predict(self.config, params, latent, action, u)


def goal_distance(goal: jax.Array, latent: jax.Array) -> jax.Array:
    """The intrinsic cost []: mean squared distance of latent [D] to goal [D]."""
    return cost_lib.latent_distance(latent, goal)


def check_quantile(quantile: Any) -> None:
    """Raises a ValueError unless `quantile` is None (the mean) or a number in [0, 1]."""
    if quantile is None:
        return
    ok = isinstance(quantile, (int, float)) and not isinstance(quantile, bool)
    if not ok or not 0.0 <= quantile <= 1.0:
        raise ValueError(f"quantile: expected None (the mean over samples) or a number in "
                         f"[0, 1], got {quantile!r}")


def _check_samples(u: Any, size: int | None) -> jax.Array:
    shape = tuple(jnp.shape(u))
    expected = f"[K, H, {size}]" if size is not None else "[K, H, U]"
    if len(shape) != 3 or min(shape) < 1 or (size is not None and shape[2] != size):
        where = f" (the trained model's u has size {size})" if size is not None else ""
        raise ValueError(f"u: expected samples of shape {expected} with K, H >= 1{where}, "
                         f"got {list(shape)}")
    return jnp.asarray(u, jnp.float32)


def sampled_problem(predict_fn: Callable, cost: Callable, model_params: PyTree,
                    latent: jax.Array, goal: jax.Array, u: jax.Array, action_low: jax.Array,
                    action_high: jax.Array, *, quantile: float | None = None,
                    terminal_weight: float = 4.0) -> planners.Problem:
    """A `planners.Problem` over K samples of a latent variable, for any predictor and cost.

    Args:
      predict_fn: `(model_params, z [D], a [A], u [U]) -> z' [D]`, hashable.
      cost: `(goal [D], z [D]) -> []`, hashable.
      model_params: what `predict_fn` reads.
      latent: the initial latent [D].
      goal: the goal latent [D].
      u: the samples [K, H, U] (fixed for the whole plan; H at least the planning horizon,
        else the last is reused).
      action_low, action_high: bounds [A].
      quantile: None: a sequence's cost is the mean over samples of its total cost; q in
        [0, 1]: the q-quantile of the totals (1.0: the worst sample). Static.
      terminal_weight: weight of the terminal cost.
    """
    check_quantile(quantile)
    u = _check_samples(u, None)
    if jnp.ndim(latent) != 1 or jnp.shape(goal) != jnp.shape(latent):
        raise ValueError(f"latent, goal: expected two vectors [D] of one size, got "
                         f"{list(jnp.shape(latent))} and {list(jnp.shape(goal))}")
    quantile = None if quantile is None else float(quantile)
    return planners.Problem(
        step=SampledStep(predict_fn, cost, quantile),
        terminal_cost=SampledTerminal(cost, float(terminal_weight), quantile),
        params={"model": model_params, "goal": jnp.asarray(goal), "u": u},
        init_state=initial_state(jnp.asarray(latent), u.shape[0]),
        action_low=jnp.asarray(action_low, jnp.float32),
        action_high=jnp.asarray(action_high, jnp.float32),
    )


def draw_samples(config: LatentVariableConfig, key: jax.Array, *, num_samples: int,
                 horizon: int) -> jax.Array:
    """K samples of u for a plan of H steps from the prior N(0, I): [K, H, U]."""
    for name, value in (("num_samples", num_samples), ("horizon", horizon)):
        if not is_int(value) or value <= 0:
            raise ValueError(f"{name}: expected a positive integer, got {value!r}")
    return jax.random.normal(key, (num_samples, horizon, config.latent_variable_size))


def zero_samples(config: LatentVariableConfig, *, horizon: int) -> jax.Array:
    """The single sample u = 0 (the "mean world" of the prior): [1, H, U]."""
    if not is_int(horizon) or horizon <= 0:
        raise ValueError(f"horizon: expected a positive integer, got {horizon!r}")
    return jnp.zeros((1, horizon, config.latent_variable_size))


def problem(config: LatentVariableConfig, params: PyTree, obs: jax.Array, goal_obs: jax.Array,
            action_low: jax.Array, action_high: jax.Array, u: jax.Array, *,
            quantile: float | None = None, terminal_weight: float = 4.0) -> planners.Problem:
    """A `planners.Problem` planning with the learned model from `obs` toward `goal_obs`.

    Args:
      config, params: the trained model.
      obs, goal_obs: observations [O].
      action_low, action_high: bounds [A].
      u: samples [K, H, U] (`draw_samples`, or `zero_samples` for u = 0).
      quantile: None for the mean over samples, else the quantile in [0, 1]. Static.
      terminal_weight: weight of the latent distance at the end of the horizon.

    Raises:
      ValueError: shapes that do not match the model, a quantile outside [0, 1].
    """
    check_quantile(quantile)
    u = _check_samples(u, config.latent_variable_size)
    for name, value in (("obs", obs), ("goal_obs", goal_obs)):
        if tuple(jnp.shape(value)) != tuple(config.model.obs_shape):
            raise ValueError(f"{name}: expected an observation of shape "
                             f"{tuple(config.model.obs_shape)}, got {tuple(jnp.shape(value))}")
    for name, value in (("action_low", action_low), ("action_high", action_high)):
        if tuple(jnp.shape(value)) != (config.model.action_size,):
            raise ValueError(f"{name}: expected shape ({config.model.action_size},), got "
                             f"{tuple(jnp.shape(value))}")
    return sampled_problem(LatentVariablePredict(config), goal_distance, params,
                           encode(config, params, obs), encode(config, params, goal_obs), u,
                           action_low, action_high, quantile=quantile,
                           terminal_weight=terminal_weight)


@dataclasses.dataclass(frozen=True)
class EncodeSamples:
    """`observe` for `planners.mpc`: K copies of the encoded observation of the env state
    (K from the problem's samples), no cost so far, t = 0."""

    config: LatentVariableConfig
    task: Any  # a cached hjepa Task (hashable by identity)

    def __call__(self, params, env_state):
        latent = encode(self.config, params["model"], self.task.observe(env_state))
        return initial_state(latent, params["u"].shape[0])


# ----------------------------------------------------------------------------- evaluation


