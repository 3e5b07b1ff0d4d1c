"""Running mean / variance statistics, merged exactly across batches and across a vmapped axis.

Used by observation normalization (``envs.wrappers.NormalizeObservation``) and, in later issues, by the
learners' observation / reward / Q-value normalizers. The update is Chan et al.'s parallel algorithm, so one
batch of B items updates the statistics exactly as B single-item updates would. With ``axis_name`` set, the
batch moments are first combined over that named ``vmap`` / ``shard_map`` axis, so every env (or device) keeps
identical statistics — the behaviour of Gymnasium's vector ``NormalizeObservation`` — inside a pure function.
Inside a data-parallel program (``rlkit.devices``: one run over several devices) they are also combined over the
run's devices, always, so the statistics every device keeps are those of the whole batch.

Deliberately not here: exponential moving averages (a different estimator; add it beside this one if needed).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from rlkit import devices


@struct.dataclass
class RunningMeanStd:
    mean: jax.Array
    var: jax.Array
    count: jax.Array  # float32[]: items seen (starts at a small epsilon so the first update is well defined)

    @classmethod
    def zeros(cls, shape: tuple[int, ...], epsilon: float = 1e-4) -> RunningMeanStd:
        return cls(
            jnp.zeros(shape, jnp.float32), jnp.ones(shape, jnp.float32), jnp.asarray(epsilon, jnp.float32)
        )

    @property
    def std(self) -> jax.Array:
        return jnp.sqrt(self.var)


def update(
    stats: RunningMeanStd, batch: jax.Array, axis_name: str | None = None, where: jax.Array | None = None
) -> RunningMeanStd:
    """Merge ``batch`` (``float[..., *stats.mean.shape]``; all leading axes are items) into ``stats``.

    ``where`` (bool, the batch's leading shape) counts only the items where it is true; a batch with no such item
    (over ``axis_name`` too) leaves the statistics unchanged. Over a named axis every member merges the same
    combined batch, so the statistics stay identical across it."""
    x = jnp.asarray(batch, jnp.float32).reshape((-1,) + stats.mean.shape)
    if where is None:
        n = jnp.asarray(x.shape[0], jnp.float32)
        total = jnp.sum(x, axis=0)
    else:
        w = jnp.reshape(jnp.asarray(where, jnp.float32), (-1,) + (1,) * len(stats.mean.shape))
        n = jnp.sum(w)
        total = jnp.sum(w * x, axis=0)
    axes = tuple(a for a in (axis_name, devices.batch_axis()) if a is not None)
    if axes:
        n = jax.lax.psum(n, axes)
        total = jax.lax.psum(total, axes)
    batch_mean = total / (n if where is None else jnp.maximum(n, 1.0))
    sq = jnp.sum((x - batch_mean) ** 2 if where is None else w * (x - batch_mean) ** 2, axis=0)
    if axes:
        sq = jax.lax.psum(sq, axes)
    batch_var = sq / (n if where is None else jnp.maximum(n, 1.0))
    delta = batch_mean - stats.mean
    count = stats.count + n
    mean = stats.mean + delta * n / count
    m2 = stats.var * stats.count + batch_var * n + delta**2 * stats.count * n / count
    new = RunningMeanStd(mean=mean, var=m2 / count, count=count)
    if where is None:
        return new
    return jax.tree.map(lambda u, s: jnp.where(n > 0, u, s), new, stats)


def normalize(
    stats: RunningMeanStd, x: jax.Array, clip: float | None = 10.0, epsilon: float = 1e-8
) -> jax.Array:
    y = (x - stats.mean) / jnp.sqrt(stats.var + epsilon)
    return y if clip is None else jnp.clip(y, -clip, clip)
