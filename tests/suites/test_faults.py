"""The fault-and-bad-input suite of the command line: a user's mistakes and faults of the
environment, tried as a hostile user would (docs/reliability.md has the table of what is
covered).

Every case runs `hjepa` in-process through its entry function (`hjepa.cli.main`) on a copy
of one small workspace (a tiny dataset and a tiny run made by the CLI itself), and asserts:

- the exit status (2: refused, 3: the environment failed, 70: a bug; `hjepa --help`),
- one message on stderr that names the argument or path, and no traceback,
- that no byte of the workspace changed and nothing was added (a refused call writes nothing).

The cases that need a second process (locks held by another process, kills) are at the end.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from cli_helpers import REPO_ROOT, run_cli

from hjepa import checkpoint, cli, data, ownership, train

TRAIN_FLAGS = ["--steps", "4", "--batch-size", "4", "--window", "2", "--checkpoint-every", "2",
               "--hidden", "8", "--latent", "4", "--quiet"]
ORACLE = ["plan", "--task", "reacher", "--oracle", "--episodes", "1", "--samples", "4",
          "--horizon", "2", "--iterations", "1", "--quiet"]


# ----------------------------------------------------------------------------- workspace


@pytest.fixture(scope="module")
def base(tmp_path_factory, tiny_dataset):
    """A workspace made once: `data` (the tiny dataset), `run` (4 steps trained by `hjepa
    train`, checkpoints at 2 and 4), a user's directory `user/` and a user's file."""
    root = str(tmp_path_factory.mktemp("faults") / "base")
    os.makedirs(root)
    shutil.copytree(tiny_dataset.path, os.path.join(root, "data"))
    code = cli.main(["train", "--data", os.path.join(root, "data"), "--run-dir",
                     os.path.join(root, "run"), *TRAIN_FLAGS])
    assert code == 0
    os.makedirs(os.path.join(root, "user"))
    for name, text in (("user/notes.txt", "my notes"), ("user/config.json", '{"mine": 1}'),
                       ("user/main.py", "print('mine')\n"), ("file.txt", "a user's file"),
                       ("user.html", "<p>mine</p>"), ("user.gif", "GIF89a mine"),
                       ("user.png", "not hjepa's")):
        with open(os.path.join(root, name), "w") as f:
            f.write(text)
    return root


class Workspace:
    """Paths in one test's copy of the workspace: `ws.data`, `ws.run`, `ws("user/x")`."""

    def __init__(self, root: str):
        self.root = root
        self.data = os.path.join(root, "data")
        self.run = os.path.join(root, "run")
        self.user = os.path.join(root, "user")
        self.file = os.path.join(root, "file.txt")

    def __call__(self, relative: str) -> str:
        return os.path.join(self.root, relative)


@pytest.fixture
def ws(tmp_path, base):
    root = str(tmp_path / "ws")
    shutil.copytree(base, root)
    return Workspace(root)


def snapshot(root: str) -> dict[str, str]:
    """{path relative to root: SHA-256 of a file, or "dir"} of everything under `root`."""
    found = {}
    for directory, dirs, files in os.walk(root):
        for name in dirs:
            found[os.path.relpath(os.path.join(directory, name), root)] = "dir"
        for name in files:
            path = os.path.join(directory, name)
            with open(path, "rb") as f:
                found[os.path.relpath(path, root)] = hashlib.sha256(f.read()).hexdigest()
    return found


def assert_refused(ws, argv, capsys, *, code: int, message: str) -> str:
    """Runs `hjepa argv`: the exit status is `code`, stderr matches `message` on one line
    with no traceback, and the workspace is byte for byte what it was."""
    before = snapshot(ws.root)
    got, _, err = run_cli(argv, capsys)
    assert got == code, f"exit status {got}, expected {code}; stderr:\n{err}"
    assert "Traceback" not in err, err
    assert re.search(message, err), f"stderr does not match {message!r}:\n{err}"
    assert snapshot(ws.root) == before, "a refused call must leave every byte as it was"
    return err


def flip_byte(path: str, offset: int = 0) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0xFF]))


