"""A hierarchical JEPA: a stack of world models over one latent space, each level further ahead.

Level 1 is the flat world model of `hjepa.model`: it predicts the next latent from the current
latent and a primitive action. Level l ≥ 2 predicts the latent `span(l)` primitive steps ahead
from the current latent and a **macro-action** [M_l] in (-1, 1): a chunk encoder makes it, in
training, from the `chunk` actions of the level below that it stands for (level 2's chunk
encoder reads k_2 primitive actions [k_2, A]; level 3's reads k_3 level-2 macro-actions, each
made by level 2's encoder from its own chunk). So span(l) = k_2 · ... · k_l.

    params = {"base": the flat model's params (hjepa.model),
              "levels": ({"chunk_encoder": ..., "predictor": ...}, ...)}  # levels 2..L

Every level shares the encoder's latent space, so a latent predicted by level l+1 is a goal
that level l can plan toward (`planners.hierarchical`). Training is joint: level 1 learns with
the JEPA loss of `hjepa.losses` on segments of `base_window` steps; each level above learns to
predict the (by default gradient-stopped) latents `span` steps apart over the whole window,
with a VICReg variance and covariance term on its macro-actions so that they spread over their
box (where the high-level planner samples) rather than collapsing.

A `HierarchyConfig` goes wherever `hjepa.train.fit` takes a `ModelConfig`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp

import planners
from hjepa import cost as cost_lib
from hjepa import losses
from hjepa import model as model_lib
from hjepa.configs import (  # noqa: F401  (re-exported)
    HierarchyConfig,
    LevelConfig,
    make_config,
)
from hjepa.configs import model_config_from_dict as config_from_dict  # noqa: F401
from hjepa.modules import ActionPredictor, ChunkEncoder

PyTree = Any


# ----------------------------------------------------------------------------- model


def _chunk_encoder(config: HierarchyConfig, level: int) -> ChunkEncoder:
    lc = config.levels[level - 2]
    return ChunkEncoder(lc.macro_size, lc.chunk_hidden)


def _level_predictor(config: HierarchyConfig, level: int) -> ActionPredictor:
    return ActionPredictor(config.levels[level - 2].predictor_hidden)


def init(config: HierarchyConfig, key: jax.Array, obs_mean: jax.Array | None = None,
         obs_std: jax.Array | None = None) -> PyTree:
    """Initial params; `obs_mean`/`obs_std` [S] as in `hjepa.model.init`."""
    config.validate()
    base_key, *level_keys = jax.random.split(key, config.num_levels)
    latent = jnp.zeros(config.latent_size)
    levels = []
    for level, level_key in zip(range(2, config.num_levels + 1), level_keys, strict=True):
        chunk_key, predictor_key = jax.random.split(level_key)
        below = jnp.zeros((config.levels[level - 2].chunk, config.action_size_at(level - 1)))
        macro = jnp.zeros(config.action_size_at(level))
        levels.append({
            "chunk_encoder": _chunk_encoder(config, level).init(chunk_key, below),
            "predictor": _level_predictor(config, level).init(predictor_key, latent, macro),
        })
    return {"base": model_lib.init(config.base, base_key, obs_mean, obs_std),
            "levels": tuple(levels)}


def encode(config: HierarchyConfig, params: PyTree, obs: jax.Array) -> jax.Array:
    """Latents [..., D] of observations [..., *obs_shape] (every level's latent space)."""
    return model_lib.encode(config.base, params["base"], obs)


@dataclasses.dataclass(frozen=True)
class Encoder:
    """`(params, obs [..., *obs_shape]) -> latents [..., D]` as a hashable callable."""

    config: HierarchyConfig

    def __call__(self, params, obs):
        return encode(self.config, params, obs)


def flat_view(config: HierarchyConfig, params: PyTree) -> tuple[HierarchyConfig, PyTree]:
    """The hierarchy's level 1 alone, as a one-level hierarchy (flat planning with it)."""
    return dataclasses.replace(config, levels=()), {"base": params["base"], "levels": ()}


def encode_macro(config: HierarchyConfig, params: PyTree, level: int,
                 actions: jax.Array) -> jax.Array:
    """Macro-actions [..., M_level] of primitive action chunks [..., span(level), A]."""
    config._check_level(level)
    if level == 1:
        raise ValueError("level: level 1 acts with primitive actions; expected a level >= 2")
    chunk = config.levels[level - 2].chunk
    if actions.ndim < 2 or actions.shape[-2:] != (config.span(level), config.action_size):
        raise ValueError(
            f"actions: level {level} encodes chunks of {config.span(level)} primitive actions "
            f"[..., {config.span(level)}, {config.action_size}], got shape {actions.shape}")
    if level == 2:
        below = actions  # [..., k, A]
    else:
        lead = actions.shape[:-2]
        below = encode_macro(config, params, level - 1, actions.reshape(
            (*lead, chunk, config.span(level - 1), actions.shape[-1])))  # [..., k, M_{l-1}]
    return _chunk_encoder(config, level).apply(params["levels"][level - 2]["chunk_encoder"],
                                               below)


def predict(config: HierarchyConfig, params: PyTree, level: int, latent: jax.Array,
            action: jax.Array) -> jax.Array:
    """The latent [..., D] one action of `level` later (span(level) primitive steps)."""
    if level == 1:
        return model_lib.predict(config.base, params["base"], latent, action)
    return _level_predictor(config, level).apply(params["levels"][level - 2]["predictor"],
                                                 latent, action)


def rollout(config: HierarchyConfig, params: PyTree, level: int, latent: jax.Array,
            actions: jax.Array) -> jax.Array:
    """Predicted latents [H, D] after each of `level`'s actions [H, A_level] from latent [D]."""

    def body(z, a):
        z = predict(config, params, level, z, a)
        return z, z

    _, latents = jax.lax.scan(body, latent, actions)
    return latents


def loss(params: PyTree, config: HierarchyConfig, loss_config: losses.LossConfig,
         obs: jax.Array, actions: jax.Array) -> tuple[jax.Array, dict]:
    """The joint loss on windows obs [B, W+1, *obs_shape], actions [B, W, A].

    W must be a multiple of `base_window` and of the top level's span (`check_window`).
    Returns (loss [], metrics): level 1's JEPA metrics plus, per level l ≥ 2,
    `level{l}_prediction` (mean squared latent error over its rollout of W / span(l)
    actions) and `level{l}_macro_std` (mean std of its macro-actions).
    """
    latents = encode(config, params, obs)  # [B, W+1, D]
    batch, window, action_size = actions.shape
    size, segments = config.base_window, window // config.base_window
    index = jnp.arange(segments)[:, None] * size + jnp.arange(size + 1)  # [n, w+1]
    segment_latents = latents[:, index].reshape(batch * segments, size + 1, -1)
    segment_actions = actions.reshape(batch * segments, size, action_size)
    predicted = jax.vmap(lambda z, a: model_lib.rollout(config.base, params["base"], z, a))(
        segment_latents[:, 0], segment_actions)  # [B*n, w, D]
    total, metrics = losses.jepa_loss(segment_latents, predicted, loss_config)
    held = jax.lax.stop_gradient(latents) if config.stop_encoder_gradient else latents
    for level in range(2, config.num_levels + 1):
        span = config.span(level)
        steps = window // span
        macros = encode_macro(config, params, level,
                              actions.reshape(batch, steps, span, action_size))  # [B, m, M]
        predicted = jax.vmap(lambda z, m, lv=level: rollout(config, params, lv, z, m))(
            held[:, 0], macros)  # [B, m, D]
        prediction = losses.prediction_loss(predicted, held[:, span::span])
        flat = macros.reshape(-1, macros.shape[-1])
        variance = losses.variance_loss(flat, config.macro_variance_target)
        covariance = losses.covariance_loss(flat)
        total = total + config.level_weight * (
            prediction + config.macro_variance_weight * variance
            + config.macro_covariance_weight * covariance)
        metrics[f"level{level}_prediction"] = prediction
        metrics[f"level{level}_macro_std"] = jnp.mean(jnp.std(flat, axis=0))
    metrics["loss"] = total
    return total, metrics


# ----------------------------------------------------------------------------- planning


@dataclasses.dataclass(frozen=True)
class LevelStep:
    """Planning step of one level: `(params, z [D], action) -> (z', cost to the goal [])`.

    `params` is `{"model": hierarchy params, "goal": goal latent [D], "final_goal": the
    episode's goal latent [D]}` (the goal is a subgoal below the top), plus `"critic"`:
    critic params when `critic` is a `hjepa.critic.CriticConfig`, whose steps to go are then
    the cost instead of the latent distance (the intrinsic cost).
    """

    config: HierarchyConfig
    level: int
    critic: Any = None  # a hjepa.critic.CriticConfig, or None

    def __call__(self, params, latent, action):
        next_latent = predict(self.config, params["model"], self.level, latent, action)
        return next_latent, cost_lib.goal_cost(self.critic, params, next_latent)


@dataclasses.dataclass(frozen=True)
class GoalTerminal:
    """Terminal cost: `weight` times the cost to the goal (see `LevelStep`)."""

    weight: float = 4.0
    critic: Any = None

    def __call__(self, params, latent):
        return self.weight * cost_lib.goal_cost(self.critic, params, latent)


@dataclasses.dataclass(frozen=True)
class SnapSubgoal:
    """`set_goal` for the levels below the top: the subgoal the level above predicts, or the
    final goal itself once that subgoal lies within `radius` (latent distance) of it.

    Near the goal the predicted subgoal is only as precise as the upper level's prediction;
    snapping lets the level below settle on the goal instead of on that error.
    """

    radius: float

    def __call__(self, params, subgoal):
        near = cost_lib.latent_distance(subgoal, params["final_goal"]) < self.radius
        return {**params, "goal": jnp.where(near, params["final_goal"], subgoal)}


@dataclasses.dataclass(frozen=True)
class EncodeForLevels:
    """`observe` for `planners.hierarchical_mpc`: every level plans from the encoded obs."""

    config: HierarchyConfig
    task: Any  # a cached hjepa Task (hashable by identity)

    def __call__(self, level_params, env_state):
        latent = encode(self.config, level_params[-1]["model"], self.task.observe(env_state))
        return (latent,) * self.config.num_levels


def problems(config: HierarchyConfig, params: PyTree, obs: jax.Array, goal_obs: jax.Array,
             action_low: jax.Array, action_high: jax.Array,
             terminal_weights: float | tuple[float, ...] = 4.0,
             critic: tuple[Any, PyTree] | None = None,
             critic_levels: tuple[int, ...] | None = None) -> tuple[planners.Problem, ...]:
    """One `planners.Problem` per level, top first, all planning from `obs`'s latent.

    Every level's goal is `goal_obs`'s latent; `planners.hierarchical` replaces the goal of
    each level below the top by the subgoal the level above predicts. Levels ≥ 2 act with
    macro-actions in [-1, 1]^M; level 1 within [action_low, action_high] [A].

    Args:
      terminal_weights: weight of the latent distance at the end of each level's horizon:
        one for all levels or one per level, top first.
      critic: `(hjepa.critic.CriticConfig, critic params)`: a trained cost to go, used as
        the cost of the levels in `critic_levels` (1-based; default every level) instead
        of the latent distance.

    Raises:
      ValueError: a goal-space cost (`hjepa.goal_space.GoalSpaceCost`): a hierarchy's levels
        hand latent subgoals down, so its goal is an observation.
    """
    if critic is not None and getattr(critic[0], "in_goal_space", False):
        raise ValueError("critic: a goal-space cost plans flat models toward a goal point; a "
                         "hierarchy hands latent subgoals down and takes a goal observation")
    probe = model_lib.problem(config.base, params["base"], obs, goal_obs, action_low,
                              action_high)  # checks shapes and bounds, encodes both
    weights = (tuple(terminal_weights) if isinstance(terminal_weights, (list, tuple))
               else (float(terminal_weights),) * config.num_levels)
    if len(weights) != config.num_levels:
        raise ValueError(f"terminal_weights: expected one per level ({config.num_levels}), got "
                         f"{len(weights)}")
    critic_config, critic_params = critic if critic is not None else (None, None)
    if critic_levels is None:
        critic_levels = tuple(range(1, config.num_levels + 1))
    out = []
    for level, weight in zip(range(config.num_levels, 0, -1), weights, strict=True):
        size = config.action_size_at(level)
        low, high = ((probe.action_low, probe.action_high) if level == 1
                     else (-jnp.ones(size), jnp.ones(size)))
        level_critic = critic_config if level in critic_levels else None
        level_params = {"model": params, "goal": probe.params["goal"],
                        "final_goal": probe.params["goal"]}
        if level_critic is not None:
            level_params["critic"] = critic_params
        out.append(planners.Problem(
            step=LevelStep(config, level, level_critic),
            terminal_cost=GoalTerminal(weight, level_critic),
            params=level_params, init_state=probe.init_state, action_low=low, action_high=high))
    return tuple(out)


def predictor_calls_per_step(horizons: tuple[int, ...], samples: tuple[int, ...],
                             iterations: tuple[int, ...]) -> int:
    """Predictor calls per environment step of sampling planners, summed over levels: each
    level scores samples × iterations sequences of its horizon, plus one rollout of its
    plan for the subgoal (every level but the bottom)."""
    calls = sum(h * s * i for h, s, i in zip(horizons, samples, iterations, strict=True))
    return calls + sum(horizons[:-1])


