"""MuJoCo on device against MuJoCo on the host: PPO's training env steps/s on Brax's ``inverted_pendulum``
through ``envs.brax_bridge`` (the whole loop one compiled program) beside Gymnasium's ``InvertedPendulum-v5``
through the host loop (``rlkit.host_loop``: the env stepped by MuJoCo's C library in this process, the agent
jitted), with the same PPO config and env counts.

    .venv/bin/python -m experiments.benchmarks.mujoco_bridge [--quick]        (make bench-mujoco-bridge)

The two are the same task, not the same simulation: Brax's model is its own MJCF of the cart-pole (4
observations, 1 action in [−1, 1], reward 1 per step upright, termination past 0.2 rad) stepped by MJX; Gymnasium's
is MuJoCo's, with actions in [−3, 3]. Both episodes end at 1000 steps. Needs the ``brax`` and ``mujoco`` extras.
Each row runs in its own subprocess; steps/s over the chunks after the first (compilation excluded). Writes
``results/mujoco_bridge.md``. On a GPU the on-device rows scale with the env count; on this CPU both sides share
two cores.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from experiments.benchmarks.machine import cpu_model

RESULTS = Path(__file__).parent / "results"
ROOT = Path(__file__).resolve().parents[2]


def worker(job: dict) -> dict:
    import envs
    from agents import ppo
    from experiments.benchmarks.peers import _chunk_timer, _steady
    from rlkit.sweeps import make_runs

    config = ppo.continuous_config(hidden_sizes=(64, 64), num_envs=job["num_envs"], num_steps=64, num_minibatches=4,
                                   update_epochs=4, iterations_per_chunk=job["iterations"], anneal_steps=job["steps"])  # fmt: skip
    runs = make_runs(config, seeds=1)
    marks, on_chunk = _chunk_timer()
    if job["side"] == "device":
        from rlkit.training import train

        trainer = ppo.make_trainer(config, envs.make("brax:inverted_pendulum"))
        result = train(trainer, runs, total_steps=job["steps"], console=False, on_chunk=on_chunk)
    else:
        from rlkit.host_loop import train_host

        result = train_host(ppo.make_ppo, runs, lambda n: envs.make("gymnasium:InvertedPendulum-v5", num_envs=n),
                            total_steps=job["steps"], console=False, on_chunk=on_chunk)  # fmt: skip
    per_chunk = config.num_envs * config.num_steps * config.iterations_per_chunk
    rate, compile_s = _steady(marks, per_chunk)
    return {"steps_per_s": rate, "compile_s": compile_s, "steps": result.steps}


def plan(quick: bool) -> list[dict]:
    jobs = []
    for n in (1, 16, 64):
        iterations = max(1, 2048 // (n * 64)) * (1 if quick else 4)
        chunks = 3 if quick else 5
        for side in ("device", "host"):
            if side == "host" and n > 16:
                continue  # 64 MuJoCo envs stepped one after another: the 16-env row already says it
            jobs.append(
                {"side": side, "num_envs": n, "iterations": iterations, "steps": chunks * iterations * n * 64}
            )
    return jobs


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print("RESULT " + json.dumps(worker(json.loads(args.worker))), flush=True)
        return ""
    import jax

    started, rows = time.perf_counter(), []
    for job in plan(args.quick):
        out = subprocess.run([sys.executable, "-m", "experiments.benchmarks.mujoco_bridge", "--worker", json.dumps(job)],
                             cwd=ROOT, capture_output=True, text=True, timeout=3600)  # fmt: skip
        lines = [ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")]
        result = (
            json.loads(lines[-1][7:]) if lines else {"error": (out.stderr.strip().splitlines() or ["?"])[-1]}
        )
        rows.append(job | result)
        print(f"[mujoco-bridge] {job['side']:6s} {job['num_envs']:3d} envs: "
              f"{result.get('error') or format(result['steps_per_s'], ',.0f') + ' steps/s'}", flush=True)  # fmt: skip
    device = jax.devices()[0]
    lines = [
        "# MuJoCo on device (Brax through envs.brax_bridge) vs on the host (Gymnasium through the host loop)",
        "",
        f"`python -m experiments.benchmarks.mujoco_bridge{' --quick' if args.quick else ''}` · "
        f"{datetime.datetime.now(datetime.UTC).isoformat(timespec='seconds')} · {device.platform}, {cpu_model()}, "
        f"{os.cpu_count()} CPU cores · JAX {jax.__version__}, Python {platform.python_version()} · "
        f"{time.perf_counter() - started:.0f} s",
        "",
        "PPO training (64×64, 64 steps per env per iteration, 4 epochs × 4 minibatches), env steps / s after "
        "compilation",
        "",
        "| envs | brax:inverted_pendulum on device | compile s | gymnasium:InvertedPendulum-v5, host loop | "
        "compile s | device / host |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    from experiments.benchmarks.peers import _fmt

    for n in sorted({r["num_envs"] for r in rows}):
        d = next((r for r in rows if r["num_envs"] == n and r["side"] == "device"), {})
        h = next((r for r in rows if r["num_envs"] == n and r["side"] == "host"), {})
        cells = []
        for r in (d, h):
            cells += (
                ["not run", ""]
                if not r
                else [r.get("error", _fmt(r.get("steps_per_s"))), _fmt(r.get("compile_s"), 1)]
            )
        ratio = (
            f"{d['steps_per_s'] / h['steps_per_s']:.1f}×"
            if d.get("steps_per_s") and h.get("steps_per_s")
            else ""
        )
        lines.append(f"| {n} | " + " | ".join(cells) + f" | {ratio} |")
    text = "\n".join(lines + [""])
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"mujoco_bridge{'_quick' if args.quick else ''}.md").write_text(text)
    print(text)
    return text


if __name__ == "__main__":
    main()
