"""What every goal-reaching task provides, and the registry behind `hjepa.tasks.make`."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

import planners
from hjepa.checks import is_int

PyTree = Any

OBS_KINDS = ("state", "pixels")
DEFAULT_IMAGE_SIZE = 64


@struct.dataclass
class Goal:
    """A goal for one episode.

    Attributes:
      obs: the goal as an observation of the goal configuration [*obs_shape]; this is all a
        learned planner may see of the goal.
      position: where the goal is, in the task's success metric (e.g. the fingertip's xy) [P];
        privileged, used for success and distance only.
      state: the physics state of the goal configuration (for rendering and the oracle).
    """

    obs: jax.Array
    position: jax.Array
    state: PyTree


@struct.dataclass
class Episode:
    """The start of one episode: the physics state and the goal."""

    state: PyTree
    goal: Goal


class Task:
    """A goal-reaching task on Brax physics. Immutable: every method is a pure function.

    Subclasses set the attributes below and implement the methods. Instances come from
    `hjepa.tasks.make`, which caches them, so a task can be a static argument of `jax.jit`.

    Attributes:
      name: the registry name.
      obs_kind: "state" or "pixels".
      obs_shape: shape of one observation.
      action_size: A.
      action_low, action_high: bounds [A] (numpy).
      episode_length: control steps per episode.
      success_threshold: distance below which the final state counts as a success.
      dynamics: a hashable `(env_params, state, action [A]) -> state` for `planners.mpc`.
    """

    name: str
    obs_kind: str
    obs_shape: tuple[int, ...]
    action_size: int
    action_low: np.ndarray
    action_high: np.ndarray
    episode_length: int
    success_threshold: float
    dynamics: Callable

    @property
    def env_params(self) -> PyTree:
        """What `dynamics` reads besides the state (None: the system is a constant)."""
        return None

    def reset(self, key: jax.Array) -> Episode:
        """Draws a start state and a goal. Vmappable over keys."""
        raise NotImplementedError

    def exploration_start(self, key: jax.Array) -> PyTree:
        """The physics state a reward-free data episode starts from (`hjepa.data`): by
        default an episode's start; tasks override it to cover more of their space."""
        return self.reset(key).state

    def step(self, state: PyTree, action: jax.Array) -> PyTree:
        """One control step of the true dynamics; action [A] is clipped to the bounds."""
        return self.dynamics(self.env_params, state, action)

    def observe(self, state: PyTree) -> jax.Array:
        """The observation [*obs_shape] of a physics state."""
        raise NotImplementedError

    def position(self, state: PyTree) -> jax.Array:
        """Where the state is, in the success metric's space [P]: the task's goal space, where
        `Goal.position` lies and goal-space models (`hjepa.goal_space`) read latents."""
        raise NotImplementedError

    @functools.cached_property
    def position_size(self) -> int:
        """P, the size of the goal space (`position`)."""
        state = jax.eval_shape(lambda: self.reset(jax.random.key(0)).state)
        return int(jax.eval_shape(self.position, state).shape[-1])

    def distance(self, state: PyTree, goal: Goal) -> jax.Array:
        """Distance [] between a state and the goal, in the success metric."""
        raise NotImplementedError

    def position_distance(self, position: jax.Array, goal_position: jax.Array) -> jax.Array:
        """The success metric's distance [...] between points of the goal space [..., P]
        (`position`, `Goal.position`): Euclidean unless a task measures it otherwise (Push-T:
        position and angle errors over their tolerances). Tasks keep
        `distance(state, goal) == position_distance(position(state), goal.position)`."""
        return jnp.sqrt(jnp.sum((position - goal_position) ** 2, axis=-1))

    def success(self, state: PyTree, goal: Goal) -> jax.Array:
        """Whether `state` reaches `goal` (bool [])."""
        return self.distance(state, goal) < self.success_threshold

    def oracle_problem(self, state: PyTree, goal: Goal) -> planners.Problem:
        """A `planners.Problem` that steps the true physics from `state` toward `goal`."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, obs={self.obs_kind!r})"


_REGISTRY: dict[str, Callable[..., Task]] = {}


def register(name: str, factory: Callable[..., Task]) -> None:
    """Registers a task factory under `name`: `factory(obs="state")` and
    `factory(obs="pixels", image_size=S)` each return a Task."""
    _REGISTRY[name] = factory


def names() -> tuple[str, ...]:
    """The registered task names."""
    return tuple(sorted(_REGISTRY))


def make(name: str, obs: str = "state", *, image_size: int | None = None) -> Task:
    """Makes a task; the same (name, obs, image_size) always gives the same object.

    Tasks are static arguments of jitted functions (hashed by identity), so the cache keeps
    them from being rebuilt and functions from recompiling.

    Args:
      name: a registered task name (see `names()`).
      obs: "state" or "pixels".
      image_size: side of the square pixel observations [S, S, C] (default 64); ignored
        for state observations.

    Raises:
      ValueError: for an unknown name or observation kind, or a bad image size.
    """
    if not isinstance(name, str) or name not in _REGISTRY:
        raise ValueError(f"task name: expected one of {list(names())}, got {name!r}")
    if not isinstance(obs, str) or obs not in OBS_KINDS:
        raise ValueError(f"obs: expected one of {list(OBS_KINDS)}, got {obs!r}")
    if obs == "state":
        return _make(name, obs, None)
    size = DEFAULT_IMAGE_SIZE if image_size is None else image_size
    if not is_int(size) or size < 8:
        raise ValueError(f"image_size: expected an integer >= 8, got {image_size!r}")
    return _make(name, obs, size)


@functools.cache
def _make(name: str, obs: str, image_size: int | None) -> Task:
    if image_size is None:
        return _REGISTRY[name](obs=obs)
    return _REGISTRY[name](obs=obs, image_size=image_size)
