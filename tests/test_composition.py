"""The composition layer: one registry, transition extras, learned reward terms, data sources (on device and
through the Gymnasium host loop)."""

from __future__ import annotations

import ast
import dataclasses
import re
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
from agents import sac
from agents.imitation import sqil
from agents.skills import diayn
from rlkit import data_sources, registry
from rlkit.agent import Agent
from rlkit.buffers import make_demo_store, make_replay_buffer
from rlkit.configs import ConfigError
from rlkit.off_policy import example_transition
from rlkit.rewards import RewardTerm, with_reward_terms
from rlkit.sweeps import make_runs
from rlkit.training import train
from tests.helpers.trees import assert_leaves_equal

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(hidden_sizes=(8,), learning_starts=20, buffer_size=400, chunk_steps=20, batch_size=16)


# ---------------------------------------------------------------------------------------------- registry
def test_the_core_never_imports_agents():
    offenders = []
    for path in (ROOT / "rlkit").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path.relative_to(ROOT)}: {n}" for n in names if n.split(".")[0] == "agents"]
    assert offenders == []


def test_one_registry_serves_cli_export_and_help():
    from experiments.train import _agents
    from rlkit.export import _registry

    table = registry.entries()
    assert {"sac", "td3", "ppo", "sqil", "diayn"} <= set(table)
    assert set(_agents()) == set(table) == set(_registry())
    classes = [e.config_cls for e in table.values()]
    assert len(set(classes)) == len(classes), "each agent needs its own config class (exports name it)"
    with pytest.raises(ConfigError, match=r"agent='nope' is not registered; choose from \["):
        registry.get("nope")
    with pytest.raises(ValueError, match="already registered"):
        registry.register(dataclasses.replace(table["sac"], description="another"))


def test_the_docs_and_rlkit_agents_list_every_registered_agent(capsys):
    from experiments import cli

    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Composition") :]
    documented = set(
        re.findall(r"^\| `([a-z0-9_-]+)` \|", section[: section.index("**The extension points")], re.M)
    )
    assert documented == set(registry.entries())
    cli.main(["agents"])
    printed = {line.split()[0] for line in capsys.readouterr().out.splitlines() if line.strip()}
    assert printed == set(registry.entries())


# ---------------------------------------------------------------------------------------------- reward terms
def _batch(spec, n=16, seed=0):
    example = example_transition(spec)
    keys = jax.random.split(jax.random.key(seed), len(example))
    return {
        k: jax.random.normal(kk, (n, *v.shape)).astype(v.dtype)
        if v.dtype == jnp.float32
        else jnp.zeros((n, *v.shape), v.dtype)
        for (k, v), kk in zip(example.items(), keys)
    }


def test_combinator_without_terms_is_the_base_learner_exactly():
    spec = envs.make("pendulum").spec
    config = sac.SACConfig(hidden_sizes=(8,))
    base = sac.make_sac(config, spec)
    composed = with_reward_terms(sac.make_sac, lambda c, s: [])(config, spec)
    key = jax.random.key(3)
    s_base, s_comp = base.init(key), composed.init(key)
    assert_leaves_equal(s_base, s_comp.base)
    batch = _batch(spec)
    for i in range(3):
        k = jax.random.key(10 + i)
        s_base, m_base = jax.jit(base.update)(s_base, batch, k)
        s_comp, m_comp = jax.jit(composed.update)(s_comp, batch, k)
    assert_leaves_equal(s_base, s_comp.base)
    assert m_base.keys() == m_comp.keys()


def _counter_term(shape_ok=True):
    """A term whose parameter counts its updates and whose reward is that count (so a stale reward shows)."""

    def init(key, spec):
        return jnp.zeros((), jnp.float32)

    def reward(state, batch):
        n = batch["obs"].shape[0]
        return jnp.full((n,) if shape_ok else (n, 2), state)

    def update(state, batch, key):
        return state + 1.0, {"count": state + 1.0}

    return RewardTerm("count", init, reward, update)


def _recording_base(config, spec):
    """A base learner that only reports the rewards it was given."""

    def update(state, batch, key):
        return state, {
            "reward_seen": jnp.mean(batch["reward"], axis=0),
            "names": jnp.zeros(len(spec.reward_names)),
        }

    return Agent("record", config, lambda key, spec_=None: jnp.zeros(()), lambda *a: None, update)


