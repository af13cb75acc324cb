"""Closed-loop MPC with every planner on a point mass: reaching, warm start, no retrace."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import planners
from planners import testing

H, STEPS = 8, 25
PLANNERS = {
    "gradient_descent": (planners.gradient_descent,
                         dict(iterations=10, num_candidates=2, learning_rate=0.2)),
    "mppi": (planners.mppi, dict(num_samples=64, iterations=3)),
    "cem": (planners.cem, dict(num_samples=64, num_elites=8, iterations=3)),
    "icem": (planners.cem, dict(num_samples=64, num_elites=8, iterations=3, keep_elites=3,
                                noise_beta=2.0)),
    "beam_search": (planners.beam_search, dict(beam_width=4, branching=8)),
}
IDS = list(PLANNERS)
TRACES = {"count": 0}


def counting_step(goal, state, action):
    TRACES["count"] += 1  # runs only when the step is traced
    return testing.double_integrator_step(goal, state, action)


def position(state):
    return state[:2]


def episode(name, start, goal, key, num_steps=STEPS):
    planner, options = PLANNERS[name]
    problem = testing.double_integrator(start, goal).replace(step=counting_step)
    return planners.mpc(problem, jnp.zeros((H, 2)), key,
                        env_step=testing.double_integrator_dynamics, env_params=None,
                        env_state=problem.init_state, num_steps=num_steps, planner=planner,
                        planner_options=options, record=position)


@pytest.mark.parametrize("name", IDS)
def test_mpc_reaches_the_goal_and_never_retraces(name):
    start, goal = jnp.zeros(4), jnp.asarray([1.0, -0.5])
    result = episode(name, start, goal, jax.random.key(0))
    assert result.actions.shape == (STEPS, 2)
    assert result.records.shape == (STEPS, 2)
    assert np.linalg.norm(result.records[-1] - goal) < 0.05
    assert np.all(np.abs(result.actions) <= 1.0) and not np.any(result.fallbacks)
    # Another episode with different data of the same shapes reuses the compiled loop.
    before = TRACES["count"]
    other_start, other_goal = jnp.asarray([0.5, 0.5, 0.1, 0.0]), jnp.asarray([-0.5, 0.0])
    other = episode(name, other_start, other_goal, jax.random.key(1))
    assert TRACES["count"] == before
    assert np.linalg.norm(other.records[-1] - other_goal) < 0.05


@pytest.mark.parametrize("name", IDS)
def test_mpc_equals_a_python_loop_warm_started_with_the_shifted_plan(name):
    planner, options = PLANNERS[name]
    start, goal, key = jnp.zeros(4), jnp.asarray([1.0, -0.5]), jax.random.key(0)
    result = episode(name, start, goal, key)
    problem = testing.double_integrator(start, goal).replace(step=counting_step)
    state, warm, elites = problem.init_state, jnp.zeros((H, 2)), None
    for t, step_key in enumerate(jax.random.split(key, STEPS)[:5]):
        extra = {} if elites is None else {"init_elites": elites}
        plan = planner(problem.replace(init_state=state), warm, step_key, **options, **extra)
        np.testing.assert_allclose(result.actions[t], plan.actions[0], rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(result.plan_costs[t], plan.cost, rtol=1e-4)
        state = testing.double_integrator_dynamics(None, state, plan.actions[0])
        warm = planners.shift_actions(plan.actions)
        if "elites" in plan.info:  # CEM's elites come back shifted; NaN (none) at the start
            elites = jax.vmap(planners.shift_actions)(plan.info["elites"])
        if t == 0 and "elites" in plan.info:
            empty = jnp.full_like(plan.info["elites"], jnp.nan)
            first = planner(problem, jnp.zeros((H, 2)), step_key, init_elites=empty, **options)
            np.testing.assert_array_equal(first.actions, plan.actions)


def test_mpc_vmaps_over_a_batch_of_episodes():
    starts = jnp.asarray([[0.0, 0.0, 0.0, 0.0], [0.5, 0.5, 0.0, 0.0], [-0.5, 0.2, 0.1, 0.1]])
    goals = jnp.asarray([[1.0, -0.5], [-0.5, 0.0], [0.0, 0.5]])
    keys = jax.random.split(jax.random.key(2), 3)
    batched = jax.vmap(lambda s, g, k: episode("mppi", s, g, k))(starts, goals, keys)
    assert batched.actions.shape == (3, STEPS, 2)
    distances = np.linalg.norm(batched.records[:, -1] - goals, axis=-1)
    assert np.all(distances < 0.05), distances
