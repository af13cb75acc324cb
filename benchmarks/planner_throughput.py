"""Planner throughput: every planner against a minimal hand-written version of it.

Run with `python -m benchmarks.planner_throughput [--quick] [--json PATH] [--markdown PATH]`.

The problem is planning through a learned latent model: a residual 2x256 MLP predictor
(latent 64 + action 2 -> 256 -> 256 -> 64) over a horizon of 16, cost the squared distance
to a goal latent. Each planner (`planners.mppi`, `cem`, `gradient_descent`, `beam_search`)
is timed against a yardstick written here from scratch: the same algorithm at the same sizes,
batched by hand, without input checks or non-finite handling. Both run in this process on
the same device, so the ratio (planners / yardstick, lower is better) is the speed measure;
achieved FLOP/s are reported against a matmul peak measured in the same run.

For each planner: one problem (plans/s) and a batch of problems planned together with
`jax.vmap` (256 by default). Compile time is reported apart from steady state; steady state
is the median over repeats of a call followed by `block_until_ready`, and compile time is
measured ahead of time (`jax.jit(f).lower(...).compile()`). The same script runs
unchanged on CPU, GPU or TPU.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import functools
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import planners
from hjepa import provenance, sysinfo
from hjepa.io import atomic_write_bytes, atomic_write_json

LATENT, ACTION, HIDDEN = 64, 2, 256


# ----------------------------------------------------------------------------- the problem


def init_mlp(key: jax.Array) -> dict:
    """A residual MLP predictor (latent + action -> 256 -> 256 -> latent), random weights."""
    k1, k2, k3 = jax.random.split(key, 3)
    sizes = [(LATENT + ACTION, HIDDEN), (HIDDEN, HIDDEN), (HIDDEN, LATENT)]
    params = {}
    for i, (k, (fan_in, fan_out)) in enumerate(zip((k1, k2, k3), sizes, strict=True)):
        scale = (0.1 if i == 2 else 1.0) / np.sqrt(fan_in)  # small last layer: stable rollouts
        params[f"w{i}"] = scale * jax.random.normal(k, (fan_in, fan_out))
        params[f"b{i}"] = jnp.zeros((fan_out,))
    return params


def mlp_next(mlp: dict, latent: jax.Array, action: jax.Array) -> jax.Array:
    """Next latent [..., D] from latent [..., D] and action [..., A] (batched or not)."""
    h = jnp.concatenate([latent, action], axis=-1)
    h = jax.nn.relu(h @ mlp["w0"] + mlp["b0"])
    h = jax.nn.relu(h @ mlp["w1"] + mlp["b1"])
    return latent + h @ mlp["w2"] + mlp["b2"]


def latent_step(params: dict, latent: jax.Array, action: jax.Array):
    """`Problem.step`: (params, latent [D], action [A]) -> (next latent [D], cost [])."""
    next_latent = mlp_next(params["mlp"], latent, action)
    return next_latent, jnp.sum((next_latent - params["goal"]) ** 2)


def latent_terminal(params: dict, latent: jax.Array) -> jax.Array:
    return jnp.sum((latent - params["goal"]) ** 2)


STEP_FLOPS = 2 * ((LATENT + ACTION) * HIDDEN + HIDDEN * HIDDEN + HIDDEN * LATENT)  # matmuls


def make_problems(key: jax.Array, batch: int) -> planners.Problem:
    """`batch` problems sharing one MLP, each with its own start and goal latent."""
    mlp_key, start_key, goal_key = jax.random.split(key, 3)
    return planners.Problem(
        step=latent_step,
        terminal_cost=latent_terminal,
        params={"mlp": init_mlp(mlp_key), "goal": jax.random.normal(goal_key, (batch, LATENT))},
        init_state=jax.random.normal(start_key, (batch, LATENT)),
        action_low=-jnp.ones((ACTION,)),
        action_high=jnp.ones((ACTION,)),
    )


def batch_axes() -> planners.Problem:
    """vmap axes of `make_problems`: the MLP and bounds are shared, starts and goals batched."""
    return planners.Problem(step=latent_step, terminal_cost=latent_terminal,
                            params={"mlp": None, "goal": 0}, init_state=0,
                            action_low=None, action_high=None)


def take(problems: planners.Problem, index: int) -> planners.Problem:
    return problems.replace(params={**problems.params, "goal": problems.params["goal"][index]},
                            init_state=problems.init_state[index])


# ----------------------------------------------------------------------------- yardsticks
# Minimal hand-written versions of each algorithm, batched by hand over candidates
# ([N, D] matmuls), for one problem. No input checks, no NaN handling.


def rollout_costs(mlp, goal, start, actions):
    """Total costs [N] of action sequences [N, H, A] from latent `start` [D]."""

    def body(latent, action):  # [N, D], [N, A]
        latent = mlp_next(mlp, latent, action)
        return latent, jnp.sum((latent - goal) ** 2, axis=-1)

    start = jnp.broadcast_to(start, (actions.shape[0], start.shape[-1]))
    final, costs = jax.lax.scan(body, start, jnp.swapaxes(actions, 0, 1))
    return jnp.sum(costs, axis=0) + jnp.sum((final - goal) ** 2, axis=-1)


def _keep(best, best_cost, candidates, costs):
    i = jnp.argmin(costs)
    better = costs[i] < best_cost
    return jnp.where(better, candidates[i], best), jnp.where(better, costs[i], best_cost)


@functools.partial(jax.jit, static_argnames=("num_samples", "iterations"))
def mppi_yardstick(mlp, goal, start, mean, key, *, num_samples, iterations,
                   temperature=0.1, noise_std=0.3):
    def iteration(carry, k):
        mean, best, best_cost = carry
        noise = noise_std * jax.random.normal(k, (num_samples, *mean.shape))
        samples = jnp.clip(mean + noise.at[0].set(0.0), -1.0, 1.0)
        costs = rollout_costs(mlp, goal, start, samples)
        best, best_cost = _keep(best, best_cost, samples, costs)
        excess = costs - jnp.min(costs)
        weights = jax.nn.softmax(-excess / (temperature * jnp.std(excess) + 1e-12))
        return (jnp.clip(jnp.einsum("n,nha->ha", weights, samples), -1.0, 1.0), best,
                best_cost), best_cost

    (mean, best, best_cost), _ = jax.lax.scan(
        iteration, (mean, mean, jnp.inf), jax.random.split(key, iterations))
    return _keep(best, best_cost, mean[None], rollout_costs(mlp, goal, start, mean[None]))


@functools.partial(jax.jit, static_argnames=("num_samples", "num_elites", "iterations"))
def cem_yardstick(mlp, goal, start, mean, key, *, num_samples, num_elites, iterations,
                  noise_std=0.5, min_std=0.05):
    def iteration(carry, k):
        mean, std, best, best_cost = carry
        noise = jax.random.normal(k, (num_samples, *mean.shape))
        samples = jnp.clip(mean + std * noise.at[0].set(0.0), -1.0, 1.0)
        costs = rollout_costs(mlp, goal, start, samples)
        best, best_cost = _keep(best, best_cost, samples, costs)
        _, index = jax.lax.top_k(-costs, num_elites)
        elites = samples[index]
        mean = jnp.clip(jnp.mean(elites, axis=0), -1.0, 1.0)
        std = jnp.maximum(jnp.std(elites, axis=0), min_std)
        return (mean, std, best, best_cost), best_cost

    std = jnp.full_like(mean, noise_std)
    (mean, _, best, best_cost), _ = jax.lax.scan(
        iteration, (mean, std, mean, jnp.inf), jax.random.split(key, iterations))
    return _keep(best, best_cost, mean[None], rollout_costs(mlp, goal, start, mean[None]))


@functools.partial(jax.jit, static_argnames=("num_candidates", "iterations"))
def gd_yardstick(mlp, goal, start, init, key, *, num_candidates, iterations,
                 learning_rate=0.05, noise_std=0.3):
    noise = noise_std * jax.random.normal(key, (num_candidates, *init.shape))
    x = jnp.clip(init + noise.at[0].set(0.0), -1.0, 1.0)  # [C, H, A]
    value_and_grad = jax.value_and_grad(
        lambda x: (lambda c: (jnp.sum(c), c))(rollout_costs(mlp, goal, start, x)), has_aux=True)

    def iteration(carry, i):  # hand-written Adam, projected
        x, m, v, best, best_cost = carry
        (_, costs), g = value_and_grad(x)
        best, best_cost = _keep(best, best_cost, x, costs)
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g**2
        step = (m / (1 - 0.9 ** (i + 1))) / (jnp.sqrt(v / (1 - 0.999 ** (i + 1))) + 1e-8)
        return (jnp.clip(x - learning_rate * step, -1.0, 1.0), m, v, best, best_cost), best_cost

    zeros = jnp.zeros_like(x)
    (x, _, _, best, best_cost), _ = jax.lax.scan(
        iteration, (x, zeros, zeros, init, jnp.inf), jnp.arange(iterations))
    return _keep(best, best_cost, x, rollout_costs(mlp, goal, start, x))


def _grid(branching: int) -> jax.Array:
    """The beam's automatic grid over [-1, 1]²: the largest g with g² <= branching - 1."""
    g = int(np.floor(np.sqrt(branching - 1) + 1e-9))
    ticks = np.linspace(-1.0, 1.0, g) if g > 1 else np.zeros(1)
    return jnp.asarray(np.stack(np.meshgrid(ticks, ticks, indexing="ij"), -1).reshape(-1, 2),
                       jnp.float32)


