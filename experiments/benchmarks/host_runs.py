"""The host loop's runs axis on a MuJoCo env: 4 seeds stepping together against the same 4 one after another.

    .venv/bin/python -m experiments.benchmarks.host_runs [--env HalfCheetah-v5] [--steps 4000] [--output PATH]

Needs Gymnasium's MuJoCo envs (``pip install -e ".[mujoco]"``). For each learner (SAC 256×256 — the default
network —, SAC 64×64, PPO with CleanRL's continuous settings) it trains 4 seeds with ``rlkit.host_loop.train_host``
three ways: one after another (4 programs, one sub-env each), together in one synchronous vector env of 4
sub-envs (act and update vmapped over the runs: one dispatch per env step for all 4), and together in an
``AsyncVectorEnv`` (one worker process per sub-env). Reported: total env steps/s of all 4 runs after compilation
(the first chunk, which compiles, is left out of the timing) and the speed-up over one after another. Writes a
markdown table to ``experiments/benchmarks/results/host_runs.md`` and prints it.

Deliberately not here: learning quality (budgets are far too small), GPUs, and other libraries (the peer
benchmark, ``experiments/benchmarks/peers.py``, compares those on the same settings).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import time
from pathlib import Path

import jax

import envs
from agents import ppo, sac
from experiments.benchmarks.machine import cpu_model
from rlkit.host_loop import train_host
from rlkit.sweeps import make_runs

OUT = Path(__file__).parent / "results" / "host_runs.md"
SEEDS = 4


def learners(steps: int):
    """(name, make_agent, config, steps per chunk per run)."""
    off = dict(learning_starts=500, buffer_size=steps, chunk_steps=500, batch_size=256)
    return [
        ("SAC 256×256", sac.make_sac, sac.SACConfig(**off), 500),
        ("SAC 64×64", sac.make_sac, sac.SACConfig(hidden_sizes=(64, 64), **off), 500),
        (
            "PPO (64×64, 1 env × 512 steps per run)",
            ppo.make_ppo,
            ppo.continuous_config(num_steps=512, num_minibatches=8, iterations_per_chunk=1),
            512,
        ),
    ]


def timed(make_agent, runs, make_env, steps: int, chunk: int) -> float:
    """Env steps/s of all runs together, from the end of the first chunk to the end of the last."""
    marks = []
    train_host(
        make_agent,
        runs,
        make_env,
        total_steps=steps,
        console=False,
        on_chunk=lambda c, m: marks.append(time.perf_counter()),
    )
    return (len(marks) - 1) * chunk * len(runs) / (marks[-1] - marks[0])


def main(argv=None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default="HalfCheetah-v5")
    parser.add_argument("--steps", type=int, default=4000, help="env steps per run")
    parser.add_argument("--output", default=str(OUT))
    args = parser.parse_args(argv)
    gym_id = f"gymnasium:{args.env}"
    rows = []
    for name, make_agent, config, chunk in learners(args.steps):
        steps = max(args.steps, 3 * chunk)
        one_by_one = []
        start = time.perf_counter()
        for seed in range(SEEDS):
            one_by_one.append(
                timed(make_agent, make_runs(config, seeds=[seed]), lambda n: envs.make(gym_id, num_envs=n),
                      steps, chunk)
            )  # fmt: skip
        sequential = SEEDS / sum(1.0 / r for r in one_by_one)  # 4 runs' steps over the sum of their times
        seq_wall = time.perf_counter() - start
        runs = make_runs(config, seeds=SEEDS)
        start = time.perf_counter()
        together = timed(make_agent, runs, lambda n: envs.make(gym_id, num_envs=n), steps, chunk)
        sync_wall = time.perf_counter() - start
        start = time.perf_counter()
        together_async = timed(
            make_agent, runs, lambda n: envs.make(gym_id, num_envs=n, asynchronous=True), steps, chunk
        )
        async_wall = time.perf_counter() - start
        rows.append(
            f"| {name} | {sequential:,.0f} ({seq_wall:.0f} s) | {together:,.0f} ({sync_wall:.0f} s) | "
            f"{together / sequential:.2f}× | {together_async:,.0f} ({async_wall:.0f} s) | "
            f"{together_async / sequential:.2f}× |"
        )
        print(rows[-1], flush=True)
    table = (
        f"# Host loop: {SEEDS} seeds together vs one after another on {args.env}\n\n"
        f"{datetime.date.today()} · {cpu_model()} ({os.cpu_count()} cores, {platform.machine()}) · "
        f"JAX {jax.__version__} on {jax.devices()[0].platform} · {args.steps:,} env steps per run\n\n"
        "Total env steps/s of all runs after compilation (wall time of the whole measurement, compiles "
        "included, in brackets).\n\n"
        "| learner | one after another | together, sync | speed-up | together, async | speed-up |\n"
        "|---|---:|---:|---:|---:|---:|\n" + "\n".join(rows) + "\n"
    )
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(table)
    print(table)
    return table


if __name__ == "__main__":
    main()
