"""An agent acts the same wherever it is loaded: PPO's ``act`` clips to a bounded action box itself, so an exported
agent scores in ``rlkit eval`` what it scored in training-time evaluation, while the rollout's ``sample`` keeps the
unclipped Gaussian sample and its log-prob (CleanRL)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
from agents import ppo
from rlkit.distributions import gaussian_log_prob
from rlkit.evaluation import evaluate_policy
from rlkit.export import export_agent, load_agent
from rlkit.on_policy import NORMALIZE_CLIP
from rlkit.rollout import wrap_for_rollout

CONFIG = ppo.PPOConfig(hidden_sizes=(8,), num_steps=8, num_minibatches=1, normalize_obs=True)


def push_mean(agent_state, bias: float, log_std: float | None = None):
    """``agent_state`` with the Gaussian mean head's bias set to ``bias`` (the mean is ≈ bias everywhere)."""
    params = jax.tree.map(lambda x: x, agent_state.params)  # new dicts, same leaves
    params["params"]["MLP_0"]["Dense_1"]["bias"] = jnp.full((1,), bias)
    if log_std is not None:
        params["params"]["log_std"] = jnp.full((1,), log_std)
    return agent_state.replace(params=params)


def test_exported_ppo_agent_evaluates_like_the_trainer_with_a_mean_outside_the_box(tmp_path):
    env = envs.make("mountain-car-continuous")
    trainer = ppo.make_trainer(CONFIG, env)
    state = trainer.init(CONFIG, jax.random.key(0))
    state = state.replace(agent_state=push_mean(state.agent_state, 3.0))  # the box is [-1, 1]
    key = jax.random.key(1)
    in_training = jax.jit(trainer.evaluate)(CONFIG, state, key)
    path = export_agent(
        tmp_path / "mcc.rlkit",
        "ppo",
        CONFIG,
        state.agent_state,
        env.spec,
        obs_stats=state.obs_stats,
        obs_clip=NORMALIZE_CLIP,
    )
    agent, loaded = load_agent(path, env.spec)
    for eval_env in (wrap_for_rollout(env), env):  # as `rlkit eval` runs it, and on the bare time-limited env
        out = jax.jit(lambda s, k, e=eval_env: evaluate_policy(e, agent, s, k))(loaded, key)
        assert float(out["eval_return"]) == pytest.approx(float(in_training["eval_return"]), rel=1e-6)
    # full throttle costs 0.1 per step for 999 steps; an unclipped 3.0 would cost 0.9
    assert float(in_training["eval_return"]) == pytest.approx(-99.9, abs=0.1)


def test_ppo_act_stays_in_the_box_and_sample_keeps_the_raw_draw():
    env = envs.make("mountain-car-continuous")
    space = env.spec.action_space
    agent = ppo.make_ppo(CONFIG, env.spec)
    state = push_mean(agent.init(jax.random.key(0)), 3.0, log_std=1.5)
    obs = jnp.zeros((512, 2))
    keys = jax.random.split(jax.random.key(2), 512)
    for mode in ("explore", "deterministic"):
        a = np.asarray(jax.vmap(agent.act, in_axes=(None, 0, 0, None))(state, obs, keys, mode))
        assert np.all((a >= space.low) & (a <= space.high)), mode
    assert np.all(a == space.high)  # deterministic: the mean ≈ 3, clipped
    action, log_prob, _ = jax.vmap(agent.sample, in_axes=(None, 0, 0))(state, obs, keys)
    assert np.any(np.asarray(action) > space.high) and np.any(np.asarray(action) < space.low)
    pi, log_std, _ = ppo.ActorCritic((8,), "tanh", 1, 1, True, False).apply(state.params, obs)  # CONFIG's net
    np.testing.assert_allclose(log_prob, gaussian_log_prob(action, pi, log_std), rtol=1e-6)
    explored = jax.vmap(agent.act, in_axes=(None, 0, 0, None))(state, obs, keys, "explore")
    np.testing.assert_array_equal(explored, jnp.clip(action, space.low, space.high))  # the same draw, clipped
