"""Small analytic problems with known answers, for tests, examples and benchmarks.

- `linear_quadratic`: a finite-horizon LQ problem with its optimum in closed form.
- `double_integrator`: a point mass driven toward a goal (for closed-loop MPC).
- `grid_world`: a discrete maze where greedy search gets stuck behind a wall.

Step and cost functions are module-level, so jitted planners never retrace between
problems of the same shapes.
"""

from __future__ import annotations

import itertools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from planners.base import Problem, batch_total_cost, check_positive

# ----------------------------------------------------------------------------- linear-quadratic


class LQParams(NamedTuple):
    """x' = A x + B u; step cost x'Qx + u'Ru (x before the step); terminal x'Qf x."""

    a: jax.Array  # [N, N]
    b: jax.Array  # [N, M]
    q: jax.Array  # [N, N]
    r: jax.Array  # [M, M]
    qf: jax.Array  # [N, N]


def lq_step(params: LQParams, state: jax.Array, action: jax.Array):
    """(params, x [N], u [M]) -> (A x + B u [N], x'Qx + u'Ru [])."""
    cost = state @ params.q @ state + action @ params.r @ action
    return params.a @ state + params.b @ action, cost


def lq_terminal(params: LQParams, state: jax.Array) -> jax.Array:
    """x'Qf x []."""
    return state @ params.qf @ state


def lq_optimum(params: LQParams, init_state, horizon: int) -> tuple[np.ndarray, float]:
    """The unconstrained optimum of an LQ problem, by the stacked quadratic program.

    With the states stacked as x = F x0 + G u (u the H*M stacked actions), the total cost is
    u'(G'Q̄G + R̄)u + 2 u'G'Q̄F x0 + x0'F'Q̄F x0, minimised by a linear solve (float64).

    Returns:
      (actions [H, M], cost).
    """
    a, b, q, r, qf = (np.asarray(x, np.float64) for x in params)
    x0 = np.asarray(init_state, np.float64)
    n, m = b.shape
    # Rows of F and G give x_t for t = 0..H.
    f = np.stack([np.linalg.matrix_power(a, t) for t in range(horizon + 1)])  # [H+1, N, N]
    g = np.zeros((horizon + 1, n, horizon * m))
    for t in range(1, horizon + 1):
        for k in range(t):
            g[t, :, k * m:(k + 1) * m] = f[t - 1 - k] @ b
    weights = [q] * horizon + [qf]
    hessian = np.kron(np.eye(horizon), r)
    linear = np.zeros(horizon * m)
    constant = 0.0
    for t in range(horizon + 1):
        hessian += g[t].T @ weights[t] @ g[t]
        linear += g[t].T @ weights[t] @ f[t] @ x0
        constant += x0 @ f[t].T @ weights[t] @ f[t] @ x0
    u = np.linalg.solve(hessian, -linear)
    cost = u @ hessian @ u + 2 * u @ linear + constant
    return u.reshape(horizon, m), float(cost)


def lq_cost(params: LQParams, init_state, actions) -> float:
    """The total cost of `actions` [H, M] in float64 (numpy), for measuring gaps exactly."""
    a, b, q, r, qf = (np.asarray(x, np.float64) for x in params)
    x = np.asarray(init_state, np.float64)
    cost = 0.0
    for u in np.asarray(actions, np.float64):
        cost += x @ q @ x + u @ r @ u
        x = a @ x + b @ u
    return float(cost + x @ qf @ x)


