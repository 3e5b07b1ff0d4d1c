"""Mixing several data sources into one batch at a fixed or scheduled ratio, exactly per batch.

RLPD samples half of every batch from demonstrations and half from online replay; SQIL does the same with
rewards 1 / 0 by source; annealed schemes move from demos to online data over training. What matters is that
the proportion holds in *every* batch (and, at a high update-to-data ratio, in every sub-batch the batch is
split into), not just in expectation — so rows are assigned to sources deterministically:
source ``k`` fills ``round(c_k·b) − round(c_{k−1}·b)`` rows of each sub-batch of ``b`` rows, with ``c_k`` the
cumulative fractions. With two sources that is exactly ``round(ratio·b)`` rows from the first.

Every source draws a full batch and the mixer takes row ``j`` from the source that owns position ``j``. That
costs K full-size draws instead of one, but keeps every shape static while the ratio is traced, so a schedule
or a swept ratio never recompiles; since each source's rows are i.i.d., taking a fixed subset of them is
still an i.i.d. sample.

What it deliberately does not do: sample the sources itself (pass batches; sources may be replay, demos or
anything with the same pytree structure), or relabel rewards by source (use the returned ``source`` column).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from rlkit.buffers.specs import check_matches, leaf_specs

Schedule = Callable[[jax.Array], jax.Array]


def fractions_at(fractions: Sequence[float] | jax.Array | Schedule, step: jax.Array | int = 0) -> jax.Array:
    """The source fractions at ``step``: a fixed sequence/array, or a schedule ``step -> fraction of source 0``
    (any optax schedule, e.g. ``optax.linear_schedule(1.0, 0.5, 100_000)`` anneals demos 100% → 50%), which
    gives ``[f, 1 − f]`` for two sources."""
    if callable(fractions):
        f = jnp.asarray(fractions(step), jnp.float32)
        return jnp.stack([f, 1.0 - f])
    return jnp.asarray(fractions, jnp.float32)


def row_sources(fractions: jax.Array, batch_size: int, num_splits: int = 1) -> jax.Array:
    """``[batch_size]`` int32: which source fills each row. Each of the ``num_splits`` consecutive sub-batches
    holds its own exact split (RLPD's interleaving at high update-to-data ratio)."""
    if batch_size % num_splits:
        raise ValueError(f"batch_size ({batch_size}) must be a multiple of num_splits ({num_splits})")
    b = batch_size // num_splits
    cum = jnp.cumsum(fractions / fractions.sum())
    bounds = jnp.round(cum * b).astype(jnp.int32)  # [K]; the last is b
    pos = jnp.arange(b, dtype=jnp.int32)
    per_split = (pos[:, None] >= bounds[None, :-1]).sum(axis=1).astype(jnp.int32)  # [b]
    return jnp.tile(per_split, num_splits)


def mix(
    batches: Sequence[Any],
    fractions: Sequence[float] | jax.Array | Schedule,
    step: jax.Array | int = 0,
    num_splits: int = 1,
) -> tuple[Any, jax.Array]:
    """One batch from several same-structure batches (leaves ``[B, ...]`` each).

    Returns ``(batch, source)``: ``batch`` leaves ``[B, ...]``; ``source`` ``[B]`` int32, the index of the
    batch each row came from (e.g. SQIL's reward = ``source == 0``)."""
    if len(batches) < 1:
        raise ValueError("mix needs at least one batch")
    frac = fractions_at(fractions, step)
    if frac.shape != (len(batches),):
        raise ValueError(f"fractions has shape {frac.shape}, expected ({len(batches)},): one per source")
    leaves0 = jax.tree.leaves(batches[0])
    batch_size = leaves0[0].shape[0]
    spec = jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape[1:], s.dtype), leaf_specs(batches[0]))
    for i, b in enumerate(batches[1:], start=1):
        check_matches(spec, b, (batch_size,), f"mix: batch {i}")
    source = row_sources(frac, batch_size, num_splits)

    def pick(*xs):
        stacked = jnp.stack(xs)  # [K, B, ...]
        return jnp.take_along_axis(
            stacked, source.reshape((1, batch_size) + (1,) * (stacked.ndim - 2)), axis=0
        )[0]

    return jax.tree.map(pick, *batches), source
