"""The ant's exploration gait (`hjepa.tasks.ant_maze.WaypointPolicy`): its speed, how far it
takes the ant, and how its numbers were tuned.

    python -m benchmarks.gait                  # measure the shipped gait against the first one
    python -m benchmarks.gait --tune           # and rerun the tuning that chose the gait

Three measurements, each for the first hand-set gait (`FIRST_GAIT`) and the shipped one
(`WaypointPolicy()`), on the true physics with the action noise on:

- `speed`: `--directions` random directions of travel x `--speed-steps` steps from a
  standing start, far from the walls: mean speed along the commanded direction (m/s), mean
  lateral drift (m), share of ants that tipped over (up axis z < 0.3 at some step);
- `to_goal`: the policy sent along the maze's shortest path to the goal (`reach=0`, no
  rests) on the `--episodes` start/goal pairs of `--split` (the pairs of `hjepa.evaluate`):
  share within 0.5 m of the goal by steps 100..500 (arrival), and at step 500 (success);
- `explore`: `--explore-episodes` data episodes of 500 steps from `reset` (the dataset's
  own collection, `hjepa.data.collect_episodes`): the torso's largest distance from its
  start (mean, m), its net displacement (mean, m), free cells visited (mean, of 7), share
  tipped over.

`--tune` reruns the cross-entropy method over the gait's numbers (`TUNED`, within
`BOUNDS`) from the first gait: 48 gaits x 4 start/goal pairs (`TUNE_SEED`, neither `val`
nor `test`) x 200 steps per iteration, 16 iterations, each gait sent to the goal round the
wall; the score is minus the mean geodesic distance to the goal over the steps, minus 3 x
the share tipped over. It records the final elite mean; the shipped gait is that mean,
rounded (the run that chose it: 16 iterations, 2 CPU cores, about 4 minutes).

Writes `benchmarks/results/gait_cpu.json` and a `.md` beside it (the `tune` entry kept from
an earlier run when `--tune` is not given).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from hjepa import data as data_lib
from hjepa import provenance, splits, sysinfo
from hjepa.io import atomic_write_bytes, atomic_write_json
from hjepa.tasks import ant_maze

HERE = os.path.dirname(os.path.abspath(__file__))
FIRST_GAIT = ant_maze.WaypointPolicy(period=12, stride=0.5, lift=0.45, lift_lead=0.0, push=0.0,
                                     stance_bend=ant_maze.REST_ANKLE, kp=5.0, kd=0.05,
                                     smoothing=0.8)
TUNED = ("period", "stride", "lift", "lift_lead", "push", "stance_bend", "kp", "kd",
         "smoothing")
BOUNDS = {"period": (4.0, 24.0), "stride": (0.1, 1.0), "lift": (0.0, 1.2),
          "lift_lead": (-np.pi, np.pi), "push": (0.0, 1.0), "stance_bend": (0.5, 1.5),
          "kp": (1.0, 20.0), "kd": (0.0, 0.5), "smoothing": (0.0, 0.95)}
# Start/goal pairs drawn for the tuning only (neither `val` nor `test`).
TUNE_SEED = 7_777
FAR = np.array([40.0, 40.0], np.float32)  # m: a start clear of the maze's walls
TIP_UP_Z = 0.3  # an ant whose up axis falls below this z has tipped over
ARRIVAL_STEPS = (100, 200, 300, 400, 500)


def _walk_from(task, policy: ant_maze.WaypointPolicy, state, carry, key: jax.Array,
               steps: int, measure):
    """Steps the true physics with `policy` from `state` and `carry` for `steps` steps.
    Returns (the last state, `measure(state)` after each step, stacked [T, ...])."""
    def step(inner, inputs):
        state, carry = inner
        t, k = inputs
        carry, action = policy(carry, k, state, t)
        state = task.dynamics(None, state, action)
        return (state, carry), measure(state)

    (state, _), measured = jax.lax.scan(step, (state, carry),
                                        (jnp.arange(steps), jax.random.split(key, steps)))
    return state, measured


def up_z(state) -> jax.Array:
    """World z of the torso's up axis []."""
    return ant_maze._rotate(jnp.array([0.0, 0.0, 1.0]), state.x.rot[0])[2]


