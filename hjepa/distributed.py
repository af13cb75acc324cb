"""Scaling out with JAX's SPMD machinery: a device mesh, shardings, host/device transfers,
sharded window sampling and planning, and multi-host set-up. The sharded training step
itself lives with training (`hjepa.train.sharded_train_chunk`).

The mesh has a ``data`` axis and a ``model`` axis (``model=1`` unless asked otherwise):

    ============================  ===========================================================
    what                          how it is laid out
    ============================  ===========================================================
    episodes in memory [N, ...]   split over ``data`` along the episode axis (zero-padded to a
                                  multiple of the data axis); each process reads only the rows
                                  its own devices hold (`load_episodes`)
    a training batch [B, ...]     split over ``data`` along the batch axis (B must divide)
    parameters, optimiser state   replicated, or, when ``model > 1``, every leaf of at least
                                  `MIN_SHARD_SIZE` elements split over ``model`` along its
                                  last dimension that divides (`state_shardings`)
    metrics                       replicated
    planning episodes [E, ...]    split over ``data``; params replicated (`shard_vmap`)
    ============================  ===========================================================

The training step is `hjepa.train.train_step` jitted with these shardings; XLA's partitioner
inserts the gradient all-reduces (and the cross-device batch statistics VICReg needs). The
windows of a batch are drawn exactly as `hjepa.data.sample_windows` draws them, from the same
key, so a sharded run sees the same global batches as a one-device run and only the order of
floating-point reductions differs.

Multi-host: call `initialize` (before any other JAX call) in every process, build the mesh
over all processes' devices with `make_mesh`, and call `hjepa.train.fit(..., mesh=mesh)` /
`hjepa.evaluate.evaluate(..., mesh=mesh)` in every process. Files (config, metrics, TensorBoard)
are written by process 0 only (`is_main_process`); orbax checkpoints are saved and restored
by all processes together.

Example (one host, every visible device)::

    mesh = distributed.make_mesh()                    # data = all devices, model = 1
    state = train.fit(model_config, config, dataset, run_dir, mesh=mesh)
    result = evaluate.evaluate(task, key, num_episodes=64, model_config=model_config,
                               params=state.params, mesh=mesh)
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import math
import re
import socket
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from hjepa.checks import is_int

PyTree = Any

DATA = "data"
MODEL = "model"
AXES = (DATA, MODEL)

# Parameter leaves with fewer elements than this stay replicated even when model > 1
# (biases, norms and small kernels cost more to gather than to copy).
MIN_SHARD_SIZE = 1024


# ----------------------------------------------------------------------------- the mesh


@dataclasses.dataclass(frozen=True)
class MeshSpec:
    """The shape of a device mesh: `data` x `model` devices.

    Attributes:
      data: devices along the data axis; None: all devices not used by the model axis.
      model: devices along the model axis.
    """

    data: int | None = None
    model: int = 1

    @classmethod
    def parse(cls, text: str) -> MeshSpec:
        """Parses ``"data=8,model=1"`` (either part may be left out; ``"data=-1"`` = all).

        Raises:
          ValueError: not of the form ``data=N,model=M`` with positive integers.
        """
        values: dict[str, int | None] = {}
        for part in str(text).replace(" ", "").split(","):
            match = re.fullmatch(r"(data|model)=(-1|\d+)", part)
            if match is None or match.group(1) in values:
                raise ValueError(
                    f"mesh: expected 'data=N,model=M' (e.g. 'data=8,model=1'), got {text!r}"
                )
            number = int(match.group(2))
            values[match.group(1)] = None if number == -1 else number
        return cls(data=values.get("data"), model=values.get("model") or 1)

    def __str__(self) -> str:
        return f"data={'all' if self.data is None else self.data},model={self.model}"


def make_mesh(spec: MeshSpec | str | None = None, *,
              devices: Sequence[jax.Device] | None = None) -> Mesh:
    """A ``(data, model)`` mesh over `devices` (default: every device of every process).

    Args:
      spec: a `MeshSpec`, a string such as ``"data=8,model=1"``, or None (all devices on the
        data axis).
      devices: the devices to use (default `jax.devices()`).

    Raises:
      ValueError: the mesh's size is not the number of devices, or an axis is not positive.
    """
    if spec is None:
        spec = MeshSpec()
    elif isinstance(spec, str):
        spec = MeshSpec.parse(spec)
    devices = list(jax.devices() if devices is None else devices)
    count = len(devices)
    for name, value in (("data", spec.data), ("model", spec.model)):
        if value is not None and (not is_int(value)
                                  or value <= 0):
            raise ValueError(f"mesh: expected a positive number of {name} devices, got {value!r}")
    if spec.data is None:
        if count % spec.model:
            raise ValueError(
                f"mesh: the model axis ({spec.model}) must divide the {count} devices; "
                f"got {spec}"
            )
        data = count // spec.model
    else:
        data = spec.data
    if data * spec.model != count:
        raise ValueError(
            f"mesh: expected data x model = {count} (the number of devices), got "
            f"data={data} x model={spec.model} = {data * spec.model}"
        )
    axis_type = jax.sharding.AxisType.Auto
    return jax.make_mesh((data, spec.model), AXES, axis_types=(axis_type, axis_type),
                         devices=devices)


def data_size(mesh: Mesh) -> int:
    """Number of devices along the data axis."""
    return int(mesh.shape[DATA])


def replicated(mesh: Mesh) -> NamedSharding:
    """Every device holds the whole array."""
    return NamedSharding(mesh, P())


def data_sharding(mesh: Mesh) -> NamedSharding:
    """The leading axis split over the data axis (replicated over the model axis)."""
    return NamedSharding(mesh, P(DATA))


def check_divisible(mesh: Mesh, size: int, name: str = "batch_size") -> None:
    """Raises ValueError unless `size` (a global batch) divides evenly over the data axis."""
    devices = data_size(mesh)
    if size % devices:
        raise ValueError(
            f"{name}: expected a multiple of the mesh's data axis ({devices} devices), got "
            f"{size}"
        )


def leaf_spec(mesh: Mesh, shape: Sequence[int], *, min_size: int = MIN_SHARD_SIZE) -> P:
    """The PartitionSpec of one parameter (or optimiser-state) leaf.

    Replicated when the model axis has one device, when the leaf has fewer than `min_size`
    elements, or when no dimension divides by the model axis; otherwise split over the model
    axis along its last dimension that divides.
    """
    model = int(mesh.shape[MODEL])
    if model == 1 or len(shape) == 0 or math.prod(shape) < min_size:
        return P()
    for dim in reversed(range(len(shape))):
        if shape[dim] % model == 0:
            return P(*([None] * dim), MODEL)
    return P()


def state_shardings(mesh: Mesh, tree: PyTree, *, min_size: int = MIN_SHARD_SIZE) -> PyTree:
    """NamedShardings for a params / TrainState pytree (arrays or ShapeDtypeStructs)."""
    return jax.tree.map(
        lambda leaf: NamedSharding(mesh, leaf_spec(mesh, np.shape(leaf), min_size=min_size)),
        tree,
    )


# ----------------------------------------------------------------------------- host <-> device


def put_global(tree: PyTree, sharding: NamedSharding | PyTree) -> PyTree:
    """Places host values (the same in every process) on the mesh as global arrays.

    Each process transfers only the slices its own devices hold. Typed PRNG keys are placed
    as their key data and re-wrapped. `sharding` is one sharding or a matching pytree.
    """

    def put(x, sh):
        if isinstance(x, jax.Array) and jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
            impl = jax.random.key_impl(x)
            return jax.random.wrap_key_data(put(jax.random.key_data(x), sh), impl=impl)
        host = np.asarray(x)
        return jax.make_array_from_callback(host.shape, sh, lambda index: host[index])

    if isinstance(sharding, jax.sharding.Sharding):
        return jax.tree.map(lambda x: put(x, sharding), tree)
    return jax.tree.map(put, tree, sharding)


def to_host(x: jax.Array) -> np.ndarray:
    """The whole of a (possibly multi-process, sharded) array as a numpy array, in every process."""
    if not isinstance(x, jax.Array) or x.is_fully_addressable or x.is_fully_replicated:
        return np.asarray(x)
    from jax.experimental import multihost_utils

    return np.asarray(multihost_utils.process_allgather(x, tiled=True))


# ----------------------------------------------------------------------------- data


def load_episodes(dataset, mesh: Mesh) -> tuple[jax.Array, jax.Array]:
    """The dataset's episodes as global arrays split over the data axis.

    The episode axis is zero-padded to a multiple of the data axis; the padding is never
    sampled (`sample_windows` draws from the first `dataset.num_episodes` rows). Each
    process reads from the memory-mapped shards only the rows its own devices hold.

    Returns:
      (obs [N', T+1, *obs_shape], actions [N', T, A]) with N' = N rounded up to a multiple
      of the data axis.
    """
    num = dataset.num_episodes
    devices = data_size(mesh)
    padded = -(-num // devices) * devices
    sharding = data_sharding(mesh)
    starts = np.cumsum([0] + [len(s) for s in dataset.obs_shards])

    def rows(shards, index):
        lo, hi, _ = index[0].indices(padded)
        parts = []
        for k, shard in enumerate(shards):
            a, b = max(lo, starts[k]), min(hi, starts[k + 1])
            if a < b:
                parts.append(np.asarray(shard[a - starts[k]:b - starts[k]]))
        missing = hi - max(lo, min(hi, num))
        if missing:
            parts.append(np.zeros((missing, *shards[0].shape[1:]), shards[0].dtype))
        return np.concatenate(parts)[(slice(None), *index[1:])]

    def build(shards):
        shape = (padded, *shards[0].shape[1:])
        cache: dict = {}

        def callback(index):
            key = tuple((s.start, s.stop) for s in index)
            if key not in cache:
                cache[key] = rows(shards, index)
            return cache[key]

        return jax.make_array_from_callback(shape, sharding, callback)

    return build(dataset.obs_shards), build(dataset.action_shards)


@functools.partial(jax.jit, static_argnames=("num_episodes",))
def normalizer_stats(obs: jax.Array, num_episodes: int) -> tuple[jax.Array, jax.Array]:
    """Per-feature mean and std [*obs_shape] over the first `num_episodes` rows of obs
    [N', T+1, *obs_shape] (padding excluded), computed where the rows live."""
    valid = (jnp.arange(obs.shape[0]) < num_episodes).reshape(-1, *([1] * (obs.ndim - 1)))
    count = num_episodes * obs.shape[1]
    x = obs.astype(jnp.float32)
    mean = jnp.sum(jnp.where(valid, x, 0.0), axis=(0, 1)) / count
    var = jnp.sum(jnp.where(valid, (x - mean) ** 2, 0.0), axis=(0, 1)) / count
    return mean, jnp.sqrt(var)


def _shard_map(fn, mesh, in_specs, out_specs, *, check: bool = True):
    if hasattr(jax, "shard_map"):
        return jax.shard_map(fn, mesh=mesh, in_specs=in_specs, out_specs=out_specs,
                             check_vma=check)
    from jax.experimental.shard_map import shard_map  # older jax

    return shard_map(fn, mesh=mesh, in_specs=in_specs, out_specs=out_specs, check_rep=check)


def sample_windows(mesh: Mesh, obs: jax.Array, actions: jax.Array, key: jax.Array, *,
                   batch_size: int, window: int, num_episodes: int
                   ) -> tuple[jax.Array, jax.Array]:
    """`hjepa.data.sample_windows` over episodes split across the data axis. Jittable.

    Draws the same episode and start indices as `hjepa.data.sample_windows` on the first
    `num_episodes` rows; each data shard cuts the windows of the episodes it holds and a
    reduce-scatter hands every device its slice of the batch, so the traffic is the batch,
    never the dataset.

    Args:
      obs: [N', T+1, *obs_shape], split over the data axis.
      actions: [N', T, A], split over the data axis.
      key, batch_size (B, a multiple of the data axis), window (W), num_episodes (N <= N').

    Returns:
      (obs [B, W+1, *obs_shape], actions [B, W, A]), split over the data axis.
    """
    length = actions.shape[1]
    episode_key, start_key = jax.random.split(key)  # as hjepa.data.sample_windows
    episodes = jax.random.randint(episode_key, (batch_size,), 0, num_episodes)
    starts = jax.random.randint(start_key, (batch_size,), 0, length - window + 1)

    def local(obs, actions, episodes, starts):
        rows = obs.shape[0]
        index = episodes - jax.lax.axis_index(DATA) * rows
        mine = (index >= 0) & (index < rows)
        index = jnp.clip(index, 0, rows - 1)

        def take(episode, start):
            o = jax.lax.dynamic_slice_in_dim(obs[episode], start, window + 1, axis=0)
            a = jax.lax.dynamic_slice_in_dim(actions[episode], start, window, axis=0)
            return o, a

        o, a = jax.vmap(take)(index, starts)
        o = jnp.where(mine.reshape(-1, *([1] * (o.ndim - 1))), o, jnp.zeros_like(o))
        a = jnp.where(mine.reshape(-1, *([1] * (a.ndim - 1))), a, jnp.zeros_like(a))
        scatter = functools.partial(jax.lax.psum_scatter, axis_name=DATA, scatter_dimension=0,
                                    tiled=True)
        return scatter(o), scatter(a)

    fn = _shard_map(local, mesh, in_specs=(P(DATA), P(DATA), P(), P()),
                    out_specs=(P(DATA), P(DATA)))
    return fn(obs, actions, episodes, starts)


# ----------------------------------------------------------------------------- planning


def shard_vmap(fn: Callable, mesh: Mesh, in_axes: Sequence[int | None]) -> Callable:
    """``jit(vmap(fn))`` with the batch split over the data axis.

    Every argument with in_axes 0 has a leading batch axis that is split over the data axis
    (its size must be a multiple of the data axis); arguments with None are replicated. Each
    device runs `vmap(fn)` on its own slice; nothing is communicated. Outputs are batched on
    axis 0 and split over the data axis.

    Example::

        plan = distributed.shard_vmap(functools.partial(planners.mppi, num_samples=256),
                                      mesh, in_axes=(0, None, 0))
        plans = plan(problems, init_actions, keys)      # problems batched [E, ...]
    """
    in_axes = tuple(in_axes)
    if any(axis not in (0, None) for axis in in_axes):
        raise ValueError(f"in_axes: expected 0 or None for each argument, got {in_axes}")
    specs = tuple(P(DATA) if axis == 0 else P() for axis in in_axes)
    # No collectives inside, so no replication checking: `fn` may build scan carries from
    # constants (the planners do), which the varying-axes check would reject.
    return jax.jit(_shard_map(jax.vmap(fn, in_axes=in_axes), mesh, in_specs=specs,
                              out_specs=P(DATA), check=False))


# ----------------------------------------------------------------------------- processes


def is_main_process() -> bool:
    """True in process 0, the one that writes logs, metrics and progress."""
    return jax.process_index() == 0


def barrier(name: str) -> None:
    """Waits until every process reaches the barrier `name` (a no-op in one process)."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


def _split_address(address: str) -> tuple[str, int]:
    match = re.fullmatch(r"\[?([^\[\]]+?)\]?:(\d{1,5})", str(address))
    if match is None or not 0 < int(match.group(2)) < 65536:
        raise ValueError(f"coordinator: expected HOST:PORT (e.g. 10.0.0.1:1234), got {address!r}")
    return match.group(1), int(match.group(2))


def _wait_for_coordinator(host: str, port: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    error: Exception | None = None
    while True:
        try:
            with socket.create_connection((host, port), timeout=min(2.0, timeout_s)):
                return
        except OSError as exc:
            error = exc
        if time.monotonic() >= deadline:
            raise RuntimeError(
                f"coordinator: expected process 0 to be listening at {host}:{port}; could not "
                f"connect within {timeout_s:g} s ({error})"
            )
        time.sleep(0.2)


def initialize(coordinator: str | None = None, num_processes: int | None = None,
               process_id: int | None = None, *, timeout_s: int = 300,
               auto: bool = False) -> None:
    """Joins this process to a multi-process JAX job (`jax.distributed.initialize`).

    Call it first thing, in every process, before any other JAX call. On CPU the collectives
    go through gloo. With `coordinator`, `num_processes` and `process_id` all given, the job
    is set up explicitly; with `auto=True` and none given, JAX detects the cluster (TPU pod
    slices, SLURM, Open MPI, Kubernetes).

    Every wait is bounded by `timeout_s`: a process other than 0 first checks that the
    coordinator is reachable and raises RuntimeError if it is not; process 0 (which hosts the
    coordinator) waits at most `timeout_s` for the others, after which JAX ends the process
    (XLA aborts it; a message naming what was awaited is printed first).

    Raises:
      ValueError: an incomplete or inconsistent set of arguments.
      RuntimeError: the coordinator could not be reached within `timeout_s`.
    """
    given = [coordinator is not None, num_processes is not None, process_id is not None]
    if any(given) and not all(given):
        raise ValueError(
            "coordinator, num_processes, process_id: expected all three (or none, with auto), "
            f"got coordinator={coordinator!r}, num_processes={num_processes!r}, "
            f"process_id={process_id!r}"
        )
    if not any(given) and not auto:
        raise ValueError("initialize: expected coordinator, num_processes and process_id, "
                         "or auto=True")
    if not is_int(timeout_s) or timeout_s <= 0:
        raise ValueError(f"timeout_s: expected a positive integer, got {timeout_s!r}")
    kwargs: dict[str, Any] = {}
    if all(given):
        host, port = _split_address(coordinator)
        if not is_int(num_processes) \
                or num_processes <= 0:
            raise ValueError(f"num_processes: expected a positive integer, got {num_processes!r}")
        if not is_int(process_id) \
                or not 0 <= process_id < num_processes:
            raise ValueError(
                f"process_id: expected an integer in [0, {num_processes}), got {process_id!r}"
            )
        if process_id != 0:
            _wait_for_coordinator(host, port, timeout_s)
        kwargs.update(coordinator_address=f"{host}:{port}", num_processes=num_processes,
                      process_id=process_id)
    try:
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    except (AttributeError, KeyError, ValueError):  # a jax without the option
        pass
    accepted = inspect.signature(jax.distributed.initialize).parameters
    for name, value in (("initialization_timeout", timeout_s),
                        ("shutdown_timeout_seconds", min(timeout_s, 60))):
        if name in accepted:
            kwargs[name] = value
    what = (f"{num_processes} processes at {coordinator}" if all(given)
            else "the auto-detected cluster")
    watchdog = threading.Timer(max(0.0, timeout_s - 0.5), lambda: print(
        f"hjepa: jax.distributed.initialize: not every one of {what} arrived within "
        f"{timeout_s} s; JAX will now end this process", file=sys.stderr, flush=True))
    watchdog.daemon = True
    watchdog.start()
    try:
        jax.distributed.initialize(**kwargs)
    except Exception as error:  # noqa: BLE001 - re-raised with the context
        raise RuntimeError(
            f"jax.distributed.initialize: could not join {what} within {timeout_s} s: {error}"
        ) from error
    finally:
        watchdog.cancel()
