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

Deliberately not here: one run spanning several devices (data-parallel env batches with ``pmean``-ed
gradients) — the ``runs`` axis fills devices first; that comes when a single run outgrows one device. Logs and
checkpoints of a multi-process run (``rlkit.training.train`` refuses ``log_dir`` there for now).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

AXIS = "runs"


@dataclass(frozen=True)
class RunsPlacement:
    num_runs: int
    mesh: jax.sharding.Mesh | None

    @classmethod
    def for_runs(cls, num_runs: int, max_devices: int | None = None) -> RunsPlacement:
        n = min(jax.device_count(), max_devices or jax.device_count())
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

    def put(self, tree):
        """Place a pytree whose leaves have a leading ``runs`` axis (scalars and static leaves are left alone)."""
        if self.mesh is None:
            return tree
        sharding = NamedSharding(self.mesh, P(AXIS))
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

    def map(self, fn: Callable) -> Callable:
        """``fn`` over one run → over all runs: ``vmap``, inside ``shard_map`` when there are several devices."""
        batched = jax.vmap(fn)
        if self.mesh is None:
            return batched
        # check_vma=False: runs never communicate, and scan carries that start replicated (constants) and become
        # per-run would otherwise be refused by the varying-manual-axes type check.
        return jax.shard_map(batched, mesh=self.mesh, in_specs=P(AXIS), out_specs=P(AXIS), check_vma=False)
