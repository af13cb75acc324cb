"""Where a measured figure comes from: commit, command, configs, pairs, versions, machine."""

from __future__ import annotations

import datetime
import os
import shlex
import subprocess
import sys
from typing import Any

from hjepa import sysinfo

_SOURCE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def git_state(directory: str = _SOURCE_DIR) -> dict:
    """{"commit": the HEAD commit of the repository holding `directory` (None outside a git
    checkout, e.g. an installed package), "dirty": whether tracked files differ from it}."""
    def git(*args):
        return subprocess.run(["git", "-C", directory, *args], capture_output=True, text=True,
                              timeout=30, check=True).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    return {"commit": commit, "dirty": dirty}


# The repository's state when this process imported hjepa.provenance: the code that runs. A
# long benchmark may write rows after later commits; each row records both.
_AT_START = git_state()


def command_line(argv: list[str] | None = None) -> str:
    """The command that is running, as a user would type it (`python -m x ...` for a module)."""
    argv = list(sys.argv if argv is None else argv)
    if argv and argv[0].endswith("__main__.py"):
        module = os.path.basename(os.path.dirname(argv[0]))
        argv = ["python", "-m", module, *argv[1:]]
    elif argv and argv[0].endswith(".py"):
        argv = ["python", *argv]
    elif argv:
        argv[0] = os.path.basename(argv[0])
    return shlex.join(argv)


def record(*, command: str | None = None, configs: dict[str, Any] | None = None,
           pairs: dict | None = None) -> dict:
    """The provenance of a results row or file, JSON-ready.

    Args:
      command: the command that produced it (default: this process's command line).
      configs: every config it used, as dicts (model, train, planner, ...).
      pairs: the start/goal pairs, `hjepa.splits.describe(split, seed)` and episode counts.

    Returns:
      {"commit", "dirty" (the repository when the process started: the code that ran),
       "at_write" (only if it changed since: {"commit", "dirty"} when the row was written),
       "command", "configs", "pairs", "time" (UTC, ISO 8601), "hardware"
       (`hjepa.sysinfo.hardware()`: machine, load, package versions)}.
    """
    now = git_state()
    extra = {} if now == _AT_START else {"at_write": now}
    return {
        **_AT_START, **extra,
        "command": command_line() if command is None else command,
        "configs": configs or {},
        "pairs": pairs or {},
        "time": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "hardware": sysinfo.hardware(),
    }


def commit_label(record: dict) -> str:
    """A results row's commit for a table line: the short hash of `record` (a `record()`
    result), "?" outside a repository, with " (dirty)" when the tree had changes."""
    return (record["commit"] or "?")[:7] + (" (dirty)" if record["dirty"] else "")
