"""The main job end to end on a tiny budget (the same code path as `make run`): logs (TensorBoard read back,
JSON lines per run), checkpoints, the learning-curve PNG, the exported agent, and config errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import envs
from agents import sac
from experiments import cli
from experiments.train import main
from rlkit.checkpointing import Checkpointer
from rlkit.export import load_agent
from rlkit.logger import read_jsonl, read_tensorboard_scalars

TINY = [
    "--hidden-sizes",
    "16",
    "16",
    "--learning-starts",
    "100",
    "--buffer-size",
    "2000",
    "--chunk-steps",
    "200",
    "--batch-size",
    "32",
]


def test_main_job_writes_logs_checkpoints_figure_and_agent(tmp_path):
    summary = main(
        [
            *TINY,
            "--seeds",
            "2",
            "--total-steps",
            "1000",
            "--log-dir",
            str(tmp_path),
            "--checkpoint-every",
            "2",
            "--eval-every",
            "1",
        ]
    )
    for run in ("seed_0", "seed_1"):
        rows = read_jsonl(tmp_path / run / "metrics.jsonl")
        assert [r["step"] for r in rows] == [200, 400, 600, 800, 1000]
        assert sum(r["episodes"] for r in rows) == 5  # pendulum episodes are 200 steps
        assert all(-2000 < r["episode_return"] < 0 for r in rows) and all("loss/critic" in r for r in rows)
        scalars = read_tensorboard_scalars(tmp_path / run)
        assert [s for s, _ in scalars["eval_return"]] == [200, 400, 600, 800, 1000]
    a, b = (
        [r["eval_return"] for r in read_jsonl(tmp_path / run / "metrics.jsonl")]
        for run in ("seed_0", "seed_1")
    )
    assert a != b  # the seeds are different runs
    png = tmp_path / "learning_curve.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    assert (
        json.loads((tmp_path / "summary.json").read_text())["runs"] == 2
        and summary["metric"] == "eval_return"
    )
    with Checkpointer(tmp_path / "checkpoints") as ckpt:
        assert ckpt.all_steps() == [400, 800, 1000]  # every 2 chunks, and the last
    agent, state = load_agent(tmp_path / "agent.rlkit", envs.make("pendulum").spec)
    assert agent.name == "sac" and agent.config == sac.SACConfig(
        hidden_sizes=(16, 16), learning_starts=100, buffer_size=2000, chunk_steps=200, batch_size=32
    )


def test_vector_reward_env_logs_per_term_returns(tmp_path):
    main(
        [
            *TINY,
            "--env",
            "push2d",
            "--seeds",
            "1",
            "--total-steps",
            "400",
            "--log-dir",
            str(tmp_path),
            "--eval-every",
            "0",
        ]
    )
    row = read_jsonl(tmp_path / "seed_0" / "metrics.jsonl")[-1]
    terms = [k for k in row if k.startswith("episode_return/")]
    assert len(terms) == envs.make("push2d").spec.num_reward_terms > 1
    assert row["episode_return"] == pytest.approx(sum(row[k] for k in terms), rel=1e-4, abs=1e-3)


def test_cli_reports_config_errors_without_traceback(capsys):
    for argv, message in [
        (["train", "--env", "pendulm"], "Did you mean 'pendulum'"),
        (["train", "--seeds", "0"], "seeds must be >= 1"),
        (["train", "--q-lr", "-1"], "SACConfig.q_lr = -1.0 is out of range"),
        (["train", "--env", "cartpole"], "SAC needs a bounded continuous"),
        (["train", "--agent", "c51"], "agent='c51' is not available"),
        (["train", "--agent", "dqn"], "DQN needs a Discrete action space; pendulum"),
        (["train", "--sweep", "hidden_sizes=1,2"], "static"),
        (["train", "--sweep", "q_lrr=1,2"], "Did you mean 'q_lr'"),
    ]:
        with pytest.raises(SystemExit) as exit_info:
            cli.main(argv)
        assert exit_info.value.code == 2
        assert message in capsys.readouterr().err
    with pytest.raises(SystemExit):  # an unknown flag: tyro's own message
        cli.main(["train", "--bogus"])


def test_eval_and_plot_commands(tmp_path, capsys):
    main(
        [
            *TINY,
            "--seeds",
            "2",
            "--total-steps",
            "400",
            "--log-dir",
            str(tmp_path / "run"),
            "--eval-every",
            "0",
        ]
    )
    result = cli.evaluate(
        cli.EvalArgs(str(tmp_path / "run" / "agent.rlkit"), episodes=3, video=str(tmp_path / "e.gif"))
    )
    assert -2000 < result["eval_return"] < 0
    gif = (tmp_path / "e.gif").read_bytes()
    assert gif[:6] == b"GIF89a" and len(gif) > 5000
    host = cli.evaluate(
        cli.EvalArgs(str(tmp_path / "run" / "agent.rlkit"), env="gymnasium:Pendulum-v1", episodes=2)
    )
    assert host["episodes"] == 2
    out = cli.plot(cli.PlotArgs((str(tmp_path / "run"),), metric="loss/critic", out=str(tmp_path / "c.png")))
    assert Path(out).read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(SystemExit):
        cli.main(["eval", str(tmp_path / "run" / "agent.rlkit"), "--env", "cartpole"])
    assert "does not fit cartpole" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["plot", str(tmp_path / "run"), "--metric", "nope"])
    assert "logged 'nope'" in capsys.readouterr().err


def test_exported_ppo_agent_carries_its_observation_normalizer(tmp_path):
    import jax
    import numpy as np

    from rlkit import running_stats

    main(
        [
            "--agent",
            "ppo",
            "--env",
            "pendulum",
            "--seeds",
            "1",
            "--num-envs",
            "4",
            "--num-steps",
            "64",
            "--num-minibatches",
            "4",
            "--normalize-obs",
            "--hidden-sizes",
            "16",
            "16",
            "--total-steps",
            "512",
            "--log-dir",
            str(tmp_path),
            "--eval-every",
            "0",
        ]
    )
    agent, state = load_agent(tmp_path / "agent.rlkit", envs.make("pendulum").spec)
    from agents import ppo

    config = ppo.PPOConfig(
        num_envs=4, num_steps=64, num_minibatches=4, normalize_obs=True, hidden_sizes=(16, 16)
    )
    raw_agent = ppo.make_ppo(config, envs.make("pendulum").spec)
    from flax import serialization

    stats = serialization.msgpack_restore((tmp_path / "agent.rlkit").read_bytes())["obs_stats"]
    stats = running_stats.RunningMeanStd(**stats)
    assert float(stats.count) > 500  # the normalizer really was trained and exported
    obs = np.array([0.3, -0.9, 4.0], np.float32)
    np.testing.assert_allclose(
        agent.act(state, obs, jax.random.key(0), "deterministic"),
        raw_agent.act(state, running_stats.normalize(stats, obs), jax.random.key(0), "deterministic"),
        rtol=1e-6,
    )
