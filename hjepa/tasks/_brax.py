"""Imports of Brax, with mujoco's optional-backend chatter kept off stdout."""

from __future__ import annotations

import contextlib
import functools
import io
import warnings


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
