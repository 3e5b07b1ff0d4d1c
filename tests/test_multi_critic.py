"""Multi-critic learners (issue 5): exact one-term reductions, per-term normalization that makes the actor update
independent of a term's scale, the IQM / bootstrap helpers, the generic evaluation metrics, and bad input that
names the env's reward terms."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct

import envs
from agents import ppo, sac, td3
from envs.core import Environment, EnvParams, EnvSpec, reward_vector
from envs.spaces import Box
from envs.wrappers import SumReward, TimeLimit
from rlkit.configs import ConfigError
from rlkit.evaluation import evaluate_policy
from rlkit.off_policy import (
    TermScale,
    advantage_scale,
    rescale_term_outputs,
    term_critics,
    weighted_min,
    weights_for,
)
from rlkit.statistics import bootstrap_ci, iqm


def _batch(obs_dim, act_dim, reward_shape, n=32, seed=1):
    k = jax.random.split(jax.random.key(seed), 5)
    return {
        "obs": jax.random.normal(k[0], (n, obs_dim)),
        "action": jax.random.uniform(k[1], (n, act_dim), minval=-1, maxval=1),
        "reward": jax.random.normal(k[2], (n, *reward_shape)),
        "next_obs": jax.random.normal(k[3], (n, obs_dim)),
        "terminated": jnp.arange(n) % 7 == 0,
        "truncated": jnp.arange(n) % 5 == 0,
    }


def _updates(agent, state, batch, n=3):
    key = jax.random.key(7)
    for i in range(n):
        state, metrics = jax.jit(agent.update)(state, batch, jax.random.fold_in(key, i))
    return state, metrics


@pytest.mark.parametrize("module", [sac, td3], ids=["sac", "td3"])
def test_one_term_multi_critic_with_normalization_is_exactly_the_base_learner(module):
    spec = envs.make("pendulum").spec
    make = module.make_sac if module is sac else module.make_td3
    cls = module.SACConfig if module is sac else module.TD3Config
    base = cls(hidden_sizes=(16,))
    multi = cls(
        hidden_sizes=(16,), multi_critic=True, term_normalization="per_term", separate_term_critics=True
    )
    a, b = make(base, spec), make(multi, spec)
    batch = _batch(3, 1, ())
    state_a, _ = _updates(a, a.init(jax.random.key(0)), batch)
    state_b, _ = _updates(b, b.init(jax.random.key(0)), batch)
    moved = jax.tree.map(
        lambda x, y: not np.array_equal(x, y), a.init(jax.random.key(0)).actor, state_a.actor
    )
    assert any(jax.tree.leaves(moved))  # three updates include an actor step (TD3: policy_frequency = 2)
    jax.tree.map(lambda x, y: np.testing.assert_array_equal(np.asarray(x), np.asarray(y)), state_a, state_b)


def test_weighted_min_takes_each_samples_lowest_weighted_critic_with_its_per_term_values():
    q = jnp.array([[[1.0, 5.0, 0.0]], [[4.0, 1.0, 0.0]], [[3.0, 3.0, 1.0]]])  # [3 critics, 1 sample, 3 terms]
    w = jnp.array([1.0, 1.0, 2.0])
    out = weighted_min(q, w)  # weighted sums 6, 5, 8: critic 1
    np.testing.assert_array_equal(out, [[4.0, 1.0, 0.0]])
    assert float(out[0] @ w) == 5.0 > float(jnp.min(q, axis=0)[0] @ w)  # the per-term min (1, 1, 0) gives 2
    np.testing.assert_array_equal(weighted_min(q[..., :1], w[:1]), jnp.min(q[..., :1], axis=0))


@pytest.mark.parametrize("separate", [False, True], ids=["head", "separate"])
def test_rescale_term_outputs_maps_each_terms_output_affinely(separate):
    net = term_critics((8, 8), 3, 4, True, separate)
    obs, act = jax.random.normal(jax.random.key(1), (5, 6)), jax.random.normal(jax.random.key(2), (5, 2))
    params = net.init(jax.random.key(0), obs, act)
    scale, shift = jnp.array([0.5, 2.0, 1.0, 10.0]), jnp.array([1.0, -3.0, 0.0, 0.25])
    before = net.apply(params, obs, act)
    after = net.apply(rescale_term_outputs(params, scale, shift), obs, act)
    np.testing.assert_allclose(after, before * scale + shift, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(net.apply(params, obs, act), before)  # the input is not modified


def _nontrivial_scale(k, seed=5):
    """Term statistics as after a few updates, each term in its own units."""
    targets = jax.random.normal(jax.random.key(seed), (3, 64, k)) * jnp.array([3.0, 0.1, 1.0, 0.02]) - 1.0
    scale = TermScale.zeros(k)
    for t in targets:
        scale = scale.update(t, 0.01)
    return scale


@pytest.mark.parametrize("normalization", ["none", "per_term"])
@pytest.mark.parametrize("module", [sac, td3], ids=["sac", "td3"])
def test_the_multi_critic_target_is_the_critic_with_the_lowest_weighted_sum(module, normalization):
    """Per-term critic losses of one update, by hand: the target takes, per sample, the target critic whose
    Σ_k w_k Q_k is lowest (its per-term values), not each term's own min. Per-term normalized: PopArt — the
    target critics' outputs read in reward units with the old statistics, the statistics updated with the mean
    target, the min by Σ_k w_k Q_k / σ_k, the target normalized with the new statistics and regressed by the
    critics after their output-preserving rescale; no entropy bonus (SAC)."""
    spec = envs.make("push2d").spec
    cls, make = (sac.SACConfig, sac.make_sac) if module is sac else (td3.TD3Config, td3.make_td3)
    config = cls(
        hidden_sizes=(16,),
        multi_critic=True,
        term_normalization=normalization,
        reward_weights=(1.0, 2.0, 0.5, 1.0),
    )
    agent = make(config, spec)
    state = agent.init(jax.random.key(0))
    state = state.replace(
        target_critic=jax.tree.map(lambda x: x * 3.0, state.target_critic), term_scale=_nontrivial_scale(4)
    )  # critics disagree
    batch = _batch(10, 2, (4,), n=64)
    key = jax.random.key(3)
    _, m = jax.jit(agent.update)(state, batch, key)
    net = term_critics((16,), 2, 4, False, False)
    if module is sac:
        k_next = jax.random.split(key, 3)[0]
        next_a = agent.act(state, batch["next_obs"], k_next)
        entropy = (jnp.exp(state.log_alpha) * agent.log_prob(state, batch["next_obs"], next_a))[:, None] / 4.5
    else:
        from rlkit.networks import DeterministicActor

        assert np.all(spec.action_space.low == -1) and np.all(spec.action_space.high == 1)
        noise = jnp.clip(jax.random.normal(key, batch["action"].shape) * config.policy_noise, -0.5, 0.5)
        mean = DeterministicActor((16,), 2).apply(state.target_actor, batch["next_obs"])
        next_a, entropy = jnp.clip(mean + noise, -1, 1), 0.0
    q_next = net.apply(state.target_critic, batch["next_obs"], next_a)  # [2, B, 4]
    w = jnp.asarray(config.reward_weights)
    not_done = 1.0 - batch["terminated"][:, None]
    r = batch["reward"]
    got = np.array([float(m[f"loss/critic/{n}"]) for n in spec.reward_names])
    if normalization == "per_term":
        rate, floor = config.q_scale_rate, config.q_scale_floor
        mu, sigma = state.term_scale.stats(rate, floor)
        raw = q_next * sigma + mu
        new_mu, new_sigma = state.term_scale.update(r + 0.99 * not_done * raw.mean(0), rate).stats(
            rate, floor
        )
        pick = jnp.argmin(jnp.sum(raw * w / new_sigma, -1), axis=0)
        chosen = jnp.where(pick[:, None] == 0, raw[0], raw[1])
        t = (r + 0.99 * not_done * chosen - new_mu) / new_sigma
        preserved = rescale_term_outputs(state.critic, sigma / new_sigma, (mu - new_mu) / new_sigma)
        for params, expect_equal in ((preserved, True), (state.critic, False)):
            q = net.apply(params, batch["obs"], batch["action"])
            losses = jnp.sum(jnp.mean((q - t[None]) ** 2, axis=1), axis=0)
            assert np.allclose(got, losses, rtol=1e-4) == expect_equal, (got, losses)
        return
    pick = jnp.argmin(jnp.sum(q_next * w, -1), axis=0)
    chosen = jnp.where(pick[:, None] == 0, q_next[0], q_next[1])
    q = net.apply(state.critic, batch["obs"], batch["action"])
    for target, expect_equal in ((chosen, True), (jnp.min(q_next, axis=0), False)):
        t = r + 0.99 * not_done * (target - entropy)
        losses = jnp.sum(jnp.mean((q - t[None]) ** 2, axis=1), axis=0)
        assert np.allclose(got, losses, rtol=1e-4) == expect_equal, (got, losses)


@pytest.mark.parametrize("normalization", ["per_term", "none"])
def test_per_term_normalized_sac_critics_carry_no_entropy_bonus(normalization):
    """The temperature reaches the per-term targets only without normalization (the split soft target); with
    per-term normalization the critics' losses are the same whatever α is."""
    spec = envs.make("push2d").spec
    config = sac.SACConfig(hidden_sizes=(16,), multi_critic=True, term_normalization=normalization)
    agent = sac.make_sac(config, spec)
    state = agent.init(jax.random.key(0))
    batch = _batch(10, 2, (4,), n=64)
    losses = []
    for alpha in (0.01, 10.0):
        _, m = jax.jit(agent.update)(state.replace(log_alpha=jnp.log(alpha)), batch, jax.random.key(3))
        losses.append(np.array([float(m[f"loss/critic/{n}"]) for n in spec.reward_names]))
    assert np.allclose(losses[0], losses[1], rtol=1e-6) == (normalization == "per_term"), losses


