"""The main job end to end on a tiny budget: logs (TensorBoard read back, JSON lines per run), checkpoint
(restored into the rollout state), learning-curve PNG, config errors, and the compiled chunk not recompiling."""

from __future__ import annotations

import json

import jax
import numpy as np
import pytest

import envs
from agents.random_policy import make_random_agent
from experiments import cli
from experiments.train import TrainConfig, train
from rlkit.checkpointing import Checkpointer
from rlkit.logger import read_jsonl, read_tensorboard_scalars
from rlkit.rollout import make_rollout


def test_main_job_writes_logs_checkpoint_and_figure(tmp_path):
    config = TrainConfig(
        env="pendulum",
        num_seeds=2,
        num_envs=4,
        total_steps=2000,
        chunk_steps=100,
        log_dir=str(tmp_path),
        checkpoint_every=2,
    )
    summary = train(config)
    # 2000 steps / (4 envs × 100) = 5 chunks: each env takes 500 steps, so finishes 2 episodes of 200 steps
    for run in ("seed_0", "seed_1"):
        rows = read_jsonl(tmp_path / run / "metrics.jsonl")
        assert [r["step"] for r in rows] == [400, 800, 1200, 1600, 2000]
        assert sum(r["episodes"] for r in rows) == 4 * 2
        finished = [r["episode_return"] for r in rows if r["episode_return"] is not None]
        assert finished and all(-2000 < v < 0 for v in finished)  # a random pendulum policy: about −1200
        scalars = read_tensorboard_scalars(tmp_path / run)
        assert [s for s, _ in scalars["episodes"]] == [400, 800, 1200, 1600, 2000]
    # seeds differ
    a, b = (
        [r["episode_return"] for r in read_jsonl(tmp_path / run / "metrics.jsonl")]
        for run in ("seed_0", "seed_1")
    )
    assert a[1] is not None and a != b
    png = tmp_path / "learning_curve.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    assert json.loads((tmp_path / "summary.json").read_text())["runs"] == 2
    assert summary["steps_per_run"] == 2000

    # the last checkpoint restores into the rollout state's structure, config included
    env = envs.make("pendulum")
    init, _ = make_rollout(env, make_random_agent(env.spec), num_envs=4, chunk_steps=100)
    target = jax.vmap(init)(jax.random.split(jax.random.key(0), 2))
    with Checkpointer(tmp_path / "checkpoints") as ckpt:
        assert ckpt.all_steps() == [1600, 2000]
        state, saved_config = ckpt.restore(target)
    assert saved_config["env"] == "pendulum" and saved_config["num_envs"] == 4
    assert state.obs.shape == (2, 4, 3) and np.all(np.asarray(state.env_steps) == 2000)


def test_chunk_compiles_once():
    env = envs.make("cartpole")
    init, run_chunk = make_rollout(env, make_random_agent(env.spec), num_envs=8, chunk_steps=50)
    chunk = jax.jit(run_chunk, donate_argnums=0)
    state = init(jax.random.key(0))
    for _ in range(4):
        state, metrics = chunk(state)
    assert chunk._cache_size() == 1
    assert int(state.env_steps) == 4 * 8 * 50


def test_vector_reward_env_logs_per_term_returns(tmp_path):
    config = TrainConfig(
        env="push2d", num_seeds=1, num_envs=8, total_steps=8 * 400, chunk_steps=400, log_dir=str(tmp_path)
    )
    train(config)
    row = read_jsonl(tmp_path / "seed_0" / "metrics.jsonl")[-1]
    terms = [k for k in row if k.startswith("episode_return/")]
    assert len(terms) == envs.make("push2d").spec.num_reward_terms > 1
    assert row["episode_return"] == pytest.approx(sum(row[k] for k in terms), rel=1e-4, abs=1e-3)


def test_cli_reports_config_errors_without_traceback(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["train", "--env", "pendulm"])
    assert exit_info.value.code == 2
    assert "Did you mean 'pendulum'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["train", "--num-seeds", "0"])
    assert "num_seeds must be >= 1" in capsys.readouterr().err
