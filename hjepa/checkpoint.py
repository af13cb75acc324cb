"""Orbax checkpoints of a training run, and loading a trained model."""

from __future__ import annotations

import os
from typing import Any

import jax
import orbax.checkpoint as ocp

from hjepa.io import read_json  # noqa: F401  (re-exported)

PyTree = Any


def manager(directory: str, *, max_to_keep: int = 3) -> ocp.CheckpointManager:
    """A checkpoint manager over `directory` (saves are atomic: temp dir, then rename)."""
    options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True)
    return ocp.CheckpointManager(os.path.abspath(directory), options=options)


def save(mngr: ocp.CheckpointManager, step: int, tree: PyTree) -> None:
    """Saves `tree` at `step` and waits until it is on disk."""
    mngr.save(step, args=ocp.args.StandardSave(tree))
    mngr.wait_until_finished()


def restore(mngr: ocp.CheckpointManager, like: PyTree, step: int | None = None) -> PyTree:
    """Restores the checkpoint at `step` (default: latest) into the structure of `like`.

    Raises:
      ValueError: no checkpoint, or one whose structure or shapes differ from `like`.
    """
    step = mngr.latest_step() if step is None else step
    if step is None:
        raise ValueError(f"checkpoint: no checkpoint found in {mngr.directory}")
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, like)
    try:
        return mngr.restore(step, args=ocp.args.StandardRestore(abstract))
    except Exception as error:  # orbax/tensorstore raise bare Exceptions on unreadable files
        summary = str(error).splitlines()[0][:300] if str(error) else type(error).__name__
        raise ValueError(
            f"checkpoint {mngr.directory}/{step} could not be restored: it is truncated, "
            f"corrupt, or does not match the expected configuration ({summary})"
        ) from None


