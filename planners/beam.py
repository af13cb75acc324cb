"""Beam search over action sequences of a `Problem`."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from planners import base
from planners.base import Plan, Problem


def beam_search(
    problem: Problem,
    init_actions: jax.Array,
    key: jax.Array,
    *,
    beam_width: int = 8,
    branching: int = 16,
    iterations: int = 1,
    action_set: tuple[tuple[float, ...], ...] | None = None,
    grid_size: int | None = None,
    noise_std: float = 0.3,
) -> Plan:
    """Plans by beam search: breadth-first over time, keeping the `beam_width` best prefixes.

    At every step each beam is extended by `branching` candidate actions: the fixed actions
    (`action_set`, or else a grid over the bounds), the action of the current centre plan
    at that step (the initial plan in the first round, the best plan found so far in later
    rounds), and Gaussian perturbations of it. Of the `beam_width * branching` extended
    prefixes the `beam_width` with the lowest cost so far plus terminal cost (used as a
    heuristic for the rest) survive. After the last step the cheapest full sequence wins.
    Non-finite costs rank last and never win.

    Args:
      problem: the problem; `jax.vmap` over a batch of problems works.
      init_actions: the initial plan [H, A]; it is also scored as a whole.
      key: a `jax.random` key, consumed (it draws the perturbations).
      beam_width: prefixes kept after every step (> 0). 1 is greedy search.
      branching: candidate actions per beam and step (> 0), fixed ones first.
      iterations: rounds of search (> 0), each centred on the best plan so far.
      action_set: a discrete set of actions [M, A] (a tuple of tuples, M <= branching),
        tried at every step; clipped to the bounds. None: a grid over the bounds.
      grid_size: points per action dimension of that grid (grid_size**A <= branching);
        None: the largest that leaves at least one slot for the centre plan's action;
        0: no grid.
      noise_std: standard deviation of the perturbations of the centre action (>= 0).

    Returns:
      A `Plan` with actions [H, A] inside the bounds, its cost [], the best cost after each
      round [iterations], and `info["fallback"]`: True when no sequence had a finite cost
      and the plan is the initial actions, sanitised and clipped.

    Example:
      >>> plan = planners.beam_search(problem, jnp.zeros((8, 1)), jax.random.key(0),
      ...                             action_set=((-1.0,), (0.0,), (1.0,)), branching=3)
    """
    base.check_problem(problem, init_actions)
    key = base.typed_key(key)
    beam_width = base.check_positive("beam_width", beam_width)
    branching = base.check_positive("branching", branching)
    iterations = base.check_positive("iterations", iterations)
    noise_std = base.check_nonnegative("noise_std", noise_std)
    action_size = jnp.shape(init_actions)[1]
    if action_set is not None:
        fixed = _check_action_set(action_set, action_size, branching)
        grid = 0
    else:
        fixed = None
        grid = _check_grid_size(grid_size, action_size, branching)
    return _beam_search(
        problem,
        base.float_actions(init_actions),
        key,
        beam_width=beam_width,
        branching=branching,
        iterations=iterations,
        action_set=fixed,
        grid_size=grid,
        noise_std=noise_std,
    )


def _check_action_set(action_set, action_size: int, branching: int) -> tuple:
    """Validates a discrete action set and returns it as a hashable tuple of tuples."""
    try:
        values = np.asarray(action_set, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"action_set: expected a sequence of actions [M, {action_size}], got {action_set!r}"
        ) from error
    if values.ndim != 2 or values.shape[1] != action_size or values.shape[0] < 1:
        raise ValueError(
            f"action_set: expected shape [M, {action_size}] with M >= 1 (M actions of the "
            f"problem's {action_size} dimensions), got {values.shape}"
        )
    if not np.all(np.isfinite(values)):
        raise ValueError(f"action_set: expected finite actions, got {values.tolist()}")
    if values.shape[0] > branching:
        raise ValueError(
            f"branching: expected at least the {values.shape[0]} actions of action_set, "
            f"got {branching}"
        )
    return tuple(tuple(float(v) for v in row) for row in values)


def _check_grid_size(grid_size, action_size: int, branching: int) -> int:
    """Validates `grid_size` (or picks one when None) and returns it."""
    if grid_size is None:
        size = 0
        while (size + 1) ** action_size <= branching - 1:
            size += 1
        return size
    if not base.is_integer(grid_size) or grid_size < 0:
        raise ValueError(f"grid_size: expected a non-negative integer or None, got {grid_size!r}")
    grid_size = int(grid_size)
    if grid_size**action_size > branching:
        raise ValueError(
            f"grid_size: expected grid_size**{action_size} <= branching ({branching}), "
            f"got {grid_size} ({grid_size**action_size} grid points)"
        )
    return grid_size


def grid_actions(problem: Problem, grid_size: int) -> jax.Array:
    """A regular grid over the action bounds [grid_size**A, A] (the middle if grid_size=1)."""
    action_size = problem.action_low.shape[-1]
    if grid_size == 0:
        return jnp.zeros((0, action_size), problem.action_low.dtype)
    fractions = np.linspace(0.0, 1.0, grid_size) if grid_size > 1 else np.array([0.5])
    ticks = problem.action_low + (problem.action_high - problem.action_low) * fractions[:, None]
    index = np.stack(np.meshgrid(*[np.arange(grid_size)] * action_size, indexing="ij"), -1)
    index = index.reshape(-1, action_size)  # [M, A]
    return ticks[index, np.arange(action_size)]  # [M, A]


def _beam_round(problem: Problem, centre: jax.Array, key: jax.Array, *, fixed: jax.Array,
                beam_width: int, branching: int, noise_std: float):
    """One beam search over the horizon around `centre` [H, A] -> (actions [W, H, A], costs [W])."""
    horizon, action_size = centre.shape
    num_random = branching - fixed.shape[0] - 1  # perturbations per beam and step (may be -1)
    step = jax.vmap(jax.vmap(problem.step, (None, None, 0)), (None, 0, 0))
    heuristic = jax.vmap(jax.vmap(problem.terminal_cost, (None, 0)), (None, 0))
    states = jax.tree.map(lambda x: jnp.broadcast_to(x, (beam_width, *jnp.shape(x))),
                          problem.init_state)
    so_far = jnp.full((beam_width,), jnp.inf, centre.dtype).at[0].set(0.0)  # one live beam
    sequences = jnp.broadcast_to(centre, (beam_width, horizon, action_size))

    def depth(carry, inputs):
        states, so_far, sequences = carry
        t, step_key = inputs
        parts = [jnp.broadcast_to(fixed, (beam_width, *fixed.shape))]
        if num_random >= 0:
            parts.append(jnp.broadcast_to(centre[t], (beam_width, 1, action_size)))
        if num_random > 0:
            noise = noise_std * jax.random.normal(step_key, (beam_width, num_random, action_size),
                                                  centre.dtype)
            parts.append(centre[t] + noise)
        candidates = base.sanitize_actions(problem, jnp.concatenate(parts, 1))  # [W, B, A]
        next_states, step_costs = step(problem.params, states, candidates)  # [W, B, ...], [W, B]
        prefix = base.finite_or_inf(so_far[:, None] + step_costs)  # [W, B]
        score = base.finite_or_inf(prefix + heuristic(problem.params, next_states))  # [W, B]
        neg_score, index = jax.lax.top_k(-score.reshape(-1), beam_width)  # best first [W]
        parent = index // branching
        flat = lambda x: x.reshape(beam_width * branching, *x.shape[2:])[index]
        states = jax.tree.map(flat, next_states)
        chosen = flat(candidates)  # [W, A]
        sequences = sequences[parent].at[:, t].set(chosen)
        return (states, flat(prefix), sequences), -neg_score

    keys = jax.random.split(key, horizon)
    (_, _, sequences), scores = jax.lax.scan(
        depth, (states, so_far, sequences), (jnp.arange(horizon), keys)
    )
    return sequences, scores[-1]  # after the last step the score is the total cost


@functools.partial(
    jax.jit,
    static_argnames=("beam_width", "branching", "iterations", "action_set", "grid_size",
                     "noise_std"),
)
def _beam_search(
    problem: Problem,
    init_actions: jax.Array,  # [H, A]
    key: jax.Array,
    *,
    beam_width: int,
    branching: int,
    iterations: int,
    action_set: tuple | None,
    grid_size: int,
    noise_std: float,
) -> Plan:
    start = base.sanitize_actions(problem, init_actions)  # [H, A]
    if action_set is None:
        fixed = grid_actions(problem, grid_size)  # [M, A]
    else:
        fixed = jnp.asarray(action_set, start.dtype)  # [M, A]
    search = functools.partial(_beam_round, problem, fixed=fixed, beam_width=beam_width,
                               branching=branching, noise_std=noise_std)
    best_cost = base.batch_total_cost(problem, start[None])[0]

    def round_(carry, round_key):
        best_actions, best_cost = carry
        sequences, costs = search(best_actions, round_key)  # [W, H, A], [W]
        best_actions, best_cost = base.keep_best(best_actions, best_cost, sequences, costs)
        return (best_actions, best_cost), best_cost

    (best_actions, best_cost), trace = jax.lax.scan(
        round_, (start, best_cost), jax.random.split(key, iterations)
    )
    return base.finish_plan(problem, best_actions, best_cost, trace, start)
