"""Planners against known optima: a linear-quadratic problem, and a maze for beam search."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import planners
from planners import testing

HORIZON = 12
SEEDS = (0, 1, 2)


@pytest.fixture(scope="module")
def lq_problems():
    """Three random stable LQ problems [N=4, M=2, H=12] with their closed-form optima."""
    return [testing.linear_quadratic(jax.random.key(seed), horizon=HORIZON) for seed in SEEDS]


def relative_gaps(planner, problems, **options):
    gaps = []
    for seed, (problem, _, optimal_cost) in zip(SEEDS, problems, strict=True):
        plan = planner(problem, jnp.zeros((HORIZON, 2)), jax.random.key(100 + seed), **options)
        cost = testing.lq_cost(problem.params, problem.init_state, plan.actions)
        gaps.append((cost - optimal_cost) / optimal_cost)
    return np.asarray(gaps)


def test_closed_form_optimum_is_a_minimum_inside_the_bounds(lq_problems):
    for problem, actions, cost in lq_problems:
        assert np.max(np.abs(actions)) < problem.action_high[0]
        np.testing.assert_allclose(testing.lq_cost(problem.params, problem.init_state, actions),
                                   cost, rtol=1e-7)
        # Any perturbation costs more (the QP is strictly convex).
        bumped = actions + 1e-2 * np.asarray(jax.random.normal(jax.random.key(0), actions.shape))
        assert testing.lq_cost(problem.params, problem.init_state, bumped) > cost
        # A backward Riccati recursion agrees with the stacked quadratic program.
        np.testing.assert_allclose(riccati_cost(problem), cost, rtol=1e-7)


def riccati_cost(problem) -> float:
    a, b, q, r, qf = (np.asarray(x, np.float64) for x in problem.params)
    p = qf
    for _ in range(HORIZON):
        gain = np.linalg.solve(r + b.T @ p @ b, b.T @ p @ a)
        p = q + a.T @ p @ (a - b @ gain)
    x0 = np.asarray(problem.init_state, np.float64)
    return float(x0 @ p @ x0)


def test_gradient_descent_within_half_a_percent(lq_problems):
    gaps = relative_gaps(planners.gradient_descent, lq_problems, iterations=300)
    assert np.all(gaps >= -1e-6) and np.all(gaps < 0.005), gaps


def test_mppi_within_two_percent(lq_problems):
    gaps = relative_gaps(planners.mppi, lq_problems, num_samples=1024, iterations=40,
                         noise_std=1.0, noise_decay=0.9)
    assert np.all(gaps >= -1e-6) and np.all(gaps < 0.02), gaps


def test_cem_within_two_percent(lq_problems):
    gaps = relative_gaps(planners.cem, lq_problems, num_samples=512, num_elites=32,
                         iterations=60, noise_std=1.0, min_std=0.05)
    assert np.all(gaps >= -1e-6) and np.all(gaps < 0.02), gaps


def test_beam_search_finds_the_maze_optimum_that_greedy_search_misses():
    problem, horizon = testing.grid_world(), 8
    init = jnp.zeros((horizon, 2))
    _, optimal_cost = testing.brute_force(problem, testing.GRID_MOVES, horizon)
    np.testing.assert_allclose(optimal_cost, 0.8, rtol=1e-6)  # eight moves, no wall bumped
    options = dict(branching=4, action_set=testing.GRID_MOVES)
    greedy = planners.beam_search(problem, init, jax.random.key(0), beam_width=1, **options)
    beam = planners.beam_search(problem, init, jax.random.key(0), beam_width=32, **options)
    assert greedy.cost > optimal_cost + 1.0  # stuck behind the wall
    np.testing.assert_allclose(beam.cost, optimal_cost, rtol=1e-6)
    # The plan reaches the goal.
    states, _, _ = planners.rollout(problem, beam.actions)
    np.testing.assert_array_equal(states[-1], problem.params.goal)
