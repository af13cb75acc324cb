"""The seam between planners and models: `Problem`, `Plan`, and rollouts.

A planner sees only a `Problem`: an initial state, a step function and a terminal cost,
plus the params both read. It never knows whether the step is a learned latent model or
true physics.
"""

from __future__ import annotations

import math
import numbers
import weakref
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

PyTree = Any
Array = jax.Array


@struct.dataclass
class Problem:
    """A finite-horizon optimal-control problem, as a pytree.

    Attributes:
      step: `(params, state, action [A]) -> (next_state, cost [])`. Static: keep it a
        module-level function or a hashable callable so jitted planners never retrace.
      terminal_cost: `(params, state) -> cost []`. Static, like `step`.
      params: what `step` and `terminal_cost` read (model params, goal latent, ...).
      init_state: the state the plan starts from (a latent [D], a Brax state, ...).
      action_low: lower action bounds [A].
      action_high: upper action bounds [A].
    """

    step: Callable = struct.field(pytree_node=False)
    terminal_cost: Callable = struct.field(pytree_node=False)
    params: PyTree
    init_state: PyTree
    action_low: Array  # [A]
    action_high: Array  # [A]

    @property
    def action_size(self) -> int:
        return self.action_low.shape[-1]


class Plan(NamedTuple):
    """What a planner returns.

    Attributes:
      actions: best action sequence found [H, A].
      cost: its total cost [].
      trace: best cost after each iteration [I] (non-increasing).
      info: planner diagnostics, e.g. `{"fallback": bool []}`: True when no finite-cost
        candidate was found and the plan is the (clipped) initial actions.
    """

    actions: Array  # [H, A]
    cost: Array  # []
    trace: Array  # [I]
    info: dict


def zero_terminal_cost(params: PyTree, state: PyTree) -> Array:
    """A terminal cost of zero, for problems scored by their running cost alone."""
    del params, state
    return jnp.zeros(())


def rollout(problem: Problem, actions: Array) -> tuple[PyTree, Array, Array]:
    """Steps `problem` through an action sequence.

    Args:
      problem: the problem.
      actions: [H, A].

    Returns:
      (states, step_costs, terminal_cost): states after each step (a pytree with a leading
      axis H), step costs [H], terminal cost [].
    """

    def body(state, action):
        next_state, cost = problem.step(problem.params, state, action)
        return next_state, (next_state, cost)

    final_state, (states, costs) = jax.lax.scan(body, problem.init_state, actions)
    return states, costs, problem.terminal_cost(problem.params, final_state)


def total_cost(problem: Problem, actions: Array) -> Array:
    """Sum of step costs plus terminal cost of `actions` [H, A] -> []."""

    def body(state, action):
        next_state, cost = problem.step(problem.params, state, action)
        return next_state, cost

    final_state, costs = jax.lax.scan(body, problem.init_state, actions)
    return jnp.sum(costs) + problem.terminal_cost(problem.params, final_state)


def finite_or_inf(costs: Array) -> Array:
    """Replaces NaN and -inf/+inf costs with +inf, so they never win a comparison."""
    return jnp.where(jnp.isfinite(costs), costs, jnp.inf)


def clip_actions(problem: Problem, actions: Array) -> Array:
    """Projects actions [..., A] onto the problem's bounds."""
    return jnp.clip(actions, problem.action_low, problem.action_high)


def sanitize_actions(problem: Problem, actions: Array) -> Array:
    """Replaces non-finite entries by the middle of the bounds, then clips [..., A]."""
    middle = 0.5 * (problem.action_low + problem.action_high)
    middle = jnp.where(jnp.isfinite(middle), middle, 0.0)
    return clip_actions(problem, jnp.where(jnp.isfinite(actions), actions, middle))


def batch_total_cost(problem: Problem, actions: Array) -> Array:
    """Total costs [N] of a batch of action sequences [N, H, A], non-finite mapped to +inf."""
    return finite_or_inf(jax.vmap(lambda seq: total_cost(problem, seq))(actions))