def write(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


def edit_json(path: str, change) -> None:
    with open(path) as f:
        obj = json.load(f)
    change(obj)
    write(path, json.dumps(obj))


def checkpoint_file(ws, pattern: str) -> str:
    files = sorted(glob.glob(os.path.join(ws.run, "checkpoints", "4", pattern), recursive=True))
    assert files, pattern
    return max(files, key=os.path.getsize)


# ----------------------------------------------------------------------------- overwrite

OVERWRITE = [
    ("train --overwrite into a user's directory with a config.json",
     lambda ws: None, lambda ws: ["train", "--data", ws.data, "--run-dir", ws.user,
                                  "--overwrite", *TRAIN_FLAGS],
     r"run_dir: .*user is not a run directory hjepa wrote \(it holds config.json, main.py"),
    ("train into a user's directory",
     lambda ws: None, lambda ws: ["train", "--data", ws.data, "--run-dir", ws.user,
                                  *TRAIN_FLAGS],
     r"run_dir: .*user is not a run directory hjepa wrote"),
    ("train --overwrite of another config over a run holding a user's file",
     lambda ws: write(ws("run/notes.txt"), "mine"),
     lambda ws: ["train", "--data", ws.data, "--run-dir", ws.run, "--overwrite",
                 *TRAIN_FLAGS[:-1], "--latent", "6"],
     r"run_dir: .*run holds files hjepa did not write \(notes.txt\)"),
    ("train --overwrite on another dataset over a run holding a user's directory",
     lambda ws: (os.makedirs(ws("run/mine")), _other_dataset(ws)),
     lambda ws: ["train", "--data", ws("data2"), "--run-dir", ws.run, "--overwrite",
                 *TRAIN_FLAGS],
     r"run_dir: .*run holds files hjepa did not write \(mine\)"),
    ("train --run-dir that is a file",
     lambda ws: None, lambda ws: ["train", "--data", ws.data, "--run-dir", ws.file,
                                  *TRAIN_FLAGS],
     r"run_dir: .*file.txt is a file, expected a directory"),
    ("train --run-dir under a file",
     lambda ws: None, lambda ws: ["train", "--data", ws.data, "--run-dir",
                                  ws("file.txt/run"), *TRAIN_FLAGS],
     r"run_dir: .*file.txt/run lies under .*file.txt, which is a file"),
    ("collect --overwrite into a user's directory",
     lambda ws: None, lambda ws: ["collect", "reacher", "--out", ws.user, "--overwrite",
                                  "--episodes", "2", "--quiet"],
     r"path: .*user is not a dataset directory hjepa wrote \(it holds config.json, main.py, "
     r"notes.txt\)"),
    ("collect --overwrite over a dataset holding a user's file",
     lambda ws: write(ws("data/notes.txt"), "mine"),
     lambda ws: ["collect", "reacher", "--out", ws.data, "--overwrite", "--episodes", "2",
                 "--quiet"],
     r"path: .*data holds files hjepa did not write \(notes.txt\)"),
    ("collect over an existing dataset",
     lambda ws: None, lambda ws: ["collect", "reacher", "--out", ws.data, "--episodes", "2",
                                  "--quiet"],
     r"path: .*data already exists; pass overwrite=True \(--overwrite\)"),
    ("collect --out that is a file",
     lambda ws: None, lambda ws: ["collect", "reacher", "--out", ws.file, "--quiet"],
     r"path: .*file.txt is a file, expected a directory"),
    ("collect --overwrite --out that is a file",
     lambda ws: None, lambda ws: ["collect", "reacher", "--out", ws.file, "--overwrite",
                                  "--quiet"],
     r"path: .*file.txt is a file, expected a directory"),
    ("collect --out under a file",
     lambda ws: None, lambda ws: ["collect", "reacher", "--out", ws("file.txt/d"), "--quiet"],
     r"path: .*file.txt/d lies under .*file.txt, which is a file"),
    ("collect over a user's directory named like a partial collection",
     lambda ws: os.makedirs(ws("new.partial/mine")),
     lambda ws: ["collect", "reacher", "--out", ws("new"), "--episodes", "2", "--quiet"],
     r"path: .*new.partial is not a dataset directory hjepa wrote \(it holds mine\)"),
    ("demo --out a user's directory",
     lambda ws: None, lambda ws: ["demo", "--quick", "--out", ws.user, "--quiet"],
     r"out: .*user is not a demo directory hjepa wrote"),
    ("demo --overwrite --out a user's directory",
     lambda ws: None, lambda ws: ["demo", "--quick", "--out", ws.user, "--overwrite",
                                  "--quiet"],
     r"out: .*user is not a demo directory hjepa wrote"),
    ("demo --out that is a file",
     lambda ws: None, lambda ws: ["demo", "--quick", "--out", ws.file, "--quiet"],
     r"out: .*file.txt is a file, expected a directory"),
    ("plan --render --overwrite over a user's HTML file",
     lambda ws: None, lambda ws: [*ORACLE, "--render", ws("user.html"), "--overwrite"],
     r"--render: .*user.html exists and hjepa did not write it"),
    ("plan --gif --overwrite over a user's GIF",
     lambda ws: None, lambda ws: ["plan", "--run-dir", ws.run, "--episodes", "1", "--gif",
                                  ws("user.gif"), "--overwrite", "--quiet"],
     r"--gif: .*user.gif exists and hjepa did not write it"),
    ("plan --render over an existing file",
     lambda ws: None, lambda ws: [*ORACLE, "--render", ws("user.html")],
     r"--render: .*user.html exists; choose another name or pass --overwrite"),
    ("plan --render in a missing directory",
     lambda ws: None, lambda ws: [*ORACLE, "--render", ws("nowhere/out.html")],
     r"--render: the directory .*nowhere does not exist"),
    ("plan --render under a file",
     lambda ws: None, lambda ws: [*ORACLE, "--render", ws("file.txt/out.html")],
     r"--render: .*file.txt/out.html lies under a file"),
    ("plan --render that is a directory",
     lambda ws: os.makedirs(ws("pages.html")),
     lambda ws: [*ORACLE, "--render", ws("pages.html")],
     r"--render: .*pages.html is a directory"),
    ("plan --render without .html",
     lambda ws: None, lambda ws: [*ORACLE, "--render", ws("out.txt")],
     r"--render: expected a file name ending in .html"),
    ("plan --gif without .gif",
     lambda ws: None, lambda ws: [*ORACLE, "--gif", ws("out.png")],
     r"--gif: expected a file name ending in .gif"),
    ("inspect --plot over an existing file",
     lambda ws: None, lambda ws: ["inspect", ws.run, "--plot", ws("user.png")],
     r"--plot: .*user.png exists"),
    ("inspect --plot under a file",
     lambda ws: None, lambda ws: ["inspect", ws.run, "--plot", ws("file.txt/c.png")],
     r"--plot: .*lies under a file"),
    ("critic --run-dir a user's directory",
     lambda ws: None, lambda ws: ["critic", "--run-dir", ws.user, "--data", ws.data, "--quiet"],
     r"run .*user: .*config.json is not a run record hjepa can read"),
]


def _other_dataset(ws) -> None:
    """`data2`: the dataset with one observation changed (its digests updated): another
    dataset of the same task and shapes."""
    shutil.copytree(ws.data, ws("data2"))
    shard = ws("data2/obs-00000.npy")
    array = np.load(shard)
    array[0, 0, 0] += 1.0
    np.save(shard, array)
    edit_json(ws("data2/manifest.json"),
              lambda m: m["sha256"].update({"obs-00000.npy": data.file_sha256(shard)}))


@pytest.mark.parametrize("name,setup,argv,message", OVERWRITE, ids=[c[0] for c in OVERWRITE])
def test_overwrite_removes_only_what_hjepa_wrote(ws, capsys, name, setup, argv, message):
    setup(ws)
    assert_refused(ws, argv(ws), capsys, code=2, message=message)


# ----------------------------------------------------------------------------- checkpoints

CORRUPTIONS = [
    ("a flipped byte in a parameter file",
     lambda ws: flip_byte(checkpoint_file(ws, "default/d/*"), 8)),
    ("a flipped byte in the array metadata",
     lambda ws: flip_byte(checkpoint_file(ws, "default/_METADATA"), 3)),
    ("a flipped byte in the ocdbt manifest",
     lambda ws: flip_byte(checkpoint_file(ws, "default/manifest.ocdbt"), 5)),
    ("a flipped byte in the checkpoint metadata",
     lambda ws: flip_byte(checkpoint_file(ws, "_CHECKPOINT_METADATA"), 2)),
    ("a truncated parameter file",
     lambda ws: os.truncate(checkpoint_file(ws, "default/d/*"), 10)),
    ("an emptied parameter file",
     lambda ws: os.truncate(checkpoint_file(ws, "default/d/*"), 0)),
    ("a deleted parameter file", lambda ws: os.remove(checkpoint_file(ws, "default/d/*"))),
    ("a file added to the checkpoint",
     lambda ws: write(os.path.join(ws.run, "checkpoints", "4", "default", "extra"), "x")),
]


@pytest.mark.parametrize("command", ["plan", "critic"])
@pytest.mark.parametrize("name,corrupt", CORRUPTIONS, ids=[c[0] for c in CORRUPTIONS])
def test_a_damaged_checkpoint_is_refused_naming_it(ws, capsys, name, corrupt, command):
    corrupt(ws)
    argv = {"plan": ["plan", "--run-dir", ws.run, "--episodes", "1", "--quiet"],
            "critic": ["critic", "--run-dir", ws.run, "--data", ws.data, "--quiet"]}[command]
    assert_refused(ws, argv, capsys, code=2,
                   message=r"checkpoint .*run/checkpoints/4 is corrupt: .* (does not match its "
                           r"digest|is missing|was not part of the checkpoint)")


def test_a_corrupt_digest_file_is_refused(ws, capsys):
    write(os.path.join(ws.run, "checkpoints", "4", checkpoint.DIGEST), "{not json")
    assert_refused(ws, ["plan", "--run-dir", ws.run, "--quiet"], capsys, code=2,
                   message=r"checkpoint .*checkpoints/4: its digest file .* is corrupt")


def test_inspect_names_a_damaged_checkpoint_and_calls_the_run_incomplete(ws, capsys):
    flip_byte(checkpoint_file(ws, "default/d/*"), 8)
    code, out, _ = run_cli(["inspect", ws.run, "--json"], capsys)
    summary = json.loads(out)
    assert code == 0
    assert summary["checkpoints"]["2"] == "verified"
    assert summary["checkpoints"]["4"].startswith("corrupt: checkpoint ")
    assert summary["latest_good_step"] == 2 and summary["complete"] is False


# ----------------------------------------------------------------------------- datasets


def _shard(ws, name="obs-00000.npy") -> str:
    return os.path.join(ws.data, name)


MANIFESTS = [
    ("manifest not JSON", lambda ws: write(ws("data/manifest.json"), "{oops"),
     r"dataset manifest .*data/manifest.json is corrupt"),
    ("manifest a list", lambda ws: write(ws("data/manifest.json"), "[1, 2]"),
     r"dataset manifest .*manifest.json: format is not 'hjepa-dataset'"),
    ("manifest of another format",
     lambda ws: edit_json(ws("data/manifest.json"), lambda m: m.update(format="other")),
     r"dataset manifest .*manifest.json: format is not 'hjepa-dataset'"),
    ("manifest without shards",
     lambda ws: edit_json(ws("data/manifest.json"), lambda m: m.pop("shards")),
     r"dataset manifest .*manifest.json is incomplete: missing \['shards'\]"),
    ("shards not a list",
     lambda ws: edit_json(ws("data/manifest.json"), lambda m: m.update(shards=5)),
     r"dataset manifest .*manifest.json is malformed"),
    ("a shard without its obs file",
     lambda ws: edit_json(ws("data/manifest.json"), lambda m: m["shards"][0].pop("obs")),
     r"dataset manifest .*manifest.json is malformed \(KeyError"),
    ("obs_shape a string",
     lambda ws: edit_json(ws("data/manifest.json"), lambda m: m.update(obs_shape="five")),
     r"dataset (manifest .*manifest.json is malformed|file .*obs-00000.npy: expected)"),
    ("episode_length a string",
     lambda ws: edit_json(ws("data/manifest.json"), lambda m: m.update(episode_length="10")),
     r"dataset manifest .*manifest.json is malformed"),
    ("a missing shard file", lambda ws: os.remove(_shard(ws)),
     r"dataset file .*obs-00000.npy is missing or corrupt"),
    ("a truncated shard file", lambda ws: os.truncate(_shard(ws), 100),
     r"dataset file .*obs-00000.npy is missing or corrupt"),
    ("a shard of another dtype",
     lambda ws: np.save(_shard(ws, "actions-00000.npy"), np.zeros((4, 10, 2), np.int32)),
     r"dataset file .*actions-00000.npy: expected float32\[4, 10, 2\], found int32"),
    ("a shard of another shape",
     lambda ws: np.save(_shard(ws), np.zeros((4, 11, 6), np.float32)),
     r"dataset file .*obs-00000.npy: expected float32\[4, 11, 5\], found float32\[4, 11, 6\]"),
    ("manifest of an unknown task",
     lambda ws: edit_json(ws("data/manifest.json"), lambda m: m.update(task="nosuch")),
     r"task name: expected one of"),
]


# (case, command): every damage under every command that reads a dataset; `hjepa inspect`
# reports an unknown task's name rather than refusing it.
DATASET_CASES = [(*case, command) for case in MANIFESTS for command in ("train", "critic",
                                                                        "inspect")
                 if (case[0], command) != ("manifest of an unknown task", "inspect")]


@pytest.mark.parametrize("name,damage,message,command", DATASET_CASES,
                         ids=[f"{c[0]}-{c[3]}" for c in DATASET_CASES])
def test_a_hand_edited_or_damaged_dataset_is_refused(ws, capsys, name, damage, message,
                                                     command):
    damage(ws)
    argv = {"train": ["train", "--data", ws.data, "--run-dir", ws("new-run"), *TRAIN_FLAGS],
            "critic": ["critic", "--run-dir", ws.run, "--data", ws.data, "--window", "4",
                       "--quiet"],
            "inspect": ["inspect", ws.data]}[command]
    if (name, command) == ("manifest of an unknown task", "critic"):
        message = r"--data: the run was trained on 'reacher' \(state\), got a dataset of 'nosuch'"
    assert_refused(ws, argv, capsys, code=2, message=message)


def test_resuming_on_another_dataset_is_refused_naming_both(ws, capsys):
    _other_dataset(ws)
    assert_refused(ws, ["train", "--data", ws("data2"), "--run-dir", ws.run, *TRAIN_FLAGS],
                   capsys, code=2,
                   message=r"dataset: the run in .*run was trained on another dataset "
                           r"\(.*/data, fingerprint [0-9a-f]{16}\), got .*/data2 \('reacher', "
                           r"state, fingerprint [0-9a-f]{16}\)")


def test_inspect_reports_a_changed_shard(ws, capsys):
    array = np.load(_shard(ws))
    array[1, 2, 3] = 7.0
    np.save(_shard(ws), array)
    code, out, _ = run_cli(["inspect", ws.data, "--json"], capsys)
    assert code == 0
    assert json.loads(out)["shards_check"].startswith("corrupt: dataset file ")


# ----------------------------------------------------------------------------- run records

RUN_RECORDS = [
    ("config.json not JSON", lambda ws: write(ws("run/config.json"), "{oops"),
     r"run/config.json is corrupt"),
    ("config.json binary", lambda ws: open(ws("run/config.json"), "wb").write(b"\xff\xfe\x00"),
     r"run/config.json is corrupt"),
    ("config.json a list", lambda ws: write(ws("run/config.json"), "[]"),
     r"run/config.json is not a run record hjepa can read"),
    ("config.json without the model",
     lambda ws: edit_json(ws("run/config.json"), lambda r: r.pop("model")),
     r"run/config.json is not a run record hjepa can read"),
    ("model not a dict",
     lambda ws: edit_json(ws("run/config.json"), lambda r: r.update(model=5)),
     r"run/config.json is not a run record hjepa can read"),
    ("latent size a string",
     lambda ws: edit_json(ws("run/config.json"), lambda r: r["model"].update(latent_size="x")),
     r"run/config.json is not a run record hjepa can read"),
    ("dataset without its task",
     lambda ws: edit_json(ws("run/config.json"), lambda r: r["dataset"].pop("task")),
     r"run/config.json is not a run record hjepa can read"),
    ("model of another shape than its checkpoint",
     lambda ws: edit_json(ws("run/config.json"), lambda r: r["model"].update(latent_size=6)),
     r"checkpoint .*run/checkpoints/4 could not be restored"),
    ("config.json a directory",
     lambda ws: (os.remove(ws("run/config.json")), os.makedirs(ws("run/config.json"))),
     r"run/config.json is a directory, expected a JSON file"),
    ("config.json missing", lambda ws: os.remove(ws("run/config.json")),
     r"run/config.json does not exist"),
]


@pytest.mark.parametrize("command", ["plan", "critic"])
@pytest.mark.parametrize("name,damage,message", RUN_RECORDS, ids=[c[0] for c in RUN_RECORDS])
def test_a_hand_edited_run_record_is_refused(ws, capsys, name, damage, message, command):
    damage(ws)
    argv = {"plan": ["plan", "--run-dir", ws.run, "--episodes", "1", "--quiet"],
            "critic": ["critic", "--run-dir", ws.run, "--data", ws.data, "--quiet"]}[command]
    assert_refused(ws, argv, capsys, code=2, message=message)


@pytest.mark.parametrize("argv,message", [
    (lambda ws: ["plan", "--run-dir", ws("missing"), "--quiet"],
     r"run_dir: expected a training run directory, .*missing does not exist"),
    (lambda ws: ["plan", "--run-dir", ws.file, "--quiet"],
     r"run_dir: expected a training run directory, .*file.txt is a file"),
    (lambda ws: ["critic", "--run-dir", ws("missing"), "--data", ws.data, "--quiet"],
     r"run_dir: expected a training run directory, .*missing does not exist"),
    (lambda ws: ["inspect", ws("missing")], r"path: .*missing does not exist"),
    (lambda ws: ["inspect", ws.user], r"path: .*user is not a dataset directory"),
    (lambda ws: ["train", "--data", ws.user, "--run-dir", ws("r"), "--quiet"],
     r"dataset path: .*user has no manifest.json"),
    (lambda ws: ["train", "--data", ws.file, "--run-dir", ws("r"), "--quiet"],
     r"dataset path: expected a dataset directory"),
], ids=["plan missing run", "plan run is a file", "critic missing run", "inspect missing",
        "inspect a user's directory", "train on a user's directory", "train on a file"])
def test_missing_or_wrong_paths_are_refused(ws, capsys, argv, message):
    assert_refused(ws, argv(ws), capsys, code=2, message=message)


# ----------------------------------------------------------------------------- numbers

FLOAT_FLAGS = [
    (lambda ws: ORACLE, "--temperature"), (lambda ws: ORACLE, "--noise-std"),
    (lambda ws: ORACLE, "--noise-decay"),
    (lambda ws: ["plan", "--run-dir", ws.run, "--quiet"], "--high-noise-std"),
    (lambda ws: ["plan", "--run-dir", ws.run, "--quiet"], "--snap-radius"),
    (lambda ws: ["train", "--data", ws.data, "--run-dir", ws("r"), *TRAIN_FLAGS],
     "--learning-rate"),
    (lambda ws: ["train", "--data", ws.data, "--run-dir", ws("r"), *TRAIN_FLAGS],
     "--inverse-dynamics"),
    (lambda ws: ["critic", "--run-dir", ws.run, "--data", ws.data, "--quiet"], "--max-steps"),
]


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "abc"])
@pytest.mark.parametrize("argv,flag", FLOAT_FLAGS, ids=[f for _, f in FLOAT_FLAGS])
def test_non_finite_numbers_are_refused_where_parsed(ws, capsys, argv, flag, value):
    assert_refused(ws, [*argv(ws), f"{flag}={value}"], capsys, code=2,
                   message=rf"argument {flag}: expected a (finite )?number, got '{value}'")


