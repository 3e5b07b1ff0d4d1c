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


def _truncate_jsonl(path: Path, max_step: int) -> None:
    if not path.exists():
        return
    rows = [line for line in path.read_text().splitlines() if line.strip()]
    kept = [r for r in rows if json.loads(r)["step"] <= max_step]
    path.write_text("".join(r + "\n" for r in kept))


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

    logger = checkpointer = None
    start_chunk = 0
    if log_dir is not None:
        log_dir = Path(log_dir)
        log_dir.mkdir(parents=True, exist_ok=True)
        record = {
            "trainer": trainer.name,
            "runs": runs.names,
            "total_steps": total_steps,
            **(config_record or {}),
        }
        checkpointer = Checkpointer(log_dir / "checkpoints", max_to_keep=keep)
        if resume and checkpointer.latest_step() is not None:
            state, saved = checkpointer.restore(state)
            if saved is not None and saved.get("runs") != runs.names:
                raise ValueError(
                    f"cannot resume {log_dir}: it holds runs {saved.get('runs')}, not {runs.names}"
                )
            done_steps = checkpointer.latest_step()
            start_chunk = done_steps // trainer.steps_per_chunk
            for name in runs.names:
                _truncate_jsonl(log_dir / name / "metrics.jsonl", done_steps)
            state = placement.put(state)
        elif not resume and checkpointer.latest_step() is not None:
            raise FileExistsError(
                f"{log_dir} already holds checkpoints (latest step {checkpointer.latest_step()}); pass resume=True "
                "(--resume) to continue that run, or choose another log_dir — nothing is overwritten"
            )
        (log_dir / "config.json").write_text(json.dumps(record, indent=2, default=str))
        logger = RunLogger(
            log_dir, runs.names, total_steps=num_chunks * trainer.steps_per_chunk, console=console
        )

    history = []
    metrics: dict[str, np.ndarray] = {}
    eval_key = jax.random.key(2**31 - 1)
    try:
        for c in range(start_chunk + 1, num_chunks + 1):
            state, out = chunk(config, state)
            metrics = {k: np.asarray(v) for k, v in jax.device_get(out).items()}
            if evaluate is not None and c % eval_every == 0:
                keys = placement.put(jax.random.split(jax.random.fold_in(eval_key, c), len(runs)))
                metrics.update(
                    {k: np.asarray(v) for k, v in jax.device_get(evaluate(config, state, keys)).items()}
                )
            bad = {k for k, v in metrics.items() if k.startswith("nonfinite") and np.any(v > 0)}
            bad |= {k for k, v in metrics.items() if k.startswith("loss") and not np.all(np.isfinite(v))}
            if bad:
                raise FloatingPointError(
                    f"{trainer.name}: non-finite values in chunk {c} ({', '.join(sorted(bad))}) in runs "
                    f"{[runs.names[i] for i in np.flatnonzero(np.any([np.atleast_1d(metrics[k]) for k in bad], 0))]}"
                )
            step = c * trainer.steps_per_chunk
            history.append(metrics)
            if logger is not None:
                logger.log(step, metrics)
                shown = {trainer.headline: metrics[trainer.headline]} if trainer.headline in metrics else {}
                logger.progress(step, shown)
            if checkpointer is not None and (c % checkpoint_every == 0 or c == num_chunks):
                checkpointer.save(step, state, record)
            if on_chunk is not None:
                on_chunk(c, metrics)
    finally:
        if logger is not None:
            logger.close()
        if checkpointer is not None:
            checkpointer.close()
    return TrainResult(state, metrics, history, num_chunks * trainer.steps_per_chunk, chunk._cache_size())
