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
import functools
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

import planners
from hjepa import cost as cost_lib
from hjepa import data as data_lib
from hjepa import losses
from hjepa import model as model_lib
from hjepa import train as train_lib
from hjepa.evaluate import DistanceRecorder, EvalResult
from hjepa.model import ModelConfig
from hjepa.modules import MLP

PyTree = Any

LOG_STD_MIN, LOG_STD_MAX = -6.0, 2.0


@dataclasses.dataclass(frozen=True)
class LatentVariableConfig:
    """Architecture and bottleneck weight of the latent-variable model. Hashable.

    Attributes:
      model: the encoder and predictor (as `hjepa.model`); `model.action_size` is the task's A.
      latent_variable_size: U, the size of u.
      inference_hidden: hidden layer sizes of the inference network q(u | z_t, z_{t+1}).
      kl_weight: β, the weight of KL(q ‖ N(0, I)) in the loss (the bottleneck).
    """

    model: ModelConfig
    latent_variable_size: int = 2
    inference_hidden: tuple[int, ...] = (128, 128)
    kl_weight: float = 0.01

    def validate(self) -> None:
        self.model.validate()
        if self.model.takes_pixels:
            raise ValueError(f"model: the latent-variable model takes state observations "
                             f"(encoder 'mlp'), got encoder {self.model.encoder!r}")
        u = self.latent_variable_size
        if isinstance(u, bool) or not isinstance(u, int) or u <= 0:
            raise ValueError(f"latent_variable_size: expected a positive integer, got {u!r}")
        if any(int(s) <= 0 for s in self.inference_hidden):
            raise ValueError(f"inference_hidden: expected positive layer sizes, got "
                             f"{self.inference_hidden}")
        w = self.kl_weight
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not w >= 0:
            raise ValueError(f"kl_weight: expected a non-negative number, got {w!r}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


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


def train_step(state: train_lib.TrainState, obs: jax.Array, actions: jax.Array, key: jax.Array,
               *, config: LatentVariableConfig,
               train_config: train_lib.TrainConfig) -> tuple[train_lib.TrainState, dict]:
    """One optimiser step on a batch (obs [B, W+1, O], actions [B, W, A]). Pure."""
    grads, metrics = jax.grad(loss_fn, has_aux=True)(
        state.params, config, train_config.loss, obs, actions, key)
    optimizer = train_lib.optimizer(train_config)
    updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
    metrics["grad_norm"] = optax.global_norm(grads)
    return train_lib.TrainState(state.step + 1, optax.apply_updates(state.params, updates),
                                opt_state), metrics


@functools.partial(jax.jit, static_argnames=("config", "train_config", "num_steps"))
def train_chunk(state: train_lib.TrainState, all_obs: jax.Array, all_actions: jax.Array, *,
                config: LatentVariableConfig, train_config: train_lib.TrainConfig,
                num_steps: int) -> tuple[train_lib.TrainState, dict]:
    """`num_steps` train steps on windows of in-memory episodes (obs [N, T+1, O], actions
    [N, T, A]). Step t's batch uses fold_in(key(seed + 1), t) (as `hjepa.train`) and its u
    draws fold_in(key(seed + 2), t). Returns the state and the chunk's mean metrics."""
    data_key = jax.random.key(train_config.seed + 1)
    noise_key = jax.random.key(train_config.seed + 2)

    def body(state, _):
        obs, actions = data_lib.sample_windows(
            all_obs, all_actions, jax.random.fold_in(data_key, state.step),
            batch_size=train_config.batch_size, window=train_config.window)
        return train_step(state, obs, actions, jax.random.fold_in(noise_key, state.step),
                          config=config, train_config=train_config)

    state, metrics = jax.lax.scan(body, state, None, length=num_steps)
    return state, jax.tree.map(jnp.mean, metrics)


def fit(config: LatentVariableConfig, train_config: train_lib.TrainConfig, obs: np.ndarray,
        actions: np.ndarray, *, progress: bool = False) -> tuple[PyTree, list[dict]]:
    """Trains the latent-variable model on in-memory episodes.

    Args:
      config: the model.
      train_config: steps, batch, window, learning rate, loss weights and seed
        (`checkpoint_every` is unused: no checkpoints).
      obs: [N, T+1, O] state observations (e.g. `hjepa.data.Dataset.arrays()[0]`).
      actions: [N, T, A].
      progress: print a line per chunk of `train_config.log_every` steps.

    Returns:
      (params, history): history holds one dict of mean metrics per chunk, with "step" and
      "seconds" (wall time of the chunk, compilation included in the first).

    Raises:
      ValueError: bad configs or arrays that do not match them.
      hjepa.train.TrainingError: a non-finite loss.
    """
    config.validate()
    obs, actions = np.asarray(obs, np.float32), np.asarray(actions, np.float32)
    if obs.ndim != 3 or obs.shape[2:] != tuple(config.model.obs_shape):
        raise ValueError(f"obs: expected [N, T+1, {config.model.obs_shape[0]}], got "
                         f"{list(obs.shape)}")
    if actions.shape != (obs.shape[0], obs.shape[1] - 1, config.model.action_size):
        raise ValueError(f"actions: expected [{obs.shape[0]}, {obs.shape[1] - 1}, "
                         f"{config.model.action_size}] to match obs, got {list(actions.shape)}")
    train_config.validate(actions.shape[1])
    flat = obs.reshape(-1, obs.shape[-1])
    params = init(config, jax.random.key(train_config.seed), flat.mean(0), flat.std(0))
    state = train_lib.TrainState(jnp.zeros((), jnp.int32), params,
                                 train_lib.optimizer(train_config).init(params))
    all_obs, all_actions = jnp.asarray(obs), jnp.asarray(actions)
    history = []
    step = 0
    while step < train_config.steps:
        chunk = min(train_config.log_every, train_config.steps - step)
        t0 = time.perf_counter()
        state, metrics = train_chunk(state, all_obs, all_actions, config=config,
                                     train_config=train_config, num_steps=chunk)
        metrics = {k: float(v) for k, v in metrics.items()}
        step += chunk
        metrics.update(step=step, seconds=time.perf_counter() - t0)
        if not np.isfinite(metrics["loss"]):
            raise train_lib.TrainingError(f"non-finite loss at step {step}")
        history.append(metrics)
        if progress:
            print(f"step {step}: loss {metrics['loss']:.4f} prediction "
                  f"{metrics['prediction']:.4f} kl {metrics['kl']:.3f} "
                  f"({metrics['seconds']:.1f} s)", flush=True)
    return state.params, history


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
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError(f"{name}: expected a positive integer, got {value!r}")
    return jax.random.normal(key, (num_samples, horizon, config.latent_variable_size))


def zero_samples(config: LatentVariableConfig, *, horizon: int) -> jax.Array:
    """The single sample u = 0 (the "mean world" of the prior): [1, H, U]."""
    if isinstance(horizon, bool) or not isinstance(horizon, int) or horizon <= 0:
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


def evaluate(task, key: jax.Array, config: LatentVariableConfig, params: PyTree, *,
             num_episodes: int, num_samples: int = 8, zero: bool = False,
             quantile: float | None = None, planner: Callable = planners.mppi,
             planner_options: dict | None = None, horizon: int = 16,
             terminal_weight: float = 4.0,
             num_steps: int | None = None) -> tuple[EvalResult, np.ndarray]:
    """Batched closed-loop MPC episodes planning with the latent-variable model.

    Episode i draws its start/goal from `task.reset` and its K samples of u (fixed for the
    episode) and planner keys from `key`, so a run is a pure function of `key`.

    Args:
      task: an hjepa task with state observations matching the model.
      key: a `jax.random` key.
      num_episodes: N.
      num_samples: K samples of u per plan (ignored when `zero`).
      zero: plan with the single sample u = 0.
      quantile: None (mean over samples) or a quantile in [0, 1].
      planner, planner_options: any planner and its options.
      horizon: planning horizon H.
      terminal_weight: weight of the terminal latent distance.
      num_steps: episode length (default: the task's).

    Returns:
      (result, positions): the `hjepa.evaluate.EvalResult` and the task's position after
      each step [N, T, P] (numpy).
    """
    check_quantile(quantile)
    if tuple(config.model.obs_shape) != tuple(task.obs_shape):
        raise ValueError(f"config: the model takes observations of shape "
                         f"{tuple(config.model.obs_shape)}, the task {task.name!r} gives "
                         f"{tuple(task.obs_shape)}")
    for name, value in (("num_episodes", num_episodes), ("num_samples", num_samples),
                        ("horizon", horizon)):
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError(f"{name}: expected a positive integer, got {value!r}")
    num_steps = task.episode_length if num_steps is None else num_steps
    reset_key, sample_key, plan_key = jax.random.split(key, 3)
    episodes = jax.vmap(task.reset)(jax.random.split(reset_key, num_episodes))
    if zero:
        samples = jnp.broadcast_to(zero_samples(config, horizon=horizon),
                                   (num_episodes, 1, horizon, config.latent_variable_size))
    else:
        samples = jax.vmap(lambda k: draw_samples(config, k, num_samples=num_samples,
                                                  horizon=horizon))(
            jax.random.split(sample_key, num_episodes))
    keys = jax.random.split(plan_key, num_episodes)
    options = dict(planner_options or {})
    low, high = jnp.asarray(task.action_low), jnp.asarray(task.action_high)
    init_actions = jnp.zeros((horizon, task.action_size))

    def run(params, episode, u, key):
        prob = problem(config, params, task.observe(episode.state), episode.goal.obs, low, high,
                       u, quantile=quantile, terminal_weight=terminal_weight)
        result = planners.mpc(prob, init_actions, key, env_step=task.dynamics,
                              env_params=task.env_params, env_state=episode.state,
                              num_steps=num_steps, observe=EncodeSamples(config, task),
                              planner=planner, planner_options=options,
                              record=DistanceRecorder(task))
        return task.distance(result.final_state, episode.goal), result.records

    batched = jax.jit(jax.vmap(run, in_axes=(None, 0, 0, 0)))
    t0 = time.perf_counter()
    compiled = batched.lower(params, episodes, samples, keys).compile()
    compile_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    final, positions = jax.block_until_ready(compiled(params, episodes, samples, keys))
    run_seconds = time.perf_counter() - t0
    distances = np.linalg.norm(np.asarray(positions) - np.asarray(episodes.goal.position)[:, None],
                               axis=-1)
    final = np.asarray(final)
    result = EvalResult(success=final < task.success_threshold, final_distance=final,
                        distances=distances, compile_seconds=compile_seconds,
                        run_seconds=run_seconds, num_episodes=num_episodes, num_steps=num_steps)
    return result, np.asarray(positions)