def linear_quadratic(
    key: jax.Array,
    *,
    state_size: int = 4,
    action_size: int = 2,
    horizon: int = 12,
    spectral_radius: float = 0.9,
    action_bound: float = 10.0,
) -> tuple[Problem, np.ndarray, float]:
    """A random stable LQ problem, and its optimum (which lies inside the bounds).

    The dynamics matrix is symmetric with random eigenvalues in (-radius, radius) and a
    random eigenbasis; B is Gaussian; Q = I, R = 0.1 I, Qf = 2 I; x0 is Gaussian with std 2.

    Args:
      key: a `jax.random` key, consumed.
      state_size, action_size, horizon: N, M and H.
      spectral_radius: of the random dynamics matrix A (< 1: stable).
      action_bound: the bounds are [-action_bound, action_bound] (finite, > 0); a ValueError
        is raised if the optimum does not lie strictly inside them.

    Returns:
      (problem, optimal actions [H, M] (float64), optimal cost).
    """
    action_bound = check_positive("action_bound", action_bound, integer=False)
    a_key, b_key, x_key = jax.random.split(key, 3)
    # A normal (symmetric) matrix with random eigenvalues in (-radius, radius): stable, and
    # without the transient growth of non-normal matrices that makes the optimum huge.
    eig_key, basis_key = jax.random.split(a_key)
    eigenvalues = spectral_radius * np.asarray(
        jax.random.uniform(eig_key, (state_size,), minval=-1.0, maxval=1.0), np.float64)
    basis, _ = np.linalg.qr(np.asarray(jax.random.normal(basis_key, (state_size,) * 2),
                                       np.float64))
    a = basis @ np.diag(eigenvalues) @ basis.T
    b = np.asarray(jax.random.normal(b_key, (state_size, action_size)), np.float64)
    b /= np.sqrt(state_size)
    x0 = np.asarray(jax.random.normal(x_key, (state_size,)), np.float64) * 2.0
    params = LQParams(a, b, np.eye(state_size), 0.1 * np.eye(action_size),
                      2.0 * np.eye(state_size))
    actions, cost = lq_optimum(params, x0, horizon)
    if np.max(np.abs(actions)) >= action_bound:
        raise ValueError(
            f"action_bound: expected the optimum inside the bounds, got |u*| = "
            f"{np.max(np.abs(actions)):.3g} >= {action_bound}"
        )
    problem = Problem(
        step=lq_step,
        terminal_cost=lq_terminal,
        params=LQParams(*(jnp.asarray(x, jnp.float32) for x in params)),
        init_state=jnp.asarray(x0, jnp.float32),
        action_low=jnp.full((action_size,), -action_bound, jnp.float32),
        action_high=jnp.full((action_size,), action_bound, jnp.float32),
    )
    return problem, actions, cost


# ----------------------------------------------------------------------------- double integrator

DT = 0.1


def double_integrator_dynamics(env_params, state: jax.Array, action: jax.Array) -> jax.Array:
    """A point mass in the plane: state [4] = (position [2], velocity [2]), force [2]."""
    del env_params
    position, velocity = state[:2], state[2:]
    velocity = velocity + DT * action
    return jnp.concatenate([position + DT * velocity, velocity])


def double_integrator_step(goal: jax.Array, state: jax.Array, action: jax.Array):
    """(goal [2], state [4], action [2]) -> (next state [4], distance² + effort [])."""
    next_state = double_integrator_dynamics(None, state, action)
    cost = jnp.sum((next_state[:2] - goal) ** 2) + 0.01 * jnp.sum(action**2)
    return next_state, cost


def double_integrator_terminal(goal: jax.Array, state: jax.Array) -> jax.Array:
    """Distance to the goal and speed at the end of the horizon []."""
    return 10.0 * jnp.sum((state[:2] - goal) ** 2) + jnp.sum(state[2:] ** 2)


def double_integrator(start: jax.Array, goal: jax.Array) -> Problem:
    """A point mass at `start` [4] steered toward `goal` [2] with forces in [-1, 1]²."""
    return Problem(
        step=double_integrator_step,
        terminal_cost=double_integrator_terminal,
        params=jnp.asarray(goal, jnp.float32),
        init_state=jnp.asarray(start, jnp.float32),
        action_low=-jnp.ones(2, jnp.float32),
        action_high=jnp.ones(2, jnp.float32),
    )


class HazardParams(NamedTuple):
    """A double integrator's goal, and regions of non-finite cost set by data."""

    goal: jax.Array  # [2]
    minus_inf_above: jax.Array  # [] the step cost is -inf where action[0] > this
    nan_below: jax.Array  # [] the step cost is NaN where action[0] < this


def hazard_step(params: HazardParams, state: jax.Array, action: jax.Array):
    """`double_integrator_step` with -inf and NaN costs in regions of the actions."""
    next_state, cost = double_integrator_step(params.goal, state, action)
    cost = jnp.where(action[0] > params.minus_inf_above, -jnp.inf, cost)
    return next_state, jnp.where(action[0] < params.nan_below, jnp.nan, cost)


