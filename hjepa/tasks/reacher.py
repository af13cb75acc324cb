"""Goal-reaching with Brax's two-link reacher arm.

Each episode draws a start configuration and a goal configuration of the arm. The goal is
given as the observation of the arm at rest in the goal configuration; the observation never
contains the target. Success: the fingertip ends within 0.02 of the goal's fingertip.

State observation [5]: cos θ0, sin θ0, θ1, θ̇0 / 10, θ̇1 / 10. The shoulder turns freely, so
its angle enters as a point on the circle; the elbow is limited to ±3 rad, so its angle enters
as it is (as cos/sin it would put both ends of its range side by side and make the straight
line in observation space cross the joint limit).

Pixel observation [S, S, 6] (uint8): two top-down frames of the arm stacked on channels, the
arm now (channels 0-2) and where it was `VELOCITY_FRAME_STEPS` control steps earlier
(channels 3-5), that earlier pose reconstructed from the joint velocities (q − q̇·k·Δt). One
frame shows no motion, and the arm's joints are lightly damped, so its momentum matters; the
pair shows it, as stacked frames do in pixel-based control. The gap is several steps because
one step of the elbow moves the forearm by under half a pixel at 32×32 (at 3 rad/s), too
little for an encoder to read. The target is never drawn.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import warnings

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

import planners
from hjepa.tasks._brax import import_brax, pipeline, step_substeps
from hjepa.tasks.base import Episode, Goal, Task, register
from hjepa.tasks.policies import (
    check_noisy_tracking,
    correlated_noise,
    episode_noise_scale,
    register_policy,
)

LINK0_LENGTH = 0.1  # shoulder to elbow
LINK1_LENGTH = 0.11  # elbow to fingertip
ELBOW_LIMIT = 2.6  # goals and starts keep |θ1| below this (the joint's range is ±3)
VELOCITY_SCALE = 0.1  # observation scale of joint velocities
VELOCITY_FRAME_STEPS = 3  # control steps between the two frames of a pixel observation


@functools.cache
def load_system(backend: str = "generalized"):
    """The Brax system of the reacher (cached)."""
    brax = import_brax()
    from brax.io import mjcf

    path = os.path.join(os.path.dirname(brax.__file__), "envs", "assets", "reacher.xml")
    # The cache outlives any trace: build concrete arrays even when first called under jit.
    with warnings.catch_warnings(), jax.ensure_compile_time_eval():
        warnings.simplefilter("ignore")
        sys = mjcf.load(path)
        if backend in ("spring", "positional"):
            sys = sys.tree_replace({"opt.timestep": 0.005})
            sys = sys.replace(actuator=sys.actuator.replace(gear=jnp.array([25.0, 25.0])))
    return sys


def fingertip(q: jax.Array) -> jax.Array:
    """Fingertip xy [2] of joint angles q [..., >=2] by forward kinematics."""
    shoulder, elbow = q[..., 0], q[..., 1]
    x = LINK0_LENGTH * jnp.cos(shoulder) + LINK1_LENGTH * jnp.cos(shoulder + elbow)
    y = LINK0_LENGTH * jnp.sin(shoulder) + LINK1_LENGTH * jnp.sin(shoulder + elbow)
    return jnp.stack([x, y], axis=-1)


def state_observation(q: jax.Array, qd: jax.Array) -> jax.Array:
    """Observation [5] of the arm's joint angles q [>=2] and velocities qd [>=2]."""
    return jnp.stack([jnp.cos(q[0]), jnp.sin(q[0]), q[1], VELOCITY_SCALE * qd[0],
                      VELOCITY_SCALE * qd[1]])


@dataclasses.dataclass(frozen=True)
class ReacherDynamics:
    """One control step of the reacher's physics: `(None, state, action [2]) -> state`."""

    backend: str = "generalized"

    @property
    def substeps(self) -> int:
        return 4 if self.backend in ("spring", "positional") else 2

    def __call__(self, env_params, state, action):
        del env_params
        sys = load_system(self.backend)
        action = jnp.clip(action, -1.0, 1.0)
        return step_substeps(self.backend, sys, state, action, self.substeps)


@dataclasses.dataclass(frozen=True)
class ReacherOracleStep:
    """Oracle planning step on true physics: cost = fingertip distance + velocity penalty.

    `params` is the goal fingertip [2].
    """

    backend: str = "generalized"
    velocity_weight: float = 0.01

    def __call__(self, goal_tip, state, action):
        state = ReacherDynamics(self.backend)(None, state, action)
        return state, reacher_cost(goal_tip, state.q, state.qd, self.velocity_weight)


