"""Adversarial imitation (GAIL, AIRL) and the layer pieces it added: the discriminator loss falls on fixed batches,
absorbing states (the survival-bias fix), AIRL reads the learner's current log π, the recent-window side batch,
learning (one-sided permutation tests against the untrained policy), and bad input."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
from agents import sac, td3
from agents.imitation import adversarial, airl, gail
from rlkit import data_sources
from rlkit.buffers import DatasetError, make_demo_store, make_replay_buffer
from rlkit.configs import ConfigError
from rlkit.rewards import RewardTerm, with_reward_terms
from rlkit.sweeps import make_runs
from rlkit.training import train
from tests.helpers.experts import (
    cartpole_expert,
    demos_of,
    pendulum_expert,
    permutation_p,
    trained_and_untrained_returns,
)

PEND = envs.make("pendulum")


@pytest.fixture(scope="module")
def pend_demos():
    return demos_of(PEND, pendulum_expert, 5)


def _policy_rows(n=256, seed=1, terminated=False):
    """Fixed policy rows unlike the expert's: random states, random actions."""
    k1, k2, k3 = jax.random.split(jax.random.key(seed), 3)
    th = jax.random.uniform(k1, (n,), minval=-np.pi, maxval=np.pi)
    w = jax.random.uniform(k2, (n,), minval=-8, maxval=8)
    obs = jnp.stack([jnp.cos(th), jnp.sin(th), w], -1)
    return {
        "obs": obs,
        "action": jax.random.uniform(k3, (n, 1), minval=-2, maxval=2),
        "next_obs": obs,
        "reward": jnp.zeros((n,)),
        "terminated": jnp.full((n,), terminated),
        "truncated": jnp.zeros((n,), bool),
    }


def _term(kind, demos, **changes):
    config = gail.GAILSACConfig(
        disc_hidden_sizes=(32, 32), disc_batch_size=128, disc_lr=1e-3, disc_steps=5, **changes
    )
    return config, adversarial.discriminator(config, PEND.spec, demos, kind=kind, policy_rows="batch")


def _zero_log_pi(obs, action):
    return jnp.zeros(obs.shape[0])


@pytest.mark.parametrize("kind", ["gail", "airl"])
def test_discriminator_loss_falls_on_fixed_batches(pend_demos, kind):
    _, term = _term(kind, pend_demos)
    state = term.init(jax.random.key(0), PEND.spec)
    batch = _policy_rows()
    args = (_zero_log_pi,) if term.needs_policy else ()
    update = jax.jit(lambda s, k: term.update(s, batch, k, *args))
    losses = []
    for i in range(60):
        state, m = update(state, jax.random.key(i))
        losses.append(float(m["loss/discriminator"]))
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:3]), losses
    assert float(m["expert_accuracy"]) > 0.8 and float(m["policy_accuracy"]) > 0.8
    # and the learner's reward ranks expert rows above policy rows
    expert = jax.tree.map(np.asarray, pend_demos)
    e_rows = {"obs": expert.observations[:100], "action": expert.actions[:100], "next_obs": expert.observations[1:101],
              "terminated": np.zeros(100, bool)}  # fmt: skip
    assert float(jnp.mean(term.reward(state, e_rows))) > float(jnp.mean(term.reward(state, batch)))


def test_absorbing_states_value_termination(pend_demos):
    """A terminated row's reward gains γ/(1 − γ)·r(s_a)/σ; the policy's terminations (the expert has none) teach
    the discriminator that the absorbing state is the policy's, so GAIL's r(s_a) falls towards 0."""
    config, term = _term("gail", pend_demos)
    state = term.init(jax.random.key(0), PEND.spec)
    batch = _policy_rows(terminated=True)
    for i in range(40):
        state, m = jax.jit(term.update)(state, batch, jax.random.key(i))
    assert float(m["reward_absorbing"]) < 0.2  # softplus(logit) with the absorbing logit pushed negative
    alive = dict(batch, terminated=jnp.zeros(256, bool))
    gap = term.reward(state, batch) - term.reward(state, alive)
    sigma = jnp.sqrt(state.reward_stats.var + 1e-8)
    want = config.gamma / (1 - config.gamma) * float(m["reward_absorbing"]) / sigma
    np.testing.assert_allclose(np.asarray(gap), np.full(256, want), rtol=1e-4, atol=1e-6)
    _, off = _term("gail", pend_demos, absorbing=False)
    state = off.init(jax.random.key(0), PEND.spec)
    np.testing.assert_array_equal(off.reward(state, batch), off.reward(state, alive))


