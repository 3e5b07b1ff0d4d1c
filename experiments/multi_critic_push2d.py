"""SLIM's claim on ``push2d``: one critic per reward term with per-term normalization vs a single critic.

    python -m experiments.multi_critic_push2d [--seeds 5] [--quick]

SLIM (Skill Learning with Multiple Critics) argues that when an agent must satisfy several rewards at once, summing
them into one scalar lets the terms interfere, while one critic per term, with each term's advantages normalized
and then combined with weights, learns all of them. ``push2d``'s terms differ in scale and timing: ``reach``
(dense, always negative), ``push`` (sparse: paid only while the block is on the goal), ``safety`` (a penalty on
rare speed / off-table violations) and ``control`` (small, every step). For PPO and SAC, three variants with the
same budget, network sizes and weights:

- ``single critic (sum)``: ``multi_critic=False``, one critic on the weighted sum of the terms;
- ``multi-critic, no norm``: one critic (value / Q output) per term, ``term_normalization="none"`` — PPO sums the
  raw per-term advantages and normalizes only the sum (as the single critic does), SAC sums raw Q-values;
- ``multi-critic, per-term norm``: the same critics, each term normalized before weighting (PPO: per-term
  advantage normalization, SLIM; SAC: each term's Q divided by the running std of its TD targets).

Each variant is one compiled program with all seeds vmapped. Reported per variant: IQM over seeds with 95%
percentile-bootstrap CIs (``rlkit.statistics``) of the deterministic policy's success rate (block on the goal at
the end of the episode), safety violations per episode and per-term returns, each seed's value being the mean of
its last 3 evaluations (10 episodes each); plus a learning-curve figure. Written to ``experiments/results/
multi_critic_push2d.{md,png}`` (``--quick``: a smoke test with a tiny budget, written with a ``_quick`` suffix).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import time
from pathlib import Path

import jax
import numpy as np

import envs
from agents import ppo, sac
from rlkit.off_policy import weights_for
from rlkit.plots import plot_learning_curve_panels
from rlkit.statistics import bootstrap_ci, format_ci
from rlkit.sweeps import make_runs
from rlkit.training import train

OUT = Path(__file__).parent / "results"
#: push2d constructor overrides (the rest are the env's defaults): shorter episodes, a slightly larger goal
ENV_PARAMS = {"max_episode_steps": 50, "goal_radius": 0.15}
#: reward-term weights, the same for every variant (on raw rewards for the sum, on normalized terms otherwise)
WEIGHTS = {"reach": 1.0, "push": 1.0, "safety": 1.0, "control": 0.1}
VARIANTS = {
    "single critic (sum)": dict(multi_critic=False),
    "multi-critic, no norm": dict(multi_critic=True, term_normalization="none"),
    "multi-critic, per-term norm": dict(multi_critic=True, term_normalization="per_term"),
}
LAST_EVALS = 3


def learners(quick: bool, weights: tuple[float, ...]):
    """``name -> (make_trainer, base config, total env steps, eval every n chunks)``."""
    ppo_steps = 40_960 if quick else 307_200
    ppo_config = ppo.continuous_config(
        num_envs=16,
        num_steps=64,
        num_minibatches=4,
        update_epochs=4,
        iterations_per_chunk=5,
        learning_rate=3e-4,
        anneal_steps=ppo_steps,
        normalize_reward=False,  # it would rescale each term by its own return std: a per-term normalization
        reward_weights=weights,
    )
    sac_steps = 4_000 if quick else 30_000
    sac_config = sac.SACConfig(
        hidden_sizes=(64, 64),
        num_envs=2,
        chunk_steps=1000,
        buffer_size=100_000,
        batch_size=128,
        learning_starts=2_000 if not quick else 1_000,
        reward_weights=weights,
    )
    return {
        "PPO": (ppo.make_trainer, ppo_config, ppo_steps, 2),
        "SAC": (sac.make_trainer, sac_config, sac_steps, 1),
    }


def run_variant(make_trainer, config, env, seeds, steps, eval_every):
    trainer = make_trainer(config, env)
    runs = make_runs(config, seeds=seeds)
    start = time.perf_counter()
    result = train(trainer, runs, total_steps=steps, eval_every=eval_every, console=False)
    seconds = time.perf_counter() - start
    evals = [(i + 1) * trainer.steps_per_chunk for i, h in enumerate(result.history) if "eval_return" in h]
    history = [h for h in result.history if "eval_return" in h]
    curves = {k: np.stack([h[k] for h in history], axis=1) for k in history[-1] if k.startswith("eval_")}
    return np.asarray(evals), curves, seconds


def main(seeds: int = 5, quick: bool = False) -> str:
    env = envs.make("push2d", **ENV_PARAMS)
    names = env.spec.reward_names
    weights = weights_for(env.spec, WEIGHTS)
    metrics = ["eval_success", "eval_success_any", "eval_safety_violations"]
    metrics += [f"eval_return/{n}" for n in names]
    headers = ["success", "success (any step)", "violations / episode"] + [f"return: {n}" for n in names]
    rows, panels, times = [], {}, {}
    total_start = time.perf_counter()
    for learner, (make_trainer, base, steps, eval_every) in learners(quick, weights).items():
        panels[f"{learner}: success rate"] = {}
        panels[f"{learner}: safety violations / episode"] = {}
        for variant, changes in VARIANTS.items():
            config = base.replace(**changes)
            steps_at, curves, seconds = run_variant(make_trainer, config, env, seeds, steps, eval_every)
            times[(learner, variant)] = seconds
            final = {k: np.mean(curves[k][:, -LAST_EVALS:], axis=1) for k in metrics}  # [seeds]
            rows.append([learner, variant] + [format_ci(*bootstrap_ci(final[k])) for k in metrics])
            panels[f"{learner}: success rate"][variant] = (steps_at, curves["eval_success"])
            panels[f"{learner}: safety violations / episode"][variant] = (
                steps_at,
                curves["eval_safety_violations"],
            )
            print(f"{learner:4s} {variant:28s} {seconds:6.0f} s  " + "  ".join(rows[-1][2:5]), flush=True)
    wall = time.perf_counter() - total_start

    suffix = "_quick" if quick else ""
    OUT.mkdir(parents=True, exist_ok=True)
    figure = plot_learning_curve_panels(
        panels, OUT / f"multi_critic_push2d{suffix}.png", ylabel="deterministic policy, 10 episodes"
    )
    budgets = {name: spec[2] for name, spec in learners(quick, weights).items()}
    lines = [
        "# Multi-critic vs single critic on push2d (SLIM's claim)",
        "",
        f"`python -m experiments.multi_critic_push2d --seeds {seeds}{' --quick' if quick else ''}` · "
        f"{datetime.datetime.now(datetime.UTC).isoformat(timespec='seconds')} · {platform.machine()}, "
        f"{os.cpu_count()} CPU cores · JAX {jax.__version__} on {jax.default_backend()} · wall {wall:.0f} s",
        "",
        f"- env: `envs.make('push2d', {', '.join(f'{k}={v}' for k, v in ENV_PARAMS.items())})`, other params "
        "default; reward weights " + ", ".join(f"{k} {v:g}" for k, v in WEIGHTS.items()),
        f"- budget per run: PPO {budgets['PPO']:,} env steps, SAC {budgets['SAC']:,} env steps; {seeds} seeds "
        "per variant, vmapped in one program",
        f"- each cell: IQM over seeds [95% percentile-bootstrap CI]; a seed's value is the mean of its last "
        f"{LAST_EVALS} evaluations of the deterministic policy (10 episodes each); success = block on the goal "
        "at the episode's end",
        "",
        "| learner | variant | " + " | ".join(headers) + " |",
        "|---|---|" + "---:|" * len(headers),
    ]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    lines += ["", "Wall time per program (compile + train + evaluations):", ""]
    lines += [f"- {learner}, {variant}: {s:.0f} s" for (learner, variant), s in times.items()]
    lines += ["", f"![learning curves]({Path(figure).name})", ""]
    text = "\n".join(lines)
    (OUT / f"multi_critic_push2d{suffix}.md").write_text(text)
    print(text)
    return text


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=5, help="seeds per variant (vmapped in one program)")
    parser.add_argument("--quick", action="store_true", help="a tiny budget: checks the script end to end")
    args = parser.parse_args()
    main(args.seeds, args.quick)