def test_rewards_are_recomputed_with_the_updated_parameters_and_stacked_after_the_env_terms():
    spec = envs.make("pendulum").spec
    make = with_reward_terms(_recording_base, lambda c, s: [_counter_term()])
    agent = make(None, spec)
    state = agent.init(jax.random.key(0))
    batch = _batch(spec) | {"reward": jnp.full((16,), 5.0)}
    for step in (1, 2, 3):
        state, metrics = agent.update(state, batch, jax.random.key(step))
        # [env reward, count after this update]: never the count before it
        np.testing.assert_allclose(metrics["reward_seen"], [5.0, float(step)])
        assert metrics["names"].shape == (2,) and float(metrics["count/count"]) == step
    only = with_reward_terms(_recording_base, lambda c, s: [_counter_term()], env_reward=False)(None, spec)
    _, m = only.update(only.init(jax.random.key(0)), batch, jax.random.key(1))
    assert m["names"].shape == (1,) and float(m["reward_seen"]) == 1.0


def test_a_reward_term_of_the_wrong_shape_is_one_clear_error():
    spec = envs.make("pendulum").spec
    agent = with_reward_terms(_recording_base, lambda c, s: [_counter_term(shape_ok=False)])(None, spec)
    with pytest.raises(ConfigError, match=r"reward term 'count' returned shape \(16, 2\); expected \(16,\)"):
        jax.jit(agent.update)(agent.init(jax.random.key(0)), _batch(spec), jax.random.key(1))


# ---------------------------------------------------------------------------------------------- data sources
def _demo_store(spec, episodes=3, length=10, seed=0):
    rng = np.random.default_rng(seed)
    obs_dim, act_dim = spec.observation_space.shape[0], spec.action_space.shape[0]
    return make_demo_store(
        rng.normal(size=(episodes * (length + 1), obs_dim)).astype(np.float32),
        np.full(episodes, length),
        actions=rng.uniform(-1, 1, size=(episodes * length, act_dim)).astype(np.float32),
        rewards=rng.normal(size=episodes * length).astype(np.float32),
    )


@pytest.mark.parametrize("fraction", [0.5, 0.25, 0.9])
def test_mixed_batches_hold_exactly_the_requested_share_with_rewards_by_source(fraction):
    spec = envs.make("pendulum").spec
    store = _demo_store(spec)
    buffer = make_replay_buffer(example_transition(spec), capacity=64, num_envs=1)
    online = jax.tree.map(
        lambda x: jnp.broadcast_to(x + 7.0 if x.dtype == jnp.float32 else x, (40, 1, *x.shape)),
        example_transition(spec),
    )
    state = buffer.add_chunk(buffer.init(), online)

    sample = data_sources.mixture(
        [data_sources.demonstrations(store, spec), data_sources.online()],
        "demo_ratio",
        reward_by_source=(1.0, 0.0),
        source_field="source",
    )(buffer)
    _, batch = jax.jit(sample, static_argnums=3)(
        sqil.SQILConfig(demo_ratio=fraction), state, jax.random.key(0), 64, 0
    )
    demo_rows = np.asarray(batch["source"]) == 0
    assert demo_rows.sum() == round(fraction * 64)
    np.testing.assert_array_equal(np.asarray(batch["reward"]), demo_rows.astype(np.float32))
    # online rows are the +7 rows of the replay buffer, demo rows come from the store
    assert np.all(np.asarray(batch["obs"])[~demo_rows] == 7.0)
    assert not np.any(np.asarray(batch["obs"])[demo_rows] == 7.0)


def test_sqil_samples_half_demonstrations_with_reward_one(tmp_path):
    env = envs.make("pendulum")
    config = sqil.SQILConfig(**TINY)
    store = _demo_store(env.spec)
    trainer = sqil.make_trainer(config, env, demos=store)
    result = train(trainer, make_runs(config, seeds=2), total_steps=60, console=False)
    assert result.steps == 60 and np.all(np.isfinite(result.metrics["loss/critic"]))
    wrong = make_demo_store(np.zeros((11, 4), np.float32), [10], actions=np.zeros((10, 1), np.float32))
    with pytest.raises(ValueError, match=r"\(4,\).*\(3,\)|\(3,\).*\(4,\)"):
        sqil.make_trainer(config, env, demos=wrong)


