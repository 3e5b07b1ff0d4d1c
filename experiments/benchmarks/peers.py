"""Training speed against peers in the same run: rlkit vs rejax, SBX and Stable-Baselines3 on this machine.

    .venv/bin/python -m experiments.benchmarks.peers [--quick] [--no-defaults] [--output PATH]

Three tasks, one shared setting each, applied to every library (``PPO_SETTINGS`` / ``SAC_SETTINGS`` /
``DQN_SETTINGS`` below): PPO on CartPole-v1 as CleanRL / PureJaxRL run it, SAC on Pendulum-v1 as
rl-baselines3-zoo runs it, and DQN on CartPole-v1 as CleanRL runs it (rlkit and rejax only; ``--dqn`` runs just
these rows, with RR-C and PER beside uniform replay, into ``results/peers_dqn.md``). rlkit
runs PPO fully on device, SAC on device with 1, 8 and 64 runs vmapped, and SAC through the host loop on
Gymnasium's Pendulum-v1 (``rlkit.host_loop``). Every measurement is its own subprocess, and the libraries take
turns (rlkit, rejax, SBX, SB3, then the next task) so that other load on the machine falls on all of them.

Reported per row: env steps/s after compilation / warm-up (rlkit: the chunks after the first; rejax: a second,
already compiled call of its whole jitted ``train``; SBX / SB3: from 10 % into the learning phase to the end,
timed by a callback at every env step), the compile time where it can be measured, and the final return of a
deterministic evaluation over 10 episodes (rejax: its own evaluation, 128 episodes of the stochastic policy).

Peers pin old JAX (rejax needs gymnax 0.0.9), so each gets its own virtual environment under
``.bench-venvs/<peer>`` (git-ignored), created on first use with Python 3.11 and the pins in ``PEERS``; a venv
whose pins changed is rebuilt. Nothing is installed into rlkit's own venv. Torch is installed first, pinned to
the CPU wheel on this machine's disk, so pip never pulls a CUDA build.

Writes ``experiments/benchmarks/results/peers.md`` and prints it. A full run takes about 20 minutes on 2 CPU
cores (plus a few minutes to build the venvs the first time); ``--quick`` about 6.

Deliberately not here: GPU timings, and learning curves (final returns only; the step counts differ where a peer
is too slow to run the shared number of steps in the time budget, and the table says so).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from experiments.benchmarks.machine import cpu_model

ROOT = Path(__file__).resolve().parents[2]
VENVS = ROOT / ".bench-venvs"
DEFAULT_OUTPUT = Path(__file__).parent / "results" / "peers.md"
EVAL_EPISODES = 10

# ------------------------------------------------------------------------------------------- shared settings
PPO_SETTINGS = dict(
    hidden=(64, 64),
    activation="tanh",
    num_envs=4,
    num_steps=128,
    epochs=4,
    minibatches=4,
    lr=2.5e-4,
    gamma=0.99,
    gae_lambda=0.95,
    clip=0.2,
    ent_coef=0.01,
    vf_coef=0.5,
    max_grad_norm=0.5,
    steps=512_000,
)  # CleanRL ppo.py / PureJaxRL, learning-rate annealing off (rejax cannot anneal); 1000 iterations of 512 steps
SAC_SETTINGS = dict(
    hidden=(256, 256),
    activation="relu",
    batch_size=256,
    lr=1e-3,
    gamma=0.99,
    tau=0.005,
    learning_starts=1000,
    buffer_size=100_000,
    num_envs=1,
    gradient_steps=1,
    steps=20_000,
)  # rl-baselines3-zoo Pendulum-v1 (lr 1e-3 for actor, critics and temperature; 20k steps), learning_starts 1000
DQN_SETTINGS = dict(
    hidden=(64, 64),
    activation="relu",
    num_envs=10,
    lr=2.5e-4,
    gamma=0.99,
    buffer_size=10_000,
    batch_size=128,
    learning_starts=10_000,
    target_every=500,
    eps_start=1.0,
    eps_end=0.05,
    exploration_fraction=0.5,
    max_grad_norm=10.0,
    steps=500_000,
)  # CleanRL dqn.py (CartPole-v1, 500k steps) but for two things rejax cannot express: its Q-network is fixed at
# 64×64 (CleanRL 120×84), and it updates once per vector step, so CleanRL's one update per 10 env steps is run as
# 10 envs × 1 update per vector step (CleanRL: 1 env, train_frequency 10)

# ----------------------------------------------------------------------------------------------- peer venvs
PEERS: dict[str, list[list[str]]] = {  # pip install steps, in order
    "rejax": [
        [
            "rejax==0.1.3",
            "gymnax==0.0.9",
            "jax==0.10.2",
            "jaxlib==0.10.2",
            "flax==0.12.8",
            "optax==0.2.8",
            "distrax==0.1.9",
            "chex==0.1.92",
            "numpy==2.4.6",
            "gymnasium==1.3.0",
        ]
    ],
    "sbx": [
        ["torch==2.13.0"],
        [
            "sbx-rl==0.28.0",
            "stable-baselines3==2.9.2",
            "jax==0.10.2",
            "jaxlib==0.10.2",
            "flax==0.12.8",
            "optax==0.2.8",
            "numpy==2.4.6",
            "gymnasium==1.4.0",
        ],
    ],
    "sb3": [["torch==2.13.0"], ["stable-baselines3==2.9.2", "numpy==2.4.6", "gymnasium==1.4.0"]],
}


def find_python311() -> str:
    """rejax / gymnax 0.0.9 and the CPU torch wheel on disk want Python 3.11."""
    for name in ("python3.11",):
        path = shutil.which(name)
        if path:
            return path
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    for p in sorted(root.glob("versions/3.11*/bin/python3.11"), reverse=True):
        return str(p)
    raise SystemExit("peers.py needs a Python 3.11 for the peers' venvs (e.g. `pyenv install 3.11`)")


def ensure_venv(peer: str) -> Path:
    venv = VENVS / peer
    python = venv / "bin" / "python"
    marker = venv / ".rlkit-pins.json"
    want = json.dumps(PEERS[peer])
    if python.exists() and marker.exists() and marker.read_text() == want:
        return python
    print(f"[peers] building {venv} (first use or changed pins) ...", flush=True)
    if venv.exists():
        shutil.rmtree(venv)
    VENVS.mkdir(exist_ok=True)
    subprocess.run([find_python311(), "-m", "venv", str(venv)], check=True)
    for step in PEERS[peer]:
        subprocess.run([str(python), "-m", "pip", "install", "-q", *step], check=True)
    marker.write_text(want)
    return python


def pip_versions(python: Path, names: list[str]) -> str:
    code = (
        "import importlib.metadata as m, sys\nprint(', '.join(f'{n} {m.version(n)}' for n in sys.argv[1:]))"
    )
    out = subprocess.run([str(python), "-c", code, *names], capture_output=True, text=True)
    return out.stdout.strip() or out.stderr.strip().splitlines()[-1]


# --------------------------------------------------------------------------------------------- peer workers
# Each worker is run by the peer's own Python with one JSON job as argv[1] and prints one line "RESULT {json}".
_COMMON = r"""
import json, statistics, sys, time
job = json.loads(sys.argv[1]); S = job["settings"]; steps = job["steps"]
def done(**r):
    print("RESULT " + json.dumps(r), flush=True)
