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


def render(record: list[dict], seeds: int, quick: bool = False) -> str:
    """The markdown table of measured rows (``record``: one dict per row, as written to the JSON file)."""
    rows = [
        [r["agent"].upper(), r["env"], r["sampling"], f"{r['steps'] // 1000}k", _ci(r["final"]), _ci(r["auc"]),
         f"{r['seconds']:.0f}"]
        for r in record
    ]  # fmt: skip
    header = (
        f"# Replay sampling: with replacement, RR-C, PER, RR-M\n\n{datetime.date.today()} · {platform.machine()}, "
        f"{len(jax.devices())} {jax.devices()[0].platform} device · JAX {jax.__version__} · {seeds} seeds per row"
        + (" · QUICK (smoke budgets, not a result)" if quick else "")
        + "\n\n| learner | env | sampling | env steps | final return, IQM [95% CI] | area under the curve, IQM "
        "[95% CI] | wall s |\n|---|---|---|---|---|---|---|\n"
    )
    return header + "\n".join("| " + " | ".join(r) + " |" for r in rows) + "\n"


def merge(pairs=("dqn-cartpole", "dqn-acrobot", "sac-pendulum")) -> str:
    """``replay_sampling.md`` / ``.json`` from the files of ``--only`` runs (one per learner-env pair)."""
    record = [
        row for pair in pairs for row in json.loads((RESULTS / f"replay_sampling_{pair}.json").read_text())
    ]
    table = render(record, len(record[0]["final"]))
    (RESULTS / "replay_sampling.md").write_text(table)
    (RESULTS / "replay_sampling.json").write_text(json.dumps(record, indent=1))
    return table


def main(argv=None) -> str:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, default=8)
    p.add_argument("--dqn-steps", type=int, default=500_000)
    p.add_argument("--sac-steps", type=int, default=20_000)
    p.add_argument("--chunks", type=int, default=50, help="chunks per run (evaluations every --eval-every)")
    p.add_argument("--eval-every", type=int, default=5)
    p.add_argument("--quick", action="store_true", help="tiny budgets: check that every row runs")
    p.add_argument(
        "--only", default=None, help="one learner-env pair, e.g. dqn-cartpole (results in their own file)"
    )
    p.add_argument("--merge", action="store_true", help="one table from the three --only runs' files")
    a = p.parse_args(argv)
    if a.merge:
        table = merge()
        print(table)
        return table
    if a.quick:
        a.seeds, a.dqn_steps, a.sac_steps, a.chunks, a.eval_every = 2, 20_000, 2_000, 2, 1
    record = []
    plan = [("dqn", e, m, a.dqn_steps) for e in ("cartpole", "acrobot") for m in MODES]
    plan += [("sac", "pendulum", m, a.sac_steps) for m in ("uniform", "rr")]
    if a.only is not None:
        pairs = sorted({f"{agent}-{env_id}" for agent, env_id, _, _ in plan})
        if a.only not in pairs:
            p.error(f"--only {a.only!r}: choose from {pairs}")
        plan = [row for row in plan if f"{row[0]}-{row[1]}" == a.only]
    for agent, env_id, mode, steps in plan:
        final, auc, seconds = run(agent, env_id, mode, seeds=a.seeds, steps=steps, chunks=a.chunks,
                                  eval_every=a.eval_every)  # fmt: skip
        record.append(dict(agent=agent, env=env_id, sampling=mode, steps=steps, final=final.tolist(),
                           auc=auc.tolist(), seconds=seconds))  # fmt: skip
        print(render(record[-1:], a.seeds, a.quick).splitlines()[-1], flush=True)
    table = render(record, a.seeds, a.quick)
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = "replay_sampling" + (f"_{a.only}" if a.only else "") + ("_quick" if a.quick else "")
    (RESULTS / f"{name}.md").write_text(table)
    (RESULTS / f"{name}.json").write_text(json.dumps(record, indent=1))
    print(table)
    return table


if __name__ == "__main__":
    main()
