"""Imitation from demonstrations with actions, measured: BC, DAgger, GAIL and AIRL (PPO and SAC learners), SQIL,
RLPD and demonstration-regularized SAC, from experts rlkit trains itself.

    python -m experiments.reproduce.imitation                          # every env and algorithm, 25 demos
    python -m experiments.reproduce.imitation --envs pendulum --algos gail-sac,sac --demos 1,5,25
    python -m experiments.reproduce.imitation --merge                  # the table and figure from saved cells
    python -m experiments.reproduce.imitation --envs InvertedPendulum-v5,InvertedDoublePendulum-v5  # MuJoCo

1. **Expert** per env: SAC (pendulum; 64×64, 20k steps) or PPO (cartpole; CleanRL defaults, 100k steps), 4 seeds
   vmapped; on the Gymnasium MuJoCo envs (``HOST_ENVS``, ``pip install -e .[mujoco]``) SAC 64×64 through the host
   loop (``rlkit.host_loop.train_host``), 4 seeds stepping together. The best final deterministic return is
   exported and ``rlkit demos collect`` records 25 deterministic episodes (seed 0; on MuJoCo with the simulator
   states). The first 1, 5 or 25 of them are the demonstrations.
2. **Each algorithm** on those demonstrations, ``--seeds`` seeds vmapped in one program, evaluated every few
   chunks (10 deterministic episodes). Score = (R − R_random) / (R_expert − R_random), R_random the mean return
   of uniformly random actions over 100 episodes (stopping at termination), R_expert the demonstrations' mean.
   ``sac`` is plain SAC on the env's reward, the baseline RLPD and demonstration-regularized SAC must beat (steps
   to 0.9 normalized, same seeds). MuJoCo cells run through the host loop with the agents' ``host_pieces`` (BC
   trains on the env's spec and is evaluated on the host between segments); R_random there is Gymnasium's own
   ``action_space.sample()`` over 100 episodes.
3. Results: one JSON per (env, algorithm, demos) cell under ``results/imitation/`` (runs may be split and merged),
   ``results/imitation.md`` (IQM [95% bootstrap CI] of the final score, per seed, steps to 0.9) and
   ``results/imitation.png`` (normalized score against env steps, 95% CI bands; BC's x-axis is gradient steps).

Budgets are CPU-sized (2 cores); the targets are the issue's: every algorithm ≥ 0.9 normalized with 25 demos on the
JAX envs; SAC-based GAIL / AIRL in ≤ 1/5 of the env steps of the PPO-based ones.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
from pathlib import Path

import jax
import numpy as np

import envs
from agents import ppo, sac
from envs.spaces import Box
from experiments.demos import CollectArgs, collect
from experiments.reproduce.composition import final_eval, subset
from rlkit import registry
from rlkit.agent import Agent
from rlkit.buffers.datasets import load_demos
from rlkit.evaluation import evaluate_policy
from rlkit.export import export_run, load_agent
from rlkit.host_loop import evaluate_runs, train_host
from rlkit.plots import plot_learning_curve_panels
from rlkit.statistics import bootstrap_ci, format_ci, iqm
from rlkit.sweeps import make_runs
from rlkit.training import train

RESULTS = Path(__file__).parent / "results"
CELLS = RESULTS / "imitation"
SAC_SMALL = dict(hidden_sizes=(64, 64), learning_starts=1000, buffer_size=100_000, chunk_steps=1000)
PPO_CONT = {f.name: getattr(ppo.continuous_config(), f.name) for f in dataclasses.fields(ppo.PPOConfig)}

#: per env: (algorithm, config changes, total steps, eval every k chunks); steps are env steps (BC: updates)
SETTINGS = {
    "pendulum": [
        ("bc", dict(chunk_updates=1000), 20_000, 2),
        (
            "dagger",
            dict(
                num_envs=1,
                chunk_steps=1000,
                train_frequency=1000,
                updates_per_step=500,
                buffer_size=20_000,
                rampdown_rounds=5,
            ),
            10_000,
            1,
        ),  # fmt: skip
        ("sac", SAC_SMALL, 20_000, 1),  # evaluated every chunk, as rlpd and demo-reg: steps to 0.9 compared
        ("sqil", SAC_SMALL, 20_000, 1),
        ("rlpd", SAC_SMALL | dict(updates_per_step=10), 10_000, 1),
        ("demo-reg", SAC_SMALL, 20_000, 1),
        ("gail-sac", SAC_SMALL | dict(disc_gp_weight=10.0), 40_000, 4),
        ("airl-sac", SAC_SMALL | dict(disc_gp_weight=10.0), 40_000, 4),
        ("airl-sac:state-only", SAC_SMALL | dict(disc_gp_weight=10.0, airl_state_only=True), 40_000, 4),
        ("gail", PPO_CONT | dict(iterations_per_chunk=5), 245_760, 2),
        ("airl", PPO_CONT | dict(iterations_per_chunk=5), 245_760, 2),
        ("airl:state-only", PPO_CONT | dict(iterations_per_chunk=5, airl_state_only=True), 245_760, 2),
    ],
    "cartpole": [
        ("bc", dict(chunk_updates=1000), 20_000, 2),
        (
            "dagger",
            dict(
                num_envs=1,
                chunk_steps=500,
                train_frequency=500,
                updates_per_step=500,
                buffer_size=20_000,
                rampdown_rounds=5,
            ),
            10_000,
            2,
        ),  # fmt: skip
        ("gail", dict(), 512_000, 5),
        ("gail:no-absorbing", dict(absorbing=False), 204_800, 2),  # the survival bias left in, as an ablation
        ("airl", dict(), 204_800, 2),
        ("airl:state-only", dict(airl_state_only=True), 204_800, 2),
    ],
}


#: Gymnasium MuJoCo envs, trained through the host loop (``pip install -e .[mujoco]``); their experts' budgets
HOST_ENVS = ("InvertedPendulum-v5", "InvertedDoublePendulum-v5")
HOST_EXPERT_STEPS = {"InvertedPendulum-v5": 20_000, "InvertedDoublePendulum-v5": 40_000}


def _host_settings(steps: int) -> list:
    """The MuJoCo cells: the off-policy agents (SAC 64×64), BC and DAgger; RLPD with 2 LayerNorm critics at 4
    updates per env step (its 10 critics at 20 cost ~60× SAC's update per env step, measured on pendulum: beyond
    these CPUs through the host loop), over a third of the budget."""
    dagger = dict(
        num_envs=1, chunk_steps=1000, train_frequency=1000, updates_per_step=500, buffer_size=20_000
    )
    return [
        ("bc", dict(chunk_updates=1000), 20_000, 2),
        ("dagger", dagger | dict(rampdown_rounds=5), 10_000, 2),
        ("sac", SAC_SMALL, steps, 1),
        ("sqil", SAC_SMALL, steps, 1),
        ("rlpd", SAC_SMALL | dict(updates_per_step=4, num_critics=2), steps // 3, 1),
        ("demo-reg", SAC_SMALL, steps, 1),
        ("gail-sac", SAC_SMALL | dict(disc_gp_weight=10.0), steps, 2),
        ("airl-sac", SAC_SMALL | dict(disc_gp_weight=10.0), steps, 2),
    ]


SETTINGS |= {
    "InvertedPendulum-v5": _host_settings(30_000),
    "InvertedDoublePendulum-v5": _host_settings(30_000),
}


def host_env(env_id: str):
    """``n -> GymnasiumVectorEnv`` of a MuJoCo env, for ``rlkit.host_loop.train_host``."""
    return lambda n: envs.make("gymnasium:" + env_id, num_envs=n)


def host_spec(env_id: str):
    with host_env(env_id)(1) as probe:
        return probe.spec


def random_return(env, episodes: int = 100, seed: int = 0) -> float:
    """Mean return of uniformly random actions, each episode stopping at termination or the time limit."""
    if isinstance(env, str):  # a Gymnasium env id: its own action_space.sample, episode seeds seed + i
        import gymnasium

        with gymnasium.make(env) as gym_env:
            gym_env.action_space.seed(seed)
            total = 0.0
            for i in range(episodes):
                gym_env.reset(seed=seed + i)
                done = False
                while not done:
                    _, r, term, trunc, _ = gym_env.step(gym_env.action_space.sample())
                    total, done = total + float(r), term or trunc
            return total / episodes
    space = env.spec.action_space
    agent = Agent(
        "random", None, lambda key, spec=None: (), lambda s, obs, key, mode: space.sample(key), None
    )
    out = evaluate_policy(env, agent, (), jax.random.key(seed), num_episodes=episodes, mode="explore")
    return float(out["eval_return"])


def make_expert(env_id: str, work: Path) -> dict:
    if env_id in HOST_ENVS:
        return make_host_expert(env_id, work)
    env = envs.make(env_id)
    if isinstance(env.spec.action_space, Box):
        cfg, steps = sac.SACConfig(**(SAC_SMALL | dict(buffer_size=20_000))), 20_000
        trainer = sac.make_trainer(cfg, env)
    else:
        cfg, steps = ppo.PPOConfig(), 102_400
        trainer = ppo.make_trainer(cfg, env)
    runs = make_runs(cfg, seeds=4)
    start = time.perf_counter()
    result = train(trainer, runs, total_steps=steps, eval_every=10, console=False)
    best = int(np.argmax(final_eval(result)))
    path = work / env_id / "expert.rlkit"
    path.parent.mkdir(parents=True, exist_ok=True)
    export_run(path, result, runs, best, config=cfg, spec=env.spec)
    summary = collect(CollectArgs(str(path), str(work / env_id / "demos"), episodes=25, seed=0))
    return {
        "file": str(path),
        "demos": str(work / env_id / "demos"),
        "expert_return": float(summary["return_mean"]),
        "random_return": random_return(env),
        "expert_seconds": time.perf_counter() - start,
        "expert_budget": steps,
    }


def make_host_expert(env_id: str, work: Path) -> dict:
    """SAC (64×64, ``HOST_EXPERT_STEPS``) through the host loop, 4 seeds together; as ``make_expert``."""
    steps = HOST_EXPERT_STEPS[env_id]
    cfg = sac.SACConfig(**(SAC_SMALL | dict(buffer_size=steps)))
    runs = make_runs(cfg, seeds=4)
    start = time.perf_counter()
    result = train_host(sac.make_sac, runs, host_env(env_id), total_steps=steps, eval_every=10, console=False)
    best = int(np.argmax(final_eval(result)))
    path = work / env_id / "expert.rlkit"
    path.parent.mkdir(parents=True, exist_ok=True)
    export_run(path, result, runs, best, config=cfg, spec=host_spec(env_id))
    return host_expert_demos(env_id, work) | {
        "expert_seconds": time.perf_counter() - start,
        "expert_budget": steps,
    }


def host_expert_demos(env_id: str, work: Path) -> dict:
    """25 episodes of the expert's own stochastic policy (``--mode explore``; imitation samples its experts so):
    from the deterministic one, BC scored 0.14 (InvertedPendulum-v5) and 0.09 (InvertedDoublePendulum-v5) — its
    states cover too little (std 0.01 per dimension on InvertedPendulum) — and 1.00 from the sampled ones."""
    path, out = work / env_id / "expert.rlkit", work / env_id / "demos-explore"
    summary = collect(CollectArgs(str(path), str(out), episodes=25, seed=0, mode="explore"))
    return {
        "file": str(path),
        "demos": str(out),
        "demo_mode": "explore",
        "expert_return": float(summary["return_mean"]),
        "random_return": random_return(env_id),
    }


def trained(entry, config, env_id: str, inputs: dict, seeds: int, steps: int, every: int):
    """``(history, steps per chunk)`` of ``seeds`` runs: on device for a JAX env, through the host loop for a
    MuJoCo one (an offline learner there trains on the env's spec and is evaluated on the host between segments)."""
    runs = make_runs(config, seeds=seeds)
    if env_id not in HOST_ENVS:
        trainer = entry.make_trainer(config, envs.make(env_id), **inputs)
        result = train(trainer, runs, total_steps=steps, eval_every=every, console=False)
        return result.history, trainer.steps_per_chunk
    spec = host_spec(env_id)
    # an offline learner: trained in segments of `every` chunks (each resumed bit-exactly), evaluated after each
    if entry.loop == "offline":
        trainer = entry.make_trainer(config, spec, **inputs)
        agent = entry.make_agent(config, spec)
        policy = lambda cfg, s, obs, k: agent.act(s, obs, k, "deterministic")  # noqa: E731
        segment, history = every * trainer.steps_per_chunk, []
        with tempfile.TemporaryDirectory() as logs, host_env(env_id)(len(runs) * 10) as eval_env:
            for done in range(segment, steps + 1, segment):
                result = train(trainer, runs, total_steps=done, log_dir=logs, resume=done > segment,
                               checkpoint_every=every, console=False)  # fmt: skip
                states = result.state.agent_state
                out = evaluate_runs(policy, runs.config, states, eval_env, len(runs), episodes=10)
                history += [{}] * (every - 1) + [{"eval_return": out["eval_return"]}]
        return history, trainer.steps_per_chunk
    entry.validate(config, spec)
    pieces = entry.host_pieces(config, spec, **inputs)
    make_agent = pieces.pop("make_agent", entry.make_agent)
    result = train_host(
        make_agent, runs, host_env(env_id), total_steps=steps, eval_every=every, console=False, **pieces
    )
    return result.history, steps // len(result.history)


def run_cell(env_id: str, algo: str, n_demos: int, expert: dict, seeds: int) -> dict:
    changes, steps, every = next((c, s, e) for a, c, s, e in SETTINGS[env_id] if a == algo)
    entry = registry.get(algo.split(":")[0])  # "agent:variant" names an ablation of the agent's defaults
    fields = {f.name for f in dataclasses.fields(entry.config_cls)}
    config = entry.config_cls(**{k: v for k, v in changes.items() if k in fields})
    inputs = {}
    if "demos" in entry.inputs:
        inputs["demos"] = subset(load_demos(expert["demos"]), n_demos)
    if "expert" in entry.inputs:
        spec = host_spec(env_id) if env_id in HOST_ENVS else envs.make(env_id).spec
        inputs["expert"] = load_agent(expert["file"], spec)
    start = time.perf_counter()
    history, per_chunk = trained(entry, config, env_id, inputs, seeds, steps, every)
    wall = time.perf_counter() - start
    scale = expert["expert_return"] - expert["random_return"]
    evaluated = [(j, h) for j, h in enumerate(history) if "eval_return" in h]
    points = [h for _, h in evaluated]
    xs = [(j + 1) * per_chunk for j, _ in evaluated]  # chunk j ends at (j + 1) chunks of steps
    scores = np.stack(
        [(np.asarray(h["eval_return"], np.float64) - expert["random_return"]) / scale for h in points], 1
    )
    return {
        "env": env_id, "algo": algo, "demos": n_demos, "seeds": seeds, "budget": steps, "wall_s": wall,
        "steps": xs, "scores": scores.tolist(), "final_return": np.asarray(points[-1]["eval_return"]).tolist(),
        "x": "gradient steps" if entry.loop == "offline" else "env steps", "uses_demos": "demos" in entry.inputs,
    }  # fmt: skip


def steps_to(cell: dict, level: float = 0.9) -> float:
    """Median over seeds of the first evaluated step at which the score reached ``level`` (inf: never)."""
    scores, steps = np.asarray(cell["scores"]), np.asarray(cell["steps"])
    first = [steps[np.argmax(s >= level)] if (s >= level).any() else np.inf for s in scores]
    return float(np.median(first))


def render(cells: list[dict], experts: dict) -> str:
    lines = [
        "# Imitation from demonstrations (rlkit's own experts)\n",
        " · ".join(f"{e}: R_expert {x['expert_return']:.1f}, R_random {x['random_return']:.1f}" for e, x in experts.items()),
        "\n| env | algorithm | demos | seeds | budget | final score, IQM [95% CI] (per seed) | steps to 0.9 (median) | wall s |",
        "|---|---|---|---|---|---|---|---|",
    ]  # fmt: skip
    for c in sorted(cells, key=lambda c: (c["env"], c["demos"], c["algo"])):
        final = np.asarray(c["scores"])[:, -1]
        ci = format_ci(*bootstrap_ci(final, iqm)) + " (" + ", ".join(f"{v:.2f}" for v in final) + ")"
        reach = steps_to(c)
        demos = (
            c["demos"]
            if c.get("uses_demos", registry.get(c["algo"].split(":")[0]).inputs == ("demos",))
            else "—"
        )
        lines.append(f"| {c['env']} | {c['algo']} | {demos} | {c['seeds']} | {c['budget']:,} {c['x']} | {ci} | "
                     f"{'never' if reach == np.inf else f'{reach:,.0f}'} | {c['wall_s']:.0f} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def figure(cells: list[dict], path: Path) -> None:
    panels = {}
    for c in cells:
        panel = panels.setdefault(f"{c['env']}, {c['demos']} demos", {})
        panel[c["algo"] + (" (gradient steps)" if c["x"] == "gradient steps" else "")] = (
            np.asarray(c["steps"]), np.asarray(c["scores"])
        )  # fmt: skip
    plot_learning_curve_panels(panels, path, ylabel="normalized score", columns=2, xscale="log")


def main(argv=None) -> str:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--envs", default="pendulum,cartpole")
    p.add_argument(
        "--algos", default="", help="comma-separated subset (default: every algorithm of each env)"
    )
    p.add_argument("--demos", default="25", help="demonstration counts, e.g. 1,5,25")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--work", default="", help="where experts and demos live (kept, reused when present)")
    p.add_argument("--merge", action="store_true", help="only the table and figure from the saved cells")
    a = p.parse_args(argv)
    CELLS.mkdir(parents=True, exist_ok=True)
    work = Path(a.work or tempfile.mkdtemp(prefix="rlkit-imitation-"))
    experts_file = CELLS / "experts.json"
    experts = json.loads(experts_file.read_text()) if experts_file.exists() else {}
    if not a.merge:
        for env_id in a.envs.split(","):
            if env_id not in experts or not Path(experts[env_id]["file"]).exists():
                experts[env_id] = make_expert(env_id, work)
                experts_file.write_text(json.dumps(experts, indent=1))
            algos = [s[0] for s in SETTINGS[env_id]]
            for algo in a.algos.split(",") if a.algos else algos:
                if algo not in algos:
                    continue
                counts = sorted(map(int, a.demos.split(",")))
                if "demos" not in registry.get(algo.split(":")[0]).inputs:
                    counts = counts[-1:]  # DAgger (an expert to query) and plain SAC read no demonstrations
                for n in counts:
                    cell = run_cell(env_id, algo, n, experts[env_id], a.seeds)
                    (CELLS / f"{env_id}-{algo.replace(':', '+')}-{n}.json").write_text(json.dumps(cell))
                    print(render([cell], {env_id: experts[env_id]}).splitlines()[-1], flush=True)
    cells = [json.loads(f.read_text()) for f in sorted(CELLS.glob("*-*-*.json"))]
    table = render(cells, experts)
    (RESULTS / "imitation.md").write_text(table)
    figure(cells, RESULTS / "imitation.png")
    print(table)
    return table


if __name__ == "__main__":
    main()
