"""What goal reaching costs per env step on ``point-spiral``: CRL, single-goal CRL and SAC + HER beside plain SAC,
in one run (this machine's CPU; JaxGCRL's published update throughput is on GPUs).

    python -m experiments.benchmarks.goals          # prints a table, writes results/goals.md

Every variant has the sizes of ``experiments/reproduce/crl.py`` (2 × 128 networks, 8 envs, 2 gradient steps of
batch 256 per 8 env steps) and learns from the first step; plain SAC learns from the env's (zero) reward on the
unconditioned observation — the cost of the loop itself. Whole on-device chunks (env steps, replay, relabelling,
updates), timed with ``experiments.benchmarks.composition.interleaved`` (repeats in a fresh random order, median).
"""

from __future__ import annotations

import datetime
import platform
from pathlib import Path

import jax

import envs
from experiments.benchmarks.composition import _compiled, _spread, interleaved
from experiments.reproduce.crl import COMMON, UPDATES, make
from rlkit import registry

OUT = Path(__file__).parent / "results" / "goals.md"
VARIANTS = ("SAC (no goals)", "SAC + HER", "CRL, goal sampling", "single-goal CRL")


def _trainer(name: str, env):
    if name == "SAC (no goals)":
        config = registry.get("sac").config_cls(**(COMMON | dict(learning_starts=0, buffer_size=100_000)))
        return registry.get("sac").make_trainer(config, env), config
    module, config = make(name, env.unwrapped.layout.goal, 100_000)
    config = config.replace(learning_starts=0)
    return module.make_trainer(config, env), config


def main(chunks: int = 2, repeats: int = 5) -> str:
    env = envs.make("point-spiral")
    built = {name: _compiled(*_trainer(name, env)) for name in VARIANTS}
    per_step, times = interleaved(built, chunks, repeats)
    base = per_step["SAC (no goals)"]
    lines = [
        f"# Goal reaching: env steps / s on point-spiral\n\n{datetime.date.today()} · {platform.machine()}, "
        f"{len(jax.devices())} {jax.devices()[0].platform} device · JAX {jax.__version__} · networks 128×128, "
        f"{COMMON['num_envs']} envs, {UPDATES} gradient steps of batch 256 per {COMMON['num_envs']} env steps, one "
        f"run, median of {repeats} interleaved repeats × {chunks} chunks of {COMMON['chunk_steps']} vector steps\n",
        "| variant | env steps / s | vs SAC |",
        "|---|---:|---:|",
    ]
    for name in VARIANTS:
        lines.append(f"| {name} | {1e6 / per_step[name]:,.0f} | {base / per_step[name]:.2f}× |")
    lines.append(
        f"\nOne variant's repeats differ by up to {_spread(times):.0%} on this machine (timing noise).\n"
    )
    table = "\n".join(lines) + "\n"
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(table)
    print(table)
    return table


if __name__ == "__main__":
    main()
