"""Throughput on an accelerator, one script: PPO and SAC env steps/s at 1 / 64 / 4096 parallel envs and a
64-run sweep, rlkit beside rejax in the same run.

    .venv/bin/python -m experiments.benchmarks.accelerator              # sizes for this backend (GPU / CPU)
    .venv/bin/python -m experiments.benchmarks.accelerator --size smoke --no-peers   # seconds: CI keeps it working

Tasks: PPO on CartPole (PureJaxRL's / CleanRL's settings, ``peers.PPO_SETTINGS``: 64×64 tanh, 4 epochs × 4
minibatches, lr 2.5e-4; ``num_steps`` 128 per env, 32 at 4096 envs so an iteration stays 131k steps) and SAC on
Pendulum (``peers.SAC_SETTINGS``: 256×256, batch 256; one gradient step per *vector* step, so at 4096 envs the
rate measures acting and storing more than learning — the table says UTD). The sweep row is 64 runs vmapped into
one program (rlkit: the runs axis; rejax: ``jax.vmap`` of its jitted ``train`` over 64 keys), 1 env each for SAC
and 16 for PPO. Every measurement is its own subprocess (``experiments.benchmarks.peers.run_job``): rlkit's
steps/s over the chunks after the first (compile excluded; SAC's first chunk also holds the random warm-up, so
its compile time is under-counted), rejax's over a second, compiled call of ``train``.

Sizes: ``gpu`` (the default when JAX sees a GPU) the full grid above; ``cpu`` (the default otherwise) 1 / 16 /
64 envs and 8 runs with shorter budgets, because 4096 envs × 256×256 SAC updates take minutes per chunk on two
cores; ``smoke`` 4 envs and 2 runs at a few thousand steps, rlkit only with ``--no-peers`` (the test suite
runs it). rejax runs in its own virtual environment (``.bench-venvs/rejax``, built on first use by ``peers.py``);
PureJaxRL is a set of scripts, not a package, and rejax is its maintained packaging of the same PPO, so it
stands for both. Writes ``results/accelerator_<size>.md`` and prints it.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import time
from pathlib import Path

from experiments.benchmarks import peers
from experiments.benchmarks.machine import cpu_model

RESULTS = Path(__file__).parent / "results"

#: size -> (PPO env counts, SAC env counts, sweep runs, PPO steps per row, SAC steps per row)
SIZES = {
    "gpu": ((1, 64, 4096), (1, 64, 4096), 64, 5_242_880, 200_000),
    "cpu": ((1, 16, 64), (1, 16, 64), 8, 262_144, 12_000),
    "smoke": ((4,), (4,), 2, 8_192, 1_500),
}


def _ppo(num_envs: int, runs: int, steps: int, lib: str) -> dict:
    settings = dict(peers.PPO_SETTINGS, num_envs=num_envs, num_steps=32 if num_envs >= 4096 else 128)
    per_iteration = settings["num_envs"] * settings["num_steps"]
    iterations = max(3, steps // per_iteration)
    chunk = max(1, iterations // 4)  # rlkit: ≥ 4 chunks, the first one compiles
    label = f"PPO, {num_envs} env{'s' if num_envs > 1 else ''}" + (
        f", {runs} runs vmapped" if runs > 1 else ""
    )
    return dict(lib=lib, task="ppo", steps=(iterations // chunk) * chunk * per_iteration, seed=0, defaults=False,
                settings=settings, runs=runs, iterations_per_chunk=chunk, evaluate=False, label=label)  # fmt: skip


def _sac(num_envs: int, runs: int, steps: int, lib: str, learning_starts: int) -> dict:
    buffer = (
        peers.SAC_SETTINGS["buffer_size"] // num_envs * num_envs
    )  # each env owns an equal share of the ring
    settings = dict(
        peers.SAC_SETTINGS, num_envs=num_envs, learning_starts=learning_starts, buffer_size=buffer
    )
    vector_steps = max(8, steps // num_envs)
    chunk = max(2, vector_steps // 4)
    label = f"SAC, {num_envs} env{'s' if num_envs > 1 else ''}" + (
        f", {runs} runs vmapped" if runs > 1 else ""
    )
    label += f" (UTD 1/{num_envs})" if num_envs > 1 else ""
    return dict(lib=lib, task="sac", steps=(vector_steps // chunk) * chunk * num_envs, seed=0, defaults=False,
                settings=settings, runs=runs, chunk_steps=chunk, evaluate=False, label=label)  # fmt: skip


def plan(size: str, with_peers: bool) -> list[dict]:
    ppo_envs, sac_envs, sweep_runs, ppo_steps, sac_steps = SIZES[size]
    libs = ["rlkit", "rejax"] if with_peers else ["rlkit"]
    starts = 200 if size == "smoke" else 1000
    jobs = []
    for lib in libs:  # the libraries take turns row by row, so load on the machine falls on both
        for n in ppo_envs:
            jobs.append((n, lib, _ppo(n, 1, ppo_steps, lib)))
    jobs.sort(key=lambda t: t[0])
    rows = [j for _, _, j in jobs]
    sac_rows = sorted(((n, lib, _sac(n, 1, sac_steps, lib, starts)) for lib in libs for n in sac_envs),
                      key=lambda t: t[0])  # fmt: skip
    rows += [j for _, _, j in sac_rows]
    for lib in libs:
        rows.append(_ppo(16, sweep_runs, ppo_steps, lib))
        rows.append(_sac(1, sweep_runs, sac_steps // 4, lib, starts))
    return rows


def render(results: list[dict], size: str, seconds: float) -> str:
    import jax

    device = jax.devices()[0]
    lines = [
        "# Accelerator throughput: rlkit beside rejax",
        "",
        f"`python -m experiments.benchmarks.accelerator --size {size}` · "
        f"{datetime.datetime.now(datetime.UTC).isoformat(timespec='seconds')} · {device.platform} "
        f"({getattr(device, 'device_kind', '')}), {cpu_model()}, {os.cpu_count()} CPU cores · "
        f"JAX {jax.__version__}, Python {platform.python_version()} · {seconds:.0f} s",
        "",
        "env steps / s after compilation (all runs of a row together); compile s where measured",
        "",
        "| row | rlkit steps/s | rlkit compile s | rejax steps/s | rejax compile s | rlkit / rejax |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    by_label: dict[str, dict] = {}
    for r in results:
        by_label.setdefault(r["label"], {})[r["lib"]] = r
    for label, libs in by_label.items():
        cells = []
        for lib in ("rlkit", "rejax"):
            r = libs.get(lib)
            if r is None:
                cells += ["not run", ""]
            elif "error" in r or "skipped" in r:
                cells += [f"failed: {(r.get('error') or r.get('skipped'))[:80]}", ""]
            else:
                cells += [peers._fmt(r["steps_per_s"]), peers._fmt(r.get("compile_s"), 1)]
        a, b = libs.get("rlkit", {}).get("steps_per_s"), libs.get("rejax", {}).get("steps_per_s")
        ratio = f"{a / b:.2f}×" if a and b else ""
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {ratio} |")
    return "\n".join(lines + [""])


def main(argv: list[str] | None = None) -> str:
    import jax

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--size", choices=tuple(SIZES), default=None, help="default: gpu with a GPU, else cpu"
    )
    parser.add_argument("--no-peers", action="store_true", help="rlkit only (no rejax venv)")
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)
    size = args.size or ("gpu" if jax.default_backend() == "gpu" else "cpu")
    started = time.perf_counter()
    results = []
    for job in plan(size, with_peers=not args.no_peers):
        r = peers.run_job(job, timeout=3600)
        results.append(r)
        shown = r.get("error") or r.get("skipped") or f"{r['steps_per_s']:,.0f} steps/s"
        print(f"[accelerator] {r['lib']:5s} {r['label']:<40} {shown} ({r['wall_s']:.0f} s)", flush=True)
    text = render(results, size, time.perf_counter() - started)
    output = args.output or RESULTS / f"accelerator_{size}.md"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text)
    print(text)
    return text


if __name__ == "__main__":
    sys.exit(main() and 0)
