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
         "temperature: expected a finite positive number, got 0.0"),
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
         "noise_beta: expected a finite non-negative number, got -1.0"),
        (planners.cem, dict(noise_std=0.0),
         "noise_std: expected a finite positive number, got 0.0"),
        (planners.cem, dict(min_std=-0.1),
         "min_std: expected a finite non-negative number, got -0.1"),
        (planners.cem, dict(init_elites=jnp.zeros((3, H, 5))),
         r"init_elites: expected shape \[E, 4, 2\].*got \(3, 4, 5\)"),
        (planners.gradient_descent, dict(num_candidates=0),
         "num_candidates: expected a positive integer, got 0"),
        (planners.gradient_descent, dict(iterations=0),
         "iterations: expected a positive integer, got 0"),
        (planners.gradient_descent, dict(learning_rate=-1.0),
         "learning_rate: expected a finite positive number, got -1.0"),
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
         "noise_std: expected a finite non-negative number, got -0.1"),
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


# ----------------------------------------------------------------------------- every planner
# Non-finite bounds and options, numpy integers, and what a Problem's functions return, for
# every planner and the loops around them. Calls that pass are only traced (jax.eval_shape):
# nothing here compiles.


def position_goal(goal, state):
    """`set_goal` of the two-level hierarchies below: the subgoal is the state's position."""
    del goal
    return state[:2]


def observe_both(params, env_state):
    del params
    return env_state, env_state


TINY = {
    "gradient_descent": dict(iterations=1, num_candidates=2),
    "mppi": dict(num_samples=4, iterations=1),
    "cem": dict(num_samples=4, num_elites=2, iterations=1, keep_elites=1),
    "beam_search": dict(beam_width=2, branching=3, iterations=1, grid_size=1),
    "hierarchical_plan": dict(subgoal_step=1),
    "mpc": dict(num_steps=2),
    "hierarchical_mpc": dict(num_steps=2, spans=(2, 1), subgoal_step=1),
}
ALL = list(TINY)


def hierarchical_plan(problem_, init_actions, key, **options):
    """Two levels, both `problem_`, planned by a tiny MPPI."""
    return planners.hierarchical_plan((problem_, problem_), (init_actions, init_actions), key,
                                      **{"set_goal": position_goal,
                                         "planner_options": TINY["mppi"], **options})


def mpc(problem_, init_actions, key, **options):
    """An episode of two steps on the double integrator, planned by a tiny MPPI."""
    return planners.mpc(problem_, init_actions, key, **{
        "env_step": testing.double_integrator_dynamics, "env_params": None,
        "env_state": jnp.zeros(4), "planner_options": TINY["mppi"], **options})


def hierarchical_mpc(problem_, init_actions, key, **options):
    """`mpc` with two levels, both `problem_`."""
    return planners.hierarchical_mpc((problem_, problem_), (init_actions, init_actions), key, **{
        "env_step": testing.double_integrator_dynamics, "env_params": None,
        "env_state": jnp.zeros(4), "observe": observe_both, "set_goal": position_goal,
        "planner_options": TINY["mppi"], **options})


FUNCTIONS = {"gradient_descent": planners.gradient_descent, "mppi": planners.mppi,
             "cem": planners.cem, "beam_search": planners.beam_search,
             "hierarchical_plan": hierarchical_plan, "mpc": mpc,
             "hierarchical_mpc": hierarchical_mpc}


def call(name, problem_=None, **options):
    return FUNCTIONS[name](problem() if problem_ is None else problem_, jnp.zeros((H, 2)), KEY,
                           **{**TINY[name], **options})


def shapes(name, problem_=None, **options):
    """What `call` returns, as shapes: the checks run, the planner is traced, not compiled."""
    return jax.eval_shape(lambda: call(name, problem_, **options))


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize(
    "bounds, message",
    [
        (dict(low=(-1.0, np.nan)), r"problem.action_low: expected finite numbers in every "
                                   r"dimension, got \[-1. nan\]"),
        (dict(high=(np.nan, 1.0)), r"problem.action_high: expected finite numbers in every "
                                   r"dimension, got \[nan  1.\]"),
        (dict(high=(1.0, np.inf)), r"problem.action_high: expected finite numbers in every "
                                   r"dimension, got \[ 1. inf\]"),
        (dict(low=(-np.inf, -1.0)), r"problem.action_low: expected finite numbers in every "
                                    r"dimension, got \[-inf  -1.\]"),
    ],
    ids=["nan_low", "nan_high", "inf_high", "minus_inf_low"],
)
def test_bounds_must_be_finite(name, bounds, message):
    with pytest.raises(ValueError, match=message):
        call(name, problem(**bounds))


def test_nonfinite_bounds_are_refused_after_a_good_call():
    low, high = np.asarray([-1.0, -1.0], np.float32), np.asarray([1.0, 1.0], np.float32)
    numpy_bounds = problem().replace(action_low=low, action_high=high)
    shapes("mppi", numpy_bounds)
    high[0] = np.nan  # changed in place: checked again
    with pytest.raises(ValueError, match=r"problem.action_high: expected finite numbers"):
        shapes("mppi", numpy_bounds)
    good = problem()
    shapes("mppi", good)  # remembered by identity, but only bounds that passed
    bad = good.replace(action_low=jnp.asarray([-1.0, np.nan]))
    for _ in range(2):
        with pytest.raises(ValueError, match=r"problem.action_low: expected finite numbers"):
            shapes("mppi", bad)


