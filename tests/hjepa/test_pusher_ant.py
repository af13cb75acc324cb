"""hjepa.tasks: the pusher and ant_umaze tasks (registry, resets, success, contacts, walls,
oracle problems, their exploration policies, pixels).

Brax compiles dominate the cost here (30-60 s per function on 2 cores), so each task compiles
two functions, once per module: its batched reset, and one "run" that builds a start state and
steps the oracle problem from it (`planners.rollout` for the pusher; the exploration policy,
random torques or nothing for the ant), reused with different inputs of the same shapes for
the dynamics, contact, wall, oracle and exploration checks. MPPI on the true physics compiles
a vmapped rollout on top (60-90 s per task): those two tests are marked slow.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import planners
from hjepa import data as data_lib
from hjepa import tasks
from hjepa.tasks import ant_maze as ant_lib
from hjepa.tasks import pusher as pusher_lib
from hjepa.tasks import render

BATCH = 16
HORIZON = 30  # steps of every rollout below (one compile per task)


def _finite(tree) -> bool:
    return all(bool(np.all(np.isfinite(np.asarray(x)))) for x in jax.tree.leaves(tree)
               if np.issubdtype(np.asarray(x).dtype, np.floating))


def _leaves_equal(a, b) -> bool:
    return all(np.array_equal(np.asarray(x), np.asarray(y))
               for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True))


@pytest.fixture(scope="module")
def pusher():
    return tasks.make("pusher")


@pytest.fixture(scope="module")
def ant():
    return tasks.make("ant_umaze")


# ----------------------------------------------------------------------------- registry


def test_names_list_pusher_and_ant_umaze():
    assert {"pusher", "ant_umaze"} <= set(tasks.names())


@pytest.mark.parametrize("name", ["pusher", "ant_umaze"])
def test_make_caches_each_kind(name):
    assert tasks.make(name) is tasks.make(name, "state")
    assert tasks.make(name, "pixels") is tasks.make(name, "pixels", image_size=64)
    assert tasks.make(name, "pixels") is not tasks.make(name)
    assert tasks.make(name, "pixels", image_size=32).obs_shape == (32, 32, 3)


@pytest.mark.parametrize(
    "name, obs_shape, action_size, threshold, length",
    [("pusher", (18,), 7, 0.05, 100), ("ant_umaze", (31,), 8, 0.5, 500)],
)
def test_attributes(name, obs_shape, action_size, threshold, length):
    task = tasks.make(name)
    assert task.name == name and task.obs_kind == "state"
    assert task.obs_shape == obs_shape
    assert task.action_size == action_size
    np.testing.assert_array_equal(task.action_low, -np.ones(action_size))
    np.testing.assert_array_equal(task.action_high, np.ones(action_size))
    assert task.success_threshold == pytest.approx(threshold)
    assert task.episode_length == length
    assert task.system is not None and isinstance(task.camera, render.Camera)
    pixels = tasks.make(name, "pixels")
    assert pixels.obs_kind == "pixels" and pixels.obs_shape == (64, 64, 3)
    # the dynamics are hashable values: jitted planners never retrace for them
    assert hash(task.dynamics) == hash(type(task.dynamics)(task.backend))


# ============================================================================= pusher


@pytest.fixture(scope="module")
def pusher_batch(pusher):
    return jax.jit(jax.vmap(pusher.reset))(jax.random.split(jax.random.key(0), BATCH))


@pytest.fixture(scope="module")
def pusher_run(pusher):
    """`(arm [7], object xy, goal xy, actions [H, 7]) -> (start state, planners.rollout of the
    oracle problem from it)`, the start state at rest (`Pusher.init_state`)."""

    def run(arm, obj, goal, actions):
        state = pusher.init_state(arm, obj, goal)
        problem = pusher.oracle_problem(
            state, tasks.Goal(obs=jnp.zeros(18), position=goal, state=None))
        return state, planners.rollout(problem, actions)

    return jax.jit(run)


def _pusher_state(pusher_run, arm, obj, goal=pusher_lib.HOME):
    zeros = jnp.zeros((HORIZON, 7))
    return pusher_run(jnp.asarray(arm, jnp.float32), jnp.asarray(obj, jnp.float32),
                      jnp.asarray(goal, jnp.float32), zeros)[0]


def test_pusher_reset_is_finite_and_draws_distinct_episodes(pusher_batch):
    assert _finite(pusher_batch)
    assert pusher_batch.state.q.shape == (BATCH, 11)
    assert pusher_batch.goal.obs.shape == (BATCH, 18)
    assert len({tuple(np.round(np.asarray(g), 6)) for g in pusher_batch.goal.position}) == BATCH


def test_pusher_reset_draws_like_brax(pusher, pusher_batch):
    goal = np.asarray(pusher_batch.goal.position)
    obj = np.asarray(jax.vmap(pusher.position)(pusher_batch.state))
    home = np.array(pusher_lib.HOME)
    assert np.all(goal >= home + pusher_lib.GOAL_LOW - 1e-6)
    assert np.all(goal <= home + pusher_lib.GOAL_HIGH + 1e-6)
    offset = obj - goal
    # the object is never too close to the goal, and lies on the arm's side of it
    assert np.all(np.linalg.norm(offset, axis=-1) >= pusher_lib.MIN_GOAL_DISTANCE - 1e-5)
    assert np.all(offset[:, 1] <= 1e-6)
    distances = np.asarray(jax.vmap(pusher.distance)(pusher_batch.state, pusher_batch.goal))
    np.testing.assert_allclose(distances, np.linalg.norm(offset, axis=-1), atol=1e-6)
    # the arm starts at rest near its rest pose, within its joint ranges
    arm = np.asarray(pusher_batch.state.q)[:, :7]
    low, high = (np.asarray(x)[:7] for x in pusher.system.dof.limit)
    assert np.all(np.abs(arm) <= pusher_lib.START_NOISE) and np.all((arm >= low) & (arm <= high))
    np.testing.assert_array_equal(np.asarray(pusher_batch.state.qd), 0.0)
    # the (invisible) goal marker sits at the goal
    marker = np.asarray(pusher_batch.state.x.pos)[:, pusher_lib.GOAL_LINK, :2]
    np.testing.assert_allclose(marker, goal, atol=1e-6)


def test_pusher_goal_is_the_object_at_the_goal_with_the_arm_at_rest(pusher, pusher_batch):
    goal_state = pusher_batch.goal.state
    np.testing.assert_array_equal(np.asarray(goal_state.q)[:, :7], 0.0)
    np.testing.assert_array_equal(np.asarray(goal_state.qd), 0.0)
    np.testing.assert_allclose(jax.vmap(pusher.position)(goal_state),
                               pusher_batch.goal.position, atol=1e-6)
    np.testing.assert_allclose(jax.vmap(pusher.observe)(goal_state), pusher_batch.goal.obs,
                               atol=1e-7)
    assert np.all(np.asarray(jax.vmap(pusher.success)(goal_state, pusher_batch.goal)))


def test_pusher_observation_layout(pusher, pusher_batch):
    obs = np.asarray(jax.vmap(pusher.observe)(pusher_batch.state))
    np.testing.assert_allclose(obs[:, :7], np.asarray(pusher_batch.state.q)[:, :7], atol=1e-7)
    np.testing.assert_array_equal(obs[:, 7:14], 0.0)  # at rest
    np.testing.assert_allclose(obs[:, 14:16], jax.vmap(pusher.position)(pusher_batch.state),
                               atol=1e-7)
    np.testing.assert_array_equal(obs[:, 16:], 0.0)


def test_pusher_observation_does_not_contain_the_goal(pusher, pusher_run):
    arm = (0.05, -0.05, 0.02, -0.03, 0.0, -0.02, 0.01)
    state_a = _pusher_state(pusher_run, arm, (0.35, -0.25), goal=(0.45, -0.05))
    state_b = _pusher_state(pusher_run, arm, (0.35, -0.25), goal=(0.55, 0.0))
    assert not np.allclose(np.asarray(state_a.x.pos), np.asarray(state_b.x.pos))
    np.testing.assert_array_equal(pusher.observe(state_a), pusher.observe(state_b))


@pytest.mark.parametrize("factor, reached", [(0.0, True), (0.9, True), (1.1, False)])
def test_pusher_success_on_constructed_states(pusher, pusher_run, pusher_batch, factor,
                                              reached):
    goal = jax.tree.map(lambda x: x[0], pusher_batch.goal)
    for angle in (0.0, 2.0, 4.0):
        offset = factor * pusher.success_threshold * np.array([np.cos(angle), np.sin(angle)])
        state = _pusher_state(pusher_run, np.zeros(7), goal.position + offset, goal.position)
        np.testing.assert_allclose(pusher.distance(state, goal),
                                   factor * pusher.success_threshold, atol=1e-6)
        assert bool(pusher.success(state, goal)) is reached


# ----------------------------------------------------------------------------- dynamics

REST_ARM = (0.05, -0.05, 0.02, -0.03, 0.04, -0.02, 0.01)


def test_pusher_step_clips_actions(pusher_run):
    big = jax.random.uniform(jax.random.key(1), (HORIZON, 7), minval=-3.0, maxval=3.0)
    args = (jnp.asarray(REST_ARM), jnp.array([0.3, -0.2]), jnp.array([0.45, -0.05]))
    assert _leaves_equal(pusher_run(*args, big), pusher_run(*args, jnp.clip(big, -1.0, 1.0)))


def test_pusher_at_rest_with_zero_action_stays_put_and_the_oracle_costs_are_finite(pusher_run):
    args = (jnp.asarray(REST_ARM), jnp.array([0.3, -0.2]), jnp.array([0.45, -0.05]))
    state, (states, costs, terminal) = pusher_run(*args, jnp.zeros((HORIZON, 7)))
    np.testing.assert_allclose(states.q[-1], state.q, atol=1e-5)
    assert _finite((costs, terminal))
    # at rest, the step costs are the start's distances (no control cost for zero actions)
    np.testing.assert_allclose(costs, costs[0], rtol=1e-5)
    np.testing.assert_allclose(terminal, 4.0 * costs[0], rtol=1e-5)


# A pose with the hand at the object's height, and the direction the hand sweeps in when the
# shoulder pans (+ torque): an object placed ahead of it gets pushed, one behind it does not.
SWEEP_ARM = (0.7146, 1.3463, 0.0, -1.741, 0.0, -0.01, 0.0)
SWEEP_DIRECTION = np.array([-0.61, 0.79]) / np.hypot(-0.61, 0.79)


@pytest.mark.parametrize("ahead", [True, False])
def test_pusher_hand_pushes_the_object_it_sweeps_into(pusher_run, ahead):
    probe = _pusher_state(pusher_run, SWEEP_ARM, (2.0, 2.0))  # the object out of the way
    hand = np.asarray(pusher_lib.hand_point(probe.x))
    assert abs(hand[2] - float(probe.x.pos[pusher_lib.OBJECT_LINK, 2])) < 0.05  # object height
    sign = 1.0 if ahead else -1.0
    obj = jnp.asarray(hand[:2] + sign * 0.3 * SWEEP_DIRECTION, jnp.float32)
    actions = jnp.zeros((HORIZON, 7)).at[:, 0].set(1.0)
    _, (states, _, _) = pusher_run(jnp.asarray(SWEEP_ARM), obj, jnp.asarray(pusher_lib.HOME),
                                   actions)
    end = jax.tree.map(lambda x: x[-1], states.x)
    hand_travel = np.linalg.norm(np.asarray(pusher_lib.hand_point(end))[:2] - hand[:2])
    assert hand_travel > 0.3  # the hand sweeps through where the object was
    moved = np.asarray(end.pos[pusher_lib.OBJECT_LINK, :2] - obj)
    if ahead:  # contacts work: pushed along, not passed through
        assert float(moved @ SWEEP_DIRECTION) > 0.05
    else:
        np.testing.assert_allclose(moved, 0.0, atol=1e-4)


# ----------------------------------------------------------------------------- oracle


def test_pusher_oracle_problem_costs(pusher, pusher_batch):
    episode = jax.tree.map(lambda x: x[3], pusher_batch)
    problem = pusher.oracle_problem(episode.state, episode.goal)
    assert isinstance(problem, planners.Problem)
    np.testing.assert_array_equal(problem.params, episode.goal.position)
    np.testing.assert_array_equal(problem.action_low, pusher.action_low)
    np.testing.assert_array_equal(problem.action_high, pusher.action_high)
    assert _leaves_equal(problem.init_state, episode.state)

    def hand_to_object(state):
        return np.linalg.norm(np.asarray(pusher_lib.hand_point(state.x))
                              - np.asarray(state.x.pos[pusher_lib.OBJECT_LINK]))

    # terminal cost: 4 × (object-goal distance + 0.5 × hand-object distance)
    at_goal = problem.terminal_cost(problem.params, episode.goal.state)
    np.testing.assert_allclose(at_goal, 4 * 0.5 * hand_to_object(episode.goal.state), rtol=1e-5)
    at_start = problem.terminal_cost(problem.params, episode.state)
    expected = 4 * (float(pusher.distance(episode.state, episode.goal))
                    + 0.5 * hand_to_object(episode.state))
    np.testing.assert_allclose(at_start, expected, rtol=1e-5)


@pytest.mark.slow
def test_pusher_mppi_on_the_oracle_keeps_or_lowers_the_cost_of_zero_actions(pusher, pusher_run):
    args = (jnp.asarray(REST_ARM), jnp.array([0.3, -0.2]), jnp.array([0.45, -0.05]))
    zeros = jnp.zeros((HORIZON, 7))
    state, (_, costs, terminal) = pusher_run(*args, zeros)
    zero_cost = float(jnp.sum(costs) + terminal)
    problem = pusher.oracle_problem(
        state, tasks.Goal(obs=jnp.zeros(18), position=args[2], state=None))
    plan = planners.mppi(problem, zeros, jax.random.key(0), num_samples=8, iterations=1)
    assert np.all(np.abs(np.asarray(plan.actions)) <= 1.0)
    assert not bool(plan.info["fallback"])
    assert np.isfinite(float(plan.cost)) and float(plan.cost) <= zero_cost * (1 + 1e-5)


# ----------------------------------------------------------------------------- exploration

PUSH_EPISODES = 8
PUSH_STEPS = 60


@pytest.fixture(scope="module")
def push_run(pusher):
    """Batched `(key [E], push [E] bool) -> (object xy [E, T+1, 2], actions [E, T, 7])`: episodes
    from the task's resets, driven by `PushPolicy` (every episode pushing) where `push`, else by
    the AR(1) random torques; one compile for both."""
    pushing = pusher_lib.PushPolicy(push_probability=1.0).bind(pusher)
    noise = data_lib.ExplorationPolicy().bind(pusher)

    def run(key, push):
        reset_key, init_key, step_key = jax.random.split(key, 3)
        state = pusher.reset(reset_key).state
        carry = (pushing.init(init_key, state), noise.init(init_key, state))

        def step(inner, inputs):
            state, (push_carry, noise_carry) = inner
            t, k = inputs
            push_carry, push_action = pushing(push_carry, k, state, t)
            noise_carry, noise_action = noise(noise_carry, k, state, t)
            action = jnp.where(push, push_action, noise_action)
            state = pusher.step(state, action)
            return (state, (push_carry, noise_carry)), (pusher.position(state), action)

        _, (xy, actions) = jax.lax.scan(step, (state, carry), (
            jnp.arange(PUSH_STEPS), jax.random.split(step_key, PUSH_STEPS)))
        return jnp.concatenate([pusher.position(state)[None], xy]), actions

    keys = jax.random.split(jax.random.key(11), PUSH_EPISODES)
    run = jax.jit(jax.vmap(run))
    return {kind: tuple(np.asarray(x) for x in run(keys, jnp.full(PUSH_EPISODES, kind == "push")))
            for kind in ("push", "random")}


def test_the_push_policy_moves_the_object_in_most_episodes_random_torques_seldom(push_run):
    moved = {}
    for kind, (xy, actions) in push_run.items():
        assert np.all(np.isfinite(xy)) and np.all(np.abs(actions) <= 1.0)
        assert actions.shape == (PUSH_EPISODES, PUSH_STEPS, 7)
        travel = np.linalg.norm(xy - xy[:, :1], axis=-1).max(axis=1)  # [E]
        moved[kind] = int(np.sum(travel > 0.02))
    assert moved["push"] >= 6, moved  # the hand comes down behind the object and pushes it
    assert moved["push"] >= moved["random"] + 3, moved


@pytest.mark.slow  # ~20 s (its own IK compile); the push policy's test needs working IK too
def test_reach_angles_find_a_pose_whose_hand_is_at_a_reachable_target(pusher):
    # The target: the hand of a known pose; inverse kinematics from the rest pose finds a pose
    # (not necessarily that one) with the hand there, inside the joint ranges.
    system = pusher.system
    q = jnp.zeros(system.q_size())
    pose = q.at[:7].set(jnp.array([0.3, 0.6, 0.0, -1.2, 0.0, -0.4, 0.0]))
    target = pusher_lib.hand_point_of_angles(system, pose)
    arm = jax.jit(lambda q, target: pusher_lib.reach_angles(system, q, target, 12))(q, target)
    reached = pusher_lib.hand_point_of_angles(system, q.at[:7].set(arm))
    assert float(jnp.linalg.norm(reached - target)) < 0.01, (reached, target)
    low, high = system.dof.limit
    assert np.all(np.asarray(arm) >= np.asarray(low[:7])) and np.all(
        np.asarray(arm) <= np.asarray(high[:7]))


def test_the_push_policy_checks_its_settings_and_its_task():
    policy = pusher_lib.PushPolicy()
    policy.validate()
    assert hash(policy) == hash(pusher_lib.PushPolicy())  # a static jit argument
    for bad in ({"kp": -1.0}, {"min_hold": 0}, {"push_probability": 1.5}, {"correlation": 1.0},
                {"behind": float("nan")}, {"min_hold": 9, "max_hold": 3}):
        with pytest.raises(ValueError, match=next(iter(bad)).split("_")[0]):
            pusher_lib.PushPolicy(**bad).validate()
    with pytest.raises(ValueError, match="pusher"):
        policy.bind(tasks.make("reacher"))


# ============================================================================= ant


@pytest.fixture(scope="module")
def ant_batch(ant):
    return jax.jit(jax.vmap(ant.reset))(jax.random.split(jax.random.key(0), BATCH))


def test_ant_reset_is_finite_and_draws_distinct_episodes(ant_batch):
    assert _finite(ant_batch)
    assert ant_batch.state.q.shape == (BATCH, 15)
    assert ant_batch.goal.obs.shape == (BATCH, 31)
    assert len({tuple(np.round(np.asarray(g), 6)) for g in ant_batch.goal.position}) == BATCH


def test_ant_starts_and_goals_are_at_opposite_ends_of_the_u(ant, ant_batch):
    start = np.asarray(jax.vmap(ant.position)(ant_batch.state))
    goal = np.asarray(ant_batch.goal.position)
    start_cell = np.array(ant_lib.cell_center(*ant_lib.START_CELL))
    goal_cell = np.array(ant_lib.cell_center(*ant_lib.GOAL_CELL))
    assert np.all(np.abs(start - start_cell) <= ant_lib.JITTER + 1e-6)
    assert np.all(np.abs(goal - goal_cell) <= ant_lib.JITTER + 1e-6)
    half = ant_lib.CELL / 2
    # both in the left column, the start in the top row and the goal in the bottom one
    assert np.all(start[:, 0] < -half) and np.all(goal[:, 0] < -half)
    assert np.all(start[:, 1] > half) and np.all(goal[:, 1] < -half)
    # the way round the wall is more than twice the straight line
    straight = np.linalg.norm(start - goal, axis=-1)
    around = np.asarray(jax.jit(jax.vmap(ant_lib.maze_distance))(jnp.asarray(start),
                                                                 jnp.asarray(goal)))
    assert np.all(around > 2 * straight)
    np.testing.assert_array_equal(np.asarray(ant_batch.state.qd), 0.0)


def test_ant_goal_is_the_ant_standing_at_the_goal(ant, ant_batch):
    goal_state = ant_batch.goal.state
    q = np.asarray(goal_state.q)
    np.testing.assert_allclose(q[:, :2], ant_batch.goal.position, atol=1e-6)
    np.testing.assert_allclose(q[:, 2], ant_lib.STAND_HEIGHT, atol=1e-6)
    np.testing.assert_allclose(q[:, 3:7], np.tile([1.0, 0, 0, 0], (BATCH, 1)), atol=1e-6)
    np.testing.assert_allclose(q[:, 7:], np.tile(np.asarray(ant.system.init_q)[7:], (BATCH, 1)))
    np.testing.assert_array_equal(np.asarray(goal_state.qd), 0.0)
    obs = np.asarray(ant_batch.goal.obs)
    np.testing.assert_allclose(obs, jax.vmap(ant.observe)(goal_state), atol=1e-7)
    # the observation's layout, at the goal: position, height, axes, joints, zero velocities
    np.testing.assert_allclose(obs[:, :2], ant_lib.POSITION_SCALE * q[:, :2], atol=1e-6)
    np.testing.assert_allclose(obs[:, 2], ant_lib.STAND_HEIGHT, atol=1e-6)
    np.testing.assert_allclose(obs[:, 3:9], np.tile([1.0, 0, 0, 0, 0, 1], (BATCH, 1)), atol=1e-6)
    np.testing.assert_allclose(obs[:, 9:17], q[:, 7:], atol=1e-6)
    np.testing.assert_array_equal(obs[:, 17:], 0.0)


@pytest.mark.parametrize("factor, reached", [(0.0, True), (0.9, True), (1.1, False)])
def test_ant_success_on_constructed_states(ant, ant_batch, factor, reached):
    episode = jax.tree.map(lambda x: x[0], ant_batch)
    for angle in (0.5, 2.5, 4.5):
        offset = factor * ant.success_threshold * jnp.array([np.cos(angle), np.sin(angle)])
        state = episode.goal.state  # the torso moved by `offset`: what success reads
        state = state.replace(x=state.x.replace(pos=state.x.pos.at[0, :2].add(offset)))
        np.testing.assert_allclose(ant.distance(state, episode.goal),
                                   factor * ant.success_threshold, atol=1e-5)
        assert bool(ant.success(state, episode.goal)) is reached


# ----------------------------------------------------------------------------- the maze


def test_maze_distance_known_answers():
    m = ant_lib.WALL_MARGIN
    wall_low, wall_high = ant_lib.inner_wall()
    c_top = np.array([wall_high[0] + m, wall_high[1] + m])
    c_bottom = np.array([wall_high[0] + m, wall_low[1] - m])
    start = np.array(ant_lib.cell_center(0, 0))
    goal = np.array(ant_lib.cell_center(2, 0))
    around = (np.linalg.norm(start - c_top) + np.linalg.norm(c_top - c_bottom)
              + np.linalg.norm(c_bottom - goal))
    corner = np.array(ant_lib.cell_center(2, 2))
    cases = [
        (start, goal, around),  # round the wall's open end
        (goal, start, around),  # symmetric
        (start, np.array(ant_lib.cell_center(0, 2)), 2 * ant_lib.CELL),  # along the top row
        (np.array(ant_lib.cell_center(0, 2)), corner, 2 * ant_lib.CELL),  # down the open column
        (start, corner, np.linalg.norm(start - c_top) + np.linalg.norm(c_top - corner)),
        # within the margin of the wall: straight out to the margin, then on
        (np.array([0.0, wall_high[1] + 0.25]), np.array([0.0, wall_high[1] + 1.0]), 0.75),
    ]
    p, g, expected = (np.array(c, np.float32) for c in zip(*cases, strict=True))
    distance = jax.jit(jax.vmap(ant_lib.maze_distance))
    np.testing.assert_allclose(distance(jnp.asarray(p), jnp.asarray(g)), expected, rtol=1e-5)
    # the first point to head for, from the start to the goal, is the wall's top corner
    _, toward = jax.jit(ant_lib.maze_path)(jnp.asarray(start), jnp.asarray(goal))
    np.testing.assert_allclose(toward, c_top, atol=1e-5)


def test_maze_distance_is_continuous_along_a_walk_round_the_wall():
    # torso positions on the centre line of the U, start to goal: the distance to the goal
    # changes without jumps (each step is 5 cm, so it changes by at most 5 cm)
    centre = [ant_lib.cell_center(r, c) for r, c in ((0, 0), (0, 2), (2, 2), (2, 0))]
    points = np.concatenate([np.linspace(a, b, 100, endpoint=False)
                             for a, b in zip(centre[:-1], centre[1:], strict=True)])
    goal = jnp.asarray(centre[-1], jnp.float32)
    d = np.asarray(jax.jit(jax.vmap(ant_lib.maze_distance, in_axes=(0, None)))(
        jnp.asarray(points, jnp.float32), goal))
    step = np.linalg.norm(np.diff(points, axis=0), axis=-1)
    assert np.all(np.abs(np.diff(d)) <= step + 1e-4)
    assert d[0] > 3 * ant_lib.CELL and d[-1] < 0.1


# ----------------------------------------------------------------------------- dynamics

RUN_STEPS = 180
RUN_BATCH = 4


@pytest.fixture(scope="module")
def ant_run(ant):
    """Batched `(xy [E, 2], velocity [E, 3], key [E], policy gain [E], random gain [E], goal
    [E, 2]) -> (torso xy [E, T+1, 2], actions [E, T, 8], oracle step costs [E, T])`.

    Each episode starts with the ant standing at xy (`AntMaze.init_state`, the torso moving
    at `velocity`) and steps the oracle problem's step (the true physics) with actions
    `policy gain × WaypointPolicy() + random gain × uniform[-1, 1]` for RUN_STEPS steps.
    """
    policy = ant_lib.WaypointPolicy()

    def run(xy, velocity, key, policy_gain, random_gain, goal):
        state = ant.init_state(xy, jnp.zeros(()), velocity=velocity)
        problem = ant.oracle_problem(
            state, tasks.Goal(obs=jnp.zeros(31), position=goal, state=None))
        init_key, step_key = jax.random.split(key)
        carry = policy.init(init_key, state)

        def step(inner, inputs):
            state, carry = inner
            t, k = inputs
            policy_key, random_key = jax.random.split(k)
            carry, action = policy(carry, policy_key, state, t)
            noise = jax.random.uniform(random_key, (8,), minval=-1.0, maxval=1.0)
            action = policy_gain * action + random_gain * noise
            state, cost = problem.step(problem.params, state, action)
            return (state, carry), (ant.position(state), action, cost)

        _, (xys, actions, costs) = jax.lax.scan(step, (state, carry), (
            jnp.arange(RUN_STEPS), jax.random.split(step_key, RUN_STEPS)))
        return jnp.concatenate([xy[None], xys]), actions, costs

    return jax.jit(jax.vmap(run))


def _ant_inputs(xy, velocity=None, policy_gain=0.0, random_gain=0.0, seed=0):
    xy = jnp.asarray(xy, jnp.float32)
    n = xy.shape[0]
    velocity = jnp.zeros((n, 3)) if velocity is None else jnp.asarray(velocity, jnp.float32)
    goal = jnp.tile(jnp.asarray(ant_lib.cell_center(*ant_lib.GOAL_CELL), jnp.float32), (n, 1))
    return (xy, velocity, jax.random.split(jax.random.key(seed), n),
            jnp.full((n,), policy_gain), jnp.full((n,), random_gain), goal)


def test_walls_stop_a_thrown_ant(ant_run):
    # Thrown at 5 m/s from the middle of the right column (no torques): at the outer wall, at
    # the inner wall and along the free column. The torso (radius 0.25) stops short of the
    # walls and bounces back; along the free column it slides farther than the walls let it.
    half, radius = 1.5 * ant_lib.CELL, 0.25
    start = np.array(ant_lib.cell_center(1, 2))
    velocity = [(5.0, 0.0, 0.0), (-5.0, 0.0, 0.0), (0.0, -5.0, 0.0), (0.0, 0.0, 0.0)]
    xy, actions, costs = ant_run(*_ant_inputs(np.tile(start, (RUN_BATCH, 1)), velocity))
    xy = np.asarray(xy)
    assert np.all(np.isfinite(xy)) and np.all(np.isfinite(np.asarray(costs)))
    np.testing.assert_array_equal(np.asarray(actions), 0.0)
    outer, inner, free = xy[0, :, 0], xy[1, :, 0], xy[2, :, 1]
    assert outer.max() < half - radius and outer[-1] < outer.max() - 0.05
    wall_right = ant_lib.inner_wall()[1][0]
    assert inner.min() > wall_right + radius and inner[-1] > inner.min() + 0.05
    travel = start[1] - free.min()
    assert travel > outer.max() - start[0] and travel > start[0] - inner.min()
    # left alone, the ant stands where it was put
    np.testing.assert_allclose(xy[3], np.tile(start, (RUN_STEPS + 1, 1)), atol=0.02)


def test_ant_oracle_problem_costs(ant, ant_batch):
    episode = jax.tree.map(lambda x: x[1], ant_batch)
    problem = ant.oracle_problem(episode.state, episode.goal)
    assert isinstance(problem, planners.Problem)
    np.testing.assert_array_equal(problem.params, episode.goal.position)
    np.testing.assert_array_equal(problem.action_low, ant.action_low)
    assert float(problem.terminal_cost(problem.params, episode.goal.state)) < 1e-5
    around = ant_lib.maze_distance(ant.position(episode.state), episode.goal.position)
    # upright at the start (a yaw only): the terminal cost is 4 × the way round the wall
    np.testing.assert_allclose(problem.terminal_cost(problem.params, episode.state),
                               4 * around, rtol=1e-5)


@pytest.mark.slow
def test_ant_oracle_rollout_is_finite_and_mppi_keeps_or_lowers_its_cost(ant, ant_batch):
    episode = jax.tree.map(lambda x: x[2], ant_batch)
    problem = ant.oracle_problem(episode.state, episode.goal)
    zeros = jnp.zeros((HORIZON, 8))
    _, costs, terminal = jax.jit(planners.rollout)(problem, zeros)
    zero_cost = float(jnp.sum(costs) + terminal)
    assert np.isfinite(zero_cost)
    plan = planners.mppi(problem, zeros, jax.random.key(0), num_samples=8, iterations=1)
    assert np.all(np.abs(np.asarray(plan.actions)) <= 1.0)
    assert not bool(plan.info["fallback"])
    assert float(plan.cost) <= zero_cost * (1 + 1e-5)


# ----------------------------------------------------------------------------- exploration


@pytest.fixture(scope="module")
def starts(ant_batch):
    return np.asarray(ant_batch.state.x.pos)[:RUN_BATCH, 0, :2]


@pytest.fixture(scope="module")
def policy_run(ant_run, starts):
    return ant_run(*_ant_inputs(starts, policy_gain=1.0, seed=7))


def test_policy_actions_are_finite_and_in_bounds_and_the_oracle_costs_finite(policy_run):
    xy, actions, costs = (np.asarray(x) for x in policy_run)
    assert np.all(np.isfinite(xy)) and np.all(np.isfinite(actions))
    assert np.all(np.isfinite(costs)) and np.all(costs >= 0.0)
    assert np.all(np.abs(actions) <= 1.0)
    assert actions.shape == (RUN_BATCH, RUN_STEPS, 8)


def test_policy_is_a_hashable_config_that_checks_its_settings():
    policy = ant_lib.WaypointPolicy()
    policy.validate()
    assert hash(policy) == hash(ant_lib.WaypointPolicy())  # a static jit argument
    for bad in ({"period": 0}, {"kp": -1.0}, {"smoothing": 1.0}, {"jitter": 1.5},
                {"action_noise": float("nan")}, {"rest_probability": 1.5}, {"rest_steps": -1},
                {"rest_steps": 2.5}, {"lift_lead": float("inf")}, {"push": -0.1}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            ant_lib.WaypointPolicy(**bad).validate()


def test_policy_walks_much_farther_than_random_torques(ant_run, starts, policy_run):
    # Random torques flail in place; the gait carries the ant metres through the maze.
    random_xy = np.asarray(ant_run(*_ant_inputs(starts, random_gain=1.0, seed=7))[0])
    policy_xy = np.asarray(policy_run[0])
    policy_reach = np.linalg.norm(policy_xy - policy_xy[:, :1], axis=-1).max(axis=1)
    random_reach = np.linalg.norm(random_xy - random_xy[:, :1], axis=-1).max(axis=1)
    assert policy_reach.mean() > 2.0, policy_reach
    assert policy_reach.mean() > 2 * random_reach.mean(), (policy_reach, random_reach)


def test_the_policy_rests_on_reaching_a_waypoint_then_walks_on(ant):
    # With rest_probability 1, reaching the waypoint starts `rest_steps` steps of PD toward the
    # rest pose (hips 0, ankles at REST_ANKLE, levelled), counted down one a step; a carry far
    # from its waypoint and not resting walks (a hip swings away from 0).
    policy = ant_lib.WaypointPolicy(rest_probability=1.0, rest_steps=5, action_noise=0.0)
    state = ant.init_state(jnp.asarray(ant_lib.cell_center(0, 2)), jnp.zeros(()))
    here = ant_lib.torso_xy(state)
    carry = policy.init(jax.random.key(0), state).replace(waypoint=here)
    step = jax.jit(policy)
    carry, action = step(carry, jax.random.key(1), state, 0)
    assert int(carry.rest_left) == 5
    assert not np.allclose(np.asarray(carry.waypoint), np.asarray(here))  # a new one drawn
    low_side = -ant_lib._inv_rotate(jnp.array([0.0, 0.0, 1.0]), state.x.rot[0])[:2]
    target = policy.rest_targets(low_side)
    joints = ant_lib._actuator_joints(ant.system)
    q, qd = state.q[7:15], state.qd[6:14]
    expected = np.clip(policy.kp * (target - q)[joints] - policy.kd * qd[joints], -1.0, 1.0)
    np.testing.assert_allclose(np.asarray(action), expected, atol=1e-6)
    np.testing.assert_allclose(np.asarray(target)[0::2], 0.0)  # hips straight
    np.testing.assert_allclose(np.abs(np.asarray(target)[1::2]), ant_lib.REST_ANKLE, atol=1e-3)
    for left in (4, 3, 2, 1, 0, 0):
        carry, _ = step(carry.replace(waypoint=here + 5.0), jax.random.key(2), state, 1)
        assert int(carry.rest_left) == left
    carry = policy.init(jax.random.key(0), state).replace(waypoint=here + 5.0)
    carry, action = step(carry, jax.random.key(1), state, 3)
    assert int(carry.rest_left) == 0
    assert not np.allclose(np.asarray(action), expected, atol=1e-3)  # not the rest pose


# ----------------------------------------------------------------------------- pixels

needs_renderer = pytest.mark.skipif(not hasattr(render, "render"),
                                    reason="hjepa.tasks.render is not written yet")


@needs_renderer
def test_pusher_pixels_show_the_object_but_not_the_goal_marker(pusher_run):
    task = tasks.make("pusher", "pixels", image_size=32)
    observe = jax.jit(task.observe)
    arm = np.zeros(7)
    here = observe(_pusher_state(pusher_run, arm, (0.35, -0.25), (0.45, -0.05)))
    moved_goal = observe(_pusher_state(pusher_run, arm, (0.35, -0.25), (0.6, 0.1)))
    moved_object = observe(_pusher_state(pusher_run, arm, (0.55, -0.15), (0.45, -0.05)))
    assert here.shape == (32, 32, 3) and here.dtype == jnp.uint8
    np.testing.assert_array_equal(here, moved_goal)
    assert not np.array_equal(np.asarray(here), np.asarray(moved_object))


@needs_renderer
def test_ant_pixels_show_the_maze_and_the_ant(ant_batch):
    task = tasks.make("ant_umaze", "pixels", image_size=32)
    observe = jax.jit(task.observe)
    start = observe(jax.tree.map(lambda x: x[0], ant_batch.state))
    goal = observe(jax.tree.map(lambda x: x[0], ant_batch.goal.state))
    assert start.shape == (32, 32, 3) and start.dtype == jnp.uint8
    # the walls frame the image, the inner wall fills the middle row's left two cells
    background = np.array(render.BACKGROUND)
    assert not np.any(np.all(np.asarray(start)[0] == background, axis=-1))
    assert not np.any(np.all(np.asarray(start)[16, 4:18] == background, axis=-1))
    assert not np.array_equal(np.asarray(start), np.asarray(goal))