def walk(task: ant_maze.AntMaze, policy: ant_maze.WaypointPolicy, key: jax.Array,
         steps: int) -> tuple[jax.Array, jax.Array, jax.Array]:
    """One ant walking from a standing start at `FAR` along a random direction for `steps`
    steps; `policy`'s fields may be traced. Returns (metres along [], metres across [],
    tipped [] bool)."""
    direction_key, yaw_key, carry_key, step_key = jax.random.split(key, 4)
    angle = jax.random.uniform(direction_key, (), minval=0.0, maxval=2 * jnp.pi)
    direction = jnp.stack([jnp.cos(angle), jnp.sin(angle)])
    yaw = jax.random.uniform(yaw_key, (), minval=-jnp.pi, maxval=jnp.pi)
    state = task.init_state(jnp.asarray(FAR), yaw)
    carry = policy.init(carry_key, state).replace(waypoint=jnp.asarray(FAR) + 1e3 * direction)
    state, up = _walk_from(task, policy, state, carry, step_key, steps, up_z)
    moved = ant_maze.torso_xy(state) - jnp.asarray(FAR)
    across = jnp.abs(moved @ jnp.array([-direction[1], direction[0]]))
    return moved @ direction, across, jnp.min(up) < TIP_UP_Z


def with_fields(policy: ant_maze.WaypointPolicy, values: jax.Array) -> ant_maze.WaypointPolicy:
    """`policy` with the `TUNED` fields set from `values` [len(TUNED)] (traced)."""
    return dataclasses.replace(policy, **{n: values[i] for i, n in enumerate(TUNED)})


def speed_of(task, policy, key, *, directions: int, steps: int) -> dict:
    """`walk` over `directions` random directions: the gait's speed summary."""
    along, across, tipped = jax.jit(jax.vmap(lambda k: walk(task, policy, k, steps)))(
        jax.random.split(key, directions))
    seconds = steps * 0.05
    return {"directions": directions, "steps": steps,
            "speed_m_per_s": float(np.mean(along)) / seconds,
            "speed_m_per_s_quartiles": (np.percentile(along, [25, 50, 75]) / seconds).tolist(),
            "lateral_m": float(np.mean(across)), "tipped_share": float(np.mean(tipped))}


def to_goal(task, policy, split: str, episodes: int) -> dict:
    """The policy sent to each pair's goal (reach 0, no rests) for the task's episode."""
    reset_key, _ = jax.random.split(splits.key(split))
    distance = np.asarray(jax.jit(jax.vmap(
        lambda k: walk_to_goal(task, policy, k, task.episode_length)[0]))(
        jax.random.split(reset_key, episodes)))  # [E, T]
    within = distance < task.success_threshold
    arrived = within.any(axis=1)
    first = np.where(arrived, within.argmax(axis=1) + 1, np.inf)
    return {"split": split, "pairs": splits.describe(split, splits.seed(split)),
            "episodes": episodes,
            "arrived_by": {str(s): float(np.mean(first <= s)) for s in ARRIVAL_STEPS},
            "median_arrival_step": float(np.median(first)),
            "within_at_end": float(np.mean(within[:, -1]))}


def explore(task, policy, episodes: int, seed: int = 0) -> dict:
    """Data episodes of the task's length from `reset`: how far the policy takes the ant."""
    obs, _, xy = data_lib.collect_episodes(task, policy, jax.random.key(seed),
                                           num_episodes=episodes,
                                           episode_length=task.episode_length,
                                           with_positions=True)
    xy, obs = np.asarray(xy), np.asarray(obs)
    from_start = np.linalg.norm(xy - xy[:, :1], axis=-1)
    col = np.round(xy[..., 0] / ant_maze.CELL).astype(int) + 1  # cell_center, inverted
    row = 1 - np.round(xy[..., 1] / ant_maze.CELL).astype(int)
    free = {(r, c) for r, line in enumerate(ant_maze.MAZE) for c, ch in enumerate(line)
            if ch != "#"}
    visited = [len(set(zip(row[e].tolist(), col[e].tolist(), strict=True)) & free)
               for e in range(episodes)]
    up = obs[..., 8]  # the torso's z axis, world z (see ant_maze.state_observation)
    return {"episodes": episodes, "steps": task.episode_length, "seed": seed,
            "max_from_start_m": float(from_start.max(axis=1).mean()),
            "net_m": float(from_start[:, -1].mean()),
            "cells_visited": float(np.mean(visited)),
            "tipped_share": float(np.mean(up.min(axis=1) < TIP_UP_Z))}


