"""Adds a `provenance` block to the rows of results files written before rows carried one,
reconstructed from git history: the commit that first holds the row as it is now, the file's
recorded hardware, and the pairs every row of that time used (seed 10000, now `val`).

    python scripts/backfill_provenance.py benchmarks/results/task_suite_cpu.json KEY_FIELDS...
    python scripts/backfill_provenance.py --file benchmarks/results/scaling_cpu.json

`--file`: one block for the whole file (a file whose rows come from one run): the commit
that added the file as it is now. A row (or file) that already has a provenance block is
left as it is. Each block says
`"reconstructed": true` and how, so no reader takes it for a record made at measurement time.
"""

from __future__ import annotations

import json
import subprocess
import sys

from hjepa.io import atomic_write_json


def _history(path: str) -> list[tuple[str, str, dict]]:
    """[(commit, date, parsed file)] oldest first, following renames (each commit's copy is
    read at the path the file had then)."""
    log = subprocess.run(["git", "log", "--follow", "--format=@%H %cI", "--name-only", "--",
                          path], capture_output=True, text=True, check=True).stdout
    entries, current = [], None
    for line in log.splitlines():
        if line.startswith("@"):
            current = line[1:].split()
        elif line.strip() and current is not None:
            entries.append((current[0], current[1], line.strip()))
            current = None
    versions = []
    for commit, date, name in reversed(entries):
        try:
            text = subprocess.run(["git", "show", f"{commit}:{name}"], capture_output=True,
                                  text=True, check=True).stdout
            versions.append((commit, date, json.loads(text)))
        except (subprocess.CalledProcessError, json.JSONDecodeError):
            continue
    return versions


def _same(a: dict, b: dict) -> bool:
    keys = ("success_rate", "mean_final_distance", "episodes")
    return all(a.get(k) == b.get(k) for k in keys)


def _file_level(path: str) -> int:
    with open(path) as f:
        data = json.load(f)
    if "provenance" in data:
        return 0
    text = open(path).read()
    first = next(((commit, date) for commit, date, version in _history(path)
                  if version == json.loads(text)), None)
    environment = data.get("environment") or {}
    data["provenance"] = {
        "reconstructed": True,
        "how": "the first commit whose copy of this results file is the file as it is now "
               "(git history); the machine: the file's own hardware or environment block",
        "commit": first[0] if first else None, "dirty": None,
        "time": environment.get("date") or (first[1] if first else None),
        "hardware": data.get("hardware") or environment or None,
    }
    atomic_write_json(path, data)
    print(f"{path}: {first[0][:7] if first else 'not found'}")
    return 0


def main(argv: list[str]) -> int:
    if argv[0] == "--file":
        return _file_level(argv[1])
    path, fields = argv[0], argv[1:]
    with open(path) as f:
        data = json.load(f)
    history = _history(path)
    hardware = data.get("hardware") or data.get("meta", {}).get("hardware")
    command = data.get("meta", {}).get("command")
    for row in data["rows"]:
        if "provenance" in row:
            continue
        key = tuple(row.get(k) for k in fields)
        first = None
        for commit, date, version in history:
            match = [r for r in version.get("rows", []) if tuple(r.get(k) for k in fields) == key]
            if match and _same(match[0], row):
                first = (commit, date)
                break
        row["provenance"] = {
            "reconstructed": True,
            "how": "the first commit whose copy of this results file holds the row as it is "
                   "now (git history); hardware: the file's block; pairs: seed 10000, which "
                   "every row used before the val/test split",
            "commit": first[0] if first else None, "dirty": None,
            "time": first[1] if first else None,
            "command": row.get("command") or command,
            "pairs": {"split": "val", "seed": 10000, "episodes": row.get("episodes")},
            "hardware": hardware,
        }
        print(f"{key}: {first[0][:7] if first else 'not found'}")
    atomic_write_json(path, data)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
