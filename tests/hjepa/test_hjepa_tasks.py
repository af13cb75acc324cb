"""hjepa.tasks: the registry and the reacher task (kinematics, goals, success, dynamics)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import planners
from hjepa import tasks
from hjepa.tasks import reacher as reacher_lib

# ----------------------------------------------------------------------------- registry


def test_make_unknown_name_names_the_choices_and_what_came():
    with pytest.raises(ValueError) as info:
        tasks.make("nosuchtask")
    message = str(info.value)
    assert "reacher" in message
    assert "nosuchtask" in message


def test_make_unknown_obs_kind_names_the_choices_and_what_came():
    with pytest.raises(ValueError) as info:
        tasks.make("reacher", obs="rgb")
    message = str(info.value)
    assert "state" in message and "pixels" in message
    assert "rgb" in message


def test_names_lists_reacher():
    assert "reacher" in tasks.names()


def test_make_caches_the_task_for_the_same_call():
    # A task is a static jit argument hashed by identity: the same call must give the same object.
    assert tasks.make("reacher", "state") is tasks.make("reacher", "state")


def test_make_returns_one_task_whatever_the_call_form():
    task = tasks.make("reacher", "state")
    assert tasks.make("reacher") is task
    assert tasks.make(name="reacher", obs="state") is task


def test_reacher_attributes(reacher):
    assert reacher.name == "reacher"
    assert reacher.obs_kind == "state"
    assert reacher.obs_shape == (5,)
    assert reacher.action_size == 2
    np.testing.assert_array_equal(reacher.action_low, [-1.0, -1.0])
    np.testing.assert_array_equal(reacher.action_high, [1.0, 1.0])
    assert reacher.success_threshold == pytest.approx(0.02)


# ----------------------------------------------------------------------------- kinematics


@pytest.mark.parametrize(
    "q, tip",
    [
        ((0.0, 0.0), (0.21, 0.0)),
        ((np.pi / 2, 0.0), (0.0, 0.21)),
        ((0.0, np.pi / 2), (0.1, 0.11)),
        ((np.pi, 0.0), (-0.21, 0.0)),
        ((0.0, np.pi), (-0.01, 0.0)),
        ((-np.pi / 2, np.pi / 2), (0.11, -0.1)),
    ],
)
def test_fingertip_forward_kinematics(q, tip):
    np.testing.assert_allclose(reacher_lib.fingertip(jnp.array(q)), tip, atol=1e-6)


def test_fingertip_batches_and_ignores_extra_coordinates():
    # q [..., >=2]: the arm's two angles first, then e.g. the target's slide joints.
    q = jnp.array([[0.0, 0.0, 0.3, -0.2], [np.pi / 2, 0.0, 0.1, 0.1]])
    np.testing.assert_allclose(reacher_lib.fingertip(q), [[0.21, 0.0], [0.0, 0.21]], atol=1e-6)


# ----------------------------------------------------------------------------- episodes


def _leaves_equal(a, b) -> bool:
    return all(
        np.array_equal(np.asarray(x), np.asarray(y))
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    )


# Eager brax calls are slow (op by op); compile reset once alone and once batched over 16 keys.
BATCH = 16


@pytest.fixture(scope="module")
def reset(reacher):
    return jax.jit(reacher.reset)


@pytest.fixture(scope="module")
def reset_batch(reacher):
    return jax.jit(jax.vmap(reacher.reset))


@pytest.fixture(scope="module")
def episode(reset):
    return reset(jax.random.key(3))


def test_reset_is_deterministic_per_key(reset):
    a = reset(jax.random.key(7))
    b = reset(jax.random.key(7))
    c = reset(jax.random.key(8))
    assert _leaves_equal(a, b)
    assert not np.array_equal(np.asarray(a.state.q), np.asarray(c.state.q))
    assert not np.array_equal(np.asarray(a.goal.position), np.asarray(c.goal.position))


def test_reset_vmaps_over_keys(reset, reset_batch):
    keys = jax.random.split(jax.random.key(0), BATCH)
    batch = reset_batch(keys)
    assert batch.state.q.shape == (BATCH, 4)
    assert batch.goal.obs.shape == (BATCH, 5)
    assert batch.goal.position.shape == (BATCH, 2)
    for i in (0, 5, BATCH - 1):
        one = reset(keys[i])
        for x, y in zip(jax.tree.leaves(one), jax.tree.leaves(batch), strict=True):
            np.testing.assert_allclose(np.asarray(y)[i], np.asarray(x), rtol=1e-6, atol=1e-6)
    # distinct keys, distinct episodes
    assert len({tuple(np.round(np.asarray(q), 6)) for q in batch.state.q}) == BATCH


def test_reset_draws_starts_and_goals_at_rest_within_limits(reset_batch):
    batch = reset_batch(jax.random.split(jax.random.key(1), BATCH))
    for q, qd in ((batch.state.q, batch.state.qd), (batch.goal.state.q, batch.goal.state.qd)):
        q = np.asarray(q)
        assert np.all(np.abs(q[:, 0]) <= np.pi)
        assert np.all(np.abs(q[:, 1]) <= reacher_lib.ELBOW_LIMIT)
        np.testing.assert_array_equal(np.asarray(qd), 0.0)


def test_goal_position_is_the_goal_states_fingertip(reacher, reset_batch):
    batch = reset_batch(jax.random.split(jax.random.key(2), BATCH))
    tips = reacher_lib.fingertip(batch.goal.state.q)
    np.testing.assert_allclose(batch.goal.position, tips, atol=1e-6)
    # the start state's (invisible) target sits at the goal
    np.testing.assert_allclose(np.asarray(batch.state.q)[:, 2:], batch.goal.position, atol=1e-6)


def test_goal_obs_is_the_observation_of_the_goal_state(reacher, episode):
    np.testing.assert_allclose(episode.goal.obs, reacher.observe(episode.goal.state), atol=1e-7)
    assert episode.goal.obs.shape == reacher.obs_shape


def test_observation_layout(reacher, episode):
    q = np.asarray(episode.state.q)
    expected = [np.cos(q[0]), np.sin(q[0]), q[1], 0.0, 0.0]  # at rest: zero velocities
    np.testing.assert_allclose(reacher.observe(episode.state), expected, atol=1e-6)


def test_observation_does_not_contain_the_goal(reacher):
    # Same start configuration of the arm, two different targets: same observation.
    from brax.generalized import pipeline

    sys = reacher_lib.load_system("generalized")
    init = jax.jit(lambda q: pipeline.init(sys, q, jnp.zeros(4)))
    arm = jnp.array([0.4, -1.2])
    state_a = init(jnp.concatenate([arm, jnp.array([0.1, 0.05])]))
    state_b = init(jnp.concatenate([arm, jnp.array([-0.15, 0.12])]))
    # the physics states do differ (the target body is elsewhere) ...
    assert not np.allclose(np.asarray(state_a.x.pos), np.asarray(state_b.x.pos))
    # ... but the observation does not see it
    np.testing.assert_array_equal(reacher.observe(state_a), reacher.observe(state_b))


# ----------------------------------------------------------------------------- success


def _arm_at(episode, angles):
    """The episode's start state with the arm's angles replaced (the rest untouched)."""
    state = episode.state
    return state.replace(q=state.q.at[:2].set(jnp.asarray(angles, state.q.dtype)))


@pytest.mark.parametrize(
    "offset, reached",
    [
        ((0.01, 0.0), True),
        ((0.0, -0.01), True),
        ((0.006, 0.008), True),  # |offset| = 0.01
        ((0.03, 0.0), False),
        ((-0.018, 0.024), False),  # |offset| = 0.03
    ],
)
def test_success_on_constructed_states(reacher, episode, offset, reached):
    state = _arm_at(episode, (0.0, 0.0))  # fingertip at (0.21, 0)
    goal = episode.goal.replace(position=jnp.array([0.21, 0.0]) + jnp.array(offset))
    np.testing.assert_allclose(reacher.distance(state, goal), np.hypot(*offset), atol=1e-6)
    assert bool(reacher.success(state, goal)) is reached


def test_the_goal_state_reaches_its_goal(reacher, episode):
    assert float(reacher.distance(episode.goal.state, episode.goal)) < 1e-6
    assert bool(reacher.success(episode.goal.state, episode.goal))


# ----------------------------------------------------------------------------- dynamics


@pytest.fixture(scope="module")
def step(reacher):
    return jax.jit(reacher.step)


def test_step_clips_actions(step, episode):
    for big, clipped in (([5.0, 5.0], [1.0, 1.0]), ([-7.0, 0.3], [-1.0, 0.3])):
        a = step(episode.state, jnp.array(big))
        b = step(episode.state, jnp.array(clipped))
        assert _leaves_equal(a, b)


def test_step_moves_the_arm_and_stays_finite(reacher, step, episode):
    actions = jax.random.uniform(jax.random.key(0), (25, 2), minval=-3.0, maxval=3.0)
    state = episode.state
    for action in actions:
        state = step(state, action)
        assert all(bool(jnp.all(jnp.isfinite(x))) for x in (state.q, state.qd))
        assert np.all(np.isfinite(np.asarray(reacher.observe(state))))
    assert not np.allclose(np.asarray(state.q[:2]), np.asarray(episode.state.q[:2]), atol=1e-3)
    # the target does not move: the goal stays where it was drawn
    np.testing.assert_allclose(state.q[2:], episode.state.q[2:], atol=1e-5)


def test_step_at_rest_with_zero_action_stays_put(step, episode):
    state = step(episode.state, jnp.zeros(2))
    np.testing.assert_allclose(state.q, episode.state.q, atol=1e-5)


# ----------------------------------------------------------------------------- oracle


def test_oracle_problem_targets_the_goal_fingertip(reacher, episode):
    problem = reacher.oracle_problem(episode.state, episode.goal)
    assert isinstance(problem, planners.Problem)
    np.testing.assert_array_equal(problem.params, episode.goal.position)
    np.testing.assert_array_equal(problem.action_low, reacher.action_low)
    np.testing.assert_array_equal(problem.action_high, reacher.action_high)
    assert _leaves_equal(problem.init_state, episode.state)
    # terminal cost: weighted fingertip distance (zero velocities at reset)
    at_goal = problem.terminal_cost(problem.params, episode.goal.state)
    at_start = problem.terminal_cost(problem.params, episode.state)
    assert float(at_goal) < 1e-5
    distance = float(reacher.distance(episode.state, episode.goal))
    assert distance > 0.01
    np.testing.assert_allclose(at_start, 4.0 * distance, rtol=1e-5)


def test_the_cached_system_is_concrete_when_first_built_under_jit(reacher):
    # load_system is an lru_cache that outlives any trace: if its first call happens inside
    # jax.jit (as in data.collect_episodes), the cached System must still hold concrete arrays,
    # or every later trace fails with UnexpectedTracerError.
    reacher_lib.load_system.cache_clear()
    try:
        # a fresh function, so that jit traces it (and builds the system) under a trace now
        jax.jit(lambda k: reacher.reset(k).state.q).lower(jax.random.key(0))
        system = reacher_lib.load_system("generalized")
        assert not any(isinstance(x, jax.core.Tracer) for x in jax.tree.leaves(system))
        jax.jit(lambda k: reacher.reset(k).goal.obs).lower(jax.random.key(1))  # a later trace
    finally:
        reacher_lib.load_system.cache_clear()
