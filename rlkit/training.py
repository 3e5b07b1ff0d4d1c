"""The one host-side training driver: a Python loop over compiled chunks, for every learner.

A learner family provides a ``Trainer`` — ``init(config, key) -> state`` and ``run_chunk(config, state) ->
(state, metrics)`` for *one* run, both pure — and ``train`` does the rest, identically for all of them:

- vmaps them over the ``runs`` axis (seeds × swept values from ``rlkit.sweeps``) and places that axis on the
  devices (``rlkit.devices``), ``jit``-compiles the chunk once with the state donated (no recompilation after the
  first chunk: the state's shapes never change);
- between chunks, and only there: host transfer of the chunk's metrics, a clear error if any run produced
  non-finite values, TensorBoard + JSON-lines logs per run, the progress line, evaluation, and orbax checkpoints
  every ``checkpoint_every`` chunks (keeping the last ``keep``);
- ``resume=True`` restores the latest complete checkpoint (full state: agent, optimizers, targets, buffers, env
  states, RNG keys, counters, normalizers) and continues, so a resumed run equals an uninterrupted one bit for bit;
  JSON-lines rows written after that checkpoint by the interrupted process are dropped so the logs stay exact.

Deliberately not here: what happens inside a chunk (``rlkit.off_policy``, ``rlkit.on_policy``, the host loop for
Gymnasium envs in ``rlkit.host_loop``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jax
import numpy as np

from rlkit.checkpointing import Checkpointer
from rlkit.configs import ConfigError
from rlkit.devices import RunsPlacement
from rlkit.logger import RunLogger
from rlkit.sweeps import Runs


@dataclass(frozen=True)
class Trainer:
    name: str
    init: Callable[[Any, jax.Array], Any]
    run_chunk: Callable[[Any, Any], tuple[Any, dict[str, jax.Array]]]
    steps_per_chunk: int  # env steps per run in one chunk
    #: optional ``(config, state, key) -> metrics`` run every ``eval_every`` chunks (e.g. deterministic returns)
    evaluate: Callable[[Any, Any, jax.Array], dict[str, jax.Array]] | None = None
    #: metric shown on the progress line
    headline: str = "episode_return"


@dataclass
class TrainResult:
    state: Any
    metrics: dict[str, np.ndarray]  # last chunk's metrics, [runs]
    history: list[dict[str, np.ndarray]] = field(default_factory=list)
    steps: int = 0
    compiles: int = 0  # compilations of the chunk function (1 = never recompiled)


def check_finite(name: str, chunk: int, metrics: dict[str, np.ndarray], run_names: list[str]) -> None:
    """Stop with a clear error when a run produced non-finite observations or losses in a chunk.

    ``nonfinite_*`` metrics are counts from inside the chunk; ``loss*`` metrics must be finite wherever the
    chunk learned (a chunk may report ``learning_steps = 0``, e.g. before ``learning_starts``, with NaN losses)."""
    learned = np.atleast_1d(metrics.get("learning_steps", np.ones(len(run_names)))) > 0
    bad = {}
    for key, value in metrics.items():
        value = np.broadcast_to(np.atleast_1d(value), learned.shape)
        if key.startswith("nonfinite"):
            rows = value > 0
        elif key.startswith("loss"):
            rows = learned & ~np.isfinite(value)
        else:
            continue
        if rows.any():
            bad[key] = [run_names[i] for i in np.flatnonzero(rows)]
    if bad:
        details = "; ".join(f"{k} in {v}" for k, v in sorted(bad.items()))
        raise FloatingPointError(f"{name}: non-finite values in chunk {chunk}: {details}")


def _truncate_jsonl(path: Path, max_step: int) -> None:
    if not path.exists():
        return
    rows = [line for line in path.read_text().splitlines() if line.strip()]
    kept = [r for r in rows if json.loads(r)["step"] <= max_step]
    path.write_text("".join(r + "\n" for r in kept))


class RunRecorder:
    """Everything a training loop does between chunks, shared by ``train`` and ``rlkit.host_loop``: the run
    directory (refusing to overwrite one that holds checkpoints unless resuming), resume, logs, progress,
    checkpoints. ``log_dir=None`` records nothing."""

    def __init__(
        self,
        log_dir,
        run_names: list[str],
        record: dict,
        *,
        steps_per_chunk: int,
        num_chunks: int,
        resume: bool,
        keep: int,
        checkpoint_every: int,
        console: bool,
        headline: str,
    ):
        self.steps_per_chunk, self.num_chunks = steps_per_chunk, num_chunks
        self.checkpoint_every, self.headline, self.record = checkpoint_every, headline, record
        self.run_names = run_names
        self.logger = self.checkpointer = None
        self.resume = resume
        self.log_dir = None if log_dir is None else Path(log_dir)
        if self.log_dir is None:
            return
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.checkpointer = Checkpointer(self.log_dir / "checkpoints", max_to_keep=keep)
        if not resume and self.checkpointer.latest_step() is not None:
            latest = self.checkpointer.latest_step()
            self.checkpointer.close()
            raise FileExistsError(
                f"{self.log_dir} already holds checkpoints (latest step {latest}); pass resume=True "
                "(--resume) to continue that run, or choose another log_dir — nothing is overwritten"
            )
        (self.log_dir / "config.json").write_text(json.dumps(record, indent=2, default=str))
        self.logger = RunLogger(
            self.log_dir, run_names, total_steps=num_chunks * steps_per_chunk, console=console
        )

    def restore(self, target):
        """``(state, first_chunk)``: the latest complete checkpoint when resuming, else ``(target, 1)``."""
        if self.checkpointer is None or not self.resume or self.checkpointer.latest_step() is None:
            return target, 1
        saved = self.checkpointer.saved_config()  # checked before the state, whose shapes depend on it
        if saved is not None and saved.get("runs") != self.record.get("runs"):
            raise ConfigError(
                f"cannot resume {self.log_dir}: it holds runs {saved.get('runs')}, not {self.record.get('runs')} "
                "(resume with the same command that started the run, plus --resume)"
            )
        state, _ = self.checkpointer.restore(target)
        done = self.checkpointer.latest_step()
        for name in self.run_names:  # rows the killed process logged after its last checkpoint
            _truncate_jsonl(self.log_dir / name / "metrics.jsonl", done)
        return state, done // self.steps_per_chunk + 1

    def after_chunk(self, c: int, state, metrics: dict[str, np.ndarray]) -> None:
        step = c * self.steps_per_chunk
        if self.logger is not None:
            self.logger.log(step, metrics)
            self.logger.progress(
                step, {self.headline: metrics[self.headline]} if self.headline in metrics else {}
            )
        if self.checkpointer is not None and (c % self.checkpoint_every == 0 or c == self.num_chunks):
            self.checkpointer.save(step, state, self.record)

    def close(self) -> None:
        if self.logger is not None:
            self.logger.close()
        if self.checkpointer is not None:
            self.checkpointer.close()


def train(
    trainer: Trainer,
    runs: Runs,
    *,
    total_steps: int,
    log_dir: str | os.PathLike | None = None,
    checkpoint_every: int = 10,
    keep: int = 3,
    resume: bool = False,
    eval_every: int = 0,
    config_record: dict | None = None,
    console: bool = True,
    max_devices: int | None = None,
    on_chunk: Callable[[int, dict], None] | None = None,
) -> TrainResult:
    """Train every run of ``runs`` for ``total_steps`` env steps (rounded up to whole chunks).

    ``log_dir=None`` trains without logs or checkpoints (tests, notebooks). ``on_chunk(chunk_index, metrics)``
    is called after each chunk is logged (hooks for tests and custom stopping)."""
    if total_steps < 1:
        raise ValueError(f"total_steps must be >= 1, got {total_steps}")
    num_chunks = -(-total_steps // trainer.steps_per_chunk)
    placement = RunsPlacement.for_runs(len(runs), max_devices)
    config = placement.put(runs.config)
    init = jax.jit(placement.map(trainer.init))
    chunk = jax.jit(placement.map(trainer.run_chunk), donate_argnums=1)
    evaluate = jax.jit(placement.map(trainer.evaluate)) if trainer.evaluate and eval_every else None
    state = init(config, placement.put(runs.keys))

    record = {
        "trainer": trainer.name,
        "runs": runs.names,
        "total_steps": total_steps,
        **(config_record or {}),
    }
    recorder = RunRecorder(
        log_dir,
        runs.names,
        record,
        steps_per_chunk=trainer.steps_per_chunk,
        num_chunks=num_chunks,
        resume=resume,
        keep=keep,
        checkpoint_every=checkpoint_every,
        console=console,
        headline=trainer.headline,
    )
    try:
        state, first_chunk = recorder.restore(state)
    except BaseException:
        recorder.close()
        raise
    state = placement.put(state)

    history = []
    metrics: dict[str, np.ndarray] = {}
    eval_key = jax.random.key(2**31 - 1)
    try:
        for c in range(first_chunk, num_chunks + 1):
            state, out = chunk(config, state)
            metrics = {k: np.asarray(v) for k, v in jax.device_get(out).items()}
            if evaluate is not None and (c % eval_every == 0 or c == num_chunks):  # always a final one
                keys = placement.put(jax.random.split(jax.random.fold_in(eval_key, c), len(runs)))
                metrics.update(
                    {k: np.asarray(v) for k, v in jax.device_get(evaluate(config, state, keys)).items()}
                )
            check_finite(trainer.name, c, metrics, runs.names)
            history.append(metrics)
            recorder.after_chunk(c, state, metrics)
            if on_chunk is not None:
                on_chunk(c, metrics)
    finally:
        recorder.close()
    return TrainResult(state, metrics, history, num_chunks * trainer.steps_per_chunk, chunk._cache_size())
