"""Reward-free exploration policies, registered by name and by the tasks they drive.

`ExplorationPolicy` (temporally correlated random actions, kind "ar1") works on any task; a
task module registers the controllers written for it (`register_policy`): reacher's
`ReachingPolicy` ("reach"), ant_umaze's `WaypointPolicy` ("waypoint") and pusher's
`PushPolicy` ("push"). `hjepa.data`
collects with any registered policy and knows none of them by name.

A policy is a frozen dataclass (hashable: a static argument of the jitted collection) with
`validate()` and `bind(task)`, which returns the policy acting in that task:
`init(key, state) -> carry` and `(carry, key, state, step_index) -> (carry, action [A])`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from hjepa.checks import is_int
from hjepa.tasks.base import Task

PyTree = Any


def correlated_noise(previous: jax.Array, key: jax.Array, correlation: float,
                     scale: jax.Array) -> jax.Array:
    """One step of AR(1) noise [A]: correlation · previous + sqrt(1 − correlation²) · scale · ε."""
    innovation = jnp.sqrt(1.0 - correlation**2)
    return correlation * previous + innovation * scale * jax.random.normal(key, previous.shape)


def episode_noise_scale(policy, unit: jax.Array, tracking: jax.Array) -> jax.Array:
    """The noise scale σ [] of a noisy target-tracking episode (`ReachingPolicy`, `PushPolicy`)
    from a uniform draw `unit` []: in [min_scale, max_scale] when it tracks targets, else
    (noise alone) in [explore_min_scale, 1]."""
    return jnp.where(tracking, policy.min_scale + unit * (policy.max_scale - policy.min_scale),
                     policy.explore_min_scale + unit * (1.0 - policy.explore_min_scale))


def check_noisy_tracking(policy, *, numbers: tuple[str, ...], integers: tuple[str, ...],
                         probability: str) -> None:
    """Raises ValueError for settings of a noisy target-tracking policy out of range:
    `numbers` must be finite and >= 0, `integers` >= 1, min_hold <= max_hold, min_scale <=
    max_scale, the attribute `probability` in [0, 1], correlation in [0, 1) and
    explore_min_scale <= 1."""
    for name in numbers:
        value = getattr(policy, name)
        if not isinstance(value, (int, float)) or not np.isfinite(value) or value < 0:
            raise ValueError(f"{name}: expected a finite number >= 0, got {value!r}")
    for name in integers:
        value = getattr(policy, name)
        if not is_int(value) or value < 1:
            raise ValueError(f"{name}: expected an integer >= 1, got {value!r}")
    if policy.min_hold > policy.max_hold or policy.min_scale > policy.max_scale:
        raise ValueError(
            "expected min_hold <= max_hold and min_scale <= max_scale, got "
            f"{policy.min_hold}, {policy.max_hold} and {policy.min_scale}, {policy.max_scale}")
    value = getattr(policy, probability)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{probability}: expected a number in [0, 1], got {value!r}")
    if not 0.0 <= policy.correlation < 1.0:
        raise ValueError(f"correlation: expected a number in [0, 1), got {policy.correlation!r}")
    if policy.explore_min_scale > 1.0:
        raise ValueError(
            f"explore_min_scale: expected a number in [0, 1], got {policy.explore_min_scale!r}")


@dataclasses.dataclass(frozen=True)
class ExplorationPolicy:
    """Temporally correlated random actions (a clipped AR(1) process).

    a_t = clip(correlation · a_{t-1} + sqrt(1 − correlation²) · σ · ε_t), with one σ per
    episode drawn uniformly from [min_scale, max_scale] so the data hold slow and fast motion.
    """

    correlation: float = 0.8
    min_scale: float = 0.1
    max_scale: float = 1.0

    def validate(self) -> None:
        if not 0.0 <= self.correlation < 1.0:
            raise ValueError(f"correlation: expected a number in [0, 1), got {self.correlation!r}")
        if not 0.0 <= self.min_scale <= self.max_scale:
            raise ValueError(
                "min_scale/max_scale: expected 0 <= min_scale <= max_scale, "
                f"got {self.min_scale!r} and {self.max_scale!r}"
            )

    def bind(self, task: Task) -> _CorrelatedNoise:
        """The policy acting in `task`'s action box (see `collect_episodes`)."""
        return _CorrelatedNoise(self, jnp.asarray(task.action_low), jnp.asarray(task.action_high))


