"""Runs the 8-device checks of tests/test_parallel.py in a fresh process and writes JSON.

    python tests/hjepa/parallel_scripts/eight_devices.py train|plan DATASET_DIR OUT_DIR

XLA_FLAGS must give 8 host devices before jax is imported, so this runs in its own process
(the pytest process already has jax with one device). Each check records what it measured;
the test asserts on the JSON (OUT_DIR/<part>.json). The two parts (training and
checkpoints; planning) run as two processes side by side. Sizes are tiny: the point is the code
path and the agreement with one device, not the numbers.
"""

from __future__ import annotations

import os

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                           + " --xla_force_host_platform_device_count=8").strip()

import dataclasses  # noqa: E402
import functools  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import planners  # noqa: E402
from hjepa import checkpoint as ckpt  # noqa: E402
from hjepa import data as data_lib  # noqa: E402
from hjepa import distributed, tasks  # noqa: E402
from hjepa import evaluate as evaluate_lib  # noqa: E402
from hjepa import model as model_lib  # noqa: E402
from hjepa import train as train_lib  # noqa: E402
from hjepa.model import ModelConfig  # noqa: E402

MODEL = ModelConfig(obs_shape=(5,), action_size=2, latent_size=8, encoder_hidden=(32, 32),
                    predictor_hidden=(32, 32))
# 8 steps, one per logged chunk so metrics.jsonl holds the per-step loss curve.
TRAIN = train_lib.TrainConfig(steps=8, batch_size=16, window=4, learning_rate=1e-3, seed=0,
                              checkpoint_every=8, log_every=1)


def losses_of(run_dir):
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        return [json.loads(line)["loss"] for line in f if line.strip()]


def leaves(tree):
    return [np.asarray(x) for x in jax.tree.leaves(tree)]


def max_abs_diff(a, b):
    return max(float(np.max(np.abs(x - y))) for x, y in zip(leaves(a), leaves(b), strict=True))


def error_of(fn):
    try:
        fn()
    except (ValueError, RuntimeError) as error:
        return {"type": type(error).__name__, "message": str(error)}
    return None


def setup(dataset_dir):
    devices = jax.devices()
    assert len(devices) == 8, devices
    meshes = {"data8": distributed.make_mesh(),
              "data4_model2": distributed.make_mesh("data=4,model=2")}
    return devices, data_lib.load(dataset_dir), meshes, {"devices": len(devices), "timings": {}}


def train_part(dataset_dir: str, out_dir: str) -> dict:
    devices, dataset, meshes, results = setup(dataset_dir)

    # --- training: the same loss curve on 1 device, 8 devices, and 4 x 2, as without a mesh
    t0 = time.perf_counter()
    runs, states = {}, {}
    for name, mesh in [("none", None), ("data8", meshes["data8"]),
                       ("data4_model2", meshes["data4_model2"])]:
        run_dir = os.path.join(out_dir, f"run-{name}")
        states[name] = train_lib.fit(MODEL, TRAIN, dataset, run_dir, progress=False, mesh=mesh)
        runs[name] = losses_of(run_dir)
        results["timings"][f"train_{name}"] = time.perf_counter() - t0
        t0 = time.perf_counter()
    base = np.asarray(runs["none"])
    results["train"] = {
        name: {
            "losses": runs[name],
            "max_rel_loss_diff": float(np.max(np.abs(np.asarray(runs[name]) - base)
                                              / np.abs(base))),
            "max_abs_param_diff": max_abs_diff(states[name].params, states["none"].params),
            "step": int(states[name].step),
        }
        for name in runs
    }
    np.savez(os.path.join(out_dir, "params-none.npz"), *leaves(states["none"].params))
    specs = jax.tree.map(lambda x: str(x.sharding.spec), states["data4_model2"].params)
    results["model_axis_specs"] = sorted(set(jax.tree.leaves(specs)))

    t0 = time.perf_counter()
    # --- sampling: the windows equal hjepa.data.sample_windows, also with padding (3 devices)
    all_obs, all_actions = dataset.arrays()
    key = jax.random.key(7)
    want = data_lib.sample_windows(jnp.asarray(all_obs), jnp.asarray(all_actions), key,
                                   batch_size=24, window=4)
    sampling = {}
    for name, mesh in [("data3", distributed.make_mesh("data=3", devices=devices[:3])),
                       ("data8", meshes["data8"]), ("data4_model2", meshes["data4_model2"])]:
        obs, actions = distributed.load_episodes(dataset, mesh)
        fn = jax.jit(functools.partial(distributed.sample_windows, mesh, batch_size=24, window=4,
                                       num_episodes=dataset.num_episodes))
        got = fn(obs, actions, key)
        sampling[name] = {
            "rows": int(obs.shape[0]),
            "equal": bool(all(np.array_equal(np.asarray(g), np.asarray(w))
                              for g, w in zip(got, want, strict=True))),
            "batch_spec": str(got[0].sharding.spec),
        }
    results["sampling"] = sampling

    results["timings"]["sampling"] = time.perf_counter() - t0
    t0 = time.perf_counter()

    # --- checkpoints: saved on the 8-device mesh, restored on 4 devices and on 1
    run8 = os.path.join(out_dir, "run-data8")
    saved = states["data8"]
    restored = {}
    for name, mesh in [("data4", distributed.make_mesh("data=4", devices=devices[:4])),
                       ("data1", distributed.make_mesh("data=1", devices=devices[4:5])),
                       ("data2_model2", distributed.make_mesh("data=2,model=2",
                                                           devices=devices[:4]))]:
        params = train_lib.load_run(run8, mesh=mesh)[2] if name == "data4" else saved.params
        like = train_lib.abstract_train_state(mesh, MODEL, TRAIN)
        mngr = ckpt.manager(os.path.join(run8, "checkpoints"))
        try:
            state = ckpt.restore(mngr, like)
        finally:
            mngr.close()
        restored[name] = {
            "params_equal": max_abs_diff(params, saved.params) == 0.0,
            "state_equal": max_abs_diff(state, saved) == 0.0,
            "devices": sorted({d.id for x in jax.tree.leaves(state)
                               for d in x.sharding.device_set}),
            "specs": sorted({str(x.sharding.spec) for x in jax.tree.leaves(state)}),
        }
    results["restore"] = restored
    results["timings"]["restore"] = time.perf_counter() - t0

    # --- bad input
    results["errors"] = {
        "mesh": error_of(lambda: distributed.make_mesh("data=3,model=2")),
        "mesh_syntax": error_of(lambda: distributed.make_mesh("data:8")),
        "batch": error_of(lambda: train_lib.fit(
            MODEL, dataclasses.replace(TRAIN, batch_size=12),
            dataset, os.path.join(out_dir, "run-bad"), progress=False, mesh=meshes["data8"])),
    }
    results["bad_run_dir_created"] = os.path.exists(os.path.join(out_dir, "run-bad"))
    return results


