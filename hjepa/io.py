"""Files hjepa writes and reads: atomic writes, JSON, and a run's `metrics.jsonl`.

Every file is written to a temporary name in the same directory, flushed to disk, then
renamed over the target, so a reader never sees half a file. `metrics.jsonl` holds one JSON
record per logged chunk of training, `{"step": int, <metric>: float, ...}`, in step order;
`read_metrics` is its one reader.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

import numpy as np

METRICS = "metrics.jsonl"


def atomic_write_bytes(path: str, data: bytes) -> None:
    """Writes `data` to `path` via a temporary file and a rename."""
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:  # a full disk or an interrupt leaves no half-written file behind
        _remove_quietly(tmp)
        raise


def atomic_write_json(path: str, obj: Any) -> None:
    """Writes `obj` as indented, key-sorted JSON to `path`, atomically (numpy scalars as
    Python numbers)."""
    text = json.dumps(obj, indent=2, sort_keys=True, default=_json_default)
    atomic_write_bytes(path, (text + "\n").encode())


def _json_default(value):
    if isinstance(value, np.integer | np.floating | np.bool_):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def atomic_save_npy(path: str, array: np.ndarray) -> None:
    """Saves a .npy file via a temporary file and a rename."""
    tmp = f"{path}.tmp-{os.getpid()}.npy"
    try:
        np.save(tmp, array)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        _remove_quietly(tmp)
        raise


def _remove_quietly(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass


def check_writable_directory(path: str, *, name: str) -> None:
    """Raises ValueError unless the directory `path` exists and is writable or can be created
    (its nearest existing ancestor is a writable directory). `name` is the argument named.

    Called before long work starts, so that an unwritable output fails at once.
    """
    path = os.path.abspath(path)
    if os.path.exists(path):
        if not os.path.isdir(path):
            raise ValueError(f"{name}: {path} is a file, expected a directory")
        ancestor = path
    else:
        ancestor = os.path.dirname(path)
        while not os.path.exists(ancestor):
            ancestor = os.path.dirname(ancestor)
        if not os.path.isdir(ancestor):
            raise ValueError(f"{name}: {path} lies under {ancestor}, which is a file")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise ValueError(f"{name}: {ancestor} is not writable (permission denied), so "
                         f"{path} cannot be written")


def file_sha256(path: str) -> str:
    """The SHA-256 hex digest of a file, read in blocks."""
    sha = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()


def read_json(path: str) -> dict:
    """Reads a JSON file, with an error naming the file when it is missing or corrupt."""
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        raise ValueError(f"{path} does not exist") from None
    except IsADirectoryError:
        raise ValueError(f"{path} is a directory, expected a JSON file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path} is corrupt: {error}") from None


def read_metrics(run_dir: str) -> list[dict]:
    """The metric records of a run, in order: every line that is a complete record (a run
    killed mid-write leaves a truncated last line; a line damaged by hand is skipped, the
    records after it kept). No file: []."""
    records = []
    try:
        with open(os.path.join(run_dir, METRICS), errors="replace") as f:
            for line in f:
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(record, dict) and _is_step(record.get("step")):
                    records.append(record)
    except (FileNotFoundError, IsADirectoryError):
        return []
    return records


def _is_step(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def last_metrics(run_dir: str) -> dict:
    """The run's last complete metric record ({} when there is none)."""
    records = read_metrics(run_dir)
    return records[-1] if records else {}


def append_metrics(run_dir: str, record: dict) -> None:
    """Appends one record `{"step": ..., ...}` to the run's metrics, on a line of its own
    (after half a line left by a kill mid-write, a new line first: readers skip the half)."""
    with open(os.path.join(run_dir, METRICS), "ab+") as f:
        f.seek(0, os.SEEK_END)
        if f.tell():
            f.seek(-1, os.SEEK_END)
            if f.read(1) != b"\n":
                f.write(b"\n")
        f.write((json.dumps(record) + "\n").encode())


def truncate_metrics(run_dir: str, step: int) -> None:
    """Keeps the records up to `step` (a run interrupted after its last checkpoint logged
    steps it will train again), atomically; the file is left as it is when no record is
    past `step`."""
    path = os.path.join(run_dir, METRICS)
    if not os.path.isfile(path):
        return
    records = read_metrics(run_dir)
    if all(r["step"] <= step for r in records):
        return
    kept = [r for r in records if r["step"] <= step]
    atomic_write_bytes(path, "".join(json.dumps(r) + "\n" for r in kept).encode())


def train_seconds(run_dir: str) -> float | None:
    """Optimiser time of a run: the sum over its records of the steps logged / steps per
    second (compilation and checkpoints excluded; the same after resuming). None when the
    run has no metrics yet."""
    records = read_metrics(run_dir)
    if not records and not os.path.exists(os.path.join(run_dir, METRICS)):
        return None
    total, previous = 0.0, 0
    for record in records:
        rate = record.get("steps_per_second")
        if not rate:
            break
        total += (record["step"] - previous) / rate
        previous = record["step"]
    return total
