"""Every kind of wrong input to the ``rlkit`` command gives exit status 2 and exactly one line on stderr that names
the flag (or field, file, env id) — never a traceback or tyro's multi-line box. Each test walks a whole class of
input error over the CLI's surface (every int/float flag of every agent, every flag of eval and plot, ...), so a
flag added later gets the same check without a new test. Also: ``rlkit eval --video`` on Gymnasium envs."""

from __future__ import annotations

import dataclasses
import json
import typing

import gymnasium
import jax
import pytest
from flax import serialization

import envs
from agents import sac
from experiments import cli
from experiments.train import RUN_LIMITS, RunArgs, _agents
from rlkit import configs
from rlkit.export import export_agent
from tests.helpers.cli_errors import one_error_line

AGENTS = sorted(_agents())


def fields_of(cls) -> list[tuple[str, typing.Any, dataclasses.Field]]:
    hints = typing.get_type_hints(cls, include_extras=True)
    return [(f.name, hints[f.name], f) for f in dataclasses.fields(cls)]


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def numeric_flags(cls) -> list[tuple[str, type]]:
    """(field, int | float) of every int / float (or tuple of them) flag of ``cls``, positionals excluded."""
    out = []
    for name, hint, _ in fields_of(cls):
        kind, elem = cli._value_kind(hint)
        if cli._unwrap(hint)[1] or elem not in (int, float):
            continue
        out.append((name, elem))
    return out


def surfaces():
    """(command argv prefix, flag classes): every command and, for train, every agent."""
    out = [(["train", "--agent", a], [RunArgs, _agents()[a].config_cls]) for a in AGENTS]
    return out + [
        (["eval", "agent.rlkit"], [cli.EvalArgs]),
        (["plot", "runs/x"], [cli.PlotArgs]),
        (["sweep", "spec.yaml"], [cli.SweepArgs]),
        (["report", "sweeps/x"], [cli.ReportArgs]),
    ]


def test_every_numeric_flag_refuses_a_non_numeric_value(capsys):
    checked = 0
    for prefix, classes in surfaces():
        for cls in classes:
            for name, _ in numeric_flags(cls):
                for argv in ([*prefix, flag(name), "abc"], [*prefix, f"{flag(name)}=abc"]):
                    line = one_error_line(capsys, argv)
                    assert flag(name) in line and "'abc'" in line, line
                    checked += 1
    assert checked > 60  # the surface really was walked (3 agents' configs, the run's, eval's)


def test_every_integer_flag_refuses_a_fraction(capsys):
    for prefix, classes in surfaces():
        for cls in classes:
            for name, elem in numeric_flags(cls):
                if elem is int:
                    line = one_error_line(capsys, [*prefix, flag(name), "1.5"])
                    assert flag(name) in line and "integer" in line, line


def test_every_flag_refuses_a_missing_value(capsys):
    for prefix, classes in surfaces():
        for cls in classes:
            for name, hint, _ in fields_of(cls):
                kind, _ = cli._value_kind(hint)
                if cli._unwrap(hint)[1] or kind not in ("one", "optional-one", "choice"):
                    continue
                line = one_error_line(capsys, [*prefix, flag(name)])  # the flag is the last token
                assert flag(name) in line and "got none" in line, line


def test_every_switch_refuses_a_value(capsys):
    for prefix, classes in surfaces():
        for cls in classes:
            for name, hint, _ in fields_of(cls):
                if cli._value_kind(hint)[0] == "switch":
                    line = one_error_line(capsys, [*prefix, f"{flag(name)}=yes"])
                    assert flag(name) in line and "takes no value" in line, line


def test_unknown_flags_and_arguments(capsys):
    for prefix, _ in surfaces():
        line = one_error_line(capsys, [*prefix, "--bogus-flag"])
        assert "--bogus-flag" in line and "--help" in line, line
    assert "did you mean --total-steps" in one_error_line(capsys, ["train", "--total-step", "10"])
    # a flag of another agent's config: says whose it is
    assert "--agent ppo" in one_error_line(capsys, ["train", "--agent", "sac", "--normalize-obs"])
    assert "'extra'" in one_error_line(capsys, ["train", "extra"])
    assert "AGENT_FILE" in one_error_line(capsys, ["eval"])
    assert "'b.rlkit'" in one_error_line(capsys, ["eval", "a.rlkit", "b.rlkit"])
    assert "RUN_DIRS" in one_error_line(capsys, ["plot"])
    assert "SPEC" in one_error_line(capsys, ["sweep"])
    assert "SWEEP_DIR" in one_error_line(capsys, ["report"])
    assert "no such file" in one_error_line(capsys, ["sweep", "nothere.yaml"])
    assert "--compare takes pairs" in one_error_line(capsys, ["report", "x", "--compare", "a"])
    assert "did you mean 'train'" in one_error_line(capsys, ["trian"])
    assert "'x'" in one_error_line(capsys, ["envs", "x"])
    assert "'x'" in one_error_line(capsys, ["agents", "x"])
    assert "c51" in one_error_line(capsys, ["train", "--agent", "c51"])


