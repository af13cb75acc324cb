"""Hierarchical planning: every level plans toward the first state the level above predicts.

A hierarchy is a tuple of `Problem`s, top (most abstract) first, bottom last. The top level
plans its actions (e.g. macro-actions that each stand for k primitive steps) toward the real
goal. The state its plan reaches after `subgoal_step + 1` steps becomes the goal of the level
below: `set_goal(params_below, subgoal)` writes it into that level's params, so the level
below minimises its distance to it. This repeats down to the bottom level, whose actions are
the primitive actions executed. An action at level l+1 is thus the objective of level l.

Nothing here knows what a state is: a latent, a Brax state, or anything `step` reads. The
levels need not share a state space, but `set_goal` must turn a state of the level above into
the goal the level below reads (for levels that share a latent space, it stores the latent).

`hierarchical_mpc` runs it in a closed loop as one `lax.scan`: every level replans at every
environment step, each warm-started from its previous plan (shifted by one step when the
level's action has been used up: every `spans[l]` environment steps).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from planners import base
from planners.base import Plan, Problem
from planners.mpc import MPCResult, record_nothing, shift_actions
from planners.mppi import mppi
from planners.proposal import Proposal

PyTree = Any


class HierarchicalPlan(NamedTuple):
    """What `hierarchical_plan` returns.

    Attributes:
      plans: one `Plan` per level, top first; `plans[-1].actions` [H, A] are primitive.
      subgoals: the goal handed to each level below the top (L − 1 states, top first).
    """

    plans: tuple[Plan, ...]
    subgoals: tuple[PyTree, ...]

    @property
    def actions(self) -> jax.Array:
        """The bottom level's actions [H, A]."""
        return self.plans[-1].actions

    @property
    def cost(self) -> jax.Array:
        """The bottom level's cost []."""
        return self.plans[-1].cost


def replace_goal(params: dict, goal: PyTree) -> dict:
    """A `set_goal` for levels whose params are a dict with the goal under "goal"."""
    return {**params, "goal": goal}


def _per_level(name: str, value, num_levels: int, default) -> tuple:
    """`value` as a tuple of `num_levels` entries (a single value is repeated)."""
    if value is None:
        value = default
    if isinstance(value, (list, tuple)):
        if len(value) != num_levels:
            raise ValueError(
                f"{name}: expected one entry per level ({num_levels}), got {len(value)}")
        return tuple(value)
    return (value,) * num_levels


def _options_key(name: str, options: dict | None) -> tuple:
    options = dict(options or {})
    try:
        key = tuple(sorted(options.items()))
        hash(key)
    except TypeError as error:
        raise ValueError(f"{name}: expected a dict of hashable values, got {options!r}") from error
    return key


def _static_per_level(num_levels: int, set_goal, planner, planner_options) -> tuple:
    """(setters [L-1], planners [L], hashable options [L]): the static per-level arguments,
    each given once for every level or once per level, checked."""
    setters = _per_level("set_goal", set_goal, num_levels - 1, replace_goal)
    planners_ = _per_level("planner", planner, num_levels, mppi)
    options = tuple(_options_key(f"planner_options[{i}]", o)
                    for i, o in enumerate(_per_level("planner_options", planner_options,
                                                     num_levels, {})))
    for name, fns in (("set_goal", setters), ("planner", planners_)):
        for fn in fns:
            if not callable(fn):
                raise ValueError(f"{name}: expected a callable, got {type(fn).__name__}")
    return setters, planners_, options


def _check_levels(levels: Sequence[Problem], init_actions: Sequence[jax.Array],
                  subgoal_step: int, *, functions: bool = True) -> int:
    """Checks the levels and their warm starts; returns `subgoal_step` as an int. With
    `functions`, every level's step and terminal cost shapes are checked too."""
    if not isinstance(levels, (list, tuple)) or not levels:
        raise ValueError(f"levels: expected a non-empty sequence of Problems (top first), "
                         f"got {levels!r}")
    if not isinstance(init_actions, (list, tuple)) or len(init_actions) != len(levels):
        got = len(init_actions) if isinstance(init_actions, (list, tuple)) else init_actions
        raise ValueError(f"init_actions: expected one [H, A] array per level "
                         f"({len(levels)}), got {got!r}")
    for level, (problem, actions) in enumerate(zip(levels, init_actions, strict=True)):
        if not isinstance(problem, Problem):
            raise ValueError(f"levels[{level}]: expected a planners.Problem, got "
                             f"{type(problem).__name__}")
        base.check_problem(problem, actions, functions=functions)
    subgoal_step = base.check_nonnegative_integer("subgoal_step", subgoal_step)
    for level, actions in enumerate(init_actions[:-1]):
        if subgoal_step >= jnp.shape(actions)[0]:
            raise ValueError(
                f"subgoal_step: expected less than the horizon of level {level} "
                f"({jnp.shape(actions)[0]}), got {subgoal_step}")
    return subgoal_step