# ---------------------------------------------------------------------------------------------- extras + DIAYN
def test_diayn_stores_z_as_an_extra_and_resumes_bit_exactly(tmp_path):
    env = envs.make("point-room", max_episode_steps=25)
    config = diayn.DIAYNConfig(num_skills=4, disc_hidden_sizes=(8,), **TINY)
    trainer = diayn.make_trainer(config, env)
    assert trainer.spec.observation_space.shape == (2 + 4,)
    runs = make_runs(config, seeds=2)
    ref = train(trainer, runs, total_steps=80, log_dir=tmp_path / "ref", checkpoint_every=1, console=False)
    train(trainer, runs, total_steps=40, log_dir=tmp_path / "cut", checkpoint_every=1, console=False)
    resumed = train(
        trainer,
        runs,
        total_steps=80,
        log_dir=tmp_path / "cut",
        checkpoint_every=1,
        console=False,
        resume=True,
    )
    assert_leaves_equal(ref.state, resumed.state)
    data = jax.tree.map(np.asarray, ref.state.buffer_state.data)
    z, next_obs = data["z"][0, :, 0], data["next_obs"][0, :, 0]  # run 0, env 0: [rows, ...]
    written = np.abs(z).sum(-1) > 0
    assert written.sum() == 80  # every stored row (80 steps, one env) carries its skill, a one-hot
    np.testing.assert_array_equal(z[written].sum(-1), 1.0)
    np.testing.assert_array_equal(next_obs[written][:, 2:], z[written])  # the transition's own skill
    assert np.isfinite(ref.metrics["diayn/loss/discriminator"]).all()


def test_continuous_diayn_pays_log_q_minus_log_p_and_its_gaussian_q_learns_z():
    config = diayn.DIAYNConfig(continuous_dim=2, disc_hidden_sizes=(64,), disc_lr=3e-3, **TINY)
    env = envs.make("point-room", max_episode_steps=25)
    trainer = diayn.make_trainer(config, env)
    assert trainer.spec.observation_space.shape == (2 + 2,)
    prior = diayn.prior(config)
    assert prior.name == "gaussian" and not prior.discrete
    term = diayn.discriminator(config, trainer.spec)
    state = term.init(jax.random.key(0), trainer.spec)

    def batch(seed):  # states that reveal the skill: s′ = 3·z (clipped to the room) plus noise
        k1, k2 = jax.random.split(jax.random.key(seed))
        z = jax.vmap(prior.sample)(jax.random.split(k1, 128))
        s2 = jnp.clip(3.0 * z, -9, 9) + 0.1 * jax.random.normal(k2, z.shape)
        return {"next_obs": jnp.concatenate([s2, z], -1), "z": z}

    b = batch(10_000)
    out = diayn._net(config).apply(state.params, b["next_obs"][:, :2])
    mean, log_std = out[:, :2], np.clip(out[:, 2:], -5, 2)
    by_hand = jax.scipy.stats.norm.logpdf(b["z"], mean, np.exp(log_std)).sum(
        -1
    ) - jax.scipy.stats.norm.logpdf(b["z"]).sum(-1)
    np.testing.assert_allclose(term.reward(state, b), by_hand, rtol=1e-4, atol=1e-5)
    before = float(jnp.mean(term.reward(state, b)))
    update = jax.jit(term.update)
    for i in range(300):
        state, metrics = update(state, batch(i), jax.random.key(i))
    assert float(metrics["explained_variance"]) > 0.8
    assert float(jnp.mean(term.reward(state, b))) > before + 1.0  # q is sharper than the prior now
    result = train(trainer, make_runs(config, seeds=2), total_steps=60, console=False)
    assert np.isfinite(result.metrics["diayn/loss/discriminator"]).all()


