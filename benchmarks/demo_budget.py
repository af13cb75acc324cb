"""Choosing the demo's sizes on `val` pairs: training length and MPPI budget.

    python -m benchmarks.demo_budget [--out /tmp/demo-budget] [--episodes 64]

Collects and trains exactly as `hjepa demo` does (its dataset, model and training config,
checkpoints every 1000 steps), then plans the `val` pairs (seed 10000; never the `test` pairs
the demo reports) with the learned model of each kept checkpoint and each candidate MPPI
budget, and times each. The demo's defaults are chosen from this table: the cheapest
setting whose `val` success stays at the full budget's. Writes
`benchmarks/results/demo_budget_val_<platform>.json` (every row with its provenance).
"""

from __future__ import annotations

import argparse
import os
import time

import jax

import planners
from hjepa import checkpoint, demo, evaluate, pipeline, provenance, splits, stats, sysinfo
from hjepa.configs import ModelConfig
from hjepa.io import atomic_write_json
from hjepa.tasks import make

HERE = os.path.dirname(os.path.abspath(__file__))

# (num_samples, iterations, horizon): the demo's full budget first, then cheaper ones.
BUDGETS = ((256, 4, 16), (256, 2, 16), (128, 4, 16), (128, 2, 16), (128, 3, 12))


def trained_params(config: demo.DemoConfig, out: str) -> tuple[ModelConfig, dict]:
    """The demo's model trained as `hjepa demo` trains it: (model config, {step: params}) for
    every kept checkpoint."""
    task = make(config.task)
    model_config = ModelConfig(
        obs_shape=tuple(task.obs_shape), action_size=task.action_size,
        latent_size=config.latent_size, encoder_hidden=(config.hidden, config.hidden),
        predictor_hidden=(config.hidden, config.hidden))
    run_dir = os.path.join(out, "run")
    state = pipeline.train_world_model(config.collect, model_config, config.train,
                                       data_path=os.path.join(out, "data"), run_dir=run_dir,
                                       progress=False).state
    mngr = checkpoint.manager(os.path.join(run_dir, "checkpoints"))
    try:
        params = {step: checkpoint.restore(mngr, state, step).params
                  for step in mngr.all_steps()}
    finally:
        mngr.close()
    return model_config, params


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="/tmp/hjepa-demo-budget",
                        help="where the demo's dataset and run go (default: %(default)s)")
    parser.add_argument("--episodes", type=int, default=64)
    parser.add_argument("--steps", default="2000,3000",
                        help="checkpoints to plan with (default: %(default)s)")
    args = parser.parse_args(argv)

    config = demo.DemoConfig()
    model_config, params = trained_params(config, args.out)
    task = make(config.task)
    key = jax.random.key(splits.seed("val"))
    pairs = {**splits.describe("val", splits.seed("val")), "episodes": args.episodes}
    rows = []
    for step in (int(s) for s in args.steps.split(",")):
        for samples, iterations, horizon in BUDGETS:
            planner = config.planner.replace(num_samples=samples, iterations=iterations,
                                             horizon=horizon)
            t0 = time.perf_counter()
            result = evaluate.evaluate(
                task, key, num_episodes=args.episodes, model_config=model_config,
                params=params[step], planner=planners.mppi, planner_options=planner.kwargs(),
                horizon=planner.horizon)
            seconds = time.perf_counter() - t0
            summary = result.summary()
            successes = round(summary["success_rate"] * args.episodes)
            row = {"train_steps": step, "num_samples": samples, "iterations": iterations,
                   "horizon": horizon, "calls_per_step": samples * iterations * horizon,
                   "successes": successes,
                   "success_ci95": list(stats.wilson(successes, args.episodes)),
                   "plan_seconds": seconds, **summary,
                   "provenance": provenance.record(
                       configs={"demo": config.to_dict(), "planner": planner.to_dict()},
                       pairs=pairs)}
            rows.append(row)
            print(f"steps {step} samples {samples} iterations {iterations} horizon {horizon}: "
                  f"{successes}/{args.episodes} val, {seconds:.1f} s", flush=True)
    platform = jax.default_backend()
    path = os.path.join(HERE, "results", f"demo_budget_val_{platform}.json")
    atomic_write_json(path, {"format": "rows", "rows": rows, "hardware": sysinfo.hardware(),
                             "provenance": provenance.record(pairs=pairs)})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
