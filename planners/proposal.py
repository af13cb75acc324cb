"""A policy as a proposal for the sampling and gradient planners (mode 1 inside mode 2).

A `Proposal` is a reactive policy `act(params, problem_params, state) -> action [A]`: it sees
the planning state and the problem's params (where a goal lives, so a hierarchy's subgoals
reach it), never the model. The planners use it three ways, and only when one is given:

- **warm start**: the proposal's noiseless closed-loop rollout replaces the warm start when
  it costs less (`warm_start`);
- **samples**: `num` noisy closed-loop rollouts join the planner's own samples
  (`rollouts`), scored in the same pass that rolls them out;
- **gradient descent** starts one candidate from the warm start above.

Without a proposal every planner is unchanged, bit for bit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from planners import base
from planners.base import Problem

PyTree = Any


@struct.dataclass
class Proposal:
    """A policy that proposes actions to a planner, as a pytree.

    Attributes:
      act: `(params, problem_params, state) -> action [A]`. Static: a module-level function
        or a hashable callable, so jitted planners never retrace.
      params: what `act` reads (a policy network's params).
    """

    act: Callable = struct.field(pytree_node=False)
    params: PyTree


def check(proposal: Any, problem: Problem) -> None:
    """Raises ValueError unless `proposal` is None or a `Proposal` whose action fits `problem`."""
    if proposal is None:
        return
    if not isinstance(proposal, Proposal):
        raise ValueError(f"proposal: expected a planners.Proposal or None, got "
                         f"{type(proposal).__name__}")
    if not callable(proposal.act):
        raise ValueError(f"proposal.act: expected a callable, got {type(proposal.act).__name__}")
    try:
        action = jax.eval_shape(proposal.act, proposal.params, problem.params,
                                problem.init_state)
    except Exception as error:  # noqa: BLE001 - any failure of the user's function
        raise ValueError(f"proposal.act: could not be called as (params, problem_params, "
                         f"state) -> action: {type(error).__name__}: {error}") from error
    expected = (problem.action_size,)
    if getattr(action, "shape", None) != expected:
        got = getattr(action, "shape", type(action).__name__)
        raise ValueError(f"proposal.act: expected an action of shape {expected}, got {got}")


def rollouts(problem: Problem, proposal: Proposal, noise: jax.Array
             ) -> tuple[jax.Array, jax.Array]:
    """Closed-loop rollouts of the proposal, one per row of `noise` [N, H, A].

    Each step acts `clip(act(state) + noise)` and steps the problem; the step costs are summed
    in the same pass, so a rollout costs H policy and H step calls.

    Returns:
      (actions [N, H, A] inside the bounds, total costs [N], non-finite as +inf).
    """

    def one(noise_row):  # [H, A]
        def body(state, eps):
            proposed = proposal.act(proposal.params, problem.params, state)
            action = base.sanitize_actions(problem, proposed + eps)
            next_state, cost = problem.step(problem.params, state, action)
            return next_state, (action, cost)

        final_state, (actions, costs) = jax.lax.scan(body, problem.init_state, noise_row)
        total = jnp.sum(costs) + problem.terminal_cost(problem.params, final_state)
        return actions, base.finite_or_inf(total)

    return jax.vmap(one)(noise)


def warm_start(problem: Problem, proposal: Proposal, init_actions: jax.Array) -> jax.Array:
    """The cheaper of `init_actions` [H, A] and the proposal's noiseless rollout [H, A].

    Costs one rollout of the proposal (H policy and H step calls) and one of the warm start
    (H step calls); a proposal that does worse than the warm start is not used."""
    actions, cost = rollouts(problem, proposal, jnp.zeros((1, *init_actions.shape),
                                                          init_actions.dtype))
    own_cost = base.finite_or_inf(base.total_cost(problem, init_actions))
    return jnp.where(cost[0] < own_cost, actions[0], init_actions)


def policy_only(problem: Problem, init_actions: jax.Array, key: jax.Array, *,
                proposal: Proposal | None = None) -> base.Plan:
    """Mode 1 as a planner: the proposal's action from the problem's state now, the warm
    start after it. One policy call and no step call; `Plan.cost` is NaN (nothing is scored).
    Runs in `planners.mpc` like any planner (pass the proposal to `mpc`)."""
    del key
    if proposal is None:
        raise ValueError("proposal: policy_only acts with a planners.Proposal; got None")
    check(proposal, problem)
    init_actions = base.float_actions(init_actions)
    action = proposal.act(proposal.params, problem.params, problem.init_state)
    actions = init_actions.at[0].set(base.sanitize_actions(problem, action))
    return base.Plan(actions, jnp.full((), jnp.nan, actions.dtype),
                     jnp.full((1,), jnp.nan, actions.dtype), {"fallback": jnp.zeros((), bool)})
