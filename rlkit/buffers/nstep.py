"""n-step returns from the ring buffer, computed at sample time on device.

For a sampled item at time ``t`` of env ``e`` it returns the discounted sum of up to ``n`` rewards
``Σ_{j<k} γ^j r_{t+j}`` (vector rewards: per term, elementwise), the bootstrap observation ``next_obs_{t+k-1}``
and the bootstrap discount ``γ^k · (1 − terminated_{t+k-1})``, where ``k ≤ n`` is the number of steps actually
taken. The sum stops at the end of the episode (``terminated`` *or* ``truncated``); a truncated episode still
bootstraps (its discount is ``γ^k``) from the stored pre-reset observation, which is why items must carry
``next_obs`` (from ``info["final_obs"]`` on the auto-reset step) rather than rely on the next row's ``obs``.
The sum also stops at the newest written row: a shorter k-step return with its own ``γ^k`` bootstrap is still
an unbiased target, so every written item stays sampleable (no bias against recent data).

What it deliberately does not do: store n-step targets (they are recomputed per batch, so γ stays sweepable
and nothing goes stale), or off-policy corrections (Retrace, importance weights).
"""

from __future__ import annotations

from typing import Any

import chex
import jax
import jax.numpy as jnp
from flax import struct

from rlkit.buffers import ring
from rlkit.buffers.specs import get_field


@struct.dataclass
class NStepSample:
    """transition: the first item (leaves ``[B, ...]``); returns: ``[B, *reward_shape]``;
    bootstrap_obs: ``next_obs`` after the last step taken (leaves ``[B, ...]``);
    discount: ``γ^k (1 − terminated)``, ``[B, *reward_shape]``; steps: ``k``, ``[B]`` int32."""

    transition: Any
    returns: jax.Array
    bootstrap_obs: Any
    discount: jax.Array
    steps: jax.Array


def sample_nstep(
    layout: ring.RingLayout,
    state: ring.ReplayState,
    key: jax.Array,
    batch_size: int,
    n: int,
    gamma: float | jax.Array,
    reward_field: str = "reward",
    next_obs_field: str = "next_obs",
) -> NStepSample:
    """Uniform over written items, each with its n-step target. ``gamma``: a scalar, or one per reward term
    (shape ``reward_shape``), and may be traced (swept). ``n`` and ``batch_size`` are static."""
    q, env = ring.sample_positions(layout, state, key, (batch_size,))
    return nstep_at(layout, state, q, env, n, gamma, reward_field, next_obs_field)


def nstep_at(
    layout: ring.RingLayout,
    state: ring.ReplayState,
    q: jax.Array,
    env: jax.Array,
    n: int,
    gamma: float | jax.Array,
    reward_field: str = "reward",
    next_obs_field: str = "next_obs",
) -> NStepSample:
    """The n-step targets of the items at logical rows ``q`` of envs ``env`` (``[B]`` each): the same target as
    ``sample_nstep``, for positions a sampler chose (prioritised or reshuffled replay)."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    batch_size = q.shape[0]
    qs = q[:, None] + jnp.arange(n, dtype=jnp.int32)  # [B, n]
    in_buffer = qs < state.count
    qs = jnp.minimum(qs, state.count - 1)
    ids = ring.gather(layout, state, state.episode_id, qs, env[:, None])
    # A done row keeps its episode's id, so "same id as step 0" includes the final step and nothing after it.
    taken = in_buffer & (ids == ids[:, :1])  # contiguous prefix, since ids never decrease
    steps = taken.sum(axis=1).astype(jnp.int32)  # >= 1

    reward = ring.gather(layout, state, get_field(state.data, reward_field), qs, env[:, None])  # [B, n, *R]
    reward_shape = reward.shape[2:]
    gamma = jnp.broadcast_to(jnp.asarray(gamma, reward.dtype), reward_shape)  # one γ per reward term
    powers = gamma[None] ** jnp.arange(n, dtype=reward.dtype).reshape((n,) + (1,) * len(reward_shape))
    weights = jnp.where(taken.reshape(taken.shape + (1,) * len(reward_shape)), powers[None], 0)
    returns = (weights * reward).sum(axis=1)  # [B, *R]

    last = q + steps - 1
    bootstrap_obs = ring.gather(layout, state, get_field(state.data, next_obs_field), last, env)
    terminated = ring.gather(layout, state, get_field(state.data, layout.terminated_field), last, env)
    expand = (batch_size,) + (1,) * len(reward_shape)
    alive = 1 - terminated.astype(reward.dtype).reshape(expand)
    discount = gamma[None] ** steps.astype(reward.dtype).reshape(expand) * alive  # [B, *R]
    transition = ring.gather(layout, state, state.data, q, env)
    chex.assert_shape(steps, (batch_size,))
    return NStepSample(transition, returns, bootstrap_obs, discount, steps)
