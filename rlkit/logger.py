"""Run logs: TensorBoard event files, one JSON-lines file per run, and a console progress line.

One ``RunLogger`` serves a whole program, including a vmapped ``runs`` axis: a metric given as an array with a
leading axis of size ``num_runs`` is split so that every run gets its own TensorBoard directory and JSON-lines
file (``<log_dir>/<run_name>/``), which is what aggregation across seeds reads back. Scalars (shared by all runs,
e.g. steps/s) go to every run.

TensorBoard files are written with ``tensorboard.summary.Writer`` (no TensorFlow needed); read them back with
``read_tensorboard_scalars``. The console line is written by hand (a dozen lines) rather than adding a
progress-bar dependency: it must also work when stdout is not a terminal (CI logs), where it prints plain lines.

Deliberately not here: Weights & Biases or other hosted trackers (no network here); images and videos (later).
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from tensorboard.summary import Writer


def _to_host(value) -> np.ndarray:
    return np.asarray(value, dtype=np.float64)


class RunLogger:
    """Writes metrics for ``run_names`` under ``log_dir``.

    Args:
        log_dir: root directory; each run writes ``<log_dir>/<run>/events.*`` and ``<log_dir>/<run>/metrics.jsonl``.
        run_names: one name per run of the ``runs`` axis (default: a single run called ``"run_0"``).
        total_steps: env steps the program will take (per run), for the progress line's ETA.
        console: print a progress line (``\\r``-updated on a terminal, one line per call otherwise).
    """

    def __init__(
        self,
        log_dir: str | os.PathLike,
        run_names: Sequence[str] | None = None,
        *,
        total_steps: int | None = None,
        console: bool = True,
        stream=None,
    ):
        self.log_dir = Path(log_dir)
        self.run_names = list(run_names or ["run_0"])
        self.total_steps = total_steps
        self.console = console
        self.stream = stream or sys.stdout
        self._writers = {}
        self._jsonl = {}
        for name in self.run_names:
            run_dir = self.log_dir / name
            run_dir.mkdir(parents=True, exist_ok=True)
            self._writers[name] = Writer(str(run_dir))
            self._jsonl[name] = open(run_dir / "metrics.jsonl", "a", buffering=1)  # noqa: SIM115 (closed in close())
        self._start = time.perf_counter()
        self._last_step, self._last_time = 0, self._start

    @property
    def num_runs(self) -> int:
        return len(self.run_names)

    def log(self, step: int, metrics: Mapping[str, object]) -> dict[str, np.ndarray]:
        """Log ``metrics`` at env step ``step``. Values are scalars or arrays of shape ``[num_runs]``.

        Non-finite values are written as they are (NaN in JSON as ``null``), never dropped silently.
        Returns the per-run values as host arrays of shape ``[num_runs]``.
        """
        per_run = {}
        for key, value in metrics.items():
            arr = _to_host(value)
            if arr.ndim == 0:
                arr = np.full((self.num_runs,), float(arr))
            if arr.shape != (self.num_runs,):
                raise ValueError(
                    f"metric {key!r} has shape {arr.shape}; expected a scalar or one value per run ({self.num_runs},)"
                )
            per_run[key] = arr
        now = time.time()
        for i, name in enumerate(self.run_names):
            record = {"step": int(step), "wall_time": now}
            for key, arr in per_run.items():
                v = float(arr[i])
                self._writers[name].add_scalar(key, v, step=int(step))
                record[key] = v if math.isfinite(v) else None
            self._jsonl[name].write(json.dumps(record) + "\n")
        return per_run

    def progress(self, step: int, metrics: Mapping[str, np.ndarray] | None = None) -> str:
        """Print (and return) the progress line: steps, steps/s, ETA and the mean of a few metrics over runs."""
        now = time.perf_counter()
        rate = (step - self._last_step) / max(now - self._last_time, 1e-9)
        self._last_step, self._last_time = step, now
        parts = [f"step {step:>9,}"]
        if self.total_steps:
            parts[0] += f"/{self.total_steps:,}"
        parts.append(f"{rate:,.0f} steps/s")
        if self.total_steps and rate > 0:
            eta = max(self.total_steps - step, 0) / rate
            parts.append(f"ETA {int(eta // 60)}:{int(eta % 60):02d}")
        for key, arr in (metrics or {}).items():
            finite = np.asarray(arr)[np.isfinite(arr)]
            parts.append(f"{key} {finite.mean():.4g}" if finite.size else f"{key} n/a")
        line = " | ".join(parts)
        if self.console:
            if self.stream.isatty():
                self.stream.write("\r" + line.ljust(100))
            else:
                self.stream.write(line + "\n")
            self.stream.flush()
        return line

    def close(self) -> None:
        if self.console and self.stream.isatty():
            self.stream.write("\n")
        for w in self._writers.values():
            w.close()
        for f in self._jsonl.values():
            f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def read_tensorboard_scalars(run_dir: str | os.PathLike) -> dict[str, list[tuple[int, float]]]:
    """All scalars of one run directory as ``{tag: [(step, value), ...]}`` (reads TensorBoard's own format)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.util import tensor_util

    acc = EventAccumulator(str(run_dir), size_guidance={"tensors": 0, "scalars": 0})
    acc.Reload()
    out = {}
    for tag in acc.Tags()["tensors"]:
        out[tag] = [(e.step, float(tensor_util.make_ndarray(e.tensor_proto))) for e in acc.Tensors(tag)]
    for tag in acc.Tags()["scalars"]:
        out[tag] = [(e.step, e.value) for e in acc.Scalars(tag)]
    return out
