"""Object pushing with Brax's pusher: a 7-joint arm pushes a cylinder to a goal on a table.

The system is brax's `envs/assets/pusher.xml` (zero gravity; the object slides on two slide
joints with damping; only the wrist's U-shaped hand touches the object and the table). Its
goal marker geom, unnamed in the asset, is named `goal_marker` here so that it can be hidden
from pixels.

Episodes (`episode_length` = 100 control steps of 0.05 s, 5 s: enough for the arm to reach the
object from rest and push it up to ~0.4 m). Brax's env fixes the goal at the object body's
home (0.45, -0.05) and draws the object's offset from it in x ∈ [-0.2, 0.2], y ∈ [-0.3, 0]
(between the arm's base at y = -0.6 and the goal), pushed out to at least 0.17 from the goal.
Here the goal is drawn around that home, x ∈ 0.45 ± 0.1, y ∈ -0.05 + [-0.1, 0.05], and the
object's offset from the goal exactly as brax does (its x/y labels put right: brax writes its
first draw into the y slide). The arm starts at rest near its rest pose (every joint angle
uniform in ±0.1 rad, within the joint's range; brax starts it at zero angles with ±0.005 rad/s
of velocity noise).

Goal: the observation of the goal configuration, the object at the goal and the arm at its
rest pose (all joint angles zero, at rest): a configuration that exists whatever the goal, and
one that does not hint at how to push. `Goal.position` is the goal's xy; `distance` is the
object's xy distance to it; success: the object ends within 0.05 of the goal (its radius: the
object then still covers the goal point, and it overlaps the 0.08-radius goal marker).

State observation [18]: the arm's 7 joint angles (all limited joints, so as they are), its 7
joint velocities / 10, the object's xy and the object's xy velocity. Never the goal: the goal
marker body sits at the goal in the physics state (for brax's viewers), but no observation
sees it. Pixel observation [S, S, 3] (uint8): a top-down image of the arm and the object over
the table (`render.render`), the goal marker hidden.

Actions [7] in [-1, 1] are scaled to the motors' control range ±2 (as brax's env does).

Backend: "generalized" (brax's default for this env, 5 substeps of 0.01 s per 0.05 s control
step). Measured on 2 shared CPU cores at batch 128 (random torques): generalized 5×0.01 ≈ 1.2k
steps/s; spring and positional with brax's settings for this env (50 substeps of 0.001 s,
gear 20) ≈ 1.1k and 0.5k; with 10 substeps of 0.005 s they would be faster (spring ≈ 6k,
positional ≈ 3.6k), but their contacts with the very light object (density 1) are wrong
at any of these settings: with the hand swept into the object, spring kicks it away faster
than the hand moves (0.75 m for 0.5 m of hand travel, and it also flies off when the hand
moves away from it), positional lets the hand pass through it (0.02-0.03 m moved for 0.46 m
of hand travel). The generalized pipeline pushes it along with the hand (0.10 m) and then
holds it against the hand, so it is the fastest backend whose contacts work.

Oracle (true physics, `oracle_problem`): cost = |object − goal| + 0.5 |hand − object| +
0.01 |a|², terminal 4 × the distances (brax's reward shaping). MPPI with 32 samples, horizon
12, 2 iterations, noise 0.5, temperature 0.1 (`hjepa.evaluate`) succeeds in 8 of 8 episodes
(mean final distance 0.006; 0.55 s per MPC step per episode on 2 loaded CPU cores).
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
from hjepa.tasks.base import DEFAULT_IMAGE_SIZE, Episode, Goal, Task, register
from hjepa.tasks.policies import (
    check_noisy_tracking,
    correlated_noise,
    episode_noise_scale,
    register_policy,
)

NUM_ARM_JOINTS = 7
WRIST_LINK = 6  # r_wrist_roll_link (the hand; brax fuses tips_arm into it)
OBJECT_LINK = 7
GOAL_LINK = 8
# q layout [11]: the 7 arm joints, then obj_slidey, obj_slidex, goal_slidey, goal_slidex.
OBJECT_Q = (8, 7)  # indices of the object's (x, y) slides
GOAL_Q = (10, 9)  # indices of the goal marker's (x, y) slides
HOME = (0.45, -0.05)  # world xy of the object and goal bodies at zero slide
GOAL_LOW = (-0.1, -0.1)  # goal offset from HOME
GOAL_HIGH = (0.1, 0.05)
OBJECT_OFFSET_LOW = (-0.2, -0.3)  # object offset from the goal (brax's draw)
OBJECT_OFFSET_HIGH = (0.2, 0.0)
MIN_GOAL_DISTANCE = 0.17  # brax's minimum object-goal distance at reset
START_NOISE = 0.1  # rad, arm joint angles at reset
HAND_POINT = (0.07, 0.0, 0.0)  # in the hand's frame: an object here touches the U's bar
VELOCITY_SCALE = 0.1  # observation scale of joint velocities
OBJECT_VELOCITY_SCALE = 1.0  # observation scale of the object's velocity (m/s)
CAMERA_CENTER = (0.375, -0.225)  # the view spans x ∈ [-0.25, 1.0], y ∈ [-0.85, 0.4]
CAMERA_EXTENT = 0.625
HIDDEN_GEOMS = ("goal_marker",)


@functools.cache
def load_system(backend: str = "generalized"):
    """The Brax system of the pusher (cached), with the goal marker geom named `goal_marker`."""
    brax = import_brax()
    from brax.io import mjcf

    path = os.path.join(os.path.dirname(brax.__file__), "envs", "assets", "pusher.xml")
    with open(path) as f:
        xml = f.read()
    marker = '<geom rgba="1 0 0 1" type="capsule" size="0.08 0.001 0.1"'
    if xml.count(marker) != 1:
        raise RuntimeError(f"brax's pusher.xml changed: its goal marker geom is not {marker!r}")
    xml = xml.replace(marker, marker.replace("<geom ", '<geom name="goal_marker" '))
    # The cache outlives any trace: build concrete arrays even when first called under jit.
    with warnings.catch_warnings(), jax.ensure_compile_time_eval():
        warnings.simplefilter("ignore")
        sys = mjcf.loads(xml)
        if backend in ("spring", "positional"):  # brax's settings for these backends
            sys = sys.tree_replace({"opt.timestep": 0.001})
            sys = sys.replace(actuator=sys.actuator.replace(gear=jnp.full((7,), 20.0)))
    return sys


def hand_point(x) -> jax.Array:
    """World xyz [3] of the hand's pushing point (the middle of its U) of link transforms x."""
    from brax import math

    return x.pos[WRIST_LINK] + math.rotate(jnp.asarray(HAND_POINT), x.rot[WRIST_LINK])


