"""Helpers shared by the tests that drive the `hjepa` command line in-process."""

from hjepa import cli


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    """Runs `hjepa argv` in-process: (exit code, stdout, stderr)."""
    try:
        code = cli.main(argv)
    except SystemExit as exit_:
        code = exit_.code
    out, err = capsys.readouterr()
    return code, out, err
