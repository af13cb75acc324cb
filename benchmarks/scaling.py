"""Planning throughput against device count: MPPI plans of many episodes split over a mesh.

Run with ``python -m benchmarks.scaling [--quick] [--devices 1,2,4,8] [--out PATH]``.

Each row plans a batch of `episodes` latent-space problems (a JEPA world model with random
weights; the cost of a plan does not depend on the weights) with `planners.mppi`, split over
the first d devices with `hjepa.distributed.shard_vmap`. The yardstick, measured in the same run,
is the same batch under a plain ``jit(vmap(mppi))`` on one device; every row reports its speed
as a ratio to it. Compile time is reported apart; the run time is the median of repeats after
a warm-up call, with ``block_until_ready``.

On CPU without accelerators, 8 virtual devices are made from the host
(``--xla_force_host_platform_device_count``, set here before jax is imported): they share the
machine's cores, so the rows show that the sharded code path works and what it costs, not a
speed-up. On a GPU or TPU host the rows are real devices.

Writes a Markdown table (and JSON beside it) to ``--out`` (default
``benchmarks/results/scaling_<platform>.md``) and prints the table.
"""

from __future__ import annotations

import os
import sys

if "jax" not in sys.modules and "xla_force_host_platform_device_count" not in os.environ.get(
        "XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                               + " --xla_force_host_platform_device_count=8").strip()

import argparse  # noqa: E402
import functools  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

import planners  # noqa: E402
from hjepa import distributed, sysinfo  # noqa: E402
from hjepa import model as model_lib  # noqa: E402
from hjepa.model import ModelConfig  # noqa: E402

FULL = dict(episodes=1024, num_samples=256, horizon=16, iterations=4, hidden=256, latent=32,
            repeats=5)
QUICK = dict(episodes=64, num_samples=128, horizon=8, iterations=2, hidden=64, latent=16,
             repeats=15)


def machine() -> str:
    """The machine in words (`hjepa.sysinfo.describe`), noting virtual CPU devices."""
    hw = sysinfo.hardware()
    text = sysinfo.describe(hw)
    if hw["platform"] == "cpu":
        text += " at the start (host platform, virtual devices share the cores)"
    return text


def versions() -> dict:
    return sysinfo.versions()


def problems(sizes: dict):
    """A batch of `episodes` latent problems for a reacher-sized model (obs 5, actions 2)."""
    config = ModelConfig(obs_shape=(5,), action_size=2, latent_size=sizes["latent"],
                         encoder_hidden=(sizes["hidden"],) * 2,
                         predictor_hidden=(sizes["hidden"],) * 2)
    params = jax.jit(functools.partial(model_lib.init, config))(jax.random.key(0))
    obs_key, goal_key, plan_key = jax.random.split(jax.random.key(1), 3)
    n = sizes["episodes"]
    obs = jax.random.normal(obs_key, (n, 5))
    goals = jax.random.normal(goal_key, (n, 5))
    low, high = -jnp.ones(2), jnp.ones(2)
    batch = jax.jit(jax.vmap(lambda o, g: model_lib.problem(config, params, o, g, low, high)))(
        obs, goals)
    return batch, jnp.zeros((sizes["horizon"], 2)), jax.random.split(plan_key, n)


def timed(fn, args, repeats: int) -> dict:
    t0 = time.perf_counter()
    compiled = fn.lower(*args).compile()
    compile_s = time.perf_counter() - t0
    jax.block_until_ready(compiled(*args))  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = jax.block_until_ready(compiled(*args))
        times.append(time.perf_counter() - t0)
    return {"compile_s": compile_s, "median_s": statistics.median(times), "output": out}


def run(sizes: dict, device_counts: list[int]) -> dict:
    batch, init, keys = problems(sizes)
    mppi = functools.partial(planners.mppi, num_samples=sizes["num_samples"],
                             iterations=sizes["iterations"])
    episodes = sizes["episodes"]
    yard = timed(jax.jit(jax.vmap(mppi, in_axes=(0, None, 0))), (batch, init, keys),
                 sizes["repeats"])
    rows = [{"devices": 1, "path": "jit(vmap) (yardstick)", "compile_s": yard["compile_s"],
             "median_s": yard["median_s"], "plans_per_s": episodes / yard["median_s"],
             "ratio": 1.0, "max_action_diff": 0.0}]
    available = jax.devices()
    for count in device_counts:
        if count > len(available) or episodes % count:
            continue
        mesh = distributed.make_mesh(f"data={count}", devices=available[:count])
        fn = distributed.shard_vmap(mppi, mesh, in_axes=(0, None, 0))
        args = (distributed.put_global(batch, distributed.data_sharding(mesh)),
                distributed.put_global(init, distributed.replicated(mesh)),
                distributed.put_global(keys, distributed.data_sharding(mesh)))
        result = timed(fn, args, sizes["repeats"])
        diff = float(jnp.max(jnp.abs(distributed.to_host(result["output"].actions)
                                     - yard["output"].actions)))
        rows.append({"devices": count, "path": "distributed.shard_vmap",
                     "compile_s": result["compile_s"], "median_s": result["median_s"],
                     "plans_per_s": episodes / result["median_s"],
                     "ratio": yard["median_s"] / result["median_s"], "max_action_diff": diff})
    return {"machine": machine(), "platform": jax.devices()[0].platform, "versions": versions(),
            "sizes": sizes, "rows": rows}


def markdown(result: dict) -> str:
    s = result["sizes"]
    lines = [
        "# Planning throughput against device count",
        "",
        f"Machine: {result['machine']}.  ",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in result["versions"].items()) + ".  ",
        f"Workload: {s['episodes']} latent-space problems per batch, MPPI with "
        f"{s['num_samples']} samples x {s['iterations']} iterations, horizon {s['horizon']}, "
        f"predictor MLP {s['hidden']}x{s['hidden']}, latent {s['latent']}; median of "
        f"{s['repeats']} runs after a warm-up.  ",
        "ratio = speed / speed of the yardstick (plain jit(vmap) on one device, same run); "
        "max |da| = largest difference of the planned actions from the yardstick's.",
        "",
        "| devices | path | compile s | batch s | plans/s | ratio | max abs da |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in result["rows"]:
        lines.append(f"| {r['devices']} | {r['path']} | {r['compile_s']:.2f} | "
                     f"{r['median_s']:.4f} | {r['plans_per_s']:.1f} | {r['ratio']:.2f} | "
                     f"{r['max_action_diff']:.1e} |")
    if result["platform"] == "cpu":
        lines += ["", f"The devices are virtual CPU devices sharing the host's {os.cpu_count()} "
                  "cores: the rows show the sharded code path and its overhead. XLA runs one "
                  "device's program on one thread, so several virtual devices can use several "
                  "cores; no speed-up beyond the core count is possible."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scaling", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes (CPU)")
    parser.add_argument("--devices", default="1,2,4,8", help="device counts (default: %(default)s)")
    parser.add_argument("--episodes", type=int, default=None, help="problems per batch")
    parser.add_argument("--out", default=None, help="Markdown output (JSON beside it)")
    args = parser.parse_args(argv)
    sizes = dict(QUICK if args.quick else FULL)
    if args.episodes is not None:
        sizes["episodes"] = args.episodes
    counts = [int(c) for c in args.devices.split(",") if c.strip()]
    result = run(sizes, counts)
    out = args.out or os.path.join(os.path.dirname(__file__), "results",
                                   f"scaling_{result['platform']}.md")
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    text = markdown(result)
    with open(out, "w") as f:
        f.write(text)
    with open(os.path.splitext(out)[0] + ".json", "w") as f:
        json.dump(result, f, indent=1)
    print(text)
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
