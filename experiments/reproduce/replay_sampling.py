"""Replay sampling measured: with-replacement vs random reshuffling (RR-C) vs prioritized replay (PER) vs RR-M for
DQN on ``cartpole`` and ``acrobot``, and uniform vs RR-C for SAC on ``pendulum`` — the claim of "Experience Replay
with Random Reshuffling" (Fujita 2025, arXiv 2503.02269: RR-C and RR-M beat with-replacement sampling in most
Atari games) measured here, whatever the outcome.

    python -m experiments.reproduce.replay_sampling              # writes results/replay_sampling.md (+ .json)
    python -m experiments.reproduce.replay_sampling --quick      # a smoke run of every row (tiny budgets)

Budgets: DQN at CleanRL ``dqn.py``'s settings and budget (500k env steps, ε decayed over the first half; CleanRL's
benchmark runs DQN on CartPole-v1 and Acrobot-v1 with these same hyperparameters), PER / RR-M with Schaul et al.'s
α = 0.6 and β annealed from 0.4 to 1 over the run; SAC 64×64 for 20k steps on pendulum (the foundation's
setting). Per row, ``--seeds`` seeds (default 8) vmapped in one program; evaluation every ``--eval-every`` chunks:
10 deterministic episodes. Reported per row: the final evaluation return and the area under the evaluation
curve (the mean of all evaluations, so it rewards learning early), IQM over seeds with a 95% percentile-bootstrap
CI (``rlkit.statistics``), and every seed's value in the JSON file.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import time
from pathlib import Path

import jax
import numpy as np

import envs
from agents import dqn, sac
from rlkit.statistics import bootstrap_ci, format_ci, iqm
from rlkit.sweeps import make_runs
from rlkit.training import train

RESULTS = Path(__file__).parent / "results"
MODES = ("uniform", "rr", "per", "rr-m")


def _ci(values) -> str:
    return format_ci(*bootstrap_ci(np.asarray(values, np.float64), iqm))


def run(agent: str, env_id: str, sampling: str, *, seeds: int, steps: int, chunks: int, eval_every: int):
    """One row: ``(final returns [seeds], AUC [seeds], wall seconds)``."""
    chunk = steps // chunks
    if agent == "dqn":
        config = dqn.DQNConfig(chunk_steps=chunk, exploration_steps=steps // 2, sampling=sampling)
        if sampling in ("per", "rr-m"):
            config = config.replace(priority_alpha=0.6, priority_beta=0.4, priority_beta_steps=steps)
        make = dqn.make_trainer
    else:
        config = sac.SACConfig(hidden_sizes=(64, 64), learning_starts=1000, buffer_size=steps, chunk_steps=chunk,
                               sampling=sampling)  # fmt: skip
        make = sac.make_trainer
    start = time.perf_counter()
    result = train(make(config, envs.make(env_id)), make_runs(config, seeds=seeds), total_steps=steps,
                   eval_every=eval_every, console=False)  # fmt: skip
    seconds = time.perf_counter() - start
    curve = np.stack([h["eval_return"] for h in result.history if "eval_return" in h])  # [evals, seeds]
    return curve[-1], curve.mean(axis=0), seconds


def main(argv=None) -> str:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, default=8)
    p.add_argument("--dqn-steps", type=int, default=500_000)
    p.add_argument("--sac-steps", type=int, default=20_000)
    p.add_argument("--chunks", type=int, default=50, help="chunks per run (evaluations every --eval-every)")
    p.add_argument("--eval-every", type=int, default=5)
    p.add_argument("--quick", action="store_true", help="tiny budgets: check that every row runs")
    a = p.parse_args(argv)
    if a.quick:
        a.seeds, a.dqn_steps, a.sac_steps, a.chunks, a.eval_every = 2, 20_000, 2_000, 2, 1
    rows, record = [], []
    plan = [("dqn", e, m, a.dqn_steps) for e in ("cartpole", "acrobot") for m in MODES]
    plan += [("sac", "pendulum", m, a.sac_steps) for m in ("uniform", "rr")]
    for agent, env_id, mode, steps in plan:
        final, auc, seconds = run(agent, env_id, mode, seeds=a.seeds, steps=steps, chunks=a.chunks,
                                  eval_every=a.eval_every)  # fmt: skip
        rows.append(
            [agent.upper(), env_id, mode, f"{steps // 1000}k", _ci(final), _ci(auc), f"{seconds:.0f}"]
        )
        record.append(dict(agent=agent, env=env_id, sampling=mode, steps=steps, final=final.tolist(),
                           auc=auc.tolist(), seconds=seconds))  # fmt: skip
        print(" | ".join(rows[-1]), flush=True)
    header = (
        f"# Replay sampling: with replacement, RR-C, PER, RR-M\n\n{datetime.date.today()} · {platform.machine()}, "
        f"{len(jax.devices())} {jax.devices()[0].platform} device · JAX {jax.__version__} · {a.seeds} seeds per row"
        + (" · QUICK (smoke budgets, not a result)" if a.quick else "")
        + "\n\n| learner | env | sampling | env steps | final return, IQM [95% CI] | area under the curve, IQM "
        "[95% CI] | wall s |\n|---|---|---|---|---|---|---|\n"
    )
    table = header + "\n".join("| " + " | ".join(r) + " |" for r in rows) + "\n"
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = "replay_sampling_quick" if a.quick else "replay_sampling"
    (RESULTS / f"{name}.md").write_text(table)
    (RESULTS / f"{name}.json").write_text(json.dumps(record, indent=1))
    print(table)
    return table


if __name__ == "__main__":
    main()