def walk_to_goal(task, policy: ant_maze.WaypointPolicy, key: jax.Array,
                 steps: int) -> tuple[jax.Array, jax.Array, jax.Array]:
    """The policy (fields may be traced) sent from a `reset` start to its goal round the
    wall (`reach=0`, no rests) for `steps` steps. Returns, after each step, (straight
    distance to the goal [T] (m), geodesic distance round the wall [T] (m), the torso's up
    axis z [T])."""
    walker = dataclasses.replace(policy, reach=0.0, rest_probability=0.0)
    start = task.reset(key)
    carry_key, step_key = jax.random.split(jax.random.fold_in(key, 1))
    carry = walker.init(carry_key, start.state).replace(waypoint=start.goal.position)

    def measure(state):
        geodesic = ant_maze.maze_distance(ant_maze.torso_xy(state), start.goal.position)
        return task.distance(state, start.goal), geodesic, up_z(state)

    return _walk_from(task, walker, start.state, carry, step_key, steps, measure)[1]


def maze_walk(task, policy: ant_maze.WaypointPolicy, key: jax.Array,
              steps: int) -> tuple[jax.Array, jax.Array]:
    """`walk_to_goal`'s tuning score parts: (mean geodesic distance over the steps [] (m),
    tipped [] bool)."""
    _, geodesic, up = walk_to_goal(task, policy, key, steps)
    return jnp.mean(geodesic), jnp.min(up) < TIP_UP_Z


def tune(task, *, population: int = 48, pairs: int = 4, steps: int = 200,
         iterations: int = 16, seed: int = TUNE_SEED, log=print) -> dict:
    """The cross-entropy method over `TUNED` from `FIRST_GAIT` (see the module docstring)."""
    low = np.array([BOUNDS[n][0] for n in TUNED])
    high = np.array([BOUNDS[n][1] for n in TUNED])
    mean = np.array([getattr(FIRST_GAIT, n) for n in TUNED], float)
    std = 0.15 * (high - low)
    elite_size = population // 6

    @jax.jit
    def score(values, key):  # [P, len(TUNED)] -> [P]
        keys = jax.random.split(key, pairs)
        distance, tipped = jax.vmap(jax.vmap(
            lambda v, k: maze_walk(task, with_fields(FIRST_GAIT, v), k, steps),
            in_axes=(None, 0)), in_axes=(0, None))(values, keys)
        return -jnp.mean(distance, 1) - 3.0 * jnp.mean(tipped, 1)

    rng = np.random.default_rng(seed)
    key = jax.random.key(seed)
    history = []
    for i in range(iterations):
        key, score_key = jax.random.split(key)
        values = np.clip(mean + std * rng.standard_normal((population, len(TUNED))), low, high)
        values[0] = mean
        scores = np.asarray(score(jnp.asarray(values, jnp.float32), score_key))
        elite = values[np.argsort(-scores)[:elite_size]]
        mean, std = elite.mean(0), np.maximum(elite.std(0), 0.02 * (high - low))
        history.append({"iteration": i, "best_score": float(scores.max()),
                        "elite_mean": dict(zip(TUNED, mean.round(4).tolist(), strict=True))})
        log(f"  iteration {i}: best score {scores.max():.3f}, elite mean "
            f"{dict(zip(TUNED, mean.round(3).tolist(), strict=True))}", flush=True)
    return {"population": population, "pairs": pairs, "steps": steps,
            "iterations": iterations, "seed": seed, "bounds": BOUNDS,
            "elite_mean": dict(zip(TUNED, mean.round(4).tolist(), strict=True)), "history": history}


