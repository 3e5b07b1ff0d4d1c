"""Behavioural cloning and the offline trainer: it learns from a scripted expert (pendulum, cartpole), the loss is
exactly imitation's formula, a resumed run is bit-exact, and bad input is refused before anything compiles."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
from agents import sac
from agents.imitation import bc
from envs.core import EnvSpec
from envs.spaces import Box
from rlkit.agent import Agent
from rlkit.buffers import make_demo_store
from rlkit.buffers.datasets import DatasetError
from rlkit.configs import ConfigError
from rlkit.evaluation import evaluate_policy
from rlkit.logger import read_jsonl
from rlkit.sweeps import make_runs
from rlkit.training import train

EVAL_KEY = jax.random.key(7)  # one key: expert, random and BC are scored on the same 20 initial states


def pendulum_expert(obs):
    """Energy-shaping swing-up blended smoothly into a PD balance near the top, on [cos θ, sin θ, θ̇]. Smooth
    on purpose (tanh pumping, sigmoid blend): a hard switch makes the expert much harder to clone in the budget."""
    c, s, thdot = obs[0], obs[1], obs[2]
    energy = 0.5 * thdot**2 + 15.0 * (c - 1.0)  # θ̈ = 15 sin θ + 3u: 0 upright at rest, −30 hanging at rest
    swing = 2.0 * jnp.tanh(-0.05 * energy * thdot)  # dE/dt = 3uθ̇: pump energy towards 0
    balance = -(10.0 * jnp.arctan2(s, c) + 2.0 * thdot)
    w = jax.nn.sigmoid(10.0 * (c - 0.8))
    # clipped: saturated balance actions sit exactly on the box edge (the tanh policy's hard case)
    return jnp.clip(w * balance + (1 - w) * swing, -2.0, 2.0)[None]


def cartpole_expert(obs):
    return (obs[2] + 0.5 * obs[3] > 0).astype(jnp.int32)  # push towards the pole's lean


def scripted(policy) -> Agent:
    return Agent("scripted", None, None, lambda state, obs, key, mode="deterministic": policy(obs, key), None)


def score(env, agent, state=()) -> float:
    return float(evaluate_policy(env, agent, state, EVAL_KEY, num_episodes=20)["eval_return"])


def score_runs(env, agent, result) -> np.ndarray:
    """``[runs]`` deterministic returns of every trained run, one compiled evaluation for all of them."""
    evaluate = jax.vmap(lambda state: evaluate_policy(env, agent, state, EVAL_KEY, num_episodes=20))
    return np.asarray(jax.jit(evaluate)(result.state.agent_state)["eval_return"])


def collect(env, expert, num_episodes, seed=0):
    """Episodes of ``expert`` (vmapped envs, one ``lax.scan``), cut at each episode's first termination or
    truncation, as a DemoStore (T + 1 observations per episode)."""
    params, horizon = env.default_params, env.spec.max_episode_steps
    key = jax.random.key(seed)

    def step(carry, k):
        obs, state = carry
        action = jax.vmap(expert)(obs)
        keys = jax.random.split(k, num_episodes)
        nxt, state, reward, term, trunc, _ = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
            keys, state, action, params
        )
        return (nxt, state), (nxt, action, reward, term, term | trunc)

    @jax.jit
    def rollout(key):
        obs, state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(key, num_episodes), params)
        _, out = jax.lax.scan(step, (obs, state), jax.random.split(key, horizon))
        return obs, out

    first, (nxt, actions, rewards, term, done) = jax.device_get(rollout(key))
    lengths = np.argmax(done, axis=0) + 1  # every episode ends within the horizon (TimeLimit)
    cut = lambda x, e, n: x[:n, e]  # noqa: E731
    return make_demo_store(
        np.concatenate([np.concatenate([first[None, e], cut(nxt, e, n)]) for e, n in enumerate(lengths)]),
        lengths,
        actions=np.concatenate([cut(actions, e, n) for e, n in enumerate(lengths)]),
        rewards=np.concatenate([cut(rewards, e, n) for e, n in enumerate(lengths)]),
        terminations=np.concatenate([cut(term, e, n) for e, n in enumerate(lengths)]),
    )


@pytest.fixture(scope="module")
def pendulum_demos():
    return collect(envs.make("pendulum"), pendulum_expert, 20)


def test_bc_clones_a_pendulum_swing_up_expert(pendulum_demos):
    env = envs.make("pendulum")
    r_expert = score(env, scripted(lambda o, k: pendulum_expert(o)))
    r_random = score(env, scripted(lambda o, k: jax.random.uniform(k, (1,), minval=-2.0, maxval=2.0)))
    assert r_expert > -200 and r_random < -1000, (r_expert, r_random)  # measured: −147.6, −1265.9
    assert (
        np.mean(np.abs(np.asarray(pendulum_demos.actions)) >= 2.0) > 0.005
    )  # on the box edge (measured 1.2%)
    config = bc.BCConfig(hidden_sizes=(128, 128), chunk_updates=2000, learning_rate=3e-3)
    runs = make_runs(config, seeds=4)
    result = train(bc.make_trainer(config, env, demos=pendulum_demos), runs, total_steps=8000, console=False)
    agent = bc.make_bc(config, env.spec)
    r_bc = score_runs(env, agent, result)
    normalized = (r_bc - r_random) / (r_expert - r_random)
    # measured: normalized 1.000, 0.989, 1.000, 0.995 (returns −147.5, −160.2, −147.5, −153.2)
    assert normalized.min() >= 0.9, (r_expert, r_random, r_bc, normalized)


def test_bc_clones_a_cartpole_expert_with_a_categorical_policy():
    env = envs.make("cartpole")
    r_expert = score(env, scripted(lambda o, k: cartpole_expert(o)))
    assert r_expert == 500.0
    config = bc.BCConfig(hidden_sizes=(32, 32), chunk_updates=500, learning_rate=3e-3)
    demos = collect(env, cartpole_expert, 10)
    result = train(
        bc.make_trainer(config, env, demos=demos), make_runs(config, seeds=2), total_steps=1000, console=False
    )
    agent = bc.make_bc(config, env.spec)
    r_bc = score_runs(env, agent, result)
    assert np.all(r_bc >= 0.9 * r_expert), r_bc


def _numpy_loss(policy, actor, obs, action, key, config, spec):
    """imitation's BC loss, by hand: −mean log π(a|s) − ent_weight · H + l2_weight · ½‖θ‖²."""
    p = jax.tree.map(np.float64, jax.device_get(actor))["params"]
    dense = lambda x, d: x @ d["kernel"] + d["bias"]  # noqa: E731
    l2 = 0.5 * sum(np.sum(w**2) for w in jax.tree.leaves(p))
    if policy == "categorical":
        logits = dense(np.maximum(dense(obs, p["Dense_0"]), 0), p["Dense_1"])  # an MLP with one hidden layer
        logsm = logits - np.log(np.sum(np.exp(logits), -1, keepdims=True))
        logp, entropy = logsm[np.arange(len(action)), action], -np.sum(np.exp(logsm) * logsm, -1)
    else:
        h = np.maximum(dense(obs, p["MLP_0"]["Dense_0"]), 0)
        mean, log_std = dense(h, p["Dense_0"]), -5.0 + 3.5 * (np.tanh(dense(h, p["Dense_1"])) + 1)
        std, scale = np.exp(log_std), (spec.action_space.high - spec.action_space.low) / 2
        normal = lambda x: np.sum(-0.5 * ((x - mean) / std) ** 2 - log_std - 0.5 * np.log(2 * np.pi), -1)  # noqa: E731
        if policy == "gaussian":
            logp = normal(action / scale) - np.sum(np.log(scale))
            entropy = np.sum(log_std + 0.5 + 0.5 * np.log(2 * np.pi) + np.log(scale), -1)
        else:
            edge = float(np.float32(1 - 1e-6))  # the float32 bound the agent clips to
            u = np.arctanh(np.clip(action / scale, -edge, edge))
            log_jac = lambda u: np.sum(np.log(1 - np.tanh(u) ** 2), -1) + np.sum(np.log(scale))  # noqa: E731
            logp = normal(u) - log_jac(u)
            u_sample = mean + std * np.asarray(jax.random.normal(key, mean.shape), np.float64)
            entropy = -(normal(u_sample) - log_jac(u_sample))  # one reparameterized sample, the update's key
    return -np.mean(logp) - config.ent_weight * np.mean(entropy) + config.l2_weight * l2, np.mean(logp)


