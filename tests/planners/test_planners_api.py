"""Behaviour every planner shares: defaults, jit, vmap, no retrace, keys, bounds, traces."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import planners
from planners import testing

H = 6  # horizon of the small problems here

# Small, fixed options per planner (one compilation each, shared by the tests below).
PLANNERS = {
    "gradient_descent": (planners.gradient_descent,
                         dict(iterations=8, num_candidates=3, learning_rate=0.2)),
    "mppi": (planners.mppi, dict(num_samples=32, iterations=3)),
    "cem": (planners.cem, dict(num_samples=32, num_elites=4, iterations=3)),
    "icem": (planners.cem, dict(num_samples=32, num_elites=4, iterations=3, keep_elites=2,
                                noise_beta=2.0, smoothing=0.2)),
    "beam_search": (planners.beam_search,
                    dict(beam_width=4, branching=6, iterations=2, grid_size=1)),
}
IDS = list(PLANNERS)
ITERATIONS = {"gradient_descent": 8, "mppi": 3, "cem": 3, "icem": 3, "beam_search": 2}

TRACES = {"count": 0}


def counting_step(params, state, action):
    TRACES["count"] += 1  # runs only when the step is traced
    return testing.hazard_step(params, state, action)


def problem_at(start=(0.0, 0.0, 0.0, 0.0), goal=(1.0, -0.5), minus_inf_above=jnp.inf,
               nan_below=-jnp.inf) -> planners.Problem:
    """A double integrator from `start` [4] toward `goal` [2]; no hazards by default."""
    problem = testing.hazard_double_integrator(jnp.asarray(start), goal, minus_inf_above,
                                               nan_below)
    return problem.replace(step=counting_step)


def run(name, problem, init, key, **extra):
    planner, options = PLANNERS[name]
    return planner(problem, init, key, **{**options, **extra})


@pytest.mark.parametrize("planner", [planners.gradient_descent, planners.mppi, planners.cem,
                                     planners.beam_search])
def test_defaults_work(planner):
    problem = problem_at()
    plan = planner(problem, jnp.zeros((H, 2)), jax.random.key(0))
    assert plan.actions.shape == (H, 2)
    assert plan.cost.shape == ()
    assert plan.trace.ndim == 1
    assert np.all(np.isfinite(plan.actions))
    assert plan.cost < planners.total_cost(problem, jnp.zeros((H, 2)))
    assert plan.info["fallback"].dtype == bool and not plan.info["fallback"]


@pytest.mark.parametrize("name", IDS)
def test_improves_and_trace_records_best_cost_per_iteration(name):
    problem = problem_at()
    init = jnp.zeros((H, 2))
    plan = run(name, problem, init, jax.random.key(1))
    trace = np.asarray(plan.trace)
    assert trace.shape == (ITERATIONS[name],)
    assert np.all(np.diff(trace) <= 0), trace
    np.testing.assert_allclose(trace[-1], plan.cost, rtol=1e-6)
    # The cost reported is the cost of the actions returned.
    np.testing.assert_allclose(planners.total_cost(problem, plan.actions), plan.cost, rtol=1e-5)
    assert plan.cost < planners.total_cost(problem, init)


@pytest.mark.parametrize("name", IDS)
def test_jit_vmap_over_a_batch_of_problems_matches_one_by_one(name):
    starts = jnp.asarray([[0.0, 0.0, 0.0, 0.0], [0.5, 0.2, 0.1, -0.1], [-0.3, 0.4, 0.0, 0.2]])
    goals = jnp.asarray([[1.0, -0.5], [0.0, 0.0], [-1.0, 1.0]])
    problems = jax.vmap(problem_at)(starts, goals)
    inits = jnp.zeros((3, H, 2))
    keys = jax.random.split(jax.random.key(3), 3)
    batched = jax.jit(jax.vmap(lambda p, a, k: run(name, p, a, k)))(problems, inits, keys)
    assert batched.actions.shape == (3, H, 2)
    assert batched.trace.shape == (3, ITERATIONS[name])
    for i in range(3):
        single = run(name, problem_at(starts[i], goals[i]), inits[i], keys[i])
        np.testing.assert_allclose(batched.actions[i], single.actions, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(batched.cost[i], single.cost, rtol=1e-4)


@pytest.mark.parametrize("name", IDS)
def test_no_retrace_for_new_data_of_the_same_shapes(name):
    init = jnp.zeros((H, 2))
    run(name, problem_at((0.0, 0.0, 0.0, 0.0), (1.0, 0.0)), init, jax.random.key(0))
    before = TRACES["count"]
    for i in range(3):
        problem = problem_at((0.1 * i, 0.0, 0.0, 0.2), (0.0, 1.0 + i), minus_inf_above=2.0 - i)
        plan = run(name, problem, init + 0.1 * i, jax.random.key(i + 1))
        jax.block_until_ready(plan)
    assert TRACES["count"] == before


@pytest.mark.parametrize("name", IDS)
def test_key_is_explicit_and_consumed(name):
    problem, init = problem_at(), jnp.zeros((H, 2))
    first, again, other = (run(name, problem, init, jax.random.key(k)) for k in (5, 5, 6))
    np.testing.assert_array_equal(first.actions, again.actions)
    assert not np.array_equal(first.actions, other.actions)
    # Raw uint32[2] keys work as well as typed keys.
    raw = run(name, problem, init, jax.random.PRNGKey(5))
    assert raw.actions.shape == (H, 2)
    with pytest.raises(ValueError, match="key: expected a jax.random key, got None"):
        run(name, problem, init, None)


@pytest.mark.parametrize("name", IDS)
def test_actions_within_bounds_even_from_outside_and_nonfinite_init(name):
    low, high = np.float32([-0.2, 0.1]), np.float32([0.3, 0.1])  # a pinned dimension
    problem = problem_at().replace(action_low=jnp.asarray(low), action_high=jnp.asarray(high))
    init = jnp.full((H, 2), 5.0).at[0, 0].set(jnp.nan).at[1, 1].set(-jnp.inf)
    plan = run(name, problem, init, jax.random.key(7))
    actions = np.asarray(plan.actions)
    assert np.all(np.isfinite(actions))
    assert np.all(actions >= low) and np.all(actions <= high)


@pytest.mark.parametrize("name", IDS)
def test_nonfinite_cost_never_wins(name):
    # -inf cost where action[0] > 0.5, NaN where action[0] < -0.5: neither may win.
    problem = problem_at(minus_inf_above=0.5, nan_below=-0.5)
    plan = run(name, problem, jnp.full((H, 2), 0.4), jax.random.key(8))
    assert np.all(np.asarray(plan.actions)[:, 0] <= 0.5)
    assert np.all(np.asarray(plan.actions)[:, 0] >= -0.5)
    assert np.isfinite(plan.cost) and not plan.info["fallback"]
    assert np.isfinite(planners.total_cost(problem, plan.actions))


@pytest.mark.parametrize("name", IDS)
def test_all_costs_nan_falls_back_to_the_initial_actions(name):
    problem = problem_at(nan_below=jnp.inf)  # every cost is NaN
    init = jnp.full((H, 2), 0.25).at[2, 1].set(jnp.nan)
    plan = run(name, problem, init, jax.random.key(9))
    assert bool(plan.info["fallback"])
    assert plan.cost == jnp.inf
    expected = np.full((H, 2), 0.25)
    expected[2, 1] = 0.0  # non-finite entries become the middle of the bounds
    np.testing.assert_allclose(plan.actions, expected)


@pytest.mark.parametrize("name", IDS)
def test_info_keys_are_the_same_across_calls(name):
    init = jnp.zeros((H, 2))
    finite = run(name, problem_at(), init, jax.random.key(0))
    failing = run(name, problem_at(nan_below=jnp.inf), init, jax.random.key(0))
    assert set(finite.info) == set(failing.info)
    assert "fallback" in finite.info
    shapes = jax.tree.map(jnp.shape, (finite, failing))
    assert shapes[0] == shapes[1]


def test_colored_noise_has_unit_variance_and_gets_smoother_with_beta():
    key = jax.random.key(0)
    lag_one = {}
    for beta in (0.0, 1.0, 2.0, 3.0):
        noise = planners.colored_noise(key, (3000, 16, 2), beta)
        assert noise.shape == (3000, 16, 2)
        np.testing.assert_allclose(np.std(noise, axis=0), 1.0, atol=0.07)
        x = np.asarray(noise)
        lag_one[beta] = np.mean(x[:, 1:] * x[:, :-1])
    assert abs(lag_one[0.0]) < 0.05
    assert lag_one[0.0] < lag_one[1.0] < lag_one[2.0] < lag_one[3.0]


def test_cem_carries_elites_between_iterations_and_from_a_previous_plan():
    problem, init = problem_at(), jnp.zeros((H, 2))
    options = PLANNERS["icem"][1]  # keeps 2 elites
    first = planners.cem(problem, init, jax.random.key(0), **options)
    assert first.info["elites"].shape == (options["num_elites"], H, 2)
    # A good elite from "the previous step" is scored in the first iteration, so with the
    # mean far off the plan is at least as good as that elite.
    good = first.actions[None]
    far = jnp.full((H, 2), -1.0)
    carried = planners.cem(problem, far, jax.random.key(1), init_elites=good, **options)
    assert carried.trace[0] <= planners.total_cost(problem, first.actions) + 1e-5
    # NaN rows are empty slots and never win.
    empty = planners.cem(problem, far, jax.random.key(1), init_elites=jnp.full((2, H, 2), jnp.nan),
                         **options)
    assert np.all(np.isfinite(empty.actions))
    assert empty.trace[0] > carried.trace[0]


def test_gradient_descent_accepts_an_optax_optimizer():
    import optax

    problem, init = problem_at(), jnp.zeros((H, 2))
    optimizer = optax.sgd(0.05, momentum=0.9)
    plan = planners.gradient_descent(problem, init, jax.random.key(0), optimizer=optimizer,
                                     iterations=20, num_candidates=2)
    assert plan.cost < planners.total_cost(problem, init)
