"""A sweep is reported per swept value, never pooled: ``learning_curve.png`` / ``rlkit plot`` draw one curve per
value (its seeds' mean and band), ``summary.json`` and the printed lines give one row per value. Also the
task-dependent defaults of ``rlkit train --agent ppo`` and the README's PPO commands (the reproduce rows)."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import numpy as np
import pytest

import experiments.train as train_module
import rlkit.plots
from agents import ppo, sac
from experiments import cli
from experiments.train import MAIN_JOB_DEFAULTS, PPO_CONTINUOUS_LAYOUT, RunArgs, main, parse_args
from rlkit.plots import group_name, group_runs

ROOT = Path(__file__).resolve().parent.parent


def test_runs_group_by_their_name_without_the_seed():
    assert group_name("q_lr=0.001/seed_3") == "q_lr=0.001"
    assert group_name("q_lr=0.001/tau=0.005/seed_10") == "q_lr=0.001/tau=0.005"
    assert group_name("seed_0") == ""
    assert group_name("custom") == "custom"  # no seed component: a group of its own
    names = ["a=1/seed_0", "a=1/seed_1", "a=2/seed_0", "a=2/seed_1"]
    assert group_runs(names) == {"a=1": names[:2], "a=2": names[2:]}
    assert group_runs(["seed_0", "seed_1"]) == {"": ["seed_0", "seed_1"]}


def write_runs(log_dir: Path, finals: dict[str, list[float]], steps=(100, 200)) -> list[str]:
    """Fake run logs: run ``name`` logs eval_return rising linearly to its final value."""
    names = []
    for group, values in finals.items():
        for seed, final in enumerate(values):
            name = f"{group}/seed_{seed}" if group else f"seed_{seed}"
            (log_dir / name).mkdir(parents=True)
            rows = [{"step": s, "eval_return": final * s / steps[-1], "episode_return": 0.0} for s in steps]
            (log_dir / name / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
            names.append(name)
    return names


@pytest.fixture
def captured_figures(monkeypatch):
    """The curves each call of plot_learning_curves got (label -> (steps, values)), the PNG still written."""
    calls = []
    real = rlkit.plots.plot_learning_curves

    def spy(curves, path, **kwargs):
        calls.append(dict(curves))
        return real(curves, path, **kwargs)

    monkeypatch.setattr(rlkit.plots, "plot_learning_curves", spy)
    monkeypatch.setattr(train_module, "plot_learning_curves", spy)
    return calls


def test_summary_reports_each_swept_value_never_the_pool(tmp_path, capsys, captured_figures):
    finals = {
        "q_lr=0.001": [-100.0, -120.0, -140.0, -500.0],
        "q_lr=0.0003": [-900.0, -1000.0, -1100.0, -1000.0],
    }
    names = write_runs(tmp_path, finals)
    args = RunArgs(agent="sac", env="pendulum", eval_every=1, log_dir=str(tmp_path))
    summary = train_module._summarize(args, names, tmp_path, 200, 2.0)

    assert "final_return_mean" not in summary  # no pooled number over different values
    rows = {r["value"]: r for r in summary["groups"]}
    assert list(rows) == ["q_lr=0.001", "q_lr=0.0003"]
    for group, values in finals.items():
        row = rows[group]
        assert row["runs"] == 4 and row["swept"] == {"q_lr": float(group.split("=")[1])}
        assert row["final_mean"] == pytest.approx(np.mean(values)) and row["final_std"] == pytest.approx(
            np.std(values)
        )
        assert row["final_iqm"] == pytest.approx(np.mean(sorted(values)[1:3]))  # middle 50% of 4 seeds
    assert json.loads((tmp_path / "summary.json").read_text())["groups"] == summary["groups"]
    out = capsys.readouterr().out.strip().splitlines()
    assert "per swept value" in out[-3]
    assert re.search(r"q_lr=0\.001\s+-215\.0 ± \d+\.\d over 4 runs, IQM -130\.0", out[-2]), out
    assert re.search(r"q_lr=0\.0003\s+-1000\.0 ± 70\.7 over 4 runs, IQM -1000\.0", out[-1]), out
    (curves,) = captured_figures  # learning_curve.png: one curve per value, each over its own 4 seeds
    assert sorted(curves) == ["q_lr=0.0003", "q_lr=0.001"]
    for group, values in finals.items():
        steps, curve = curves[group]
        assert curve.shape == (4, 2) and list(curve[:, -1]) == values
    assert (tmp_path / "learning_curve.png").read_bytes()[:4] == b"\x89PNG"


def test_a_run_without_a_sweep_is_one_group(tmp_path, capsys, captured_figures):
    names = write_runs(tmp_path, {"": [-100.0, -300.0]})
    summary = train_module._summarize(RunArgs(agent="td3", log_dir=str(tmp_path)), names, tmp_path, 200, 1.0)
    assert summary["final_return_mean"] == -200.0 and summary["final_return_std"] == 100.0
    assert [r["value"] for r in summary["groups"]] == [""]
    assert "final eval_return -200.0 ± 100.0 over 2 runs" in capsys.readouterr().out
    assert list(captured_figures[0]) == ["td3"]


def test_plot_draws_one_curve_per_swept_value(tmp_path, capsys, captured_figures):
    write_runs(tmp_path / "sweep", {"tau=0.005": [-1.0, -3.0], "tau=0.05": [-10.0, -30.0]})
    write_runs(tmp_path / "plain", {"": [-5.0, -7.0, -9.0]})
    out = tmp_path / "c.png"
    cli.main(
        [
            "plot",
            str(tmp_path / "sweep"),
            str(tmp_path / "plain"),
            "--metric",
            "eval_return",
            "--out",
            str(out),
        ]
    )
    (curves,) = captured_figures
    assert sorted(curves) == ["plain", "sweep: tau=0.005", "sweep: tau=0.05"]
    assert curves["sweep: tau=0.05"][1][:, -1].tolist() == [-10.0, -30.0]
    assert curves["plain"][1].shape == (3, 2)
    assert out.read_bytes()[:4] == b"\x89PNG" and f"wrote {out}" in capsys.readouterr().out


def test_a_real_sweep_is_reported_per_value(tmp_path, capsys):
    """Through ``rlkit train``: the runs' real names group into the swept values."""
    tiny = ["--hidden-sizes", "8", "--learning-starts", "50", "--buffer-size", "500", "--chunk-steps", "100"]
    tiny += ["--batch-size", "16", "--seeds", "2", "--total-steps", "200", "--log-dir", str(tmp_path)]
    summary = main([*tiny, "--sweep", "q_lr=1e-3,1e-4"])
    assert [(r["value"], r["runs"]) for r in summary["groups"]] == [("q_lr=0.001", 2), ("q_lr=0.0001", 2)]
    assert "final_return_mean" not in summary
    finals = {
        g: [json.loads((tmp_path / g / f"seed_{s}" / "metrics.jsonl").read_text().splitlines()[-1])["eval_return"]
            for s in range(2)]
        for g in ("q_lr=0.001", "q_lr=0.0001")
    }  # fmt: skip
    for row in summary["groups"]:
        assert row["final_mean"] == pytest.approx(np.mean(finals[row["value"]]), rel=1e-6)
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-2].lstrip().startswith("q_lr=0.001 ") and lines[-1].lstrip().startswith("q_lr=0.0001 ")


