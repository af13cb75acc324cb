"""Model-agnostic trajectory optimisers over the `Problem` / `Plan` seam.

`planners` never imports `hjepa`: the same planner optimises through a learned latent
model, through true differentiable physics, or through any step function a user writes.

Every planner has the signature `planner(problem, init_actions [H, A], key, **options) -> Plan`,
keyword-only hyperparameters with defaults, and is jit-compiled with them static:

- `gradient_descent`: projected optax (Adam) descent from several perturbed starts.
- `mppi`: model-predictive path integral control.
- `cem`: the cross-entropy method, with iCEM's coloured noise and kept elites.
- `beam_search`: breadth-first search keeping the best prefixes.

A `Proposal` (a policy) warm-starts MPPI, CEM and gradient descent and adds its rollouts
to their samples (`planners.proposal`).

`mpc` runs any of them in a closed loop as one `lax.scan`; `hierarchical_plan` and
`hierarchical_mpc` stack them into levels, each planning toward the subgoal of the one above.
"""

from planners.base import Plan, Problem, rollout, total_cost, zero_terminal_cost
from planners.beam import beam_search
from planners.cem import cem, colored_noise
from planners.gd import gradient_descent
from planners.hierarchical import (
    HierarchicalPlan,
    hierarchical_mpc,
    hierarchical_plan,
    replace_goal,
)
from planners.mpc import MPCResult, identity_observe, mpc, record_nothing, shift_actions
from planners.mppi import mppi
from planners.proposal import Proposal, policy_only

__all__ = [
    "HierarchicalPlan",
    "MPCResult",
    "Plan",
    "Problem",
    "Proposal",
    "beam_search",
    "cem",
    "colored_noise",
    "gradient_descent",
    "hierarchical_mpc",
    "hierarchical_plan",
    "identity_observe",
    "mpc",
    "mppi",
    "policy_only",
    "record_nothing",
    "replace_goal",
    "rollout",
    "shift_actions",
    "total_cost",
    "zero_terminal_cost",
]