def _scale_term(params, term, factor):
    """Multiply one output column (reward term) of the critics' last layer by ``factor``: Q_term × factor."""
    layers = params["params"]["VmapMLP_0"]
    last = max(layers, key=lambda n: int(n.split("_")[1]))
    out = jax.tree.map(lambda x: x, params)
    dense = out["params"]["VmapMLP_0"][last]
    dense["kernel"] = dense["kernel"].at[..., term].multiply(factor)
    dense["bias"] = dense["bias"].at[..., term].multiply(factor)
    return out


@pytest.mark.parametrize("normalization", ["per_term", "none"])
def test_per_term_normalization_makes_the_update_independent_of_a_term_scale(normalization):
    """Scale the ``push`` term by 1000 — its rewards and what its critic knows, so the critic is exactly as
    good: its statistics (per-term normalized critics output unit-free values) or its outputs (raw critics) —
    and take one update with a negligible fixed temperature: with per-term normalization the critics and the
    actor move exactly as before; without it the scaled term dominates the actor gradient."""
    spec = envs.make("push2d").spec
    push = spec.reward_names.index("push")
    config = sac.SACConfig(
        hidden_sizes=(32,),
        multi_critic=True,
        term_normalization=normalization,
        q_lr=1e-12 if normalization == "none" else 1e-3,
        autotune=False,
        init_alpha=1e-9,
        policy_lr=1e-3,
    )
    agent = sac.make_sac(config, spec)
    state = agent.init(jax.random.key(0)).replace(term_scale=_nontrivial_scale(4))
    batch = _batch(10, 2, (4,), n=64)
    scaled_batch = dict(batch, reward=batch["reward"].at[:, push].multiply(1000.0))
    ts = state.term_scale  # the statistics in the scaled units, in both cases
    scaled_state = state.replace(
        term_scale=ts.replace(mean=ts.mean.at[push].multiply(1e3), second=ts.second.at[push].multiply(1e6))
    )
    if normalization == "none":  # raw critics: their outputs in the scaled units too
        scaled_state = scaled_state.replace(
            critic=_scale_term(state.critic, push, 1000.0),
            target_critic=_scale_term(state.target_critic, push, 1000.0),
        )
    key = jax.random.key(3)
    new, m = jax.jit(agent.update)(state, batch, key)
    new_scaled, m_scaled = jax.jit(agent.update)(scaled_state, scaled_batch, key)
    np.testing.assert_allclose(m_scaled["q_scale/push"], 1000 * m["q_scale/push"], rtol=1e-3)
    if normalization == "per_term":  # the critics learn the same normalized values
        jax.tree.map(
            lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-6), new_scaled.critic, new.critic
        )
    step = jax.tree.map(lambda n, o: np.asarray(n - o), new.actor, state.actor)
    step_scaled = jax.tree.map(lambda n, o: np.asarray(n - o), new_scaled.actor, state.actor)
    flat = np.concatenate([x.ravel() for x in jax.tree.leaves(step)])
    flat_scaled = np.concatenate([x.ravel() for x in jax.tree.leaves(step_scaled)])
    cosine = flat @ flat_scaled / np.linalg.norm(flat) / np.linalg.norm(flat_scaled)
    if normalization == "per_term":
        assert cosine > 0.999, cosine
        np.testing.assert_allclose(flat_scaled, flat, atol=1e-5 * config.policy_lr * 1e3)
    else:
        assert cosine < 0.9, cosine  # the unnormalized learner follows the ×1000 term


