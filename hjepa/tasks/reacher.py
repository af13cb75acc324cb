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

import planners
from hjepa.tasks._brax import import_brax, pipeline, step_substeps
from hjepa.tasks.base import Episode, Goal, Task, register

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
