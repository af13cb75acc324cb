"""The WorldModel interface: what training and evaluation call, for every model family.

A family is a frozen dataclass holding its config (so it is hashable, a static argument of
jitted functions) whose methods are pure functions of a params pytree, in the manner of
optax's `GradientTransformation(init, update)` or mctx's `RecurrentFn`:

    init(key, obs_mean=None, obs_std=None) -> params
    encode(params, obs [..., *obs_shape]) -> latents [..., D]
    loss(params, loss_config, obs [B, W+1, ...], actions [B, W, A], key) -> (loss [], metrics)
    problems(params, obs, goal_obs, action_low [A], action_high [A], **options)
        -> tuple[planners.Problem, ...]     (one per level, top first; a flat model has one)
    observe(task) -> `observe` for planners.mpc / hierarchical_mpc (hashable)

`of(config)` returns the family of a config (`register` adds one), so `hjepa.train` and
`hjepa.evaluate` never branch on a config's type. Families today: `Flat` (hjepa.model),
`Hierarchical` (hjepa.hierarchy), `LatentVariable` (hjepa.latent_variable).

Example:
  >>> family = world_model.of(model_config)
  >>> params = family.init(jax.random.key(0))
  >>> loss, metrics = family.loss(params, LossConfig(), obs, actions, jax.random.key(1))
  >>> (problem,) = family.problems(params, obs[0, 0], goal_obs, low, high)
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp

import planners
from hjepa import critic as critic_lib
from hjepa import goal_space, hierarchy, latent_variable, losses, skills
from hjepa import model as model_lib
from hjepa.configs import (
    CriticModel,
    GoalSpaceModel,
    HierarchyConfig,
    LatentVariableConfig,
    LossConfig,
    ModelConfig,
    SkillsModel,
)

PyTree = Any


@dataclasses.dataclass(frozen=True)
class Flat:
    """The flat JEPA (`hjepa.model`): encoder and one action-conditioned predictor."""

    config: ModelConfig
    name = "flat"
    num_levels = 1
    shardable = True  # trains on a device mesh

    def check_training(self, window: int) -> None:
        del window

    def init(self, key: jax.Array, obs_mean=None, obs_std=None) -> PyTree:
        return model_lib.init(self.config, key, obs_mean, obs_std)

    def encode(self, params: PyTree, obs: jax.Array) -> jax.Array:
        return model_lib.encode(self.config, params, obs)

    def loss(self, params: PyTree, loss_config: LossConfig, obs: jax.Array, actions: jax.Array,
             key: jax.Array | None = None) -> tuple[jax.Array, dict]:
        """JEPA loss on windows obs [B, W+1, *obs_shape], actions [B, W, A] (plus the
        inverse-dynamics term when weighted). Deterministic: `key` is unused."""
        del key
        config = self.config
        latents = model_lib.encode(config, params, obs)  # [B, W+1, D]
        predicted = jax.vmap(lambda z, a: model_lib.rollout(config, params, z, a))(
            latents[:, 0], actions
        )  # [B, W, D]
        loss, metrics = losses.jepa_loss(latents, predicted, loss_config)
        if loss_config.inverse_dynamics_weight:
            inferred = model_lib.infer_actions(config, params, latents[:, :-1],
                                               latents[:, 1:])  # [B, W, A]
            inverse = jnp.mean((inferred - actions) ** 2)
            loss = loss + loss_config.inverse_dynamics_weight * inverse
            metrics = {**metrics, "loss": loss, "inverse_dynamics": inverse}
        return loss, metrics

    def problems(self, params: PyTree, obs: jax.Array, goal_obs: jax.Array,
                 action_low: jax.Array, action_high: jax.Array, *,
                 terminal_weight: float = 4.0,
                 critic: tuple[Any, PyTree] | None = None) -> tuple[planners.Problem]:
        return (model_lib.problem(self.config, params, obs, goal_obs, action_low, action_high,
                                  terminal_weight=terminal_weight, critic=critic),)

    def observe(self, task) -> model_lib.EncodeObservation:
        return model_lib.EncodeObservation(self.config, task)


@dataclasses.dataclass(frozen=True)
class Hierarchical:
    """A stack of world models over one latent space (`hjepa.hierarchy`)."""

    config: HierarchyConfig
    name = "hierarchical"
    shardable = False  # trains on one device

    @property
    def num_levels(self) -> int:
        return self.config.num_levels

    def check_training(self, window: int) -> None:
        self.config.check_window(window)

    def init(self, key: jax.Array, obs_mean=None, obs_std=None) -> PyTree:
        return hierarchy.init(self.config, key, obs_mean, obs_std)

    def encode(self, params: PyTree, obs: jax.Array) -> jax.Array:
        return hierarchy.encode(self.config, params, obs)

    def loss(self, params: PyTree, loss_config: LossConfig, obs: jax.Array, actions: jax.Array,
             key: jax.Array | None = None) -> tuple[jax.Array, dict]:
        """Every level's loss (`hjepa.hierarchy.loss`). Deterministic: `key` is unused."""
        del key
        return hierarchy.loss(params, self.config, loss_config, obs, actions)

    def problems(self, params: PyTree, obs: jax.Array, goal_obs: jax.Array,
                 action_low: jax.Array, action_high: jax.Array, *,
                 terminal_weight: float | tuple[float, ...] = 4.0,
                 critic: tuple[Any, PyTree] | None = None,
                 critic_levels: tuple[int, ...] | None = None) -> tuple[planners.Problem, ...]:
        return hierarchy.problems(self.config, params, obs, goal_obs, action_low, action_high,
                                  terminal_weight, critic=critic, critic_levels=critic_levels)

    def observe(self, task) -> hierarchy.EncodeForLevels:
        return hierarchy.EncodeForLevels(self.config, task)


