"""Learned reward terms on an on-policy learner: the terms label PPO's rollout before GAE (on device and through
the Gymnasium host loop)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
from agents import ppo
from agents.skills import diayn
from rlkit import conditioning
from rlkit.configs import ConfigError
from rlkit.host_loop import train_host
from rlkit.on_policy import OnPolicyAgent, make_on_policy_trainer, value_terms
from rlkit.rewards import RewardTerm, TermsState, with_reward_terms
from rlkit.sweeps import make_runs
from tests.helpers.trees import assert_leaves_equal

SMALL = dict(num_envs=2, num_steps=16, num_minibatches=2, update_epochs=2, iterations_per_chunk=2)
SMALL |= dict(hidden_sizes=(8,))


def _run(trainer, config, chunks=2):
    state = jax.jit(trainer.init)(config, jax.random.key(0))
    chunk = jax.jit(trainer.run_chunk)
    for _ in range(chunks):
        state, metrics = chunk(config, state)
    return state, metrics


def _counter_term(shape_ok=True):
    """Its parameter counts its updates and its reward is that count, so a reward from before the update shows."""

    def reward(state, batch):
        n = batch["obs"].shape[0]
        return jnp.full((n,) if shape_ok else (n, 2), state)

    def update(state, batch, key):
        return state + 1.0, {"count": state + 1.0}

    return RewardTerm("count", lambda key, spec: jnp.zeros((), jnp.float32), reward, update)


def _zero_value_base(config, spec):
    """An on-policy base whose values are 0 and whose update reports the value targets it was given: with
    gamma = 0 the targets are the rollout's (value-term) rewards themselves."""
    k = value_terms(config, spec)
    space = spec.action_space

    def sample(state, obs, key):
        return space.sample(key), jnp.zeros(()), jnp.zeros((k,))

    def update(state, minibatch, key):
        targets = jnp.mean(minibatch["return"], axis=0)
        return state, {f"target/{i}": targets[i] for i in range(k)}

    return OnPolicyAgent(
        "zero",
        config,
        lambda key, spec_=None: jnp.zeros(()),
        lambda state, obs, key, mode="explore": space.sample(key),
        update,
        sample=sample,
        value=lambda state, obs: jnp.zeros((k,)),
    )


def test_ppo_with_no_terms_is_ppo_exactly():
    env = envs.make("pendulum")
    config = ppo.continuous_config(**SMALL)
    base_state, base_metrics = _run(ppo.make_trainer(config, env), config)
    composed = with_reward_terms(ppo.make_ppo, lambda c, s: [])
    state, metrics = _run(make_on_policy_trainer("composed", env, composed, config), config)
    assert isinstance(state.agent_state, TermsState) and state.agent_state.terms == ()
    assert_leaves_equal(base_state.agent_state, state.agent_state.base)
    assert_leaves_equal(base_state.replace(agent_state=()), state.replace(agent_state=()))
    assert base_metrics.keys() == metrics.keys()


@pytest.mark.parametrize("multi_critic", [False, True])
def test_terms_label_the_rollout_before_gae_with_their_updated_parameters(multi_critic):
    """gamma = 0 and V = 0, so the value targets are the labelled rewards: the count after the update (iteration i
    sees i, a reward from before the term's update would be i − 1), next to the env's own term (multi-critic) or
    alone, weighted 0.5 (one critic on the weighted sum)."""
    env = envs.make("pendulum")
    weights = (1.0, 0.5) if multi_critic else (0.5,)
    config = ppo.PPOConfig(**SMALL, gamma=0.0, multi_critic=multi_critic, reward_weights=weights)
    make = with_reward_terms(_zero_value_base, lambda c, s: [_counter_term()], env_reward=multi_critic)
    trainer = make_on_policy_trainer("counted", env, make, config)
    state = jax.jit(trainer.init)(config, jax.random.key(0))
    chunk = jax.jit(trainer.run_chunk)
    for c in range(1, 3):
        state, metrics = chunk(config, state)
        seen = 2 * c - 0.5  # two iterations per chunk: the mean of counts 2c − 1 and 2c
        assert float(metrics["count/count"]) == pytest.approx(seen)
        if multi_critic:  # one target per term: the env's reward (pendulum's is < 0), then the count
            assert float(metrics["target/0"]) < 0 and float(metrics["target/1"]) == pytest.approx(seen)
            assert "target/2" not in metrics
        else:
            assert float(metrics["target/0"]) == pytest.approx(0.5 * seen) and "target/1" not in metrics
    assert int(state.agent_state.terms[0]) == 4


def test_terms_see_raw_observations_when_the_policy_sees_normalized_ones():
    """Pendulum's raw observation has cos² + sin² = 1; a normalized one does not."""

    def update(state, batch, key):
        off = [jnp.max(jnp.abs(o[:, 0] ** 2 + o[:, 1] ** 2 - 1.0)) for o in (batch["obs"], batch["next_obs"])]
        return jnp.maximum(state, jnp.maximum(*off)), {}

    term = RewardTerm(
        "raw", lambda key, spec: jnp.zeros(()), lambda s, b: jnp.zeros(b["obs"].shape[0]), update
    )
    env = envs.make("pendulum")
    config = ppo.continuous_config(**SMALL)
    state, _ = _run(
        make_on_policy_trainer("raw", env, with_reward_terms(ppo.make_ppo, lambda c, s: [term]), config),
        config,
    )
    assert float(state.agent_state.terms[0]) < 1e-5
    assert bool(config.normalize_obs)


