"""The machine and library versions, for every results file (one function, used everywhere)."""

from __future__ import annotations

import importlib.metadata as md
import os
import platform

LIBRARIES = ("jax", "jaxlib", "flax", "optax", "brax", "mujoco", "numpy", "hjepa")


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, else what `platform` knows."""
    name = platform.processor() or platform.machine() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return name


def load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages, or None where the OS does not say."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def versions() -> dict[str, str]:
    """Installed versions of the libraries a result depends on (missing ones left out)."""
    found = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            found[name] = md.version(name)
        except md.PackageNotFoundError:
            pass
    return found


def hardware() -> dict:
    """The machine and library versions, for results files.

    Returns:
      A JSON-ready dict: `platform` ("cpu", "gpu", "tpu"), `devices` (device kinds),
      `device_count`, `cpu` (model name), `cpu_count`, `python`, `load_average` (1, 5, 15
      minutes, at the time of the call; a shared machine makes timings slower), `versions`.
    """
    import jax

    devices = jax.devices()
    return {
        "platform": devices[0].platform,
        "devices": [str(d.device_kind) for d in devices],
        "device_count": len(devices),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "load_average": load_average(),
        "versions": versions(),
    }


def describe(hw: dict) -> str:
    """`hardware()` in words, e.g. "2 CPU cores (AMD EPYC 7B13), load average 1.9"."""
    if hw["platform"] == "cpu":
        text = f"{hw['cpu_count']} CPU cores ({hw['cpu']})"
        if hw.get("device_count", 1) > 1:
            text += f", {hw['device_count']} virtual devices"
    else:
        kinds = sorted(set(hw["devices"]))
        text = (f"{len(hw['devices'])} x {', '.join(kinds)} ({hw['platform']}; host "
                f"{hw['cpu']}, {hw['cpu_count']} cores)")
    if hw.get("load_average"):
        text += f", load average {hw['load_average'][0]:.1f}"
    return text