def keep_best(
    best_actions: Array, best_cost: Array, candidates: Array, costs: Array
) -> tuple[Array, Array]:
    """Updates the best sequence so far with a scored batch.

    Args:
      best_actions: best sequence so far [H, A].
      best_cost: its cost [] (+inf when none yet).
      candidates: new sequences [N, H, A].
      costs: their costs [N], non-finite already mapped to +inf.

    Returns:
      (best_actions [H, A], best_cost []): a candidate replaces the best only when strictly
      cheaper, so a non-finite cost never wins.
    """
    index = jnp.argmin(costs)
    improved = costs[index] < best_cost
    return (
        jnp.where(improved, candidates[index], best_actions),
        jnp.where(improved, costs[index], best_cost),
    )


def finish_plan(
    problem: Problem,
    best_actions: Array,
    best_cost: Array,
    trace: Array,
    fallback_actions: Array,
    info: dict | None = None,
) -> Plan:
    """Builds a `Plan`, falling back to `fallback_actions` when nothing finite was found.

    Args:
      problem: the problem (for its bounds).
      best_actions: best sequence found [H, A].
      best_cost: its cost [] (+inf when no candidate had a finite cost).
      trace: best cost after each iteration [I].
      fallback_actions: the sanitised initial actions [H, A].
      info: extra diagnostics; `"fallback"` is added.
    """
    fallback = ~jnp.isfinite(best_cost)
    actions = jnp.where(fallback, fallback_actions, best_actions)
    actions = sanitize_actions(problem, actions)
    return Plan(actions=actions, cost=best_cost, trace=trace,
                info={**(info or {}), "fallback": fallback})


# ----------------------------------------------------------------------------- validation


def _is_tracer(x: Any) -> bool:
    return isinstance(x, jax.core.Tracer)


# Bounds already checked, by identity: (weakref(low), weakref(high)) per id pair. Reading
# device arrays back to the host costs a synchronisation per call (tens of microseconds on a
# GPU, more than a small plan); jax.Arrays are immutable, so one check per pair suffices.
_VALID_BOUNDS: dict[tuple[int, int], tuple[Any, Any]] = {}


def _known_valid(low: Any, high: Any) -> bool:
    refs = _VALID_BOUNDS.get((id(low), id(high)))
    return refs is not None and refs[0]() is low and refs[1]() is high


def _remember_valid(low: Any, high: Any) -> None:
    if not (isinstance(low, jax.Array) and isinstance(high, jax.Array)):
        return  # numpy arrays are mutable: check them every time
    if len(_VALID_BOUNDS) >= 256:  # a bounded memo: start afresh
        _VALID_BOUNDS.clear()
    _VALID_BOUNDS[(id(low), id(high))] = (weakref.ref(low), weakref.ref(high))


def _check_bound_values(low: Any, high: Any) -> None:
    """Raises a ValueError unless the concrete bounds are finite and low <= high."""
    values = {"action_low": np.asarray(low), "action_high": np.asarray(high)}
    for name, value in values.items():
        if not np.all(np.isfinite(value)):
            raise ValueError(
                f"problem.{name}: expected finite numbers in every dimension, got {value}"
            )
    if np.any(values["action_low"] > values["action_high"]):
        raise ValueError(
            "problem.action_low/action_high: expected low <= high in every dimension, "
            f"got low={low} high={high}"
        )


# Step and terminal cost functions already checked, by signature: the functions and the
# shapes and dtypes of params, init_state and the action. jax.eval_shape costs about half a
# millisecond even when it hits JAX's trace cache; a signature seen before is not traced again.
_CHECKED_FUNCTIONS: set[tuple] = set()


def _signature(tree: PyTree) -> tuple:
    """(tree structure, abstract value of every leaf): what tracing a function depends on."""
    leaves, treedef = jax.tree.flatten(tree)
    return treedef, tuple(jax.typeof(leaf) for leaf in leaves)


class _Shape(str):
    """A leaf's shape and dtype as text, e.g. float32[4], shown without quotes in a pytree."""

    def __repr__(self) -> str:
        return str(self)


