"""hjepa.cli: help, argument errors (exit code 2 with a message), collect, plan, inspect, bench,
and the demo."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import zlib

import numpy as np
import pytest
from cli_helpers import run_cli

from hjepa import cli, splits, tasks
from hjepa import evaluate as evaluate_lib
from hjepa import train as train_lib

COMMANDS = ("demo", "collect", "train", "critic", "distill", "plan", "bench", "inspect")


def test_help_lists_the_commands(capsys):
    code, out, _ = run_cli(["--help"], capsys)
    assert code == 0
    for command in COMMANDS:
        assert command in out


@pytest.mark.parametrize("command", COMMANDS)
def test_each_command_has_help_with_examples(capsys, command):
    code, out, _ = run_cli([command, "--help"], capsys)
    assert code == 0
    assert f"hjepa {command}" in out
    assert "examples:" in out


def test_no_command_prints_help_and_fails(capsys):
    code, out, _ = run_cli([], capsys)
    assert code == 2
    assert "COMMAND" in out


def test_plan_without_run_dir(capsys):
    code, out, err = run_cli(["plan"], capsys)
    assert code == 2
    assert "--run-dir" in err
    assert "Traceback" not in err


def test_plan_oracle_without_task(capsys):
    code, _, err = run_cli(["plan", "--oracle"], capsys)
    assert code == 2
    assert "--task" in err


def test_plan_with_a_missing_run_dir(capsys, tmp_path):
    code, _, err = run_cli(["plan", "--run-dir", str(tmp_path / "no-run")], capsys)
    assert code == 2
    assert "no-run" in err


def test_collect_unknown_task_names_the_known_tasks(capsys, tmp_path):
    code, _, err = run_cli(["collect", "nosuchtask", "--out", str(tmp_path / "d")], capsys)
    assert code == 2
    assert "nosuchtask" in err and "reacher" in err
    assert not os.path.exists(tmp_path / "d")


@pytest.mark.parametrize("policy, drives", [("waypoint", "ant_umaze"), ("push", "pusher"),
                                            ("push_block", "push_t")])
def test_collect_a_task_policy_on_a_task_it_does_not_drive(capsys, tmp_path, policy, drives):
    code, _, err = run_cli(["collect", "reacher", "--out", str(tmp_path / "d"), "--policy",
                            policy], capsys)
    assert code == 2
    assert policy in err and drives in err and "reacher" in err
    assert not os.path.exists(tmp_path / "d")


@pytest.mark.parametrize("flags, message", [
    (["--goal-offset", "5"], "--goal-offset: goes with --goals trajectory"),
    (["--goals", "trajectory", "--budget", "0"], "budget: expected an integer >= 1, got 0")])
def test_plan_with_trajectory_goal_flags_out_of_place(capsys, flags, message):
    code, _, err = run_cli(["plan", "--oracle", "--task", "push_t", *flags], capsys)
    assert code == 2
    assert message in err


def test_train_with_a_missing_dataset(capsys, tmp_path):
    code, _, err = run_cli(["train", "--data", str(tmp_path / "no-data"), "--run-dir",
                            str(tmp_path / "run")], capsys)
    assert code == 2
    assert "no-data" in err


def test_bad_argument_types_exit_2(capsys, tmp_path):
    code, _, err = run_cli(["collect", "reacher", "--out", str(tmp_path / "d"), "--episodes",
                            "many"], capsys)
    assert code == 2
    assert "--episodes" in err


def test_collect_writes_the_same_dataset_as_the_library(capsys, tmp_path, tiny_dataset):
    out_dir = str(tmp_path / "d")
    argv = ["collect", "reacher", "--out", out_dir, "--episodes", "8", "--episode-length", "10",
            "--episodes-per-shard", "4", "--seed", "0"]
    code, out, err = run_cli([*argv, "--json"], capsys)
    assert code == 0, err
    summary = json.loads(out)
    assert summary["episodes"] == 8 and summary["shards"] == 2 and summary["task"] == "reacher"
    for name in ("obs-00000.npy", "obs-00001.npy", "actions-00000.npy", "actions-00001.npy"):
        with open(os.path.join(out_dir, name), "rb") as a, \
                open(os.path.join(tiny_dataset.path, name), "rb") as b:
            assert a.read() == b.read(), name
    # again without --overwrite: refused with a hint
    code, _, err = run_cli([*argv, "--quiet"], capsys)
    assert code == 2
    assert "--overwrite" in err


def test_plan_with_a_trained_run(capsys, tiny_run):
    run_dir, _ = tiny_run
    code, out, err = run_cli(["plan", "--run-dir", run_dir, "--episodes", "2", "--samples", "16",
                              "--horizon", "4", "--iterations", "1", "--json"], capsys)
    assert code == 0, err
    summary = json.loads(out)
    assert summary["model"] == "learned" and summary["task"] == "reacher"
    assert summary["episodes"] == 2 and summary["steps"] == 50
    assert summary["split"] == "test" and summary["seed"] == splits.seed("test")
    # what the library computes for the same run, pairs and planner settings
    model_config, _, params = train_lib.load_run(run_dir)
    expected = evaluate_lib.evaluate(
        tasks.make("reacher"), splits.key("test"), num_episodes=2, model_config=model_config,
        params=params, horizon=4, planner_options={
            "num_samples": 16, "iterations": 1, "temperature": 0.03, "noise_std": 0.3,
            "noise_decay": 0.6})
    assert summary["mean_final_distance"] == pytest.approx(
        float(np.mean(expected.final_distance)), rel=1e-5)
    assert summary["success_rate"] == expected.success_rate


def test_plan_with_another_planner(capsys, tiny_run):
    """`--planner cem`: CEM with the options given and its own defaults for the rest, the
    same plans as the library's."""
    import planners

    run_dir, _ = tiny_run
    code, out, err = run_cli(["plan", "--run-dir", run_dir, "--planner", "cem", "--episodes",
                              "2", "--samples", "8", "--elites", "2", "--iterations", "1",
                              "--horizon", "4", "--json"], capsys)
    assert code == 0, err
    summary = json.loads(out)
    assert summary["planner"] == "cem" and summary["num_elites"] == 2
    model_config, _, params = train_lib.load_run(run_dir)
    expected = evaluate_lib.evaluate(
        tasks.make("reacher"), splits.key("test"), num_episodes=2, model_config=model_config,
        params=params, horizon=4, planner=planners.cem,
        planner_options={"num_samples": 8, "num_elites": 2, "iterations": 1})
    assert summary["mean_final_distance"] == pytest.approx(
        float(np.mean(expected.final_distance)), rel=1e-5)


