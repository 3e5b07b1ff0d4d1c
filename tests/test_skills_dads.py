"""DADS: the reward is the log-ratio of the own skill's likelihood of Δs against prior skills', the skill dynamics
learn what a skill does, the learner sees the updated model's rewards, the model exports, bad input is one line."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
from agents.skills import dads
from rlkit import conditioning, registry, running_stats
from rlkit.configs import ConfigError
from rlkit.export import export_agent, load_agent
from rlkit.sweeps import make_runs

SMALL = dict(hidden_sizes=(32, 32), dynamics_hidden_sizes=(64, 64), batch_size=64, num_prior_samples=20)


def _setup(**changes):
    config = dads.DADSConfig(**(SMALL | changes))
    env = envs.make("point-room")
    spec = conditioning.Conditioned(env, dads.prior(config)).spec
    return config, env, spec


def _batch(config, n=256, seed=0, noise=0.02):
    """Point-env transitions whose step is the skill's: Δs = 0.2·z + noise, s uniform in the room."""
    k1, k2, k3 = jax.random.split(jax.random.key(seed), 3)
    s = jax.random.uniform(k1, (n, 2), minval=-5, maxval=5)
    z = jax.vmap(dads.prior(config).sample)(jax.random.split(k2, n))
    s2 = s + 0.2 * z + noise * jax.random.normal(k3, (n, 2))
    return {"obs": jnp.concatenate([s, z], -1), "next_obs": jnp.concatenate([s2, z], -1), "z": z}


def _standardized(config, state, batch):
    dyn = state.dynamics
    s, s2 = batch["obs"][:, :2], batch["next_obs"][:, :2]
    return running_stats.normalize(dyn.obs_stats, s), running_stats.normalize(dyn.delta_stats, s2 - s)


def test_the_reward_is_the_log_ratio_against_prior_skills_and_zero_for_a_model_blind_to_z():
    config, _, spec = _setup()
    term = dads.term(config, spec)
    state = term.init(jax.random.key(0), spec)
    batch = _batch(config)
    state, _ = jax.jit(term.update)(state, batch, jax.random.key(1))
    r = term.reward(state, batch)
    # by hand: the same prior samples (the key the update left), numpy's arithmetic
    s, delta = _standardized(config, state, batch)
    own = np.asarray(dads.log_prob(config, state.dynamics.params, s, batch["z"], delta))
    keys = jax.random.split(state.key, 256 * 20)
    z_alt = jax.vmap(dads.prior(config).sample)(keys).reshape(256, 20, 2)
    alt = np.asarray(dads.log_prob(config, state.dynamics.params, s[:, None], z_alt, delta[:, None]))
    expected = np.log(21.0) - np.log(1 + np.exp(np.clip(alt - own[:, None], -50, 50)).sum(-1))
    np.testing.assert_allclose(r, expected, rtol=1e-4, atol=1e-5)
    assert bool(jnp.all(r <= math.log(21.0) + 1e-5))

    blind = jax.tree_util.tree_map_with_path(  # the first layer's z rows zeroed: q(Δs | s, z) = q(Δs | s)
        lambda p, v: v.at[2:].set(0.0) if "Dense_0" in jax.tree_util.keystr(p) and v.ndim == 2 else v,
        state.dynamics.params,
    )
    r0 = term.reward(state.replace(dynamics=state.dynamics.replace(params=blind)), batch)
    np.testing.assert_allclose(r0, 0.0, atol=1e-5)


@pytest.mark.parametrize("fix_variance", [True, False])
def test_the_skill_dynamics_learn_what_each_skill_does_and_the_reward_rises(fix_variance):
    config, _, spec = _setup(dynamics_lr=3e-3, fix_variance=fix_variance)
    term = dads.term(config, spec)
    state = term.init(jax.random.key(0), spec)
    update = jax.jit(term.update)
    probe = _batch(config, seed=10_000)
    before = float(jnp.mean(term.reward(update(state, probe, jax.random.key(0))[0], probe)))
    losses = []
    for i in range(400):
        state, metrics = update(state, _batch(config, seed=i), jax.random.key(i))
        losses.append(float(metrics["loss/dynamics"]))
    assert np.mean(losses[-20:]) < np.mean(losses[:20]) - 0.5
    after = float(jnp.mean(term.reward(state, probe)))
    assert after > before + 0.8, (before, after)  # unit variance caps it well below log(L + 1)
    s, z = probe["obs"][:, :2], probe["z"]
    predicted = dads.predict(config, state.dynamics, s, z)
    assert float(jnp.mean(jnp.abs(predicted - (s + 0.2 * z)))) < 0.03  # the mean step of each skill