SEEDED = {
    "collect": lambda ws: ["collect", "reacher", "--out", ws("d"), "--quiet"],
    "train": lambda ws: ["train", "--data", ws.data, "--run-dir", ws("r"), *TRAIN_FLAGS],
    "plan": lambda ws: ORACLE,
    "critic": lambda ws: ["critic", "--run-dir", ws.run, "--data", ws.data, "--window", "4",
                          "--quiet"],
    "demo": lambda ws: ["demo", "--quick", "--out", ws("demo"), "--quiet"],
}


@pytest.mark.parametrize("value", ["-1", str(2**32), "1.5", "x"])
@pytest.mark.parametrize("command", sorted(SEEDED))
def test_out_of_range_seeds_are_refused(ws, capsys, command, value):
    assert_refused(ws, [*SEEDED[command](ws), "--seed", value], capsys, code=2,
                   message=r"argument --seed: expected (a seed in \[0, 2\*\*32\)|an integer "
                           r"seed), got")


COUNTS = [
    ("collect", "--episodes", "0", r"num_episodes: expected a positive integer, got 0"),
    ("collect", "--episodes", "-3", r"num_episodes: expected a positive integer, got -3"),
    ("collect", "--episode-length", "0", r"episode_length: expected a positive integer"),
    ("collect", "--episodes-per-shard", "0", r"episodes_per_shard: expected a positive integer"),
    ("collect", "--image-size", "2", r"image_size: expected an integer >= 8"),
    ("train", "--steps", "0", r"steps: expected a positive integer, got 0"),
    ("train", "--batch-size", "1", r"batch_size: expected at least 2"),
    ("train", "--window", "0", r"window: expected a positive integer, got 0"),
    ("train", "--window", "99", r"window: expected at most the dataset's episode length 10"),
    ("train", "--latent", "0", r"latent_size: expected a positive integer, got 0"),
    ("train", "--hidden", "0", r"(encoder|predictor)_hidden: expected positive"),
    ("train", "--checkpoint-every", "0", r"checkpoint_every: expected a positive integer"),
    ("train", "--levels", "0", r"num_levels: expected a positive integer"),
    ("train", "--inverse-dynamics", "-1", r"--inverse-dynamics: expected a weight >= 0"),
    ("train", "--learning-rate", "-0.1", r"learning_rate: expected a finite positive number"),
    ("train", "--learning-rate", "0", r"learning_rate: expected a finite positive number"),
    ("plan", "--episodes", "0", r"num_episodes: expected a positive integer, got 0"),
    ("plan", "--samples", "0", r"num_samples: expected a positive integer, got 0"),
    ("plan", "--horizon", "0", r"horizon: expected a positive integer, got 0"),
    ("plan", "--iterations", "0", r"iterations: expected a positive integer, got 0"),
    ("plan", "--temperature", "-1", r"temperature: expected a finite positive number"),
    ("plan", "--noise-std", "0", r"noise_std: expected a finite positive number"),
    ("plan", "--render-episodes", "0", r"--render-episodes: expected 1 to --episodes"),
    ("critic", "--steps", "0", r"steps: expected a positive integer, got 0"),
    ("critic", "--embedding", "0", r"embedding_size: expected a positive integer, got 0"),
    ("critic", "--max-steps", "0", r"max_steps: expected a finite positive number"),
    ("critic", "--window", "0", r"window: expected"),
]