def test_critic_trains_once_and_plans(capsys, tmp_path, tiny_run, tiny_dataset):
    run_dir = str(tmp_path / "run")
    shutil.copytree(tiny_run[0], run_dir)
    code, _, err = run_cli(["plan", "--run-dir", run_dir, "--critic", "--episodes", "2"], capsys)
    assert code == 2 and "holds no critic" in err and "hjepa critic" in err
    argv = ["critic", "--run-dir", run_dir, "--data", tiny_dataset.path, "--steps", "20",
            "--window", "4", "--embedding", "4"]
    code, out, err = run_cli([*argv, "--json"], capsys)
    assert code == 0, err
    summary = json.loads(out)
    assert summary["critic"]["steps"] == 20 and summary["final_metrics"]["step"] == 20
    assert os.path.exists(os.path.join(run_dir, "critic.msgpack"))
    code, _, err = run_cli([*argv, "--max-steps", "50", "--quiet"], capsys)
    assert code == 2 and "--overwrite" in err  # another config does not replace it silently
    code, out, err = run_cli(["plan", "--run-dir", run_dir, "--critic", "--episodes", "2",
                              "--samples", "16", "--horizon", "4", "--iterations", "1",
                              "--json"], capsys)
    assert code == 0, err
    summary = json.loads(out)
    assert summary["model"] == "learned, critic" and summary["episodes"] == 2
    assert 0.0 <= summary["mean_final_distance"] < 0.5
    code, _, err = run_cli(["plan", "--task", "reacher", "--oracle", "--critic"], capsys)
    assert code == 2 and "not --oracle" in err


