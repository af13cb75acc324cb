"""hjepa.latent_variable (a JEPA with a latent variable u) and the windy_cliff task."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import planners
from hjepa import evaluate as evaluate_lib
from hjepa import latent_variable as lv
from hjepa import model as model_lib
from hjepa import tasks
from hjepa import train as train_lib
from hjepa.model import ModelConfig
from hjepa.tasks import windy
from hjepa.train import TrainConfig

# ----------------------------------------------------------------------------- the bimodal problem
#
# One step from z = 0 with action a in [-2, 2]: the outcome is z' = a + s, s = tanh(50 u),
# so s = +1 or -1 for u = +1 or -1 and s = 0 for u = 0. Cost c(z') = relu(z')² + 9 relu(-z')²:
# falling short is 9 times worse than overshooting.
#   u = 0:               min_a c(a)                          -> a* = 0,   cost 0.
#   mean over u = ±1:    J(a) = ((a + 1)² + 9 (1 - a)²) / 2   -> a* = 0.8, cost 1.8.
#   worst case (q = 1):  max((a + 1)², 9 (1 - a)²)            -> a* = 0.5, cost 2.25.


def signed_outcome(params, latent, action, u):
    del params
    return latent + action + jnp.tanh(50.0 * u)


def asymmetric_cost(goal, latent):
    d = latent - goal
    return jnp.sum(jax.nn.relu(d) ** 2 + 9.0 * jax.nn.relu(-d) ** 2)


def bimodal_problem(u, quantile=None):
    return lv.sampled_problem(signed_outcome, asymmetric_cost, None, jnp.zeros(1), jnp.zeros(1),
                              u, -2.0 * jnp.ones(1), 2.0 * jnp.ones(1), quantile=quantile,
                              terminal_weight=0.0)


PLUS_MINUS = jnp.array([[[1.0]], [[-1.0]]])  # [K=2, H=1, U=1]


def best_action(problem):
    plan = planners.mppi(problem, jnp.zeros((1, 1)), jax.random.key(0), num_samples=256,
                         iterations=8, noise_std=1.0, temperature=0.05)
    return float(plan.actions[0, 0]), float(plan.cost)


@pytest.mark.parametrize("u, quantile, action, cost", [
    (jnp.zeros((1, 1, 1)), None, 0.0, 0.0),
    (PLUS_MINUS, None, 0.8, 1.8),
    (PLUS_MINUS, 1.0, 0.5, 2.25),
])
def test_bimodal_costs_match_the_hand_computed_values(u, quantile, action, cost):
    problem = bimodal_problem(u, quantile)
    value = planners.total_cost(problem, jnp.full((1, 1), action))
    np.testing.assert_allclose(value, cost, rtol=1e-5, atol=1e-6)


def test_sampling_u_changes_the_chosen_plan_on_a_bimodal_problem():
    zero_action, zero_cost = best_action(bimodal_problem(jnp.zeros((1, 1, 1))))
    mean_action, mean_cost = best_action(bimodal_problem(PLUS_MINUS))
    worst_action, worst_cost = best_action(bimodal_problem(PLUS_MINUS, quantile=1.0))
    assert abs(zero_action - 0.0) < 0.03 and zero_cost < 1e-3
    assert abs(mean_action - 0.8) < 0.03 and abs(mean_cost - 1.8) < 0.01
    assert abs(worst_action - 0.5) < 0.03 and abs(worst_cost - 2.25) < 0.01


def test_many_prior_samples_find_the_mean_optimum():
    # K = 400 draws of N(0, 1): a fraction f has u > 0 and the optimum is
    # a* = (9 (1 - f) - f) / (f + 9 (1 - f)) (0.8 at f = 1/2).
    u = jax.random.normal(jax.random.key(3), (400, 1, 1))
    f = float(jnp.mean(u > 0))
    expected = (9 * (1 - f) - f) / (f + 9 * (1 - f))
    action, _ = best_action(bimodal_problem(u))
    assert abs(action - expected) < 0.03
    assert action > 0.6  # far from the u = 0 plan


def test_quantile_cost_is_the_quantile_of_the_sample_totals():
    # Over H = 3 steps with a terminal cost: the telescoped step costs sum to the quantile
    # of the K per-sample totals, computed here one sample at a time.
    u = jax.random.normal(jax.random.key(1), (5, 3, 1))
    actions = jnp.array([[0.3], [-0.2], [0.5]])
    for q in (0.0, 0.3, 0.75, 1.0):
        problem = lv.sampled_problem(signed_outcome, asymmetric_cost, None, jnp.zeros(1),
                                     jnp.array([0.4]), u, -2.0 * jnp.ones(1), 2.0 * jnp.ones(1),
                                     quantile=q, terminal_weight=3.0)
        totals = []
        for k in range(5):
            z, total = jnp.zeros(1), 0.0
            for t in range(3):
                z = signed_outcome(None, z, actions[t], u[k, t])
                total += asymmetric_cost(jnp.array([0.4]), z)
            totals.append(total + 3.0 * asymmetric_cost(jnp.array([0.4]), z))
        np.testing.assert_allclose(planners.total_cost(problem, actions),
                                   np.quantile(np.array(totals), q), rtol=1e-5)


# ----------------------------------------------------------------------------- the learned model

TINY = ModelConfig(obs_shape=(5,), action_size=2, latent_size=8, encoder_hidden=(16,),
                   predictor_hidden=(16,))
TINY_LV = lv.LatentVariableConfig(TINY, latent_variable_size=2, inference_hidden=(16,))


def test_one_zero_sample_is_the_plain_model():
    plain = model_lib.init(TINY, jax.random.key(0), jnp.arange(5.0), jnp.ones(5))
    params = lv.from_plain(TINY_LV, plain, jax.random.key(1))
    obs, goal = jax.random.normal(jax.random.key(2), (2, 5))
    actions = jax.random.uniform(jax.random.key(3), (6, 2), minval=-1, maxval=1)
    low, high = -jnp.ones(2), jnp.ones(2)
    plain_problem = model_lib.problem(TINY, plain, obs, goal, low, high, terminal_weight=4.0)
    zero = lv.problem(TINY_LV, params, obs, goal, low, high, lv.zero_samples(TINY_LV, horizon=6),
                      terminal_weight=4.0)
    states, costs, terminal = planners.rollout(zero, actions)
    plain_states, plain_costs, plain_terminal = planners.rollout(plain_problem, actions)
    np.testing.assert_allclose(states.latents[:, 0], plain_states, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(states.latents[:, 0],
                               model_lib.rollout(TINY, plain, plain_problem.init_state, actions),
                               rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(costs, plain_costs, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(terminal, plain_terminal, rtol=1e-6, atol=1e-7)
    # from_plain zeroes the predictor's weights on u: any sample predicts the same
    many = lv.problem(TINY_LV, params, obs, goal, low, high,
                      lv.draw_samples(TINY_LV, jax.random.key(4), num_samples=3, horizon=6))
    np.testing.assert_allclose(planners.total_cost(many, actions),
                               planners.total_cost(plain_problem, actions), rtol=1e-5)


def test_jit_and_no_jit_agree():
    params = lv.init(TINY_LV, jax.random.key(0))
    obs, goal = jax.random.normal(jax.random.key(2), (2, 5))
    u = lv.draw_samples(TINY_LV, jax.random.key(5), num_samples=4, horizon=5)
    actions = jax.random.uniform(jax.random.key(3), (5, 2), minval=-1, maxval=1)
    problem = lv.problem(TINY_LV, params, obs, goal, -jnp.ones(2), jnp.ones(2), u,
                         quantile=0.75)
    with jax.disable_jit():
        eager = planners.total_cost(problem, actions)
    jitted = jax.jit(planners.total_cost)(problem, actions)
    np.testing.assert_allclose(eager, jitted, rtol=1e-5)
    assert np.isfinite(jitted)
    windows = jax.random.normal(jax.random.key(6), (4, 3, 5)), actions[None, :2].repeat(4, 0)
    key, loss = jax.random.key(7), TrainConfig().loss
    eager, _ = lv.loss_fn(params, TINY_LV, loss, *windows, key)
    jitted, _ = jax.jit(lv.loss_fn, static_argnums=(1, 2))(params, TINY_LV, loss, *windows, key)
    np.testing.assert_allclose(eager, jitted, rtol=1e-5)


def pushed_world(num_episodes=256, length=4, seed=0):
    """obs [N, T+1, 2] in [-1, 1]², actions [N, T, 2]: x' = x + 0.1 a, plus a push of ±0.5
    (a fair coin) on the first coordinate wherever x[0] > 0; pushes [N, T] (0 where none)."""
    rng = np.random.default_rng(seed)
    obs = np.zeros((num_episodes, length + 1, 2), np.float32)
    obs[:, 0] = rng.uniform(-1, 1, (num_episodes, 2))
    actions = rng.uniform(-1, 1, (num_episodes, length, 2)).astype(np.float32)
    pushes = np.where(rng.random((num_episodes, length)) < 0.5, 0.5, -0.5)
    for t in range(length):
        pushes[:, t] *= obs[:, t, 0] > 0
        obs[:, t + 1] = obs[:, t] + 0.1 * actions[:, t]
        obs[:, t + 1, 0] += pushes[:, t]
    return obs, actions, pushes.astype(np.float32)


def test_inferred_u_carries_the_push_and_nothing_where_there_is_none():
    obs, actions, pushes = pushed_world()
    model = ModelConfig(obs_shape=(2,), action_size=2, latent_size=8, encoder_hidden=(32,),
                        predictor_hidden=(32, 32))
    config = lv.LatentVariableConfig(model, latent_variable_size=1, inference_hidden=(32,),
                                     kl_weight=0.2)
    train = TrainConfig(steps=800, batch_size=64, window=2, learning_rate=3e-3, log_every=400)
    params, history = train_lib.fit_latent_variable(config, train, obs, actions)
    z = lv.encode(config, params, obs)  # [N, T+1, D]
    mean, log_std = lv.infer(config, params, z[:, :-1], z[:, 1:])  # [N, T, 1]
    kl = np.asarray(lv.kl_standard_normal(mean, log_std))  # [N, T]
    pushed = pushes != 0
    # where a push happens u tells its sign (split at the median: the coin is fair) ...
    u = np.asarray(mean[..., 0])[pushed]
    agree = np.mean((u > np.median(u)) == (pushes[pushed] > 0))
    assert max(agree, 1 - agree) > 0.95
    assert kl[pushed].mean() > 0.3  # at most log 2 = 0.69 nats are needed for a fair coin
    # ... and where none can happen u carries (almost) nothing: the bottleneck
    assert kl[~pushed].mean() < 0.05
    # with the inferred u the pushed steps are predicted far better than with u = 0
    flat = (z[:, :-1][pushed], jnp.asarray(actions)[pushed], z[:, 1:][pushed])
    err = jnp.mean((lv.predict(config, params, flat[0], flat[1], mean[pushed]) - flat[2]) ** 2)
    err0 = jnp.mean((lv.predict(config, params, flat[0], flat[1], 0 * mean[pushed])
                     - flat[2]) ** 2)
    assert float(err) < 0.3 * float(err0)
    assert history[-1]["prediction"] < history[0]["prediction"]


# ----------------------------------------------------------------------------- bad input


def test_bad_inputs_raise_clear_errors():
    params = lv.init(TINY_LV, jax.random.key(0))
    obs = jnp.zeros(5)
    low, high = -jnp.ones(2), jnp.ones(2)
    u = lv.draw_samples(TINY_LV, jax.random.key(0), num_samples=2, horizon=3)
    for k in (0, -1):
        with pytest.raises(ValueError, match=rf"num_samples: expected a positive integer, got {k}"):
            lv.draw_samples(TINY_LV, jax.random.key(0), num_samples=k, horizon=3)
    for q in (-0.1, 1.5, "high"):
        with pytest.raises(ValueError, match=r"quantile: expected .*\[0, 1\], got"):
            lv.problem(TINY_LV, params, obs, obs, low, high, u, quantile=q)
    with pytest.raises(ValueError, match=r"u: expected samples of shape \[K, H, 2\].*size 2.*"
                                         r"got \[2, 3, 3\]"):
        lv.problem(TINY_LV, params, obs, obs, low, high, jnp.zeros((2, 3, 3)))
    with pytest.raises(ValueError, match=r"u: expected .*got \[0, 3, 2\]"):
        lv.problem(TINY_LV, params, obs, obs, low, high, jnp.zeros((0, 3, 2)))
    with pytest.raises(ValueError, match=r"obs: expected an observation of shape \(5,\), got"):
        lv.problem(TINY_LV, params, jnp.zeros(4), obs, low, high, u)
    with pytest.raises(ValueError, match=r"latent_variable_size: expected a positive integer"):
        lv.init(dataclasses.replace(TINY_LV, latent_variable_size=0), jax.random.key(0))
    windy_task = tasks.make("windy_cliff")
    with pytest.raises(ValueError, match=r"config: the model takes observations of shape "
                                         r"\(5,\), the task 'windy_cliff' gives \(3,\)"):
        evaluate_lib.evaluate_latent_variable(windy_task, jax.random.key(0), TINY_LV, params,
                                              num_episodes=2)
    fits = dataclasses.replace(TINY_LV, model=dataclasses.replace(TINY, obs_shape=(3,)))
    with pytest.raises(ValueError, match=r"num_samples: expected a positive integer, got 0"):
        evaluate_lib.evaluate_latent_variable(windy_task, jax.random.key(0), fits, params,
                                              num_episodes=2, num_samples=0)


# ----------------------------------------------------------------------------- windy_cliff


N_STRIP = 3000  # points in the gusty strip, and as many elsewhere (outside the pit)


@jax.jit
def _windy_probe(xy, keys, reset_keys):
    """From rest at xy [N, 2] with gust keys [N]: a step with zero action, then a step with
    action (1, 1): (q after 1 [N, 2], observation after 1 [N, 3], q and qd after 2 [N, 2]).
    And episodes drawn with reset_keys [M]: (start [M, 2], goal [M, 2], success at the goal
    [M], success at the start [M], goal observation [M, 3])."""
    task = tasks.make("windy_cliff")

    def step(state, action):  # one compiled step for both
        state = task.step(state, action)
        return state, (state.physics.q[:2], task.observe(state), state.physics.qd[:2])

    def two_steps(p, k):
        return jax.lax.scan(step, task.init_state(p, k), jnp.array([[0.0, 0.0], [1.0, 1.0]]))[1]

    q, obs, qd = jax.vmap(two_steps)(xy, keys)  # [N, 2, ...]
    steps = (q[:, 0], obs[:, 0], q[:, 1], qd[:, 1])
    episodes = jax.vmap(task.reset)(reset_keys)
    at_goal = jax.vmap(lambda g, k: windy.WindyState(g.state, k))(episodes.goal, reset_keys)
    success = jax.vmap(task.success)(at_goal, episodes.goal)
    stay = jax.vmap(task.success)(episodes.state, episodes.goal)
    return steps, (episodes.state.physics.q[:, :2], episodes.goal.position, success, stay,
                   episodes.goal.obs)


@pytest.fixture(scope="module")
def windy_probe():
    rng = np.random.default_rng(0)
    n = N_STRIP
    x0, y0, x1, y1 = windy.WIND
    strip = np.stack([rng.uniform(x0, x1, n), rng.uniform(y0, y1, n)], -1)
    others = rng.uniform(-windy.LIMIT, windy.LIMIT, (4 * n, 2))
    keep = ~np.asarray(windy.in_box(others, windy.WIND)) & ~np.asarray(
        windy.in_box(others, windy.PIT))
    keys = jax.random.split(jax.random.key(0), 2 * n)
    xy = np.concatenate([strip, others[keep][:n], strip[:16]]).astype(np.float32)
    keys = jnp.concatenate([keys, keys[:16]])  # the last 16 repeat the first 16
    steps, episodes = _windy_probe(jnp.asarray(xy), keys, jax.random.split(jax.random.key(1), 64))
    return xy, [np.asarray(x) for x in steps], [np.asarray(x) for x in episodes]


def test_windy_cliff_gusts_only_in_the_strip_with_the_designed_probability(windy_probe):
    # Zero action from rest, each point with its own key: only strip points are pushed, at
    # rate 0.2 (binomial sd 0.0073 over 3000), every gust lands in the pit, the pit keeps
    # what falls in whatever the action, and the same key gives the same gusts.
    xy, (q1, obs, q2, qd2), _ = windy_probe
    n = N_STRIP
    moved = q1 - xy
    pushed = moved[:, 1] < -0.1
    assert not pushed[n:2 * n].any()
    rate = pushed[:n].mean()
    p = windy.PUSH_PROBABILITY
    assert abs(rate - p) < 4 * np.sqrt(p * (1 - p) / n), rate
    np.testing.assert_allclose(moved[~pushed], 0.0, atol=1e-4)  # at rest, zero action
    landed = np.clip(xy[pushed] + np.asarray(windy.PUSH), -windy.LIMIT, windy.LIMIT)
    np.testing.assert_allclose(q1[pushed], landed, atol=1e-4)  # the gust, within the border
    assert np.all(obs[pushed, 2] == 1.0) and np.all(obs[~pushed, 2] == 0.0)  # fallen flag
    np.testing.assert_allclose(obs[pushed, 1], -(0.5 + windy.FALL_DEPTH) / 0.5)  # cliff foot
    np.testing.assert_allclose(obs[~pushed, :2], q1[~pushed] / 0.5, rtol=1e-6)
    np.testing.assert_allclose(q2[pushed], q1[pushed])  # fallen: stays, at rest
    np.testing.assert_allclose(qd2[pushed], 0.0)
    assert np.all(np.abs(q2[~pushed] - q1[~pushed]).max(axis=1) > 0.01)  # others move
    np.testing.assert_array_equal(q1[-16:], q1[:16])


def test_windy_cliff_episodes_and_success(windy_probe):
    start, goal, success, stay, goal_obs = windy_probe[2]
    assert np.all(np.sign(start[:, 0]) == -np.sign(goal[:, 0]))  # on either side of the strip
    for xy in (start, goal):
        assert np.all((np.abs(xy[:, 0]) >= 0.34) & (np.abs(xy[:, 0]) <= 0.42))
        assert np.all((xy[:, 1] >= -0.3) & (xy[:, 1] <= -0.2))
    assert 10 < np.sum(start[:, 0] < 0) < 54  # a fair coin picks the side
    assert success.all() and not stay.any()
    np.testing.assert_allclose(goal_obs[:, :2], goal / 0.5, rtol=1e-5)
    assert np.all(goal_obs[:, 2] == 0.0)  # not fallen
    with pytest.raises(ValueError, match="state observations only"):
        tasks.make("windy_cliff", "pixels")


def test_reward_free_data_start_anywhere_outside_the_pit():
    task = tasks.make("windy_cliff")
    states = jax.vmap(task.exploration_start)(jax.random.split(jax.random.key(0), 256))
    xy = np.asarray(states.physics.q[:, :2])
    assert not np.any(np.asarray(windy.in_box(jnp.asarray(xy), windy.PIT)))
    # episode starts lie in |x| in [0.34, 0.42]; data starts cover the middle and the top too
    assert np.mean(np.abs(xy[:, 0]) < 0.25) > 0.3
    assert np.mean(xy[:, 1] > 0.1) > 0.1


def test_latent_variable_episodes_run_on_windy_cliff_on_the_pairs_of_evaluate():
    """End to end on the task the model is for (its state carries a PRNG key for the gusts):
    the episodes run through run_episodes, so a key gives the same start/goal pairs as any
    other evaluation with that key."""
    task = tasks.make("windy_cliff")
    config = dataclasses.replace(TINY_LV, model=dataclasses.replace(TINY, obs_shape=(3,)))
    params = lv.init(config, jax.random.key(0))
    key = jax.random.key(3)
    result, positions = evaluate_lib.evaluate_latent_variable(
        task, key, config, params, num_episodes=2, num_samples=1, horizon=1, num_steps=2,
        planner_options=dict(num_samples=2, iterations=1))
    assert positions.shape == (2, 2, 2) and np.all(np.isfinite(positions))
    assert result.num_episodes == 2
    np.testing.assert_array_equal(np.asarray(result.episodes.goal.position),
                                  np.asarray(jax.jit(jax.vmap(task.reset))(jax.random.split(
                                      jax.random.split(key)[0], 2)).goal.position))