def object_xy(x) -> jax.Array:
    """The object's world xy [2] of link transforms x."""
    return x.pos[OBJECT_LINK, :2]


def state_observation(state) -> jax.Array:
    """Observation [18] of a pipeline state: arm q [7], arm q̇ / 10 [7], object xy, object v."""
    return jnp.concatenate([
        state.q[:NUM_ARM_JOINTS],
        VELOCITY_SCALE * state.qd[:NUM_ARM_JOINTS],
        object_xy(state.x),
        OBJECT_VELOCITY_SCALE * state.xd.vel[OBJECT_LINK, :2],
    ])


@dataclasses.dataclass(frozen=True)
class PusherDynamics:
    """One control step (0.05 s) of the pusher's physics: `(None, state, action [7]) -> state`."""

    backend: str = "generalized"

    @property
    def substeps(self) -> int:
        return 50 if self.backend in ("spring", "positional") else 5

    def __call__(self, env_params, state, action):
        del env_params
        sys = load_system(self.backend)
        low, high = sys.actuator.ctrl_range[:, 0], sys.actuator.ctrl_range[:, 1]
        action = jnp.clip(action, -1.0, 1.0)
        ctrl = low + 0.5 * (action + 1.0) * (high - low)
        return step_substeps(self.backend, sys, state, ctrl, self.substeps)


def pusher_cost(goal_xy: jax.Array, x, hand_weight: float) -> jax.Array:
    """Object-to-goal distance plus `hand_weight` × the hand-to-object distance (3-D) []."""
    obj = x.pos[OBJECT_LINK]
    to_goal = jnp.sqrt(jnp.sum((obj[:2] - goal_xy) ** 2) + 1e-12)
    to_object = jnp.sqrt(jnp.sum((hand_point(x) - obj) ** 2) + 1e-12)
    return to_goal + hand_weight * to_object


