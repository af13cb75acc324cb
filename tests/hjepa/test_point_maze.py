"""hjepa.tasks.point_maze: layouts, walls, first-order dynamics, episodes, success, oracle, pixels.

Sized for 2 CPU cores: every brax function is compiled once (module fixtures) and reused; the
wall and dynamics checks share one batched two_rooms rollout.
"""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import planners
from hjepa import tasks
from hjepa.tasks import Goal, render
from hjepa.tasks import point_maze as pm

NAMES = ("two_rooms", "umaze", "maze_medium")
R = pm.AGENT_RADIUS
STEP = pm.MAX_SPEED * pm.CONTROL_DT  # displacement per control step at full action: 0.045
SOFT = 0.005  # how far the soft contacts let the agent into a wall it is pushed straight into
IMPACT = 0.015  # ... and into a wall's corner hit diagonally at full speed (for one step)
INNER = 0.025 + R  # two_rooms: the agent's centre rests this far from x = 0 at the wall


@pytest.fixture(scope="module")
def two_rooms():
    return tasks.make("two_rooms")


def _box_distance(xy: np.ndarray, box) -> np.ndarray:
    """Distance [N] from points xy [N, 2] to a box (x0, y0, x1, y1); 0 inside."""
    lo, hi = np.asarray(box[:2]), np.asarray(box[2:])
    return np.linalg.norm(np.maximum(np.maximum(lo - xy, xy - hi), 0.0), axis=-1)


def _wall_clearance(maze: pm.Maze, xy) -> np.ndarray:
    """Distance [N] from the agent's centres xy [N, 2] to the nearest wall or the border."""
    xy = np.asarray(xy, np.float64).reshape(-1, 2)
    border = pm.HALF_SIDE - np.abs(xy).max(axis=-1)
    walls = [_box_distance(xy, box) for box in maze.arena.walls]
    return np.min(np.stack([border, *walls]), axis=0)


# ----------------------------------------------------------------------------- registry


def test_the_three_tasks_are_registered():
    for name in NAMES:
        assert name in tasks.names()


@pytest.mark.parametrize("name", NAMES)
def test_make_caches_each_task_and_observation_kind(name):
    task = tasks.make(name)
    assert tasks.make(name, "state") is task
    pixels = tasks.make(name, "pixels")
    assert tasks.make(name, obs="pixels") is pixels
    assert pixels is not task


@pytest.mark.parametrize("name, length", [("two_rooms", 100), ("umaze", 200),
                                          ("maze_medium", 200)])
def test_attributes(name, length):
    task = tasks.make(name)
    assert task.name == name
    assert task.obs_kind == "state"
    assert task.obs_shape == (2,)
    assert task.action_size == 2
    np.testing.assert_array_equal(task.action_low, [-1.0, -1.0])
    np.testing.assert_array_equal(task.action_high, [1.0, 1.0])
    assert task.episode_length == length
    assert task.success_threshold == pytest.approx(0.05)


def test_dynamics_and_oracle_functions_are_hashable_and_equal_across_calls(two_rooms):
    # Static arguments of jitted planners: equal and hashable, so nothing retraces.
    assert two_rooms.dynamics == pm.PointMazeDynamics(two_rooms.arena)
    assert hash(two_rooms.dynamics) == hash(pm.PointMazeDynamics(two_rooms.arena))
    a = two_rooms.oracle_problem(None, Goal(obs=None, position=jnp.zeros(2), state=None))
    b = two_rooms.oracle_problem(None, Goal(obs=None, position=jnp.ones(2), state=None))
    assert a.step == b.step and hash(a.step) == hash(b.step)
    assert a.terminal_cost == b.terminal_cost


# ----------------------------------------------------------------------------- layouts


def test_two_rooms_geometry():
    walls = pm.TWO_ROOMS.arena.walls
    assert len(walls) == 2
    upper, lower = sorted(walls, key=lambda box: -box[1])
    np.testing.assert_allclose([upper[0], upper[2]], [-0.025, 0.025])
    np.testing.assert_allclose(upper[1] - lower[3], pm.DOOR_WIDTH)  # the door
    np.testing.assert_allclose(upper[1] + lower[3], 0.0)  # centred at y = 0


