"""A policy as a proposal (`planners.Proposal`): the optimal LQR feedback makes MPPI, CEM and
gradient descent reach the known optimum with few samples; a useless one costs nothing."""

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
def stationary_lq():
    """LQ problems whose terminal cost is the infinite-horizon P, so u = -K x is optimal at
    every step: [(problem, K [M, N], optimal cost)]."""
    cases = []
    for seed in SEEDS:
        problem, _, _ = testing.linear_quadratic(jax.random.key(seed), horizon=HORIZON)
        p, gain = testing.lqr_gain(problem.params)
        params = problem.params._replace(qf=jnp.asarray(p, jnp.float32))
        problem = problem.replace(params=params)
        actions, cost = testing.lq_optimum(params, problem.init_state, HORIZON)
        # The stationary feedback's rollout is the open-loop optimum (known answer).
        x, rolled = np.asarray(problem.init_state, np.float64), []
        for _ in range(HORIZON):
            rolled.append(-gain @ x)
            x = np.asarray(params.a, np.float64) @ x + np.asarray(params.b, np.float64) @ rolled[-1]
        np.testing.assert_allclose(np.stack(rolled), actions, atol=1e-4)
        cases.append((problem, jnp.asarray(gain, jnp.float32), cost))
    return cases


def gap(problem, actions, optimal_cost) -> float:
    cost = testing.lq_cost(problem.params, problem.init_state, actions)
    return (cost - optimal_cost) / optimal_cost


PLANNERS = {
    "mppi": (planners.mppi, dict(num_samples=8, iterations=2, noise_std=1.0)),
    "cem": (planners.cem, dict(num_samples=8, num_elites=2, iterations=2, noise_std=1.0)),
    "gd": (planners.gradient_descent, dict(iterations=2, num_candidates=2)),
}


@pytest.mark.parametrize("name", sorted(PLANNERS))
def test_a_proposal_at_the_optimum_makes_a_small_budget_reach_it(stationary_lq, name):
    planner, options = PLANNERS[name]
    init = jnp.zeros((HORIZON, 2))
    for seed, (problem, gain, cost) in enumerate(stationary_lq):
        key = jax.random.key(seed)
        alone = planner(problem, init, key, **options)
        proposal = planners.Proposal(testing.linear_feedback, gain)
        helped = planner(problem, init, key, proposal=proposal, **options)
        assert gap(problem, alone.actions, cost) > 0.05  # this budget alone is far off
        assert 0 <= gap(problem, helped.actions, cost) + 1e-6 < 1e-3


@pytest.mark.parametrize("name", ["mppi", "cem"])
def test_a_useless_proposal_does_not_make_plans_worse(stationary_lq, name):
    """A policy that pushes the wrong way: the planner keeps its own samples, so its plans
    cost what they cost without it, up to noise (mean over problems and seeds)."""
    planner, _ = PLANNERS[name]
    options = dict(num_samples=64, iterations=4, noise_std=1.0)
    if name == "cem":
        options["num_elites"] = 8
    init = jnp.zeros((HORIZON, 2))
    alone, helped = [], []
    for problem, gain, cost in stationary_lq:
        proposal = planners.Proposal(testing.linear_feedback, -3.0 * gain)
        for seed in range(4):
            key = jax.random.key(seed)
            alone.append(gap(problem, planner(problem, init, key, **options).actions, cost))
            helped.append(gap(problem, planner(problem, init, key, proposal=proposal,
                                               **options).actions, cost))
    assert np.mean(helped) <= 1.05 * np.mean(alone) + 1e-3, (np.mean(helped), np.mean(alone))


def test_without_a_proposal_nothing_changes_and_new_params_do_not_retrace(stationary_lq):
    problem, gain, _ = stationary_lq[0]
    init, key = jnp.zeros((HORIZON, 2)), jax.random.key(0)
    plan = planners.mppi(problem, init, key, num_samples=16, iterations=2)
    again = planners.mppi(problem, init, key, num_samples=16, iterations=2, proposal=None)
    np.testing.assert_array_equal(plan.actions, again.actions)
    planners.mppi(problem, init, key, num_samples=16, iterations=2,
                  proposal=planners.Proposal(testing.linear_feedback, gain))
    from planners.mppi import _mppi
    size = _mppi._cache_size()
    planners.mppi(problem, init, key, num_samples=16, iterations=2,
                  proposal=planners.Proposal(testing.linear_feedback, 0.5 * gain))
    assert _mppi._cache_size() == size