def test_diayn_through_the_gymnasium_host_loop_holds_z_per_episode():
    from rlkit.host_loop import train_host

    config = diayn.DIAYNConfig(num_skills=3, disc_hidden_sizes=(8,), **TINY)
    runs = make_runs(config, seeds=2)

    def make_env(n):
        return envs.make("gymnasium:Pendulum-v1", num_envs=n)

    prior, every = registry.get("diayn").condition(config)
    pieces = diayn.host_pieces(config, None) | {"prior": prior, "resample_every": every}
    result = train_host(
        diayn.make_diayn, runs, make_env, total_steps=300, console=False, eval_every=1, **pieces
    )
    data = jax.tree.map(np.asarray, result.state.buffer_state.data)
    z, next_obs, trunc = data["z"][0, :300, 0], data["next_obs"][0, :300, 0], data["truncated"][0, :300, 0]
    np.testing.assert_array_equal(next_obs[:, 3:], z)
    episode = np.concatenate([[0], np.cumsum(trunc)[:-1]])  # Pendulum-v1 truncates at 200 steps
    for e in np.unique(episode):
        rows = z[episode == e]
        assert (rows == rows[0]).all(), "z changed inside an episode"
    assert np.isfinite(result.metrics["eval_return"]).all()


def _z_runs(z, done):
    """Lengths of the stretches of one z inside episodes (``z [T, D]``, ``done [T]`` ends an episode at t)."""
    lengths, n = [], 1
    for t in range(1, len(z)):
        if done[t - 1] or not (z[t] == z[t - 1]).all():
            lengths.append((n, bool(done[t - 1])))
            n = 1
        else:
            n += 1
    return lengths


@pytest.mark.parametrize("loop", ["device", "host"])
def test_a_swept_resample_every_applies_per_run_in_one_program(loop):
    """Runs of one sweep over ``resample_every`` [0, 4]: run 0 keeps z for whole episodes, run 1 draws a new z
    every 4 steps (a stretch ends after 4 steps, or a multiple when a redraw repeats z, unless the episode ends)."""
    from rlkit.host_loop import train_host

    config = diayn.DIAYNConfig(num_skills=8, disc_hidden_sizes=(8,), **TINY)
    runs = make_runs(config, seeds=1, sweep={"resample_every": [0, 4]})
    if loop == "device":
        env = envs.make("point-room", max_episode_steps=25)
        result = train(diayn.make_trainer(config, env), runs, total_steps=100, console=False)
    else:
        result = train_host(
            diayn.make_diayn, runs, lambda n: envs.make("gymnasium:Pendulum-v1", num_envs=n), total_steps=100,
            console=False, prior=diayn.prior(config), resample_every=lambda c: c.resample_every, extras=("z",),
        )  # fmt: skip
    data = jax.tree.map(np.asarray, result.state.buffer_state.data)
    done = data["terminated"] | data["truncated"]
    for run, every in ((0, 0), (1, 4)):
        stretches = _z_runs(data["z"][run, :100, 0], done[run, :100, 0])
        inside = [n for n, ended in stretches if not ended]
        if every == 0:
            assert inside == [], f"run {run}: z changed inside an episode"
        else:
            # a redraw may repeat the old skill (1 in 8), which joins two stretches
            assert inside and min(inside) == every and all(n % every == 0 for n in inside), (run, stretches)


# ---------------------------------------------------------------------------------------------- actor-loss terms
@pytest.mark.parametrize("learner", ["sac", "td3"])
def test_extra_actor_loss_terms_reach_the_actor(learner):
    from agents import td3
    from rlkit.off_policy import ActorLossTerm

    spec = envs.make("pendulum").spec
    module, cfg_cls = (sac, sac.SACConfig) if learner == "sac" else (td3, td3.TD3Config)
    make = module.make_sac if learner == "sac" else module.make_td3
    config = (
        cfg_cls(hidden_sizes=(16,), policy_frequency=1) if learner == "td3" else cfg_cls(hidden_sizes=(16,))
    )
    seen = {}

    def bc_to_one(batch, action, log_prob, q, key):  # pull every action to 1.0, hard
        seen["shapes"] = (
            action.shape,
            None if log_prob is None else log_prob.shape,
            q(batch["obs"], action).shape,
        )
        return 100.0 * jnp.mean((action - 1.0) ** 2), {"gap": jnp.mean(jnp.abs(action - 1.0))}

    plain, pulled = make(config, spec), make(config, spec, actor_terms=[ActorLossTerm("bc", bc_to_one)])
    s_plain = s_pulled = plain.init(jax.random.key(0))
    batch = _batch(spec, n=64)
    for i in range(150):
        s_plain, _ = jax.jit(plain.update)(s_plain, batch, jax.random.key(i))
        s_pulled, m = jax.jit(pulled.update)(s_pulled, batch, jax.random.key(i))
    assert seen["shapes"][0] == (64, 1) and seen["shapes"][2][1:] == (64, 1)
    assert (seen["shapes"][1] == (64,)) == (learner == "sac")
    act = jax.vmap(lambda s, o: plain.act(s, o, jax.random.key(0), "deterministic"), in_axes=(None, 0))
    gap_pulled = float(jnp.mean(jnp.abs(act(s_pulled, batch["obs"]) - 1.0)))
    gap_plain = float(jnp.mean(jnp.abs(act(s_plain, batch["obs"]) - 1.0)))
    assert gap_pulled < 0.6 * gap_plain, (gap_pulled, gap_plain)
    assert "actor_term/bc" in m and "actor_term/bc/gap" in m


