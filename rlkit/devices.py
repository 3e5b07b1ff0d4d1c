"""Placing the ``runs`` axis on devices: one code path for 1 device, N devices and many hosts.

``RunsPlacement.for_runs(R)`` builds a 1-D ``jax.make_mesh`` over as many devices as divide R (all of them when
possible) and wraps a per-run function as ``shard_map(vmap(fn))``: each device trains its slice of runs, with no
collectives, because runs are independent — so N devices give exactly the 1-device numbers (tested with forced
CPU devices). Inputs are ``device_put`` to the ``P("runs")`` sharding first, since ``make_mesh`` defaults to
Explicit axes that refuse inputs not already sharded to match. With one device the wrapper is a plain ``vmap``.

Multi-process (several hosts, or several processes on one): call ``jax.distributed.initialize(...)`` first; the
mesh then spans every process's devices, the same ``shard_map(vmap(fn))`` runs on all of them, ``put`` builds
global arrays from the (identical) host values every process computes (``jax.make_array_from_callback``, each
process filling its own shards) and ``fetch`` gathers every run's values back to every process
(``multihost_utils.process_allgather``; on CPU it needs ``jax_cpu_collectives_implementation="gloo"``). A runs
axis that does not divide evenly over all processes' devices is not split (every process computes all runs:
the same numbers, no speed-up). Tested with 2 processes on loopback against 1 process
(``tests/test_multiprocess.py``).

One run over several devices (``devices_per_run = k > 1``, data parallelism as Brax's and Stoix's trainers do
it): the mesh becomes 2-D, ``("runs", "batch")``, and each run's env batch is split over its ``k`` devices. Every
state leaf gets a per-device axis — global shape ``[runs, k, ...]``, sharded ``P("runs", "batch")`` — so each
device holds its ``num_envs / k`` envs *and* its own copy of the agent; config and keys stay ``[runs, ...]``,
replicated over ``batch``. While such a program is traced, the core's batch-wide reductions become collectives
over the ``batch`` axis and are the identity otherwise (so the 1-device program is unchanged, bit for bit):

- ``batch_mean(grads)`` — applied to every gradient before ``tx.update`` (``rlkit.optim.gradient_step``, the step
  every learner takes), so the copies take the same step: the mean over devices of per-device means is the full batch's mean gradient (equal local batch sizes);
- ``batch_moments`` — a minibatch's mean and standard deviation over all devices (PPO's advantage normalization);
- ``rlkit.running_stats.update`` combines its batch moments over ``batch`` too (observation / return / reward
  normalizers stay identical across the copies);
- ``shard_key(key)`` — a different stream per device for what is local (env resets, actions, minibatch
  shuffles), while the agent is initialized from the same key everywhere;
- ``local(n)`` — a global batch size (``num_envs``) → this device's share.

So one update of ``k`` devices on a batch equals one update of 1 device on the concatenated batch (tested
``tests/test_data_parallel.py``: a PPO iteration and a DQN update, gradients included). ``map(..., replicated=)`` adds a ``replica_divergence``
metric — the largest difference of the agent's copies across devices, exactly 0 when every gradient and
statistic is synchronized — and ``rlkit.training.train`` stops with one line when it is not, so an agent that
forgets ``batch_mean`` is never silently trained as ``k`` drifting agents. Trainers declare what they split in
``Trainer.shards``: the on-policy trainers their ``num_envs``; the off-policy ones also ``batch_size`` and
``buffer_size`` — each device keeps a replay buffer of its own envs' transitions and samples its share of every
batch from it (prioritized replay's importance weights are normalized by the max over the whole batch). The
offline trainers declare nothing and are refused before compiling.

With several processes a run's devices may sit in different processes (2 processes, one device each,
``devices_per_run = 2``: every run over both; tested ``tests/test_multiprocess.py``) — then every device must be
used, so ``devices_per_run`` must divide the device count and the runs the groups.

Logs and checkpoints of a multi-process run are ``rlkit.training``'s: every process checks the run directory and
checkpoints its own shards (orbax), only process 0 writes ``config.json``, logs and notices.

Deliberately not here: launching the processes (``jax.distributed.initialize`` and the cluster's launcher:
SLURM, ``mpirun``, or ``rlkit sweep``'s engines for independent trials).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from rlkit.configs import ConfigError

AXIS = "runs"
BATCH = "batch"

_tracing = threading.local()  # .stack: the devices per run of the data-parallel programs being traced


def batch_devices() -> int:
    """The devices one run's batch is split over in the program being traced (1 outside a data-parallel one)."""
    stack = getattr(_tracing, "stack", None)
    return stack[-1] if stack else 1