def test_off_policy_per_term_metrics_and_separate_term_critics():
    env = envs.make("push2d")
    config = td3.TD3Config(
        hidden_sizes=(16,),
        multi_critic=True,
        separate_term_critics=True,
        learning_starts=0,
        batch_size=8,
        buffer_size=256,
        chunk_steps=10,
    )
    trainer = td3.make_trainer(config, env)
    state = trainer.init(config, jax.random.key(0))
    state, metrics = jax.jit(trainer.run_chunk)(config, state)
    for name in env.spec.reward_names:
        for metric in ("loss/critic", "q_scale", "q_mean"):
            assert np.isfinite(float(metrics[f"{metric}/{name}"])), (metric, name)
        assert float(metrics[f"q_scale/{name}"]) >= config.q_scale_floor * (1 - 1e-6)  # float32
    kernel = state.agent_state.critic["params"]["QEnsemble_0"]["VmapMLP_0"]["Dense_1"]["kernel"]
    assert kernel.shape[0] == 2 * 4 and kernel.shape[-1] == 1  # critics × terms separate single-output nets
    per_term = sum(float(metrics[f"loss/critic/{n}"]) for n in env.spec.reward_names)
    np.testing.assert_allclose(per_term, float(metrics["loss/critic"]), rtol=1e-4)


