"""The Gymnasium host loop: runs axis (seeds × swept values together), PPO on the host, evaluation with episode
quotas, warm-up without updates, exact resume through env snapshots, and fresh-episode resume boundaries."""

from __future__ import annotations

import gymnasium as gym
import jax
import numpy as np
import pytest

import envs
from agents import ppo, sac
from envs.gymnasium_bridge import GymnasiumVectorEnv
from rlkit.host_loop import evaluate_host, train_host
from rlkit.logger import read_jsonl
from rlkit.sweeps import make_runs

TINY = dict(hidden_sizes=(16, 16), learning_starts=100, buffer_size=2000, chunk_steps=100, batch_size=32)


def pendulum(n):
    return envs.make("gymnasium:Pendulum-v1", num_envs=n)


def leaves(tree):
    return [np.asarray(x) for x in jax.tree.leaves(jax.tree.map(_key_data, tree))]


def _key_data(x):
    return jax.random.key_data(x) if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key) else x


def test_a_swept_run_equals_the_same_run_trained_alone():
    """The runs axis applies each swept value: run k of a sweep is the run one would get with that value alone."""
    config = sac.SACConfig(**TINY)
    swept = train_host(
        sac.make_sac,
        make_runs(config, seeds=1, sweep={"q_lr": [1e-3, 3e-4]}),
        pendulum,
        total_steps=300,
        console=False,
    )
    alone = train_host(
        sac.make_sac, make_runs(config.replace(q_lr=3e-4), seeds=1), pendulum, total_steps=300, console=False
    )
    run1 = jax.tree.map(lambda x: x[1], swept.state.agent_state)
    run0 = jax.tree.map(lambda x: x[0], swept.state.agent_state)
    for a, b in zip(leaves(run1), leaves(jax.tree.map(lambda x: x[0], alone.state.agent_state))):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    # and the two swept values really trained differently
    assert max(np.abs(a - b).max() for a, b in zip(leaves(run0), leaves(run1))) > 1e-3


def test_warm_up_steps_never_build_the_update():
    """Before learning_starts the host calls a function without the update (a Python branch, not a select)."""
    traced = []

    def make_agent(cfg, spec):
        agent = sac.make_sac(cfg, spec)

        def update(state, batch, key):
            traced.append(1)  # runs at trace time only
            return agent.update(state, batch, key)

        return agent.__class__(agent.name, agent.config, agent.init, agent.act, update)

    config = sac.SACConfig(**(TINY | {"learning_starts": 10_000}))
    result = train_host(make_agent, make_runs(config, seeds=2), pendulum, total_steps=200, console=False)
    assert not traced
    assert np.all(np.asarray(result.state.agent_state.updates) == 0)
    assert np.isnan(result.metrics.get("loss/critic", np.full(2, np.nan))).all()
    train_host(
        make_agent, make_runs(config.replace(learning_starts=100), seeds=2), pendulum, total_steps=200,
        console=False,
    )  # fmt: skip
    assert traced  # the same counter sees the update once learning starts


@pytest.mark.slow
def test_ppo_learns_cartpole_through_the_host_loop():
    config = ppo.PPOConfig(num_envs=4, num_steps=128, iterations_per_chunk=4, anneal_steps=40_960)
    result = train_host(
        ppo.make_ppo,
        make_runs(config, seeds=2),
        lambda n: envs.make("gymnasium:CartPole-v1", num_envs=n),
        total_steps=40_960,
        eval_every=5,
        console=False,
    )
    assert result.metrics["eval_return"].shape == (2,)
    assert result.metrics["eval_return"].min() >= 150, result.metrics["eval_return"]
    assert len(result.history) == 20 and "eval_return" in result.history[4]