@pytest.mark.parametrize("extra, message", [
    (["--inverse-dynamics", "-1"], "--inverse-dynamics: expected a weight >= 0"),
    (["--inverse-dynamics", "1", "--levels", "2"], "--inverse-dynamics: trains flat models"),
])
def test_train_refuses_bad_inverse_dynamics(capsys, tmp_path, tiny_dataset, extra, message):
    code, _, err = run_cli(["train", "--data", tiny_dataset.path, "--run-dir",
                            str(tmp_path / "run"), *extra], capsys)
    assert code == 2 and message in err
    assert not os.path.exists(tmp_path / "run")  # nothing written


def test_plan_refuses_a_task_other_than_the_runs(capsys, tiny_run):
    code, _, err = run_cli(["plan", "--run-dir", tiny_run[0], "--task", "pusher"], capsys)
    assert code == 2
    assert "pusher" in err and "reacher" in err


def test_demo_quick_runs_end_to_end(tmp_path):
    out_dir = tmp_path / "demo"
    proc = subprocess.run(
        [sys.executable, "-m", "hjepa", "demo", "--quick", "--out", str(out_dir), "--quiet"],
        capture_output=True, text=True, timeout=900, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(out_dir / "results.json") as f:
        results = json.load(f)
    for model in ("learned", "random", "oracle"):
        assert results[model]["episodes"] == {"learned": 16, "random": 16, "oracle": 2}[model]
    assert results["task"] == "reacher" and results["pairs"]["split"] == "test"
    # the demo-sized path plans: far closer to the goals than random actions on the same pairs
    learned, random = results["learned"], results["random"]
    assert learned["mean_final_distance"] < 0.5 * random["mean_final_distance"], (learned, random)
    assert learned["success_rate"] > random["success_rate"], (learned, random)
    # and MPC on the true physics (`hjepa.evaluate`'s oracle path, as the demo runs it) ends far
    # closer than random actions on the same pairs (measured: 0.023 against 0.18)
    oracle = results["oracle"]
    assert oracle["mean_final_distance"] < 0.3 * random["mean_final_distance"], (oracle, random)
    assert "success" in proc.stdout and "random actions" in proc.stdout  # the results table
    assert "time: collect" in proc.stdout  # the per-phase timing line


def test_inspect_a_dataset(capsys, tiny_dataset):
    code, out, err = run_cli(["inspect", tiny_dataset.path, "--json"], capsys)
    assert code == 0, err
    summary = json.loads(out)
    assert summary["kind"] == "dataset" and summary["task"] == "reacher"
    assert (summary["episodes"], summary["episode_length"], summary["shards"]) == (8, 10, 2)
    assert summary["transitions"] == 80 and summary["obs_shape"] == [5]
    code, out, _ = run_cli(["inspect", tiny_dataset.path], capsys)
    assert code == 0 and "8 episodes x 10 steps = 80 transitions in 2 shards" in out


def test_inspect_a_run_and_a_checkpoint(capsys, tiny_run):
    import jax

    run_dir, state = tiny_run
    code, out, err = run_cli(["inspect", run_dir, "--json"], capsys)
    assert code == 0, err
    summary = json.loads(out)
    assert summary["kind"] == "run" and summary["task"] == "reacher"
    assert summary["checkpoint_steps"] == [30, 60] and summary["complete"]
    assert summary["last_metrics"]["step"] == 60
    # the parameter count is that of the trained parameters
    assert summary["model"]["parameters"] == sum(x.size for x in jax.tree.leaves(state.params))
    code, out, err = run_cli(["inspect", os.path.join(run_dir, "checkpoints", "30"), "--json"],
                             capsys)
    assert code == 0, err
    summary = json.loads(out)
    assert summary["kind"] == "checkpoint" and summary["step"] == 30
    code, out, _ = run_cli(["inspect", run_dir], capsys)
    assert code == 0 and "checkpoints at [30, 60] (complete" in out


def test_inspect_a_results_file(capsys, tmp_path):
    path = tmp_path / "r.json"
    row = {"task": "reacher", "obs": "state", "model": "learned", "planner": "mppi",
           "budget_scale": 1.0, "episodes": 4, "success_rate": 0.75,
           "success_ci95": [0.3, 0.95], "mean_final_distance": 0.01}
    path.write_text(json.dumps({"format": "hjepa-bench", "profile": {"name": "quick"},
                                "machine": "2 CPU cores", "complete": False,
                                "sessions": [{"wall_seconds": 5.0}], "rows": [row]}))
    code, out, err = run_cli(["inspect", str(path), "--json"], capsys)
    assert code == 0, err
    summary = json.loads(out)
    assert summary["kind"] == "results" and summary["profile"] == "quick"
    assert summary["num_rows"] == 1 and not summary["complete"]
    code, out, _ = run_cli(["inspect", str(path)], capsys)
    assert "INCOMPLETE" in out and "success 75.0% (30-95) of 4" in out


@pytest.mark.parametrize("make", ["missing", "empty_dir", "text_file", "json_without_rows"])
def test_inspect_refuses_what_it_does_not_know(capsys, tmp_path, make):
    path = tmp_path / "thing"
    if make == "empty_dir":
        path.mkdir()
    elif make == "text_file":
        path = tmp_path / "notes.txt"
        path.write_text("hello")
    elif make == "json_without_rows":
        path = tmp_path / "x.json"
        path.write_text(json.dumps({"a": 1}))
    code, out, err = run_cli(["inspect", str(path)], capsys)
    assert code == 2
    assert str(path) in err and "Traceback" not in err and out == ""


def test_bench_refuses_to_overwrite_results(capsys, tmp_path):
    import jax

    out_dir = tmp_path / "out"
    out_dir.mkdir()
    existing = out_dir / f"bench_tiny_{jax.devices()[0].platform}.json"
    existing.write_text("{}")
    code, _, err = run_cli(["bench", "--profile", "tiny", "--out", str(out_dir), "--work",
                            str(tmp_path / "work"), "--quiet"], capsys)
    assert code == 2
    assert "--overwrite" in err
    assert existing.read_text() == "{}"
    assert not (tmp_path / "work").exists()


def test_bench_unknown_planner_exits_2(capsys, tmp_path):
    code, _, err = run_cli(["bench", "--profile", "tiny", "--planners", "mppi,astar", "--out",
                            str(tmp_path)], capsys)
    assert code == 2
    assert "astar" in err and "mppi" in err


# slow: a two-level run plans through `hjepa plan` in the shipped umaze_h2 guard
# (test_quality_guards.py) and the notebook; fit and reload in test_hierarchy.py
@pytest.mark.slow
def test_train_and_plan_a_two_level_hierarchy(capsys, tmp_path, tiny_dataset):
    run_dir = str(tmp_path / "h2")
    code, out, err = run_cli(["train", "--data", tiny_dataset.path, "--run-dir", run_dir,
                              "--levels", "2", "--chunk", "2", "--macro-size", "2",
                              "--window", "4", "--steps", "4", "--batch-size", "8",
                              "--latent", "8", "--hidden", "16", "--checkpoint-every", "4",
                              "--json"], capsys)
    assert code == 0, err
    assert "level2_prediction" in json.loads(out)["final_metrics"]
    code, out, err = run_cli(["plan", "--run-dir", run_dir, "--episodes", "2", "--samples", "4",
                              "--iterations", "1", "--horizon", "2", "--high-horizon", "2",
                              "--snap-radius", "0.5", "--render", str(tmp_path / "h2.html"),
                              "--json"], capsys)
    assert code == 0, err
    summary = json.loads(out)
    assert summary["model"] == "learned, 2 levels" and summary["episodes"] == 2
    # what the library computes for the same run, pairs and settings (upper levels: their
    # own noise, no decay), recording what --render records (the same compiled episodes)
    from hjepa import visualize

    config, _, params = train_lib.load_run(run_dir)
    options = {"num_samples": 4, "iterations": 1, "temperature": 0.03, "noise_std": 0.3,
               "noise_decay": 0.6}
    expected = evaluate_lib.evaluate_hierarchy(
        tasks.make("reacher"), splits.key("test"), config, params, num_episodes=2,
        horizons=(2, 2), planner_options=(dict(options, noise_std=1.0, noise_decay=1.0),
                                          options), snap_radius=0.5,
        record=visualize.FrameRecorder(tasks.make("reacher"), poses=True, observations=False))
    assert summary["mean_final_distance"] == pytest.approx(
        float(np.mean(expected.final_distance)), rel=1e-5)
    # the viewer of the first hierarchical episode: its start and every step
    with open(tmp_path / "h2.html") as f:
        page = f.read()
    blob = re.search(r'var system = "([A-Za-z0-9+/=]+)"', page)
    viewer = json.loads(zlib.decompress(base64.b64decode(blob.group(1))))
    steps = 50  # reacher's episode length
    assert len(viewer["states"]["x"]) == steps + 1


def test_train_with_zero_levels_exits_2(capsys, tmp_path, tiny_dataset):
    code, _, err = run_cli(["train", "--data", tiny_dataset.path, "--run-dir",
                            str(tmp_path / "h0"), "--levels", "0"], capsys)
    assert code == 2
    assert "num_levels: expected a positive integer" in err
    assert not (tmp_path / "h0").exists()


def test_plan_a_task_with_its_best_shipped_run():
    """`hjepa plan two_rooms --pretrained`: the best measured run shipped for the task (by
    its test-pair figure: the pixel run with its critic over the state run), its planner
    settings where no flag overrides them."""
    from hjepa import pretrained

    rates = {name: pretrained.evaluation(name)["success_rate"]
             for name in ("two_rooms", "two_rooms_pixels")}
    best = max(rates, key=rates.get)
    assert pretrained.for_task("two_rooms") == best
    # what `hjepa plan two_rooms --pretrained --samples 4` plans with (the guards in
    # tests/test_quality_guards.py plan with every shipped run through the same path)
    args = cli._parser().parse_args(["plan", "two_rooms", "--pretrained", "--samples", "4"])
    cli._plan_settings(args)
    assert args.pretrained == best and args.run_dir == pretrained.path(best)
    assert args.task == "two_rooms" and args.samples == 4  # a flag overrides the measured
    measured = pretrained.PRETRAINED[best].plan
    assert args.horizon == measured.horizon and args.critic == measured.critic
    assert args.iterations == measured.kwargs()["iterations"]
    text = pretrained.describe(best)  # quotes the figure of its evaluation.json
    assert f"{100 * rates[best]:.1f}% (" in text and "test pairs (seed 424242)" in text


def test_the_shipped_pixel_run_plans_with_its_critic_unless_told_otherwise():
    from hjepa import critic as critic_lib
    from hjepa import pretrained

    parser = cli._parser()
    args = parser.parse_args(["plan", "--pretrained", "two_rooms_pixels"])
    cli._plan_settings(args)
    assert args.critic is True and args.noise_decay == 0.5 and args.samples == 128
    args = parser.parse_args(["plan", "--pretrained", "two_rooms"])
    cli._plan_settings(args)
    assert args.critic is False
    config, params = critic_lib.load(pretrained.path("two_rooms_pixels"), latent_size=32)
    assert config == critic_lib.CriticConfig()
    assert params["embed"]  # the shipped critic's weights


@pytest.mark.parametrize("argv, words", [
    (["plan", "pusher", "--pretrained"], ["no run is shipped", "'pusher'", "umaze_h2 (umaze)"]),
    (["plan", "reacher", "--task", "umaze", "--oracle"], ["given twice", "'reacher'", "'umaze'"]),
    (["plan", "--pretrained", "reacher", "--planner", "gd", "--temperature", "0.1"],
     ["--temperature", "the gd planner takes no temperature", "'learning_rate'"]),
])
def test_plan_task_argument_errors(capsys, argv, words):
    code, _, err = run_cli(argv, capsys)
    assert code == 2
    for word in words:
        assert word in err


@pytest.mark.parametrize("flag, pixels, stop", [
    ("auto", False, True), ("auto", True, False), ("stop", True, True), ("pass", False, False)])
def test_target_gradient_flag_sets_the_loss(flag, pixels, stop):
    args = cli._parser().parse_args(["train", "--data", "d", "--run-dir", "r",
                                      "--target-gradient", flag, "--inverse-dynamics", "10"])
    loss = cli._loss_config(args, pixels)
    assert (loss.stop_target_gradient, loss.inverse_dynamics_weight) == (stop, 10.0)