def test_cell_geometry_round_trips():
    layout = pm.MEDIUM_MAZE
    assert pm.cell_size(layout) == pytest.approx(1 / 6)
    for cell in pm.free_cells(layout):
        center = pm.cell_center(layout, *cell)
        assert tuple(pm.cell_of(layout, center)) == cell
    # the interior spans [-0.5, 0.5]: cell (1, 1) is the top-left, (6, 6) the bottom-right
    np.testing.assert_allclose(pm.cell_center(layout, 1, 1), (-5 / 12, 5 / 12))
    np.testing.assert_allclose(pm.cell_center(layout, 6, 6), (5 / 12, -5 / 12))


@pytest.mark.parametrize("layout", [pm.UMAZE, pm.MEDIUM_MAZE])
def test_merged_wall_boxes_cover_exactly_the_interior_wall_cells(layout):
    rects = pm.merge_cells(layout)
    covered = np.zeros((len(layout), len(layout)), int)
    for r0, c0, r1, c1 in rects:
        covered[r0:r1 + 1, c0:c1 + 1] += 1
    wall = np.array([[ch == "#" for ch in line] for line in layout])
    wall[0, :] = wall[-1, :] = wall[:, 0] = wall[:, -1] = False
    np.testing.assert_array_equal(covered, wall.astype(int))  # each wall cell once, no free cell


def test_umaze_is_one_inner_wall_over_the_middle_left_cells():
    np.testing.assert_allclose(pm.UMAZE_MAZE.arena.walls, [(-0.5, -1 / 6, 1 / 6, 1 / 6)])


def _min_turns_brute_force(layout, a, b) -> tuple[int, int]:
    """(moves, fewest turns) over every shortest 4-connected path from cell a to cell b."""
    free = set(pm.free_cells(layout))
    dist, frontier = {b: 0}, [b]
    while frontier:
        nxt = []
        for r, c in frontier:
            for dr, dc in ((-1, 0), (1, 0), (0, -1), (0, 1)):
                n = (r + dr, c + dc)
                if n in free and n not in dist:
                    dist[n] = dist[(r, c)] + 1
                    nxt.append(n)
        frontier = nxt
    best = [np.inf]

    def walk(cell, heading, turns):
        if cell == b:
            best[0] = min(best[0], turns)
            return
        for move in ((-1, 0), (1, 0), (0, -1), (0, 1)):
            n = (cell[0] + move[0], cell[1] + move[1])
            if dist.get(n) == dist[cell] - 1:
                walk(n, move, turns + int(heading is not None and move != heading))

    walk(a, None, 0)
    return dist[a], best[0]


def test_path_turns_matches_a_brute_force_enumeration_of_shortest_paths():
    layout = pm.MEDIUM_MAZE
    for a in pm.free_cells(layout)[::3]:
        dist, turns = pm.path_turns(layout, a)
        for b in pm.free_cells(layout):
            assert (dist[b], turns[b]) == _min_turns_brute_force(layout, a, b), (a, b)


def test_maze_medium_pairs_are_exactly_those_with_at_least_four_turns():
    layout = pm.MEDIUM_MAZE
    cells = pm.free_cells(layout)
    pairs = set(pm.MEDIUM.pair_groups[0])
    for (i, a), (j, b) in itertools.product(enumerate(cells), repeat=2):
        if a == b:
            assert (i, j) not in pairs
            continue
        assert ((i, j) in pairs) == (_min_turns_brute_force(layout, a, b)[1] >= 4), (a, b)


def test_umaze_pairs_join_the_two_ends_of_the_u():
    cells = pm.free_cells(pm.UMAZE)
    ends = {(cells[i], cells[j]) for i, j in pm.UMAZE_MAZE.pair_groups[0]}
    assert ends == {((1, 1), (3, 1)), ((3, 1), (1, 1))}


@pytest.mark.parametrize("layout", [
    ("###", "#.#"),  # not square
    ("###", "#x#", "###"),  # unknown character
    ("#.#", "#.#", "###"),  # a hole in the ring
])
def test_bad_layouts_are_refused(layout):
    with pytest.raises(ValueError, match="layout"):
        pm.grid_maze("bad", layout)


# ----------------------------------------------------------------------------- walls, dynamics

STEPS = 40