def test_help_works_for_every_command_even_with_other_arguments_missing(capsys):
    for prefix, _ in [(["eval"], None), (["plot"], None), *surfaces()]:
        for help_flag in ("--help", "-h"):
            with pytest.raises(SystemExit) as info:
                cli.main([*prefix, help_flag])
            assert info.value.code == 0
            assert f"usage: rlkit {prefix[0]}" in capsys.readouterr().out


def below(meta) -> float | None:
    """A value just outside a field's declared lower bound (None without one)."""
    if meta.get("low") is None:
        return None
    return meta["low"] if not meta.get("low_inclusive", True) else meta["low"] - 1


def test_every_ranged_value_out_of_range(capsys):
    """The run's and eval's limits, and every config field with a declared range, on every agent."""
    for name, limit in RUN_LIMITS.items():
        line = one_error_line(capsys, ["train", flag(name), str(limit["low"] - 1)])
        assert flag(name) in line and f"{name} must be >= {limit['low']}" in line, line
    for prefix, cls in ((["eval", "agent.rlkit"], cli.EvalArgs), (["sweep", "spec.yaml"], cli.SweepArgs),
                        (["report", "sweeps/x"], cli.ReportArgs)):  # fmt: skip
        for name, limit in cls.LIMITS.items():
            bad = "nope" if "choices" in limit else str(limit["low"] - 1)
            line = one_error_line(capsys, [*prefix, flag(name), bad])
            assert flag(name) in line and repr(int(bad) if bad != "nope" else bad) in line, line
    checked = 0
    for agent in AGENTS:
        config_cls = _agents()[agent].config_cls
        for name, hint, f in fields_of(config_cls):
            value = below(f.metadata)
            if value is None:
                continue
            value = int(value) if hint is int else float(value)
            line = one_error_line(capsys, ["train", "--agent", agent, flag(name), str(value)])
            assert f"{config_cls.__name__}.{name} = " in line and "out of range" in line, line
            checked += 1
    assert checked > 30


def sweepable(config_cls):
    return [
        (name, hint, f)
        for name, hint, f in fields_of(config_cls)
        if not configs.is_static(config_cls, name) and hint in (int, float)
    ]


def test_every_sweepable_field_refuses_a_bad_sweep_value(capsys):
    checked = 0
    for agent in AGENTS:
        config_cls = _agents()[agent].config_cls
        for name, _, f in sweepable(config_cls):
            line = one_error_line(capsys, ["train", "--agent", agent, "--sweep", f"{name}=abc,1"])
            assert f"--sweep {name}=abc,1" in line and "'abc'" in line, line
            value = below(f.metadata)
            if value is not None:
                line = one_error_line(capsys, ["train", "--agent", agent, "--sweep", f"{name}={value}"])
                assert f"{config_cls.__name__}.{name} = " in line and "out of range" in line, line
            checked += 1
    assert checked >= 15
    for item, expected in [
        ("q_lr", "FIELD=V1,V2"),
        ("q_lr=", "FIELD=V1,V2"),
        ("q_lr=1e-3,,3e-4", "empty value"),
        ("hidden_sizes=1,2", "static"),
        ("q_lrr=1,2", "Did you mean 'q_lr'"),
    ]:
        assert expected in one_error_line(capsys, ["train", "--sweep", item])
    assert "twice" in one_error_line(capsys, ["train", "--sweep", "q_lr=1e-3", "q_lr=3e-4"])


def test_unknown_env_ids_name_the_closest(capsys, tmp_path):
    for argv in (["train", "--env", "pendulm"], ["train", "--agent", "ppo", "--env", "pendulm"]):
        line = one_error_line(capsys, argv)
        assert "unknown env id 'pendulm'" in line and "Did you mean 'pendulum'" in line, line
    line = one_error_line(capsys, ["train", "--env", "gymnasium:Pendulm-v1"])
    assert "doesn't exist" in line, line  # Gymnasium's own message ...
    assert "'gymnasium:Pendulum-v1'" in line, line  # ... and the closest registered Gymnasium ids
    with pytest.raises(
        envs.UnknownEnvError, match="Closest registered Gymnasium ids: 'gymnasium:Pendulum-v1'"
    ):
        envs.make("gymnasium:Pendulm-v1")  # the library call says the same
    agent = export_agent(tmp_path / "a.rlkit", "sac", *tiny_sac(envs.make("pendulum").spec))
    assert "Did you mean 'pendulum'" in one_error_line(capsys, ["eval", agent, "--env", "pendulm"])
    line = one_error_line(capsys, ["eval", agent, "--env", "gymnasium:Pendulm-v1"])
    assert "doesn't exist" in line and "'gymnasium:Pendulum-v1'" in line, line
    line = one_error_line(
        capsys, ["eval", agent, "--env", "Pendulum-v1"]
    )  # a Gymnasium id without the prefix
    assert "'gymnasium:Pendulum-v1'" in line, line


