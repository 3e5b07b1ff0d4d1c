"""What skill discovery costs per env step on ``point-room``: each method beside plain SAC, and beside the
update-only limit, in one run.

    python -m experiments.benchmarks.skills          # prints a table, writes results/skills.md

Every variant has the sizes of ``experiments/reproduce/skills.py`` (SAC and the skill models 256 × 256, 8 envs,
one gradient step per 8 env steps, batch 256) and learns from the first step. Two numbers per variant:

- **env steps / s**: whole on-device chunks (env steps, replay, the skill model's update, relabelling, SAC),
  timed with ``experiments.benchmarks.composition.interleaved`` (repeats in a fresh random order, median);
- **update-only limit**: the env steps / s the learner alone would allow — one jitted, scanned sequence of the
  composed agent's ``update`` on fixed batches, timed the same way, times 8 env steps per update. The gap
  between the two is what acting, the env and the replay cost.
"""

from __future__ import annotations

import datetime
import platform
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import envs
from experiments.benchmarks.composition import _compiled, interleaved
from experiments.reproduce.skills import SIZES, make_config
from rlkit import conditioning, registry
from rlkit.off_policy import example_transition

OUT = Path(__file__).parent / "results" / "skills.md"
VARIANTS = {  # name: (registry entry, config changes)
    "SAC (task reward)": ("sac", {}),
    "DIAYN (16 skills)": ("diayn", {}),
    "LSD": ("lsd", {}),
    "METRA": ("metra", {}),
    "CSD": ("csd", {}),
    "DADS (L = 16)": ("dads", {}),
    "DADS (L = 100, its configs)": ("dads", {"num_prior_samples": 100}),
}


def _config(algo: str, changes: dict):
    if algo == "sac":
        config = registry.get("sac").config_cls(**SIZES)
    else:
        config = make_config(algo, 0)
    return config.replace(learning_starts=0, **changes)


def _update_only(algo: str, config, env, updates: int = 50, repeats: int = 7) -> float:
    """Median seconds per gradient step of the composed agent's ``update`` (scanned, jitted, fixed batches)."""
    entry = registry.get(algo)
    spec = (
        env.spec
        if entry.condition is None
        else conditioning.Conditioned(env, entry.condition(config)[0]).spec
    )
    agent = entry.make_agent(config, spec)
    extras = None
    if entry.condition is not None:
        extras = {"z": jax.ShapeDtypeStruct((entry.condition(config)[0].size,), jnp.float32)}
    row = example_transition(spec, extras)
    key = jax.random.key(0)
    batch = jax.tree.map(
        lambda x: (
            jax.random.uniform(key, (config.batch_size, *x.shape), minval=-1, maxval=1).astype(x.dtype)
            if x.dtype == jnp.float32
            else jnp.zeros((config.batch_size, *x.shape), x.dtype)
        ),
        row,
    )

    @jax.jit
    def run(state, keys):
        return jax.lax.scan(lambda s, k: agent.update(s, batch, k), state, keys)

    state = agent.init(jax.random.key(1))
    keys = jax.random.split(jax.random.key(2), updates)
    state, m = run(state, keys)  # compile
    jax.block_until_ready(m)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        state, m = run(state, keys)
        jax.block_until_ready(m)
        times.append((time.perf_counter() - start) / updates)
    return float(np.median(times))


def main(chunks: int = 2, repeats: int = 5) -> str:
    env = envs.make("point-room")
    configs = {name: _config(algo, changes) for name, (algo, changes) in VARIANTS.items()}
    built = {
        name: _compiled(registry.get(VARIANTS[name][0]).make_trainer(cfg, env), cfg)
        for name, cfg in configs.items()
    }
    per_step, times = interleaved(built, chunks, repeats)
    per_update = {name: _update_only(VARIANTS[name][0], cfg, env) for name, cfg in configs.items()}
    envs_per_update = SIZES["num_envs"]
    base = per_step["SAC (task reward)"]
    lines = [
        f"# Skill discovery: env steps / s on point-room\n\n{datetime.date.today()} · {platform.machine()}, "
        f"{len(jax.devices())} {jax.devices()[0].platform} device · JAX {jax.__version__} · networks 256×256, "
        f"{envs_per_update} envs, one gradient step per {envs_per_update} env steps, batch 256, one run, median of "
        f"{repeats} interleaved repeats × {chunks} chunks of {SIZES['chunk_steps']} vector steps\n",
        "| variant | env steps / s | vs SAC | update-only limit (env steps / s) | share of the limit |",
        "|---|---:|---:|---:|---:|",
    ]
    for name in VARIANTS:
        rate, limit = 1e6 / per_step[name], envs_per_update / per_update[name]
        lines.append(
            f"| {name} | {rate:,.0f} | {base / per_step[name]:.2f}× | {limit:,.0f} | {rate / limit:.0%} |"
        )
    spread = max(max(t) / min(t) - 1.0 for t in times.values())
    lines.append(f"\nOne variant's repeats differ by up to {spread:.0%} on this machine (timing noise).\n")
    table = "\n".join(lines) + "\n"
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(table)
    print(table)
    return table


if __name__ == "__main__":
    main()
