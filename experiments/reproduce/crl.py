"""Contrastive RL from a single goal on sgcrl's spiral: single-goal CRL vs goal-sampling CRL vs SAC + HER.

    python -m experiments.reproduce.crl [--seeds 5] [--steps 300000] [--quick]      (make reproduce-crl)

The env is ``point-spiral`` (``envs.point_maze``: sgcrl's ``Spiral11x11``, a one-cell corridor that winds 54
cells from the start at the centre to the goal at the far end; steps up to 1, 100-step episodes; success = the
point within 1 of the goal at some step). The three learners see the same observations ``concat(xy, goal)``
(``rlkit.conditioning.GoalConditioned``), the same budget, batch, networks and number of updates (one run of
``--methods M`` replaces M's rows of an earlier run with the same seeds and steps and keeps the others):

- **single-goal CRL** (``sgcrl``): every training episode aims at the task's goal; the critic and actor learn
  on hindsight goals (future states, γ^(Δ−1) weights); no entropy bonus (sgcrl's settings);
- **single-goal CRL + entropy**: the same with CRL's learned temperature (the one change: is α = 0 what limits
  its exploration?);
- **CRL, goal sampling** (``crl``): every episode aims at a goal drawn uniformly over the floor (the original
  contrastive RL), entropy tuned (JaxGCRL's settings); evaluated at the task's goal;
- **SAC + HER** (``her``): the sparse reward −1[not at the goal], 80 % of the goals relabelled with future
  achieved goals; training goals drawn like CRL's (HER's setting: a goal-conditioned task distribution).

Measured per seed: success of the deterministic policy at the task's goal (10 episodes) every ``EVAL_EVERY``
chunks, and exploration — the share of the spiral's 55 cells the training data ever reached (from the replay
buffer, which holds every transition). Curves and final values are IQMs over seeds with 95% percentile-bootstrap
CIs. Written to ``experiments/reproduce/results/crl.{md,png,json}``; speed is ``experiments/benchmarks/goals.py``'s.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import time
from pathlib import Path

import numpy as np

import envs
from agents.goals import crl, her
from rlkit.statistics import bootstrap_ci, format_ci
from rlkit.sweeps import make_runs
from rlkit.training import train

RESULTS = Path(__file__).parent / "results"
NUM_ENVS, CHUNK_STEPS, EVAL_EVERY, UPDATES = 8, 250, 5, 2  # 2,000 env steps a chunk; evaluation every 10,000
COMMON = dict(num_envs=NUM_ENVS, chunk_steps=CHUNK_STEPS, batch_size=256, hidden_sizes=(128, 128),
              learning_starts=10_000, updates_per_step=UPDATES, gamma=0.99)  # fmt: skip
METHODS = ("single-goal CRL", "single-goal CRL + entropy", "CRL, goal sampling", "SAC + HER")


def make(method: str, goal, steps: int):
    buffer = dict(buffer_size=max(steps, 20_000))
    if method == "single-goal CRL":
        return crl, crl.SGCRLConfig(goal=goal, **COMMON, **buffer)
    if method == "single-goal CRL + entropy":  # the ablation: sgcrl with CRL's learned temperature
        return crl, crl.SGCRLConfig(goal=goal, autotune=True, init_alpha=1.0, **COMMON, **buffer)
    if method == "CRL, goal sampling":
        return crl, crl.CRLConfig(eval_goal=goal, **COMMON, **buffer)
    return her, her.HERConfig(eval_goal=goal, **COMMON, **buffer)


def cells_reached(env, obs: np.ndarray) -> float:
    """Share of the layout's free cells that some stored observation lies in (``obs [..., ≥ 2]``, x-y first)."""
    free = np.asarray(env.layout.free)
    xy = obs.reshape(-1, obs.shape[-1])[:, :2]
    inside = (xy[:, None, 0] >= free[None, :, 0]) & (xy[:, None, 0] <= free[None, :, 2])
    inside &= (xy[:, None, 1] >= free[None, :, 1]) & (xy[:, None, 1] <= free[None, :, 3])
    return float(np.mean(inside.any(axis=0)))


def run(method: str, seeds: int, steps: int) -> dict:
    env = envs.make("point-spiral")
    module, config = make(method, env.unwrapped.layout.goal, steps)
    trainer = module.make_trainer(config, env)
    start = time.perf_counter()
    res = train(
        trainer, make_runs(config, seeds=seeds), total_steps=steps, eval_every=EVAL_EVERY, console=False
    )
    wall = time.perf_counter() - start
    history = [h for h in res.history if "eval_success_any" in h]
    curve_steps = [int(np.asarray(h["env_steps"]).flat[0]) for h in history]
    success = np.stack([np.asarray(h["eval_success_any"]) for h in history], axis=1)  # [seeds, evals]
    buf = res.state.buffer_state
    count = int(np.asarray(buf.cursor)[0, 1])
    obs = np.asarray(buf.data["obs"])[:, :count]
    reached = [cells_reached(env.unwrapped, obs[s]) for s in range(seeds)]
    return {
        "method": method, "agent": trainer.name, "seeds": seeds, "steps": res.steps, "wall_s": wall,
        "env_steps_per_s": res.steps * seeds / wall, "curve_steps": curve_steps, "success": success.tolist(),
        "final": success[:, -3:].mean(axis=1).tolist(), "reached": reached,
    }  # fmt: skip


