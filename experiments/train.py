"""The main job and ``rlkit train``: train an agent on an env, seeds × swept values in one compiled program.

    python -m experiments.train                  # the embedded default (what `make run` does): SAC on pendulum
    rlkit train --agent td3 --env pendulum --seeds 8 --sweep learning_rate=1e-3,3e-4 --total-steps 50000
    rlkit train --agent sac --env gymnasium:Pendulum-v1      # any Gymnasium env, through the host loop
    rlkit train --log-dir runs/x --resume                    # continue a killed run from its last checkpoint

Every field of the run and of the agent's config is a flag (``rlkit train --agent sac --help`` lists the agent's
fields with their documentation). Output in ``--log-dir``: per-run TensorBoard files and ``metrics.jsonl``,
``checkpoints/``, ``learning_curve.png``, ``summary.json`` and ``agent.rlkit`` (run 0's exported agent).
Bad flags, out-of-range values and agents that cannot drive the env's action space fail before compiling.
"""

from __future__ import annotations

import dataclasses
import json
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import jax
import numpy as np
import tyro

import envs
from rlkit import configs
from rlkit.export import export_run
from rlkit.plots import group_runs, load_curves, plot_learning_curves
from rlkit.statistics import iqm
from rlkit.sweeps import make_runs
from rlkit.training import train


@dataclass(frozen=True)
class RunArgs:
    env: str = "pendulum"
    """registered env id (`rlkit envs`), or gymnasium:<id> for any Gymnasium env (host loop)"""
    agent: str = "sac"
    """a registered agent (`rlkit agents` lists them): sac, td3, ppo, bc, sqil, diayn, ..."""
    seeds: int = 4
    """independent seeds, vmapped into one program with the swept values (the runs axis)"""
    sweep: tuple[str, ...] = ()
    """sweepable config values as FIELD=V1,V2,... (grid over all given fields), e.g. q_lr=1e-3,3e-4; the figure,
    summary.json and the printed result have one curve / row per swept value (its seeds' mean ± std)"""
    total_steps: int = 20_000
    """env steps per run (gradient steps for agents that train offline, e.g. bc)"""
    log_dir: str = "runs/default"
    """output directory (logs, checkpoints, figure, exported agent)"""
    resume: bool = False
    """continue the run in log_dir from its latest complete checkpoint"""
    checkpoint_every: int = 5
    """chunks between checkpoints (and one at the end)"""
    eval_every: int = 1
    """chunks between deterministic evaluations, plus one after the last chunk (0 = never)"""
    demos: str = ""
    """demonstrations, for agents that learn from them (bc, sqil): a directory written by `rlkit demos collect`,
    a .npz file or a Minari dataset directory"""
    expert: str = ""
    """the expert, for agents that query one (dagger): an agent file written by `rlkit train` (<run
    dir>/agent.rlkit) acting on this env's observation and action spaces"""
    expert_resets: float = 0.0
    """probability that a training episode starts from a state of the demonstrations (--demos, collected with
    their env states by `rlkit demos collect`; JAX envs, or Gymnasium envs with set_state such as MuJoCo), for
    any agent ("Inverse RL without RL"); evaluation always starts from the env's own initial states"""
    async_envs: bool = False
    """gymnasium: envs only: step the runs × num_envs sub-envs in worker processes (AsyncVectorEnv) instead of
    one after another in this process — for envs whose step is expensive (MuJoCo)"""
    distributed: str = ""
    """several processes train together (jax.distributed; multi-host): "auto" lets jax.distributed.initialize
    detect the cluster (SLURM, Open MPI, Cloud TPU), or HOST:PORT,NUM_PROCESSES,PROCESS_ID names it; every process
    runs the same command with the same log_dir (a shared file system); the runs axis (and devices_per_run) spans
    all processes' devices, each checkpoints its shards, process 0 writes the logs, exports and summarizes"""
    devices_per_run: int = 1
    """split each run's env batch (num_envs; off-policy agents also batch_size and buffer_size) over this many
    devices, gradients averaged across them (JAX envs; not offline agents); runs (seeds, swept values) fill the
    remaining devices"""