def plan_part(dataset_dir: str, out_dir: str) -> dict:
    devices, dataset, meshes, results = setup(dataset_dir)
    all_obs, _ = dataset.arrays()
    params = jax.jit(functools.partial(model_lib.init, MODEL))(
        jax.random.key(1), all_obs.mean(axis=(0, 1)), all_obs.std(axis=(0, 1)))
    host_params = jax.tree.map(np.asarray, params)  # on no device in particular

    # --- planning: closed-loop MPC episodes split over 8 devices = the same episodes on one
    t0 = time.perf_counter()
    task = tasks.make("reacher", "state")
    results["errors"] = {"episodes": error_of(lambda: evaluate_lib.evaluate(
        task, jax.random.key(0), num_episodes=6, mesh=meshes["data8"]))}
    options = dict(num_samples=16, iterations=1)
    kwargs = dict(num_episodes=8, model_config=MODEL, params=host_params, planner_options=options,
                  horizon=4, num_steps=4)
    one = evaluate_lib.evaluate(task, jax.random.key(3), **kwargs)
    eight = evaluate_lib.evaluate(task, jax.random.key(3), mesh=meshes["data8"], **kwargs)
    results["evaluate"] = {
        "max_abs_distance_diff": float(np.max(np.abs(one.distances - eight.distances))),
        "success_equal": bool(np.array_equal(one.success, eight.success)),
        "shape": list(eight.distances.shape),
    }
    results["timings"]["evaluate"] = time.perf_counter() - t0
    results["timings"]["evaluate_compile"] = [one.compile_seconds, eight.compile_seconds]
    t0 = time.perf_counter()

    # --- planning: a batch of latent problems solved by MPPI, split over the data axis
    obs = jnp.asarray(all_obs[:, 0])  # [8, 5]: start observations
    goals = jnp.asarray(all_obs[::-1, -1])  # [8, 5]: goal observations
    low, high = jnp.asarray(task.action_low), jnp.asarray(task.action_high)
    problems = jax.vmap(lambda o, g: model_lib.problem(MODEL, params, o, g, low, high))(obs, goals)
    init = jnp.zeros((6, 2))
    keys = jax.random.split(jax.random.key(5), 8)
    mppi = functools.partial(planners.mppi, num_samples=32, iterations=3)
    want = jax.jit(jax.vmap(mppi, in_axes=(0, None, 0)))(problems, init, keys)
    plans = {}
    for name in ("data8",):
        got = distributed.shard_vmap(mppi, meshes[name], in_axes=(0, None, 0))(problems, init, keys)
        plans[name] = {
            "max_abs_action_diff": float(jnp.max(jnp.abs(got.actions - want.actions))),
            "max_abs_cost_diff": float(jnp.max(jnp.abs(got.cost - want.cost))),
            "actions_spec": str(got.actions.sharding.spec),
        }
    results["plans"] = plans
    results["timings"]["plans"] = time.perf_counter() - t0

    return results


if __name__ == "__main__":
    part, dataset_dir, out_dir = sys.argv[1:4]
    try:
        result = {"train": train_part, "plan": plan_part}[part](dataset_dir, out_dir)
    except Exception:  # noqa: BLE001 - reported to the test through the JSON
        result = {"crash": traceback.format_exc()}
    with open(os.path.join(out_dir, f"{part}.json"), "w") as f:
        json.dump(result, f, indent=1)
    sys.exit(1 if "crash" in result else 0)
