"""Helpers shared by the tests: the repository's root, and driving the `hjepa` command line
in-process."""

import os

from hjepa import cli

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # tests/..


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    """Runs `hjepa argv` in-process: (exit code, stdout, stderr)."""
    try:
        code = cli.main(argv)
    except SystemExit as exit_:
        code = exit_.code
    out, err = capsys.readouterr()
    return code, out, err