@dataclasses.dataclass(frozen=True)
class _CorrelatedNoise:
    """`ExplorationPolicy` in one task's action box [A]; its carry is (a_{t-1} [A], σ [])."""

    policy: ExplorationPolicy
    low: jax.Array
    high: jax.Array

    def init(self, key: jax.Array, state) -> tuple[jax.Array, jax.Array]:
        del state
        scale = jax.random.uniform(key, (), minval=self.policy.min_scale,
                                   maxval=self.policy.max_scale)
        return jnp.zeros_like(self.low), scale

    def __call__(self, carry, key: jax.Array, state, step_index):
        del state, step_index
        previous, scale = carry
        action = jnp.clip(correlated_noise(previous, key, self.policy.correlation, scale),
                          self.low, self.high)
        return (action, scale), action


def run_policy(task: Task, policy, key: jax.Array, length: int,
               record: Callable[[PyTree], PyTree]) -> tuple[PyTree, jax.Array]:
    """Rolls an exploration policy out for `length` control steps in `task`, from
    `task.exploration_start`, actions clipped to the task's bounds. Vmappable over keys.

    `record(state)` says what to keep of each physics state (an observation, a goal-space
    position, the whole state). Returns (the records of the `length` + 1 states, stacked on a
    leading axis [T+1, ...], actions [T, A])."""
    stepper = policy.bind(task)
    low, high = jnp.asarray(task.action_low), jnp.asarray(task.action_high)
    reset_key, policy_key, noise_key = jax.random.split(key, 3)
    state = task.exploration_start(reset_key)

    def step(carry, inputs):
        state, policy_carry = carry
        step_key, step_index = inputs
        policy_carry, action = stepper(policy_carry, step_key, state, step_index)
        action = jnp.clip(action, low, high)
        next_state = task.step(state, action)
        return (next_state, policy_carry), (record(next_state), action)

    inputs = (jax.random.split(noise_key, length), jnp.arange(length))
    carry = (state, stepper.init(policy_key, state))
    _, (records, actions) = jax.lax.scan(step, carry, inputs)
    records = jax.tree.map(lambda first, rest: jnp.concatenate([first[None], rest]),
                           record(state), records)
    return records, actions


# kind -> policy class; kind -> the tasks a task-specific policy drives (absent: any task).
POLICIES: dict[str, type] = {"ar1": ExplorationPolicy}
POLICY_TASKS: dict[str, tuple[str, ...]] = {}
DEFAULT_POLICIES: dict[str, str] = {}  # task -> the kind that collects its data by default


def register_policy(kind: str, cls: type, *, tasks: tuple[str, ...] | None = None,
                    default: bool = False) -> None:
    """Makes `cls` the exploration policy `kind` (for `tasks` only, when given; with
    `default`, the one that collects those tasks' data unless told otherwise)."""
    POLICIES[kind] = cls
    if tasks is not None:
        POLICY_TASKS[kind] = tuple(tasks)
        if default:
            DEFAULT_POLICIES.update({task: kind for task in tasks})


def default_policy(task_name: str):
    """The exploration policy that collects `task_name`'s data by default (`hjepa collect
    --policy auto`): the controller registered as its default (waypoint for ant_umaze, push
    for pusher, push_block for push_t), else `ExplorationPolicy`."""
    return POLICIES[DEFAULT_POLICIES.get(task_name, "ar1")]()


def policy_kind(policy) -> str:
    """The name of an exploration policy in `POLICIES`; ValueError for anything else."""
    for kind, cls in POLICIES.items():
        if type(policy) is cls:
            return kind
    raise ValueError(f"policy: expected one of {sorted(POLICIES)} "
                     f"({', '.join(c.__name__ for c in POLICIES.values())}), got {policy!r}")
