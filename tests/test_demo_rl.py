"""RL from the task's reward with demonstrations: RLPD (demo mixing) and demonstration-regularized SAC (a BC prior
fit in init, KL to it in place of SAC's entropy). Learning (one-sided permutation tests against the untrained
policy), the prior's hook, and bad input."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
from agents import sac
from agents.imitation import demo_reg, rlpd
from rlkit.buffers import make_demo_store
from rlkit.configs import ConfigError
from rlkit.sweeps import make_runs
from rlkit.training import train
from tests.helpers.experts import demos_of, pendulum_expert, permutation_p, trained_and_untrained_returns
from tests.helpers.trees import assert_leaves_equal

PEND = envs.make("pendulum")
SMALL = dict(hidden_sizes=(64, 64), learning_starts=500, buffer_size=5000, chunk_steps=500)


@pytest.fixture(scope="module")
def demos():
    return demos_of(PEND, pendulum_expert, 5)


def test_a_zero_log_prior_is_sac_exactly():
    """The KL hook with log π_prior = 0 is SAC's entropy term: the same update, bit for bit."""
    config = sac.SACConfig(hidden_sizes=(8,))
    plain = sac.make_sac(config, PEND.spec)
    hooked = sac.make_sac(config, PEND.spec, log_prior=lambda obs, a: jnp.zeros(obs.shape[0]))
    state = plain.init(jax.random.key(0))
    k = jax.random.split(jax.random.key(1), 4)
    batch = {
        "obs": jax.random.normal(k[0], (32, 3)),
        "action": jax.random.uniform(k[1], (32, 1), minval=-2, maxval=2),
        "reward": jax.random.normal(k[2], (32,)),
        "next_obs": jax.random.normal(k[3], (32, 3)),
        "terminated": jnp.zeros(32, bool),
    }
    a, ma = jax.jit(plain.update)(state, batch, jax.random.key(2))
    b, mb = jax.jit(hooked.update)(state, batch, jax.random.key(2))
    assert_leaves_equal(a, b)
    assert float(ma["entropy"]) == -float(mb["kl_to_prior"])


def test_a_constant_log_prior_shifts_the_soft_target_by_gamma_alpha_c():
    """log π_prior = c enters the target as + γ α c (per not-terminated row) and leaves the actor's gradient alone:
    the hooked update equals plain SAC's on rewards r + γ α c (the prior is in the target, not only the actor)."""
    config, c = sac.SACConfig(hidden_sizes=(8,), init_alpha=0.3, autotune=False), 2.5
    plain = sac.make_sac(config, PEND.spec)
    hooked = sac.make_sac(config, PEND.spec, log_prior=lambda obs, a: jnp.full(obs.shape[0], c))
    state = plain.init(jax.random.key(0))
    k = jax.random.split(jax.random.key(1), 4)
    batch = {
        "obs": jax.random.normal(k[0], (32, 3)),
        "action": jax.random.uniform(k[1], (32, 1), minval=-2, maxval=2),
        "reward": jax.random.normal(k[2], (32,)),
        "next_obs": jax.random.normal(k[3], (32, 3)),
        "terminated": jnp.arange(32) % 4 == 0,
    }
    shifted = dict(batch, reward=batch["reward"] + config.gamma * 0.3 * c * (1.0 - batch["terminated"]))
    a, _ = jax.jit(hooked.update)(state, batch, jax.random.key(2))
    b, _ = jax.jit(plain.update)(state, shifted, jax.random.key(2))
    # the networks (the temperature's optimizer state follows log π − c, unused with autotune off)
    for x, y in zip(
        jax.tree.leaves((a.actor, a.critic, a.target_critic)),
        jax.tree.leaves((b.actor, b.critic, b.target_critic)),
    ):
        np.testing.assert_allclose(np.asarray(x, np.float64), np.asarray(y, np.float64), rtol=2e-5, atol=2e-6)


def test_demo_reg_fits_its_prior_in_init(demos):
    """The prior in each run's state imitates the demonstrations (BC, by likelihood) before any env step."""
    config = demo_reg.DemoRegConfig(hidden_sizes=(64, 64), prior_steps=1500)
    agent = demo_reg.make_demo_reg(config, PEND.spec, demos)
    state = jax.jit(agent.init)(jax.random.key(0))
    prior = demo_reg.bc.make_bc(demo_reg._prior_config(config), PEND.spec)
    fitted = np.asarray(prior.log_prob(state.prior, demos.observations[:100], demos.actions[:100]))
    fresh = np.asarray(
        prior.log_prob(prior.init(jax.random.key(0)), demos.observations[:100], demos.actions[:100])
    )
    assert fitted.mean() > fresh.mean() + 1.0, (fitted.mean(), fresh.mean())


@pytest.mark.slow
@pytest.mark.parametrize("name", ["rlpd", "demo-reg"])
def test_rl_with_demonstrations_improves_on_pendulum(demos, name):
    if name == "rlpd":
        config = rlpd.RLPDConfig(**SMALL, num_critics=4, updates_per_step=2)
        trainer, make = rlpd.make_trainer(config, PEND, demos=demos), rlpd.make_rlpd
    else:
        config = demo_reg.DemoRegConfig(**SMALL, prior_steps=1000)
        trainer = demo_reg.make_trainer(config, PEND, demos=demos)
        make = lambda c, s: demo_reg.make_demo_reg(c, s, demos)  # noqa: E731
    result = train(trainer, make_runs(config, seeds=1), total_steps=4000, eval_every=0, console=False)
    after, before = trained_and_untrained_returns(PEND, make(config, PEND.spec), result)
    assert permutation_p(after, before) < 0.05 and after.mean() > before.mean() + 300, (after, before)


def test_bad_input_is_refused_in_one_line(demos):
    no_rewards = make_demo_store(
        np.asarray(demos.observations), np.asarray(demos.episode_lengths), actions=np.asarray(demos.actions)
    )
    with pytest.raises(ConfigError, match="RLPD learns from the task's reward.*no rewards"):
        rlpd.make_trainer(rlpd.RLPDConfig(), PEND, demos=no_rewards)
    with pytest.raises(ConfigError, match="demo_ratio"):
        rlpd.make_trainer(rlpd.RLPDConfig(demo_ratio=1.5), PEND, demos=demos)
    with pytest.raises(ConfigError, match="autotune = True: the KL weight is fixed"):
        demo_reg.make_trainer(demo_reg.DemoRegConfig(autotune=True), PEND, demos=demos)
    with pytest.raises(ConfigError, match="init_alpha = 0.5: λ is kl_weight"):
        demo_reg.make_trainer(demo_reg.DemoRegConfig(init_alpha=0.5), PEND, demos=demos)
