"""SLIM's claim on ``push2d``: one critic per reward term with per-term normalization vs a single critic.

    python -m experiments.multi_critic_push2d [--seeds 5] [--quick]

SLIM (Skill Learning with Multiple Critics) argues that when an agent must satisfy several rewards at once, summing
them into one scalar lets the terms interfere, while one critic per term, with each term's advantages normalized
and then combined with weights, learns all of them. ``push2d``'s terms differ in scale and timing: ``reach``
(dense, always negative), ``push`` (a +5 bonus when the block reaches the goal, plus a small dense progress term),
``safety`` (a penalty on speed / off-table violations) and ``control`` (small, every step). Each row differs from
the one above it in one thing, with the same budget, network sizes and weights:

PPO (rewards always normalized by a running return std, CleanRL's continuous default):

- ``single critic (sum)``: one critic on the weighted sum of the terms, rewards divided by the sum's return std;
- ``multi-critic, no norm``: one value head per term, every term divided by that same shared std
  (``reward_scale="shared"``), raw per-term advantages summed, the sum normalized as the single critic's — only
  the value's parameterization differs;
- ``multi-critic, advantage norm only``: + each term's advantages normalized over the minibatch before weighting;
- ``multi-critic, per-term norm`` (SLIM): + each term divided by its own return's std, so every critic learns
  O(1) targets.

SAC:

- ``single critic (sum)``: one critic on the weighted sum;
- ``multi-critic, no norm``: one Q output per term, raw targets, the actor maximizing Σ_k w_k Q_k (the min over
  critics by the weighted sum, the entropy bonus split over terms: the weighted sum is the scalar soft target);
- ``multi-critic, PopArt critics only``: PopArt-normalized critics (each term's outputs and targets normalized by
  its running target mean and std, the last layer rescaled to preserve outputs as the statistics move), no
  entropy bonus in the per-term critics, the actor maximizing Σ_k w_k Q̂_k − α log π over the normalized values
  (``actor_term_scale="none"``);
- ``multi-critic, per-term norm``: + each Q̂_k divided by the running std of its action advantage
  Q̂_k(s, a_data) − Q̂_k(s, a_π) in the actor (the counterpart of SLIM's normalized per-term advantages).

Two settings of the same task: the terms at their native scales, and the reach term ×10 (distances in other
units). The second is the scale mismatch SLIM's normalization is meant for; the first checks what it costs when
the scales are already comparable.

Each variant is one compiled program with all seeds vmapped. Reported per variant: IQM over seeds with 95%
percentile-bootstrap CIs (``rlkit.statistics``) of the deterministic policy's success rate (the block reached the
goal), safety violations per episode and per-term returns, each seed's value being the mean of its last 3
evaluations (10 episodes each); plus a learning-curve figure. Written to ``experiments/results/
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
#: push2d overrides shared by every setting: 50-step episodes, a goal of radius 0.2, success ends the episode with
#: a +5 bonus and a small dense progress term (block-to-goal distance gained per step), so that at least one
#: variant learns to push within the budget (with the purely sparse defaults none did; see the README)
ENV_PARAMS = {
    "max_episode_steps": 50,
    "goal_radius": 0.2,
    "terminate_on_success": True,
    "push_reward": 5.0,
    "push_progress_weight": 1.0,
}
#: the same task with the reach term in two units: its native scale, and ×10 (as if distances were measured in
#: decimetres). A learner that balances terms by their scale should not care; a plain sum should.
SETTINGS = {"native scales": {}, "reach ×10": {"reach_weight": 10.0}}
#: reward-term weights, the same for every variant and setting (on raw rewards for the sum, on normalized terms
#: otherwise)
WEIGHTS = {"reach": 1.0, "push": 1.0, "safety": 1.0, "control": 0.1}
#: learner -> variant -> config changes; each PPO row adds one thing to the row above (see the module docstring)
VARIANTS = {
    "PPO": {
        "single critic (sum)": dict(multi_critic=False, normalize_reward=True),
        "multi-critic, no norm": dict(
            multi_critic=True, term_normalization="none", normalize_reward=True, reward_scale="shared"
        ),
        "multi-critic, advantage norm only": dict(
            multi_critic=True, term_normalization="per_term", normalize_reward=True, reward_scale="shared"
        ),
        "multi-critic, per-term norm": dict(
            multi_critic=True, term_normalization="per_term", normalize_reward=True, reward_scale="per_term"
        ),
    },
    "SAC": {
        "single critic (sum)": dict(multi_critic=False),
        "multi-critic, no norm": dict(multi_critic=True, term_normalization="none"),
        "multi-critic, PopArt critics only": dict(
            multi_critic=True, term_normalization="per_term", actor_term_scale="none"
        ),
        "multi-critic, per-term norm": dict(
            multi_critic=True, term_normalization="per_term", actor_term_scale="advantage"
        ),
    },
}
LAST_EVALS = 3


def learners(quick: bool, weights: tuple[float, ...]):
    """``name -> (make_trainer, base config, total env steps, eval every n chunks)``."""
    ppo_steps = 40_960 if quick else 1_228_800
    ppo_config = ppo.continuous_config(
        num_envs=16,
        num_steps=64,
        num_minibatches=4,
        update_epochs=4,
        iterations_per_chunk=5,
        learning_rate=3e-4,
        anneal_steps=ppo_steps,
        reward_weights=weights,
    )
    sac_steps = (
        4_000 if quick else 150_000
    )  # the single critic reaches success 1.0 only after ~70k (measured)
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
        "PPO": (ppo.make_trainer, ppo_config, ppo_steps, 4),
        "SAC": (sac.make_trainer, sac_config, sac_steps, 1 if quick else 5),
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
    spec = envs.make("push2d").spec
    names, weights = spec.reward_names, weights_for(spec, WEIGHTS)
    metrics = ["eval_success", "eval_safety_violations"] + [f"eval_return/{n}" for n in names]
    headers = ["success", "violations / episode"] + [f"return: {n}" for n in names]
    rows, panels, times = [], {}, {}
    total_start = time.perf_counter()
    specs = learners(quick, weights)
    for setting, overrides in SETTINGS.items():
        env = envs.make("push2d", **ENV_PARAMS, **overrides)
        for learner, (make_trainer, base, steps, eval_every) in specs.items():
            success = panels.setdefault(f"{learner}, {setting}: success rate", {})
            for variant, changes in VARIANTS[learner].items():
                config = base.replace(**changes)
                steps_at, curves, seconds = run_variant(make_trainer, config, env, seeds, steps, eval_every)
                times[(setting, learner, variant)] = seconds
                final = {k: np.mean(curves[k][:, -LAST_EVALS:], axis=1) for k in metrics}  # [seeds]
                cells = [format_ci(*bootstrap_ci(final[k])) for k in metrics]
                rows.append([setting, learner, variant] + cells)
                success[variant] = (steps_at, curves["eval_success"])
                print(f"{setting:13s} {learner:4s} {variant:28s} {seconds:5.0f} s  " + "  ".join(cells[:3]))
    wall = time.perf_counter() - total_start

    suffix = "_quick" if quick else ""
    OUT.mkdir(parents=True, exist_ok=True)
    figure = plot_learning_curve_panels(
        panels,
        OUT / f"multi_critic_push2d{suffix}.png",
        ylabel="success rate (deterministic, 10 episodes)",
        columns=len(specs),
    )
    lines = [
        "# Multi-critic vs single critic on push2d (SLIM's claim)",
        "",
        f"`python -m experiments.multi_critic_push2d --seeds {seeds}{' --quick' if quick else ''}` · "
        f"{datetime.datetime.now(datetime.UTC).isoformat(timespec='seconds')} · {platform.machine()}, "
        f"{os.cpu_count()} CPU cores · JAX {jax.__version__} on {jax.default_backend()} · wall {wall:.0f} s",
        "",
        f"- env: `envs.make('push2d', {', '.join(f'{k}={v}' for k, v in ENV_PARAMS.items())})`, other params "
        "default; setting *reach ×10* adds `reach_weight=10` (the same task, reach in other units)",
        "- reward weights, the same for every row: " + ", ".join(f"{k} {v:g}" for k, v in WEIGHTS.items()),
        f"- budget per run: PPO {specs['PPO'][2]:,} env steps, SAC {specs['SAC'][2]:,} env steps; {seeds} seeds "
        "per row, vmapped in one program",
        f"- each cell: IQM over seeds [95% percentile-bootstrap CI]; a seed's value is the mean of its last "
        f"{LAST_EVALS} evaluations of the deterministic policy (10 episodes each); success = the block reached "
        "the goal (which ends the episode); returns are raw (unweighted) per-term episode returns",
        "",
        "| setting | learner | variant | " + " | ".join(headers) + " |",
        "|---|---|---|" + "---:|" * len(headers),
    ]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    lines += ["", "Wall time per program (compile + train + evaluations):", ""]
    lines += [f"- {s_}, {learner}, {variant}: {t:.0f} s" for (s_, learner, variant), t in times.items()]
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
