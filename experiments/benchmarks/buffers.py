"""Replay-buffer benchmark: rlkit's ring buffer against flashbax (the de-facto JAX replay library), same run.

    .venv/bin/python -m experiments.benchmarks.buffers [--repeats 200]

Workload (as in Ant): 1M-item capacity, 27-dim float32 observations, 8-dim actions, a scalar reward,
``terminated`` / ``truncated`` and ``next_obs`` — 254 bytes of raw data an item. We time, under ``jit`` with
the state donated, after warm-up, the median of ``--repeats`` calls each ended by ``block_until_ready``:
``add`` of one step from 1 and from 64 envs, and uniform ``sample`` of 256 items. Memory: the bytes of the
buffer state on the device against the raw data bytes, and each worker process's peak RSS. Then the sampling
schemes on a full buffer: prioritized replay (add, draw with importance weights, priority update) against
flashbax's prioritised item buffer, RR-C (rlkit only: flashbax has none), and a draw with 8 runs vmapped
(uniform, PER, RR-C), where a sampler's occasional costly step would be paid on every draw.

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


def _batches(num_envs: int) -> list:
    """8 steps of random items from ``num_envs`` envs, cycled through by the timed adds."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    rng = np.random.default_rng(0)
    return [
        jax.tree.map(
            lambda x: jnp.asarray(rng.standard_normal((num_envs, *np.shape(x))).astype(np.asarray(x).dtype)),
            _example(np),
        )
        for _ in range(8)
    ]


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
    import numpy as np

    ex = _example(np)
    data = _batches(num_envs)
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


VMAP_RUNS, VMAP_CAPACITY = 8, 102_400  # a multiple of the 64 envs
ALPHA, BETA = 0.6, 0.4


def _make_sampled(lib: str, ex, capacity: int, mode: str):
    """(state, add, draw(state, key) -> (state, batch, slots, weights), update(state, slots, prio) -> state | None)
    for one sampling mode, unjitted (the caller jits or vmaps). flashbax: its prioritised item buffer, IS weights
    computed from its probabilities as rlkit computes them (batch max), so both sides return the same things."""
    import jax.numpy as jnp

    if lib == "rlkit":
        from rlkit.buffers import make_replay_buffer

        buf = make_replay_buffer(ex, capacity, 64, sampling=mode)

        def draw(state, key):
            return buf.draw(state, key, BATCH, alpha=ALPHA, beta=BETA)

        def update(state, slots, prio):
            return buf.update_priorities(state, slots, prio, alpha=ALPHA)

        return buf.init(), buf.add, draw, update if mode in ("per", "rr-m") else None
    import flashbax as fbx

    if mode == "uniform":
        buf = fbx.make_item_buffer(
            max_length=capacity, min_length=1, sample_batch_size=BATCH, add_batches=True
        )

        def draw(state, key):
            return state, buf.sample(state, key).experience, None, None

        return buf.init(ex), buf.add, draw, None
    buf = fbx.make_prioritised_item_buffer(
        max_length=capacity, min_length=1, sample_batch_size=BATCH, add_batches=True, priority_exponent=ALPHA
    )

    def draw(state, key):
        out = buf.sample(state, key)
        n = jnp.maximum(jnp.where(state.is_full, capacity, state.current_index), 1)
        log_w = -BETA * jnp.log(n * out.probabilities)
        return state, out.experience, out.indices, jnp.exp(log_w - log_w.max())

    return buf.init(ex), buf.add, draw, buf.set_priorities


