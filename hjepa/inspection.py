"""Summaries of what hjepa writes: a dataset, a training run or checkpoint, a results file.

`summarize(path)` detects which it is and returns a JSON-ready dict; `format_summary` turns
that into a few human-readable lines (`hjepa inspect PATH`, `--json` for the dict).
"""

from __future__ import annotations

import json
import os
from typing import Any

from hjepa import io as hjepa_io

KINDS = ("dataset", "run", "checkpoint", "results")


def train_seconds_from_metrics(run_dir: str) -> float | None:
    """Optimiser time of a run from its metrics.jsonl (`hjepa.io.train_seconds`)."""
    return hjepa_io.train_seconds(run_dir)


def detect(path: str) -> str:
    """What `path` is: "dataset", "run", "checkpoint" or "results".

    Raises:
      ValueError: the path does not exist or is none of those (the message says what was
        looked for, and names inspectable entries inside a directory).
    """
    if not os.path.exists(path):
        raise ValueError(f"path: {path} does not exist")
    if os.path.isfile(path):
        if path.endswith(".json") and _read_results(path) is not None:
            return "results"
        raise ValueError(f"path: {path} is not a results file (a JSON file with 'rows', or a "
                         "demo's results.json)")
    if os.path.exists(os.path.join(path, "manifest.json")):
        return "dataset"
    if _is_run(path):
        return "run"
    if _checkpoint_of(path) is not None:
        return "checkpoint"
    inside = []
    for name in sorted(os.listdir(path)):
        child = os.path.join(path, name)
        try:
            inside.append(f"{name} ({detect(child)})")
        except (ValueError, OSError):
            continue
    hint = f"; inside it: {', '.join(inside)}" if inside else ""
    raise ValueError(
        f"path: {path} is not a dataset directory (no manifest.json), a run directory (no "
        f"config.json with model, train and dataset), a checkpoint or a results JSON file{hint}")


def _is_run(path: str) -> bool:
    try:
        with open(os.path.join(path, "config.json")) as f:
            record = json.load(f)
    except (OSError, json.JSONDecodeError):
        return False
    return isinstance(record, dict) and all(k in record for k in ("model", "train", "dataset"))


def _checkpoint_of(path: str) -> tuple[str, int | None] | None:
    """(run dir, step or None) when `path` is a run's checkpoints dir or one checkpoint."""
    path = os.path.abspath(path)
    name, parent = os.path.basename(path), os.path.dirname(path)
    if name == "checkpoints" and _is_run(parent):
        return parent, None
    if name.isdigit() and os.path.basename(parent) == "checkpoints" and _is_run(
            os.path.dirname(parent)):
        return os.path.dirname(parent), int(name)
    return None


def _read_results(path: str) -> dict | None:
    try:
        with open(path) as f:
            obj = json.load(f)
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    if isinstance(obj, dict) and (isinstance(obj.get("rows"), list)
                                  or ("learned" in obj and "oracle" in obj)):
        return obj
    return None


def _bytes(path: str) -> int:
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(os.path.getsize(os.path.join(root, f))
               for root, _, files in os.walk(path) for f in files)


def summarize(path: str) -> dict:
    """A JSON-ready summary of a dataset, run, checkpoint or results file (see `detect`).

    Raises:
      ValueError: `path` is none of those, or is one but corrupt.
    """
    kind = detect(path)
    summary = {"dataset": _dataset, "run": _run, "checkpoint": _checkpoint,
               "results": _results}[kind](path)
    return {"kind": kind, "path": os.path.abspath(path), **summary}


def _dataset(path: str) -> dict:
    import numpy as np

    from hjepa import data

    dataset = data.load(path)
    m = dataset.manifest
    first_actions = np.asarray(dataset.action_shards[0][:64])
    first_obs = np.asarray(dataset.obs_shards[0][:64], dtype=np.float32)
    moving = None
    if dataset.has_positions:  # how much of the data moves what the goals are about
        first_positions = np.asarray(dataset.position_shards[0][:64], dtype=np.float32)
        step = np.linalg.norm(np.diff(first_positions, axis=1), axis=-1)  # [n, T]
        moving = float(np.mean(step > MOVING_THRESHOLD))
    return {
        "task": dataset.task, "obs_kind": dataset.obs_kind, "obs_shape": list(dataset.obs_shape),
        "obs_dtype": m["obs_dtype"], "action_size": m["action_size"],
        "episodes": dataset.num_episodes, "episode_length": dataset.episode_length,
        "transitions": dataset.num_episodes * dataset.episode_length,
        "shards": len(m["shards"]), "seed": m.get("seed"), "created": m.get("created"),
        "bytes": _bytes(path), "versions": m.get("versions", {}),
        "fingerprint": dataset.fingerprint, "shards_check": _dataset_check(dataset),
        "sample": {"episodes_read": int(first_actions.shape[0]),
                   "action_mean": float(first_actions.mean()),
                   "action_std": float(first_actions.std()),
                   "obs_min": float(first_obs.min()), "obs_max": float(first_obs.max()),
                   "goal_space_moving_share": moving},
        "position_size": m.get("position_size"),
    }