def _scenarios():
    """name -> (start xy [2], actions [STEPS, 2]) for the two_rooms rollout."""
    const = lambda a: np.tile(np.asarray(a, np.float32), (STEPS, 1))  # noqa: E731
    first_order = np.zeros((STEPS, 2), np.float32)
    first_order[:8] = (0.0, 1.0)  # 8 steps up at full speed
    first_order[16:24] = (-0.5, -0.5)  # 8 steps down-left at half speed
    return {
        "left_into_wall": ((-0.3, 0.3), const((1.0, 0.0))),
        "right_into_wall": ((0.3, -0.3), const((-1.0, 0.0))),
        "through_door": ((-0.3, 0.0), const((1.0, 0.0))),
        "slide_to_door": ((-0.3, -0.35), const((1.0, 0.4))),  # hits the wall, slides up, passes
        "into_corner": ((0.3, 0.3), const((1.0, 1.0))),
        "into_far_corner": ((-0.3, -0.3), const((-1.0, -1.0))),
        "over_clipped": ((0.3, 0.3), const((5.0, -7.0))),  # clipped to (1, -1)
        "first_order": ((-0.25, -0.4), first_order),
    }


@pytest.fixture(scope="module")
def rollout(two_rooms):
    """name -> (positions [STEPS + 1, 2], velocities [STEPS + 1, 2]), the start first; and
    "_starts": the start states (a batch, in the order of `_scenarios()`)."""
    scenarios = _scenarios()
    starts = jnp.asarray([s for s, _ in scenarios.values()], jnp.float32)
    actions = jnp.asarray(np.stack([a for _, a in scenarios.values()]))

    def run(xy, actions):
        state = two_rooms.init_state(xy)

        def body(state, action):
            state = two_rooms.step(state, action)
            return state, (state.q, state.qd)

        _, (q, qd) = jax.lax.scan(body, state, actions)
        return (jnp.concatenate([state.q[None], q]),
                jnp.concatenate([state.qd[None], qd])), state

    (q, qd), states = jax.jit(jax.vmap(run))(starts, actions)
    q, qd = np.asarray(q), np.asarray(qd)
    out = {name: (q[i], qd[i]) for i, name in enumerate(scenarios)}
    out["_starts"] = states
    return out


def test_rollouts_are_finite_and_never_enter_a_wall_or_leave_the_arena(rollout):
    for name in _scenarios():
        q, qd = rollout[name]
        assert np.all(np.isfinite(q)) and np.all(np.isfinite(qd)), name
        clearance = _wall_clearance(pm.TWO_ROOMS, q)
        limit = R - (IMPACT if name == "slide_to_door" else SOFT)
        assert clearance.min() > limit, (name, clearance.min())


@pytest.mark.parametrize("name, side", [("left_into_wall", -1.0), ("right_into_wall", 1.0)])
def test_a_point_pushed_into_the_wall_stays_on_its_side_against_it(rollout, name, side):
    q, _ = rollout[name]
    assert np.all(side * q[:, 0] > INNER - SOFT)  # never crosses
    np.testing.assert_allclose(q[-20:, 0], side * INNER, atol=SOFT)  # rests against the wall
    np.testing.assert_allclose(q[:, 1], q[0, 1], atol=1e-4)  # pushed straight: no drift


def test_a_point_pushed_toward_the_door_passes_into_the_other_room(rollout):
    q, _ = rollout["through_door"]
    assert q[0, 0] < 0 and q[-1, 0] > 0.4
    np.testing.assert_allclose(q[-1, 0], pm.HALF_SIDE - R, atol=SOFT)  # on to the border


def test_a_point_pushed_along_the_wall_slides_to_the_door_and_through(rollout):
    q, _ = rollout["slide_to_door"]
    at_wall = np.abs(q[:, 0] + INNER) < SOFT
    assert at_wall.sum() >= 3  # it did meet the wall below the door ...
    assert q[-1, 0] > 0.3  # ... and went through


@pytest.mark.parametrize("name, corner", [("into_corner", (1, 1)), ("into_far_corner", (-1, -1)),
                                          ("over_clipped", (1, -1))])
def test_a_point_pushed_into_a_corner_of_the_border_stops_there(rollout, name, corner):
    q, _ = rollout[name]
    assert np.abs(q).max() < pm.HALF_SIDE - R + SOFT
    np.testing.assert_allclose(q[-1], np.asarray(corner) * (pm.HALF_SIDE - R), atol=SOFT)


