"""How long `hjepa distill` takes, as a user runs it, on a copy of a run.

    python -m benchmarks.distill_time --task reacher --run-dir hjepa-demo/run
    python -m benchmarks.distill_time --task two_rooms --pretrained two_rooms

Copies the run into a temporary directory (so its own policy, if any, is neither reused nor
touched), runs `hjepa distill --run-dir COPY --json` in this process with the default
configuration and the planner the run plans with (a shipped run's, else the demo's: MPPI
256 x H16 x 2), and records the wall time (start-up of the
command included, the copy excluded), the load average before and after, and the provenance in
`benchmarks/results/distill_time_cpu.json` (rows of other tasks kept).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import sys
import tempfile
import time

from hjepa import cli, pretrained, provenance, sysinfo
from hjepa.io import atomic_write_json

HERE = os.path.dirname(os.path.abspath(__file__))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", required=True)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--run-dir")
    source.add_argument("--pretrained")
    parser.add_argument("--json", default=os.path.join(HERE, "results", "distill_time_cpu.json"))
    args = parser.parse_args(argv)
    run_dir = args.run_dir or pretrained.path(args.pretrained)
    flags = ["--iterations", "2"]  # the demo's planner, as benchmarks/distill.py uses
    if args.pretrained is not None:  # the planner the shipped run plans with
        plan = pretrained.PRETRAINED[args.pretrained].plan
        options = plan.kwargs()
        flags = ["--horizon", str(plan.horizon), "--samples", str(options["num_samples"]),
                 "--iterations", str(options["iterations"]), "--noise-std",
                 str(options["noise_std"]), "--noise-decay", str(options["noise_decay"]),
                 "--temperature", str(options["temperature"])]
    with tempfile.TemporaryDirectory() as work:
        copy = os.path.join(work, "run")
        shutil.copytree(run_dir, copy, ignore=shutil.ignore_patterns("policy.*", ".hjepa-lock"))
        argv_distill = ["distill", "--run-dir", copy, *flags, "--json"]
        load_before = sysinfo.hardware()["load_average"]
        out = io.StringIO()
        t0 = time.perf_counter()
        with contextlib.redirect_stdout(out):
            code = cli.main(argv_distill)
        seconds = time.perf_counter() - t0
    if code != 0:
        print(f"hjepa {' '.join(argv_distill)} exited {code}", file=sys.stderr)
        return code
    summary = json.loads(out.getvalue())
    row = {"task": args.task, "source": args.pretrained or run_dir, "wall_seconds": seconds,
           "distill_seconds": summary["seconds"], "rounds": summary["rounds"],
           "load_average_before": load_before,
           "load_average_after": sysinfo.hardware()["load_average"],
           "provenance": provenance.record(configs={"policy": summary["policy"],
                                                    "flags": flags})}
    rows = {}
    if os.path.exists(args.json):
        with open(args.json) as f:
            rows = {r["task"]: r for r in json.load(f)["rows"]}
    rows[args.task] = row
    atomic_write_json(args.json, {"format": "hjepa-distill-time",
                                  "rows": [rows[k] for k in sorted(rows)]})
    print(f"{args.task}: hjepa distill took {seconds:.0f} s (load average "
          f"{load_before[0]:.1f} before)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
