"""Goals in a goal space (hjepa.goal_space): the goal head and the goal-conditioned critic
learned from latents and recorded positions, the planning cost they give, the bad inputs
they refuse, and `hjepa goal-space` / `hjepa plan --goal-space` end to end on a tiny run."""

from __future__ import annotations

import json
import os
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from cli_helpers import run_cli

from hjepa import data as data_lib
from hjepa import evaluate as evaluate_lib
from hjepa import goal_space, model, splits, tasks, train
from hjepa.configs import GoalSpaceConfig, ModelConfig
from hjepa.tasks import ant_maze
from hjepa.tasks import reacher as reacher_lib


def _ant_like_observations(rng, count):
    """Ant state observations [count, 31] of random bodies: torso xy in the maze's span (at
    the task's observation scale), everything else (height, orientation, legs, velocities)
    drawn at random. Returns (obs, torso xy [count, 2])."""
    xy = rng.uniform(-4.0, 4.0, size=(count, 2)).astype(np.float32)
    obs = (0.3 * rng.normal(size=(count, 31))).astype(np.float32)
    obs[:, :2] = xy * ant_maze.POSITION_SCALE
    return obs, xy


# A frozen linear encoder [31 -> 32] stands for the world model's: the goal-space model sees
# only latents, so where they come from does not matter to it.
ENCODER = (np.random.default_rng(5).normal(size=(31, 32)) / np.sqrt(31)).astype(np.float32)


@pytest.fixture(scope="module")
def ant_head():
    """A goal-space model trained on the latents of ant-like observations whose legs and
    velocities vary at random: (goal-space config, goal-space params)."""
    obs, xy = _ant_like_observations(np.random.default_rng(0), 300 * 9)
    latents = (obs @ ENCODER).reshape(300, 9, 32)
    gs_config = GoalSpaceConfig(hidden=(64, 64), steps=3000, batch_size=128, window=4,
                                max_steps=20)
    gs_params, history = train.fit_goal_space(gs_config, latents, xy.reshape(300, 9, 2),
                                              log_every=1000)
    assert [h["step"] for h in history] == [1000, 2000, 3000]
    return gs_config, gs_params


def test_the_goal_space_cost_is_zero_at_the_goal_and_rises_with_the_torso_distance(
        ant_head):
    """New bodies: the cost to a goal at the torso is near 0 (well inside the ant's 0.5 m
    success radius), and it grows with the torso's distance to the goal (0, 1, 2, 3 m) for
    every draw of the legs (an invariant)."""
    gs_config, gs_params = ant_head
    obs, xy = _ant_like_observations(np.random.default_rng(1), 32)
    latents = jnp.asarray(obs @ ENCODER)
    cost = goal_space.GoalSpaceCost(gs_config, 2)
    direction = np.array([0.6, 0.8], np.float32)
    costs = np.stack([
        np.asarray(jax.vmap(lambda z, g: cost({"goal_space": gs_params, "goal": g}, z))(
            latents, jnp.asarray(xy + distance * direction)))
        for distance in (0.0, 1.0, 2.0, 3.0)], -1)  # [32, 4]
    assert np.all(np.isfinite(costs))
    assert np.median(costs[:, 0]) < 0.25, costs[:, 0]
    assert np.all(np.diff(costs, axis=-1) > 0), costs
    # the cost is in metres: 3 m away reads about 3 m
    assert np.median(costs[:, 3]) == pytest.approx(3.0, abs=0.3)