def test_mpc_acts_the_proposal_when_the_planner_only_scores_its_mean(stationary_lq):
    """MPPI with one sample and no noise keeps the cheaper of the shifted plan and the
    policy's rollout; with the optimal policy every executed action is -K x (known answer)."""
    problem, gain, _ = stationary_lq[0]
    params = problem.params

    def env_step(env_params, state, action):
        return env_params.a @ state + env_params.b @ action

    result = planners.mpc(problem, jnp.zeros((HORIZON, 2)), jax.random.key(0),
                          env_step=env_step, env_params=params, env_state=problem.init_state,
                          num_steps=6, planner=planners.mppi,
                          planner_options=dict(num_samples=1, iterations=1, noise_std=1e-6,
                                               proposal_samples=0),
                          proposal=planners.Proposal(testing.linear_feedback, gain))
    x = np.asarray(problem.init_state, np.float64)
    for action in np.asarray(result.actions, np.float64):
        np.testing.assert_allclose(action, -np.asarray(gain, np.float64) @ x, atol=1e-4)
        x = np.asarray(params.a, np.float64) @ x + np.asarray(params.b, np.float64) @ action


def test_bad_proposals_are_refused_naming_what_was_expected(stationary_lq):
    problem, gain, _ = stationary_lq[0]
    init, key = jnp.zeros((HORIZON, 2)), jax.random.key(0)
    with pytest.raises(ValueError, match="planners.Proposal or None"):
        planners.mppi(problem, init, key, proposal=testing.linear_feedback)
    with pytest.raises(ValueError, match=r"action of shape \(2,\)"):
        planners.cem(problem, init, key, proposal=planners.Proposal(testing.linear_feedback,
                                                                   gain[:1]))
    with pytest.raises(ValueError, match="proposal_samples"):
        planners.mppi(problem, init, key, proposal_samples=-1)


def _point_step(params, state, action):
    """x' = x + a; cost |x' - goal|^2 (goal in params["goal"])."""
    next_state = state + action
    return next_state, jnp.sum((next_state - params["goal"]) ** 2)


def _point_terminal(params, state):
    return jnp.sum((state - params["goal"]) ** 2)


def _toward_goal(params, problem_params, state):
    """A proposal that steps straight onto the goal it reads from the problem's params."""
    del params
    return problem_params["goal"] - state


def _set_goal(params, subgoal):
    return {**params, "goal": subgoal}


def test_a_lower_level_proposal_plans_toward_the_subgoal_the_level_above_sets():
    """Two levels of points: the top plans toward (3, 0) and its first predicted state becomes
    the goal below. The bottom level scores only its mean (one sample, one iteration), so its
    first action is the proposal's, which must step onto that subgoal (known answer)."""
    def problem(goal, bound):
        return planners.Problem(step=_point_step, terminal_cost=_point_terminal,
                                params={"goal": jnp.asarray(goal)}, init_state=jnp.zeros(2),
                                action_low=-bound * jnp.ones(2), action_high=bound * jnp.ones(2))

    top, bottom = problem([3.0, 0.0], 1.0), problem([0.0, 0.0], 2.0)
    plan = planners.hierarchical_plan(
        (top, bottom), (jnp.zeros((3, 2)), jnp.zeros((2, 2))), jax.random.key(0),
        set_goal=_set_goal,
        planner_options=({"num_samples": 64, "iterations": 3},
                         {"num_samples": 1, "iterations": 1, "noise_std": 1e-6}),
        proposals=(None, planners.Proposal(_toward_goal, ())))
    subgoal = np.asarray(plan.subgoals[0])
    assert np.linalg.norm(subgoal) > 0.5  # the top moved toward its goal
    np.testing.assert_allclose(np.asarray(plan.actions[0]), subgoal, atol=1e-5)
    with pytest.raises(ValueError, match="2 planners.Proposal or None"):
        planners.hierarchical_plan((top, bottom), (jnp.zeros((3, 2)), jnp.zeros((2, 2))),
                                   jax.random.key(0), set_goal=_set_goal,
                                   proposals=(None,))
