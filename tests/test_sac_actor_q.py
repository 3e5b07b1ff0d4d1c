"""SAC's actor objective over a critic ensemble (``SACConfig.actor_q``): the min of twin critics (CleanRL, SB3),
the mean of a larger ensemble (REDQ, Chen et al. 2021, Alg. 1 line 13; RLPD), checked against the loss written
out by hand on a fixed batch, per reward term with ``multi_critic``."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
from agents import sac
from rlkit.configs import ConfigError, validate
from rlkit.distributions import sample_tanh_gaussian
from rlkit.networks import GaussianActor
from rlkit.off_policy import term_critics

HIDDEN = (16,)


def _batch(spec, n=64, seed=1):
    obs_dim, act_dim = spec.observation_space.shape[0], spec.action_space.shape[0]
    k = jax.random.split(jax.random.key(seed), 4)
    return {
        "obs": jax.random.normal(k[0], (n, obs_dim)),
        "action": jax.random.uniform(k[1], (n, act_dim), minval=-1, maxval=1),
        "reward": jax.random.normal(k[2], (n, *spec.reward_shape)),
        "next_obs": jax.random.normal(k[3], (n, obs_dim)),
        "terminated": jnp.arange(n) % 7 == 0,
        "truncated": jnp.zeros(n, bool),
    }


def _actor_loss(config, spec, state, batch, key):
    """One update's ``loss/actor`` and the loss by hand: mean over the batch of α log π(a|s) − Σ_k w_k Q_k(s, a),
    a ~ π (reparameterized, in the action box), Q_k reduced over critics by min and by mean."""
    new, metrics = jax.jit(sac.make_sac(config, spec).update)(state, batch, key)
    k_pi = jax.random.split(key, 3)[2]  # the update's actor key
    space = spec.action_space
    scale, bias = (space.high - space.low) / 2, (space.high + space.low) / 2
    mean, log_std = GaussianActor(HIDDEN, space.shape[0]).apply(state.actor, batch["obs"])
    y, logp = sample_tanh_gaussian(k_pi, mean, log_std)
    logp = logp - jnp.sum(jnp.log(scale))  # the change of variables a = scale·y + bias
    k = spec.num_reward_terms if config.multi_critic else 1
    qs = term_critics(HIDDEN, config.num_critics, k, False, False).apply(
        new.critic, batch["obs"], y * scale + bias
    )  # [N, B, K] of the updated critics
    alpha = jnp.exp(state.log_alpha)
    by_hand = {
        name: float(jnp.mean(alpha * logp - jnp.sum(reduce(qs, axis=0), axis=-1)))
        for name, reduce in (("min", jnp.min), ("mean", jnp.mean))
    }
    return float(metrics["loss/actor"]), by_hand, new


def test_actor_takes_the_ensemble_mean_with_more_than_two_critics():
    spec = envs.make("pendulum").spec
    batch, key = _batch(spec), jax.random.key(3)
    state = sac.make_sac(sac.SACConfig(hidden_sizes=HIDDEN, num_critics=4), spec).init(jax.random.key(0))
    losses = {}
    for actor_q in ("auto", "mean", "min"):
        config = sac.SACConfig(hidden_sizes=HIDDEN, num_critics=4, actor_q=actor_q)
        losses[actor_q], by_hand, _ = _actor_loss(config, spec, state, batch, key)
    assert losses["auto"] == pytest.approx(by_hand["mean"], rel=1e-5)
    assert losses["mean"] == pytest.approx(by_hand["mean"], rel=1e-5)
    assert losses["min"] == pytest.approx(by_hand["min"], rel=1e-5)
    assert abs(by_hand["mean"] - by_hand["min"]) > 1e-2 * abs(by_hand["min"])  # the test can tell them apart


def test_twin_critics_keep_the_min():
    spec = envs.make("pendulum").spec
    batch, key = _batch(spec), jax.random.key(3)
    state = sac.make_sac(sac.SACConfig(hidden_sizes=HIDDEN), spec).init(jax.random.key(0))
    loss, by_hand, new = _actor_loss(sac.SACConfig(hidden_sizes=HIDDEN), spec, state, batch, key)
    assert loss == pytest.approx(by_hand["min"], rel=1e-5)
    _, _, new_min = _actor_loss(sac.SACConfig(hidden_sizes=HIDDEN, actor_q="min"), spec, state, batch, key)
    jax.tree.map(np.testing.assert_array_equal, new, new_min)  # "auto" with 2 critics is exactly "min"


def test_multi_critic_actor_reduces_each_term_over_the_ensemble():
    spec = envs.make("push2d").spec
    batch, key = _batch(spec), jax.random.key(3)
    config = sac.SACConfig(hidden_sizes=HIDDEN, num_critics=4, multi_critic=True, term_normalization="none")
    state = sac.make_sac(config, spec).init(jax.random.key(0))
    loss, by_hand, _ = _actor_loss(config, spec, state, batch, key)
    assert loss == pytest.approx(by_hand["mean"], rel=1e-5)
    assert abs(by_hand["mean"] - by_hand["min"]) > 1e-2 * abs(by_hand["min"])


def test_bad_actor_q_names_the_choices():
    bad = sac.SACConfig(actor_q="max")
    message = r"SACConfig.actor_q = 'max' is not allowed; choose one of \['auto', 'min', 'mean'\]"
    with pytest.raises(ConfigError, match=message):
        validate(bad)
    with pytest.raises(ConfigError, match=message):  # also where no validate ran before (load_agent)
        sac.make_sac(bad, envs.make("pendulum").spec)
