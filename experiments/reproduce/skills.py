"""Skill discovery measured on METRA's point env: state coverage of LSD, METRA, CSD and DIAYN, the METRA / LSD
reward sanity numbers, zero-shot goal reaching, and the skill figure.

    python -m experiments.reproduce.skills                               # every env and algorithm
    python -m experiments.reproduce.skills --envs point-room --algos metra,lsd --seeds 4 --steps 200000
    python -m experiments.reproduce.skills --merge                       # the table and figures from saved cells

1. **Each algorithm** trains ``--seeds`` seeds vmapped in one program (SAC 256×256, φ 256×256: the papers use
   2 × 1024, too slow for this CPU — "reduced size"), 8 envs per run and one gradient step per 8 env steps
   (METRA's ratio on its state envs: 200 steps per 8 trajectories × 200). METRA / CSD / LSD: 2-D continuous
   skills (unit sphere; N(0, I) for LSD); DADS: 2-D skills uniform in [−1, 1]², L = 16 prior samples (its
   configs: 100, six times the cost of an update here) and its small replay buffer (10,000 transitions, so the
   skill dynamics see the current policy); DIAYN: 16 categorical skills (its paper's discrete form).
2. **Coverage** (METRA's metric): 48 deterministic skill rollouts of 200 steps (continuous: 48 prior draws;
   DIAYN: each of the 16 skills 3 times), the number of distinct 1 × 1 cells ``floor(x, y)`` visited; IQM over
   seeds with a 95% bootstrap CI, and the random-action baseline (48 uniformly random rollouts).
3. **Sanity numbers**: the mean per-step skill reward on the same rollouts (METRA: ≈ 1.2–1.4, never above √2 for
   d = 2, since ‖Δφ‖² ≤ d on average per transition), LSD's per-step reward / ‖z‖ (≤ 0.283: 1-Lipschitz φ and
   steps of at most 0.2 per axis), DIAYN's mean reward against log K.
4. **Zero-shot goals** (METRA, LSD): 50 goals uniform in the room, z = normalize(φ(g) − φ(s)) (LSD: the raw
   difference) re-chosen every step, final distance to the goal after 200 steps, against a random-z baseline
   (the same agent, z from its prior held for the episode).
5. Results: one JSON per (env, algorithm) cell under ``results/skills/``, ``results/skills.md`` and the figures
   ``results/skills_<env>.png`` (every skill's trajectory, coloured by the direction of z on a colour wheel; one
   panel per algorithm; seed 0).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import envs
from agents.skills import dads, diayn, distance, lsd, metra
from rlkit import conditioning, registry
from rlkit.evaluation import conditioned_trajectories
from rlkit.statistics import bootstrap_ci, format_ci, iqm
from rlkit.sweeps import make_runs
from rlkit.training import train

RESULTS = Path(__file__).parent / "results"
CELLS = RESULTS / "skills"
ENVS = ("point-room", "point-maze")
ALGOS = ("metra", "lsd", "csd", "dads", "diayn")
N_SKILLS = 48
N_GOALS = 50
SIZES = dict(
    hidden_sizes=(256, 256), num_envs=8, chunk_steps=500, learning_starts=10_000, buffer_size=300_000
)


def make_config(algo: str, steps: int):
    """The reduced-size config of ``algo`` (see the module docstring)."""
    cls = registry.get(algo).config_cls
    if algo == "diayn":
        return cls(num_skills=16, disc_hidden_sizes=(256, 256), **SIZES)
    if algo == "dads":  # L = 16 prior samples (DADS: 100; 6x the cost per update) and its small buffer
        return cls(
            dynamics_hidden_sizes=(256, 256), num_prior_samples=16, **(SIZES | {"buffer_size": 10_000})
        )
    return cls(
        phi_hidden_sizes=(256, 256), **({"model_hidden_sizes": (256, 256)} if algo == "csd" else {}), **SIZES
    )


def skill_batch(algo: str, config, key) -> jnp.ndarray:
    """The 48 evaluation skills: prior draws (continuous) or each discrete skill in turn."""
    prior = registry.get(algo).condition(config)[0]
    if prior.discrete:
        k = prior.num_skills
        table = jax.vmap(prior.sample)(jax.random.split(key, 256))
        rows = np.unique(np.asarray(table), axis=0)  # the K vectors of the table
        return jnp.asarray(np.resize(rows, (N_SKILLS, k)).reshape(N_SKILLS, k))
    return jax.vmap(prior.sample)(jax.random.split(key, N_SKILLS))


def coverage(xy: np.ndarray) -> int:
    """Distinct 1 × 1 cells ``floor(x, y)`` over every state of ``xy [..., 2]``."""
    return len(np.unique(np.floor(xy.reshape(-1, 2)).astype(np.int64), axis=0))


def skill_trajectories(algo, config, env, agent, state, key):
    """``(z [48, d], xy [48, 201, 2])``: the 48 deterministic skills' rollouts of one trained run."""
    zs = skill_batch(algo, config, key)

    def act(obs, z, k):
        return agent.act(state, jnp.concatenate([obs, z]), k, "deterministic")

    return zs, act, conditioned_trajectories(env, act, lambda i, obs: zs[i], N_SKILLS, jax.random.key(1))