"""

REJAX_WORKER = (
    _COMMON
    + r"""
import jax, jax.numpy as jnp
from rejax import get_algo
from rejax.evaluate import evaluate
if job["task"] == "ppo":
    cls = get_algo("ppo")
    kw = {} if job["defaults"] else dict(
        num_envs=S["num_envs"], num_steps=S["num_steps"], num_epochs=S["epochs"], num_minibatches=S["minibatches"],
        learning_rate=S["lr"], gamma=S["gamma"], gae_lambda=S["gae_lambda"], clip_eps=S["clip"],
        ent_coef=S["ent_coef"], vf_coef=S["vf_coef"], max_grad_norm=S["max_grad_norm"],
        agent_kwargs={"activation": S["activation"], "hidden_layer_sizes": tuple(S["hidden"])})
    env = "CartPole-v1"
elif job["task"] == "dqn":
    cls = get_algo("dqn")  # its network is 64×64, hidden sizes cannot be set
    kw = {} if job["defaults"] else dict(
        num_envs=S["num_envs"], learning_rate=S["lr"], batch_size=S["batch_size"], buffer_size=S["buffer_size"],
        fill_buffer=S["learning_starts"], num_epochs=1, gamma=S["gamma"], polyak=0.0,
        target_update_freq=S["target_every"], eps_start=S["eps_start"], eps_end=S["eps_end"],
        exploration_fraction=S["exploration_fraction"], max_grad_norm=S["max_grad_norm"], ddqn=False,
        agent_kwargs={"activation": S["activation"]})
    env = "CartPole-v1"