@pytest.mark.parametrize("command,flag,value,message", COUNTS,
                         ids=[f"{c} {f} {v}" for c, f, v, _ in COUNTS])
def test_out_of_range_counts_are_refused_before_any_work(ws, capsys, command, flag, value,
                                                         message):
    argv = [*SEEDED[command](ws), flag, value]
    if flag == "--render-episodes":
        argv += ["--render", ws("out.html")]
    if flag == "--image-size":
        argv += ["--obs", "pixels"]
    assert_refused(ws, argv, capsys, code=2, message=message)


# ----------------------------------------------------------------------------- locks


@contextlib.contextmanager
def held(directory: str):
    """The lock on `directory` held as another process would hold it (its own descriptor)."""
    with ownership.locked(directory, name="test"):
        yield


LOCKED = [
    ("train", lambda ws: ws.run,
     lambda ws: ["train", "--data", ws.data, "--run-dir", ws.run, *TRAIN_FLAGS], "run_dir"),
    ("critic", lambda ws: ws.run,
     lambda ws: ["critic", "--run-dir", ws.run, "--data", ws.data, "--steps", "2", "--window",
                 "4", "--quiet"],
     "--run-dir"),
    ("collect", lambda ws: ws("new.partial"),
     lambda ws: ["collect", "reacher", "--out", ws("new"), "--episodes", "2", "--quiet"],
     "path"),
    ("demo", lambda ws: ws("demo"),
     lambda ws: ["demo", "--quick", "--out", ws("demo"), "--quiet"], "out"),
]


