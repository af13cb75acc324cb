"""Hierarchical planning (planners.hierarchical) and the hierarchical JEPA (hjepa.hierarchy).

The planner is checked on a hand-built wall problem with exact (not learned) dynamics at both
levels: the goal lies behind a wall with a gap, so a flat planner with the same budget stalls
at the wall while the hierarchy plans the detour over macro-actions and follows its subgoals.
"""

from __future__ import annotations

import dataclasses
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import planners
from hjepa import evaluate as evaluate_lib
from hjepa import hierarchy, losses
from hjepa import train as train_lib
from hjepa.model import ModelConfig

# ----------------------------------------------------------------------------- a wall world

STEP = 0.1  # a primitive action [-1, 1]^2 moves at most this far per axis
CHUNK = 8  # primitive steps per macro-action
GAP_Y = 0.0  # the wall x = 0 is open above this height
START = jnp.array([-0.5, -0.5])
GOAL = jnp.array([0.5, -0.5])


def move(position, displacement):
    """Moves by `displacement` [2] unless the segment crosses the wall x = 0 below GAP_Y."""
    target = position + displacement
    crosses = (position[0] < 0) != (target[0] < 0)
    dx = jnp.where(jnp.abs(displacement[0]) > 1e-9, displacement[0], 1e-9)
    y_at_wall = position[1] + (-position[0] / dx) * displacement[1]
    return jnp.where(crosses & (y_at_wall < GAP_Y), position, target)


def distance(position, goal):
    return jnp.sqrt(jnp.sum((position - goal) ** 2) + 1e-12)


@dataclasses.dataclass(frozen=True)
class WallStep:
    """One action of a level: a move of at most `scale` per axis; cost: distance to goal."""

    scale: float

    def __call__(self, params, position, action):
        position = move(position, self.scale * action)
        return position, distance(position, params["goal"])


@dataclasses.dataclass(frozen=True)
class WallTerminal:
    weight: float = 4.0

    def __call__(self, params, position):
        return self.weight * distance(position, params["goal"])


def env_step(env_params, position, action):
    del env_params
    return move(position, STEP * jnp.clip(action, -1.0, 1.0))


def observe_both(level_params, position):
    del level_params
    return (position, position)


def wall_problem(scale: float, start=START) -> planners.Problem:
    return planners.Problem(step=WallStep(scale), terminal_cost=WallTerminal(),
                            params={"goal": GOAL}, init_state=start,
                            action_low=-jnp.ones(2), action_high=jnp.ones(2))


HIGH = dict(num_samples=128, iterations=4, noise_std=0.7, temperature=0.05)
LOW = dict(num_samples=64, iterations=4, noise_std=0.5, temperature=0.05)
HIGH_H, LOW_H = 4, 8  # macro-actions (32 primitive steps) and primitive steps
STEPS = 40


