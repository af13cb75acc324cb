"""One table of bad inputs at the public boundary, across tasks, data, model, training,
evaluation, planners and the CLI: each raises a ValueError (or the CLI exits 2) with a message
that names the argument, what was expected and what came."""

from __future__ import annotations

import dataclasses
import os
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import planners
from hjepa import cli, data, evaluate, losses, model, tasks, train
from hjepa.model import ModelConfig

GOOD_MODEL = ModelConfig(obs_shape=(5,), action_size=2, latent_size=4, encoder_hidden=(8,),
                         predictor_hidden=(8,))


def _problem(low=(-1.0, -1.0), high=(1.0, 1.0)) -> planners.Problem:
    def step(params, x, a):
        return x + a, jnp.sum((x + a) ** 2)

    return planners.Problem(step=step, terminal_cost=planners.zero_terminal_cost, params=None,
                            init_state=jnp.zeros(2), action_low=jnp.asarray(low),
                            action_high=jnp.asarray(high))


def _latent_problem(obs=(5,), goal=(5,), low=(2,)):
    params = model.init(GOOD_MODEL, jax.random.key(0))
    return model.problem(GOOD_MODEL, params, jnp.zeros(obs), jnp.zeros(goal), -jnp.ones(low),
                         jnp.ones(low))


def _fit(ctx, model_config=GOOD_MODEL, train_config=None, run_dir=None):
    train_config = train_config or train.TrainConfig(steps=2, batch_size=4, window=2)
    return train.fit(model_config, train_config, ctx["dataset"], run_dir or ctx["tmp"] + "/run",
                     progress=False)


def _cli(args):
    code = cli.main(args)
    if code != 0:
        raise ValueError(f"exit code {code}")