def _agents() -> dict:
    """The registered agents (``rlkit.registry``): name → ``AgentEntry``."""
    from rlkit import registry

    return registry.entries()


def _inputs(args: RunArgs, entry, spec) -> dict:
    """The run inputs the agent's trainer takes (``entry.inputs``), loaded and checked against the env; a flag
    for an input the agent does not take is refused rather than ignored."""
    if args.demos and "demos" not in entry.inputs and not args.expert_resets:
        takes = sorted(n for n, e in _agents().items() if "demos" in e.inputs)
        raise configs.ConfigError(
            f"--demos {args.demos}: agent {entry.name!r} does not learn from demonstrations (agents that do: "
            f"{takes})"
        )
    if args.expert and "expert" not in entry.inputs:
        takes = sorted(n for n, e in _agents().items() if "expert" in e.inputs)
        raise configs.ConfigError(
            f"--expert {args.expert}: agent {entry.name!r} does not query an expert (agents that do: {takes})"
        )
    inputs = {}
    if "demos" in entry.inputs:
        from rlkit.buffers.datasets import check_demos_match, load_demos

        if not args.demos:
            raise configs.ConfigError(
                f"agent {entry.name!r} learns from demonstrations: give --demos PATH (a directory written by "
                "`rlkit demos collect`, a .npz file or a Minari dataset directory)"
            )
        store = load_demos(args.demos)
        check_demos_match(
            store, spec, need_actions=False, source=args.demos
        )  # whether actions: the agent says
        inputs["demos"] = store
    if "expert" in entry.inputs:
        from rlkit.export import load_agent

        if not args.expert:
            raise configs.ConfigError(
                f"agent {entry.name!r} queries an expert: give --expert PATH (an agent file written by "
                "`rlkit train`, <run dir>/agent.rlkit)"
            )
        try:
            inputs["expert"] = load_agent(args.expert, spec)
        except (ValueError, OSError) as err:  # not an agent file, a directory, missing, another env's spaces
            raise configs.ConfigError(f"--expert: {err}") from None
    return inputs


def _reset_demos(args: RunArgs):
    """The demonstrations expert-state resets restore states from (``--demos``), refused in one line without."""
    from rlkit.resets import check_probability

    check_probability(args.expert_resets, "--expert-resets")
    if not args.demos:
        raise configs.ConfigError(
            f"--expert-resets {args.expert_resets}: give --demos PATH, demonstrations with their env states "
            "(`rlkit demos collect` stores them) to start episodes from"
        )
    from rlkit.buffers.datasets import load_demos

    return load_demos(args.demos)


def _fingerprint(inputs: dict, args: RunArgs | None = None) -> dict:
    """What the run record keeps of its inputs, so a resume with other data under the same path is refused: a
    demonstration store's sizes and the sha256 of its arrays, an expert's agent name and the sha256 of its file."""
    import hashlib

    out = {}
    for name, value in inputs.items():
        if name == "expert":
            digest = hashlib.sha256(Path(args.expert).read_bytes()).hexdigest()
            out[name] = {"agent": value[0].name, "sha256": digest}
            continue
        digest = hashlib.sha256()
        for leaf in jax.tree.leaves(value):
            digest.update(np.ascontiguousarray(np.asarray(leaf)).tobytes())
        out[name] = {"episodes": value.num_episodes, "steps": value.num_steps, "sha256": digest.hexdigest()}
    return out


#: the embedded default of the main job: small networks so `make run` finishes in about a minute on 2 CPU cores
MAIN_JOB_DEFAULTS = {"sac": {"hidden_sizes": (64, 64), "learning_starts": 1000, "buffer_size": 20_000}}

