"""Imitation learning against a peer: HumanCompatibleAI ``imitation`` (PyTorch + SB3) BC, GAIL and AIRL beside
rlkit's, on the same Gymnasium env, the same expert demonstrations and the same budget.

    .venv/bin/python -m experiments.benchmarks.imitation_peers --env Pendulum-v1 --demos demos/pendulum \\
        --algos bc,gail,airl --steps 50000 --seeds 3 --out results/imitation_pendulum.json

``--demos`` is anything ``rlkit.buffers.datasets.load_demos`` reads (a directory written by ``rlkit demos
collect``, its ``demos.npz``, a Minari dataset). The peer reads the ``.npz`` itself and turns it into imitation's
``TrajectoryWithRew`` list (``imitation_worker.to_trajectories``: T + 1 observations and T actions / rewards per
episode, infos None, every episode terminal). ``--steps`` is the budget: env steps of the generator for GAIL /
AIRL (imitation trains ``steps // gen_train_timesteps`` whole rounds, the table shows the steps actually used),
gradient steps for BC (``--bc-steps`` to give BC its own).

The peer runs in its own venv, ``.bench-venvs/imitation`` (git-ignored), built on first use by
``peers.ensure_venv`` with the pins in ``IMITATION_PINS``: imitation 1.0.1 (the latest release) pins
gymnasium ~0.29 and stable-baselines3 ~2.2.1, so it gets Python 3.11 (``peers.find_python311``), whose CPU-only
torch wheel lies on this machine's disk (the PyPI wheel pulls ~3 GB of CUDA libraries). Gymnasium 0.29 has
MuJoCo ``-v4`` envs but no ``-v5``: give ``--peer-env Hopper-v4`` beside ``--env Hopper-v5`` (and say so). Every
(algorithm, seed) is its own subprocess; its import time, setup time (env, nets, demos) and training time are
reported apart, and only training counts as wall-clock. Hyper-parameters: imitation's own, never tuned here
(``--preset``; ``imitation_worker.PRESETS`` names each source): ``auto`` takes imitation's tuned benchmark
settings (``tuned:seals_<env>``) for the MuJoCo locomotion envs and the settings its scripts run for every other
env (``scripts``: ``train_adversarial gail with pendulum`` and the like); ``docs`` is its documentation's examples.

Evaluation: the deterministic policy over ``--eval-episodes`` episodes reset with seeds ``eval_seed + i``, on
the peer's Gymnasium. Normalized score = (R − R_random) / (R_expert − R_random): R_random is a uniformly random
policy over the same episodes, R_expert the demonstrations' mean return (``--r-random`` / ``--r-expert`` to fix
them). Writes ``--out`` (JSON: settings, versions, every run) and the markdown table next to it (``.md``).

rlkit's side is ``run_rlkit_side``: the same algorithm on the env's JAX-native twin (``pendulum`` for
``Pendulum-v1``, ``cartpole`` for ``CartPole-v1``) or, for an env without one (MuJoCo: ``--env
InvertedPendulum-v4``, which rlkit's Gymnasium still has, so both sides run the same id), through the Gymnasium
host loop; the peer's settings translated (``rlkit_settings``); evaluated through its exported agent (as ``rlkit
eval`` would: PPO's observation normalizer applied) on the peer's Gymnasium episodes. Deliberately not here: learning curves,
GPU timings, DAgger / SQIL (imitation has them; rlkit's SQIL is not an adversarial method).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from experiments.benchmarks.machine import cpu_model
from experiments.benchmarks.peers import PEERS, ensure_venv, pip_versions

WORKER = Path(__file__).with_name("imitation_worker.py")
ALGOS = ("bc", "gail", "airl")
IMITATION_PINS: list[list[str]] = [  # pip install steps, in order (peers.ensure_venv); ~2 min, 1.8 GB
    ["torch==2.13.0"],  # first, alone: resolves to the CPU wheel on disk (torch-2.13.0+cpu, Python 3.11)
    [
        "imitation==1.0.1",
        "stable-baselines3==2.2.1",
        "gymnasium[classic-control,mujoco]==0.29.1",
        "mujoco==2.3.7",  # gymnasium 0.29's -v4 MuJoCo envs were written against mujoco 2.3
        "seals==0.2.1",
        "numpy==1.26.4",  # gymnasium 0.29 uses np.bool8, gone in NumPy 2
    ],
]
PEER_PACKAGES = ["imitation", "stable-baselines3", "torch", "gymnasium", "numpy", "mujoco"]
TUNED_ENVS = {  # Gymnasium MuJoCo env name → imitation's tuned benchmark settings (seals versions of them)
    "Ant": "seals_ant",
    "HalfCheetah": "seals_half_cheetah",
    "Hopper": "seals_hopper",
    "Swimmer": "seals_swimmer",
    "Walker2d": "seals_walker",
}


def ensure_imitation_venv() -> Path:
    """The peer venv's Python, building ``.bench-venvs/imitation`` first if it is missing or its pins changed."""
    PEERS.setdefault("imitation", IMITATION_PINS)
    return ensure_venv("imitation")


