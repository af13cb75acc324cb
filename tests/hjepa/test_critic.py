"""The trainable cost (hjepa.critic): a learned temporal distance follows geodesics."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hjepa import critic, train

PATH_LENGTH = 24  # steps along a U-shaped corridor


def u_point(s):
    """Where step s in [0, PATH_LENGTH] of a U-shaped corridor lies in the plane [..., 2]:
    down the left side, along the bottom, up the right side; the two ends are 2 apart."""
    third = PATH_LENGTH / 3
    x = jnp.where(s < third, 0.0, jnp.where(s < 2 * third, (s - third) / third * 2.0, 2.0))
    y = jnp.where(s < third, 4.0 - s / third * 4.0,
                  jnp.where(s < 2 * third, 0.0, (s - 2 * third) / third * 4.0))
    return jnp.stack([x, y], -1)


def u_walks(key, episodes=256, length=40):
    """Random walks of unit steps (or none) along the corridor: obs [N, T+1, 2], actions."""
    start_key, move_key = jax.random.split(key)
    start = jax.random.randint(start_key, (episodes, 1), 0, PATH_LENGTH + 1)
    moves = jax.random.randint(move_key, (episodes, length), -1, 2)

    def walk(position, move):
        position = jnp.clip(position + move, 0, PATH_LENGTH)
        return position, position

    _, steps = jax.lax.scan(walk, start[:, 0], moves.T)
    positions = jnp.concatenate([start, steps.T], axis=1).astype(jnp.float32)
    return u_point(positions), moves[..., None].astype(jnp.float32)


def test_learned_steps_to_go_follow_the_corridor_not_the_straight_line():
    obs, actions = u_walks(jax.random.key(0))
    config = critic.CriticConfig(embedding_size=8, hidden=(64, 64), steps=1500,
                                 batch_size=128, window=8, max_steps=40.0, bound_weight=1.0)
    params, history = train.fit_critic(config, obs, log_every=500)
    assert history[-1]["bound_excess"] < 0.1  # bounds hold to about 0.3 steps
    ends = critic.distance(config, params, u_point(jnp.array(0.0)),
                           u_point(jnp.array(float(PATH_LENGTH))))
    # the ends are 2 apart in the plane but 24 steps apart along the corridor
    assert float(ends) > 0.75 * PATH_LENGTH
    assert float(ends) < 1.15 * PATH_LENGTH
    neighbours = critic.distance(config, params, u_point(jnp.arange(PATH_LENGTH - 1.0)),
                                 u_point(jnp.arange(1.0, PATH_LENGTH)))
    assert float(jnp.max(neighbours)) < 2.0
    assert 0.7 < float(jnp.median(neighbours)) < 1.3  # about one step apart
    # monotone along the corridor from one end
    along = critic.distance(config, params, u_point(jnp.zeros(7)),
                            u_point(jnp.arange(0.0, 25.0, 4.0)))
    assert bool(jnp.all(jnp.diff(along) > 0))


def test_distance_is_symmetric_and_zero_on_the_diagonal():
    config = critic.CriticConfig(embedding_size=4, hidden=(16,))
    params = critic.init(config, jax.random.key(0), latent_size=3)
    a, b = jax.random.normal(jax.random.key(1), (2, 5, 3))
    np.testing.assert_allclose(critic.distance(config, params, a, b),
                               critic.distance(config, params, b, a), rtol=1e-5)
    assert float(jnp.max(critic.distance(config, params, a, a))) < 1e-2


@pytest.mark.parametrize("field, value, match", [
    ("embedding_size", 0, "embedding_size: expected a positive integer"),
    ("batch_size", 1, "batch_size: expected at least 2"),
    ("max_steps", -1.0, "max_steps: expected a finite positive number"),
])
def test_bad_config(field, value, match):
    with pytest.raises(ValueError, match=match):
        critic.CriticConfig(**{field: value}).validate()


def test_window_longer_than_the_episodes_is_refused():
    obs, actions = u_walks(jax.random.key(0), episodes=4, length=5)
    with pytest.raises(ValueError, match="window: expected at most the episode length 5"):
        train.fit_critic(critic.CriticConfig(window=8), obs)


def test_fit_critic_is_a_function_of_its_seed_and_refuses_non_episodes():
    obs, _ = u_walks(jax.random.key(0), episodes=16, length=10)
    config = critic.CriticConfig(embedding_size=4, hidden=(16,), steps=20, batch_size=8,
                                 window=4, max_steps=10.0)
    first, history = train.fit_critic(config, obs, log_every=10)
    again, _ = train.fit_critic(config, obs, log_every=10)
    other, _ = train.fit_critic(dataclasses.replace(config, seed=1), obs, log_every=10)
    jax.tree.map(np.testing.assert_array_equal, first, again)
    assert not all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(first),
                                                        jax.tree.leaves(other), strict=True))
    assert [r["step"] for r in history] == [10, 20]  # through the one loop: a record a chunk
    with pytest.raises(ValueError, match=r"latents: expected episodes \[N, T\+1, D\]"):
        train.fit_critic(config, obs[0])


def _shards_dataset(obs_shards):
    from hjepa import data as data_lib

    actions = tuple(np.zeros((len(o), o.shape[1] - 1, 1), np.float32) for o in obs_shards)
    manifest = {"num_episodes": sum(len(o) for o in obs_shards),
                "episode_length": obs_shards[0].shape[1] - 1}
    return data_lib.Dataset("unused", manifest, tuple(obs_shards), actions)


def test_encode_dataset_matches_encoding_all_episodes_at_once():
    rng = np.random.default_rng(0)
    shards = (rng.normal(size=(5, 4, 3)).astype(np.float32),
              rng.normal(size=(2, 4, 3)).astype(np.float32))  # the last chunks are short

    def encode(scale, obs):  # [..., 3] -> [..., 2]
        return scale * jnp.stack([obs.sum(-1), (obs**2).sum(-1)], -1)

    latents = critic.encode_dataset(encode, 2.0, _shards_dataset(shards), chunk_episodes=3)
    assert latents.shape == (7, 4, 2)
    np.testing.assert_allclose(latents, encode(2.0, np.concatenate(shards)), rtol=1e-6)


def test_fit_cached_trains_once_per_config(tmp_path):
    config = critic.CriticConfig(embedding_size=4, hidden=(16,))
    calls = []

    def train():
        calls.append(1)
        params = critic.init(config, jax.random.key(len(calls)), latent_size=3)
        return params, [{"step": 1, "loss": 0.0}]

    first, seconds = critic.fit_cached(config, str(tmp_path), 3, train)
    again, seconds_again = critic.fit_cached(config, str(tmp_path), 3, train)
    assert len(calls) == 1 and seconds_again == seconds
    jax.tree.map(np.testing.assert_array_equal, first, again)
    other = dataclasses.replace(config, max_steps=50.0)
    critic.fit_cached(other, str(tmp_path), 3, train)
    assert len(calls) == 2  # another config retrains (and replaces the cache)
