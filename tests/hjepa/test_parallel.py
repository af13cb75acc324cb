"""hjepa.distributed: meshes, sharded training and planning, multi-process runs, bad input.

The multi-device checks need jax imported with 8 (or 2 per process) CPU devices, which this
pytest process cannot have: they run in subprocesses (tests/hjepa/parallel_scripts/), launched
together the first time a test needs one, and report JSON that the tests below check.
Every wait is bounded (subprocess timeouts, the coordinator's timeout).

Tolerances: sharded and one-device training see the same global batches (same key), so
only the order of floating-point reductions differs: losses agree to rtol 1e-4 (measured:
about 5e-7), parameters to atol 1e-5. Sharded planning runs each episode on one device with
the same keys: closed-loop distances agree to atol 1e-5 (measured: about 2e-7), MPPI plans to
atol 1e-4 in actions (measured: about 1e-5; XLA vectorises a batch of 1 per device differently
from a batch of 8).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import jax
import numpy as np
import pytest
from cli_helpers import REPO_ROOT, run_cli

from hjepa import distributed
from hjepa import train as train_lib

SCRIPTS = os.path.join(os.path.dirname(__file__), "parallel_scripts")
TIMEOUT_S = 300  # each subprocess; the whole file takes well under this on 2 cores

LOSS_RTOL = 1e-4
PARAM_ATOL = 1e-5
DISTANCE_ATOL = 1e-5
ACTION_ATOL = 1e-4


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env() -> dict:
    env = dict(os.environ)
    env.pop("XLA_FLAGS", None)  # the scripts set their own device count
    env["PYTHONUNBUFFERED"] = "1"
    root = REPO_ROOT
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return env


class Job:
    """A subprocess started now and awaited (with a bound) when its result is needed."""

    def __init__(self, name, argv, out_dir):
        self.name, self.out_dir = name, out_dir
        self.log = open(os.path.join(out_dir, f"{name}.log"), "w")  # noqa: SIM115
        self.proc = subprocess.Popen([sys.executable, *argv], stdout=self.log,
                                     stderr=subprocess.STDOUT, env=_env(), cwd=out_dir)
        self.started = time.monotonic()

    def wait(self) -> int:
        remaining = max(1.0, TIMEOUT_S - (time.monotonic() - self.started))
        try:
            self.proc.wait(timeout=remaining)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=30)
            pytest.fail(f"{self.name}: no result within {TIMEOUT_S} s\n{self.tail()}")
        finally:
            self.log.close()
        return self.proc.returncode

    def tail(self) -> str:
        with open(os.path.join(self.out_dir, f"{self.name}.log")) as f:
            return f.read()[-4000:]

    def result(self, file_name: str) -> dict:
        code = self.wait()
        path = os.path.join(self.out_dir, file_name)
        assert os.path.exists(path), f"{self.name} exited {code} without {file_name}\n{self.tail()}"
        with open(path) as f:
            result = json.load(f)
        assert "crash" not in result, result["crash"]
        assert code == 0, self.tail()
        return result


@pytest.fixture(scope="module")
def jobs(tmp_path_factory, tiny_dataset):
    """Starts every subprocess at once (they overlap on the 2 cores) and kills leftovers."""
    out8 = str(tmp_path_factory.mktemp("eight"))
    out2 = str(tmp_path_factory.mktemp("two"))
    run_dir = os.path.join(out2, "run")
    port = free_port()
    eight = os.path.join(SCRIPTS, "eight_devices.py")
    two = os.path.join(SCRIPTS, "two_processes.py")
    started = {
        "train8": Job("train8", [eight, "train", tiny_dataset.path, out8], out8),
        "plan8": Job("plan8", [eight, "plan", tiny_dataset.path, out8], out8),
        **{f"process{i}": Job(f"process{i}", [two, str(i), str(port), tiny_dataset.path,
                                              run_dir, out2], out2) for i in (0, 1)},
    }
    yield {"jobs": started, "out8": out8, "out2": out2, "run_dir": run_dir}
    for job in started.values():
        if job.proc.poll() is None:
            job.proc.kill()
            job.proc.wait(timeout=30)
        job.log.close()


@pytest.fixture(scope="module")
def trained8(jobs):
    return jobs["jobs"]["train8"].result("train.json")


@pytest.fixture(scope="module")
def planned8(jobs):
    return jobs["jobs"]["plan8"].result("plan.json")


@pytest.fixture(scope="module")
def two_processes(jobs):
    return [jobs["jobs"][f"process{i}"].result(f"process-{i}.json") for i in (0, 1)]


# ----------------------------------------------------------------------------- 8 devices


def test_sharded_training_follows_the_one_device_loss_curve(trained8):
    train = trained8["train"]
    base = np.asarray(train["none"]["losses"])
    assert len(base) == 8 and np.all(np.isfinite(base)) and base[-1] < base[0]
    for name in ("data8", "data4_model2"):
        np.testing.assert_allclose(train[name]["losses"], base, rtol=LOSS_RTOL, err_msg=name)
        assert train[name]["max_abs_param_diff"] < PARAM_ATOL, name
        assert train[name]["step"] == 8
    # the model axis really splits the larger kernels
    assert "P(None, 'model')" in trained8["model_axis_specs"]


def test_sharded_sampling_draws_the_one_device_windows(trained8):
    sampling = trained8["sampling"]
    assert sampling["data3"]["rows"] == 9  # 8 episodes padded to a multiple of 3
    for name, record in sampling.items():
        assert record["equal"], name
        assert record["batch_spec"] == "P('data',)"


def test_a_checkpoint_saved_on_8_devices_restores_on_4_and_on_1(trained8, jobs, tiny_dataset):
    restored = trained8["restore"]
    assert restored["data4"]["devices"] == [0, 1, 2, 3]
    assert restored["data1"]["devices"] == [4]
    assert "P(None, 'model')" in restored["data2_model2"]["specs"]
    for name, record in restored.items():
        assert record["params_equal"] and record["state_equal"], name
    # and in this process, on its one device
    _, config, params = train_lib.load_run(os.path.join(jobs["out8"], "run-data8"))
    assert config.steps == 8
    straight = np.load(os.path.join(jobs["out8"], "params-none.npz"))  # trained without a mesh
    leaves = jax.tree.leaves(params)
    assert len(leaves) == len(straight.files)
    for i, leaf in enumerate(leaves):
        np.testing.assert_allclose(np.asarray(leaf), straight[f"arr_{i}"], atol=PARAM_ATOL)


def test_sharded_planning_returns_the_unsharded_plans(planned8):
    plans = planned8["plans"]["data8"]
    assert plans["actions_spec"] == "P('data',)"
    assert plans["max_abs_action_diff"] < ACTION_ATOL
    evaluate = planned8["evaluate"]
    assert evaluate["shape"] == [8, 4]
    assert evaluate["max_abs_distance_diff"] < DISTANCE_ATOL
    assert evaluate["success_equal"]


def test_bad_meshes_and_batches_are_refused_with_what_was_expected(trained8, planned8):
    errors = {**trained8["errors"], **planned8["errors"]}
    assert errors["mesh"]["type"] == "ValueError"
    assert "8" in errors["mesh"]["message"] and "data=3 x model=2 = 6" in errors["mesh"]["message"]
    assert "data=N,model=M" in errors["mesh_syntax"]["message"]
    assert errors["batch"]["type"] == "ValueError"
    assert "batch_size" in errors["batch"]["message"] and "8 devices" in errors["batch"]["message"]
    assert "got 12" in errors["batch"]["message"]
    assert not trained8["bad_run_dir_created"]  # refused before anything was written
    assert "num_episodes" in errors["episodes"]["message"]
    assert "got 6" in errors["episodes"]["message"]


# ----------------------------------------------------------------------------- 2 processes


@pytest.mark.multiprocess
def test_two_processes_train_together_and_agree(two_processes, jobs):
    first, second = two_processes
    for i, record in enumerate(two_processes):
        assert record["process_index"] == i and record["process_count"] == 2
        assert record["devices"] == 4 and record["local_devices"] == 2
        assert record["mesh"] == {"data": 4, "model": 1}
        assert record["step"] == 4
        assert record["gathered"] == [2.0 * k for k in range(8)]
    # each process held (and read) only its own half of the 8 episodes
    assert first["rows"] == [[0, 2], [2, 4]] and second["rows"] == [[4, 6], [6, 8]]
    a = np.load(os.path.join(jobs["out2"], "params-0.npz"))
    b = np.load(os.path.join(jobs["out2"], "params-1.npz"))
    assert sorted(a.files) == sorted(b.files) and a.files
    for name in a.files:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


@pytest.mark.multiprocess
def test_two_processes_write_one_run_that_restores_in_one_process(two_processes, jobs):
    run_dir = jobs["run_dir"]
    assert sorted(os.listdir(os.path.join(run_dir, "checkpoints"))) == ["2", "4"]
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        steps = [json.loads(line)["step"] for line in f if line.strip()]
    assert steps == [2, 4]  # logged once, by process 0
    assert len(os.listdir(os.path.join(run_dir, "tb"))) == 1
    progress0 = jobs["jobs"]["process0"].tail()
    progress1 = jobs["jobs"]["process1"].tail()
    assert "train: 100%" in progress0 and "train:" not in progress1
    _, config, params = train_lib.load_run(run_dir)
    assert config.steps == 4
    saved = np.load(os.path.join(jobs["out2"], "params-0.npz"))
    leaves = jax.tree_util.tree_leaves_with_path(params)
    assert len(leaves) == len(saved.files)
    for path, leaf in leaves:
        np.testing.assert_array_equal(np.asarray(leaf), saved["/".join(str(k) for k in path)])


@pytest.mark.multiprocess
def test_two_processes_end_where_one_device_ends_for_the_same_seed(two_processes, jobs,
                                                                   tiny_dataset, tmp_path):
    model_config, config, params = train_lib.load_run(jobs["run_dir"])
    state = train_lib.fit(model_config, config, tiny_dataset, str(tmp_path / "one-device"),
                          progress=False)
    for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(state.params), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=0, atol=PARAM_ATOL)


# ----------------------------------------------------------------------------- one device, here


def test_mesh_spec_parsing():
    assert distributed.MeshSpec.parse("data=8,model=1") == distributed.MeshSpec(8, 1)
    assert distributed.MeshSpec.parse("model=2") == distributed.MeshSpec(None, 2)
    assert distributed.MeshSpec.parse("data=-1, model=4") == distributed.MeshSpec(None, 4)
    for bad in ("", "data=8,data=2", "data=8;model=1", "pipe=2", "data=x"):
        with pytest.raises(ValueError, match="data=N,model=M"):
            distributed.MeshSpec.parse(bad)


def test_make_mesh_on_this_process_devices():
    mesh = distributed.make_mesh()
    assert dict(mesh.shape) == {"data": jax.device_count(), "model": 1}
    with pytest.raises(ValueError, match=rf"expected data x model = {jax.device_count()}.*got"):
        distributed.make_mesh(f"data={jax.device_count() + 1}")
    with pytest.raises(ValueError, match="model axis"):
        distributed.make_mesh(distributed.MeshSpec(model=jax.device_count() + 1))
    with pytest.raises(ValueError, match="positive"):
        distributed.make_mesh(distributed.MeshSpec(data=0))


def test_initialize_checks_its_arguments():
    with pytest.raises(ValueError, match="expected all three"):
        distributed.initialize("127.0.0.1:1234", 2)
    with pytest.raises(ValueError, match="HOST:PORT"):
        distributed.initialize("127.0.0.1", 2, 0)
    with pytest.raises(ValueError, match=r"process_id: expected an integer in \[0, 2\), got 2"):
        distributed.initialize("127.0.0.1:1234", 2, 2)
    with pytest.raises(ValueError, match="num_processes"):
        distributed.initialize("127.0.0.1:1234", 0, 0)
    with pytest.raises(ValueError, match="auto=True"):
        distributed.initialize()


def test_an_unreachable_coordinator_fails_after_a_bounded_wait():
    port = free_port()  # nobody listens there
    t0 = time.monotonic()
    with pytest.raises(RuntimeError, match=rf"127\.0\.0\.1:{port}.*within 2 s"):
        distributed.initialize(f"127.0.0.1:{port}", 2, 1, timeout_s=2)
    assert time.monotonic() - t0 < 15


def test_cli_has_the_device_flags(capsys):
    for command in ("train", "plan"):
        code, out, _ = run_cli([command, "--help"], capsys)
        assert code == 0
        for flag in ("--mesh", "--coordinator", "--num-processes", "--process-id",
                     "--distributed"):
            assert flag in out, (command, flag)


def test_cli_refuses_a_mesh_that_does_not_fit_the_devices(capsys, tiny_dataset, tmp_path):
    code, _, err = run_cli(["train", "--data", tiny_dataset.path, "--run-dir",
                            str(tmp_path / "run"), "--mesh", "data=3"], capsys)
    assert code == 2 and "Traceback" not in err
    assert f"data x model = {jax.device_count()}" in err and "data=3" in err
    assert not os.path.exists(tmp_path / "run")


def test_cli_reports_an_unreachable_coordinator(capsys, tmp_path):
    port = free_port()
    code, _, err = run_cli(["plan", "--task", "reacher", "--oracle", "--coordinator",
                            f"127.0.0.1:{port}", "--num-processes", "2", "--process-id", "1",
                            "--init-timeout", "1"], capsys)
    assert code == 2
    assert f"127.0.0.1:{port}" in err and "within 1 s" in err
