"""The one host-side training driver: a Python loop over compiled chunks, for every learner.

A learner family provides a ``Trainer`` — ``init(config, key) -> state`` and ``run_chunk(config, state) ->
(state, metrics)`` for *one* run, both pure — and ``train`` does the rest, identically for all of them:

- vmaps them over the ``runs`` axis (seeds × swept values from ``rlkit.sweeps``) and places that axis on the
  devices (``rlkit.devices``), ``jit``-compiles the chunk once with the state donated (no recompilation after the
  first chunk: the state's shapes never change);
- between chunks, and only there: host transfer of the chunk's metrics, a clear error if any run produced
  non-finite values, TensorBoard + JSON-lines logs per run, the progress line, evaluation, and orbax checkpoints
  every ``checkpoint_every`` chunks (keeping the last ``keep``);
- ``resume=True`` restores the newest checkpoint that restores (full state: agent, optimizers, targets, buffers,
  env states, RNG keys, counters, normalizers) and continues, so a resumed run equals an uninterrupted one bit for
  bit; JSON-lines rows and TensorBoard events written after that checkpoint by the interrupted process are
  dropped so the logs stay exact.

Nothing silent about a run directory (``RunRecorder`` holds the rules, shared with the host loop; each refusal
is one line, a ``ResumeError`` — a ``ConfigError`` — or ``FileExistsError``, raised before anything compiles
whenever the files alone decide it, and always before anything is written):

- a new run never writes into a directory that holds one (checkpoints, or the logs of a run without one yet);
- ``resume=True`` on a directory without a run says so instead of starting fresh; on one with logs but no
  checkpoint yet it restarts from step 0, says so, and drops the old log rows (JSON lines and TensorBoard);
- the resume policy, per field of the run's record (``run_args`` from the command line, ``config`` the agent's
  config, ``trainer`` / ``runs`` / ``total_steps`` from here), compared with the checkpoint's before any state
  is restored: ``total_steps`` (extend or shorten a run, not below the checkpoint's step), ``checkpoint_every``,
  ``eval_every``, the ``resume`` flag and ``log_dir`` may change — they are applied, and ``config.json`` and
  later checkpoints record them with a ``resumes`` history (step, what changed). Everything else — agent, env,
  seeds, sweep, every config field, static ones such as ``hidden_sizes`` included — is refused, naming each
  differing field with both values in one message. ``MUTABLE_ON_RESUME`` is that set, a ``RunRecorder``
  parameter;
- a damaged checkpoint (truncated or missing array files, a garbage config item) is named with the reason, set
  aside in ``damaged_checkpoints/`` and the next older one is used, saying so; if none restores, one error.
  A resume prints the step it resumed from.

Several processes (``jax.distributed``) train one ``train`` call together: each checks the run directory the same
way (a barrier after the checks, before anyone writes), each saves and restores its own shards of a checkpoint
(orbax coordinates them), and only process 0 writes ``config.json``, the logs and the notices, drops log rows on
resume and sets damaged checkpoints aside (a barrier, then the others re-read the directory). The run directory
must be on a file system every process sees.

Deliberately not here: what happens inside a chunk (``rlkit.off_policy``, ``rlkit.on_policy``, the host loop for
Gymnasium envs in ``rlkit.host_loop``); merging two runs' logs, or resuming with a changed agent config (a new
run, in another ``log_dir``, is the way to change those).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jax
import numpy as np

from rlkit.checkpointing import Checkpointer, CheckpointError
from rlkit.configs import ConfigError
from rlkit.devices import RunsPlacement
from rlkit.logger import RunLogger, holds_logs, truncate_jsonl, truncate_tensorboard
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
    #: the env spec the agent sees (a conditioning wrapper widens the observation); what exports record
    spec: Any = None
    #: the most env steps one run can take (None: no limit), e.g. DAgger's dataset, which must never overwrite;
    #: ``train`` refuses a longer ``total_steps`` before compiling
    max_steps: int | None = None
    #: one run can be split over devices (``train(devices_per_run=k)``, ``rlkit.devices``): the config's batch
    #: sizes each device takes a ``1/k`` share of (``{"num_envs": 16, "batch_size": 256, ...}``), which ``k``
    #: must divide; None: the trainer runs each run on one device only
    shards: dict[str, int] | None = None
    #: state → the part every device of a run must hold identically (the agent, its normalizers), checked after
    #: every chunk of a data-parallel run
    replicated: Callable[[Any], Any] | None = None


@dataclass
class TrainResult:
    state: Any
    metrics: dict[str, np.ndarray]  # last chunk's metrics, [runs]
    history: list[dict[str, np.ndarray]] = field(default_factory=list)
    steps: int = 0
    compiles: int = 0  # compilations of the chunk function (1 = never recompiled)
    #: >1: every state leaf is ``[runs, devices_per_run, ...]`` (one copy per device; the agent's are equal)
    devices_per_run: int = 1


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


#: what a resume may change, as dotted paths into the run's record (a path also covers everything below it)
MUTABLE_ON_RESUME = (
    "total_steps",
    "run_args.total_steps",
    "run_args.checkpoint_every",
    "run_args.eval_every",
    "run_args.resume",
    "run_args.log_dir",
    "run_args.async_envs",  # sync or async stepping of the same sub-envs: the same numbers
)


def has_run(log_dir) -> bool:
    """Whether ``log_dir`` holds a run that ``resume=True`` continues: a checkpoint, the run's record or its logs
    (what a fresh start refuses to overwrite)."""
    d = Path(log_dir)
    checkpoints = d / "checkpoints"
    return (
        (d / "config.json").exists()
        or (checkpoints.is_dir() and any(checkpoints.iterdir()))
        or any(d.glob("**/metrics.jsonl"))
    )


class ResumeError(ConfigError):
    """A run directory cannot be resumed (or started) as asked; the message is one line saying why."""


def _flatten(record: dict, prefix: str = "") -> dict[str, Any]:
    out = {}
    for key, value in record.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(_flatten(value, path + "."))
        else:
            out[path] = value
    return out


_ABSENT = object()


def _same(a, b) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b or (a != a and b != b)  # NaN is the same NaN here
    return a == b


def record_changes(saved: dict, now: dict) -> dict[str, tuple[Any, Any]]:
    """``{dotted path: (saved value, new value)}`` for every leaf of two run records that differs (the
    ``resumes`` history is not compared; a missing leaf is ``"(not recorded)"``)."""
    old = _flatten({k: v for k, v in saved.items() if k != "resumes"})
    new = _flatten({k: v for k, v in json.loads(json.dumps(now, default=str)).items() if k != "resumes"})
    changes = {}
    for path in sorted(old.keys() | new.keys()):
        a, b = old.get(path, _ABSENT), new.get(path, _ABSENT)
        if a is _ABSENT or b is _ABSENT or not _same(a, b):
            changes[path] = (
                "(not recorded)" if a is _ABSENT else a,
                "(not recorded)" if b is _ABSENT else b,
            )
    return changes


def _is_mutable(path: str, mutable) -> bool:
    return any(path == m or path.startswith(m + ".") for m in mutable)


class RunRecorder:
    """Everything a training loop does between chunks, shared by ``train`` and ``rlkit.host_loop``: the run
    directory, resume, logs, progress, checkpoints. ``log_dir=None`` records nothing.

    The run directory's rules (each refusal is one line, before anything is written; those the files alone
    decide — everything but a state that fails to restore — already in the constructor, before the caller
    compiles):

    - without ``resume``, a directory holding a run — checkpoints, or only the logs of a run that has none yet —
      is refused with ``FileExistsError``: nothing is overwritten;
    - with ``resume``, a directory holding no run is refused (``ResumeError``), not started fresh; one holding
      logs but no checkpoint restarts from step 0, saying so, and its old log rows are dropped;
    - with ``resume``, the new run's ``record`` is compared with the one saved in the checkpoint, field by field
      (dotted paths such as ``config.q_lr``). Fields under ``mutable`` (default ``MUTABLE_ON_RESUME``: the step
      budget, how often to checkpoint and evaluate, the ``resume`` flag and where the directory is) may change:
      they are applied, and recorded — ``config.json`` and every later checkpoint carry the new record plus a
      ``resumes`` history (the step resumed from and what changed). Every other difference — the agent, the env,
      seeds, sweep, runs, any config field, static ones such as ``hidden_sizes`` included — is refused in one
      ``ResumeError`` naming each differing field with both values, before any state is restored (a static
      field changes the state's shapes). A budget that ends before the checkpoint's step is refused too.
    - with ``resume``, the newest checkpoint that restores is used: one that cannot be read is named with the
      reason, moved to ``<log_dir>/damaged_checkpoints/`` (kept, so later saves do not collide with it) and the
      next older one is tried; when none restores, ``ResumeError`` lists them all and nothing is moved. Orbax's
      temporary directories of an interrupted save are never candidates.
    - on resume, JSON-lines rows and TensorBoard events the interrupted process logged after the checkpoint are
      dropped (atomically, ``rlkit.logger``), so every step is logged once.

    These notices (resume, restart, damaged checkpoint) are printed to ``stream`` (default ``sys.stdout``) even
    with ``console=False``, which silences only the progress line; they are also kept in ``notices``."""

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
        mutable: tuple[str, ...] = MUTABLE_ON_RESUME,
        stream=None,
    ):
        self.steps_per_chunk, self.num_chunks = steps_per_chunk, num_chunks
        self.checkpoint_every, self.headline, self.record = checkpoint_every, headline, dict(record)
        self.run_names, self.resume, self.keep, self.console = run_names, resume, keep, console
        self.mutable, self.stream = tuple(mutable), stream
        self.logger = self.checkpointer = None
        self.notices: list[str] = []
        # several processes (jax.distributed): all check and checkpoint (orbax writes each process's shards),
        # only process 0 writes config.json, logs and notices, drops logs or moves damaged checkpoints
        self.primary = jax.process_index() == 0
        self._steps: list[int] = []  # checkpoints to try on resume, newest first
        self._configs: dict[int, dict] = {}
        self._unreadable: dict[int, str] = {}
        self._started = False
        self.log_dir = None if log_dir is None else Path(log_dir)
        if self.log_dir is None:
            return
        try:
            self._check_directory()
        except BaseException:
            self.close()
            raise

    # -- before anything is written -------------------------------------------------------------------------------

    def _holds_logs(self) -> bool:
        return (self.log_dir / "config.json").exists() or any(
            holds_logs(self.log_dir / name) for name in self.run_names
        )

    def _check_directory(self) -> None:
        checkpoints = self.log_dir / "checkpoints"
        if checkpoints.is_dir():
            self.checkpointer = Checkpointer(checkpoints, max_to_keep=self.keep)
            self._steps = sorted(self.checkpointer.all_steps(), reverse=True)
        if not self.resume:
            if self._steps:
                raise FileExistsError(
                    f"{self.log_dir} already holds checkpoints (latest step {self._steps[0]}); pass resume=True "
                    "(--resume) to continue that run, or choose another log_dir — nothing is overwritten"
                )
            if self._holds_logs():
                raise FileExistsError(
                    f"{self.log_dir} holds the logs of a run that has no checkpoint yet; pass resume=True "
                    "(--resume) to restart it from step 0 (its logs are replaced), or choose another log_dir"
                )
            return
        if not self._steps:
            if not self._holds_logs():
                what = (
                    "does not exist" if not self.log_dir.exists() else "holds no run (no checkpoint, no logs)"
                )
                raise ResumeError(
                    f"cannot resume {self.log_dir}: it {what}; start the run without resume=True (--resume)"
                )
            saved = (
                self._saved_json()
            )  # unreadable or missing: nothing to compare with (its logs are replaced)
            if saved is not None:
                self._check_changes(saved, "its logs", "config.json")
            return
        for step in self._steps:  # fail fast, before the caller compiles: the newest config that reads
            saved = self._read_config(step)
            if saved is not None:
                self._check_changes(saved, f"its checkpoint (step {step})")
                return
        self._no_checkpoint_restores()

    def _read_config(self, step: int) -> dict | None:
        if step in self._configs:
            return self._configs[step]
        if step in self._unreadable:
            return None
        try:
            saved = self.checkpointer.saved_config(step)
        except CheckpointError as err:
            self._unreadable[step] = err.reason
            return None
        if saved is None:
            self._unreadable[step] = "it was saved without its config, so its settings cannot be checked"
            return None
        self._configs[step] = saved
        return saved

    def _check_changes(self, saved: dict, what: str, word: str = "checkpoint") -> dict[str, tuple[Any, Any]]:
        changes = record_changes(saved, self.record)
        refused = {p: c for p, c in changes.items() if not _is_mutable(p, self.mutable)}
        if refused:
            items = [
                f"runs: it holds runs {a!r}, not {b!r}" if p == "runs" else f"{p}: {word} {a!r}, now {b!r}"
                for p, (a, b) in refused.items()
            ]
            raise ResumeError(
                f"cannot resume {self.log_dir}: these settings differ from {what}: {'; '.join(items)}. Resume "
                f"with the settings that started the run; only {', '.join(self.mutable)} may change"
            )
        return changes

    def _no_checkpoint_restores(self):
        tried = "; ".join(f"step {s}: {self._unreadable[s]}" for s in sorted(self._unreadable, reverse=True))
        raise ResumeError(
            f"cannot resume {self.log_dir}: none of its checkpoints can be restored ({tried}); they are left as "
            "they are — start a new run in another log_dir"
        )

    @classmethod
    def for_runs(
        cls, log_dir, trainer_name: str, runs: Runs, *, total_steps: int, config_record: dict | None, **kwargs
    ) -> RunRecorder:
        """The recorder of a training loop over ``runs``, with the record every loop writes (its name, the runs,
        the budget and the caller's ``config_record``); ``kwargs`` as the constructor's."""
        record = {
            "trainer": trainer_name,
            "runs": runs.names,
            "total_steps": total_steps,
            **(config_record or {}),
        }
        return cls(log_dir, runs.names, record, **kwargs)

    # -- resume ---------------------------------------------------------------------------------------------------

    def say(self, line: str) -> None:
        """Print one notice line (see the class docstring) and keep it in ``notices``."""
        self.notices.append(line)
        if not self.primary:
            return
        stream = self.stream or sys.stdout
        stream.write(line + "\n")
        stream.flush()

    def restore(self, target):
        """``(state, first_chunk)``: the newest checkpoint that restores when resuming, else ``(target, 1)``."""
        if self.log_dir is None:
            return target, 1
        if not self.resume:
            self._start()
            return target, 1
        if not self._steps:  # logs, no checkpoint yet
            saved = self._saved_json()
            changes = record_changes(saved, self.record) if saved else {}
            self._applied(saved, 0, changes, restarted=True)
            self._drop_logs_after(0)
            self.say(
                f"restarting {self.log_dir} from step 0: it has no checkpoint yet, so its old log rows are dropped"
            )
            self._start()
            return target, 1

        state = chosen = None
        for step in self._steps:
            saved = self._read_config(step)
            if saved is None:
                continue
            changes = self._check_changes(saved, f"its checkpoint (step {step})")
            try:
                state, _ = self.checkpointer.restore(target, step)
            except CheckpointError as err:
                self._unreadable[step] = err.reason
                continue
            chosen = step
            break
        if chosen is None:
            self._no_checkpoint_restores()
        budget = self.num_chunks * self.steps_per_chunk
        if chosen > budget:
            raise ResumeError(
                f"cannot resume {self.log_dir}: total_steps = {self.record.get('total_steps', budget)} ends before "
                f"step {chosen}, where its checkpoint is; pass total_steps >= {chosen}"
            )
        for bad in sorted((s for s in self._unreadable if s > chosen), reverse=True):
            if self.primary:
                dest = self.checkpointer.set_aside(bad, self.log_dir / "damaged_checkpoints")
                self.say(
                    f"checkpoint {bad} of {self.log_dir} cannot be restored ({self._unreadable[bad]}); "
                    f"moved it to {dest}"
                )
        if jax.process_count() > 1 and any(s > chosen for s in self._unreadable):
            sync_processes("rlkit: damaged checkpoints set aside")
            self.checkpointer.reload()
        newest = " — the newest one that restores" if any(s > chosen for s in self._unreadable) else ""
        self.say(f"resuming {self.log_dir} from step {chosen} (checkpoint {chosen} of {budget}){newest}")
        self._applied(saved, chosen, changes)
        self._drop_logs_after(chosen)
        self._start()
        return state, chosen // self.steps_per_chunk + 1

    def _saved_json(self) -> dict | None:
        try:
            saved = json.loads((self.log_dir / "config.json").read_text())
        except (OSError, ValueError):
            return None
        return saved if isinstance(saved, dict) else None

    def _applied(self, saved: dict | None, step: int, changes: dict, restarted: bool = False) -> None:
        """The record from now on: the new one plus the resume history (what was applied, and when)."""
        entry = {"step": step, "changed": {p: {"before": a, "now": b} for p, (a, b) in changes.items()}}
        if restarted:
            entry["restarted"] = "no checkpoint yet: from step 0, old log rows dropped"
        history = list((saved or {}).get("resumes", []))
        self.record = {**self.record, "resumes": [*history, entry]}

    def _drop_logs_after(self, step: int) -> None:
        if not self.primary:
            return
        for name in self.run_names:  # rows the interrupted process logged after its last checkpoint
            truncate_jsonl(self.log_dir / name / "metrics.jsonl", step)
            truncate_tensorboard(self.log_dir / name, step)

    def _start(self) -> None:
        """Write ``config.json`` (only ever a record that is applied) and open the logs."""
        if self._started or self.log_dir is None:
            return
        self._started = True
        if not self.primary:  # process 0 writes; every process checkpoints its shards
            sync_processes("rlkit: run directory written")
            if self.checkpointer is None:
                self.checkpointer = Checkpointer(self.log_dir / "checkpoints", max_to_keep=self.keep)
            return
        self.log_dir.mkdir(parents=True, exist_ok=True)
        text = json.dumps(self.record, indent=2, default=str)
        tmp = self.log_dir / ".config.json.tmp"
        tmp.write_text(text)
        os.replace(tmp, self.log_dir / "config.json")
        self.logger = RunLogger(
            self.log_dir,
            self.run_names,
            total_steps=self.num_chunks * self.steps_per_chunk,
            console=self.console,
            stream=self.stream,
        )
        sync_processes("rlkit: run directory written")
        if self.checkpointer is None:
            self.checkpointer = Checkpointer(self.log_dir / "checkpoints", max_to_keep=self.keep)

    # -- between chunks -------------------------------------------------------------------------------------------

    def after_chunk(self, c: int, state, metrics: dict[str, np.ndarray]) -> None:
        if self.log_dir is not None and not self._started:
            self._start()  # a caller that never called restore: a fresh run
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
            self.logger = None
        if self.checkpointer is not None:
            self.checkpointer.close()
            self.checkpointer = None


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
    devices_per_run: int = 1,
    on_chunk: Callable[[int, dict], None] | None = None,
) -> TrainResult:
    """Train every run of ``runs`` for ``total_steps`` env steps (rounded up to whole chunks).

    ``log_dir=None`` trains without logs or checkpoints (tests, notebooks). ``on_chunk(chunk_index, metrics)``
    is called after each chunk is logged (hooks for tests and custom stopping). ``devices_per_run = k > 1``
    splits each run's env batch over ``k`` devices with synchronized gradients (``rlkit.devices``; trainers with
    ``Trainer.shards``); the result's state then has a per-device axis after the runs axis."""
    if total_steps < 1:
        raise ValueError(f"total_steps must be >= 1, got {total_steps}")
    _check_devices_per_run(trainer, devices_per_run)
    if devices_per_run > 1:  # the state's shapes depend on it: a resume with another k is refused
        config_record = {**(config_record or {}), "devices_per_run": devices_per_run}
    num_chunks = -(-total_steps // trainer.steps_per_chunk)
    if trainer.max_steps is not None and num_chunks * trainer.steps_per_chunk > trainer.max_steps:
        raise ConfigError(
            f"{trainer.name}: total_steps = {total_steps} ({num_chunks} chunks of {trainer.steps_per_chunk} env "
            f"steps) is more than this trainer can take, {trainer.max_steps} env steps (e.g. a dataset that must "
            "never be overwritten: raise buffer_size)"
        )
    if eval_every and trainer.evaluate is None:
        raise ConfigError(
            f"{trainer.name}: eval_every = {eval_every}, but this trainer has no evaluation (an offline learner "
            "on a Gymnasium env's spec: evaluate the trained agent with rlkit.host_loop.evaluate_host); "
            "use eval_every = 0"
        )
    # first: a run directory that cannot be used is refused before anything compiles
    recorder = RunRecorder.for_runs(
        log_dir,
        trainer.name,
        runs,
        total_steps=total_steps,
        config_record=config_record,
        steps_per_chunk=trainer.steps_per_chunk,
        num_chunks=num_chunks,
        resume=resume,
        keep=keep,
        checkpoint_every=checkpoint_every,
        console=console,
        headline=trainer.headline,
    )
    sync_processes("rlkit: run directory checked")  # by every process, before any writes to it
    try:
        try:
            placement = RunsPlacement.for_runs(len(runs), max_devices, devices_per_run)
        except ValueError as err:
            raise ConfigError(f"{trainer.name}: {err}") from None
        config = placement.put(runs.config)
        init = jax.jit(placement.map(trainer.init, (False, False), True))
        chunk = jax.jit(
            placement.map(trainer.run_chunk, (False, True), (True, False), trainer.replicated),
            donate_argnums=1,
        )
        evaluate = (
            jax.jit(placement.map(trainer.evaluate, (False, True, False), False))
            if trainer.evaluate and eval_every
            else None
        )
        state = init(config, placement.put(runs.keys))
        state, first_chunk = recorder.restore(state)
        state = placement.put(state, per_device=True)
    except BaseException:
        recorder.close()
        raise

    history = []
    metrics: dict[str, np.ndarray] = {}
    eval_key = jax.random.key(2**31 - 1)
    try:
        for c in range(first_chunk, num_chunks + 1):
            state, out = chunk(config, state)
            metrics = {k: np.asarray(v) for k, v in placement.fetch(out).items()}
            _check_replicas(trainer.name, c, metrics.pop("replica_divergence", None), runs.names)
            if evaluate is not None and (c % eval_every == 0 or c == num_chunks):  # always a final one
                keys = placement.put(jax.random.split(jax.random.fold_in(eval_key, c), len(runs)))
                metrics.update(
                    {k: np.asarray(v) for k, v in placement.fetch(evaluate(config, state, keys)).items()}
                )
            check_finite(trainer.name, c, metrics, runs.names)
            history.append(metrics)
            recorder.after_chunk(c, state, metrics)
            if on_chunk is not None:
                on_chunk(c, metrics)
    finally:
        recorder.close()
    return TrainResult(
        state, metrics, history, num_chunks * trainer.steps_per_chunk, chunk._cache_size(), devices_per_run
    )


def sync_processes(name: str) -> None:
    """A barrier over every process of a ``jax.distributed`` run (nothing with one process)."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


def _check_devices_per_run(trainer: Trainer, k) -> None:
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ConfigError(f"devices_per_run must be an integer >= 1, got {k!r}")
    if k == 1:
        return
    if trainer.shards is None:
        raise ConfigError(
            f"{trainer.name}: devices_per_run = {k}, but this trainer runs each run on one device only (one run "
            "over several devices is built for the on-device on-policy and off-policy trainers); use "
            "devices_per_run = 1, or spread runs (seeds, swept values) over devices instead"
        )
    for name, size in trainer.shards.items():
        if size % k:
            common = [
                d
                for d in range(1, max(trainer.shards.values()) + 1)
                if not any(v % d for v in trainer.shards.values())
            ]
            raise ConfigError(
                f"{trainer.name}: devices_per_run = {k} does not divide {name} = {size} (each device takes "
                f"{', '.join(trainer.shards)} / devices_per_run); allowed: {', '.join(map(str, common))}"
            )


def _check_replicas(name: str, chunk: int, divergence, run_names: list[str]) -> None:
    """A data-parallel run's agent copies must stay equal: anything else is k agents drifting apart."""
    if divergence is None or not np.any(divergence > 0):
        return
    worst = int(np.argmax(divergence))
    raise ConfigError(
        f"{name}: in chunk {chunk} the copies of run {run_names[worst]}'s agent on its devices differ (by "
        f"{float(divergence[worst]):.3g}): an update or statistic is not synchronized over the run's devices (an "
        "agent must pass its gradients through rlkit.devices.batch_mean); train it with devices_per_run = 1"
    )