@functools.partial(jax.jit, static_argnames=("beam_width", "branching", "iterations"))
def beam_yardstick(mlp, goal, start, init, key, *, beam_width, branching, iterations,
                   noise_std=0.3):
    horizon = init.shape[0]
    grid = _grid(branching)  # [M, A]
    num_random = branching - grid.shape[0] - 1

    def search(centre, k):
        def depth(carry, inputs):
            latents, so_far, seqs = carry  # [W, D], [W], [W, H, A]
            t, kt = inputs
            noise = noise_std * jax.random.normal(kt, (beam_width, num_random, ACTION))
            cands = jnp.concatenate([
                jnp.broadcast_to(grid, (beam_width, *grid.shape)),
                jnp.broadcast_to(centre[t], (beam_width, 1, ACTION)),
                centre[t] + noise], axis=1)
            cands = jnp.clip(cands, -1.0, 1.0)  # [W, B, A]
            latents = jnp.broadcast_to(latents[:, None], (beam_width, branching, LATENT))
            nxt = mlp_next(mlp, latents, cands)  # [W, B, D]
            prefix = so_far[:, None] + jnp.sum((nxt - goal) ** 2, -1)
            score = prefix + jnp.sum((nxt - goal) ** 2, -1)
            neg, index = jax.lax.top_k(-score.reshape(-1), beam_width)
            parent = index // branching
            seqs = seqs[parent].at[:, t].set(cands.reshape(-1, ACTION)[index])
            return (nxt.reshape(-1, LATENT)[index], prefix.reshape(-1)[index], seqs), -neg

        so_far = jnp.full((beam_width,), jnp.inf).at[0].set(0.0)
        carry = (jnp.broadcast_to(start, (beam_width, LATENT)), so_far,
                 jnp.broadcast_to(centre, (beam_width, *centre.shape)))
        (_, _, seqs), scores = jax.lax.scan(
            depth, carry, (jnp.arange(horizon), jax.random.split(k, horizon)))
        return seqs, scores[-1]

    def round_(carry, k):
        best, best_cost = carry
        seqs, costs = search(best, k)
        best, best_cost = _keep(best, best_cost, seqs, costs)
        return (best, best_cost), best_cost

    best_cost = rollout_costs(mlp, goal, start, init[None])[0]
    (best, best_cost), _ = jax.lax.scan(round_, (init, best_cost),
                                        jax.random.split(key, iterations))
    return best, best_cost


