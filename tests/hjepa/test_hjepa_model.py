"""hjepa.losses and hjepa.model: hand-computed losses, shapes, the planning Problem, jit."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import planners
from hjepa import cost as cost_lib
from hjepa import losses
from hjepa import model as model_lib
from hjepa.model import ModelConfig

CONFIG = ModelConfig(obs_shape=(5,), action_size=2, latent_size=6, encoder_hidden=(16,),
                     predictor_hidden=(16, 16))


@pytest.fixture(scope="module")
def params():
    return model_lib.init(CONFIG, jax.random.key(0))


def _obs(key, *batch):
    return jax.random.normal(key, (*batch, 5))


# ----------------------------------------------------------------------------- losses


def test_variance_loss_hand_computed():
    # column 0: values 0, 2 -> population var 1 -> std sqrt(1 + 1e-4) >= 1: no penalty
    # column 1: constant -> std sqrt(1e-4) = 0.01 -> penalty 0.99
    latents = jnp.array([[0.0, 5.0], [2.0, 5.0]])
    np.testing.assert_allclose(losses.variance_loss(latents), (0.0 + 0.99) / 2, rtol=1e-5)
    # target 3: penalties 3 - sqrt(1.0001) and 3 - 0.01
    expected = ((3 - np.sqrt(1.0001)) + (3 - 0.01)) / 2
    np.testing.assert_allclose(losses.variance_loss(latents, target=3.0), expected, rtol=1e-5)


def test_variance_loss_is_zero_for_spread_latents():
    latents = jnp.array([[-2.0, 3.0], [2.0, -3.0], [0.0, 0.0], [2.0, 3.0], [-2.0, -3.0]])
    assert float(losses.variance_loss(latents)) == 0.0


def test_covariance_loss_hand_computed():
    # mean (3, 2); centred rows (-2, 0), (0, -2), (2, 2); cov (n-1 = 2) = [[4, 2], [2, 4]]
    # off-diagonal squares 2 * 2² = 8, divided by D = 2 -> 4
    latents = jnp.array([[1.0, 2.0], [3.0, 0.0], [5.0, 4.0]])
    np.testing.assert_allclose(losses.covariance_loss(latents), 4.0, rtol=1e-6)


def test_covariance_loss_ignores_the_diagonal_and_shifts():
    # uncorrelated columns (any scale) -> 0; adding a constant changes nothing
    latents = jnp.array([[1.0, 10.0], [-1.0, 10.0], [1.0, -10.0], [-1.0, -10.0]])
    np.testing.assert_allclose(losses.covariance_loss(latents), 0.0, atol=1e-6)
    x = jax.random.normal(jax.random.key(0), (32, 4))
    np.testing.assert_allclose(losses.covariance_loss(x + 7.0), losses.covariance_loss(x),
                               rtol=1e-4)


def test_prediction_loss_hand_computed():
    predicted = jnp.array([[1.0, 2.0], [0.0, 0.0]])
    target = jnp.array([[1.0, 0.0], [3.0, 0.0]])
    np.testing.assert_allclose(losses.prediction_loss(predicted, target), (4 + 9) / 4)


def test_jepa_loss_is_the_weighted_sum_and_reports_metrics():
    key_a, key_b = jax.random.split(jax.random.key(1))
    latents = jax.random.normal(key_a, (3, 5, 4))  # [B, W+1, D]
    predicted = jax.random.normal(key_b, (3, 4, 4))  # [B, W, D]
    config = losses.LossConfig(prediction_weight=2.0, variance_weight=0.5,
                               covariance_weight=0.1, variance_target=1.5)
    loss, metrics = losses.jepa_loss(latents, predicted, config)
    flat = latents.reshape(-1, 4)
    prediction = losses.prediction_loss(predicted, latents[:, 1:])
    variance = losses.variance_loss(flat, 1.5)
    covariance = losses.covariance_loss(flat)
    np.testing.assert_allclose(loss, 2.0 * prediction + 0.5 * variance + 0.1 * covariance,
                               rtol=1e-6)
    np.testing.assert_allclose(metrics["prediction"], prediction, rtol=1e-6)
    np.testing.assert_allclose(metrics["variance"], variance, rtol=1e-6)
    np.testing.assert_allclose(metrics["covariance"], covariance, rtol=1e-6)
    std = np.std(np.asarray(flat), axis=0)
    np.testing.assert_allclose(metrics["latent_std_min"], std.min(), rtol=1e-5)
    np.testing.assert_allclose(metrics["latent_std_mean"], std.mean(), rtol=1e-5)


def test_jepa_loss_stops_the_gradient_through_the_targets():
    # With only the prediction term, the targets (latents[:, 1:]) get no gradient, and the
    # first latents are not in the prediction term at all: d loss / d latents = 0.
    latents = jax.random.normal(jax.random.key(2), (2, 4, 3))
    predicted = jax.random.normal(jax.random.key(3), (2, 3, 3))
    config = losses.LossConfig(prediction_weight=1.0, variance_weight=0.0, covariance_weight=0.0)
    grad_latents, grad_predicted = jax.grad(
        lambda z, p: losses.jepa_loss(z, p, config)[0], argnums=(0, 1))(latents, predicted)
    np.testing.assert_array_equal(grad_latents, 0.0)
    np.testing.assert_allclose(grad_predicted, 2 * (predicted - latents[:, 1:]) / predicted.size,
                               rtol=1e-5)


# ----------------------------------------------------------------------------- model


def test_init_params_structure(params):
    assert set(params) == {"encoder", "predictor", "normalizer"}
    np.testing.assert_array_equal(params["normalizer"]["mean"], np.zeros(5))
    np.testing.assert_array_equal(params["normalizer"]["std"], np.ones(5))
    assert all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves(params))


def test_init_is_deterministic_per_key(params):
    again = model_lib.init(CONFIG, jax.random.key(0))
    other = model_lib.init(CONFIG, jax.random.key(1))
    for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(again), strict=True):
        np.testing.assert_array_equal(a, b)
    assert not all(np.array_equal(a, b) for a, b in
                   zip(jax.tree.leaves(params["encoder"]), jax.tree.leaves(other["encoder"]),
                       strict=True))


@pytest.mark.parametrize("batch", [(), (3,), (2, 4)])
def test_encode_and_predict_shapes(params, batch):
    obs = _obs(jax.random.key(0), *batch)
    latent = model_lib.encode(CONFIG, params, obs)
    assert latent.shape == (*batch, 6)
    action = jnp.zeros((*batch, 2))
    assert model_lib.predict(CONFIG, params, latent, action).shape == (*batch, 6)
    assert bool(jnp.all(jnp.isfinite(latent)))


def test_encode_applies_the_normalizer():
    mean = jnp.array([0.5, -1.0, 2.0, 0.0, 3.0])
    std = jnp.array([2.0, 0.5, 1.0, 4.0, 0.0])  # a zero std is clamped to 1e-6
    normalized = model_lib.init(CONFIG, jax.random.key(0), mean, std)
    plain = model_lib.init(CONFIG, jax.random.key(0))
    np.testing.assert_allclose(normalized["normalizer"]["std"],
                               [2.0, 0.5, 1.0, 4.0, 1e-6], rtol=1e-6)
    obs = _obs(jax.random.key(1), 7).at[:, 4].set(3.0)  # the constant dimension sits at its mean
    clamped_std = jnp.maximum(std, 1e-6)
    np.testing.assert_allclose(model_lib.encode(CONFIG, normalized, obs),
                               model_lib.encode(CONFIG, plain, (obs - mean) / clamped_std),
                               rtol=1e-5, atol=1e-6)


def test_rollout_chains_predict(params):
    z0 = model_lib.encode(CONFIG, params, _obs(jax.random.key(2)))
    actions = jax.random.uniform(jax.random.key(3), (5, 2), minval=-1, maxval=1)
    latents = model_lib.rollout(CONFIG, params, z0, actions)
    assert latents.shape == (5, 6)
    z = z0
    for t in range(5):
        z = model_lib.predict(CONFIG, params, z, actions[t])
        np.testing.assert_allclose(latents[t], z, rtol=1e-5, atol=1e-6)


def test_rollout_depends_on_the_actions(params):
    z0 = model_lib.encode(CONFIG, params, _obs(jax.random.key(2)))
    a = model_lib.rollout(CONFIG, params, z0, jnp.zeros((3, 2)))
    b = model_lib.rollout(CONFIG, params, z0, jnp.ones((3, 2)))
    assert not np.allclose(a, b)


def test_encode_and_rollout_jit_match_eager(params):
    obs = _obs(jax.random.key(4), 8)
    encode = jax.jit(model_lib.encode, static_argnums=0)
    np.testing.assert_allclose(encode(CONFIG, params, obs), model_lib.encode(CONFIG, params, obs),
                               rtol=1e-5, atol=1e-6)
    z0 = model_lib.encode(CONFIG, params, obs[0])
    actions = jax.random.uniform(jax.random.key(5), (6, 2), minval=-1, maxval=1)
    rollout = jax.jit(model_lib.rollout, static_argnums=0)
    np.testing.assert_allclose(rollout(CONFIG, params, z0, actions),
                               model_lib.rollout(CONFIG, params, z0, actions), rtol=1e-5,
                               atol=1e-6)


def test_model_config_round_trip_and_checks():
    assert ModelConfig.from_dict(CONFIG.to_dict()) == CONFIG
    hash(CONFIG)
    for bad, word in ((dict(latent_size=0), "latent_size"), (dict(action_size=-1), "action_size"),
                      (dict(obs_shape=(3, 4)), "obs_shape"), (dict(obs_shape=()), "obs_shape"),
                      (dict(encoder_hidden=(16, 0)), "encoder_hidden")):
        with pytest.raises(ValueError, match=word):
            model_lib.init(dataclasses.replace(CONFIG, **bad), jax.random.key(0))


# ----------------------------------------------------------------------------- problem


def test_problem_plans_in_latent_space_toward_the_goal(params):
    obs, goal_obs = _obs(jax.random.key(6)), _obs(jax.random.key(7))
    low, high = -jnp.ones(2), jnp.ones(2)
    problem = model_lib.problem(CONFIG, params, obs, goal_obs, low, high, terminal_weight=3.0)
    assert isinstance(problem, planners.Problem)
    z0 = model_lib.encode(CONFIG, params, obs)
    goal = model_lib.encode(CONFIG, params, goal_obs)
    np.testing.assert_allclose(problem.init_state, z0, rtol=1e-6)
    np.testing.assert_allclose(problem.params["goal"], goal, rtol=1e-6)
    np.testing.assert_array_equal(problem.action_low, low)
    np.testing.assert_array_equal(problem.action_high, high)
    # total cost = sum of latent distances after each step + 3 x the final distance
    actions = jax.random.uniform(jax.random.key(8), (4, 2), minval=-1, maxval=1)
    latents = model_lib.rollout(CONFIG, params, z0, actions)
    distances = np.mean((np.asarray(latents) - np.asarray(goal)) ** 2, axis=-1)
    np.testing.assert_allclose(planners.total_cost(problem, actions),
                               distances.sum() + 3.0 * distances[-1], rtol=1e-5)
    # planning from the goal itself: zero cost for a model that stays put is the minimum
    at_goal = model_lib.problem(CONFIG, params, goal_obs, goal_obs, low, high)
    assert float(at_goal.terminal_cost(at_goal.params, at_goal.init_state)) == 0.0
    np.testing.assert_allclose(cost_lib.latent_distance(goal, goal), 0.0)


def test_problem_with_a_critic_costs_its_steps_to_go(params):
    from hjepa import critic as critic_lib

    obs, goal_obs = _obs(jax.random.key(1)), _obs(jax.random.key(2))
    critic_config = critic_lib.CriticConfig(embedding_size=4, hidden=(8,))
    critic_params = critic_lib.init(critic_config, jax.random.key(3), CONFIG.latent_size)
    problem = model_lib.problem(CONFIG, params, obs, goal_obs, -jnp.ones(2), jnp.ones(2),
                                terminal_weight=3.0, critic=(critic_config, critic_params))
    goal = model_lib.encode(CONFIG, params, goal_obs)
    actions = jax.random.uniform(jax.random.key(8), (4, 2), minval=-1, maxval=1)
    latents = model_lib.rollout(CONFIG, params, problem.init_state, actions)
    steps = critic_lib.distance(critic_config, critic_params, latents, goal)  # [4]
    np.testing.assert_allclose(planners.total_cost(problem, actions),
                               steps.sum() + 3.0 * steps[-1], rtol=1e-5)
    intrinsic = model_lib.problem(CONFIG, params, obs, goal_obs, -jnp.ones(2), jnp.ones(2))
    assert "critic" not in intrinsic.params


@pytest.mark.parametrize(
    "name, value, expected",
    [
        ("obs", jnp.zeros(4), "(5,)"),
        ("obs", jnp.zeros((1, 5)), "(5,)"),
        ("goal_obs", jnp.zeros(6), "(5,)"),
        ("action_low", -jnp.ones(3), "(2,)"),
        ("action_high", jnp.ones((2, 1)), "(2,)"),
    ],
)
def test_problem_rejects_wrong_shapes(params, name, value, expected):
    args = dict(obs=jnp.zeros(5), goal_obs=jnp.zeros(5), action_low=-jnp.ones(2),
                action_high=jnp.ones(2))
    args[name] = value
    with pytest.raises(ValueError) as info:
        model_lib.problem(CONFIG, params, **args)
    message = str(info.value)
    assert name in message
    assert expected in message
    assert str(tuple(value.shape)) in message


def test_inverse_dynamics_head_is_optional_and_leaves_the_other_params_alone(params):
    with_head = dataclasses.replace(CONFIG, inverse_dynamics_hidden=(8,))
    head_params = model_lib.init(with_head, jax.random.key(0))
    assert "inverse_dynamics" not in params and "inverse_dynamics" in head_params
    for name in ("encoder", "predictor"):  # the same key gives the same encoder and predictor
        jax.tree.map(np.testing.assert_array_equal, head_params[name],
                     model_lib.init(CONFIG, jax.random.key(0))[name])
    z = jax.random.normal(jax.random.key(1), (3, 4, CONFIG.latent_size))
    assert model_lib.infer_actions(with_head, head_params, z, z).shape == (3, 4, 2)
    with pytest.raises(ValueError, match="no inverse-dynamics head"):
        model_lib.infer_actions(CONFIG, params, z, z)
    assert ModelConfig.from_dict(with_head.to_dict()) == with_head
    with pytest.raises(ValueError, match="inverse_dynamics_hidden: expected positive"):
        dataclasses.replace(CONFIG, inverse_dynamics_hidden=(0,)).validate()


def test_inverse_dynamics_term_adds_the_weighted_action_error():
    from hjepa import train as train_lib

    config = dataclasses.replace(CONFIG, inverse_dynamics_hidden=(8,))
    params = model_lib.init(config, jax.random.key(0))
    obs = _obs(jax.random.key(1), 4, 3)  # [B=4, W+1=3, 5]
    actions = jax.random.uniform(jax.random.key(2), (4, 2, 2), minval=-1, maxval=1)
    plain = losses.LossConfig()
    weighted = dataclasses.replace(plain, inverse_dynamics_weight=0.5)
    base, _ = train_lib.loss_fn(params, config, plain, obs, actions)
    total, metrics = train_lib.loss_fn(params, config, weighted, obs, actions)
    latents = model_lib.encode(config, params, obs)
    inferred = model_lib.infer_actions(config, params, latents[:, :-1], latents[:, 1:])
    error = float(jnp.mean((inferred - actions) ** 2))
    np.testing.assert_allclose(metrics["inverse_dynamics"], error, rtol=1e-5)
    np.testing.assert_allclose(total, base + 0.5 * error, rtol=1e-5)
    np.testing.assert_allclose(metrics["loss"], total, rtol=1e-6)
