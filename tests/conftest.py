"""Shared fixtures: a tiny reacher dataset and a tiny trained run, built once per session.

Everything here is sized for 2 CPU cores: the expensive part is compilation, so the
fixtures fix the static shapes (8 episodes x 10 steps in shards of 4; one model and train
config) and tests that need the same computation reuse the same compiled functions.
"""

from __future__ import annotations

import os
import shutil
import tempfile

# One JAX compilation cache for the whole test run, shared by both xdist workers and by every
# `hjepa` subprocess a test starts (they inherit the environment): a computation compiled by
# one process is loaded by the next instead of compiled again. Set before jax is imported.
# Each run starts with an empty cache (compilation is measured by benchmarks, not here).
_RUN_ID = os.environ.get("PYTEST_XDIST_TESTRUNUID") or f"single-{os.getpid()}"
JAX_CACHE = os.path.join(tempfile.gettempdir(), f"hjepa-test-jax-cache-{_RUN_ID}")
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", JAX_CACHE)
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.5")

import hypothesis  # noqa: E402
import pytest  # noqa: E402

from hjepa import data as data_lib  # noqa: E402
from hjepa import tasks  # noqa: E402
from hjepa import train as train_lib  # noqa: E402
from hjepa.model import ModelConfig  # noqa: E402


def pytest_unconfigure(config):
    """The controller (not an xdist worker) removes the run's compilation cache."""
    if not hasattr(config, "workerinput") and os.environ.get("JAX_COMPILATION_CACHE_DIR") \
            == JAX_CACHE:
        shutil.rmtree(JAX_CACHE, ignore_errors=True)

# The files that take longest on 2 cores (measured in CI: end-to-end CLI runs, shipped-run
# guards, notebooks, multi-process runs, brax compiles), longest first. xdist hands out whole
# files in collection order (`--dist loadfile --no-loadscope-reorder`): starting with these
# keeps one worker from being left with a long file at the end while the other idles.
# (xdist's default order, most tests per file first, put them last.)
LONG_FILES = (
    "test_hjepa_cli.py", "test_quality_guards.py", "test_notebooks.py", "test_parallel.py",
    "test_pusher_ant.py", "test_push_t.py", "test_distill.py", "test_pixels.py",
    "test_latent_variable.py", "test_visualize.py", "test_reliability.py", "test_point_maze.py",
    "test_hjepa_evaluate.py", "test_goal_space.py", "test_suite.py", "test_hierarchy.py",
    "test_critic.py", "test_skills.py",
)


def pytest_collection_modifyitems(config, items):
    """Runs the long files first (see LONG_FILES); the order within a file is kept."""
    rank = {name: i for i, name in enumerate(LONG_FILES)}
    items.sort(key=lambda item: rank.get(os.path.basename(str(item.path)), len(rank)))


# `import hypothesis` above: hypothesis's pytest plugin otherwise imports it (through pytest's
# assertion rewriter, i.e. ast.parse) at the end of the session. On CPython 3.11 ast.parse is
# not thread-safe, and orbax's background threads may still be formatting the errors of a
# failed restore (test_hjepa_train.py) at that moment: "SystemError: AST constructor recursion
# depth mismatch" was seen once. Importing it during collection avoids the race.

# Property tests draw the same examples on every run: CI never flakes on a new random draw.
hypothesis.settings.register_profile("hjepa", derandomize=True, deadline=None)
hypothesis.settings.load_profile("hjepa")

# One collect config for every data test: collect_episodes compiles once per
# (num_episodes per shard, episode_length), so every collection below hits the same cache.
TINY_COLLECT = data_lib.CollectConfig(
    task="reacher", obs="state", num_episodes=8, episode_length=10, episodes_per_shard=4, seed=0
)

TINY_MODEL = ModelConfig(
    obs_shape=(5,), action_size=2, latent_size=8, encoder_hidden=(32, 32),
    predictor_hidden=(32, 32),
)

# 60 steps in chunks of 10 (log_every), a checkpoint at 30 and at 60.
TINY_TRAIN = train_lib.TrainConfig(
    steps=60, batch_size=32, window=4, learning_rate=1e-3, seed=0, checkpoint_every=30,
    log_every=10,
)


@pytest.fixture(scope="session")
def tiny_collect_config() -> data_lib.CollectConfig:
    return TINY_COLLECT


@pytest.fixture(scope="session")
def tiny_model_config() -> ModelConfig:
    return TINY_MODEL


@pytest.fixture(scope="session")
def tiny_train_config() -> train_lib.TrainConfig:
    return TINY_TRAIN


@pytest.fixture(scope="session")
def reacher():
    return tasks.make("reacher", "state")


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> data_lib.Dataset:
    """8 reacher episodes of 10 steps in 2 shards (read-only: copy it before editing)."""
    path = tmp_path_factory.mktemp("data") / "tiny"
    return data_lib.collect(TINY_COLLECT, str(path), progress=False)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, tiny_dataset):
    """An uninterrupted fit of TINY_MODEL / TINY_TRAIN: (run_dir, final TrainState).

    Read-only: copy the run directory before editing it.
    """
    run_dir = str(tmp_path_factory.mktemp("runs") / "straight")
    state = train_lib.fit(TINY_MODEL, TINY_TRAIN, tiny_dataset, run_dir, progress=False)
    return run_dir, state