def test_the_goal_conditioned_critic_rises_along_a_path_within_its_bounds():
    """States walk a line at one unit a step (their latents a fixed random map of the
    position): the critic's steps to a point k steps ahead rise with k (an invariant of a
    temporal distance) and stay within the observed bounds d(z_t, p_{t+k}) <= k. Its scale
    grows with training; the end-to-end check is umaze in benchmarks/goal_space.py."""
    rng = np.random.default_rng(0)
    episodes, length = 64, 41
    starts = rng.uniform(0, 20, size=(episodes, 1))
    direction = rng.choice([-1.0, 1.0], size=(episodes, 1))
    positions = (starts + direction * np.arange(length)[None]).astype(np.float32)[..., None]
    mixing = rng.normal(size=(1, 8)).astype(np.float32)
    latents = np.tanh(positions / 20.0 @ mixing + 0.1 * positions / 20.0 @ mixing ** 2)
    config = GoalSpaceConfig(hidden=(32, 32), steps=800, batch_size=128, window=16,
                             max_steps=60)
    params, _ = train.fit_goal_space(config, latents, positions, log_every=800)
    z = jnp.asarray(latents[:, 0])
    ahead = np.stack([np.asarray(goal_space.steps_to_go(config, params, z,
                                                        jnp.asarray(positions[:, k])))
                      for k in (0, 4, 8, 16, 32)], -1)  # [E, 5]
    medians = np.median(ahead, axis=0)
    assert np.all(np.diff(medians) > 0), medians
    assert medians[0] < 1.0 and np.all(medians[1:] <= np.array([4, 8, 16, 32])), medians


@pytest.mark.parametrize("goal, message", [
    (jnp.zeros(3), r"goal space, shape \(2,\), got shape \(3,\)"),
    (jnp.array([0.0, jnp.nan]), "finite"),
])
def test_a_goal_outside_the_goal_space_is_refused(goal, message):
    config = ModelConfig(obs_shape=(31,), action_size=8, latent_size=32,
                         encoder_hidden=(16,), predictor_hidden=(16,))
    params = model.init(config, jax.random.key(0))
    gs_config = GoalSpaceConfig(hidden=(8,))
    cost = (goal_space.GoalSpaceCost(gs_config, 2),
            goal_space.init(gs_config, jax.random.key(1), 32, 2))
    with pytest.raises(ValueError, match=message):
        model.problem(config, params, jnp.zeros(31), goal, -jnp.ones(8), jnp.ones(8),
                      critic=cost)


def test_an_unknown_cost_kind_is_refused():
    with pytest.raises(ValueError, match=r"expected one of \['distance', 'steps'\]"):
        goal_space.GoalSpaceCost(GoalSpaceConfig(), 2, "latent")


def test_fit_refuses_mismatched_latents_and_positions():
    with pytest.raises(ValueError, match=r"\[N, T\+1, D\] and \[N, T\+1, P\]"):
        train.fit_goal_space(GoalSpaceConfig(), np.zeros((4, 20, 8)), np.zeros((4, 19, 2)))
    with pytest.raises(ValueError, match="finite"):
        train.fit_goal_space(GoalSpaceConfig(window=4), np.zeros((4, 20, 8)),
                             np.full((4, 20, 2), np.inf))


def test_collected_positions_are_the_task_positions_of_the_observed_states(tiny_dataset):
    task = tasks.make("reacher")
    positions = tiny_dataset.positions()
    obs, _ = tiny_dataset.arrays()
    assert positions.shape == (*obs.shape[:2], task.position_size) == (8, 11, 2)
    assert tiny_dataset.manifest["position_size"] == 2
    # reacher's fingertip is where the joint angles put it: recomputed from the observation
    # (cos q0, sin q0, q1, ...) by the task's forward kinematics
    angles = np.stack([np.arctan2(obs[..., 1], obs[..., 0]), obs[..., 2]], -1)
    np.testing.assert_allclose(positions, np.asarray(reacher_lib.fingertip(angles)), atol=1e-5)


def test_a_dataset_without_positions_names_what_to_do(tiny_dataset, tmp_path, capsys):
    path = tmp_path / "old"
    shutil.copytree(tiny_dataset.path, path)
    manifest = json.loads((path / "manifest.json").read_text())
    del manifest["position_size"]
    (path / "manifest.json").write_text(json.dumps(manifest))
    old = data_lib.load(str(path))
    assert not old.has_positions
    with pytest.raises(ValueError, match="records no goal-space positions.*collect it again"):
        old.positions()
    code, out, _ = run_cli(["inspect", str(path)], capsys)
    assert code == 0 and "goal-space positions: not recorded" in out
    code, out, _ = run_cli(["inspect", tiny_dataset.path], capsys)
    assert code == 0 and "goal-space positions [2] per state" in out