SMALL = dict(num_envs=4, num_steps=16, num_minibatches=2, update_epochs=2, iterations_per_chunk=1)


@pytest.mark.parametrize("normalization", ["per_term", "none"])
def test_ppo_per_term_normalization_makes_the_policy_update_independent_of_a_term_scale(normalization):
    """PPO analogue of the SAC test: scale one term's advantages by 1000 in a minibatch (with vf_coef = 0 the
    value loss plays no part): per-term normalization gives exactly the same policy update; without it the
    scaled term dominates the update."""
    spec = envs.make("push2d").spec
    push = spec.reward_names.index("push")
    config = ppo.continuous_config(hidden_sizes=(32,), multi_critic=True, vf_coef=0.0, max_grad_norm=1e6)
    agent = ppo.make_ppo(config.replace(term_normalization=normalization), spec)
    state = agent.init(jax.random.key(0))
    k = jax.random.split(jax.random.key(1), 4)
    n, terms = 64, len(spec.reward_names)
    obs = jax.random.normal(k[0], (n, 10))
    action, log_prob, value = jax.vmap(agent.sample, in_axes=(None, 0, 0))(
        state, obs, jax.random.split(k[1], n)
    )
    advantage = jax.random.normal(k[2], (n, terms))
    batch = dict(obs=obs, action=action, log_prob=log_prob + 0.01 * jax.random.normal(k[3], (n,)))
    batch |= dict(value=value, advantage=advantage, **{"return": value + advantage})
    scaled = dict(batch, advantage=advantage.at[:, push].multiply(1000.0))
    new, _ = jax.jit(agent.update)(state, batch, jax.random.key(2))
    new_scaled, _ = jax.jit(agent.update)(state, scaled, jax.random.key(2))
    step = np.concatenate(
        [np.ravel(a - b) for a, b in zip(jax.tree.leaves(new.params), jax.tree.leaves(state.params))]
    )
    step_scaled = np.concatenate(
        [np.ravel(a - b) for a, b in zip(jax.tree.leaves(new_scaled.params), jax.tree.leaves(state.params))]
    )
    if normalization == "per_term":
        np.testing.assert_allclose(step_scaled, step, atol=1e-7)
    else:
        cosine = step @ step_scaled / np.linalg.norm(step) / np.linalg.norm(step_scaled)
        assert cosine < 0.9, cosine


