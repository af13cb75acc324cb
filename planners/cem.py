"""The cross-entropy method (CEM) and its improved variant (iCEM) over a `Problem`."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from planners import base
from planners import proposal as proposal_lib
from planners.base import Plan, Problem
from planners.proposal import Proposal


def cem(
    problem: Problem,
    init_actions: jax.Array,
    key: jax.Array,
    *,
    num_samples: int = 256,
    num_elites: int = 32,
    iterations: int = 6,
    noise_std: float = 0.5,
    min_std: float = 0.05,
    smoothing: float = 0.0,
    noise_beta: float = 0.0,
    keep_elites: int = 0,
    init_elites: jax.Array | None = None,
    proposal: Proposal | None = None,
    proposal_samples: int = 16,
    proposal_noise_std: float = 0.1,
) -> Plan:
    """Plans by the cross-entropy method, with iCEM's options.

    Each iteration samples `num_samples` sequences from a diagonal Gaussian over [H, A]
    (the mean itself is always one of them), scores them, and refits the Gaussian to the
    `num_elites` cheapest. With the defaults this is plain CEM; iCEM (Pinneri et al., 2020)
    is `noise_beta > 0` (temporally correlated noise), `keep_elites > 0` (the best elites
    of one iteration are scored again in the next, and, through `init_elites`, from one
    MPC step to the next) and `smoothing > 0` (momentum on the mean and std). Elites are
    chosen by rank, so adding a constant to every cost changes nothing; non-finite costs
    never become elites unless fewer than `num_elites` costs are finite, and never win.

    Args:
      problem: the problem; `jax.vmap` over a batch of problems works.
      init_actions: the initial mean [H, A] (e.g. the previous plan, shifted).
      key: a `jax.random` key, consumed.
      num_samples: new sequences scored per iteration (> 0).
      num_elites: sequences the Gaussian is refitted to (0 < num_elites <= num_samples).
      iterations: refitting rounds (> 0).
      noise_std: initial standard deviation of every action (> 0).
      min_std: floor on the refitted standard deviation (>= 0), so the search never
        collapses to a point.
      smoothing: momentum in [0, 1): new = smoothing * old + (1 - smoothing) * refit.
      noise_beta: colour of the sampling noise along time (>= 0): its power spectrum falls
        as 1 / frequency**beta; 0 is white noise, iCEM uses 2 to 4.
      keep_elites: how many of the best elites are carried into the next iteration's
        population (0 <= keep_elites <= num_elites).
      init_elites: elites carried from a previous plan [E, H, A] (e.g. the previous
        MPC step's `info["elites"]`, shifted), best first; the first `keep_elites` join the
        first iteration's population. Rows with a non-finite entry are empty slots. None:
        none are carried. `planners.mpc` passes them automatically.
      proposal: a policy (`planners.Proposal`) or None. Given, the mean starts from its
        rollout when that costs less than `init_actions`, and each iteration adds
        `proposal_samples` closed-loop rollouts of it, with Gaussian action noise of
        `proposal_noise_std`, to the population the elites are chosen from.
      proposal_samples: policy rollouts per iteration (>= 0; used with a proposal).
      proposal_noise_std: their action noise (>= 0).

    Returns:
      A `Plan` with actions [H, A] inside the bounds, its cost [], the best cost after each
      iteration [iterations], and `info` with `"fallback"` (True when every candidate had a
      non-finite cost and the plan is the initial actions, sanitised and clipped) and
      `"elites"`, the final elites [num_elites, H, A], best first.

    Example:
      >>> plan = planners.cem(problem, jnp.zeros((16, 2)), jax.random.key(0))
    """
    base.check_problem(problem, init_actions)
    key = base.typed_key(key)
    num_samples = base.check_positive("num_samples", num_samples)
    num_elites = base.check_positive("num_elites", num_elites)
    base.check_at_most("num_elites", num_elites, "num_samples", num_samples)
    iterations = base.check_positive("iterations", iterations)
    noise_std = base.check_positive("noise_std", noise_std, integer=False)
    min_std = base.check_nonnegative("min_std", min_std)
    smoothing = base.check_fraction("smoothing", smoothing)
    noise_beta = base.check_nonnegative("noise_beta", noise_beta)
    keep_elites = base.check_nonnegative_integer("keep_elites", keep_elites)
    base.check_at_most("keep_elites", keep_elites, "num_elites", num_elites)
    proposal_lib.check(proposal, problem)
    proposal_samples = base.check_nonnegative_integer("proposal_samples", proposal_samples)
    proposal_noise_std = base.check_nonnegative("proposal_noise_std", proposal_noise_std)
    horizon, action_size = jnp.shape(init_actions)
    if init_elites is not None:
        if jnp.ndim(init_elites) != 3 or jnp.shape(init_elites)[1:] != (horizon, action_size):
            raise ValueError(
                f"init_elites: expected shape [E, {horizon}, {action_size}] (elites shaped like "
                f"init_actions), got {tuple(jnp.shape(init_elites))}"
            )
        init_elites = base.float_actions(init_elites)
    return _cem(
        problem,
        base.float_actions(init_actions),
        key,
        init_elites,
        proposal,
        proposal_samples=proposal_samples if proposal is not None else 0,
        proposal_noise_std=proposal_noise_std,
        num_samples=num_samples,
        num_elites=num_elites,
        iterations=iterations,
        noise_std=noise_std,
        min_std=min_std,
        smoothing=smoothing,
        noise_beta=noise_beta,
        keep_elites=keep_elites,
    )


def _fit_rows(elites: jax.Array, rows: int) -> jax.Array:
    """The first `rows` of elites [E, H, A], padded with NaN (empty slots) -> [rows, H, A]."""
    elites = elites[:rows]
    missing = rows - elites.shape[0]
    if missing > 0:
        elites = jnp.concatenate([elites, jnp.full((missing, *elites.shape[1:]), jnp.nan,
                                                   elites.dtype)])
    return elites


def colored_noise(key: jax.Array, shape: tuple[int, ...], beta: float,
                  dtype=jnp.float32) -> jax.Array:
    """Standard Gaussian noise [N, H, A], correlated along H with a 1/f**beta spectrum.

    Every entry has unit variance; `beta = 0` is white noise. The noise is drawn in the
    frequency domain (static H) and transformed back with an inverse real FFT.
    """
    if beta == 0.0:
        return jax.random.normal(key, shape, dtype)
    num, horizon, action_size = shape
    freqs = np.fft.rfftfreq(horizon)  # [F]
    freqs[0] = freqs[1] if horizon > 1 else 1.0
    scale = freqs ** (-beta / 2.0)  # [F]
    # Variance of each time step (the same for all, the process is circular-stationary).
    basis = np.fft.irfft(np.diag(scale), n=horizon, axis=-1)  # real parts [F, H]
    basis_imag = np.fft.irfft(1j * np.diag(scale), n=horizon, axis=-1)  # imaginary parts
    std = np.sqrt(np.sum(basis[:, 0] ** 2) + np.sum(basis_imag[:, 0] ** 2))
    real_key, imag_key = jax.random.split(key)
    spectrum_shape = (num, action_size, freqs.shape[0])
    spectrum = (jax.random.normal(real_key, spectrum_shape, dtype)
                + 1j * jax.random.normal(imag_key, spectrum_shape, dtype))  # [N, A, F]
    noise = jnp.fft.irfft(spectrum * jnp.asarray(scale / std, dtype), n=horizon, axis=-1)
    return jnp.swapaxes(noise, -1, -2).astype(dtype)  # [N, H, A]


def _refit(elites: jax.Array, costs: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Mean and std [H, A] of the finite-cost elites [K, H, A]; and whether any was finite."""
    finite = jnp.isfinite(costs)  # [K]
    weights = finite / jnp.maximum(jnp.sum(finite), 1)  # [K]
    mean = jnp.einsum("k,kha->ha", weights, elites)
    var = jnp.einsum("k,kha->ha", weights, (elites - mean) ** 2)
    return mean, jnp.sqrt(var), jnp.any(finite)


@functools.partial(
    jax.jit,
    static_argnames=("num_samples", "num_elites", "iterations", "noise_std", "min_std",
                     "smoothing", "noise_beta", "keep_elites", "proposal_samples",
                     "proposal_noise_std"),
)
def _cem(
    problem: Problem,
    init_actions: jax.Array,  # [H, A]
    key: jax.Array,
    init_elites: jax.Array | None,  # [E, H, A], NaN rows are empty slots; None: none
    proposal: Proposal | None,
    *,
    proposal_samples: int,
    proposal_noise_std: float,
    num_samples: int,
    num_elites: int,
    iterations: int,
    noise_std: float,
    min_std: float,
    smoothing: float,
    noise_beta: float,
    keep_elites: int,
) -> Plan:
    horizon, action_size = init_actions.shape
    mean0 = base.sanitize_actions(problem, init_actions)  # [H, A]
    if proposal is not None:
        mean0 = proposal_lib.warm_start(problem, proposal, mean0)
    std0 = jnp.full_like(mean0, noise_std)  # [H, A]
    if init_elites is None:
        init_elites = jnp.full((keep_elites, horizon, action_size), jnp.nan, mean0.dtype)
    init_elites = _fit_rows(init_elites, keep_elites)  # [keep, H, A]
    kept_valid = jnp.all(jnp.isfinite(init_elites), axis=(1, 2))  # [keep]
    kept0 = base.sanitize_actions(problem, init_elites)  # [keep, H, A]
    keys = jax.random.split(key, iterations)

    def iteration(carry, iter_key):
        mean, std, kept, kept_valid, _, best_actions, best_cost = carry
        noise = colored_noise(iter_key, (num_samples, horizon, action_size), noise_beta,
                              mean.dtype)
        noise = noise.at[0].set(0.0)  # the mean itself is always scored
        samples = base.clip_actions(problem, mean[None] + std[None] * noise)  # [N, H, A]
        population = jnp.concatenate([samples, kept])  # [N + keep, H, A]
        costs = base.batch_total_cost(problem, population)  # [N + keep]
        costs = costs.at[num_samples:].set(jnp.where(kept_valid, costs[num_samples:], jnp.inf))
        if proposal_samples > 0:  # policy rollouts join the population, scored as rolled out
            policy_noise = proposal_noise_std * jax.random.normal(
                jax.random.fold_in(iter_key, 1), (proposal_samples, horizon, action_size),
                mean.dtype)
            proposed, proposed_costs = proposal_lib.rollouts(problem, proposal, policy_noise)
            population = jnp.concatenate([population, proposed])  # [N + keep + P, H, A]
            costs = jnp.concatenate([costs, proposed_costs])
        best_actions, best_cost = base.keep_best(best_actions, best_cost, population, costs)
        neg_elite_costs, index = jax.lax.top_k(-costs, num_elites)  # best first
        elites, elite_costs = population[index], -neg_elite_costs  # [K, H, A], [K]
        fit_mean, fit_std, any_finite = _refit(elites, elite_costs)
        new_mean = smoothing * mean + (1.0 - smoothing) * fit_mean
        new_std = jnp.maximum(smoothing * std + (1.0 - smoothing) * fit_std, min_std)
        mean = jnp.where(any_finite, base.clip_actions(problem, new_mean), mean)
        std = jnp.where(any_finite, new_std, std)
        kept, kept_valid = elites[:keep_elites], jnp.isfinite(elite_costs[:keep_elites])
        carry = (mean, std, kept, kept_valid, elites, best_actions, best_cost)
        return carry, best_cost

    elites0 = jnp.broadcast_to(mean0, (num_elites, horizon, action_size))
    init = (mean0, std0, kept0, kept_valid, elites0, mean0, jnp.asarray(jnp.inf, mean0.dtype))
    (mean, _, _, _, elites, best_actions, best_cost), trace = jax.lax.scan(
        iteration, init, keys
    )
    best_actions, best_cost = base.keep_best(
        best_actions, best_cost, mean[None], base.batch_total_cost(problem, mean[None])
    )
    trace = trace.at[-1].set(best_cost)
    return base.finish_plan(problem, best_actions, best_cost, trace, mean0,
                            {"elites": elites})
