"""Imports of Brax, with mujoco's optional-backend chatter kept off stdout."""

from __future__ import annotations

import contextlib
import functools
import io
import warnings

import jax


@functools.cache
def import_brax():
    """Imports brax, brax.io.mjcf and the differentiable pipelines; returns the brax module.

    mujoco prints a line on stdout when its optional GPU backend (warp) is absent; that line
    is swallowed here so command-line output stays clean. Nothing else is hidden.
    """
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import brax
        import brax.generalized.pipeline  # noqa: F401
        import brax.io.mjcf  # noqa: F401
        import brax.positional.pipeline  # noqa: F401
        import brax.spring.pipeline  # noqa: F401
    return brax


def pipeline(backend: str):
    """The differentiable Brax pipeline module of `backend` (generalized, positional, spring)."""
    import_brax()
    if backend == "generalized":
        from brax.generalized import pipeline as module
    elif backend == "positional":
        from brax.positional import pipeline as module
    elif backend == "spring":
        from brax.spring import pipeline as module
    else:
        raise ValueError(f"backend: expected generalized, positional or spring, got {backend!r}")
    return module


def step_substeps(backend: str, sys, state, ctrl, substeps: int):
    """`substeps` physics steps of `sys` with the control `ctrl` held: one control step."""
    module = pipeline(backend)

    def substep(state, _):
        return module.step(sys, state, ctrl), None

    state, _ = jax.lax.scan(substep, state, None, length=substeps)
    return state
