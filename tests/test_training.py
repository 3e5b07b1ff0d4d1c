"""The training driver: devices, resume after a kill, refusing to overwrite, sweeps, export / load."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import gymnasium as gym
import jax
import numpy as np
import pytest

import envs
from agents import sac
from rlkit.checkpointing import Checkpointer
from rlkit.configs import ConfigError
from rlkit.export import export_agent, load_agent
from rlkit.host_loop import evaluate_host
from rlkit.logger import read_jsonl
from rlkit.sweeps import make_runs
from rlkit.training import train

ROOT = Path(__file__).resolve().parents[1]
TINY = [
    "--agent",
    "sac",
    "--env",
    "pendulum",
    "--seeds",
    "2",
    "--hidden-sizes",
    "16",
    "16",
    "--learning-starts",
    "200",
    "--buffer-size",
    "4000",
    "--chunk-steps",
    "250",
    "--batch-size",
    "64",
    "--total-steps",
    "2500",
    "--checkpoint-every",
    "1",
    "--eval-every",
    "0",
]


def _env():
    return dict(os.environ, PYTHONPATH=str(ROOT), XLA_FLAGS="")


def test_four_devices_give_the_one_device_numbers():
    out = subprocess.run(
        [sys.executable, "-m", "tests.helpers.devices_check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env=dict(_env(), XLA_FLAGS="--xla_force_host_platform_device_count=4"),
    )
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["devices"] == 4 and result["four_uses"] == 4
    # different XLA programs (4 runs per device vs 1) round differently in the last bits, nothing more
    assert result["state_diff"] < 1e-4 and result["metric_diff"] < 1e-2, result
    assert result["runs_differ"]


def test_killed_run_resumes_bit_exactly(tmp_path):
    ref_dir, killed_dir = tmp_path / "ref", tmp_path / "killed"
    cmd = [sys.executable, "-m", "experiments.cli", "train", *TINY]
    subprocess.run(
        [*cmd, "--log-dir", str(ref_dir)], cwd=ROOT, env=_env(), check=True, capture_output=True, timeout=600
    )

    proc = subprocess.Popen(
        [*cmd, "--log-dir", str(killed_dir)],
        cwd=ROOT,
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 300
    while not (killed_dir / "checkpoints" / "1000").exists():  # killed mid-run, after a few chunks
        assert proc.poll() is None and time.time() < deadline, "training ended before it could be killed"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = Checkpointer(killed_dir / "checkpoints").all_steps()
    assert done and max(done) < 2500  # really interrupted
    resumed = subprocess.run(
        [*cmd, "--log-dir", str(killed_dir), "--resume"],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]

    config = sac.SACConfig(
        hidden_sizes=(16, 16), learning_starts=200, buffer_size=4000, chunk_steps=250, batch_size=64
    )
    trainer = sac.make_trainer(config, envs.make("pendulum"))
    target = jax.vmap(trainer.init)(make_runs(config, seeds=2).config, jax.random.split(jax.random.key(0), 2))
    with Checkpointer(ref_dir / "checkpoints") as a, Checkpointer(killed_dir / "checkpoints") as b:
        ref, _ = a.restore(target, step=2500)
        got, _ = b.restore(target, step=2500)
    for x, y in zip(
        jax.tree.leaves(ref), jax.tree.leaves(got)
    ):  # agent, optimizers, buffer, envs, RNG: all of it
        if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            x, y = jax.random.key_data(x), jax.random.key_data(y)
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    for run in ("seed_0", "seed_1"):
        strip = lambda rows: [{k: v for k, v in r.items() if k != "wall_time"} for r in rows]  # noqa: E731
        assert strip(read_jsonl(ref_dir / run / "metrics.jsonl")) == strip(
            read_jsonl(killed_dir / run / "metrics.jsonl")
        )


def test_a_run_killed_while_saving_resumes_from_the_last_complete_checkpoint(tmp_path):
    config = sac.SACConfig(
        hidden_sizes=(8,), learning_starts=50, buffer_size=500, chunk_steps=50, batch_size=16
    )
    trainer = sac.make_trainer(config, envs.make("pendulum"))
    runs = make_runs(config, seeds=1)
    train(trainer, runs, total_steps=100, log_dir=tmp_path, checkpoint_every=1, console=False)
    # what orbax leaves behind when the process dies mid-save: a temporary directory, never renamed
    partial = tmp_path / "checkpoints" / "150.orbax-checkpoint-tmp-1234"
    (partial / "state").mkdir(parents=True)
    (partial / "state" / "garbage").write_bytes(b"\x00" * 10)
    with Checkpointer(tmp_path / "checkpoints") as ckpt:
        assert ckpt.latest_step() == 100
    result = train(
        trainer, runs, total_steps=150, log_dir=tmp_path, checkpoint_every=1, resume=True, console=False
    )
    assert result.steps == 150 and [r["step"] for r in read_jsonl(tmp_path / "seed_0" / "metrics.jsonl")] == [
        50,
        100,
        150,
    ]


def test_existing_run_is_never_overwritten_and_resume_checks_the_runs(tmp_path):
    config = sac.SACConfig(
        hidden_sizes=(8,), learning_starts=50, buffer_size=500, chunk_steps=50, batch_size=16
    )
    trainer = sac.make_trainer(config, envs.make("pendulum"))
    train(trainer, make_runs(config, seeds=1), total_steps=50, log_dir=tmp_path, console=False)
    with pytest.raises(FileExistsError, match="already holds checkpoints.*--resume"):
        train(trainer, make_runs(config, seeds=1), total_steps=50, log_dir=tmp_path, console=False)
    with pytest.raises(
        ConfigError, match=r"cannot resume .* holds runs \['seed_0'\], not \['seed_0', 'seed_1'\]"
    ):
        train(
            trainer, make_runs(config, seeds=2), total_steps=100, log_dir=tmp_path, console=False, resume=True
        )


def test_sweep_runs_keep_their_values_and_logs_apart(tmp_path):
    config = sac.SACConfig(
        hidden_sizes=(8,), learning_starts=50, buffer_size=500, chunk_steps=50, batch_size=16
    )
    runs = make_runs(config, seeds=2, sweep={"q_lr": [1e-3, 1e-4], "tau": [0.005, 0.05]})
    assert len(runs) == 8 and runs.names[0] == "q_lr=0.001/tau=0.005/seed_0"
    result = train(
        sac.make_trainer(config, envs.make("pendulum")),
        runs,
        total_steps=100,
        log_dir=tmp_path,
        console=False,
    )
    lrs = np.asarray(result.state.agent_state.critic_opt.hyperparams["learning_rate"])
    np.testing.assert_allclose(lrs, [1e-3] * 4 + [1e-4] * 4, rtol=1e-6)
    assert len({(tmp_path / n / "metrics.jsonl").read_text() for n in runs.names}) == 8


class UserPendulum(gym.Env):
    """A user's own Gymnasium env with Pendulum's spaces (observations scaled differently: a new env)."""

    def __init__(self):
        self.inner = gym.make("Pendulum-v1")
        self.observation_space, self.action_space = self.inner.observation_space, self.inner.action_space

    def reset(self, *, seed=None, options=None):
        return self.inner.reset(seed=seed)

    def step(self, action):
        return self.inner.step(action)


def test_trained_agent_exports_and_loads_into_a_user_gymnasium_env(tmp_path):
    config = sac.SACConfig(
        hidden_sizes=(32, 32), learning_starts=100, buffer_size=2000, chunk_steps=100, batch_size=64
    )
    result = train(
        sac.make_trainer(config, envs.make("pendulum")), make_runs(config, seeds=1), total_steps=300
    )
    state = jax.tree.map(lambda x: x[0], result.state.agent_state)
    path = export_agent(tmp_path / "pendulum.rlkit", "sac", config, state, envs.make("pendulum").spec)

    with envs.make("gymnasium:Pendulum-v1") as user_env:  # the three lines a user writes
        agent, loaded = load_agent(path, user_env.spec)
        score = evaluate_host(agent, loaded, user_env, episodes=2)
    assert np.isfinite(score["eval_return"])
    obs = np.zeros((3,), np.float32)
    np.testing.assert_allclose(
        agent.act(loaded, obs, jax.random.key(0), "deterministic"),
        sac.make_sac(config, envs.make("pendulum").spec).act(state, obs, jax.random.key(0), "deterministic"),
        rtol=1e-6,
    )
    from envs.gymnasium_bridge import GymnasiumVectorEnv

    with GymnasiumVectorEnv(UserPendulum) as custom:
        agent2, loaded2 = load_agent(path, custom.spec)
        assert np.isfinite(evaluate_host(agent2, loaded2, custom, episodes=1)["eval_return"])
    with pytest.raises(ValueError, match="does not fit cartpole"):
        load_agent(path, envs.make("cartpole").spec)


def test_non_finite_values_stop_the_run_with_a_clear_error():
    from rlkit.training import check_finite

    names = ["a", "b"]
    check_finite(
        "sac", 1, {"loss/critic": np.array([np.nan, np.nan]), "learning_steps": np.array([0, 0])}, names
    )
    with pytest.raises(FloatingPointError, match=r"chunk 3: loss/critic in \['b'\]"):
        check_finite(
            "sac", 3, {"loss/critic": np.array([1.0, np.inf]), "learning_steps": np.array([5, 5])}, names
        )
    # an env whose physics produce NaN: the run stops after the chunk, naming the metric and the run
    config = sac.SACConfig(
        hidden_sizes=(8,), learning_starts=50, buffer_size=500, chunk_steps=50, batch_size=16
    )
    trainer = sac.make_trainer(config, envs.make("pendulum", g=float("nan")))
    with pytest.raises(FloatingPointError, match=r"nonfinite_obs in \['seed_0'\]"):
        train(trainer, make_runs(config, seeds=1), total_steps=100)