def test_dynamics_are_first_order_at_the_designed_speed(rollout):
    q, qd = rollout["first_order"]
    moves = np.diff(q, axis=0)  # [STEPS, 2]: moves[t] is the displacement of action t
    # constant full action: STEP per control step, from the second step on (the first lags by
    # the velocity's time constant, 0.02 s of the 0.1 s step)
    np.testing.assert_allclose(moves[1:8], np.tile([0.0, STEP], (7, 1)), atol=1e-2 * STEP)
    np.testing.assert_allclose(moves[2:8], np.tile([0.0, STEP], (6, 1)), atol=1e-3 * STEP)
    assert 0.75 * STEP < moves[0, 1] < STEP
    np.testing.assert_allclose(qd[2:9, 1], pm.MAX_SPEED, rtol=1e-3)
    # 8 steps of (0, 1) move by ~8 STEP
    np.testing.assert_allclose(q[8, 1] - q[0, 1], 8 * STEP, rtol=0.05)
    # action back to zero: the point stops within a step (the implicitly integrated damping
    # halves the velocity every substep: 3 % is left after one control step, 0.1 % after two)
    assert np.abs(qd[9]).max() < 0.05 * pm.MAX_SPEED
    assert np.all(np.abs(qd[10:17]) < 2e-3 * pm.MAX_SPEED)
    assert np.all(np.abs(moves[9:16]) < 1e-2 * STEP)
    # half action along the diagonal: half the speed per axis
    np.testing.assert_allclose(moves[17:24], np.tile([-STEP / 2, -STEP / 2], (7, 1)),
                               atol=1e-2 * STEP)
    np.testing.assert_allclose(moves[18:24], np.tile([-STEP / 2, -STEP / 2], (6, 1)),
                               atol=1e-3 * STEP)


def test_step_without_jit_matches_the_jitted_batched_rollout(two_rooms, rollout):
    # One step of the eager (un-jitted) dynamics equals the first step of the jit(vmap) rollout.
    names = list(_scenarios())
    i = names.index("left_into_wall")
    state = jax.tree.map(lambda x: x[i], rollout["_starts"])
    state = two_rooms.step(state, jnp.asarray(_scenarios()["left_into_wall"][1][0]))
    np.testing.assert_allclose(state.q, rollout["left_into_wall"][0][1], atol=1e-6)
    np.testing.assert_allclose(state.qd, rollout["left_into_wall"][1][1], atol=1e-5)


@pytest.mark.slow  # covered by the two_rooms wall tests and the merged-box geometry tests
def test_random_walks_in_the_medium_maze_never_enter_a_wall(episodes):
    task = tasks.make("maze_medium")
    walks, steps = 32, 50
    starts = jax.tree.map(lambda x: x[:walks], episodes["maze_medium"].state)

    def walk(state, noise):
        def body(carry, noise):
            state, action = carry
            action = jnp.clip(0.8 * action + 0.6 * noise, -1.0, 1.0)
            state = task.step(state, action)
            return (state, action), state.q

        _, q = jax.lax.scan(body, (state, jnp.zeros(2)), noise)
        return q

    noise = jax.random.normal(jax.random.key(0), (walks, steps, 2))
    q = np.asarray(jax.jit(jax.vmap(walk))(starts, noise))
    assert np.all(np.isfinite(q))
    assert _wall_clearance(pm.MEDIUM, q).min() > R - IMPACT
    # and they do get around: most walks leave their start cell
    cells = pm.cell_of(pm.MEDIUM_MAZE, q)
    assert np.mean(np.any(cells != cells[:, :1], axis=(1, 2))) > 0.5


# ----------------------------------------------------------------------------- episodes

BATCH = 256


@pytest.fixture(scope="module")
def episodes():
    """name -> a batch of BATCH episodes (numpy leaves)."""
    keys = jax.random.split(jax.random.key(0), BATCH)
    out = {}
    for name in NAMES:
        task = tasks.make(name)
        out[name] = jax.tree.map(np.asarray, jax.jit(jax.vmap(task.reset))(keys))
    return out


