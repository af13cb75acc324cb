"""Mode 1 from mode 2 (hjepa.policy, hjepa.distill): a policy fitted to an analytic planner's
decisions recovers the optimal action; the distillation loop, its files and `hjepa plan
--policy / --prior` end to end on a tiny run."""

from __future__ import annotations

import json
import os
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from cli_helpers import run_cli

import planners
from hjepa import distill, splits, tasks, train
from hjepa import evaluate as evaluate_lib
from hjepa import policy as policy_lib
from hjepa.configs import PolicyConfig
from planners import testing


def test_a_policy_fitted_to_lqr_decisions_recovers_the_optimal_first_action():
    """The planner is the closed-form LQ optimum: its first action from state x is linear in
    x. Fitted on 2000 (x, u*) pairs, the policy gives u* on new states (known answer)."""
    problem, _, _ = testing.linear_quadratic(jax.random.key(0), horizon=8)
    params = problem.params
    rng = np.random.default_rng(0)
    # The optimum's first action is linear in the state: its columns from the unit states.
    first_gain = np.stack([testing.lq_optimum(params, e, 8)[0][0] for e in np.eye(4)], -1)

    def decisions(count):
        states = rng.normal(size=(count, 4))
        return states.astype(np.float32), (states @ first_gain.T).astype(np.float32)

    states, actions = decisions(2000)
    goals = np.zeros_like(states)  # the LQ goal is the origin
    config = PolicyConfig(hidden=(64, 64), steps=2000, batch_size=128, learning_rate=3e-3)
    low, high = np.full(2, -10.0, np.float32), np.full(2, 10.0, np.float32)
    policy_params, history = distill.fit(config, distill.Labels(states, goals, actions), low,
                                         high)
    assert [h["step"] for h in history] == [500, 1000, 1500, 2000]
    new_states, optimal = decisions(50)
    got = policy_lib.act(config, policy_params, jnp.asarray(new_states),
                         jnp.zeros_like(new_states), low, high)
    scale = np.sqrt(np.mean(optimal ** 2))
    error = np.sqrt(np.mean((np.asarray(got) - optimal) ** 2))
    assert error < 0.1 * scale, (error, scale)


def test_the_policy_acts_inside_the_bounds_and_reads_its_goal_from_the_problem():
    config = PolicyConfig(hidden=(16,))
    params = policy_lib.init(config, jax.random.key(0), latent_size=3, action_size=2)
    act = policy_lib.Act.of(config, [-1.0, 0.0], [1.0, 0.5])
    latent = jnp.array([100.0, -50.0, 3.0])  # far outside anything seen: still in bounds
    for goal in (jnp.zeros(3), jnp.ones(3) * 1e3):
        action = act(params, {"goal": goal}, latent)
        assert action.shape == (2,)
        assert np.all(np.asarray(action) >= [-1.0, 0.0]) and np.all(np.asarray(action) <= [1, .5])
    assert not np.allclose(act(params, {"goal": jnp.zeros(3)}, jnp.ones(3)),
                           act(params, {"goal": jnp.ones(3) * 3}, jnp.ones(3)))
    hash(act)  # a static argument of the jitted planners


@pytest.mark.parametrize("field, value, match", [
    ("steps", 0, "steps"), ("rounds", -1, "rounds"), ("expert_share", 1.5, "expert_share"),
    ("hidden", (), "hidden"), ("learning_rate", float("nan"), "learning_rate"),
])
def test_bad_policy_configs_are_refused(field, value, match):
    with pytest.raises(ValueError, match=match):
        PolicyConfig(**{field: value}).validate()