CASES = [
    # tasks
    ("task unknown name", lambda c: tasks.make("nosuch"),
     r"task name: expected one of \[.*'reacher'.*\], got 'nosuch'"),
    ("task obs kind", lambda c: tasks.make("reacher", obs="depth"),
     r"obs: expected one of \['state', 'pixels'\], got 'depth'"),
    ("task name not a string", lambda c: tasks.make(["reacher"]), r"task name: expected one of"),
    # data
    ("collect zero episodes", lambda c: data.CollectConfig(num_episodes=0).validate(),
     r"num_episodes: expected a positive integer, got 0"),
    ("collect negative length", lambda c: data.CollectConfig(episode_length=-1).validate(),
     r"episode_length: expected a positive integer, got -1"),
    ("collect unknown task", lambda c: data.CollectConfig(task="nosuch").validate(),
     r"task name: expected one of"),
    ("policy correlation", lambda c: data.ExplorationPolicy(correlation=1.5).validate(),
     r"correlation: expected a number in \[0, 1\), got 1.5"),
    ("policy scales", lambda c: data.ExplorationPolicy(min_scale=2.0, max_scale=1.0).validate(),
     r"min_scale/max_scale: expected 0 <= min_scale <= max_scale"),
    ("load missing path", lambda c: data.load(c["tmp"] + "/nothing-here"),
     r"dataset path: expected a dataset directory, .*nothing-here does not exist"),
    ("load another task", lambda c: data.load(c["dataset"].path, task="pusher"),
     r"expected task 'pusher', the dataset holds 'reacher'"),
    ("load another obs kind", lambda c: data.load(c["dataset"].path, obs_kind="pixels"),
     r"expected 'pixels' observations, the dataset holds 'state' observations"),
    ("collect over an existing dataset",
     lambda c: data.collect(data.CollectConfig(num_episodes=2, episode_length=4),
                            c["dataset"].path, progress=False),
     r"already exists; pass overwrite=True \(--overwrite\)"),
    ("load a directory without manifest", lambda c: data.load(c["tmp"]),
     r"has no manifest.json"),
    # model
    ("model action size", lambda c: dataclasses.replace(GOOD_MODEL, action_size=0).validate(),
     r"action_size: expected a positive integer, got 0"),
    ("model obs shape", lambda c: dataclasses.replace(GOOD_MODEL, obs_shape=(0,)).validate(),
     r"obs_shape: expected positive sizes, got \(0,\)"),
    ("model latent size", lambda c: dataclasses.replace(GOOD_MODEL, latent_size=-3).validate(),
     r"latent_size: expected a positive integer, got -3"),
    ("model image obs for MLP", lambda c: dataclasses.replace(GOOD_MODEL,
                                                              obs_shape=(8, 8, 3)).validate(),
     r"obs_shape: the .mlp. encoder takes flat state observations"),
    ("problem obs shape", lambda c: _latent_problem(obs=(6,)),
     r"obs: expected an observation of shape \(5,\), got \(6,\)"),
    ("problem goal shape", lambda c: _latent_problem(goal=(3, 2)),
     r"goal_obs: expected an observation of shape \(5,\), got \(3, 2\)"),
    ("problem bounds shape", lambda c: _latent_problem(low=(3,)),
     r"action_low: expected shape \(2,\), got \(3,\)"),
    # training
    ("train zero steps", lambda c: train.TrainConfig(steps=0).validate(),
     r"steps: expected a positive integer, got 0"),
    ("train batch of one", lambda c: train.TrainConfig(batch_size=1).validate(),
     r"batch_size: expected at least 2"),
    ("train negative learning rate", lambda c: train.TrainConfig(learning_rate=-1.0).validate(),
     r"learning_rate: expected a finite positive number, got -1.0"),
    ("train NaN learning rate",
     lambda c: train.TrainConfig(learning_rate=float("nan")).validate(),
     r"learning_rate: expected a finite positive number, got nan"),
    ("train inf gradient clip", lambda c: train.TrainConfig(grad_clip=float("inf")).validate(),
     r"grad_clip: expected a finite positive number, got inf"),
    ("train NaN loss weight",
     lambda c: train.TrainConfig(loss=losses.LossConfig(variance_weight=float("nan")))
     .validate(), r"variance_weight: expected a finite number >= 0, got nan"),
    ("train negative loss weight",
     lambda c: losses.LossConfig(covariance_weight=-0.1).validate(),
     r"covariance_weight: expected a finite number >= 0, got -0.1"),
    ("train numpy steps are counts", lambda c: (train.TrainConfig(steps=np.int64(5)).validate(),
                                                train.TrainConfig(steps=np.float64(5.0))
                                                .validate()),
     r"steps: expected a positive integer, got np.float64\(5.0\)"),
    ("train window longer than episodes",
     lambda c: _fit(c, train_config=train.TrainConfig(steps=2, batch_size=4, window=100)),
     r"window: expected at most the dataset's episode length 10, got 100"),
    ("train model of other obs", lambda c: _fit(c, dataclasses.replace(GOOD_MODEL,
                                                                       obs_shape=(7,))),
     r"model obs_shape \(7,\) does not match the dataset's observations \(5,\)"),
    ("train model of other actions", lambda c: _fit(c, dataclasses.replace(GOOD_MODEL,
                                                                           action_size=3)),
     r"model action_size 3 does not match the dataset's 2"),
    ("train into a run of another config",
     lambda c: _fit(c, dataclasses.replace(GOOD_MODEL, latent_size=6), run_dir=c["run_dir"]),
     r"holds a run of another configuration"),
    ("load run of another task", lambda c: train.load_run(c["run_dir"], task="pusher"),
     r"expected a model of task 'pusher', it was trained on 'reacher'"),
    ("load run missing", lambda c: train.load_run(c["tmp"] + "/no-run"),
     r"run_dir: expected a training run directory, .*no-run does not exist"),
    # evaluation
    ("evaluate params without config",
     lambda c: evaluate.evaluate(tasks.make("reacher"), jax.random.key(0), num_episodes=1,
                                 params={}),
     r"model_config and params: give both"),
    ("evaluate zero episodes",
     lambda c: evaluate.evaluate(tasks.make("reacher"), jax.random.key(0), num_episodes=0),
     r"num_episodes: expected a positive integer, got 0"),
    # planners
    ("planner init actions shape", lambda c: planners.mppi(_problem(), jnp.zeros((4, 3)),
                                                           jax.random.key(0)),
     r"init_actions: expected shape \[H, 2\].*got \(4, 3\)"),
    ("planner bounds inverted", lambda c: planners.mppi(_problem(low=(1.0, 1.0),
                                                                 high=(0.0, 0.0)),
                                                        jnp.zeros((4, 2)), jax.random.key(0)),
     r"expected low <= high"),
    ("mppi zero samples", lambda c: planners.mppi(_problem(), jnp.zeros((4, 2)),
                                                  jax.random.key(0), num_samples=0),
     r"num_samples: expected a positive integer, got 0"),
    ("cem elites above samples", lambda c: planners.cem(_problem(), jnp.zeros((4, 2)),
                                                        jax.random.key(0), num_samples=8,
                                                        num_elites=9),
     r"num_elites"),
    ("beam width zero", lambda c: planners.beam_search(_problem(), jnp.zeros((4, 2)),
                                                       jax.random.key(0), beam_width=0),
     r"beam_width: expected a positive integer, got 0"),
    ("planner key missing", lambda c: planners.cem(_problem(), jnp.zeros((4, 2)), None),
     r"key: expected a jax.random key, got None"),
    ("gd zero iterations", lambda c: planners.gradient_descent(_problem(), jnp.zeros((4, 2)),
                                                               jax.random.key(0), iterations=0),
     r"iterations: expected a positive integer, got 0"),
    # CLI
    ("cli plan without a model", lambda c: _cli(["plan", "--quiet"]), r"exit code 2"),
    ("cli collect unknown task", lambda c: _cli(["collect", "nosuch", "--out",
                                                 c["tmp"] + "/d", "--quiet"]),
     r"exit code 2"),
]


@pytest.fixture(scope="module")
def ctx(tmp_path_factory, tiny_dataset, tiny_run):
    tmp = str(tmp_path_factory.mktemp("bad-inputs"))
    run_dir = os.path.join(tmp, "existing-run")
    shutil.copytree(tiny_run[0], run_dir)
    return {"tmp": tmp, "dataset": tiny_dataset, "run_dir": run_dir}


def test_the_table_is_broad():
    assert len(CASES) >= 30
    assert len({name for name, _, _ in CASES}) == len(CASES)


@pytest.mark.parametrize("name,call,message", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_refused_with_a_clear_message(ctx, name, call, message):
    before = sorted(os.listdir(ctx["tmp"]))
    with pytest.raises(ValueError, match=message):
        call(ctx)
    assert sorted(os.listdir(ctx["tmp"])) == before, "a refused call leaves nothing on disk"
