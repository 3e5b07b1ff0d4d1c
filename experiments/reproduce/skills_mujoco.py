"""Skill discovery on a Gymnasium MuJoCo env through the host loop, at a budget this CPU allows ("reduced
budget"): x-coverage of METRA's and LSD's skills on ``HalfCheetah-v5``.

    python -m experiments.reproduce.skills_mujoco                     # 2 seeds, 100,000 env steps each
    python -m experiments.reproduce.skills_mujoco --steps 20000 --algos metra

Setting (METRA's HalfCheetah runs, scaled down): the full observation with the x position in it
(``exclude_current_positions_from_observation=False``: φ sees x, as in METRA's state-based runs, no x-y prior),
200-step episodes, 16 discrete skills (centred one-hot), SAC and φ 256 × 256 (the papers: 1024), 8 envs per
run and one gradient step per 8 env steps. METRA trains for tens of millions of env steps; 100,000 here is a
reduced budget, so what is measured is how far each method has come at it, not its asymptote.

x-coverage (METRA's HalfCheetah metric): the number of distinct unit bins ``floor(x)`` visited by the 16 skills'
deterministic rollouts (199 steps each), beside the untrained policy's and uniformly random actions'; IQM over
seeds with a 95% bootstrap CI. Results: ``results/skills_mujoco.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from envs.gymnasium_bridge import GymnasiumVectorEnv
from rlkit import conditioning, registry
from rlkit.host_loop import train_host
from rlkit.statistics import bootstrap_ci, format_ci, iqm
from rlkit.sweeps import make_runs

RESULTS = Path(__file__).parent / "results"
ENV_ID = "HalfCheetah-v5"
GYM_KWARGS = {"exclude_current_positions_from_observation": False, "max_episode_steps": 200}
K = 16
SIZES = dict(
    hidden_sizes=(256, 256), phi_hidden_sizes=(256, 256), num_envs=8, chunk_steps=250, learning_starts=10_000,
    buffer_size=200_000, discrete=True, skill_dim=K,
)  # fmt: skip


def make_env(n: int) -> GymnasiumVectorEnv:
    return GymnasiumVectorEnv(ENV_ID, n, gym_kwargs=GYM_KWARGS, seed=0)


def x_paths(act, z: np.ndarray, seed: int = 0, steps: int = 199) -> np.ndarray:
    """``float[K, steps + 1]``: x of each skill's rollout (one sub-env per skill; ``act(obs [K, D], z [K, d])``)."""
    env = make_env(len(z))
    try:
        obs = env.reset(seed=seed)
        xs = [obs[:, 0]]
        for _ in range(steps):
            obs, *_ = env.step(np.asarray(act(obs, z)))
            xs.append(obs[:, 0])
    finally:
        env.close()
    return np.stack(xs, 1)


def x_coverage(xs: np.ndarray) -> int:
    return len(np.unique(np.floor(xs).astype(np.int64)))


def run(algo: str, seeds: int, steps: int) -> dict:
    entry = registry.get(algo)
    config = entry.config_cls(**SIZES)
    prior, every = entry.condition(config)
    with make_env(1) as probe:
        raw_spec = probe.spec
    entry.validate(config, raw_spec)
    pieces = entry.host_pieces(config, raw_spec) | {"prior": prior, "resample_every": every}
    runs = make_runs(config, seeds=seeds)
    agent = entry.make_agent(config, conditioning.conditioned_spec(raw_spec, prior))
    zs = np.asarray(jax.vmap(prior.sample)(jax.random.split(jax.random.key(0), 256)))
    zs = np.unique(zs, axis=0)  # the K skills

    def policy(state):
        f = jax.jit(jax.vmap(lambda o, z, k: agent.act(state, jnp.concatenate([o, z]), k, "deterministic")))
        return lambda obs, z: f(
            jnp.asarray(obs, jnp.float32), jnp.asarray(z), jax.random.split(jax.random.key(1), len(z))
        )

    untrained = [x_coverage(x_paths(policy(agent.init(jax.random.key(1000 + s))), zs)) for s in range(seeds)]
    start = time.perf_counter()
    result = train_host(entry.make_agent, runs, make_env, total_steps=steps, console=False, **pieces)
    wall = time.perf_counter() - start
    paths = [
        x_paths(policy(jax.tree.map(lambda x, s=s: x[s], result.state.agent_state)), zs) for s in range(seeds)
    ]
    return {
        "algo": algo, "seeds": seeds, "steps": steps, "wall_s": wall, "untrained": untrained,
        "coverage": [x_coverage(p) for p in paths], "max_abs_x": [float(np.abs(p).max()) for p in paths],
        "paths": [p.tolist() for p in paths],
    }  # fmt: skip