def _describe(tree: PyTree) -> str:
    """Shapes and dtypes of a pytree of abstract values, e.g. `(float32[4], float32[])`."""
    if tree is None:
        return "None"
    return repr(jax.tree.map(lambda x: _Shape(f"{x.dtype}{list(x.shape)}"), tree))


def _is_scalar(value: Any) -> bool:
    return isinstance(value, jax.ShapeDtypeStruct) and value.shape == ()


def _matches(got: PyTree, expected: tuple) -> bool:
    """Whether `got` (from jax.eval_shape) has the structure, shapes and dtypes of a state
    signature; a weakly typed expected leaf (a Python number) takes any dtype, as in lax.scan."""
    treedef, avals = expected
    leaves, got_treedef = jax.tree.flatten(got)
    return got_treedef == treedef and all(
        leaf.shape == aval.shape and (aval.weak_type or leaf.dtype == aval.dtype)
        for leaf, aval in zip(leaves, avals, strict=True)
    )


def check_functions(problem: Problem) -> None:
    """Checks the shapes `problem.step` and `problem.terminal_cost` return, by `jax.eval_shape`
    on the problem's init_state and an action of the bounds' shape (no compilation).

    Each signature (functions, and shapes and dtypes of what they read) is checked once.

    Raises:
      ValueError: naming the function, the shapes expected and the shapes got.
    """
    state = _signature(problem.init_state)
    action_shape, action_dtype = jnp.shape(problem.action_low), default_float()
    key = (problem.step, problem.terminal_cost, _signature(problem.params), state, action_shape,
           action_dtype)
    try:
        if key in _CHECKED_FUNCTIONS:
            return
    except TypeError:  # an unhashable function: check it every time
        key = None
    action = jax.ShapeDtypeStruct(action_shape, action_dtype)
    abstract_state = jax.tree.unflatten(state[0], [
        jax.ShapeDtypeStruct(aval.shape, aval.dtype, weak_type=aval.weak_type)
        for aval in state[1]
    ])
    expected_state = _describe(abstract_state)
    got = jax.eval_shape(problem.step, problem.params, abstract_state, action)
    if not (isinstance(got, (tuple, list)) and len(got) == 2 and _is_scalar(got[1])
            and _matches(got[0], state)):
        raise ValueError(
            f"Problem.step: expected (next_state, cost) with next_state shaped like "
            f"init_state {expected_state} and a scalar cost [], for an action "
            f"{_describe(action)}, got {_describe(got)}"
        )
    got = jax.eval_shape(problem.terminal_cost, problem.params, abstract_state)
    if not _is_scalar(got):
        raise ValueError(
            f"Problem.terminal_cost: expected a scalar cost [] for a state {expected_state}, "
            f"got {_describe(got)}"
        )
    if key is not None:
        if len(_CHECKED_FUNCTIONS) >= 256:  # a bounded memo: start afresh
            _CHECKED_FUNCTIONS.clear()
        _CHECKED_FUNCTIONS.add(key)


def check_problem(problem: Problem, init_actions: Any, *, functions: bool = True) -> None:
    """Checks a problem and its initial actions at a planner's public boundary.

    Concrete bounds must be finite with low <= high (traced bounds are checked for shape
    only). With `functions`, the shapes `step` and `terminal_cost` return are checked too
    (`check_functions`); `mpc` leaves that to its planner, which sees the observed state.

    Raises:
      ValueError: naming the argument, what was expected and what came.
    """
    if not isinstance(problem, Problem):
        raise ValueError(f"problem: expected a planners.Problem, got {type(problem).__name__}")
    if not callable(problem.step) or not callable(problem.terminal_cost):
        raise ValueError("problem: step and terminal_cost must be callables")
    low, high = problem.action_low, problem.action_high
    if jnp.ndim(low) != 1 or jnp.shape(low) != jnp.shape(high):
        raise ValueError(
            "problem.action_low/action_high: expected two vectors of the same shape [A], "
            f"got {jnp.shape(low)} and {jnp.shape(high)}"
        )
    if not (_is_tracer(low) or _is_tracer(high)) and not _known_valid(low, high):
        _check_bound_values(low, high)
        _remember_valid(low, high)
    shape = jnp.shape(init_actions)
    if len(shape) != 2 or shape[1] != jnp.shape(low)[0] or shape[0] < 1:
        raise ValueError(
            f"init_actions: expected shape [H, {jnp.shape(low)[0]}] with H >= 1 "
            f"(the action bounds have {jnp.shape(low)[0]} dimensions), got {shape}"
        )
    if functions:
        check_functions(problem)