POSITIVE, NON_NEGATIVE = "a finite positive number", "a finite non-negative number"
FLOAT_OPTIONS = [
    ("mppi", "temperature", POSITIVE),
    ("mppi", "noise_std", POSITIVE),
    ("mppi", "noise_decay", r"a number in \(0, 1\]"),
    ("cem", "noise_std", POSITIVE),
    ("cem", "min_std", NON_NEGATIVE),
    ("cem", "smoothing", r"a number in \[0, 1\)"),
    ("cem", "noise_beta", NON_NEGATIVE),
    ("gradient_descent", "learning_rate", POSITIVE),
    ("gradient_descent", "noise_std", NON_NEGATIVE),
    ("beam_search", "noise_std", NON_NEGATIVE),
]


@pytest.mark.parametrize("value, shown", [(np.nan, "nan"), (np.inf, "inf"), (-1.0, "-1.0")],
                         ids=["nan", "inf", "minus_one"])
@pytest.mark.parametrize("name, option, expected", FLOAT_OPTIONS,
                         ids=[f"{name}-{option}" for name, option, _ in FLOAT_OPTIONS])
def test_float_options_must_be_finite_and_in_range(name, option, expected, value, shown):
    with pytest.raises(ValueError, match=rf"{option}: expected {expected}, got {shown}$"):
        call(name, **{option: value})


@pytest.mark.parametrize("name", ["mpc", "hierarchical_plan", "hierarchical_mpc"])
def test_loops_pass_on_the_planners_float_checks(name):
    options = {**TINY["mppi"], "temperature": np.nan}
    with pytest.raises(ValueError, match=rf"temperature: expected {POSITIVE}, got nan"):
        call(name, planner_options=options)


POSITIVE_INT, NON_NEGATIVE_INT = "a positive integer", "a non-negative integer"
INT_OPTIONS = [
    ("mppi", "num_samples", POSITIVE_INT),
    ("mppi", "iterations", POSITIVE_INT),
    ("cem", "num_samples", POSITIVE_INT),
    ("cem", "num_elites", POSITIVE_INT),
    ("cem", "iterations", POSITIVE_INT),
    ("cem", "keep_elites", NON_NEGATIVE_INT),
    ("gradient_descent", "iterations", POSITIVE_INT),
    ("gradient_descent", "num_candidates", POSITIVE_INT),
    ("beam_search", "beam_width", POSITIVE_INT),
    ("beam_search", "branching", POSITIVE_INT),
    ("beam_search", "iterations", POSITIVE_INT),
    ("beam_search", "grid_size", "a non-negative integer or None"),
    ("mpc", "num_steps", POSITIVE_INT),
    ("hierarchical_plan", "subgoal_step", NON_NEGATIVE_INT),
    ("hierarchical_mpc", "num_steps", POSITIVE_INT),
    ("hierarchical_mpc", "subgoal_step", NON_NEGATIVE_INT),
]
INT_IDS = [f"{name}-{option}" for name, option, _ in INT_OPTIONS]


@pytest.mark.parametrize("name, option, expected", INT_OPTIONS, ids=INT_IDS)
def test_int_options_accept_numpy_integers(name, option, expected):
    del expected
    assert shapes(name, **{option: np.int64(TINY[name][option])}) == shapes(name)


@pytest.mark.parametrize("value, shown", [(np.float64(2.5), r"np.float64\(2.5\)"),
                                          (True, "True"), (np.int64(-1), r"np.int64\(-1\)")],
                         ids=["float", "bool", "negative"])
@pytest.mark.parametrize("name, option, expected", INT_OPTIONS, ids=INT_IDS)
def test_int_options_refuse_floats_bools_and_out_of_range(name, option, expected, value, shown):
    with pytest.raises(ValueError, match=rf"{option}: expected {expected}, got {shown}$"):
        call(name, **{option: value})


def test_hierarchical_mpc_spans_accept_numpy_integers_only():
    numpy_spans = (np.int64(2), np.int64(1))
    assert shapes("hierarchical_mpc", spans=numpy_spans) == shapes("hierarchical_mpc")
    for spans in [(2.0, 1), (True, 1), (np.int64(-2), 1)]:
        with pytest.raises(ValueError, match=r"spans: expected 2 positive integers"):
            call("hierarchical_mpc", spans=spans)


def vector_cost_step(goal, state, action):
    next_state, cost = testing.double_integrator_step(goal, state, action)
    return next_state, jnp.full(3, cost)


def short_state_step(goal, state, action):
    next_state, cost = testing.double_integrator_step(goal, state, action)
    return next_state[:3], cost


def integer_state_step(goal, state, action):
    next_state, cost = testing.double_integrator_step(goal, state, action)
    return next_state.astype(jnp.int32), cost


def cost_only_step(goal, state, action):
    return testing.double_integrator_step(goal, state, action)[1]


def vector_terminal(goal, state):
    return state[:2] - goal


STEP_EXPECTED = (r"Problem.step: expected \(next_state, cost\) with next_state shaped like "
                 r"init_state float32\[4\] and a scalar cost \[\], for an action float32\[2\], ")


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize(
    "functions, message",
    [
        (dict(step=vector_cost_step), STEP_EXPECTED + r"got \(float32\[4\], float32\[3\]\)"),
        (dict(step=short_state_step), STEP_EXPECTED + r"got \(float32\[3\], float32\[\]\)"),
        (dict(step=integer_state_step), STEP_EXPECTED + r"got \(int32\[4\], float32\[\]\)"),
        (dict(step=cost_only_step), STEP_EXPECTED + r"got float32\[\]"),
        (dict(terminal_cost=vector_terminal),
         r"Problem.terminal_cost: expected a scalar cost \[\] for a state float32\[4\], "
         r"got float32\[2\]"),
    ],
    ids=["vector_cost", "short_state", "integer_state", "cost_only", "vector_terminal"],
)
def test_problem_functions_must_return_the_expected_shapes(name, functions, message):
    with pytest.raises(ValueError, match=message):
        call(name, problem().replace(**functions))
