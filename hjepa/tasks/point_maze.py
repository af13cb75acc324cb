"""A point mass navigating walled arenas: two rooms, a U-maze and a medium maze.

Coordinates. Every arena's free interior is the square [-0.5, 0.5]² (side `ARENA_SIDE` = 1,
centred on the origin, +y up). Its border is enforced by the joint limits of the agent's two
slide joints (the centre stays within `AGENT_RADIUS` of the border); the border is also drawn,
as four boxes that do not collide, `BORDER` thick outside the square. Walls inside the square
are static boxes in the worldbody that collide with the agent (`wall_0`, `wall_1`, ...).

- two_rooms: a wall `WALL_THICKNESS` = 0.05 thick along x = 0 splits the square into two rooms
  of 0.475 × 1; one door of width `DOOR_WIDTH` centred at y = 0. Each episode draws a fair
  coin: heads, start and goal lie in different rooms; tails, in the same room (each uniform
  over the room, at least `CLEARANCE` from its walls; never in the door).
- umaze: D4RL's U-maze, 3 × 3 cells of side 1/3 with the inner wall over the two left cells of
  the middle row. Start and goal are the two ends of the U (which is which: a fair coin), each
  uniform within its cell (keeping `CLEARANCE` from the cell's sides): the straight line
  between them is blocked by the inner wall.
- maze_medium: D4RL's medium maze, 6 × 6 cells of side 1/6. Start and goal cells are drawn
  among pairs whose shortest cell paths all turn at least 4 times (a cell-level BFS at build
  time, `path_turns`): the start uniform over the cells that have such partners, the goal
  uniform over the start's partners; each point uniform within its cell (as in umaze).

Episode lengths: two_rooms 100 control steps (its longest shortest path, corner to corner
through the door, takes about 27); umaze 200 (44 end to end along the U's centre line);
maze_medium 200 (29 on average along the cells' centres, at most 41): about 4 times the
longest path, room to recover from detours.

Grid layouts are tuples of strings, row 0 at the top: '#' a wall cell, '.' a free cell; the
outer ring must be walls (it is the border). Cell (row, col) of an R × C layout with interior
side n = C − 2 has side 1/n and its centre at x = (col − (C − 1)/2)/n, y = ((R − 1)/2 − row)/n.
Interior wall cells are merged into few boxes (`merge_cells`): contact cost grows with boxes.

Dynamics. A sphere of radius `AGENT_RADIUS` = 0.04 and mass `MASS` = 0.1 on two slide joints
(x, y) with damping `DAMPING` = 5 and two motors of gear `GEAR` = `MAX_SPEED` · `DAMPING`. The
action [2] in [-1, 1]² is the motor command, so the steady velocity is `MAX_SPEED` · action =
0.45 · action per second. The velocity's time constant is MASS / DAMPING = 0.02 s, a fifth of a
control step (`CONTROL_DT` = 0.1 s): the velocity follows the action within one control step
(the implicitly integrated damping halves the velocity's error every substep: 3 % is left after
one control step, 0.1 % after two), so the position is almost the whole state. One control
step moves 0.045 · action: crossing the unit arena takes 22 steps.

Backend: brax's generalized pipeline, 5 substeps of `TIMESTEP` = 0.02 s. Its joint damping is
integrated implicitly (stable however strong) and its contacts and joint limits are MuJoCo's
soft constraints, here with time constant `SOLREF` = 0.025 s (stiffer than MuJoCo's rule of
two timesteps, which let a point hitting a wall head-on sink 11 mm into it; checked stable)
and 10 solver iterations (fewer let the point through). A point driven into a wall at full
speed overlaps it by at most 5 mm for a step and then rests 0.01 mm in; driven diagonally onto
a wall's corner, by at most about 13 mm for a step (one substep of motion: contacts act only
once the sphere touches). It never passes through. The border is the slide joints' limits
rather than four wall boxes: every box adds four contact rows to the constraint solve, and
limits made the two-rooms step 5 times faster. Brax's positional and spring pipelines were
tried and rejected: spring let the point sink 6 mm into walls, positional stuck it in the
door, and neither has joint damping (only a global velocity decay). Gravity is off; nothing
touches a floor.

Goal: the observation of the agent at rest at the goal; the goal itself is never drawn (there
is no goal geom). `Goal.position` is the goal xy; `distance` the straight-line xy distance.
Success: the agent's centre ends within `SUCCESS_RADIUS` = 0.05 (5 % of the arena's side) of
the goal: for maze_medium that is 30 % of a cell's side.

State observation [2]: x / 0.5, y / 0.5 (the arena spans ±1). The velocity is left out: it
follows the action within a control step (above), so the position is the state, and a goal is
an agent at rest, so a velocity in the observation made the latent distance to the goal punish
motion itself (moving at full speed put a learned latent three times as far from a goal at
rest as standing still at a wall did) and planners with that cost stood still.
`state_observation` [4] (with the scaled velocity) remains for tasks that want it.
Pixel observation [S, S, 3] (uint8): the arena from above (`render.render`
with the model's colours: light grey walls, a red agent, on the renderer's dark floor), the
view `CAMERA_MARGIN` wider than the arena on every side.

Oracle problem: cost = the distance of the agent to the goal + 0.001 × squared scaled speed;
terminal cost 4 × that (like the reacher's). In the grid mazes (umaze, maze_medium) the
distance runs along the corridors (`maze_distance`: shortest cell paths), so that a
short-horizon planner goes round the walls; in two_rooms it is the straight line, which can
lead such a planner into the wall beside the door.
"""