def hierarchical_plan(
    levels: Sequence[Problem],
    init_actions: Sequence[jax.Array],
    key: jax.Array,
    *,
    set_goal: Callable | Sequence[Callable] = replace_goal,
    planner: Callable | Sequence[Callable] = mppi,
    planner_options: dict | Sequence[dict] | None = None,
    subgoal_step: int = 0,
    proposals: Sequence[Proposal | None] | None = None,
) -> HierarchicalPlan:
    """Plans every level, top first, each toward the subgoal the level above predicts.

    Args:
      levels: L ≥ 1 problems, top first; each with its `init_state` set and its own bounds.
        A single level is flat planning.
      init_actions: L warm starts, [H_l, A_l] each.
      key: a `jax.random` key, consumed (split over the levels).
      set_goal: `(params of level l+1, state of level l) -> params of level l+1`; one
        static callable for every level or L − 1 of them (top first).
      planner: the planner of every level, or L of them (top first).
      planner_options: keyword hyperparameters (hashable values): one dict for every level or
        L of them.
      subgoal_step: which predicted state of a level's plan becomes the goal below (0: the
        state after its first action).
      proposals: L policies (`planners.Proposal`) or None entries, top first, each passed to
        its level's planner as `proposal=` (its problem's params hold the subgoal the level
        above set); None: none at any level.

    Returns:
      A `HierarchicalPlan`; `.actions` [H_bottom, A] are the primitive actions.
    """
    subgoal_step = _check_levels(levels, init_actions, subgoal_step)
    key = base.typed_key(key)
    setters, planners_, options = _static_per_level(len(levels), set_goal, planner,
                                                    planner_options)
    proposals = _check_proposals(proposals, len(levels))
    return _hierarchical_plan(tuple(levels), tuple(base.float_actions(a) for a in init_actions),
                              key, proposals, setters=setters, planners_=planners_,
                              options=options, subgoal_step=subgoal_step)


def _check_proposals(proposals, num_levels: int) -> tuple:
    """`proposals` as a tuple of L `Proposal | None` (all None when None)."""
    if proposals is None:
        return (None,) * num_levels
    proposals = tuple(proposals)
    if len(proposals) != num_levels or any(
            p is not None and not isinstance(p, Proposal) for p in proposals):
        raise ValueError(f"proposals: expected {num_levels} planners.Proposal or None entries "
                         f"(top first), got {proposals!r}")
    return proposals


def _plan_levels(levels, init_actions, key, proposals, *, setters, planners_, options,
                 subgoal_step):
    """Unjitted body of `hierarchical_plan` (also traced inside `hierarchical_mpc`)."""
    keys = jax.random.split(key, len(levels))
    plans, subgoals = [], []
    subgoal = None
    for level, problem in enumerate(levels):
        if level > 0:
            problem = problem.replace(params=setters[level - 1](problem.params, subgoal))
        extra = {} if proposals[level] is None else {"proposal": proposals[level]}
        plan = planners_[level](problem, init_actions[level], keys[level], **dict(options[level]),
                                **extra)
        plans.append(plan)
        if level < len(levels) - 1:
            states, _, _ = base.rollout(problem, plan.actions)
            subgoal = jax.tree.map(lambda s: s[subgoal_step], states)
            subgoals.append(subgoal)
    return HierarchicalPlan(tuple(plans), tuple(subgoals))


_hierarchical_plan = jax.jit(
    _plan_levels, static_argnames=("setters", "planners_", "options", "subgoal_step"))