def tiny_sac(spec):
    config = sac.SACConfig(hidden_sizes=(8,))
    return config, sac.make_sac(config, spec).init(jax.random.key(0)), spec


def test_files_that_are_not_agents(capsys, tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    export_agent(run_dir / "agent.rlkit", "sac", *tiny_sac(envs.make("pendulum").spec))
    line = one_error_line(capsys, ["eval", str(run_dir)])
    assert line.endswith(f"{run_dir} is a run directory; use {run_dir / 'agent.rlkit'}"), line
    assert "is a directory" in one_error_line(capsys, ["eval", str(tmp_path / "run" / "..")])
    assert "does not exist" in one_error_line(capsys, ["eval", str(tmp_path / "missing.rlkit")])
    (tmp_path / "garbage.rlkit").write_bytes(bytes(range(256)) * 4)
    (tmp_path / "text.rlkit").write_text("hello, not an agent")
    (tmp_path / "other.rlkit").write_bytes(serialization.msgpack_serialize({"header": json.dumps({"x": 1})}))
    (tmp_path / "format.rlkit").write_bytes(
        serialization.msgpack_serialize({"header": json.dumps({"format": "v0"}), "state": {}})
    )
    for name in ("garbage.rlkit", "text.rlkit", "other.rlkit", "format.rlkit"):
        line = one_error_line(capsys, ["eval", str(tmp_path / name)])
        assert f"{tmp_path / name} is not an rlkit agent file" in line, line
    line = one_error_line(capsys, ["eval", str(run_dir / "agent.rlkit"), "--video", str(tmp_path / "v.mp4")])
    assert "--video" in line and ".gif" in line, line


def test_plot_without_curves(capsys, tmp_path):
    assert "is not a directory" in one_error_line(capsys, ["plot", str(tmp_path / "nope")])
    assert "no metrics.jsonl under" in one_error_line(capsys, ["plot", str(tmp_path)])
    (tmp_path / "seed_0").mkdir()
    (tmp_path / "seed_0" / "metrics.jsonl").write_text('{"step": 1, "episode_return": -5.0}\n')
    line = one_error_line(capsys, ["plot", str(tmp_path), "--metric", "eval_return"])
    assert "logged 'eval_return'" in line and "episode_return" in line, line  # names what was logged
    line = one_error_line(capsys, ["plot", str(tmp_path), "--out", str(tmp_path / "c.xyz")])
    assert "--out" in line and ".png" in line, line


def test_tyro_errors_the_checks_miss_are_one_line_too(capsys):
    """``parse_cli`` turns whatever tyro still rejects into one line (here: a class only tyro parses)."""

    @dataclasses.dataclass(frozen=True)
    class Odd:
        pair: tuple[int, int] = (1, 2)

    with pytest.raises(cli.UsageError) as info:
        cli.parse_cli(Odd, ["--pair", "1"], "rlkit odd")
    assert "\n" not in str(info.value) and "--pair" in str(info.value)


# ---------------------------------------------------------------------------------------- eval --video, Gymnasium
def test_eval_video_on_a_gymnasium_env(capsys, tmp_path):
    pytest.importorskip("pygame")  # Gymnasium's classic-control renderer
    with envs.make("gymnasium:Pendulum-v1") as env:
        spec = env.spec
    agent = export_agent(tmp_path / "a.rlkit", "sac", *tiny_sac(spec))
    out = tmp_path / "pendulum.gif"
    cli.main(["eval", agent, "--episodes", "1", "--video", str(out)])  # trained on Pendulum-v1: the bridge
    assert f"video {out}" in capsys.readouterr().out
    from PIL import Image

    with Image.open(out) as gif:
        assert gif.format == "GIF" and gif.n_frames > 100 and gif.size == (500, 500)


class NoRender(gymnasium.Env):
    """A Gymnasium env with Pendulum's spaces that cannot render frames."""

    metadata = {"render_modes": []}

    def __init__(self):
        self.inner = gymnasium.make("Pendulum-v1")
        self.observation_space, self.action_space = self.inner.observation_space, self.inner.action_space

    def reset(self, *, seed=None, options=None):
        return self.inner.reset(seed=seed)

    def step(self, action):
        return self.inner.step(action)


def test_eval_video_on_an_env_without_rgb_array_is_one_line(capsys, tmp_path):
    gymnasium.register("RlkitNoRender-v0", entry_point=NoRender, max_episode_steps=50)
    try:
        with envs.make("gymnasium:RlkitNoRender-v0") as env:
            agent = export_agent(tmp_path / "a.rlkit", "sac", *tiny_sac(env.spec))
        line = one_error_line(capsys, ["eval", agent, "--episodes", "1", "--video", str(tmp_path / "v.gif")])
        assert "RlkitNoRender-v0" in line and "rgb_array" in line, line
        assert not (tmp_path / "v.gif").exists()
    finally:
        gymnasium.registry.pop("RlkitNoRender-v0")
