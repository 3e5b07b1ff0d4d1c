"""SLIM (issue 14): PPO × METRA's reward term on the block's position × the env's reward terms, one critic per
term — the composition's reward names and value heads, ``rewards.repeated`` by hand, and bad input refused in
one line before anything compiles."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
from agents.skills import metra, slim
from rlkit import conditioning
from rlkit.configs import ConfigError
from rlkit.registry import get
from rlkit.rewards import RewardTerm, repeated

NAMES = ("reach", "push", "safety", "control", "metra")


def _config(**kw):
    base = dict(
        obs_dims=(2, 3),
        num_envs=4,
        num_steps=16,
        num_minibatches=2,
        update_epochs=1,
        iterations_per_chunk=1,
        hidden_sizes=(16,),
        phi_hidden_sizes=(16,),
        phi_steps=2,
        phi_batch_size=16,
        reward_weights=(1.0, 0.0, 1.0, 0.1, 1.0),
    )
    return slim.SLIMConfig(**(base | kw))


def test_slim_sees_the_env_terms_then_the_skill_term_one_value_head_each():
    env = envs.make("push2d", max_episode_steps=20)
    config = _config()
    trainer = get("slim").make_trainer(config, env)
    state = trainer.init(config, jax.random.key(0))
    state, metrics = jax.jit(trainer.run_chunk)(config, state)
    for name in NAMES:
        assert np.isfinite(float(metrics[f"loss/value/{name}"])), name
    assert "metra/lambda" in metrics and "reward/metra" in metrics
    cond = conditioning.Conditioned(env, slim.skills(config))
    agent = slim.make_slim(config, cond.spec)
    assert agent.reward_names == NAMES
    value = agent.value(state.agent_state, jnp.zeros((3, cond.spec.observation_space.shape[0])))
    assert value.shape == (3, len(NAMES))


def test_repeated_takes_that_many_updates_on_random_rows_of_the_batch():
    def update(state, batch, key):
        return state + jnp.sum(batch["obs"]), {"seen": jnp.sum(batch["obs"])}

    term = RewardTerm("t", lambda k, s: jnp.zeros(()), lambda s, b: b["obs"][:, 0], update)
    batch = {"obs": jnp.arange(10.0)[:, None], "z": jnp.arange(10.0)}
    key = jax.random.key(3)
    state, metrics = repeated(term, 3, 4).update(jnp.zeros(()), batch, key)
    expect = []
    for k in jax.random.split(key, 3):
        rows = jax.random.permutation(jax.random.split(k)[0], 10)[:4]
        expect.append(float(jnp.sum(batch["obs"][rows])))
    np.testing.assert_allclose(float(state), sum(expect), rtol=1e-6)
    np.testing.assert_allclose(float(metrics["seen"]), np.mean(expect), rtol=1e-6)
    assert len(set(expect)) > 1  # different rows each step
    full, _ = repeated(term, 2, 64).update(jnp.zeros(()), batch, key)  # more than the batch: all rows
    assert float(full) == 2 * 45.0
    with pytest.raises(ConfigError, match="steps = 0"):
        repeated(term, 0, 4)


def test_slim_phi_takes_phi_steps_updates_per_rollout():
    env = envs.make("push2d", max_episode_steps=20)
    moved = []
    for steps in (1, 4):
        config = _config(phi_steps=steps)
        trainer = slim.make_trainer(config, env)
        state = trainer.init(config, jax.random.key(0))
        new, _ = jax.jit(trainer.run_chunk)(config, state)
        before, after = state.agent_state.terms[0], new.agent_state.terms[0]
        assert int(after.phi.opt[0].count) - int(before.phi.opt[0].count) == steps
        moved.append(after)
    assert isinstance(moved[0], metra.METRAState)


@pytest.mark.parametrize(
    "changes, message",
    [
        (
            dict(reward_weights=(1.0, 1.0, 1.0, 1.0)),
            r"reward_weights has 4 entries; push2d has 5 reward terms \['reach', 'push', 'safety', 'control', "
            r"'metra'\]",
        ),
        (dict(obs_dims=(2, 12)), r"METRA: obs_dims=\(2, 12\) must be distinct coordinates"),
        (dict(skill_dim=0), r"METRA: skill_dim = 0"),
        (dict(discrete=True, skill_dim=1), r"discrete skills need skill_dim >= 2"),
    ],
)
def test_slim_bad_input_is_one_line_before_compiling(changes, message):
    env = envs.make("push2d")
    with pytest.raises(ConfigError, match=message) as info:
        slim.make_trainer(_config(**changes), env)
    assert "\n" not in str(info.value)