@dataclasses.dataclass(frozen=True)
class LatentVariable:
    """A predictor with a latent variable u for what the action cannot predict
    (`hjepa.latent_variable`); its problems plan over K samples of u."""

    config: LatentVariableConfig
    name = "latent-variable"
    num_levels = 1
    shardable = False

    def check_training(self, window: int) -> None:
        del window

    def init(self, key: jax.Array, obs_mean=None, obs_std=None) -> PyTree:
        return latent_variable.init(self.config, key, obs_mean, obs_std)

    def encode(self, params: PyTree, obs: jax.Array) -> jax.Array:
        return latent_variable.encode(self.config, params, obs)

    def loss(self, params: PyTree, loss_config: LossConfig, obs: jax.Array, actions: jax.Array,
             key: jax.Array | None = None) -> tuple[jax.Array, dict]:
        """JEPA loss plus the KL bottleneck; `key` draws u (`latent_variable.loss_fn`)."""
        return latent_variable.loss_fn(params, self.config, loss_config, obs, actions, key)

    def problems(self, params: PyTree, obs: jax.Array, goal_obs: jax.Array,
                 action_low: jax.Array, action_high: jax.Array, *, u: jax.Array,
                 quantile: float | None = None,
                 terminal_weight: float = 4.0) -> tuple[planners.Problem]:
        return (latent_variable.problem(self.config, params, obs, goal_obs, action_low,
                                        action_high, u, quantile=quantile,
                                        terminal_weight=terminal_weight),)

    def observe(self, task) -> latent_variable.EncodeSamples:
        return latent_variable.EncodeSamples(self.config, task)


@dataclasses.dataclass(frozen=True)
class Critic:
    """A critic (`hjepa.critic`: learned steps to go between latents) as a trainable family:
    `init` and `loss` on windows of latents, so it trains through `hjepa.train`'s one chunk
    and loop. It is a cost, not a world model: it neither encodes nor plans."""

    config: CriticModel
    name = "critic"
    num_levels = 0
    shardable = False

    def check_training(self, window: int) -> None:
        del window

    def init(self, key: jax.Array, obs_mean=None, obs_std=None) -> PyTree:
        del obs_mean, obs_std
        return critic_lib.init(self.config.critic, key, self.config.latent_size)

    def loss(self, params: PyTree, loss_config: LossConfig, obs: jax.Array, actions: jax.Array,
             key: jax.Array | None = None) -> tuple[jax.Array, dict]:
        """The critic's loss on latent windows `obs` [B, W+1, D] (`hjepa.critic.loss`); `key`
        draws the random pairs; `loss_config` and `actions` are unused."""
        del loss_config, actions
        return critic_lib.loss(params, self.config.critic, obs, key)