@dataclasses.dataclass(frozen=True)
class ReacherOracleTerminal:
    """Terminal cost of the oracle problem: a weighted fingertip distance at the horizon."""

    weight: float = 4.0
    velocity_weight: float = 0.01

    def __call__(self, goal_tip, state):
        return self.weight * reacher_cost(goal_tip, state.q, state.qd, self.velocity_weight)


def reacher_cost(goal_tip: jax.Array, q: jax.Array, qd: jax.Array, velocity_weight: float):
    """Fingertip distance to `goal_tip` [2] plus a penalty on joint speed []."""
    distance = jnp.sqrt(jnp.sum((fingertip(q) - goal_tip) ** 2) + 1e-12)
    return distance + velocity_weight * jnp.sum((VELOCITY_SCALE * qd[:2]) ** 2)


CAMERA_EXTENT = 0.23  # half side of the pixel view (the arm reaches 0.21 from the origin)
HIDDEN_GEOMS = ("target",)


def control_timestep(backend: str) -> float:
    """Seconds of physics per control step."""
    return float(load_system(backend).opt.timestep) * ReacherDynamics(backend).substeps


class Reacher(Task):
    """Brax's reacher as a goal-reaching task (see the module docstring)."""

    def __init__(self, obs: str = "state", backend: str = "generalized",
                 episode_length: int = 50, image_size: int = 64):
        from hjepa.tasks import render

        if obs not in ("state", "pixels"):
            raise ValueError(f"obs: expected 'state' or 'pixels', got {obs!r}")
        self.name = "reacher"
        self.obs_kind = obs
        self.backend = backend
        self.system = load_system(backend)
        self.camera = render.Camera(center=(0.0, 0.0), extent=CAMERA_EXTENT, size=image_size)
        self.camera.validate()
        self.visible = render.visible_geoms(self.system, hidden=HIDDEN_GEOMS)
        self.obs_shape = (5,) if obs == "state" else (image_size, image_size, 6)
        self.action_size = 2
        self.action_low = -np.ones(2, np.float32)
        self.action_high = np.ones(2, np.float32)
        self.episode_length = episode_length
        self.success_threshold = 0.02
        self.dynamics = ReacherDynamics(backend)

    def _init_state(self, angles: jax.Array, target: jax.Array):
        sys = load_system(self.backend)
        q = jnp.concatenate([angles, target])  # [4]: arm angles, target slide joints
        return pipeline(self.backend).init(sys, q, jnp.zeros(4))

    def reset(self, key: jax.Array) -> Episode:
        start_key, goal_key = jax.random.split(key)
        limits = jnp.array([jnp.pi, ELBOW_LIMIT])
        start = jax.random.uniform(start_key, (2,), minval=-limits, maxval=limits)
        goal = jax.random.uniform(goal_key, (2,), minval=-limits, maxval=limits)
        goal_tip = fingertip(goal)
        goal_state = self._init_state(goal, goal_tip)
        goal_obs = self.observe(goal_state)
        state = self._init_state(start, goal_tip)
        return Episode(state=state, goal=Goal(obs=goal_obs, position=goal_tip, state=goal_state))

    def observe(self, state) -> jax.Array:
        if self.obs_kind == "pixels":
            return self.render_frames(state.q, state.qd)
        return state_observation(state.q, state.qd)

    def render_frame(self, q: jax.Array) -> jax.Array:
        """Top-down image uint8 [S, S, 3] of the arm at joint angles q [4]."""
        from brax import kinematics

        from hjepa.tasks import render

        x, _ = kinematics.forward(self.system, q, jnp.zeros_like(q))
        return render.render(self.system, x, self.camera, visible=self.visible)

    def render_frames(self, q: jax.Array, qd: jax.Array) -> jax.Array:
        """The pixel observation uint8 [S, S, 6]: the frame now and `VELOCITY_FRAME_STEPS`
        control steps ago (q − q̇·k·Δt)."""
        before = q - qd * (VELOCITY_FRAME_STEPS * control_timestep(self.backend))
        return jnp.concatenate([self.render_frame(q), self.render_frame(before)], axis=-1)

    def position(self, state) -> jax.Array:
        return fingertip(state.q)

    def distance(self, state, goal: Goal) -> jax.Array:
        return jnp.sqrt(jnp.sum((fingertip(state.q) - goal.position) ** 2))

    def oracle_problem(self, state, goal: Goal) -> planners.Problem:
        return planners.Problem(
            step=ReacherOracleStep(self.backend),
            terminal_cost=ReacherOracleTerminal(),
            params=goal.position,
            init_state=state,
            action_low=jnp.asarray(self.action_low),
            action_high=jnp.asarray(self.action_high),
        )


