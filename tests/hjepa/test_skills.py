"""Learned skills (hjepa.skills): the chunk autoencoder and level-2 predictor learn a known
world, planning over skills heads for the goal and sets its predicted subgoals between start
and goal, files round-trip and refuse corruption, bad inputs get clear errors, and
`hjepa skills` / `hjepa plan --skills` work end to end on a tiny run."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from cli_helpers import run_cli

from hjepa import evaluate as evaluate_lib
from hjepa import goal_space, skills, tasks, train, world_model
from hjepa.configs import GoalSpaceConfig, SkillsConfig, SkillsModel

SPEED = 0.1  # a point's displacement per step per unit of action
CHUNK = 4
# The decoder without LayerNorm: the point's position is unbounded, and the action it must
# give does not depend on it.
CONFIG = SkillsConfig(chunk=CHUNK, macro_size=2, hidden=(64, 64), kl_weight=1e-3, steps=1500,
                      batch_size=128, decoder_layer_norm=False)


def _point_episodes(rng, count=512, length=12):
    """A point in the plane (its latent is its position [2]) moved by a velocity held for the
    whole episode (actions [2] in [-1, 1]): latents [N, T+1, 2], actions [N, T, 2]."""
    velocity = rng.uniform(-1.0, 1.0, size=(count, 1, 2)).astype(np.float32)
    actions = np.repeat(velocity, length, axis=1)
    start = rng.uniform(-1.0, 1.0, size=(count, 1, 2)).astype(np.float32)
    latents = np.concatenate([start, start + SPEED * np.cumsum(actions, axis=1)], axis=1)
    return latents, actions


@pytest.fixture(scope="module")
def point_skills():
    latents, actions = _point_episodes(np.random.default_rng(0))
    params, history = train.fit_skills(CONFIG, latents, actions, -np.ones(2), np.ones(2),
                                       log_every=500)
    return params, history


def test_skills_learn_to_reproduce_and_predict_a_chunk(point_skills):
    """Known answer, on chunks of new velocities: a chunk of one held velocity is decoded
    back to that velocity at every step, and the level-2 predictor puts the point
    K × SPEED × velocity further on (both within a learned model's error)."""
    params, history = point_skills
    assert [h["step"] for h in history] == [500, 1000, 1500]
    assert history[-1]["decoding"] < history[0]["decoding"]
    latents, actions = _point_episodes(np.random.default_rng(1), count=16, length=CHUNK)
    mean, _ = skills.encode_chunk(CONFIG, params, latents[:, 0], actions)
    decoded = skills.decode(CONFIG, params, jnp.asarray(latents[:, :-1]),
                            jnp.broadcast_to(mean[:, None], (16, CHUNK, 2)))
    assert np.mean(np.abs(decoded - actions)) < 0.1  # actions span [-1, 1]
    predicted = skills.predict(CONFIG, params, jnp.asarray(latents[:, 0]), mean)
    displacement = np.linalg.norm(latents[:, -1] - latents[:, 0], axis=-1)  # up to 0.57
    error = np.linalg.norm(np.asarray(predicted) - latents[:, -1], axis=-1)
    assert np.mean(error) < 0.08 and np.mean(error) < 0.3 * np.mean(displacement)


@dataclasses.dataclass(frozen=True)
class DistanceToGoal:
    """A cost toward a goal point read from the problem's params (as a goal-space cost)."""

    def __call__(self, params, latent):
        return jnp.sqrt(jnp.sum((latent - params["goal"]) ** 2) + 1e-9)


@pytest.mark.parametrize("goal", [(1.0, 0.0), (0.0, -1.0), (-0.7, 0.7)])
def test_planning_over_skills_heads_for_the_goal_with_subgoals_between(point_skills, goal):
    """From the origin the first action points at the goal, and the plan's predicted latents
    (its subgoals, one per skill) draw nearer the goal and stay near the segment to it."""
    params, _ = point_skills
    act = skills.Act(CONFIG, DistanceToGoal(), horizon=4, num_samples=128, iterations=3)
    goal = jnp.asarray(goal)
    start = jnp.zeros(2)
    action = act(params, {"goal": goal}, start)
    cosine = jnp.dot(action, goal) / (jnp.linalg.norm(action) * jnp.linalg.norm(goal))
    assert cosine > 0.9
    plan = act.plan(params, {"goal": goal}, start)
    subgoals = jax.lax.scan(lambda z, m: (skills.predict(CONFIG, params, z, m),) * 2,
                            start, plan.actions)[1]  # [H, 2]
    to_goal = np.linalg.norm(np.asarray(subgoals - goal), axis=-1)
    assert to_goal[0] < float(jnp.linalg.norm(goal)) - 0.2  # the first skill makes headway
    assert np.min(to_goal) < 0.2  # the plan gets there
    along = np.asarray(subgoals) @ np.asarray(goal)  # |goal| = 1: position along the way
    off_line = np.abs(np.cross(np.asarray(subgoals), np.asarray(goal)))
    reached = int(np.argmax(to_goal < 0.2))
    assert np.all(np.diff(along[:reached]) > 0)  # on its way until it gets there
    assert np.all(off_line < 0.6)


def test_the_decoder_acting_closed_loop_reaches_the_goal(point_skills):
    """Mode 1 over skills: each step plans skills and acts with the decoder; the point gets
    within 0.25 of a goal 1.2 away in 40 steps (the data never held a goal)."""
    params, _ = point_skills
    act = skills.Act(CONFIG, DistanceToGoal(), horizon=4, num_samples=128, iterations=3)
    goal = jnp.asarray([0.6, -1.04])

    def step(z, _):
        return z + SPEED * act(params, {"goal": goal}, z), None

    final, _ = jax.lax.scan(step, jnp.zeros(2), None, length=40)
    assert float(jnp.linalg.norm(final - goal)) < 0.25
    assert act.predictor_calls == (3 * 128 + 1) * 4  # N x I sequences and the final mean


def test_the_closed_loop_holds_each_skill_for_its_chunk(point_skills):
    """With one plan per chunk, the skill acted stays the same for K steps and changes when
    the next chunk is planned; a replan interval that does not divide the chunk is refused."""
    params, _ = point_skills
    act = skills.Act(CONFIG, DistanceToGoal(), horizon=4, num_samples=64, iterations=2)
    goal = jnp.asarray([1.0, 0.5])
    carry, z = skills.initial_carry(act), jnp.zeros(2)
    acted = []
    for t in range(3 * CHUNK):
        carry, action = skills.skill_loop_step(act, params, {"goal": goal}, carry, z,
                                               jax.random.key(t), replan_every=CHUNK)
        acted.append(carry.plan[0])
        z = z + SPEED * action
    acted = np.asarray(acted).reshape(3, CHUNK, -1)
    np.testing.assert_array_equal(acted, np.repeat(acted[:, :1], CHUNK, axis=1))
    assert not np.allclose(acted[0, 0], acted[1, 0])  # replanned at the chunk's end
    assert int(carry.held) == CHUNK
    for bad in (0, 3, CHUNK + 1):
        with pytest.raises(ValueError, match="divisor of the skills' chunk"):
            skills.skill_loop_step(act, params, {"goal": goal}, carry, z, jax.random.key(0),
                                   replan_every=bad)


def test_the_family_loss_reads_each_action_beside_its_latent(point_skills):
    """`world_model.Skills.loss` on [latent, action] rows (the last row's action unused) is
    `skills.loss` on the latents [B, K+1, D] and the K actions between them [B, K, A]."""
    params, _ = point_skills
    rng = np.random.default_rng(3)
    latents = rng.normal(size=(8, CHUNK + 1, 2)).astype(np.float32)
    actions = rng.uniform(-1, 1, size=(8, CHUNK, 2)).astype(np.float32)
    unused = rng.uniform(-1, 1, size=(8, 1, 2)).astype(np.float32)
    rows = np.concatenate([latents, np.concatenate([actions, unused], axis=1)], axis=-1)
    family = world_model.of(SkillsModel(CONFIG, 2, (-1.0, -1.0), (1.0, 1.0)))
    key = jax.random.key(4)
    got, _ = family.loss(params, None, jnp.asarray(rows), None, key)
    expected, _ = skills.loss(params, CONFIG, jnp.asarray(latents), jnp.asarray(actions), key)
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    shifted, _ = skills.loss(params, CONFIG, jnp.asarray(latents),
                             jnp.asarray(rows[:, 1:, 2:]), key)
    assert abs(float(shifted) - float(expected)) > 1e-3  # a shifted pairing would show


def test_skills_files_round_trip_and_refuse_what_they_cannot_read(tmp_path, point_skills):
    params, _ = point_skills
    run_dir = str(tmp_path)
    assert skills.kept_record(run_dir, CONFIG) is None
    skills.save(run_dir, CONFIG, params, {"action_size": 2, "latent_size": 2})
    config, loaded = skills.load(run_dir, latent_size=2)
    assert config == CONFIG
    jax.tree.map(np.testing.assert_array_equal, loaded, params)
    assert skills.kept_record(run_dir, CONFIG)["action_size"] == 2
    with pytest.raises(ValueError, match="another configuration"):
        skills.kept_record(run_dir, dataclasses.replace(CONFIG, chunk=8))
    with pytest.raises(ValueError, match="latents of size 3"):
        skills.load(run_dir, latent_size=3)
    path = os.path.join(run_dir, skills.SKILLS_FILE)
    payload = bytearray(open(path, "rb").read())
    payload[len(payload) // 2] ^= 0xFF
    open(path, "wb").write(bytes(payload))
    with pytest.raises(ValueError, match="corrupt"):
        skills.load(run_dir, latent_size=2)
    with pytest.raises(ValueError, match="holds no skills"):
        skills.load(str(tmp_path / "elsewhere"), latent_size=2)


@pytest.mark.parametrize("latents, actions, message", [
    (np.zeros((4, 11, 2)), np.zeros((4, 11, 2)), "expected episodes"),
    (np.zeros((4, 11, 2)), np.zeros((4, 10, 3)), "expected episodes"),
    (np.zeros((4, 11, 2)), np.full((4, 10, 2), 1.5), "inside"),
    (np.zeros((4, 11, 2)), np.full((4, 10, 2), np.nan), "finite"),
    (np.zeros((4, 3, 2)), np.zeros((4, 2, 2)), "chunk: expected at most"),
])
def test_fit_refuses_data_it_cannot_learn_from(latents, actions, message):
    with pytest.raises(ValueError, match=message):
        train.fit_skills(CONFIG, latents, actions, -np.ones(2), np.ones(2))


def test_bad_settings_are_refused():
    from conftest import TINY_MODEL as tiny_model

    with pytest.raises(ValueError, match="chunk"):
        SkillsConfig(chunk=0).validate()
    with pytest.raises(ValueError, match="kl_weight"):
        SkillsConfig(kl_weight=-1.0).validate()
    with pytest.raises(ValueError, match="high > low"):
        skills.init(CONFIG, jax.random.key(0), 2, jnp.ones(2), jnp.ones(2))
    with pytest.raises(ValueError, match="finite bounds"):
        skills.init(CONFIG, jax.random.key(0), 2, -jnp.ones(2), jnp.full(2, jnp.inf))
    with pytest.raises(ValueError, match="latent_size"):
        skills.init(CONFIG, jax.random.key(0), 0, -jnp.ones(2), jnp.ones(2))
    with pytest.raises(ValueError, match="terminal_weight"):
        skills.Act(CONFIG, DistanceToGoal(), terminal_weight=-1.0)
    with pytest.raises(ValueError, match="horizon"):
        skills.Act(CONFIG, DistanceToGoal(), horizon=0)
    with pytest.raises(ValueError, match="noise_std"):
        skills.Act(CONFIG, DistanceToGoal(), noise_std=float("nan"))
    with pytest.raises(ValueError, match="goal-space cost"):
        evaluate_lib.evaluate_skills(tasks.make("reacher"), jax.random.key(0), tiny_model,
                                     None, skills.Act(CONFIG, DistanceToGoal()), None, None,
                                     num_episodes=1)
    cost = goal_space.GoalSpaceCost(GoalSpaceConfig(), 2, "steps")
    with pytest.raises(ValueError, match="divisor"):
        evaluate_lib.evaluate_skills(tasks.make("reacher"), jax.random.key(0), tiny_model,
                                     None, skills.Act(CONFIG, cost), None, None,
                                     num_episodes=1, replan_every=CHUNK + 1)
    family = world_model.of(SkillsModel(CONFIG, 2, (-1.0, -1.0), (1.0, 1.0)))
    with pytest.raises(ValueError, match="windows of one chunk"):
        family.check_training(CHUNK + 1)


def _run_with_skills(capsys, tmp_path, tiny_run, tiny_dataset) -> str:
    """A copy of the tiny run with a goal-space model and skills of 3 steps, by the CLI."""
    run_dir = str(tmp_path / "run")
    shutil.copytree(tiny_run[0], run_dir)
    assert run_cli(["goal-space", "--run-dir", run_dir, "--data", tiny_dataset.path,
                    "--steps", "20", "--window", "4", "--quiet"], capsys)[0] == 0
    assert run_cli(["skills", "--run-dir", run_dir, "--data", tiny_dataset.path, "--steps",
                    "30", "--chunk", "3", "--macro-size", "2", "--quiet"], capsys)[0] == 0
    return run_dir


def test_skills_train_by_the_cli_and_bad_plans_are_refused(capsys, tmp_path, tiny_run,
                                                           tiny_dataset):
    """`hjepa skills` trains into a run, keeps skills of another configuration unless
    --overwrite, and `hjepa plan --skills` refuses what it cannot plan, before any compile."""
    run_dir = str(tmp_path / "run")
    shutil.copytree(tiny_run[0], run_dir)
    code, _, err = run_cli(["plan", "--run-dir", run_dir, "--skills", "--episodes", "2"], capsys)
    assert code == 2 and "--goal-space" in err
    code, _, err = run_cli(["plan", "--oracle", "--task", "reacher", "--skills", "--episodes",
                            "1"], capsys)
    assert code == 2 and "not --oracle" in err
    code, _, err = run_cli(["skills", "--run-dir", run_dir, "--data", tiny_dataset.path,
                            "--chunk", "99"], capsys)
    assert code == 2 and "--chunk: expected at most" in err
    assert run_cli(["goal-space", "--run-dir", run_dir, "--data", tiny_dataset.path,
                    "--steps", "20", "--window", "4", "--quiet"], capsys)[0] == 0
    code, _, err = run_cli(["plan", "--run-dir", run_dir, "--skills", "--goal-space",
                            "distance", "--episodes", "2"], capsys)
    assert code == 2 and "holds no skills" in err and "hjepa skills" in err
    argv = ["skills", "--run-dir", run_dir, "--data", tiny_dataset.path, "--steps", "30",
            "--chunk", "3", "--macro-size", "2"]
    code, out, err = run_cli([*argv, "--json"], capsys)
    assert code == 0, err
    summary = json.loads(out)
    assert summary["final_metrics"]["step"] == 30 and summary["skills"]["chunk"] == 3
    code, _, err = run_cli([*argv, "--chunk", "4", "--quiet"], capsys)
    assert code == 2 and "--overwrite" in err
    code, _, err = run_cli(["plan", "--run-dir", run_dir, "--goal-space", "distance",
                            "--replan-every", "2", "--episodes", "1"], capsys)
    assert code == 2 and "--replan-every: goes with --skills" in err
    code, _, err = run_cli(["plan", "--run-dir", run_dir, "--skills", "--goal-space",
                            "distance", "--replan-every", "2", "--episodes", "1"], capsys)
    assert code == 2 and "divisor of the skills' chunk (3)" in err


@pytest.mark.slow
def test_skills_plan_end_to_end(capsys, tmp_path, tiny_run, tiny_dataset):
    """`hjepa plan --skills --goal-space distance` with the plan flags given (slow: a brax
    compile; the loop is covered by the point-world tests, the flags by the test above)."""
    run_dir = _run_with_skills(capsys, tmp_path, tiny_run, tiny_dataset)
    code, out, err = run_cli(["plan", "--run-dir", run_dir, "--skills", "--goal-space",
                              "distance", "--episodes", "2", "--samples", "8", "--horizon",
                              "2", "--iterations", "1", "--split", "val", "--json"], capsys)
    assert code == 0, err
    planned = json.loads(out)
    assert planned["model"] == "learned, goal space (distance), skills"
    assert (planned["horizon"], planned["num_samples"], planned["iterations"]) == (2, 8, 1)
    assert planned["predictor_calls_per_step"] == (1 * 8 + 1) * 2
    assert planned["planner"] == "mppi over skills" and planned["skill_chunk"] == 3
    assert planned["replan_every"] == 1
    assert 0.0 <= planned["success_rate"] <= 1.0 and np.isfinite(planned["mean_final_distance"])
