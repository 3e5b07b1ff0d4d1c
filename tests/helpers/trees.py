"""Pytree comparisons shared by the tests."""

from __future__ import annotations

import jax
import numpy as np


def plain(x):
    """A leaf as a NumPy array (a typed PRNG key as its key data)."""
    if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
        x = jax.random.key_data(x)
    return np.asarray(x)


def assert_leaves_equal(a, b) -> None:
    """Same structure, every leaf bit-identical (typed keys compared by their key data)."""
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(plain(x), plain(y))
