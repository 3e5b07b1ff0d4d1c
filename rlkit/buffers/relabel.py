"""Hindsight goal (or skill-target) relabelling: goals drawn from the future of the same episode.

Two traditions, both supported through one ``GoalMixture``:
- OGBench (``impls/utils/datasets.py``, ``GCDataset.sample_goals``): with probability ``p_current`` the goal is
  the current state, else with ``p_future / (1 − p_current)`` a future state of the same trajectory, else a
  uniformly random state of the dataset. Future states are either uniform over the rest of the episode
  (``future="uniform"``; OGBench rounds a linear interpolation, we draw the integer uniformly so the endpoints
  are not under-weighted) or ``t + Δ`` with ``Δ ~ Geometric(1 − γ)`` clamped to the episode's last state
  (``future="geometric_clamped"``, OGBench's ``value_geom_sample``; the clamp piles the tail mass on the final
  state).
- Contrastive RL (JaxGCRL's ``flatten_crl_fn``, sgcrl): future states with weights ``γ^(Δ−1)`` renormalised over
  the states that exist, ``Δ ∈ [1, M]`` (``future="geometric"``), drawn exactly by inverting the truncated
  geometric CDF (no clamp, no rejection).

States are indexed so that ``Δ = 0`` is the current observation ``s_t`` and ``Δ ≥ 1`` is ``s_{t+Δ}``, the
``next_obs`` of step ``t+Δ−1``; ``M`` counts the future states of the episode that are in the store (for an
episode still running in the replay buffer, up to the newest one).

What it deliberately does not do: compute goal-conditioned rewards or masks (``goal_offset == 0`` tells success
for the current-goal case; the learner decides), or map states to a goal space (pass ``goal_field``, or map
the returned states yourself).
"""

from __future__ import annotations

from typing import Any, Literal

import jax
import jax.numpy as jnp
from flax import struct

from rlkit.buffers import ring
from rlkit.buffers.specs import get_field

FutureSampling = Literal["geometric", "geometric_clamped", "uniform"]
SOURCE_CURRENT, SOURCE_FUTURE, SOURCE_RANDOM = 0, 1, 2


@struct.dataclass
class GoalMixture:
    """Where goals come from. Probabilities and γ are pytree leaves (sweepable, vmappable); ``future`` is static.

    p_current + p_future + p_random must be 1 (checked on the host when concrete)."""

    p_current: float | jax.Array = 0.0
    p_future: float | jax.Array = 1.0
    p_random: float | jax.Array = 0.0
    gamma: float | jax.Array = 0.99
    future: FutureSampling = struct.field(pytree_node=False, default="geometric")

    def __post_init__(self):
        if self.future not in ("geometric", "geometric_clamped", "uniform"):
            raise ValueError(
                f"future must be 'geometric', 'geometric_clamped' or 'uniform', got {self.future!r}"
            )
        try:
            total = float(self.p_current) + float(self.p_future) + float(self.p_random)
        except (TypeError, jax.errors.ConcretizationTypeError):
            return  # traced (inside vmap/jit): cannot check here
        if abs(total - 1.0) > 1e-5:
            raise ValueError(
                f"p_current + p_future + p_random must be 1, got {self.p_current} + {self.p_future} + {self.p_random}"
            )


@struct.dataclass
class GoalSample:
    """transition: leaves ``[B, ...]``; goal: the goal states (``goal_field``'s structure, ``[B, ...]``);
    goal_offset: ``Δ`` (0 = current state, ≥ 1 future, −1 random), ``[B]`` int32; source: 0 current, 1 future,
    2 random, ``[B]`` int32."""

    transition: Any
    goal: Any
    goal_offset: jax.Array
    source: jax.Array


def future_offsets(key: jax.Array, num_future: jax.Array, mixture: GoalMixture) -> jax.Array:
    """``Δ ∈ [1, num_future]`` per the mixture's ``future`` rule; ``num_future ≥ 1`` int32 of any shape."""
    m = num_future.astype(jnp.float32)
    u = jax.random.uniform(key, num_future.shape, minval=0.0, maxval=1.0)
    gamma = jnp.asarray(mixture.gamma, jnp.float32)
    log_g = jnp.log(jnp.minimum(gamma, 1.0 - 1e-7))
    if mixture.future == "uniform":
        delta = 1 + jnp.floor(u * m)
    elif mixture.future == "geometric":
        # P(Δ) ∝ γ^(Δ−1) on [1, M]: F(Δ) = (1 − γ^Δ) / (1 − γ^M); the smallest Δ with F(Δ) > u is
        # floor(log(1 − u(1 − γ^M)) / log γ) + 1.
        tail = -jnp.expm1(m * log_g)  # 1 − γ^M, accurate for γ near 1
        delta = jnp.floor(jnp.log1p(-u * tail) / log_g) + 1
    else:  # geometric_clamped: Δ ~ Geometric(1 − γ) on {1, 2, ...} (numpy's convention), clamped to M
        delta = jnp.floor(jnp.log1p(-u) / log_g) + 1
    return jnp.clip(delta, 1, m).astype(jnp.int32)


def choose_sources(key: jax.Array, shape: tuple[int, ...], mixture: GoalMixture) -> jax.Array:
    u = jax.random.uniform(key, shape)
    p_cur = jnp.asarray(mixture.p_current, jnp.float32)
    p_fut = jnp.asarray(mixture.p_future, jnp.float32)
    return jnp.where(u < p_cur, SOURCE_CURRENT, jnp.where(u < p_cur + p_fut, SOURCE_FUTURE, SOURCE_RANDOM))


def sample_goals(
    layout: ring.RingLayout,
    state: ring.ReplayState,
    key: jax.Array,
    batch_size: int,
    mixture: GoalMixture,
    obs_field: str = "obs",
    next_obs_field: str = "next_obs",
) -> GoalSample:
    """Uniform transitions from the ring buffer, each with a relabelled goal state (an observation)."""
    k_pos, k_src, k_off, k_rand = jax.random.split(key, 4)
    q, env = ring.sample_positions(layout, state, k_pos, (batch_size,))
    last = ring.episode_last(layout, state, q, env)
    delta = future_offsets(k_off, last - q + 1, mixture)
    source = choose_sources(k_src, (batch_size,), mixture)
    rq, renv = ring.sample_positions(layout, state, k_rand, (batch_size,))

    obs = get_field(state.data, obs_field)
    next_obs = get_field(state.data, next_obs_field)
    current = ring.gather(layout, state, obs, q, env)
    future = ring.gather(layout, state, next_obs, q + delta - 1, env)
    random = ring.gather(layout, state, next_obs, rq, renv)

    def pick(c, f, r):
        s = source.reshape(source.shape + (1,) * (c.ndim - 1))
        return jnp.where(s == SOURCE_CURRENT, c, jnp.where(s == SOURCE_FUTURE, f, r))

    goal = jax.tree.map(pick, current, future, random)
    offset = jnp.where(source == SOURCE_CURRENT, 0, jnp.where(source == SOURCE_FUTURE, delta, -1))
    transition = ring.gather(layout, state, state.data, q, env)
    return GoalSample(transition, goal, offset.astype(jnp.int32), source.astype(jnp.int32))