register("reacher", lambda obs="state", image_size=64: Reacher(obs=obs, image_size=image_size))


def _wrap_angle(angle: jax.Array) -> jax.Array:
    """The angle in [-π, π)."""
    return (angle + jnp.pi) % (2 * jnp.pi) - jnp.pi


@struct.dataclass
class ReachingCarry:
    """What `ReachingPolicy` carries from step to step."""

    target: jax.Array  # [2] joint angles the arm is driven to
    steps_left: jax.Array  # [] int32, control steps until the next target
    noise: jax.Array  # [2] the AR(1) noise of the last step
    scale: jax.Array  # [] this episode's noise scale σ
    tracking: jax.Array  # [] bool: the episode drives the arm to targets (else noise only)


@dataclasses.dataclass(frozen=True)
class ReachingPolicy:
    """Reward-free reacher data that come to rest: noisy reach-and-hold toward random poses.

    Random torques spin the light arm fast (median shoulder speed ~9 rad/s in AR(1) data) and
    seldom leave it still, while a planner's arm must stop at its goal. With probability
    `track_probability` an episode drives the arm with a PD law (gains `kp`, `kd` in action
    units per rad and rad/s; with the defaults the arm settles within ~20 steps) to a random pose,
    a new one every `min_hold`..`max_hold` steps, plus AR(1) noise of correlation `correlation`
    and a per-episode scale in [`min_scale`, `max_scale`]; the other episodes are that noise
    alone with scale in [`explore_min_scale`, 1]. Poses are drawn as the task draws goals, so
    they are never the evaluation's goals but cover the same space. Pure and jittable:

        carry = policy.init(key, state)
        carry, action = policy(carry, key, state, step_index)  # action [2] in [-1, 1]
    """

    kp: float = 2.0
    kd: float = 0.15
    min_hold: int = 20
    max_hold: int = 50
    track_probability: float = 0.75
    correlation: float = 0.8
    min_scale: float = 0.0
    max_scale: float = 0.2
    explore_min_scale: float = 0.1

    def validate(self) -> None:
        """Raises ValueError for settings out of range."""
        check_noisy_tracking(self, numbers=("kp", "kd", "min_scale", "max_scale",
                                            "explore_min_scale"),
                             integers=("min_hold", "max_hold"), probability="track_probability")

    def bind(self, task: Task) -> ReachingPolicy:
        """The policy itself (it acts in any `Reacher`); for `hjepa.data.collect_episodes`."""
        if not isinstance(task, Reacher):
            raise ValueError(f"task: ReachingPolicy drives the arm of reacher, got task "
                             f"{getattr(task, 'name', task)!r}")
        return self

    def _draw_target(self, key: jax.Array) -> tuple[jax.Array, jax.Array]:
        """A random pose [2] and how many steps to hold it []."""
        pose_key, hold_key = jax.random.split(key)
        limits = jnp.array([jnp.pi, ELBOW_LIMIT])
        pose = jax.random.uniform(pose_key, (2,), minval=-limits, maxval=limits)
        hold = jax.random.randint(hold_key, (), self.min_hold, self.max_hold + 1)
        return pose, hold

    def init(self, key: jax.Array, state) -> ReachingCarry:
        """The carry at the start of an episode: its kind, noise scale and first target."""
        del state
        target_key, track_key, scale_key = jax.random.split(key, 3)
        tracking = jax.random.uniform(track_key) < self.track_probability
        scale = episode_noise_scale(self, jax.random.uniform(scale_key), tracking)
        target, hold = self._draw_target(target_key)
        return ReachingCarry(target=target, steps_left=hold, noise=jnp.zeros(2), scale=scale,
                             tracking=tracking)

    def __call__(self, carry: ReachingCarry, key: jax.Array, state, step_index):
        """`(carry, key, pipeline state, step index []) -> (carry, action [2])`."""
        del step_index
        target_key, noise_key = jax.random.split(key)
        new_target, new_hold = self._draw_target(target_key)
        expired = carry.steps_left <= 0
        target = jnp.where(expired, new_target, carry.target)
        steps_left = jnp.where(expired, new_hold, carry.steps_left) - 1
        error = jnp.stack([_wrap_angle(target[0] - state.q[0]), target[1] - state.q[1]])
        drive = self.kp * error - self.kd * state.qd[:2]  # [2]
        noise = correlated_noise(carry.noise, noise_key, self.correlation, carry.scale)  # [2]
        action = jnp.clip(jnp.where(carry.tracking, drive, 0.0) + noise, -1.0, 1.0)
        carry = carry.replace(target=target, steps_left=steps_left, noise=noise)
        return carry, action


register_policy("reach", ReachingPolicy, tasks=("reacher",))
