"""Checkpoints of a whole training state with orbax: save every N chunks, keep the last K, restore the latest.

A checkpoint is one orbax step directory holding the state pytree (``StandardSave``) and the run's config as
JSON (``JsonSave``), so a checkpoint alone is enough to rebuild and resume a run. Orbax writes each step to a
temporary directory and renames it when complete, so a run killed while saving resumes from the last *complete*
checkpoint (the temporary directories are never listed as steps) — that is why we use it rather than ``np.savez``.

A complete step can still be damaged afterwards (a disk fills up, a file is truncated or deleted by hand, a copy
is cut short). Reading one then raises ``CheckpointError`` — a ``ConfigError`` whose message is one line naming
the step directory and why (``OUT_OF_RANGE reading buffer_state.data.action/0.0.0.0``, ``its config item is not
valid JSON``) — instead of orbax's and TensorStore's tracebacks. Orbax reads the arrays concurrently on an event
loop it closes as soon as one read fails; the reads still in flight then report late, dozens of tracebacks for
one damaged file (``Event loop is closed``, ``exception was never retrieved``, orbax's coroutines failing as they
are collected, ``coroutine ... was never awaited``). While a restore runs — and after a failed one, until its
abandoned reads are collected and quiet — exactly those reports are dropped (ones from orbax's own code or its
closed event loop); anything else still reaches its handler. On a loaded machine some reads report even later,
so after a failed read the same narrow filter stays on for the rest of the process (``_drop_late_stragglers``):
it drops only reports that come from orbax's code or a closed event loop, and passes everything else on.
``set_aside(step, into)`` moves a damaged step out of the checkpoint directory — kept, never deleted — so that
the run can go on saving from an older one.

Typed PRNG keys (``jax.random.key``) are not array data orbax can store: they are saved as their ``key_data``
and wrapped back on restore, using the target structure to know which leaves were keys. Restoring needs a target
(an example state, e.g. a fresh ``init``), because without it optax's NamedTuples come back as plain containers.

Deliberately not here: what goes *into* the state (the training loop decides), which checkpoint a resume should
use and whether its config fits (``rlkit.training.RunRecorder``), repairing damaged checkpoints, and cross-host
coordination beyond what orbax does itself.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import re
import shutil
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import jax
import orbax.checkpoint as ocp

from rlkit.configs import ConfigError


class CheckpointError(ConfigError):
    """A checkpoint step on disk cannot be read; ``path`` is its directory, ``reason`` one line saying why."""

    def __init__(self, path: Path, reason: str):
        self.path, self.reason = Path(path), reason
        super().__init__(f"checkpoint {path} cannot be read: {reason}")


def _reason(err: BaseException) -> str:
    """One line for an orbax / TensorStore / JSON error: the status and the key TensorStore failed on if there
    is one (it sits somewhere in the exception chain), else the first line of the message, shortened."""
    chain, seen = [], set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        chain.append(err)
        err = err.__cause__ or err.__context__
    for e in chain:
        found = re.search(r"\b([A-Z][A-Z_]{3,}): .*?Error reading \"([^\"]+?)/?(?:\.zarray)?\"", str(e))
        if found:
            return f"{found.group(1)} reading {found.group(2)}"
    first = chain[0]
    text = (str(first).strip().splitlines() or [""])[0]
    text = re.split(r" See full TensorStore details| \[tensorstore_spec", text)[0]
    if len(text) > 160:
        text = text[:157] + "..."
    return f"{type(first).__name__}: {text}" if text else type(first).__name__


class _OrbaxNoise(logging.Filter):
    """Drops asyncio's 'exception was never retrieved' records and counts them (see the module docstring)."""

    def __init__(self):
        super().__init__()
        self.dropped, self.last = 0, time.monotonic()

    def seen(self) -> None:
        self.dropped += 1
        self.last = time.monotonic()

    def filter(self, record: logging.LogRecord) -> bool:
        if "exception was never retrieved" in record.getMessage():
            self.seen()
            return False
        return True


#: the coroutines of a failed concurrent read that never ran (garbage-collected unawaited)
_NEVER_AWAITED = re.compile(r"coroutine '[\w.<>]+' was never awaited")