#: the ranges of the run's own flags (the agents' config fields carry theirs); checked before anything is built
RUN_LIMITS = {
    "seeds": {"low": 1},
    "total_steps": {"low": 1},
    "checkpoint_every": {"low": 1},
    "eval_every": {"low": 0},
    "devices_per_run": {"low": 1},
}

#: ``--agent ppo`` on a Box action space starts from ``agents.ppo.continuous_config()`` (CleanRL
#: ppo_continuous_action.py: observation and reward normalization, ent_coef 0, 10 epochs, lr 3e-4) with this batch
#: layout for many vectorized envs instead of CleanRL's 1 env × 2048 steps
PPO_CONTINUOUS_LAYOUT = {"num_envs": 16, "num_steps": 64, "num_minibatches": 8, "iterations_per_chunk": 4}

PPO_DEFAULTS_HELP = (
    "PPO defaults follow the env's action space. Discrete: PPOConfig's own (CleanRL ppo.py). Box (continuous "
    "control): agents.ppo.continuous_config() — observation and reward normalization on, ent_coef 0, 10 epochs, "
    "learning rate 3e-4, gamma 0.99 — with 16 envs × 64 steps, 8 minibatches and 4 iterations per chunk. Either "
    "way the learning rate anneals over the run's own --total-steps (anneal_steps = total_steps) unless "
    "--anneal-steps is given; flags you give always win. Not defaults: the README's PPO-pendulum row adds "
    "--learning-rate 1e-3 --gamma 0.95, tuned for Pendulum's short horizon (its exact command is in README.md)."
)


def _split_values(text: str) -> list[str]:
    """``"1e-3,3e-4"`` → two values; commas inside brackets (``[1,2],[2,1]``) stay in their value."""
    values, depth, current = [], 0, ""
    for ch in text:
        if ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        if ch == "," and depth == 0:
            values.append(current)
            current = ""
        else:
            current += ch
    return [*values, current]


def _sweep_value(config_cls, name: str, hint, text: str, item: str):
    """One swept value converted to the field's type, or a one-line ``ConfigError``."""
    import typing

    v = text.strip()
    where = f"--sweep {item}: {config_cls.__name__}.{name}"
    origin = typing.get_origin(hint)
    try:
        if hint is bool:
            if v.lower() not in ("true", "false"):
                raise ValueError
            return v.lower() == "true"
        if hint is int:
            number = float(v)
            if not number.is_integer():
                raise ValueError
            return int(number)
        if hint is float:
            return float(v)
        if origin is tuple or any(typing.get_origin(a) is tuple for a in typing.get_args(hint)):
            value = json.loads(v)
            if not isinstance(value, list) or not all(isinstance(x, int | float) for x in value):
                raise ValueError
            return tuple(float(x) for x in value)
        return json.loads(v) if v[:1] in "[{" or v in ("true", "false") else float(v)
    except ValueError:
        kind = {bool: "true or false", int: "an integer", float: "a number"}.get(hint, "a list like [1,2]")
        raise configs.ConfigError(f"{where} takes {kind}, got {v!r}") from None


def parse_sweep(config_cls, items: tuple[str, ...]) -> dict[str, list]:
    """``("q_lr=1e-3,3e-4",)`` → ``{"q_lr": [0.001, 0.0003]}``, each value converted to the field's type and
    range-checked; a malformed item, a static field, a non-numeric or out-of-range value raise one line."""
    import typing

    hints = typing.get_type_hints(config_cls)
    base = config_cls()
    sweep = {}
    for item in items:
        name, sep, values = item.partition("=")
        if not sep or not name or not values.strip():
            raise configs.ConfigError(f"--sweep expects FIELD=V1,V2,..., got {item!r}")
        configs.check_names(config_cls, [name], what="sweepable field")
        if configs.is_static(config_cls, name):
            raise configs.ConfigError(
                f"--sweep {item}: {config_cls.__name__}.{name} is static (it fixes shapes or structure), so it "
                "cannot vary inside one compiled program; run one program per value instead"
            )
        if name in sweep:
            raise configs.ConfigError(
                f"--sweep names {name} twice; give all its values in one FIELD=V1,V2,..."
            )
        parsed = []
        for text in _split_values(values):
            if not text.strip():
                raise configs.ConfigError(f"--sweep {item}: empty value (between commas)")
            value = _sweep_value(config_cls, name, hints[name], text, item)
            try:
                configs.validate(base.replace(**{name: value}))
            except configs.ConfigError as err:
                raise configs.ConfigError(f"--sweep {item}: {err}") from None
            parsed.append(value)
        sweep[name] = parsed
    return sweep


