"""Pictures of what hjepa does: Brax's HTML viewer of planned episodes, a run's training
curves as PNG, and animated GIFs of pixel observations beside the goal image.

- `FrameRecorder` is a `record` for `hjepa.evaluate.evaluate`: it keeps what the pictures
  need after each MPC step (the Brax pose, the observation).
- `episode_states` + `write_html`: Brax's three.js viewer of an episode (`hjepa plan --render`).
- `plot_training_curves`: loss terms against step from a run's `metrics.jsonl`
  (`hjepa train` writes `training_curves.png` into the run directory).
- `gif_frames` + `write_gif`: observations beside the goal (`hjepa plan --gif`, pixel tasks).

Every writer checks its output path first (`check_output_path`: the suffix, an existing
directory, no existing file unless `overwrite`) and writes atomically (a temporary file in
the same directory, then `os.replace`), so a failed or interrupted write leaves nothing half
written.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tempfile
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np

from hjepa import io as hjepa_io
from hjepa.checks import is_int

PyTree = Any

TRAINING_CURVES = "training_curves.png"
# metrics.jsonl entries that are not loss terms: diagnostics (names containing one of these,
# plotted apart) and entries not plotted at all
DIAGNOSTICS = ("grad_norm", "latent_std", "macro_std")
NOT_PLOTTED = ("step", "steps_per_second")
GIF_BAR_COLORS = ((60, 140, 230), (40, 110, 200))  # the progress bar alternates between these


# ----------------------------------------------------------------------------- paths


WRITTEN_BY = b"written by hjepa"  # in every picture hjepa writes: HTML comment, GIF comment,
# PNG text chunk; `--overwrite` replaces only files that carry it


def check_output_path(path: str, suffix: str, *, overwrite: bool = False,
                      name: str = "path", owned_only: bool = True) -> str:
    """Checks that `path` can be written as a `suffix` file; returns it.

    Raises:
      ValueError: the name does not end in `suffix` (e.g. ".html"), its directory does not
        exist or cannot be written, or the file exists and `overwrite` is False, or
        `owned_only` and it is a file hjepa did not write. `name` is the argument named in
        the message (e.g. "--render").
    """
    if not isinstance(path, str) or not path:
        raise ValueError(f"{name}: expected a file path ending in {suffix}, got {path!r}")
    if not path.lower().endswith(suffix):
        raise ValueError(f"{name}: expected a file name ending in {suffix}, got {path!r}")
    directory = os.path.dirname(os.path.abspath(path))
    if os.path.isfile(directory) or any(os.path.isfile(a) for a in _ancestors(directory)):
        raise ValueError(f"{name}: {path} lies under a file, not a directory")
    if not os.path.isdir(directory):
        raise ValueError(f"{name}: the directory {directory} does not exist (create it first)")
    if os.path.isdir(path):
        raise ValueError(f"{name}: {path} is a directory")
    if os.path.exists(path):
        if not overwrite:
            raise ValueError(f"{name}: {path} exists; choose another name or pass --overwrite")
        if owned_only and not written_by_hjepa(path):
            raise ValueError(f"{name}: {path} exists and hjepa did not write it; --overwrite "
                             "replaces only pictures hjepa wrote: choose another name")
    try:  # writable, now rather than after the work that makes the picture
        fd, probe = tempfile.mkstemp(dir=directory, prefix=".tmp-probe-")
        os.close(fd)
        os.remove(probe)
    except OSError as error:
        raise ValueError(f"{name}: cannot write in {directory} ({error.strerror})") from None
    return path


def _ancestors(directory: str) -> list[str]:
    parents, current = [], directory
    while os.path.dirname(current) != current:
        current = os.path.dirname(current)
        parents.append(current)
    return parents


def written_by_hjepa(path: str) -> bool:
    """Whether the file at `path` carries hjepa's `WRITTEN_BY` tag."""
    try:
        with open(path, "rb") as f:
            return WRITTEN_BY in f.read()
    except OSError:
        return False


def write_atomic(path: str, data: bytes | str) -> None:
    """Writes `data` to `path` through a temporary file in the same directory and
    `os.replace`: readers see the old file or the whole new one, never a part."""
    directory = os.path.dirname(os.path.abspath(path))
    payload = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=os.path.basename(path))
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


# ----------------------------------------------------------------------------- recording


def pipeline_state(env_state: PyTree) -> PyTree:
    """The Brax pipeline state inside a task's environment state: the state itself, or its
    `physics` field for tasks that carry more (windy_cliff's `WindyState`)."""
    return getattr(env_state, "physics", env_state)


def pose(env_state: PyTree):
    """The pose of an environment state as a small `brax.base.State` (q, qd, x, xd; no
    contacts): what Brax's viewer draws, without the pipeline's bulky internals."""
    from brax import base

    s = pipeline_state(env_state)
    return base.State(q=s.q, qd=s.qd, x=s.x, xd=s.xd, contact=None)


