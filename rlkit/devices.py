"""Placing the ``runs`` axis on devices: one code path for 1 device, N devices and many hosts.

``RunsPlacement.for_runs(R)`` builds a 1-D ``jax.make_mesh`` over as many devices as divide R (all of them when
possible) and wraps a per-run function as ``shard_map(vmap(fn))``: each device trains its slice of runs, with no
collectives, because runs are independent — so N devices give exactly the 1-device numbers (tested with forced
CPU devices). Inputs are ``device_put`` to the ``P("runs")`` sharding first, since ``make_mesh`` defaults to
Explicit axes that refuse inputs not already sharded to match. With one device the wrapper is a plain ``vmap``.

Multi-host: call ``jax.distributed.initialize()`` before building the placement; the mesh then spans every
host's devices and each host feeds its addressable shards (not exercised here: one host in CI).

Deliberately not here: one run spanning several devices (data-parallel env batches with ``pmean``-ed
gradients) — the ``runs`` axis fills devices first; that comes when a single run outgrows one device.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import jax
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
        return jax.tree.map(lambda x: jax.device_put(x, sharding) if getattr(x, "ndim", 0) else x, tree)

    def map(self, fn: Callable) -> Callable:
        """``fn`` over one run → over all runs: ``vmap``, inside ``shard_map`` when there are several devices."""
        batched = jax.vmap(fn)
        if self.mesh is None:
            return batched
        # check_vma=False: runs never communicate, and scan carries that start replicated (constants) and become
        # per-run would otherwise be refused by the varying-manual-axes type check.
        return jax.shard_map(batched, mesh=self.mesh, in_specs=P(AXIS), out_specs=P(AXIS), check_vma=False)
