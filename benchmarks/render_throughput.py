"""Renderer throughput: top-down images per second against physics steps per second.

    python -m benchmarks.render_throughput [--size 32 64] [--batch 256] [--repeats 5]
        [--tasks reacher,...] [--out benchmarks/results/render_throughput_cpu.json]

For every task registered in `hjepa.tasks` whose instance exposes `system` and `camera` (and,
optionally, `visible` and `colors`; tasks without them are listed as skipped, with the reason),
at batch B and each image size S:

- env steps/s: `task.step` vmapped over B states (random actions in the bounds), jitted;
- images/s: `render.render(task.system, state.x, camera)` vmapped over the same B states,
  jitted, with the task's camera at size S and its visibility mask and colours;
- ratio = images/s / env steps/s: the yardstick is the physics, measured in the same run.
  Above 1, drawing a state costs less than stepping to it, so rendering every step of a
  reward-free data collection at most doubles its time.

Compile time (ahead of time, `jax.jit(f).lower(...).compile()`) is reported apart from steady
state, which is the median over repeats of a call followed by `block_until_ready`, after a
warm-up call; a task's step and render calls take turns, so drifting machine load (other
processes) hits them alike and their ratio stays meaningful. Writes JSON to --out and a
Markdown table beside it (same name, .md), and prints the table. The same script runs
unchanged on CPU, GPU or TPU.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
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

from hjepa import sysinfo
from hjepa import tasks as tasks_lib
from hjepa.tasks import render


def _timed(fn: Callable, args: tuple) -> float:
    t0 = time.perf_counter()
    jax.block_until_ready(fn(*args))
    return time.perf_counter() - t0


def compile_ahead(fn: Callable, args: tuple) -> tuple[Callable, float]:
    """(the compiled `jax.jit(fn)` for `args`, seconds it took to trace and compile)."""
    t0 = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    return compiled, time.perf_counter() - t0


def interleaved(calls: list[tuple[Callable, tuple]], repeats: int) -> list[float]:
    """Median seconds per call of each (compiled function, args), after a warm-up call each.
    The timed calls take turns, so that drifting machine load hits all of them alike."""
    for fn, args in calls:
        _timed(fn, args)
    times = [[] for _ in calls]
    for _ in range(repeats):
        for t, (fn, args) in zip(times, calls, strict=True):
            t.append(_timed(fn, args))
    return [statistics.median(t) for t in times]


def _load_1min() -> float | None:
    load = sysinfo.load_average()
    return load[0] if load else None


def environment() -> dict:
    return {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "backend": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()],
        "device_kind": jax.devices()[0].device_kind,
        "cpu_model": sysinfo.cpu_model(),
        "cpu_cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": sysinfo.versions(),
        "load_average_1min": _load_1min(),
    }


def renderable(name: str):
    """(task, None) for a task exposing `system` and `camera`, else (None, why not)."""
    try:
        task = tasks_lib.make(name, "state")
    except Exception as error:  # a task being written may fail to build: list it, go on
        return None, f"make failed: {type(error).__name__}: {error}"
    missing = [a for a in ("system", "camera") if not hasattr(task, a)]
    if missing:
        return None, f"no attribute {', '.join(missing)}"
    return task, None


def geom_counts(task) -> dict:
    """Drawn geoms of the task's system: fixed to the world and moving."""
    sys_ = task.system
    visible = getattr(task, "visible", None)
    visible = np.ones(sys_.ngeom, bool) if visible is None else np.asarray(visible)
    drawn = visible & np.isin(np.asarray(sys_.geom_type), render._DRAWN)
    fixed = np.asarray(sys_.geom_bodyid) == 0
    return {"geoms": int(sys_.ngeom), "drawn_fixed": int((drawn & fixed).sum()),
            "drawn_moving": int((drawn & ~fixed).sum())}


