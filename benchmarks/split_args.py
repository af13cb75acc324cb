"""`--split` and `--json` for the benchmark scripts whose older rows were all measured on the
pairs of seed 10000 (now the `val` pairs): new rows go to a `_test` file unless `--split val`."""

from __future__ import annotations

import argparse

from hjepa import splits


def add_split_arguments(parser: argparse.ArgumentParser, stem: str) -> None:
    """Adds `--split` (default test) and `--json` (default: `results_path(stem, split)`)."""
    parser.add_argument("--split", choices=splits.SPLITS, default="test",
                        help="start/goal pairs: test (reported figures) or val (choices)")
    parser.add_argument("--json", default=None,
                        help=f"results file (default: benchmarks/results/{stem}_cpu.json for "
                             f"the val pairs, where every row before the split was measured; "
                             f"{stem}_test_cpu.json for the test pairs)")


def results_path(args: argparse.Namespace, stem: str) -> str:
    """`--json`, or the default results file of `--split`."""
    if args.json is not None:
        return args.json
    suffix = "" if args.split == "val" else "_test"
    return f"benchmarks/results/{stem}{suffix}_cpu.json"