# ---------------------------------------------------------------------------------------- task defaults
CONTINUOUS = {
    k: v for k, v in vars(ppo.continuous_config(**PPO_CONTINUOUS_LAYOUT)).items() if k != "anneal_steps"
}


def settings(config) -> dict:
    return {k: v for k, v in vars(config).items() if k != "anneal_steps"}


@pytest.mark.parametrize("env", ["pendulum", "mountain-car-continuous", "gymnasium:Pendulum-v1"])
def test_ppo_on_a_box_action_space_gets_continuous_control_defaults(env):
    _, config = parse_args(["--agent", "ppo", "--env", env, "--total-steps", "12345"])
    assert settings(config) == CONTINUOUS
    assert config.normalize_obs and config.normalize_reward and config.ent_coef == 0.0
    assert (config.num_envs, config.num_steps, config.num_minibatches) == (16, 64, 8)
    assert config.anneal_steps == 12345  # annealing over the run's own budget


@pytest.mark.parametrize("env", ["cartpole", "gymnasium:CartPole-v1"])
def test_ppo_on_discrete_actions_keeps_its_defaults_and_anneals_over_the_run(env):
    _, config = parse_args(["--agent", "ppo", "--env", env, "--total-steps", "5000"])
    assert settings(config) == settings(ppo.PPOConfig()) and config.anneal_steps == 5000


