"""Model-predictive path integral control (MPPI) over a `Problem`."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from planners import base
from planners import proposal as proposal_lib
from planners.base import Plan, Problem
from planners.proposal import Proposal


def mppi(
    problem: Problem,
    init_actions: jax.Array,
    key: jax.Array,
    *,
    num_samples: int = 256,
    iterations: int = 6,
    temperature: float = 0.1,
    noise_std: float = 0.3,
    noise_decay: float = 1.0,
    proposal: Proposal | None = None,
    proposal_samples: int = 16,
    proposal_noise_std: float = 0.1,
) -> Plan:
    """Plans by MPPI: Gaussian perturbations of a mean sequence, re-weighted by cost.

    Each iteration samples `num_samples` sequences around the current mean (the mean
    itself is always one of them), scores them with the problem's total cost and moves the
    mean to their softmin-weighted average. The temperature is relative to the spread of
    the finite costs in the iteration, so the weights do not depend on the cost's scale or
    offset. The best sequence ever scored is returned; non-finite costs get zero weight and
    never win.

    Args:
      problem: the problem; `jax.vmap` over a batch of problems works.
      init_actions: the initial mean [H, A] (e.g. the previous plan, shifted).
      key: a `jax.random` key, consumed.
      num_samples: sequences scored per iteration (> 0).
      iterations: update rounds (> 0).
      temperature: softmin temperature in units of the costs' standard deviation (> 0).
      noise_std: standard deviation of the action perturbations (> 0).
      noise_decay: factor applied to `noise_std` after each iteration (in (0, 1]).
      proposal: a policy (`planners.Proposal`) or None. Given, the mean starts from its
        rollout when that costs less than `init_actions`, and each iteration adds
        `proposal_samples` closed-loop rollouts of it, with Gaussian action noise of
        `proposal_noise_std`, to the `num_samples` sequences (`planners.proposal`).
      proposal_samples: policy rollouts per iteration (>= 0; used with a proposal).
      proposal_noise_std: their action noise (>= 0).

    Returns:
      A `Plan` with actions [H, A] inside the bounds, its cost [], the best cost after each
      iteration [iterations], and `info["fallback"]`: True when every candidate had a
      non-finite cost and the plan is the initial actions, sanitised and clipped.

    Example:
      >>> plan = planners.mppi(problem, jnp.zeros((16, 2)), jax.random.key(0))
    """
    base.check_problem(problem, init_actions)
    key = base.typed_key(key)
    num_samples = base.check_positive("num_samples", num_samples)
    iterations = base.check_positive("iterations", iterations)
    temperature = base.check_positive("temperature", temperature, integer=False)
    noise_std = base.check_positive("noise_std", noise_std, integer=False)
    noise_decay = base.check_fraction("noise_decay", noise_decay, low_open=True)
    proposal_lib.check(proposal, problem)
    proposal_samples = base.check_nonnegative_integer("proposal_samples", proposal_samples)
    proposal_noise_std = base.check_nonnegative("proposal_noise_std", proposal_noise_std)
    return _mppi(
        problem,
        base.float_actions(init_actions),
        key,
        proposal,
        proposal_samples=proposal_samples if proposal is not None else 0,
        proposal_noise_std=proposal_noise_std,
        num_samples=num_samples,
        iterations=iterations,
        temperature=temperature,
        noise_std=noise_std,
        noise_decay=noise_decay,
    )


def softmin_weights(costs: jax.Array, temperature: float,
                    spread_of: jax.Array | None = None) -> jax.Array:
    """Softmin weights [N] of costs [N], temperature relative to the finite costs' spread.

    The costs are first shifted by their minimum, so adding a constant to every cost leaves
    the weights unchanged bit for bit. Non-finite costs get weight 0; if no cost is finite,
    all weights are 0. `spread_of` [N] (bool), when given, says which costs the spread is
    measured on (the planner's own samples, so that a proposal's outliers do not flatten
    the weights).
    """
    finite = jnp.isfinite(costs)
    measured = finite if spread_of is None else finite & spread_of
    count = jnp.maximum(jnp.sum(measured), 1)
    lowest = jnp.min(jnp.where(finite, costs, jnp.inf))
    lowest = jnp.where(jnp.isfinite(lowest), lowest, 0.0)
    excess = jnp.where(finite, costs - lowest, 0.0)  # [N], >= 0
    mean = jnp.sum(jnp.where(measured, excess, 0.0)) / count
    spread = jnp.sqrt(jnp.sum(jnp.where(measured, (excess - mean) ** 2, 0.0)) / count)
    scale = temperature * spread + 1e-12
    logits = jnp.where(finite, -excess / scale, -jnp.inf)
    weights = jnp.exp(logits)  # [N], the best sample has weight 1
    return weights / jnp.maximum(jnp.sum(weights), 1e-30)


@functools.partial(
    jax.jit,
    static_argnames=("num_samples", "iterations", "temperature", "noise_std", "noise_decay",
                     "proposal_samples", "proposal_noise_std"),
)
def _mppi(
    problem: Problem,
    init_actions: jax.Array,  # [H, A]
    key: jax.Array,
    proposal: Proposal | None,
    *,
    proposal_samples: int,
    proposal_noise_std: float,
    num_samples: int,
    iterations: int,
    temperature: float,
    noise_std: float,
    noise_decay: float,
) -> Plan:
    horizon, action_size = init_actions.shape
    mean0 = base.sanitize_actions(problem, init_actions)  # [H, A]
    if proposal is not None:
        mean0 = proposal_lib.warm_start(problem, proposal, mean0)
    keys = jax.random.split(key, iterations)

    def iteration(carry, inputs):
        mean, best_actions, best_cost = carry
        iter_key, std = inputs
        noise = std * jax.random.normal(iter_key, (num_samples, horizon, action_size), mean.dtype)
        noise = noise.at[0].set(0.0)  # the mean itself is always scored
        samples = base.clip_actions(problem, mean[None] + noise)  # [N, H, A]
        costs = base.batch_total_cost(problem, samples)  # [N]
        if proposal_samples > 0:  # policy rollouts join the population, scored as rolled out
            policy_noise = proposal_noise_std * jax.random.normal(
                jax.random.fold_in(iter_key, 1), (proposal_samples, horizon, action_size),
                mean.dtype)
            proposed, proposed_costs = proposal_lib.rollouts(problem, proposal, policy_noise)
            samples = jnp.concatenate([samples, proposed])  # [N + P, H, A]
            costs = jnp.concatenate([costs, proposed_costs])  # [N + P]
        best_actions, best_cost = base.keep_best(best_actions, best_cost, samples, costs)
        # with policy rollouts, the temperature is measured on the planner's own samples
        own = (jnp.arange(costs.shape[0]) < num_samples) if proposal_samples > 0 else None
        weights = softmin_weights(costs, temperature, own)  # [N (+ P)]
        any_finite = jnp.any(jnp.isfinite(costs))
        new_mean = jnp.einsum("n,nha->ha", weights, samples)
        mean = jnp.where(any_finite, base.clip_actions(problem, new_mean), mean)
        return (mean, best_actions, best_cost), best_cost

    stds = noise_std * noise_decay ** jnp.arange(iterations, dtype=mean0.dtype)
    init = (mean0, mean0, jnp.asarray(jnp.inf, mean0.dtype))
    (mean, best_actions, best_cost), trace = jax.lax.scan(iteration, init, (keys, stds))

    best_actions, best_cost = base.keep_best(
        best_actions, best_cost, mean[None], base.batch_total_cost(problem, mean[None])
    )
    trace = trace.at[-1].set(best_cost)
    return base.finish_plan(problem, best_actions, best_cost, trace, mean0)