@pytest.mark.parametrize("kind", ["gail", "airl"])
def test_absorbing_logit_is_the_fixed_horizon_occupancy_ratio(pend_demos, kind):
    """r(s_a) from log(p_E(s_a) / p_π(s_a)), p = s_a's occupancy over the time limit H: the expert never
    terminates (p_E = 1e-3), the policy's rate after one update of all-terminated rows is 0.1 (the moving average),
    so its episodes last 10 of H = 200 steps and p_π = 190/200 + 1e-3. (DAC's per-row mass c/(1 + c) would give
    a logit of −4.5, not −6.86.)"""
    _, term = _term(kind, pend_demos)
    state = term.init(jax.random.key(0), PEND.spec)
    args = (_zero_log_pi,) if term.needs_policy else ()
    _, m = jax.jit(lambda s: term.update(s, _policy_rows(terminated=True), jax.random.key(0), *args))(state)
    logit = np.log(1e-3 / (190 / 200 + 1e-3))
    want = logit if kind == "airl" else np.log1p(np.exp(logit))
    np.testing.assert_allclose(float(m["reward_absorbing"]), want, rtol=1e-5)


def test_airl_reads_the_learners_current_log_prob(pend_demos):
    """The composed update hands the term log π of the base learner at its current state (the term's metric)."""
    seen = {}

    def update(state, batch, key, log_pi):
        return state, {"log_pi": jnp.mean(log_pi(batch["obs"], batch["action"]))}

    probe = RewardTerm(
        "probe", lambda k, s: jnp.zeros(()), lambda s, b: jnp.zeros(b["obs"].shape[0]), update, True
    )
    config = sac.SACConfig(hidden_sizes=(8,))
    agent = with_reward_terms(sac.make_sac, lambda c, s: [probe], env_reward=False)(config, PEND.spec)
    state = agent.init(jax.random.key(0))
    batch = _policy_rows(16)
    _, metrics = agent.update(state, batch, jax.random.key(1))
    base = sac.make_sac(config, PEND.spec.replace(reward_names=("probe",)))
    seen["want"] = jnp.mean(base.log_prob(state.base, batch["obs"], batch["action"]))
    np.testing.assert_allclose(metrics["probe/log_pi"], seen["want"], rtol=1e-6)
    # a learner without log π cannot serve such a term
    with pytest.raises(ConfigError, match="needs the learner's log π"):
        with_reward_terms(td3.make_td3, lambda c, s: [probe], env_reward=False)(td3.TD3Config(), PEND.spec)


def test_recent_window_draws_only_the_newest_rows():
    example = {"obs": jnp.zeros(()), "terminated": jnp.zeros((), bool), "truncated": jnp.zeros((), bool)}
    buffer = make_replay_buffer(example, capacity=60, num_envs=2)
    state = buffer.init()
    for t in range(100):  # wraps: the ring holds steps 70..99
        step = {
            "obs": jnp.full((2,), float(t)),
            "terminated": jnp.zeros(2, bool),
            "truncated": jnp.zeros(2, bool),
        }
        state = buffer.add(state, step)
    got = np.asarray(buffer.sample_recent(state, jax.random.key(0), 4000, 10)["obs"])
    assert set(np.unique(got)) == set(range(95, 100))  # ceil(10 / 2) = 5 newest rows of each env
    counts = np.bincount(got.astype(int) - 95)
    assert counts.min() > 700  # ~800 each: uniform
    source = data_sources.with_side_batches(data_sources.online(), policy=(data_sources.recent(10), 32))(
        buffer
    )
    _, batch = source(None, state, jax.random.key(1), 8, 0)
    assert batch["obs"].shape == (8,) and batch["policy"]["obs"].shape == (32,)
    assert np.asarray(batch["policy"]["obs"]).min() >= 95
    with pytest.raises(ConfigError, match="side batch name 'obs'"):
        data_sources.with_side_batches(data_sources.online(), obs=(data_sources.recent(10), 4))


