"""NaN or inf in observations never produce non-finite actions: the planners fall back to
their warm start and say so in `Plan.info["fallback"]`."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import planners
from hjepa import model
from hjepa.model import ModelConfig

CONFIG = ModelConfig(obs_shape=(5,), action_size=2, latent_size=4, encoder_hidden=(8,),
                     predictor_hidden=(8,))
PLANNERS = {
    "mppi": (planners.mppi, dict(num_samples=16, iterations=2)),
    "cem": (planners.cem, dict(num_samples=16, num_elites=4, iterations=2)),
    "gd": (planners.gradient_descent, dict(iterations=3, num_candidates=2)),
    "beam": (planners.beam_search, dict(beam_width=2, branching=4)),
}


@pytest.mark.parametrize("bad", [jnp.nan, jnp.inf, -jnp.inf])
@pytest.mark.parametrize("name", sorted(PLANNERS))
def test_non_finite_observation_falls_back_to_the_warm_start(name, bad):
    planner, options = PLANNERS[name]
    params = model.init(CONFIG, jax.random.key(0))
    obs = jnp.array([1.0, 0.0, bad, 0.0, 0.0])
    problem = model.problem(CONFIG, params, obs, jnp.zeros(5), -jnp.ones(2), jnp.ones(2))
    warm = jnp.full((6, 2), 0.25).at[0, 0].set(jnp.nan)  # a NaN in the warm start too
    plan = planner(problem, warm, jax.random.key(1), **options)
    actions = np.asarray(plan.actions)
    assert np.all(np.isfinite(actions))
    assert np.all(actions >= -1.0) and np.all(actions <= 1.0)
    assert bool(plan.info["fallback"])
    expected = np.full((6, 2), 0.25)
    expected[0, 0] = 0.0  # a non-finite warm-start entry becomes the middle of the bounds
    np.testing.assert_allclose(actions, expected)


@pytest.mark.parametrize("name", sorted(PLANNERS))
def test_finite_observation_does_not_fall_back(name):
    planner, options = PLANNERS[name]
    params = model.init(CONFIG, jax.random.key(0))
    problem = model.problem(CONFIG, params, jnp.ones(5), jnp.zeros(5), -jnp.ones(2), jnp.ones(2))
    plan = planner(problem, jnp.zeros((6, 2)), jax.random.key(1), **options)
    assert not bool(plan.info["fallback"])
    assert np.isfinite(float(plan.cost))