# A transition moves its goal-space position (the pusher's object, the ant's torso) when it
# moves it by more than this (task units, metres for every task so far) in one step.
MOVING_THRESHOLD = 1e-3


def _dataset_check(dataset) -> str:
    """"verified", "unverified (written before digests)" or "corrupt: <why>"."""
    from hjepa import data

    try:
        return "verified" if data.verify(dataset) else "unverified (written before digests)"
    except (ValueError, OSError) as error:
        return f"corrupt: {error}"


def _run(path: str, step: int | None = None) -> dict:
    import jax

    from hjepa import model as model_lib
    from hjepa.checkpoint import read_json
    from hjepa.model import ModelConfig

    record = read_json(os.path.join(path, "config.json"))
    try:
        config = ModelConfig.from_dict(record["model"])
        train = record["train"]
        train = {k: train[k] for k in ("steps", "batch_size", "window", "learning_rate", "seed")}
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"run {path}: its config.json is not a run record hjepa can read "
                         f"({type(error).__name__}: {error})") from None
    shapes = jax.eval_shape(lambda k: model_lib.init(config, k), jax.random.key(0))
    parameters = int(sum(int(x.size) for x in jax.tree.leaves(shapes)))
    ckpt_dir = os.path.join(path, "checkpoints")
    steps = sorted(int(n) for n in os.listdir(ckpt_dir) if n.isdigit()) \
        if os.path.isdir(ckpt_dir) else []
    checks = {step: _checkpoint_check(os.path.join(ckpt_dir, str(step))) for step in steps}
    good = [step for step in steps if not checks[step].startswith("corrupt")]
    metrics = hjepa_io.read_metrics(path)
    last = metrics[-1] if metrics else {}
    return {
        "task": record["dataset"].get("task"), "obs_kind": record["dataset"].get("obs_kind"),
        "dataset": record["dataset"],
        "model": {"encoder": config.encoder, "latent_size": config.latent_size,
                  "obs_shape": list(config.obs_shape), "action_size": config.action_size,
                  "encoder_hidden": list(config.encoder_hidden),
                  "predictor_hidden": list(config.predictor_hidden),
                  "parameters": parameters},
        "train": train,
        "checkpoint_steps": steps, "latest_step": steps[-1] if steps else None,
        "checkpoints": {str(step): checks[step] for step in steps},
        "latest_good_step": good[-1] if good else None,
        "complete": bool(good) and good[-1] >= train["steps"],
        "last_metrics": last,
        "train_seconds": train_seconds_from_metrics(path),
        "bytes": _bytes(path),
    }


def _checkpoint_check(step_dir: str) -> str:
    """"verified", "unverified (written before digests)" or "corrupt: <why>"."""
    from hjepa import checkpoint

    try:
        return "verified" if checkpoint.verify(step_dir) else "unverified (written before digests)"
    except ValueError as error:
        return f"corrupt: {error}"


def _checkpoint(path: str) -> dict:
    run_dir, step = _checkpoint_of(path)
    summary = _run(run_dir)
    if step is not None and step not in summary["checkpoint_steps"]:
        raise ValueError(f"path: {path} is not a complete checkpoint of {run_dir}")
    summary["run_dir"] = run_dir
    summary["step"] = step if step is not None else summary["latest_step"]
    summary["checkpoint_bytes"] = _bytes(path)
    return summary


def _results(path: str) -> dict:
    obj = _read_results(path)
    if "rows" not in obj:  # a demo's results.json
        return {"format": "hjepa-demo", "task": obj.get("task"),
                "machine": _machine(obj.get("hardware")),
                "rows": [{"model": name, **{k: obj[name].get(k) for k in
                                            ("episodes", "success_rate",
                                             "mean_final_distance", "ms_per_step_amortised")}}
                         for name in ("learned", "oracle")],
                "total_seconds": obj.get("total_seconds")}
    rows = obj["rows"]
    columns = ("task", "obs", "model", "planner", "budget_text", "episodes", "success_rate",
               "success_ci95", "mean_final_distance", "ms_per_env_step", "calls_per_step")
    shown = [{k: r[k] for k in columns if k in r} for r in rows
             if r.get("budget_scale", 1.0) == 1.0]
    out = {"format": obj.get("format", "rows"), "machine": obj.get("machine")
           or _machine(obj.get("hardware")), "num_rows": len(rows), "rows": shown}
    if obj.get("format") == "hjepa-bench":
        out["profile"] = obj["profile"]["name"]
        out["complete"] = obj.get("complete", False)
        out["wall_seconds"] = sum(s.get("wall_seconds") or 0 for s in obj.get("sessions", []))
    return out


