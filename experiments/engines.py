"""The engines ``rlkit sweep`` runs its trials on — existing ones, never a scheduler of ours.

- ``local``: ``concurrent.futures.ProcessPoolExecutor`` with ``workers`` processes (default 1), each trial in a
  freshly spawned process (``max_tasks_per_child=1``), so every trial starts from the same state whatever ran
  before it;
- ``ray``: one Ray task per trial (``ray.remote(num_cpus=..., num_gpus=...)``, ``max_retries=0``: a failed trial
  is re-run by re-launching the sweep, which resumes it from its checkpoint). ``address`` is the cluster's
  (``host:port``, ``"auto"``, or unset: a local Ray instance started for the sweep and stopped after it). Extra:
  ``pip install "rlkit[ray]"``;
- ``slurm``: one submitit job per trial (``submitit.AutoExecutor``): every option except ``cluster`` goes to
  ``update_parameters`` (``timeout_min``, ``slurm_partition``, ``cpus_per_task``, ``gpus_per_node``, ``mem_gb``,
  ...; submitit checks the names). ``cluster: local`` runs submitit's local executor (tests, a workstation),
  ``cluster: debug`` runs in this process; without SLURM (no ``sbatch``) and no ``cluster`` it refuses rather
  than run somewhere else. ``timeout_min`` defaults to 24 h (submitit's own default would kill a trial after
  minutes). Job logs in ``OUT/submitit/``. Extra: ``pip install "rlkit[slurm]"``.

Every engine calls ``experiments.sweep.run_trial(trial, log_dir)`` in its worker; the trials' numbers do not
depend on the engine (``tests/test_sweep_engines.py``). A failed trial does not stop the others: the launch reports
each failure in one line at the end and exits non-zero.
"""

from __future__ import annotations

import shutil
import socket
from collections.abc import Callable
from pathlib import Path

from rlkit.configs import ConfigError

Runner = Callable[[list[dict], list[str]], None]

OPTIONS = {
    "local": ("workers",),
    "ray": ("address", "num_cpus", "num_gpus"),
    "slurm": None,  # submitit's own parameter names (checked by submitit)
}


class SweepError(RuntimeError):
    """Some trials failed; the message names each (one line) and says how to resume them."""


def _need(module: str, extra: str, engine: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigError(
            f'engine {engine!r} needs {module}, which is not installed: pip install "rlkit[{extra}]" '
            f'(in a checkout: pip install -e ".[{extra}]")'
        ) from None


def make(engine: str, options: dict, out: Path) -> Runner:
    """A runner ``(trials, log_dirs) -> None`` for ``engine``, its options checked (and a Ray cluster reached)
    before any trial starts."""
    allowed = OPTIONS[engine]
    if allowed is not None:
        for key in options:
            if key not in allowed:
                from experiments.sweep import _unknown

                raise _unknown(f"engine_options for {engine}:", key, allowed)
    if engine == "local":
        workers = options.get("workers", 1)
        if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
            raise ConfigError(f"engine_options.workers = {workers!r}: the local engine needs an integer >= 1")
        return _local(workers)
    if engine == "ray":
        return _ray(options)
    return _slurm(dict(options), out)


def _gather(outcomes: list[tuple[str, BaseException | None]]) -> None:
    failed = [(name, err) for name, err in outcomes if err is not None]
    if failed:
        lines = "; ".join(
            f"{name}: {type(err).__name__}: {' '.join(str(err).split())[:300]}" for name, err in failed
        )
        raise SweepError(
            f"{len(failed)} of {len(outcomes)} trials failed ({lines}); fix the cause and re-launch the same spec: "
            "finished trials are kept, the failed ones resume from their checkpoints"
        )


# ---------------------------------------------------------------------------------------------------- local
def _local(workers: int) -> Runner:
    def run(trials: list[dict], dirs: list[str]) -> None:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        from experiments.sweep import run_trial

        context = multiprocessing.get_context("spawn")
        outcomes = []
        with ProcessPoolExecutor(max_workers=workers, mp_context=context, max_tasks_per_child=1) as pool:
            futures = [(t["name"], pool.submit(run_trial, t, d)) for t, d in zip(trials, dirs)]
            for name, future in futures:
                outcomes.append((name, future.exception()))
        _gather(outcomes)

    return run


# ---------------------------------------------------------------------------------------------------- ray
def _reachable(address: str) -> None:
    host, sep, port = address.rpartition(":")
    if address == "auto" or address.startswith("ray://") or not sep:
        return
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), timeout=5).close()
    except (OSError, ValueError) as err:
        raise ConfigError(
            f"engine ray: cannot reach a Ray cluster at {address!r} ({' '.join(str(err).split())}); start one with "
            "`ray start --head` there, or leave address unset to start a local one"
        ) from None


