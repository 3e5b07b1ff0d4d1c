"""The main job: a short run on a JAX-native env that writes TensorBoard logs, a JSON-lines file per run, an
orbax checkpoint and a learning-curve picture.

    python -m experiments.train                       # the embedded default (what `make run` does)
    python -m experiments.train --env push2d --num-seeds 4 --total-steps 100000

Until the learners land (issue "Foundation 3/3") the only agent is the uniformly random policy, so the curve is
flat: this run exercises the full path env → compiled chunked rollout over a vmapped ``runs`` axis → logs →
checkpoint → figure, which training will reuse unchanged.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path

import jax
import numpy as np
import tyro

import envs
from agents.random_policy import make_random_agent
from rlkit.checkpointing import Checkpointer
from rlkit.logger import RunLogger
from rlkit.plots import load_curves, plot_learning_curves
from rlkit.rollout import make_rollout


@dataclass(frozen=True)
class TrainConfig:
    env: str = "pendulum"
    """registered env id (see `rlkit envs`)"""
    agent: str = "random"
    """agent name; `random` until the learners of Foundation 3/3 exist"""
    num_seeds: int = 4
    """independent runs vmapped into one compiled program (the `runs` axis)"""
    num_envs: int = 16
    """parallel envs per run"""
    total_steps: int = 64_000
    """env steps per run"""
    chunk_steps: int = 250
    """env steps per env in one compiled chunk; logging happens between chunks"""
    seed: int = 0
    """base seed; run i uses fold_in(key(seed), i)"""
    log_dir: str = "runs/default"
    """where TensorBoard files, metrics.jsonl, checkpoints and learning_curve.png go"""
    checkpoint_every: int = 5
    """save a checkpoint every this many chunks (and at the end)"""


AGENTS = {"random": make_random_agent}


def validate(config: TrainConfig) -> None:
    if config.agent not in AGENTS:
        raise ValueError(f"agent={config.agent!r} is not available; choose from {sorted(AGENTS)}")
    for name in ("num_seeds", "num_envs", "total_steps", "chunk_steps", "checkpoint_every"):
        if getattr(config, name) < 1:
            raise ValueError(f"{name} must be >= 1, got {getattr(config, name)}")
    envs.registry.lookup(config.env)  # unknown ids raise with the closest names


def train(config: TrainConfig) -> dict:
    validate(config)
    env = envs.make(config.env)
    agent = AGENTS[config.agent](env.spec)
    init, run_chunk = make_rollout(env, agent, num_envs=config.num_envs, chunk_steps=config.chunk_steps)
    steps_per_chunk = config.num_envs * config.chunk_steps
    num_chunks = -(-config.total_steps // steps_per_chunk)

    keys = jax.vmap(lambda i: jax.random.fold_in(jax.random.key(config.seed), i))(np.arange(config.num_seeds))
    state = jax.jit(jax.vmap(init))(keys)
    chunk = jax.jit(jax.vmap(run_chunk), donate_argnums=0)

    log_dir = Path(config.log_dir)
    run_names = [f"seed_{i}" for i in range(config.num_seeds)]
    logger = RunLogger(log_dir, run_names, total_steps=num_chunks * steps_per_chunk)
    checkpointer = Checkpointer(log_dir / "checkpoints", max_to_keep=2)
    (log_dir / "config.json").write_text(json.dumps(dataclasses.asdict(config), indent=2))
    start = time.perf_counter()
    for c in range(1, num_chunks + 1):
        state, metrics = chunk(state)
        metrics = jax.device_get(metrics)
        if np.any(metrics["nonfinite_steps"] > 0):
            raise FloatingPointError(f"{config.env} produced non-finite observations or rewards in chunk {c}")
        step = c * steps_per_chunk
        per_run = logger.log(step, {k: v for k, v in metrics.items() if k != "nonfinite_steps"})
        logger.progress(step, {"return": per_run["episode_return"]})
        if c % config.checkpoint_every == 0 or c == num_chunks:
            checkpointer.save(step, state, dataclasses.asdict(config))
    seconds = time.perf_counter() - start
    logger.close()
    checkpointer.close()

    steps, values = load_curves([log_dir / n / "metrics.jsonl" for n in run_names], "episode_return")
    figure = plot_learning_curves(
        {config.agent: (steps, values)},
        log_dir / "learning_curve.png",
        title=f"{config.agent} on {config.env}",
    )
    final = values[:, -1]  # the last step at which some run finished an episode
    summary = {
        "env": config.env,
        "agent": config.agent,
        "steps_per_run": num_chunks * steps_per_chunk,
        "runs": config.num_seeds,
        "final_return_mean": float(np.mean(final[np.isfinite(final)])),
        "final_return_std": float(np.std(final[np.isfinite(final)])),
        "env_steps_per_s": num_chunks * steps_per_chunk * config.num_seeds / seconds,
        "figure": figure,
        "log_dir": str(log_dir),
    }
    (log_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    print(
        f"\nfinal return {summary['final_return_mean']:.1f} ± {summary['final_return_std']:.1f} "
        f"over {config.num_seeds} runs; logs, checkpoints and {figure} in {log_dir}/"
    )
    return summary


def main() -> None:
    train(tyro.cli(TrainConfig))


if __name__ == "__main__":
    main()
