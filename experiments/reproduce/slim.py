"""SLIM on push2d: skills that move the block, learned with the task's own terms — one critic per term or one sum.

    python -m experiments.reproduce.slim [--seeds 5] [--steps 1228800] [--quick]      (make reproduce-slim)

The learner is ``slim`` (``agents.skills.slim``: PPO × METRA's skill reward on the block's x-y × push2d's reward
terms). push2d's terms: ``reach`` (gripper to block, dense, negative), ``push`` (the goal; weight 0 here: skills
are not told where to push), ``safety`` (−1 on a step the block leaves the table or a speed limit is broken),
``control``; the skill term ``metra`` is (φ(s′) − φ(s))ᵀ z with φ of the block's position. Three variants, the same
budget, networks and weights (reach 1, push 0, safety 1, control 0.1, metra 1):

- **(a) discovery only**: the METRA reward alone (``env_reward=False``);
- **(b) naive sum**: every term summed into one critic (``multi_critic=False``; rewards normalized by the sum's
  return std);
- **(c) SLIM**: one value head per term, each term's rewards scaled by its own return std, each term's advantages
  normalized, then weighted.

Metrics, per seed, from deterministic rollouts of 16 skills (z at 16 evenly spaced angles on the unit circle)
from the same 8 start states (50 steps, frozen once the episode terminates):

- **displacement diversity**: distinct cells (0.1 × 0.1 table units) among the block's final displacements
  (final − initial position) over the 16 × 8 rollouts — a block that never moves is 1 cell;
- **contact consistency**: the share of rollouts whose block moves more than δ = 0.1 (its own radius);
- **safety violations per episode**: steps with ``info["safety_violation"]``, mean over the rollouts.

Each cell is an IQM over seeds with a 95% percentile-bootstrap CI; a figure draws the block's trajectory per
skill (seed 0, one start state).

**Planning over skills** (SLIM's use of them): push the block onto push2d's goal (radius 0.2, 50 steps) by model-
predictive control over z with simulator rollouts of the JAX env — every ``PLAN_EVERY`` steps, each of 16 candidate
skills is rolled out ``PLAN_EVERY`` steps from a copy of the current state, the one that leaves the block nearest
the goal is executed, and the plan is redone. Success (block on the goal at any step) over 50 episodes per seed,
beside flat PPO trained on the push task itself (the same env params, the single critic on the weighted sum with
the goal's +5 bonus and progress term: ``experiments/multi_critic_push2d.py``'s setting) at the same env steps.
Written to ``experiments/reproduce/results/slim.{md,png,json}``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import envs
from agents.skills import slim
from experiments import multi_critic_push2d
from rlkit import conditioning
from rlkit.off_policy import weights_for
from rlkit.statistics import bootstrap_ci, format_ci
from rlkit.sweeps import make_runs
from rlkit.training import train

RESULTS = Path(__file__).parent / "results"
ENV_PARAMS = {"max_episode_steps": 50}
WEIGHTS = {"reach": 1.0, "push": 0.0, "safety": 1.0, "control": 0.1, "metra": 1.0}
VARIANTS = {
    "(a) discovery only": dict(env_reward=False, multi_critic=False),
    "(b) naive sum": dict(multi_critic=False),
    "(c) SLIM: multi-critic, per-term norm": dict(
        multi_critic=True, term_normalization="per_term", reward_scale="per_term"
    ),
}
N_SKILLS, N_STARTS, DELTA, CELL = 16, 8, 0.1, 0.1
BLOCK = slice(2, 4)  # push2d's observation: gripper xy, block xy, goal xy, velocities


def make_config(variant: str, steps: int) -> slim.SLIMConfig:
    changes = VARIANTS[variant]
    names = (envs.make("push2d").spec.reward_names if changes.get("env_reward", True) else ()) + ("metra",)
    weights = tuple(WEIGHTS[n] for n in names) if len(names) > 1 else ()
    return slim.SLIMConfig(
        obs_dims=(2, 3),
        skill_dim=2,
        num_envs=16,
        num_steps=64,
        num_minibatches=4,
        update_epochs=4,
        iterations_per_chunk=5,
        learning_rate=3e-4,
        anneal_steps=steps,
        hidden_sizes=(64, 64),
        reward_weights=weights,
        **changes,
    )


def skill_rollouts(env, agent, state, key):
    """``(block xy [S, M, T + 1, 2], violations [S, M])``: 16 skills × 8 shared start states."""
    angles = 2 * np.pi * np.arange(N_SKILLS) / N_SKILLS
    zs = jnp.asarray(np.stack([np.cos(angles), np.sin(angles)], -1), jnp.float32)
    starts = jax.random.split(jax.random.key(11), N_STARTS)

    def one(z, start_key, k):
        obs, s = env.reset(start_key)

        def step(carry, kk):
            obs, s, done, viol = carry
            a = agent.act(state, jnp.concatenate([obs, z]), kk, "deterministic")
            obs2, s2, _, term, _, info = env.step(kk, s, a)
            viol = viol + jnp.where(done, 0, info["safety_violation"].astype(jnp.int32))
            obs2 = jnp.where(done, obs, obs2)
            s2 = jax.tree.map(lambda new, old: jnp.where(done, old, new), s2, s)
            return (obs2, s2, done | term, viol), obs2[BLOCK]

        carry = (obs, s, jnp.zeros((), bool), jnp.zeros((), jnp.int32))
        (_, _, _, viol), xy = jax.lax.scan(step, carry, jax.random.split(k, env.spec.max_episode_steps))
        return jnp.concatenate([obs[None, BLOCK], xy]), viol

    per_start = jax.vmap(one, in_axes=(None, 0, None))
    xy, viol = jax.jit(jax.vmap(per_start, in_axes=(0, None, None)))(zs, starts, key)
    return np.asarray(xy), np.asarray(viol)


PLAN_EVERY, N_PLAN_EPISODES = 10, 50
#: the push task of the planning comparison: ``experiments/multi_critic_push2d.py``'s env
TASK_PARAMS = multi_critic_push2d.ENV_PARAMS


def plan_success(agent, state, key) -> float:
    """Success rate of MPC over the 16 skills on push2d's goal (see the module docstring)."""
    env = envs.make("push2d", **TASK_PARAMS)
    angles = 2 * np.pi * np.arange(N_SKILLS) / N_SKILLS
    zs = jnp.asarray(np.stack([np.cos(angles), np.sin(angles)], -1), jnp.float32)

    def act(obs, z, k):
        return agent.act(state, jnp.concatenate([obs, z]), k, "deterministic")

    def imagine(obs, s, z, k):  # the block's distance to the goal after PLAN_EVERY steps under z
        def step(carry, kk):
            obs, s = carry
            obs, s, *_ = env.step(kk, s, act(obs, z, kk))
            return (obs, s), None

        (obs, _), _ = jax.lax.scan(step, (obs, s), jax.random.split(k, PLAN_EVERY))
        return jnp.linalg.norm(obs[2:4] - obs[4:6])

    def episode(k):
        k0, k1 = jax.random.split(k)
        obs, s = env.reset(k0)

        def step(carry, xs):
            obs, s, z, done, success = carry
            t, kk = xs
            best = zs[jnp.argmin(jax.vmap(imagine, in_axes=(None, None, 0, None))(obs, s, zs, kk))]
            z = jnp.where(t % PLAN_EVERY == 0, best, z)
            obs2, s2, _, term, _, info = env.step(kk, s, act(obs, z, kk))
            success = success | (~done & info["success"])
            obs2 = jnp.where(done, obs, obs2)
            s2 = jax.tree.map(lambda new, old: jnp.where(done, old, new), s2, s)
            return (obs2, s2, z, done | term, success), None

        steps = env.spec.max_episode_steps
        carry = (obs, s, zs[0], jnp.zeros((), bool), jnp.zeros((), bool))
        (*_, success), _ = jax.lax.scan(step, carry, (jnp.arange(steps), jax.random.split(k1, steps)))
        return success

    return float(jnp.mean(jax.jit(jax.vmap(episode))(jax.random.split(key, N_PLAN_EPISODES))))