def run(args: RunArgs, config, points: list[dict] | None = None) -> dict:
    """Train with ``args`` and the agent ``config``; returns the summary written to ``summary.json``. ``points``
    (explicit swept values, ``rlkit sweep``'s random search) replaces ``args.sweep``'s grid."""
    from rlkit import registry

    entry = registry.get(args.agent)
    for name in ("seeds", "total_steps", "checkpoint_every"):
        if getattr(args, name) < 1:
            raise configs.ConfigError(f"{name} must be >= 1, got {getattr(args, name)}")
    configs.validate(config)
    if entry.loop == "offline" and args.eval_every == 0:
        raise configs.ConfigError(
            f"--eval-every 0: agent {entry.name!r} trains offline (its steps are gradient steps, no episodes are "
            "played), so evaluation is its only return; give --eval-every >= 1"
        )
    sweep = parse_sweep(entry.config_cls, args.sweep)
    if points and sweep:
        raise configs.ConfigError("give either --sweep (a grid) or explicit points, not both")
    points = [p for p in points or [] if p] or None  # [{}]: one point, nothing swept
    log_dir = Path(args.log_dir)
    # devices_per_run is recorded by train itself, and only when > 1 (so runs started before it existed resume);
    # how the processes found each other is not a setting of the run
    unrecorded = ("devices_per_run", "distributed")
    run_args = {k: v for k, v in dataclasses.asdict(args).items() if k not in unrecorded}
    record = {"run_args": run_args, "config": configs.to_dict(config)}
    if points:
        record["points"] = points
    common = dict(
        total_steps=args.total_steps,
        log_dir=log_dir,
        checkpoint_every=args.checkpoint_every,
        resume=args.resume,
        eval_every=args.eval_every,
        config_record=record,
    )

    reset_demos = _reset_demos(args) if args.expert_resets else None  # expert-state resets start from these
    if args.env.startswith(envs.registry.GYMNASIUM_PREFIX):
        from rlkit.host_loop import train_host

        def make_env(n: int):
            return envs.make(args.env, num_envs=n, asynchronous=args.async_envs)

        if args.expert_resets:  # training envs restore demonstration states; evaluation plays the plain env
            from rlkit.resets import gymnasium_make_env

            common["make_eval_env"], make_env = (
                make_env,
                gymnasium_make_env(args.env, reset_demos, args.expert_resets, asynchronous=args.async_envs),
            )

        if jax.process_count() > 1:
            raise configs.ConfigError(
                f"--distributed with {args.env}: the Gymnasium host loop steps its envs in one process; several "
                "processes train JAX envs (rlkit envs) only"
            )
        if args.devices_per_run > 1:
            raise configs.ConfigError(
                f"--devices-per-run {args.devices_per_run}: {args.env} trains through the Gymnasium host loop, "
                "whose envs step on the host; one run over several devices needs a JAX env (rlkit envs)"
            )
        if entry.host_pieces is None:
            raise configs.ConfigError(
                f"agent {entry.name!r} does not run through the Gymnasium host loop ({args.env}): "
                f"{entry.host_note or 'it has no host-loop pieces'}"
            )
        with make_env(1) as probe:  # validate the agent against the env's spaces before anything starts
            spec = probe.spec
        if entry.validate is not None:
            entry.validate(config, spec)
        inputs = _inputs(args, entry, spec)
        record["inputs"] = _fingerprint(inputs, args) | _fingerprint(
            {"reset_demos": reset_demos} if args.expert_resets else {}
        )
        pieces = entry.host_pieces(config, spec, **inputs)
        # host_pieces may bind the agent to its inputs (dagger's expert rides in its act and update)
        make_agent = pieces.pop("make_agent", entry.make_agent)
        if entry.condition is not None:  # the same conditioning as on device and in rlkit eval
            prior = entry.condition(config)[0]  # N from each run's config (it may be swept)
            pieces |= {"prior": prior, "resample_every": lambda cfg: entry.condition(cfg)[1]}
        runs = make_runs(config, seeds=args.seeds, sweep=sweep, points=points)
        start = time.perf_counter()
        result = train_host(make_agent, runs, make_env, **pieces, **common)
        if entry.condition is not None:  # the agent acts on concat(obs, z): export the spec it was built for
            from rlkit.conditioning import conditioned_spec

            spec = conditioned_spec(spec, pieces["prior"])
    else:
        env = envs.make(args.env)
        if (
            args.expert_resets
        ):  # any learner; its evaluation removes the wrapper (rlkit.rollout.evaluation_env)
            from rlkit.resets import ExpertResets

            env = ExpertResets(env, reset_demos, args.expert_resets)
        if entry.validate is not None:  # the agent against the env first, then its inputs against both
            entry.validate(config, env.spec)
        inputs = _inputs(args, entry, env.spec)
        record["inputs"] = _fingerprint(inputs, args) | _fingerprint(
            {"reset_demos": reset_demos} if args.expert_resets else {}
        )
        # validates the agent against the env's spaces, reward terms and inputs
        trainer = entry.make_trainer(config, env, **inputs)
        spec = trainer.spec or env.spec
        runs = make_runs(config, seeds=args.seeds, sweep=sweep, points=points)
        start = time.perf_counter()
        result = train(trainer, runs, devices_per_run=args.devices_per_run, **common)
    seconds = time.perf_counter() - start
    if jax.process_count() > 1:  # every process takes part in gathering the agent; process 0 exports
        result = _gathered(result)
        if jax.process_index() != 0:
            return {}
    export_run(log_dir / "agent.rlkit", result, runs, 0, config=config, spec=spec)
    return _summarize(args, runs.names, log_dir, result.steps, seconds)


