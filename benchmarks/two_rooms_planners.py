"""Two-rooms from pixels: success of MPPI and of CEM with coloured noise on a trained run,
split by whether start and goal are in the same room.

    python -m benchmarks.two_rooms_planners --run-dir hjepa-suite/runs/two_rooms_pixels \
        --planner cem --episodes 32 --horizon 32 --terminal-weight 20

Compares planner settings, a choice, so it plans on the `val` pairs (`hjepa.splits`, seed
10000). A goal in the
other room sits behind the wall: a planner whose samples are white noise around the previous
plan rarely finds the door, while iCEM's low-frequency (coloured, beta = 2) noise samples
long coherent moves that do.
"""

from __future__ import annotations

import argparse
import json
import sys

import jax
import numpy as np

import planners
from hjepa import evaluate, splits, tasks, train
from hjepa.demo import hardware

OPTIONS = {
    "cem": (planners.cem, dict(num_samples=128, num_elites=16, iterations=3, noise_std=0.8,
                               noise_beta=2.0, keep_elites=4, min_std=0.05)),
    "mppi": (planners.mppi, dict(num_samples=128, iterations=3, temperature=0.03,
                                 noise_std=0.6)),
}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run-dir", required=True)
    parser.add_argument("--planner", choices=sorted(OPTIONS), default="cem")
    parser.add_argument("--episodes", type=int, default=64)
    parser.add_argument("--horizon", type=int, default=32)
    parser.add_argument("--terminal-weight", type=float, default=20.0)
    args = parser.parse_args(argv)
    config, _, params = train.load_run(args.run_dir, task="two_rooms")
    task = tasks.make("two_rooms", "pixels", image_size=config.obs_shape[0])
    planner, options = OPTIONS[args.planner]
    key = splits.key("val")  # it compares settings: a choice, so the val pairs
    result = evaluate.evaluate(task, key, num_episodes=args.episodes, model_config=config,
                               params=params, planner=planner, planner_options=options,
                               horizon=args.horizon, terminal_weight=args.terminal_weight)
    reset_key = jax.random.split(key)[0]  # as evaluate draws the pairs
    episodes = jax.jit(jax.vmap(task.reset))(jax.random.split(reset_key, args.episodes))
    cross = (np.sign(np.asarray(episodes.state.q[:, 0]))
             != np.sign(np.asarray(episodes.goal.position[:, 0])))
    summary = {**result.summary(), "planner": args.planner, "options": options,
               "horizon": args.horizon, "terminal_weight": args.terminal_weight,
               "cross_room_episodes": int(cross.sum()),
               "cross_room_success": float(result.success[cross].mean()),
               "same_room_success": float(result.success[~cross].mean()),
               "hardware": hardware()}
    print(json.dumps(summary, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