def skill_coverage(algo, config, env, agent, state, key) -> int:
    return coverage(np.asarray(skill_trajectories(algo, config, env, agent, state, key)[2]))


def evaluate(algo, config, env_id, env, agent, state, key) -> dict:
    """Coverage, per-step rewards and (METRA / LSD) zero-shot goals of one trained run."""
    zs, act, traj = skill_trajectories(algo, config, env, agent, state, key)
    out = {
        "coverage": coverage(np.asarray(traj)),
        "trajectories": np.asarray(traj).tolist(),
        "z": np.asarray(zs).tolist(),
    }
    if algo == "diayn":
        logits = diayn._net(config).apply(state.terms[0].params, traj[:, 1:])
        logp = jax.nn.log_softmax(logits)
        out["reward_mean"] = float(jnp.mean(jnp.sum(logp * zs[:, None], -1)) + np.log(config.num_skills))
        return out
    if algo == "dads":  # its own reward on the rollouts, with the trained skill dynamics
        spec = conditioning.Conditioned(env, dads.prior(config)).spec
        obs = jnp.concatenate([traj, jnp.broadcast_to(zs[:, None], traj.shape[:2] + zs.shape[-1:])], -1)
        batch = {
            "obs": obs[:, :-1].reshape(-1, obs.shape[-1]),
            "next_obs": obs[:, 1:].reshape(-1, obs.shape[-1]),
        }
        batch["z"] = batch["obs"][:, -config.skill_dim :]
        r = dads.term(config, spec).reward(state.terms[0], batch)
        return out | {"reward_mean": float(jnp.mean(r)), "reward_max": float(jnp.max(r))}
    phi_fn = {"metra": metra.phi, "csd": metra.phi, "lsd": lsd.phi}[algo](config)
    p = distance.representation(state)
    f = phi_fn(p, traj.reshape(-1, 2)).reshape(N_SKILLS, -1, config.skill_dim)
    r = jnp.sum((f[:, 1:] - f[:, :-1]) * zs[:, None], -1)  # [48, 200]
    inside = jnp.all(jnp.abs(traj) < 9.99, axis=-1)  # off the open room's walls (|x|, |y| < 10)
    free = inside[:, 1:] & inside[:, :-1]
    out |= {"reward_mean": float(jnp.mean(r)), "reward_max": float(jnp.max(r))}
    if (
        env_id == "point-room"
    ):  # METRA's ≈ 1.27 is per step of free motion (its point env has no walls in reach)
        out["reward_free_mean"] = float(jnp.sum(r * free) / jnp.maximum(jnp.sum(free), 1))
    out["reward_per_z_max"] = float(jnp.max(r / jnp.linalg.norm(zs, axis=-1)[:, None]))
    if algo in ("metra", "lsd") and env_id == "point-room":
        goals = jax.random.uniform(jax.random.key(2), (N_GOALS, 2), minval=-9.0, maxval=9.0)
        go = distance.act_to_goal(agent, config, phi_fn, normalize=algo == "metra")
        reach = conditioned_trajectories(
            env, lambda obs, g, k: go(state, obs, g, k), lambda i, obs: goals[i], N_GOALS, jax.random.key(3)
        )
        rand = conditioned_trajectories(env, act, lambda i, obs: zs[i], N_GOALS, jax.random.key(3))
        out["goal_distance"] = float(jnp.mean(jnp.linalg.norm(reach[:, -1] - goals, axis=-1)))
        out["random_z_goal_distance"] = float(jnp.mean(jnp.linalg.norm(rand[:, -1] - goals, axis=-1)))
    return out