def test_a_term_of_the_wrong_shape_and_extras_without_terms_are_refused_in_one_line():
    env = envs.make("pendulum")
    config = ppo.PPOConfig(**SMALL, reward_weights=(1.0, 1.0))
    make = with_reward_terms(ppo.make_ppo, lambda c, s: [_counter_term(shape_ok=False)])
    trainer = make_on_policy_trainer("bad", env, make, config)
    state = jax.jit(trainer.init)(config, jax.random.key(0))
    with pytest.raises(ConfigError, match=r"reward term 'count' returned shape \(32, 2\); expected \(32,\)"):
        trainer.run_chunk(config, state)
    with pytest.raises(ConfigError, match=r"transition extras \['z'\].*ppo has none"):
        make_on_policy_trainer("ppo", env, ppo.make_ppo, ppo.PPOConfig(**SMALL), extras=("z",))
    with pytest.raises(ConfigError, match=r"reward_weights has 1 entries.*\['reward', 'count'\]"):
        make_on_policy_trainer("bad", env, make, ppo.PPOConfig(**SMALL, reward_weights=(1.0,)))


def _diayn_ppo(skills=4):
    term_config = diayn.DIAYNConfig(num_skills=skills, disc_hidden_sizes=(32,), disc_lr=3e-3)
    return term_config, with_reward_terms(
        ppo.make_ppo, lambda c, s: [diayn.discriminator(term_config, s)], env_reward=False, name="diayn-ppo"
    )


def test_diayn_on_ppo_conditioned_with_the_z_extra_learns_a_discriminator():
    """PPO × DIAYN's discriminator term × Conditioned(point-room, categorical(4)): the z extra reaches the term,
    whose accuracy on each new rollout (before its update on it) climbs well above chance (0.25; about 0.9 after
    these 12k steps, seed 0)."""
    term_config, make = _diayn_ppo()
    env = conditioning.Conditioned(envs.make("point-room", max_episode_steps=32), diayn.prior(term_config))
    config = ppo.continuous_config(**(SMALL | dict(num_envs=8, num_steps=32, hidden_sizes=(32, 32))))
    config = config.replace(iterations_per_chunk=10, ent_coef=0.0, learning_rate=1e-3)
    trainer = make_on_policy_trainer("diayn-ppo", env, make, config, extras=("z",))
    state, metrics = _run(trainer, config, chunks=5)
    assert {"diayn/accuracy", "diayn/loss/discriminator", "reward/diayn"} <= set(metrics)
    assert float(metrics["diayn/accuracy"]) > 0.6


def test_terms_label_the_rollout_through_the_host_loop():
    config = ppo.PPOConfig(**SMALL, reward_weights=(1.0, 1.0))
    env_make = lambda n: envs.make("gymnasium:Pendulum-v1", num_envs=n)  # noqa: E731

    def with_count(c, s):
        return [_counter_term()]

    result = train_host(
        with_reward_terms(ppo.make_ppo, with_count), make_runs(config, seeds=2), env_make, total_steps=64,
        console=False,
    )  # fmt: skip
    assert np.asarray(result.state.agent_state.terms[0]).tolist() == [2.0, 2.0]
    assert np.asarray(result.metrics["count/count"]).shape == (2,)
    with pytest.raises(ConfigError, match=r"transition extras \['nope'\] are not in the info"):
        train_host(
            with_reward_terms(ppo.make_ppo, with_count), make_runs(config, seeds=1), env_make,
            total_steps=64, console=False, extras=("nope",),
        )  # fmt: skip


def test_the_host_loop_conditions_an_on_policy_learner_as_the_wrapper_does():
    """What the terms see through the host loop: ``obs`` and ``next_obs`` end with the transition's own z (the
    true next state keeps the z its step was taken under), z is one-hot, and several skills appear."""
    k = 3

    def update(state, batch, key):
        z = batch["z"]
        off = jnp.maximum(
            jnp.max(jnp.abs(batch["obs"][:, -k:] - z)), jnp.max(jnp.abs(batch["next_obs"][:, -k:] - z))
        )
        one_hot = jnp.all(jnp.sum(z, -1) == 1.0) & jnp.all((z == 0) | (z == 1))
        return state.at[0].max(off).at[1].max(jnp.where(one_hot, 0.0, 1.0)).at[2].max(
            jnp.sum(jnp.any(z > 0, axis=0))
        ), {}

    term = RewardTerm("check", lambda key, s: jnp.zeros(3), lambda s, b: jnp.zeros(b["obs"].shape[0]), update)
    config = ppo.PPOConfig(**SMALL, reward_weights=(1.0, 1.0))
    result = train_host(
        with_reward_terms(ppo.make_ppo, lambda c, s: [term]), make_runs(config, seeds=1),
        lambda n: envs.make("gymnasium:Pendulum-v1", num_envs=n), total_steps=128, console=False,
        prior=conditioning.categorical(k), resample_every=5, extras=("z",), eval_every=1, eval_episodes=2,
    )  # fmt: skip
    off, not_one_hot, skills_seen = np.asarray(result.state.agent_state.terms[0])[0]
    assert off == 0.0 and not_one_hot == 0.0 and skills_seen >= 2
    assert np.isfinite(result.metrics["eval_return"]).all()
