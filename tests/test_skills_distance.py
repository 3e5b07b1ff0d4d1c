"""Distance-based skill discovery (LSD, METRA, CSD): φ's constraints do what the papers say, rewards come from the
current φ, skills are held for the episode, zero-shot goals go through φ, and bad input is one clear line."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
from agents.skills import csd, distance, lsd, metra
from envs.core import EnvSpec
from envs.spaces import Box
from rlkit import conditioning, registry
from rlkit.configs import ConfigError
from rlkit.export import export_agent, load_agent

SMALL = dict(hidden_sizes=(32, 32), phi_hidden_sizes=(32, 32), batch_size=64)


def _spec(config, env_id="point-room"):
    env = envs.make(env_id)
    return env, conditioning.Conditioned(env, registry.get(config_name(config)).condition(config)[0]).spec


def config_name(config):
    return {lsd.LSDConfig: "lsd", metra.METRAConfig: "metra", csd.CSDConfig: "csd"}[type(config)]


def _batch(config, n=256, seed=0, step_scale=0.2):
    """Transitions of the point env: s uniform in the room, z from the method's prior, and s′ = s + a step of at
    most ``step_scale`` per axis that follows z (as a skill would) with noise."""
    k1, k2, k3 = jax.random.split(jax.random.key(seed), 3)
    s = jax.random.uniform(k1, (n, 2), minval=-5, maxval=5)
    p = registry.get(config_name(config)).condition(config)[0]
    z = jax.vmap(p.sample)(jax.random.split(k3, n))
    noise = jax.random.uniform(k2, (n, 2), minval=-1, maxval=1)
    s2 = s + step_scale * jnp.clip(jnp.tanh(2 * z[:, :2]) + 0.3 * noise, -1, 1)
    return {"obs": jnp.concatenate([s, z], -1), "next_obs": jnp.concatenate([s2, z], -1), "z": z}


def _jacobian_norms(f, xs):
    return jax.vmap(lambda x: jnp.linalg.norm(jax.jacobian(f)(x), ord=2))(xs)


def test_lsd_phi_is_one_lipschitz_after_updates_and_its_reward_is_bounded_by_the_step():
    config = lsd.LSDConfig(**SMALL, phi_lr=1e-2)  # a large step size, pushing φ to grow as fast as it can
    _, spec = _spec(config)
    term = lsd.term(config, spec)
    state = term.init(jax.random.key(0), spec)
    update = jax.jit(term.update)
    for i in range(300):
        state, metrics = update(state, _batch(config, seed=i), jax.random.key(i))
    assert float(metrics["loss/phi"]) < -0.05  # it did learn to pay for distance
    stats = state.phi.stats["batch_stats"]
    for layer, kernel in ((k, v["kernel"]) for k, v in sorted(state.phi.params.items())):
        (sigma,) = [v for n, v in stats[f"SpectralNorm_{layer.split('_')[1]}"].items() if n.endswith("sigma")]
        assert np.linalg.norm(np.asarray(kernel) / float(sigma), ord=2) <= 1 + 1e-3, layer
    f = lambda x: lsd.phi(config)(state.phi, x)  # noqa: E731
    xs = jax.random.uniform(jax.random.key(9), (64, 2), minval=-5, maxval=5)
    assert float(jnp.max(_jacobian_norms(f, xs))) <= 1 + 1e-3
    batch = _batch(config, seed=1000)
    r = term.reward(state, batch)
    bound = 0.2 * np.sqrt(2) * jnp.linalg.norm(batch["z"], axis=-1)  # ‖Δs‖ ≤ 0.283 on the point env
    assert bool(jnp.all(r <= bound + 1e-4))


def test_metra_lambda_rises_when_the_constraint_is_violated_and_falls_when_slack():
    config = metra.METRAConfig(**SMALL)
    _, spec = _spec(config)
    term = metra.term(config, spec)
    state = term.init(jax.random.key(0), spec)
    batch = _batch(config)

    def scaled(c):  # φ's output layer times c: ‖Δφ‖ grows with c
        params = jax.tree_util.tree_map_with_path(
            lambda p, v: v * c if "Dense_2" in jax.tree_util.keystr(p) else v, state.phi.params
        )
        return state.replace(phi=state.phi.replace(params=params))

    violated, m_v = term.update(scaled(1000.0), batch, jax.random.key(1))
    slack, m_s = term.update(scaled(0.0), batch, jax.random.key(1))
    assert float(m_v["violated"]) > 0.9 and float(m_s["violated"]) == 0.0
    assert float(violated.log_lambda) > float(state.log_lambda) > float(slack.log_lambda)
    assert float(jnp.exp(state.log_lambda)) == pytest.approx(30.0)
    assert float(m_s["penalty"]) == pytest.approx(config.dual_slack)  # min(ε, 1 − 0)


@pytest.mark.parametrize("name", ["lsd", "metra", "csd"])
def test_the_learner_sees_rewards_of_the_updated_phi_and_skills_are_held_per_episode(name):
    entry = registry.get(name)
    config = entry.config_cls(**SMALL)
    env, spec = _spec(config)
    agent = entry.make_agent(config, spec)
    state = agent.init(jax.random.key(0))
    batch = _batch(config)
    batch |= {
        "action": jnp.zeros((256, 2)),
        "reward": jnp.zeros(256),
        "terminated": jnp.zeros(256, bool),
        "truncated": jnp.zeros(256, bool),
    }
    new, metrics = jax.jit(agent.update)(state, batch, jax.random.key(1))
    term = {"lsd": lsd.term, "metra": metra.term, "csd": csd.term}[name](config, spec)
    after = float(jnp.mean(term.reward(new.terms[0], batch)))
    before = float(jnp.mean(term.reward(state.terms[0], batch)))
    assert float(metrics[f"reward/{name}"]) == pytest.approx(after, rel=1e-5, abs=1e-7)
    assert abs(after - before) > 1e-6

    prior, every = entry.condition(config)
    assert every == 0
    wrapped = conditioning.Conditioned(env, prior, every)
    obs, s = wrapped.reset(jax.random.key(2))

    def step(carry, k):
        obs, s = carry
        obs, s, *_, info = wrapped.step(k, s, jnp.ones(2))
        return (obs, s), info["z"]

    _, zs = jax.lax.scan(step, (obs, s), jax.random.split(jax.random.key(3), 199))
    assert bool(jnp.all(zs == obs[-config.skill_dim :]))
    if name != "lsd":
        assert float(jnp.linalg.norm(zs[0])) == pytest.approx(1.0, abs=1e-5)  # the unit sphere


def test_discrete_skills_are_centred_one_hot_and_goals_pick_the_best_aligned_skill():
    config = metra.METRAConfig(**SMALL, discrete=True, skill_dim=4)
    prior, _ = registry.get("metra").condition(config)
    z = prior.sample(jax.random.key(0))
    assert float(jnp.sum(z)) == pytest.approx(0.0, abs=1e-6) and float(jnp.max(z)) == 1.0
    table = (np.eye(4) - 0.25) * 4 / 3
    for k in range(4):
        goal_dir = jnp.asarray(table[k] * 3.0)
        np.testing.assert_allclose(
            distance.goal_skill(config, jnp.zeros(4), goal_dir, normalize=True), table[k]
        )


def test_zero_shot_goal_skill_is_the_normalized_phi_difference_and_act_to_goal_uses_it():
    config = metra.METRAConfig(**SMALL)
    _, spec = _spec(config)
    agent = metra.make_metra(config, spec)
    state = agent.init(jax.random.key(0))
    phi = metra.phi(config)
    obs, goal = jnp.array([0.0, 0.0]), jnp.array([3.0, -4.0])
    z = distance.goal_skill(
        config, phi(state.terms[0].phi, obs), phi(state.terms[0].phi, goal), normalize=True
    )
    assert float(jnp.linalg.norm(z)) == pytest.approx(1.0, abs=1e-5)
    act = distance.act_to_goal(agent, config, phi, normalize=True)
    a = act(state, obs, goal, jax.random.key(1))
    np.testing.assert_array_equal(
        a, agent.act(state, jnp.concatenate([obs, z]), jax.random.key(1), "deterministic")
    )
    with pytest.raises(ConfigError, match="goal has 3 coordinates; φ of metra takes 2"):
        act(state, obs, jnp.zeros(3), jax.random.key(1))


def test_a_skill_agent_exports_with_its_representation(tmp_path):
    config = metra.METRAConfig(**SMALL)
    _, spec = _spec(config)
    agent = metra.make_metra(config, spec)
    state = agent.init(jax.random.key(3))
    path = export_agent(tmp_path / "metra.rlkit", "metra", config, state, spec)
    loaded, loaded_state = load_agent(path, spec)
    x = jnp.array([[1.0, 2.0]])
    np.testing.assert_array_equal(
        metra.phi(config)(distance.representation(loaded_state), x),
        metra.phi(config)(distance.representation(state), x),
    )


@pytest.mark.parametrize(
    "name, changes, env_id, message",
    [
        ("metra", {"skill_dim": 0}, "point-room", "METRA: skill_dim = 0; z needs at least one dimension"),
        ("lsd", {"discrete": True, "skill_dim": 1}, "point-room", "discrete skills need skill_dim >= 2"),
        (
            "metra",
            {"obs_dims": (0, 5)},
            "point-room",
            r"obs_dims=\(0, 5\) must be distinct coordinates",
        ),
        ("csd", {}, "image", r"CSD takes flat observations; image has shape \(4, 4\)"),
        ("metra", {}, "cartpole", "SAC needs a bounded continuous"),
    ],
)
def test_bad_skill_settings_are_one_clear_line_before_compiling(name, changes, env_id, message):
    entry = registry.get(name)
    with pytest.raises(ConfigError, match=message):
        config = entry.config_cls(**changes)
        if env_id == "image":
            spec = EnvSpec(
                "image",
                Box(-np.ones((4, 4)), np.ones((4, 4))),
                Box(-np.ones(2), np.ones(2)),
                max_episode_steps=200,
            )
            entry.validate(config, spec)
        else:
            entry.make_trainer(config, envs.make(env_id))