def default_preset(env_id: str) -> str:
    """``tuned:seals_<x>`` for the MuJoCo locomotion envs imitation tuned on, else its scripts' settings."""
    name = env_id.split("/")[-1].split("-v")[0]
    return f"tuned:{TUNED_ENVS[name]}" if name in TUNED_ENVS else "scripts"


# -------------------------------------------------------------------------------------------- demonstrations
def prepare_demos(path: str) -> dict[str, Any]:
    """The demos as the peer reads them (an rlkit ``.npz``; a Minari dataset is rewritten to one in a temporary
    directory) and what the table needs of them: episodes, steps, the expert's mean return."""
    import numpy as np

    from experiments.demos import episode_returns
    from rlkit.buffers import save_npz
    from rlkit.buffers.datasets import load_demos, resolve_demos

    kind, target = resolve_demos(path)
    store = load_demos(path)  # all-or-nothing: a damaged file fails here, in one line, before any venv work
    if store.actions is None:
        raise SystemExit(f"{path}: no actions stored; BC / GAIL / AIRL need state-action demonstrations")
    if kind != "npz":
        target = os.path.join(tempfile.mkdtemp(prefix="imitation-peers-"), "demos.npz")
        save_npz(store, target)
    returns = episode_returns(store)
    return {
        "path": path,
        "npz": os.path.abspath(target),
        "episodes": store.num_episodes,
        "steps": store.num_steps,
        "return_mean": float(np.mean(returns)) if returns.size else None,
        "return_std": float(np.std(returns)) if returns.size else None,
    }


# ---------------------------------------------------------------------------------------------- peer side
def peer_job(task: str, args: argparse.Namespace, demos: dict, algo: str = "", seed: int = 0) -> dict:
    return {
        "task": task,
        "env": args.peer_env or args.env,
        "demos": demos["npz"],
        "algo": algo,
        "steps": (args.bc_steps or args.steps) if algo == "bc" else args.steps,
        "seed": seed,
        "n_envs": args.n_envs,
        "preset": args.preset if args.preset != "auto" else default_preset(args.peer_env or args.env),
        "eval_episodes": args.eval_episodes,
        "eval_seed": args.eval_seed,
        "threads": args.threads,
    }