@pytest.mark.parametrize("name,directory,argv,argument", LOCKED, ids=[c[0] for c in LOCKED])
def test_a_second_writer_is_refused_at_once_naming_the_holder(ws, capsys, name, directory,
                                                              argv, argument):
    path = directory(ws)
    existed = os.path.exists(path)
    with held(path):
        before = snapshot(ws.root)
        t0 = time.perf_counter()
        code, _, err = run_cli(argv(ws), capsys)
        seconds = time.perf_counter() - t0
        assert snapshot(ws.root) == before
    assert code == 2, err
    assert re.search(rf"{re.escape(argument)}: .* is in use by another hjepa process "
                     rf"\(process {os.getpid()} on ", err), err
    assert seconds < 30, "refused at once, not after waiting"
    assert os.path.exists(path) == existed, "the lock leaves nothing behind"


def test_a_stale_lock_of_a_killed_process_is_taken_over(ws, capsys):
    write(os.path.join(ws.run, ownership.LOCK), "999999 on a-host-that-died\n")
    code, _, err = run_cli(["train", "--data", ws.data, "--run-dir", ws.run, *TRAIN_FLAGS],
                           capsys)
    assert code == 0, err
    assert not os.path.exists(os.path.join(ws.run, ownership.LOCK))


def test_a_lock_held_by_another_process_then_freed_by_kill(ws, capsys):
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time\nfrom hjepa import ownership\n"
         "with ownership.locked(sys.argv[1], name='x'):\n"
         "    print('held', flush=True)\n    time.sleep(120)\n", ws.run],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert_refused(ws, ["train", "--data", ws.data, "--run-dir", ws.run, *TRAIN_FLAGS],
                       capsys, code=2, message=rf"process {holder.pid} on ")
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
    code, _, err = run_cli(["train", "--data", ws.data, "--run-dir", ws.run, *TRAIN_FLAGS],
                           capsys)
    assert code == 0, err


