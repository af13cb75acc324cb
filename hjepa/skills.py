"""Learned skills: macro-actions that a decoder turns into primitive actions, planned above them.

A level above a frozen world model, for bodies whose primitive actions a planner cannot search
through a learned model. The ant is the case: its model, trained on the gait controller's
data, mispredicts the torque sequences that MPPI samples, so flat planning on the learned model
walks nowhere even with the true geodesic as its cost. From the data's chunks of K = `chunk`
actions, with the world model's encoder frozen, this level learns

- a chunk encoder q(m | z_t, a_{t:t+K}) = N(μ, σ²) [M]: the skill (macro-action) of a chunk;
- a skill decoder π(a | z, m) [A]: the primitive action at latent z while doing skill m. It
  reads the latent of every step (closed loop), so it keeps a gait's phase;
- a level-2 predictor f(z_t, m) -> z_{t+K}: where doing m for K steps leads.

    loss = |π(z_{t+j}, m) − a_{t+j}|² (actions scaled to [-1, 1], mean over the chunk)
         + |f(z_t, m) − z_{t+K}|² / var(z_{t+K} − z_t)  (the batch's K-step change)
         + β KL(q ‖ N(0, I))                           (keeps skills where the planner samples)

    params = {"encoder": MLP params, "decoder": ..., "predictor": ...,
              "action_low": [A], "action_high": [A]}   (constants: the task's bounds)

Planning: MPPI over H skills, each lasting K steps, through f, scored by a cost on the
predicted latents (a goal-space cost: `hjepa.goal_space.GoalSpaceCost`); the decoder turns
the first skill into the action now. `Act` does that afresh at every step (a
`planners.Proposal` act for `planners.policy_only`); `skill_loop_step` (the closed loop of
`hjepa.evaluate.evaluate_skills`) plans every `replan_every` steps from the last plan.
The skills are learned from the data's action chunks; the controller that made the data
never acts.

Example:
  >>> params = skills.init(SkillsConfig(), jax.random.key(0), latent_size=32,
  ...                      action_low=-jnp.ones(8), action_high=jnp.ones(8))
  >>> m = jnp.zeros(4)                                   # a skill [M]
  >>> action = skills.decode(SkillsConfig(), params, z, m)   # [8]
  >>> act = skills.Act(SkillsConfig(), GoalSpaceCost(goal_config, 2, "steps"))
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from typing import Any, NamedTuple

import flax.serialization
import jax
import jax.numpy as jnp
import numpy as np

import planners
from hjepa import io
from hjepa.checks import is_int
from hjepa.configs import SkillsConfig
from hjepa.io import read_json
from hjepa.modules import MLP

PyTree = Any

SKILLS_FILE = "skills.msgpack"
SKILLS_RECORD = "skills.json"


def _encoder(config: SkillsConfig) -> MLP:
    return MLP(config.hidden, 2 * config.macro_size)


def _decoder(config: SkillsConfig, action_size: int) -> MLP:
    return MLP(config.hidden, action_size, layer_norm=config.decoder_layer_norm)


def _predictor(config: SkillsConfig, latent_size: int) -> MLP:
    return MLP(config.hidden, latent_size)


def init(config: SkillsConfig, key: jax.Array, latent_size: int, action_low: jax.Array,
         action_high: jax.Array) -> PyTree:
    """Initial params for latents [D = latent_size] and actions inside [low, high] [A]."""
    config.validate()
    low = jnp.asarray(action_low, jnp.float32).reshape(-1)
    high = jnp.asarray(action_high, jnp.float32).reshape(-1)
    if not is_int(latent_size) or latent_size <= 0:
        raise ValueError(f"latent_size: expected a positive integer, got {latent_size!r}")
    concrete = not isinstance(high, jax.core.Tracer) and not isinstance(low, jax.core.Tracer)
    if low.shape != high.shape or (concrete and not (
            np.all(np.isfinite(np.asarray(low))) and np.all(np.isfinite(np.asarray(high)))
            and np.all(np.asarray(high) > np.asarray(low)))):
        raise ValueError(f"action_low, action_high: expected finite bounds [A] with "
                         f"high > low, got {low} and {high}")
    encoder_key, decoder_key, predictor_key = jax.random.split(key, 3)
    size, macro = low.shape[0], config.macro_size
    z = jnp.zeros(latent_size)
    return {
        "encoder": _encoder(config).init(encoder_key, jnp.zeros(latent_size + config.chunk * size)),
        "decoder": _decoder(config, size).init(decoder_key, jnp.zeros(latent_size + macro)),
        "predictor": _predictor(config, latent_size).init(
            predictor_key, jnp.concatenate([z, jnp.zeros(macro)])),
        "action_low": low,
        "action_high": high,
    }


def _bounds(params: PyTree) -> tuple[jax.Array, jax.Array]:
    """The task's action bounds (constants: never trained)."""
    return (jax.lax.stop_gradient(params["action_low"]),
            jax.lax.stop_gradient(params["action_high"]))