# ----------------------------------------------------------------------------- the suite


@dataclasses.dataclass(frozen=True)
class Case:
    """One planner at one size, its yardstick, and its cost in predictor steps."""

    name: str
    planner: Callable
    options: tuple  # sorted (name, value) pairs
    yardstick: Callable
    yardstick_options: tuple
    steps_per_plan: int  # predictor evaluations (forward-equivalents) per plan


def cases(quick: bool, horizon: int) -> list[Case]:
    if quick:
        s, i, gd_c, gd_i, beam_w, beam_b = 128, 3, 8, 12, 16, 8
    else:  # canonical: ~6k rollouts (forward-equivalents) per plan for each planner
        s, i, gd_c, gd_i, beam_w, beam_b = 1024, 6, 32, 64, 64, 16
    elites = max(s // 16, 1)
    return [
        Case("mppi", planners.mppi, (("iterations", i), ("num_samples", s)),
             mppi_yardstick, (("iterations", i), ("num_samples", s)),
             (s * i + 1) * horizon),
        Case("cem", planners.cem,
             (("iterations", i), ("num_elites", elites), ("num_samples", s)),
             cem_yardstick, (("iterations", i), ("num_elites", elites), ("num_samples", s)),
             (s * i + 1) * horizon),
        Case("gradient_descent", planners.gradient_descent,
             (("iterations", gd_i), ("num_candidates", gd_c)),
             gd_yardstick, (("iterations", gd_i), ("num_candidates", gd_c)),
             (3 * gd_c * gd_i + gd_c) * horizon),  # backward ~ 2 forwards
        Case("beam_search", planners.beam_search,
             (("beam_width", beam_w), ("branching", beam_b), ("iterations", i)),
             beam_yardstick, (("beam_width", beam_w), ("branching", beam_b), ("iterations", i)),
             (beam_w * beam_b * i + 1) * horizon),
    ]


def describe(case: Case) -> str:
    return ", ".join(f"{k}={v}" for k, v in case.options)


def library_fns(case: Case, horizon: int) -> tuple[Callable, Callable]:
    """(one problem, batch of problems) through the public `planners` API."""
    options = dict(case.options)
    init = jnp.zeros((horizon, ACTION))

    def single(problem, key):
        return case.planner(problem, init, key, **options).actions

    batched = jax.jit(jax.vmap(single, in_axes=(batch_axes(), 0)))
    return single, batched


def yardstick_fns(case: Case, horizon: int) -> tuple[Callable, Callable]:
    options = dict(case.yardstick_options)
    init = jnp.zeros((horizon, ACTION))

    def single(problem, key):
        mlp, goal = problem.params["mlp"], problem.params["goal"]
        return case.yardstick(mlp, goal, problem.init_state, init, key, **options)[0]

    batched = jax.jit(jax.vmap(single, in_axes=(batch_axes(), 0)))
    return single, batched


def _timed(fn: Callable, args: tuple) -> float:
    t0 = time.perf_counter()
    jax.block_until_ready(fn(*args))
    return time.perf_counter() - t0


def time_fn(fn: Callable, args_list: list[tuple]) -> tuple[float, float]:
    """(first call incl. compile, median of the later calls) in seconds."""
    first = _timed(fn, args_list[0])
    return first, statistics.median(_timed(fn, args) for args in args_list[1:])


def compile_seconds(fn: Callable, args: tuple) -> float:
    """Seconds to trace and compile `fn` for `args` ahead of time (nothing runs)."""
    t0 = time.perf_counter()
    jax.jit(fn).lower(*args).compile()
    return time.perf_counter() - t0


def time_pair(fn: Callable, other: Callable, args_list: list[tuple]) -> tuple[float, ...]:
    """Compile time and median run time of two functions, their timed calls interleaved so
    that drifting machine load hits both alike: (compile, median) of `fn`, then of `other`."""
    compiled, other_compiled = (compile_seconds(f, args_list[0]) for f in (fn, other))
    _timed(fn, args_list[0]), _timed(other, args_list[0])  # warm up
    times, other_times = [], []
    for args in args_list[1:]:
        times.append(_timed(fn, args))
        other_times.append(_timed(other, args))
    return compiled, statistics.median(times), other_compiled, statistics.median(other_times)


def matmul_peak(sizes: tuple[int, ...], repeats: int) -> tuple[float, int]:
    """(FLOP/s, size): the best over `sizes` of the median FLOP/s of a jitted float32
    [size, size] @ [size, size] (default precision, as the planners use)."""
    best = (0.0, sizes[0])
    for size in sizes:
        a = jax.random.normal(jax.random.key(0), (size, size))
        b = jax.random.normal(jax.random.key(1), (size, size))
        _, seconds = time_fn(jax.jit(jnp.matmul), [(a, b)] * (repeats + 1))
        best = max(best, (2 * size**3 / seconds, size))
    return best


def _load_1min() -> float | None:
    load = sysinfo.load_average()
    return load[0] if load else None


def environment() -> dict:
    return {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "jax": jax.__version__,
        "backend": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()],
        "device_kind": jax.devices()[0].device_kind,
        "cpu_model": sysinfo.cpu_model(),
        "cpu_cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_1min": _load_1min(),
    }