# ----------------------------------------------------------------------------- environment


def _fail_with(monkeypatch, target: str, number: int):
    """Makes the function `target` ("module.attr") raise OSError(number) naming its path."""
    module_name, attr = target.rsplit(".", 1)
    module = sys.modules[module_name]

    def fail(path, *args, **kwargs):
        raise OSError(number, os.strerror(number), str(path))

    monkeypatch.setattr(module, attr, fail)


ENVIRONMENT = [
    ("a full disk while collecting", "hjepa.data.atomic_save_npy", errno.ENOSPC,
     lambda ws: ["collect", "reacher", "--out", ws("new"), "--episodes", "4",
                 "--episode-length", "10", "--episodes-per-shard", "4", "--quiet"],
     r"error: No space left on device: .*new.partial/actions-00000.npy"),
    ("a full disk writing the run record", "hjepa.data_lib_json", errno.ENOSPC,
     lambda ws: ["train", "--data", ws.data, "--run-dir", ws("r"), *TRAIN_FLAGS],
     r"error: No space left on device: .*r/config.json"),
    ("permission denied creating the run directory", "os.makedirs", errno.EACCES,
     lambda ws: ["train", "--data", ws.data, "--run-dir", ws("r"), *TRAIN_FLAGS],
     r"error: Permission denied: .*/r"),
    ("permission denied creating the dataset", "os.makedirs", errno.EACCES,
     lambda ws: ["collect", "reacher", "--out", ws("d"), "--episodes", "2", "--quiet"],
     r"error: Permission denied: .*d.partial"),
    ("an I/O error reading the dataset", "numpy.load", errno.EIO,
     lambda ws: ["train", "--data", ws.data, "--run-dir", ws("r"), *TRAIN_FLAGS],
     r"dataset file .*obs-00000.npy is missing or corrupt: \[Errno 5\] Input/output error"),
    ("a read-only file system for the demo", "hjepa.ownership.mark", errno.EROFS,
     lambda ws: ["demo", "--quick", "--out", ws("demo"), "--quiet"],
     r"error: Read-only file system: .*demo"),
]


