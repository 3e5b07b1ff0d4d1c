"""Mixing sources: exact per-batch and per-sub-batch proportions, schedules, and the source column."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rlkit.buffers import mix, row_sources


def batches(b):
    return [{"x": jnp.full((b, 2), k, jnp.float32), "k": jnp.full((b,), k, jnp.int32)} for k in range(3)]


@settings(max_examples=25, deadline=None, derandomize=True)
@given(ratio=st.floats(0.0, 1.0), splits=st.sampled_from([1, 2, 4]))
def test_two_source_proportions_hold_in_every_sub_batch(ratio, splits):
    B = 32
    out, source = jax.jit(mix, static_argnames="num_splits")(
        batches(B)[:2], jnp.array([ratio, 1 - ratio]), num_splits=splits
    )
    np.testing.assert_array_equal(np.asarray(out["k"]), np.asarray(source))  # rows come from the named source
    per = np.asarray(source).reshape(splits, B // splits)
    want = int(np.round(np.float32(ratio) * (B // splits)))
    assert ((per == 0).sum(axis=1) == want).all()


def test_three_sources_sum_to_the_batch():
    out, source = mix(batches(30), [0.5, 0.3, 0.2])
    assert np.bincount(np.asarray(source), minlength=3).tolist() == [15, 9, 6]
    assert out["x"].shape == (30, 2)


def test_schedule_anneals_from_demos_to_online_without_recompiling():
    schedule = optax.linear_schedule(1.0, 0.5, 100)
    f = jax.jit(lambda step: mix(batches(16)[:2], schedule, step)[1])
    assert (np.asarray(f(0)) == 0).all()
    assert (np.asarray(f(100)) == 0).sum() == 8
    assert (np.asarray(f(50)) == 0).sum() == 12
    assert f._cache_size() == 1


def test_mismatched_sources_are_rejected():
    a, b = batches(8)[:2]
    with pytest.raises(ValueError, match="'x' expected dtype float32"):
        mix([a, {**b, "x": b["x"].astype(jnp.int32)}], [0.5, 0.5])
    with pytest.raises(ValueError, match="one per source"):
        mix([a, b], [1.0])
    with pytest.raises(ValueError, match="multiple of num_splits"):
        row_sources(jnp.array([0.5, 0.5]), 10, 3)
