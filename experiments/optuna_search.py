"""``optuna:`` in a sweep spec: an adaptive search where Optuna picks each trial's values from the results so far.

    agent: ppo
    env: cartpole
    seeds: 3
    total_steps: 50000
    optuna:
      trials: 20              # completed trials wanted
      parallel: 4             # trials asked (and run by the engine) at once
      seed: 0                 # the sampler's seed: the same spec asks the same first values
      direction: maximize     # or minimize
      sampler: tpe            # tpe | random
      fields: {learning_rate: {log_uniform: [1.0e-4, 1.0e-2]}, hidden_sizes: {choice: [[32], [64, 64]]}}

Each Optuna trial is one sweep trial (one ``rlkit train`` run in ``OUT/trials/optuna-NNNN/``, its seeds vmapped)
with every searched value fixed — static ones included, so each trial compiles its own program — and its objective
is the IQM over seeds of the run's final score (``summary.json``'s ``final_iqm``: ``eval_return``, or
``episode_return`` without evaluations). Rounds of ``parallel`` trials are asked, launched on the sweep's engine
(local, Ray, SLURM) and told. The study lives in ``OUT/optuna.journal`` (Optuna's ``JournalStorage``, a file, no
database server), so re-launching the same spec continues it: completed trials are kept, a trial interrupted
mid-run is re-run from its checkpoint with the values it was asked with, and the search stops at ``trials``
completed. ``rlkit report OUT`` reports every completed trial like any other sweep. The fields, distributions and
the agent against the env are validated before the first trial is asked (the distributions' bounds checked
against the fields' ranges). Optuna is an extra: ``pip install "rlkit[optuna]"``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from rlkit.configs import ConfigError

KEYS = ("trials", "parallel", "seed", "direction", "sampler", "fields")


def _optuna():
    try:
        import optuna
    except ImportError:
        raise ConfigError(
            'sweep spec: optuna needs Optuna, which is not installed: pip install "rlkit[optuna]" (in a checkout: '
            'pip install -e ".[optuna]")'
        ) from None
    return optuna


def settings(spec: dict) -> dict:
    """The ``optuna:`` block, checked (one ``ConfigError`` line for the first problem)."""
    from experiments.sweep import _unknown, distribution

    block = spec["optuna"]
    if not isinstance(block, dict):
        raise ConfigError(f"sweep spec: optuna must be a mapping ({', '.join(KEYS)}), got {block!r}")
    for key in block:
        if key not in KEYS:
            raise _unknown("sweep spec: optuna key", key, KEYS)
    if spec.get("grid") or spec.get("random"):
        raise ConfigError("sweep spec: optuna searches on its own; give grid / random or optuna, not both")
    for key in ("agent", "env"):
        if isinstance(spec.get(key), list):
            raise ConfigError(
                f"sweep spec: optuna searches one agent on one env; {key} is a list {spec[key]}"
            )
    out = {"trials": block.get("trials"), "parallel": block.get("parallel", 1), "seed": block.get("seed", 0),
           "direction": block.get("direction", "maximize"), "sampler": block.get("sampler", "tpe"),
           "fields": block.get("fields")}  # fmt: skip
    for key in ("trials", "parallel"):
        if not isinstance(out[key], int) or isinstance(out[key], bool) or out[key] < 1:
            raise ConfigError(f"sweep spec: optuna.{key} must be an integer >= 1, got {out[key]!r}")
    if out["direction"] not in ("maximize", "minimize"):
        raise ConfigError(f"sweep spec: optuna.direction = {out['direction']!r}: maximize or minimize")
    if out["sampler"] not in ("tpe", "random"):
        raise ConfigError(f"sweep spec: optuna.sampler = {out['sampler']!r}: tpe or random")
    fields = out["fields"]
    if not isinstance(fields, dict) or not fields:
        raise ConfigError(
            "sweep spec: optuna.fields must map fields to distributions, e.g. {lr: {log_uniform: [1e-4, 1e-2]}}"
        )
    for name, dist in fields.items():
        distribution(dist, f"sweep spec: optuna.fields.{name}")
    return out


def _ends(dist: dict) -> list:
    """The values a distribution (checked by ``settings``) can reach at its ends (every value of a choice)."""
    from experiments.sweep import distribution

    kind, arg = distribution(dist, "")
    if kind == "choice":
        return arg
    return [int(arg[0]), int(arg[1])] if kind == "int_uniform" else list(arg)


def _suggest(trial, name: str, dist: dict):
    ((kind, arg),) = dist.items()
    if kind == "choice":  # Optuna's categorical takes primitives: lists go through JSON
        return json.loads(trial.suggest_categorical(name, [json.dumps(v) for v in arg]))
    if kind == "int_uniform":
        return trial.suggest_int(name, int(arg[0]), int(arg[1]))
    return trial.suggest_float(name, float(arg[0]), float(arg[1]), log=kind == "log_uniform")


def _trial(template, number: int, values: dict):
    """The sweep trial of Optuna trial ``number``: the template's config with ``values`` fixed."""
    from experiments.sweep import Trial, _jsonable, check_trial, coerce
    from rlkit import registry

    cls = registry.get(template.agent).config_cls
    fixed = {n: coerce(cls, n, v, f"optuna.fields.{n}") for n, v in values.items()}
    trial = Trial(f"optuna-{number:04d}", template.agent, template.env, template.run,
                  _jsonable(template.config | fixed), [{}], _jsonable(template.label | fixed))  # fmt: skip
    check_trial(trial)
    return trial


