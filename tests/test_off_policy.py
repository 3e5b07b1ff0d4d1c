"""SAC and TD3 through the on-device loop and the Gymnasium host loop: learning thresholds on Pendulum (several
seeds vmapped in one program), the replay plumbing at truncations, exact reductions, and config errors.

Learning tests use 64×64 networks (rl-baselines3-zoo's −157 ± 89 at 20k uses 256×256) so that four seeds fit the
CI budget on 2 CPU cores; the thresholds are the issue's: mean final return ≥ −200 within 20k env steps."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
from agents import sac, td3
from rlkit.configs import ConfigError
from rlkit.host_loop import train_host
from rlkit.sweeps import make_runs
from rlkit.training import train

SMALL = {"hidden_sizes": (64, 64), "learning_starts": 1000, "buffer_size": 20_000, "chunk_steps": 1000}


def final_eval(result):
    return np.asarray(result.history[-1]["eval_return"])


@pytest.mark.slow
def test_sac_learns_pendulum_in_20k_steps():
    config = sac.SACConfig(**SMALL)
    result = train(
        sac.make_trainer(config, envs.make("pendulum")),
        make_runs(config, seeds=4),
        total_steps=20_000,
        eval_every=20,
    )
    returns = final_eval(result)
    assert returns.shape == (4,) and len(set(returns.tolist())) == 4  # four different runs
    assert returns.mean() >= -200, returns
    assert result.compiles == 1


@pytest.mark.slow
def test_td3_learns_pendulum_in_20k_steps():
    # rl-baselines3-zoo's TD3 Pendulum-v1 settings: lr 1e-3, gamma 0.98
    config = td3.TD3Config(**SMALL, learning_rate=1e-3, gamma=0.98)
    result = train(
        td3.make_trainer(config, envs.make("pendulum")),
        make_runs(config, seeds=2),  # SAC's test checks four seeds; two keep the suite within its budget
        total_steps=20_000,
        eval_every=20,
    )
    assert final_eval(result).mean() >= -200, final_eval(result)


@pytest.mark.slow
def test_sac_host_loop_learns_gymnasium_pendulum():
    # 2 seeds step together: one vector env of 2 sub-envs, act and update vmapped over the runs
    config = sac.SACConfig(**SMALL)
    result = train_host(
        sac.make_sac,
        make_runs(config, seeds=2),
        lambda n: envs.make("gymnasium:Pendulum-v1", num_envs=n),
        total_steps=20_000,
        eval_every=20,
        console=False,
    )
    assert result.metrics["eval_return"].shape == (2,)
    assert result.metrics["eval_return"].mean() >= -200, result.metrics["eval_return"]


def test_truncation_is_stored_with_the_pre_reset_observation():
    config = sac.SACConfig(
        hidden_sizes=(8,), learning_starts=10_000, buffer_size=1000, chunk_steps=250, num_envs=2
    )
    trainer = sac.make_trainer(config, envs.make("pendulum"))
    state = trainer.init(config, jax.random.key(0))
    state, _ = jax.jit(trainer.run_chunk)(config, state)
    data = jax.tree.map(np.asarray, state.buffer_state.data)
    # pendulum truncates at 200 steps: row 199 (time-major rows, 2 envs) holds the last step of episode 1
    assert data["truncated"][199].all() and not data["truncated"][:199].any() and not data["terminated"].any()
    # its next_obs is the true last observation (continuous with obs), not the reset observation of row 200
    cos_sin_next, cos_sin_reset = data["next_obs"][199, :, :2], data["obs"][200, :, :2]
    assert np.allclose(np.linalg.norm(cos_sin_next, axis=-1), 1.0, atol=1e-5)
    assert not np.allclose(cos_sin_next, cos_sin_reset)
    np.testing.assert_array_equal(data["next_obs"][:199], data["obs"][1:200])


def test_multi_critic_with_one_term_is_exactly_sac():
    spec = envs.make("pendulum").spec
    base, multi = sac.SACConfig(hidden_sizes=(16,)), sac.SACConfig(hidden_sizes=(16,), multi_critic=True)
    a, b = sac.make_sac(base, spec), sac.make_sac(multi, spec)
    state_a, state_b = a.init(jax.random.key(0)), b.init(jax.random.key(0))
    k = jax.random.split(jax.random.key(1), 5)
    batch = {
        "obs": jax.random.normal(k[0], (32, 3)),
        "action": jax.random.uniform(k[1], (32, 1), minval=-2, maxval=2),
        "reward": jax.random.normal(k[2], (32,)),
        "next_obs": jax.random.normal(k[3], (32, 3)),
        "terminated": jnp.arange(32) % 7 == 0,
        "truncated": jnp.arange(32) % 5 == 0,
    }
    for _ in range(3):
        state_a, ma = a.update(state_a, batch, k[4])
        state_b, mb = b.update(state_b, batch, k[4])
    jax.tree.map(lambda x, y: np.testing.assert_array_equal(np.asarray(x), np.asarray(y)), state_a, state_b)


def test_vector_reward_multi_critic_shapes_and_weights():
    env = envs.make("push2d")
    config = sac.SACConfig(
        hidden_sizes=(16,),
        multi_critic=True,
        learning_starts=0,
        batch_size=8,
        buffer_size=512,
        chunk_steps=20,
        reward_weights=(1.0, 10.0, 1.0, 0.1),
    )
    trainer = sac.make_trainer(config, env)
    state = trainer.init(config, jax.random.key(0))
    state, metrics = jax.jit(trainer.run_chunk)(config, state)
    q = state.agent_state.critic["params"]["VmapMLP_0"]["Dense_1"]["kernel"]
    assert q.shape[-1] == 4 and np.isfinite(float(metrics["loss/critic"]))


def test_config_errors_name_the_problem():
    with pytest.raises(ConfigError, match="SAC needs a bounded continuous .*cartpole.*Discrete\\(2\\)"):
        sac.make_trainer(sac.SACConfig(), envs.make("cartpole"))
    with pytest.raises(ConfigError, match="reward_weights has 2 entries; push2d has reward terms"):
        sac.make_trainer(sac.SACConfig(reward_weights=(1.0, 2.0)), envs.make("push2d"))
    with pytest.raises(ConfigError, match="TD3 needs a bounded continuous"):
        td3.make_trainer(td3.TD3Config(), envs.make("cartpole"))
    with pytest.raises(ConfigError, match="num_min_critics = 3 > num_critics = 2"):
        sac.make_trainer(sac.SACConfig(num_min_critics=3), envs.make("pendulum"))