def scale_actions(params: PyTree, actions: jax.Array) -> jax.Array:
    """Actions [..., A] mapped from [low, high] onto [-1, 1]."""
    low, high = _bounds(params)
    return 2.0 * (actions - low) / (high - low) - 1.0


def encode_chunk(config: SkillsConfig, params: PyTree, latent: jax.Array,
                 actions: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The skill posterior of action chunks [..., K, A] started at latents [..., D]:
    (mean [..., M], log std [..., M])."""
    flat = scale_actions(params, actions).reshape(*actions.shape[:-2], -1)
    out = _encoder(config).apply(params["encoder"], jnp.concatenate([latent, flat], -1))
    mean, log_std = jnp.split(out, 2, axis=-1)
    return mean, jnp.clip(log_std, -5.0, 2.0)


def decode(config: SkillsConfig, params: PyTree, latent: jax.Array,
           skill: jax.Array) -> jax.Array:
    """The primitive action [..., A] inside the task's bounds at latents [..., D] while doing
    skills [..., M] (a tanh squashed onto the bounds)."""
    low, high = _bounds(params)
    raw = _decoder(config, low.shape[-1]).apply(params["decoder"],
                                                jnp.concatenate([latent, skill], -1))
    return low + (high - low) * 0.5 * (jnp.tanh(raw) + 1.0)


def predict(config: SkillsConfig, params: PyTree, latent: jax.Array,
            skill: jax.Array) -> jax.Array:
    """The latent [..., D] after doing skills [..., M] for `config.chunk` steps from latents
    [..., D] (a residual: z + f(z, m))."""
    change = _predictor(config, latent.shape[-1]).apply(params["predictor"],
                                                        jnp.concatenate([latent, skill], -1))
    return latent + change


def loss(params: PyTree, config: SkillsConfig, latents: jax.Array, actions: jax.Array,
         key: jax.Array) -> tuple[jax.Array, dict]:
    """The skills' loss on chunks: latents [B, K+1, D] of a frozen encoder (constants) and the
    K actions between them [B, K, A]; `key` draws the skills from their posterior.

    Returns (loss [], metrics): `decoding` (mean squared action error, actions in [-1, 1]),
    `prediction` (the predictor's error over the variance of the batch's K-step latent
    change) and `kl` (mean KL of the posterior to N(0, I), per chunk).
    """
    start, end = latents[:, 0], latents[:, -1]  # [B, D]
    mean, log_std = encode_chunk(config, params, start, actions)  # [B, M]
    skill = mean + jnp.exp(log_std) * jax.random.normal(key, mean.shape)
    steps = latents[:, :-1]  # [B, K, D]: the latent at each action of the chunk
    held = jnp.broadcast_to(skill[:, None], (*steps.shape[:2], skill.shape[-1]))  # [B, K, M]
    decoded = decode(config, params, steps, held)  # [B, K, A]
    decoding = jnp.mean((scale_actions(params, decoded) - scale_actions(params, actions)) ** 2)
    change_variance = jax.lax.stop_gradient(jnp.mean(jnp.var(end - start, axis=0)))
    error = jnp.mean((predict(config, params, start, skill) - end) ** 2)
    prediction = error / jnp.maximum(change_variance, 1e-6)
    kl = jnp.mean(0.5 * jnp.sum(mean**2 + jnp.exp(2 * log_std) - 1.0 - 2 * log_std, -1))
    total = decoding + prediction + config.kl_weight * kl
    return total, {"loss": total, "decoding": decoding, "prediction": prediction, "kl": kl}


# ----------------------------------------------------------------------------- planning


@dataclasses.dataclass(frozen=True)
class SkillStep:
    """`planners.Problem.step` over skills: `(params, z [D], m [M]) -> (z after K steps,
    cost of it [])`, `params` = {"skills": ..., and what the cost reads}."""

    config: SkillsConfig
    cost: Any

    def __call__(self, params: PyTree, latent: jax.Array, skill: jax.Array):
        following = predict(self.config, params["skills"], latent, skill)
        return following, self.cost(params, following)


@dataclasses.dataclass(frozen=True)
class SkillTerminalCost:
    """`planners.Problem.terminal_cost`: `weight` × the cost of the last predicted latent."""

    cost: Any
    weight: float

    def __call__(self, params: PyTree, latent: jax.Array) -> jax.Array:
        return self.weight * self.cost(params, latent)


def problem(config: SkillsConfig, params: PyTree, cost, cost_params: PyTree,
            latent: jax.Array, *, bound: float = 2.0,
            terminal_weight: float = 4.0) -> planners.Problem:
    """The level-2 problem from latent [D]: choose skills [H, M] inside [-bound, bound] (in
    units of their prior's std) to minimise the cost of the predicted latents.

    Args:
      cost: `(params, z [D]) -> []`, hashable, reading `cost_params` (e.g. a
        `hjepa.goal_space.GoalSpaceCost`, whose params hold "goal_space" and "goal").
      cost_params: a dict of what `cost` reads.
    """
    macro = config.macro_size
    return planners.Problem(
        step=SkillStep(config, cost), terminal_cost=SkillTerminalCost(cost, terminal_weight),
        params={**cost_params, "skills": params}, init_state=latent,
        action_low=jnp.full((macro,), -bound), action_high=jnp.full((macro,), bound))


@dataclasses.dataclass(frozen=True)
class Act:
    """`(skills params, problem params, latent [D]) -> action [A]` for `planners.policy_only`:
    MPPI over `horizon` skills (each held for `config.chunk` steps) through the level-2
    predictor, scored by `cost` (which reads the problem's params: its goal-space params and
    goal point), then the decoder's action for the first skill at this latent.

    Each step plans afresh from the prior's mean with the same `seed` (a fixed key: the plans
    differ because the latents do). Hashable: a static argument.
    """

    config: SkillsConfig
    cost: Any
    horizon: int = 6
    num_samples: int = 256
    iterations: int = 3
    temperature: float = 0.03
    noise_std: float = 1.0
    noise_decay: float = 0.7
    bound: float = 2.0
    terminal_weight: float = 4.0
    seed: int = 0

    def __post_init__(self):
        for name in ("horizon", "num_samples", "iterations"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"{name}: expected a positive integer, got {value!r}")
        for name in ("temperature", "noise_std", "bound", "noise_decay"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not value > 0 or value == float("inf"):
                raise ValueError(f"{name}: expected a finite number > 0, got {value!r}")
        weight = self.terminal_weight
        if not isinstance(weight, (int, float)) or not 0 <= weight < float("inf"):
            raise ValueError(f"terminal_weight: expected a finite number >= 0, got {weight!r}")

    def plan(self, params: PyTree, problem_params: PyTree, latent: jax.Array,
             init_skills: jax.Array | None = None, key: jax.Array | None = None
             ) -> planners.Plan:
        """The skills [H, M] planned from latent [D] (MPPI), with their cost: from
        `init_skills` [H, M] (default: the prior's mean, zeros) with `key` (default: the key
        of `seed`)."""
        level2 = problem(self.config, params, self.cost, problem_params, latent,
                         bound=self.bound, terminal_weight=self.terminal_weight)
        if init_skills is None:
            init_skills = jnp.zeros((self.horizon, self.config.macro_size))
        return planners.mppi(level2, init_skills,
                             jax.random.key(self.seed) if key is None else key,
                             num_samples=self.num_samples, iterations=self.iterations,
                             temperature=self.temperature, noise_std=self.noise_std,
                             noise_decay=self.noise_decay)

    def __call__(self, params: PyTree, problem_params: PyTree, latent: jax.Array) -> jax.Array:
        skills = self.plan(params, problem_params, latent).actions  # [H, M]
        return decode(self.config, params, latent, skills[0])

    @property
    def predictor_calls(self) -> int:
        """Level-2 predictor calls per plan: MPPI scores `num_samples` sequences of `horizon`
        skills each iteration (the mean among them) and its final mean once."""
        return (self.iterations * self.num_samples + 1) * self.horizon


class SkillCarry(NamedTuple):
    """What a closed loop over skills carries from one step to the next."""

    plan: jax.Array  # [H, M] the skills planned last
    held: jax.Array  # [] steps the first of them has been held


def check_replan_every(act: Act, replan_every) -> int:
    """`replan_every` if it divides the skills' chunk (1 ... chunk), else ValueError."""
    chunk = act.config.chunk
    if not is_int(replan_every) or replan_every <= 0 or chunk % replan_every:
        raise ValueError(f"replan_every: expected a divisor of the skills' chunk ({chunk}), "
                         f"got {replan_every!r}")
    return int(replan_every)


def skill_loop_step(act: Act, params: PyTree, problem_params: PyTree, carry: SkillCarry,
                    latent: jax.Array, key: jax.Array, replan_every: int
                    ) -> tuple[SkillCarry, jax.Array]:
    """One step of acting with skills: the decoder acts the first skill of the latest plan
    at `latent` [D]. Every `replan_every` steps (a divisor of the chunk) MPPI plans again,
    from the last plan, shifted by one skill each time a chunk has passed; only when
    `replan_every` is the chunk is each skill held for its whole chunk. Steps that do not
    plan skip MPPI (`lax.cond`). Returns (carry, action [A])."""
    replan_every = check_replan_every(act, replan_every)
    done = carry.held >= act.config.chunk  # a chunk has passed since the last shift
    shifted = jnp.where(done, jnp.concatenate([carry.plan[1:], jnp.zeros_like(carry.plan[:1])]),
                        carry.plan)
    held = jnp.where(done, 0, carry.held)
    plan = jax.lax.cond((held % replan_every) == 0,
                        lambda: act.plan(params, problem_params, latent, shifted, key).actions,
                        lambda: shifted)
    action = decode(act.config, params, latent, plan[0])
    return SkillCarry(plan, held + 1), action


def initial_carry(act: Act) -> SkillCarry:
    """The carry at an episode's start: the prior's mean, and a fresh first skill."""
    return SkillCarry(jnp.zeros((act.horizon, act.config.macro_size)), jnp.zeros((), jnp.int32))


# ----------------------------------------------------------------------------- files


def save(run_dir: str, config: SkillsConfig, params: PyTree, record: dict) -> None:
    """Writes `skills.msgpack` and `skills.json` (config, sizes, training record, digest)
    atomically into `run_dir`, the params first."""
    payload = flax.serialization.to_bytes(params)
    io.atomic_write_bytes(os.path.join(run_dir, SKILLS_FILE), payload)
    io.atomic_write_json(os.path.join(run_dir, SKILLS_RECORD), {
        "config": dataclasses.asdict(config), **record,
        "sha256": hashlib.sha256(payload).hexdigest()})


def kept_record(run_dir: str, config: SkillsConfig) -> dict | None:
    """The record of the skills kept in `run_dir` if trained with `config`; None when there
    are none; ValueError when they are of another configuration."""
    path = os.path.join(run_dir, SKILLS_RECORD)
    if not os.path.exists(path):
        return None
    record = read_json(path)
    if record.get("config") != json.loads(json.dumps(dataclasses.asdict(config))):
        raise ValueError(f"--run-dir: {run_dir} holds skills of another configuration; pass "
                         "--overwrite to replace them")
    return record


def load(run_dir: str, latent_size: int) -> tuple[SkillsConfig, PyTree]:
    """The skills kept in `run_dir` by `save` (or `hjepa skills`): (config, params).

    Raises:
      ValueError: none there, a record hjepa cannot read, or params that do not match their
        digest, config or latent size.
    """
    path, record_path = (os.path.join(run_dir, name) for name in (SKILLS_FILE, SKILLS_RECORD))
    if not (os.path.exists(path) and os.path.exists(record_path)):
        raise ValueError(f"skills: {run_dir} holds no skills ({SKILLS_RECORD} and "
                         f"{SKILLS_FILE}); train them with "
                         f"`hjepa skills --run-dir {run_dir} --data DATA`")
    record = read_json(record_path)
    try:
        config = SkillsConfig.from_dict(record["config"])
        config.validate()
        action_size = int(record["action_size"])
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"skills: {record_path} is not a skills record hjepa can read "
                         f"({type(error).__name__}: {error})") from None
    with open(path, "rb") as f:
        payload = f.read()
    if record.get("sha256") != hashlib.sha256(payload).hexdigest():
        raise ValueError(f"skills: {path} is corrupt: it does not match the digest recorded "
                         f"in {record_path}")
    like = jax.eval_shape(lambda: init(config, jax.random.key(0), latent_size,
                                       -jnp.ones(action_size), jnp.ones(action_size)))
    try:
        params = flax.serialization.from_bytes(like, payload)
        if jax.tree.map(jnp.shape, params) != jax.tree.map(lambda leaf: leaf.shape, like):
            raise ValueError("the parameters' shapes differ")
    except (ValueError, KeyError) as error:
        raise ValueError(f"skills: {path} does not match its config in {record_path} for "
                         f"latents of size {latent_size}: {error}") from None
    return config, params
