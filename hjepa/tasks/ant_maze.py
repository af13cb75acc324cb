"""Brax's ant in a U-shaped maze (like D4RL's antmaze-umaze), and a gait controller to explore it.

Maze. 3 x 3 cells of `CELL` = 2.5 m (D4RL uses 4 m; the ant spans about 1.25 m across its
feet at rest, 1.8 m diagonally, so 2.5 m corridors leave it room and keep episodes short).
Cell (row, col) has its centre at x = (col − 1)·CELL, y = (1 − row)·CELL: row 0 is the top
(largest y). The free cells form a U

    row 0:  S . .        S: start cell (0, 0)
    row 1:  # # .        #: the inner wall, one box over cells (1, 0) and (1, 1)
    row 2:  G . .        G: goal cell (2, 0)

inside four outer walls (boxes 0.5 m thick). The walls are static boxes 1 m high; they collide
with the ant's torso and its four feet (the legs' capsules collide with nothing, as in brax's
ant, where only the feet touch the floor). The system is brax's `envs/assets/ant.xml` plus
the walls, loaded with `brax.io.mjcf.loads`; the torso gets its own collision bit so that it
hits the walls but, as in brax's ant, not the floor.

Backend: "positional" with brax's ant settings (10 substeps of 0.005 s = one 0.05 s control
step, motor gear 200), brax's fast differentiable pipeline for the ant. Wall contacts work: a
torso thrown at 5 m/s at a wall stops short of it and bounces back (tests). The 25 box-sphere
contact pairs cost about 15% of the step (2 cores, batch 128: 1.6k steps/s with walls, 1.9k
without, on a loaded machine).

Episodes: the ant starts standing near the start cell's centre (±0.5 m; rest pose ±0.1 rad per
joint; heading ±0.1 rad) and the goal is drawn near the goal cell's centre (±0.5 m). The way
round the wall between the cells' centres is 13.2 m (`maze_distance`). `episode_length` = 500
control steps (25 s), i.e. 0.53 m/s: the gait controller below, sent along the shortest
path to the goal, gets within 0.5 m of it by step 200 in 78% of 32 val episodes and by step
300 in all (median arrival step 177; the first, hand-set gait: 72% by step 500, median 433;
`benchmarks/results/gait_cpu.json`). Success: the torso's xy ends within 0.5 m of the goal.

Goal: the observation of the ant standing at the goal in its rest pose, heading +x, at rest.
`Goal.position` is the goal xy; `distance` is the torso's straight-line xy distance to it.

State observation [31]: torso x, y × `POSITION_SCALE` = 1 / (1.5·CELL) (the maze spans ±1),
torso z, orientation as the torso's x and z axes in the world frame (6 numbers; continuous and
unique, unlike a quaternion), the 8 joint angles, torso linear velocity × 0.5 (3), torso
angular velocity × 0.2 (3) and joint velocities × 0.1 (8). Pixel observation [S, S, 3]
(uint8): the whole maze from above (`render.render`), walls and ant.

Oracle problem: cost = geodesic distance of the torso to the goal through the maze (the
shortest path round the inner wall inflated by `WALL_MARGIN`, see `maze_path`; with the
straight-line distance a short-horizon planner walks the ant into the wall between start and
goal) + 0.5 × (1 − the torso's up-axis z) (stay upright); terminal cost 4 × that. MPPI on
it (32 samples, horizon 16, 1 iteration, noise 0.5) walks the ant round the wall at about
3 m/s: within 0.5 m of the goal after 69-81 steps in 4 of 4 episodes, staying within 0.15 m
of it afterwards, never through a wall (0.37 s per MPC step per episode on 2 CPU cores).

Exploration: random torques barely move an ant, so reward-free data come from
`WaypointPolicy`, a noisy trotting-gait controller that walks to random waypoints in the free
cells along the maze's shortest paths, resting now and then at a waypoint. Measured over 100
episodes of 500 steps from `reset` (`python -m benchmarks.gait`): it takes the torso 7.1 m
from its start at most (mean; net 5.0 m) through 6.3 of the 7 free cells, and 3% of the
ants tip over (up axis z < 0.3). With the first gait, an earlier script measured uniform
random torques at 2.7 m (net 2.1 m, 2.2 cells, 20% tip over) and the AR(1) torques of
`hjepa.data.ExplorationPolicy` at 1.9 m (1.7 cells, 40% tip over). 200 such episodes take
about 70 s on 2 CPU cores after a 50 s compile.
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
from hjepa.checks import is_int
from hjepa.tasks._brax import import_brax, pipeline, step_substeps
from hjepa.tasks.base import DEFAULT_IMAGE_SIZE, Episode, Goal, Task, register
from hjepa.tasks.policies import register_policy

CELL = 2.5  # m, side of a maze cell
MAZE = ("S..",
        "##.",
        "G..")
WALL_THICKNESS = 0.5  # m, outer walls
WALL_HEIGHT = 1.0  # m
WALL_MARGIN = 0.8  # m, how far the torso's path keeps from the inner wall (about a leg's reach)
START_CELL = (0, 0)
GOAL_CELL = (2, 0)
JITTER = 0.5  # m, start and goal positions around their cells' centres
START_NOISE = 0.1  # rad, joint angles and heading at reset
STAND_HEIGHT = 0.55  # m, torso height of brax's ant at reset
SUCCESS_RADIUS = 0.5  # m
NUM_JOINTS = 8
# Joint order in q[7:15] (and qd[6:14]): hip_1, ankle_1, hip_2, ankle_2, hip_3, ankle_3, hip_4,
# ankle_4 for the legs at 45°, 135°, 225° and 315° around the torso.
LEG_ANGLES = np.deg2rad([45.0, 135.0, 225.0, 315.0])
ANKLE_DOWN = np.array([1.0, -1.0, -1.0, 1.0])  # the sign of each ankle's angle that lowers it
REST_ANKLE = 1.0  # rad, |ankle angle| of the rest pose (brax's init_qpos)
POSITION_SCALE = 1.0 / (1.5 * CELL)
LINEAR_VELOCITY_SCALE = 0.5
ANGULAR_VELOCITY_SCALE = 0.2
JOINT_VELOCITY_SCALE = 0.1


# ----------------------------------------------------------------------------- the maze


def cell_center(row: int, col: int) -> tuple[float, float]:
    """World xy of the centre of maze cell (row, col)."""
    return ((col - 1) * CELL, (1 - row) * CELL)


def free_cells() -> np.ndarray:
    """Centres [7, 2] of the free cells, row by row."""
    return np.array([cell_center(r, c) for r, line in enumerate(MAZE)
                     for c, ch in enumerate(line) if ch != "#"], np.float32)


def inner_wall() -> tuple[np.ndarray, np.ndarray]:
    """(low [2], high [2]) corners of the inner wall box in xy."""
    cells = np.array([cell_center(r, c) for r, line in enumerate(MAZE)
                      for c, ch in enumerate(line) if ch == "#"])
    return cells.min(0) - CELL / 2, cells.max(0) + CELL / 2


def _wall_boxes() -> list[tuple[str, tuple[float, float], tuple[float, float]]]:
    """(name, centre xy, half sizes xy) of the wall boxes."""
    half = 1.5 * CELL
    t = WALL_THICKNESS / 2
    low, high = inner_wall()
    return [
        ("wall_top", (0.0, half + t), (half + 2 * t, t)),
        ("wall_bottom", (0.0, -half - t), (half + 2 * t, t)),
        ("wall_left", (-half - t, 0.0), (t, half)),
        ("wall_right", (half + t, 0.0), (t, half)),
        ("wall_inner", tuple((low + high) / 2), tuple((high - low) / 2)),
    ]


def maze_xml() -> str:
    """The MJCF of brax's ant plus the maze's walls.

    Collision bits: the floor has conaffinity 1 and the feet contype 1 (as in brax's ant);
    the torso gets contype 2 and the walls conaffinity 3, so torso and feet hit the walls and
    the torso still passes through the floor as in brax's ant.
    """
    brax = import_brax()
    path = os.path.join(os.path.dirname(brax.__file__), "envs", "assets", "ant.xml")
    with open(path) as f:
        xml = f.read()
    torso = '<geom name="torso_geom" pos="0 0 0" size="0.25" type="sphere"/>'
    floor_end = 'size="40 40 40" type="plane" rgba="0.5 0.5 0.5 1.0"/>'
    if xml.count(torso) != 1 or xml.count(floor_end) != 1:
        raise RuntimeError("brax's ant.xml changed: cannot find its torso or floor geom")
    xml = xml.replace(torso, torso.replace("/>", ' contype="2"/>'))
    h = WALL_HEIGHT / 2
    walls = "".join(
        f'\n    <geom name="{name}" type="box" pos="{x:.4f} {y:.4f} {h:.4f}" '
        f'size="{sx:.4f} {sy:.4f} {h:.4f}" contype="0" conaffinity="3" '
        f'rgba="0.7 0.7 0.7 1"/>'
        for name, (x, y), (sx, sy) in _wall_boxes()
    )
    return xml.replace(floor_end, floor_end + walls)


@functools.cache
def load_system(backend: str = "positional"):
    """The Brax system of the ant in the maze (cached), with brax's ant settings per backend."""
    import_brax()
    from brax.io import mjcf

    xml = maze_xml()
    # The cache outlives any trace: build concrete arrays even when first called under jit.
    with warnings.catch_warnings(), jax.ensure_compile_time_eval():
        warnings.simplefilter("ignore")
        sys = mjcf.loads(xml)
        if backend in ("spring", "positional"):
            sys = sys.tree_replace({"opt.timestep": 0.005})
        if backend == "positional":
            sys = sys.replace(actuator=sys.actuator.replace(
                gear=200.0 * jnp.ones_like(sys.actuator.gear)))
    return sys


def _segment_hits_box(a: jax.Array, b: jax.Array, low: jax.Array, high: jax.Array) -> jax.Array:
    """Whether the segment a→b [2] passes through the open box (low, high) [2] (bool [])."""
    d = b - a
    moving = jnp.abs(d) > 1e-9
    safe = jnp.where(moving, d, 1.0)
    t1, t2 = (low - a) / safe, (high - a) / safe
    inside = (a > low) & (a < high)
    t_in = jnp.where(moving, jnp.minimum(t1, t2), jnp.where(inside, -jnp.inf, jnp.inf))
    t_out = jnp.where(moving, jnp.maximum(t1, t2), jnp.where(inside, jnp.inf, -jnp.inf))
    return jnp.maximum(jnp.max(t_in), 0.0) < jnp.minimum(jnp.min(t_out), 1.0)


def _push_out(p: jax.Array, low: jax.Array, high: jax.Array) -> jax.Array:
    """p [2] if it is outside the box (low, high), else its nearest point on the box's edge."""
    inside = jnp.all((p > low) & (p < high))
    gaps = jnp.concatenate([p - low, high - p])  # distances to the 4 faces, [4]
    face = jnp.argmin(gaps)
    axis = face % 2
    target = jnp.where(face < 2, low[axis], high[axis])
    return jnp.where(inside, p.at[axis].set(target), p)


def maze_path(p: jax.Array, g: jax.Array, margin: float = WALL_MARGIN):
    """Shortest path from p to g [2] around the inner wall inflated by `margin`.

    The wall's open end has two corners (the inflated box's corners on the free side); the
    path is the shortest of p→g, p→c→g and p→c→c'→g whose legs clear the inflated box (the
    outer walls never bend a shortest path: the free space's hull is inside them). A point
    within `margin` of the wall is first moved straight out to the inflated box's edge (that
    leg counts in the length).

    Returns:
      (length [], next point [2]): the geodesic distance, and the first point to head for
      (g itself when it is in sight).
    """
    low, high = (jnp.asarray(v, jnp.float32) for v in inner_wall())
    low, high = low - margin, high + margin
    # the open end of the wall: its corners on the side away from the outer wall it touches
    c_top = jnp.stack([high[0], high[1]])
    c_bottom = jnp.stack([high[0], low[1]])
    p_out, g_out = _push_out(p, low, high), _push_out(g, low, high)
    shrink = 1e-4  # legs along the box's edges clear it
    lo, hi = low + shrink, high - shrink

    def clear(a, b):
        return ~_segment_hits_box(a, b, lo, hi)

    def dist(a, b):
        return jnp.sqrt(jnp.sum((a - b) ** 2) + 1e-12)

    candidates = [  # (valid, length, next point)
        (clear(p_out, g_out), dist(p_out, g_out), g_out),
        (clear(p_out, c_top) & clear(c_top, g_out),
         dist(p_out, c_top) + dist(c_top, g_out), c_top),
        (clear(p_out, c_bottom) & clear(c_bottom, g_out),
         dist(p_out, c_bottom) + dist(c_bottom, g_out), c_bottom),
        (clear(p_out, c_top) & clear(c_bottom, g_out),
         dist(p_out, c_top) + dist(c_top, c_bottom) + dist(c_bottom, g_out), c_top),
        (clear(p_out, c_bottom) & clear(c_top, g_out),
         dist(p_out, c_bottom) + dist(c_bottom, c_top) + dist(c_top, g_out), c_bottom),
    ]
    lengths = jnp.stack([jnp.where(ok, length, jnp.inf) for ok, length, _ in candidates])
    points = jnp.stack([point for _, _, point in candidates])
    best = jnp.argmin(lengths)
    extra = dist(p, p_out) * jnp.any(p != p_out) + dist(g, g_out) * jnp.any(g != g_out)
    length = jnp.where(jnp.isfinite(lengths[best]), lengths[best], dist(p, g))
    next_point = jnp.where(jnp.any(p != p_out), p_out, points[best])
    return length + extra, next_point


def maze_distance(p: jax.Array, g: jax.Array, margin: float = WALL_MARGIN) -> jax.Array:
    """Geodesic distance [] from p to g [2] through the maze (see `maze_path`)."""
    return maze_path(p, g, margin)[0]


# ----------------------------------------------------------------------------- the ant


def _rotate(v: jax.Array, quat: jax.Array) -> jax.Array:
    from brax import math

    return math.rotate(v, quat)


def _inv_rotate(v: jax.Array, quat: jax.Array) -> jax.Array:
    from brax import math

    return math.inv_rotate(v, quat)


def _unit(v: jax.Array) -> jax.Array:
    return v / jnp.maximum(jnp.sqrt(jnp.sum(v**2)), 1e-6)


def torso_xy(state) -> jax.Array:
    """The torso's world xy [2] of a pipeline state."""
    return state.x.pos[0, :2]


def heading(state) -> jax.Array:
    """The torso's yaw [] (the angle of its x axis in the xy plane)."""
    forward = _rotate(jnp.array([1.0, 0.0, 0.0]), state.x.rot[0])
    return jnp.arctan2(forward[1], forward[0])


def state_observation(state) -> jax.Array:
    """Observation [31] of a pipeline state (see the module docstring)."""
    rot = state.x.rot[0]
    x_axis = _rotate(jnp.array([1.0, 0.0, 0.0]), rot)
    z_axis = _rotate(jnp.array([0.0, 0.0, 1.0]), rot)
    return jnp.concatenate([
        POSITION_SCALE * state.x.pos[0, :2],
        state.x.pos[0, 2:3],
        x_axis,
        z_axis,
        state.q[7:7 + NUM_JOINTS],
        LINEAR_VELOCITY_SCALE * state.xd.vel[0],
        ANGULAR_VELOCITY_SCALE * state.xd.ang[0],
        JOINT_VELOCITY_SCALE * state.qd[6:6 + NUM_JOINTS],
    ])


def _actuator_joints(sys) -> np.ndarray:
    """For each actuator, the index of its joint in q[7:15] (brax's ant drives hip_4 first)."""
    return np.asarray(sys.actuator.qd_id) - 6


@dataclasses.dataclass(frozen=True)
class AntDynamics:
    """One control step (0.05 s) of the ant's physics: `(None, state, action [8]) -> state`."""

    backend: str = "positional"

    @property
    def substeps(self) -> int:
        return 10 if self.backend in ("spring", "positional") else 5

    def __call__(self, env_params, state, action):
        del env_params
        sys = load_system(self.backend)
        action = jnp.clip(action, -1.0, 1.0)
        return step_substeps(self.backend, sys, state, action, self.substeps)


def ant_cost(goal_xy: jax.Array, state, upright_weight: float) -> jax.Array:
    """Geodesic torso distance to `goal_xy` [2] plus `upright_weight` × (1 − up-axis z) []."""
    up = _rotate(jnp.array([0.0, 0.0, 1.0]), state.x.rot[0])
    return maze_distance(torso_xy(state), goal_xy) + upright_weight * (1.0 - up[2])


@dataclasses.dataclass(frozen=True)
class AntOracleStep:
    """Oracle planning step on true physics: geodesic distance + upright term (`ant_cost`).

    `params` is the goal xy [2].
    """

    backend: str = "positional"
    upright_weight: float = 0.5

    def __call__(self, goal_xy, state, action):
        state = AntDynamics(self.backend)(None, state, action)
        return state, ant_cost(goal_xy, state, self.upright_weight)


@dataclasses.dataclass(frozen=True)
class AntOracleTerminal:
    """Terminal cost of the oracle problem: `weight` × the step cost."""

    weight: float = 4.0
    upright_weight: float = 0.5

    def __call__(self, goal_xy, state):
        return self.weight * ant_cost(goal_xy, state, self.upright_weight)


class AntMaze(Task):
    """Brax's ant in the U maze as a goal-reaching task (see the module docstring)."""

    def __init__(self, obs: str = "state", backend: str = "positional",
                 episode_length: int = 500, image_size: int = DEFAULT_IMAGE_SIZE):
        from hjepa.tasks import render

        if obs not in ("state", "pixels"):
            raise ValueError(f"obs: expected 'state' or 'pixels', got {obs!r}")
        self.name = "ant_umaze"
        self.obs_kind = obs
        self.backend = backend
        self.system = load_system(backend)
        self.camera = render.Camera(center=(0.0, 0.0), extent=1.5 * CELL + WALL_THICKNESS,
                                    size=image_size)
        self.visible = render.visible_geoms(self.system)
        self.obs_shape = (31,) if obs == "state" else (image_size, image_size, 3)
        self.action_size = NUM_JOINTS
        self.action_low = -np.ones(NUM_JOINTS, np.float32)
        self.action_high = np.ones(NUM_JOINTS, np.float32)
        self.episode_length = episode_length
        self.success_threshold = SUCCESS_RADIUS
        self.dynamics = AntDynamics(backend)

    def init_state(self, xy: jax.Array, yaw: jax.Array, joints: jax.Array | None = None,
                   velocity: jax.Array | None = None):
        """The pipeline state of the ant standing at torso xy [2], heading `yaw` [], joint
        angles `joints` [8] (default: the rest pose), at rest or with the torso moving at
        `velocity` [3] (world frame, m/s)."""
        q = self.system.init_q
        if joints is not None:
            q = q.at[7:7 + NUM_JOINTS].set(joints)
        quat = jnp.stack([jnp.cos(yaw / 2), 0.0, 0.0, jnp.sin(yaw / 2)])
        q = q.at[:2].set(xy).at[2].set(STAND_HEIGHT).at[3:7].set(quat)
        qd = jnp.zeros(self.system.qd_size())
        if velocity is not None:
            qd = qd.at[:3].set(velocity)
        return pipeline(self.backend).init(self.system, q, qd)

    def reset(self, key: jax.Array) -> Episode:
        start_key, goal_key, joint_key, yaw_key = jax.random.split(key, 4)
        start = jnp.asarray(cell_center(*START_CELL)) + jax.random.uniform(
            start_key, (2,), minval=-JITTER, maxval=JITTER)
        goal = jnp.asarray(cell_center(*GOAL_CELL)) + jax.random.uniform(
            goal_key, (2,), minval=-JITTER, maxval=JITTER)
        joints = self.system.init_q[7:7 + NUM_JOINTS] + jax.random.uniform(
            joint_key, (NUM_JOINTS,), minval=-START_NOISE, maxval=START_NOISE)
        yaw = jax.random.uniform(yaw_key, (), minval=-START_NOISE, maxval=START_NOISE)
        # both states from one (vmapped) init: half the code to compile
        rest = self.system.init_q[7:7 + NUM_JOINTS]
        pair = jax.vmap(self.init_state)(jnp.stack([start, goal]), jnp.stack([yaw, 0.0 * yaw]),
                                         jnp.stack([joints, rest]))
        state, goal_state = (jax.tree.map(lambda x, i=i: x[i], pair) for i in (0, 1))
        return Episode(state=state,
                       goal=Goal(obs=self.observe(goal_state), position=goal, state=goal_state))

    def observe(self, state) -> jax.Array:
        if self.obs_kind == "pixels":
            from hjepa.tasks import render

            return render.render(self.system, state.x, self.camera, visible=self.visible)
        return state_observation(state)

    def position(self, state) -> jax.Array:
        return torso_xy(state)

    def distance(self, state, goal: Goal) -> jax.Array:
        return jnp.sqrt(jnp.sum((torso_xy(state) - goal.position) ** 2))

    def oracle_problem(self, state, goal: Goal) -> planners.Problem:
        return planners.Problem(
            step=AntOracleStep(self.backend),
            terminal_cost=AntOracleTerminal(),
            params=goal.position,
            init_state=state,
            action_low=jnp.asarray(self.action_low),
            action_high=jnp.asarray(self.action_high),
        )


# ----------------------------------------------------------------------------- exploration


@struct.dataclass
class WaypointCarry:
    """What `WaypointPolicy` carries from step to step."""

    waypoint: jax.Array  # [2] world xy the ant walks to
    direction: jax.Array  # [2] unit vector, world frame: the (smoothed) direction of travel
    phase: jax.Array  # [] gait phase offset of the episode (rad)
    rest_left: jax.Array  # [] int32, steps left standing still (0: walking)


@dataclasses.dataclass(frozen=True)
class WaypointPolicy:
    """A noisy trotting-gait controller that walks the ant to random waypoints in the maze.

    Pure, jittable and vmappable; a frozen dataclass (hashable). It carries a small state:

        carry = policy.init(key, state)                      # WaypointCarry
        for t in range(T):                                   # (a lax.scan in practice)
            carry, action = policy(carry, keys[t], state, t) # action [8] in [-1, 1]
            state = task.step(state, action)

    Gait: the diagonal leg pairs (1, 3) and (2, 4) swing in antiphase with a period of
    `period` control steps. Each hip swings its foot along the direction of travel (in the
    torso's frame, amplitude `stride`) while its ankle lifts the foot by `lift` (the lift
    leads the swing by `lift_lead` rad of phase), and back while the foot is down and pushes
    by `push`, so the body moves the other way: the ant walks in any direction without
    turning. The ankles bend `stance_bend` rad on average. A levelling reflex lifts the legs
    on the torso's low side and lowers those on its high side by `level` x the sine of the
    tilt (over 48-112 episodes of 500 steps, this cut tip-overs from about 16% to 5% for the
    first gait; pushing the low side up instead made them more frequent). A PD law (gains
    `kp`, `kd`, in action units per rad and rad/s) tracks the joint targets; Gaussian noise
    of std `action_noise` is added and the action clipped to [-1, 1].

    The gait's numbers (period, stride, lift, lift_lead, push, stance_bend, kp, kd and the
    heading's smoothing) were tuned offline on the true physics with the cross-entropy
    method (`python -m benchmarks.gait --tune`): 48 gaits x 4 start/goal pairs of the maze
    (drawn for the tuning only) x 200 steps per iteration, 16 iterations from the first
    hand-set gait (period 12, stride 0.5, lift 0.45, kp 5, kd 0.05, smoothing 0.8, no lead,
    push or bend offset), minimising the mean distance round the wall to the goal. The
    shipped numbers are the final elite mean, rounded. `benchmarks/results/gait_cpu.json`
    holds both gaits' speed, arrival and coverage.

    Waypoints: a free cell drawn uniformly, its centre jittered by up to +-`jitter` x CELL / 2
    on each axis; when the torso comes within `reach` of it a new one is drawn, and with
    probability `rest_probability` the ant first stands still in its rest pose (PD to the
    rest pose, with the same noise and levelling) for `rest_steps` steps, so the data hold
    an ant stopping and at rest, as the goals are. The ant heads for the first point of the
    maze's shortest path to the waypoint (`maze_path`), round the inner wall instead of into
    it; the heading is smoothed over a few steps (`smoothing`). To walk to a given point,
    set the carry's waypoint and `reach=0`.
    """

    period: float = 9.4  # control steps per gait cycle (0.47 s)
    stride: float = 0.66  # rad, hip swing amplitude (the hips' range is +-0.52)
    lift: float = 0.47  # rad, ankle lift in the swing phase
    lift_lead: float = -1.0  # rad of gait phase between the ankle's lift and the hip's swing
    push: float = 0.16  # rad, ankle extension in the stance phase
    stance_bend: float = 1.0  # rad, mean |ankle angle| while walking (REST_ANKLE at rest)
    kp: float = 1.8
    kd: float = 0.075
    level: float = 3.0  # rad of ankle lift per unit of torso tilt (sin of the tilt angle)
    smoothing: float = 0.6  # of the direction of travel from one step to the next
    action_noise: float = 0.2
    jitter: float = 0.4
    reach: float = 0.6  # m
    rest_probability: float = 0.25  # of standing still on reaching a waypoint
    rest_steps: int = 30  # control steps (1.5 s)

    def validate(self) -> None:
        """Raises ValueError for settings out of range."""
        if not isinstance(self.period, (int, float)) or not np.isfinite(self.period) \
                or self.period < 2:
            raise ValueError(f"period: expected a number of steps >= 2, got {self.period!r}")
        if not is_int(self.rest_steps) or self.rest_steps < 0:
            raise ValueError(f"rest_steps: expected an integer >= 0, got {self.rest_steps!r}")
        for name in ("stride", "lift", "push", "stance_bend", "kp", "kd", "level",
                     "action_noise", "reach"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not np.isfinite(value) or value < 0:
                raise ValueError(f"{name}: expected a finite number >= 0, got {value!r}")
        if not isinstance(self.smoothing, (int, float)) or not 0.0 <= self.smoothing < 1.0:
            raise ValueError(f"smoothing: expected a number in [0, 1), got {self.smoothing!r}")
        if not isinstance(self.lift_lead, (int, float)) or not np.isfinite(self.lift_lead):
            raise ValueError(f"lift_lead: expected a finite number, got {self.lift_lead!r}")
        if not isinstance(self.rest_probability, (int, float)) \
                or not 0.0 <= self.rest_probability <= 1.0:
            raise ValueError(f"rest_probability: expected a number in [0, 1], got "
                             f"{self.rest_probability!r}")
        if not isinstance(self.jitter, (int, float)) or not 0.0 <= self.jitter <= 1.0:
            raise ValueError(f"jitter: expected a number in [0, 1], got {self.jitter!r}")

    def bind(self, task: Task) -> WaypointPolicy:
        """The policy itself (it acts in any `AntMaze`); for `hjepa.data.collect_episodes`."""
        if not isinstance(task, AntMaze):
            raise ValueError(f"task: WaypointPolicy walks the ant of ant_umaze, got task "
                             f"{getattr(task, 'name', task)!r}")
        return self

    def _draw_waypoint(self, key: jax.Array) -> jax.Array:
        cell_key, jitter_key = jax.random.split(key)
        cells = jnp.asarray(free_cells())
        center = cells[jax.random.randint(cell_key, (), 0, cells.shape[0])]
        half = self.jitter * CELL / 2
        return center + jax.random.uniform(jitter_key, (2,), minval=-half, maxval=half)

    def init(self, key: jax.Array, state) -> WaypointCarry:
        """The carry at the start of an episode: a random waypoint and gait phase."""
        del state
        waypoint_key, phase_key = jax.random.split(key)
        return WaypointCarry(
            waypoint=self._draw_waypoint(waypoint_key),
            direction=jnp.zeros(2),
            phase=jax.random.uniform(phase_key, (), minval=0.0, maxval=2 * jnp.pi),
            rest_left=jnp.zeros((), jnp.int32),
        )

    def targets(self, direction_body: jax.Array, phase: jax.Array,
                low_side: jax.Array) -> jax.Array:
        """Joint targets [8] (q order) to walk along `direction_body` [2] (torso frame, unit
        length) at gait phase `phase` [], lifting the legs on the torso's `low_side` [2]
        (torso frame; its length is the sine of the tilt) and lowering the others."""
        angles = jnp.asarray(LEG_ANGLES)
        tangent = jnp.stack([-jnp.sin(angles), jnp.cos(angles)], axis=-1)  # [4, 2]
        leg_phase = phase + jnp.array([0.0, jnp.pi, 0.0, jnp.pi])
        hip = -(tangent @ direction_body) * self.stride * jnp.cos(leg_phase)
        swing = jnp.sin(leg_phase + self.lift_lead)
        bend = (self.stance_bend - self.lift * jnp.maximum(swing, 0.0)
                + self.push * jnp.maximum(-swing, 0.0))
        return self._joint_targets(hip, bend, low_side)

    def rest_targets(self, low_side: jax.Array) -> jax.Array:
        """Joint targets [8] of the rest pose, levelled as in `targets`."""
        return self._joint_targets(jnp.zeros(4), jnp.full((4,), REST_ANKLE), low_side)

    def _joint_targets(self, hip: jax.Array, bend: jax.Array, low_side: jax.Array) -> jax.Array:
        """Targets [8] (q order) from hip angles [4] and ankle bends [4] (|angle|, rad), with
        the levelling reflex for the torso's `low_side` [2]."""
        angles = jnp.asarray(LEG_ANGLES)
        outward = jnp.stack([jnp.cos(angles), jnp.sin(angles)], axis=-1)  # [4, 2]
        ankle = jnp.asarray(ANKLE_DOWN) * (bend - self.level * (outward @ low_side))
        return jnp.stack([hip, ankle], axis=-1).reshape(-1)

    def __call__(self, carry: WaypointCarry, key: jax.Array, state, step_index):
        """`(carry, key, pipeline state, step index []) -> (carry, action [8])`."""
        waypoint_key, noise_key, rest_key = jax.random.split(key, 3)
        p = torso_xy(state)
        reached = jnp.sum((p - carry.waypoint) ** 2) < self.reach**2
        waypoint = jnp.where(reached, self._draw_waypoint(waypoint_key), carry.waypoint)
        rests = reached & (jax.random.uniform(rest_key) < self.rest_probability)
        rest_left = jnp.where(rests, self.rest_steps, jnp.maximum(carry.rest_left - 1, 0))
        _, toward = maze_path(p, waypoint)
        direction = _unit(toward - p)
        direction = _unit(self.smoothing * carry.direction + (1 - self.smoothing) * direction)
        rot = state.x.rot[0]
        direction_body = _inv_rotate(jnp.concatenate([direction, jnp.zeros(1)]), rot)[:2]
        direction_body = _unit(direction_body)
        low_side = -_inv_rotate(jnp.array([0.0, 0.0, 1.0]), rot)[:2]
        phase = carry.phase + 2 * jnp.pi * step_index / self.period
        target = jnp.where(rest_left > 0, self.rest_targets(low_side),
                           self.targets(direction_body, phase, low_side))
        joints = _actuator_joints(load_system())
        q = state.q[7:7 + NUM_JOINTS]
        qd = state.qd[6:6 + NUM_JOINTS]
        action = self.kp * (target - q)[joints] - self.kd * qd[joints]
        action = action + self.action_noise * jax.random.normal(noise_key, (NUM_JOINTS,))
        carry = carry.replace(waypoint=waypoint, direction=direction,
                              rest_left=rest_left.astype(jnp.int32))
        return carry, jnp.clip(action, -1.0, 1.0)


register("ant_umaze", lambda obs="state", image_size=DEFAULT_IMAGE_SIZE:
         AntMaze(obs=obs, image_size=image_size))


register_policy("waypoint", WaypointPolicy, tasks=("ant_umaze",), default=True)