def run_task(task, *, sizes: tuple[int, ...], batch: int, repeats: int) -> list[dict]:
    key_reset, key_action = jax.random.split(jax.random.key(0))
    states = jax.jit(jax.vmap(task.reset))(jax.random.split(key_reset, batch)).state
    actions = jax.random.uniform(key_action, (batch, task.action_size),
                                 minval=jnp.asarray(task.action_low),
                                 maxval=jnp.asarray(task.action_high))
    step, step_compile = compile_ahead(jax.vmap(task.step), (states, actions))
    calls, compile_s = [(step, (states, actions))], [step_compile]
    visible, colors = getattr(task, "visible", None), getattr(task, "colors", None)
    for size in sizes:
        camera = dataclasses.replace(task.camera, size=size)

        def draw(x, camera=camera):
            return render.render(task.system, x, camera, visible=visible, colors=colors)

        draw_batch, seconds = compile_ahead(jax.vmap(draw), (states.x,))
        calls.append((draw_batch, (states.x,)))
        compile_s.append(seconds)
    step_s, *render_s = interleaved(calls, repeats)
    rows = []
    for size, seconds, compiled in zip(sizes, render_s, compile_s[1:], strict=True):
        rows.append({
            "task": task.name, "size": size, "batch": batch, "repeats": repeats,
            **geom_counts(task),
            "step_s": step_s, "steps_per_s": batch / step_s, "step_compile_s": compile_s[0],
            "render_s": seconds, "images_per_s": batch / seconds, "render_compile_s": compiled,
            "ratio": step_s / seconds,
        })
        print(format_row(rows[-1]), flush=True)
    return rows


HEADER = ("| task | S | B | drawn geoms (fixed + moving) | env steps/s | images/s "
          "| images / steps | ms per batch (step / render) | compile s (step / render) |\n"
          "|---|---:|---:|---:|---:|---:|---:|---:|---:|")


def format_row(row: dict) -> str:
    return (f"| {row['task']} | {row['size']} | {row['batch']} "
            f"| {row['drawn_fixed']} + {row['drawn_moving']} "
            f"| {row['steps_per_s']:.3g} | {row['images_per_s']:.3g} | {row['ratio']:.2f} "
            f"| {1e3 * row['step_s']:.1f} / {1e3 * row['render_s']:.1f} "
            f"| {row['step_compile_s']:.1f} / {row['render_compile_s']:.1f} |")


def markdown(result: dict) -> str:
    env = result["environment"]
    versions = ", ".join(f"{k} {v}" for k, v in env["versions"].items() if v)
    lines = [
        f"# Renderer throughput ({env['backend']})",
        "",
        f"- date: {env['date']}; {versions}; python {env['python']}",
        f"- devices: {', '.join(env['devices'])} ({env['device_kind']})",
        f"- host: {env['cpu_model']}, {env['cpu_cores']} CPU cores; {env['platform']}; "
        f"load average {env['load_average_1min']:.2f} at start, "
        f"{env['load_average_1min_end']:.2f} at end (other processes share the machine)",
        f"- batch {result['batch']}; steady state = median of {result['repeats']} calls after "
        "a warm-up, `block_until_ready`, the step and render calls of a task taking turns; "
        "compile time ahead of time, apart",
        "- env steps/s: `jit(vmap(task.step))`; images/s: `jit(vmap(render.render))` of the "
        "same states with the task's camera (at size S), mask and colours; "
        "images / steps = images/s ÷ env steps/s (the physics is the yardstick)",
        "",
        HEADER,
        *[format_row(row) for row in result["rows"]],
        "",
    ]
    if result["skipped"]:
        lines += ["Skipped tasks:", ""]
        lines += [f"- {name}: {why}" for name, why in result["skipped"].items()]
        lines.append("")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, nargs="+", default=[32, 64],
                        help="image sizes S (default: 32 64)")
    parser.add_argument("--batch", type=int, default=256, help="states per batch (256)")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per measure (5)")
    parser.add_argument("--tasks", default=None,
                        help="comma-separated task names (default: every registered task)")
    parser.add_argument("--out", default=f"benchmarks/results/render_throughput_"
                        f"{jax.default_backend()}.json", help="JSON path; Markdown beside it")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    env = environment()
    print(f"jax {env['versions']['jax']} on {env['devices']} ({env['cpu_model']}, "
          f"{env['cpu_cores']} cores)", flush=True)
    names = args.tasks.split(",") if args.tasks else list(tasks_lib.names())
    rows, skipped = [], {}
    print(HEADER, flush=True)
    for name in names:
        task, why = renderable(name)
        if task is None:
            skipped[name] = why
            print(f"skipped {name}: {why}", flush=True)
            continue
        rows += run_task(task, sizes=tuple(args.size), batch=args.batch, repeats=args.repeats)
    env["load_average_1min_end"] = _load_1min()
    result = {"environment": env, "batch": args.batch, "repeats": args.repeats,
              "sizes": list(args.size), "rows": rows, "skipped": skipped}
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            json.dump(result, f, indent=2)
        with open(os.path.splitext(args.out)[0] + ".md", "w") as f:
            f.write(markdown(result))
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