@pytest.mark.parametrize("name,target,number,argv,message", ENVIRONMENT,
                         ids=[c[0] for c in ENVIRONMENT])
def test_environment_faults_are_one_line_and_exit_3(ws, capsys, monkeypatch, name, target,
                                                    number, argv, message):
    if target == "hjepa.data_lib_json":  # the run record, written through hjepa.data
        target = "hjepa.data.atomic_write_json"
    _fail_with(monkeypatch, target, number)
    code = 2 if target == "numpy.load" else 3
    assert_refused(ws, argv(ws), capsys, code=code, message=message)


@pytest.mark.parametrize("argv,argument", [
    (lambda ws: ["collect", "reacher", "--out", ws("d"), "--quiet"], "path"),
    (lambda ws: ["train", "--data", ws.data, "--run-dir", ws("r"), *TRAIN_FLAGS], "run_dir"),
    (lambda ws: ["demo", "--quick", "--out", ws("demo"), "--quiet"], "out"),
], ids=["collect", "train", "demo"])
def test_an_unwritable_output_is_refused_before_the_work(ws, capsys, monkeypatch, argv,
                                                         argument):
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: False if os.path.abspath(path)
                        == ws.root else real_access(path, mode))
    assert_refused(ws, argv(ws), capsys, code=2,
                   message=rf"{argument}: .*ws is not writable \(permission denied\)")


