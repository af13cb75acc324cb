"""Model-agnostic trajectory optimisers over the `Problem` / `Plan` seam.

`planners` never imports `hjepa`: the same planner optimises through a learned latent
model, through true differentiable physics, or through any step function a user writes.
"""

from planners.base import Plan, Problem, rollout, total_cost, zero_terminal_cost
from planners.mpc import MPCResult, identity_observe, mpc, record_nothing, shift_actions
from planners.mppi import mppi

__all__ = [
    "MPCResult",
    "Plan",
    "Problem",
    "identity_observe",
    "mpc",
    "mppi",
    "record_nothing",
    "rollout",
    "shift_actions",
    "total_cost",
    "zero_terminal_cost",
]