@dataclasses.dataclass(frozen=True)
class PusherOracleStep:
    """Oracle planning step on true physics.

    cost = |object − goal| + hand_weight · |hand − object| + control_weight · |a|², the
    shaping of brax's reward (reward_dist + 0.5 reward_near + 0.1 reward_ctrl): the hand
    term draws the hand to the object before any push moves it. `params` is the goal xy [2].
    """

    backend: str = "generalized"
    hand_weight: float = 0.5
    control_weight: float = 0.01

    def __call__(self, goal_xy, state, action):
        state = PusherDynamics(self.backend)(None, state, action)
        action = jnp.clip(action, -1.0, 1.0)
        cost = pusher_cost(goal_xy, state.x, self.hand_weight)
        return state, cost + self.control_weight * jnp.sum(action**2)


@dataclasses.dataclass(frozen=True)
class PusherOracleTerminal:
    """Terminal cost of the oracle problem: `weight` × the step cost's distances."""

    weight: float = 4.0
    hand_weight: float = 0.5

    def __call__(self, goal_xy, state):
        return self.weight * pusher_cost(goal_xy, state.x, self.hand_weight)


def _unstack(pair):
    """The two members of a pytree with a leading axis of 2."""
    return jax.tree.map(lambda x: x[0], pair), jax.tree.map(lambda x: x[1], pair)


class Pusher(Task):
    """Brax's pusher as a goal-reaching task (see the module docstring)."""

    def __init__(self, obs: str = "state", backend: str = "generalized",
                 episode_length: int = 100, image_size: int = DEFAULT_IMAGE_SIZE):
        from hjepa.tasks import render

        if obs not in ("state", "pixels"):
            raise ValueError(f"obs: expected 'state' or 'pixels', got {obs!r}")
        self.name = "pusher"
        self.obs_kind = obs
        self.backend = backend
        self.system = load_system(backend)
        self.camera = render.Camera(center=CAMERA_CENTER, extent=CAMERA_EXTENT, size=image_size)
        self.visible = render.visible_geoms(self.system, hidden=HIDDEN_GEOMS)
        self.obs_shape = (18,) if obs == "state" else (image_size, image_size, 3)
        self.action_size = NUM_ARM_JOINTS
        self.action_low = -np.ones(NUM_ARM_JOINTS, np.float32)
        self.action_high = np.ones(NUM_ARM_JOINTS, np.float32)
        self.episode_length = episode_length
        self.success_threshold = 0.05
        self.dynamics = PusherDynamics(backend)

    def init_state(self, arm: jax.Array, object_xy: jax.Array, goal_xy: jax.Array):
        """The pipeline state at rest with the arm at angles `arm` [7] and the object and the
        goal marker at world xy `object_xy`, `goal_xy` [2]."""
        home = jnp.asarray(HOME)
        q = jnp.zeros(self.system.q_size())
        q = q.at[:NUM_ARM_JOINTS].set(arm)
        q = q.at[jnp.array(OBJECT_Q)].set(object_xy - home)
        q = q.at[jnp.array(GOAL_Q)].set(goal_xy - home)
        return pipeline(self.backend).init(self.system, q, jnp.zeros(self.system.qd_size()))

    def reset(self, key: jax.Array) -> Episode:
        arm_key, goal_key, object_key = jax.random.split(key, 3)
        low, high = self.system.dof.limit
        arm = jax.random.uniform(
            arm_key, (NUM_ARM_JOINTS,),
            minval=jnp.maximum(low[:NUM_ARM_JOINTS], -START_NOISE),
            maxval=jnp.minimum(high[:NUM_ARM_JOINTS], START_NOISE),
        )
        goal = jnp.asarray(HOME) + jax.random.uniform(
            goal_key, (2,), minval=jnp.asarray(GOAL_LOW), maxval=jnp.asarray(GOAL_HIGH))
        offset = jax.random.uniform(object_key, (2,), minval=jnp.asarray(OBJECT_OFFSET_LOW),
                                    maxval=jnp.asarray(OBJECT_OFFSET_HIGH))
        norm = jnp.sqrt(jnp.sum(offset**2) + 1e-12)
        offset = offset * jnp.maximum(1.0, MIN_GOAL_DISTANCE / norm)
        # both states from one (vmapped) init: half the code to compile
        state, goal_state = _unstack(jax.vmap(self.init_state)(
            jnp.stack([arm, jnp.zeros(NUM_ARM_JOINTS)]), jnp.stack([goal + offset, goal]),
            jnp.stack([goal, goal])))
        return Episode(state=state,
                       goal=Goal(obs=self.observe(goal_state), position=goal, state=goal_state))

    def observe(self, state) -> jax.Array:
        if self.obs_kind == "pixels":
            from hjepa.tasks import render

            return render.render(self.system, state.x, self.camera, visible=self.visible)
        return state_observation(state)

    def position(self, state) -> jax.Array:
        return object_xy(state.x)

    def distance(self, state, goal: Goal) -> jax.Array:
        return jnp.sqrt(jnp.sum((object_xy(state.x) - goal.position) ** 2))

    def oracle_problem(self, state, goal: Goal) -> planners.Problem:
        return planners.Problem(
            step=PusherOracleStep(self.backend),
            terminal_cost=PusherOracleTerminal(),
            params=goal.position,
            init_state=state,
            action_low=jnp.asarray(self.action_low),
            action_high=jnp.asarray(self.action_high),
        )


