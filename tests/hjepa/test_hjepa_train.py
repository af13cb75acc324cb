"""hjepa.train: fit (learning, no collapse, logs, checkpoints, resume) and load_run checks."""

from __future__ import annotations

import dataclasses
import gc
import json
import os
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hjepa import data as data_lib
from hjepa import model as model_lib
from hjepa import train as train_lib


def read_metrics(run_dir) -> list[dict]:
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f if line.strip()]


def assert_trees_equal(a, b) -> None:
    leaves_a, tree_a = jax.tree.flatten(a)
    leaves_b, tree_b = jax.tree.flatten(b)
    assert tree_a == tree_b
    for x, y in zip(leaves_a, leaves_b, strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


class CountingChunks:
    """Wraps `train_chunk`, adding up the optimiser steps it runs."""

    def __init__(self):
        self.steps = 0
        self.real = train_lib.train_chunk

    def __call__(self, *args, num_steps, **kwargs):
        self.steps += num_steps
        return self.real(*args, num_steps=num_steps, **kwargs)


def edit_run_config(run_dir, section, **changes) -> None:
    path = os.path.join(run_dir, "config.json")
    with open(path) as f:
        record = json.load(f)
    record[section].update(changes)
    with open(path, "w") as f:
        json.dump(record, f)


# ----------------------------------------------------------------------------- learning


def test_fit_logs_every_chunk_and_the_loss_falls(tiny_run, tiny_train_config):
    run_dir, state = tiny_run
    metrics = read_metrics(run_dir)
    cfg = tiny_train_config
    assert [m["step"] for m in metrics] == list(range(cfg.log_every, cfg.steps + 1, cfg.log_every))
    for m in metrics:
        for name in ("loss", "prediction", "variance", "covariance", "latent_std_min",
                     "grad_norm"):
            assert np.isfinite(m[name]), (name, m)
    assert metrics[-1]["loss"] < metrics[0]["loss"]
    assert metrics[-1]["prediction"] < metrics[0]["prediction"]
    assert int(state.step) == cfg.steps


def test_fit_latents_do_not_collapse(tiny_run, tiny_dataset, tiny_model_config):
    _, state = tiny_run
    obs, _ = tiny_dataset.arrays()
    latents = model_lib.encode(tiny_model_config, state.params, jnp.asarray(obs).reshape(-1, 5))
    std = np.std(np.asarray(latents), axis=0)
    assert std.shape == (tiny_model_config.latent_size,)
    assert std.min() > 0.1, std


def test_fit_writes_config_tensorboard_and_checkpoints(tiny_run, tiny_model_config,
                                                       tiny_train_config, tiny_dataset):
    run_dir, _ = tiny_run
    with open(os.path.join(run_dir, "config.json")) as f:
        record = json.load(f)
    assert record["model"] == json.loads(json.dumps(tiny_model_config.to_dict()))
    assert record["train"] == json.loads(json.dumps(tiny_train_config.to_dict()))
    assert record["dataset"]["task"] == "reacher"
    assert record["dataset"]["obs_kind"] == "state"
    events = os.listdir(os.path.join(run_dir, "tb"))
    assert any(name.startswith("events.out.tfevents") for name in events)
    assert sum(os.path.getsize(os.path.join(run_dir, "tb", n)) for n in events) > 0
    steps = sorted(int(n) for n in os.listdir(os.path.join(run_dir, "checkpoints"))
                   if n.isdigit())
    assert steps == [30, 60]


def test_load_run_gives_the_trained_params(tiny_run, tiny_model_config, tiny_train_config):
    run_dir, state = tiny_run
    model_config, train_config, params = train_lib.load_run(run_dir, task="reacher")
    assert model_config == tiny_model_config
    assert train_config == tiny_train_config
    assert_trees_equal(params, state.params)


def test_fit_again_on_a_finished_run_changes_nothing(tiny_run, tiny_dataset, tiny_model_config,
                                                     tiny_train_config, tmp_path, monkeypatch):
    run_dir = shutil.copytree(tiny_run[0], tmp_path / "run")
    before = read_metrics(run_dir)
    chunks = CountingChunks()
    monkeypatch.setattr(train_lib, "train_chunk", chunks)
    state = train_lib.fit(tiny_model_config, tiny_train_config, tiny_dataset, str(run_dir),
                          progress=False)
    assert chunks.steps == 0
    assert_trees_equal(state.params, tiny_run[1].params)
    assert read_metrics(run_dir) == before


# ----------------------------------------------------------------------------- resume


def test_interrupted_fit_resumes_to_the_same_params(tiny_run, tiny_dataset, tiny_model_config,
                                                    tiny_train_config, tmp_path, monkeypatch):
    cfg = tiny_train_config
    half = cfg.checkpoint_every
    assert 0 < half < cfg.steps
    run_dir = str(tmp_path / "interrupted")

    def crash_after_the_checkpoint(step, metrics):  # fit's report callback
        if step > half:  # the checkpoint at `half` is on disk by now
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_lib.fit(tiny_model_config, cfg, tiny_dataset, run_dir, progress=False,
                      report=crash_after_the_checkpoint)
    # the step after the checkpoint was logged before the crash; resuming drops it
    assert max(m["step"] for m in read_metrics(run_dir)) == half + cfg.log_every

    chunks = CountingChunks()
    monkeypatch.setattr(train_lib, "train_chunk", chunks)
    state = train_lib.fit(tiny_model_config, cfg, tiny_dataset, run_dir, progress=False)
    assert chunks.steps == cfg.steps - half  # resumed from the checkpoint, not from scratch
    straight_dir, straight = tiny_run
    assert int(state.step) == int(straight.step) == cfg.steps
    assert_trees_equal(state.params, straight.params)
    assert_trees_equal(state.opt_state, straight.opt_state)
    # the metrics read as one run: each step once, the same values as the straight run
    resumed_metrics = read_metrics(run_dir)
    straight_metrics = read_metrics(straight_dir)
    strip = lambda ms: [{k: v for k, v in m.items() if k != "steps_per_second"} for m in ms]
    assert strip(resumed_metrics) == strip(straight_metrics)
    assert_trees_equal(train_lib.load_run(run_dir)[2], straight.params)


def test_fit_after_a_crash_between_checkpoints_drops_the_stale_metrics(
    tiny_run, tiny_dataset, tiny_model_config, tiny_train_config, tmp_path, monkeypatch
):
    # A run killed after logging step 50 but before its next checkpoint (at 60) restarts at 30.
    run_dir = shutil.copytree(tiny_run[0], tmp_path / "run")
    shutil.rmtree(run_dir / "checkpoints" / "60")
    metrics = read_metrics(run_dir)
    with open(run_dir / "metrics.jsonl", "w") as f:
        f.writelines(json.dumps(m) + "\n" for m in metrics if m["step"] <= 50)
    chunks = CountingChunks()
    monkeypatch.setattr(train_lib, "train_chunk", chunks)
    state = train_lib.fit(tiny_model_config, tiny_train_config, tiny_dataset, str(run_dir),
                          progress=False)
    assert chunks.steps == 30
    assert [m["step"] for m in read_metrics(run_dir)] == [10, 20, 30, 40, 50, 60]
    assert_trees_equal(state.params, tiny_run[1].params)


# ----------------------------------------------------------------------------- refusals


def test_fit_into_a_run_of_another_configuration_is_refused(tiny_run, tiny_dataset,
                                                            tiny_model_config, tiny_train_config,
                                                            tmp_path):
    run_dir = shutil.copytree(tiny_run[0], tmp_path / "run")
    before = {n: (run_dir / n).read_bytes() for n in ("config.json", "metrics.jsonl")}
    for model_config, config in (
        (tiny_model_config, dataclasses.replace(tiny_train_config, learning_rate=3e-4)),
        (dataclasses.replace(tiny_model_config, latent_size=4), tiny_train_config),
    ):
        with pytest.raises(ValueError, match="another configuration"):
            train_lib.fit(model_config, config, tiny_dataset, str(run_dir), progress=False)
    assert {n: (run_dir / n).read_bytes() for n in before} == before


def test_a_run_recorded_before_newer_config_fields_resumes(tiny_run, tiny_dataset,
                                                          tiny_model_config, tiny_train_config,
                                                          tmp_path, monkeypatch):
    # config.json written by a version without the inverse-dynamics fields: their defaults
    # are what it trained with, so it is the same configuration and nothing retrains
    run_dir = shutil.copytree(tiny_run[0], tmp_path / "run")
    record = json.loads((run_dir / "config.json").read_text())
    del record["model"]["inverse_dynamics_hidden"]
    del record["train"]["loss"]["inverse_dynamics_weight"]
    (run_dir / "config.json").write_text(json.dumps(record))
    chunks = CountingChunks()
    monkeypatch.setattr(train_lib, "train_chunk", chunks)
    state = train_lib.fit(tiny_model_config, tiny_train_config, tiny_dataset, str(run_dir),
                          progress=False)
    assert chunks.steps == 0
    assert_trees_equal(state.params, tiny_run[1].params)


def test_inverse_dynamics_weight_needs_the_head(tiny_dataset, tiny_model_config,
                                                tiny_train_config, tmp_path):
    loss = dataclasses.replace(tiny_train_config.loss, inverse_dynamics_weight=1.0)
    with pytest.raises(ValueError, match="inverse_dynamics_weight: needs a model with"):
        train_lib.fit(tiny_model_config, dataclasses.replace(tiny_train_config, loss=loss),
                      tiny_dataset, str(tmp_path / "r"), progress=False)
    assert not (tmp_path / "r").exists()


def test_fit_checks_the_model_against_the_dataset(tiny_dataset, tiny_model_config,
                                                  tiny_train_config, tmp_path):
    for model_config, word in ((dataclasses.replace(tiny_model_config, obs_shape=(7,)),
                                "obs_shape"),
                               (dataclasses.replace(tiny_model_config, action_size=3),
                                "action_size")):
        with pytest.raises(ValueError, match=word):
            train_lib.fit(model_config, tiny_train_config, tiny_dataset, str(tmp_path / "r"),
                          progress=False)
    too_long = dataclasses.replace(tiny_train_config, window=11)
    with pytest.raises(ValueError, match="window"):
        train_lib.fit(tiny_model_config, too_long, tiny_dataset, str(tmp_path / "r"),
                      progress=False)
    assert not os.path.exists(tmp_path / "r")


@pytest.mark.parametrize(
    "changes, word",
    [(dict(steps=0), "steps"), (dict(batch_size=1), "batch_size"),
     (dict(learning_rate=0.0), "learning_rate"), (dict(log_every=True), "log_every")],
)
def test_train_config_is_checked(changes, word):
    with pytest.raises(ValueError, match=word):
        dataclasses.replace(train_lib.TrainConfig(), **changes).validate()


def test_load_run_of_another_task_is_refused(tiny_run):
    with pytest.raises(ValueError) as info:
        train_lib.load_run(tiny_run[0], task="pusher")
    assert "pusher" in str(info.value) and "reacher" in str(info.value)


# orbax leaves the other reads of a failed restore as coroutines that are never awaited
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.parametrize("changes", [dict(latent_size=16), dict(encoder_hidden=[32, 32, 32])])
def test_load_run_into_another_model_config_is_refused(tiny_run, tmp_path, changes):
    run_dir = shutil.copytree(tiny_run[0], tmp_path / "run")
    edit_run_config(run_dir, "model", **changes)
    with pytest.raises(ValueError, match="checkpoint"):
        train_lib.load_run(str(run_dir))
    gc.collect()  # finalise those coroutines here, not in a later test


def test_load_run_without_a_checkpoint_or_config(tiny_run, tmp_path):
    with pytest.raises(ValueError, match="nothing does not exist"):
        train_lib.load_run(str(tmp_path / "nothing"))
    os.makedirs(tmp_path / "no-config")
    with pytest.raises(ValueError, match="no-config/config.json does not exist"):
        train_lib.load_run(str(tmp_path / "no-config"))
    os.makedirs(tmp_path / "empty")
    shutil.copy(os.path.join(tiny_run[0], "config.json"), tmp_path / "empty")
    with pytest.raises(ValueError, match="no checkpoint"):
        train_lib.load_run(str(tmp_path / "empty"))


# ----------------------------------------------------------------------------- faults


def test_fit_stops_on_collapsed_latents(tiny_dataset, tiny_model_config, tiny_train_config,
                                        tmp_path):
    run_dir = str(tmp_path / "run")
    with pytest.raises(train_lib.TrainingError, match="collapsed"):
        train_lib.fit(tiny_model_config, tiny_train_config, tiny_dataset, run_dir,
                      progress=False, collapse_std=1e9)
    assert not os.path.exists(os.path.join(run_dir, "metrics.jsonl")) or read_metrics(run_dir) == []
    checkpoints = os.path.join(run_dir, "checkpoints")
    assert not any(n.isdigit() for n in os.listdir(checkpoints)) if os.path.isdir(checkpoints) \
        else True


def test_fit_stops_on_a_non_finite_loss(tiny_dataset, tiny_model_config, tiny_train_config,
                                        tmp_path):
    obs = [np.array(o) for o in tiny_dataset.obs_shards]
    obs[0][0, 3, 2] = np.nan
    poisoned = data_lib.Dataset(tiny_dataset.path, tiny_dataset.manifest, tuple(obs),
                                tiny_dataset.action_shards)
    with pytest.raises((train_lib.TrainingError, ValueError)):
        train_lib.fit(tiny_model_config, tiny_train_config, poisoned, str(tmp_path / "run"),
                      progress=False)


def test_resuming_with_a_dataset_of_another_kind_is_refused(tiny_run, tiny_dataset,
                                                             tiny_model_config,
                                                             tiny_train_config, tmp_path):
    import json as json_lib
    import shutil

    run_dir = str(tmp_path / "run")
    shutil.copytree(tiny_run[0], run_dir)
    manifest = dict(tiny_dataset.manifest, task="pusher")
    other = data_lib.Dataset(tiny_dataset.path, manifest, tiny_dataset.obs_shards,
                             tiny_dataset.action_shards)
    before = open(os.path.join(run_dir, "config.json")).read()
    with pytest.raises(ValueError, match=r"trained on task 'reacher' \(.*\), got .*\('pusher'"):
        train_lib.fit(tiny_model_config, tiny_train_config, other, run_dir, progress=False)
    assert open(os.path.join(run_dir, "config.json")).read() == before
    assert json_lib.loads(before)["dataset"]["task"] == "reacher"