def test_the_learner_sees_the_updated_models_rewards_and_skills_are_uniform_in_the_box():
    config, env, spec = _setup()
    agent = dads.make_dads(config, spec)
    state = agent.init(jax.random.key(0))
    batch = _batch(config) | {
        "action": jnp.zeros((256, 2)),
        "reward": jnp.zeros(256),
        "terminated": jnp.zeros(256, bool),
        "truncated": jnp.zeros(256, bool),
    }
    new, metrics = jax.jit(agent.update)(state, batch, jax.random.key(1))
    term = dads.term(config, spec)
    after = float(jnp.mean(term.reward(new.terms[0], batch)))
    assert float(metrics["reward/dads"]) == pytest.approx(after, rel=1e-5, abs=1e-6)
    assert not np.array_equal(jax.random.key_data(new.terms[0].key), jax.random.key_data(state.terms[0].key))
    prior, every = registry.get("dads").condition(config)
    assert prior.name == "uniform" and every == 0
    z = jax.vmap(prior.sample)(jax.random.split(jax.random.key(5), 2000))
    assert float(jnp.min(z)) >= -1 and float(jnp.max(z)) <= 1 and float(jnp.std(z)) > 0.5
    discrete, _ = registry.get("dads").condition(config.replace(discrete=True, skill_dim=4))
    assert discrete.name == "categorical"


def test_a_dads_agent_exports_with_its_skill_dynamics(tmp_path):
    config, _, spec = _setup(obs_dims=(0,))
    agent = dads.make_dads(config, spec)
    state = agent.init(jax.random.key(3))
    path = export_agent(tmp_path / "dads.rlkit", "dads", config, state, spec)
    _, loaded = load_agent(path, spec)
    s, z = jnp.array([[1.0, 2.0]]), jnp.array([[0.5, -0.5]])
    out = dads.predict(config, dads.dynamics(loaded), s, z)
    assert out.shape == (1, 1)  # obs_dims = (0,): the model predicts x only
    np.testing.assert_array_equal(out, dads.predict(config, dads.dynamics(state), s, z))


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"skill_dim": 0}, "DADS: skill_dim = 0; z needs at least one dimension"),
        ({"discrete": True, "skill_dim": 1}, "discrete skills need skill_dim >= 2"),
        ({"obs_dims": (2,)}, r"obs_dims=\(2,\) must be distinct coordinates"),
        ({"num_prior_samples": 0}, "num_prior_samples"),
    ],
)
def test_bad_dads_settings_are_one_clear_line_before_compiling(changes, message):
    with pytest.raises(ConfigError, match=message) as e:
        config = dads.DADSConfig(**changes)
        dads.make_trainer(config, envs.make("point-room"))
        make_runs(config)  # the field ranges (what train's caller builds first)
    assert "\n" not in str(e.value)


# ---------------------------------------------------------------------------------------------- skill libraries
def test_an_exported_skill_agent_loads_as_a_frozen_skill_library_and_refuses_what_does_not_fit(tmp_path):
    from agents import sac
    from agents.skills import library

    config, env, spec = _setup()
    agent = dads.make_dads(config, spec)
    state = agent.init(jax.random.key(3))
    path = export_agent(tmp_path / "dads.rlkit", "dads", config, state, spec)
    skills = library.load_skills(path, env.spec, skill_dim=2)
    assert skills.name == "dads" and skills.skill_dim == 2 and skills.config == config
    obs, z, key = jnp.array([1.0, -2.0]), jnp.array([0.3, 0.9]), jax.random.key(0)
    np.testing.assert_array_equal(
        skills.act(obs, z, key), agent.act(state, jnp.concatenate([obs, z]), key, "deterministic")
    )
    np.testing.assert_array_equal(
        dads.predict(config, dads.dynamics(skills.state), obs, z),
        dads.predict(config, dads.dynamics(state), obs, z),
    )
    cases = [
        (lambda: library.load_skills(path, env.spec, skill_dim=3), "skill_dim = 3, but the dads skill library"),
        (lambda: library.load_skills(path, envs.make("pendulum").spec), r"observations of shape \(2,\); pendulum has \(3,\)"),
        (lambda: skills.act(obs, jnp.zeros(3), key), "z has 3 dimensions; the dads skill library takes 2"),
    ]  # fmt: skip
    pendulum = envs.make("pendulum").spec
    sac_cfg = sac.SACConfig(hidden_sizes=(8,))
    plain = export_agent(
        tmp_path / "sac.rlkit", "sac", sac_cfg, sac.make_sac(sac_cfg, pendulum).init(key), pendulum
    )
    cases.append((lambda: library.load_skills(plain, pendulum), "holds a 'sac' agent, not a skill agent"))
    for call, message in cases:
        with pytest.raises(ConfigError, match=message) as e:
            call()
        assert "\n" not in str(e.value)