def hierarchical_mpc(
    levels: Sequence[Problem],
    init_actions: Sequence[jax.Array],
    key: jax.Array,
    *,
    env_step: Callable,
    env_params: PyTree,
    env_state: PyTree,
    num_steps: int,
    spans: Sequence[int],
    observe: Callable,
    set_goal: Callable | Sequence[Callable] = replace_goal,
    planner: Callable | Sequence[Callable] = mppi,
    planner_options: dict | Sequence[dict] | None = None,
    subgoal_step: int = 0,
    record: Callable = record_nothing,
    proposals: Sequence[Proposal | None] | None = None,
) -> MPCResult:
    """Closed-loop hierarchical MPC: observe, plan every level, act, repeat; one `lax.scan`.

    At every environment step each level's problem starts from `observe(params, env_state)`,
    `hierarchical_plan` plans all levels, and the bottom plan's first action is applied with
    `env_step(env_params, env_state, action)`. Each level is warm-started from its previous
    plan, shifted by one action once `spans[l]` environment steps have used it up (the bottom
    level, span 1, shifts at every step).

    Args:
      levels, init_actions, set_goal, planner, planner_options, subgoal_step, proposals: as
        in `hierarchical_plan`; each level's `init_state` is replaced at every step.
      key: a `jax.random` key, consumed.
      env_step: `(env_params, env_state, action [A]) -> env_state`, static.
      env_params, env_state: the real system's params and initial state.
      num_steps: episode length (> 0).
      spans: environment steps per action of each level, top first; the last must be 1 and
        each a multiple of the one below (e.g. (8, 1) for macro-actions of 8 steps).
      observe: `(params: tuple of each level's params, env_state) -> tuple of L states`,
        the planning state of each level (static).
      record: `env_state -> pytree` kept after each step.

    Returns:
      An `MPCResult` (plan costs and fallbacks of the bottom level).
    """
    # The levels' planners check step and terminal cost against the observed states.
    subgoal_step = _check_levels(levels, init_actions, subgoal_step, functions=False)
    key = base.typed_key(key)
    num_steps = base.check_positive("num_steps", num_steps)
    num_levels = len(levels)
    spans = tuple(spans) if isinstance(spans, (list, tuple)) else spans
    if (not isinstance(spans, tuple) or len(spans) != num_levels
            or any(not base.is_integer(s) or s <= 0 for s in spans)
            or spans[-1] != 1 or any(a % b for a, b in zip(spans[:-1], spans[1:], strict=True))):
        raise ValueError(
            f"spans: expected {num_levels} positive integers, top first, the last 1 and each a "
            f"multiple of the next, got {spans!r}")
    spans = tuple(int(span) for span in spans)
    setters, planners_, options = _static_per_level(num_levels, set_goal, planner,
                                                    planner_options)
    for name, fn in (("env_step", env_step), ("observe", observe), ("record", record)):
        if not callable(fn):
            raise ValueError(f"{name}: expected a callable, got {type(fn).__name__}")
    proposals = _check_proposals(proposals, num_levels)
    return _hierarchical_mpc(
        tuple(levels), tuple(base.float_actions(a) for a in init_actions), key, env_params,
        env_state, proposals, env_step=env_step, num_steps=num_steps, spans=spans, observe=observe,
        setters=setters, planners_=planners_, options=options, subgoal_step=subgoal_step,
        record=record)


@functools.partial(
    jax.jit,
    static_argnames=("env_step", "num_steps", "spans", "observe", "setters", "planners_",
                     "options", "subgoal_step", "record"),
)
def _hierarchical_mpc(levels, init_actions, key, env_params, env_state, proposals, *, env_step,
                      num_steps, spans, observe, setters, planners_, options, subgoal_step,
                      record):
    def control_step(carry, inputs):
        env_state, warm_starts = carry
        step, step_key = inputs
        states = observe(tuple(p.params for p in levels), env_state)
        problems = tuple(p.replace(init_state=s) for p, s in zip(levels, states, strict=True))
        plan = _plan_levels(problems, warm_starts, step_key, proposals, setters=setters,
                            planners_=planners_, options=options, subgoal_step=subgoal_step)
        action = plan.actions[0]
        env_state = env_step(env_params, env_state, action)
        bottom = plan.plans[-1]
        outputs = (action, bottom.cost, bottom.info.get("fallback", jnp.zeros((), bool)),
                   record(env_state))
        # a level's action is used up after `span` environment steps: then shift its plan
        warm_starts = tuple(
            jnp.where((step + 1) % span == 0, shift_actions(p.actions), p.actions)
            for p, span in zip(plan.plans, spans, strict=True))
        return (env_state, warm_starts), outputs

    inputs = (jnp.arange(num_steps), jax.random.split(key, num_steps))
    (final_state, _), (actions, costs, fallbacks, records) = jax.lax.scan(
        control_step, (env_state, init_actions), inputs)
    return MPCResult(final_state, actions, costs, fallbacks, records)