def _time_mode(lib: str, mode: str, data, keys, repeats: int, out: dict) -> None:
    """add (64 envs), draw 256 and (PER) a priority update of 256 on a full 1M buffer of one sampling mode."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    state, add, draw, update = _make_sampled(lib, _example(np), CAPACITY, mode)
    add, draw = jax.jit(add, donate_argnums=0), jax.jit(draw, donate_argnums=0)
    for i in range(CAPACITY // 64 + 1):  # fill it: a full ring, as in a long run
        state = add(state, data[i % 8])
    h = {"state": state, "i": 0, "slots": None}
    del state

    def one_add():
        h["state"] = add(h["state"], data[h["i"] % 8])
        h["i"] += 1
        jax.block_until_ready(h["state"])

    def one_draw():
        h["state"], batch, h["slots"], _ = draw(h["state"], keys[h["i"] % 16])
        h["i"] += 1
        jax.block_until_ready(batch)

    jobs = [("add_64", one_add), ("draw", one_draw)]
    if update is not None:
        update = jax.jit(update, donate_argnums=0)
        prio = jnp.asarray(np.random.default_rng(1).uniform(0.1, 2.0, BATCH).astype(np.float32))

        def one_update():
            h["state"] = update(h["state"], h["slots"], prio)
            jax.block_until_ready(h["state"])

        jobs.append(("update", one_update))
    for name, fn in jobs:
        for _ in range(10):
            fn()
        out[f"{mode}_{name}_us"] = 1e6 * _median_time(fn, repeats)


def _time_vmapped(lib: str, mode: str, data, keys, repeats: int, out: dict) -> None:
    """draw 256 with ``VMAP_RUNS`` runs vmapped over full buffers of ``VMAP_CAPACITY`` items each: under vmap a
    per-run branch runs both sides, so this is where a sampler's rare costly step would show."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    state, add, draw, _ = _make_sampled(lib, _example(np), VMAP_CAPACITY, mode)
    states = jax.tree.map(lambda x: jnp.broadcast_to(x, (VMAP_RUNS, *jnp.shape(x))).copy(), state)
    del state
    add = jax.jit(jax.vmap(add, in_axes=(0, None)), donate_argnums=0)
    for i in range(VMAP_CAPACITY // 64 + 1):
        states = add(states, data[i % 8])
    draw = jax.jit(jax.vmap(draw), donate_argnums=0)
    h = {"states": states, "i": 0}
    del states

    def one_draw():
        h["states"], batch, _, _ = draw(h["states"], jax.random.split(keys[h["i"] % 16], VMAP_RUNS))
        h["i"] += 1
        jax.block_until_ready(batch)

    for _ in range(10):
        one_draw()
    out[f"vmap_{mode}_draw_us"] = 1e6 * _median_time(one_draw, repeats)


def _time_sampling(lib: str, repeats: int, out: dict) -> None:
    import jax

    data = _batches(64)
    keys = jax.random.split(jax.random.key(0), 16)
    for mode in ("per", "rr") if lib == "rlkit" else ("per",):
        _time_mode(lib, mode, data, keys, repeats, out)
    for mode in ("uniform", "per", "rr") if lib == "rlkit" else ("uniform", "per"):
        _time_vmapped(lib, mode, data, keys, repeats, out)


def _worker(lib: str, repeats: int) -> dict:
    import jax

    out = {"jax": jax.__version__, "device": str(jax.devices()[0].device_kind)}
    for num_envs in (1, 64):
        _time_lib(lib, num_envs, repeats, out)
    out["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # the uniform buffers'
    _time_sampling(lib, repeats, out)
    out["peak_rss_all_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
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
        b = f.get(key) if f else None
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
        "Sampling schemes (full 1M buffer, adds of 64 items; flashbax: `make_prioritised_item_buffer`, α 0.6, its "
        "IS weights computed from the probabilities it returns; rlkit's draw returns them). flashbax has no "
        f"random reshuffling. vmapped rows: draw 256 in each of {VMAP_RUNS} runs at once, {VMAP_CAPACITY:,} "
        "items per run.",
        "",
        "| operation | rlkit | flashbax | speed-up / ratio |",
        "|---|---|---|---|",
        row("PER: add, 64 envs", "per_add_64_us", us),
        row("PER: draw 256 (+ IS weights)", "per_draw_us", us),
        row("PER: priority update, 256", "per_update_us", us),
        row("RR-C: add, 64 envs", "rr_add_64_us", us),
        row("RR-C: draw 256", "rr_draw_us", us),
        row(f"uniform: draw 256, {VMAP_RUNS} runs vmapped", "vmap_uniform_draw_us", us),
        row(f"PER: draw 256, {VMAP_RUNS} runs vmapped", "vmap_per_draw_us", us),
        row(f"RR-C: draw 256, {VMAP_RUNS} runs vmapped", "vmap_rr_draw_us", us),
        row("worker peak RSS, all of the above", "peak_rss_all_bytes", lambda v: f"{v / mib:.0f} MiB"),
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