@dataclasses.dataclass(frozen=True)
class GoalSpace:
    """A goal-space model (`hjepa.goal_space`: a goal head and a goal-conditioned critic over
    a frozen model's latents) as a trainable family: it trains through `hjepa.train`'s one
    chunk and loop on windows of [latent, position] [B, W+1, D + P]. A cost, not a world
    model: it neither encodes nor plans."""

    config: GoalSpaceModel
    name = "goal-space"
    num_levels = 0
    shardable = False

    def check_training(self, window: int) -> None:
        del window

    def init(self, key: jax.Array, obs_mean=None, obs_std=None) -> PyTree:
        """`obs_mean`, `obs_std`: statistics of the [latent, position] rows [D + P]; their
        position part normalises the goal space."""
        size = self.config.latent_size
        return goal_space.init(
            self.config.goal_space, key, size, self.config.position_size,
            None if obs_mean is None else obs_mean[size:],
            None if obs_std is None else obs_std[size:])

    def loss(self, params: PyTree, loss_config: LossConfig, obs: jax.Array, actions: jax.Array,
             key: jax.Array | None = None) -> tuple[jax.Array, dict]:
        """The goal-space loss on windows `obs` [B, W+1, D + P] of latents and positions;
        `key` draws the random pairs; `loss_config` and `actions` are unused."""
        del loss_config, actions
        size = self.config.latent_size
        return goal_space.loss(params, self.config.goal_space, obs[..., :size],
                               obs[..., size:], key)


@dataclasses.dataclass(frozen=True)
class Skills:
    """Learned skills (`hjepa.skills`: chunk encoder, skill decoder, level-2 predictor over a
    frozen model's latents) as a trainable family: it trains through `hjepa.train`'s one
    chunk and loop on windows of [latent, action] [B, K+1, D + A]. It neither encodes nor
    builds problems of observations: `hjepa.skills.Act` plans with it."""

    config: SkillsModel
    name = "skills"
    num_levels = 0
    shardable = False

    def check_training(self, window: int) -> None:
        if window != self.config.skills.chunk:
            raise ValueError(f"window: skills train on windows of one chunk "
                             f"({self.config.skills.chunk}), got {window}")

    def init(self, key: jax.Array, obs_mean=None, obs_std=None) -> PyTree:
        del obs_mean, obs_std
        config = self.config
        return skills.init(config.skills, key, config.latent_size,
                           jnp.asarray(config.action_low), jnp.asarray(config.action_high))

    def loss(self, params: PyTree, loss_config: LossConfig, obs: jax.Array, actions: jax.Array,
             key: jax.Array | None = None) -> tuple[jax.Array, dict]:
        """The skills' loss on windows `obs` [B, K+1, D + A] of latents and the actions taken
        from them (the last row's action unused); `key` draws the skills; `loss_config` and
        `actions` are unused."""
        del loss_config, actions
        size = self.config.latent_size
        return skills.loss(params, self.config.skills, obs[..., :size], obs[:, :-1, size:], key)


FAMILIES: dict[type, type] = {ModelConfig: Flat, HierarchyConfig: Hierarchical,
                              LatentVariableConfig: LatentVariable, CriticModel: Critic,
                              GoalSpaceModel: GoalSpace, SkillsModel: Skills}


def register(config_type: type, family: type) -> None:
    """Makes `family(config)` the world model of configs of `config_type`."""
    FAMILIES[config_type] = family


def of(config) -> Flat | Hierarchical | LatentVariable:
    """The world model (family) of a model config."""
    family = FAMILIES.get(type(config))
    if family is None:
        raise ValueError(f"model config: expected one of "
                         f"{[t.__name__ for t in FAMILIES]}, got {type(config).__name__}")
    return family(config)
