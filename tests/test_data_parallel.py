"""One run over several devices (``train(devices_per_run=k)``, ``rlkit.devices``): N devices against 1."""

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import envs
from agents import ppo, sac
from rlkit.configs import ConfigError
from rlkit.sweeps import make_runs
from rlkit.training import train

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def four_devices(tmp_path_factory):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.helpers.data_parallel_check",
            str(tmp_path_factory.mktemp("dp")),
            "--unsynced",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env=dict(os.environ, PYTHONPATH=str(ROOT), XLA_FLAGS="--xla_force_host_platform_device_count=4"),
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_one_ppo_iteration_on_2_and_4_devices_equals_1_device_gradients_included(four_devices):
    r = four_devices
    assert r["devices"] == 4
    assert r["grad_scale"] > 1e-2  # the gradients compared are not ~0
    for k in (2, 4):
        assert r[f"{k}/devices_used"] == k
        # float32 sums in another order, nothing more: a local (unsynchronized) gradient or advantage
        # normalization differs by ~1e-2
        assert r[f"{k}/grad"] < 1e-6 and r[f"{k}/grad_sq"] < 1e-9, r
        assert r[f"{k}/params"] < 1e-6 and r[f"{k}/return_stats"] < 1e-6 and r[f"{k}/loss"] < 1e-5, r


def test_ppo_trains_with_its_env_batch_split_over_devices(four_devices):
    r = four_devices
    for k in (1, 2, 4):
        assert r[f"train{k}/env_steps"] == 16384  # the run's steps over all its devices, not one device's
        assert r[f"train{k}/last"] > 2 * r[f"train{k}/first"], r  # cartpole return rises (~30 → ~200+)
    assert r["train1/state_shape"] == [2, 8, 4]
    assert r["train2/state_shape"] == [2, 2, 4, 4] and r["train4/state_shape"] == [2, 4, 2, 4]


def test_a_resume_with_another_devices_per_run_is_refused_and_the_same_resumes(four_devices):
    message = four_devices["resume_other_k"]
    assert message.startswith("cannot resume ") and "devices_per_run: checkpoint 2, now 4" in message
    assert four_devices["resume_same_k_steps"] == 4096


def test_rlkit_train_devices_per_run_trains_records_and_exports_one_agent(four_devices):
    assert four_devices["cli_record"] == 2
    assert four_devices["cli_eval_return"] > 0  # the exported agent (one copy) loads and plays cartpole


def test_an_agent_whose_copies_drift_apart_is_stopped_in_one_line(four_devices):
    message = four_devices["unsynced"]
    assert message.startswith("ppo: in chunk 1 the copies of run seed_0's agent on its devices differ"), (
        message
    )
    assert "rlkit.devices.batch_mean" in message and "\n" not in message


def _ppo():
    config = ppo.PPOConfig(hidden_sizes=(8,), num_envs=6, num_steps=8, iterations_per_chunk=1)
    return ppo.make_trainer(config, envs.make("cartpole")), make_runs(config, seeds=1)


@pytest.mark.parametrize(
    "k, message",
    [
        (
            4,
            r"^ppo: devices_per_run = 4 does not divide num_envs = 6 \(each device takes num_envs / devices_per_run\); "
            r"allowed: 1, 2, 3, 6$",
        ),
        (0, r"^devices_per_run must be an integer >= 1, got 0$"),
        (2.0, r"^devices_per_run must be an integer >= 1, got 2.0$"),
        (
            2,
            r"^ppo: devices_per_run = 2, but 1 device\(s\) can be used \(1 cpu device\(s\), max_devices = None\); "
            r"allowed: 1 to 1$",
        ),
    ],
)
def test_bad_devices_per_run_is_one_line_before_compiling(k, message, tmp_path):
    trainer, runs = _ppo()
    with pytest.raises(ConfigError, match=message):
        train(trainer, runs, total_steps=48, devices_per_run=k, log_dir=tmp_path / "run", console=False)
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_a_trainer_that_cannot_split_a_run_is_refused():
    trainer, runs = _ppo()
    offline_like = dataclasses.replace(trainer, name="bc", shards=None)  # e.g. rlkit.offline's trainers
    with pytest.raises(
        ConfigError, match=r"^bc: devices_per_run = 2, but this trainer runs each run on one device"
    ):
        train(offline_like, runs, total_steps=48, devices_per_run=2)


def test_an_off_policy_batch_that_does_not_split_is_refused_naming_the_field():
    config = sac.SACConfig(
        hidden_sizes=(8,), num_envs=2, learning_starts=10, buffer_size=100, chunk_steps=10, batch_size=6
    )
    trainer = sac.make_trainer(config, envs.make("pendulum"))
    with pytest.raises(
        ConfigError,
        match=r"^sac: devices_per_run = 4 does not divide num_envs = 2 \(each device takes num_envs, batch_size, "
        r"buffer_size / devices_per_run\); allowed: 1, 2$",
    ):
        train(trainer, make_runs(config, seeds=1), total_steps=10, devices_per_run=4)


def test_rlkit_train_refuses_devices_per_run_on_a_gymnasium_env(tmp_path):
    from experiments.train import RunArgs, run

    args = RunArgs(agent="ppo", env="gymnasium:CartPole-v1", devices_per_run=2, log_dir=str(tmp_path / "r"))
    with pytest.raises(
        ConfigError,
        match=r"^--devices-per-run 2: gymnasium:CartPole-v1 trains through the Gymnasium host loop",
    ):
        run(args, ppo.PPOConfig())
    assert not (tmp_path / "r").exists()


def test_export_takes_one_copy_of_a_data_parallel_agent_typed_keys_included(tmp_path):
    import jax
    import numpy as np

    from agents.skills import dads
    from rlkit import registry
    from rlkit.export import export_run, load_agent

    config = dads.DADSConfig(
        hidden_sizes=(8,), learning_starts=20, buffer_size=100, chunk_steps=20, batch_size=8, num_envs=2
    )
    env = envs.make("pendulum")
    entry_trainer = registry.get("dads").make_trainer(config, env)
    runs = make_runs(config, seeds=1)
    done = train(entry_trainer, runs, total_steps=40, console=False)
    # the same agent as train(devices_per_run=2) holds it: a copy per device after the runs axis
    copies = jax.tree.map(
        lambda x: (
            jax.random.wrap_key_data(
                np.stack([np.asarray(jax.random.key_data(x))] * 2, 1), impl=jax.random.key_impl(x)
            )
            if jax.numpy.issubdtype(x.dtype, jax.dtypes.prng_key)
            else np.stack([np.asarray(x)] * 2, 1)
        ),
        done.state.agent_state,
    )
    split = dataclasses.replace(done, state=done.state.replace(agent_state=copies), devices_per_run=2)
    one, two = tmp_path / "one.rlkit", tmp_path / "two.rlkit"
    export_run(one, done, runs, 0, config=config, spec=entry_trainer.spec)
    export_run(two, split, runs, 0, config=config, spec=entry_trainer.spec)
    assert one.read_bytes() == two.read_bytes()
    assert load_agent(two) is not None