@pytest.mark.parametrize("policy", ["tanh_gaussian", "gaussian", "categorical"])
def test_loss_is_imitations_formula_and_falls_on_a_fixed_batch(policy):
    env = envs.make("cartpole" if policy == "categorical" else "pendulum")
    config = bc.BCConfig(
        hidden_sizes=(4,),
        policy="gaussian" if policy == "gaussian" else "tanh_gaussian",
        learning_rate=1e-2,
        ent_weight=0.05,
        l2_weight=0.01,
    )
    agent = bc.make_bc(config, env.spec)
    k_obs, k_act, k_update = jax.random.split(jax.random.key(3), 3)
    obs = jax.random.normal(k_obs, (16, *env.spec.observation_space.shape))
    if policy == "categorical":
        action = (obs[:, 2] > 0).astype(jnp.int32)  # learnable labels, so the loss can fall
    else:  # demo actions on and near the edge too: the log-likelihood must stay finite there
        action = jnp.concatenate(
            [
                jnp.asarray([[2.0], [-2.0], [1.9999999]]),
                jax.random.uniform(k_act, (13, 1), minval=-2, maxval=2),
            ]
        )
    batch = {"obs": obs, "action": action}
    state = agent.init(jax.random.key(0))
    _, metrics = agent.update(state, batch, k_update)
    loss, log_prob = _numpy_loss(
        policy, state.actor, np.float64(obs), np.asarray(action), k_update, config, env.spec
    )
    np.testing.assert_allclose(float(metrics["loss/bc"]), loss, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(float(metrics["log_prob"]), log_prob, rtol=1e-4, atol=1e-5)

    def step(state, key):
        state, m = agent.update(state, batch, key)
        return state, m["loss/bc"]

    losses = np.asarray(jax.lax.scan(step, state, jax.random.split(k_update, 50))[1])
    assert np.all(np.isfinite(losses)) and losses[-1] < losses[0] - 0.1, losses


def test_tanh_gaussian_bc_actor_is_a_sac_actor():
    spec = envs.make("pendulum").spec
    bc_agent = bc.make_bc(bc.BCConfig(hidden_sizes=(8, 8)), spec)
    sac_agent = sac.make_sac(sac.SACConfig(hidden_sizes=(8, 8)), spec)
    actor = bc_agent.init(jax.random.key(1)).actor
    sac_state = sac_agent.init(jax.random.key(2))
    assert jax.tree.structure(actor) == jax.tree.structure(sac_state.actor)
    obs = jax.random.normal(jax.random.key(3), (5, 3))
    bc_state, sac_state = bc_agent.init(jax.random.key(1)), sac_state.replace(actor=actor)
    for mode in ("deterministic", "explore"):  # same distribution: same actions for the same key
        a = jax.vmap(bc_agent.act, in_axes=(None, 0, None, None))(bc_state, obs, jax.random.key(4), mode)
        b = jax.vmap(sac_agent.act, in_axes=(None, 0, None, None))(sac_state, obs, jax.random.key(4), mode)
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_resumed_run_equals_the_uninterrupted_one_bit_for_bit(tmp_path, pendulum_demos):
    env = envs.make("pendulum")
    config = bc.BCConfig(hidden_sizes=(8,), batch_size=32, chunk_updates=20)
    trainer = bc.make_trainer(config, env, demos=pendulum_demos)
    runs = make_runs(config, seeds=1, sweep={"learning_rate": [1e-3, 3e-3]})  # a traced, swept field
    common = dict(checkpoint_every=2, eval_every=2, console=False)
    ref = train(trainer, runs, total_steps=80, log_dir=tmp_path / "ref", **common)
    # stopped after chunk 2, then resumed from its checkpoint by a fresh call (new state, new compilation)
    train(trainer, runs, total_steps=40, log_dir=tmp_path / "killed", **common)
    got = train(trainer, runs, total_steps=80, log_dir=tmp_path / "killed", resume=True, **common)
    for x, y in zip(jax.tree.leaves(ref.state), jax.tree.leaves(got.state), strict=True):
        if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            x, y = jax.random.key_data(x), jax.random.key_data(y)
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    np.testing.assert_array_equal(got.state.updates, [80, 80])  # steps are gradient steps
    lrs = np.asarray(got.state.agent_state.opt.hyperparams["learning_rate"])
    np.testing.assert_allclose(lrs, [1e-3, 3e-3], rtol=1e-6)
    for run in runs.names:
        strip = lambda rows: [{k: v for k, v in r.items() if k != "wall_time"} for r in rows]  # noqa: E731
        rows = strip(read_jsonl(tmp_path / "ref" / run / "metrics.jsonl"))
        assert rows == strip(read_jsonl(tmp_path / "killed" / run / "metrics.jsonl"))
        assert [r["step"] for r in rows] == [20, 40, 60, 80] and "eval_return" in rows[1]


def test_bad_input_is_refused_before_compiling(pendulum_demos):
    unbounded = EnvSpec(
        "free-1d", Box.uniform(-1.0, 1.0, (3,)), Box.uniform(-np.inf, np.inf, (1,)), max_episode_steps=10
    )
    with pytest.raises(ConfigError, match=r"tanh_gaussian' needs a bounded Box .*free-1d has Box\(-inf, inf"):
        bc.validate(bc.BCConfig(), unbounded)
    bc.validate(bc.BCConfig(policy="gaussian"), unbounded)  # an unsquashed Gaussian models it
    env = envs.make("pendulum")
    with pytest.raises(ConfigError, match=r"BCConfig.policy = 'beta' is not allowed; choose one of"):
        bc.make_trainer(bc.BCConfig(policy="beta"), env, demos=pendulum_demos)
    with pytest.raises(ConfigError, match=r"BCConfig.policy = 'beta' is not allowed"):
        bc.make_bc(bc.BCConfig(policy="beta"), env.spec)
    no_actions = make_demo_store(np.zeros((4, 3), np.float32), [3])
    with pytest.raises(DatasetError, match="hold no actions .*needed to learn from them on pendulum"):
        bc.make_trainer(bc.BCConfig(), env, demos=no_actions)


def test_a_diverged_run_stops_with_a_clear_error():
    env = envs.make("pendulum")
    obs = np.full((11, 3), np.nan, np.float32)  # corrupt demonstrations: every loss is NaN
    demos = make_demo_store(obs, [10], actions=np.zeros((10, 1), np.float32))
    config = bc.BCConfig(hidden_sizes=(4,), batch_size=8, chunk_updates=5)
    with pytest.raises(
        FloatingPointError, match=r"bc: non-finite values in chunk 1: .*nonfinite_loss in \['seed_0'\]"
    ):
        train(bc.make_trainer(config, env, demos=demos), make_runs(config), total_steps=5, console=False)


def test_every_chunk_draws_fresh_batches(pendulum_demos):
    # with a negligible learning rate the loss of a chunk's one update is the loss of its batch: a chunk that
    # re-used the previous chunk's RNG key (resumes stay exact either way) would log the same loss every chunk
    config = bc.BCConfig(hidden_sizes=(4,), batch_size=8, chunk_updates=1, learning_rate=1e-12)
    trainer = bc.make_trainer(config, envs.make("pendulum"), demos=pendulum_demos)
    result = train(trainer, make_runs(config), total_steps=4, console=False)
    losses = [float(m["loss/bc"][0]) for m in result.history]
    assert len(set(losses)) == 4, losses


def test_bc_on_an_env_spec_trains_as_on_the_env_and_refuses_in_loop_evaluation(pendulum_demos):
    # a Gymnasium env's demos: BC trains on its spec (no env inside the compiled chunk) and is evaluated on the host
    env = envs.make("pendulum")
    config = bc.BCConfig(hidden_sizes=(8,), batch_size=32, chunk_updates=20)
    runs = make_runs(config, seeds=2)
    on_env = train(bc.make_trainer(config, env, demos=pendulum_demos), runs, total_steps=40, console=False)
    trainer = bc.make_trainer(config, env.spec, demos=pendulum_demos)
    assert trainer.evaluate is None and trainer.spec == env.spec
    on_spec = train(trainer, runs, total_steps=40, console=False)
    for x, y in zip(jax.tree.leaves(on_env.state.agent_state), jax.tree.leaves(on_spec.state.agent_state)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    with pytest.raises(
        ConfigError, match=r"bc: eval_every = 1, but this trainer has no evaluation .*eval_every = 0"
    ):
        train(trainer, runs, total_steps=40, eval_every=1, console=False)