def test_ppo_per_term_reward_normalization_gives_every_critic_the_same_targets_whatever_a_term_units():
    """With multi_critic and normalize_reward, each term's rewards are divided by its own return std: training on
    push2d with the reach term in units ×10 gives (nearly) the same critic targets and policy, while the single
    critic's normalized sum changes (reach dominates it)."""
    results = {}
    for multi in (True, False):
        config = ppo.continuous_config(**SMALL, multi_critic=multi, normalize_reward=True)
        for scale in (1.0, 10.0):
            env = envs.make("push2d", reach_weight=scale)
            trainer = ppo.make_trainer(config, env)
            state, metrics = jax.jit(trainer.run_chunk)(config, trainer.init(config, jax.random.key(0)))
            results[multi, scale] = (state.agent_state.params["params"], state.return_stats)
    for multi in (True, False):
        (params_1, stats_1), (params_10, stats_10) = results[multi, 1.0], results[multi, 10.0]
        assert stats_1.var.shape == ((4,) if multi else (1,))
        policy = lambda p: [np.ravel(x) for k, v in p.items() if k != "MLP_1" for x in jax.tree.leaves(v)]  # noqa: E731
        actor, actor_10 = policy(params_1), policy(params_10)  # MLP_1 is the value network
        diff = max(float(np.max(np.abs(a - b))) for a, b in zip(actor, actor_10, strict=True))
        if multi:
            np.testing.assert_allclose(stats_10.var[0], 100 * stats_1.var[0], rtol=1e-3)
            np.testing.assert_allclose(stats_10.var[1:], stats_1.var[1:], rtol=1e-5)
            assert diff < 1e-4, diff
        else:
            assert diff > 1e-3, diff


def test_ppo_shared_reward_scale_gives_every_term_the_single_critics_scale():
    """reward_scale="shared": the terms are divided by the std of the weighted sum's return — the statistics
    the single critic keeps, from the same first rollout — so a multi-critic ablation can differ from the single
    critic in the value's parameterization only."""
    env = envs.make("push2d", reach_weight=10.0)
    stats = {}
    for name, changes in {
        "single": dict(multi_critic=False),
        "shared": dict(multi_critic=True, reward_scale="shared"),
        "per_term": dict(multi_critic=True),
    }.items():
        config = ppo.continuous_config(
            **SMALL, normalize_reward=True, reward_weights=(1.0, 1.0, 1.0, 0.1), **changes
        )
        trainer = ppo.make_trainer(config, env)
        state, _ = jax.jit(trainer.run_chunk)(config, trainer.init(config, jax.random.key(0)))
        stats[name] = state.return_stats
    assert stats["shared"].var.shape == (1,) and stats["per_term"].var.shape == (4,)
    np.testing.assert_allclose(stats["shared"].var, stats["single"].var, rtol=1e-5)
    np.testing.assert_allclose(stats["shared"].mean, stats["single"].mean, rtol=1e-5, atol=1e-6)
    assert not np.allclose(stats["per_term"].var[0], stats["single"].var[0], rtol=1e-2)


