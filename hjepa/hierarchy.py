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
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

import planners
from hjepa import cost as cost_lib
from hjepa import evaluate as evaluate_lib
from hjepa import losses
from hjepa import model as model_lib
from hjepa.model import ModelConfig
from hjepa.modules import ActionPredictor, ChunkEncoder

PyTree = Any


@dataclasses.dataclass(frozen=True)
class LevelConfig:
    """One level above the first.

    Attributes:
      chunk: k, actions of the level below per action of this level.
      macro_size: M, size of this level's macro-action.
      predictor_hidden: hidden layer sizes of this level's predictor.
      chunk_hidden: hidden layer sizes of its chunk encoder.
    """

    chunk: int = 8
    macro_size: int = 4
    predictor_hidden: tuple[int, ...] = (256, 256)
    chunk_hidden: tuple[int, ...] = (128, 128)


@dataclasses.dataclass(frozen=True)
class HierarchyConfig:
    """A hierarchical world model. Hashable; saved beside checkpoints.

    Attributes:
      base: the level-1 (flat) model, whose encoder every level shares.
      levels: the levels above the first, bottom up (level 2 first); `()` is a flat model.
      base_window: level-1 prediction steps per training segment (the train window must be a
        multiple of it and of the top level's span).
      level_weight: weight of each upper level's loss against level 1's.
      macro_variance_target: the std the macro-actions' variance hinge asks for.
      macro_variance_weight, macro_covariance_weight: VICReg terms on the macro-actions.
      stop_encoder_gradient: whether upper levels' losses leave the encoder alone (the
        latents they read and predict are constants to them).
    """

    base: ModelConfig
    levels: tuple[LevelConfig, ...] = (LevelConfig(),)
    base_window: int = 8
    level_weight: float = 1.0
    macro_variance_target: float = 0.5
    macro_variance_weight: float = 1.0
    macro_covariance_weight: float = 0.04
    stop_encoder_gradient: bool = True

    # the ModelConfig interface that `hjepa.train` and `hjepa.evaluate` read
    @property
    def obs_shape(self) -> tuple[int, ...]:
        return self.base.obs_shape

    @property
    def action_size(self) -> int:
        return self.base.action_size

    @property
    def latent_size(self) -> int:
        return self.base.latent_size

    @property
    def takes_pixels(self) -> bool:
        return self.base.takes_pixels

    @property
    def normalizer_shape(self) -> tuple[int, ...]:
        return self.base.normalizer_shape

    @property
    def num_levels(self) -> int:
        """L: the flat level plus the levels above it."""
        return 1 + len(self.levels)

    def span(self, level: int) -> int:
        """Primitive steps per action of `level` (1-based): 1, k_2, k_2·k_3, ..."""
        self._check_level(level)
        return math.prod(lc.chunk for lc in self.levels[: level - 1])

    def action_size_at(self, level: int) -> int:
        """Size of one action of `level`: A at level 1, M_l above."""
        self._check_level(level)
        return self.action_size if level == 1 else self.levels[level - 2].macro_size

    def _check_level(self, level: int) -> None:
        if isinstance(level, bool) or not isinstance(level, int) or not (
                1 <= level <= self.num_levels):
            raise ValueError(f"level: expected an integer in [1, {self.num_levels}], got "
                             f"{level!r}")

    def validate(self) -> None:
        if not isinstance(self.base, ModelConfig):
            raise ValueError(f"base: expected a ModelConfig, got {type(self.base).__name__}")
        self.base.validate()
        if not isinstance(self.levels, tuple) or not all(
                isinstance(lc, LevelConfig) for lc in self.levels):
            raise ValueError(f"levels: expected a tuple of LevelConfig, got {self.levels!r}")
        for index, lc in enumerate(self.levels):
            for name in ("chunk", "macro_size"):
                value = getattr(lc, name)
                if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                    raise ValueError(f"levels[{index}].{name} (level {index + 2}): expected a "
                                     f"positive integer, got {value!r}")
            if lc.chunk < 2:
                raise ValueError(f"levels[{index}].chunk (level {index + 2}): expected at "
                                 f"least 2 steps of the level below, got {lc.chunk}")
            for name in ("predictor_hidden", "chunk_hidden"):
                if any(int(s) <= 0 for s in getattr(lc, name)):
                    raise ValueError(f"levels[{index}].{name}: expected positive layer sizes, "
                                     f"got {getattr(lc, name)}")
        if (isinstance(self.base_window, bool) or not isinstance(self.base_window, int)
                or self.base_window <= 0):
            raise ValueError(f"base_window: expected a positive integer, got "
                             f"{self.base_window!r}")

    def check_window(self, window: int) -> None:
        """Raises ValueError unless a train window of `window` steps suits every level."""
        top = self.span(self.num_levels)
        for name, size in (("base_window", self.base_window), ("the top level's span", top)):
            if window % size:
                raise ValueError(f"window: expected a multiple of {name} ({size}), got "
                                 f"{window}")

    def to_dict(self) -> dict:
        return {"kind": "hierarchy", **dataclasses.asdict(self)}

    @classmethod
    def from_dict(cls, data: dict) -> HierarchyConfig:
        data = {k: v for k, v in data.items() if k != "kind"}
        levels = tuple(
            LevelConfig(**{**lc, "predictor_hidden": tuple(lc["predictor_hidden"]),
                           "chunk_hidden": tuple(lc["chunk_hidden"])})
            for lc in data.pop("levels"))
        return cls(base=ModelConfig.from_dict(data.pop("base")), levels=levels, **data)