def test_flags_the_user_gives_always_win():
    argv = ["--agent", "ppo", "--env", "pendulum", "--total-steps", "5000", "--anneal-steps", "77"]
    argv += ["--num-envs", "2", "--no-normalize-obs", "--ent-coef", "0.01"]
    _, config = parse_args(argv)
    assert (config.anneal_steps, config.num_envs, config.normalize_obs, config.ent_coef) == (
        77,
        2,
        False,
        0.01,
    )
    assert config.normalize_reward and config.num_steps == 64  # the rest: the continuous defaults
    _, config = parse_args(["--agent", "ppo"], defaults={"ppo": {"anneal_steps": 99, "num_envs": 3}})
    assert (config.anneal_steps, config.num_envs) == (99, 3)  # an embedded default beats the task's
    _, config = parse_args([], defaults=MAIN_JOB_DEFAULTS)
    assert config == sac.SACConfig(**MAIN_JOB_DEFAULTS["sac"])  # other agents: untouched


def test_help_says_which_ppo_settings_are_defaults(capsys):
    with pytest.raises(SystemExit) as info:
        parse_args(["--agent", "ppo", "--help"])
    assert info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "continuous_config()" in text and "anneal_steps = total_steps" in text
    assert (
        "--learning-rate 1e-3 --gamma 0.95" in text
    )  # the README row's own settings, said to be not defaults


# ---------------------------------------------------------------------------------------- the README's PPO rows
def readme_ppo_commands() -> dict[str, list[str]]:
    """env -> argv of each ``rlkit train --agent ppo`` line in README.md's "Measured learning" section."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index("### Measured learning") :]
    section = section[: section.index("\n### ", 1)]
    commands = {}
    for line in section.splitlines():
        if line.startswith("rlkit train --agent ppo"):
            argv = shlex.split(line, comments=True)[2:]
            commands[argv[argv.index("--env") + 1]] = argv
    return commands


def foundation_rows(monkeypatch) -> dict[str, tuple]:
    """name -> (config, seeds, total_steps, eval_every) of every on-device row of experiments/reproduce/
    foundation.py, read by running its ``main`` with training replaced (it stops at the host-loop row)."""
    from experiments.reproduce import foundation

    class Stop(Exception):
        pass

    def stop(*args, **kwargs):
        raise Stop

    rows = {}

    def capture(name, trainer, config, seeds, steps, eval_every, reference):
        rows[name] = (config, seeds, steps, eval_every)
        return [name]

    monkeypatch.setattr(foundation, "on_device", capture)
    monkeypatch.setattr(foundation, "train_host", stop)
    with pytest.raises(Stop):
        foundation.main()
    return rows


def test_the_readme_ppo_commands_are_the_reproduce_rows(monkeypatch):
    commands = readme_ppo_commands()
    rows = {
        name.split(",")[1].split()[0]: row
        for name, row in foundation_rows(monkeypatch).items()
        if "PPO" in name
    }
    assert sorted(commands) == sorted(rows) == ["cartpole", "pendulum"]
    for env, (config, seeds, steps, eval_every) in rows.items():
        run_args, cli_config = parse_args(commands[env])
        assert cli_config == config, env  # the same config, field by field: the same compiled program
        assert (run_args.seeds, run_args.total_steps, run_args.eval_every) == (seeds, steps, eval_every), env