def test_ppo_term_normalization_none_is_exact_with_one_term_and_differs_with_several():
    cartpole = envs.make("cartpole")
    plain = ppo.PPOConfig(**SMALL)
    params = []
    for config in (plain, plain.replace(multi_critic=True, term_normalization="none")):
        trainer = ppo.make_trainer(config, cartpole)
        state, _ = jax.jit(trainer.run_chunk)(config, trainer.init(config, jax.random.key(0)))
        params.append(jax.tree.leaves(state.agent_state.params))
    for a, b in zip(*params, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    push2d = envs.make("push2d")
    base = ppo.continuous_config(**SMALL, multi_critic=True, reward_weights=(1.0, 100.0, 10.0, 1.0))
    out = []
    for normalization in ("per_term", "none"):
        config = base.replace(term_normalization=normalization)
        trainer = ppo.make_trainer(config, push2d)
        state, metrics = jax.jit(trainer.run_chunk)(config, trainer.init(config, jax.random.key(0)))
        out.append((jax.tree.leaves(state.agent_state.params), metrics))
    assert any(not np.allclose(a, b) for a, b in zip(out[0][0], out[1][0]))
    for name in push2d.spec.reward_names:
        assert np.isfinite(float(out[1][1][f"advantage_scale/{name}"]))


def test_iqm_and_bootstrap_against_hand_computed_values():
    assert iqm([1.0, 2.0, 3.0, 4.0, 100.0]) == 3.0  # ⌊5/4⌋ = 1 cut from each end: mean(2, 3, 4)
    assert iqm([10.0, 1.0, 3.0, 2.0]) == 2.5  # sorted 1 2 3 10, cut 1 each end: mean(2, 3)
    assert iqm([5.0, 1.0, 2.0]) == pytest.approx(8 / 3)  # ⌊3/4⌋ = 0: the plain mean
    assert iqm([1.0, np.nan, 3.0]) == 2.0
    np.testing.assert_allclose(iqm(np.array([[1.0, 9.0], [2.0, 8.0], [3.0, 7.0], [100.0, 0.0]])), [2.5, 7.5])
    assert bootstrap_ci([4.0] * 6) == (4.0, 4.0, 4.0)
    # mean of two runs {0, 1}: resampled means are 0, ½, 1 with probabilities ¼, ½, ¼ → the 95% interval is [0, 1]
    point, lo, hi = bootstrap_ci([0.0, 1.0], np.mean, resamples=4000)
    assert (point, lo, hi) == (0.5, 0.0, 1.0)
    # 90% interval of the mean of {0, 0, 0, 1}: P(mean = 0) = (3/4)^4 ≈ 0.32 > 5 %, P(mean ≥ 3/4) ≈ 0.05
    point, lo, hi = bootstrap_ci([0.0, 0.0, 0.0, 1.0], np.mean, confidence=0.9, resamples=20000)
    assert point == 0.25 and lo == 0.0 and hi in (0.5, 0.75)
    assert np.isnan(bootstrap_ci([np.nan, np.nan])[0])


@struct.dataclass
class CounterParams(EnvParams):
    max_episode_steps: int = 5


class Counter(Environment):
    """t = 0, 1, …: rewards (a, b) = (1, t); success only at t = 2; safety violations at t = 1 and t ≥ 3; the
    episode terminates at t = 3, one step before the 5-step horizon (what comes after must not count)."""

    params_cls = CounterParams

    @property
    def spec(self):
        return EnvSpec(
            id="counter",
            observation_space=Box.uniform(-100.0, 100.0, (1,)),
            action_space=Box.uniform(-1.0, 1.0, (1,)),
            reward_names=("a", "b"),
            max_episode_steps=5,
        )

    def _reset(self, key, params):
        return jnp.zeros(1), jnp.zeros((), jnp.int32)

    def _step(self, key, t, action, params):
        reward = reward_vector({"a": jnp.float32(1.0), "b": t.astype(jnp.float32)}, ("a", "b"))
        info = {"success": t == 2, "safety_violation": (t == 1) | (t >= 3)}
        return jnp.ones(1) * (t + 1), t + 1, reward, t >= 3, jnp.zeros((), bool), info


def test_evaluation_reports_per_term_returns_success_and_violations():
    env = TimeLimit(Counter())
    agent = sac.make_sac(sac.SACConfig(hidden_sizes=(4,)), env.spec)
    state = agent.init(jax.random.key(0))
    out = jax.jit(lambda s, k: evaluate_policy(env, agent, s, k, num_episodes=3))(state, jax.random.key(1))
    expected = {
        "eval_return": 4 + (0 + 1 + 2 + 3),
        "eval_return/a": 4.0,
        "eval_return/b": 6.0,
        "eval_success": 0.0,  # the last step (t = 3) is not a success
        "eval_success_any": 1.0,
        "eval_safety_violations": 2.0,
    }
    assert set(out) == set(expected)
    for name, value in expected.items():
        assert float(out[name]) == value, name
    # a scalar env without those info keys reports only the return
    pendulum = envs.make("pendulum")
    agent = sac.make_sac(sac.SACConfig(hidden_sizes=(4,)), pendulum.spec)
    out = evaluate_policy(pendulum, agent, agent.init(jax.random.key(0)), jax.random.key(1), num_episodes=2)
    assert set(out) == {"eval_return"}


def test_bad_input_names_the_env_reward_terms():
    pendulum, push2d = envs.make("pendulum"), envs.make("push2d")
    four = (1.0, 1.0, 1.0, 1.0)
    single = r"pendulum has a single scalar reward term \['reward'\]"
    with pytest.raises(ConfigError, match=single):
        sac.make_trainer(sac.SACConfig(multi_critic=True, reward_weights=four), pendulum)
    with pytest.raises(ConfigError, match=single):
        td3.make_trainer(td3.TD3Config(multi_critic=True, reward_weights=four), pendulum)
    with pytest.raises(ConfigError, match=single):
        ppo.make_trainer(ppo.continuous_config(multi_critic=True, reward_weights=four), pendulum)
    # push2d summed into a scalar, handed to a multi-critic learner that expects its four terms
    with pytest.raises(ConfigError, match=r"push2d has a single scalar reward term \['reward'\]"):
        sac.make_trainer(sac.SACConfig(multi_critic=True, reward_weights=four), SumReward(push2d))
    terms = r"push2d has reward terms \['reach', 'push', 'safety', 'control'\]"
    with pytest.raises(ConfigError, match=terms):
        td3.make_trainer(td3.TD3Config(multi_critic=True, reward_weights=(1.0, 2.0)), push2d)
    with pytest.raises(ConfigError, match=terms):
        weights_for(push2d.spec, {"reach": 1.0, "grasp": 2.0})
    assert weights_for(push2d.spec, {"push": 10.0}) == (1.0, 10.0, 1.0, 1.0)
    with pytest.raises(ConfigError, match="term_normalization = 'batch' is not allowed"):
        from rlkit.configs import validate

        validate(sac.SACConfig(term_normalization="batch"))
    # allowed: multi-critic on a one-term env without weights (it is the base learner exactly)
    sac.make_trainer(sac.SACConfig(multi_critic=True), pendulum)


def test_learning_curve_panels_grid(tmp_path):
    """The experiment's figure: panels in a grid of ``columns`` per row, unused cells hidden."""
    import matplotlib.image

    from rlkit.plots import plot_learning_curve_panels

    steps = np.arange(1, 6) * 100
    curves = {"a": (steps, np.random.default_rng(0).random((3, 5))), "b": (steps, np.ones((3, 5)))}
    path = plot_learning_curve_panels({f"panel {i}": curves for i in range(3)}, tmp_path / "f.png", columns=2)
    height, width, _ = matplotlib.image.imread(path).shape
    assert (width, height) == (2 * 6 * 120, 2 * 4 * 120)


def test_advantage_scale_is_the_running_std_of_each_terms_action_advantage():
    q_data = jax.random.normal(jax.random.key(0), (2, 256, 3)) * jnp.array([1.0, 10.0, 0.1])
    q_pi = jnp.zeros((2, 256, 3))
    scale, std = advantage_scale(TermScale.zeros(3), q_data, q_pi, 1.0, 1e-6)  # rate 1: this batch alone
    adv = np.asarray(q_data.mean(0))
    np.testing.assert_allclose(std, adv.std(0), rtol=1e-4)
    _, floored = advantage_scale(TermScale.zeros(3), q_data * 0, q_pi, 0.5, 0.25)
    np.testing.assert_allclose(floored, 0.25)


@pytest.mark.parametrize("module", [sac, td3], ids=["sac", "td3"])
def test_the_actor_divides_each_normalized_term_by_its_advantage_std(module):
    """The advantage-scaled actor and the value-normalized one optimize different objectives, and only the former
    reports a non-trivial ``adv_scale``; the critics' update is the same for both."""
    spec = envs.make("push2d").spec
    cls, make = (sac.SACConfig, sac.make_sac) if module is sac else (td3.TD3Config, td3.make_td3)
    batch = _batch(10, 2, (4,), n=64)
    out = {}
    for scale in ("advantage", "none"):
        every = {"policy_frequency": 1} if module is td3 else {}  # TD3: an actor step in this update
        config = cls(hidden_sizes=(16,), multi_critic=True, actor_term_scale=scale, **every)
        agent = make(config, spec)
        state = agent.init(jax.random.key(0)).replace(term_scale=_nontrivial_scale(4))
        out[scale] = jax.jit(agent.update)(state, batch, jax.random.key(3))
    (adv_state, adv_m), (none_state, none_m) = out["advantage"], out["none"]
    jax.tree.map(np.testing.assert_array_equal, adv_state.critic, none_state.critic)
    # the objective differs (Adam's first step, ±lr per parameter, may not show it in the parameters)
    assert not np.isclose(float(adv_m["loss/actor"]), float(none_m["loss/actor"]), rtol=1e-3)
    assert all(float(none_m[f"adv_scale/{n}"]) == 1.0 for n in spec.reward_names)
    assert all(float(adv_m[f"adv_scale/{n}"]) != 1.0 for n in spec.reward_names)


@pytest.mark.parametrize("module", [sac, td3], ids=["sac", "td3"])
def test_popart_keeps_the_target_critics_outputs_in_reward_units_while_the_statistics_move(module):
    """With τ = 0 the target critics change only by PopArt's output-preserving rescale: read with the new
    statistics they give the old raw values (and the statistics did move)."""
    spec = envs.make("push2d").spec
    cls, make = (sac.SACConfig, sac.make_sac) if module is sac else (td3.TD3Config, td3.make_td3)
    config = cls(hidden_sizes=(16,), multi_critic=True, tau=0.0)
    agent = make(config, spec)
    state = agent.init(jax.random.key(0)).replace(term_scale=_nontrivial_scale(4))
    batch = _batch(10, 2, (4,), n=64)
    new, _ = jax.jit(agent.update)(state, batch, jax.random.key(3))
    net = term_critics((16,), 2, 4, False, False)
    args = (config.q_scale_rate, config.q_scale_floor)
    (mu, sigma), (new_mu, new_sigma) = state.term_scale.stats(*args), new.term_scale.stats(*args)
    assert not np.allclose(sigma, new_sigma)
    before = net.apply(state.target_critic, batch["obs"], batch["action"]) * sigma + mu
    after = net.apply(new.target_critic, batch["obs"], batch["action"]) * new_sigma + new_mu
    np.testing.assert_allclose(after, before, rtol=1e-4, atol=1e-5)