from __future__ import annotations

import dataclasses
import functools
import warnings
from collections import deque

import jax
import jax.numpy as jnp
import numpy as np

import planners
from hjepa.tasks._brax import import_brax, pipeline, step_substeps
from hjepa.tasks.base import DEFAULT_IMAGE_SIZE, Episode, Goal, Task, register

Box = tuple[float, float, float, float]  # (x0, y0, x1, y1), x0 < x1, y0 < y1

ARENA_SIDE = 1.0
HALF_SIDE = ARENA_SIDE / 2
AGENT_RADIUS = 0.04
CLEARANCE = AGENT_RADIUS + 0.01  # starts and goals keep this far from every wall
BORDER = 0.1  # thickness of the drawn border boxes
CAMERA_MARGIN = 0.05
MASS = 0.1
DAMPING = 5.0
MAX_SPEED = 0.45  # per second: 0.045 per control step
GEAR = MAX_SPEED * DAMPING
TIMESTEP = 0.02
SUBSTEPS = 5
CONTROL_DT = TIMESTEP * SUBSTEPS
SOLREF = 0.025  # contact and joint-limit time constant (s)
SOLVER_ITERATIONS = 10
SOLVER_MAXLS = 10
FRICTION = 0.1
SUCCESS_RADIUS = 0.05 * ARENA_SIDE
POSITION_SCALE = 1.0 / HALF_SIDE
VELOCITY_SCALE = 1.0 / MAX_SPEED

WALL_THICKNESS = 0.05  # two_rooms' middle wall
DOOR_WIDTH = 0.3  # two_rooms' door

UMAZE = ("#####",
         "#...#",
         "###.#",
         "#...#",
         "#####")
MEDIUM_MAZE = ("########",
               "#..##..#",
               "#..#...#",
               "##...###",
               "#..#...#",
               "#.#..#.#",
               "#...#..#",
               "########")


# ----------------------------------------------------------------------------- grid layouts

_MOVES = ((-1, 0), (1, 0), (0, -1), (0, 1))  # (d row, d col): up, down, left, right


def check_layout(layout: tuple[str, ...]) -> None:
    """Raises ValueError unless `layout` is a square grid of '#'/'.' ringed by '#'."""
    rows = len(layout)
    if rows < 3 or any(len(line) != rows for line in layout):
        raise ValueError(f"layout: expected a square grid of at least 3 x 3 strings, got "
                         f"{layout!r}")
    if any(ch not in "#." for line in layout for ch in line):
        raise ValueError(f"layout: expected only '#' (wall) and '.' (free), got {layout!r}")
    ring = layout[0] + layout[-1] + "".join(line[0] + line[-1] for line in layout)
    if set(ring) != {"#"}:
        raise ValueError(f"layout: expected a ring of '#' around the grid, got {layout!r}")


def cell_size(layout: tuple[str, ...]) -> float:
    """Side of a cell: the interior (the grid less its ring) spans `ARENA_SIDE`."""
    return ARENA_SIDE / (len(layout[0]) - 2)