@pytest.mark.parametrize("learner", ["sac", "ppo", "ppo-skills"])
def test_killed_host_run_resumes_bit_exactly(tmp_path, learner):
    """Pendulum's state pickles, so the env snapshot makes a resumed run identical to an uninterrupted one
    (``ppo-skills``: PPO × DIAYN's discriminator term × a categorical skill resampled every 7 steps, held by the
    host loop)."""
    composition = {}
    if learner == "sac":
        make_agent, config = sac.make_sac, sac.SACConfig(**TINY)
    else:
        make_agent = ppo.make_ppo
        config = ppo.continuous_config(num_envs=2, num_steps=25, num_minibatches=2, iterations_per_chunk=2)
    if learner == "ppo-skills":
        from agents.skills import diayn
        from rlkit.rewards import with_reward_terms

        term_config = diayn.DIAYNConfig(num_skills=3, disc_hidden_sizes=(8,))
        make_agent = with_reward_terms(
            ppo.make_ppo, lambda c, s: [diayn.discriminator(term_config, s)], env_reward=False
        )
        composition = dict(prior=diayn.prior(term_config), resample_every=7, extras=("z",))
    runs = make_runs(config, seeds=2)
    kw = dict(total_steps=400, checkpoint_every=1, eval_every=2, console=False) | composition
    full = train_host(make_agent, runs, pendulum, log_dir=tmp_path / "full", **kw)

    def kill_after_two(c, _):
        if c == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_host(make_agent, runs, pendulum, log_dir=tmp_path / "cut", on_chunk=kill_after_two, **kw)
    assert (tmp_path / "cut" / "host_envs").exists()
    resumed = train_host(make_agent, runs, pendulum, log_dir=tmp_path / "cut", resume=True, **kw)
    for a, b in zip(leaves(full.state), leaves(resumed.state)):
        np.testing.assert_array_equal(a, b)

    def rows(d, name):
        return [
            {k: v for k, v in r.items() if k != "wall_time"}
            for r in read_jsonl(tmp_path / d / name / "metrics.jsonl")
        ]

    for name in runs.names:
        assert rows("full", name) == rows("cut", name)


def test_resume_without_snapshot_starts_fresh_episodes_and_cuts_the_buffer(tmp_path):
    config = sac.SACConfig(**TINY)
    runs = make_runs(config, seeds=1)
    kw = dict(total_steps=300, checkpoint_every=1, console=False, log_dir=tmp_path)

    def stop(c, _):
        if c == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_host(sac.make_sac, runs, pendulum, on_chunk=stop, **kw)
    for snap in (tmp_path / "host_envs").glob("*.pkl"):
        snap.unlink()  # as for an env that cannot be pickled
    result = train_host(sac.make_sac, runs, pendulum, resume=True, **kw)
    data = jax.tree.map(lambda x: np.asarray(x)[0], result.state.buffer_state.data)
    # row 99 was the newest row at the checkpoint, mid-episode (Pendulum truncates at 200): it is now cut
    assert data["truncated"][99, 0] and not data["truncated"][:99].any()
    ids = np.asarray(result.state.buffer_state.episode_id)[0, :, 0]
    assert ids[99] == 0 and ids[100] == 1


class _FixedLength(gym.Env):
    """Episodes of a fixed length per copy, 1 for even copies and 10 for odd ones, reward 1 per step."""

    made = 0
    observation_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def __init__(self):
        self.length = 1 if _FixedLength.made % 2 == 0 else 10
        _FixedLength.made += 1

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(1, np.float32), {}

    def step(self, action):
        self.t += 1
        return np.zeros(1, np.float32), 1.0, self.t >= self.length, False, {}


def test_host_evaluation_spreads_episodes_over_envs_by_quota():
    """Keeping the first episodes to finish favours short ones; per-env quotas do not (SB3's rule)."""
    _FixedLength.made = 0
    spec_env = GymnasiumVectorEnv(_FixedLength, num_envs=4)
    agent = sac.make_sac(sac.SACConfig(hidden_sizes=(8,)), spec_env.spec)
    state = agent.init(jax.random.key(0))
    with spec_env:
        out = evaluate_host(agent, state, spec_env, episodes=8)
    assert out["eval_return"] == pytest.approx(5.5)  # 2 episodes from each of 1, 10, 1, 10 steps


class _ConstructorPickled(_FixedLength, gym.utils.EzPickle):
    """Pickles like Gymnasium's MuJoCo envs: by constructor arguments, so unpickling gives a fresh env."""

    def __init__(self):
        _FixedLength.__init__(self)
        gym.utils.EzPickle.__init__(self)


def test_envs_that_pickle_by_constructor_are_not_snapshotted():
    """A snapshot of an EzPickle env would silently restart its episodes on resume: the bridge refuses it."""
    with GymnasiumVectorEnv(_ConstructorPickled, num_envs=2) as env:
        env.reset(seed=0)
        blob, why = env.snapshot()
    assert blob is None and "EzPickle" in why and "_ConstructorPickled" in why
    with GymnasiumVectorEnv("Pendulum-v1", num_envs=2) as env:
        env.reset(seed=0)
        assert env.snapshot()[0] is not None