def batch_axis() -> str | None:
    """``BATCH`` inside a data-parallel program, else ``None``."""
    return BATCH if batch_devices() > 1 else None


def batch_mean(tree):
    """The mean over the devices of a run (gradients, per-device means); the identity on one device."""
    return tree if batch_devices() == 1 else jax.lax.pmean(tree, BATCH)


def batch_sum(tree):
    """The sum over the devices of a run (counts, episode sums); the identity on one device."""
    return tree if batch_devices() == 1 else jax.lax.psum(tree, BATCH)


def batch_moments(x: jax.Array, ddof: int = 0) -> tuple[jax.Array, jax.Array]:
    """``(mean, std)`` over axis 0 of ``x`` and the same axis on every device of the run (``ddof`` as NumPy's).
    On one device exactly ``x.mean(0), x.std(0, ddof=ddof)``."""
    if batch_devices() == 1:
        return x.mean(axis=0), x.std(axis=0, ddof=ddof)
    n = x.shape[0] * batch_devices()
    mean = jax.lax.pmean(x.mean(axis=0), BATCH)
    sq = jax.lax.psum(jnp.sum((x - mean) ** 2, axis=0), BATCH)
    return mean, jnp.sqrt(sq / (n - ddof))


def shard_key(key: jax.Array) -> jax.Array:
    """A key of its own for each device of a run (local randomness); ``key`` itself on one device."""
    return key if batch_devices() == 1 else jax.random.fold_in(key, jax.lax.axis_index(BATCH))


def local(n: int, what: str = "the batch") -> int:
    """A run's global batch size → this device's share (``n`` itself on one device); ``ConfigError`` (one line,
    naming ``what``) when the run's devices cannot share it evenly."""
    k = batch_devices()
    if n % k:
        raise ConfigError(
            f"{what} = {n} does not split over devices_per_run = {k} devices; give a multiple of {k}"
        )
    return n // k


def _divergence(tree) -> jax.Array:
    """The largest difference of ``tree``'s leaves across the devices of a run (0 when they hold one copy)."""
    gaps = [
        jnp.max(jax.lax.pmax(x, BATCH) - jax.lax.pmin(x, BATCH)).astype(jnp.float32)
        for x in jax.tree.leaves(tree)
        if hasattr(x, "dtype") and not jnp.issubdtype(x.dtype, jax.dtypes.prng_key) and x.dtype != jnp.bool_
    ]
    return jnp.max(jnp.stack(gaps)) if gaps else jnp.zeros((), jnp.float32)