def hand_point_of_angles(system, q: jax.Array) -> jax.Array:
    """World xyz [3] of the hand's pushing point with the joints at angles q [q_size], at rest."""
    from brax import kinematics

    x, _ = kinematics.forward(system, q, jnp.zeros(system.qd_size()))
    return hand_point(x)


def reach_angles(system, q: jax.Array, target: jax.Array, iterations: int,
                 damping: float = 0.01, max_change: float = 0.3) -> jax.Array:
    """Arm angles [7] that bring the hand's pushing point toward `target` [3], from q [q_size].

    `iterations` damped least-squares steps of inverse kinematics (each joint change at most
    `max_change` rad per step), kept inside the joints' ranges.
    """
    low, high = system.dof.limit
    low, high = low[:NUM_ARM_JOINTS] + 0.01, high[:NUM_ARM_JOINTS] - 0.01

    def hand_of_arm(arm):
        return hand_point_of_angles(system, q.at[:NUM_ARM_JOINTS].set(arm))

    def step(arm, _):
        jacobian = jax.jacfwd(hand_of_arm)(arm)  # [3, 7]
        error = target - hand_of_arm(arm)  # [3]
        change = jacobian.T @ jnp.linalg.solve(
            jacobian @ jacobian.T + damping * jnp.eye(3), error)
        return jnp.clip(arm + jnp.clip(change, -max_change, max_change), low, high), None

    arm, _ = jax.lax.scan(step, q[:NUM_ARM_JOINTS], None, length=iterations)
    return arm


@struct.dataclass
class PushCarry:
    """What `PushPolicy` carries from step to step."""

    target: jax.Array  # [2] world xy the object is pushed toward
    steps_left: jax.Array  # [] int32, control steps until the next target
    noise: jax.Array  # [7] the AR(1) noise of the last step
    scale: jax.Array  # [] this episode's noise scale σ
    pushing: jax.Array  # [] bool: the episode pushes (else noise only)


@dataclasses.dataclass(frozen=True)
class PushPolicy:
    """Reward-free pusher data with contact: a noisy approach-and-push toward random points.

    Random torques seldom bring the hand down to the object, so AR(1) data hold almost no
    contact. With probability `push_probability` an episode instead pushes the object toward
    a random point of the table around the goal region (a new one every `min_hold`..`max_hold`
    steps, or once the object is within `arrive` of it): the hand's pushing point is driven to
    `behind` metres behind the object on the line from the point to the object (raised by
    `hover` while it is more than 0.05 away in xy, lowered between 0.05 and 0.02, so that it
    comes down behind the object rather than sweeping through it), by inverse kinematics
    (`reach_angles`) and a PD law in joint space (gains `kp`, `kd`, in action units per rad
    and rad/s), plus AR(1) noise of correlation `correlation` and a per-episode scale in
    [`min_scale`, `max_scale`]. The other episodes are that noise alone, with scale in
    [`explore_min_scale`, 1]. The points are drawn in a box larger than the goals' (by
    `margin`), so they are never the evaluation's goals but cover them.

    Measured on 2 CPU cores: with the defaults, 25% of the transitions of the first 64 of 2000
    episodes move the object by more than 1 mm (`hjepa inspect`), 1.8k steps/s collected. It
    is a data source, not a solver: driven toward an episode's own goal (no noise) it leaves
    the object within 0.05 of it in 4 of 16 `val` pairs, because the hand often nudges the
    object while coming down behind it. Pure and jittable:

        carry = policy.init(key, state)
        carry, action = policy(carry, key, state, step_index)  # action [7] in [-1, 1]
    """

    kp: float = 10.0
    kd: float = 1.0
    behind: float = 0.1  # m
    hover: float = 0.25  # m
    arrive: float = 0.03  # m
    margin: float = 0.05  # m
    min_hold: int = 30
    max_hold: int = 60
    ik_iterations: int = 8
    push_probability: float = 0.8
    correlation: float = 0.8
    min_scale: float = 0.0
    max_scale: float = 0.3
    explore_min_scale: float = 0.1

    def validate(self) -> None:
        """Raises ValueError for settings out of range."""
        check_noisy_tracking(self, numbers=("kp", "kd", "behind", "hover", "arrive", "margin",
                                            "min_scale", "max_scale", "explore_min_scale"),
                             integers=("min_hold", "max_hold", "ik_iterations"),
                             probability="push_probability")

    def bind(self, task: Task) -> _BoundPushPolicy:
        """The policy acting in `task` (a `Pusher`); for `hjepa.data.collect_episodes`."""
        if not isinstance(task, Pusher):
            raise ValueError(f"task: PushPolicy drives the arm of pusher, got task "
                             f"{getattr(task, 'name', task)!r}")
        return _BoundPushPolicy(self, task)


