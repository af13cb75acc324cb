"""Closed-loop evaluation: batched MPC episodes on a task, with the learned model or the oracle."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import planners
from hjepa import distributed, hierarchy, latent_variable, world_model
from hjepa import skills as skills_lib
from hjepa.checks import is_int
from hjepa.configs import HierarchyConfig, LatentVariableConfig, ModelConfig
from hjepa.goal_space import in_goal_space
from hjepa.tasks import Task

PyTree = Any


@dataclasses.dataclass(frozen=True)
class EvalResult:
    """Outcome of a batch of closed-loop episodes.

    Attributes:
      success: per-episode success [N] (numpy bool).
      final_distance: per-episode final distance to the goal [N].
      distances: distance to the goal after each step [N, T].
      compile_seconds: time to compile the batched episode function.
      run_seconds: wall time of the batched episodes (after compilation).
      num_episodes, num_steps: N, T.
      records: what `evaluate`'s `record` kept after each step of every episode (a pytree
        of numpy arrays with leading axes [N, T]), else None.
      episodes: the start/goal pairs (a batched `Episode`, leading axis N) when `records`
        are kept, else None.
    """

    success: np.ndarray
    final_distance: np.ndarray
    distances: np.ndarray
    compile_seconds: float
    run_seconds: float
    num_episodes: int
    num_steps: int
    records: Any = None
    episodes: Any = None

    @property
    def success_rate(self) -> float:
        return float(np.mean(self.success))

    @property
    def ms_per_step(self) -> float:
        """Wall time per MPC step of one episode (plan + step), amortised over the batch."""
        return 1e3 * self.run_seconds / (self.num_episodes * self.num_steps)

    @property
    def ms_per_batched_step(self) -> float:
        """Wall time of one MPC step of the whole batch."""
        return 1e3 * self.run_seconds / self.num_steps

    def summary(self) -> dict:
        return {
            "success_rate": self.success_rate,
            "mean_final_distance": float(np.mean(self.final_distance)),
            "episodes": self.num_episodes,
            "steps": self.num_steps,
            "ms_per_step_amortised": self.ms_per_step,
            "ms_per_batched_step": self.ms_per_batched_step,
            "compile_seconds": self.compile_seconds,
            "run_seconds": self.run_seconds,
        }


@dataclasses.dataclass(frozen=True)
class DistanceRecorder:
    """`record` for `planners.mpc`: the task's position of the environment state [P], or with
    `extra` (a hashable `env_state -> pytree`) the pair `(position, extra(env_state))`;
    `run_episodes` keeps the second in `EvalResult.records`."""

    task: Any
    extra: Callable | None = None

    def __call__(self, env_state):
        position = self.task.position(env_state)
        if self.extra is None:
            return position
        return position, self.extra(env_state)


def _episode_fn(task: Task, planner: Callable, options: dict, horizon: int,
                model_config: ModelConfig | None, num_steps: int, terminal_weight: float,
                record: Callable | None = None, critic=None, policy_act: Callable | None = None):
    """Builds `(params, episode, key) -> (final distance, positions [T, P])` for one episode
    (with `record`: `(final distance, (positions [T, P], records))`). With `critic` (a
    `hjepa.critic.CriticConfig`) params is the pair (model params, critic params); with
    `policy_act` (a `hjepa.policy.Act`) the pair (those params, policy params), and the
    planner gets the policy as its `proposal`."""
    init_actions = jnp.zeros((horizon, task.action_size))
    low, high = jnp.asarray(task.action_low), jnp.asarray(task.action_high)
    family = None if model_config is None else world_model.of(model_config)

    def run(params, episode, key):
        proposal = None
        if policy_act is not None:
            params, policy_params = params
            proposal = planners.Proposal(policy_act, policy_params)
        if family is None:
            problem = task.oracle_problem(episode.state, episode.goal)
            observe = planners.identity_observe
        else:
            model_params, critic_params = params if critic is not None else (params, None)
            goal = episode.goal.position if in_goal_space(critic) else episode.goal.obs
            (problem,) = family.problems(
                model_params, task.observe(episode.state), goal, low, high,
                terminal_weight=terminal_weight,
                critic=None if critic is None else (critic, critic_params))
            observe = family.observe(task)
        result = planners.mpc(
            problem, init_actions, key, env_step=task.dynamics, env_params=task.env_params,
            env_state=episode.state, num_steps=num_steps, observe=observe, planner=planner,
            planner_options=options, record=DistanceRecorder(task, record), proposal=proposal,
        )
        return task.distance(result.final_state, episode.goal), result.records

    return run


def evaluate(
    task: Task,
    key: jax.Array,
    *,
    num_episodes: int,
    model_config: ModelConfig | None = None,
    params: PyTree = None,
    planner: Callable = planners.mppi,
    planner_options: dict | None = None,
    horizon: int = 16,
    num_steps: int | None = None,
    mesh: jax.sharding.Mesh | None = None,
    terminal_weight: float = 4.0,
    record: Callable | None = None,
    critic: tuple[Any, PyTree] | None = None,
    policy: tuple[Callable, PyTree] | None = None,
) -> EvalResult:
    """Runs `num_episodes` batched closed-loop episodes on held-out start/goal pairs.

    With `model_config` and `params` the planner plans through the learned model from
    encoded observations; without, through the task's true physics (the oracle).

    With a `mesh` (`hjepa.distributed.make_mesh`) the episodes are split over its data axis
    (`num_episodes` must be a multiple of it) and the params replicated; each device runs its
    episodes alone, with the same start/goal pairs and keys as without a mesh. Call it in
    every process of a multi-process job: each gets the whole result.

    `terminal_weight` weighs the cost to the goal at the end of the horizon against the
    per-step costs (learned model only; the oracle's cost is the task's).

    `critic`, `(hjepa.critic.CriticConfig, critic params)` trained on the model's latents,
    makes the learned steps to go the planning cost instead of the latent distance;
    `(hjepa.goal_space.GoalSpaceCost, goal-space params)` plans toward each goal as a point
    of the task's goal space (`Goal.position`), never seeing the goal observation.

    `policy`, `(hjepa.policy.Act, policy params)` (`hjepa.distill`), is the planner's
    proposal at every step (MPPI, CEM and gradient descent take one); with
    `planner=planners.policy_only` the policy alone acts (mode 1).

    `record`, a hashable `env_state -> pytree` (e.g. `hjepa.visualize.FrameRecorder`), is
    kept after each step of every episode in `EvalResult.records` (leading axes [N, T]),
    with the start/goal pairs in `EvalResult.episodes`.
    """
    if (model_config is None) != (params is None):
        raise ValueError("model_config and params: give both (learned model) or neither (oracle)")
    if model_config is not None:
        check_observations("model_config", model_config, task)
    if critic is not None and model_config is None:
        raise ValueError("critic: a critic costs plans of the learned model; got no model_config")
    if critic is not None and in_goal_space(critic[0]):
        if critic[0].position_size != task.position_size:
            raise ValueError(f"critic: the goal-space model reads goals of size "
                             f"{critic[0].position_size}, the task {task.name!r} has a goal "
                             f"space of size {task.position_size}")
    if not is_int(num_episodes) or num_episodes <= 0:
        raise ValueError(f"num_episodes: expected a positive integer, got {num_episodes!r}")
    if not is_int(horizon) or horizon <= 0:
        raise ValueError(f"horizon: expected a positive integer, got {horizon!r}")
    if record is not None and not callable(record):
        raise ValueError(f"record: expected a callable or None, got {type(record).__name__}")
    if mesh is not None:
        distributed.check_divisible(mesh, num_episodes, "num_episodes")
    num_steps = task.episode_length if num_steps is None else num_steps
    critic_config, critic_params = critic if critic is not None else (None, None)
    if policy is not None and model_config is None:
        raise ValueError("policy: a policy acts on the learned model's latents; got no "
                         "model_config")
    if planner is planners.policy_only and policy is None:
        raise ValueError("planner: policy_only acts with a policy; got policy=None")
    policy_act, policy_params = policy if policy is not None else (None, None)
    run = _episode_fn(task, planner, dict(planner_options or {}), horizon, model_config, num_steps,
                      float(terminal_weight), record, critic_config, policy_act)
    if critic_config is not None:
        params = (params, critic_params)
    if policy_act is not None:
        params = (params, policy_params)
    return run_episodes(task, run, params, key, num_episodes=num_episodes, num_steps=num_steps,
                        mesh=mesh)


def skills_episode_fn(task: Task, model_config: ModelConfig, act, *, num_steps: int,
                      replan_every: int, record: Callable | None = None):
    """`(params, episode, key) -> (final distance, positions [T, P])` of one episode acting
    with learned skills (`hjepa.skills`), for `run_episodes`: each step encodes the
    observation, plans the skills every `replan_every` steps (MPPI from the last plan, with
    the episode's key folded with the step; `hjepa.skills.skill_loop_step`) and acts the
    decoder's action for the first skill of the latest plan. `params` is
    `{"model", "goal_space", "skills"}`; `act` a `hjepa.skills.Act` whose cost reads the
    goal-space params and the episode's goal point."""
    family = world_model.of(model_config)
    recorder = DistanceRecorder(task, record)

    def run(params, episode, key):
        problem_params = {"goal_space": params["goal_space"], "goal": episode.goal.position}

        def step(carry, t):
            env_state, skill_carry = carry
            latent = family.encode(params["model"], task.observe(env_state))
            skill_carry, action = skills_lib.skill_loop_step(
                act, params["skills"], problem_params, skill_carry, latent,
                jax.random.fold_in(key, t), replan_every)
            env_state = task.dynamics(task.env_params, env_state, action)
            return (env_state, skill_carry), recorder(env_state)

        (final, _), records = jax.lax.scan(
            step, (episode.state, skills_lib.initial_carry(act)), jnp.arange(num_steps))
        return task.distance(final, episode.goal), records

    return run


def evaluate_skills(task: Task, key: jax.Array, model_config: ModelConfig, params: PyTree,
                    act, skills_params: PyTree, goal_space_params: PyTree, *,
                    num_episodes: int, num_steps: int | None = None,
                    replan_every: int | None = None, mesh: jax.sharding.Mesh | None = None,
                    record: Callable | None = None) -> EvalResult:
    """Closed-loop episodes acting with learned skills (`skills_episode_fn`) on held-out
    start/goal pairs of `task` (the same pairs as `evaluate` for the same key), toward each
    goal as a point of the task's goal space.

    Args:
      act: a `hjepa.skills.Act` (the plan over skills and its goal-space cost).
      skills_params, goal_space_params: their params.
      replan_every: steps between plans, a divisor of the skills' chunk (default 1: every
        step, when the acted skill may change at any step; the chunk, to hold each skill for
        its chunk). A plan starts from the last one, shifted by a skill per chunk passed.
      Others as in `evaluate`.
    """
    check_observations("model_config", model_config, task)
    if not in_goal_space(act.cost) or act.cost.position_size != task.position_size:
        raise ValueError(f"act.cost: expected a goal-space cost of the task's goal space "
                         f"(size {task.position_size}), got {act.cost!r}")
    if not is_int(num_episodes) or num_episodes <= 0:
        raise ValueError(f"num_episodes: expected a positive integer, got {num_episodes!r}")
    replan_every = skills_lib.check_replan_every(act, 1 if replan_every is None else
                                                 replan_every)
    num_steps = task.episode_length if num_steps is None else num_steps
    run = skills_episode_fn(task, model_config, act, num_steps=num_steps,
                            replan_every=replan_every, record=record)
    run_params = {"model": params, "goal_space": goal_space_params, "skills": skills_params}
    return run_episodes(task, run, run_params, key, num_episodes=num_episodes,
                        num_steps=num_steps, mesh=mesh)


def hierarchical_episode_fn(task, config: HierarchyConfig, *, planner: Callable | tuple,
               options: dict | tuple, horizons: tuple[int, ...], num_steps: int,
               terminal_weights: float | tuple[float, ...] = 4.0, subgoal_step: int = 0,
               critic=None, critic_levels: tuple[int, ...] | None = None,
               snap_radius: float | None = None, record: Callable | None = None):
    """`(params, episode, key) -> (final distance, positions [T, P])` of one hierarchical
    MPC episode on `task`, for `run_episodes`. `params` is
    `{"model": hierarchy params, "critic": critic params or None}`; `critic` the critic's
    config (or None) and `critic_levels` the levels it costs (see `problems`); with
    `snap_radius`, subgoals within it of the goal are replaced by the goal (`SnapSubgoal`).
    With `record` (a hashable `env_state -> pytree`, e.g. `hjepa.visualize.FrameRecorder`)
    the episode returns `(final distance, (positions, records))`."""
    if len(horizons) != config.num_levels:
        raise ValueError(f"horizons: expected one per level ({config.num_levels}), got "
                         f"{len(horizons)}")
    if any(not is_int(h) or h <= 0 for h in horizons):
        raise ValueError(f"horizons: expected positive integers, got {horizons!r}")
    if config.span(config.num_levels) > num_steps:
        raise ValueError(
            f"the top level's span ({config.span(config.num_levels)} steps per macro-action) "
            f"is longer than the episode ({num_steps} steps)")
    init_actions = tuple(jnp.zeros((h, config.action_size_at(level)))
                         for level, h in zip(range(config.num_levels, 0, -1), horizons,
                                             strict=True))
    spans = tuple(config.span(level) for level in range(config.num_levels, 0, -1))
    low, high = jnp.asarray(task.action_low), jnp.asarray(task.action_high)
    set_goal = (planners.replace_goal if snap_radius is None
                else hierarchy.SnapSubgoal(snap_radius))
    family = world_model.of(config)

    def run(params, episode, key):
        levels = family.problems(params["model"], task.observe(episode.state),
                                 episode.goal.obs, low, high, terminal_weight=terminal_weights,
                                 critic=None if critic is None else (critic, params["critic"]),
                                 critic_levels=critic_levels)
        result = planners.hierarchical_mpc(
            levels, init_actions, key, env_step=task.dynamics, env_params=task.env_params,
            env_state=episode.state, num_steps=num_steps, spans=spans,
            observe=family.observe(task), planner=planner,
            planner_options=options, set_goal=set_goal, subgoal_step=subgoal_step,
            record=DistanceRecorder(task, record))
        return task.distance(result.final_state, episode.goal), result.records

    return run


def evaluate_hierarchy(task, key: jax.Array, config: HierarchyConfig, params: PyTree, *,
             num_episodes: int, horizons: tuple[int, ...],
             planner: Callable | tuple = planners.mppi, planner_options: dict | tuple = (),
             num_steps: int | None = None, terminal_weights: float | tuple[float, ...] = 4.0,
             subgoal_step: int = 0, mesh: jax.sharding.Mesh | None = None,
             critic: tuple[Any, PyTree] | None = None,
             critic_levels: tuple[int, ...] | None = None, snap_radius: float | None = None,
             record: Callable | None = None):
    """Hierarchical MPC on `num_episodes` held-out start/goal pairs of `task`.

    Args:
      horizons: each level's planning horizon in its own actions, top first.
      planner, planner_options: one for every level or one per level, top first.
      terminal_weights: one for every level or one per level, top first.
      critic, critic_levels: a trained cost to go and the levels it costs
        (`hjepa.hierarchy.problems`).
      snap_radius: subgoals within this latent distance of the goal become the goal.
      record: what each step keeps besides the position (`EvalResult.records`), or None.
      Others as in `evaluate` (the same start/goal pairs for the same key).

    Returns:
      An `EvalResult`.
    """
    if not isinstance(config, HierarchyConfig):
        raise ValueError(f"config: expected a HierarchyConfig, got {type(config).__name__}")
    check_observations("config", config, task)
    if not is_int(num_episodes) or num_episodes <= 0:
        raise ValueError(f"num_episodes: expected a positive integer, got {num_episodes!r}")
    num_steps = task.episode_length if num_steps is None else num_steps
    run = hierarchical_episode_fn(task, config, planner=planner, options=planner_options or {},
                     horizons=tuple(horizons), num_steps=num_steps,
                     terminal_weights=terminal_weights, subgoal_step=subgoal_step,
                     critic=None if critic is None else critic[0], critic_levels=critic_levels,
                     snap_radius=snap_radius, record=record)
    run_params = {"model": params, "critic": None if critic is None else critic[1]}
    return run_episodes(task, run, run_params, key, num_episodes=num_episodes,
                                     num_steps=num_steps, mesh=mesh)


def evaluate_latent_variable(task, key: jax.Array, config: LatentVariableConfig,
                             params: PyTree, *,
             num_episodes: int, num_samples: int = 8, zero: bool = False,
             quantile: float | None = None, planner: Callable = planners.mppi,
             planner_options: dict | None = None, horizon: int = 16,
             terminal_weight: float = 4.0,
             num_steps: int | None = None) -> tuple[EvalResult, np.ndarray]:
    """Batched closed-loop MPC episodes planning with the latent-variable model.

    The episodes run through `run_episodes`, so `key` gives the same start/goal pairs and
    planner keys as `evaluate` with that key; episode i's K samples of u (fixed for the
    episode) come from fold_in(key, SAMPLES_STREAM). A run is a pure function of `key`.

    Args:
      task: an hjepa task with state observations matching the model.
      key: a `jax.random` key.
      num_episodes: N.
      num_samples: K samples of u per plan (ignored when `zero`).
      zero: plan with the single sample u = 0.
      quantile: None (mean over samples) or a quantile in [0, 1].
      planner, planner_options: any planner and its options.
      horizon: planning horizon H.
      terminal_weight: weight of the terminal latent distance.
      num_steps: episode length (default: the task's).

    Returns:
      (result, positions): the `EvalResult` and the task's position after
      each step [N, T, P] (numpy).
    """
    latent_variable.check_quantile(quantile)
    if tuple(config.model.obs_shape) != tuple(task.obs_shape):
        raise ValueError(f"config: the model takes observations of shape "
                         f"{tuple(config.model.obs_shape)}, the task {task.name!r} gives "
                         f"{tuple(task.obs_shape)}")
    for name, value in (("num_episodes", num_episodes), ("num_samples", num_samples),
                        ("horizon", horizon)):
        if not is_int(value) or value <= 0:
            raise ValueError(f"{name}: expected a positive integer, got {value!r}")
    num_steps = task.episode_length if num_steps is None else num_steps
    if zero:
        samples = jnp.broadcast_to(latent_variable.zero_samples(config, horizon=horizon),
                                   (num_episodes, 1, horizon, config.latent_variable_size))
    else:  # [N, K, H, U], from a key apart from the pairs' and the planners'
        samples = jax.vmap(lambda k: latent_variable.draw_samples(
            config, k, num_samples=num_samples, horizon=horizon))(
            jax.random.split(jax.random.fold_in(key, SAMPLES_STREAM), num_episodes))
    options = dict(planner_options or {})
    low, high = jnp.asarray(task.action_low), jnp.asarray(task.action_high)
    init_actions = jnp.zeros((horizon, task.action_size))
    family = world_model.of(config)

    def run(params, episode, key, u):
        (prob,) = family.problems(params, task.observe(episode.state), episode.goal.obs, low,
                                  high, u=u, quantile=quantile, terminal_weight=terminal_weight)
        result = planners.mpc(prob, init_actions, key, env_step=task.dynamics,
                              env_params=task.env_params, env_state=episode.state,
                              num_steps=num_steps, observe=family.observe(task),
                              planner=planner, planner_options=options,
                              record=DistanceRecorder(task, task.position))
        return task.distance(result.final_state, episode.goal), result.records

    result = run_episodes(task, run, params, key, num_episodes=num_episodes,
                          num_steps=num_steps, per_episode=samples)
    return result, np.asarray(result.records)


# fold_in(key, SAMPLES_STREAM): the latent-variable evaluation's samples of u, drawn apart from
# run_episodes' split of the same key into start/goal pairs and planner keys.
SAMPLES_STREAM = 7


def random_actions(task: Task, key: jax.Array, *, num_episodes: int,
                   num_steps: int | None = None) -> EvalResult:
    """The baseline a planner must beat: uniformly random actions within the task's bounds,
    on the same start/goal pairs as `evaluate(task, key, num_episodes=num_episodes)`.

    Returns:
      An `EvalResult` (success [N], final distances [N], distances [N, T]).
    """
    if not is_int(num_episodes) or num_episodes <= 0:
        raise ValueError(f"num_episodes: expected a positive integer, got {num_episodes!r}")
    num_steps = task.episode_length if num_steps is None else num_steps
    low, high = jnp.asarray(task.action_low), jnp.asarray(task.action_high)

    def run(params, episode, key):
        del params

        def step(state, step_key):
            action = jax.random.uniform(step_key, low.shape, minval=low, maxval=high)  # [A]
            state = task.dynamics(task.env_params, state, action)
            return state, task.position(state)

        final, positions = jax.lax.scan(step, episode.state,
                                        jax.random.split(key, num_steps))  # positions [T, P]
        return task.distance(final, episode.goal), positions

    return run_episodes(task, run, None, key, num_episodes=num_episodes, num_steps=num_steps)


def check_observations(name: str, model_config, task: Task) -> None:
    """Raises ValueError unless the model (argument `name`) takes the task's observations."""
    if tuple(model_config.obs_shape) != tuple(task.obs_shape):
        raise ValueError(
            f"{name}: the model takes observations of shape {tuple(model_config.obs_shape)}, "
            f"the task {task.name!r} ({task.obs_kind}) gives {tuple(task.obs_shape)}")


def _to_numpy(x):
    """A leaf on the host: numpy, except typed PRNG keys (e.g. windy_cliff's gusts), which stay
    JAX arrays (numpy has no key dtype)."""
    if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
        return x
    return np.asarray(x)


def run_episodes(task: Task, run: Callable, params: PyTree, key: jax.Array, *,
                 num_episodes: int, num_steps: int,
                 mesh: jax.sharding.Mesh | None = None,
                 per_episode: PyTree = None) -> EvalResult:
    """Runs `run(params, episode, key) -> (final distance [], positions [T, P])` on
    `num_episodes` held-out start/goal pairs of `task`, batched (and split over `mesh`'s
    data axis when given), timing compilation and execution apart. The one episode loop:
    every evaluation (oracle, flat, hierarchical, latent-variable, random) runs through it,
    so the same `key` gives every method the same start/goal pairs.

    `per_episode`, a pytree with leading axis [num_episodes] (e.g. the latent-variable
    model's samples of u), is passed to `run` as a fourth argument, one episode's slice each.

    `run` may return `(final distance, (positions, records))` instead (`DistanceRecorder`
    with `extra`): the records are kept in `EvalResult.records`, the pairs in `.episodes`."""
    reset_key, plan_key = jax.random.split(key)
    episodes = jax.jit(jax.vmap(task.reset))(jax.random.split(reset_key, num_episodes))
    keys = jax.random.split(plan_key, num_episodes)
    per = () if per_episode is None else (per_episode,)
    args = (params, episodes, keys, *per)
    in_axes = (None, 0, 0, *(0 for _ in per))
    if mesh is None:
        batched = jax.jit(jax.vmap(run, in_axes=in_axes))
    else:
        batched = distributed.shard_vmap(run, mesh, in_axes=in_axes)
        args = (distributed.put_global(params, distributed.replicated(mesh)),
                *distributed.put_global((episodes, keys, *per),
                                        distributed.data_sharding(mesh)))
    t0 = time.perf_counter()
    compiled = batched.lower(*args).compile()
    compile_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    final, positions = jax.block_until_ready(compiled(*args))
    run_seconds = time.perf_counter() - t0
    positions, records = positions if isinstance(positions, tuple) else (positions, None)
    if mesh is not None:
        final, positions = distributed.to_host(final), distributed.to_host(positions)
        records = jax.tree.map(distributed.to_host, records)
    if records is not None:
        records = jax.tree.map(_to_numpy, records)
        episodes = jax.tree.map(_to_numpy, episodes)
    distances = np.asarray(task.position_distance(
        jnp.asarray(positions), jnp.asarray(episodes.goal.position)[:, None]))  # [N, T]
    final = np.asarray(final)
    return EvalResult(
        success=final < task.success_threshold,
        final_distance=final,
        distances=distances,
        compile_seconds=compile_seconds,
        run_seconds=run_seconds,
        num_episodes=num_episodes,
        num_steps=num_steps,
        records=records,
        episodes=None if records is None else episodes,
    )
