"""Sequence (trajectory-window) sampling from the ring buffer, per env, respecting episode boundaries.

For recurrent learners (burn-in windows), DADS-style skill dynamics (s, s′ pairs along a skill), optimal-
transport imitation rewards (a stretch of an agent trajectory) and discount scheduling (first-k-step returns).

Rules, all enforced by index arithmetic rather than by checks the caller must remember:
- a window's start is drawn uniformly from ``[0, count − L]`` in logical time, so every row of it is written and
  none was overwritten after the window's start (a window never straddles the ring's write position);
- a window may run past the end of its episode into the next one: it is returned *with a mask*, ``mask[b, j]``
  true exactly while step ``j`` belongs to the episode of step 0 (the final step included). We chose masking over
  excluding such windows because exclusion needs every window's validity known before sampling (an O(buffer)
  pass or an index kept up to date on every add); masking keeps sampling O(B·L) and exactly uniform over starts,
  and a learner that wants full-episode windows only can weight by ``mask.all(-1)``.
- ``episode_start[b, j]`` marks steps that begin a new episode inside the window (recurrent-state resets).

What it deliberately does not do: pad or realign windows to episode starts, or sample whole variable-length
episodes (that is the demonstration store's per-episode access).
"""

from __future__ import annotations

from typing import Any

import chex
import jax
import jax.numpy as jnp
from flax import struct

from rlkit.buffers import ring


@struct.dataclass
class SequenceSample:
    """data: leaves ``[B, L, ...]``; mask: ``[B, L]`` bool, step in the first step's episode;
    episode_start: ``[B, L]`` bool, a new episode begins at this step; env, start: ``[B]`` int32 (for debugging
    and tests: the env column and the logical start row)."""

    data: Any
    mask: jax.Array
    episode_start: jax.Array
    env: jax.Array
    start: jax.Array


def sample_sequences(
    layout: ring.RingLayout, state: ring.ReplayState, key: jax.Array, batch_size: int, length: int
) -> SequenceSample:
    """``batch_size`` windows of ``length`` consecutive steps of one env each (static sizes).
    Needs ``can_sample(state, length)``; before that, results are meaningless (not an error under jit)."""
    if not 1 <= length <= layout.capacity_per_env:
        raise ValueError(f"length must be in [1, capacity_per_env={layout.capacity_per_env}], got {length}")
    q, env = ring.sample_positions(layout, state, key, (batch_size,), window=length)
    qs = q[:, None] + jnp.arange(length, dtype=jnp.int32)
    qs = jnp.minimum(qs, state.count - 1)  # only matters before can_sample holds
    data = ring.gather(layout, state, state.data, qs, env[:, None])
    ids = ring.gather(layout, state, state.episode_id, qs, env[:, None])
    mask = ids == ids[:, :1]
    episode_start = jnp.concatenate([jnp.zeros((batch_size, 1), bool), ids[:, 1:] != ids[:, :-1]], axis=1)
    chex.assert_shape(mask, (batch_size, length))
    return SequenceSample(data, mask, episode_start, env, q)