def _distill_tiny(capsys, tmp_path, tiny_run) -> str:
    """Distils a policy into a copy of the tiny run through the CLI; returns the copy."""
    run_dir = str(tmp_path / "run")
    shutil.copytree(tiny_run[0], run_dir)
    code, _, err = run_cli(["plan", "--run-dir", run_dir, "--policy", "--episodes", "2"], capsys)
    assert code == 2 and "holds no policy" in err and "hjepa distill" in err
    argv = ["distill", "--run-dir", run_dir, "--rounds", "2", "--episodes", "2", "--steps",
            "30", "--samples", "4", "--horizon", "2", "--iterations", "1"]
    code, out, err = run_cli([*argv, "--json"], capsys)
    assert code == 0, err
    summary = json.loads(out)
    length = tasks.make("reacher").episode_length
    assert [r["labels"] for r in summary["rounds"]] == [2 * length, 2 * length]
    assert [r["expert_share"] for r in summary["rounds"]] == [1.0, 0.5]
    code, out, _ = run_cli([*argv, "--quiet"], capsys)
    assert code == 0  # the same configuration: kept, not redone
    code, _, err = run_cli([*argv, "--rounds", "1", "--quiet"], capsys)
    assert code == 2 and "--overwrite" in err
    return run_dir


def test_distill_labels_rounds_and_a_corrupt_policy_is_refused(capsys, tmp_path, tiny_run):
    run_dir = _distill_tiny(capsys, tmp_path, tiny_run)
    # a flipped byte of the params is named, never loaded
    path = os.path.join(run_dir, "policy.msgpack")
    payload = bytearray(open(path, "rb").read())
    payload[len(payload) // 2] ^= 0xFF
    open(path, "wb").write(bytes(payload))
    code, _, err = run_cli(["plan", "--run-dir", run_dir, "--policy", "--episodes", "2"], capsys)
    assert code == 2 and "corrupt" in err


# slow: two more plan compiles (~25 s); the policy's decisions are checked against LQR above,
# and the plan refusals in the default run
@pytest.mark.slow
def test_distilled_policy_plans_alone_and_as_a_prior_end_to_end(capsys, tmp_path, tiny_run):
    run_dir = _distill_tiny(capsys, tmp_path, tiny_run)
    # mode 1 through the CLI is what evaluate gives with the saved policy (same pairs, keys)
    code, out, err = run_cli(["plan", "--run-dir", run_dir, "--policy", "--episodes", "2",
                              "--split", "val", "--json"], capsys)
    assert code == 0, err
    alone = json.loads(out)
    assert alone["model"] == "learned, policy alone"
    model_config, _, model_params = train.load_run(run_dir)
    config, policy_params = distill.load(run_dir, model_config.latent_size, 2)
    task = tasks.make("reacher")
    act = policy_lib.Act.of(config, task.action_low, task.action_high)
    expected = evaluate_lib.evaluate(task, splits.key("val"), num_episodes=2,
                                     model_config=model_config, params=model_params,
                                     planner=planners.policy_only, horizon=16,
                                     policy=(act, policy_params))
    assert alone["mean_final_distance"] == pytest.approx(
        float(np.mean(expected.final_distance)), rel=1e-5)

    code, out, err = run_cli(["plan", "--run-dir", run_dir, "--prior", "--episodes", "2",
                              "--samples", "4", "--horizon", "2", "--iterations", "1",
                              "--prior-samples", "2", "--json"], capsys)
    assert code == 0, err
    prior = json.loads(out)
    assert prior["model"] == "learned, policy prior" and prior["proposal_samples"] == 2


def test_a_shipped_run_is_never_written_to(capsys):
    from hjepa import pretrained

    code, _, err = run_cli(["distill", "--run-dir", pretrained.path("reacher")], capsys)
    assert code == 2 and "copy it first" in err
    assert not os.path.exists(os.path.join(pretrained.path("reacher"), "policy.json"))


@pytest.mark.parametrize("extra, message", [
    (["--policy", "--prior"], "give one"),
    (["--prior-samples", "4"], "goes with --prior"),
    (["--prior", "--planner", "beam"], "beam search takes no proposal"),
])
def test_bad_policy_flags_are_refused(capsys, tiny_run, extra, message):
    code, _, err = run_cli(["plan", "--run-dir", tiny_run[0], "--episodes", "2", *extra], capsys)
    assert code == 2 and message in err, err
