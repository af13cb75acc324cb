"""`hjepa bench`: the suite as a subcommand of the `hjepa` command line.

hjepa never imports `benchmarks`; it finds this command through the `hjepa.commands` entry
point that `pyproject.toml` declares (`bench = "benchmarks.command"`). A command module gives
`NAME`, `HELP`, `EXAMPLES`, `add_arguments(parser)` and `run(args, say, emit_json) -> int`.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

NAME = "bench"
HELP = "Run the benchmark suite: tasks x models x planners -> JSON, Markdown, PNG."
EXAMPLES = """
    examples:
      hjepa bench --profile quick          # <= 20 min on 2 CPU cores -> benchmarks/results
      hjepa bench --profile tiny --out /tmp/bench --work /tmp/bench-work   # seconds
      hjepa bench --profile full --overwrite          # sized for a GPU
      hjepa bench --profile quick --resume            # continue an interrupted run
      hjepa bench --profile quick --only reacher --planners mppi,gd --models learned
    (datasets and runs are reused from --work; rows are written as they finish; an
    existing results file is kept unless --overwrite; the same as `python -m benchmarks`)
    """


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from benchmarks import suite

    suite.add_arguments(parser)


def run(args: argparse.Namespace, say: Callable[[str], None],
        emit_json: Callable[[object], None]) -> int:
    from benchmarks import suite

    results = suite.run_from_args(args, log=say)
    rows = [{k: r.get(k) for k in ("task", "obs", "model", "planner", "budget_text",
                                   "budget_scale", "episodes", "success_rate", "success_ci95",
                                   "mean_final_distance", "ms_per_env_step", "calls_per_step",
                                   "train_seconds", "seed")} for r in results["rows"]]
    if args.json:
        emit_json({"profile": results["profile"]["name"], "machine": results["machine"],
                   "complete": results["complete"], "paths": results["paths"], "rows": rows})
    elif not args.quiet:
        print(suite.markdown(results))
        print("wrote " + ", ".join(results["paths"].values()))
    return 0