def join_processes(spec: str) -> None:
    """``--distributed``: join the other processes (``jax.distributed.initialize``) before JAX computes anything."""
    if not spec:
        return
    found = re.fullmatch(r"([^,\s]+:\d+),(\d+),(\d+)", spec)
    if spec != "auto" and (not found or not int(found.group(3)) < int(found.group(2))):
        raise configs.ConfigError(
            f"--distributed {spec!r}: expected auto, or HOST:PORT,NUM_PROCESSES,PROCESS_ID with PROCESS_ID < "
            "NUM_PROCESSES (e.g. 10.0.0.1:8476,2,0 on the first host, 10.0.0.1:8476,2,1 on the second)"
        )
    if jax.distributed.is_initialized():
        return
    jax.config.update("jax_cpu_collectives_implementation", "gloo")  # collectives across CPU processes
    if spec == "auto":
        jax.distributed.initialize()
    else:
        jax.distributed.initialize(
            found.group(1), num_processes=int(found.group(2)), process_id=int(found.group(3))
        )


def _distributed_flag(argv: list[str]) -> str:
    """The ``--distributed`` value, read before the flags are parsed (parsing builds configs, which may start
    JAX's backend, and ``jax.distributed.initialize`` must come first)."""
    for i, arg in enumerate(argv):
        if arg == "--distributed" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--distributed="):
            return arg.split("=", 1)[1]
    return ""


