"""hjepa.evaluate: batched closed-loop MPC on reacher with the oracle (true physics)."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from hjepa import evaluate as evaluate_lib


@pytest.mark.slow  # ~40 s on 2 cores: the demo test's oracle rows cover MPC on true physics
def test_oracle_mpc_reaches_the_goals(reacher):
    # Budget measured to reach 4/4 goals; the episodes here are 2 of those held-out pairs.
    result = evaluate_lib.evaluate(
        reacher, jax.random.key(0), num_episodes=2,
        planner_options=dict(num_samples=64, iterations=2, temperature=0.1), horizon=12,
    )
    assert result.num_episodes == 2 and result.num_steps == reacher.episode_length
    assert result.success.shape == (2,) and result.success.dtype == np.bool_
    assert result.distances.shape == (2, reacher.episode_length)
    assert np.all(np.isfinite(result.distances))
    # the final distance is the last recorded one, and success means it is below 0.02
    np.testing.assert_allclose(result.final_distance, result.distances[:, -1], atol=1e-5)
    np.testing.assert_array_equal(result.success, result.final_distance < 0.02)
    assert result.success.all(), result.final_distance
    assert result.success_rate == 1.0
    summary = result.summary()
    assert summary["success_rate"] == 1.0 and summary["episodes"] == 2
    assert summary["mean_final_distance"] == pytest.approx(float(result.final_distance.mean()))
    # the goals were not reached by standing still: after the first step the fingertips were
    # still far from them (one control step moves the arm little)
    assert np.all(result.distances[:, 0] > 0.05), result.distances[:, 0]


@pytest.mark.parametrize(
    "kwargs, word",
    [
        (dict(num_episodes=0), "num_episodes"),
        (dict(num_episodes=2, horizon=0), "horizon"),
        (dict(num_episodes=2, params={}), "model_config"),
        (dict(num_episodes=2, critic=(None, {})), "critic: a critic costs plans of the learned"),
    ],
)
def test_evaluate_checks_its_arguments(reacher, kwargs, word):
    with pytest.raises(ValueError, match=word):
        evaluate_lib.evaluate(reacher, jax.random.key(0), **kwargs)