def cell_center(layout: tuple[str, ...], row: int, col: int) -> tuple[float, float]:
    """World xy of the centre of cell (row, col); row 0 is the top."""
    size = cell_size(layout)
    return ((col - (len(layout[0]) - 1) / 2) * size, ((len(layout) - 1) / 2 - row) * size)


def cell_of(layout: tuple[str, ...], xy) -> np.ndarray:
    """(row, col) [..., 2] (int) of the cells holding world points xy [..., 2]."""
    xy = np.asarray(xy, np.float64)
    size = cell_size(layout)
    col = np.floor(xy[..., 0] / size + len(layout[0]) / 2)
    row = np.floor(len(layout) / 2 - xy[..., 1] / size)
    return np.stack([row, col], axis=-1).astype(int)


def free_cells(layout: tuple[str, ...]) -> tuple[tuple[int, int], ...]:
    """The free cells (row, col), row by row."""
    return tuple((r, c) for r, line in enumerate(layout) for c, ch in enumerate(line)
                 if ch == ".")


def merge_cells(layout: tuple[str, ...]) -> tuple[tuple[int, int, int, int], ...]:
    """Interior wall cells (the ring excluded) covered by disjoint rectangles of cells.

    Greedy: from the first uncovered wall cell (row by row) extend right as far as the row
    allows, then down while the whole span is uncovered wall. Returns (row0, col0, row1, col1),
    inclusive.
    """
    n = len(layout)
    wall = np.array([[ch == "#" for ch in line] for line in layout])
    todo = wall.copy()
    todo[0, :] = todo[-1, :] = todo[:, 0] = todo[:, -1] = False
    rects = []
    for r in range(n):
        for c in range(n):
            if not todo[r, c]:
                continue
            c1 = c
            while c1 + 1 < n and todo[r, c1 + 1]:
                c1 += 1
            r1 = r
            while r1 + 1 < n and todo[r1 + 1, c:c1 + 1].all():
                r1 += 1
            todo[r:r1 + 1, c:c1 + 1] = False
            rects.append((r, c, r1, c1))
    return tuple(rects)


def cells_to_box(layout: tuple[str, ...], rect: tuple[int, int, int, int]) -> Box:
    """The world box (x0, y0, x1, y1) covered by a rectangle of cells (row0, col0, row1, col1)."""
    size = cell_size(layout)
    r0, c0, r1, c1 = rect
    x0, y1 = cell_center(layout, r0, c0)
    x1, y0 = cell_center(layout, r1, c1)
    box = (x0 - size / 2, y0 - size / 2, x1 + size / 2, y1 + size / 2)
    return tuple(round(float(v), 9) for v in box)