def first_step(curve_steps, success: np.ndarray, level: float = 0.5):
    """Per seed, the first evaluated env step with success ≥ level (NaN: never)."""
    out = []
    for row in success:
        hit = np.nonzero(row >= level)[0]
        out.append(float(curve_steps[hit[0]]) if hit.size else float("nan"))
    return np.array(out)


def render(cells: list[dict], command: str) -> str:
    lines = [
        "# Contrastive RL from a single goal: point-spiral",
        "",
        f"`{command}` ({datetime.date.today()}, {platform.processor() or platform.machine()}, CPU). "
        f"{cells[0]['seeds']} seeds, {cells[0]['steps']:,} env steps each, {NUM_ENVS} envs, {UPDATES} updates of batch "
        f"256 per {NUM_ENVS} env steps, 2 × 128 networks. Success at the spiral's far end (within 1, any step of a "
        "100-step episode, deterministic policy, 10 episodes); final = mean of the last 3 evaluations; reached = "
        "share of the 55 cells the training data entered; IQM over seeds [95% bootstrap CI].",
        "",
        "| method | agent | final success | reached cells | seeds with success ≥ 0.5 | first step ≥ 0.5 "
        "(median) |",
        "|---|---|---|---|---|---|",
    ]
    for c in cells:
        s = np.asarray(c["success"])
        first = first_step(c["curve_steps"], s)
        med = f"{np.nanmedian(first):,.0f}" if np.isfinite(first).any() else "never"
        lines.append(
            f"| {c['method']} | `{c['agent']}` | {format_ci(*bootstrap_ci(np.array(c['final'])))} | "
            f"{format_ci(*bootstrap_ci(np.array(c['reached'])))} | {int(np.isfinite(first).sum())}/{len(first)} | "
            f"{med} |"
        )
    lines += ["", "![success vs env steps](crl.png)", ""]
    return "\n".join(lines)


def figure(cells: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6))
    for i, c in enumerate(cells):
        s = np.asarray(c["success"])
        x = np.asarray(c["curve_steps"])
        ci = np.array([bootstrap_ci(s[:, j], np.mean) for j in range(s.shape[1])])
        colour = f"C{i}"
        ax.plot(x, s.mean(axis=0), color=colour, label=c["method"])
        ax.fill_between(x, ci[:, 1], ci[:, 2], color=colour, alpha=0.15)
        for row in s:  # each seed, faint: the IQM of 5 mostly-zero curves hides the seeds that succeed
            ax.plot(x, row, color=colour, alpha=0.25, lw=0.6)
    ax.set_xlabel("env steps")
    ax.set_ylabel("success at the goal (mean over seeds)")
    ax.set_ylim(-0.03, 1.03)
    ax.set_title("point-spiral: reaching the far end of the spiral", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=300_000)
    parser.add_argument("--methods", nargs="*", default=list(METHODS), choices=METHODS)
    parser.add_argument("--quick", action="store_true", help="2 seeds, 30,000 steps: the script end to end")
    parser.add_argument(
        "--render", action="store_true", help="rewrite the table and figure from the saved json"
    )
    args = parser.parse_args(argv)
    seeds, steps = (2, 30_000) if args.quick else (args.seeds, args.steps)
    if args.render:
        args.methods = []
    suffix = "_quick" if args.quick else ""
    saved = RESULTS / f"crl{suffix}.json"
    # a run of some methods replaces their rows and keeps the others' (same seeds and steps only)
    old = {c["method"]: c for c in json.loads(saved.read_text())} if saved.exists() else {}
    old = {m: c for m, c in old.items() if c["seeds"] == seeds and c["steps"] == steps and m in METHODS}
    cells = []
    for method in args.methods:
        cells.append(run(method, seeds, steps))
        c = cells[-1]
        print(f"{method:20s} {c['wall_s']:5.0f} s  final {np.round(c['final'], 2).tolist()}  reached "
              f"{np.round(c['reached'], 2).tolist()}", flush=True)  # fmt: skip
    new = {c["method"]: c for c in cells}
    cells = [new.get(m, old.get(m)) for m in METHODS if m in new or m in old]
    RESULTS.mkdir(parents=True, exist_ok=True)
    command = "python -m experiments.reproduce.crl" + (
        " --quick" if args.quick else f" --seeds {seeds} --steps {steps}"
    )
    text = render(cells, command).replace("(crl.png)", f"(crl{suffix}.png)")
    (RESULTS / f"crl{suffix}.md").write_text(text)
    saved.write_text(json.dumps(cells))
    figure(cells, RESULTS / f"crl{suffix}.png")
    print(text)
    return text


if __name__ == "__main__":
    main()