def test_an_unwritable_picture_directory_is_refused_before_planning(ws, capsys, monkeypatch):
    import tempfile

    real = tempfile.mkstemp

    def mkstemp(*args, dir=None, **kwargs):
        if dir == ws.root:
            raise PermissionError(errno.EACCES, "Permission denied", dir)
        return real(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    assert_refused(ws, [*ORACLE, "--render", ws("out.html")], capsys, code=2,
                   message=r"--render: cannot write in .*ws \(Permission denied\)")


def test_a_full_disk_while_saving_a_checkpoint_keeps_the_previous_ones(ws, capsys, monkeypatch):
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", os.path.join(ws.run, "x"))

    monkeypatch.setattr(checkpoint, "save", full)
    before = {k: v for k, v in snapshot(ws.run).items() if k.startswith("checkpoints")}
    code, _, err = run_cli(["train", "--data", ws.data, "--run-dir", ws.run, *TRAIN_FLAGS[:1],
                            "6", *TRAIN_FLAGS[2:]], capsys)
    # "--steps 6": another configuration, so the run is refused before any save...
    assert code == 2 and "another configuration" in err
    code, _, err = run_cli(["train", "--data", ws.data, "--run-dir", ws("r"), *TRAIN_FLAGS],
                           capsys)
    assert code == 3 and "No space left on device" in err and "Traceback" not in err
    after = {k: v for k, v in snapshot(ws.run).items() if k.startswith("checkpoints")}
    assert after == before


# ----------------------------------------------------------------------------- metrics


def test_a_garbage_line_in_the_metrics_loses_no_record_on_rerun(ws, capsys):
    with open(os.path.join(ws.run, "metrics.jsonl"), "a") as f:
        f.write("garbage that is not JSON\n")
    before = snapshot(ws.run)["metrics.jsonl"]
    code, _, err = run_cli(["train", "--data", ws.data, "--run-dir", ws.run, *TRAIN_FLAGS],
                           capsys)
    assert code == 0, err
    assert snapshot(ws.run)["metrics.jsonl"] == before


def test_half_a_metrics_line_left_by_a_kill_swallows_no_later_record(tmp_path):
    from hjepa import io as hjepa_io

    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 10, "loss": 1.0}\n{"step": 2')  # killed mid-write
    hjepa_io.append_metrics(str(tmp_path), {"step": 20, "loss": 0.5})
    hjepa_io.append_metrics(str(tmp_path), {"step": 30, "loss": 0.25})
    assert [r["step"] for r in hjepa_io.read_metrics(str(tmp_path))] == [10, 20, 30]


@pytest.mark.parametrize("argv", [
    lambda ws: ["train", "--data", ws.data, "--run-dir", ws.run, *TRAIN_FLAGS],
    lambda ws: ["inspect", ws.run],
    lambda ws: ["inspect", ws.run, "--plot", ws("c.png")],
], ids=["train", "inspect", "inspect --plot"])
def test_a_deleted_metrics_file_is_no_traceback(ws, capsys, argv):
    os.remove(os.path.join(ws.run, "metrics.jsonl"))
    code, _, err = run_cli(argv(ws), capsys)
    assert "Traceback" not in err
    assert code in (0, 2), err
    if code == 2:
        assert re.search(r"run_dir: .*run has no metrics.jsonl", err), err


# ----------------------------------------------------------------------------- bugs


def test_an_internal_error_is_one_line_exit_70_and_a_traceback_with_debug(ws, capsys,
                                                                          monkeypatch):
    def broken(*args, **kwargs):
        raise KeyError("an invariant broke")

    monkeypatch.setattr(cli, "_inspect", broken)
    code, _, err = run_cli(["inspect", ws.run], capsys)
    assert code == 70
    assert re.search(r"internal error: KeyError: 'an invariant broke' \(a bug in hjepa: rerun "
                     r"with --debug or HJEPA_DEBUG=1", err) and "Traceback" not in err
    with pytest.raises(KeyError):
        cli.main(["inspect", ws.run, "--debug"])
    monkeypatch.setenv("HJEPA_DEBUG", "1")
    with pytest.raises(KeyError):
        cli.main(["inspect", ws.run])


def test_the_exit_statuses_are_documented(capsys):
    code, out, _ = run_cli(["--help"], capsys)
    assert code == 0
    for status in ("0", "1", "2", "3", "70", "130"):
        assert re.search(rf"^\s+{status}\s+\S", out, re.MULTILINE), status


# ----------------------------------------------------------------------------- numpy ints


def test_numpy_integers_are_accepted_where_ints_are(tmp_path, tiny_dataset):
    config = data.CollectConfig(num_episodes=np.int64(8), episode_length=np.int32(10),
                                episodes_per_shard=np.int64(4))
    config.validate()
    train.TrainConfig(steps=np.int64(4), batch_size=np.int64(4), window=np.int16(2),
                      checkpoint_every=np.int64(2)).validate(10)
    from hjepa import evaluate, tasks

    result = evaluate.random_actions(tasks.make("reacher"), __import__("jax").random.key(0),
                                     num_episodes=np.int64(2))
    assert result.summary()["episodes"] == 2
    with pytest.raises(ValueError, match=r"num_episodes: expected a positive integer, got "
                                         r"np.True_|num_episodes: expected a positive integer"):
        data.CollectConfig(num_episodes=np.bool_(True)).validate()


# ----------------------------------------------------------------------------- the table


def test_the_reliability_table_matches_the_suite():
    """docs/reliability.md's table of cases names every test of this file with its count."""
    path = os.path.join(REPO_ROOT, "docs",
                        "reliability.md")
    with open(path) as f:
        table = f.read().split("<!-- cases -->")[1].split("<!-- /cases -->")[0]
    documented = {m.group(1): int(m.group(2))
                  for m in re.finditer(r"\| `(test_\w+)` \| (\d+) \|", table)}
    cases = {
        "test_overwrite_removes_only_what_hjepa_wrote": len(OVERWRITE),
        "test_a_damaged_checkpoint_is_refused_naming_it": 2 * len(CORRUPTIONS),
        "test_a_hand_edited_or_damaged_dataset_is_refused": len(DATASET_CASES),
        "test_a_hand_edited_run_record_is_refused": 2 * len(RUN_RECORDS),
        "test_missing_or_wrong_paths_are_refused": 7,
        "test_non_finite_numbers_are_refused_where_parsed": 4 * len(FLOAT_FLAGS),
        "test_out_of_range_seeds_are_refused": 4 * len(SEEDED),
        "test_out_of_range_counts_are_refused_before_any_work": len(COUNTS),
        "test_a_second_writer_is_refused_at_once_naming_the_holder": len(LOCKED),
        "test_environment_faults_are_one_line_and_exit_3": len(ENVIRONMENT),
        "test_an_unwritable_output_is_refused_before_the_work": 3,
        "test_a_deleted_metrics_file_is_no_traceback": 3,
    }
    tests = {name for name in globals() if name.startswith("test_")
             and name != "test_the_reliability_table_matches_the_suite"}
    assert set(documented) == tests
    for name, count in documented.items():
        assert count == cases.get(name, 1), name
    assert sum(documented.values()) >= 150