def test_goal_space_trains_and_plans_end_to_end(capsys, tmp_path, tiny_run, tiny_dataset):
    run_dir = str(tmp_path / "run")
    shutil.copytree(tiny_run[0], run_dir)
    code, _, err = run_cli(["plan", "--run-dir", run_dir, "--goal-space", "distance",
                            "--episodes", "2"], capsys)
    assert code == 2 and "holds no goal-space model" in err and "hjepa goal-space" in err
    argv = ["goal-space", "--run-dir", run_dir, "--data", tiny_dataset.path, "--steps", "40",
            "--window", "4"]
    code, out, err = run_cli([*argv, "--json"], capsys)
    assert code == 0, err
    summary = json.loads(out)
    assert summary["final_metrics"]["step"] == 40 and summary["goal_space"]["window"] == 4
    code, _, err = run_cli([*argv, "--steps", "30", "--quiet"], capsys)
    assert code == 2 and "--overwrite" in err

    # planning with it through the CLI is `evaluate` with its cost on the goals' positions
    code, out, err = run_cli(["plan", "--run-dir", run_dir, "--goal-space", "distance",
                              "--episodes", "2", "--samples", "8", "--horizon", "3",
                              "--iterations", "1", "--split", "val", "--json"], capsys)
    assert code == 0, err
    planned = json.loads(out)
    assert planned["model"] == "learned, goal space (distance)"
    model_config, _, model_params = train.load_run(run_dir)
    gs_config, size, gs_params = goal_space.load(run_dir, model_config.latent_size)
    task = tasks.make("reacher")
    expected = evaluate_lib.evaluate(
        task, splits.key("val"), num_episodes=2, model_config=model_config,
        params=model_params, horizon=3,
        planner_options={"num_samples": 8, "iterations": 1, "noise_decay": 0.6,
                         "noise_std": 0.3, "temperature": 0.03},
        critic=(goal_space.GoalSpaceCost(gs_config, size), gs_params))
    assert planned["mean_final_distance"] == pytest.approx(
        float(np.mean(expected.final_distance)), rel=1e-5)

    code, _, err = run_cli(["plan", "--run-dir", run_dir, "--goal-space", "steps", "--critic",
                            "--episodes", "2"], capsys)
    assert code == 2 and "not with --critic" in err
    path = os.path.join(run_dir, "goal_space.msgpack")
    payload = bytearray(open(path, "rb").read())
    payload[len(payload) // 2] ^= 0xFF
    open(path, "wb").write(bytes(payload))
    code, _, err = run_cli(["plan", "--run-dir", run_dir, "--goal-space", "steps",
                            "--episodes", "2"], capsys)
    assert code == 2 and "corrupt" in err


def test_a_goal_space_model_of_another_goal_space_is_refused(tiny_run):
    model_config, _, model_params = train.load_run(tiny_run[0])
    gs_config = GoalSpaceConfig(hidden=(8,))
    gs_params = goal_space.init(gs_config, jax.random.key(0), model_config.latent_size, 3)
    with pytest.raises(ValueError, match="goals of size 3, the task 'reacher' has a goal space "
                                         "of size 2"):
        evaluate_lib.evaluate(tasks.make("reacher"), jax.random.key(0), num_episodes=1,
                              model_config=model_config, params=model_params,
                              critic=(goal_space.GoalSpaceCost(gs_config, 3), gs_params))


def test_a_hierarchy_refuses_a_goal_space_cost():
    from hjepa import hierarchy

    config = hierarchy.make_config(ModelConfig(obs_shape=(4,), action_size=2, latent_size=8,
                                               encoder_hidden=(8,), predictor_hidden=(8,)),
                                   num_levels=2, chunk=2, macro_size=2)
    gs_config = GoalSpaceConfig(hidden=(8,))
    cost = (goal_space.GoalSpaceCost(gs_config, 2),
            goal_space.init(gs_config, jax.random.key(1), 8, 2))
    with pytest.raises(ValueError, match="a hierarchy hands latent subgoals down"):
        hierarchy.problems(config, None, jnp.zeros(4), jnp.zeros(2), -jnp.ones(2), jnp.ones(2),
                           critic=cost)
