"""SLIM on push2d: skills that move the block, learned with the task's own terms — one critic per term or one sum.

    python -m experiments.reproduce.slim [--learners PPO SAC] [--seeds 5] [--quick]      (make reproduce-slim)

Two learners, the same composition: ``slim`` (``agents.skills.slim``: PPO, the paper's learner, × METRA's skill
reward on the block's x-y × push2d's reward terms) and ``metra`` with ``env_reward=True`` (``agents.skills.metra``:
SAC × the same skill term × the same env terms; PopArt-normalized per-term critics with ``multi_critic=True``,
``agents.sac``). PPO runs 1,228,800 env steps, SAC 150,000 (the budgets of ``experiments/multi_critic_push2d.py``,
where the single-critic SAC learns the push task by ~70k). push2d's terms: ``reach`` (gripper to block, dense, negative), ``push`` (the goal; weight 0 here: skills
are not told where to push), ``safety`` (−1 on a step the block leaves the table or a speed limit is broken),
``control``; the skill term ``metra`` is (φ(s′) − φ(s))ᵀ z with φ of the block's position. Three variants, the same
budget, networks and weights (reach 1, push 0, safety 1, control 0.1, metra 1):

- **(a) discovery only**: the METRA reward alone (``env_reward=False``);
- **(b) naive sum**: every term summed into one critic (``multi_critic=False``; rewards normalized by the sum's
  return std);
- **(c) SLIM**: one value head per term, each term's rewards scaled by its own return std, each term's advantages
  normalized, then weighted (PPO); one critic output per term, PopArt-normalized targets without the entropy
  bonus, the actor on Σ_k w_k Q_k / σ^A_k with σ^A_k the std of term k's action advantage (SAC).

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
beside the flat learner trained on the push task itself (the same env params, the single critic on the weighted
sum with the goal's +5 bonus and progress term: ``experiments/multi_critic_push2d.py``'s setting) at the same env
steps. ``--learners SAC`` runs one learner and keeps the other's results in ``slim.json``.
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
from agents.skills import metra, slim
from experiments import multi_critic_push2d
from rlkit import conditioning
from rlkit.off_policy import weights_for
from rlkit.statistics import bootstrap_ci, format_ci
from rlkit.sweeps import make_runs
from rlkit.training import train

RESULTS = Path(__file__).parent / "results"
ENV_PARAMS = {"max_episode_steps": 50}
WEIGHTS = {"reach": 1.0, "push": 0.0, "safety": 1.0, "control": 0.1, "metra": 1.0}
#: learner -> variant -> config changes; the variants differ in the same things for both learners
VARIANTS = {
    "PPO": {
        "(a) discovery only": dict(env_reward=False, multi_critic=False),
        "(b) naive sum": dict(multi_critic=False),
        "(c) SLIM: multi-critic, per-term norm": dict(
            multi_critic=True, term_normalization="per_term", reward_scale="per_term"
        ),
    },
    "SAC": {
        "(a) discovery only": dict(env_reward=False, multi_critic=False),
        "(b) naive sum": dict(env_reward=True, multi_critic=False),
        "(c) SLIM: multi-critic, per-term norm": dict(
            env_reward=True, multi_critic=True, term_normalization="per_term", actor_term_scale="advantage"
        ),
    },
}
STEPS = {"PPO": 1_228_800, "SAC": 150_000}
QUICK_STEPS = {"PPO": 20_480, "SAC": 4_000}
N_SKILLS, N_STARTS, DELTA, CELL = 16, 8, 0.1, 0.1
BLOCK = slice(2, 4)  # push2d's observation: gripper xy, block xy, goal xy, velocities


def _weights(changes: dict) -> tuple[float, ...]:
    names = (envs.make("push2d").spec.reward_names if changes.get("env_reward", True) else ()) + ("metra",)
    return tuple(WEIGHTS[n] for n in names) if len(names) > 1 else ()


def make_config(variant: str, steps: int) -> slim.SLIMConfig:
    """The PPO learner (``slim``)."""
    changes = VARIANTS["PPO"][variant]
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
        reward_weights=_weights(changes),
        **changes,
    )


def make_sac_config(variant: str, steps: int, quick: bool = False) -> metra.METRAConfig:
    """The SAC learner (``metra`` with the env's terms): ``experiments/multi_critic_push2d.py``'s SAC (64 × 64,
    SAC's learning rates and temperature) with φ as in the PPO learner (2 × 256, learning rates 1e-3)."""
    return metra.METRAConfig(
        obs_dims=(2, 3),
        skill_dim=2,
        hidden_sizes=(64, 64),
        phi_hidden_sizes=(256, 256),
        phi_lr=1e-3,
        dual_lr=1e-3,
        policy_lr=3e-4,
        q_lr=1e-3,
        init_alpha=1.0,
        target_entropy_scale=1.0,
        num_envs=2,
        chunk_steps=1000,
        buffer_size=100_000,
        batch_size=128,
        learning_starts=1_000 if quick else 2_000,
        reward_weights=_weights(VARIANTS["SAC"][variant]) or None,  # one term: SAC's unset weights
        **VARIANTS["SAC"][variant],
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


def flat_baseline(learner: str, seeds: int, steps: int, quick: bool) -> dict:
    """The flat learner on the push task, the same budget: ``experiments/multi_critic_push2d.py``'s single critic
    on the weighted sum (reach 1, push 1, safety 1, control 0.1), success of its deterministic policy over its
    last 3 evaluations."""
    env = envs.make("push2d", **TASK_PARAMS)
    weights = weights_for(env.spec, multi_critic_push2d.WEIGHTS)
    make_trainer, base, _, eval_every = multi_critic_push2d.learners(quick, weights)[learner]
    config = base.replace(**multi_critic_push2d.VARIANTS[learner]["single critic (sum)"])
    if learner == "PPO":
        config = config.replace(anneal_steps=steps)
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


def run_variant(learner: str, variant: str, seeds: int, steps: int, quick: bool = False) -> dict:
    env = envs.make("push2d", **ENV_PARAMS)
    if learner == "PPO":
        config = make_config(variant, steps)
        trainer, prior, make_agent = slim.make_trainer(config, env), slim.skills(config), slim.make_slim
    else:
        config = make_sac_config(variant, steps, quick)
        trainer, prior, make_agent = (
            metra.make_trainer(config, env),
            metra.skills.prior(config),
            metra.make_metra,
        )
    start = time.perf_counter()
    res = train(trainer, make_runs(config, seeds=seeds), total_steps=steps, eval_every=0, console=False)
    wall = time.perf_counter() - start
    agent = make_agent(config, conditioning.Conditioned(env, prior).spec)
    runs = []
    for s in range(seeds):
        state = jax.tree.map(lambda x, s=s: x[s], res.state.agent_state)
        xy, viol = skill_rollouts(env, agent, state, jax.random.key(100 + s))
        runs.append(
            metrics(xy, viol)
            | {"trajectories": xy[:, 0].tolist(), "plan": plan_success(agent, state, jax.random.key(200 + s))}
        )
    return {
        "learner": learner,
        "variant": variant,
        "seeds": seeds,
        "steps": res.steps,
        "wall_s": wall,
        "runs": runs,
    }


def render(results: dict, commands: dict) -> str:
    """``results``: learner -> {"variants": [cell], "flat": {...}}; ``commands``: learner -> the command that
    produced its rows."""
    lines = [
        "# SLIM on push2d: skills with the task's terms, one critic per term vs one sum",
        "",
        f"{datetime.datetime.now(datetime.UTC).isoformat(timespec='seconds')} · {platform.machine()}, "
        f"{os.cpu_count()} CPU cores · JAX {jax.__version__} on {jax.default_backend()}; "
        + "; ".join(f"{learner}: `{commands[learner]}`" for learner in results),
        "",
        f"- env `push2d` ({', '.join(f'{k}={v}' for k, v in ENV_PARAMS.items())}); weights "
        + ", ".join(f"{k} {v:g}" for k, v in WEIGHTS.items())
        + "; the seeds of a row vmapped in one program",
        f"- {N_SKILLS} skills × {N_STARTS} start states, deterministic, {ENV_PARAMS['max_episode_steps']} steps; "
        f"diversity = distinct {CELL} × {CELL} cells of the block's displacement; consistency = share of "
        f"rollouts moving the block > {DELTA}; violations per episode; IQM over seeds [95% bootstrap CI]",
        "",
        "| learner | variant | env steps × seeds | displacement diversity (cells) | contact consistency | "
        "safety violations / episode | planning over skills: success | wall s |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    keys = ("diversity", "consistency", "violations", "plan")
    for learner, res in results.items():
        for c in res["variants"]:
            vals = {k: np.array([r[k] for r in c["runs"]], float) for k in keys}
            row = [format_ci(*bootstrap_ci(vals[k]), digits=1 if k == "diversity" else 2) for k in keys]
            lines.append(
                f"| {learner} | {c['variant']} | {c['steps']:,} × {c['seeds']} | "
                + " | ".join(row)
                + f" | {c['wall_s']:.0f} |"
            )
        flat = res["flat"]
        flat_cell = format_ci(*bootstrap_ci(np.array(flat["success"])))
        lines.append(
            f"| {learner} | flat {learner} on the push task | {flat['steps']:,} × {len(flat['success'])} "
            f"|  |  |  | {flat_cell} | {flat['wall_s']:.0f} |"
        )
    lines += [
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


def figure(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    width = max(len(r["variants"]) for r in results.values())
    fig, axes = plt.subplots(len(results), width, figsize=(4 * width, 4 * len(results)), squeeze=False)
    for row, (learner, res) in zip(axes, results.items()):
        for ax, c in zip(row, res["variants"]):
            run = c["runs"][0]
            for i, traj in enumerate(np.asarray(run["trajectories"])):
                color = plt.cm.hsv(i / N_SKILLS)
                ax.plot(traj[:, 0], traj[:, 1], color=color, lw=1.5)
                ax.plot(traj[-1, 0], traj[-1, 1], "o", color=color, ms=3)
            ax.plot(*np.asarray(run["trajectories"])[0, 0], "ks", ms=5)
            ax.set_xlim(-1, 1), ax.set_ylim(-1, 1), ax.set_aspect("equal")
            ax.set_title(
                f"{learner} {c['variant']}\ndiversity {run['diversity']}, moved {run['consistency']:.2f}",
                fontsize=8,
            )
    fig.suptitle("push2d: the block's path under 16 skills from one start (seed 0), colour = direction of z",
                 fontsize=9)  # fmt: skip
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _load(path: Path) -> tuple[dict, dict]:
    """The results and commands saved so far (a file from before the SAC learner holds PPO's alone)."""
    if not path.exists():
        return {}, {}
    saved = json.loads(path.read_text())
    if "variants" in saved:
        return {"PPO": saved}, {"PPO": "python -m experiments.reproduce.slim --seeds 5 --steps 1228800"}
    return saved["results"], saved["commands"]


def main(argv=None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--learners", nargs="+", choices=tuple(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="2 seeds, a tiny budget: the script end to end")
    args = parser.parse_args(argv)
    seeds = 2 if args.quick else args.seeds
    suffix = "_quick" if args.quick else ""
    path = RESULTS / f"slim{suffix}.json"
    results, commands = ({}, {}) if args.quick else _load(path)
    for learner in args.learners:
        steps = (QUICK_STEPS if args.quick else STEPS)[learner]
        cells = []
        for variant in VARIANTS[learner]:
            cells.append(run_variant(learner, variant, seeds, steps, args.quick))
            r = cells[-1]["runs"]
            print(f"{learner} {variant:40s} {cells[-1]['wall_s']:5.0f} s  diversity {[x['diversity'] for x in r]}  "
                  f"consistency {[round(x['consistency'], 2) for x in r]}  violations "
                  f"{[round(x['violations'], 2) for x in r]}  plan {[round(x['plan'], 2) for x in r]}",
                  flush=True)  # fmt: skip
        flat = flat_baseline(learner, seeds, steps, args.quick)
        print(
            f"flat {learner} on the push task {flat['wall_s']:5.0f} s  success {flat['success']}", flush=True
        )
        results[learner] = {"variants": cells, "flat": flat}
        commands[learner] = f"python -m experiments.reproduce.slim --learners {learner}" + (
            " --quick" if args.quick else f" --seeds {seeds}"
        )
    results = {k: results[k] for k in VARIANTS if k in results}
    RESULTS.mkdir(parents=True, exist_ok=True)
    text = render(results, commands).replace("(slim.png)", f"(slim{suffix}.png)")
    (RESULTS / f"slim{suffix}.md").write_text(text)
    path.write_text(json.dumps({"results": results, "commands": commands}))
    figure(results, RESULTS / f"slim{suffix}.png")
    print(text)
    return text


if __name__ == "__main__":
    main()
