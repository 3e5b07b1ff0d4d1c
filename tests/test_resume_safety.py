"""Nothing silent about a run directory: changed settings on resume, resuming nothing, damaged checkpoints, and
logs that stay exact (each step once, JSON lines and TensorBoard) across restarts.

The refusals and the applied budget change go through ``rlkit train`` (``experiments.train.main``) on a real SAC
run; the restart / damage / log cases use a toy trainer whose chunk compiles in well under a second, but whose
checkpoints are real orbax checkpoints written by ``train`` (many arrays and a typed PRNG key, like an agent's).
"""

from __future__ import annotations

import glob
import json
import os
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct

from experiments.train import main
from rlkit import configs
from rlkit.checkpointing import Checkpointer
from rlkit.configs import ConfigError
from rlkit.logger import RunLogger, read_jsonl, read_tensorboard_scalars, truncate_jsonl, truncate_tensorboard
from rlkit.sweeps import make_runs
from rlkit.training import ResumeError, Trainer, train

SAC = [
    "--agent",
    "sac",
    "--env",
    "pendulum",
    "--seeds",
    "1",
    "--hidden-sizes",
    "16",
    "16",
    "--learning-starts",
    "200",
    "--buffer-size",
    "2000",
    "--chunk-steps",
    "100",
    "--batch-size",
    "32",
    "--checkpoint-every",
    "1",
    "--eval-every",
    "0",
]


def _snapshot(d: Path) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def sac_run(tmp_path_factory):
    """A finished 200-step SAC run (checkpoints 100, 200)."""
    d = tmp_path_factory.mktemp("sac") / "run"
    main([*SAC, "--total-steps", "200", "--log-dir", str(d)])
    return d


@pytest.mark.parametrize(
    "flags, expected",
    [
        (["--q-lr", "0.0003"], ["config.q_lr: checkpoint 0.001, now 0.0003"]),  # a sweepable field
        (
            ["--hidden-sizes", "32", "32"],
            ["config.hidden_sizes: checkpoint [16, 16], now [32, 32]"],
        ),  # static
        (
            ["--env", "mountain-car-continuous"],
            ["run_args.env: checkpoint 'pendulum', now 'mountain-car-continuous'"],
        ),
        (
            ["--q-lr", "0.0003", "--seeds", "2"],  # every differing field, in one message
            [
                "config.q_lr: checkpoint 0.001, now 0.0003",
                "run_args.seeds: checkpoint 1, now 2",
                "holds runs",
            ],
        ),
    ],
)
def test_resume_with_a_changed_setting_is_refused_in_one_line(sac_run, flags, expected, capsys):
    before = _snapshot(sac_run)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main([*SAC, "--total-steps", "200", "--log-dir", str(sac_run), "--resume", *flags])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"rlkit train: error: cannot resume {sac_run}"), err
    for text in expected:
        assert text in lines[0], lines[0]
    assert "total_steps" not in lines[0].split(". Resume with")[0]  # the same budget: nothing to say about it
    assert _snapshot(sac_run) == before  # nothing written: not the config, not a log row


