"""``rlkit sweep SPEC``: an ablation sweep from one spec file, as separate trials launched by an existing engine.

    rlkit sweep sweeps/lr.yaml                       # local worker processes (the spec's engine)
    rlkit sweep sweeps/lr.yaml --engine ray --address 127.0.0.1:6379
    rlkit sweep sweeps/lr.yaml --engine slurm        # submitit: one SLURM job per trial
    rlkit sweep sweeps/lr.yaml --dry-run             # validate and list the trials, start nothing
    rlkit report sweeps/lr                           # one table of IQMs with CIs (experiments/report.py)

A spec (YAML, or a Python file defining ``SPEC = {...}``)::

    agent: sac                  # one registered agent, or a list of them (one trial each)
    env: pendulum               # one env id (gymnasium:<id> too), or a list
    seeds: 3
    total_steps: 20000          # and any other flag of `rlkit train`: eval_every, checkpoint_every, demos, ...
    config: {hidden_sizes: [64, 64], learning_starts: 1000}     # fixed values (several agents: {sac: {...}, ...})
    grid:                       # every combination
      hidden_sizes: [[32, 32], [64, 64]]
      q_lr: [1.0e-3, 3.0e-4]
    random:                     # or (also): `samples` points drawn from per-field distributions (or an
                                #   adaptive `optuna:` search instead: experiments/optuna_search.py)
      samples: 4
      seed: 0
      fields: {tau: {log_uniform: [0.001, 0.02]}, batch_size: {choice: [128, 256]}}
    engine: local               # local | ray | slurm
    engine_options: {workers: 2}                 # ray: {address, num_cpus, num_gpus}; slurm: submitit's
    out: sweeps/lr              # the sweep directory

**What becomes a trial.** A point's *sweepable* values (learning rates, coefficients: fields that do not fix
shapes) vary inside one compiled program — the runs axis of ``rlkit.sweeps``, seeds innermost, exactly as ``rlkit
train --sweep`` — and its *static* values (network sizes, env counts, flags), the agent and the env make separate
trials: one ``rlkit train`` run each, in ``OUT/trials/<name>/``, with its own checkpoints. Grid points are the
product of the grid's fields (times every random sample when both are given).

**Launching.** Every trial is validated first — agent, env, field names (closest names suggested), values and
ranges, the agent against the env's spaces — and nothing starts unless all are. Then an existing engine runs them,
never a scheduler of ours: ``local`` a ``concurrent.futures`` process pool (a fresh spawned process per trial),
``ray`` one Ray task per trial with its resources declared (``ray.init(address=...)``), ``slurm`` one submitit
job per trial (``cluster: local`` runs submitit's local executor, for tests). Re-launching the same spec resumes:
a finished trial (its ``summary.json`` written) is not re-run, an interrupted one resumes from its newest
checkpoint (``rlkit train --resume``: bit-exact), an unstarted one starts. A different spec into the same
directory is refused (nothing saved is overwritten); only the engine and its options may change.
"""

from __future__ import annotations

import dataclasses
import difflib
import itertools
import json
import math
import re
import sys
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rlkit.configs import ConfigError

ENGINES = ("local", "ray", "slurm")
#: the spec's own keys; every other top-level key must be a flag of `rlkit train` (``RUN_KEYS``)
SPEC_KEYS = ("agent", "env", "config", "grid", "random", "optuna", "engine", "engine_options", "out", "name")
#: `rlkit train` flags a spec may set for every trial (agent, env, sweep, log_dir and resume are the sweep's)
RUN_KEYS = (
    "seeds",
    "total_steps",
    "eval_every",
    "checkpoint_every",
    "demos",
    "expert",
    "expert_resets",
    "async_envs",
    "devices_per_run",
)
DISTRIBUTIONS = ("uniform", "log_uniform", "int_uniform", "choice")


@dataclass(frozen=True)
class Trial:
    """One compiled program: an agent on an env with its static values; ``points`` vary inside it."""

    name: str
    agent: str
    env: str
    run: dict  # RunArgs fields (seeds, total_steps, ...)
    config: dict  # the config's fixed and static values
    points: list = field(default_factory=list)  # sweepable values per point ([{}]: none swept)
    label: dict = field(default_factory=dict)  # what distinguishes this trial (agent / env / static values)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# ============================================================================================== the spec file