def run_case(case: Case, *, batch: int, horizon: int, repeats: int, batched_repeats: int,
             key: jax.Array, peak: float, do_batched: bool = True) -> list[dict]:
    problems = make_problems(key, batch)
    one = take(problems, 0)
    keys = jax.random.split(jax.random.key(1), max(repeats, batched_repeats) + 1)
    batch_keys = [jax.random.split(k, batch) for k in keys[:batched_repeats + 1]]
    lib_single, lib_batched = library_fns(case, horizon)
    ref_single, ref_batched = yardstick_fns(case, horizon)
    rows = []
    modes = [("single", 1, lib_single, ref_single, [(one, k) for k in keys[:repeats + 1]])]
    if do_batched:
        modes.append(("batched", batch, lib_batched, ref_batched,
                      [(problems, k) for k in batch_keys]))
    for mode, size, lib, ref, args in modes:
        lib_compile, lib_s, ref_compile, ref_s = time_pair(lib, ref, args)
        flops = case.steps_per_plan * STEP_FLOPS * size
        rows.append({
            "planner": case.name,
            "mode": mode,
            "problems": size,
            "options": dict(case.options),
            "horizon": horizon,
            "repeats": len(args) - 1,
            "planners_s": lib_s,
            "yardstick_s": ref_s,
            "ratio": lib_s / ref_s,
            "planners_compile_s": lib_compile,
            "yardstick_compile_s": ref_compile,
            "plans_per_s": size / lib_s,
            "yardstick_plans_per_s": size / ref_s,
            "gflop_per_plan": case.steps_per_plan * STEP_FLOPS / 1e9,
            "gflops": flops / lib_s / 1e9,
            "yardstick_gflops": flops / ref_s / 1e9,
            "fraction_of_peak": flops / lib_s / peak,
        })
        print(format_row(rows[-1]), flush=True)
    return rows