def launch(
    spec: dict, out_dir: Path, runner, engine: str, *, dry_run: bool = False, stream=sys.stdout
) -> dict:
    """Run the search until ``trials`` are complete; returns ``{trial name: status}``."""
    from experiments.sweep import expand, record_spec, trial_status

    optuna = _optuna()
    opts = settings(spec)
    template = expand({k: v for k, v in spec.items() if k != "optuna"})[0]
    from rlkit import configs, registry

    cls = registry.get(template.agent).config_cls
    for name, dist in opts["fields"].items():  # every end of every distribution is a valid trial
        try:
            configs.check_names(cls, [name])
            for value in _ends(dist):
                _trial(template, 0, {name: value})
        except ConfigError as err:
            raise ConfigError(f"sweep spec: optuna.fields.{name}: {err}") from None
    if dry_run:
        print(
            f"  optuna: {opts['trials']} trials of {template.agent} on {template.env}, {opts['parallel']} at once",
            file=stream,
        )
        return {}
    record_spec(out_dir, spec)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(out_dir / "optuna.journal"))
    )
    sampler = (optuna.samplers.TPESampler(seed=opts["seed"]) if opts["sampler"] == "tpe"
               else optuna.samplers.RandomSampler(seed=opts["seed"]))  # fmt: skip
    study = optuna.create_study(study_name="sweep", storage=storage, load_if_exists=True,
                                direction=opts["direction"], sampler=sampler)  # fmt: skip
    state = optuna.trial.TrialState
    while True:
        complete = [t for t in study.get_trials(deepcopy=False) if t.state == state.COMPLETE]
        if len(complete) >= opts["trials"]:
            break
        # interrupted earlier (asked, never told): re-run with the values they were asked with
        batch = [(t.number, {n: json.loads(v) if n in _choices(opts) else v for n, v in t.params.items()})
                 for t in study.get_trials(deepcopy=False) if t.state == state.RUNNING]  # fmt: skip
        while len(batch) < opts["parallel"] and len(complete) + len(batch) < opts["trials"]:
            asked = study.ask()
            batch.append((asked.number, {n: _suggest(asked, n, d) for n, d in opts["fields"].items()}))
        trials = [_trial(template, number, values) for number, values in batch]
        _append(out_dir, trials)
        todo = [t for t in trials if trial_status(out_dir, t) != "finished"]
        print(f"rlkit sweep: optuna trials {[t.name for t in trials]} on {engine} "
              f"({len(complete)} of {opts['trials']} complete)", file=stream)  # fmt: skip
        failure = None
        try:
            runner([t.to_dict() for t in todo], [str(out_dir / "trials" / t.name) for t in todo])
        except Exception as err:  # noqa: BLE001 - tell what finished, then re-raise
            failure = err
        for (number, _), trial in zip(batch, trials):
            summary = out_dir / "trials" / trial.name / "summary.json"
            if summary.is_file():
                study.tell(number, json.loads(summary.read_text())["groups"][0]["final_iqm"])
            elif failure is None:
                study.tell(number, state=state.FAIL)
        if failure is not None:
            raise failure
    return {t.name: trial_status(out_dir, t) for t in _saved(out_dir)}


def _choices(opts: dict) -> set[str]:
    return {n for n, d in opts["fields"].items() if next(iter(d)) == "choice"}


def _saved(out_dir: Path):
    from experiments.sweep import Trial

    return [Trial(**t) for t in json.loads((out_dir / "sweep.json").read_text())["trials"]]


def _append(out_dir: Path, trials) -> None:
    """Add the trials to ``sweep.json`` (what ``rlkit report`` reads), once each."""
    path = out_dir / "sweep.json"
    saved = json.loads(path.read_text())
    names = {t["name"] for t in saved["trials"]}
    saved["trials"] += [t.to_dict() for t in trials if t.name not in names]
    path.write_text(json.dumps(saved, indent=2))