@dataclasses.dataclass(frozen=True)
class FrameRecorder:
    """A `record` for `hjepa.evaluate.evaluate`: after each step, a dict with "pose" (`pose`,
    when `poses`) and "obs" (the task's observation [*obs_shape], when `observations`).
    Hashable, so the episode function compiles once."""

    task: Any
    poses: bool = True
    observations: bool = False

    def __call__(self, env_state) -> dict:
        out = {}
        if self.poses:
            out["pose"] = pose(env_state)
        if self.observations:
            out["obs"] = self.task.observe(env_state)
        return out


def take(tree: PyTree, index: int) -> PyTree:
    """Entry `index` of the leading axis of every leaf of `tree` (numpy)."""
    return jax.tree.map(lambda a: np.asarray(a)[index], tree)


def episode_states(start_state: PyTree, poses: PyTree) -> list:
    """The viewer's frames of one episode: its start and the pose after each step.

    Args:
      start_state: the environment state the episode started from (one episode's
        `EvalResult.episodes.state`).
      poses: the `FrameRecorder` poses of that episode (a `brax.base.State` with leading
        axis T, e.g. `take(result.records["pose"], i)`).

    Returns:
      T + 1 `brax.base.State`s with numpy leaves, x.pos [L, 3] and x.rot [L, 4] each.
    """
    pos = np.asarray(poses.x.pos)
    if pos.ndim != 3 or pos.shape[-1] != 3:
        raise ValueError(f"poses: expected x.pos of shape [T, L, 3], got {pos.shape}")
    first = jax.tree.map(np.asarray, pose(start_state))
    if first.x.pos.shape != pos.shape[1:]:
        raise ValueError(f"start_state: its x.pos has shape {first.x.pos.shape}, the poses "
                         f"{pos.shape[1:]} per step: not the same system")
    return [first] + [take(poses, t) for t in range(pos.shape[0])]


def html(system, states: Sequence, *, height: int | str = "100vh") -> str:
    """Brax's HTML viewer (`brax.io.html.render`) of `states` of `system`, as a standalone
    page that fills the window. The page loads three.js and the viewer from a CDN."""
    from brax.io import html as brax_html

    if len(states) == 0:
        raise ValueError("states: expected at least one state, got none")
    return brax_html.render(system, list(states), height=height, colab=False)


def write_html(path: str, system, states: Sequence, *, overwrite: bool = False) -> str:
    """Writes `html(system, states)` to `path` (.html) atomically; returns the path."""
    check_output_path(path, ".html", overwrite=overwrite)
    write_atomic(path, html(system, states) + f"\n<!-- {WRITTEN_BY.decode()} -->\n")
    return path


# ----------------------------------------------------------------------------- training curves


def read_metrics(run_dir: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The logged metrics of a run: name -> (steps [K], values [K]) from `metrics.jsonl`.

    A truncated last line (a run killed mid-write) is skipped.

    Raises:
      ValueError: `run_dir` has no metrics.jsonl, or it holds no complete record.
    """
    path = os.path.join(run_dir, "metrics.jsonl")
    if not os.path.isfile(path):
        raise ValueError(f"run_dir: {run_dir} has no metrics.jsonl (not a training run, or "
                         "no step logged yet)")
    series: dict[str, tuple[list, list]] = {}
    for record in hjepa_io.read_metrics(run_dir):
        for name, value in record.items():
            if name == "step" or not isinstance(value, int | float):
                continue
            steps, values = series.setdefault(name, ([], []))
            steps.append(record["step"])
            values.append(float(value))
    if not series:
        raise ValueError(f"run_dir: {path} holds no metrics")
    return {k: (np.asarray(s), np.asarray(v)) for k, (s, v) in series.items()}


def plot_training_curves(run_dir: str, path: str | None = None, *,
                         overwrite: bool = True) -> str:
    """Plots a run's loss terms (left) and diagnostics (right: gradient norm, latent and
    macro-action spreads) against the training step, to a PNG; returns its path.

    Args:
      run_dir: a training run directory (`hjepa.train.fit`).
      path: the PNG to write (default: `run_dir/training_curves.png`).
      overwrite: replace an existing file (the default: the plot is derived from the run
        and rewritten when it resumes).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    inside_run = path is None  # the run's own plot, rewritten as it resumes
    path = os.path.join(run_dir, TRAINING_CURVES) if path is None else path
    check_output_path(path, ".png", overwrite=overwrite, owned_only=not inside_run)
    metrics = read_metrics(run_dir)
    metrics = {k: v for k, v in metrics.items() if k not in NOT_PLOTTED}
    diagnostic = {k for k in metrics if any(d in k for d in DIAGNOSTICS)}
    losses = {k: v for k, v in metrics.items() if k not in diagnostic}
    diagnostics = {k: v for k, v in metrics.items() if k in diagnostic}
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), squeeze=False)
    for ax, group, title in ((axes[0, 0], losses, "loss terms"),
                             (axes[0, 1], diagnostics, "diagnostics")):
        for name, (steps, values) in sorted(group.items()):
            ax.plot(steps, values, marker="." if len(steps) < 30 else None, label=name)
        finite = [v for _, v in group.values() if np.all(np.isfinite(v))]
        if finite and all(np.all(v > 0) for v in finite):
            ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
        if group:
            ax.legend(fontsize=8)
    fig.suptitle(os.path.basename(os.path.abspath(run_dir)), fontsize=11)
    fig.tight_layout()
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".png")
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=100, metadata={"Software": WRITTEN_BY.decode()})
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


