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
from rlkit.export import export_agent
from rlkit.plots import load_curves, plot_learning_curves
from rlkit.sweeps import make_runs
from rlkit.training import train


@dataclass(frozen=True)
class RunArgs:
    env: str = "pendulum"
    """registered env id (`rlkit envs`), or gymnasium:<id> for any Gymnasium env (host loop)"""
    agent: str = "sac"
    """learner: sac | td3 | ppo"""
    seeds: int = 4
    """independent seeds, vmapped into one program with the swept values (the runs axis)"""
    sweep: tuple[str, ...] = ()
    """sweepable config values as FIELD=V1,V2,... (grid over all given fields), e.g. q_lr=1e-3,3e-4"""
    total_steps: int = 20_000
    """env steps per run"""
    log_dir: str = "runs/default"
    """output directory (logs, checkpoints, figure, exported agent)"""
    resume: bool = False
    """continue the run in log_dir from its latest complete checkpoint"""
    checkpoint_every: int = 5
    """chunks between checkpoints (and one at the end)"""
    eval_every: int = 1
    """chunks between deterministic evaluations, plus one after the last chunk (0 = never)"""
    async_envs: bool = False
    """gymnasium: envs only: step the runs × num_envs sub-envs in worker processes (AsyncVectorEnv) instead of
    one after another in this process — for envs whose step is expensive (MuJoCo)"""


def _agents() -> dict[str, tuple[type, Any, Any]]:
    from agents import sac, td3

    table = {
        "sac": (sac.SACConfig, sac.make_trainer, sac.make_sac),
        "td3": (td3.TD3Config, td3.make_trainer, td3.make_td3),
    }
    try:
        from agents import ppo

        table["ppo"] = (ppo.PPOConfig, ppo.make_trainer, ppo.make_ppo)
    except ImportError:
        pass
    return table


#: the embedded default of the main job: small networks so `make run` finishes in about a minute on 2 CPU cores
MAIN_JOB_DEFAULTS = {"sac": {"hidden_sizes": (64, 64), "learning_starts": 1000, "buffer_size": 20_000}}


def parse_sweep(config_cls, items: tuple[str, ...]) -> dict[str, list]:
    sweep = {}
    for item in items:
        name, sep, values = item.partition("=")
        if not sep or not values:
            raise configs.ConfigError(f"--sweep expects FIELD=V1,V2,..., got {item!r}")
        configs.check_names(config_cls, [name], what="sweepable field")
        sweep[name] = [json.loads(v) if v.strip()[0] in "[{tf" else float(v) for v in values.split(",")]
    return sweep


def run(args: RunArgs, config) -> dict:
    """Train with ``args`` and the agent ``config``; returns the summary written to ``summary.json``."""
    table = _agents()
    if args.agent not in table:
        raise configs.ConfigError(f"agent={args.agent!r} is not available; choose from {sorted(table)}")
    for name in ("seeds", "total_steps", "checkpoint_every"):
        if getattr(args, name) < 1:
            raise configs.ConfigError(f"{name} must be >= 1, got {getattr(args, name)}")
    config_cls, make_trainer, make_agent = table[args.agent]
    configs.validate(config)
    sweep = parse_sweep(config_cls, args.sweep)
    log_dir = Path(args.log_dir)
    record = {"run_args": dataclasses.asdict(args), "config": configs.to_dict(config)}
    common = dict(
        total_steps=args.total_steps,
        log_dir=log_dir,
        checkpoint_every=args.checkpoint_every,
        resume=args.resume,
        eval_every=args.eval_every,
        config_record=record,
    )

    if args.env.startswith(envs.registry.GYMNASIUM_PREFIX):
        from rlkit.host_loop import train_host

        def make_env(n: int):
            return envs.make(args.env, num_envs=n, asynchronous=args.async_envs)

        with make_env(1) as probe:  # validate the agent against the env's spaces before anything starts
            spec = probe.spec
        validate = getattr(sys.modules[make_agent.__module__], "validate", None)
        if validate is not None:
            validate(config, spec)
        runs = make_runs(config, seeds=args.seeds, sweep=sweep)
        start = time.perf_counter()
        result = train_host(make_agent, runs, make_env, **common)
    else:
        env = envs.make(args.env)
        trainer = make_trainer(config, env)  # validates the agent against the env's spaces and reward terms
        spec = env.spec
        runs = make_runs(config, seeds=args.seeds, sweep=sweep)
        start = time.perf_counter()
        result = train(trainer, runs, **common)
    seconds = time.perf_counter() - start
    first_run = jax.tree.map(lambda x: x[0], result.state.agent_state)
    run_config = config.replace(
        **{k: v for k, v in runs.values[0].items() if k != "seed"}
    )  # exact Python values
    obs_stats = getattr(result.state, "obs_stats", None)  # PPO keeps its observation normalizer in the loop
    if obs_stats is not None and getattr(config, "normalize_obs", False):
        obs_stats = jax.tree.map(lambda x: x[0], obs_stats)
    else:
        obs_stats = None
    export_agent(log_dir / "agent.rlkit", args.agent, run_config, first_run, spec, obs_stats=obs_stats)
    return _summarize(args, runs.names, log_dir, result.steps, seconds)


