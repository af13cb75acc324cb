"""Files hjepa writes and reads: atomic writes, JSON, and a run's `metrics.jsonl`.

Every file is written to a temporary name in the same directory, flushed to disk, then
renamed over the target, so a reader never sees half a file. `metrics.jsonl` holds one JSON
record per logged chunk of training, `{"step": int, <metric>: float, ...}`, in step order;
`read_metrics` is its one reader.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

METRICS = "metrics.jsonl"


def atomic_write_bytes(path: str, data: bytes) -> None:
    """Writes `data` to `path` via a temporary file and a rename."""
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def atomic_write_json(path: str, obj: Any) -> None:
    """Writes `obj` as indented, key-sorted JSON to `path`, atomically."""
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def atomic_save_npy(path: str, array: np.ndarray) -> None:
    """Saves a .npy file via a temporary file and a rename."""
    tmp = f"{path}.tmp-{os.getpid()}.npy"
    np.save(tmp, array)
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_json(path: str) -> dict:
    """Reads a JSON file, with an error naming the file when it is missing or corrupt."""
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        raise ValueError(f"{path} does not exist") from None
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is corrupt: {error}") from None


def read_metrics(run_dir: str) -> list[dict]:
    """The metric records of a run, in order: every complete record up to the first line that
    is not one (a run killed mid-write leaves a truncated last line). No file: []."""
    records = []
    try:
        with open(os.path.join(run_dir, METRICS)) as f:
            for line in f:
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    break
                if not isinstance(record, dict) or not isinstance(record.get("step"), int):
                    break
                records.append(record)
    except FileNotFoundError:
        return []
    return records


def last_metrics(run_dir: str) -> dict:
    """The run's last complete metric record ({} when there is none)."""
    records = read_metrics(run_dir)
    return records[-1] if records else {}


def append_metrics(run_dir: str, record: dict) -> None:
    """Appends one record `{"step": ..., ...}` to the run's metrics."""
    with open(os.path.join(run_dir, METRICS), "a") as f:
        f.write(json.dumps(record) + "\n")


def truncate_metrics(run_dir: str, step: int) -> None:
    """Keeps the records up to `step` (a run interrupted after its last checkpoint logged
    steps it will train again), atomically."""
    if not os.path.exists(os.path.join(run_dir, METRICS)):
        return
    kept = [r for r in read_metrics(run_dir) if r["step"] <= step]
    atomic_write_bytes(os.path.join(run_dir, METRICS),
                       "".join(json.dumps(r) + "\n" for r in kept).encode())


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
