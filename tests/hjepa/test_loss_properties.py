"""Property tests (hypothesis) of the JEPA losses."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from hjepa import losses

# Multiples of 1/8 in [-10, 10]: exact in float32, and their squares never underflow.
finite = st.integers(-80, 80).map(lambda i: i / 8.0)
latent_batches = hnp.arrays(np.float32, st.tuples(st.integers(2, 12), st.integers(1, 6)),
                            elements=finite)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(latent_batches, finite)
def test_regularisers_are_nonnegative_and_shift_invariant(latents, shift):
    z = jnp.asarray(latents)
    for fn in (losses.variance_loss, losses.covariance_loss):
        value = float(fn(z))
        assert value >= 0.0
        np.testing.assert_allclose(float(fn(z + shift)), value, rtol=1e-3, atol=1e-3)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(latent_batches)
def test_variance_hinge_vanishes_once_every_dimension_is_spread(latents):
    z = jnp.asarray(latents)
    z = z + 3.0 * jnp.where(jnp.arange(z.shape[0])[:, None] % 2 == 0, 1.0, -1.0)
    # after the alternating +-3 offsets every column has std >= 1 (for even batch sizes)
    if z.shape[0] % 2 == 0 and bool(jnp.all(jnp.std(z, axis=0) >= 1.01)):
        assert float(losses.variance_loss(z)) == 0.0


@settings(max_examples=40, deadline=None, derandomize=True)
@given(latent_batches, latent_batches)
def test_prediction_loss_is_symmetric_and_zero_only_on_equality(a, b):
    if a.shape != b.shape:
        b = np.resize(b, a.shape)
    a, b = jnp.asarray(a), jnp.asarray(b)
    ab, ba = float(losses.prediction_loss(a, b)), float(losses.prediction_loss(b, a))
    np.testing.assert_allclose(ab, ba, rtol=1e-6)
    assert float(losses.prediction_loss(a, a)) == 0.0
    assert (ab == 0.0) == bool(jnp.all(a == b))


@settings(max_examples=30, deadline=None, derandomize=True)
@given(hnp.arrays(np.float32, st.tuples(st.integers(3, 10)), elements=finite))
def test_covariance_of_a_single_varying_dimension_is_zero(column):
    z = jnp.stack([jnp.asarray(column), jnp.zeros_like(column)], axis=1)  # [N, 2]
    assert float(losses.covariance_loss(z)) == 0.0