# ---------------------------------------------------------------------------------------------- learning
CARTPOLE_PPO = dict(hidden_sizes=(32, 32), num_envs=4, num_steps=128, iterations_per_chunk=10)


@pytest.mark.slow
@pytest.mark.parametrize(
    "module, cls, make", [(gail, gail.GAILConfig, gail.make_gail), (airl, airl.AIRLConfig, airl.make_airl)]
)
def test_ppo_adversarial_imitation_improves_on_cartpole(module, cls, make):
    env = envs.make("cartpole")
    demos = demos_of(env, cartpole_expert, 5)
    config = cls(**CARTPOLE_PPO, disc_hidden_sizes=(32, 32))
    trainer = module.make_trainer(config, env, demos=demos)
    result = train(trainer, make_runs(config, seeds=1), total_steps=40_960, eval_every=0, console=False)
    after, before = trained_and_untrained_returns(env, make(config, env.spec), result)
    assert permutation_p(after, before) < 0.05 and after.mean() > before.mean() + 50, (after, before)


@pytest.mark.slow
@pytest.mark.parametrize(
    "module, cls, make",
    [(gail, gail.GAILSACConfig, gail.make_gail_sac), (airl, airl.AIRLSACConfig, airl.make_airl_sac)],
)
def test_sac_adversarial_imitation_improves_on_pendulum(pend_demos, module, cls, make):
    config = cls(hidden_sizes=(64, 64), learning_starts=500, buffer_size=5000, chunk_steps=500,
                 disc_hidden_sizes=(32, 32), disc_batch_size=128, disc_gp_weight=10.0)  # fmt: skip
    trainer = module.make_trainer_sac(config, PEND, demos=pend_demos)
    result = train(trainer, make_runs(config, seeds=1), total_steps=4000, eval_every=0, console=False)
    after, before = trained_and_untrained_returns(PEND, make(config, PEND.spec), result)
    assert permutation_p(after, before) < 0.05 and after.mean() > before.mean() + 200, (after, before)


# ---------------------------------------------------------------------------------------------- bad input
def test_bad_input_is_refused_in_one_line(pend_demos):
    no_actions = make_demo_store(np.asarray(pend_demos.observations), np.asarray(pend_demos.episode_lengths))
    with pytest.raises(ConfigError, match="needs demonstrations with actions.*gail_input='states'"):
        gail.make_trainer_sac(gail.GAILSACConfig(), PEND, demos=no_actions)
    with pytest.raises(ConfigError, match="airl needs demonstrations with actions"):
        airl.make_trainer(airl.AIRLConfig(), PEND, demos=no_actions)
    states_only = gail.GAILSACConfig(gail_input="states", disc_batch_size=16)
    gail.validate_sac(states_only, PEND.spec, no_actions)  # GAIfO: observations suffice
    term = adversarial.discriminator(states_only, PEND.spec, no_actions, kind="gail", policy_rows="batch")
    term.update(term.init(jax.random.key(0), PEND.spec), _policy_rows(8), jax.random.key(0))
    cart = envs.make("cartpole")
    with pytest.raises(DatasetError, match="observation shape"):
        airl.make_trainer(airl.AIRLConfig(), cart, demos=pend_demos)  # pendulum demos on cartpole
    with pytest.raises(ConfigError, match="gamma < 1"):
        gail.validate_sac(gail.GAILSACConfig(gamma=1.0), PEND.spec, pend_demos)
    with pytest.raises(ConfigError, match="Box"):
        gail.validate_sac(gail.GAILSACConfig(), cart.spec)  # SAC on discrete actions
    term = adversarial.discriminator(
        gail.GAILSACConfig(), PEND.spec, pend_demos, kind="gail", policy_rows="side"
    )
    state = term.init(jax.random.key(0), PEND.spec)
    with pytest.raises(ConfigError, match=r"batch\['policy'\]"):
        term.update(state, _policy_rows(8), jax.random.key(0))