def check_key(key: Any) -> None:
    """Checks that `key` is a JAX PRNG key (typed or raw uint32[2])."""
    if key is None:
        raise ValueError("key: expected a jax.random key, got None (keys are never defaulted)")
    dtype = getattr(key, "dtype", None)
    if dtype is None:
        raise ValueError(f"key: expected a jax.random key, got {type(key).__name__}")
    if jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key):
        if jnp.ndim(key) != 0:
            raise ValueError(f"key: expected a single key, got a batch of shape {jnp.shape(key)}")
        return
    if dtype != jnp.uint32 or jnp.shape(key) != (2,):
        raise ValueError(
            "key: expected a jax.random key (uint32[2] or typed), "
            f"got {dtype}{list(jnp.shape(key))}"
        )


def typed_key(key: Any) -> Array:
    """Checks `key` and returns it as a typed key, so raw and typed keys share a compilation."""
    check_key(key)
    if jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
        return key
    return jax.random.wrap_key_data(key)


def default_float() -> Any:
    """The default float dtype: float64 with jax_enable_x64, else float32."""
    return jnp.float64 if jax.config.jax_enable_x64 else jnp.float32


def float_actions(actions: Any) -> Array:
    """`actions` as an array of the default float dtype (no copy when it already is one)."""
    dtype = default_float()
    if isinstance(actions, jax.Array) and actions.dtype == dtype:
        return actions
    return jnp.asarray(actions, dtype)


def is_integer(value: Any) -> bool:
    """Whether `value` is an int or a numpy integer (not a bool)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def _is_finite_number(value: Any) -> bool:
    """Whether `value` is a finite real number (int, float or numpy scalar; not a bool)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        return False
    return is_integer(value) or math.isfinite(value)


def check_positive(name: str, value: Any, *, integer: bool = True) -> int | float:
    """`value` as an int (or a float if integer=False), raising a ValueError unless it is a
    positive integer (or a finite positive number)."""
    if integer:
        if not is_integer(value) or value <= 0:
            raise ValueError(f"{name}: expected a positive integer, got {value!r}")
        return int(value)
    if not _is_finite_number(value) or value <= 0:
        raise ValueError(f"{name}: expected a finite positive number, got {value!r}")
    return float(value)


def check_nonnegative_integer(name: str, value: Any) -> int:
    """`value` as an int, raising a ValueError unless it is a non-negative integer."""
    if not is_integer(value) or value < 0:
        raise ValueError(f"{name}: expected a non-negative integer, got {value!r}")
    return int(value)


def check_nonnegative(name: str, value: Any) -> float:
    """`value` as a float, raising a ValueError unless it is a finite non-negative number."""
    if not _is_finite_number(value) or value < 0:
        raise ValueError(f"{name}: expected a finite non-negative number, got {value!r}")
    return float(value)


def check_fraction(name: str, value: Any, *, low_open: bool = False) -> float:
    """`value` as a float, raising a ValueError unless it is a number in [0, 1) (or (0, 1] if
    low_open)."""
    ok = _is_finite_number(value)
    if low_open:
        ok = ok and 0.0 < value <= 1.0
        interval = "(0, 1]"
    else:
        ok = ok and 0.0 <= value < 1.0
        interval = "[0, 1)"
    if not ok:
        raise ValueError(f"{name}: expected a number in {interval}, got {value!r}")
    return float(value)


def check_at_most(name: str, value: int, bound_name: str, bound: int) -> None:
    """Raises a ValueError unless `value <= bound` (e.g. elites <= samples)."""
    if value > bound:
        raise ValueError(f"{name}: expected at most {bound_name} ({bound}), got {value!r}")