def run_peer(python: Path, job: dict, timeout: float) -> dict:
    """One worker subprocess; its ``RESULT`` line, or ``{"error": <last lines of its output>}``."""
    started = time.perf_counter()
    try:
        out = subprocess.run(
            [str(python), str(WORKER), json.dumps(job)],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=tempfile.gettempdir(),  # imitation and SB3 write nothing next to the checkout
        )
        lines = [ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")]
        if out.returncode != 0 or not lines:
            tail = (out.stderr or out.stdout).strip().splitlines()[-3:]
            result = {"error": " | ".join(tail)[-400:]}
        else:
            result = json.loads(lines[-1][len("RESULT ") :])
    except subprocess.TimeoutExpired:
        result = {"error": f"timed out after {timeout:.0f} s"}
    result["process_s"] = time.perf_counter() - started
    return result


# --------------------------------------------------------------------------------------------- rlkit side
JAX_TWINS = {"Pendulum-v1": "pendulum", "CartPole-v1": "cartpole"}  # Gymnasium id → rlkit's JAX-native env


def rlkit_settings(algo: str, n_envs: int) -> tuple[str, dict]:
    """rlkit's agent and config for the peer's run, at the peer's rollout shape: BC with the peer's ``scripts``
    settings (batch 32, lr 4e-4, L2 3e-5, 32×32); GAIL / AIRL with rlkit's continuous PPO defaults
    (``ppo.continuous_config``: 64×64, observation and reward normalization, 10 epochs of 32 minibatches, lr 3e-4)
    at 8 envs × 256 steps = 2048 per round as the peer, and the discriminator's defaults (64×64, 4 steps of 256 +
    256 rows per round, at imitation's learning rate 1e-3)."""
    if algo == "bc":
        return "bc", dict(
            hidden_sizes=(32, 32), batch_size=32, learning_rate=4e-4, l2_weight=3e-5, chunk_updates=1000
        )
    from agents import ppo

    base = {f: getattr(ppo.continuous_config(), f) for f in ppo.PPOConfig.__dataclass_fields__}
    return algo, base | dict(num_envs=n_envs, num_steps=2048 // n_envs, iterations_per_chunk=5)


def rlkit_worker(job: dict) -> dict:
    """One rlkit run in this process (``run_rlkit_side`` starts it in a fresh interpreter): train on the JAX twin
    of the Gymnasium env, or through the host loop when it has none (MuJoCo: ``pip install -e .[mujoco]``; BC
    trains on the env's spec), then evaluate exactly as the peer does — through the exported agent
    (``rlkit.export``), so a PPO learner's observation normalizer is applied as in ``rlkit eval``."""
    t0 = time.perf_counter()
    import gymnasium
    import jax
    import numpy as np

    import envs
    from rlkit import registry
    from rlkit.buffers.datasets import load_demos
    from rlkit.export import export_run, load_agent
    from rlkit.host_loop import train_host
    from rlkit.sweeps import make_runs
    from rlkit.training import train

    import_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    twin = JAX_TWINS.get(job["env"])
    name, changes = rlkit_settings(job["algo"], job["n_envs"] or 8)
    entry = registry.get(name)
    config = entry.config_cls(**changes)
    demos = load_demos(job["demos"])
    runs = make_runs(config, seeds=[job["seed"]])
    if twin is not None:
        trainer = entry.make_trainer(config, envs.make(twin), demos=demos)
        spec, per_chunk = envs.make(twin).spec, trainer.steps_per_chunk
    else:
        make_env = lambda n: envs.make("gymnasium:" + job["env"], num_envs=n)  # noqa: E731
        with make_env(1) as probe:
            spec = probe.spec
        if name == "bc":
            trainer = entry.make_trainer(config, spec, demos=demos)
            per_chunk = trainer.steps_per_chunk
        else:
            entry.validate(config, spec, demos)
            pieces = entry.host_pieces(config, spec, demos=demos)
            make_agent = pieces.pop("make_agent")
            per_chunk = config.num_steps * config.iterations_per_chunk * config.num_envs
    setup_s = time.perf_counter() - t0
    chunks = max(1, job["steps"] // per_chunk)
    t0 = time.perf_counter()
    if twin is not None or name == "bc":
        result = train(trainer, runs, total_steps=chunks * per_chunk, eval_every=0, console=False)
    else:
        result = train_host(
            make_agent, runs, make_env, total_steps=chunks * per_chunk, console=False, **pieces
        )
    train_s = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        export_run(Path(tmp) / "agent.rlkit", result, runs, 0, config=config, spec=spec)
        agent, state = load_agent(Path(tmp) / "agent.rlkit", spec)
    act = jax.jit(lambda obs: agent.act(state, obs, jax.random.key(0), "deterministic"))
    gym_env, returns = gymnasium.make(job["env"]), []
    for i in range(job["eval_episodes"]):
        obs, _ = gym_env.reset(seed=job["eval_seed"] + i)
        total, done = 0.0, False
        while not done:
            obs, r, term, trunc, _ = gym_env.step(np.asarray(act(np.asarray(obs, np.float32))))
            total, done = total + float(r), term or trunc
        returns.append(total)
    return {
        "return_mean": float(np.mean(returns)),
        "return_std": float(np.std(returns)),
        "returns": returns,
        "train_s": train_s,  # includes compiling the chunk (one program for the whole run)
        "setup_s": setup_s,
        "import_s": import_s,
        "env_steps": 0 if name == "bc" else chunks * per_chunk,
        "grad_steps": chunks * per_chunk if name == "bc" else None,
        "hyperparameters": {
            "agent": name,
            **{k: list(v) if isinstance(v, tuple) else v for k, v in changes.items()},
        },
        "preset_source": "rlkit_settings: the peer's scripts preset, translated",
        "env_used": twin or "gymnasium:" + job["env"] + " (host loop)",
    }


def run_rlkit_side(
    *,
    env: str,
    demos: str,
    algo: str,
    steps: int,
    seed: int,
    n_envs: int | None,
    eval_episodes: int,
    eval_seed: int,
) -> dict:
    """rlkit's BC / GAIL / AIRL on the same inputs as the peer's run, in a fresh interpreter of rlkit's venv (so
    import and compile times are measured from a cold start, as the peer's are): trained on the JAX-native twin
    of ``env`` (``JAX_TWINS``), evaluated deterministically on the Gymnasium env with seeds ``eval_seed + i``."""
    job = dict(env=env, demos=demos, algo=algo, steps=steps, seed=seed, n_envs=n_envs,
               eval_episodes=eval_episodes, eval_seed=eval_seed)  # fmt: skip
    code = "import json, sys; from experiments.benchmarks.imitation_peers import rlkit_worker; "
    code += "print('RESULT ' + json.dumps(rlkit_worker(json.loads(sys.argv[1]))))"
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code, json.dumps(job)], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[2])  # fmt: skip
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")]
    if out.returncode or not lines:
        return {"error": (out.stderr.strip().splitlines() or ["rlkit worker failed"])[-1]}
    return json.loads(lines[-1][len("RESULT ") :]) | {"process_s": time.perf_counter() - started}


# ------------------------------------------------------------------------------------------------ report
def normalized(r: float | None, lo: float | None, hi: float | None) -> float | None:
    if r is None or lo is None or hi is None or hi == lo:
        return None
    return (r - lo) / (hi - lo)


def _mean_std(xs: list[float], digits: int) -> str:
    if not xs:
        return "—"
    if len(xs) == 1:
        return f"{xs[0]:.{digits}f}"
    return f"{statistics.mean(xs):.{digits}f} ± {statistics.stdev(xs):.{digits}f}"


def render(report: dict) -> str:
    m = report["meta"]
    lo, hi = m["r_random"], m["r_expert"]
    lines = [
        f"# Imitation learning against `imitation` on {m['env']}",
        "",
        f"- date: {m['date']}; machine: {m['machine']}",
        f"- demos: {m['demos']['path']} ({m['demos']['episodes']} episodes, {m['demos']['steps']:,} steps)",
        f"- budget: GAIL / AIRL {m['steps']:,} env steps (whole generator rounds), BC {m['bc_steps']:,} gradient "
        f"steps; {m['seeds']} seed(s)",
        f"- evaluation: deterministic policy, {m['eval_episodes']} episodes, reset seeds {m['eval_seed']} + i; "
        f"normalized = (R − R_random) / (R_expert − R_random), R_random {lo:.1f} "
        f"({m['r_random_source']}), R_expert {hi:.1f} ({m['r_expert_source']})",
        f"- imitation side: env {m['peer_env']}, preset {m['preset']}, torch threads {m['threads']}; "
        f"{m['versions'].get('imitation', '?')}",
        f"- rlkit side: {m['versions'].get('rlkit', '?')}",
        "- wall-clock: training only (imitation: `train()`; imports and setup in their own column)",
        "",
        "| algorithm | library | normalized score | return | train wall-clock s | import + setup s | budget used |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for algo in m["algos"]:
        for lib in m["libraries"]:
            runs = [r for r in report["runs"] if r["algo"] == algo and r["library"] == lib]
            ok = [r for r in runs if "error" not in r]
            if not ok:
                why = runs[0]["error"] if runs else "not run"
                lines.append(f"| {algo.upper()} | {lib} | {why} | | | | |")
                continue
            scores = [s for s in (normalized(r["return_mean"], lo, hi) for r in ok) if s is not None]
            used = ok[0].get("env_steps") or 0
            budget = f"{used:,} env steps" if algo != "bc" else f"{ok[0].get('grad_steps') or 0:,} grad steps"
            failed = f" ({len(runs) - len(ok)} failed)" if len(ok) < len(runs) else ""
            lines.append(
                f"| {algo.upper()} | {lib} | {_mean_std(scores, 2)}{failed} | "
                f"{_mean_std([r['return_mean'] for r in ok], 1)} | {_mean_std([r['train_s'] for r in ok], 1)} | "
                f"{_mean_std([r.get('import_s', 0) + r.get('setup_s', 0) for r in ok], 1)} | {budget} |"
            )
    lines += ["", "Hyper-parameters (imitation side, first seed of each algorithm):", ""]
    for algo in m["algos"]:
        first = next((r for r in report["runs"] if r["algo"] == algo and "hyperparameters" in r), None)
        if first:
            envs = f", {first['n_envs']} envs" if first.get("n_envs") else ""
            lines.append(
                f"- {algo.upper()} ({first['preset_source']}{envs}): "
                f"`{json.dumps(first['hyperparameters'], sort_keys=True)}`"
            )
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------------ driver
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--env", required=True, help="Gymnasium env id, e.g. Pendulum-v1")
    p.add_argument("--peer-env", default="", help="the id on imitation's Gymnasium 0.29 if it differs (-v4)")
    p.add_argument("--demos", required=True, help="rlkit demos: a `rlkit demos collect` dir, .npz or Minari")
    p.add_argument("--algos", default="bc,gail,airl", help="comma-separated subset of bc,gail,airl")
    p.add_argument("--steps", type=int, required=True, help="GAIL / AIRL env steps (BC: gradient steps)")
    p.add_argument("--bc-steps", type=int, default=0, help="BC gradient steps (default: --steps)")
    p.add_argument("--seeds", type=int, default=1, help="seeds 0 … K−1 per algorithm and library")
    p.add_argument("--n-envs", type=int, default=0, help="parallel envs (default: the preset's, 8)")
    p.add_argument("--preset", default="auto", help="auto | scripts | docs | tuned:seals_<env> (imitation's)")
    p.add_argument("--eval-episodes", type=int, default=10)
    p.add_argument("--eval-seed", type=int, default=10_000, help="episode i of every evaluation: seed + i")
    p.add_argument("--threads", type=int, default=1, help="torch threads (SB3's small nets: 1 is fastest)")
    p.add_argument("--r-random", type=float, default=None, help="fix R_random instead of measuring it")
    p.add_argument("--r-expert", type=float, default=None, help="fix R_expert instead of the demos' mean")
    p.add_argument("--libraries", default="imitation,rlkit", help="imitation and / or rlkit")
    p.add_argument("--timeout", type=float, default=3600, help="seconds per run")
    p.add_argument("--out", type=Path, required=True, help="results JSON; the markdown table goes beside it")
    args = p.parse_args(argv)
    args.algos = [a.strip() for a in args.algos.split(",") if a.strip()]
    args.libraries = [x.strip() for x in args.libraries.split(",") if x.strip()]
    bad = [a for a in args.algos if a not in ALGOS] + [
        x for x in args.libraries if x not in ("imitation", "rlkit")
    ]
    if bad or not args.algos or args.steps < 1 or args.seeds < 1:
        p.error(
            f"--algos from {','.join(ALGOS)}, --libraries from imitation,rlkit, --steps / --seeds ≥ 1 ({bad})"
        )
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    demos = prepare_demos(args.demos)
    versions = {
        "rlkit": pip_versions(Path(sys.executable), ["jax", "flax", "optax", "gymnasium"])
        + f", Python {platform.python_version()}"
    }
    python = None
    if "imitation" in args.libraries or args.r_random is None:
        t = time.perf_counter()
        python = ensure_imitation_venv()
        versions["imitation"] = pip_versions(python, PEER_PACKAGES) + ", Python 3.11"
        versions["venv_ready_s"] = round(time.perf_counter() - t, 1)
    r_random, random_source = args.r_random, "given"
    if r_random is None:
        rnd = run_peer(python, peer_job("random", args, demos), args.timeout)
        if "error" in rnd:
            raise SystemExit(f"random-policy evaluation failed: {rnd['error']}")
        r_random, random_source = rnd["return_mean"], "uniform random policy, same episodes"
    r_expert, expert_source = args.r_expert, "given"
    if r_expert is None:
        r_expert, expert_source = demos["return_mean"], "demos' mean return"
    peer_env = args.peer_env or args.env
    report: dict[str, Any] = {
        "meta": {
            "env": args.env,
            "peer_env": peer_env,
            "demos": demos,
            "algos": args.algos,
            "libraries": args.libraries,
            "steps": args.steps,
            "bc_steps": args.bc_steps or args.steps,
            "seeds": args.seeds,
            "n_envs": args.n_envs or None,
            "preset": args.preset if args.preset != "auto" else f"auto → {default_preset(peer_env)}",
            "eval_episodes": args.eval_episodes,
            "eval_seed": args.eval_seed,
            "threads": args.threads,
            "r_random": r_random,
            "r_random_source": random_source,
            "r_expert": r_expert,
            "r_expert_source": expert_source,
            "versions": versions,
            "machine": f"{os.cpu_count()} CPU cores, {cpu_model()}",
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        },
        "runs": [],
    }
    out_md = args.out.with_suffix(".md")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for algo in args.algos:
        for lib in args.libraries:
            for seed in range(args.seeds):
                if lib == "imitation":
                    r = run_peer(python, peer_job("train", args, demos, algo, seed), args.timeout)
                else:
                    try:
                        r = run_rlkit_side(
                            env=args.env,
                            demos=demos["npz"],
                            algo=algo,
                            steps=(args.bc_steps or args.steps) if algo == "bc" else args.steps,
                            seed=seed,
                            n_envs=args.n_envs or None,
                            eval_episodes=args.eval_episodes,
                            eval_seed=args.eval_seed,
                        )
                    except NotImplementedError:
                        r = {"error": "rlkit side not written yet (run_rlkit_side)"}
                r = {"library": lib, "algo": algo, "seed": seed, **r}
                report["runs"].append(r)
                score = normalized(r.get("return_mean"), r_random, r_expert)
                shown = r.get("error") or (
                    f"return {r['return_mean']:.1f} (normalized {'—' if score is None else f'{score:.2f}'}), "
                    f"train {r['train_s']:.1f} s, import {r.get('import_s', 0):.1f} s, "
                    f"setup {r.get('setup_s', 0):.1f} s"
                )
                print(f"[imitation-peers] {algo:<4} {lib:<9} seed {seed}: {shown}", flush=True)
                args.out.write_text(json.dumps(report, indent=2) + "\n")  # partial results survive a crash
    text = render(report)
    out_md.write_text(text)
    print(text)
    return report


if __name__ == "__main__":
    main()
