"""hjepa.data: collection (atomic, sharded, resumable), the on-disk format, load checks, windows."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hjepa import data as data_lib
from hjepa import tasks
from hjepa.tasks.ant_maze import WaypointPolicy
from hjepa.tasks.reacher import ReachingPolicy


def snapshot(path) -> dict[str, bytes]:
    """Relative file name -> bytes, for every file under `path`."""
    out = {}
    for root, _, files in os.walk(path):
        for name in files:
            full = os.path.join(root, name)
            with open(full, "rb") as f:
                out[os.path.relpath(full, path)] = f.read()
    return out


def shard_bytes(path) -> dict[str, bytes]:
    """The .npy files of a dataset directory, by name."""
    return {k: v for k, v in snapshot(path).items() if k.endswith(".npy")}


class CountingCollect:
    """Wraps `collect_episodes`, counting calls; raises on call number `fail_on` (1-based)."""

    def __init__(self, fail_on: int | None = None):
        self.calls = 0
        self.fail_on = fail_on
        self.real = data_lib.collect_episodes

    def __call__(self, *args, **kwargs):
        self.calls += 1
        if self.fail_on is not None and self.calls == self.fail_on:
            raise RuntimeError("simulated crash during collection")
        return self.real(*args, **kwargs)


def edit_manifest(path, **changes) -> None:
    manifest_path = os.path.join(path, "manifest.json")
    with open(manifest_path) as f:
        manifest = json.load(f)
    manifest.update(changes)
    with open(manifest_path, "w") as f:
        json.dump(manifest, f)


# ----------------------------------------------------------------------------- collect, format


def test_collect_shapes_dtypes_and_values(tiny_dataset, tiny_collect_config):
    cfg = tiny_collect_config
    obs, actions = tiny_dataset.arrays()
    assert obs.shape == (cfg.num_episodes, cfg.episode_length + 1, 5)
    assert actions.shape == (cfg.num_episodes, cfg.episode_length, 2)
    assert obs.dtype == np.float32 and actions.dtype == np.float32
    assert np.all(np.isfinite(obs)) and np.all(np.isfinite(actions))
    assert np.all(np.abs(actions) <= 1.0)
    assert np.std(actions) > 0.01  # the policy does act
    # every observation is (cos θ0, sin θ0, θ1, ...): a point on the unit circle first
    np.testing.assert_allclose(obs[..., 0] ** 2 + obs[..., 1] ** 2, 1.0, atol=1e-5)
    # episodes start at rest, then move
    np.testing.assert_array_equal(obs[:, 0, 3:], 0.0)
    assert np.all(np.abs(obs[:, -1] - obs[:, 0]).max(axis=-1) > 1e-4)
    # episodes differ from each other
    assert len({obs[i, 0].tobytes() for i in range(cfg.num_episodes)}) == cfg.num_episodes


def test_collect_manifest_fields(tiny_dataset, tiny_collect_config):
    with open(os.path.join(tiny_dataset.path, "manifest.json")) as f:
        manifest = json.load(f)
    assert manifest["format"] == data_lib.FORMAT
    assert manifest["version"] == data_lib.FORMAT_VERSION
    assert manifest["task"] == "reacher"
    assert manifest["obs_kind"] == "state"
    assert manifest["obs_shape"] == [5]
    assert manifest["obs_dtype"] == "float32"
    assert manifest["action_size"] == 2
    assert manifest["episode_length"] == tiny_collect_config.episode_length
    assert manifest["num_episodes"] == tiny_collect_config.num_episodes
    assert manifest["seed"] == tiny_collect_config.seed
    assert manifest["collect_config"] == json.loads(json.dumps(tiny_collect_config.to_dict()))
    for name in ("jax", "brax", "numpy"):
        assert manifest["versions"][name] not in ("", "unknown")
    assert [s["episodes"] for s in manifest["shards"]] == [4, 4]
    assert tiny_dataset.task == "reacher" and tiny_dataset.obs_kind == "state"
    assert tiny_dataset.num_episodes == 8 and tiny_dataset.episode_length == 10


def test_collect_leaves_only_the_final_directory(tiny_dataset):
    assert not os.path.exists(tiny_dataset.path + ".partial")
    names = sorted(os.listdir(tiny_dataset.path))
    assert names == [".hjepa", "actions-00000.npy", "actions-00001.npy", "manifest.json",
                     "obs-00000.npy", "obs-00001.npy", "positions-00000.npy",
                     "positions-00001.npy"]  # .hjepa: the marker of what hjepa wrote


def test_load_round_trip_and_mmap(tiny_dataset):
    loaded = data_lib.load(tiny_dataset.path, task="reacher", obs_kind="state")
    assert loaded.manifest == tiny_dataset.manifest
    for a, b in zip(loaded.arrays(), tiny_dataset.arrays(), strict=True):
        np.testing.assert_array_equal(a, b)
    # every shard is a plain .npy that numpy memory-maps, and they concatenate to arrays()
    obs, actions = loaded.arrays()
    opened = {kind: [np.load(os.path.join(tiny_dataset.path, shard[kind]), mmap_mode="r")
                     for shard in loaded.manifest["shards"]] for kind in ("obs", "actions")}
    assert all(isinstance(a, np.memmap) for a in opened["obs"] + opened["actions"])
    np.testing.assert_array_equal(np.concatenate(opened["obs"]), obs)
    np.testing.assert_array_equal(np.concatenate(opened["actions"]), actions)
    assert all(isinstance(a, np.memmap) for a in loaded.obs_shards + loaded.action_shards)


def test_same_seed_same_bytes_other_seed_other_bytes(tiny_dataset, tiny_collect_config, tmp_path):
    again = data_lib.collect(tiny_collect_config, str(tmp_path / "again"), progress=False)
    assert shard_bytes(again.path) == shard_bytes(tiny_dataset.path)
    other_cfg = dataclasses.replace(tiny_collect_config, seed=1)
    other = data_lib.collect(other_cfg, str(tmp_path / "other"), progress=False)
    ours, theirs = shard_bytes(tiny_dataset.path), shard_bytes(other.path)
    assert ours.keys() == theirs.keys()
    assert all(ours[k] != theirs[k] for k in ours)


def test_interrupted_collection_resumes_to_the_same_bytes(
    tiny_dataset, tiny_collect_config, tmp_path, monkeypatch
):
    path = str(tmp_path / "resumed")
    crashing = CountingCollect(fail_on=2)  # shard 0 is written, shard 1 crashes
    monkeypatch.setattr(data_lib, "collect_episodes", crashing)
    with pytest.raises(RuntimeError, match="simulated crash"):
        data_lib.collect(tiny_collect_config, path, progress=False)
    # a reader never sees half a dataset: only the .partial directory exists, with shard 0
    assert not os.path.exists(path)
    partial = path + ".partial"
    assert {"obs-00000.npy", "actions-00000.npy"} <= set(os.listdir(partial))
    assert not any(name.startswith(("obs-00001", "actions-00001")) for name in os.listdir(partial))
    with pytest.raises(ValueError):
        data_lib.load(path)

    counting = CountingCollect()
    monkeypatch.setattr(data_lib, "collect_episodes", counting)
    resumed = data_lib.collect(tiny_collect_config, path, progress=False)
    assert counting.calls == 1  # only the missing shard was collected
    assert not os.path.exists(partial)
    assert shard_bytes(path) == shard_bytes(tiny_dataset.path)
    for a, b in zip(resumed.arrays(), tiny_dataset.arrays(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_interrupted_collection_of_another_config_is_not_resumed(
    tiny_collect_config, tmp_path, monkeypatch
):
    path = str(tmp_path / "clash")
    monkeypatch.setattr(data_lib, "collect_episodes", CountingCollect(fail_on=2))
    with pytest.raises(RuntimeError):
        data_lib.collect(dataclasses.replace(tiny_collect_config, seed=5), path, progress=False)
    before = snapshot(path + ".partial")
    monkeypatch.setattr(data_lib, "collect_episodes", CountingCollect())
    with pytest.raises(ValueError, match="another config"):
        data_lib.collect(tiny_collect_config, path, progress=False)
    assert snapshot(path + ".partial") == before
    assert not os.path.exists(path)


def test_existing_path_without_overwrite_is_refused_and_untouched(
    tiny_dataset, tiny_collect_config, tmp_path, monkeypatch
):
    path = shutil.copytree(tiny_dataset.path, tmp_path / "existing")
    before = snapshot(path)
    counting = CountingCollect()
    monkeypatch.setattr(data_lib, "collect_episodes", counting)
    with pytest.raises(ValueError, match="--overwrite"):
        data_lib.collect(tiny_collect_config, str(path), progress=False)
    assert counting.calls == 0
    assert snapshot(path) == before
    assert not os.path.exists(f"{path}.partial")


def test_overwrite_replaces_the_dataset(tiny_dataset, tiny_collect_config, tmp_path):
    path = str(shutil.copytree(tiny_dataset.path, tmp_path / "existing"))
    before = shard_bytes(path)
    cfg = dataclasses.replace(tiny_collect_config, seed=3)
    dataset = data_lib.collect(cfg, path, overwrite=True, progress=False)
    assert dataset.manifest["seed"] == 3
    after = shard_bytes(path)
    assert after.keys() == before.keys() and all(after[k] != before[k] for k in after)
    assert sorted(os.listdir(tmp_path)) == ["existing"]  # no .partial or .old left behind


def test_collect_or_load_reuses_a_matching_dataset(tiny_dataset, tiny_collect_config,
                                                   monkeypatch):
    counting = CountingCollect()
    monkeypatch.setattr(data_lib, "collect_episodes", counting)
    dataset = data_lib.collect_or_load(tiny_collect_config, tiny_dataset.path, progress=False)
    assert counting.calls == 0
    assert dataset.manifest == tiny_dataset.manifest


def test_collect_or_load_ignores_the_image_size_of_a_state_dataset(tiny_dataset,
                                                                   tiny_collect_config,
                                                                   monkeypatch):
    counting = CountingCollect()
    monkeypatch.setattr(data_lib, "collect_episodes", counting)
    assert tiny_collect_config.obs == "state"
    other_size = dataclasses.replace(tiny_collect_config,
                                     image_size=tiny_collect_config.image_size * 2)
    dataset = data_lib.collect_or_load(other_size, tiny_dataset.path, progress=False)
    assert counting.calls == 0
    assert dataset.manifest == tiny_dataset.manifest


def test_a_pixel_collection_of_another_image_size_is_another_collection(tiny_collect_config):
    pixels = dataclasses.replace(tiny_collect_config, obs="pixels", image_size=32)
    stored = pixels.to_dict()
    assert data_lib._same_collection(stored, pixels)
    assert not data_lib._same_collection(stored, dataclasses.replace(pixels, image_size=48))
    assert not data_lib._same_collection(None, pixels)


def test_collect_or_load_refuses_a_dataset_of_another_config(tiny_dataset, tiny_collect_config):
    before = snapshot(tiny_dataset.path)
    other = dataclasses.replace(tiny_collect_config, seed=9)
    with pytest.raises(ValueError, match="--overwrite"):
        data_lib.collect_or_load(other, tiny_dataset.path, progress=False)
    assert snapshot(tiny_dataset.path) == before


@pytest.mark.parametrize(
    "changes, words",
    [
        (dict(task="nosuchtask"), ["nosuchtask", "reacher"]),
        (dict(obs="rgb"), ["rgb", "state"]),
        (dict(num_episodes=0), ["num_episodes", "0"]),
        (dict(episode_length=-3), ["episode_length", "-3"]),
        (dict(episodes_per_shard=2.5), ["episodes_per_shard", "2.5"]),
        (dict(policy=data_lib.ExplorationPolicy(correlation=1.0)), ["correlation", "1.0"]),
        (dict(policy=data_lib.ExplorationPolicy(min_scale=0.5, max_scale=0.1)), ["min_scale"]),
        (dict(policy=WaypointPolicy()), ["waypoint", "ant_umaze", "reacher"]),
        (dict(task="two_rooms", policy=ReachingPolicy()), ["reach", "reacher", "two_rooms"]),
        (dict(policy=ReachingPolicy(min_hold=0)), ["min_hold", "0"]),
        (dict(policy=ReachingPolicy(min_hold=9, max_hold=3)), ["min_hold <= max_hold"]),
        (dict(policy=ReachingPolicy(track_probability=1.5)), ["track_probability", "1.5"]),
        (dict(policy=ReachingPolicy(kd=-1.0)), ["kd", "-1.0"]),
        (dict(policy="random"), ["policy", "ar1", "waypoint", "'random'"]),
    ],
)
def test_collect_config_is_checked(tiny_collect_config, tmp_path, changes, words):
    cfg = dataclasses.replace(tiny_collect_config, **changes)
    with pytest.raises(ValueError) as info:
        data_lib.collect(cfg, str(tmp_path / "never"), progress=False)
    for word in words:
        assert word in str(info.value)
    assert os.listdir(tmp_path) == []


# ----------------------------------------------------------------------------- load checks


def test_load_missing_path(tmp_path):
    missing = str(tmp_path / "nothing-here")
    with pytest.raises(ValueError, match="nothing-here"):
        data_lib.load(missing)


def test_load_directory_without_manifest(tmp_path):
    with pytest.raises(ValueError, match="manifest.json"):
        data_lib.load(str(tmp_path))


def test_load_corrupt_manifest(tiny_dataset, tmp_path):
    path = shutil.copytree(tiny_dataset.path, tmp_path / "copy")
    with open(path / "manifest.json", "w") as f:
        f.write('{"format": "hjepa-dataset", ')
    with pytest.raises(ValueError, match="manifest.json"):
        data_lib.load(str(path))


def test_load_dataset_of_another_task(tiny_dataset, tmp_path):
    path = shutil.copytree(tiny_dataset.path, tmp_path / "copy")
    edit_manifest(path, task="pusher")
    with pytest.raises(ValueError) as info:
        data_lib.load(str(path), task="reacher")
    assert "pusher" in str(info.value) and "reacher" in str(info.value)


def test_load_dataset_of_another_obs_kind(tiny_dataset, tmp_path):
    path = shutil.copytree(tiny_dataset.path, tmp_path / "copy")
    edit_manifest(path, obs_kind="pixels")
    with pytest.raises(ValueError) as info:
        data_lib.load(str(path), obs_kind="state")
    assert "pixels" in str(info.value) and "state" in str(info.value)


@pytest.mark.parametrize("name", ["obs-00001.npy", "actions-00000.npy"])
def test_load_truncated_shard_names_the_file(tiny_dataset, tmp_path, name):
    path = shutil.copytree(tiny_dataset.path, tmp_path / "copy")
    file = path / name
    size = os.path.getsize(file)
    with open(file, "r+b") as f:
        f.truncate(size // 2)
    with pytest.raises(ValueError, match=name):
        data_lib.load(str(path))


def test_load_empty_shard_names_the_file(tiny_dataset, tmp_path):
    path = shutil.copytree(tiny_dataset.path, tmp_path / "copy")
    open(path / "obs-00001.npy", "w").close()  # truncated to 0 bytes (e.g. a full disk)
    with pytest.raises(ValueError, match="obs-00001.npy"):
        data_lib.load(str(path))


def test_load_missing_shard_names_the_file(tiny_dataset, tmp_path):
    path = shutil.copytree(tiny_dataset.path, tmp_path / "copy")
    os.remove(path / "actions-00001.npy")
    with pytest.raises(ValueError, match="actions-00001.npy"):
        data_lib.load(str(path))


def test_load_shard_of_the_wrong_shape_names_the_file(tiny_dataset, tmp_path):
    path = shutil.copytree(tiny_dataset.path, tmp_path / "copy")
    edit_manifest(path, episode_length=11)
    with pytest.raises(ValueError, match=r"obs-00000\.npy"):
        data_lib.load(str(path))


# ----------------------------------------------------------------------------- windows


def _labelled_episodes(num_episodes=3, length=12):
    """obs[n, t] = (n, t) for t <= T and actions[n, t] = (n, t + 0.5): values name their slot."""
    n, t = np.meshgrid(np.arange(num_episodes), np.arange(length + 1), indexing="ij")
    obs = np.stack([n, t], -1).astype(np.float32)  # [N, T+1, 2]
    actions = np.stack([n[:, :-1], t[:, :-1] + 0.5], -1).astype(np.float32)  # [N, T, 2]
    return jnp.asarray(obs), jnp.asarray(actions)


def test_sample_windows_are_contiguous_slices_of_one_episode():
    obs, actions = _labelled_episodes(num_episodes=3, length=12)
    window, batch = 4, 512
    o, a = data_lib.sample_windows(obs, actions, jax.random.key(0), batch_size=batch,
                                   window=window)
    assert o.shape == (batch, window + 1, 2) and a.shape == (batch, window, 2)
    o, a = np.asarray(o), np.asarray(a)
    episode, start = o[:, 0, 0], o[:, 0, 1]
    # one episode per window, consecutive steps, actions aligned with the observations
    np.testing.assert_array_equal(o[..., 0], np.repeat(episode[:, None], window + 1, 1))
    np.testing.assert_array_equal(o[..., 1], start[:, None] + np.arange(window + 1))
    np.testing.assert_array_equal(a[..., 0], np.repeat(episode[:, None], window, 1))
    np.testing.assert_array_equal(a[..., 1], start[:, None] + np.arange(window) + 0.5)
    # every episode and every valid start is drawn, including the last one (T - W)
    assert set(episode.astype(int)) == {0, 1, 2}
    assert set(start.astype(int)) == set(range(12 - window + 1))


def test_sample_windows_of_the_whole_episode():
    obs, actions = _labelled_episodes(num_episodes=2, length=5)
    o, a = data_lib.sample_windows(obs, actions, jax.random.key(1), batch_size=8, window=5)
    np.testing.assert_array_equal(np.asarray(o)[:, :, 1], np.tile(np.arange(6), (8, 1)))


def test_sample_windows_jit_matches_eager_and_key_matters():
    obs, actions = _labelled_episodes()
    sample = jax.jit(data_lib.sample_windows, static_argnames=("batch_size", "window"))
    key = jax.random.key(5)
    eager = data_lib.sample_windows(obs, actions, key, batch_size=16, window=3)
    jitted = sample(obs, actions, key, batch_size=16, window=3)
    for x, y in zip(eager, jitted, strict=True):
        np.testing.assert_array_equal(x, y)
    other = sample(obs, actions, jax.random.key(6), batch_size=16, window=3)
    assert not np.array_equal(np.asarray(other[0]), np.asarray(eager[0]))


def test_sample_windows_from_a_collected_dataset(tiny_dataset):
    obs, actions = tiny_dataset.arrays()
    o, a = data_lib.sample_windows(jnp.asarray(obs), jnp.asarray(actions), jax.random.key(0),
                                   batch_size=6, window=4)
    o, a = np.asarray(o), np.asarray(a)
    for i in range(6):
        hits = [(n, s) for n in range(obs.shape[0]) for s in range(10 - 4 + 1)
                if np.array_equal(obs[n, s:s + 5], o[i]) and np.array_equal(actions[n, s:s + 4],
                                                                            a[i])]
        assert hits, f"window {i} is not a slice of any episode"


# ----------------------------------------------------------------------------- policies


def test_ar1_collection_follows_its_formula(tiny_collect_config):
    """Episode 0's actions are the clipped AR(1) recursion written out by hand from the
    documented key splits: split(key, N)[0] -> (reset, σ, noise) keys; σ ~ U[min, max];
    noise keys split(noise key, T)."""
    task = tiny_collect_config.make_task()
    policy = data_lib.ExplorationPolicy(correlation=0.6, min_scale=0.5, max_scale=0.9)
    key = jax.random.key(3)
    _, actions = data_lib.collect_episodes(task, policy, key, num_episodes=2, episode_length=6)
    _, scale_key, noise_key = jax.random.split(jax.random.split(key, 2)[0], 3)
    scale = float(jax.random.uniform(scale_key, (), minval=0.5, maxval=0.9))
    previous = np.zeros(task.action_size, np.float32)
    for t, step_key in enumerate(jax.random.split(noise_key, 6)):
        noise = np.asarray(jax.random.normal(step_key, (task.action_size,)))
        previous = np.clip(0.6 * previous + np.sqrt(1 - 0.6**2) * scale * noise,
                           task.action_low, task.action_high)
        np.testing.assert_allclose(actions[0, t], previous, rtol=1e-5, atol=1e-6)


def test_policy_kind_and_manifest_dict():
    ar1 = data_lib.CollectConfig()
    assert data_lib.policy_kind(ar1.policy) == "ar1"
    assert "kind" not in ar1.to_dict()["policy"]  # datasets collected before keep matching
    ant = data_lib.CollectConfig(task="ant_umaze", episode_length=500, policy=WaypointPolicy())
    ant.validate()
    assert ant.to_dict()["policy"]["kind"] == "waypoint"
    assert ant.to_dict()["policy"]["period"] == WaypointPolicy().period
    with pytest.raises(ValueError, match="policy: expected one of"):
        data_lib.policy_kind(object())


def test_reaching_policy_kind_and_binding():
    config = data_lib.CollectConfig(task="reacher", policy=ReachingPolicy())
    config.validate()
    assert config.to_dict()["policy"]["kind"] == "reach"
    assert config.to_dict()["policy"]["kp"] == ReachingPolicy().kp
    with pytest.raises(ValueError, match="reacher.*two_rooms"):
        ReachingPolicy().bind(tasks.make("two_rooms"))


def _wrapped(angles):
    return (angles + np.pi) % (2 * np.pi) - np.pi


def test_reaching_policy_brings_the_arm_to_rest_at_its_target():
    """Tracking, without noise, one target held for the whole rollout: the PD law stops the
    arm at the drawn pose (shoulder angle up to a turn)."""
    task = tasks.make("reacher")
    policy = ReachingPolicy(track_probability=1.0, min_scale=0.0, max_scale=0.0,
                            min_hold=200, max_hold=200)
    init_key, start_key, rollout_key = jax.random.split(jax.random.key(4), 3)

    def rollout(init_key, start_key, rollout_key):
        state = task.reset(start_key).state
        carry = policy.init(init_key, state)

        def step(loop, key):
            state, carry = loop
            carry, action = policy(carry, key, state, 0)
            return (task.step(state, action), carry), action

        (state, carry), actions = jax.lax.scan(step, (state, carry),
                                               jax.random.split(rollout_key, 60))
        return state, carry, actions

    keys = [jax.random.split(k, 8) for k in (init_key, start_key, rollout_key)]
    state, carry, actions = jax.jit(jax.vmap(rollout))(*keys)
    assert bool(jnp.all(carry.tracking))
    error = np.stack([_wrapped(np.asarray(carry.target[:, 0] - state.q[:, 0])),
                      np.asarray(carry.target[:, 1] - state.q[:, 1])], -1)
    assert np.abs(error).max() < 0.05, error
    assert np.abs(np.asarray(state.qd[:, :2])).max() < 0.5
    assert np.abs(np.asarray(actions)).max() <= 1.0


def test_reaching_policy_explores_with_state_independent_noise():
    """Episodes that do not track act the AR(1) noise alone, whatever the arm's state, with
    a scale in [explore_min_scale, 1]."""
    task = tasks.make("reacher")
    policy = ReachingPolicy(track_probability=0.0, explore_min_scale=0.3)

    @jax.jit
    def first_actions(reset_keys):
        states = jax.vmap(task.reset)(reset_keys).state
        carry = policy.init(jax.random.key(2), jax.tree.map(lambda x: x[0], states))
        act = jax.vmap(lambda state: policy(carry, jax.random.key(3), state, 0)[1])
        return carry, act(states)

    carry, actions = first_actions(jax.random.split(jax.random.key(0), 2))  # [2, 2]
    assert not bool(carry.tracking) and 0.3 <= float(carry.scale) <= 1.0
    np.testing.assert_array_equal(np.asarray(actions[0]), np.asarray(actions[1]))
    assert np.abs(np.asarray(actions)).max() > 0.0


def test_waypoint_policy_binds_only_to_the_ant(tiny_collect_config):
    with pytest.raises(ValueError, match="ant_umaze.*reacher"):
        WaypointPolicy().bind(tiny_collect_config.make_task())


@pytest.mark.slow
def test_waypoint_collection_walks_the_ant():
    """A few ant episodes from the gait controller: finite, in bounds, and the torso moves
    (random torques barely move it; see hjepa.tasks.ant_maze)."""
    config = data_lib.CollectConfig(task="ant_umaze", num_episodes=4, episode_length=120,
                                    policy=WaypointPolicy())
    task = config.make_task()
    obs, actions = data_lib.collect_episodes(task, config.policy, jax.random.key(0),
                                             num_episodes=4, episode_length=120)
    assert obs.shape == (4, 121, 31) and actions.shape == (4, 120, 8)
    assert np.all(np.isfinite(obs)) and np.all(np.abs(actions) <= 1.0)
    # torso xy is obs[..., :2] / POSITION_SCALE (metres)
    travelled = np.linalg.norm(obs[:, -1, :2] - obs[:, 0, :2], axis=-1) * 3.75
    assert np.median(travelled) > 0.5, travelled
