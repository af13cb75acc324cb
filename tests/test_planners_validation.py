"""Bad input raises a ValueError naming the argument, what was expected and what came."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import planners
from planners import testing

PLANNERS = [planners.gradient_descent, planners.mppi, planners.cem, planners.beam_search]
H = 4


def problem(low=(-1.0, -1.0), high=(1.0, 1.0)) -> planners.Problem:
    return testing.double_integrator(jnp.zeros(4), jnp.ones(2)).replace(
        action_low=jnp.asarray(low), action_high=jnp.asarray(high))


KEY = jax.random.key(0)


@pytest.mark.parametrize("planner", PLANNERS)
def test_init_actions_shape_must_match_the_bounds(planner):
    with pytest.raises(ValueError, match=r"init_actions: expected shape \[H, 2\].*got \(4, 3\)"):
        planner(problem(), jnp.zeros((H, 3)), KEY)
    with pytest.raises(ValueError, match=r"init_actions: expected shape \[H, 2\].*got \(4,\)"):
        planner(problem(), jnp.zeros((H,)), KEY)
    with pytest.raises(ValueError, match=r"init_actions: .*H >= 1.*got \(0, 2\)"):
        planner(problem(), jnp.zeros((0, 2)), KEY)


@pytest.mark.parametrize("planner", PLANNERS)
def test_bounds_low_above_high(planner):
    with pytest.raises(ValueError, match=r"problem.action_low/action_high: expected low <= high "
                                         r"in every dimension, got low=\[-1.  2.\] high=\[1. 1.\]"):
        planner(problem(low=(-1.0, 2.0)), jnp.zeros((H, 2)), KEY)


@pytest.mark.parametrize("planner", PLANNERS)
def test_bounds_of_different_shapes(planner):
    with pytest.raises(ValueError, match=r"problem.action_low/action_high: expected two vectors "
                                         r"of the same shape \[A\], got \(2,\) and \(3,\)"):
        planner(problem(high=(1.0, 1.0, 1.0)), jnp.zeros((H, 2)), KEY)


@pytest.mark.parametrize("planner", PLANNERS)
def test_key_must_be_a_key(planner):
    with pytest.raises(ValueError, match="key: expected a jax.random key, got None"):
        planner(problem(), jnp.zeros((H, 2)), None)
    with pytest.raises(ValueError, match=r"key: expected a jax.random key "
                                         r"\(uint32\[2\] or typed\), got int32\[3\]"):
        planner(problem(), jnp.zeros((H, 2)), jnp.zeros(3, jnp.int32))
    with pytest.raises(ValueError, match=r"key: expected a single key, got a batch of shape "
                                         r"\(2,\)"):
        planner(problem(), jnp.zeros((H, 2)), jax.random.split(KEY, 2))


def test_problem_must_be_a_problem():
    with pytest.raises(ValueError, match="problem: expected a planners.Problem, got dict"):
        planners.mppi({}, jnp.zeros((H, 2)), KEY)


@pytest.mark.parametrize(
    "planner, options, message",
    [
        (planners.mppi, dict(num_samples=0), "num_samples: expected a positive integer, got 0"),
        (planners.mppi, dict(num_samples=2.5), "num_samples: expected a positive integer, got 2.5"),
        (planners.mppi, dict(iterations=-1), "iterations: expected a positive integer, got -1"),
        (planners.mppi, dict(temperature=0.0),
         "temperature: expected a positive number, got 0.0"),
        (planners.mppi, dict(noise_decay=1.5),
         r"noise_decay: expected a number in \(0, 1\], got 1.5"),
        (planners.cem, dict(num_samples=0), "num_samples: expected a positive integer, got 0"),
        (planners.cem, dict(num_samples=8, num_elites=9),
         r"num_elites: expected at most num_samples \(8\), got 9"),
        (planners.cem, dict(num_elites=0), "num_elites: expected a positive integer, got 0"),
        (planners.cem, dict(num_elites=4, keep_elites=5),
         r"keep_elites: expected at most num_elites \(4\), got 5"),
        (planners.cem, dict(keep_elites=-1),
         "keep_elites: expected a non-negative integer, got -1"),
        (planners.cem, dict(smoothing=1.0), r"smoothing: expected a number in \[0, 1\), got 1.0"),
        (planners.cem, dict(noise_beta=-1.0),
         "noise_beta: expected a non-negative number, got -1.0"),
        (planners.cem, dict(noise_std=0.0), "noise_std: expected a positive number, got 0.0"),
        (planners.cem, dict(min_std=-0.1), "min_std: expected a non-negative number, got -0.1"),
        (planners.cem, dict(init_elites=jnp.zeros((3, H, 5))),
         r"init_elites: expected shape \[E, 4, 2\].*got \(3, 4, 5\)"),
        (planners.gradient_descent, dict(num_candidates=0),
         "num_candidates: expected a positive integer, got 0"),
        (planners.gradient_descent, dict(iterations=0),
         "iterations: expected a positive integer, got 0"),
        (planners.gradient_descent, dict(learning_rate=-1.0),
         "learning_rate: expected a positive number, got -1.0"),
        (planners.gradient_descent, dict(optimizer="adam"),
         r"optimizer: expected an optax.GradientTransformation .* got str"),
        (planners.beam_search, dict(beam_width=0),
         "beam_width: expected a positive integer, got 0"),
        (planners.beam_search, dict(branching=0), "branching: expected a positive integer, got 0"),
        (planners.beam_search, dict(action_set=((0.0, 1.0, 2.0),)),
         r"action_set: expected shape \[M, 2\].*got \(1, 3\)"),
        (planners.beam_search, dict(action_set=((0.0, np.nan),)),
         "action_set: expected finite actions"),
        (planners.beam_search, dict(action_set=((0.0, 1.0),) * 5, branching=4),
         "branching: expected at least the 5 actions of action_set, got 4"),
        (planners.beam_search, dict(grid_size=3, branching=8),
         r"grid_size: expected grid_size\*\*2 <= branching \(8\), got 3 \(9 grid points\)"),
        (planners.beam_search, dict(grid_size=-1),
         "grid_size: expected a non-negative integer or None, got -1"),
        (planners.beam_search, dict(noise_std=-0.1),
         "noise_std: expected a non-negative number, got -0.1"),
    ],
)
def test_bad_hyperparameters(planner, options, message):
    with pytest.raises(ValueError, match=message):
        planner(problem(), jnp.zeros((H, 2)), KEY, **options)


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(num_steps=0), "num_steps: expected a positive integer, got 0"),
        (dict(planner_options={"bad": [1, 2]}),
         "planner_options: expected a dict of hashable values"),
        (dict(planner="mppi"), "planner: expected a callable, got str"),
    ],
)
def test_bad_mpc_arguments(options, message):
    arguments = dict(env_step=testing.double_integrator_dynamics, env_params=None,
                     env_state=jnp.zeros(4), num_steps=3)
    with pytest.raises(ValueError, match=message):
        planners.mpc(problem(), jnp.zeros((H, 2)), KEY, **{**arguments, **options})


def test_mpc_checks_the_warm_start_shape():
    with pytest.raises(ValueError, match=r"init_actions: expected shape \[H, 2\]"):
        planners.mpc(problem(), jnp.zeros((H, 3)), KEY, env_step=testing.double_integrator_dynamics,
                     env_params=None, env_state=jnp.zeros(4), num_steps=3)


def test_bounds_are_checked_again_when_they_change():
    low, high = np.asarray([-1.0, -1.0], np.float32), np.asarray([1.0, 1.0], np.float32)
    numpy_bounds = problem().replace(action_low=low, action_high=high)
    planners.mppi(numpy_bounds, jnp.zeros((H, 2)), KEY, num_samples=4, iterations=1)
    low[1] = 2.0  # numpy arrays can change in place: they are checked on every call
    with pytest.raises(ValueError, match="expected low <= high"):
        planners.mppi(numpy_bounds, jnp.zeros((H, 2)), KEY, num_samples=4, iterations=1)
    good = problem()
    planners.mppi(good, jnp.zeros((H, 2)), KEY, num_samples=4, iterations=1)  # remembered
    bad = good.replace(action_high=jnp.asarray([1.0, -2.0]))  # new arrays: checked
    with pytest.raises(ValueError, match="expected low <= high"):
        planners.mppi(bad, jnp.zeros((H, 2)), KEY, num_samples=4, iterations=1)