def flat_baseline(seeds: int, steps: int) -> dict:
    """Flat PPO on the push task, the same budget: ``experiments/multi_critic_push2d.py``'s single critic on the
    weighted sum (reach 1, push 1, safety 1, control 0.1), success of its deterministic policy over its last 3
    evaluations."""
    env = envs.make("push2d", **TASK_PARAMS)
    weights = weights_for(env.spec, multi_critic_push2d.WEIGHTS)
    make_trainer, base, _, eval_every = multi_critic_push2d.learners(False, weights)["PPO"]
    config = base.replace(anneal_steps=steps, **multi_critic_push2d.VARIANTS["PPO"]["single critic (sum)"])
    start = time.perf_counter()
    res = train(make_trainer(config, env), make_runs(config, seeds=seeds), total_steps=steps,
                eval_every=eval_every, console=False)  # fmt: skip
    history = [h for h in res.history if "eval_success" in h]
    success = np.mean(np.stack([h["eval_success"] for h in history[-3:]]), axis=0)
    return {"success": success.tolist(), "steps": res.steps, "wall_s": time.perf_counter() - start}


def metrics(xy: np.ndarray, viol: np.ndarray) -> dict:
    disp = xy[:, :, -1] - xy[:, :, 0]  # [S, M, 2]
    cells = {tuple(c) for c in np.floor(disp.reshape(-1, 2) / CELL).astype(int)}
    moved = np.linalg.norm(disp, axis=-1) > DELTA
    return {
        "diversity": len(cells),
        "consistency": float(moved.mean()),
        "violations": float(viol.mean()),
    }