def test_hierarchy_follows_subgoals_past_a_wall_where_flat_planning_stalls():
    # pinned seed; the detour takes 6 steps up, then 10 across and down (about 20 steps)
    levels = (wall_problem(STEP * CHUNK), wall_problem(STEP))
    init = (jnp.zeros((HIGH_H, 2)), jnp.zeros((LOW_H, 2)))
    result = planners.hierarchical_mpc(
        levels, init, jax.random.key(1), env_step=env_step, env_params=(), env_state=START,
        num_steps=STEPS, spans=(CHUNK, 1), observe=observe_both, planner_options=(HIGH, LOW),
        record=lambda position: position)
    distances = jax.vmap(distance, in_axes=(0, None))(result.records, GOAL)
    assert float(jnp.min(distances)) < 0.1  # reached the goal
    assert float(distances[-1]) < 0.2  # and stayed near it (MPPI's noise jitters it)
    assert bool(jnp.all(jnp.abs(result.actions) <= 1.0))
    # the same budget per step, flat: samples x horizon x iterations
    budget = HIGH["num_samples"] * HIGH_H * 4 + LOW["num_samples"] * LOW_H * 4
    for horizon in (8, 16):
        flat = planners.mpc(wall_problem(STEP), jnp.zeros((horizon, 2)), jax.random.key(1),
                            env_step=env_step, env_params=(), env_state=START, num_steps=STEPS,
                            planner_options=dict(LOW, num_samples=budget // (horizon * 4)),
                            record=lambda position: position)
        # stalls at the wall: never gets past x = 0
        assert float(distance(flat.final_state, GOAL)) > 0.45, horizon
        assert float(jnp.max(flat.records[:, 0])) < 0.0, horizon


def test_hierarchical_plan_hands_the_first_predicted_state_down_as_subgoal():
    levels = (wall_problem(STEP * CHUNK), wall_problem(STEP))
    init = (jnp.zeros((HIGH_H, 2)), jnp.zeros((LOW_H, 2)))
    plan = planners.hierarchical_plan(levels, init, jax.random.key(1),
                                      planner_options=(HIGH, LOW))
    first = move(START, STEP * CHUNK * plan.plans[0].actions[0])
    np.testing.assert_allclose(plan.subgoals[0], first, atol=1e-6)
    # the low plan's cost is measured against the subgoal, not the final goal
    low = levels[1].replace(params={"goal": plan.subgoals[0]})
    np.testing.assert_allclose(plan.cost, planners.total_cost(low, plan.actions), rtol=1e-5)
    assert plan.actions.shape == (LOW_H, 2)


def test_one_level_is_flat_planning():
    problem = wall_problem(STEP)
    init = jnp.zeros((LOW_H, 2))
    key = jax.random.key(2)
    plan = planners.hierarchical_plan((problem,), (init,), key, planner_options=LOW)
    flat = planners.mppi(problem, init, jax.random.split(key, 1)[0], **LOW)
    np.testing.assert_allclose(plan.actions, flat.actions, atol=1e-6)
    assert plan.subgoals == ()


def test_hierarchical_mpc_compiles_once_for_new_starts():
    levels = (wall_problem(STEP * CHUNK), wall_problem(STEP))
    init = (jnp.zeros((HIGH_H, 2)), jnp.zeros((LOW_H, 2)))
    traces = {"count": 0}

    def counting_env_step(env_params, position, action):
        traces["count"] += 1  # runs only when traced
        return env_step(env_params, position, action)

    for start in ([-0.5, -0.5], [-0.3, 0.2]):
        levels = tuple(p.replace(init_state=jnp.asarray(start)) for p in levels)
        planners.hierarchical_mpc(
            levels, init, jax.random.key(3), env_step=counting_env_step, env_params=(),
            env_state=jnp.asarray(start), num_steps=4, spans=(CHUNK, 1), observe=observe_both,
            planner_options=(HIGH, LOW))
    assert traces["count"] == 1


@pytest.mark.parametrize("kwargs, match", [
    (dict(levels=()), "levels: expected a non-empty sequence"),
    (dict(init_actions=(jnp.zeros((6, 2)),)), "init_actions: expected one"),
    (dict(subgoal_step=6), "subgoal_step: expected less than the horizon of level 0"),
    (dict(spans=(8, 2)), "spans: expected 2 positive integers"),
    (dict(spans=(6, 4, 1)), "spans: expected 2 positive integers"),
    (dict(planner_options=(HIGH,)), "planner_options: expected one entry per level"),
])
def test_hierarchical_mpc_bad_input(kwargs, match):
    args = dict(levels=(wall_problem(STEP * CHUNK), wall_problem(STEP)),
                init_actions=(jnp.zeros((6, 2)), jnp.zeros((8, 2))), key=jax.random.key(0),
                env_step=env_step, env_params=(), env_state=START, num_steps=4, spans=(8, 1),
                observe=observe_both)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        planners.hierarchical_mpc(**args)


# ----------------------------------------------------------------------------- the model

BASE = ModelConfig(obs_shape=(2,), action_size=2, latent_size=8, encoder_hidden=(32,),
                   predictor_hidden=(32,))
LEVEL = hierarchy.LevelConfig(chunk=4, macro_size=2, predictor_hidden=(32,),
                              chunk_hidden=(32,))


def test_config_spans_sizes_and_round_trip():
    config = hierarchy.HierarchyConfig(BASE, (LEVEL, dataclasses.replace(LEVEL, chunk=3,
                                                                           macro_size=3)))
    assert config.num_levels == 3
    assert [config.span(level) for level in (1, 2, 3)] == [1, 4, 12]
    assert [config.action_size_at(level) for level in (1, 2, 3)] == [2, 2, 3]
    assert hierarchy.config_from_dict(config.to_dict()) == config
    assert hierarchy.config_from_dict(BASE.to_dict()) == BASE
    config.check_window(24)
    with pytest.raises(ValueError, match="window: expected a multiple of the top level's span"):
        config.check_window(16)


def test_macro_actions_nest_and_stay_in_bounds():
    config = hierarchy.HierarchyConfig(BASE, (LEVEL, dataclasses.replace(LEVEL, chunk=3)))
    params = hierarchy.init(config, jax.random.key(0))
    actions = jax.random.uniform(jax.random.key(1), (5, 12, 2), minval=-1, maxval=1)
    top = hierarchy.encode_macro(config, params, 3, actions)  # [5, M3]
    assert top.shape == (5, 2)
    # level 3's code is its chunk encoder applied to level 2's codes of each 4-step chunk
    below = hierarchy.encode_macro(config, params, 2, actions.reshape(5, 3, 4, 2))
    by_hand = hierarchy._chunk_encoder(config, 3).apply(
        params["levels"][1]["chunk_encoder"], below)
    np.testing.assert_allclose(top, by_hand, atol=1e-6)
    assert bool(jnp.all(jnp.abs(top) < 1.0))


@pytest.mark.parametrize("make, match", [
    (lambda: hierarchy.make_config(BASE, num_levels=0), "num_levels: expected a positive"),
    (lambda: hierarchy.make_config(BASE, chunk=1), r"levels\[0\]\.chunk .*at least 2"),
    (lambda: hierarchy.make_config(BASE, macro_size=0), r"levels\[0\]\.macro_size"),
    (lambda: hierarchy.HierarchyConfig(BASE).span(3), r"level: expected an integer in \[1, 2\]"),
])
def test_config_bad_input(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_macro_action_size_mismatch_with_the_trained_model_is_refused():
    config = hierarchy.HierarchyConfig(BASE, (LEVEL,))
    params = hierarchy.init(config, jax.random.key(0))
    problems = hierarchy.problems(config, params, jnp.zeros(2), jnp.ones(2), -jnp.ones(2),
                                  jnp.ones(2))
    assert problems[0].action_size == LEVEL.macro_size and problems[1].action_size == 2
    # a macro plan of 5 dimensions for a level-2 macro-action of 2
    with pytest.raises(ValueError, match=r"init_actions: expected shape \[H, 2\].*got \(3, 5\)"):
        planners.hierarchical_plan(problems, (jnp.zeros((3, 5)), jnp.zeros((4, 2))),
                                   jax.random.key(0))


def _random_walks(key, episodes=64, length=33):
    """Point-mass random walks: obs [N, T+1, 2] positions, actions [N, T, 2] (x' = x + 0.1a)."""
    start_key, action_key = jax.random.split(key)
    actions = jax.random.uniform(action_key, (episodes, length - 1, 2), minval=-1, maxval=1)
    start = jax.random.uniform(start_key, (episodes, 1, 2), minval=-1, maxval=1)
    obs = jnp.concatenate([start, start + 0.1 * jnp.cumsum(actions, axis=1)], axis=1)
    return obs, actions


def test_level_two_prediction_error_falls_in_training():
    config = hierarchy.HierarchyConfig(BASE, (LEVEL,), base_window=4)
    train = train_lib.TrainConfig(steps=300, batch_size=32, window=8, log_every=100)
    obs, actions = _random_walks(jax.random.key(0))
    mean, std = obs.reshape(-1, 2).mean(0), obs.reshape(-1, 2).std(0)
    state = train_lib.init_state(config, train, mean, std)
    chunks = []
    for _ in range(3):
        state, metrics = train_lib.train_chunk(state, obs, actions, model_config=config,
                                               config=train, num_steps=100)
        chunks.append({k: float(v) for k, v in metrics.items()})
    assert all(np.isfinite(c["loss"]) for c in chunks)
    assert chunks[-1]["level2_prediction"] < 0.5 * chunks[0]["level2_prediction"]
    assert chunks[-1]["level2_macro_std"] > 0.1  # macro-actions did not collapse
    assert chunks[-1]["latent_std_min"] > 0.1


def test_loss_on_one_level_equals_the_flat_loss():
    config = hierarchy.HierarchyConfig(BASE, (), base_window=4)
    obs, actions = _random_walks(jax.random.key(1), episodes=8, length=5)
    params = hierarchy.init(config, jax.random.key(2))
    loss, _ = hierarchy.loss(params, config, losses.LossConfig(), obs, actions)
    flat, _ = train_lib.loss_fn(params["base"], BASE, losses.LossConfig(), obs, actions)
    np.testing.assert_allclose(loss, flat, rtol=1e-6)


def test_chunk_length_that_does_not_match_the_model_is_refused():
    config = hierarchy.HierarchyConfig(BASE, (LEVEL,))
    params = hierarchy.init(config, jax.random.key(0))
    with pytest.raises(ValueError, match=r"actions: level 2 encodes chunks of 4 primitive"):
        hierarchy.encode_macro(config, params, 2, jnp.zeros((3, 8, 2)))


def test_a_macro_action_longer_than_the_episode_is_refused():
    from hjepa.tasks import make

    task = make("two_rooms")
    config = hierarchy.HierarchyConfig(BASE, (LEVEL,))
    with pytest.raises(ValueError, match=r"top level's span \(4 steps .*\(3 steps\)"):
        evaluate_lib.hierarchical_episode_fn(task, config, planner=planners.mppi, options={},
                                             horizons=(2, 2), num_steps=3)


def test_fit_refuses_a_window_the_levels_cannot_split(tiny_dataset, tmp_path):
    base = ModelConfig(obs_shape=(5,), action_size=2, latent_size=8, encoder_hidden=(16,),
                       predictor_hidden=(16,))
    config = hierarchy.HierarchyConfig(base, (LEVEL,), base_window=2)
    train = train_lib.TrainConfig(steps=2, batch_size=4, window=6)
    with pytest.raises(ValueError, match=r"window: expected a multiple of the top level's span"):
        train_lib.fit(config, train, tiny_dataset, str(tmp_path / "run"), progress=False)
    assert not (tmp_path / "run").exists()  # nothing written


def test_subgoals_near_the_goal_snap_to_it():
    snap = hierarchy.SnapSubgoal(radius=0.5)
    goal = jnp.zeros(4)
    params = {"goal": goal, "final_goal": goal}
    near, far = jnp.full(4, 0.5), jnp.full(4, 1.0)  # latent distances 0.25 and 1.0
    np.testing.assert_array_equal(snap(params, near)["goal"], goal)
    np.testing.assert_array_equal(snap(params, far)["goal"], far)


def test_fit_and_load_run_round_trip_a_hierarchy(tiny_dataset, tmp_path):
    base = ModelConfig(obs_shape=(5,), action_size=2, latent_size=8, encoder_hidden=(16,),
                       predictor_hidden=(16,))
    config = hierarchy.HierarchyConfig(base, (LEVEL,), base_window=4)
    train = train_lib.TrainConfig(steps=4, batch_size=8, window=8, log_every=2,
                                  checkpoint_every=4)
    state = train_lib.fit(config, train, tiny_dataset, str(tmp_path / "run"), progress=False)
    loaded_config, _, params = train_lib.load_run(str(tmp_path / "run"))
    assert loaded_config == config
    for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(state.params), strict=True):
        np.testing.assert_array_equal(a, b)


def test_the_shipped_pretrained_runs_load():
    from hjepa import pretrained
    from hjepa.tasks import make

    config, _, params = train_lib.load_run(pretrained.path("umaze_h2"), task="umaze")
    assert isinstance(config, hierarchy.HierarchyConfig) and config.num_levels == 2
    latents = hierarchy.encode(config, params, jnp.zeros((3, 2)))
    assert latents.shape == (3, 16) and bool(jnp.all(jnp.isfinite(latents)))
    with pytest.raises(ValueError, match=r"pretrained: expected one of \['reacher', "):
        pretrained.path("nope")
    # every shipped run is a run of its task's observations (each one loads and plans in
    # tests/test_quality_guards.py)
    for name, entry in pretrained.PRETRAINED.items():
        with open(os.path.join(pretrained.path(name), "config.json")) as f:
            record = json.load(f)
        model_config = hierarchy.config_from_dict(record["model"])
        obs_kind = record["dataset"]["obs_kind"]
        size = model_config.obs_shape[0] if obs_kind == "pixels" else None
        task = make(entry.task, obs_kind, image_size=size)
        assert record["dataset"]["task"] == entry.task, name
        assert tuple(model_config.obs_shape) == tuple(task.obs_shape), name