def _gathered(result):
    """The result with its agent (and observation statistics) gathered from every process."""
    from jax.experimental import multihost_utils

    def gather(x):
        if isinstance(x, jax.Array) and not x.is_fully_addressable:
            return multihost_utils.process_allgather(x, tiled=True)
        return x

    parts = {k: getattr(result.state, k, None) for k in ("agent_state", "obs_stats")}
    parts = {k: jax.tree.map(gather, v) for k, v in parts.items() if v is not None}
    return dataclasses.replace(result, state=result.state.replace(**parts))


def _number(text: str):
    try:
        return float(text)
    except ValueError:
        return text


def _summarize(args: RunArgs, names, log_dir: Path, steps: int, seconds: float) -> dict:
    """Per swept value (runs grouped by name without their final ``seed_N``; the agent's ``score``, e.g.
    ``eval_return``, with evaluations, else ``episode_return``): the learning curve of its seeds with
    a 95% bootstrap band in ``learning_curve.png``, and the final metric's mean ± std and IQM over its seeds in
    ``summary.json`` and the printed lines. A run without a sweep is one group; values are never pooled."""
    from rlkit import registry

    paths = [log_dir / n / "metrics.jsonl" for n in names]
    score = registry.get(args.agent).score  # eval_return, or a goal agent's success rate
    metric = score if args.eval_every and all(score in p.read_text() for p in paths) else "episode_return"
    groups = group_runs(names)
    curves, rows = {}, []
    for group, members in groups.items():
        curve_steps, values = load_curves([log_dir / n / "metrics.jsonl" for n in members], metric)
        curves[group or args.agent] = (curve_steps, values)
        final = values[:, -1]
        final = final[np.isfinite(final)]  # a run without a finished episode at the last step has no value
        rows.append(
            {
                "value": group,
                "swept": {
                    k: _number(v) for k, _, v in (part.partition("=") for part in group.split("/") if group)
                },
                "runs": len(members),
                "final_runs": int(final.size),
                "final_mean": float(np.mean(final)) if final.size else float("nan"),
                "final_std": float(np.std(final)) if final.size else float("nan"),
                "final_iqm": float(iqm(final)) if final.size else float("nan"),
            }
        )
    figure = plot_learning_curves(
        curves,
        log_dir / "learning_curve.png",
        title=f"{args.agent} on {args.env}" + (" (one curve per swept value)" if len(groups) > 1 else ""),
        ylabel=metric.replace("_", " "),
    )
    summary = {
        "env": args.env,
        "agent": args.agent,
        "runs": len(names),
        "steps_per_run": steps,
        "metric": metric,
        "groups": rows,
        "env_steps_per_s": steps * len(names) / seconds,
        "wall_seconds": seconds,
        "figure": figure,
    }
    if len(rows) == 1:  # one result: no sweep (different swept values are never pooled into one number)
        summary |= {"final_return_mean": rows[0]["final_mean"], "final_return_std": rows[0]["final_std"]}
    (log_dir / "summary.json").write_text(json.dumps(summary, indent=2))

    def result(row) -> str:
        missing = row["runs"] - row["final_runs"]
        left_out = f" ({missing} without a value at the last step)" if missing else ""
        return f"{row['final_mean']:.1f} ± {row['final_std']:.1f} over {row['final_runs']} runs{left_out}"

    speed = f"{steps:,} steps each, {summary['env_steps_per_s']:,.0f} env steps/s; outputs in {log_dir}/"
    if len(rows) == 1:
        print(f"\n{args.agent} on {args.env}: final {metric} {result(rows[0])}, {speed}")
    else:
        print(
            f"\n{args.agent} on {args.env}: final {metric} per swept value (mean ± std over seeds), {speed}"
        )
        width = max(len(r["value"]) for r in rows)
        for row in rows:
            print(f"  {row['value']:<{width}}  {result(row)}, IQM {row['final_iqm']:.1f}")
    return summary


