"""Orbax checkpoints of a training run, verified by digests, and loading a trained model.

Each checkpoint `checkpoints/<step>/` gets, once orbax has finished writing it, a digest file
`hjepa-digest.json`: the SHA-256 of every file in it. Restoring verifies it first, so a flipped
or truncated byte is an error naming the checkpoint and the file, never parameters read
silently from damaged bytes. Checkpoints written before digests (none in the file) restore
unverified.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from typing import Any

import jax
import orbax.checkpoint as ocp

from hjepa.io import atomic_write_json, file_sha256, read_json

PyTree = Any
DIGEST = "hjepa-digest.json"


class CorruptCheckpoint(ValueError):
    """A checkpoint whose files do not match their digests, or that orbax cannot read."""


def manager(directory: str, *, max_to_keep: int = 3) -> ocp.CheckpointManager:
    """A checkpoint manager over `directory` (saves are atomic: temp dir, then rename)."""
    options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True)
    return ocp.CheckpointManager(os.path.abspath(directory), options=options)


def _file_digests(step_dir: str) -> dict[str, str]:
    """{path relative to `step_dir`: SHA-256 hex} of every file under it but the digest."""
    digests = {}
    for directory, _, files in os.walk(step_dir):
        for name in files:
            path = os.path.join(directory, name)
            relative = os.path.relpath(path, step_dir)
            if relative != DIGEST:
                digests[relative] = file_sha256(path)
    return dict(sorted(digests.items()))


def write_digest(step_dir: str) -> None:
    """Records the digest of every file of the finished checkpoint `step_dir`."""
    atomic_write_json(os.path.join(step_dir, DIGEST), {"sha256": _file_digests(step_dir)})


def verify(step_dir: str) -> bool:
    """Checks the files of `step_dir` against its digest: True when verified, False when it
    has no digest (written before digests).

    Raises:
      CorruptCheckpoint: a file is missing, added, or differs from its digest.
    """
    path = os.path.join(step_dir, DIGEST)
    if not os.path.exists(path):
        return False
    try:
        expected = read_json(path)["sha256"]
    except (ValueError, KeyError, TypeError):
        raise CorruptCheckpoint(f"checkpoint {step_dir}: its digest file {DIGEST} is corrupt") \
            from None
    found = _file_digests(step_dir)
    for relative in sorted(set(expected) | set(found)):
        if relative not in found:
            problem = "is missing"
        elif relative not in expected:
            problem = "was not part of the checkpoint"
        elif found[relative] != expected[relative]:
            problem = "does not match its digest (the bytes changed since it was saved)"
        else:
            continue
        raise CorruptCheckpoint(f"checkpoint {step_dir} is corrupt: {relative} {problem}")
    return True


def save(mngr: ocp.CheckpointManager, step: int, tree: PyTree) -> None:
    """Saves `tree` at `step`, waits until it is on disk, and records its digest."""
    mngr.save(step, args=ocp.args.StandardSave(tree))
    mngr.wait_until_finished()
    if jax.process_index() == 0:
        write_digest(os.path.join(str(mngr.directory), str(step)))


def restore(mngr: ocp.CheckpointManager, like: PyTree, step: int | None = None) -> PyTree:
    """Verifies and restores the checkpoint at `step` (default: latest) into the structure of
    `like`.

    Raises:
      ValueError: no checkpoint; CorruptCheckpoint: one that fails its digest, or that orbax
        cannot read or whose structure or shapes differ from `like`.
    """
    step = mngr.latest_step() if step is None else step
    if step is None:
        raise ValueError(f"checkpoint: no checkpoint found in {mngr.directory}")
    verify(os.path.join(str(mngr.directory), str(step)))
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, like)
    try:
        return mngr.restore(step, args=ocp.args.StandardRestore(abstract))
    except Exception as error:  # orbax/tensorstore raise bare Exceptions on unreadable files
        summary = str(error).splitlines()[0][:300] if str(error) else type(error).__name__
        raise CorruptCheckpoint(
            f"checkpoint {mngr.directory}/{step} could not be restored: it is truncated, "
            f"corrupt, or does not match the expected configuration ({summary})"
        ) from None


def restore_latest_good(
    directory: str, like: PyTree, *, quarantine: str, log: Callable[[str], None],
) -> tuple[ocp.CheckpointManager, PyTree | None]:
    """The newest checkpoint in `directory` that verifies and restores, and a manager to save
    further ones: `(manager, tree or None when there is none)`.

    A checkpoint that fails is moved into `quarantine` (kept for inspection, out of the way of
    the steps to be saved again) and the previous one is tried; each is reported by `log`.
    """
    if jax.process_index() == 0 and os.path.isdir(directory):
        for name in os.listdir(directory):  # half-written saves of a killed process
            if ".orbax-checkpoint-tmp" in name:
                shutil.rmtree(os.path.join(directory, name), ignore_errors=True)
    while True:
        mngr = manager(directory)
        step = mngr.latest_step()
        if step is None:
            return mngr, None
        try:
            return mngr, restore(mngr, like, step)
        except CorruptCheckpoint as error:
            mngr.close()
            if jax.process_count() > 1:  # processes would race to move it; a person decides
                raise
            os.makedirs(quarantine, exist_ok=True)
            target = os.path.join(quarantine, str(step))
            if os.path.exists(target):
                shutil.rmtree(target)
            shutil.move(os.path.join(directory, str(step)), target)
            log(f"{error}; moved it to {target} and fell back to the previous checkpoint")
