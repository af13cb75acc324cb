"""What hjepa wrote, and who is writing it: ownership markers, safe removal, and locks.

A directory hjepa creates (a training run, a dataset, a demo's output) holds a marker file,
`.hjepa`, naming its kind. `--overwrite` removes a directory's contents only when it is one
hjepa recognises (by its marker, or by the record files of versions that wrote none) and
every entry in it is a name hjepa writes there; anything else is refused, naming the files
hjepa did not write, and nothing is removed.

A process that writes a run directory or a dataset holds an exclusive lock on it
(`.hjepa-lock`, an advisory `flock` that the kernel releases when the process ends, so a lock
left by a killed process is free at once); a second process gets a clear error naming the
path and the holder's process id.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import os
import shutil
import socket
import time
from collections.abc import Iterator

try:  # POSIX; elsewhere directories are not locked
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None

MARKER = ".hjepa"
LOCK = ".hjepa-lock"

# Entries hjepa writes in a directory of each kind (glob patterns), besides MARKER and LOCK.
KNOWN_ENTRIES = {
    "run": ("config.json", "metrics.jsonl", "tb", "checkpoints", "corrupt-checkpoints",
            "critic.json", "critic.msgpack", "policy.json", "policy.msgpack",
            "goal_space.json", "goal_space.msgpack",
            "training_curves.png", "evaluation.json", "*.tmp-*"),
    "dataset": ("manifest.json", "collect-config.json", "obs-*.npy", "actions-*.npy",
                "positions-*.npy", "*.tmp-*"),
    "demo": ("data", "data.partial", "run", "results.json", ".hjepa-replaced-*", "*.tmp-*"),
}


class PathInUse(ValueError):
    """Another process holds the lock on a run directory or dataset."""


def mark(directory: str, kind: str) -> None:
    """Writes the marker that says `directory` is a `kind` hjepa wrote (kept if present)."""
    _check_kind(kind)
    path = os.path.join(directory, MARKER)
    if os.path.exists(path):
        return
    from hjepa.io import atomic_write_json

    atomic_write_json(path, {"kind": kind, "written_by": "hjepa",
                             "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})


def marked_kind(directory: str) -> str | None:
    """The kind named by `directory`'s marker; None when it has no readable marker."""
    try:
        with open(os.path.join(directory, MARKER)) as f:
            record = json.load(f)
    except (OSError, ValueError):
        return None
    return record.get("kind") if isinstance(record, dict) else None


def unknown_entries(directory: str, kind: str) -> list[str]:
    """The entries of `directory` that hjepa does not write in a `kind` directory, sorted."""
    _check_kind(kind)
    patterns = (MARKER, LOCK, *KNOWN_ENTRIES[kind])
    return sorted(name for name in os.listdir(directory)
                  if not any(fnmatch.fnmatchcase(name, p) for p in patterns))


def recognised(directory: str, kind: str) -> bool:
    """Whether `directory` is a `kind` that hjepa wrote: its marker says so, or (for runs and
    datasets written before markers) its record file is one hjepa writes."""
    found = marked_kind(directory)
    if found is not None:
        return found == kind
    record = {"run": "config.json", "dataset": "manifest.json", "demo": "results.json"}[kind]
    try:
        with open(os.path.join(directory, record)) as f:
            content = json.load(f)
    except (OSError, ValueError):
        return False
    if not isinstance(content, dict):
        return False
    if kind == "run":
        return {"model", "train", "dataset"} <= content.keys()
    if kind == "dataset":
        return content.get("format") == "hjepa-dataset"
    return "config" in content


def check_removable(directory: str, kind: str, *, name: str) -> None:
    """Raises ValueError unless `directory` is absent, empty, or a `kind` hjepa wrote that
    holds only what hjepa writes there. `name` is the argument named in the error."""
    if not os.path.exists(directory):
        return
    if not os.path.isdir(directory):
        raise ValueError(f"{name}: {directory} is a file, expected a directory")
    entries = [e for e in os.listdir(directory) if e != LOCK]
    if not entries:
        return
    if not recognised(directory, kind):
        shown = ", ".join(sorted(entries)[:8]) + (", ..." if len(entries) > 8 else "")
        raise ValueError(f"{name}: {directory} is not a {kind} directory hjepa wrote (it holds "
                         f"{shown}); hjepa replaces only what it wrote: choose another path")
    unknown = unknown_entries(directory, kind)
    if unknown:
        shown = ", ".join(unknown[:8]) + (", ..." if len(unknown) > 8 else "")
        raise ValueError(f"{name}: {directory} holds files hjepa did not write ({shown}); "
                         "move them away or choose another path (nothing was removed)")


def remove_contents(directory: str, kind: str, *, name: str) -> None:
    """Removes what hjepa wrote in `directory` (its marker and lock stay), after
    `check_removable`; the directory itself stays."""
    check_removable(directory, kind, name=name)
    if os.path.isdir(directory):
        _remove_entries(directory, keep=(MARKER, LOCK))


def discard(directory: str) -> None:
    """Removes everything in `directory` but its lock: for a directory this process created
    and then failed to fill (a full disk before the first shard or checkpoint), so that a
    failed first call leaves nothing behind. Best effort: it runs while an error propagates."""
    with contextlib.suppress(OSError):
        _remove_entries(directory, keep=(LOCK,))


def _remove_entries(directory: str, *, keep: tuple[str, ...]) -> None:
    """Removes every entry of `directory` but those named in `keep` (links are not followed)."""
    for entry in os.listdir(directory):
        if entry in keep:
            continue
        path = os.path.join(directory, entry)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.remove(path)


def _holder(path: str) -> str:
    try:
        with open(path) as f:
            return f.read().strip() or "unknown"
    except OSError:
        return "unknown"


@contextlib.contextmanager
def locked(directory: str, *, name: str) -> Iterator[None]:
    """Holds an exclusive lock on `directory` while the block runs. The directory is created
    if absent (and removed again if the block leaves it empty); the lock file is removed on
    release.

    Raises:
      PathInUse: another process holds it; the message names the path and its process id.
    """
    created = not os.path.isdir(directory)
    os.makedirs(directory, exist_ok=True)
    if fcntl is None:  # pragma: no cover
        yield
        return
    path = os.path.join(directory, LOCK)
    fd = _acquire(path, directory, name=name)
    try:
        yield
    finally:
        try:
            if os.stat(path).st_ino == os.fstat(fd).st_ino:  # still ours (not moved away)
                os.remove(path)
        except OSError:
            pass
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
        if created:
            with contextlib.suppress(OSError):
                os.rmdir(directory)  # only when empty: a refused first call leaves nothing


def _acquire(path: str, directory: str, *, name: str) -> int:
    """An open descriptor of the lock file `path`, locked; the lock file is the one at `path`
    (a holder that released it may have removed it after this process opened it)."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise PathInUse(f"{name}: {directory} is in use by another hjepa process "
                            f"(process {_holder(path)}); wait for it to finish or stop it "
                            "(its lock is released when it ends)") from None
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()} on {socket.gethostname()}\n".encode())
            return fd
        os.close(fd)  # locked a file its holder removed on release: take the new one


def _check_kind(kind: str) -> None:
    if kind not in KNOWN_ENTRIES:
        raise ValueError(f"kind: expected one of {sorted(KNOWN_ENTRIES)}, got {kind!r}")
