"""Closed-loop model-predictive control as one `lax.scan`."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from planners import base
from planners.base import Problem
from planners.mppi import mppi
from planners.proposal import Proposal

PyTree = Any


class MPCResult(NamedTuple):
    """One closed-loop episode (add a leading batch axis under `jax.vmap`).

    Attributes:
      final_state: the environment state after the last step.
      actions: executed actions [T, A].
      plan_costs: the planner's cost of the plan chosen at each step [T].
      fallbacks: whether the planner fell back to its warm start at each step [T].
      records: `record(env_state)` after each step, stacked on a leading axis T.
    """

    final_state: PyTree
    actions: jax.Array  # [T, A]
    plan_costs: jax.Array  # [T]
    fallbacks: jax.Array  # [T]
    records: PyTree


def identity_observe(params: PyTree, env_state: PyTree) -> PyTree:
    """The planning state is the environment state itself (planning on true dynamics)."""
    del params
    return env_state


def record_nothing(env_state: PyTree) -> jax.Array:
    """A `record` that keeps nothing per step."""
    del env_state
    return jnp.zeros(())


def shift_actions(actions: jax.Array) -> jax.Array:
    """Warm start for the next MPC step: drop the first action, repeat the last [H, A]."""
    return jnp.concatenate([actions[1:], actions[-1:]], axis=0)


def mpc(
    problem: Problem,
    init_actions: jax.Array,
    key: jax.Array,
    *,
    env_step: Callable,
    env_params: PyTree,
    env_state: PyTree,
    num_steps: int,
    observe: Callable = identity_observe,
    planner: Callable = mppi,
    planner_options: dict | None = None,
    record: Callable = record_nothing,
    proposal: Proposal | None = None,
) -> MPCResult:
    """Runs one closed-loop episode: observe, plan, act the first action, repeat.

    At each of `num_steps` steps the planning problem starts from
    `observe(problem.params, env_state)`, `planner` optimises the action sequence warm-started
    from the previous plan shifted by one step, and the first action is applied with
    `env_step(env_params, env_state, action)`. The whole episode is a single `lax.scan`
    compiled once; `jax.vmap` it to run a batch of episodes.

    Args:
      problem: the planning problem; its `init_state` is replaced at every step.
      init_actions: the first warm start [H, A].
      key: a `jax.random` key, consumed.
      env_step: `(env_params, env_state, action [A]) -> env_state`, the real system.
        Static: a module-level function or hashable callable.
      env_params: what `env_step` reads.
      env_state: the initial environment state.
      num_steps: episode length (> 0).
      observe: `(problem.params, env_state) -> planning state` (e.g. encode an observation).
      planner: any planner with the signature `(problem, init_actions, key, **options) -> Plan`.
        The warm start is the previous plan shifted by one step (`shift_actions`); a
        planner whose `Plan.info` holds `"elites"` [K, H, A] (`planners.cem`) also gets
        them back, shifted, as `init_elites=` (NaN at the first step: no elites yet).
      planner_options: keyword hyperparameters for `planner` (hashable values).
      record: `env_state -> pytree` kept after each step (e.g. a position), for analysis.
      proposal: a policy (`planners.Proposal`) passed to the planner at every step as
        `proposal=` (MPPI, CEM and gradient descent take one), or None.

    Returns:
      An `MPCResult`.
    """
    # The planner checks step and terminal cost against the observed state (`observe`'s).
    base.check_problem(problem, init_actions, functions=False)
    key = base.typed_key(key)
    num_steps = base.check_positive("num_steps", num_steps)
    for name, fn in (("env_step", env_step), ("observe", observe), ("planner", planner),
                     ("record", record)):
        if not callable(fn):
            raise ValueError(f"{name}: expected a callable, got {type(fn).__name__}")
    options = dict(planner_options or {})
    try:
        options_key = tuple(sorted(options.items()))
        hash(options_key)
    except TypeError as error:
        raise ValueError(
            f"planner_options: expected a dict of hashable values, got {options!r}"
        ) from error
    if proposal is not None and not isinstance(proposal, Proposal):
        raise ValueError(f"proposal: expected a planners.Proposal or None, got "
                         f"{type(proposal).__name__}")
    return _mpc(
        problem,
        base.float_actions(init_actions),
        key,
        env_params,
        env_state,
        proposal,
        env_step=env_step,
        num_steps=num_steps,
        observe=observe,
        planner=planner,
        options=options_key,
        record=record,
    )


@functools.partial(
    jax.jit,
    static_argnames=("env_step", "num_steps", "observe", "planner", "options", "record"),
)
def _mpc(problem, init_actions, key, env_params, env_state, proposal, *, env_step, num_steps,
         observe, planner, options, record):
    options = dict(options)

    def plan(problem, env_state, warm_start, elites, step_key):
        step_problem = problem.replace(init_state=observe(problem.params, env_state))
        extra = {} if elites is None else {"init_elites": elites}
        if proposal is not None:
            extra["proposal"] = proposal
        return planner(step_problem, warm_start, step_key, **options, **extra)

    # Planners that report elites (CEM/iCEM) get them back, shifted, at the next step.
    first = jax.eval_shape(plan, problem, env_state, init_actions, None, key)
    if "elites" in first.info:
        elites = jnp.full(first.info["elites"].shape, jnp.nan, first.info["elites"].dtype)
    else:
        elites = None

    def control_step(carry, step_key):
        env_state, warm_start, elites = carry
        plan_ = plan(problem, env_state, warm_start, elites, step_key)
        action = plan_.actions[0]
        env_state = env_step(env_params, env_state, action)
        outputs = (action, plan_.cost, plan_.info.get("fallback", jnp.zeros((), bool)),
                   record(env_state))
        if elites is not None:
            elites = jax.vmap(shift_actions)(plan_.info["elites"])
        return (env_state, shift_actions(plan_.actions), elites), outputs

    keys = jax.random.split(key, num_steps)
    (final_state, _, _), (actions, costs, fallbacks, records) = jax.lax.scan(
        control_step, (env_state, init_actions, elites), keys
    )
    return MPCResult(final_state, actions, costs, fallbacks, records)