def make_config(base: ModelConfig, *, num_levels: int = 2, chunk: int = 8,
                macro_size: int = 4, **options) -> HierarchyConfig:
    """A hierarchy of `num_levels` ≥ 1 levels, every level above the first alike."""
    if isinstance(num_levels, bool) or not isinstance(num_levels, int) or num_levels < 1:
        raise ValueError(f"num_levels: expected a positive integer (1 is a flat model), got "
                         f"{num_levels!r}")
    config = HierarchyConfig(base, tuple(LevelConfig(chunk, macro_size)
                                         for _ in range(num_levels - 1)), **options)
    config.validate()
    return config


def config_from_dict(data: dict) -> ModelConfig | HierarchyConfig:
    """The model config saved by `to_dict`: a `HierarchyConfig` or a flat `ModelConfig`."""
    if data.get("kind") == "hierarchy":
        return HierarchyConfig.from_dict(data)
    return ModelConfig.from_dict(data)


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
    """
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


def episode_fn(task, config: HierarchyConfig, *, planner: Callable | tuple,
               options: dict | tuple, horizons: tuple[int, ...], num_steps: int,
               terminal_weights: float | tuple[float, ...] = 4.0, subgoal_step: int = 0,
               critic=None, critic_levels: tuple[int, ...] | None = None,
               snap_radius: float | None = None, record: Callable | None = None):
    """`(params, episode, key) -> (final distance, positions [T, P])` of one hierarchical
    MPC episode on `task`, for `hjepa.evaluate.run_episodes`. `params` is
    `{"model": hierarchy params, "critic": critic params or None}`; `critic` the critic's
    config (or None) and `critic_levels` the levels it costs (see `problems`); with
    `snap_radius`, subgoals within it of the goal are replaced by the goal (`SnapSubgoal`).
    With `record` (a hashable `env_state -> pytree`, e.g. `hjepa.visualize.FrameRecorder`)
    the episode returns `(final distance, (positions, records))`."""
    if len(horizons) != config.num_levels:
        raise ValueError(f"horizons: expected one per level ({config.num_levels}), got "
                         f"{len(horizons)}")
    if any(isinstance(h, bool) or not isinstance(h, int) or h <= 0 for h in horizons):
        raise ValueError(f"horizons: expected positive integers, got {horizons!r}")
    if config.span(config.num_levels) > num_steps:
        raise ValueError(
            f"the top level's span ({config.span(config.num_levels)} steps per macro-action) "
            f"is longer than the episode ({num_steps} steps)")
    init_actions = tuple(jnp.zeros((h, config.action_size_at(level)))
                         for level, h in zip(range(config.num_levels, 0, -1), horizons,
                                             strict=True))
    spans = tuple(config.span(level) for level in range(config.num_levels, 0, -1))
    low, high = jnp.asarray(task.action_low), jnp.asarray(task.action_high)

    def run(params, episode, key):
        levels = problems(config, params["model"], task.observe(episode.state),
                          episode.goal.obs, low, high, terminal_weights,
                          critic=None if critic is None else (critic, params["critic"]),
                          critic_levels=critic_levels)
        result = planners.hierarchical_mpc(
            levels, init_actions, key, env_step=task.dynamics, env_params=task.env_params,
            env_state=episode.state, num_steps=num_steps, spans=spans,
            observe=EncodeForLevels(config, task), planner=planner, planner_options=options,
            set_goal=planners.replace_goal if snap_radius is None else SnapSubgoal(snap_radius),
            subgoal_step=subgoal_step, record=evaluate_lib.DistanceRecorder(task, record))
        return task.distance(result.final_state, episode.goal), result.records

    return run


def evaluate(task, key: jax.Array, config: HierarchyConfig, params: PyTree, *,
             num_episodes: int, horizons: tuple[int, ...],
             planner: Callable | tuple = planners.mppi, planner_options: dict | tuple = (),
             num_steps: int | None = None, terminal_weights: float | tuple[float, ...] = 4.0,
             subgoal_step: int = 0, mesh: jax.sharding.Mesh | None = None,
             critic: tuple[Any, PyTree] | None = None,
             critic_levels: tuple[int, ...] | None = None, snap_radius: float | None = None,
             record: Callable | None = None):
    """Hierarchical MPC on `num_episodes` held-out start/goal pairs of `task`.

    Args:
      horizons: each level's planning horizon in its own actions, top first.
      planner, planner_options: one for every level or one per level, top first.
      terminal_weights: one for every level or one per level, top first.
      critic, critic_levels: a trained cost to go and the levels it costs (`problems`).
      snap_radius: subgoals within this latent distance of the goal become the goal.
      record: what each step keeps besides the position (`EvalResult.records`), or None.
      Others as in `hjepa.evaluate.evaluate` (the same start/goal pairs for the same key).

    Returns:
      An `hjepa.evaluate.EvalResult`.
    """
    if not isinstance(config, HierarchyConfig):
        raise ValueError(f"config: expected a HierarchyConfig, got {type(config).__name__}")
    evaluate_lib.check_observations("config", config, task)
    if isinstance(num_episodes, bool) or not isinstance(num_episodes, int) or num_episodes <= 0:
        raise ValueError(f"num_episodes: expected a positive integer, got {num_episodes!r}")
    num_steps = task.episode_length if num_steps is None else num_steps
    run = episode_fn(task, config, planner=planner, options=planner_options or {},
                     horizons=tuple(horizons), num_steps=num_steps,
                     terminal_weights=terminal_weights, subgoal_step=subgoal_step,
                     critic=None if critic is None else critic[0], critic_levels=critic_levels,
                     snap_radius=snap_radius, record=record)
    run_params = {"model": params, "critic": None if critic is None else critic[1]}
    return evaluate_lib.run_episodes(task, run, run_params, key, num_episodes=num_episodes,
                                     num_steps=num_steps, mesh=mesh)