def _flag_value(argv: list[str], field: str, default):
    """The last value given to ``--field`` (also ``--field=V`` and the underscore spelling), else ``default``."""
    value = default
    names = {"--" + field.replace("_", "-"), "--" + field}
    for i, token in enumerate(argv):
        name, eq, inline = token.partition("=")
        if name in names:
            if eq:
                value = inline
            elif i + 1 < len(argv):
                value = argv[i + 1]
    return value


def task_defaults(agent: str, env_id: str, total_steps: int) -> dict:
    """Config defaults that depend on the task: PPO on a Box action space gets the continuous-control settings
    (``PPO_DEFAULTS_HELP``), and PPO's learning rate anneals over the run's own ``total_steps``."""
    if agent != "ppo":
        return {}
    from agents import ppo
    from envs.spaces import Box

    try:
        continuous = isinstance(envs.registry.action_space_of(env_id), Box)
    except ValueError:  # an action space the bridge refuses: `run` names it
        continuous = False
    base = configs.to_dict(ppo.continuous_config(**PPO_CONTINUOUS_LAYOUT)) if continuous else {}
    base = {k: tuple(v) if isinstance(v, list) else v for k, v in base.items()}
    return base | {"anneal_steps": total_steps}


def parse_args(argv: list[str], defaults: dict | None = None) -> tuple[RunArgs, Any]:
    """``--agent`` picks the config class (and with ``--env``, PPO's task defaults); then one tyro parser holds the
    run's and the agent's flags. Every input error is a one-line ``UsageError`` / ``ConfigError`` /
    ``UnknownEnvError``, raised before anything is built."""
    from experiments.cli import check_argv, check_values, flag_name, parse_cli

    argv = list(argv)
    agent = _flag_value(argv, "agent", RunArgs.agent)
    table = _agents()
    if agent not in table:
        raise configs.ConfigError(f"agent={agent!r} is not available; choose from {sorted(table)}")
    config_cls = table[agent].config_cls
    elsewhere = {}  # flags of the other agents' configs, to say where a flag belongs
    for other, e in table.items():
        for f in dataclasses.fields(e.config_cls):
            if other != agent:
                elsewhere.setdefault(flag_name(f.name), f"a flag of --agent {other}")
    check_argv(argv, [RunArgs, config_cls], "rlkit train", help_hint=f"rlkit train --agent {agent} --help",
               elsewhere=elsewhere)  # fmt: skip
    total_steps = int(_flag_value(argv, "total_steps", RunArgs.total_steps))
    env_id = _flag_value(argv, "env", RunArgs.env)
    envs.registry.check_id(env_id)  # an unknown id: one line with the closest ids
    base = task_defaults(agent, env_id, total_steps)
    config_default = config_cls(**(base | (defaults or {}).get(agent, {})))
    description = __doc__.split("\n\n")[0] + ("\n\n" + PPO_DEFAULTS_HELP if agent == "ppo" else "")

    # built with real (not string) annotations: the config class is only known at run time
    Args = dataclasses.make_dataclass(  # noqa: N806
        "Args",
        [
            ("run", Annotated[RunArgs, tyro.conf.OmitArgPrefixes]),
            ("config", Annotated[config_cls, tyro.conf.OmitArgPrefixes]),
        ],
        frozen=True,
    )
    args = parse_cli(
        Args, argv, "rlkit train", default=Args(RunArgs(agent=agent), config_default), description=description
    )
    check_values(args.run, RUN_LIMITS)
    configs.validate(args.config)
    parse_sweep(config_cls, args.run.sweep)
    return args.run, args.config


def main(argv: list[str] | None = None, defaults: dict | None = None) -> dict:
    from experiments.cli import UsageError
    from rlkit.buffers.datasets import DatasetError

    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        join_processes(_distributed_flag(argv))
        return run(*parse_args(argv, defaults))
    except (configs.ConfigError, envs.UnknownEnvError, FileExistsError, UsageError, DatasetError,
            FileNotFoundError) as err:  # fmt: skip
        print(f"rlkit train: error: {' '.join(str(err).split())}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main(defaults=MAIN_JOB_DEFAULTS)