def path_turns(layout: tuple[str, ...], source: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Cell-level shortest paths from `source` (4-connected moves between free cells).

    Returns:
      (dist [R, C], turns [R, C]) int: the number of moves of a shortest path (-1 where
      unreachable or a wall) and the fewest changes of direction over all shortest paths.
    """
    n = len(layout)
    free = np.array([[ch == "." for ch in line] for line in layout])
    big = 1 << 30
    dist = np.full((n, n), -1, int)
    best = np.full((n, n, 4), big, int)  # fewest turns of a shortest path arriving by move d
    dist[source] = 0
    queue = deque([source])
    while queue:
        r, c = queue.popleft()
        arriving = 0 if (r, c) == source else None
        for d, (dr, dc) in enumerate(_MOVES):
            v = (r + dr, c + dc)
            if not free[v]:
                continue
            if dist[v] == -1:
                dist[v] = dist[r, c] + 1
                queue.append(v)
            if dist[v] != dist[r, c] + 1:
                continue
            if arriving is not None:
                turns = arriving
            else:
                turns = min(best[r, c, e] + (e != d) for e in range(4))
            best[v + (d,)] = min(best[v + (d,)], turns)
    turns = np.where(dist >= 0, best.min(axis=-1), -1)
    turns[source] = 0
    return dist, turns


def cell_region(layout: tuple[str, ...], cell: tuple[int, int]) -> Box:
    """Where an agent's centre may be drawn in a cell: the cell less `CLEARANCE` per side."""
    x, y = cell_center(layout, *cell)
    half = cell_size(layout) / 2 - CLEARANCE
    return (round(x - half, 9), round(y - half, 9), round(x + half, 9), round(y + half, 9))


# ----------------------------------------------------------------------------- arenas


@dataclasses.dataclass(frozen=True)
class Arena:
    """The physical arena: a name and its interior wall boxes (the border is implicit).

    Hashable: the dynamics hold it and `load_system` caches the Brax system per arena.
    """

    name: str
    walls: tuple[Box, ...]


@dataclasses.dataclass(frozen=True)
class Maze:
    """An arena and how episodes are drawn in it.

    Attributes:
      arena: the walls.
      regions: boxes [K] (x0, y0, x1, y1) from which the agent's centre is drawn.
      pair_groups: groups of (start region, goal region) index pairs. `reset` picks a group
        uniformly, then a start region uniformly among the group's, then a goal region
        uniformly among that start's partners in the group.
      layout: the grid of a grid maze (None for two_rooms).
    """

    arena: Arena
    regions: tuple[Box, ...]
    pair_groups: tuple[tuple[tuple[int, int], ...], ...]
    layout: tuple[str, ...] | None = None

    def pair_masks(self) -> np.ndarray:
        """bool [G, K, K]: mask[g, i, j] when (i, j) is a pair of group g."""
        k = len(self.regions)
        masks = np.zeros((len(self.pair_groups), k, k), bool)
        for g, pairs in enumerate(self.pair_groups):
            for i, j in pairs:
                masks[g, i, j] = True
        return masks


def two_rooms_maze(door_width: float = DOOR_WIDTH,
                   wall_thickness: float = WALL_THICKNESS) -> Maze:
    """Two rooms side by side, one door in the middle of the wall between them."""
    t, h, d = wall_thickness / 2, HALF_SIDE, door_width / 2
    walls = ((-t, d, t, h + BORDER), (-t, -h - BORDER, t, -d))
    c = CLEARANCE
    left = (-h + c, -h + c, -t - c, h - c)
    right = (t + c, -h + c, h - c, h - c)
    return Maze(arena=Arena("two_rooms", walls), regions=(left, right),
                pair_groups=(((0, 0), (1, 1)), ((0, 1), (1, 0))))


def grid_maze(name: str, layout: tuple[str, ...], *, min_moves: int = 0,
              min_turns: int = 0) -> Maze:
    """A grid maze whose episodes join cells at least `min_moves` moves and `min_turns` turns
    apart along every shortest cell path."""
    check_layout(layout)
    if cell_size(layout) / 2 <= CLEARANCE:
        raise ValueError(f"layout: cells of side {cell_size(layout):.3f} are too small for an "
                         f"agent of radius {AGENT_RADIUS}")
    cells = free_cells(layout)
    index = {cell: i for i, cell in enumerate(cells)}
    pairs = []
    for a in cells:
        dist, turns = path_turns(layout, a)
        for b in cells:
            if dist[b] >= max(min_moves, 1) and turns[b] >= min_turns:
                pairs.append((index[a], index[b]))
    if not pairs:
        raise ValueError(f"{name}: no pair of cells is {min_moves} moves and {min_turns} turns "
                         "apart")
    walls = tuple(cells_to_box(layout, rect) for rect in merge_cells(layout))
    return Maze(arena=Arena(name, walls), regions=tuple(cell_region(layout, c) for c in cells),
                pair_groups=(tuple(pairs),), layout=layout)


# ----------------------------------------------------------------------------- physics


def _f(v: float) -> str:
    return f"{v:.9g}"


def mjcf_xml(arena: Arena) -> str:
    """The MJCF model of an arena: visual border boxes, colliding walls, the agent."""
    h, b, r = HALF_SIDE, BORDER, AGENT_RADIUS
    geoms = []
    border = {"border_top": (0.0, h + b / 2, h + b, b / 2),
              "border_bottom": (0.0, -h - b / 2, h + b, b / 2),
              "border_left": (-h - b / 2, 0.0, b / 2, h + b),
              "border_right": (h + b / 2, 0.0, b / 2, h + b)}
    for name, (x, y, hx, hy) in border.items():
        geoms.append(f'<geom name="{name}" type="box" pos="{_f(x)} {_f(y)} {_f(r)}" '
                     f'size="{_f(hx)} {_f(hy)} {_f(r)}" contype="0" conaffinity="0" '
                     'rgba=".7 .7 .7 1"/>')
    for i, (x0, y0, x1, y1) in enumerate(arena.walls):
        geoms.append(f'<geom name="wall_{i}" type="box" '
                     f'pos="{_f((x0 + x1) / 2)} {_f((y0 + y1) / 2)} {_f(r)}" '
                     f'size="{_f((x1 - x0) / 2)} {_f((y1 - y0) / 2)} {_f(r)}" '
                     'contype="1" conaffinity="1" rgba=".7 .7 .7 1"/>')
    limit = _f(h - r)
    joint = (f'type="slide" damping="{_f(DAMPING)}" limited="true" range="-{limit} {limit}" '
             f'solreflimit="{_f(SOLREF)} 1"')
    motor = f'gear="{_f(GEAR)}" ctrlrange="-1 1" ctrllimited="true"'
    nl = "\n      "
    return f"""<mujoco model="point_maze_{arena.name}">
  <option timestep="{_f(TIMESTEP)}" iterations="{SOLVER_ITERATIONS}" gravity="0 0 0"/>
  <custom>
    <numeric name="matrix_inv_iterations" data="0"/>
    <numeric name="solver_maxls" data="{SOLVER_MAXLS}"/>
  </custom>
  <default>
    <geom friction="{_f(FRICTION)} 0 0" solref="{_f(SOLREF)} 1"/>
  </default>
  <worldbody>
      {nl.join(geoms)}
    <body name="agent" pos="0 0 {_f(r)}">
      <joint name="agent_x" axis="1 0 0" {joint}/>
      <joint name="agent_y" axis="0 1 0" {joint}/>
      <geom name="agent" type="sphere" size="{_f(r)}" mass="{_f(MASS)}" contype="1"
            conaffinity="1" rgba=".9 .1 .3 1"/>
    </body>
  </worldbody>
  <actuator>
    <motor name="agent_x" joint="agent_x" {motor}/>
    <motor name="agent_y" joint="agent_y" {motor}/>
  </actuator>
</mujoco>
"""


@functools.cache
def load_system(arena: Arena):
    """The Brax system of an arena (cached per arena)."""
    import_brax()
    from brax.io import mjcf

    # The cache outlives any trace: build concrete arrays even when first called under jit.
    with warnings.catch_warnings(), jax.ensure_compile_time_eval():
        warnings.simplefilter("ignore")
        return mjcf.loads(mjcf_xml(arena))


def init_state(arena: Arena, xy: jax.Array, velocity: jax.Array | None = None):
    """The pipeline state of the agent at xy [2] (at rest unless `velocity` [2] is given)."""
    velocity = jnp.zeros(2) if velocity is None else velocity
    return pipeline("generalized").init(load_system(arena), jnp.asarray(xy, jnp.float32),
                            jnp.asarray(velocity, jnp.float32))


def position_observation(q: jax.Array) -> jax.Array:
    """Observation [2] of the agent's position q [2]: the arena spans ±1."""
    return POSITION_SCALE * q[:2]


def state_observation(q: jax.Array, qd: jax.Array) -> jax.Array:
    """Observation [4] of the agent's position q [2] and velocity qd [2]."""
    return jnp.concatenate([POSITION_SCALE * q[:2], VELOCITY_SCALE * qd[:2]])


@dataclasses.dataclass(frozen=True)
class PointMazeDynamics:
    """One control step of the point's physics: `(None, state, action [2]) -> state`."""

    arena: Arena

    def __call__(self, env_params, state, action):
        del env_params
        sys = load_system(self.arena)
        action = jnp.clip(action, -1.0, 1.0)
        return step_substeps("generalized", sys, state, action, SUBSTEPS)


@functools.cache
def cell_routes(layout: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Shortest cell paths between every two cells of a grid maze, as lookup tables.

    Cells are numbered row * C + col over the whole grid (walls included).

    Returns:
      (next_cell [N, N] int, moves [N, N] int, centers [N, 2] float) with N = R * C:
      next_cell[p, g] the first cell after p on a shortest 4-connected path from p to g (p
      itself when p == g, or where g cannot be reached from p), moves[p, g] that path's
      number of moves (0 where unreachable), centers the cells' world xy.
    """
    rows, cols = len(layout), len(layout[0])
    n = rows * cols
    next_cell = np.tile(np.arange(n)[:, None], (1, n))
    moves = np.zeros((n, n), int)
    for goal in free_cells(layout):
        dist, _ = path_turns(layout, goal)
        g = goal[0] * cols + goal[1]
        for r, c in free_cells(layout):
            if dist[r, c] <= 0:
                continue
            moves[r * cols + c, g] = dist[r, c]
            for dr, dc in _MOVES:
                if dist[r + dr, c + dc] == dist[r, c] - 1:
                    next_cell[r * cols + c, g] = (r + dr) * cols + c + dc
                    break
    centers = np.array([cell_center(layout, r, c) for r in range(rows) for c in range(cols)])
    return next_cell, moves, centers


def maze_distance(layout: tuple[str, ...], xy: jax.Array, goal_xy: jax.Array) -> jax.Array:
    """Distance [] from xy [2] to goal_xy [2] along the maze's corridors (jittable).

    In the goal's cell, the straight line; elsewhere, the way to the centre of the next cell
    of a shortest cell path, one cell side per move from there to the goal's cell, and the
    goal's offset from its cell's centre. It follows the corridor round walls, where the
    straight line runs into them.
    """
    next_cell, moves, centers = (jnp.asarray(a) for a in cell_routes(layout))
    size = cell_size(layout)
    rows, cols = len(layout), len(layout[0])

    def index(p):  # [2] -> [] the flat index of the cell holding p (`cell_of`, in jax)
        col = jnp.clip(jnp.floor(p[0] / size + cols / 2), 0, cols - 1)
        row = jnp.clip(jnp.floor(rows / 2 - p[1] / size), 0, rows - 1)
        return (row * cols + col).astype(jnp.int32)

    def norm(v):
        return jnp.sqrt(jnp.sum(v**2) + 1e-12)

    here, goal = index(xy), index(goal_xy)
    via = next_cell[here, goal]
    around = (norm(xy - centers[via]) + size * moves[via, goal]
              + norm(centers[goal] - goal_xy))
    return jnp.where(here == goal, norm(xy - goal_xy), around)


def point_cost(goal_xy: jax.Array, q: jax.Array, qd: jax.Array, velocity_weight: float,
               layout: tuple[str, ...] | None = None):
    """Distance of the agent to `goal_xy` [2] plus a penalty on its speed [].

    The distance runs along the corridors of a grid maze's `layout` (`maze_distance`), else
    in a straight line."""
    if layout is None:
        distance = jnp.sqrt(jnp.sum((q[:2] - goal_xy) ** 2) + 1e-12)
    else:
        distance = maze_distance(layout, q[:2], goal_xy)
    return distance + velocity_weight * jnp.sum((VELOCITY_SCALE * qd[:2]) ** 2)


@dataclasses.dataclass(frozen=True)
class PointMazeOracleStep:
    """Oracle planning step on true physics: cost = distance to the goal + speed penalty.

    `params` is the goal xy [2].
    """

    arena: Arena
    velocity_weight: float = 0.001
    layout: tuple[str, ...] | None = None  # a grid maze's: distance along its corridors

    def __call__(self, goal_xy, state, action):
        state = PointMazeDynamics(self.arena)(None, state, action)
        return state, point_cost(goal_xy, state.q, state.qd, self.velocity_weight, self.layout)


@dataclasses.dataclass(frozen=True)
class PointMazeOracleTerminal:
    """Terminal cost of the oracle problem: `weight` × the step cost."""

    weight: float = 4.0
    velocity_weight: float = 0.001
    layout: tuple[str, ...] | None = None

    def __call__(self, goal_xy, state):
        return self.weight * point_cost(goal_xy, state.q, state.qd, self.velocity_weight,
                                        self.layout)


# ----------------------------------------------------------------------------- the task


class PointMaze(Task):
    """A point mass reaching goals in a walled arena (see the module docstring)."""

    def __init__(self, name: str, maze: Maze, *, obs: str = "state", episode_length: int,
                 image_size: int = DEFAULT_IMAGE_SIZE):
        from hjepa.tasks import render

        if obs not in ("state", "pixels"):
            raise ValueError(f"obs: expected 'state' or 'pixels', got {obs!r}")
        self.name = name
        self.obs_kind = obs
        self.maze = maze
        self.arena = maze.arena
        self.system = load_system(maze.arena)
        self.camera = render.Camera(center=(0.0, 0.0), extent=HALF_SIDE + CAMERA_MARGIN,
                                    size=image_size)
        self.visible = render.visible_geoms(self.system)
        self.colors = render.rgba_colors(self.system)
        self.obs_shape = (2,) if obs == "state" else (image_size, image_size, 3)
        self.action_size = 2
        self.action_low = -np.ones(2, np.float32)
        self.action_high = np.ones(2, np.float32)
        self.episode_length = episode_length
        self.success_threshold = SUCCESS_RADIUS
        self.dynamics = PointMazeDynamics(maze.arena)
        self._regions = np.asarray(maze.regions, np.float32)  # [K, 4]
        self._pair_masks = maze.pair_masks()  # [G, K, K]

    def init_state(self, xy: jax.Array, velocity: jax.Array | None = None):
        """The pipeline state of the agent at xy [2] (at rest unless `velocity` [2] is given)."""
        return init_state(self.arena, xy, velocity)

    def reset(self, key: jax.Array) -> Episode:
        group_key, start_key, goal_key, start_xy_key, goal_xy_key = jax.random.split(key, 5)
        masks = jnp.asarray(self._pair_masks)
        regions = jnp.asarray(self._regions)
        group = jax.random.randint(group_key, (), 0, masks.shape[0])
        mask = masks[group]  # [K, K]
        start = jax.random.categorical(start_key, jnp.where(mask.any(axis=1), 0.0, -jnp.inf))
        goal = jax.random.categorical(goal_key, jnp.where(mask[start], 0.0, -jnp.inf))

        def draw(key, region):
            box = regions[region]
            return jax.random.uniform(key, (2,), minval=box[:2], maxval=box[2:])

        start_xy, goal_xy = draw(start_xy_key, start), draw(goal_xy_key, goal)
        # both states from one vmapped init: half the code to compile of two calls
        both = jax.vmap(self.init_state)(jnp.stack([start_xy, goal_xy]))
        state, goal_state = (jax.tree.map(lambda x, i=i: x[i], both) for i in (0, 1))
        return Episode(state=state, goal=Goal(obs=self.observe(goal_state), position=goal_xy,
                                              state=goal_state))

    def exploration_start(self, key: jax.Array):
        """Where reward-free data episodes start: at rest, uniformly over the regions (every
        free cell of a grid maze, each room of two_rooms), so the data cover the maze rather
        than only the cells episodes start from."""
        region_key, xy_key = jax.random.split(key)
        box = jnp.asarray(self._regions)[
            jax.random.randint(region_key, (), 0, self._regions.shape[0])]
        return self.init_state(jax.random.uniform(xy_key, (2,), minval=box[:2], maxval=box[2:]))

    def observe(self, state) -> jax.Array:
        if self.obs_kind == "pixels":
            from hjepa.tasks import render

            return render.render(self.system, state.x, self.camera, visible=self.visible,
                                 colors=self.colors)
        return position_observation(state.q)

    def position(self, state) -> jax.Array:
        return state.q[:2]

    def distance(self, state, goal: Goal) -> jax.Array:
        return jnp.sqrt(jnp.sum((state.q[:2] - goal.position) ** 2))

    def oracle_problem(self, state, goal: Goal) -> planners.Problem:
        return planners.Problem(
            step=PointMazeOracleStep(self.arena, layout=self.maze.layout),
            terminal_cost=PointMazeOracleTerminal(layout=self.maze.layout),
            params=goal.position,
            init_state=state,
            action_low=jnp.asarray(self.action_low),
            action_high=jnp.asarray(self.action_high),
        )


TWO_ROOMS = two_rooms_maze()
UMAZE_MAZE = grid_maze("umaze", UMAZE, min_moves=6)  # the two ends of the U
MEDIUM = grid_maze("maze_medium", MEDIUM_MAZE, min_turns=4)

register("two_rooms", lambda obs="state", image_size=DEFAULT_IMAGE_SIZE: PointMaze(
    "two_rooms", TWO_ROOMS, obs=obs, episode_length=100, image_size=image_size))
register("umaze", lambda obs="state", image_size=DEFAULT_IMAGE_SIZE: PointMaze(
    "umaze", UMAZE_MAZE, obs=obs, episode_length=200, image_size=image_size))
register("maze_medium", lambda obs="state", image_size=DEFAULT_IMAGE_SIZE: PointMaze(
    "maze_medium", MEDIUM, obs=obs, episode_length=200, image_size=image_size))