def _ray(options: dict) -> Runner:
    ray = _need("ray", "ray", "ray")
    address = options.get("address")
    num_cpus, num_gpus = options.get("num_cpus", 1), options.get("num_gpus", 0)
    for key, value in (("num_cpus", num_cpus), ("num_gpus", num_gpus)):
        if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
            raise ConfigError(f"engine_options.{key} = {value!r}: a number >= 0 (resources per trial)")
    if address is not None:
        if not isinstance(address, str):
            raise ConfigError(f"engine_options.address = {address!r}: a string host:port, or 'auto'")
        _reachable(address)

    def run(trials: list[dict], dirs: list[str]) -> None:
        from experiments.sweep import run_trial

        started = not ray.is_initialized()
        if started:
            try:
                ray.init(address=address, include_dashboard=False, log_to_driver=True)
            except (ConnectionError, RuntimeError, ValueError) as err:
                raise ConfigError(
                    f"engine ray: ray.init(address={address!r}) failed: {' '.join(str(err).split())}"
                ) from None
        try:
            task = ray.remote(num_cpus=num_cpus, num_gpus=num_gpus, max_retries=0)(run_trial)
            refs = [(t["name"], task.remote(t, d)) for t, d in zip(trials, dirs)]
            outcomes = []
            for name, ref in refs:
                try:
                    ray.get(ref)
                    outcomes.append((name, None))
                except ray.exceptions.RayTaskError as err:
                    outcomes.append((name, err.cause if err.cause is not None else err))
                except ray.exceptions.RayError as err:  # the worker died (killed, out of memory)
                    outcomes.append((name, err))
        finally:
            if started:
                ray.shutdown()
        _gather(outcomes)

    return run


# ---------------------------------------------------------------------------------------------------- slurm
def _slurm(options: dict, out: Path) -> Runner:
    submitit = _need("submitit", "slurm", "slurm")
    cluster = options.pop("cluster", None)
    if cluster not in (None, "slurm", "local", "debug"):
        raise ConfigError(
            f"engine_options.cluster = {cluster!r}: one of slurm, local, debug (or unset: SLURM)"
        )
    if cluster in (None, "slurm") and shutil.which("sbatch") is None:
        raise ConfigError(
            "engine slurm: SLURM is not available here (no sbatch on PATH); run on a SLURM login node, or set "
            "engine_options.cluster: local to run the trials with submitit's local executor"
        )
    options.setdefault("timeout_min", 24 * 60)

    def executor(folder: Path):
        ex = submitit.AutoExecutor(folder=folder, cluster=cluster or "slurm")
        try:
            ex.update_parameters(**options)
        except (TypeError, ValueError, NameError) as err:
            raise ConfigError(f"engine slurm: engine_options: {' '.join(str(err).split())}") from None
        return ex

    import tempfile

    with tempfile.TemporaryDirectory() as scratch:  # check the options now; the executor writes its folder
        executor(Path(scratch))

    def run(trials: list[dict], dirs: list[str]) -> None:
        from experiments.sweep import run_trial

        ex = executor(out / "submitit" / "%j")
        jobs = [(t["name"], ex.submit(run_trial, t, d)) for t, d in zip(trials, dirs)]
        outcomes = []
        for name, job in jobs:
            try:
                job.result()
                outcomes.append((name, None))
            except Exception as err:  # noqa: BLE001 - submitit re-raises the trial's error or the job's failure
                outcomes.append((name, err))
        _gather(outcomes)

    return run