def test_sqil_through_the_gymnasium_host_loop_samples_its_demonstrations():
    from rlkit.host_loop import train_host

    config = sqil.SQILConfig(**TINY)
    runs = make_runs(config, seeds=2)
    spec = envs.make("pendulum").spec  # Gymnasium Pendulum-v1 has the same spaces
    seen = []

    def make_agent(cfg, spec_):
        agent = sqil.make_sqil(cfg, spec_)

        def update(state, batch, key):  # what the learner is given: half demonstration rows of reward 1
            seen.append(batch["reward"].shape)
            new, metrics = agent.update(state, batch, key)
            return new, metrics | {"demo_share": jnp.mean(batch["reward"])}

        return dataclasses.replace(agent, update=update)

    result = train_host(
        make_agent, runs, lambda n: envs.make("gymnasium:Pendulum-v1", num_envs=n), total_steps=60,
        console=False, **sqil.host_pieces(config, spec, demos=_demo_store(spec)),
    )  # fmt: skip
    np.testing.assert_array_equal(result.metrics["demo_share"], 0.5)
    assert seen and seen[0] == (16,)


def test_diayn_keeps_the_env_reward_as_a_first_term_for_the_multi_critic_learner():
    env = envs.make("point-room", max_episode_steps=25, goal_reward=1.0)
    config = diayn.DIAYNConfig(
        num_skills=3,
        disc_hidden_sizes=(8,),
        env_reward=True,
        multi_critic=True,
        reward_weights=(1.0, 0.5),
        **TINY,
    )
    result = train(diayn.make_trainer(config, env), make_runs(config, seeds=1), total_steps=60, console=False)
    assert {"q_mean/reward", "q_mean/diayn", "reward/diayn"} <= set(result.metrics)
    with pytest.raises(ConfigError, match=r"reward_weights has 1 entries.*\['reward', 'diayn'\]"):
        diayn.make_trainer(config.replace(reward_weights=(1.0,)), env)


def test_the_combinator_without_terms_lowers_to_the_base_program():
    import re as re_

    from rlkit.off_policy import make_off_policy_trainer

    env = envs.make("pendulum")
    config = sac.SACConfig(**TINY)
    runs = make_runs(config, seeds=1)

    def program(trainer):
        state = jax.eval_shape(jax.vmap(trainer.init), runs.config, runs.keys)
        text = jax.jit(jax.vmap(trainer.run_chunk)).lower(runs.config, state).as_text()
        return re_.sub(r"loc\([^)]*\)|#loc\d*", "", re_.sub(r'jax\.result_info = "[^"]*"', "", text))

    composed = make_off_policy_trainer("sac", env, with_reward_terms(sac.make_sac, lambda c, s: []), config)
    assert program(composed) == program(sac.make_trainer(config, env))


def test_a_conditioned_agent_trained_on_a_gymnasium_env_evaluates_from_its_file(tmp_path, capsys):
    from experiments import cli
    from experiments.train import main

    small = "--hidden-sizes 8 --disc-hidden-sizes 8 --learning-starts 100 --chunk-steps 100 --buffer-size 500"
    main(["--agent", "diayn", "--num-skills", "3", "--env", "gymnasium:Pendulum-v1", "--seeds", "1",
          "--total-steps", "200", "--log-dir", str(tmp_path), *small.split()])  # fmt: skip
    result = cli.evaluate(cli.EvalArgs(str(tmp_path / "agent.rlkit"), episodes=2))
    assert np.isfinite(result["eval_return"])