def _machine(hw: Any) -> str | None:
    if not isinstance(hw, dict):
        return None
    if hw.get("platform") and hw.get("cpu"):
        from hjepa import sysinfo

        try:
            return sysinfo.describe({"device_count": 1, **hw})
        except (KeyError, TypeError, IndexError):
            pass
    return str(hw.get("cpu") or hw.get("platform"))


def _pct(x) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def format_summary(summary: dict) -> str:
    """`summarize`'s dict as a few readable lines."""
    kind = summary["kind"]
    lines = [f"{summary['path']}: {kind}"]
    if kind == "dataset":
        s = summary
        lines += [
            f"  task {s['task']}, {s['obs_kind']} observations {s['obs_shape']} {s['obs_dtype']}, "
            f"{s['action_size']} actions",
            f"  {s['episodes']} episodes x {s['episode_length']} steps = {s['transitions']} "
            f"transitions in {s['shards']} shards, {s['bytes'] / 2**20:.1f} MiB, seed {s['seed']}"
            f", created {s['created']}",
            f"  first {s['sample']['episodes_read']} episodes: actions mean "
            f"{s['sample']['action_mean']:.3f} std {s['sample']['action_std']:.3f}, "
            f"observations in [{s['sample']['obs_min']:.3g}, {s['sample']['obs_max']:.3g}]",
            f"  fingerprint {s['fingerprint']}; shards {s['shards_check']}",
        ]
        moving = s["sample"]["goal_space_moving_share"]
        lines.append(
            "  goal-space positions: not recorded (collected before hjepa recorded them)"
            if moving is None else f"  goal-space positions [{s['position_size']}] per state; "
                 f"{100 * moving:.1f}% of the first episodes' transitions move them by more "
                 f"than {MOVING_THRESHOLD:g}")
    elif kind in ("run", "checkpoint"):
        s, m = summary, summary["model"]
        last = s["last_metrics"]
        train_s = f", {s['train_seconds']:.0f} s of training" if s["train_seconds"] else ""
        lines += [
            f"  task {s['task']} ({s['obs_kind']}), trained on {s['dataset'].get('path')} "
            f"({s['dataset'].get('num_episodes')} episodes)",
            f"  model: {m['encoder']} encoder {m['encoder_hidden']}, latent {m['latent_size']}, "
            f"predictor {m['predictor_hidden']}, {m['parameters']:,} parameters",
            f"  training: {s['train']['steps']} steps, batch {s['train']['batch_size']}, window "
            f"{s['train']['window']}, seed {s['train']['seed']}; checkpoints at "
            f"{s['checkpoint_steps'] or 'none'} ({'complete' if s['complete'] else 'incomplete'}"
            f"{train_s})",
        ]
        bad = {step: check for step, check in s["checkpoints"].items() if check != "verified"}
        for step, check in bad.items():
            lines.append(f"  checkpoint {step}: {check}")
        if last:
            lines.append("  last metrics: " + ", ".join(
                f"{k}={v:.4g}" for k, v in last.items() if isinstance(v, (int, float))))
        if kind == "checkpoint":
            lines.append(f"  checkpoint step {s['step']} of {s['run_dir']}, "
                         f"{s['checkpoint_bytes'] / 2**20:.2f} MiB")
    else:
        s = summary
        head = f"  {s['format']}"
        if s.get("profile"):
            head += (f", profile {s['profile']}, {'complete' if s['complete'] else 'INCOMPLETE'}"
                     f", {s['wall_seconds']:.0f} s")
        if s.get("machine"):
            head += f"; {s['machine']}"
        lines.append(head)
        for r in s["rows"]:
            ci = r.get("success_ci95")
            ci_text = f" ({100 * ci[0]:.0f}-{100 * ci[1]:.0f})" if ci else ""
            name = " ".join(str(r[k]) for k in ("task", "obs", "model", "planner") if k in r)
            lines.append(f"  {name}: success {_pct(r.get('success_rate'))}{ci_text} of "
                         f"{r.get('episodes')}, final dist {r.get('mean_final_distance', 0):.4f}")
    return "\n".join(lines)
