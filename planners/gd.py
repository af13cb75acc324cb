"""Gradient-based trajectory optimisation over a `Problem`, with optax."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import optax

from planners import base
from planners import proposal as proposal_lib
from planners.base import Plan, Problem
from planners.proposal import Proposal


def gradient_descent(
    problem: Problem,
    init_actions: jax.Array,
    key: jax.Array,
    *,
    iterations: int = 100,
    num_candidates: int = 8,
    learning_rate: float = 0.05,
    optimizer: optax.GradientTransformation | None = None,
    noise_std: float = 0.3,
    proposal: Proposal | None = None,
) -> Plan:
    """Plans by projected gradient descent on the action sequence.

    `num_candidates` sequences start from `init_actions` (the first exactly, the others
    perturbed by Gaussian noise), each is optimised by `optimizer` on the problem's total
    cost, differentiating through `problem.step` (a learned model, or differentiable
    physics), and projected back onto the bounds after every update. The cheapest sequence
    seen at any iteration is returned. Non-finite gradients are zeroed (the candidate does
    not move on that step) and non-finite costs never win.

    Args:
      problem: the problem; `step` and `terminal_cost` must be differentiable in the
        action. `jax.vmap` over a batch of problems works.
      init_actions: the starting sequence [H, A] (e.g. the previous plan, shifted).
      key: a `jax.random` key, consumed (it draws the candidates' starting noise).
      iterations: optimiser steps per candidate (> 0).
      num_candidates: sequences optimised in parallel (> 0).
      learning_rate: Adam's step size when `optimizer` is None (> 0).
      optimizer: any `optax.GradientTransformation` (static: pass the same object to
        every call, or it recompiles); None means `optax.adam(learning_rate)`.
      noise_std: standard deviation of the perturbation of candidates 1.. (>= 0).
      proposal: a policy (`planners.Proposal`) or None. Given, the candidates start from its
        rollout instead of `init_actions` when that costs less (`planners.proposal`).

    Returns:
      A `Plan` with actions [H, A] inside the bounds, its cost [], the best cost after each
      iteration [iterations], and `info["fallback"]`: True when no candidate ever had a
      finite cost and the plan is the initial actions, sanitised and clipped.

    Example:
      >>> plan = planners.gradient_descent(problem, jnp.zeros((16, 2)), jax.random.key(0))
    """
    base.check_problem(problem, init_actions)
    key = base.typed_key(key)
    iterations = base.check_positive("iterations", iterations)
    num_candidates = base.check_positive("num_candidates", num_candidates)
    learning_rate = base.check_positive("learning_rate", learning_rate, integer=False)
    noise_std = base.check_nonnegative("noise_std", noise_std)
    proposal_lib.check(proposal, problem)
    if optimizer is not None:
        if not (callable(getattr(optimizer, "init", None))
                and callable(getattr(optimizer, "update", None))):
            raise ValueError(
                "optimizer: expected an optax.GradientTransformation (with init and update) "
                f"or None, got {type(optimizer).__name__}"
            )
        try:
            hash(optimizer)
        except TypeError as error:
            raise ValueError(
                f"optimizer: expected a hashable optax.GradientTransformation, got {optimizer!r}"
            ) from error
    return _gradient_descent(
        problem,
        base.float_actions(init_actions),
        key,
        proposal,
        iterations=iterations,
        num_candidates=num_candidates,
        learning_rate=learning_rate,
        optimizer=optimizer,
        noise_std=noise_std,
    )


def _descent_step(problem: Problem, optimizer: optax.GradientTransformation):
    """One projected optimiser step for one candidate: (actions, opt_state) -> (..., cost)."""
    value_and_grad = jax.value_and_grad(lambda actions: base.total_cost(problem, actions))

    def step(actions, opt_state):  # [H, A], optimiser state
        cost, grad = value_and_grad(actions)
        grad = jnp.where(jnp.isfinite(grad), grad, 0.0)
        updates, opt_state = optimizer.update(grad, opt_state, actions)
        moved = base.clip_actions(problem, optax.apply_updates(actions, updates))
        moved = jnp.where(jnp.isfinite(moved), moved, actions)
        return moved, opt_state, base.finite_or_inf(cost)

    return step


@functools.partial(
    jax.jit,
    static_argnames=("iterations", "num_candidates", "learning_rate", "optimizer", "noise_std"),
)
def _gradient_descent(
    problem: Problem,
    init_actions: jax.Array,  # [H, A]
    key: jax.Array,
    proposal: Proposal | None,
    *,
    iterations: int,
    num_candidates: int,
    learning_rate: float,
    optimizer: optax.GradientTransformation | None,
    noise_std: float,
) -> Plan:
    optimizer = optax.adam(learning_rate) if optimizer is None else optimizer
    start = base.sanitize_actions(problem, init_actions)  # [H, A]
    if proposal is not None:
        start = proposal_lib.warm_start(problem, proposal, start)
    noise = noise_std * jax.random.normal(key, (num_candidates, *start.shape), start.dtype)
    noise = noise.at[0].set(0.0)  # the initial sequence itself is always a candidate
    candidates = base.clip_actions(problem, start[None] + noise)  # [C, H, A]
    opt_state = jax.vmap(optimizer.init)(candidates)
    step = jax.vmap(_descent_step(problem, optimizer))

    def iteration(carry, _):
        candidates, opt_state, best_actions, best_cost = carry
        moved, opt_state, costs = step(candidates, opt_state)  # costs of `candidates` [C]
        best_actions, best_cost = base.keep_best(best_actions, best_cost, candidates, costs)
        return (moved, opt_state, best_actions, best_cost), best_cost

    init = (candidates, opt_state, start, jnp.asarray(jnp.inf, start.dtype))
    (candidates, _, best_actions, best_cost), trace = jax.lax.scan(
        iteration, init, None, length=iterations
    )
    best_actions, best_cost = base.keep_best(
        best_actions, best_cost, candidates, base.batch_total_cost(problem, candidates)
    )
    trace = trace.at[-1].set(best_cost)
    return base.finish_plan(problem, best_actions, best_cost, trace, start)
