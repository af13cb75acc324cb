"""Start/goal pairs along data trajectories: the peers' Push-T evaluation protocol.

The published Push-T evaluations (DINO-WM, LeWM, stable-worldmodel) take a start and a goal
from one held-out trajectory of their dataset, the goal `offset` = 25 steps after the start,
and give the planner a budget of 50 steps. `trajectory_goals(task, ...)` is the same
protocol on any task: a `Task` whose `reset` rolls the task's data policy (the one that
collects its data, `policies.default_policy`, with every episode goal-directed: `directed`)
out from `exploration_start` with the episode's key, so the trajectories are held out by their
seeds (the `val` and `test` splits) and drawn from the data's own law. The start is the state
`warmup` steps in (`warmup` uniform in [0, `max_warmup`]), the goal the state `offset` steps
later: its observation (the goal image, pusher included, as in the peers' goal frames) and
its goal-space position. Every other method is the task's own, and `episode_length` is the
budget.

One difference from the peers: a pair whose start already meets the goal (the policy did not
move the object 25 steps on) is no test of planning, so `reset` draws `candidates` warmups and
keeps the first whose start does not succeed (the last one if none: `trivial_share` reports
how often that happens).
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp

from hjepa.checks import is_int
from hjepa.tasks.base import Episode, Goal, PyTree, Task
from hjepa.tasks.policies import default_policy, run_policy

OFFSET = 25  # the peers' goal offset along the trajectory (steps)
BUDGET = 50  # and their step budget


class TrajectoryGoals(Task):
    """`task` with start/goal pairs along its data policy's trajectories (module docstring).

    Attributes beyond `Task`'s: task (the wrapped task), policy, offset, max_warmup,
    candidates. Attributes it does not set are the wrapped task's (its system, its camera).
    """

    def __init__(self, task: Task, policy, *, offset: int, budget: int, max_warmup: int,
                 candidates: int):
        self.task = task
        self.policy = policy
        self.offset = offset
        self.max_warmup = max_warmup
        self.candidates = candidates
        self.name = task.name
        self.obs_kind = task.obs_kind
        self.obs_shape = task.obs_shape
        self.action_size = task.action_size
        self.action_low = task.action_low
        self.action_high = task.action_high
        self.episode_length = budget
        self.success_threshold = task.success_threshold
        self.dynamics = task.dynamics

    def __getattr__(self, name: str):
        # only called for attributes this class does not set: the wrapped task's
        if name == "task":
            raise AttributeError(name)
        return getattr(self.task, name)

    @property
    def env_params(self):
        return self.task.env_params

    def draw(self, key: jax.Array) -> tuple[Episode, PyTree, jax.Array]:
        """One pair with where it came from: (the episode, the rollout's physics states
        [max_warmup + offset + 1, ...], the start's step index [] on it; the goal is the
        state `offset` steps after it)."""
        rollout_key, warmup_key = jax.random.split(key)
        states, _ = run_policy(self.task, self.policy, rollout_key,
                               self.max_warmup + self.offset, lambda state: state)  # [T+1]
        warmups = jax.random.randint(warmup_key, (self.candidates,), 0, self.max_warmup + 1)
        positions = jax.vmap(self.task.position)(states)  # [T+1, P]
        moved = self.task.position_distance(positions[warmups], positions[warmups + self.offset])
        pick = jnp.where(jnp.any(moved >= self.success_threshold),
                         warmups[jnp.argmax(moved >= self.success_threshold)], warmups[-1])
        start, goal = (jax.tree.map(lambda x, i=i: x[i], states)
                       for i in (pick, pick + self.offset))
        episode = Episode(state=start, goal=Goal(obs=self.task.observe(goal),
                                                 position=self.task.position(goal), state=goal))
        return episode, states, pick

    def reset(self, key: jax.Array) -> Episode:
        return self.draw(key)[0]

    def exploration_start(self, key: jax.Array):
        return self.task.exploration_start(key)

    def observe(self, state) -> jax.Array:
        return self.task.observe(state)

    def position(self, state) -> jax.Array:
        return self.task.position(state)

    def distance(self, state, goal: Goal) -> jax.Array:
        return self.task.distance(state, goal)

    def position_distance(self, position: jax.Array, goal_position: jax.Array) -> jax.Array:
        return self.task.position_distance(position, goal_position)

    def success(self, state, goal: Goal) -> jax.Array:
        return self.task.success(state, goal)

    def oracle_problem(self, state, goal: Goal):
        return self.task.oracle_problem(state, goal)

    def __repr__(self) -> str:
        return (f"TrajectoryGoals({self.task!r}, offset={self.offset}, "
                f"budget={self.episode_length})")


@functools.cache
def trajectory_goals(task: Task, policy=None, *, offset: int = OFFSET, budget: int = BUDGET,
                     max_warmup: int = 50, candidates: int = 8) -> TrajectoryGoals:
    """`task` evaluated under the peers' protocol: goals `offset` steps ahead along its data
    policy's trajectories (`policy`, default `default_policy(task.name)`), `budget` steps per
    episode. Cached, so the same arguments give the same (hashable) task."""
    for name, value, low in (("offset", offset, 1), ("budget", budget, 1),
                             ("max_warmup", max_warmup, 0), ("candidates", candidates, 1)):
        if not is_int(value) or value < low:
            raise ValueError(f"{name}: expected an integer >= {low}, got {value!r}")
    if isinstance(task, TrajectoryGoals):
        raise ValueError(f"task: expected a task with its own episodes, got {task!r}")
    policy = directed(default_policy(task.name)) if policy is None else policy
    policy.validate()
    policy.bind(task)  # a policy written for another task says so here
    return TrajectoryGoals(task, policy, offset=offset, budget=budget, max_warmup=max_warmup,
                           candidates=candidates)


def directed(policy):
    """A data policy with every episode goal-directed (`push_probability` 1, for the
    controllers that mix in noise-only episodes): the peers' trajectories are all
    demonstrations, and a noise-only one seldom moves the object 25 steps on."""
    if "push_probability" in {field.name for field in dataclasses.fields(policy)}:
        return dataclasses.replace(policy, push_probability=1.0)
    return policy


def trivial_share(task: TrajectoryGoals, key: jax.Array, num_episodes: int) -> float:
    """The share of `num_episodes` pairs drawn with `key` (as `evaluate.run_episodes` draws
    them) whose start already meets the goal: what doing nothing scores."""
    if not isinstance(task, TrajectoryGoals):
        raise ValueError(f"task: expected a trajectory_goals task, got {task!r}")
    reset_key, _ = jax.random.split(key)
    episodes = jax.jit(jax.vmap(task.reset))(jax.random.split(reset_key, num_episodes))
    success = jax.jit(jax.vmap(task.success))(episodes.state, episodes.goal)
    return float(jnp.mean(success))
