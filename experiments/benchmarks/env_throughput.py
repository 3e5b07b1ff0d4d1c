"""Env steps per second of every JAX-native env in ``envs.registry``, against Gymnasium's originals.

    .venv/bin/python -m experiments.benchmarks.env_throughput [--ids pendulum cartpole] [--output PATH]

JAX side: for 1, 64 and 1024 parallel envs, one ``jit`` of a ``lax.scan`` over T steps of ``vmap(step)`` with
random actions (sampled inside the scan) behind ``AutoReset`` and ``TimeLimit``, as a training chunk runs them;
compiled and run once before timing. Gymnasium side (Pendulum-v1, CartPole-v1, MountainCarContinuous-v0): a
plain Python loop over ``env.step`` of one ``gym.make`` env, and ``gymnasium.vector.SyncVectorEnv`` of 64, both
with ``action_space.sample()`` actions. Reported: steps/s = T × num_envs / seconds, the median of a few repeats.
Writes a markdown table to ``experiments/benchmarks/results/env_throughput.md`` and prints it; the whole run takes
about a minute or two on 2 CPU cores.

Deliberately not here: learning, rendering, host↔device transfer per step (the JAX loop never leaves the
device), and Gymnasium's own vectorized CartPole (``CartPoleVectorEnv``), which is NumPy-batched, not the
generic path every Gymnasium env has.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import time
from pathlib import Path

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np

import envs
from envs.wrappers import AutoReset
from experiments.benchmarks.machine import cpu_model

BATCH_SIZES = (1, 64, 1024)
REPEATS = 5
GYM_REPEATS = 3
TARGET_ENV_STEPS = 200_000  # per timed scan: T = clip(TARGET / num_envs, 128, 2048)
GYM_SINGLE_STEPS = 10_000
GYM_VECTOR_ENVS = 64
GYM_VECTOR_STEPS = 300
GYMNASIUM_ORIGINALS = {
    "pendulum": "Pendulum-v1",
    "cartpole": "CartPole-v1",
    "mountain-car-continuous": "MountainCarContinuous-v0",
}
DEFAULT_OUTPUT = Path(__file__).parent / "results" / "env_throughput.md"


# ---------------------------------------------------------------------------------------------- JAX side
def _scan_rollout(env, num_envs: int, steps: int):
    """A jitted ``(key) -> reward sum`` running ``steps`` auto-resetting steps of ``num_envs`` envs."""
    params = env.default_params
    sample = jax.vmap(env.spec.action_space.sample)
    step = jax.vmap(env.step, in_axes=(0, 0, 0, None))

    def rollout(key):
        key, reset_key = jax.random.split(key)
        _, state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(reset_key, num_envs), params)

        def body(carry, _):
            state, key, checksum = carry
            key, k_act, k_step = jax.random.split(key, 3)
            actions = sample(jax.random.split(k_act, num_envs))
            obs, state, reward, *_ = step(jax.random.split(k_step, num_envs), state, actions, params)
            # Every step's observations feed the result: otherwise XLA drops the dynamics of an env whose reward
            # does not depend on the state (CartPole pays 1 per step) and times an empty loop.
            return (state, key, checksum + jnp.sum(reward) + jnp.sum(obs)), None

        (_, _, checksum), _ = jax.lax.scan(body, (state, key, jnp.zeros((), jnp.float32)), None, length=steps)
        return checksum

    return jax.jit(rollout)


def _steps_for(num_envs: int) -> int:
    return int(np.clip(TARGET_ENV_STEPS // num_envs, 128, 2048))


def bench_jax(env_id: str) -> dict[int, float]:
    env = AutoReset(envs.make(env_id))
    result = {}
    for num_envs in BATCH_SIZES:
        steps = _steps_for(num_envs)
        rollout = _scan_rollout(env, num_envs, steps)
        rollout(jax.random.key(0)).block_until_ready()  # compile + warm-up
        times = []
        for r in range(REPEATS):
            start = time.perf_counter()
            rollout(jax.random.key(r + 1)).block_until_ready()
            times.append(time.perf_counter() - start)
        # The reset inside `rollout` is timed too: one vmapped reset per T steps, negligible for T >= 128.
        result[num_envs] = steps * num_envs / statistics.median(times)
    return result


# ---------------------------------------------------------------------------------------------- Gymnasium side
def bench_gym_single(gym_id: str) -> float:
    env = gym.make(gym_id)
    env.action_space.seed(0)
    times = []
    for r in range(GYM_REPEATS):
        env.reset(seed=r)
        start = time.perf_counter()
        for _ in range(GYM_SINGLE_STEPS):
            _, _, terminated, truncated, _ = env.step(env.action_space.sample())
            if terminated or truncated:
                env.reset()
        times.append(time.perf_counter() - start)
    env.close()
    return GYM_SINGLE_STEPS / statistics.median(times)


def bench_gym_sync_vector(gym_id: str) -> float:
    venv = gym.vector.SyncVectorEnv([lambda: gym.make(gym_id) for _ in range(GYM_VECTOR_ENVS)])
    venv.action_space.seed(0)
    times = []
    for r in range(GYM_REPEATS):
        venv.reset(seed=r)
        start = time.perf_counter()
        for _ in range(GYM_VECTOR_STEPS):
            venv.step(venv.action_space.sample())  # SyncVectorEnv auto-resets (next-step mode)
        times.append(time.perf_counter() - start)
    venv.close()
    return GYM_VECTOR_STEPS * GYM_VECTOR_ENVS / statistics.median(times)


# ---------------------------------------------------------------------------------------------- report
def _fmt(x: float | None) -> str:
    return "—" if x is None else f"{x:,.0f}"


def render_table(rows: list[tuple[str, str, dict[int, float]]], notes: list[str]) -> str:
    device = jax.devices()[0]
    lines = [
        "# Env throughput (env steps / s)",
        "",
        f"- date: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"- machine: {os.cpu_count()} CPU cores (`nproc`: {len(os.sched_getaffinity(0))}), {cpu_model()}",
        f"- JAX {jax.__version__} on {device.platform} ({device.device_kind}), Gymnasium {gym.__version__}, "
        f"Python {platform.python_version()}",
        f"- JAX: jit(lax.scan of T steps of vmap(step)), AutoReset + TimeLimit, random actions; T = "
        f"{', '.join(f'{_steps_for(n)} for {n}' for n in BATCH_SIZES)} envs; median of {REPEATS} after a warm-up",
        f"- Gymnasium: Python loop over one `gym.make` env ({GYM_SINGLE_STEPS} steps) and `SyncVectorEnv` of "
        f"{GYM_VECTOR_ENVS} ({GYM_VECTOR_STEPS} steps); median of {GYM_REPEATS}",
        "",
        "| env | implementation | "
        + " | ".join(f"{n} env{'s' if n > 1 else ''}" for n in BATCH_SIZES)
        + " |",
        "|---|---|" + "---:|" * len(BATCH_SIZES),
    ]
    for env_id, impl, by_n in rows:
        lines.append(f"| {env_id} | {impl} | " + " | ".join(_fmt(by_n.get(n)) for n in BATCH_SIZES) + " |")
    if notes:
        lines += ["", *[f"- {n}" for n in notes]]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ids", nargs="*", help="registered env ids to run (default: all)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="where the markdown table goes")
    args = parser.parse_args(argv)

    rows: list[tuple[str, str, dict[int, float]]] = []
    notes: list[str] = []
    for env_id in args.ids or envs.registered_ids():
        print(f"[env_throughput] {env_id} ...", flush=True)
        try:
            rows.append((env_id, "rlkit (JAX)", bench_jax(env_id)))
        except Exception as exc:  # an env still being written elsewhere must not sink the whole report
            notes.append(
                f"`{env_id}` skipped: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            )
            continue
        gym_id = GYMNASIUM_ORIGINALS.get(env_id)
        if gym_id is not None:
            rows.append((env_id, f"Gymnasium {gym_id}, Python loop", {1: bench_gym_single(gym_id)}))
            rows.append((env_id, f"Gymnasium {gym_id}, SyncVectorEnv", {64: bench_gym_sync_vector(gym_id)}))

    table = render_table(rows, notes)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(table)
    print(table)
    return table


if __name__ == "__main__":
    main()
