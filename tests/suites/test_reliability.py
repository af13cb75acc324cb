"""Interruption and determinism: kill -9 during `hjepa collect` / `hjepa train`, then resume.

The interrupted command runs in a subprocess killed with SIGKILL once it has written its
first shard or checkpoint; the same command then runs again (in-process, the same code path
as the console script) and must end with the same bytes / parameters as an uninterrupted run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from hjepa import cli, data, train
from hjepa import io as hjepa_io

COLLECT_ARGS = ["collect", "reacher", "--episodes", "12", "--episode-length", "10",
                "--episodes-per-shard", "2", "--seed", "3", "--quiet"]
TRAIN_ARGS = ["--steps", "400", "--batch-size", "16", "--window", "4", "--latent", "8",
              "--hidden", "16", "--checkpoint-every", "20", "--seed", "5", "--quiet"]


# Runs the CLI with every dataset file write followed by a pause, so that the SIGKILL lands
# mid-collection however fast the machine is (a small collection can otherwise finish between
# two polls). The code path is the production one; only the pacing changes.
_PACED_CLI = """
import sys, time
from hjepa import cli, data
write = data.atomic_save_npy
def paced_write(path, array):
    write(path, array)
    time.sleep(1.0)
data.atomic_save_npy = paced_write
sys.exit(cli.main(sys.argv[1:]))
"""


def _start(args: list[str], paced: bool = False) -> subprocess.Popen:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    entry = ["-c", _PACED_CLI] if paced else ["-m", "hjepa"]
    return subprocess.Popen([sys.executable, *entry, *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _kill_when(process: subprocess.Popen, ready, timeout: float = 240.0) -> None:
    """SIGKILLs `process` as soon as `ready()` is true; fails if it ends or times out first."""
    deadline = time.monotonic() + timeout
    while not ready():
        if process.poll() is not None:
            raise AssertionError(f"process ended before it could be killed: "
                                 f"{process.stderr.read().decode()[-2000:]}")
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError("timed out waiting for the process to write its first output")
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL


def _read_bytes(path: str) -> dict[str, bytes]:
    out = {}
    for name in sorted(os.listdir(path)):
        if name.endswith(".npy"):
            with open(os.path.join(path, name), "rb") as f:
                out[name] = f.read()
    return out


def test_collect_killed_then_rerun_matches_uninterrupted(tmp_path):
    reference = str(tmp_path / "reference")
    assert cli.main([*COLLECT_ARGS, "--out", reference]) == 0

    target = str(tmp_path / "interrupted")
    partial = target + ".partial"
    process = _start([*COLLECT_ARGS, "--out", target], paced=True)
    _kill_when(process, lambda: os.path.exists(os.path.join(partial, "obs-00000.npy")))
    assert not os.path.exists(target), "a killed collection must not leave a dataset in place"
    assert not os.path.exists(os.path.join(partial, "manifest.json"))
    with pytest.raises(ValueError, match="manifest"):
        data.load(partial)

    # a kill that lands mid-write leaves a half-written temporary file beside the shards
    half = os.path.join(partial, "obs-00005.npy.tmp-99999.npy")
    with open(half, "wb") as f:
        f.write(b"\x93NUMPY half a shard")
    assert cli.main([*COLLECT_ARGS, "--out", target]) == 0
    assert not os.path.exists(partial)
    assert not [n for n in os.listdir(target) if ".tmp-" in n]
    assert _read_bytes(target) == _read_bytes(reference)
    assert data.load(target).num_episodes == 12


@pytest.fixture(scope="module")
def small_dataset(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("reliability") / "data")
    assert cli.main([*COLLECT_ARGS, "--out", path]) == 0
    return path


def _latest_step(run_dir: str) -> int | None:
    directory = os.path.join(run_dir, "checkpoints")
    if not os.path.isdir(directory):
        return None
    steps = [int(n) for n in os.listdir(directory) if n.isdigit()]
    return max(steps) if steps else None


def test_train_killed_then_rerun_matches_uninterrupted(tmp_path, small_dataset):
    reference = str(tmp_path / "reference")
    assert cli.main(["train", "--data", small_dataset, "--run-dir", reference, *TRAIN_ARGS]) == 0

    run_dir = str(tmp_path / "interrupted")
    process = _start(["train", "--data", small_dataset, "--run-dir", run_dir, *TRAIN_ARGS])
    _kill_when(process, lambda: (_latest_step(run_dir) or 0) >= 20)
    killed_at = _latest_step(run_dir)
    assert killed_at is not None and killed_at < 400, "the kill must land mid-run"

    # a kill that lands mid-save leaves orbax's temporary directory and half a metrics line
    half = os.path.join(run_dir, "checkpoints", f"{killed_at + 20}.orbax-checkpoint-tmp-99")
    os.makedirs(os.path.join(half, "default"))
    with open(os.path.join(half, "default", "manifest.ocdbt"), "wb") as f:
        f.write(b"half")
    with open(os.path.join(run_dir, "metrics.jsonl"), "a") as f:
        f.write('{"step": 99')
    assert cli.main(["train", "--data", small_dataset, "--run-dir", run_dir, *TRAIN_ARGS]) == 0
    assert not [n for n in os.listdir(os.path.join(run_dir, "checkpoints")) if "tmp" in n]
    _, _, expected = train.load_run(reference)
    _, _, resumed = train.load_run(run_dir)
    for a, b in zip(jax.tree.leaves(expected), jax.tree.leaves(resumed), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    steps = [record["step"] for record in hjepa_io.read_metrics(run_dir)]
    # one record every 20 steps: none repeated, none lost to the half line the kill left
    assert steps == list(range(20, 401, 20))


def test_same_seed_gives_bitwise_identical_training(tmp_path, small_dataset):
    first, second = str(tmp_path / "a"), str(tmp_path / "b")
    args = ["--steps", "20", "--batch-size", "16", "--window", "4", "--latent", "8",
            "--hidden", "16", "--checkpoint-every", "20", "--seed", "9", "--quiet"]
    for run_dir in (first, second):
        assert cli.main(["train", "--data", small_dataset, "--run-dir", run_dir, *args]) == 0
    _, _, a = train.load_run(first)
    _, _, b = train.load_run(second)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_truncated_checkpoint_gives_an_error_naming_it(tmp_path, tiny_run):
    import shutil

    run_dir = str(tmp_path / "run")
    shutil.copytree(tiny_run[0], run_dir)
    step_dir = os.path.join(run_dir, "checkpoints", "60")
    files = [os.path.join(d, f) for d, _, fs in os.walk(step_dir) for f in fs
             if os.path.getsize(os.path.join(d, f)) > 1000 and f != "hjepa-digest.json"]
    assert files
    for file in files:
        with open(file, "r+b") as f:
            f.truncate(64)
    with pytest.raises(ValueError, match=r"checkpoints/60 is corrupt: .* does not match its "
                                         r"digest"):
        train.load_run(run_dir)


def _params_equal(a, b) -> None:
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_a_damaged_latest_checkpoint_falls_back_and_ends_as_an_uninterrupted_run(
        tmp_path, tiny_dataset, tiny_run, tiny_model_config, tiny_train_config, capsys):
    import shutil

    run_dir = str(tmp_path / "run")
    shutil.copytree(tiny_run[0], run_dir)
    step_dir = os.path.join(run_dir, "checkpoints", "60")
    biggest = max((os.path.join(d, f) for d, _, fs in os.walk(step_dir) for f in fs),
                  key=os.path.getsize)
    with open(biggest, "r+b") as f:
        f.seek(16)
        byte = f.read(1)
        f.seek(16)
        f.write(bytes([byte[0] ^ 1]))
    state = train.fit(tiny_model_config, tiny_train_config, tiny_dataset, run_dir,
                      progress=False)
    assert "checkpoints/60 is corrupt" in capsys.readouterr().err
    assert os.path.isdir(os.path.join(run_dir, "corrupt-checkpoints", "60"))
    _params_equal(state.params, tiny_run[1].params)
    _params_equal(train.load_run(run_dir)[2], tiny_run[1].params)
    steps = [r["step"] for r in hjepa_io.read_metrics(run_dir)]
    assert steps == sorted(set(steps)) and steps[-1] == 60


def test_a_non_finite_loss_stops_training_and_keeps_the_last_good_checkpoint(
        tmp_path, tiny_dataset, tiny_run, tiny_model_config, tiny_train_config):
    import shutil

    from hjepa import checkpoint

    run_dir = str(tmp_path / "run")
    shutil.copytree(tiny_run[0], run_dir)
    shutil.rmtree(os.path.join(run_dir, "checkpoints", "60"))  # as if stopped after step 30
    hjepa_io.truncate_metrics(run_dir, 30)
    poisoned = str(tmp_path / "data")
    shutil.copytree(tiny_dataset.path, poisoned)
    for name in os.listdir(poisoned):  # every observation NaN: the next loss is not finite
        if name.startswith("obs-"):
            array = np.load(os.path.join(poisoned, name))
            np.save(os.path.join(poisoned, name), np.full_like(array, np.nan))
    kept = os.path.join(run_dir, "checkpoints", "30")
    with pytest.raises(train.TrainingError,
                       match=r"non-finite loss at step 40; the last good checkpoint \(step 30\) "
                             r"is kept"):
        train.fit(tiny_model_config, tiny_train_config, data.load(poisoned), run_dir,
                  progress=False)
    assert sorted(os.listdir(os.path.join(run_dir, "checkpoints"))) == ["30"]
    assert checkpoint.verify(kept)
    assert [r["step"] for r in hjepa_io.read_metrics(run_dir)] == [10, 20, 30]


def test_gradients_are_clipped_to_the_global_norm_before_adam():
    import optax

    config = train.TrainConfig(grad_clip=1.0)
    gradients = {"w": np.array([30.0, 40.0], np.float32)}  # global norm 50
    transform = train.optimizer(config)
    state = transform.init({"w": np.zeros(2, np.float32)})
    _, state = transform.update(gradients, state, {"w": np.zeros(2, np.float32)})
    adam = [s for s in jax.tree.leaves(state, is_leaf=lambda s: isinstance(
        s, optax.ScaleByAdamState)) if isinstance(s, optax.ScaleByAdamState)]
    assert len(adam) == 1
    # first moment after one step: (1 - b1) * clipped gradient = 0.1 * [0.6, 0.8]
    np.testing.assert_allclose(np.asarray(adam[0].mu["w"]), [0.06, 0.08], rtol=1e-6)
    np.testing.assert_allclose(np.asarray(adam[0].nu["w"]), [0.001 * 0.36, 0.001 * 0.64],
                               rtol=1e-5)