def test_resuming_a_directory_without_a_run_says_so(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    for d, what in [(tmp_path / "missing", "does not exist"), (empty, "holds no run")]:
        with pytest.raises(SystemExit) as exit_info:
            main([*SAC, "--total-steps", "300", "--log-dir", str(d), "--resume"])
        err = capsys.readouterr().err.strip()
        assert exit_info.value.code == 2 and len(err.splitlines()) == 1
        assert f"cannot resume {d}: it {what}" in err and "without resume=True (--resume)" in err
    assert not (tmp_path / "missing").exists() and not any(empty.iterdir())  # nothing started there


# -- a toy trainer: real train() runs and orbax checkpoints, compiled in a moment ---------------------------------


@struct.dataclass
class ToyConfig:
    lr: float = configs.param(0.1, low=0.0)
    width: int = configs.param(3, static=True)


def _toy_trainer(config: ToyConfig) -> Trainer:
    def init(cfg, key):  # many small arrays and a typed key, like an agent's state
        return {
            "w": jnp.zeros(config.width),
            "extra": [jnp.full((i + 1,), float(i)) for i in range(30)],
            "key": key,
        }

    def run_chunk(cfg, state):
        key, k = jax.random.split(state["key"])
        w = state["w"] + cfg.lr * jax.random.normal(k, state["w"].shape)
        return {**state, "w": w, "key": key}, {"episode_return": w.sum()}

    return Trainer("toy", init, run_chunk, steps_per_chunk=100)


class Stop(Exception):
    """Ends a run after a chunk, as a kill would (before any later checkpoint)."""


def _toy(log_dir, total_steps, *, resume=False, checkpoint_every=1, stop_after=None):
    config = ToyConfig()

    def on_chunk(c, _):
        if c == stop_after:
            raise Stop

    run_args = {  # what `rlkit train` records of its flags
        "env": "toy",
        "seeds": 2,
        "total_steps": total_steps,
        "log_dir": str(log_dir),
        "resume": resume,
        "checkpoint_every": checkpoint_every,
    }
    return train(
        _toy_trainer(config),
        make_runs(config, seeds=2),
        total_steps=total_steps,
        log_dir=log_dir,
        checkpoint_every=checkpoint_every,
        resume=resume,
        console=False,
        config_record={"run_args": run_args, "config": configs.to_dict(config)},
        on_chunk=on_chunk,
    )


def _steps_once(d: Path, expected: list[int]) -> None:
    for run in ("seed_0", "seed_1"):
        rows = read_jsonl(d / run / "metrics.jsonl")
        assert [r["step"] for r in rows] == expected
        scalars = read_tensorboard_scalars(d / run)["episode_return"]
        assert [s for s, _ in scalars] == expected
        np.testing.assert_allclose([v for _, v in scalars], [r["episode_return"] for r in rows], rtol=1e-6)


def test_a_resumed_run_logs_each_step_once_in_jsonl_and_tensorboard(tmp_path, capsys):
    with pytest.raises(Stop):  # checkpoint at 200; step 300 logged, then "killed"
        _toy(tmp_path, 500, checkpoint_every=2, stop_after=3)
    with open(tmp_path / "seed_0" / "metrics.jsonl", "a") as f:
        f.write('{"step": 400, "wall_')  # a write the kill cut short
    (event_file,) = glob.glob(str(tmp_path / "seed_0" / "*tfevents*"))
    with open(event_file, "ab") as f:
        f.write(b"\x1f\x00\x00")  # and a TensorBoard record cut short
    assert [s for s, _ in read_tensorboard_scalars(tmp_path / "seed_0")["episode_return"]] == [100, 200, 300]

    result = _toy(tmp_path, 500, resume=True)
    assert f"resuming {tmp_path} from step 200 (checkpoint 200 of 500)" in capsys.readouterr().out
    _steps_once(tmp_path, [100, 200, 300, 400, 500])
    reference = _toy(tmp_path / "ref", 500)  # and the resumed run is the uninterrupted one
    np.testing.assert_array_equal(np.asarray(result.state["w"]), np.asarray(reference.state["w"]))


def test_resume_applies_a_longer_budget_and_records_it(tmp_path, capsys):
    _toy(tmp_path / "run", 300)
    d = tmp_path / "moved"
    (tmp_path / "run").rename(d)  # moving a run directory is a change that may be applied, too
    capsys.readouterr()
    _toy(d, 700, resume=True, checkpoint_every=2)
    assert f"resuming {d} from step 300 (checkpoint 300 of 700)" in capsys.readouterr().out
    _steps_once(d, [100, 200, 300, 400, 500, 600, 700])
    with Checkpointer(d / "checkpoints") as ckpt:
        assert ckpt.all_steps() == [400, 600, 700]  # every 2 chunks from now on, and the last (3 kept)
        saved = ckpt.saved_config(700)
    record = json.loads((d / "config.json").read_text())
    assert record == saved  # config.json and the checkpoints carry the same, applied record
    assert record["total_steps"] == record["run_args"]["total_steps"] == 700
    (resume,) = record["resumes"]
    assert resume == {
        "step": 300,
        "changed": {
            "run_args.checkpoint_every": {"before": 1, "now": 2},
            "run_args.log_dir": {"before": str(tmp_path / "run"), "now": str(d)},
            "run_args.resume": {"before": False, "now": True},
            "run_args.total_steps": {"before": 300, "now": 700},
            "total_steps": {"before": 300, "now": 700},
        },
    }
    _toy(d, 800, resume=True, checkpoint_every=2)  # a second resume adds to the history
    history = json.loads((d / "config.json").read_text())["resumes"]
    assert [r["step"] for r in history] == [300, 700] and set(history[1]["changed"]) == {
        "run_args.total_steps",
        "total_steps",
    }


def test_a_run_restarted_before_its_first_checkpoint_logs_each_step_once(tmp_path, capsys):
    with pytest.raises(Stop):
        _toy(tmp_path, 300, checkpoint_every=10, stop_after=2)  # logs at 100, 200; no checkpoint yet
    assert not Checkpointer(tmp_path / "checkpoints").all_steps()
    with pytest.raises(
        FileExistsError, match="holds the logs of a run that has no checkpoint yet; pass resume=True"
    ):
        _toy(tmp_path, 300)
    capsys.readouterr()
    _toy(tmp_path, 300, resume=True)
    assert f"restarting {tmp_path} from step 0" in capsys.readouterr().out
    _steps_once(tmp_path, [100, 200, 300])
    (resume,) = json.loads((tmp_path / "config.json").read_text())["resumes"]
    assert resume["step"] == 0 and "restarted" in resume


def _damage_arrays(step_dir: Path, how: str) -> None:
    files = [
        f for f in glob.glob(str(step_dir / "state" / "**" / "d" / "*"), recursive=True) if os.path.isfile(f)
    ]
    assert files
    for f in files:
        if how == "truncate":
            with open(f, "r+b") as fh:
                fh.truncate(os.path.getsize(f) // 2)
        else:
            os.remove(f)


DAMAGE = {
    "truncated arrays": (lambda p: _damage_arrays(p, "truncate"), "OUT_OF_RANGE reading"),
    "deleted arrays": (lambda p: _damage_arrays(p, "delete"), "NOT_FOUND reading"),
    "garbage manifest": (lambda p: (p / "state" / "manifest.ocdbt").write_bytes(b"xx"), "DATA_LOSS reading"),
    "garbage config": (
        lambda p: (p / "config" / "metadata").write_text("{not json"),
        "config item cannot be read",
    ),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_latest_checkpoint_is_named_and_the_newest_that_restores_is_used(tmp_path, damage, capfd):
    done = _toy(tmp_path, 300)
    partial = (
        tmp_path / "checkpoints" / "400.orbax-checkpoint-tmp-1234"
    )  # an interrupted save: never a candidate
    (partial / "state").mkdir(parents=True)
    breaker, reason = DAMAGE[damage]
    breaker(tmp_path / "checkpoints" / "300")
    capfd.readouterr()

    result = _toy(tmp_path, 300, resume=True)
    out, err = capfd.readouterr()
    lines = out.strip().splitlines()
    assert len(lines) == 2 and err == "", (out, err)  # two lines: no traceback, no orbax / asyncio noise
    assert lines[0].startswith(f"checkpoint 300 of {tmp_path} cannot be restored (") and reason in lines[0]
    assert lines[0].endswith(f"moved it to {tmp_path / 'damaged_checkpoints' / '300'}")
    assert lines[1] == (
        f"resuming {tmp_path} from step 200 (checkpoint 200 of 300) — the newest one that restores"
    )
    assert (tmp_path / "damaged_checkpoints" / "300" / "state").is_dir() and partial.is_dir()  # kept, both
    np.testing.assert_array_equal(np.asarray(result.state["w"]), np.asarray(done.state["w"]))
    _steps_once(tmp_path, [100, 200, 300])
    with Checkpointer(tmp_path / "checkpoints") as ckpt:
        assert ckpt.all_steps() == [100, 200, 300]  # 300 saved again, from the resumed run


def test_a_damaged_checkpoint_fails_in_one_line_without_orbax_noise(tmp_path, capfd, caplog):
    done = _toy(tmp_path, 100)
    (tmp_path / "checkpoints" / "100" / "state" / "manifest.ocdbt").write_bytes(b"xx")
    capfd.readouterr()
    for _ in range(6):  # orbax's abandoned concurrent reads report late, and only about every other time
        with Checkpointer(tmp_path / "checkpoints") as ckpt:  # (a fresh one: TensorStore caches the failure)
            with pytest.raises(
                ConfigError, match=r"^checkpoint .*/100 cannot be read: DATA_LOSS reading \S+$"
            ):
                ckpt.restore(done.state, 100)
    assert capfd.readouterr() == ("", "")  # and pytest's unraisable-exception check sees nothing either
    assert not [r for r in caplog.records if r.name == "asyncio"]


def test_stragglers_that_report_after_a_failed_read_are_dropped_and_nothing_else(tmp_path, monkeypatch):
    import sys
    import types

    seen = []
    monkeypatch.setattr(sys, "unraisablehook", seen.append)
    done = _toy(tmp_path, 100)
    (tmp_path / "checkpoints" / "100" / "state" / "manifest.ocdbt").write_bytes(b"xx")
    with Checkpointer(tmp_path / "checkpoints") as ckpt, pytest.raises(ConfigError):
        ckpt.restore(done.state, 100)
    seen.clear()

    def report(exc):  # what a read abandoned by orbax reports long after the restore returned
        sys.unraisablehook(types.SimpleNamespace(exc_value=exc, exc_traceback=None, object=None))

    report(RuntimeError("Event loop is closed"))
    assert seen == []
    report(ValueError("the user's own"))
    assert [str(u.exc_value) for u in seen] == ["the user's own"]


def test_when_no_checkpoint_restores_resume_fails_with_one_error(tmp_path):
    _toy(tmp_path, 200)
    for step in (100, 200):
        _damage_arrays(tmp_path / "checkpoints" / str(step), "truncate")
    before = _snapshot(tmp_path)
    with pytest.raises(ResumeError) as info:
        _toy(tmp_path, 300, resume=True)
    message = str(info.value)
    assert isinstance(info.value, ConfigError) and "\n" not in message
    assert message.startswith(
        f"cannot resume {tmp_path}: none of its checkpoints can be restored (step 200: "
    )
    assert "; step 100: OUT_OF_RANGE reading" in message
    assert _snapshot(tmp_path) == before  # nothing moved, nothing logged
    for step in (100, 200):  # configs unreadable too: refused before anything compiles
        (tmp_path / "checkpoints" / str(step) / "config" / "metadata").write_text("[")
    with pytest.raises(ResumeError, match=r"step 200: its config item cannot be read \(JSONDecodeError"):
        _toy(tmp_path, 300, resume=True)


def test_a_budget_that_ends_before_the_checkpoint_is_refused(tmp_path):
    _toy(tmp_path, 300)
    with pytest.raises(ResumeError, match=r"total_steps = 200 ends before step 300.*pass total_steps >= 300"):
        _toy(tmp_path, 200, resume=True)


def test_log_truncation_never_leaves_a_half_written_file(tmp_path, monkeypatch):
    with RunLogger(tmp_path, ["run"], console=False) as logger:
        for step in (1, 2, 3):
            logger.log(step, {"x": float(step)})
    run = tmp_path / "run"
    before = _snapshot(run)

    def crash(*_):
        raise OSError("killed before the rename")

    monkeypatch.setattr(os, "replace", crash)
    for truncate in (truncate_jsonl, truncate_tensorboard):
        with pytest.raises(OSError, match="killed before the rename"):
            truncate(run / "metrics.jsonl" if truncate is truncate_jsonl else run, 2)
    assert {
        k: v for k, v in _snapshot(run).items() if not k.endswith(".tmp")
    } == before  # the old files, intact
    assert [s for s, _ in read_tensorboard_scalars(run)["x"]] == [1, 2, 3]  # TensorBoard never reads the copy
    monkeypatch.undo()
    assert truncate_jsonl(run / "metrics.jsonl", 2) == 1 and truncate_tensorboard(run, 2) == 1
    assert [r["step"] for r in read_jsonl(run / "metrics.jsonl")] == [1, 2]
    assert [s for s, _ in read_tensorboard_scalars(run)["x"]] == [1, 2]


def test_a_logger_reopened_in_the_same_second_writes_an_event_file_that_sorts_last(tmp_path):
    """TensorBoard reads event files in name order; a name from the same second with a larger counter
    (``.9`` vs ``.10``) or another host would be read after the resumed file, out of step order."""
    with RunLogger(tmp_path / "first", ["run"], console=False) as logger:
        logger.log(100, {"x": 1.0})
    (old,) = (tmp_path / "first" / "run").glob("*tfevents*")
    run = tmp_path / "run"
    run.mkdir()
    fields = old.name.split(".")
    fields[3], fields[4] = f"{int(time.time()):010d}", "zzzz"  # this second, a name that sorts after ours
    old.rename(run / ".".join(fields))
    with RunLogger(tmp_path, ["run"], console=False) as logger:
        logger.log(200, {"x": 2.0})
    assert [s for s, _ in read_tensorboard_scalars(run)["x"]] == [100, 200]