def hazard_terminal(params: HazardParams, state: jax.Array) -> jax.Array:
    return double_integrator_terminal(params.goal, state)


def hazard_double_integrator(start, goal, minus_inf_above=np.inf, nan_below=-np.inf) -> Problem:
    """A double integrator whose step cost is -inf where action[0] > `minus_inf_above` and
    NaN where action[0] < `nan_below` (no hazards by default; `nan_below=inf`: all NaN).

    The thresholds are data, so problems with and without hazards share one compilation.
    """
    params = HazardParams(jnp.asarray(goal, jnp.float32),
                          jnp.asarray(minus_inf_above, jnp.float32),
                          jnp.asarray(nan_below, jnp.float32))
    return double_integrator(start, params.goal).replace(
        step=hazard_step, terminal_cost=hazard_terminal, params=params)


# ----------------------------------------------------------------------------- grid world

GRID_MOVES = ((1.0, 0.0), (-1.0, 0.0), (0.0, 1.0), (0.0, -1.0))  # right, left, up, down


class GridParams(NamedTuple):
    walls: jax.Array  # [X, Y] bool: blocked cells
    goal: jax.Array  # [2] cell


def grid_step(params: GridParams, state: jax.Array, action: jax.Array):
    """Moves by `action` [2] unless that leaves the grid or enters a wall (then cost 5)."""
    target = state + jnp.round(action)
    size = jnp.asarray(params.walls.shape, state.dtype)
    inside = jnp.all((target >= 0) & (target < size))
    cell = jnp.clip(target, 0, size - 1).astype(jnp.int32)
    free = inside & ~params.walls[cell[0], cell[1]]
    return jnp.where(free, target, state), 0.1 + jnp.where(free, 0.0, 5.0)


def grid_terminal(params: GridParams, state: jax.Array) -> jax.Array:
    """Twice the Manhattan distance to the goal []."""
    return 2.0 * jnp.sum(jnp.abs(state - params.goal))


def grid_world() -> Problem:
    """A 5x5 maze: from (2, 0) to (2, 4) around a wall at y = 2, x = 1..3 (8 moves).

    Greedy search walks into the wall; the optimum goes around it and costs 0.8.
    """
    walls = np.zeros((5, 5), bool)
    walls[1:4, 2] = True
    return Problem(
        step=grid_step,
        terminal_cost=grid_terminal,
        params=GridParams(jnp.asarray(walls), jnp.asarray([2.0, 4.0])),
        init_state=jnp.asarray([2.0, 0.0]),
        action_low=-jnp.ones(2),
        action_high=jnp.ones(2),
    )


def brute_force(problem: Problem, action_set, horizon: int) -> tuple[np.ndarray, float]:
    """The best sequence over all len(action_set)**horizon sequences ([H, A], cost)."""
    moves = np.asarray(action_set, np.float32)
    index = np.asarray(list(itertools.product(range(len(moves)), repeat=horizon)))
    sequences = jnp.asarray(moves[index])  # [S, H, A]
    costs = np.asarray(jax.jit(batch_total_cost)(problem, sequences))
    best = int(np.argmin(costs))
    return np.asarray(sequences[best]), float(costs[best])


def lqr_gain(params: LQParams, iterations: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    """The infinite-horizon LQR solution (float64) by iterating the Riccati recursion.

    With Qf set to the returned P the finite-horizon optimum of any horizon is the stationary
    feedback u = -K x, so a policy that knows K proposes the optimal plan.

    Returns:
      (P [N, N], K [M, N]).
    """
    a, b, q, r, _ = (np.asarray(x, np.float64) for x in params)
    p = q
    for _ in range(iterations):
        gain = np.linalg.solve(r + b.T @ p @ b, b.T @ p @ a)
        p = q + a.T @ p @ (a - b @ gain)
    return p, np.linalg.solve(r + b.T @ p @ b, b.T @ p @ a)


def linear_feedback(gain: jax.Array, problem_params, state: jax.Array) -> jax.Array:
    """A `planners.Proposal` act: u = -K x, with K [M, N] its params."""
    del problem_params
    return -gain @ state
