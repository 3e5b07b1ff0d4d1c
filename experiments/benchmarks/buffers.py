"""Replay-buffer benchmark: rlkit's ring buffer against flashbax (the de-facto JAX replay library), same run.

    .venv/bin/python -m experiments.benchmarks.buffers [--repeats 200]

Workload (as in Ant): 1M-item capacity, 27-dim float32 observations, 8-dim actions, a scalar reward,
``terminated`` / ``truncated`` and ``next_obs`` — 254 bytes of raw data an item. We time, under ``jit`` with
the state donated, after warm-up, the median of ``--repeats`` calls each ended by ``block_until_ready``:
``add`` of one step from 1 and from 64 envs, and uniform ``sample`` of 256 items. Memory: the bytes of the
buffer state on the device against the raw data bytes, and each worker process's peak RSS.

Each library runs in its own worker process (so RSS is its own); flashbax runs from a separate virtual
environment that this script creates under ``.bench-venvs/flashbax`` (git-ignored) and that reuses our JAX
through a ``.pth`` link, so both sides run the same JAX. The table goes to
``experiments/benchmarks/results/buffers.md``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BENCH_VENV = ROOT / ".bench-venvs" / "flashbax"
RESULTS = ROOT / "experiments" / "benchmarks" / "results" / "buffers.md"
CAPACITY, OBS, ACT, BATCH = 1_000_000, 27, 8, 256
RAW_ITEM_BYTES = 4 * OBS * 2 + 4 * ACT + 4 + 1 + 1


# ---- workers (run in their own processes) -----------------------------------------------------------------


def _example(np):
    return {
        "obs": np.zeros(OBS, np.float32),
        "action": np.zeros(ACT, np.float32),
        "reward": np.float32(0),
        "terminated": np.bool_(False),
        "truncated": np.bool_(False),
        "next_obs": np.zeros(OBS, np.float32),
    }


def _median_time(fn, repeats):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    times.sort()
    return times[len(times) // 2]


def _make(lib: str, ex, num_envs: int):
    """(state, jitted add with donation, sample(state, key) -> batch) for one library."""
    import jax

    if lib == "rlkit":
        from rlkit.buffers import make_replay_buffer

        buf = make_replay_buffer(ex, CAPACITY, num_envs)
        sample = jax.jit(buf.sample, static_argnums=2)
        return buf.init(), jax.jit(buf.add, donate_argnums=0), lambda state, key: sample(state, key, BATCH)
    import flashbax as fbx

    buf = fbx.make_item_buffer(max_length=CAPACITY, min_length=1, sample_batch_size=BATCH, add_batches=True)
    sample = jax.jit(buf.sample)
    return buf.init(ex), jax.jit(buf.add, donate_argnums=0), lambda state, key: sample(state, key).experience


def _time_lib(lib: str, num_envs: int, repeats: int, out: dict) -> None:
    import jax
    import jax.numpy as jnp
    import numpy as np

    ex = _example(np)
    rng = np.random.default_rng(0)
    data = [
        jax.tree.map(
            lambda x: jnp.asarray(rng.standard_normal((num_envs, *np.shape(x))).astype(np.asarray(x).dtype)),
            ex,
        )
        for _ in range(8)
    ]
    state, add, sample = _make(lib, ex, num_envs)
    holder = {"state": state, "i": 0}
    del state

    def one_add():
        holder["state"] = add(holder["state"], data[holder["i"] % 8])
        holder["i"] += 1
        jax.block_until_ready(holder["state"])

    for _ in range(10):
        one_add()
    out[f"add_{num_envs}_us"] = 1e6 * _median_time(one_add, repeats)
    if num_envs == 64:
        keys = jax.random.split(jax.random.key(0), 16)

        def one_sample():
            jax.block_until_ready(sample(holder["state"], keys[holder["i"] % 16]))
            holder["i"] += 1

        for _ in range(10):
            one_sample()
        out["sample_us"] = 1e6 * _median_time(one_sample, repeats)
        out["state_bytes"] = int(
            sum(x.nbytes for x in jax.tree.leaves(holder["state"]) if hasattr(x, "nbytes"))
        )


def _worker(lib: str, repeats: int) -> dict:
    import jax

    out = {"jax": jax.__version__, "device": str(jax.devices()[0].device_kind)}
    for num_envs in (1, 64):
        _time_lib(lib, num_envs, repeats, out)
    out["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    if lib == "flashbax":
        import importlib.metadata

        out["flashbax"] = importlib.metadata.version("flashbax")
    return out


# ---- driver -------------------------------------------------------------------------------------------------


def _ensure_flashbax_venv() -> Path:
    """Creates ``.bench-venvs/flashbax`` once: a venv that sees our site-packages (same JAX) plus flashbax."""
    py = BENCH_VENV / "bin" / "python"
    if py.exists() and subprocess.run([py, "-c", "import flashbax"], capture_output=True).returncode == 0:
        return py
    subprocess.run([sys.executable, "-m", "venv", BENCH_VENV], check=True)
    site = subprocess.run(
        [py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    Path(site, "rlkit_shared_site.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    # --no-deps: flashbax's dependencies (jax, chex, flax, numpy) come from our environment through the .pth.
    subprocess.run([py, "-m", "pip", "install", "--quiet", "--no-deps", "flashbax"], check=True)
    return py


def _run_worker(python: Path | str, lib: str, repeats: int) -> dict:
    res = subprocess.run(
        [python, "-m", "experiments.benchmarks.buffers", "--worker", lib, "--repeats", str(repeats)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    if res.returncode:
        raise RuntimeError(f"{lib} worker failed:\n{res.stderr[-4000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def _median_rounds(rounds: list[dict]) -> dict:
    out = dict(rounds[0])
    for key, value in out.items():
        if isinstance(value, (int, float)):
            out[key] = sorted(r[key] for r in rounds)[len(rounds) // 2]
    return out


def _table(r: dict, f: dict | None, repeats: int, rounds: int) -> str:
    raw = CAPACITY * RAW_ITEM_BYTES
    mib = 2**20

    def row(name, key, fmt, better="lower"):
        a = r[key]
        b = f[key] if f else None
        ratio = f"{b / a:.2f}×" if b else "—"
        return f"| {name} | {fmt(a)} | {fmt(b) if b is not None else 'n/a'} | {ratio} |"

    us = lambda v: f"{v:.1f} µs"  # noqa: E731
    mb = lambda v: f"{v / mib:.1f} MiB ({v / raw:.3f}× raw)"  # noqa: E731
    lines = [
        "# Replay buffer benchmark",
        "",
        f"{datetime.date.today().isoformat()} · {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores · "
        f"device {r['device']} · JAX {r['jax']} · flashbax {f['flashbax'] if f else 'unavailable'} · "
        f"median of {repeats} calls after warm-up (median over {rounds} alternating rounds), jit + donation",
        "",
        f"1M items; item = obs 27 f32, action 8 f32, reward f32, terminated, truncated, next_obs 27 f32 "
        f"= {RAW_ITEM_BYTES} B raw ({raw / mib:.1f} MiB for 1M). flashbax: `make_item_buffer`. "
        "Speed-up = flashbax time / rlkit time (>1: rlkit faster).",
        "",
        "| operation | rlkit | flashbax | speed-up / ratio |",
        "|---|---|---|---|",
        row("add, 1 env (1 item)", "add_1_us", us),
        row("add, 64 envs (64 items)", "add_64_us", us),
        row("sample 256", "sample_us", us),
        row("state on device", "state_bytes", mb),
        row("worker peak RSS", "peak_rss_bytes", lambda v: f"{v / mib:.0f} MiB"),
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--worker", choices=["rlkit", "flashbax"])
    p.add_argument("--repeats", type=int, default=200)
    p.add_argument(
        "--rounds", type=int, default=3, help="alternate the two workers this many times (load drifts)"
    )
    args = p.parse_args()
    if args.worker:
        print(json.dumps(_worker(args.worker, args.repeats)))
        return
    try:
        fbx_python = _ensure_flashbax_venv()
    except subprocess.CalledProcessError as e:
        print(f"flashbax unavailable: {e}", file=sys.stderr)
        fbx_python = None
    # Alternate the workers and keep each number's median over rounds: on a shared machine the load drifts
    # within minutes, and running one library entirely before the other would bill the drift to one side.
    rs, fs = [], []
    for _ in range(args.rounds):
        rs.append(_run_worker(sys.executable, "rlkit", args.repeats))
        if fbx_python is not None:
            fs.append(_run_worker(fbx_python, "flashbax", args.repeats))
    r = _median_rounds(rs)
    f = _median_rounds(fs) if fs else None
    table = _table(r, f, args.repeats, args.rounds)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(table)
    print(table)


if __name__ == "__main__":
    main()