HEADER = ("| planner | problems | options | planners (ms) | yardstick (ms) | ratio | plans/s "
          "| GFLOP/s | % matmul peak | compile planners / yardstick (s) |\n"
          "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|")


def format_row(row: dict) -> str:
    options = ", ".join(f"{k}={v}" for k, v in row["options"].items())
    return (f"| {row['planner']} | {row['problems']} | {options}, H={row['horizon']} "
            f"| {1e3 * row['planners_s']:.1f} | {1e3 * row['yardstick_s']:.1f} "
            f"| {row['ratio']:.3f} | {row['plans_per_s']:.3g} | {row['gflops']:.1f} "
            f"| {100 * row['fraction_of_peak']:.1f} "
            f"| {row['planners_compile_s']:.1f} / {row['yardstick_compile_s']:.1f} |")


def markdown(result: dict) -> str:
    env = result["environment"]
    lines = [
        f"# Planner throughput ({env['backend']})",
        "",
        f"- date: {env['date']}; jax {env['jax']}; python {env['python']}",
        f"- devices: {', '.join(env['devices'])} ({env['device_kind']})",
        f"- host: {env['cpu_model']}, {env['cpu_cores']} CPU cores; {env['platform']}; "
        f"load average {env['load_average_1min']:.2f} at start, "
        f"{env['load_average_1min_end']:.2f} at end (other processes share the machine)",
        f"- matmul peak: {result['matmul_peak_flops'] / 1e9:.1f} GFLOP/s (jitted float32 "
        f"{result['matmul_size']}², median; the best of several sizes, measured at the start "
        "and at the end)",
        f"- problem: residual MLP predictor {LATENT}+{ACTION} -> {HIDDEN} -> {HIDDEN} -> "
        f"{LATENT}, {STEP_FLOPS} FLOP per step; horizon {result['horizon']}; "
        f"repeats {result['repeats']} single / {result['batched_repeats']} batched (median)"
        f"{'; --quick' if result['quick'] else ''}",
        "- ratio = planners / hand-written yardstick, same process (lower is better)",
        "",
        HEADER,
        *[format_row(row) for row in result["rows"]],
        "",
    ]
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes and repeats (CI)")
    parser.add_argument("--json", metavar="PATH", help="write the results as JSON")
    parser.add_argument("--markdown", metavar="PATH", help="write the table as Markdown")
    parser.add_argument("--batch", type=int, default=None, help="problems batched (256)")
    parser.add_argument("--repeats", type=int, default=None, help="timed calls per measure")
    parser.add_argument("--batched-repeats", type=int, default=None,
                        help="timed calls per batched measure (default: --repeats)")
    parser.add_argument("--planners", default="mppi,cem,gradient_descent,beam_search",
                        help="comma-separated planners to run")
    parser.add_argument("--no-batched", action="store_true", help="only single problems")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None, *, only: tuple[str, ...] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    horizon = 8 if args.quick else 16
    batch = args.batch or (8 if args.quick else 256)
    repeats = args.repeats or (3 if args.quick else 5)
    batched_repeats = args.batched_repeats or repeats
    names = only or tuple(args.planners.split(","))
    env = environment()
    print(f"jax {env['jax']} on {env['devices']} ({env['cpu_model']}, {env['cpu_cores']} cores)",
          flush=True)
    sizes = (512,) if args.quick else ((512, 1024, 2048) if env["backend"] == "cpu"
                                       else (4096, 8192))
    peak, size = matmul_peak(sizes, repeats)
    print(f"matmul peak: {peak / 1e9:.1f} GFLOP/s (float32 {size}²)", flush=True)
    print(HEADER, flush=True)
    rows = []
    for case in cases(args.quick, horizon):
        if case.name in names:
            rows += run_case(case, batch=batch, horizon=horizon, repeats=repeats,
                             batched_repeats=batched_repeats, key=jax.random.key(0), peak=peak,
                             do_batched=not args.no_batched)
    env["load_average_1min_end"] = _load_1min()
    peak_end, size_end = matmul_peak(sizes, repeats)
    print(f"matmul peak at the end: {peak_end / 1e9:.1f} GFLOP/s (float32 {size_end}²)",
          flush=True)
    if peak_end > peak:  # the fraction of peak is against the higher of the two measures
        for row in rows:
            row["fraction_of_peak"] *= peak / peak_end
        peak, size = peak_end, size_end
    result = {"environment": env, "quick": args.quick, "horizon": horizon, "batch": batch,
              "repeats": repeats, "batched_repeats": batched_repeats, "matmul_size": size,
              "matmul_peak_flops": peak, "rows": rows,
              "provenance": provenance.record(configs={"cases": [
                  {"planner": r["planner"], "options": r["options"], "mode": r["mode"]}
                  for r in rows]})}
    if args.json:
        atomic_write_json(args.json, result)
    if args.markdown:
        atomic_write_bytes(args.markdown, markdown(result).encode())
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