def _summarize(args: RunArgs, names, log_dir: Path, steps: int, seconds: float) -> dict:
    paths = [log_dir / n / "metrics.jsonl" for n in names]
    metric = (
        "eval_return"
        if args.eval_every and all("eval_return" in p.read_text() for p in paths)
        else "episode_return"
    )
    curve_steps, values = load_curves(paths, metric)
    figure = plot_learning_curves(
        {args.agent: (curve_steps, values)},
        log_dir / "learning_curve.png",
        title=f"{args.agent} on {args.env}",
        ylabel=metric.replace("_", " "),
    )
    final = values[:, -1]
    final = final[np.isfinite(final)]
    summary = {
        "env": args.env,
        "agent": args.agent,
        "runs": len(names),
        "steps_per_run": steps,
        "metric": metric,
        "final_return_mean": float(np.mean(final)),
        "final_return_std": float(np.std(final)),
        "env_steps_per_s": steps * len(names) / seconds,
        "wall_seconds": seconds,
        "figure": figure,
    }
    (log_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    print(
        f"\n{args.agent} on {args.env}: final {metric} {summary['final_return_mean']:.1f} ± "
        f"{summary['final_return_std']:.1f} over {len(names)} runs, {steps:,} steps each, "
        f"{summary['env_steps_per_s']:,.0f} env steps/s; outputs in {log_dir}/"
    )
    return summary


def parse_args(argv: list[str], defaults: dict | None = None) -> tuple[RunArgs, Any]:
    """``--agent`` picks the config class; then one tyro parser holds the run's and the agent's flags."""
    agent = RunArgs.agent
    for i, a in enumerate(argv):
        if a == "--agent" and i + 1 < len(argv):
            agent = argv[i + 1]
        elif a.startswith("--agent="):
            agent = a.split("=", 1)[1]
    table = _agents()
    if agent not in table:
        raise configs.ConfigError(f"agent={agent!r} is not available; choose from {sorted(table)}")
    config_cls = table[agent][0]
    config_default = config_cls(**(defaults or {}).get(agent, {}))

    # built with real (not string) annotations: the config class is only known at run time
    Args = dataclasses.make_dataclass(  # noqa: N806
        "Args",
        [
            ("run", Annotated[RunArgs, tyro.conf.OmitArgPrefixes]),
            ("config", Annotated[config_cls, tyro.conf.OmitArgPrefixes]),
        ],
        frozen=True,
    )
    args = tyro.cli(
        Args,
        args=argv,
        default=Args(RunArgs(agent=agent), config_default),
        prog="rlkit train",
        description=__doc__.split("\n\n")[0],
    )
    return args.run, args.config


def main(argv: list[str] | None = None, defaults: dict | None = None) -> dict:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        return run(*parse_args(argv, defaults))
    except (configs.ConfigError, envs.UnknownEnvError, FileExistsError) as err:
        print(f"rlkit train: error: {err}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main(defaults=MAIN_JOB_DEFAULTS)