_ORBAX_DIR = str(Path(ocp.__file__).resolve().parent.parent)  # the orbax package


def _closed_loop_or_orbax(exc, tb) -> bool:
    """Whether ``exc`` is the closed event loop's error or its traceback ``tb`` passes through orbax's code."""
    if isinstance(exc, RuntimeError) and "Event loop is closed" in str(exc):
        return True
    while tb is not None:
        if tb.tb_frame.f_code.co_filename.startswith(_ORBAX_DIR):
            return True
        tb = tb.tb_next
    return False


def _from_failed_read(unraisable) -> bool:
    """Whether an unraisable exception is a straggler of orbax's failed concurrent read: the closed event loop, a
    coroutine that never ran, or orbax's own code failing as its abandoned coroutines are collected (its
    traceback passes through orbax). Deliberately reads only the exception and its traceback, never
    ``unraisable.object``: that is a coroutine being finalized, often on a TensorStore thread, and a worker once
    crashed (a segfault on Python 3.12.1) inside this hook while it inspected one."""
    exc = unraisable.exc_value
    if isinstance(exc, RuntimeWarning) and _NEVER_AWAITED.search(str(exc)):
        return True
    return _closed_loop_or_orbax(exc, unraisable.exc_traceback)


@contextlib.contextmanager
def _quiet_orbax():
    """While orbax reads: drop the straggler reports a failed concurrent read leaves behind."""
    noise = _OrbaxNoise()
    previous = sys.unraisablehook

    def hook(unraisable):
        if _from_failed_read(unraisable):
            noise.seen()
            return
        previous(unraisable)

    asyncio_logger = logging.getLogger("asyncio")
    sys.unraisablehook = hook
    asyncio_logger.addFilter(noise)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=_NEVER_AWAITED.pattern, category=RuntimeWarning)
            yield noise
    finally:
        if sys.unraisablehook is hook:
            sys.unraisablehook = previous
        asyncio_logger.removeFilter(noise)


def _settle(noise: _OrbaxNoise, *, quiet_s: float = 0.5, max_s: float = 5.0) -> None:
    """After a failed read: collect the abandoned reads and wait until they stop reporting (at most ``max_s``;
    generous, since stragglers report later on a loaded machine, and this runs only after a failure)."""
    start = time.monotonic()
    while True:
        gc.collect()
        now = time.monotonic()
        if now - max(noise.last, start) >= quiet_s or now - start >= max_s:
            return
        time.sleep(0.02)


def _from_orbax(record: logging.LogRecord) -> bool:
    """Whether an asyncio log record reports an exception raised in orbax's code or by a closed event loop."""
    exc = record.exc_info[1] if record.exc_info else None
    return exc is not None and _closed_loop_or_orbax(exc, exc.__traceback__)


