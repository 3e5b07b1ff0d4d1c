"""Observation and action spaces of the env protocol, and the eager checks made against them.

Spaces are static metadata (numpy bounds, a shape, a dtype): they never enter a compiled program as data, so they
are plain frozen dataclasses, not pytrees. ``check`` runs on concrete arrays *and* on tracers, because under
``jit`` / ``vmap`` a shape and a dtype are known at trace time: a wrong action raises a ``ValueError`` that names
the env and the expected shape before anything compiles, instead of a broadcasting error deep inside the dynamics.

Deliberately not here: Gymnasium's Dict / Tuple / MultiDiscrete spaces. Structured observations are pytrees of
Boxes in a later issue if an env needs them; the Gymnasium bridge refuses them with a clear message.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np


@dataclass(frozen=True, eq=False)
class Box:
    """A box in R^shape, bounds inclusive; ``low`` / ``high`` may be ±inf."""

    low: np.ndarray
    high: np.ndarray
    dtype: np.dtype = field(default=np.dtype(np.float32))

    def __post_init__(self):
        low = np.asarray(self.low, dtype=self.dtype)
        high = np.asarray(self.high, dtype=self.dtype)
        low, high = np.broadcast_arrays(low, high)
        if np.any(low > high):
            raise ValueError(f"Box low must be <= high, got low={low}, high={high}")
        object.__setattr__(self, "low", np.array(low))
        object.__setattr__(self, "high", np.array(high))
        object.__setattr__(self, "dtype", np.dtype(self.dtype))

    @classmethod
    def uniform(cls, low: float, high: float, shape: tuple[int, ...], dtype=np.float32) -> Box:
        return cls(np.full(shape, low, dtype=dtype), np.full(shape, high, dtype=dtype), np.dtype(dtype))

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.low.shape)

    @property
    def bounded(self) -> bool:
        return bool(np.all(np.isfinite(self.low)) and np.all(np.isfinite(self.high)))

    def __eq__(self, other) -> bool:
        return (
            isinstance(other, Box)
            and self.dtype == other.dtype
            and self.shape == other.shape
            and np.array_equal(self.low, other.low)
            and np.array_equal(self.high, other.high)
        )

    def __hash__(self) -> int:
        return hash((self.shape, str(self.dtype), self.low.tobytes(), self.high.tobytes()))

    def __repr__(self) -> str:
        lo, hi = (self.low.flat[0], self.high.flat[0]) if self.low.size else (None, None)
        same = self.low.size and np.all(self.low == lo) and np.all(self.high == hi)
        bounds = f"{lo}, {hi}" if same else "…"
        return f"Box({bounds}, shape={self.shape}, dtype={self.dtype.name})"

    def sample(self, key: jax.Array) -> jax.Array:
        """Uniform in bounded dimensions, standard normal in unbounded ones."""
        low, high = jnp.asarray(self.low), jnp.asarray(self.high)
        finite = jnp.isfinite(low) & jnp.isfinite(high)
        k1, k2 = jax.random.split(key)
        u = jax.random.uniform(
            k1, self.shape, minval=jnp.where(finite, low, 0.0), maxval=jnp.where(finite, high, 1.0)
        )
        n = jax.random.normal(k2, self.shape)
        return jnp.where(finite, u, n).astype(self.dtype)

    def contains(self, x) -> bool:
        """Host-side membership test (concrete arrays only)."""
        x = np.asarray(x)
        return x.shape == self.shape and bool(np.all(x >= self.low) and np.all(x <= self.high))

    def check(self, x, *, what: str = "action", owner: str = "env") -> jax.Array:
        """Validate the shape and dtype kind of ``x`` (works on tracers) and cast it to this space's dtype."""
        shape = tuple(np.shape(x))
        dtype = np.dtype(x.dtype if hasattr(x, "dtype") else np.asarray(x).dtype)
        if shape != self.shape:
            raise ValueError(
                f"{owner}: {what} has shape {shape}, expected {self.shape} for {self!r}"
                + (" (to step a batch of envs, jax.vmap the step)" if len(shape) > len(self.shape) else "")
            )
        if not (np.issubdtype(dtype, np.floating) or (np.issubdtype(dtype, np.integer) and what != "action")):
            raise ValueError(f"{owner}: {what} has dtype {dtype}, expected a floating dtype for {self!r}")
        return jnp.asarray(x, dtype=self.dtype)


@dataclass(frozen=True)
class Discrete:
    """Integers {0, …, n-1}; an action is a scalar integer."""

    n: int

    def __post_init__(self):
        if int(self.n) < 1:
            raise ValueError(f"Discrete needs n >= 1, got {self.n}")

    shape: tuple[int, ...] = ()
    dtype: np.dtype = field(default=np.dtype(np.int32))

    def __repr__(self) -> str:
        return f"Discrete({self.n})"

    def sample(self, key: jax.Array) -> jax.Array:
        return jax.random.randint(key, (), 0, self.n, dtype=jnp.int32)

    def contains(self, x) -> bool:
        x = np.asarray(x)
        return x.shape == () and np.issubdtype(x.dtype, np.integer) and 0 <= int(x) < self.n

    def check(self, x, *, what: str = "action", owner: str = "env") -> jax.Array:
        shape = tuple(np.shape(x))
        dtype = np.dtype(x.dtype if hasattr(x, "dtype") else np.asarray(x).dtype)
        if not np.issubdtype(dtype, np.integer):
            raise ValueError(
                f"{owner}: {what} has dtype {dtype} and shape {shape}, expected a scalar integer in [0, {self.n}) "
                "(this env has a discrete action space; a continuous-action agent cannot drive it)"
            )
        if shape != ():
            raise ValueError(f"{owner}: {what} has shape {shape}, expected a scalar integer in [0, {self.n})")
        return jnp.asarray(x, dtype=jnp.int32)


Space = Box | Discrete
