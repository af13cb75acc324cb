"""One process of the two-process (loopback) check in tests/test_parallel.py.

    python tests/hjepa/parallel_scripts/two_processes.py PROCESS_ID PORT DATASET_DIR RUN_DIR OUT_DIR

Each process has 2 CPU devices (XLA_FLAGS, set before jax is imported), joins the job at
127.0.0.1:PORT with gloo collectives, trains a few steps on the 4-device mesh (each process
reading only its own rows of the dataset), and writes what it saw to
OUT_DIR/process-<id>.json and its copy of the final params to OUT_DIR/params-<id>.npz.
"""

from __future__ import annotations

import os

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                           + " --xla_force_host_platform_device_count=2").strip()

import json  # noqa: E402
import sys  # noqa: E402
import traceback  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from hjepa import data as data_lib  # noqa: E402
from hjepa import distributed  # noqa: E402
from hjepa import train as train_lib  # noqa: E402
from hjepa.model import ModelConfig  # noqa: E402

MODEL = ModelConfig(obs_shape=(5,), action_size=2, latent_size=8, encoder_hidden=(32, 32),
                    predictor_hidden=(32, 32))
TRAIN = train_lib.TrainConfig(steps=4, batch_size=8, window=4, learning_rate=1e-3, seed=0,
                              checkpoint_every=2, log_every=2)


def main(process_id: int, port: int, dataset_dir: str, run_dir: str, out_dir: str) -> dict:
    distributed.initialize(f"127.0.0.1:{port}", 2, process_id, timeout_s=60)
    mesh = distributed.make_mesh()
    dataset = data_lib.load(dataset_dir)
    obs, _ = distributed.load_episodes(dataset, mesh)
    rows = sorted({shard.index[0].indices(obs.shape[0])[:2] for shard in obs.addressable_shards})

    state = train_lib.fit(MODEL, TRAIN, dataset, run_dir, progress=True, mesh=mesh)
    params = {"/".join(str(k) for k in path): np.asarray(leaf)
              for path, leaf in jax.tree_util.tree_leaves_with_path(state.params)}
    np.savez(os.path.join(out_dir, f"params-{process_id}.npz"), **params)

    # sharded "planning" of 8 items over the 4 devices of both processes, gathered in each
    doubled = distributed.shard_vmap(lambda x: 2.0 * x, mesh, in_axes=(0,))(
        distributed.put_global(jnp.arange(8.0), distributed.data_sharding(mesh)))
    result = {
        "process_index": jax.process_index(),
        "process_count": jax.process_count(),
        "local_devices": jax.local_device_count(),
        "devices": jax.device_count(),
        "mesh": {k: int(v) for k, v in mesh.shape.items()},
        "rows": [list(r) for r in rows],
        "step": int(state.step),
        "gathered": distributed.to_host(doubled).tolist(),
    }
    jax.distributed.shutdown()
    return result


if __name__ == "__main__":
    process_id, port = int(sys.argv[1]), int(sys.argv[2])
    dataset_dir, run_dir, out_dir = sys.argv[3:6]
    try:
        result = main(process_id, port, dataset_dir, run_dir, out_dir)
    except Exception:  # noqa: BLE001 - reported to the test through the JSON
        result = {"crash": traceback.format_exc()}
    with open(os.path.join(out_dir, f"process-{process_id}.json"), "w") as f:
        json.dump(result, f, indent=1)
    sys.exit(1 if "crash" in result else 0)
