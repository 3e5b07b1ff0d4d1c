"""Replay sampling schemes wired into the buffer, the data sources and the loops: random reshuffling (RR-C),
prioritized replay (PER) and RR-M as the ``sampling`` of every off-policy learner (the samplers' own laws are
tested in test_buffers_sampling.py)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
from agents import dqn, sac
from rlkit import data_sources
from rlkit.buffers import make_replay_buffer
from rlkit.configs import ConfigError
from rlkit.host_loop import train_host
from rlkit.off_policy import example_transition
from rlkit.sweeps import make_runs
from rlkit.training import train
from tests.helpers.trees import assert_leaves_equal

SPEC = envs.make("cartpole").spec
TINY = dict(hidden_sizes=(8,), chunk_steps=50, learning_starts=60, buffer_size=200, batch_size=16)
TINY |= dict(train_frequency=1, target_network_frequency=50)


def _filled(sampling, n=64, num_envs=2):
    buffer = make_replay_buffer(example_transition(SPEC), capacity=n, num_envs=num_envs, sampling=sampling)
    state = buffer.init()
    for t in range(n // num_envs):  # obs[0] holds the item's own index, so a batch says which items it holds
        item = {k: jnp.zeros((num_envs, *v.shape), v.dtype) for k, v in example_transition(SPEC).items()}
        item["obs"] = item["obs"].at[:, 0].set(t * num_envs + jnp.arange(num_envs, dtype=jnp.float32))
        state = buffer.add(state, item)
    return buffer, state


def test_one_rr_epoch_on_a_full_buffer_draws_every_item_exactly_once():
    buffer, state = _filled("rr")
    draw = jax.jit(lambda s, k: buffer.draw(s, k, 16))
    seen = []
    for i in range(4):  # 64 items, batches of 16
        state, batch, slots, weights = draw(state, jax.random.key(i))
        seen += np.asarray(batch["obs"][:, 0]).astype(int).tolist()
        np.testing.assert_array_equal(weights, 1.0)
    assert sorted(seen) == list(range(64))
    uniform, ustate = _filled("uniform")
    seen = [np.asarray(uniform.draw(ustate, jax.random.key(i), 16)[1]["obs"][:, 0]) for i in range(4)]
    assert len(set(np.concatenate(seen).astype(int))) < 64  # with replacement: repeats (fixed seeds)


def test_per_batches_carry_slots_and_weights_and_priorities_steer_the_draws():
    buffer, state = _filled("per")
    state, batch, slots, weights = buffer.draw(state, jax.random.key(0), 16)
    np.testing.assert_array_equal(batch["obs"][:, 0], slots)  # slot = row·E + env = the item's index here
    # give one slot nearly all the priority: it is then drawn almost always
    hot = jnp.arange(64) == 5
    state = buffer.update_priorities(state, jnp.arange(64), jnp.where(hot, 20.0, 1e-2), alpha=1.0)
    _, batch, _, weights = buffer.draw(state, jax.random.key(1), 256)
    assert np.mean(np.asarray(batch["obs"][:, 0]) == 5) > 0.9
    assert float(weights.max()) == pytest.approx(1.0) and float(weights.min()) < 1.0


def test_dqn_with_rr_resumes_bit_exactly_and_warm_up_draws_leave_no_trace(tmp_path):
    config = dqn.DQNConfig(**TINY, sampling="rr")
    trainer = dqn.make_trainer(config, envs.make("cartpole"))
    runs = make_runs(config, seeds=2)
    first = train(trainer, runs, total_steps=50, console=False)  # all warm-up: nothing drawn for good
    s = first.state.buffer_state.sampler  # nothing drawn: every written slot is still to come in epoch 0
    np.testing.assert_array_equal(s.epoch, 0)
    np.testing.assert_array_equal(s.left, s.written)
    np.testing.assert_array_equal(s.flags, 0)
    assert (np.asarray(s.written) > 0).all()
    ref = train(trainer, runs, total_steps=150, log_dir=tmp_path / "ref", checkpoint_every=1, console=False)
    s = ref.state.buffer_state.sampler
    assert (
        (np.asarray(s.left) < np.asarray(s.written)) | (np.asarray(s.epoch) > 0)
    ).all()  # epochs under way
    train(trainer, runs, total_steps=100, log_dir=tmp_path / "cut", checkpoint_every=1, console=False)
    resumed = train(
        trainer,
        runs,
        total_steps=150,
        log_dir=tmp_path / "cut",
        checkpoint_every=1,
        console=False,
        resume=True,
    )
    assert_leaves_equal(ref.state, resumed.state)


@pytest.mark.parametrize("sampling", ["per", "rr-m"])
def test_dqn_reports_td_errors_that_become_the_drawn_rows_priorities(sampling):
    config = dqn.DQNConfig(**TINY, sampling=sampling, priority_alpha=1.0)
    result = train(
        dqn.make_trainer(config, envs.make("cartpole")),
        make_runs(config, seeds=1),
        total_steps=150,
        console=False,
    )
    tree = np.asarray(result.state.buffer_state.sampler.priorities[0])
    leaves = tree[len(tree) // 2 :][:150]  # the 150 written slots (of 200)
    assert "priority" not in result.metrics  # a per-row array, never logged as a metric
    assert (leaves > 0).all() and len(np.unique(leaves)) > 50  # TD errors replaced the initial max priority
    np.testing.assert_allclose(tree[1], leaves.sum(), rtol=1e-4)  # the root is the sum of the leaves
    host = train_host(
        dqn.make_dqn, make_runs(config, seeds=1), lambda n: envs.make("gymnasium:CartPole-v1", num_envs=n),
        total_steps=150, console=False,
    )  # fmt: skip
    host_leaves = np.asarray(host.state.buffer_state.sampler.priorities[0])
    assert len(np.unique(host_leaves)) > 50


def test_bad_sampling_settings_are_refused_in_one_line():
    with pytest.raises(ConfigError, match=r"sampling='per' needs per-row TD errors from the learner and sac"):
        config = sac.SACConfig(hidden_sizes=(8,), learning_starts=10, chunk_steps=20, sampling="per")
        train(
            sac.make_trainer(config, envs.make("pendulum")),
            make_runs(config, seeds=1),
            total_steps=20,
            console=False,
        )
    with pytest.raises(
        ConfigError, match=r"priority_alpha=0.9 set, but sampling='uniform' draws no priorities"
    ):
        dqn.make_trainer(dqn.DQNConfig(**TINY, priority_alpha=0.9), envs.make("cartpole"))
    buffer = make_replay_buffer(example_transition(SPEC), capacity=8, sampling="rr")
    with pytest.raises(ConfigError, match=r"sampling='rr' inside a mixture of sources is not supported"):
        data_sources.mixture([data_sources.online(), data_sources.online()], 0.5)(buffer)
    with pytest.raises(
        ConfigError, match=r"sampling='rr' draws batches without replacement, so buffer_size = 8"
    ):
        dqn.make_trainer(dqn.DQNConfig(**(TINY | dict(buffer_size=8)), sampling="rr"), envs.make("cartpole"))
    with pytest.raises(ValueError, match=r"unknown sampler mode 'prio'"):
        make_replay_buffer(example_transition(SPEC), capacity=8, sampling="prio")
