"""Push-T's data controller (`PushBlockPolicy`) and the peers' protocol
(`hjepa.tasks.trajectory_goals`): the controller moves the T in most episodes, and a
trajectory pair's start and goal are states `offset` steps apart on the controller's rollout
(one brax compile: the pairs drawn with their rollouts)."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from hjepa import tasks
from hjepa.tasks import policies
from hjepa.tasks import push_t as push_t_lib
from hjepa.tasks import trajectory_goals as tg

OFFSET, MAX_WARMUP, BUDGET = 10, 20, 30
NUM = 8


@pytest.fixture(scope="module")
def push_t():
    return tasks.make("push_t")


@pytest.fixture(scope="module")
def pairs_task(push_t):
    return tg.trajectory_goals(push_t, offset=OFFSET, budget=BUDGET, max_warmup=MAX_WARMUP)


@pytest.fixture(scope="module")
def drawn(pairs_task):
    """NUM pairs with the directed controller's rollouts [NUM, T+1] they came from and their
    start steps [NUM] (one brax compile)."""
    return jax.jit(jax.vmap(pairs_task.draw))(jax.random.split(jax.random.key(3), NUM))


def test_the_push_controller_moves_the_t_in_most_episodes(drawn):
    _, states, _ = drawn
    poses = np.asarray(states.q[..., 2:5])  # [N, T+1, 3]
    assert poses.shape == (NUM, MAX_WARMUP + OFFSET + 1, 3)
    moved = np.linalg.norm(poses[:, -1, :2] - poses[:, 0, :2], axis=-1)
    turned = np.abs(poses[:, -1, 2] - poses[:, 0, 2])
    # 30 steps (3 s) of pushing: the T's centre moves > 5 cm or it turns > 10 degrees in 6+ of 8
    assert np.sum((moved > 0.05) | (turned > np.radians(10))) >= 6, (moved, turned)
    assert np.all(np.isfinite(poses))
    # the pusher moves as the actions say: within its range, never faster than a full action
    # (0.39 m) per step plus the servo's overshoot
    pusher = np.asarray(states.q[..., :2])
    assert np.all(np.abs(pusher) <= push_t_lib.PUSHER_RANGE + 1e-3)
    assert np.all(np.linalg.norm(np.diff(pusher, axis=1), axis=-1) < 2 * push_t_lib.ACTION_SCALE)


def test_a_pair_is_two_states_offset_steps_apart_on_one_rollout(push_t, pairs_task, drawn):
    episodes, states, picks = drawn
    q, picks = np.asarray(states.q), np.asarray(picks)  # [N, T+1, 5], [N]
    assert np.all((picks >= 0) & (picks <= MAX_WARMUP))
    rows = np.arange(NUM)
    np.testing.assert_array_equal(np.asarray(episodes.state.q), q[rows, picks])
    np.testing.assert_array_equal(np.asarray(episodes.goal.state.q), q[rows, picks + OFFSET])
    # the rollout starts where the task's data start (its exploration start, at rest)
    np.testing.assert_array_equal(np.asarray(states.qd[:, 0]), 0.0)
    # the goal is the goal state's own observation and goal-space position
    np.testing.assert_allclose(np.asarray(episodes.goal.obs),
                               np.asarray(jax.vmap(push_t.observe)(episodes.goal.state)),
                               atol=1e-6)
    np.testing.assert_allclose(np.asarray(episodes.goal.position),
                               np.asarray(jax.vmap(push_t.position)(episodes.goal.state)),
                               atol=1e-6)
    # a start that meets its goal is kept only when no candidate moved: with the directed
    # controller, most pairs need the block moved
    met = np.asarray(jax.vmap(pairs_task.success)(episodes.state, episodes.goal))
    assert met.sum() <= NUM // 4


def test_the_wrapper_is_the_task_with_a_budget(push_t, pairs_task):
    assert pairs_task.episode_length == BUDGET
    assert (pairs_task.name, pairs_task.obs_shape, pairs_task.action_size) == (
        push_t.name, push_t.obs_shape, push_t.action_size)
    assert pairs_task.system is push_t.system  # attributes it does not set are the task's
    assert tg.trajectory_goals(push_t, offset=OFFSET, budget=BUDGET,
                               max_warmup=MAX_WARMUP) is pairs_task  # hashable, cached
    assert pairs_task.policy == push_t_lib.PushBlockPolicy(push_probability=1.0)


@pytest.mark.parametrize("bad", [dict(offset=0), dict(budget=-1), dict(max_warmup=1.5),
                                 dict(candidates=0)])
def test_bad_protocol_settings_are_refused(push_t, bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        tg.trajectory_goals(push_t, **bad)


def test_a_policy_of_another_task_or_a_wrapped_task_is_refused(push_t, pairs_task):
    with pytest.raises(ValueError, match="push_t"):
        tg.trajectory_goals(tasks.make("reacher"), push_t_lib.PushBlockPolicy())
    with pytest.raises(ValueError, match="its own episodes"):
        tg.trajectory_goals(pairs_task)
    with pytest.raises(ValueError, match="trajectory_goals task"):
        tg.trivial_share(push_t, jax.random.key(0), 4)


def test_push_block_settings_out_of_range_are_refused():
    for bad in (dict(standoff=-1.0), dict(min_hold=0), dict(min_hold=9, max_hold=5),
                dict(push_probability=1.5), dict(correlation=1.0)):
        with pytest.raises(ValueError):
            push_t_lib.PushBlockPolicy(**bad).validate()
    assert policies.default_policy("push_t") == push_t_lib.PushBlockPolicy()
    assert policies.default_policy("two_rooms") == policies.ExplorationPolicy()
    assert policies.default_policy("reacher") == policies.ExplorationPolicy()  # reach: opt-in
