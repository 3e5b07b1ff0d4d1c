"""The composition layer's first clients, measured: BC and SQIL from our own SAC expert on ``pendulum``, DIAYN
on ``point-room``.

    python -m experiments.reproduce.composition           # writes results/composition.md and diayn_skills.png

1. **Expert**: SAC (64×64, 20k steps, 4 seeds vmapped); the seed with the best final deterministic return is
   exported, and ``rlkit demos collect`` records 25 deterministic episodes of it (seed 0).
2. **BC** on those 25 episodes; **SQIL** on the first 10 (each 4 seeds vmapped, one program). Score =
   (R − R_random) / (R_expert − R_random) per seed, R the mean deterministic return over 10 episodes, R_random
   that of uniformly random actions (25 episodes); targets: BC ≥ 0.9, SQIL ≥ 0.8. Pendulum's returns are
   negative, so "a fraction of the expert's return" is only meaningful normalized this way.
3. **DIAYN**, 8 skills, 4 seeds: per seed, 5 fresh (held-out) rollouts per skill in the training mode
   (explore) and one deterministic one; the trained discriminator classifies every visited next state (and the
   final states); target accuracy ≥ 0.9. The figure draws seed 0's deterministic skill trajectories.

Numbers are IQM over seeds with a 95% bootstrap CI (``rlkit.statistics``), and every seed's value.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import envs
from agents import sac
from agents.imitation import bc, sqil
from agents.skills import diayn
from experiments.demos import CollectArgs, collect
from rlkit import conditioning
from rlkit.buffers import demos as demo_ops
from rlkit.buffers import make_demo_store
from rlkit.buffers.datasets import load_demos
from rlkit.evaluation import conditioned_trajectories
from rlkit.export import export_run
from rlkit.statistics import bootstrap_ci, format_ci, iqm
from rlkit.sweeps import make_runs
from rlkit.training import train

RESULTS = Path(__file__).parent / "results"
SMALL = {"hidden_sizes": (64, 64), "learning_starts": 1000, "buffer_size": 20_000, "chunk_steps": 1000}


def _ci(values) -> str:
    values = np.asarray(values, np.float64)
    return format_ci(*bootstrap_ci(values, iqm)) + " (" + ", ".join(f"{v:.2f}" for v in values) + ")"


def random_return(env, episodes: int = 25, seed: int = 0) -> float:
    spec, horizon = env.spec, env.spec.max_episode_steps

    def episode(key):
        k0, k1 = jax.random.split(key)
        obs, state = env.reset(k0)

        def step(carry, k):
            state, total = carry
            ka, ks = jax.random.split(k)
            _, state, r, *_ = env.step(ks, state, spec.action_space.sample(ka))
            return (state, total + r), None

        return jax.lax.scan(step, (state, 0.0), jax.random.split(k1, horizon))[0][1]

    return float(jnp.mean(jax.jit(jax.vmap(episode))(jax.random.split(jax.random.key(seed), episodes))))


def subset(store, episodes: int):
    """The first ``episodes`` episodes of a demonstration store (its actions and rewards)."""
    parts = [demo_ops.episode(store, i) for i in range(episodes)]
    cat = lambda k: np.concatenate([p[k] for p in parts])  # noqa: E731
    return make_demo_store(
        cat("observations"),
        np.array([len(p["actions"]) for p in parts]),
        actions=cat("actions"),
        rewards=cat("rewards"),
        terminations=cat("terminations"),
        truncations=cat("truncations"),
    )


def final_eval(result) -> np.ndarray:
    return np.asarray(result.history[-1]["eval_return"], np.float64)


def imitation(seeds: int, work: Path, bc_updates: int, sqil_steps: int) -> tuple[list, dict]:
    env = envs.make("pendulum")
    expert_cfg = sac.SACConfig(**SMALL)
    runs = make_runs(expert_cfg, seeds=seeds)
    start = time.perf_counter()
    expert = train(sac.make_trainer(expert_cfg, env), runs, total_steps=20_000, eval_every=20, console=False)
    best = int(np.argmax(final_eval(expert)))
    export_run(work / "expert.rlkit", expert, runs, best, config=expert_cfg, spec=env.spec)
    summary = collect(CollectArgs(str(work / "expert.rlkit"), str(work / "demos"), episodes=25, seed=0))
    expert_s = time.perf_counter() - start
    r_expert, r_random = float(summary["return_mean"]), random_return(env)
    store = load_demos(work / "demos")
    score = lambda r: (r - r_random) / (r_expert - r_random)  # noqa: E731
    rows = [
        [
            "SAC expert (best of 4 seeds), 25 demo episodes",
            1,
            "20k env steps",
            f"{r_expert:.1f}",
            "1.00",
            "",
            f"{expert_s:.0f}",
        ]
    ]

    bc_cfg = bc.BCConfig(chunk_updates=1000)
    start = time.perf_counter()
    res = train(bc.make_trainer(bc_cfg, env, demos=store), make_runs(bc_cfg, seeds=seeds), total_steps=bc_updates,
                eval_every=bc_updates // 1000, console=False)  # fmt: skip
    r = final_eval(res)
    rows.append(["BC, 25 episodes", seeds, f"{bc_updates // 1000}k updates", f"{r.mean():.1f} ± {r.std():.1f}",
                 _ci(score(r)), "≥ 0.9", f"{time.perf_counter() - start:.0f}"])  # fmt: skip

    sq_cfg = sqil.SQILConfig(**SMALL)
    start = time.perf_counter()
    res = train(sqil.make_trainer(sq_cfg, env, demos=subset(store, 10)), make_runs(sq_cfg, seeds=seeds),
                total_steps=sqil_steps, eval_every=sqil_steps // 1000, console=False)  # fmt: skip
    r = final_eval(res)
    rows.append(["SQIL (SAC 64×64), 10 episodes", seeds, f"{sqil_steps // 1000}k env steps",
                 f"{r.mean():.1f} ± {r.std():.1f}", _ci(score(r)), "≥ 0.8", f"{time.perf_counter() - start:.0f}"])  # fmt: skip
    return rows, {"expert_return": r_expert, "random_return": r_random}


def skill_rollouts(env, agent, state, k: int, per_skill: int, mode: str, key):
    """Next observations ``[K, per_skill, T, obs]`` of rollouts with each skill held fixed."""
    zs = jnp.eye(k)

    def act(obs, z, key):
        return agent.act(state, jnp.concatenate([obs, z]), key, mode)

    traj = conditioned_trajectories(env, act, lambda i, obs: zs[i // per_skill], k * per_skill, key)
    return traj[:, 1:].reshape(k, per_skill, traj.shape[1] - 1, traj.shape[-1])


def skills(seeds: int, steps: int, figure: Path) -> list:
    env = envs.make("point-room")
    k = 8
    cfg = diayn.DIAYNConfig(num_skills=k, hidden_sizes=(128, 128), disc_hidden_sizes=(128, 128),
                            learning_starts=5000, buffer_size=steps, chunk_steps=2000)  # fmt: skip
    start = time.perf_counter()
    res = train(diayn.make_trainer(cfg, env), make_runs(cfg, seeds=seeds), total_steps=steps, eval_every=0,
                console=False)  # fmt: skip
    seconds = time.perf_counter() - start
    spec = conditioning.Conditioned(env, diayn.prior(cfg)).spec
    agent = diayn.make_diayn(cfg, spec)
    acc_all, acc_final, acc_det = [], [], []
    for s in range(seeds):
        st = jax.tree.map(lambda x, s=s: x[s], res.state.agent_state)
        for mode, per, sink in (("explore", 5, acc_all), ("deterministic", 1, acc_det)):
            obs = skill_rollouts(env, agent, st, k, per, mode, jax.random.key(1000 + s))  # [K, per, T, 2]
            predicted = diayn.classify(cfg, st.terms[0].params, obs)  # [K, per, T]
            correct = predicted == jnp.arange(k)[:, None, None]
            sink.append(float(jnp.mean(correct)))
            if mode == "explore":
                acc_final.append(float(jnp.mean(correct[:, :, -1])))
        if s == 0:
            det = skill_rollouts(env, agent, st, k, 1, "deterministic", jax.random.key(7))[:, 0]  # [K, T, 2]
            start_xy = jnp.broadcast_to(env.reset(jax.random.key(0))[0][:2], (k, 1, 2))
            picture = env.unwrapped.render_trajectories(jnp.concatenate([start_xy, det[..., :2]], 1))
            import imageio.v3 as iio

            iio.imwrite(figure, np.asarray(picture))
    return [
        ["DIAYN (SAC 128×128), 8 skills, explore rollouts: all states", seeds, f"{steps // 1000}k env steps", "", _ci(acc_all), "≥ 0.9", f"{seconds:.0f}"],
        ["DIAYN, explore rollouts: final states", seeds, "", "", _ci(acc_final), "", ""],
        ["DIAYN, deterministic rollouts: all states", seeds, "", "", _ci(acc_det), "", ""],
    ]  # fmt: skip


def main(argv=None) -> str:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, default=4)
    p.add_argument("--bc-updates", type=int, default=20_000)
    p.add_argument("--sqil-steps", type=int, default=20_000)
    p.add_argument("--diayn-steps", type=int, default=100_000)
    p.add_argument("--only", choices=("imitation", "skills"), default=None)
    a = p.parse_args(argv)
    RESULTS.mkdir(parents=True, exist_ok=True)
    rows, extra = [], {}
    with tempfile.TemporaryDirectory() as work:
        if a.only in (None, "imitation"):
            r, extra = imitation(a.seeds, Path(work), a.bc_updates, a.sqil_steps)
            rows += r
    if a.only in (None, "skills"):
        rows += skills(a.seeds, a.diayn_steps, RESULTS / "diayn_skills.png")
    header = (
        f"# Composition layer: BC, SQIL, DIAYN\n\n{datetime.date.today()} · {platform.machine()}, "
        f"{len(jax.devices())} {jax.devices()[0].platform} device · JAX {jax.__version__}"
        + (
            f" · R_expert {extra['expert_return']:.1f}, R_random {extra['random_return']:.1f}"
            if extra
            else ""
        )
        + "\n\n| agent, data | seeds | budget | final return (mean ± std) | score or accuracy, IQM [95% CI] (per seed) "
        "| target | wall s |\n|---|---|---|---|---|---|---|\n"
    )
    table = header + "\n".join("| " + " | ".join(str(c) for c in r) + " |" for r in rows) + "\n"
    name = "composition.md" if a.only is None else f"composition_{a.only}.md"
    (RESULTS / name).write_text(table)
    (RESULTS / (name[:-3] + ".json")).write_text(json.dumps({"rows": rows, **extra}, indent=1))
    print(table)
    return table


if __name__ == "__main__":
    main()