@pytest.mark.parametrize("name", NAMES)
def test_starts_and_goals_are_clear_of_walls_at_rest_and_consistent(name, episodes):
    task, batch = tasks.make(name), episodes[name]
    maze = task.maze
    for q in (batch.state.q, batch.goal.state.q):
        assert q.shape == (BATCH, 2)
        assert _wall_clearance(maze, q).min() >= pm.CLEARANCE - 1e-6
    np.testing.assert_array_equal(batch.state.qd, 0.0)
    np.testing.assert_array_equal(batch.goal.state.qd, 0.0)
    np.testing.assert_allclose(batch.goal.position, batch.goal.state.q, atol=1e-7)
    np.testing.assert_allclose(batch.goal.obs[:, :2], 2.0 * batch.goal.position, atol=1e-6)
    np.testing.assert_array_equal(batch.goal.obs[:, 2:], 0.0)
    # distinct keys, distinct episodes
    assert len({tuple(np.round(x, 6)) for x in batch.state.q}) == BATCH


def test_two_rooms_draws_different_rooms_about_half_the_time(episodes):
    batch = episodes["two_rooms"]
    different = np.sign(batch.state.q[:, 0]) != np.sign(batch.goal.position[:, 0])
    assert 0.4 <= different.mean() <= 0.6
    assert np.all(np.abs(batch.state.q[:, 0]) >= INNER)  # never in the door
    # both rooms serve as start
    assert 0.3 < np.mean(batch.state.q[:, 0] < 0) < 0.7


def test_umaze_episodes_join_the_two_ends_of_the_u(episodes):
    batch = episodes["umaze"]
    starts = pm.cell_of(pm.UMAZE, batch.state.q)
    goals = pm.cell_of(pm.UMAZE, batch.goal.position)
    ends = {(1, 1), (3, 1)}
    for s, g in zip(starts, goals, strict=True):
        assert {tuple(s), tuple(g)} == ends
    assert 0.3 < np.mean(starts[:, 0] == 1) < 0.7  # both directions


def test_maze_medium_episodes_need_at_least_four_turns(episodes):
    batch = episodes["maze_medium"]
    starts = pm.cell_of(pm.MEDIUM_MAZE, batch.state.q)
    goals = pm.cell_of(pm.MEDIUM_MAZE, batch.goal.position)
    for s, g in zip(starts, goals, strict=True):
        moves, turns = _min_turns_brute_force(pm.MEDIUM_MAZE, tuple(s), tuple(g))
        assert turns >= 4 and moves >= 5
    assert len({tuple(s) for s in starts}) >= 15  # spread over the maze


def test_observation_layout(two_rooms, episodes):
    batch = episodes["two_rooms"]
    state = jax.tree.map(lambda x: x[0], batch.state)
    state = state.replace(qd=jnp.array([0.45, -0.225]))
    obs = np.asarray(two_rooms.observe(state))
    np.testing.assert_allclose(obs, 2.0 * state.q, atol=1e-6)  # position only
    full = np.asarray(pm.state_observation(state.q, state.qd))
    np.testing.assert_allclose(full, [*(2.0 * state.q), 1.0, -0.5], atol=1e-6)


# ----------------------------------------------------------------------------- success


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("fraction, reached", [(0.0, True), (0.9, True), (1.1, False)])
def test_success_on_constructed_states(name, episodes, fraction, reached):
    task, batch = tasks.make(name), episodes[name]
    goal = jax.tree.map(lambda x: x[0], batch.goal)
    start = jax.tree.map(lambda x: x[0], batch.state)
    for angle in (0.0, 2.0, 4.0):
        offset = fraction * task.success_threshold * np.array([np.cos(angle), np.sin(angle)])
        state = start.replace(q=jnp.asarray(goal.position + offset, jnp.float32))
        np.testing.assert_allclose(task.distance(state, goal), np.hypot(*offset), atol=1e-6)
        assert bool(task.success(state, goal)) is reached


# ----------------------------------------------------------------------------- oracle


