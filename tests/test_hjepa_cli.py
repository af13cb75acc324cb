"""hjepa.cli: help, argument errors (exit code 2 with a message), collect, plan, and the demo."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from hjepa import cli

COMMANDS = ("demo", "collect", "train", "plan")


def run_cli(argv, capsys):
    """Runs `hjepa argv` in-process: (exit code, stdout, stderr)."""
    try:
        code = cli.main(argv)
    except SystemExit as exit_:
        code = exit_.code
    out, err = capsys.readouterr()
    return code, out, err


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
    assert 0.0 <= summary["success_rate"] <= 1.0
    assert 0.0 <= summary["mean_final_distance"] < 0.5  # the arm reaches 0.21 at most


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
    for model in ("learned", "oracle"):
        assert 0.0 <= results[model]["success_rate"] <= 1.0
        assert results[model]["episodes"] == {"learned": 4, "oracle": 2}[model]
    assert results["task"] == "reacher"
    assert "success" in proc.stdout  # the results table