@dataclass(frozen=True)
class RunsPlacement:
    num_runs: int
    mesh: jax.sharding.Mesh | None
    devices_per_run: int = 1

    @classmethod
    def for_runs(
        cls, num_runs: int, max_devices: int | None = None, devices_per_run: int = 1
    ) -> RunsPlacement:
        """``devices_per_run = k > 1``: each run over ``k`` devices, runs over as many groups of ``k`` as divide
        them (``ValueError``, one line, when ``k`` devices are not there)."""
        n = min(jax.device_count(), max_devices or jax.device_count())
        if devices_per_run > 1:
            if jax.process_count() > 1:  # every process must hold a part of the mesh: all devices in use
                n = jax.device_count()
                if n % devices_per_run or num_runs % (n // devices_per_run):
                    raise ValueError(
                        f"devices_per_run = {devices_per_run} with {jax.process_count()} processes: all "
                        f"{n} devices must be used, so devices_per_run must divide {n} and the {num_runs} runs "
                        f"must divide evenly over the {n} / devices_per_run groups of devices"
                    )
            if devices_per_run > n:
                raise ValueError(
                    f"devices_per_run = {devices_per_run}, but {n} device(s) can be used "
                    f"({jax.device_count()} {jax.default_backend()} device(s), max_devices = {max_devices}); "
                    f"allowed: 1 to {n}"
                )
            groups = n // devices_per_run
            while groups > 1 and num_runs % groups:
                groups -= 1
            mesh = jax.make_mesh(
                (groups, devices_per_run), (AXIS, BATCH), devices=jax.devices()[: groups * devices_per_run]
            )
            return cls(num_runs, mesh, devices_per_run)
        if jax.process_count() > 1:  # every process must hold a part of the mesh: all devices, or none split
            n = jax.device_count() if num_runs % jax.device_count() == 0 and n == jax.device_count() else 1
        while n > 1 and num_runs % n:
            n -= 1  # the largest device count that divides the runs evenly
        if n <= 1:
            return cls(num_runs, None)
        return cls(num_runs, jax.make_mesh((n,), (AXIS,), devices=jax.devices()[:n]))

    @property
    def num_devices(self) -> int:
        return 1 if self.mesh is None else self.mesh.size

    def put(self, tree, *, per_device: bool = False):
        """Place a pytree whose leaves have a leading ``runs`` axis (scalars and static leaves are left alone).
        ``per_device``: a state of a data-parallel placement, ``[runs, devices_per_run, ...]``."""
        if self.mesh is None:
            return tree
        sharding = NamedSharding(
            self.mesh, P(AXIS, BATCH) if per_device and self.devices_per_run > 1 else P(AXIS)
        )
        if jax.process_count() == 1:
            return jax.tree.map(lambda x: jax.device_put(x, sharding) if getattr(x, "ndim", 0) else x, tree)

        def one(x):
            if not getattr(x, "ndim", 0):
                return x
            if isinstance(x, jax.Array) and not x.is_fully_addressable:
                return x  # already global (a compiled chunk's output)
            if jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
                return jax.random.wrap_key_data(one(jax.random.key_data(x)), impl=jax.random.key_impl(x))
            host = np.asarray(x)  # the same on every process: each fills the shards it holds
            return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])

        return jax.tree.map(one, tree)

    def fetch(self, tree):
        """Every leaf as host NumPy, all runs (several processes: gathered from all of them to each)."""
        if self.mesh is None or jax.process_count() == 1:
            return jax.device_get(tree)
        from jax.experimental import multihost_utils

        return multihost_utils.process_allgather(tree, tiled=True)

    def map(
        self,
        fn: Callable,
        per_device_in: tuple[bool, ...] = (),
        per_device_out: tuple[bool, ...] | bool = (),
        replicated: Callable | None = None,
    ) -> Callable:
        """``fn`` over one run → over all runs: ``vmap``, inside ``shard_map`` when there are several devices.

        Data-parallel placements only (``devices_per_run > 1``): ``per_device_in`` / ``per_device_out`` say which
        arguments / outputs (a bool: the single output) are states with a per-device axis; the other outputs
        (metrics) are averaged over the run's devices (floats; integers are the same on every device). When
        ``replicated(output_state)`` is given, the metrics of the last output also hold ``replica_divergence``."""
        if self.devices_per_run > 1:
            return self._map_data_parallel(fn, per_device_in, per_device_out, replicated)
        batched = jax.vmap(fn)
        if self.mesh is None:
            return batched
        # check_vma=False: runs never communicate, and scan carries that start replicated (constants) and become
        # per-run would otherwise be refused by the varying-manual-axes type check.
        return jax.shard_map(batched, mesh=self.mesh, in_specs=P(AXIS), out_specs=P(AXIS), check_vma=False)

    def _map_data_parallel(self, fn, per_device_in, per_device_out, replicated):
        k, single = self.devices_per_run, isinstance(per_device_out, bool)
        outs = (per_device_out,) if single else tuple(per_device_out)

        def reduce(x):
            return jax.lax.pmean(x, BATCH) if jnp.issubdtype(x.dtype, jnp.floating) else x

        def one_run(*args):
            args = [
                jax.tree.map(lambda x: x[0], a) if sharded else a
                for a, sharded in zip(args, per_device_in + (False,) * len(args))
            ]
            _tracing.stack = getattr(_tracing, "stack", []) + [k]
            try:
                out = fn(*args)
                out = (out,) if single else tuple(out)
                if replicated is not None:
                    state = next(o for o, sharded in zip(out, outs) if sharded)
                    out = out[:-1] + ({**out[-1], "replica_divergence": _divergence(replicated(state))},)
            finally:
                _tracing.stack = _tracing.stack[:-1]
            out = tuple(
                jax.tree.map(lambda x: x[None], o) if sharded else jax.tree.map(reduce, o)
                for o, sharded in zip(out, outs)
            )
            return out[0] if single else out

        def specs(flags):
            return tuple(P(AXIS, BATCH) if sharded else P(AXIS) for sharded in flags)

        def program(*args):
            in_specs = specs(per_device_in + (False,) * (len(args) - len(per_device_in)))
            return jax.shard_map(
                jax.vmap(one_run),
                mesh=self.mesh,
                in_specs=in_specs,
                out_specs=specs(outs)[0] if single else specs(outs),
                check_vma=False,
            )(*args)

        return program