@dataclasses.dataclass(frozen=True)
class _BoundPushPolicy:
    """`PushPolicy` acting in one `Pusher` task (tasks hash by identity)."""

    policy: PushPolicy
    task: Pusher

    def _draw_target(self, key: jax.Array) -> tuple[jax.Array, jax.Array]:
        """A random point [2] to push the object toward and how many steps to keep it []."""
        point_key, hold_key = jax.random.split(key)
        margin = self.policy.margin
        low = jnp.asarray(HOME) + jnp.asarray(GOAL_LOW) - margin
        high = jnp.asarray(HOME) + jnp.asarray(GOAL_HIGH) + margin
        point = jax.random.uniform(point_key, (2,), minval=low, maxval=high)
        hold = jax.random.randint(hold_key, (), self.policy.min_hold, self.policy.max_hold + 1)
        return point, hold

    def init(self, key: jax.Array, state) -> PushCarry:
        """The carry at the start of an episode: its kind, noise scale and first point."""
        del state
        target_key, push_key, scale_key = jax.random.split(key, 3)
        policy = self.policy
        pushing = jax.random.uniform(push_key) < policy.push_probability
        scale = episode_noise_scale(policy, jax.random.uniform(scale_key), pushing)
        target, hold = self._draw_target(target_key)
        return PushCarry(target=target, steps_left=hold, noise=jnp.zeros(NUM_ARM_JOINTS),
                         scale=scale, pushing=pushing)

    def hand_target(self, state, point: jax.Array) -> jax.Array:
        """Where the hand's pushing point goes [3] to push the object toward `point` [2]."""
        obj = state.x.pos[OBJECT_LINK]  # [3]
        away = point - obj[:2]
        direction = away / jnp.sqrt(jnp.sum(away**2) + 1e-12)
        behind = obj.at[:2].add(-self.policy.behind * direction)
        hand = hand_point(state.x)
        far = jnp.sqrt(jnp.sum((hand[:2] - behind[:2]) ** 2))
        return behind.at[2].add(self.policy.hover * jnp.clip((far - 0.02) / 0.03, 0.0, 1.0))

    def __call__(self, carry: PushCarry, key: jax.Array, state, step_index):
        """`(carry, key, pipeline state, step index []) -> (carry, action [7])`."""
        del step_index
        policy = self.policy
        target_key, noise_key = jax.random.split(key)
        new_target, new_hold = self._draw_target(target_key)
        arrived = jnp.sqrt(jnp.sum((object_xy(state.x) - carry.target) ** 2)) < policy.arrive
        expired = (carry.steps_left <= 0) | arrived
        target = jnp.where(expired, new_target, carry.target)
        steps_left = jnp.where(expired, new_hold, carry.steps_left) - 1
        arm = reach_angles(self.task.system, state.q, self.hand_target(state, target),
                           policy.ik_iterations)
        drive = policy.kp * (arm - state.q[:NUM_ARM_JOINTS]) - policy.kd * state.qd[
            :NUM_ARM_JOINTS]  # [7]
        noise = correlated_noise(carry.noise, noise_key, policy.correlation, carry.scale)  # [7]
        action = jnp.clip(jnp.where(carry.pushing, drive, 0.0) + noise, -1.0, 1.0)
        return carry.replace(target=target, steps_left=steps_left, noise=noise), action


register("pusher", lambda obs="state", image_size=DEFAULT_IMAGE_SIZE:
         Pusher(obs=obs, image_size=image_size))
register_policy("push", PushPolicy, tasks=("pusher",), default=True)