else:
    cls = get_algo("sac")
    kw = {} if job["defaults"] else dict(
        num_envs=S["num_envs"], learning_rate=S["lr"], batch_size=S["batch_size"], buffer_size=S["buffer_size"],
        fill_buffer=S["learning_starts"], num_epochs=S["gradient_steps"], gamma=S["gamma"],
        polyak=1.0 - S["tau"], target_update_freq=1, hidden_layer_sizes=tuple(S["hidden"]),  # SAC: top level
        agent_kwargs={"activation": S["activation"]})
    env = "Pendulum-v1"
algo = cls.create(env=env, total_timesteps=steps, eval_freq=steps, skip_initial_evaluation=True, **kw)
algo = algo.replace(eval_callback=lambda a, ts, rng: jnp.zeros(()))  # time training only
key = jax.random.PRNGKey(job["seed"])
runs = job.get("runs", 1)
if runs > 1:  # rejax's own recipe for many seeds: vmap its jitted train over keys
    key = jax.random.split(key, runs)
    fn = jax.vmap(cls.train, in_axes=(None, 0))
else:
    fn = cls.train
t = time.perf_counter()
train = jax.jit(fn).lower(algo, key).compile()
compile_s = time.perf_counter() - t
t = time.perf_counter()
ts, _ = train(algo, key)
jax.block_until_ready(ts)
seconds = time.perf_counter() - t
steps_done = int(jnp.sum(ts.global_step))
if runs > 1 or not job.get("evaluate", True):
    final, how = None, "not evaluated"
else:
    max_steps = algo.env_params.max_steps_in_episode
    _, returns = evaluate(algo.make_act(ts), jax.random.PRNGKey(123), algo.env, algo.env_params, 128, max_steps)
    final, how = float(returns.mean()), "rejax evaluate, 128 episodes, stochastic policy"
done(steps_per_s=steps_done / seconds, compile_s=compile_s, final_return=final, steps=steps_done, seconds=seconds,
     eval=how)
"""
)

SB_WORKER = (
    _COMMON
    + r"""
import gymnasium as gym
if job["lib"] == "sbx":
    import flax.linen as nn
    from sbx import PPO, SAC
    act = {"tanh": nn.tanh, "relu": nn.relu}
else:
    import torch
    from stable_baselines3 import PPO, SAC
    torch.set_num_threads(1)  # 2 cores; SB3 is faster single-threaded with these small nets
    act = {"tanh": torch.nn.Tanh, "relu": torch.nn.ReLU}
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy

class Clock(BaseCallback):
    def __init__(self):
        super().__init__(); self.marks = []
    def _on_step(self):
        self.marks.append((self.num_timesteps, time.perf_counter())); return True

if job["task"] == "ppo":
    n_envs = 1 if job["defaults"] else S["num_envs"]
    env = make_vec_env("CartPole-v1", n_envs=n_envs, seed=job["seed"])
    kw = {} if job["defaults"] else dict(
        n_steps=S["num_steps"], batch_size=S["num_envs"] * S["num_steps"] // S["minibatches"], n_epochs=S["epochs"],
        learning_rate=S["lr"], gamma=S["gamma"], gae_lambda=S["gae_lambda"], clip_range=S["clip"],
        clip_range_vf=S["clip"], ent_coef=S["ent_coef"], vf_coef=S["vf_coef"], max_grad_norm=S["max_grad_norm"],
        policy_kwargs=dict(net_arch=dict(pi=list(S["hidden"]), vf=list(S["hidden"])),
                           activation_fn=act[S["activation"]], ortho_init=True))
    model = PPO("MlpPolicy", env, seed=job["seed"], **kw)
    start = 0
    period = model.n_steps * n_envs  # updates happen between rollouts
    eval_env = gym.make("CartPole-v1")