class _LateOrbaxNoise(logging.Filter):
    """After a failed read, for good: drops asyncio's records of exceptions from orbax or its closed loop."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not ("exception was never retrieved" in record.getMessage() and _from_orbax(record))


_LATE_NOISE = _LateOrbaxNoise()


def _drop_late_stragglers() -> None:
    """After a failed read: keep dropping its stragglers (only those) for the rest of the process — the reads a
    failed restore abandoned can report many seconds later on a loaded machine, after ``_settle`` stopped
    waiting. Installed once; a later ``sys.unraisablehook`` set by someone else replaces it, which is fine."""
    if not getattr(sys.unraisablehook, "_rlkit_late_stragglers", False):
        previous = sys.unraisablehook

        def hook(unraisable):
            if not _from_failed_read(unraisable):
                previous(unraisable)

        hook._rlkit_late_stragglers = True
        sys.unraisablehook = hook
    asyncio_logger = logging.getLogger("asyncio")
    if _LATE_NOISE not in asyncio_logger.filters:
        asyncio_logger.addFilter(_LATE_NOISE)


def _is_typed_key(x) -> bool:
    return isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def _keys_to_data(tree):
    return jax.tree.map(lambda x: jax.random.key_data(x) if _is_typed_key(x) else x, tree)


class Checkpointer:
    """``save(step, state, config)`` / ``restore(target)`` over ``directory``, keeping the last ``max_to_keep``."""

    def __init__(self, directory: str | os.PathLike, *, max_to_keep: int = 3):
        self.directory = Path(directory).absolute()
        self._manager = ocp.CheckpointManager(
            self.directory,
            options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True),
        )

    def save(self, step: int, state: Any, config: dict | None = None, *, wait: bool = True) -> None:
        args = {"state": ocp.args.StandardSave(_keys_to_data(state))}
        if config is not None:
            args["config"] = ocp.args.JsonSave(config)
        self._manager.save(int(step), args=ocp.args.Composite(**args))
        if wait:
            self._manager.wait_until_finished()

    def latest_step(self) -> int | None:
        return self._manager.latest_step()

    def all_steps(self) -> list[int]:
        return list(self._manager.all_steps())

    def step_dir(self, step: int) -> Path:
        return self.directory / str(step)

    def saved_config(self, step: int | None = None) -> dict | None:
        """The config saved with checkpoint ``step`` (default: the latest), without touching the state; ``None``
        when it was saved without one. ``CheckpointError`` when the config item cannot be read."""
        step = self.latest_step() if step is None else step
        if step is None or not (self.step_dir(step) / "config").exists():
            return None
        error = None
        with _quiet_orbax() as noise:
            try:
                config = self._manager.restore(step, args=ocp.args.Composite(config=ocp.args.JsonRestore()))[
                    "config"
                ]
            except Exception as err:  # noqa: BLE001 (every failure becomes one line naming the checkpoint)
                error = CheckpointError(
                    self.step_dir(step), f"its config item cannot be read ({_reason(err)})"
                )
            if error is not None:
                _settle(noise)
        if error is not None:
            _drop_late_stragglers()
            raise error
        if not isinstance(config, dict):
            raise CheckpointError(
                self.step_dir(step), f"its config item holds a {type(config).__name__}, not a JSON object"
            )
        return config

    def restore(self, target: Any, step: int | None = None) -> tuple[Any, dict | None]:
        """Restore ``(state, config)`` at ``step`` (default: the latest complete one) into ``target``'s structure.

        ``CheckpointError`` (one line: the step directory and why) when the step cannot be read."""
        step = self.latest_step() if step is None else step
        if step is None:
            raise FileNotFoundError(f"no complete checkpoint in {self.directory}")
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, _keys_to_data(target))
        has_config = (self.step_dir(step) / "config").exists()
        args = {"state": ocp.args.StandardRestore(abstract)}
        if has_config:
            args["config"] = ocp.args.JsonRestore()
        error = None
        with _quiet_orbax() as noise:
            try:
                restored = self._manager.restore(step, args=ocp.args.Composite(**args))
            except Exception as err:  # noqa: BLE001 (every failure becomes one line naming the checkpoint)
                error = CheckpointError(self.step_dir(step), _reason(err))
            if error is not None:  # outside the except block: the failed reads are unreferenced now
                _settle(noise)
        if error is not None:
            _drop_late_stragglers()
            raise error
        state = jax.tree.map(
            lambda t, x: jax.random.wrap_key_data(x, impl=jax.random.key_impl(t)) if _is_typed_key(t) else x,
            target,
            restored["state"],
        )
        return state, restored["config"] if has_config else None

    def set_aside(self, step: int, into: str | os.PathLike) -> Path:
        """Move checkpoint ``step`` out of the checkpoint directory into ``into`` (kept, not deleted: a damaged
        checkpoint may still be worth a look) and forget it; returns where it went."""
        into = Path(into)
        into.mkdir(parents=True, exist_ok=True)
        dest, n = into / str(step), 0
        while dest.exists():
            n += 1
            dest = into / f"{step}.{n}"
        shutil.move(str(self.step_dir(step)), str(dest))
        self._manager.reload()
        return dest

    def reload(self) -> None:
        """Re-read the step directories (after another process moved one)."""
        self._manager.reload()

    def close(self) -> None:
        self._manager.wait_until_finished()
        self._manager.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
