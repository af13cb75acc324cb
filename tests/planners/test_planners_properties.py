"""Property tests (hypothesis): bounds, non-finite costs, and invariance to a cost offset."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import planners
from planners import testing

H = 5
PLANNERS = {
    "gradient_descent": (planners.gradient_descent, dict(iterations=5, num_candidates=2)),
    "mppi": (planners.mppi, dict(num_samples=16, iterations=2)),
    "cem": (planners.cem, dict(num_samples=16, num_elites=4, iterations=2, keep_elites=1,
                               noise_beta=1.0)),
    "beam_search": (planners.beam_search, dict(beam_width=3, branching=5, iterations=2)),
}
IDS = list(PLANNERS)
PROPERTY = settings(max_examples=25, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])

# No subnormal numbers: XLA on CPU flushes them to zero, so a subnormal bound reads as 0.
finite = st.floats(-3.0, 3.0, width=32, allow_subnormal=False)
anything = st.one_of(finite, st.sampled_from([np.nan, np.inf, -np.inf, 1e30, -1e30]))


def plan_for(name, problem, init, seed):
    planner, options = PLANNERS[name]
    return planner(problem, jnp.asarray(init, jnp.float32), jax.random.key(seed), **options)


@pytest.mark.parametrize("name", IDS)
@PROPERTY
@given(
    low=st.lists(finite, min_size=2, max_size=2),
    width=st.lists(st.floats(0.0, 2.0, width=32, allow_subnormal=False), min_size=2,
                   max_size=2),
    init=st.lists(anything, min_size=2 * H, max_size=2 * H),
    goal=st.lists(finite, min_size=2, max_size=2),
    seed=st.integers(0, 2**16),
)
def test_actions_respect_any_bounds(name, low, width, init, goal, seed):
    low = np.float32(low)
    high = low + np.float32(width)  # low <= high, equal bounds included
    high = np.where(np.abs(high) < np.finfo(np.float32).tiny, np.float32(0), high)  # no subnormal
    problem = testing.hazard_double_integrator(jnp.zeros(4), goal).replace(
        action_low=jnp.asarray(low), action_high=jnp.asarray(high))
    plan = plan_for(name, problem, np.reshape(init, (H, 2)), seed)
    actions = np.asarray(plan.actions)
    assert np.all(np.isfinite(actions))
    assert np.all(actions >= low) and np.all(actions <= high)


@pytest.mark.parametrize("name", IDS)
@PROPERTY
@given(
    minus_inf_above=st.floats(-1.5, 1.5, width=32),
    nan_below=st.floats(-1.5, 1.5, width=32),
    init=st.lists(st.floats(-1.0, 1.0, width=32), min_size=2 * H, max_size=2 * H),
    seed=st.integers(0, 2**16),
)
def test_finite_outputs_when_costs_contain_nan_and_inf(name, minus_inf_above, nan_below, init,
                                                       seed):
    problem = testing.hazard_double_integrator(jnp.zeros(4), jnp.asarray([1.0, -0.5]),
                                               minus_inf_above, nan_below)
    plan = plan_for(name, problem, np.reshape(init, (H, 2)), seed)
    actions = np.asarray(plan.actions)
    assert np.all(np.isfinite(actions))
    assert np.all(actions >= -1.0) and np.all(actions <= 1.0)
    assert not np.isnan(plan.cost) and plan.cost != -np.inf
    assert np.all(np.isfinite(plan.trace) | (plan.trace == np.inf))
    if plan.info["fallback"]:
        assert plan.cost == np.inf
    else:  # the winner really has a finite cost: it avoids both hazards
        assert np.isfinite(plan.cost)
        assert np.isfinite(planners.total_cost(problem, plan.actions))


class OffsetParams(NamedTuple):
    goal: jax.Array  # [2]
    offset: jax.Array  # [] added to the terminal cost, hence to every total cost


def quantised_step(params: OffsetParams, state, action):
    """x' = x + a with a cost on a 1/8 grid, so that adding an integer offset is exact."""
    next_state = state + action
    return next_state, jnp.floor(8.0 * jnp.sum((next_state - params.goal) ** 2)) / 8.0


def offset_terminal(params: OffsetParams, state):
    return jnp.floor(8.0 * jnp.sum((state - params.goal) ** 2)) / 8.0 + params.offset


def offset_problem(goal, offset) -> planners.Problem:
    return planners.Problem(
        step=quantised_step, terminal_cost=offset_terminal,
        params=OffsetParams(jnp.asarray(goal, jnp.float32), jnp.asarray(offset, jnp.float32)),
        init_state=jnp.zeros(2), action_low=-jnp.ones(2), action_high=jnp.ones(2))


@pytest.mark.parametrize("name", ["mppi", "cem"])
@PROPERTY
@given(
    goal=st.lists(st.floats(-2.0, 2.0, width=32), min_size=2, max_size=2),
    offset=st.integers(-1000, 1000),
    seed=st.integers(0, 2**16),
)
def test_choices_unchanged_when_a_constant_is_added_to_every_cost(name, goal, offset, seed):
    init = np.zeros((H, 2))
    plain = plan_for(name, offset_problem(goal, 0.0), init, seed)
    shifted = plan_for(name, offset_problem(goal, float(offset)), init, seed)
    np.testing.assert_array_equal(shifted.actions, plain.actions)
    np.testing.assert_array_equal(shifted.trace, plain.trace + offset)
