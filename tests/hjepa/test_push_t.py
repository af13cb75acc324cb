"""Push-T (hjepa.tasks.push_t): the T's geometry and pose metric against hand-computed answers,
episodes that start clear and away from their goals, and a tiny oracle plan whose contacts
push the block toward its goal (one brax compile each for reset and for the planner)."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import planners
from hjepa import goal_space, tasks
from hjepa.tasks import push_t as push_t_lib
from hjepa.tasks import render


@pytest.fixture(scope="module")
def push_t():
    return tasks.make("push_t")


@pytest.fixture(scope="module")
def episodes(push_t):
    return jax.jit(jax.vmap(push_t.reset))(jax.random.split(jax.random.key(0), 16))


def test_the_t_is_the_published_shape_about_its_centroid():
    # bar 120 x 30 pixels over a 30 x 90 stem, 1/256 m per pixel; the body's origin is the
    # centroid of the two (areas 3600 and 2700): 40.71 pixels below the bar's top edge.
    pixel = 1 / 256
    assert push_t_lib.BAR_HALF == pytest.approx((60 * pixel, 15 * pixel))
    assert push_t_lib.STEM_HALF == pytest.approx((15 * pixel, 45 * pixel))
    centroid = (3600 * 15 + 2700 * 75) / 6300
    assert centroid == pytest.approx(40.714, abs=1e-3)
    assert push_t_lib.BAR_CENTER[1] == pytest.approx((centroid - 15) * pixel)
    assert push_t_lib.STEM_CENTER[1] == pytest.approx((centroid - 75) * pixel)
    # first moments about the origin cancel: the origin is the centroid
    bar_area, stem_area = 3600, 2700
    assert bar_area * push_t_lib.BAR_CENTER[1] + stem_area * push_t_lib.STEM_CENTER[1] == \
        pytest.approx(0.0, abs=1e-9)
    # and the built system holds these boxes and the 15-pixel disc (MuJoCo geom types:
    # 2 sphere, 6 box)
    system = push_t_lib.load_system()
    names = render.geom_names(system)
    bar, stem, pusher = (names.index(n) for n in ("bar", "stem", "pusher"))
    types = np.asarray(system.geom_type)
    assert (types[bar], types[stem], types[pusher]) == (6, 6, 2)
    size, pos = np.asarray(system.geom_size), np.asarray(system.geom_pos)
    np.testing.assert_allclose(size[bar, :2], push_t_lib.BAR_HALF, rtol=1e-6)
    np.testing.assert_allclose(size[stem, :2], push_t_lib.STEM_HALF, rtol=1e-6)
    np.testing.assert_allclose(pos[bar, :2], push_t_lib.BAR_CENTER, atol=1e-7)
    np.testing.assert_allclose(pos[stem, :2], push_t_lib.STEM_CENTER, atol=1e-7)
    assert size[pusher, 0] == pytest.approx(15 * pixel)


def test_pose_distance_is_each_error_over_its_tolerance():
    pose = jnp.array([0.1, -0.2, 0.3])
    here = push_t_lib.pose_position(pose)
    assert here.shape == (4,)
    np.testing.assert_allclose(here[2:], 0.15 * np.array([math.cos(0.3), math.sin(0.3)]),
                               rtol=1e-6)
    assert float(push_t_lib.pose_distance(here, here)) == pytest.approx(0.0, abs=1e-4)
    moved = push_t_lib.pose_position(pose.at[0].add(20 / 256))  # 20 pixels: one tolerance
    assert float(push_t_lib.pose_distance(moved, here)) == pytest.approx(1.0, rel=1e-4)
    turned = push_t_lib.pose_position(pose.at[2].add(math.pi / 9))  # one angle tolerance
    assert float(push_t_lib.pose_distance(turned, here)) == pytest.approx(1.0, rel=1e-4)
    # the larger error counts; angles wrap round (pi - 0.1 and -pi + 0.1 are 0.2 apart)
    both = push_t_lib.pose_position(jnp.array([0.1 + 40 / 256, -0.2, 0.3 + math.pi / 9]))
    assert float(push_t_lib.pose_distance(both, here)) == pytest.approx(2.0, rel=1e-4)
    a = push_t_lib.pose_position(jnp.array([0.0, 0.0, math.pi - 0.1]))
    b = push_t_lib.pose_position(jnp.array([0.0, 0.0, -math.pi + 0.1]))
    _, angle = push_t_lib.pose_errors(a, b)
    assert float(angle) == pytest.approx(0.2, abs=1e-5)


def test_a_pusher_inside_or_touching_the_t_is_not_clear_of_it():
    pose = jnp.array([0.2, 0.1, math.pi / 2])  # the T turned a quarter: its bar along y
    clear = jax.jit(push_t_lib.clear_of_block)
    assert not bool(clear(pose[:2], pose))  # the centroid
    # the bar's centre is 25.7 pixels "up" the T's y axis, which now points along -x
    bar_center = pose[:2] + jnp.array([-push_t_lib.BAR_CENTER[1], 0.0])
    assert not bool(clear(bar_center + jnp.array([0.0, 0.2]), pose))  # inside the bar
    assert bool(clear(pose[:2] + jnp.array([0.5, 0.0]), pose))  # far past the stem's end
    # just beyond the bar's outer face (half-thickness 15 pixels) by the radius + margin
    face = bar_center[0] - push_t_lib.BAR_HALF[1]
    edge = push_t_lib.PUSHER_RADIUS + 0.02
    assert bool(clear(jnp.array([face - edge - 1e-3, pose[1]]), pose))
    assert not bool(clear(jnp.array([face - edge + 1e-3, pose[1]]), pose))


def test_episodes_start_clear_of_the_block_and_away_from_their_goals(push_t, episodes):
    assert push_t.position_size == 4 and push_t.obs_shape == (11,)
    q = np.asarray(episodes.state.q)  # [E, 5]
    assert np.all(np.abs(q[:, 2:4]) <= push_t_lib.START_HALF_SIDE)
    assert np.all(np.abs(q[:, :2]) <= push_t_lib.PUSHER_RANGE)
    clear = jax.vmap(push_t_lib.clear_of_block)(episodes.state.q[:, :2],
                                               episodes.state.q[:, 2:5])
    assert np.all(np.asarray(clear))
    distance = np.asarray(jax.vmap(push_t.distance)(episodes.state, episodes.goal))
    assert np.all(distance >= 2.0) and not np.any(np.asarray(
        jax.vmap(push_t.success)(episodes.state, episodes.goal)))
    # the goal observation: the block at the goal pose, the pusher parked, at rest
    goal_obs = np.asarray(episodes.goal.obs)
    np.testing.assert_allclose(goal_obs[:, :2], np.tile(push_t_lib.PARK, (16, 1)), atol=1e-6)
    np.testing.assert_allclose(goal_obs[:, 6:], 0.0, atol=1e-6)
    goal_position = jax.vmap(push_t.position)(episodes.goal.state)
    np.testing.assert_allclose(goal_position, episodes.goal.position, atol=1e-5)
    obs = np.asarray(jax.vmap(push_t.observe)(episodes.state))  # [E, 11]
    np.testing.assert_allclose(obs[:, :4], q[:, :4], atol=1e-6)  # pusher xy, block xy
    np.testing.assert_allclose(obs[:, 4], np.cos(q[:, 4]), atol=1e-6)  # then the block's angle
    np.testing.assert_allclose(obs[:, 5], np.sin(q[:, 4]), atol=1e-6)
    # the evaluation's distance of positions is the task's distance of states
    np.testing.assert_allclose(
        push_t.position_distance(jax.vmap(push_t.position)(episodes.state),
                                 episodes.goal.position), distance, rtol=1e-5)


def test_a_tiny_oracle_plan_brings_the_block_toward_its_goal(push_t):
    # The T upside down (its bar below, its lower face at y = -0.159), the pusher just below
    # the bar's middle, the goal the block 0.15 m further up at the same angle. The plan: the
    # cheapest under the oracle problem's cost (`planners.total_cost`) of 64 random 8-step
    # sequences and doing nothing. Its contacts must push the block most of the way there.
    # (Random shooting, not MPPI: one compile of the physics instead of three.)
    pose = jnp.array([0.0, 0.0, math.pi])
    state = jax.jit(push_t.init_state)(jnp.array([0.0, -0.25]), pose)  # eagerly: 15 s
    goal = push_t_lib.pose_position(pose.at[1].add(0.15))
    problem = push_t.oracle_problem(state, tasks.Goal(obs=None, position=goal, state=None))

    @jax.jit
    def score(actions):  # [H, 2] -> (total cost [], block's final position [4])
        states, costs, terminal = planners.rollout(problem, actions)  # leading axis H
        return jnp.sum(costs) + terminal, push_t.position(jax.tree.map(lambda x: x[-1], states))

    candidates = jnp.concatenate([jnp.zeros((1, 8, 2)), jnp.clip(
        0.5 * jax.random.normal(jax.random.key(0), (64, 8, 2)), -1.0, 1.0)])
    costs, reached = (np.asarray(x) for x in jax.vmap(score)(candidates))
    assert np.all(np.isfinite(costs)) and np.all(np.isfinite(reached))
    best = int(np.argmin(costs))
    before = float(push_t_lib.pose_distance(push_t.position(state), goal))
    after = float(push_t_lib.pose_distance(reached[best], goal))
    idle = float(push_t_lib.pose_distance(reached[0], goal))
    assert before == pytest.approx(0.15 * 256 / 20, rel=1e-3)
    assert idle == pytest.approx(before, rel=1e-3)  # doing nothing leaves the block be
    assert after < 0.5 * before, (before, after)  # the contacts pushed it, the right way
    assert reached[best][1] > 0.05  # it went up, by more than a third of the way
    assert costs[best] < costs[0]


def test_goal_points_of_another_size_are_refused(push_t):
    with pytest.raises(ValueError, match=r"shape \(4,\), got shape \(2,\)"):
        goal_space.check_goal(jnp.zeros(2), push_t.position_size)
    with pytest.raises(ValueError, match="finite"):
        goal_space.check_goal(jnp.array([0.0, 0.0, jnp.nan, 0.15]), push_t.position_size)


def test_pixels_show_the_block_and_the_pusher(episodes):
    pixels = tasks.make("push_t", obs="pixels")  # 64: the pusher's disc is 3.75 pixels wide
    image = np.asarray(jax.jit(pixels.observe)(jax.tree.map(lambda x: x[0], episodes.state)))
    assert image.shape == (64, 64, 3) and image.dtype == np.uint8
    colours = {tuple(c) for c in image.reshape(-1, 3)}
    rgba = render.rgba_colors(pixels.system)
    names = render.geom_names(pixels.system)
    for name in ("bar", "pusher"):  # each drawn in its own colour somewhere
        colour = rgba[names.index(name)]  # uint8 [3]
        assert any(np.abs(np.subtract(c, colour, dtype=int)).max() <= 1 for c in colours), name