else:
    env = gym.make("Pendulum-v1")
    kw = {} if job["defaults"] else dict(
        learning_rate=S["lr"], buffer_size=S["buffer_size"], learning_starts=S["learning_starts"],
        batch_size=S["batch_size"], tau=S["tau"], gamma=S["gamma"], train_freq=1,
        gradient_steps=S["gradient_steps"], ent_coef="auto",
        policy_kwargs=dict(net_arch=list(S["hidden"]), activation_fn=act[S["activation"]]))
    model = SAC("MlpPolicy", env, seed=job["seed"], **kw)
    start = model.learning_starts
    period = 1
    eval_env = gym.make("Pendulum-v1")
clock = Clock()
t0 = time.perf_counter()
model.learn(total_timesteps=steps, callback=clock)
total_s = time.perf_counter() - t0
marks = clock.marks
lo = start + (steps - start) // 10
window = [(n, t) for n, t in marks if n >= lo]
(n0, t0), (n1, t1) = window[0], window[-1]
rate = (n1 - n0) / (t1 - t0)
compile_s = None
if job["lib"] == "sbx":  # the first update (compilation) against the median later one
    gaps = [(n, b - a) for (_, a), (n, b) in zip(marks, marks[1:])]
    if job["task"] == "ppo":
        upd = [g for n, g in gaps if n > period and (n - n_envs) % period == 0]
    else:
        upd = [g for n, g in gaps if n > start + 1]
    if len(upd) > 2:
        compile_s = max(0.0, upd[0] - statistics.median(upd[1:]))
returns, _ = evaluate_policy(model, eval_env, n_eval_episodes=10, deterministic=True, return_episode_rewards=True)
done(steps_per_s=rate, compile_s=compile_s, final_return=sum(returns) / len(returns), steps=model.num_timesteps,
     seconds=total_s, eval="evaluate_policy, 10 episodes, deterministic")
