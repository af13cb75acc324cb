"""Pixels end to end: image encoders, windows read from memory-mapped shards, streamed
statistics, a short pixel training run whose latents do not collapse, and the errors for
mismatched observation kinds."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hjepa import data as data_lib
from hjepa import model as model_lib
from hjepa import tasks
from hjepa import train as train_lib
from hjepa.model import ModelConfig

IMAGE = 16
PIXEL_COLLECT = data_lib.CollectConfig(task="reacher", obs="pixels", num_episodes=12,
                                       episode_length=10, episodes_per_shard=5, seed=1,
                                       image_size=IMAGE)
PIXEL_MODEL = ModelConfig(obs_shape=(IMAGE, IMAGE, 6), action_size=2, latent_size=8,
                          encoder="conv", conv_channels=(8, 16), encoder_hidden=(32,),
                          predictor_hidden=(32, 32))
PIXEL_TRAIN = train_lib.TrainConfig(steps=60, batch_size=16, window=3, learning_rate=2e-3,
                                    seed=0, checkpoint_every=60, log_every=20)


@pytest.fixture(scope="module")
def pixel_dataset(tmp_path_factory) -> data_lib.Dataset:
    path = tmp_path_factory.mktemp("pixels") / "reacher_px"
    return data_lib.collect(PIXEL_COLLECT, str(path), progress=False)


# ----------------------------------------------------------------------------- encoders


@pytest.mark.parametrize("encoder", ["conv", "vit"])
def test_image_encoders_map_uint8_images_to_latents(encoder):
    config = ModelConfig(obs_shape=(16, 16, 3), action_size=2, latent_size=5, encoder=encoder,
                         conv_channels=(4, 8), encoder_hidden=(16,), patch_size=4)
    params = model_lib.init(config, jax.random.key(0))
    images = jax.random.randint(jax.random.key(1), (2, 3, 16, 16, 3), 0, 256).astype(jnp.uint8)
    latents = model_lib.encode(config, params, images)
    assert latents.shape == (2, 3, 5)
    assert bool(jnp.all(jnp.isfinite(latents)))
    # Batch dims are folded and unfolded: encoding one image alone gives the same latent.
    one = model_lib.encode(config, params, images[1, 2])
    np.testing.assert_allclose(one, latents[1, 2], rtol=1e-5, atol=1e-5)
    # The normaliser of an image model is per channel.
    assert params["normalizer"]["mean"].shape == (3,)


def test_frame_encoder_latent_is_the_newest_pose_then_its_motion():
    """frames=2: the latent is [pose of frame 0, pose 0 − pose 1], each pose the shared conv
    stack on one frame: a still pair has no motion, and the pose half is what a one-frame
    encoder with the same weights gives for the newest frame."""
    config = ModelConfig(obs_shape=(16, 16, 6), action_size=2, latent_size=8, encoder="conv",
                         conv_channels=(4, 8), encoder_hidden=(16,), frames=2)
    one_frame = dataclasses.replace(config, obs_shape=(16, 16, 3), latent_size=4, frames=1)
    encode = jax.jit(model_lib.encode, static_argnums=0)
    params = model_lib.init(config, jax.random.key(0))
    images = jax.random.randint(jax.random.key(1), (3, 16, 16, 6), 0, 256).astype(jnp.uint8)
    still = jnp.concatenate([images[..., :3], images[..., :3]], axis=-1)
    latents, still_latents = encode(config, params, jnp.stack([images, still]))  # [3, 8] each
    assert latents.shape == (3, 8)
    np.testing.assert_allclose(still_latents[:, 4:], 0.0, atol=1e-6)
    newest = dict(params, normalizer=jax.tree.map(lambda v: v[:3], params["normalizer"]))
    older = dict(params, normalizer=jax.tree.map(lambda v: v[3:], params["normalizer"]))
    poses = encode(one_frame, newest, images[..., :3])
    np.testing.assert_allclose(poses, latents[:, :4], rtol=1e-5, atol=1e-5)
    older_poses = encode(one_frame, older, images[..., 3:])
    np.testing.assert_allclose(latents[:, :4] - older_poses, latents[:, 4:], rtol=1e-4,
                               atol=1e-4)


@pytest.mark.parametrize(
    "changes, words",
    [
        (dict(frames=4), ["frames=4", "6 channels", "multiples"]),
        (dict(frames=2, latent_size=7), ["latent_size 7", "frames=2"]),
        (dict(frames=0), ["frames", "positive integer", "0"]),
        (dict(frames=2, encoder="vit", patch_size=4), ["frames=2", "'vit'"]),
        (dict(frames=2, obs_shape=(5,), encoder="mlp"), ["frames=2", "'mlp'"]),
    ],
)
def test_bad_frame_counts_name_what_was_given(changes, words):
    config = dataclasses.replace(PIXEL_MODEL, **changes)
    with pytest.raises(ValueError) as info:
        config.validate()
    for word in words:
        assert word in str(info.value)


def test_conv_encoder_rejects_images_smaller_than_its_downsampling():
    config = ModelConfig(obs_shape=(8, 8, 3), action_size=2, encoder="conv",
                         conv_channels=(8, 8, 8, 8))
    with pytest.raises(ValueError, match=r"at least 16x16.*got 8x8"):
        config.validate()


def test_vit_rejects_image_sides_not_multiple_of_the_patch():
    config = ModelConfig(obs_shape=(20, 20, 3), action_size=2, encoder="vit", patch_size=8)
    with pytest.raises(ValueError, match=r"multiples of 8.*20x20"):
        config.validate()


def test_image_encoder_rejects_state_shapes_and_mlp_rejects_images():
    with pytest.raises(ValueError, match=r"takes images \(H, W, C\), got \(5,\)"):
        ModelConfig(obs_shape=(5,), action_size=2, encoder="conv").validate()
    with pytest.raises(ValueError, match=r"flat state observations.*\(16, 16, 3\)"):
        ModelConfig(obs_shape=(16, 16, 3), action_size=2, encoder="mlp").validate()
    with pytest.raises(ValueError, match=r"encoder: expected one of.*'resnet'"):
        ModelConfig(obs_shape=(16, 16, 3), action_size=2, encoder="resnet").validate()


def test_model_config_round_trips_through_a_dict():
    config = dataclasses.replace(PIXEL_MODEL, encoder="vit", patch_size=4)
    assert ModelConfig.from_dict(config.to_dict()) == config


# ----------------------------------------------------------------------------- data on disk


def test_read_windows_from_disk_equals_sampling_in_memory(tiny_dataset):
    obs, actions = tiny_dataset.arrays()
    key = jax.random.key(7)
    expected_obs, expected_actions = data_lib.sample_windows(
        jnp.asarray(obs), jnp.asarray(actions), key, batch_size=32, window=4)
    episodes, starts = data_lib.window_indices(key, tiny_dataset.num_episodes,
                                               tiny_dataset.episode_length, batch_size=32,
                                               window=4)
    got_obs, got_actions = data_lib.read_windows(tiny_dataset, np.asarray(episodes),
                                                 np.asarray(starts), 4)
    np.testing.assert_array_equal(got_obs, np.asarray(expected_obs))
    np.testing.assert_array_equal(got_actions, np.asarray(expected_actions))
    # The shards are 2 files: windows come from both.
    assert len(set(np.asarray(episodes) // 4)) == 2


def test_streamed_statistics_equal_the_in_memory_ones(tiny_dataset):
    obs, _ = tiny_dataset.arrays()
    mean, std = data_lib.observation_stats(tiny_dataset, per_channel=False, chunk_episodes=3)
    flat = obs.reshape(-1, obs.shape[-1]).astype(np.float64)
    np.testing.assert_allclose(mean, flat.mean(axis=0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(std, flat.std(axis=0), rtol=1e-4, atol=1e-6)


def test_pixel_dataset_is_uint8_on_disk_and_memory_mapped(pixel_dataset):
    assert pixel_dataset.manifest["obs_dtype"] == "uint8"
    assert pixel_dataset.obs_shape == (IMAGE, IMAGE, 6)
    shard = pixel_dataset.obs_shards[0]
    assert isinstance(shard, np.memmap) and shard.dtype == np.uint8
    assert shard.shape == (5, 11, IMAGE, IMAGE, 6)
    assert [len(s) for s in pixel_dataset.obs_shards] == [5, 5, 2]
    # The arm is drawn: frames are not blank, and they change along an episode.
    assert shard.std() > 0
    assert np.any(shard[0, 0] != shard[0, -1])
    assert pixel_dataset.make_task() is tasks.make("reacher", "pixels", image_size=IMAGE)


def test_pixel_statistics_are_per_channel(pixel_dataset):
    mean, std = data_lib.observation_stats(pixel_dataset, per_channel=True)
    assert mean.shape == std.shape == (6,)
    every = np.concatenate([np.asarray(s, np.float64).reshape(-1, 6)
                            for s in pixel_dataset.obs_shards])
    np.testing.assert_allclose(mean, every.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(std, every.std(axis=0), rtol=1e-4)


# ----------------------------------------------------------------------------- training


@pytest.fixture(scope="module")
def pixel_run(tmp_path_factory, pixel_dataset):
    run_dir = str(tmp_path_factory.mktemp("pixel-runs") / "run")
    state = train_lib.fit(PIXEL_MODEL, PIXEL_TRAIN, pixel_dataset, run_dir, progress=False)
    return run_dir, state


def test_short_pixel_training_lowers_the_loss_without_collapse(pixel_run):
    import json
    import os

    run_dir, state = pixel_run
    assert int(state.step) == PIXEL_TRAIN.steps
    lines = [json.loads(x) for x in open(os.path.join(run_dir, "metrics.jsonl"))]
    assert [m["step"] for m in lines] == [20, 40, 60]
    assert lines[-1]["loss"] < lines[0]["loss"]
    assert all(np.isfinite(m["loss"]) for m in lines)
    assert lines[-1]["latent_std_min"] > 0.05, "pixel latents collapsed"


def test_pixel_run_reloads_and_encodes_the_task_observations(pixel_run):
    run_dir, state = pixel_run
    config, _, params = train_lib.load_run(run_dir, task="reacher")
    assert config == PIXEL_MODEL
    task = tasks.make("reacher", "pixels", image_size=IMAGE)
    episode = jax.jit(task.reset)(jax.random.key(3))
    latent = model_lib.encode(config, params, jax.jit(task.observe)(episode.state))
    goal = model_lib.encode(config, params, episode.goal.obs)
    assert latent.shape == goal.shape == (8,)
    assert float(jnp.linalg.norm(latent - goal)) > 0


def test_streamed_batches_are_the_in_memory_batches(pixel_dataset):
    obs, actions = pixel_dataset.arrays()
    batches = list(train_lib.streamed_batches(pixel_dataset, PIXEL_TRAIN, 5, 7))
    data_key = jax.random.key(PIXEL_TRAIN.seed + 1)
    for step, (got_obs, got_actions) in zip((5, 6), batches, strict=True):
        want_obs, want_actions = data_lib.sample_windows(
            jnp.asarray(obs), jnp.asarray(actions), jax.random.fold_in(data_key, step),
            batch_size=PIXEL_TRAIN.batch_size, window=PIXEL_TRAIN.window)
        np.testing.assert_array_equal(got_obs, np.asarray(want_obs))
        np.testing.assert_array_equal(got_actions, np.asarray(want_actions))


# ----------------------------------------------------------------------------- bad input


def test_state_model_on_pixel_dataset_names_both(tmp_path, pixel_dataset):
    state_model = ModelConfig(obs_shape=(5,), action_size=2, encoder="mlp")
    with pytest.raises(ValueError, match=r"'mlp' encoder takes state.*holds pixels"):
        train_lib.fit(state_model, PIXEL_TRAIN, pixel_dataset, str(tmp_path / "r"),
                      progress=False)


def test_pixel_model_on_state_dataset_names_both(tmp_path, tiny_dataset):
    with pytest.raises(ValueError, match=r"'conv' encoder takes pixel.*holds state"):
        train_lib.fit(PIXEL_MODEL, PIXEL_TRAIN, tiny_dataset, str(tmp_path / "r"),
                      progress=False)


def test_shape_mismatch_between_model_and_dataset_names_both(tmp_path, pixel_dataset):
    other = dataclasses.replace(PIXEL_MODEL, obs_shape=(32, 32, 6))
    with pytest.raises(ValueError, match=r"\(32, 32, 6\).*\(16, 16, 6\)"):
        train_lib.fit(other, PIXEL_TRAIN, pixel_dataset, str(tmp_path / "r"), progress=False)


def test_evaluating_a_pixel_model_on_state_observations_names_both():
    from hjepa import evaluate

    params = model_lib.init(PIXEL_MODEL, jax.random.key(0))
    with pytest.raises(ValueError, match=r"\(16, 16, 6\).*'reacher' \(state\) gives \(5,\)"):
        evaluate.evaluate(tasks.make("reacher"), jax.random.key(0), num_episodes=2,
                          model_config=PIXEL_MODEL, params=params)


def test_unknown_observation_kind_and_bad_image_size():
    with pytest.raises(ValueError, match=r"obs: expected one of \['state', 'pixels'\].*'depth'"):
        tasks.make("reacher", obs="depth")
    with pytest.raises(ValueError, match=r"image_size: expected an integer >= 8, got 4"):
        tasks.make("reacher", obs="pixels", image_size=4)