def run_cell(env_id: str, algo: str, seeds: int, steps: int, points: int = 4) -> dict:
    """Train ``seeds`` vmapped runs for ``steps`` env steps in ``points`` legs (each resumed from the previous
    leg's checkpoint, bit-exact), the coverage of every seed after each leg, the full evaluation at the end."""
    env = envs.make(env_id)
    config = make_config(algo, steps)
    trainer = registry.get(algo).make_trainer(config, env)
    runs = make_runs(config, seeds=seeds)
    spec = conditioning.Conditioned(env, registry.get(algo).condition(config)[0]).spec
    agent = registry.get(algo).make_agent(config, spec)

    def seed(state, s):
        return jax.tree.map(lambda x: x[s], state.agent_state)

    curve, wall = [untrained(algo, env_id, seeds)], 0.0
    with tempfile.TemporaryDirectory() as d:
        for leg in range(1, points + 1):
            start = time.perf_counter()
            res = train(trainer, runs, total_steps=steps * leg // points, log_dir=d, resume=leg > 1,
                        checkpoint_every=10**9, keep=1, eval_every=0, console=False)  # fmt: skip
            wall += time.perf_counter() - start
            keys = [jax.random.key(100 + s) for s in range(seeds)]
            cov = [
                skill_coverage(algo, config, env, agent, seed(res.state, s), keys[s]) for s in range(seeds)
            ]
            curve.append({"step": res.steps, "coverage": cov})
    runs_out = [evaluate(algo, config, env_id, env, agent, seed(res.state, s), keys[s]) for s in range(seeds)]
    return {"env": env_id, "algo": algo, "seeds": seeds, "steps": steps, "wall_s": wall, "runs": runs_out,
            "curve": curve}  # fmt: skip


def untrained(algo: str, env_id: str, seeds: int) -> dict:
    """Step 0 of the coverage curve: the 48 skills of freshly initialized agents (the runs' init distribution;
    on the open room a random deterministic policy already draws long straight lines)."""
    env = envs.make(env_id)
    config = make_config(algo, 0)
    spec = conditioning.Conditioned(env, registry.get(algo).condition(config)[0]).spec
    agent = registry.get(algo).make_agent(config, spec)
    cov = [
        skill_coverage(
            algo, config, env, agent, agent.init(jax.random.key(1000 + s)), jax.random.key(100 + s)
        )
        for s in range(seeds)
    ]
    return {"step": 0, "coverage": cov}


def random_coverage(env_id: str) -> int:
    env = envs.make(env_id)
    act = lambda obs, z, k: jax.random.uniform(k, (2,), minval=-1.0, maxval=1.0)  # noqa: E731
    return coverage(
        np.asarray(
            conditioned_trajectories(env, act, lambda i, obs: jnp.zeros(1), N_SKILLS, jax.random.key(0))
        )
    )


def _ci(values, digits=1) -> str:
    v = np.asarray(values, float)
    return f"{format_ci(*bootstrap_ci(v, iqm), digits)} ({', '.join(f'{x:.{digits}f}' for x in v)})"


def _untrained(cell) -> str:
    first = (cell.get("curve") or [{}])[0]
    return f"{iqm(np.asarray(first['coverage'], float)):.0f}" if first.get("step") == 0 else ""


def _moving_mean(run: dict) -> float:
    """The mean per-step reward over the steps that moved (‖s′ − s‖ > 1e-6): a step into a wall moves nothing,
    so Δφ = 0 and its reward is exactly 0, and ``reward_mean`` / (share of moving steps) is the mean over the rest
    (METRA's ≈ 1.27 is a mean over moving steps: its point env has room for 200 steps, this room for ~50)."""
    xy = np.asarray(run["trajectories"])
    moving = np.linalg.norm(np.diff(xy, axis=1), axis=-1) > 1e-6
    return run["reward_mean"] / max(moving.mean(), 1e-9)


def _max_reward(algo: str, runs: list[dict]) -> str:
    if algo == "lsd":  # its bound is per unit of ‖z‖ (z ~ N(0, I) is not normalized)
        return f"{max(r['reward_per_z_max'] for r in runs):.3f} per ‖z‖"
    mx = [r["reward_max"] for r in runs if "reward_max" in r]
    return f"{max(mx):.3f}" if mx else ""


