"""Push-T: a round pusher pushes a T-shaped block on a plane to a goal pose.

The published Push-T task (a 512 × 512 pixel workspace simulated in 2-D) rebuilt as an MJCF
system in Brax, in metres: one workspace pixel is 1/256 m, so the workspace is the square
[-1, 1]², the T's bar is 0.469 × 0.117 m and its stem 0.117 × 0.352 m (120 × 30 and 30 × 90
pixels), and the pusher is a disc of radius 0.0586 m (15 pixels). Everything moves in the
plane z = `HEIGHT` (zero gravity): the pusher on two slide joints, the block on two slide
joints and a hinge about z through its centroid. The block's joints are damped (the floor's
friction, which the 2-D peers leave to the physics engine's damping); contacts are the pusher
disc against the T's two boxes, through Brax's generalized pipeline (MJX's sphere-box
collision). 10 substeps of 0.01 s per 0.1 s control step (10 Hz, as the peers).

Actions [2] in [-1, 1]: the pusher's target position relative to where it is, `ACTION_SCALE`
(0.39 m, 100 pixels) per unit, as the peers' relative actions; a position servo (kp 100,
kv 20 per unit mass, the peers' PD gains) drives the pusher there.

State observation [11]: the pusher's xy, the block's xy, cos and sin of its angle, the
pusher's velocity / 4, the block's velocity / 4 and its angular velocity / 4. Pixel
observation [S, S, 3] (uint8): a top-down image of the workspace (`render.render`); the goal
is never drawn.

Goal space (`position`) [4]: the block's xy and `ANGLE_RADIUS` × (cos θ, sin θ), the block's
pose with its angle as a point on a circle of radius 0.15 m (about the T's radius of gyration,
0.17 m: a turn of the T moves its mass about that far per radian). Success, as the peers':
the block within `POSITION_TOLERANCE` (0.078 m, 20 pixels) of the goal position and its angle
within `ANGLE_TOLERANCE` (π/9) of the goal angle. `distance` is the larger of the two errors,
each in units of its tolerance, so success is `distance < 1`.

Episodes (this library's protocol): the block starts at a random pose (centre uniform in
`±START_HALF_SIDE`, angle uniform), the goal is another random pose of the same law at least
2 tolerances away in position or angle, the pusher starts at rest at a random point clear of
the block; 100 control steps (10 s). The goal observation is the block at the goal pose with
the pusher parked at `PARK` (a configuration that exists whatever the goal, and that does not
hint at how to push).

Oracle (`oracle_problem`): cost = the block's pose error (the Euclidean distance in the goal
space: position error and `ANGLE_RADIUS` × the chord of the angle error, combined) + 0.2 ×
the pusher's distance to the block's centre, terminal 4 × that.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import warnings

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

import planners
from hjepa.tasks._brax import import_brax, pipeline, step_substeps
from hjepa.tasks.base import DEFAULT_IMAGE_SIZE, Episode, Goal, Task, register
from hjepa.tasks.policies import (
    check_noisy_tracking,
    correlated_noise,
    episode_noise_scale,
    register_policy,
)

PIXEL = 1.0 / 256.0  # metres per pixel of the peers' 512-pixel workspace
HALF_SIDE = 1.0  # the workspace is [-1, 1]²
HEIGHT = 0.05  # z of the plane everything moves in (and the half-thickness of the geoms)
PUSHER_RADIUS = 15 * PIXEL
BAR_HALF = (60 * PIXEL, 15 * PIXEL)  # half sizes of the T's bar (x, y)
STEM_HALF = (15 * PIXEL, 45 * PIXEL)  # and of its stem
# The body's origin is the T's centroid: bar centre 25.7 pixels above it, stem centre 34.3 below.
_CENTROID = (15.0 * 3600 + 75.0 * 2700) / 6300  # pixels from the bar's top edge
BAR_CENTER = (0.0, (_CENTROID - 15.0) * PIXEL)
STEM_CENTER = (0.0, (_CENTROID - 75.0) * PIXEL)
PUSHER_MASS = 1.0
BLOCK_MASS = 1.0  # split over the bar and the stem by their areas
KP, KV = 100.0, 20.0  # the pusher's servo, per unit mass
LINEAR_DAMPING = 4.0  # N s/m on the block's slides: its speed decays with time constant 0.25 s
ANGULAR_DAMPING = 0.08  # N m s/rad on its hinge (inertia ~0.03 kg m²: time constant ~0.37 s)
TIMESTEP = 0.01
SUBSTEPS = 10
ACTION_SCALE = 100 * PIXEL
PUSHER_RANGE = HALF_SIDE - PUSHER_RADIUS
BLOCK_RANGE = 0.68  # the block's centre: the T (reaching 0.32 from it) stays inside
START_HALF_SIDE = 0.4  # block poses of episodes: centre in ±this
POSITION_TOLERANCE = 20 * PIXEL
ANGLE_TOLERANCE = math.pi / 9
ANGLE_RADIUS = 0.15  # m per unit of (cos, sin) in the goal space
PARK = (0.0, -0.9)  # the pusher in goal observations
VELOCITY_SCALE = 0.25
SOLREF = 0.02  # contact and joint-limit time constant (s): 2 substeps, as MuJoCo's floor;
# brax takes solref as given, and one of 0.01 at this timestep reverses the normal velocity
# (the pusher bounces the block off) instead of stopping it
SOLVER_ITERATIONS = 10
SOLVER_MAXLS = 10


def _f(v: float) -> str:
    return f"{v:.9g}"


def mjcf_xml() -> str:
    """The MJCF model: the pusher disc and the T block on planar joints, no gravity."""
    bar_area = BAR_HALF[0] * BAR_HALF[1]
    stem_area = STEM_HALF[0] * STEM_HALF[1]
    bar_mass = BLOCK_MASS * bar_area / (bar_area + stem_area)
    stem_mass = BLOCK_MASS - bar_mass
    slide = 'type="slide" limited="true"'
    return f"""<mujoco model="push_t">
  <option timestep="{_f(TIMESTEP)}" iterations="{SOLVER_ITERATIONS}" gravity="0 0 0"/>
  <custom>
    <numeric name="matrix_inv_iterations" data="0"/>
    <numeric name="solver_maxls" data="{SOLVER_MAXLS}"/>
  </custom>
  <default>
    <geom solref="{_f(SOLREF)} 1" friction="0.5 0 0"/>
    <joint solreflimit="{_f(SOLREF)} 1"/>
  </default>
  <worldbody>
    <body name="pusher" pos="0 0 {_f(HEIGHT)}">
      <joint name="pusher_x" axis="1 0 0" {slide} range="{_f(-PUSHER_RANGE)} {_f(PUSHER_RANGE)}"/>
      <joint name="pusher_y" axis="0 1 0" {slide} range="{_f(-PUSHER_RANGE)} {_f(PUSHER_RANGE)}"/>
      <geom name="pusher" type="sphere" size="{_f(PUSHER_RADIUS)}" mass="{_f(PUSHER_MASS)}"
            contype="1" conaffinity="1" rgba=".25 .41 .88 1"/>
    </body>
    <body name="block" pos="0 0 {_f(HEIGHT)}">
      <joint name="block_x" axis="1 0 0" {slide} damping="{_f(LINEAR_DAMPING)}"
             range="{_f(-BLOCK_RANGE)} {_f(BLOCK_RANGE)}"/>
      <joint name="block_y" axis="0 1 0" {slide} damping="{_f(LINEAR_DAMPING)}"
             range="{_f(-BLOCK_RANGE)} {_f(BLOCK_RANGE)}"/>
      <joint name="block_angle" axis="0 0 1" type="hinge" limited="false"
             damping="{_f(ANGULAR_DAMPING)}"/>
      <geom name="bar" type="box" pos="{_f(BAR_CENTER[0])} {_f(BAR_CENTER[1])} 0"
            size="{_f(BAR_HALF[0])} {_f(BAR_HALF[1])} {_f(HEIGHT)}" mass="{_f(bar_mass)}"
            contype="1" conaffinity="1" rgba=".47 .53 .6 1"/>
      <geom name="stem" type="box" pos="{_f(STEM_CENTER[0])} {_f(STEM_CENTER[1])} 0"
            size="{_f(STEM_HALF[0])} {_f(STEM_HALF[1])} {_f(HEIGHT)}" mass="{_f(stem_mass)}"
            contype="1" conaffinity="1" rgba=".47 .53 .6 1"/>
    </body>
  </worldbody>
  <actuator>
    <position name="pusher_x" joint="pusher_x" kp="{_f(KP * PUSHER_MASS)}"
              kv="{_f(KV * PUSHER_MASS)}" ctrllimited="true"
              ctrlrange="{_f(-PUSHER_RANGE)} {_f(PUSHER_RANGE)}"/>
    <position name="pusher_y" joint="pusher_y" kp="{_f(KP * PUSHER_MASS)}"
              kv="{_f(KV * PUSHER_MASS)}" ctrllimited="true"
              ctrlrange="{_f(-PUSHER_RANGE)} {_f(PUSHER_RANGE)}"/>
  </actuator>
