"""Reward-free data: collection on device, an on-disk dataset, and window sampling.

On-disk format (a directory, every file written atomically):

    manifest.json          format, version, task, obs kind and shapes, dtypes, policy, seed,
                           library versions, and the list of shards
    obs-00000.npy          observations [n, T+1, *obs_shape] of shard 0 (numpy .npy)
    actions-00000.npy      actions [n, T, A] of shard 0
    positions-00000.npy    where each observed state is in the task's goal space [n, T+1, P]
                           (`Task.position`: what goal-space models learn to read off latents;
                           absent from datasets collected before it was recorded)
    ...

Every `.npy` opens memory-mapped with `numpy.load(path, mmap_mode="r")`. A dataset is
first written under `<path>.partial/` and renamed into place when complete, so a reader
never sees half a dataset; an interrupted collection resumes from its last complete shard.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import shutil
import tempfile
import time
from typing import Any

import jax
import numpy as np

from hjepa import ownership
from hjepa.checks import is_int
from hjepa.io import (  # noqa: F401  (re-exported)
    atomic_save_npy,
    atomic_write_bytes,
    atomic_write_json,
    check_writable_directory,
    file_sha256,
)
from hjepa.tasks import Task, make
from hjepa.tasks.policies import (  # noqa: F401  (re-exported)
    POLICIES,
    POLICY_TASKS,
    ExplorationPolicy,
    default_policy,
    policy_kind,
    run_policy,
)

FORMAT = "hjepa-dataset"
FORMAT_VERSION = 1
SHARD_KINDS = ("obs", "actions", "positions")  # the files of a shard


@functools.partial(jax.jit, static_argnames=("task", "policy", "num_episodes", "episode_length",
                                             "with_positions"))
def collect_episodes(
    task: Task,
    policy,
    key: jax.Array,
    *,
    num_episodes: int,
    episode_length: int,
    with_positions: bool = False,
) -> tuple[jax.Array, ...]:
    """Rolls out an exploration policy in `num_episodes` episodes at once.

    `policy`: a hashable object whose `bind(task)` gives a stepper with
    `init(key, state) -> carry` and `__call__(carry, key, state, step_index []) -> (carry,
    action [A])`: `ExplorationPolicy` (AR(1) random actions, any task),
    `hjepa.tasks.ant_maze.WaypointPolicy` (a gait controller walking to random waypoints in
    ant_umaze), `hjepa.tasks.reacher.ReachingPolicy` (noisy reach-and-hold of random poses) or
    `hjepa.tasks.pusher.PushPolicy` (noisy approach-and-push toward random points).
    Actions are clipped to the task's bounds; each episode starts at `task.exploration_start`.

    Returns:
      (obs [N, T+1, *obs_shape], actions [N, T, A]) with T = episode_length, and with
      `with_positions` the goal-space positions of the observed states [N, T+1, P]
      (`task.position`) third.
    """
    def record(state):
        return task.observe(state), task.position(state)

    def episode(key):
        (obs, positions), actions = run_policy(task, policy, key, episode_length, record)
        return (obs, actions, positions) if with_positions else (obs, actions)

    return jax.vmap(episode)(jax.random.split(key, num_episodes))


# ----------------------------------------------------------------------------- files


def _versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {}
    for name in ("hjepa", "jax", "brax", "numpy"):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            out[name] = "unknown"
    return out


@dataclasses.dataclass(frozen=True)
class CollectConfig:
    """What `collect` gathers. Hashable and saved in the manifest."""

    task: str = "reacher"
    obs: str = "state"
    num_episodes: int = 1000
    episode_length: int = 50
    episodes_per_shard: int = 500
    seed: int = 0
    policy: Any = ExplorationPolicy()  # any registered policy (hjepa.tasks.policies)
    image_size: int = 64  # side of pixel observations (ignored for state observations)

    def make_task(self) -> Task:
        """The task this config collects from."""
        return make(self.task, self.obs, image_size=self.image_size)

    def validate(self) -> None:
        self.make_task()  # raises on unknown names and bad image sizes
        for name in ("num_episodes", "episode_length", "episodes_per_shard"):
            value = getattr(self, name)
            if not is_int(value) or value <= 0:
                raise ValueError(f"{name}: expected a positive integer, got {value!r}")
        kind = policy_kind(self.policy)
        if self.task not in POLICY_TASKS.get(kind, (self.task,)):
            raise ValueError(
                f"policy: the {kind!r} exploration policy works on {POLICY_TASKS[kind]}, "
                f"got task {self.task!r}; use ExplorationPolicy() (kind 'ar1') there")
        self.policy.validate()

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        if not isinstance(self.policy, ExplorationPolicy):  # the AR(1) dict stays as it was
            out["policy"]["kind"] = policy_kind(self.policy)
        return out


# Policies written for particular tasks.


def collect(config: CollectConfig, path: str, *, overwrite: bool = False,
            progress: bool = True) -> Dataset:
    """Collects a reward-free dataset into the directory `path`, shard by shard.

    Resumes an interrupted collection of the same config from its last complete shard.
    Shard i is drawn from `fold_in(key(seed), i)`, so an interrupted and resumed collection
    writes the same bytes as an uninterrupted one. The collection holds a lock on its
    directory (`hjepa.ownership`), and the manifest records every shard's SHA-256.

    Raises:
      ValueError: bad config; `path` exists and `overwrite` is False, or it is not a dataset
        hjepa wrote (`overwrite` replaces only those); a partial collection of another
        config is in the way. ownership.PathInUse: another process is collecting there.
    """
    config.validate()
    path = os.path.abspath(path)
    check_writable_directory(path, name="path")
    if os.path.exists(path):
        if not overwrite:
            raise ValueError(
                f"path: {path} already exists; pass overwrite=True (--overwrite) to replace it"
            )
        ownership.check_removable(path, "dataset", name="path")
    partial = path + ".partial"
    if os.path.exists(partial):
        ownership.check_removable(partial, "dataset", name="path")
    new = not os.path.exists(partial)
    with ownership.locked(partial, name="path"):
        try:
            return _collect_locked(config, path, partial, progress=progress)
        except BaseException:
            if new and os.path.isdir(partial) and not any(
                    name.endswith(".npy") and ".tmp-" not in name
                    for name in os.listdir(partial)):
                ownership.discard(partial)  # nothing to resume from: leave nothing
            raise


def _collect_locked(config: CollectConfig, path: str, partial: str, *,
                    progress: bool) -> Dataset:
    """`collect`'s work, with the lock on `partial` held."""
    config_path = os.path.join(partial, "collect-config.json")
    if os.path.exists(config_path):
        try:
            with open(config_path) as f:
                previous = json.load(f)
        except (OSError, json.JSONDecodeError):
            previous = None
        if previous != json.loads(json.dumps(config.to_dict())):
            raise ValueError(
                f"path: {partial} holds an interrupted collection of another config; "
                "remove it or collect with the same config to resume"
            )
        for name in os.listdir(partial):  # half-written files of the interrupted run
            if ".tmp-" in name:
                os.remove(os.path.join(partial, name))
    else:
        ownership.remove_contents(partial, "dataset", name="path")
        ownership.mark(partial, "dataset")
        atomic_write_json(config_path, config.to_dict())

    task = config.make_task()
    key = jax.random.key(config.seed)
    num_shards = -(-config.num_episodes // config.episodes_per_shard)
    shards = []
    position_size = None
    iterator = range(num_shards)
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(iterator, desc="collect", unit="shard")
    for index in iterator:
        done_before = index * config.episodes_per_shard
        count = min(config.episodes_per_shard, config.num_episodes - done_before)
        names = {"obs": f"obs-{index:05d}.npy", "actions": f"actions-{index:05d}.npy",
                 "positions": f"positions-{index:05d}.npy", "episodes": count}
        done = all(os.path.exists(os.path.join(partial, names[k])) for k in SHARD_KINDS)
        if not done:
            obs, actions, positions = collect_episodes(
                task, config.policy, jax.random.fold_in(key, index),
                num_episodes=count, episode_length=config.episode_length, with_positions=True,
            )
            obs_np = np.asarray(obs)
            if task.obs_kind == "pixels":
                obs_np = obs_np.astype(np.uint8)
            atomic_save_npy(os.path.join(partial, names["actions"]), np.asarray(actions))
            atomic_save_npy(os.path.join(partial, names["positions"]),
                            np.asarray(positions, np.float32))
            atomic_save_npy(os.path.join(partial, names["obs"]), obs_np)
        if position_size is None:  # P, from a shard's positions (a resumed one: from its file)
            position_size = int(np.load(os.path.join(partial, names["positions"]),
                                        mmap_mode="r").shape[-1])
        shards.append(names)

    manifest = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "task": config.task,
        "obs_kind": config.obs,
        "obs_shape": list(task.obs_shape),
        "obs_dtype": "uint8" if task.obs_kind == "pixels" else "float32",
        "action_size": task.action_size,
        "position_size": position_size,
        "episode_length": config.episode_length,
        "num_episodes": config.num_episodes,
        "seed": config.seed,
        "collect_config": config.to_dict(),
        "versions": _versions(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "shards": shards,
        "sha256": {shard[k]: file_sha256(os.path.join(partial, shard[k]))
                   for shard in shards for k in SHARD_KINDS},
    }
    atomic_write_json(os.path.join(partial, "manifest.json"), manifest)
    os.remove(config_path)
    if os.path.exists(path):  # overwrite: replace only once the new dataset is complete
        ownership.check_removable(path, "dataset", name="path")  # nothing new appeared in it
        aside = tempfile.mkdtemp(prefix=".hjepa-replaced-", dir=os.path.dirname(path))
        os.replace(path, os.path.join(aside, "old"))
        os.replace(partial, path)
        shutil.rmtree(aside)
    else:
        os.replace(partial, path)
    os.remove(os.path.join(path, ownership.LOCK))  # still held (by descriptor) until returned
    return load(path)


@dataclasses.dataclass(frozen=True)
class Dataset:
    """A dataset on disk: the manifest and memory-mapped shards."""

    path: str
    manifest: dict
    obs_shards: tuple  # each [n, T+1, *obs_shape], memory-mapped
    action_shards: tuple  # each [n, T, A], memory-mapped
    position_shards: tuple = ()  # each [n, T+1, P], memory-mapped; () in older datasets

    @property
    def has_positions(self) -> bool:
        """Whether the dataset records goal-space positions (`Task.position`) of its states."""
        return bool(self.position_shards)

    def positions(self) -> np.ndarray:
        """Every state's goal-space position [N, T+1, P] (in memory).

        Raises:
          ValueError: the dataset was collected before positions were recorded.
        """
        if not self.has_positions:
            raise ValueError(f"dataset {self.path} records no goal-space positions (collected "
                             "before hjepa recorded them); collect it again to train a "
                             "goal-space model on it")
        return np.concatenate([np.asarray(p) for p in self.position_shards])

    @property
    def task(self) -> str:
        return self.manifest["task"]

    @property
    def obs_kind(self) -> str:
        return self.manifest["obs_kind"]

    @property
    def num_episodes(self) -> int:
        return self.manifest["num_episodes"]

    @property
    def episode_length(self) -> int:
        return self.manifest["episode_length"]

    @property
    def obs_shape(self) -> tuple[int, ...]:
        return tuple(self.manifest["obs_shape"])

    def make_task(self) -> Task:
        """The task the dataset was collected from (pixels at the dataset's image size)."""
        size = self.obs_shape[0] if self.obs_kind == "pixels" else None
        return make(self.task, self.obs_kind, image_size=size)

    @property
    def fingerprint(self) -> str:
        """What identifies the data, wherever the directory moves: a hash of the collection's
        config, shapes and shard digests (of the manifest's content for datasets written
        before shard digests), 16 hex digits."""
        return fingerprint(self.manifest)

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """All episodes in memory: (obs [N, T+1, *obs_shape], actions [N, T, A])."""
        return (np.concatenate([np.asarray(o) for o in self.obs_shards]),
                np.concatenate([np.asarray(a) for a in self.action_shards]))


def fingerprint(manifest: dict) -> str:
    """The fingerprint of the dataset a manifest describes (`Dataset.fingerprint`)."""
    if "sha256" in manifest:
        keys = ("task", "obs_kind", "obs_shape", "obs_dtype", "action_size", "episode_length",
                "num_episodes", "collect_config", "sha256")
    else:
        keys = tuple(k for k in sorted(manifest) if k != "versions")
    content = json.dumps({k: manifest.get(k) for k in keys}, sort_keys=True)
    return hashlib.sha256(content.encode()).hexdigest()[:16]


def verify(dataset: Dataset) -> bool:
    """Checks every shard file against the digest the manifest recorded at collection: True
    when verified, False for a dataset written before digests.

    Raises:
      ValueError: a shard's bytes changed since it was collected.
    """
    digests = dataset.manifest.get("sha256")
    if digests is None:
        return False
    for name, expected in sorted(digests.items()):
        if file_sha256(os.path.join(dataset.path, name)) != expected:
            raise ValueError(f"dataset file {os.path.join(dataset.path, name)} does not match "
                             "its digest (its bytes changed since it was collected)")
    return True


_MANIFEST_KEYS = ("task", "obs_kind", "obs_shape", "obs_dtype", "action_size", "episode_length",
                  "num_episodes", "shards")


def load(path: str, *, task: str | None = None, obs_kind: str | None = None) -> Dataset:
    """Opens a dataset written by `collect`, checking it against what the caller expects.

    Raises:
      ValueError: the path does not exist or is not a complete dataset; a file is
        missing or truncated; the dataset holds another task or observation kind.
    """
    path = os.path.abspath(path)
    manifest_path = os.path.join(path, "manifest.json")
    if not os.path.isdir(path):
        raise ValueError(f"dataset path: expected a dataset directory, {path} does not exist")
    try:
        with open(manifest_path) as f:
            manifest = json.load(f)
    except FileNotFoundError:
        raise ValueError(
            f"dataset path: {path} has no manifest.json (not a dataset, or an incomplete one)"
        ) from None
    except json.JSONDecodeError as error:
        raise ValueError(f"dataset manifest {manifest_path} is corrupt: {error}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ValueError(f"dataset manifest {manifest_path}: format is not {FORMAT!r}")
    missing = [k for k in _MANIFEST_KEYS if k not in manifest]
    if missing:
        raise ValueError(f"dataset manifest {manifest_path} is incomplete: missing {missing}")
    if task is not None and manifest["task"] != task:
        raise ValueError(
            f"dataset {path}: expected task {task!r}, the dataset holds {manifest['task']!r}"
        )
    if obs_kind is not None and manifest["obs_kind"] != obs_kind:
        raise ValueError(
            f"dataset {path}: expected {obs_kind!r} observations, the dataset holds "
            f"{manifest['obs_kind']!r} observations"
        )
    try:
        shards = _open_shards(path, manifest)
    except (KeyError, TypeError, IndexError) as error:  # a hand-edited manifest
        raise ValueError(f"dataset manifest {manifest_path} is malformed "
                         f"({type(error).__name__}: {error}); collect the dataset again") from None
    return Dataset(path, manifest, shards["obs"], shards["actions"], shards["positions"])


def _open_shards(path: str, manifest: dict) -> dict[str, tuple]:
    """The memory-mapped shards of a dataset by kind (`SHARD_KINDS`; positions only where the
    manifest records them), checked against its manifest."""
    opened = {kind: [] for kind in SHARD_KINDS}
    length = manifest["episode_length"]
    for shard in manifest["shards"]:
        n = shard["episodes"]
        expected = {
            "obs": ((n, length + 1, *manifest["obs_shape"]), manifest["obs_dtype"]),
            "actions": ((n, length, manifest["action_size"]), "float32"),
        }
        if "position_size" in manifest:
            expected["positions"] = ((n, length + 1, manifest["position_size"]), "float32")
        for kind, (shape, dtype) in expected.items():
            file = os.path.join(path, shard[kind])
            try:
                array = np.load(file, mmap_mode="r")
            except (OSError, ValueError, EOFError) as error:
                raise ValueError(f"dataset file {file} is missing or corrupt: {error}") from None
            if array.shape != shape or array.dtype != np.dtype(dtype):
                raise ValueError(
                    f"dataset file {file}: expected {dtype}{list(shape)}, "
                    f"found {array.dtype}{list(array.shape)}"
                )
            opened[kind].append(array)
    return {kind: tuple(arrays) for kind, arrays in opened.items()}


def window_indices(key: jax.Array, num_episodes: int, episode_length: int, *, batch_size: int,
                   window: int) -> tuple[jax.Array, jax.Array]:
    """Random windows as (episode [B], start [B]) indices: uniform episodes, uniform starts
    in [0, T − W]. Shared by `sample_windows` (in memory) and `read_windows` (from disk), so
    both draw the same windows for the same key."""
    episode_key, start_key = jax.random.split(key)
    episodes = jax.random.randint(episode_key, (batch_size,), 0, num_episodes)
    starts = jax.random.randint(start_key, (batch_size,), 0, episode_length - window + 1)
    return episodes, starts


def sample_windows(
    obs: jax.Array, actions: jax.Array, key: jax.Array, *, batch_size: int, window: int
) -> tuple[jax.Array, jax.Array]:
    """Samples random windows of `window` steps from episodes held in memory. Jittable.

    Args:
      obs: [N, T+1, *obs_shape].
      actions: [N, T, A].
      key: a `jax.random` key.
      batch_size: B.
      window: W <= T.

    Returns:
      (obs [B, W+1, *obs_shape], actions [B, W, A]).
    """
    num_episodes, length = actions.shape[0], actions.shape[1]
    episodes, starts = window_indices(key, num_episodes, length, batch_size=batch_size,
                                      window=window)

    def take(episode, start):
        o = jax.lax.dynamic_slice_in_dim(obs[episode], start, window + 1, axis=0)
        a = jax.lax.dynamic_slice_in_dim(actions[episode], start, window, axis=0)
        return o, a

    return jax.vmap(take)(episodes, starts)


def read_windows(dataset: Dataset, episodes: np.ndarray, starts: np.ndarray,
                 window: int) -> tuple[np.ndarray, np.ndarray]:
    """Reads windows from the dataset's memory-mapped shards; only those bytes are read.

    Args:
      dataset: an opened dataset.
      episodes: global episode indices [B] (0 <= e < num_episodes).
      starts: first step of each window [B] (0 <= s <= T − W).
      window: W.

    Returns:
      (obs [B, W+1, *obs_shape] in the dataset's dtype, actions [B, W, A]).
    """
    offsets = np.cumsum([0] + [len(a) for a in dataset.action_shards])  # [S+1]
    episodes, starts = np.asarray(episodes), np.asarray(starts)
    shard_of = np.searchsorted(offsets, episodes, side="right") - 1  # [B]
    obs = [dataset.obs_shards[s][e - offsets[s], t:t + window + 1]
           for s, e, t in zip(shard_of, episodes, starts, strict=True)]
    actions = [dataset.action_shards[s][e - offsets[s], t:t + window]
               for s, e, t in zip(shard_of, episodes, starts, strict=True)]
    return np.stack(obs), np.stack(actions)


def observation_stats(dataset: Dataset, *, per_channel: bool,
                      chunk_episodes: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std of the observations, streamed over the shards in bounded memory.

    Args:
      dataset: an opened dataset.
      per_channel: reduce over everything but the last axis (images [H, W, C] -> [C]);
        otherwise per feature ([*obs_shape]).
      chunk_episodes: episodes read at a time (memory bound).

    Returns:
      (mean, std), float32 arrays of shape [C] or [*obs_shape].
    """
    total = total_sq = None
    count = 0
    for shard in dataset.obs_shards:
        for first in range(0, len(shard), chunk_episodes):
            block = np.asarray(shard[first:first + chunk_episodes], np.float64)
            axes = tuple(range(block.ndim - 1)) if per_channel else (0, 1)
            part, part_sq = block.sum(axis=axes), np.square(block).sum(axis=axes)
            total = part if total is None else total + part
            total_sq = part_sq if total_sq is None else total_sq + part_sq
            count += block.size // part.size
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean**2, 0.0))
    return mean.astype(np.float32), std.astype(np.float32)


def _same_collection(stored: dict | None, config: CollectConfig) -> bool:
    """Whether a manifest's `collect_config` describes the data `config` would collect.

    State observations do not depend on `image_size`, so it is ignored for them.
    """
    wanted = json.loads(json.dumps(config.to_dict()))
    if stored is None:
        return False
    if config.obs == "state":
        stored = {k: v for k, v in stored.items() if k != "image_size"}
        wanted.pop("image_size")
    return stored == wanted


def collect_or_load(config: CollectConfig, path: str, *, overwrite: bool = False,
                    progress: bool = True) -> Dataset:
    """Loads the dataset at `path` if it was collected with `config`, else collects it.

    Raises:
      ValueError: `path` holds a dataset of another config and `overwrite` is False.
    """
    config.validate()
    if os.path.exists(os.path.join(path, "manifest.json")) and not overwrite:
        dataset = load(path)
        if not _same_collection(dataset.manifest.get("collect_config"), config):
            raise ValueError(
                f"path: {path} holds a dataset of another config "
                f"({dataset.manifest.get('collect_config')}); pass overwrite=True (--overwrite) "
                "or choose another path"
            )
        return dataset
    return collect(config, path, overwrite=overwrite, progress=progress)