def load_spec(path: str | Path) -> dict:
    """The spec as a dict: a YAML file (``.yaml`` / ``.yml``) or a Python file defining ``SPEC``."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"sweep spec {path}: no such file")
    if path.suffix in (".yaml", ".yml"):
        import yaml

        try:
            spec = yaml.safe_load(path.read_text())
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
            raise ConfigError(
                f"sweep spec {path}: not valid YAML{where}: {getattr(err, 'problem', err)}"
            ) from None
    elif path.suffix == ".py":
        namespace: dict[str, Any] = {"__file__": str(path)}
        exec(compile(path.read_text(), str(path), "exec"), namespace)  # noqa: S102 - the user's own spec
        if "SPEC" not in namespace:
            raise ConfigError(f"sweep spec {path}: a Python spec must define SPEC = {{...}}")
        spec = namespace["SPEC"]
    else:
        raise ConfigError(
            f"sweep spec {path}: expected a .yaml, .yml or .py file, got {path.suffix or 'no suffix'}"
        )
    if not isinstance(spec, dict):
        raise ConfigError(
            f"sweep spec {path}: expected a mapping of keys (agent, env, grid, ...), got {spec!r}"
        )
    return spec


def _unknown(kind: str, name: str, known) -> ConfigError:
    close = difflib.get_close_matches(str(name), list(known), n=3)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return ConfigError(f"{kind} {name!r} is not known{hint} (known: {', '.join(map(str, known))})")


def _as_list(value, key: str) -> list:
    values = value if isinstance(value, list) else [value]
    if not values or not all(isinstance(v, str) and v for v in values):
        raise ConfigError(f"sweep spec: {key} must be a name or a non-empty list of names, got {value!r}")
    return values


# ============================================================================================== field values
def coerce(config_cls, name: str, value, where: str):
    """``value`` (from YAML or Python) as the type of ``config_cls.name``, or a one-line ``ConfigError``: YAML
    reads ``1e-3`` as a string and lists where the config holds tuples."""
    hint = typing.get_type_hints(config_cls)[name]
    args = typing.get_args(hint)
    if value is None:
        if type(None) in args:
            return None
        raise ConfigError(f"{where} = None is not allowed: {config_cls.__name__}.{name} takes {_kind(hint)}")
    if type(None) in args:  # X | None with a value
        hint = next(a for a in args if a is not type(None))
    try:
        if hint is bool:
            if isinstance(value, str) and value.lower() in ("true", "false"):
                return value.lower() == "true"
            if not isinstance(value, bool):
                raise ValueError
            return value
        if hint is int:
            number = float(value) if not isinstance(value, bool) else math.nan
            if not number.is_integer():
                raise ValueError
            return int(number)
        if hint is float:
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if hint is str:
            if not isinstance(value, str):
                raise ValueError
            return value
        if typing.get_origin(hint) is tuple:
            elem = typing.get_args(hint)[0]
            if not isinstance(value, list | tuple):
                raise ValueError
            return tuple(elem(float(v)) if elem is int and float(v).is_integer() else elem(v) for v in value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where} = {value!r}: {config_cls.__name__}.{name} takes {_kind(hint)}") from None
    return value


def _kind(hint) -> str:
    if typing.get_origin(hint) is tuple:
        return f"a list of {typing.get_args(hint)[0].__name__}s, e.g. [64, 64]"
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(hint, str(hint))


def distribution(dist, where: str) -> tuple[str, list | tuple[float, float]]:
    """``(kind, choices)`` or ``(kind, (low, high))`` of a search distribution (random and optuna searches), or a
    one-line ``ConfigError`` naming ``where``."""
    if not isinstance(dist, dict) or len(dist) != 1:
        raise ConfigError(f"{where}: expected one of {{{', '.join(DISTRIBUTIONS)}: ...}}, got {dist!r}")
    ((kind, arg),) = dist.items()
    if kind not in DISTRIBUTIONS:
        raise _unknown(f"{where}: distribution", kind, DISTRIBUTIONS)
    if kind == "choice":
        if not isinstance(arg, list) or not arg:
            raise ConfigError(f"{where}: choice takes a non-empty list of values, got {arg!r}")
        return kind, list(arg)
    try:
        low, high = (float(a) for a in arg)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: {kind} takes [low, high], got {arg!r}") from None
    if not low < high or (kind == "log_uniform" and low <= 0):
        need = "0 < low < high" if kind == "log_uniform" else "low < high"
        raise ConfigError(f"{where}: {kind} [{arg[0]}, {arg[1]}] needs {need}")
    return kind, (low, high)


def _draw(rng: np.random.Generator, dist: dict, where: str):
    kind, arg = distribution(dist, where)
    if kind == "choice":
        return arg[int(rng.integers(len(arg)))]
    low, high = arg
    if kind == "uniform":
        return float(rng.uniform(low, high))
    if kind == "int_uniform":
        return int(rng.integers(int(low), int(high) + 1))
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))


def _points(spec: dict) -> list[dict]:
    """The spec's points as raw values: the grid's product, times the random samples."""
    grid = spec.get("grid") or {}
    if not isinstance(grid, dict):
        raise ConfigError(f"sweep spec: grid must map fields to lists of values, got {grid!r}")
    for name, values in grid.items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f"sweep spec: grid.{name} must be a non-empty list of values, got {values!r}")
    points = [dict(zip(grid, combo)) for combo in itertools.product(*grid.values())] or [{}]
    random = spec.get("random")
    if random is None:
        return points
    if not isinstance(random, dict):
        raise ConfigError(f"sweep spec: random must be a mapping (samples, seed, fields), got {random!r}")
    for key in random:
        if key not in ("samples", "seed", "fields"):
            raise _unknown("sweep spec: random key", key, ("samples", "seed", "fields"))
    samples, fields = random.get("samples"), random.get("fields")
    if not isinstance(samples, int) or isinstance(samples, bool) or samples < 1:
        raise ConfigError(f"sweep spec: random.samples must be an integer >= 1, got {samples!r}")
    if not isinstance(fields, dict) or not fields:
        raise ConfigError(
            "sweep spec: random.fields must map fields to distributions, e.g. {lr: {log_uniform: [1e-4, 1e-2]}}"
        )
    both = sorted(set(fields) & set(grid))
    if both:
        raise ConfigError(
            f"sweep spec: {both} are in both grid and random.fields; give each field one source"
        )
    rng = np.random.default_rng(int(random.get("seed", 0)))
    draws = [{n: _draw(rng, d, f"random.fields.{n}") for n, d in fields.items()} for _ in range(samples)]
    return [p | d for p in points for d in draws]


def _slug(value) -> str:
    if isinstance(value, list | tuple):
        return "x".join(_slug(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(value))


# ============================================================================================== trials
def expand(spec: dict, out: str | Path | None = None) -> list[Trial]:
    """Every trial of ``spec``, each validated as `rlkit train` validates a run (one ``ConfigError`` line for the
    first problem); nothing is built or compiled."""
    from experiments.train import RunArgs, task_defaults
    from rlkit import configs, registry

    if "optuna" in spec:
        raise ConfigError(
            "sweep spec: an optuna search's trials are asked as it runs (experiments.optuna_search)"
        )
    for key in spec:
        if key not in SPEC_KEYS and key not in RUN_KEYS:
            if key in ("sweep", "log_dir", "resume"):
                raise ConfigError(f"sweep spec: {key!r} is the sweep's own (use grid / random, and out)")
            raise _unknown("sweep spec key", key, SPEC_KEYS + RUN_KEYS)
    if "agent" not in spec or "env" not in spec:
        raise ConfigError("sweep spec: give an agent (or a list) and an env (or a list)")
    table = registry.entries()
    agents, env_ids = _as_list(spec["agent"], "agent"), _as_list(spec["env"], "env")
    for agent in agents:
        if agent not in table:
            raise _unknown("sweep spec: agent", agent, sorted(table))
    for env_id in env_ids:
        _check_env(env_id)
    run = {k: spec[k] for k in RUN_KEYS if k in spec}
    for key, value in run.items():
        expected = type(getattr(RunArgs(), key))
        ok = isinstance(value, expected) and not (expected is int and isinstance(value, bool))
        if not ok and not (expected is float and isinstance(value, int) and not isinstance(value, bool)):
            raise ConfigError(f"sweep spec: {key} = {value!r} must be {_kind(expected)}")
    from experiments.cli import UsageError, check_values
    from experiments.train import RUN_LIMITS

    try:
        check_values(RunArgs(**run), RUN_LIMITS)
    except UsageError as err:
        raise ConfigError(f"sweep spec: {str(err).replace('--', '').replace('-', '_', 1)}") from None
    fixed = spec.get("config") or {}
    if not isinstance(fixed, dict):
        raise ConfigError(f"sweep spec: config must map fields to values, got {fixed!r}")
    per_agent = len(agents) > 1 and bool(fixed) and all(k in agents for k in fixed)
    if per_agent and not all(isinstance(v, dict) for v in fixed.values()):
        raise ConfigError(
            "sweep spec: config keyed by agent maps each agent to its fields, e.g. {ppo: {lr: 1e-3}}"
        )
    raw_points = _points(spec)
    total = run.get("total_steps", RunArgs.total_steps)
    trials, seen = [], set()
    for agent, env_id in itertools.product(agents, env_ids):
        cls = table[agent].config_cls
        fields = {f.name for f in dataclasses.fields(cls)}
        mine = fixed.get(agent, {}) if per_agent else fixed
        for where, names in (("config", mine), ("grid / random.fields", raw_points[0])):
            for name in names:
                if name not in fields:
                    raise ConfigError(
                        f"sweep spec: {where}.{name}: "
                        + str(_unknown(f"{cls.__name__} field", name, sorted(fields)))
                    )
        base = {n: coerce(cls, n, v, f"config.{n}") for n, v in mine.items()}
        groups: dict[tuple, list[dict]] = {}
        for point in raw_points:
            values = {n: coerce(cls, n, v, f"{agent}: {n}") for n, v in point.items()}
            static = tuple((n, v) for n, v in values.items() if configs.is_static(cls, n))
            groups.setdefault(static, []).append(
                {n: v for n, v in values.items() if not configs.is_static(cls, n)}
            )
        for static, points in groups.items():
            label = {"agent": agent, "env": env_id} | dict(static)
            name = "-".join([agent, _slug(env_id)] + [f"{n}={_slug(v)}" for n, v in static])
            if name in seen:
                raise ConfigError(
                    f"sweep spec: two trials would be named {name!r}; make their values distinct"
                )
            seen.add(name)
            config = task_defaults(agent, env_id, total) | base | dict(static)
            trial = Trial(
                name, agent, env_id, run, _jsonable(config), [_jsonable(p) for p in points], _jsonable(label)
            )
            check_trial(trial)
            trials.append(trial)
    return trials


def _jsonable(values: dict) -> dict:
    return json.loads(json.dumps(values))


def _check_env(env_id: str) -> None:
    import envs

    try:
        envs.registry.check_id(env_id)
    except envs.UnknownEnvError as err:
        raise ConfigError(f"sweep spec: env: {err}") from None


def build(trial: Trial | dict):
    """``(RunArgs, config, points)`` of a trial (from its JSON form too): what ``experiments.train.run`` takes."""
    from experiments.train import RunArgs
    from rlkit import configs, registry

    t = trial if isinstance(trial, Trial) else Trial(**trial)
    cls = registry.get(t.agent).config_cls
    config = configs.from_dict(cls, {n: coerce(cls, n, v, f"{t.name}: {n}") for n, v in t.config.items()})
    points = [{n: coerce(cls, n, v, f"{t.name}: {n}") for n, v in p.items()} for p in t.points]
    return RunArgs(agent=t.agent, env=t.env, **t.run), config, points


def check_trial(trial: Trial) -> None:
    """A trial's config, every point's values and the agent against the env, as `rlkit train` would check them
    (but without building a trainer or compiling)."""
    import envs
    from rlkit import configs, registry
    from rlkit.sweeps import make_runs

    try:
        args, config, points = build(trial)
        for p in points:
            configs.validate(config.replace(**p))
        make_runs(config, seeds=1, points=points)  # static / duplicate points refused here
        entry = registry.get(trial.agent)
        if entry.validate is None:
            return
        if trial.env.startswith(envs.registry.GYMNASIUM_PREFIX):
            if entry.host_pieces is None:
                raise ConfigError(
                    f"agent {entry.name!r} does not run through the Gymnasium host loop: {entry.host_note}"
                )
            with envs.make(trial.env, num_envs=1) as probe:
                entry.validate(config, probe.spec)
        else:
            entry.validate(config, envs.make(trial.env).spec)
    except ConfigError as err:
        raise ConfigError(f"trial {trial.name}: {err}") from None


# ============================================================================================== running
def run_trial(trial: dict, log_dir: str) -> dict:
    """Run one trial in this process (what every engine calls): `rlkit train` with its points, resuming what an
    earlier launch left in ``log_dir``. Returns its summary."""
    from experiments.train import run
    from rlkit.training import has_run

    args, config, points = build(trial)
    resume = has_run(log_dir)
    args = dataclasses.replace(args, log_dir=log_dir, resume=resume)
    return run(args, config, points=points)


def trial_status(out: Path, trial: Trial) -> str:
    """``"finished"`` (summary written), ``"interrupted"`` (a run there, unfinished) or ``"new"``."""
    from rlkit.training import has_run

    log_dir = out / "trials" / trial.name
    if (log_dir / "summary.json").is_file():
        return "finished"
    return "interrupted" if has_run(log_dir) else "new"


def record(out: Path, spec: dict, trials: list[Trial]) -> None:
    """Write ``OUT/sweep.json`` (the spec and its trials), or refuse a different spec into a used directory."""
    path = out / "sweep.json"
    now = {"spec": {k: v for k, v in spec.items() if k not in ("engine", "engine_options", "out")},
           "trials": [t.to_dict() for t in trials]}  # fmt: skip
    now = json.loads(json.dumps(now))
    if path.exists():
        saved = json.loads(path.read_text())
        if saved != now:
            old = {t["name"] for t in saved.get("trials", [])}
            new = {t.name for t in trials}
            what = (
                f"its trials differ (only there: {sorted(old - new)[:3]}, only here: {sorted(new - old)[:3]})"
                if old != new
                else "its spec differs (the same trials with other values)"
            )
            raise ConfigError(
                f"{out} holds another sweep ({what}); re-launch it with its own spec ({path}), or choose another "
                "out — nothing is overwritten"
            )
        return
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(now, indent=2))


def record_spec(out: Path, spec: dict) -> None:
    """An adaptive search's ``sweep.json``: the spec now, its trials added as they are asked; a different spec
    into the same directory is refused."""
    path = out / "sweep.json"
    now = json.loads(
        json.dumps({k: v for k, v in spec.items() if k not in ("engine", "engine_options", "out")})
    )
    if path.exists():
        if json.loads(path.read_text())["spec"] != now:
            raise ConfigError(
                f"{out} holds another sweep (its spec differs); re-launch it with its own spec ({path}), or choose "
                "another out — nothing is overwritten"
            )
        return
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"spec": now, "trials": []}, indent=2))


def launch(spec: dict, *, engine: str | None = None, options: dict | None = None, out: str | None = None,
           dry_run: bool = False, stream=sys.stdout) -> dict:  # fmt: skip
    """Validate every trial, then run those not finished on ``engine``; returns ``{trial: status}`` (statuses
    before this launch for a dry run)."""
    from experiments import engines

    engine = engine or spec.get("engine", "local")
    if engine not in ENGINES:
        raise _unknown("engine", engine, ENGINES)
    options = dict(spec.get("engine_options") or {}) | dict(options or {})
    out = out or spec.get("out")
    if not out or not isinstance(out, str):
        raise ConfigError(f"sweep spec: give out (the sweep directory) in the spec or as --out, got {out!r}")
    out_dir = Path(out)
    if "optuna" in spec:
        from experiments import optuna_search

        optuna_search.settings(spec)  # the block itself first, then the trial template and the engine
        runner = engines.make(engine, options, out_dir)
        return optuna_search.launch(spec, out_dir, runner, engine, dry_run=dry_run, stream=stream)
    trials = expand(spec)
    runner = engines.make(engine, options, out_dir)  # an engine without its extra / an unreachable cluster
    status = {t.name: trial_status(out_dir, t) for t in trials}
    for t in trials:
        print(
            f"  {t.name}: {status[t.name]} ({len(t.points)} point(s) × {t.run.get('seeds', 4)} seeds)",
            file=stream,
        )
    if dry_run:
        return status
    record(out_dir, spec, trials)
    todo = [t for t in trials if status[t.name] != "finished"]
    print(f"rlkit sweep: {len(todo)} of {len(trials)} trials to run on {engine} into {out_dir}", file=stream)
    runner([t.to_dict() for t in todo], [str(out_dir / "trials" / t.name) for t in todo])
    return {t.name: trial_status(out_dir, t) for t in trials}