"""
)

WORKERS = {"rejax": REJAX_WORKER, "sbx": SB_WORKER, "sb3": SB_WORKER}


# ---------------------------------------------------------------------------------------------- rlkit side
def _chunk_timer():
    marks = [time.perf_counter()]
    return marks, lambda c, m: marks.append(time.perf_counter())


def _steady(marks: list[float], steps_per_chunk: int) -> tuple[float, float | None]:
    """(steps/s over chunks 2.., compile s = first chunk − median later chunk)."""
    times = [b - a for a, b in zip(marks, marks[1:])]
    if len(times) < 2:
        return steps_per_chunk / times[0], None
    later = times[1:]
    return steps_per_chunk * len(later) / sum(later), max(0.0, times[0] - statistics.median(later))


def rlkit_worker(job: dict) -> dict:
    import jax
    import numpy as np

    import envs
    from rlkit.sweeps import make_runs
    from rlkit.training import train

    s = job["settings"]
    if job["task"] == "ppo":
        try:
            from agents.ppo import PPOConfig, make_trainer
        except ImportError as e:
            return {"skipped": f"agents.ppo does not import yet ({e})"}
        config = PPOConfig(
            hidden_sizes=tuple(s["hidden"]),
            activation=s["activation"],
            num_envs=s["num_envs"],
            num_steps=s["num_steps"],
            num_minibatches=s["minibatches"],
            update_epochs=s["epochs"],
            iterations_per_chunk=job.get("iterations_per_chunk", 100),
            anneal_lr=False,
            learning_rate=s["lr"],
            gamma=s["gamma"],
            gae_lambda=s["gae_lambda"],
            clip_coef=s["clip"],
            ent_coef=s["ent_coef"],
            vf_coef=s["vf_coef"],
            max_grad_norm=s["max_grad_norm"],
        )
        trainer = make_trainer(config, envs.make("cartpole"))
        runs = make_runs(config, seeds=list(range(job["seed"], job["seed"] + job.get("runs", 1))))
    elif job["task"] == "dqn":
        from agents.dqn import DQNConfig, make_trainer

        config = DQNConfig(
            hidden_sizes=tuple(s["hidden"]),
            num_envs=s["num_envs"],
            train_frequency=1,
            chunk_steps=job.get("chunk_steps", 5000),
            learning_rate=s["lr"],
            gamma=s["gamma"],
            buffer_size=s["buffer_size"],
            batch_size=s["batch_size"],
            learning_starts=s["learning_starts"],
            target_network_frequency=s["target_every"],
            tau=1.0,
            start_e=s["eps_start"],
            end_e=s["eps_end"],
            exploration_steps=int(s["exploration_fraction"] * s["steps"]),
            max_grad_norm=s["max_grad_norm"],
            sampling=job.get("sampling", "uniform"),
        )
        trainer = make_trainer(config, envs.make("cartpole"))
        runs = make_runs(config, seeds=job.get("runs", 1))
    else:
        from agents.sac import SACConfig, make_sac, make_trainer

        config = SACConfig(
            hidden_sizes=tuple(s["hidden"]),
            batch_size=s["batch_size"],
            learning_starts=s["learning_starts"],
            buffer_size=s["buffer_size"],
            num_envs=s["num_envs"],
            updates_per_step=s["gradient_steps"],
            chunk_steps=job.get("chunk_steps", 1000),
            q_lr=s["lr"],
            policy_lr=s["lr"],
            gamma=s["gamma"],
            tau=s["tau"],
        )
        if job["task"] == "sac-host":
            from rlkit.host_loop import evaluate_host, train_host

            marks, on_chunk = _chunk_timer()
            result = train_host(
                make_sac,
                make_runs(config, seeds=[job["seed"]]),
                lambda n: envs.make("gymnasium:Pendulum-v1", num_envs=n),
                total_steps=job["steps"],
                console=False,
                on_chunk=on_chunk,
            )
            rate, compile_s = _steady(marks, config.chunk_steps)
            agent = make_sac(config, envs.make("gymnasium:Pendulum-v1", num_envs=1).spec)
            ev = evaluate_host(
                agent,
                jax.tree.map(lambda x: x[0], result.state.agent_state),
                envs.make("gymnasium:Pendulum-v1", num_envs=1),
                episodes=EVAL_EPISODES,
                seed=123,
            )
            return dict(
                steps_per_s=rate,
                compile_s=compile_s,
                final_return=ev["eval_return"],
                steps=result.steps,
                eval="evaluate_host, 10 episodes, deterministic",
            )
        trainer = make_trainer(config, envs.make("pendulum"))
        runs = make_runs(config, seeds=job.get("runs", 1))
    marks, on_chunk = _chunk_timer()
    result = train(trainer, runs, total_steps=job["steps"], log_dir=None, console=False, on_chunk=on_chunk)
    rate, compile_s = _steady(marks, trainer.steps_per_chunk * len(runs))
    final = None
    if job.get("evaluate", True):
        keys = jax.random.split(jax.random.key(123), len(runs))
        ev = jax.jit(jax.vmap(trainer.evaluate))(runs.config, result.state, keys)
        final = float(np.mean(np.asarray(ev["eval_return"])))
    return dict(
        steps_per_s=rate,
        compile_s=compile_s,
        final_return=final,
        steps=result.steps * len(runs),
        eval=f"evaluate_policy, {EVAL_EPISODES} episodes, deterministic"
        + (f", mean of {len(runs)} runs" if len(runs) > 1 else ""),
    )


# ------------------------------------------------------------------------------------------------ driver
def run_job(job: dict, timeout: float = 900) -> dict:
    started = time.perf_counter()
    if job["lib"] == "rlkit":
        cmd = [sys.executable, "-m", "experiments.benchmarks.peers", "--worker", json.dumps(job)]
        out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    else:
        python = ensure_venv(job["lib"])
        with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
            f.write(WORKERS[job["lib"]])
        try:
            out = subprocess.run(
                [str(python), f.name, json.dumps(job)],
                capture_output=True,
                text=True,
                timeout=timeout,
                cwd=tempfile.gettempdir(),
            )
        finally:
            os.unlink(f.name)
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")]
    if out.returncode != 0 or not lines:
        tail = (out.stderr or out.stdout).strip().splitlines()[-3:]
        result = {"error": " | ".join(tail)[-300:]}
    else:
        result = json.loads(lines[-1][len("RESULT ") :])
    result["wall_s"] = time.perf_counter() - started
    return {**job, **result}


def plan(quick: bool, defaults: bool) -> list[dict]:
    ppo, sac, dqn = dict(PPO_SETTINGS), dict(SAC_SETTINGS), dict(DQN_SETTINGS)
    if quick:
        dqn["steps"] = 100_000
    slow_ppo = 25_600 if quick else 102_400  # SB3 / SBX: ~1.7k steps/s, so fewer steps (same settings)
    sac_steps = 5_000 if quick else sac["steps"]
    sb3_sac = 5_000 if quick else 10_000  # SB3: ~75 steps/s
    vm8, vm64 = (
        (125, 25) if quick else (250, 50)
    )  # vector steps per chunk of the vmapped runs (throughput only)

    def j(lib, task, steps, **kw):
        return dict(
            lib=lib,
            task=task,
            steps=steps,
            seed=0,
            defaults=False,
            settings={"ppo": ppo, "dqn": dqn}.get(task, sac),
            **kw,
        )

    jobs = [
        j("rlkit", "ppo", ppo["steps"], label="rlkit (on-device)"),
        j("rejax", "ppo", ppo["steps"], label="rejax"),
        j("sbx", "ppo", slow_ppo, label="SBX"),
        j("sb3", "ppo", slow_ppo, label="SB3"),
        j("rlkit", "sac-host", sac_steps, label="rlkit host loop (Gymnasium Pendulum-v1)"),
        j("rejax", "sac", sac_steps, label="rejax"),
        j("sbx", "sac", sac_steps, label="SBX"),
        j("sb3", "sac", sb3_sac, label="SB3"),
        j("rlkit", "sac", sac_steps, runs=1, label="rlkit on-device, 1 run"),
        j(
            "rlkit",
            "sac",
            4 * vm8,
            runs=8,
            chunk_steps=vm8,
            evaluate=False,
            label="rlkit on-device, 8 runs vmapped",
        ),
        j(
            "rlkit",
            "sac",
            3 * vm64,
            runs=64,
            chunk_steps=vm64,
            evaluate=False,
            label="rlkit on-device, 64 runs vmapped",
        ),
    ]
    jobs += dqn_jobs(j, dqn["steps"])
    if not quick:  # the fast ones once more at the end: best of two against load on the shared machine
        jobs += [
            j("rejax", "ppo", ppo["steps"], label="rejax"),
            j("rlkit", "ppo", ppo["steps"], label="rlkit (on-device)"),
        ]
    if defaults:
        jobs += [
            dict(j("rejax", "ppo", ppo["steps"], label="rejax, own defaults"), defaults=True),
            dict(j("sbx", "ppo", 32_768, label="SBX, own defaults"), defaults=True),
            dict(j("sb3", "ppo", 32_768, label="SB3, own defaults"), defaults=True),
            dict(j("rejax", "sac", sac["steps"], label="rejax, own defaults"), defaults=True),
            dict(j("sbx", "sac", 5_000, label="SBX, own defaults"), defaults=True),
            dict(j("sb3", "sac", 3_000, label="SB3, own defaults"), defaults=True),
        ]
    return jobs


def dqn_jobs(j, steps: int) -> list[dict]:
    """DQN on CartPole: rlkit (1 run, then 8 runs vmapped; uniform replay, then RR-C and PER) and rejax."""
    return [
        j("rlkit", "dqn", steps, runs=1, label="rlkit on-device, 1 run"),
        j("rejax", "dqn", steps, label="rejax"),
        j("rlkit", "dqn", steps, runs=8, label="rlkit on-device, 8 runs vmapped"),
        j("rlkit", "dqn", steps, runs=1, sampling="rr", label="rlkit on-device, 1 run, RR-C"),
        j("rlkit", "dqn", steps, runs=1, sampling="per", label="rlkit on-device, 1 run, PER"),
        j("rlkit", "dqn", steps, runs=8, sampling="rr", label="rlkit on-device, 8 runs vmapped, RR-C"),
    ]


def _fmt(x, digits=0) -> str:
    if x is None:
        return "—"
    return f"{x:,.{digits}f}"


def render(results: list[dict], versions: dict[str, str], quick: bool, seconds: float, load: str) -> str:
    best: dict[tuple, dict] = {}
    repeats: dict[tuple, list[float]] = {}
    for r in results:  # best of repeats (same label/task/defaults)
        key = (r["label"], r["task"], r["defaults"])
        repeats.setdefault(key, []).append(r.get("steps_per_s") or 0.0)
        if key not in best or (r.get("steps_per_s") or 0) > (best[key].get("steps_per_s") or 0):
            best[key] = r
    p, s, d = PPO_SETTINGS, SAC_SETTINGS, DQN_SETTINGS
    lines = [
        "# Training speed against peers (env steps / s, CPU)",
        "",
        f"- date: {datetime.datetime.now(datetime.UTC).isoformat(timespec='seconds')}; "
        f"{'`--quick`' if quick else 'full run'}, {seconds / 60:.1f} min; load average before / after: {load} / "
        f"{', '.join(f'{x:.2f}' for x in os.getloadavg())}",
        f"- machine: {os.cpu_count()} CPU cores, {cpu_model()}, no GPU; the CPU may be shared with other work",
        *[f"- {lib}: {v}" for lib, v in versions.items()],
        f"- **PPO CartPole-v1** (CleanRL / PureJaxRL): MLP {p['hidden'][0]}×{p['hidden'][1]} {p['activation']}, "
        f"separate actor and critic, {p['num_envs']} envs × {p['num_steps']} steps, {p['epochs']} epochs × "
        f"{p['minibatches']} minibatches, Adam lr {p['lr']:g} (constant), γ {p['gamma']}, λ {p['gae_lambda']}, "
        f"clip {p['clip']} (value clip too), entropy {p['ent_coef']}, value coef {p['vf_coef']}, "
        f"grad-norm clip {p['max_grad_norm']}, {p['steps']:,} steps (SB3 / SBX: fewer, see steps)",
        f"- **SAC Pendulum-v1** (rl-baselines3-zoo): MLP {s['hidden'][0]}×{s['hidden'][1]} {s['activation']} "
        f"(actor and 2 critics), batch {s['batch_size']}, Adam lr {s['lr']:g} for actor, critics and α "
        f"(auto, initial α 1, target entropy −|A|), γ {s['gamma']}, τ {s['tau']}, learning_starts "
        f"{s['learning_starts']}, buffer {s['buffer_size']:,}, {s['num_envs']} env, {s['gradient_steps']} "
        f"gradient step per env step, {s['steps']:,} steps",
        f"- **DQN CartPole-v1** (CleanRL dqn.py, two changes rejax needs): MLP {d['hidden'][0]}×{d['hidden'][1]} "
        f"{d['activation']} (rejax's fixed size; CleanRL 120×84), {d['num_envs']} envs with one update per vector "
        f"step (CleanRL: 1 env, an update every 10 steps: the same update-to-data ratio), batch {d['batch_size']}, "
        f"Adam lr {d['lr']:g}, grad-norm clip {d['max_grad_norm']:g}, γ {d['gamma']}, buffer {d['buffer_size']:,}, "
        f"learning_starts {d['learning_starts']:,}, hard target update every {d['target_every']} env steps, "
        f"ε {d['eps_start']:g} → {d['eps_end']:g} over the first {d['exploration_fraction']:.0%}, ½ squared TD "
        f"error, no double-Q, {d['steps']:,} steps",
        "- env steps/s: after compilation and warm-up (rlkit: chunks after the first; rejax: its compiled `train`, "
        "whole run; SB3 / SBX: from 10 % into the learning phase to the end); best of two for rlkit / rejax PPO "
        "in a full run. vmapped rows: total env steps of all runs / s (short runs: throughput only)",
        "- final return: deterministic policy, 10 episodes (rejax: its own eval, 128 episodes, stochastic policy)",
        "",
        "| library | task | env steps/s | compile s | final return | steps |",
        "|---|---|---:|---:|---:|---:|",
    ]
    task_name = {
        "ppo": "PPO CartPole",
        "sac": "SAC Pendulum",
        "sac-host": "SAC Pendulum",
        "dqn": "DQN CartPole",
    }
    for key, r in best.items():
        name = task_name[r["task"]]
        others = sorted(repeats[key], reverse=True)[1:]
        also = f" (other run: {', '.join(_fmt(x) for x in others)})" if others else ""
        if "error" in r or "skipped" in r:
            lines.append(f"| {r['label']} | {name} | {r.get('error') or r.get('skipped')} | | | |")
            continue
        lines.append(
            f"| {r['label']} | {name} | {_fmt(r['steps_per_s'])}{also} | {_fmt(r['compile_s'], 1)} | "
            f"{_fmt(r['final_return'], 1)} | {r['steps']:,} |"
        )
    lines += ["", *targets(best)]
    return "\n".join(lines) + "\n"


def targets(best: dict) -> list[str]:
    def rate(label, task, defaults=False):
        r = best.get((label, task, defaults))
        return r.get("steps_per_s") if r else None

    out = ["Targets (issue Foundation 3/3):", ""]
    rl, rj = rate("rlkit (on-device)", "ppo"), rate("rejax", "ppo")
    if rl and rj:
        verdict = "met" if rl >= rj else "on par (within 3 %)" if rl >= 0.97 * rj else "MISSED"
        verdict += "" if rl > 100_000 else "; below 100k steps/s: MISSED"
        out.append(
            f"- PPO CartPole, rlkit ≥ rejax and well above 100k steps/s: rlkit {rl:,.0f} vs rejax {rj:,.0f} "
            f"({rl / rj:.2f}×) — {verdict}"
        )
    host, sbx = rate("rlkit host loop (Gymnasium Pendulum-v1)", "sac-host"), rate("SBX", "sac")
    if host and sbx:
        out.append(
            f"- SAC through the host loop ≥ 3× SBX: rlkit {host:,.0f} vs SBX {sbx:,.0f} "
            f"({host / sbx:.2f}×) — {'met' if host >= 3 * sbx else 'MISSED'}"
        )
    dev, rjs = rate("rlkit on-device, 1 run", "sac"), rate("rejax", "sac")
    if dev and rjs:
        out.append(
            f"- SAC on-device, 1 run, vs rejax: rlkit {dev:,.0f} vs rejax {rjs:,.0f} ({dev / rjs:.2f}×)"
        )
    dqn, rjd = rate("rlkit on-device, 1 run", "dqn"), rate("rejax", "dqn")
    if dqn and rjd:
        out.append(
            f"- DQN on-device, 1 run, vs rejax (issue 11): rlkit {dqn:,.0f} vs rejax {rjd:,.0f} "
            f"({dqn / rjd:.2f}×)"
        )
    return out


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps; about 6 minutes")
    parser.add_argument("--no-defaults", action="store_true", help="skip the peers' own-defaults rows")
    parser.add_argument("--output", type=Path, default=None)
    parser.add_argument(
        "--small-sac",
        action="store_true",
        help="only the SAC rows, with 64×64 networks: where per-step overhead (not the update's arithmetic) "
        "decides the speed; written to results/peers_small_sac.md",
    )
    parser.add_argument(
        "--dqn", action="store_true", help="only the DQN rows; written to results/peers_dqn.md"
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print("RESULT " + json.dumps(rlkit_worker(json.loads(args.worker))), flush=True)
        return ""

    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    versions = {
        "rlkit": pip_versions(Path(sys.executable), ["jax", "jaxlib", "flax", "optax", "gymnasium"])
        + f", Python {platform.python_version()}",
    }
    for peer, names in (
        ("rejax", ["rejax", "gymnax", "jax", "flax", "optax"]),
        ("sbx", ["sbx-rl", "stable-baselines3", "jax", "flax", "gymnasium"]),
        ("sb3", ["stable-baselines3", "torch", "gymnasium"]),
    )[: 1 if args.dqn else 3]:
        python = ensure_venv(peer)
        versions[peer] = pip_versions(python, names) + ", Python 3.11"
    started = time.perf_counter()
    results = []
    jobs = plan(args.quick, defaults=not (args.quick or args.no_defaults))
    if args.small_sac:  # same settings but the network; the host loop against SBX and rejax
        SAC_SETTINGS["hidden"] = (64, 64)
        keep = {"rlkit host loop (Gymnasium Pendulum-v1)", "SBX", "rejax", "rlkit on-device, 1 run"}
        jobs = [
            dict(j, settings=SAC_SETTINGS)
            for j in jobs
            if j["task"] in ("sac", "sac-host") and j["label"] in keep
        ]
    if args.dqn:
        jobs = [j for j in jobs if j["task"] == "dqn"]
    name = "peers_small_sac.md" if args.small_sac else "peers_dqn.md" if args.dqn else "peers.md"
    output = args.output or DEFAULT_OUTPUT.with_name(name)
    for job in jobs:
        r = run_job(job)
        results.append(r)
        shown = (
            r.get("error")
            or r.get("skipped")
            or (
                f"{r['steps_per_s']:,.0f} steps/s, compile {_fmt(r['compile_s'], 1)} s, "
                f"return {_fmt(r['final_return'], 1)}, {r['steps']:,} steps"
            )
        )
        print(f"[peers] {r['label']:<40} {r['task']:<8} {shown} ({r['wall_s']:.0f} s)", flush=True)
    text = render(results, versions, args.quick, time.perf_counter() - started, load)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text)
    print(text)
    return text


if __name__ == "__main__":
    main()