def render(cells: list[dict]) -> str:
    lines = [
        "# Skill discovery on METRA's point env (reduced size: SAC and φ 256 × 256)",
        "",
        "| env | algorithm | seeds | env steps | coverage: cells of 48 skills, IQM [95% CI] (per seed) | untrained policy | random actions | mean reward / step (all; moving; off the walls) | max reward / step | goal distance (zero-shot) | random-z distance | wall s |",
        "|---|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]  # fmt: skip
    for c in cells:
        runs = c["runs"]
        goal = [r["goal_distance"] for r in runs if "goal_distance" in r]
        rand = [r["random_z_goal_distance"] for r in runs if "random_z_goal_distance" in r]
        mean = np.mean([r["reward_mean"] for r in runs])
        moving = f"; {np.mean([_moving_mean(r) for r in runs]):.3f}" if c["algo"] != "diayn" else ""
        if all("reward_free_mean" in r for r in runs):
            moving += f"; {np.mean([r['reward_free_mean'] for r in runs]):.3f} off the walls"
        lines.append(
            f"| {c['env']} | {c['algo']} | {c['seeds']} | {c['steps']:,} | {_ci([r['coverage'] for r in runs], 0)} | "
            f"{_untrained(c)} | {c.get('random_coverage', '')} | {mean:.3f}{moving} | {_max_reward(c['algo'], runs)} | "
            f"{_ci(goal, 2) if goal else ''} | {f'{np.mean(rand):.2f}' if rand else ''} | {c['wall_s']:.0f} |"
        )
    return "\n".join(lines) + "\n"


def figure(cells: list[dict], env_id: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import hsv_to_rgb

    chosen = [c for c in cells if c["env"] == env_id]
    if not chosen:
        return
    env = envs.make(env_id).unwrapped
    fig, axes = plt.subplots(1, len(chosen), figsize=(4 * len(chosen), 4), squeeze=False)
    for ax, c in zip(axes[0], chosen):
        run = c["runs"][0]
        traj, z = np.asarray(run["trajectories"]), np.asarray(run["z"])
        if z.shape[-1] == 2:
            hue = (np.arctan2(z[:, 1], z[:, 0]) / (2 * np.pi)) % 1.0
        else:
            hue = np.argmax(z, -1) / z.shape[-1]
        colors = hsv_to_rgb(np.stack([hue, np.ones_like(hue), 0.85 * np.ones_like(hue)], -1))
        picture = np.asarray(env.render_trajectories(jnp.asarray(traj), jnp.asarray(colors), size=384))
        ax.imshow(picture)
        ax.set_title(f"{c['algo']}: {run['coverage']} cells")
        ax.axis("off")
    fig.suptitle(f"{env_id}: 48 deterministic skills (seed 0), colour = direction of z", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def coverage_figure(cells: list[dict], path: Path) -> None:
    """Coverage against env steps: IQM over seeds with its 95% bootstrap band, one panel per env."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    env_ids = [e for e in ENVS if any(c["env"] == e and c.get("curve") for c in cells)]
    if not env_ids:
        return
    fig, axes = plt.subplots(1, len(env_ids), figsize=(5 * len(env_ids), 3.6), squeeze=False)
    for ax, env_id in zip(axes[0], env_ids):
        for c in (c for c in cells if c["env"] == env_id and c.get("curve")):
            steps = np.array([p["step"] for p in c["curve"]])
            cov = np.array([p["coverage"] for p in c["curve"]], float).T  # [seeds, points]
            point, low, high = bootstrap_ci(cov, iqm)
            (line,) = ax.plot(steps, point, marker="o", label=c["algo"])
            ax.fill_between(steps, low, high, color=line.get_color(), alpha=0.2)
        base = next((c.get("random_coverage") for c in cells if c["env"] == env_id), None)
        if base is not None:
            ax.axhline(base, color="gray", ls="--", label="random actions")
        ax.set(title=env_id, xlabel="env steps", ylabel="cells visited by 48 skills")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None) -> str:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--envs", default=",".join(ENVS))
    p.add_argument("--algos", default=",".join(ALGOS))
    p.add_argument("--seeds", type=int, default=4)
    p.add_argument("--steps", type=int, default=200_000)
    p.add_argument("--merge", action="store_true", help="only the table and figures from the saved cells")
    a = p.parse_args(argv)
    CELLS.mkdir(parents=True, exist_ok=True)
    if not a.merge:
        for env_id in a.envs.split(","):
            base = random_coverage(env_id)
            for algo in a.algos.split(","):
                cell = run_cell(env_id, algo, a.seeds, a.steps) | {"random_coverage": base}
                (CELLS / f"{env_id}-{algo}.json").write_text(json.dumps(cell))
                print(render([cell]).splitlines()[-1], flush=True)
    cells = [json.loads(f.read_text()) for f in sorted(CELLS.glob("*.json"))]
    for c in cells:  # cells written before step 0 was measured: add it (no training needed)
        if c.get("curve") and c["curve"][0]["step"] != 0:
            c["curve"].insert(0, untrained(c["algo"], c["env"], c["seeds"]))
            (CELLS / f"{c['env']}-{c['algo']}.json").write_text(json.dumps(c))
    cells.sort(key=lambda c: (ENVS.index(c["env"]), ALGOS.index(c["algo"])))
    table = render(cells)
    (RESULTS / "skills.md").write_text(table)
    for env_id in ENVS:
        figure(cells, env_id, RESULTS / f"skills_{env_id}.png")
    coverage_figure(cells, RESULTS / "skills_coverage.png")
    print(table)
    return table


if __name__ == "__main__":
    main()