def test_oracle_problem_is_well_formed_and_a_zero_plan_stays_put(two_rooms, episodes):
    batch = episodes["two_rooms"]
    state = jax.tree.map(lambda x: jnp.asarray(x[0]), batch.state)
    goal = jax.tree.map(lambda x: jnp.asarray(x[0]), batch.goal)
    problem = two_rooms.oracle_problem(state, goal)
    assert isinstance(problem, planners.Problem)
    np.testing.assert_array_equal(problem.params, goal.position)
    np.testing.assert_array_equal(problem.action_low, two_rooms.action_low)
    np.testing.assert_array_equal(problem.action_high, two_rooms.action_high)
    states, costs, terminal = jax.jit(planners.rollout)(problem, jnp.zeros((8, 2)))
    distance = float(two_rooms.distance(state, goal))
    assert np.all(np.isfinite(costs)) and np.isfinite(terminal)
    np.testing.assert_allclose(costs, distance, rtol=1e-4)  # at rest: the distance, every step
    np.testing.assert_allclose(terminal, 4.0 * distance, rtol=1e-4)
    np.testing.assert_allclose(states.q[-1], state.q, atol=1e-6)
    assert float(problem.terminal_cost(problem.params, goal.state)) < 1e-5


def test_the_oracle_problem_costs_heading_for_a_goal_in_the_same_room_least(two_rooms):
    # Full thrust toward the goal beats standing still, which beats full thrust away, and
    # closes the distance; the same compiled rollout as the zero plan above (MPC on an oracle
    # problem is evaluate's, tested on the reacher in test_hjepa_evaluate).
    start_xy, goal_xy = jnp.array([-0.3, -0.3]), jnp.array([-0.2, 0.1])
    init_state = jax.jit(two_rooms.init_state)  # eager, brax's init costs ~15 s on 2 cores
    start, goal_state = init_state(start_xy), init_state(goal_xy)
    goal = Goal(obs=jnp.zeros(two_rooms.obs_shape), position=goal_xy, state=goal_state)
    problem = two_rooms.oracle_problem(start, goal)
    toward = (goal_xy - start_xy) / jnp.linalg.norm(goal_xy - start_xy)
    total = {}
    for name, direction in (("toward", toward), ("still", 0.0 * toward), ("away", -toward)):
        states, costs, terminal = jax.jit(planners.rollout)(
            problem, jnp.tile(direction, (8, 1)) * jnp.asarray(two_rooms.action_high))
        total[name] = float(costs.sum() + terminal)
        final = jax.tree.map(lambda x: x[-1], states)
        if name == "toward":
            assert float(two_rooms.distance(final, goal)) < 0.5 * float(
                two_rooms.distance(start, goal))
    assert total["toward"] < total["still"] < total["away"], total


def test_maze_distance_follows_the_u_and_is_the_straight_line_within_a_cell():
    layout, size = pm.UMAZE, pm.cell_size(pm.UMAZE)

    def centre(row, col):
        return jnp.array(pm.cell_center(layout, row, col))

    distance = jax.jit(pm.maze_distance, static_argnums=0)
    # End to end of the U: 6 moves of a cell side (the straight line is 2 sides, through
    # the wall).
    np.testing.assert_allclose(distance(layout, centre(1, 1), centre(3, 1)), 6 * size,
                               rtol=1e-5)
    np.testing.assert_allclose(pm.maze_distance(layout, centre(1, 1), centre(3, 1)),
                               distance(layout, centre(1, 1), centre(3, 1)), rtol=1e-6)
    # Down the right arm: 2 moves; in the goal's own cell: the straight line.
    np.testing.assert_allclose(distance(layout, centre(3, 3), centre(1, 3)), 2 * size,
                               rtol=1e-5)
    np.testing.assert_allclose(distance(layout, centre(1, 1) + 0.05, centre(1, 1)),
                               np.hypot(0.05, 0.05), rtol=1e-5)
    # Off-centre ends: the way to the next cell's centre, the moves, then the goal's offset.
    start, goal = centre(1, 1) + jnp.array([-0.1, 0.0]), centre(3, 1) + jnp.array([0.0, 0.1])
    np.testing.assert_allclose(distance(layout, start, goal), (size + 0.1) + 5 * size + 0.1,
                               rtol=1e-5)


def test_the_umaze_oracle_costs_the_way_round_the_wall():
    umaze = tasks.make("umaze")
    start_xy = jnp.array(pm.cell_center(pm.UMAZE, 1, 1))
    goal_xy = jnp.array(pm.cell_center(pm.UMAZE, 3, 1))
    init_state = jax.jit(umaze.init_state)  # eager, brax's init costs ~15 s on 2 cores
    start, goal_state = init_state(start_xy), init_state(goal_xy)
    goal = Goal(obs=jnp.zeros(umaze.obs_shape), position=goal_xy, state=goal_state)
    problem = umaze.oracle_problem(start, goal)
    np.testing.assert_allclose(problem.terminal_cost(problem.params, start),
                               4.0 * 6 * pm.cell_size(pm.UMAZE), rtol=1e-4)  # at rest
    assert float(problem.terminal_cost(problem.params, goal_state)) < 1e-5


