"""Run logs: TensorBoard event files, one JSON-lines file per run, and a console progress line.

One ``RunLogger`` serves a whole program, including a vmapped ``runs`` axis: a metric given as an array with a
leading axis of size ``num_runs`` is split so that every run gets its own TensorBoard directory and JSON-lines
file (``<log_dir>/<run_name>/``), which is what aggregation across seeds reads back. Scalars (shared by all runs,
e.g. steps/s) go to every run.

TensorBoard files are written with ``tensorboard.summary.Writer`` (no TensorFlow needed); read them back with
``read_tensorboard_scalars``. A resumed run continues a killed one whose last rows came after its last checkpoint:
``truncate_jsonl`` / ``truncate_tensorboard`` drop every row or event past a step so that each step is logged once.
Both write the kept part to a temporary file and ``os.replace`` it over the old one, so a crash in the middle leaves
either the old file or the new one, never a half of either; a record cut short by the kill is dropped with them.
TensorBoard itself stops reading an event file at its first unreadable record, so nothing it could show is lost.

The console line is written by hand (a dozen lines) rather than adding a
progress-bar dependency: it must also work when stdout is not a terminal (CI logs), where it prints plain lines.

Deliberately not here: Weights & Biases or other hosted trackers (no network here); images and videos (later);
deciding *when* logs are truncated (``rlkit.training.RunRecorder`` does, on resume).
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


def _after_existing_event_files(run_dir: Path) -> None:
    """Wait (at most a second) until a new event file's name sorts after the run's existing ones.

    TensorBoard reads a directory's event files in name order, and the name starts with the creation second and
    ends with a per-process counter ("...tfevents.<second>.<host>.<pid>.<n>"): a run resumed in the second it was
    killed in could get a name that sorts first (``.10`` before ``.9``), and its steps would be read before the
    earlier ones (out of order: TensorBoard may purge them as orphaned)."""
    seconds = [
        int(p.name.split(".")[3])
        for p in run_dir.glob("events.out.tfevents.*")
        if p.name.split(".")[3].isdigit()
    ]
    if seconds:
        wait = max(seconds) + 1 - time.time()
        if 0 < wait <= 1:  # a later clock cannot be waited for: the files then stay in their own order
            time.sleep(wait)


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
            _after_existing_event_files(run_dir)
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


def _replace_atomically(path: Path, write) -> None:
    """``write(file)`` into a temporary sibling, then ``os.replace`` it over ``path`` (a crash leaves one of them).
    The temporary name has no ``tfevents`` in it, so TensorBoard never reads a half-written copy."""
    tmp = path.with_name(f".{path.name.replace('tfevents', 'tb')}.rewrite.tmp")
    with open(tmp, "wb") as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def truncate_jsonl(path: str | os.PathLike, max_step: int) -> int:
    """Keep the rows of a JSON-lines log with ``step <= max_step`` (and a last line cut short by a kill goes);
    returns how many rows were dropped. Atomic: see the module docstring."""
    path = Path(path)
    if not path.exists():
        return 0
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    kept = []
    for i, line in enumerate(lines):
        try:
            step = json.loads(line)["step"]
        except (ValueError, KeyError, TypeError):
            if i == len(lines) - 1:  # the kill cut the last write short
                continue
            kept.append(line)  # not ours to judge: kept as it is
            continue
        if step <= max_step:
            kept.append(line)
    text = "".join(line + "\n" for line in kept)
    if text != path.read_text():
        _replace_atomically(path, lambda f: f.write(text.encode()))
    return len(lines) - len(kept)


def truncate_tensorboard(run_dir: str | os.PathLike, max_step: int) -> int:
    """Rewrite every TensorBoard event file of ``run_dir`` keeping only the events with ``step <= max_step``
    (including the file-version header, step 0), byte for byte; returns how many events were dropped."""
    from tensorboard.backend.event_processing.event_file_loader import RawEventFileLoader
    from tensorboard.compat.proto import event_pb2
    from tensorboard.summary.writer.record_writer import RecordWriter

    dropped = 0
    for path in sorted(Path(run_dir).glob("*tfevents*")):
        if not path.is_file():
            continue
        records = list(RawEventFileLoader(str(path)).Load())
        kept = [r for r in records if event_pb2.Event.FromString(r).step <= max_step]
        if len(kept) == len(records) and sum(len(r) + 16 for r in kept) == path.stat().st_size:
            continue  # nothing past max_step, nothing cut short

        def write(f, kept=kept):
            writer = RecordWriter(f)
            for r in kept:
                writer.write(r)

        _replace_atomically(path, write)
        dropped += len(records) - len(kept)
    return dropped


def holds_logs(run_dir: str | os.PathLike) -> bool:
    """Whether ``run_dir`` holds a run's logs (a JSON-lines file or a TensorBoard event file)."""
    run_dir = Path(run_dir)
    return (run_dir / "metrics.jsonl").exists() or any(run_dir.glob("*tfevents*"))