</mujoco>
"""


@functools.cache
def load_system():
    """The Brax system of Push-T (cached)."""
    import_brax()
    from brax.io import mjcf

    # The cache outlives any trace: build concrete arrays even when first called under jit.
    with warnings.catch_warnings(), jax.ensure_compile_time_eval():
        warnings.simplefilter("ignore")
        return mjcf.loads(mjcf_xml())


# q layout [5]: pusher x, pusher y, block x, block y, block angle.


def block_pose(q: jax.Array) -> jax.Array:
    """The block's pose [3] (x, y, angle) of joint positions q [5]."""
    return q[2:5]


def pose_position(pose: jax.Array) -> jax.Array:
    """A pose [..., 3] as a point of the goal space [..., 4]: xy, ANGLE_RADIUS × (cos, sin)."""
    angle = pose[..., 2]
    return jnp.concatenate([pose[..., :2], ANGLE_RADIUS * jnp.stack(
        [jnp.cos(angle), jnp.sin(angle)], axis=-1)], axis=-1)


def pose_errors(position: jax.Array, goal: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(position error [...] in m, angle error [...] in rad, in [0, π]) between two points of
    the goal space [..., 4]."""
    xy = jnp.sqrt(jnp.sum((position[..., :2] - goal[..., :2]) ** 2, axis=-1) + 1e-12)
    u, v = position[..., 2:] / ANGLE_RADIUS, goal[..., 2:] / ANGLE_RADIUS
    cos = jnp.sum(u * v, axis=-1)
    sin = u[..., 0] * v[..., 1] - u[..., 1] * v[..., 0]
    return xy, jnp.abs(jnp.arctan2(sin, cos))


def pose_distance(position: jax.Array, goal: jax.Array) -> jax.Array:
    """The larger of the position and angle errors, each over its tolerance [...]:
    success is < 1."""
    xy, angle = pose_errors(position, goal)
    return jnp.maximum(xy / POSITION_TOLERANCE, angle / ANGLE_TOLERANCE)


def state_observation(q: jax.Array, qd: jax.Array) -> jax.Array:
    """Observation [11] of joint positions q [5] and velocities qd [5]."""
    angle = q[4]
    return jnp.concatenate([q[:4], jnp.stack([jnp.cos(angle), jnp.sin(angle)]),
                            VELOCITY_SCALE * qd])


@dataclasses.dataclass(frozen=True)
class PushTDynamics:
    """One control step (0.1 s) of Push-T: `(None, state, action [2]) -> state`."""

    def __call__(self, env_params, state, action):
        del env_params
        sys = load_system()
        action = jnp.clip(action, -1.0, 1.0)
        target = jnp.clip(state.q[:2] + ACTION_SCALE * action, -PUSHER_RANGE, PUSHER_RANGE)
        return step_substeps("generalized", sys, state, target, SUBSTEPS)


def push_t_cost(goal: jax.Array, q: jax.Array, pusher_weight: float) -> jax.Array:
    """The block's pose error (m: the goal-space distance, position and ANGLE_RADIUS × the
    angle's chord together) plus
    `pusher_weight` × the pusher's distance to the block's centre []; goal [4] in the goal
    space."""
    position = pose_position(block_pose(q))
    error = jnp.sqrt(jnp.sum((position - goal) ** 2) + 1e-12)
    reach = jnp.sqrt(jnp.sum((q[:2] - q[2:4]) ** 2) + 1e-12)
    return error + pusher_weight * reach


@dataclasses.dataclass(frozen=True)
class PushTOracleStep:
    """Oracle planning step on true physics; `params` is the goal [4] in the goal space."""

    pusher_weight: float = 0.2

    def __call__(self, goal, state, action):
        state = PushTDynamics()(None, state, action)
        return state, push_t_cost(goal, state.q, self.pusher_weight)


@dataclasses.dataclass(frozen=True)
class PushTOracleTerminal:
    """Terminal cost of the oracle problem: `weight` × the step cost."""

    weight: float = 4.0
    pusher_weight: float = 0.2

    def __call__(self, goal, state):
        return self.weight * push_t_cost(goal, state.q, self.pusher_weight)


def clear_of_block(xy: jax.Array, pose: jax.Array, margin: float = 0.02) -> jax.Array:
    """Whether a pusher at xy [2] is clear (by `margin`) of the T at `pose` [3] (bool [])."""
    angle = pose[2]
    c, s = jnp.cos(angle), jnp.sin(angle)
    relative = xy - pose[:2]
    local = jnp.stack([c * relative[0] + s * relative[1], -s * relative[0] + c * relative[1]])

    def outside(center, half):
        gap = jnp.abs(local - jnp.asarray(center)) - jnp.asarray(half)
        return jnp.sqrt(jnp.sum(jnp.maximum(gap, 0.0) ** 2)) > PUSHER_RADIUS + margin

    return outside(BAR_CENTER, BAR_HALF) & outside(STEM_CENTER, STEM_HALF)


class PushT(Task):
    """Push-T as a goal-reaching task (see the module docstring)."""

    def __init__(self, obs: str = "state", episode_length: int = 100,
                 image_size: int = DEFAULT_IMAGE_SIZE):
        from hjepa.tasks import render

        if obs not in ("state", "pixels"):
            raise ValueError(f"obs: expected 'state' or 'pixels', got {obs!r}")
        self.name = "push_t"
        self.obs_kind = obs
        self.system = load_system()
        self.camera = render.Camera(center=(0.0, 0.0), extent=HALF_SIDE,
                                    size=image_size)
        self.visible = render.visible_geoms(self.system)
        self.colors = render.rgba_colors(self.system)
        self.obs_shape = (11,) if obs == "state" else (image_size, image_size, 3)
        self.action_size = 2
        self.action_low = -np.ones(2, np.float32)
        self.action_high = np.ones(2, np.float32)
        self.episode_length = episode_length
        self.success_threshold = 1.0
        self.dynamics = PushTDynamics()

    def init_state(self, pusher_xy: jax.Array, pose: jax.Array):
        """The pipeline state at rest with the pusher at xy [2] and the block at `pose` [3]."""
        q = jnp.concatenate([jnp.asarray(pusher_xy, jnp.float32),
                             jnp.asarray(pose, jnp.float32)])
        return pipeline("generalized").init(self.system, q, jnp.zeros(self.system.qd_size()))

    def _draw_pose(self, key: jax.Array) -> jax.Array:
        xy_key, angle_key = jax.random.split(key)
        xy = jax.random.uniform(xy_key, (2,), minval=-START_HALF_SIDE, maxval=START_HALF_SIDE)
        angle = jax.random.uniform(angle_key, (), minval=-jnp.pi, maxval=jnp.pi)
        return jnp.concatenate([xy, angle[None]])

    def _draw_clear_pusher(self, key: jax.Array, pose: jax.Array, tries: int = 16) -> jax.Array:
        """A pusher xy [2] clear of the block at `pose`: the first clear one of `tries` draws,
        else `PARK` (always clear of a start pose: the T reaches 0.72 from the origin at most,
        the parked pusher's edge is 0.84 away)."""
        candidates = jax.random.uniform(key, (tries, 2), minval=-PUSHER_RANGE,
                                        maxval=PUSHER_RANGE)
        clear = jax.vmap(clear_of_block, (0, None))(candidates, pose)
        return jnp.where(clear.any(), candidates[jnp.argmax(clear)], jnp.asarray(PARK))

    def reset(self, key: jax.Array) -> Episode:
        start_key, goal_key, pusher_key = jax.random.split(key, 3)
        start = self._draw_pose(start_key)
        # the goal: the first of 8 draws at least 2 tolerances from the start, else the start
        # turned half round
        goals = jax.vmap(self._draw_pose)(jax.random.split(goal_key, 8))  # [8, 3]
        far = pose_distance(pose_position(goals), pose_position(start)) >= 2.0
        goal = jnp.where(far.any(), goals[jnp.argmax(far)], start.at[2].add(jnp.pi))
        pusher_xy = self._draw_clear_pusher(pusher_key, start)
        both = jax.vmap(self.init_state)(jnp.stack([pusher_xy, jnp.asarray(PARK)]),
                                         jnp.stack([start, goal]))
        state, goal_state = (jax.tree.map(lambda x, i=i: x[i], both) for i in (0, 1))
        return Episode(state=state, goal=Goal(obs=self.observe(goal_state),
                                              position=pose_position(goal), state=goal_state))

    def observe(self, state) -> jax.Array:
        if self.obs_kind == "pixels":
            from hjepa.tasks import render

            return render.render(self.system, state.x, self.camera, visible=self.visible,
                                 colors=self.colors)
        return state_observation(state.q, state.qd)

    def position(self, state) -> jax.Array:
        return pose_position(block_pose(state.q))

    def distance(self, state, goal: Goal) -> jax.Array:
        return pose_distance(self.position(state), goal.position)

    def position_distance(self, position: jax.Array, goal_position: jax.Array) -> jax.Array:
        return pose_distance(position, goal_position)

    def oracle_problem(self, state, goal: Goal) -> planners.Problem:
        return planners.Problem(
            step=PushTOracleStep(),
            terminal_cost=PushTOracleTerminal(),
            params=goal.position,
            init_state=state,
            action_low=jnp.asarray(self.action_low),
            action_high=jnp.asarray(self.action_high),
        )


@struct.dataclass
class PushBlockCarry:
    """What `PushBlockPolicy` carries from step to step."""

    target: jax.Array  # [2] world xy the block is pushed toward
    lateral: jax.Array  # [] m, where the push line passes the block's centre (sideways)
    steps_left: jax.Array  # [] int32, control steps until the next target
    noise: jax.Array  # [2] the AR(1) noise of the last step
    scale: jax.Array  # [] this episode's noise scale σ
    pushing: jax.Array  # [] bool: the episode pushes (else noise only)


@dataclasses.dataclass(frozen=True)
class PushBlockPolicy:
    """Reward-free Push-T data with contact: a noisy approach-and-push of the T toward random
    points.

    AR(1) pusher motion touches the T now and then; with probability `push_probability` an
    episode instead pushes it toward a random point of the workspace (`START_HALF_SIDE` +
    `margin` around the centre; a new one every `min_hold`..`max_hold` steps or once the
    block's centre is within `arrive` of it), along a line that passes the block's centre
    `lateral` metres to the side (drawn in ±`max_lateral` with each point, so that pushes
    turn the T as well as move it). Seen from the push direction d and its normal n, the
    pusher (i) pushes along the line once it is on it behind the block (within `on_line` of
    it, more than 0.1 m behind the centre); (ii) else, once it is at least `standoff` behind
    the centre (clear of the T, whose farthest point is 0.31 m from the centroid), goes to
    the line's start `standoff` behind; (iii) else, within `standoff` of the line, steps out
    sideways to `standoff` + 0.05 from it; (iv) else goes back to `standoff` behind: a
    rectilinear path round the block, not through it. Actions aim at those points (relative
    targets, clipped to [-1, 1]), plus AR(1) noise of correlation `correlation` and a
    per-episode scale in [`min_scale`, `max_scale`]; the other episodes are that noise alone,
    with scale in [`explore_min_scale`, 1]. Pure and jittable:

        carry = policy.bind(task).init(key, state)
        carry, action = policy.bind(task)(carry, key, state, step_index)  # action [2]
    """

    standoff: float = 0.4  # m
    on_line: float = 0.08  # m
    max_lateral: float = 0.1  # m
    arrive: float = 0.05  # m
    margin: float = 0.1  # m
    min_hold: int = 20
    max_hold: int = 50
    push_probability: float = 0.8
    correlation: float = 0.8
    min_scale: float = 0.0
    max_scale: float = 0.3
    explore_min_scale: float = 0.1

    def validate(self) -> None:
        """Raises ValueError for settings out of range."""
        check_noisy_tracking(self, numbers=("standoff", "on_line", "max_lateral", "arrive",
                                            "margin", "min_scale", "max_scale",
                                            "explore_min_scale"),
                             integers=("min_hold", "max_hold"), probability="push_probability")

    def bind(self, task: Task) -> _BoundPushBlockPolicy:
        """The policy acting in `task` (a `PushT`); for `hjepa.data.collect_episodes`."""
        if not isinstance(task, PushT):
            raise ValueError(f"task: PushBlockPolicy drives the pusher of push_t, got task "
                             f"{getattr(task, 'name', task)!r}")
        return _BoundPushBlockPolicy(self)


@dataclasses.dataclass(frozen=True)
class _BoundPushBlockPolicy:
    """`PushBlockPolicy` acting in push_t (the task holds nothing the policy reads)."""

    policy: PushBlockPolicy

    def _draw_target(self, key: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        """A random point [2] to push the block toward, the push line's lateral offset []
        and how many steps to keep them []."""
        point_key, lateral_key, hold_key = jax.random.split(key, 3)
        reach = START_HALF_SIDE + self.policy.margin
        point = jax.random.uniform(point_key, (2,), minval=-reach, maxval=reach)
        lateral = jax.random.uniform(lateral_key, (), minval=-self.policy.max_lateral,
                                     maxval=self.policy.max_lateral)
        hold = jax.random.randint(hold_key, (), self.policy.min_hold, self.policy.max_hold + 1)
        return point, lateral, hold

    def init(self, key: jax.Array, state) -> PushBlockCarry:
        """The carry at the start of an episode: its kind, noise scale and first point."""
        del state
        target_key, push_key, scale_key = jax.random.split(key, 3)
        pushing = jax.random.uniform(push_key) < self.policy.push_probability
        scale = episode_noise_scale(self.policy, jax.random.uniform(scale_key), pushing)
        target, lateral, hold = self._draw_target(target_key)
        return PushBlockCarry(target=target, lateral=lateral, steps_left=hold,
                              noise=jnp.zeros(2), scale=scale, pushing=pushing)

    def aim(self, pusher: jax.Array, block: jax.Array, target: jax.Array,
            lateral: jax.Array) -> jax.Array:
        """Where the pusher at xy [2] heads [2] to push the block centred at xy [2] toward
        `target` [2] along the line `lateral` [] to the side of its centre (rules (i)-(iv))."""
        policy = self.policy
        away = target - block
        d = away / jnp.sqrt(jnp.sum(away**2) + 1e-12)  # [2] push direction
        n = jnp.stack([-d[1], d[0]])  # [2] its normal
        along = jnp.dot(pusher - block, d)
        across = jnp.dot(pusher - block, n)
        off_line = across - lateral
        side = jnp.where(off_line >= 0.0, 1.0, -1.0)
        line = block + lateral * n
        push = line + (along + 0.3) * d
        start = line - policy.standoff * d
        step_out = block + along * d + (lateral + side * (policy.standoff + 0.05)) * n
        back = block - policy.standoff * d + across * n
        pushing = (jnp.abs(off_line) < policy.on_line) & (along < -0.1)
        behind = along <= -policy.standoff + 0.02
        near_line = jnp.abs(off_line) < policy.standoff
        return jnp.where(pushing, push, jnp.where(behind, start, jnp.where(near_line, step_out,
                                                                          back)))

    def __call__(self, carry: PushBlockCarry, key: jax.Array, state, step_index):
        """`(carry, key, pipeline state, step index []) -> (carry, action [2])`."""
        del step_index
        policy = self.policy
        target_key, noise_key = jax.random.split(key)
        new_target, new_lateral, new_hold = self._draw_target(target_key)
        block = state.q[2:4]
        arrived = jnp.sqrt(jnp.sum((block - carry.target) ** 2)) < policy.arrive
        expired = (carry.steps_left <= 0) | arrived
        target = jnp.where(expired, new_target, carry.target)
        lateral = jnp.where(expired, new_lateral, carry.lateral)
        steps_left = jnp.where(expired, new_hold, carry.steps_left) - 1
        heading = self.aim(state.q[:2], block, target, lateral)
        drive = jnp.clip((heading - state.q[:2]) / ACTION_SCALE, -1.0, 1.0)  # [2]
        noise = correlated_noise(carry.noise, noise_key, policy.correlation, carry.scale)
        action = jnp.clip(jnp.where(carry.pushing, drive, 0.0) + noise, -1.0, 1.0)
        return carry.replace(target=target, lateral=lateral, steps_left=steps_left,
                             noise=noise), action


register("push_t", lambda obs="state", image_size=DEFAULT_IMAGE_SIZE:
         PushT(obs=obs, image_size=image_size))
register_policy("push_block", PushBlockPolicy, tasks=("push_t",), default=True)
