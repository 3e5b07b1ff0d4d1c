"""Skill discovery learns: METRA's and LSD's 48 deterministic skills cover more of point-room than the same
agents untrained (one-sided permutation test over 4 vmapped seeds, p < 0.05, plus a minimum gain)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
from rlkit import conditioning, registry
from rlkit.evaluation import conditioned_trajectories
from rlkit.sweeps import make_runs
from rlkit.training import train
from tests.helpers.experts import permutation_p

SIZES = dict(hidden_sizes=(64, 64), phi_hidden_sizes=(64, 64), num_envs=8, chunk_steps=250, learning_starts=2000,
             buffer_size=40_000, batch_size=128)  # fmt: skip


def _coverage(agent, state, env, zs) -> int:
    def act(obs, z, k):
        return agent.act(state, jnp.concatenate([obs, z]), k, "deterministic")

    xy = conditioned_trajectories(env, act, lambda i, obs: zs[i], len(zs), jax.random.key(1))
    return len(np.unique(np.floor(np.asarray(xy).reshape(-1, 2)).astype(np.int64), axis=0))


@pytest.mark.parametrize("name", ["metra", "lsd"])
def test_skills_cover_more_of_the_room_than_the_untrained_agent(name):
    entry = registry.get(name)
    config = entry.config_cls(**SIZES, **({"phi_lr": 1e-4} if name == "lsd" else {}))
    env = envs.make("point-room")
    result = train(
        entry.make_trainer(config, env), make_runs(config, seeds=4), total_steps=24_000, console=False
    )
    prior = entry.condition(config)[0]
    agent = entry.make_agent(config, conditioning.Conditioned(env, prior).spec)
    zs = jax.vmap(prior.sample)(jax.random.split(jax.random.key(7), 48))
    after = np.array([_coverage(agent, jax.tree.map(lambda x, s=s: x[s], result.state.agent_state), env, zs)
                      for s in range(4)])  # fmt: skip
    before = np.array([_coverage(agent, agent.init(jax.random.key(100 + s)), env, zs) for s in range(4)])
    assert permutation_p(after, before) < 0.05 and after.mean() > before.mean() + 40, (after, before)