def random_coverage(seeds: int = 2) -> list[int]:
    rng = np.random.default_rng(0)
    return [
        x_coverage(x_paths(lambda obs, z: rng.uniform(-1, 1, (len(z), 6)), np.zeros((K, 1)), seed=s))
        for s in range(seeds)
    ]


def render(cells: list[dict], rand: list[int]) -> str:
    lines = [
        f"# Skill discovery on {ENV_ID} through the host loop — reduced budget\n",
        f"16 discrete skills, full observation with x, 200-step episodes, SAC and φ 256 × 256; x-coverage = distinct "
        f"unit bins of x visited by the 16 skills' deterministic rollouts. Random actions: {rand}.\n",
        "| algorithm | seeds | env steps | x-coverage, IQM [95% CI] (per seed) | untrained policy | max abs x (per seed) | wall s |",
        "|---|---:|---:|---|---:|---|---:|",
    ]  # fmt: skip
    for c in cells:
        cov = np.asarray(c["coverage"], float)
        lines.append(
            f"| {c['algo']} | {c['seeds']} | {c['steps']:,} | {format_ci(*bootstrap_ci(cov, iqm), 0)} "
            f"({', '.join(str(v) for v in c['coverage'])}) | {iqm(np.asarray(c['untrained'], float)):.0f} | "
            f"{', '.join(f'{v:.1f}' for v in c['max_abs_x'])} | {c['wall_s']:.0f} |"
        )
    return "\n".join(lines) + "\n"


def figure(cells: list[dict], path: Path) -> None:
    """x against time for each of the 16 skills (seed 0), one panel per algorithm."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(cells), figsize=(4.5 * len(cells), 3.2), squeeze=False, sharey=True)
    for ax, c in zip(axes[0], cells):
        paths = np.asarray(c["paths"][0])
        for i, xs in enumerate(paths):
            ax.plot(xs, color=plt.cm.hsv(i / len(paths)), lw=1)
        ax.set(title=f"{c['algo']}: x-coverage {c['coverage'][0]} (seed 0)", xlabel="step", ylabel="x")
    fig.suptitle(f"{ENV_ID}, 16 skills, {cells[0]['steps']:,} env steps (reduced budget)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None) -> str:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--algos", default="metra,lsd")
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--steps", type=int, default=100_000)
    p.add_argument("--merge", action="store_true", help="only the table and figure from the saved results")
    a = p.parse_args(argv)
    if a.merge:
        saved = json.loads((RESULTS / "skills_mujoco.json").read_text())
        rand, cells = saved["random"], saved["cells"]
    else:
        rand = random_coverage()
        cells = []
        for algo in a.algos.split(","):
            cells.append(run(algo, a.seeds, a.steps))
            print(render(cells[-1:], rand).splitlines()[-1], flush=True)
        (RESULTS / "skills_mujoco.json").write_text(json.dumps({"random": rand, "cells": cells}))
    figure(cells, RESULTS / "skills_mujoco.png")
    table = render(cells, rand)
    (RESULTS / "skills_mujoco.md").write_text(table)
    print(table)
    return table


if __name__ == "__main__":
    main()