def gait_fields(policy: ant_maze.WaypointPolicy) -> dict:
    return {n: getattr(policy, n) for n in TUNED}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tune", action="store_true")
    parser.add_argument("--tune-iterations", type=int, default=16)
    parser.add_argument("--tune-only", action="store_true", help="tune, print, write nothing")
    parser.add_argument("--directions", type=int, default=64)
    parser.add_argument("--speed-steps", type=int, default=100)
    parser.add_argument("--split", choices=splits.SPLITS, default="val")
    parser.add_argument("--episodes", type=int, default=32)
    parser.add_argument("--explore-episodes", type=int, default=100)
    parser.add_argument("--json", default=os.path.join(HERE, "results", "gait_cpu.json"))
    args = parser.parse_args(argv)

    task = ant_maze.AntMaze()
    kept = {}
    if os.path.exists(args.json):
        with open(args.json) as f:
            kept = json.load(f)
    tuned = kept.get("tune")
    if args.tune:
        print("tuning the gait (cross-entropy method)", flush=True)
        t0 = time.perf_counter()
        tuned = {**tune(task, iterations=args.tune_iterations),
                 "seconds": time.perf_counter() - t0}
    if args.tune_only:
        return 0
    gaits = {"first": FIRST_GAIT, "shipped": ant_maze.WaypointPolicy()}
    rows = []
    for name, policy in gaits.items():
        print(f"{name} gait: {gait_fields(policy)}", flush=True)
        row = {"gait": name, "fields": gait_fields(policy),
               "speed": speed_of(task, policy, jax.random.key(1), directions=args.directions,
                                 steps=args.speed_steps),
               "to_goal": to_goal(task, policy, args.split, args.episodes),
               "explore": explore(task, policy, args.explore_episodes)}
        print(f"  {json.dumps({k: row[k] for k in ('speed', 'to_goal', 'explore')})}",
              flush=True)
        rows.append(row)
    results = {"format": "hjepa-gait", "rows": rows, "tune": tuned,
               "provenance": provenance.record(
                   configs={"gaits": {n: dataclasses.asdict(p) for n, p in gaits.items()}},
                   pairs={**splits.describe(args.split, splits.seed(args.split)),
                          "episodes": args.episodes})}
    atomic_write_json(args.json, results)
    atomic_write_bytes(os.path.splitext(args.json)[0] + ".md", markdown(results).encode())
    return 0


def markdown(results: dict) -> str:
    """The gaits as a Markdown table, then the provenance line."""
    lines = ["| gait | speed (m/s) | tipped (100 steps) | within 0.5 m by step 200 / 300 / 500 "
             "| at step 500 | data: farthest from start (m) | cells visited of 7 |",
             "|---|---|---|---|---|---|---|"]
    for r in results["rows"]:
        s, g, e = r["speed"], r["to_goal"], r["explore"]
        by = " / ".join(f"{100 * g['arrived_by'][k]:.0f}%" for k in ("200", "300", "500"))
        lines.append(f"| {r['gait']} | {s['speed_m_per_s']:.2f} | "
                     f"{100 * s['tipped_share']:.0f}% | {by} | "
                     f"{100 * g['within_at_end']:.0f}% | {e['max_from_start_m']:.1f} | "
                     f"{e['cells_visited']:.1f} |")
    p = results["provenance"]
    commit = provenance.commit_label(p)
    r = results["rows"][0]
    lines += ["", f"- speed over {r['speed']['directions']} directions x "
              f"{r['speed']['steps']} steps; to the goal on {r['to_goal']['episodes']} "
              f"{r['to_goal']['split']} pairs; data: {r['explore']['episodes']} episodes of "
              f"{r['explore']['steps']} steps; measured at {commit}, "
              f"{sysinfo.describe(p['hardware'])}."]
    if results.get("tune"):
        t = results["tune"]
        lines.append(f"- tuning: cross-entropy method, {t['population']} gaits x "
                     f"{t['pairs']} start/goal pairs x {t['steps']} steps, {t['iterations']} "
                     f"iterations; final elite mean {t['elite_mean']}.")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
