"""MPPI throughput against a hand-written MPPI: the MPPI row of `planner_throughput`.

Run with `python -m benchmarks.mppi_throughput [--quick] [--json PATH]`; prints the table
rows and the ratio planners.mppi / yardstick (lower is better; <= 1.15 is the target).
"""

from __future__ import annotations

import sys

from benchmarks import planner_throughput


def main(argv: list[str] | None = None) -> dict:
    result = planner_throughput.main(argv, only=("mppi",))
    for row in result["rows"]:
        print(f"mppi, {row['problems']} problem(s): ratio {row['ratio']:.3f} "
              f"({1e3 * row['planners_s']:.1f} ms vs {1e3 * row['yardstick_s']:.1f} ms)")
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
