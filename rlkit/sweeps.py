"""Seeds × swept config values as one leading ``runs`` axis, so a whole sweep is one compiled program.

``make_runs(config, seeds=8, sweep={"learning_rate": [1e-3, 3e-4]})`` returns a ``Runs``: the config with every
sweepable leaf stacked to shape ``[R]`` (R = seeds × grid points; unswept leaves are repeated), one PRNG key per run,
and a name and a value table per run for logs. ``jax.vmap(train_fn)(runs.config, runs.keys)`` then trains them
all at once. Sweeping a static field (one that changes shapes) is refused with a message saying why.

``make_runs(config, seeds=4, points=[{"q_lr": 3e-4, "tau": 0.01}, ...])`` takes explicit points instead of a grid
(random search: ``rlkit sweep`` draws them). Deliberately not here: choosing the points (``experiments/sweep.py``),
and distributing runs over devices (``rlkit.devices`` shards the ``runs`` axis).
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rlkit.configs import ConfigError, check_names, is_static, validate


@dataclass(frozen=True)
class Runs:
    config: Any  # the config, sweepable leaves of shape [R]
    keys: jax.Array  # [R] PRNG keys
    names: list[str]  # R run names, e.g. "learning_rate=0.001/seed_3"
    values: list[dict[str, Any]]  # R dicts: the swept values and the seed of each run

    def __len__(self) -> int:
        return len(self.names)


def make_runs(
    config,
    *,
    seeds: int | Sequence[int] = 1,
    sweep: dict[str, Sequence] | None = None,
    points: Sequence[dict[str, Any]] | None = None,
) -> Runs:
    """The full grid ``sweep`` × ``seeds`` (seed innermost), or the explicit ``points`` × ``seeds`` (random search:
    each point a dict of swept values; every point names the same fields). ``seeds`` is a count (0..n-1) or
    explicit seeds."""
    cls = type(config)
    if sweep and points:
        raise ConfigError("give either sweep (a grid) or points (explicit values), not both")
    sweep = dict(sweep or {})
    fields = list(sweep) if not points else list(points[0])
    check_names(cls, fields, what="sweepable field")
    for name in fields:
        if is_static(cls, name):
            raise ConfigError(
                f"{cls.__name__}.{name} is static (it fixes shapes or structure), so it cannot vary inside one "
                "compiled program; run one program per value instead"
            )
    for name, values in sweep.items():
        if isinstance(values, str | bytes) or len(values) == 0:
            raise ConfigError(f"sweep[{name!r}] must be a non-empty list of values, got {values!r}")
    seed_list = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    if not seed_list:
        raise ConfigError("seeds must be >= 1")
    if points:
        points = [dict(p) for p in points]
        for p in points:
            if sorted(p) != sorted(fields):
                raise ConfigError(f"every point must name the same fields {sorted(fields)}; got {sorted(p)}")
    else:
        points = [dict(zip(sweep, combo)) for combo in itertools.product(*sweep.values())] or [{}]
    rows = [dict(p, seed=s) for p in points for s in seed_list]
    for p in points:  # every swept value is range-checked like a single config
        validate(config.replace(**p))

    leaves = {}
    for f in dataclasses.fields(config):
        if is_static(cls, f.name):
            continue
        column = [row.get(f.name, getattr(config, f.name)) for row in rows]
        leaves[f.name] = jnp.asarray(np.asarray(column))
    batched = config.replace(**leaves)
    keys = jax.vmap(jax.random.key)(jnp.asarray([r["seed"] for r in rows], jnp.uint32))
    names = [
        "/".join(
            [f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in r.items() if k != "seed"]
            + [f"seed_{r['seed']}"]
        )
        for r in rows
    ]
    if len(set(names)) != len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise ConfigError(f"two runs would be named {twice[0]!r}: give distinct points (and distinct seeds)")
    return Runs(batched, keys, names, rows)
