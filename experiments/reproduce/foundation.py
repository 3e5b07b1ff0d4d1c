"""The base learners' learning claims, measured: the same settings as the learning tests, more seeds, one table.

    python -m experiments.reproduce.foundation            # writes experiments/reproduce/results/foundation.md

Each row is one compiled program: all seeds vmapped. "final" is the mean deterministic return over 10 episodes
per seed at the end of the budget (mean ± std over seeds), next to the reference number it is held against.
"""

from __future__ import annotations

import datetime
import platform
import time
from pathlib import Path

import jax
import numpy as np

import envs
from agents import ppo, sac, td3
from rlkit.host_loop import train_host
from rlkit.sweeps import make_runs
from rlkit.training import train

SMALL = {"hidden_sizes": (64, 64), "learning_starts": 1000, "buffer_size": 20_000, "chunk_steps": 1000}
OUT = Path(__file__).parent / "results" / "foundation.md"


def on_device(name, trainer, config, seeds, steps, eval_every, reference):
    start = time.perf_counter()
    result = train(trainer, make_runs(config, seeds=seeds), total_steps=steps, eval_every=eval_every)
    seconds = time.perf_counter() - start
    final = np.asarray(result.history[-1]["eval_return"])
    return [name, seeds, result.steps, f"{final.mean():.1f} ± {final.std():.1f}", reference, f"{seconds:.0f}"]


def main(seeds: int = 8) -> str:
    rows = [
        on_device(
            "SAC, pendulum (64×64)",
            sac.make_trainer(sac.SACConfig(**SMALL), envs.make("pendulum")),
            sac.SACConfig(**SMALL),
            seeds,
            20_000,
            20,
            "≥ −200 (rl-zoo −157 ± 89 at 20k)",
        ),
        on_device(
            "TD3, pendulum (64×64, lr 1e-3, γ 0.98)",
            td3.make_trainer(td3.TD3Config(**SMALL, learning_rate=1e-3, gamma=0.98), envs.make("pendulum")),
            td3.TD3Config(**SMALL, learning_rate=1e-3, gamma=0.98),
            seeds,
            20_000,
            20,
            "≥ −200 (rl-zoo −152)",
        ),
    ]
    cart = ppo.PPOConfig(num_envs=16, num_steps=32, iterations_per_chunk=20, anneal_steps=491_520)
    rows.append(
        on_device(
            "PPO, cartpole (16 envs × 32 steps)",
            ppo.make_trainer(cart, envs.make("cartpole")),
            cart,
            seeds,
            491_520,  # 48 chunks of 10,240: within 500k
            30,
            "≥ 475 (CleanRL 490 ± 6 at 500k)",
        )
    )
    pend = ppo.continuous_config(
        num_envs=16,
        num_steps=64,
        num_minibatches=8,
        learning_rate=1e-3,
        gamma=0.95,
        anneal_steps=100_000,
        iterations_per_chunk=4,
    )
    rows.append(
        on_device(
            "PPO, pendulum (continuous)",
            ppo.make_trainer(pend, envs.make("pendulum")),
            pend,
            seeds,
            100_000,
            25,
            "improves on random (≈ −1200); rl-zoo −172 at 100k",
        )
    )
    start = time.perf_counter()
    result = train_host(  # the runs step together: one vector env of runs × 1 sub-envs
        sac.make_sac,
        make_runs(sac.SACConfig(**SMALL), seeds=min(seeds, 4)),
        lambda n: envs.make("gymnasium:Pendulum-v1", num_envs=n),
        total_steps=20_000,
        eval_every=20,
        console=False,
    )
    host_returns = result.metrics["eval_return"]  # 10 deterministic episodes per run, after the last chunk
    rows.append(
        [
            "SAC, Gymnasium Pendulum-v1 via the host loop (64×64), 4 seeds together",
            len(host_returns),
            20_000,
            f"{np.mean(host_returns):.1f} ± {np.std(host_returns):.1f}",
            "≥ −200",
            f"{time.perf_counter() - start:.0f}",
        ]
    )
    header = (
        f"# Base learners: measured returns\n\n{datetime.date.today()} · {platform.machine()}, "
        f"{len(jax.devices())} {jax.devices()[0].platform} device · JAX {jax.__version__}\n\n"
        "| learner, env | seeds | env steps | final deterministic return | target (reference) | wall s |\n"
        "|---|---|---|---|---|---|\n"
    )
    table = header + "\n".join("| " + " | ".join(str(c) for c in r) + " |" for r in rows) + "\n"
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(table)
    print(table)
    return table


if __name__ == "__main__":
    main()
