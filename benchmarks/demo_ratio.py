"""`hjepa demo` as a new user runs it, against the demo of commit 318b41b on the same machine.

    git clone REPO /tmp/new && python3 -m venv /tmp/new/.venv
    /tmp/new/.venv/bin/pip install -c /tmp/new/constraints.txt /tmp/new
    git clone REPO /tmp/old && git -C /tmp/old checkout 318b41b && python3 -m venv /tmp/old/.venv
    /tmp/old/.venv/bin/pip install -c /tmp/new/constraints.txt /tmp/old
    python -m benchmarks.demo_ratio --new /tmp/new --old /tmp/old

Runs each clone's `hjepa demo` (its own console script, from its own directory, the default
output `hjepa-demo` removed first) one after the other, old first, and times each from the
shell's point of view (start-up included). Writes `benchmarks/results/demo_cpu.json` (the new
demo's results.json) and `benchmarks/results/demo_ratio_cpu.json`: both wall times, their
ratio, the old demo's own results, and the provenance of the measurement.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import time

from hjepa import provenance, sysinfo
from hjepa.io import atomic_write_json

HERE = os.path.dirname(os.path.abspath(__file__))


def run_demo(clone: str) -> tuple[float, dict]:
    """Runs `hjepa demo` in `clone` with its own venv: (wall seconds, its results.json)."""
    out = os.path.join(clone, "hjepa-demo")
    if os.path.exists(out):
        shutil.rmtree(out)
    hjepa = os.path.join(clone, ".venv", "bin", "hjepa")
    t0 = time.perf_counter()
    subprocess.run([hjepa, "demo"], cwd=clone, check=True)
    wall = time.perf_counter() - t0
    with open(os.path.join(out, "results.json")) as f:
        return wall, json.load(f)


def commit_of(clone: str) -> str:
    return subprocess.run(["git", "-C", clone, "rev-parse", "HEAD"], check=True,
                          capture_output=True, text=True).stdout.strip()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--new", required=True, help="a fresh clone of this commit, with .venv")
    parser.add_argument("--old", required=True, help="a fresh clone at 318b41b, with .venv")
    args = parser.parse_args(argv)

    old_wall, old_results = run_demo(args.old)
    new_wall, new_results = run_demo(args.new)
    atomic_write_json(os.path.join(HERE, "results", "demo_cpu.json"), new_results)
    record = {
        "new": {"commit": commit_of(args.new), "wall_seconds": new_wall,
                "demo_total_seconds": new_results["total_seconds"],
                "learned_success_rate": new_results["learned"]["success_rate"]},
        "old": {"commit": commit_of(args.old), "wall_seconds": old_wall,
                "demo_total_seconds": old_results["total_seconds"],
                "learned_success_rate": old_results["learned"]["success_rate"]},
        "ratio": new_wall / old_wall,
        "old_results": old_results,
        "hardware": sysinfo.hardware(),
        "provenance": provenance.record(),
    }
    atomic_write_json(os.path.join(HERE, "results", "demo_ratio_cpu.json"), record)
    print(json.dumps({k: record[k] for k in ("new", "old", "ratio")}, indent=2))


if __name__ == "__main__":
    main()
