"""``optuna:`` sweeps (issue 15): Optuna asks each trial's values, the engine runs them, the IQM over seeds is
told back; the study persists in the sweep directory, so a re-launch continues it instead of starting over, and
bad blocks are one line before any trial is asked."""

from __future__ import annotations

import io
import json

import pytest

from experiments import report, sweep
from rlkit.configs import ConfigError

SPEC = {
    "agent": "ppo",
    "env": "cartpole",
    "seeds": 2,
    "total_steps": 2048,
    "eval_every": 1,
    "config": {"num_envs": 4, "num_steps": 128, "iterations_per_chunk": 2, "hidden_sizes": [16]},
    "optuna": {"trials": 3, "parallel": 2, "seed": 0, "sampler": "random",
               "fields": {"learning_rate": {"log_uniform": [1.0e-4, 1.0e-2]}, "num_minibatches": {"choice": [2, 4]}}},
}  # fmt: skip


def test_optuna_asks_runs_and_tells_and_a_relaunch_continues(tmp_path):
    import optuna

    out = tmp_path / "sweep"
    status = sweep.launch(SPEC, out=str(out), stream=io.StringIO())
    assert sorted(status) == ["optuna-0000", "optuna-0001", "optuna-0002"]  # 2 asked at once, then 1
    assert set(status.values()) == {"finished"}
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(out / "optuna.journal"))
    )
    study = optuna.load_study(study_name="sweep", storage=storage)
    told = {t.number: t.value for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE}
    assert sorted(told) == [0, 1, 2]
    for t in study.trials:  # the objective is the trial's IQM over seeds, and its values were applied
        trial_dir = out / "trials" / f"optuna-{t.number:04d}"
        summary = json.loads((trial_dir / "summary.json").read_text())
        assert told[t.number] == pytest.approx(summary["groups"][0]["final_iqm"])
        config = json.loads((trial_dir / "config.json").read_text())["config"]
        assert config["learning_rate"] == pytest.approx(t.params["learning_rate"])
        assert 1e-4 <= t.params["learning_rate"] <= 1e-2
        assert config["num_minibatches"] == json.loads(t.params["num_minibatches"])
    lines = io.StringIO()
    more = dict(SPEC, optuna=SPEC["optuna"])
    sweep.launch(more, out=str(out), stream=lines)  # 3 complete: nothing asked, nothing run
    assert "optuna trials" not in lines.getvalue()
    assert len(optuna.load_study(study_name="sweep", storage=storage).trials) == 3
    table = report.report(out, reps=200, stream=io.StringIO())["per_env"]["cartpole"]
    assert len(table) == 3 and all("learning_rate=" in label for label in table)
    with pytest.raises(ConfigError, match="holds another sweep"):
        sweep.launch(SPEC | {"seeds": 3}, out=str(out), stream=io.StringIO())


@pytest.mark.parametrize(
    "block, message",
    [
        ({"trials": 0}, r"optuna.trials must be an integer >= 1"),
        ({"direction": "up"}, r"optuna.direction = 'up'"),
        (
            {"fields": {"learning_rat": {"uniform": [0.001, 0.01]}}},
            r"optuna.fields.learning_rat: .*Did you mean 'learning_rate'",
        ),
        ({"fields": {"learning_rate": {"uniform": [-1.0, 0.01]}}}, r"learning_rate = -1.0 is out of range"),
        ({"fields": {"hidden_sizes": {"choice": [[16], ["x"]]}}}, r"takes a list of ints"),
        ({"trails": 3}, r"optuna key 'trails' is not known; did you mean 'trials'"),
    ],
)
def test_a_bad_optuna_block_is_one_line_before_any_trial(tmp_path, block, message):
    spec = SPEC | {"optuna": SPEC["optuna"] | block}
    with pytest.raises(ConfigError, match=message) as info:
        sweep.launch(spec, out=str(tmp_path / "s"), stream=io.StringIO())
    assert "\n" not in str(info.value)
    assert not (tmp_path / "s").exists()