def run_variant(variant: str, seeds: int, steps: int) -> dict:
    env = envs.make("push2d", **ENV_PARAMS)
    config = make_config(variant, steps)
    trainer = slim.make_trainer(config, env)
    start = time.perf_counter()
    res = train(trainer, make_runs(config, seeds=seeds), total_steps=steps, eval_every=0, console=False)
    wall = time.perf_counter() - start
    spec = conditioning.Conditioned(env, slim.skills(config)).spec
    agent = slim.make_slim(config, spec)
    runs = []
    for s in range(seeds):
        state = jax.tree.map(lambda x, s=s: x[s], res.state.agent_state)
        xy, viol = skill_rollouts(env, agent, state, jax.random.key(100 + s))
        runs.append(
            metrics(xy, viol)
            | {"trajectories": xy[:, 0].tolist(), "plan": plan_success(agent, state, jax.random.key(200 + s))}
        )
    return {"variant": variant, "seeds": seeds, "steps": res.steps, "wall_s": wall, "runs": runs}


def render(cells: list[dict], flat: dict, command: str) -> str:
    lines = [
        "# SLIM on push2d: skills with the task's terms, one critic per term vs one sum",
        "",
        f"`{command}` · {datetime.datetime.now(datetime.UTC).isoformat(timespec='seconds')} · "
        f"{platform.machine()}, {os.cpu_count()} CPU cores · JAX {jax.__version__} on {jax.default_backend()}",
        "",
        f"- env `push2d` ({', '.join(f'{k}={v}' for k, v in ENV_PARAMS.items())}); weights "
        + ", ".join(f"{k} {v:g}" for k, v in WEIGHTS.items())
        + f"; {cells[0]['steps']:,} env steps per run, {cells[0]['seeds']} seeds vmapped in one program",
        f"- {N_SKILLS} skills × {N_STARTS} start states, deterministic, {ENV_PARAMS['max_episode_steps']} steps; "
        f"diversity = distinct {CELL} × {CELL} cells of the block's displacement; consistency = share of "
        f"rollouts moving the block > {DELTA}; violations per episode; IQM over seeds [95% bootstrap CI]",
        "",
        "| variant | displacement diversity (cells) | contact consistency | safety violations / episode | "
        "planning over skills: success | wall s |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for c in cells:
        keys = ("diversity", "consistency", "violations", "plan")
        vals = {k: np.array([r[k] for r in c["runs"]], float) for k in keys}
        row = [format_ci(*bootstrap_ci(vals[k]), digits=1 if k == "diversity" else 2) for k in keys]
        lines.append(f"| {c['variant']} | " + " | ".join(row) + f" | {c['wall_s']:.0f} |")
    flat_cell = format_ci(*bootstrap_ci(np.array(flat["success"])))
    lines += [
        f"| flat PPO on the push task ({flat['steps']:,} env steps) |  |  |  | {flat_cell} | "
        f"{flat['wall_s']:.0f} |",
        "",
        f"Planning: MPC over the 16 skills with simulator rollouts, re-planned every {PLAN_EVERY} steps, "
        f"{N_PLAN_EPISODES} episodes per seed of `push2d` with "
        + ", ".join(f"{k}={v}" for k, v in TASK_PARAMS.items())
        + "; success = the block reached the goal.",
        "",
        "![block trajectories per skill](slim.png)",
        "",
    ]
    return "\n".join(lines)


def figure(cells: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(cells), figsize=(4 * len(cells), 4), squeeze=False)
    for ax, c in zip(axes[0], cells):
        run = c["runs"][0]
        for i, traj in enumerate(np.asarray(run["trajectories"])):
            color = plt.cm.hsv(i / N_SKILLS)
            ax.plot(traj[:, 0], traj[:, 1], color=color, lw=1.5)
            ax.plot(traj[-1, 0], traj[-1, 1], "o", color=color, ms=3)
        ax.plot(*np.asarray(run["trajectories"])[0, 0], "ks", ms=5)
        ax.set_xlim(-1, 1), ax.set_ylim(-1, 1), ax.set_aspect("equal")
        ax.set_title(
            f"{c['variant']}\ndiversity {run['diversity']}, moved {run['consistency']:.2f}", fontsize=8
        )
    fig.suptitle("push2d: the block's path under 16 skills from one start (seed 0), colour = direction of z",
                 fontsize=9)  # fmt: skip
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=1_228_800)
    parser.add_argument("--quick", action="store_true", help="2 seeds, 20,480 steps: the script end to end")
    args = parser.parse_args(argv)
    seeds, steps = (2, 20_480) if args.quick else (args.seeds, args.steps)
    cells = []
    for variant in VARIANTS:
        cells.append(run_variant(variant, seeds, steps))
        r = cells[-1]["runs"]
        print(f"{variant:40s} {cells[-1]['wall_s']:5.0f} s  diversity {[x['diversity'] for x in r]}  "
              f"consistency {[round(x['consistency'], 2) for x in r]}  violations "
              f"{[round(x['violations'], 2) for x in r]}  plan {[round(x['plan'], 2) for x in r]}",
              flush=True)  # fmt: skip
    flat = flat_baseline(seeds, steps)
    print(f"flat PPO on the push task {flat['wall_s']:5.0f} s  success {flat['success']}", flush=True)
    suffix = "_quick" if args.quick else ""
    RESULTS.mkdir(parents=True, exist_ok=True)
    command = "python -m experiments.reproduce.slim" + (
        " --quick" if args.quick else f" --seeds {seeds} --steps {steps}"
    )
    text = render(cells, flat, command).replace("(slim.png)", f"(slim{suffix}.png)")
    (RESULTS / f"slim{suffix}.md").write_text(text)
    (RESULTS / f"slim{suffix}.json").write_text(json.dumps({"variants": cells, "flat": flat}))
    figure(cells, RESULTS / f"slim{suffix}.png")
    print(text)
    return text


if __name__ == "__main__":
    main()
