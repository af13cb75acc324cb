"""windy_cliff: a point mass crossing an arena where a gusty strip borders a cliff.

A task whose dynamics are only partly predictable, built for planning under risk (the
latent-variable world model, `hjepa.latent_variable`). It reuses the point mass of
`hjepa.tasks.point_maze` (same body, motors, damping, control step and border) in an arena
without interior walls, and adds two regions, both boxes of the agent's centre:

    y = 0.5  +-------------------------------------+
             |                                     |
             |              safe                   |
    y = -0.1 |        +-------------------+        |
             |  S / G |  WIND (gusts)     | G / S  |
    y = -0.35|        +-------------------+        |
             |        |  PIT (a cliff)    |        |
    y = -0.5 +--------+-------------------+--------+
           x = -0.5  -0.25               0.25     0.5

- WIND = [-0.25, 0.25] × [-0.35, -0.1]: at every control step that *starts* with the agent's
  centre in it, a gust displaces the agent by `PUSH` = (0, -0.25) with probability
  `PUSH_PROBABILITY` = 0.2, after the physics step. From anywhere in the strip a gust lands the
  agent in the pit. Elsewhere nothing pushes.
- PIT = [-0.25, 0.25] × [-0.5, -0.35]: a cliff. An agent whose centre ends a control step in
  it has fallen: it stays where it landed, at rest, for ever (whatever the actions).

Episodes: start and goal are drawn on either side of the strip (which side holds the start: a
fair coin), each uniform in [0.34, 0.42] × [-0.3, -0.2] (x mirrored for the left side). The
straight line from start to goal crosses the strip (0.5 long: 11 control steps at full speed,
so it survives with probability 0.8^11 ≈ 0.09 at full speed, less slower); the safe route
rises above y = -0.1, crosses, and comes down (about 0.25 longer: 5 more steps at full speed).
Episodes last `EPISODE_LENGTH` = 60 control steps (about 3 times the safe route). Success: the
agent ends within `SUCCESS_RADIUS` = 0.05 of the goal (a fallen agent is at least 0.09 away).

State observation [3]: x / 0.5, y / 0.5 (as point_maze's) and whether the agent has fallen
(1.0 or 0.0). No velocity: the point's velocity follows the action within one control step
(point_maze's time constant is a fifth of a step), so the position is almost the whole state.
(With velocities and a 16-dim latent, the learned latent distance to a goal had ridges across
the arena; with this observation and a 3-dim latent it fell steadily toward the goal.)
A fallen agent lies at the foot of the cliff, `FALL_DEPTH` = 0.25 below the arena's bottom
edge: its observed y is -(0.5 + FALL_DEPTH) / 0.5 = -1.5 (the physics keeps it where it
landed in the pit). With the flag alone a learned encoder mapped some fallen states near the
goal's latent; with a depth of 1 the fallen states (a fifth of the exploration data) stretched
the normaliser's y scale so far that the learned latent distance hardly saw y. 0.25 is the
one value tried between them. State observations only (the regions are not drawn).

Randomness: the env state (`WindyState`) carries a `jax.random` key, split at every control
step, so `planners.mpc` episodes are pure functions of the start state: the same start (key
included) gives the same gusts. A learned planner never sees the key (it sees observations).

Data: `exploration_task()` is the same world with exploration starts (for
`hjepa.data.collect_episodes`): half uniform over the arena, half uniform around the strip
(`NEAR_WIND`), none in the pit. The designed episodes alone rarely visit the strip.

Oracle problem: plans on the gust-free physics (the "mean world" without gusts: a gust is
never predicted), cost = point_maze's distance to the goal plus `FALL_COST` once fallen.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

import planners
from hjepa.tasks import point_maze as pm
from hjepa.tasks.base import Episode, Goal, Task, register

Box = tuple[float, float, float, float]  # (x0, y0, x1, y1)

WIND: Box = (-0.25, -0.35, 0.25, -0.1)
PIT: Box = (-0.25, -0.5, 0.25, -0.35)
PUSH = (0.0, -0.25)
PUSH_PROBABILITY = 0.2
START_REGION: Box = (0.34, -0.3, 0.42, -0.2)  # the right side; mirrored in x for the left
EPISODE_LENGTH = 60
FALL_COST = 2.0
FALL_DEPTH = 0.25  # how far below the arena a fallen agent is observed
LIMIT = pm.HALF_SIDE - pm.AGENT_RADIUS  # the slide joints' range: the centre's reach
ARENA = pm.Arena("windy_cliff", ())
EXPLORE_MARGIN = 0.02  # exploration starts keep this far inside the joint limits
NEAR_WIND: Box = (-0.35, -0.4, 0.35, 0.0)  # half of the exploration starts are drawn here


@struct.dataclass
class WindyState:
    """The environment state: the point's physics and the key of the gusts to come.

    Attributes:
      physics: the Brax pipeline state of the point mass (q [2], qd [2], ...).
      key: a `jax.random` key, split at every control step.
    """

    physics: object
    key: jax.Array


def in_box(xy: jax.Array, box: Box) -> jax.Array:
    """Whether points xy [..., 2] lie in the closed box (x0, y0, x1, y1): bool [...]."""
    x, y = xy[..., 0], xy[..., 1]
    return (x >= box[0]) & (x <= box[2]) & (y >= box[1]) & (y <= box[3])


def fallen(physics) -> jax.Array:
    """Whether the agent has fallen (its centre is in the pit): bool []."""
    return in_box(physics.q[:2], PIT)


def _at(xy: jax.Array, velocity: jax.Array):
    return pm.init_state(ARENA, xy, velocity)


@dataclasses.dataclass(frozen=True)
class WindyDynamics:
    """One control step: `(env_params, state, action [2]) -> state` (env_params unused).

    A fallen agent stays as it is. Otherwise point_maze's physics step with the action; then,
    if the step started in WIND, a gust with probability `push_probability` displaces the agent
    by `push` (clipped to the border); if the agent ends in the pit it stops there.
    `push_probability=0` gives the gust-free world (the oracle's model).
    """

    push_probability: float = PUSH_PROBABILITY

    def __call__(self, env_params, state: WindyState, action):
        del env_params
        key, gust_key = jax.random.split(state.key)
        before = state.physics
        after = pm.PointMazeDynamics(ARENA)(None, before, action)
        windy = in_box(before.q[:2], WIND)
        gust = windy & jax.random.bernoulli(gust_key, self.push_probability)
        q = jnp.where(gust, jnp.clip(after.q[:2] + jnp.asarray(PUSH), -LIMIT, LIMIT),
                      after.q[:2])
        falls = in_box(q, PIT)
        qd = jnp.where(falls, 0.0, after.qd[:2])
        moved = _at(q, qd)  # a consistent physics state at the displaced or stopped point
        after = jax.tree.map(lambda a, b: jnp.where(gust | falls, a, b), moved, after)
        physics = jax.tree.map(lambda a, b: jnp.where(fallen(before), a, b), before, after)
        return WindyState(physics=physics, key=key)


@dataclasses.dataclass(frozen=True)
class WindyOracleStep:
    """Oracle planning step on the gust-free physics: distance to the goal + `FALL_COST` once
    fallen (a per-step cost). `params` is the goal xy [2]."""

    velocity_weight: float = 0.001

    def __call__(self, goal_xy, state: WindyState, action):
        state = WindyDynamics(push_probability=0.0)(None, state, action)
        return state, _oracle_cost(goal_xy, state.physics, self.velocity_weight)


@dataclasses.dataclass(frozen=True)
class WindyOracleTerminal:
    """Terminal cost of the oracle problem: `weight` × the step cost."""

    weight: float = 4.0
    velocity_weight: float = 0.001

    def __call__(self, goal_xy, state: WindyState):
        return self.weight * _oracle_cost(goal_xy, state.physics, self.velocity_weight)


def _oracle_cost(goal_xy, physics, velocity_weight):
    return (pm.point_cost(goal_xy, physics.q, physics.qd, velocity_weight)
            + FALL_COST * fallen(physics))


def observation(physics) -> jax.Array:
    """State observation [3]: the position x / 0.5, y / 0.5 (a fallen agent's y is the foot of
    the cliff, -(0.5 + FALL_DEPTH)) and the fallen flag (1.0 or 0.0)."""
    down = fallen(physics)
    xy = jnp.stack([physics.q[0], jnp.where(down, -(pm.HALF_SIDE + FALL_DEPTH), physics.q[1])])
    return jnp.concatenate([pm.POSITION_SCALE * xy, down[None].astype(jnp.float32)])


class WindyCliff(Task):
    """The windy cliff (see the module docstring). State observations [3] only.

    Args:
      explore: starts uniform over the arena outside the pit (data collection) instead of
        the designed start/goal pairs on either side of the strip.
    """

    def __init__(self, *, obs: str = "state", explore: bool = False):
        if obs != "state":
            raise ValueError(f"obs: windy_cliff has state observations only, got {obs!r}")
        self.name = "windy_cliff"
        self.obs_kind = "state"
        self.obs_shape = (3,)
        self.action_size = 2
        self.action_low = -np.ones(2, np.float32)
        self.action_high = np.ones(2, np.float32)
        self.episode_length = EPISODE_LENGTH
        self.success_threshold = pm.SUCCESS_RADIUS
        self.dynamics = WindyDynamics()
        self.explore = explore
        self.system = pm.load_system(ARENA)

    def exploration_task(self) -> WindyCliff:
        """The same world with starts uniform outside the pit (cached: a static jit argument)."""
        return _exploration_task()

    def exploration_start(self, key: jax.Array) -> WindyState:
        """Where reward-free data episodes start (`hjepa.data`, `hjepa collect`): the
        exploration starts of `exploration_task`, gusts drawn from the same key."""
        start_key, gust_key = jax.random.split(key)
        return self.init_state(self._explore_start(start_key), gust_key)

    def init_state(self, xy: jax.Array, key: jax.Array,
                   velocity: jax.Array | None = None) -> WindyState:
        """The env state of the agent at xy [2] (at rest unless `velocity` [2] is given), its
        gusts drawn from `key`."""
        velocity = jnp.zeros(2) if velocity is None else velocity
        return WindyState(physics=_at(xy, velocity), key=key)

    def reset(self, key: jax.Array) -> Episode:
        side_key, start_key, goal_key, gust_key = jax.random.split(key, 4)
        box = jnp.asarray(START_REGION)
        start = jax.random.uniform(start_key, (2,), minval=box[:2], maxval=box[2:])
        goal = jax.random.uniform(goal_key, (2,), minval=box[:2], maxval=box[2:])
        start_left = jax.random.bernoulli(side_key)
        start = start * jnp.array([jnp.where(start_left, -1.0, 1.0), 1.0])
        goal = goal * jnp.array([jnp.where(start_left, 1.0, -1.0), 1.0])
        if self.explore:
            start = self._explore_start(start_key)
        both = jax.vmap(lambda xy: _at(xy, jnp.zeros(2)))(jnp.stack([start, goal]))
        physics, goal_physics = (jax.tree.map(lambda x, i=i: x[i], both) for i in (0, 1))
        return Episode(state=WindyState(physics=physics, key=gust_key),
                       goal=Goal(obs=observation(goal_physics), position=goal,
                                 state=goal_physics))

    @staticmethod
    def _explore_start(key: jax.Array) -> jax.Array:
        """An exploration start [2] outside the pit: a fair coin picks uniform over the
        reachable square or uniform over `NEAR_WIND` (so that gusts are well sampled);
        points in the pit are redrawn (16 candidates; all in the pit: probability < 0.4^16)."""
        coin_key, key = jax.random.split(key)
        reach = LIMIT - EXPLORE_MARGIN
        near = jnp.asarray(NEAR_WIND)
        low = jnp.where(jax.random.bernoulli(coin_key), near[:2], -reach)
        high = jnp.where(jax.random.bernoulli(coin_key), near[2:], reach)
        candidates = jax.random.uniform(key, (16, 2), minval=low, maxval=high)
        ok = ~in_box(candidates, PIT)  # [16]
        return candidates[jnp.argmax(ok)]

    def step(self, state: WindyState, action: jax.Array) -> WindyState:
        return self.dynamics(None, state, action)

    def observe(self, state: WindyState) -> jax.Array:
        return observation(state.physics)

    def position(self, state: WindyState) -> jax.Array:
        return state.physics.q[:2]

    def distance(self, state: WindyState, goal: Goal) -> jax.Array:
        return jnp.sqrt(jnp.sum((state.physics.q[:2] - goal.position) ** 2))

    def oracle_problem(self, state: WindyState, goal: Goal) -> planners.Problem:
        return planners.Problem(
            step=WindyOracleStep(),
            terminal_cost=WindyOracleTerminal(),
            params=goal.position,
            init_state=state,
            action_low=jnp.asarray(self.action_low),
            action_high=jnp.asarray(self.action_high),
        )


@functools.cache
def _exploration_task() -> WindyCliff:
    return WindyCliff(explore=True)


def _factory(obs: str = "state", image_size: int | None = None) -> WindyCliff:
    del image_size
    return WindyCliff(obs=obs)


register("windy_cliff", _factory)
