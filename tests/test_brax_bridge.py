"""On-device MuJoCo through ``envs.brax_bridge`` (issue 15): Brax's envs behind the env protocol — spaces,
termination apart from the time limit, vmap and scan — and SAC and PPO learning on ``brax:inverted_pendulum`` at a
tiny budget on CPU (return rises, loss falls); unknown ids and missing extras in one line."""

from __future__ import annotations

import importlib.util

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
from envs.registry import UnknownEnvError

pytest.importorskip("brax", reason='the brax extra (pip install -e ".[brax]"; the dev extra has it)')
ENV = "brax:inverted_pendulum"


def test_a_brax_env_behind_the_protocol():
    env = envs.make(ENV, max_episode_steps=30)
    spec = env.spec
    assert spec.id == ENV and spec.observation_space.shape == (4,) and spec.action_space.shape == (1,)
    assert float(spec.action_space.low[0]) == -1.0 and spec.max_episode_steps == 30
    keys = jax.random.split(jax.random.key(0), 4)
    obs, state = jax.vmap(env.reset)(keys)
    assert obs.shape == (4, 4)

    def run(env, action):
        _, state = jax.vmap(env.reset)(keys)

        def step(s, k):
            o, s, r, term, trunc, _ = jax.vmap(env.step)(jax.random.split(k, 4), s, jnp.full((4, 1), action))
            return s, (r, term, trunc)

        return jax.lax.scan(step, state, jax.random.split(jax.random.key(1), 40))[1]

    rewards, terminated, truncated = jax.jit(lambda a: run(env, a))(1.0)  # full force: the pole falls
    first_end = np.argmax(np.asarray(terminated), axis=0)
    assert np.all(np.asarray(terminated).any(axis=0)) and np.all(first_end < 30)  # it falls before the limit
    assert not np.asarray(truncated)[: first_end.min() + 1].any()  # a fall is a termination, not a truncation
    assert np.all(np.asarray(rewards)[0] == 1.0)
    short = envs.make(ENV, max_episode_steps=3)
    _, terminated, truncated = jax.jit(lambda a: run(short, a))(0.0)  # upright for 3 steps: the time limit
    assert np.asarray(truncated)[2].all() and not np.asarray(truncated)[:2].any()
    assert not np.asarray(terminated)[:3].any()


def test_ppo_and_sac_learn_on_it_at_a_tiny_budget():
    from agents import ppo, sac
    from rlkit.sweeps import make_runs
    from rlkit.training import train

    env = envs.make(ENV, max_episode_steps=200)
    config = ppo.continuous_config(hidden_sizes=(32, 32), num_envs=16, num_steps=64, num_minibatches=4,
                                   update_epochs=4, iterations_per_chunk=4, anneal_steps=20_480)  # fmt: skip
    history = train(ppo.make_trainer(config, env), make_runs(config, seeds=2), total_steps=20_480,
                    console=False).history  # fmt: skip
    first, last = history[0], history[-1]
    assert np.all(np.asarray(last["episode_return"]) > 2 * np.asarray(first["episode_return"])), (first, last)
    assert np.all(np.asarray(last["loss/value"]) < 0.5 * np.asarray(first["loss/value"]))

    config = sac.SACConfig(hidden_sizes=(32, 32), batch_size=128, buffer_size=20_000, learning_starts=500,
                           chunk_steps=500)  # fmt: skip
    history = train(sac.make_trainer(config, env), make_runs(config, seeds=2), total_steps=3_000,
                    console=False).history  # fmt: skip
    returns = np.stack([np.asarray(h["episode_return"]) for h in history])  # [chunks, seeds]
    critic = np.stack([np.asarray(h["loss/critic"]) for h in history])
    assert np.all(returns[-1] > 3 * returns[0]), returns  # random: ~6 steps upright
    assert np.all(critic[1] < critic[0]), critic  # the first updates fit the critic


def test_unknown_ids_and_missing_extras_are_one_line():
    with pytest.raises(
        UnknownEnvError, match=r"unknown env id 'brax:antt'\. Did you mean 'brax:ant'\?"
    ) as info:
        envs.make("brax:antt")
    assert "\n" not in str(info.value)
    if importlib.util.find_spec("mujoco_playground") is None:
        with pytest.raises(UnknownEnvError, match=r'pip install "rlkit\[playground\]"'):
            envs.make("playground:CartpoleBalance")
    from experiments.train import parse_args

    args, config = parse_args(["--agent", "ppo", "--env", ENV, "--total-steps", "1000"])
    assert args.env == ENV and config.normalize_obs  # a Box env: PPO's continuous defaults