def test_the_cached_system_is_concrete_when_first_built_under_jit():
    # load_system's cache outlives any trace: a system first built inside jax.jit must hold
    # concrete arrays, or every later trace fails with UnexpectedTracerError.
    arena = pm.Arena("scratch", ((-0.1, -0.1, 0.1, 0.1),))
    try:
        jax.jit(lambda xy: pm.init_state(arena, xy).q).lower(jnp.zeros(2))
        system = pm.load_system(arena)
        assert not any(isinstance(x, jax.core.Tracer) for x in jax.tree.leaves(system))
        jax.jit(lambda xy: pm.init_state(arena, xy).qd).lower(jnp.zeros(2))  # a later trace
    finally:
        pm.load_system.cache_clear()


# ----------------------------------------------------------------------------- pixels

needs_renderer = pytest.mark.skipif(
    not all(hasattr(render, n) for n in ("render", "Camera", "visible_geoms")),
    reason="hjepa.tasks.render does not provide render/Camera/visible_geoms yet",
)

@pytest.fixture(scope="module")
def pixels():
    return tasks.make("two_rooms", "pixels")


def _color(task, geom: str) -> np.ndarray:
    return np.asarray(task.colors)[render.geom_names(task.system).index(geom)]


@needs_renderer
def test_pixel_task_attributes(pixels):
    assert pixels.obs_kind == "pixels"
    assert pixels.obs_shape == (64, 64, 3)
    assert pixels.camera.size == 64
    assert pixels.camera.extent == pytest.approx(pm.HALF_SIDE + pm.CAMERA_MARGIN)
    # no goal geom: the goal is shown only as an image of the agent at it
    names = render.geom_names(pixels.system)
    assert set(names) == {"border_top", "border_bottom", "border_left", "border_right",
                          "wall_0", "wall_1", "agent"}


@needs_renderer
def test_pixels_show_the_agent_where_it_is_and_the_walls(pixels):
    observe = jax.jit(lambda xy: pixels.observe(pixels.init_state(xy)))
    camera = pixels.camera
    agent_rgb, wall_rgb = _color(pixels, "agent"), _color(pixels, "wall_0")
    assert not np.array_equal(agent_rgb, wall_rgb)
    for xy in ((-0.3, 0.2), (0.25, -0.35)):
        image = np.asarray(observe(jnp.asarray(xy, jnp.float32)))
        assert image.shape == (64, 64, 3) and image.dtype == np.uint8
        # the agent: a disc of its colour centred where it is
        agent = np.argwhere(np.all(image == agent_rgb, axis=-1))  # [n, 2] (row, col)
        assert 5 <= len(agent) <= 4 * np.pi * (R / camera.pixel_size) ** 2
        np.testing.assert_allclose(agent.mean(axis=0), camera.to_pixel(xy), atol=0.5)
        # the middle wall above the door, the door open, a free spot of floor
        for where, rgb in (((0.0, 0.35), wall_rgb), ((0.0, -0.35), wall_rgb),
                           ((0.0, 0.0), render.BACKGROUND), ((0.3, 0.3), render.BACKGROUND)):
            row, col = np.round(camera.to_pixel(where)).astype(int)
            np.testing.assert_array_equal(image[row, col], rgb)


@needs_renderer
def test_pixel_goal_is_the_image_of_the_agent_at_the_goal(pixels):
    episode = jax.jit(pixels.reset)(jax.random.key(5))
    assert episode.goal.obs.shape == (64, 64, 3)
    again = jax.jit(lambda xy: pixels.observe(pixels.init_state(xy)))(episode.goal.position)
    np.testing.assert_array_equal(episode.goal.obs, again)
    row, col = np.round(pixels.camera.to_pixel(np.asarray(episode.goal.position))).astype(int)
    np.testing.assert_array_equal(np.asarray(episode.goal.obs)[row, col],
                                  _color(pixels, "agent"))