# ----------------------------------------------------------------------------- GIF


def _rgb(image: np.ndarray, name: str) -> np.ndarray:
    """The first three channels (the current frame) of uint8 images [..., S, S, C>=3]."""
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim < 3 or image.shape[-1] < 3:
        raise ValueError(f"{name}: expected uint8 images [..., S, S, C] with C >= 3, got "
                         f"{image.dtype} {image.shape}")
    return image[..., :3]


def gif_frames(observations: np.ndarray, goal: np.ndarray, *, scale: int = 1) -> np.ndarray:
    """Each step's observation beside the goal image, with a progress bar below.

    Pixel observations stack frames on channels (reacher: now, then one step earlier); the
    first three channels (now) are shown. The bar under the pair grows with the step and
    alternates its colour, so no two consecutive frames are equal (GIF writers merge equal
    frames).

    Args:
      observations: uint8 [T, S, S, C] (C >= 3).
      goal: the goal observation, uint8 [S, S, C].
      scale: integer upsampling of every pixel (nearest neighbour).

    Returns:
      uint8 frames [T, scale * (S + B), 2 * scale * S, 3]: the observation on the left half,
      the goal on the right, a bar of B = max(2, S // 16) rows below.
    """
    obs = _rgb(observations, "observations")
    goal = _rgb(goal, "goal")
    if obs.ndim != 4 or obs.shape[0] == 0:
        raise ValueError(f"observations: expected [T, S, S, C] with T > 0, got {obs.shape}")
    if goal.shape != obs.shape[1:]:
        raise ValueError(f"goal: expected the observations' shape {obs.shape[1:]}, got "
                         f"{goal.shape}")
    if not is_int(scale) or scale < 1:
        raise ValueError(f"scale: expected a positive integer, got {scale!r}")
    steps, size, width = obs.shape[0], obs.shape[1], 2 * obs.shape[2]
    bar = max(2, size // 16)
    frames = np.zeros((steps, size + bar, width, 3), np.uint8)
    frames[:, :size, :width // 2] = obs
    frames[:, :size, width // 2:] = goal
    frames[:, size:] = 255
    for t in range(steps):
        filled = math.ceil((t + 1) * width / steps)
        frames[t, size:, :filled] = GIF_BAR_COLORS[t % 2]
    if scale > 1:
        frames = frames.repeat(scale, axis=1).repeat(scale, axis=2)
    return frames


def _paletted(frames: np.ndarray):
    """Pillow "P" images of frames [T, H, W, 3] on one shared palette when they hold at most
    256 colours (exact), else None."""
    from PIL import Image

    packed = (frames[..., 0].astype(np.uint32) << 16) | (frames[..., 1].astype(np.uint32) << 8) \
        | frames[..., 2]
    colors, index = np.unique(packed, return_inverse=True)
    if colors.size > 256:
        return None
    index = index.reshape(packed.shape).astype(np.uint8)
    palette = np.stack([colors >> 16, (colors >> 8) & 255, colors & 255], axis=-1)
    palette = np.concatenate([palette, np.zeros((256 - colors.size, 3), np.uint32)])
    flat = palette.astype(np.uint8).reshape(-1).tolist()
    images = []
    for frame in index:
        image = Image.frombytes("P", (frame.shape[1], frame.shape[0]), frame.tobytes())
        image.putpalette(flat)
        images.append(image)
    return images


def write_gif(path: str, frames: np.ndarray, *, fps: float = 10.0,
              overwrite: bool = False) -> str:
    """Writes uint8 frames [T, H, W, 3] as an animated GIF (looping) atomically; returns the
    path. Frames of at most 256 colours in all are stored exactly; others are quantised per
    frame (Pillow's adaptive palette)."""
    from PIL import Image

    check_output_path(path, ".gif", overwrite=overwrite)
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3 or not len(frames):
        raise ValueError(f"frames: expected uint8 [T, H, W, 3] with T > 0, got {frames.dtype} "
                         f"{frames.shape}")
    if not (isinstance(fps, int | float) and math.isfinite(fps) and fps > 0):
        raise ValueError(f"fps: expected a positive number, got {fps!r}")
    images = _paletted(frames) or [Image.fromarray(f) for f in frames]
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".gif")
    os.close(fd)
    try:
        images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:],
                       duration=max(1, round(1000 / fps)), loop=0, optimize=False,
                       comment=WRITTEN_BY)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path
