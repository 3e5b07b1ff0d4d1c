"""The on-device ring storage behind the online replay buffer: state, ``init``, ``add``, ``add_chunk`` and the
index arithmetic every sampler shares.

Layout: every leaf is stored time-major per env, ``[capacity_per_env, num_envs, ...]`` (``T`` rows of ``E``
envs). We chose time-major over ``[num_envs, T, ...]`` because the hot path, ``add`` of one step from all
envs, is then a single contiguous row write (``dynamic_update_slice`` of ``E`` items, in place under donation),
and a scanned rollout chunk ``[L, E, ...]`` is one contiguous slab (a scatter of ``L`` rows). All envs advance
together, so one write row and one count serve every env; an env's own history is a column, which keeps
episode boundaries and sequence windows per env.

Logical time: row ``q`` in ``[0, count)`` is the ``q``-th oldest written row; its physical row is
``(write_row - count + q) mod T``. Samplers draw logical positions only from ``[0, count - window]``, so they
can never touch an unwritten slot or a slot overwritten after the window's start.

Episode ids: each row also stores an int32 episode id per env (incremented after every ``terminated or
truncated``). Ids are non-decreasing along logical time in an env's column, so "where does this episode end
in the buffer" is a binary search (``O(log T)`` gathers) instead of a scan, and "is this window one episode"
is one comparison. Cost: 4 bytes per item.

What it deliberately does not do: prioritised sampling, variable ``num_envs`` per call, or host-side storage.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import chex
import jax
import jax.numpy as jnp
from flax import struct

from rlkit.buffers.specs import check_matches, get_field, leaf_specs, path_name


@struct.dataclass
class ReplayState:
    """The buffer's whole state: a pytree, so it jits, scans, vmaps over runs, shards and checkpoints.

    data:       the items, every leaf ``[T, E, ...]``.
    episode_id: ``[T, E]`` int32, the episode each row belongs to (per env, non-decreasing in time).
    cursor:     ``[2 + E]`` int32: ``write_row`` (the physical row the next ``add`` writes), ``count`` (valid
                rows, the same for every env, at most ``T``), then ``next_episode_id`` per env. One small array
                rather than three scalars because every output buffer of a jitted ``add`` costs a fixed
                dispatch overhead on the host: three scalars made ``add`` ~2x slower (measured, CPU).
    """

    data: Any
    episode_id: jax.Array
    cursor: jax.Array
    sampler: Any = None  # the sampling scheme's state (``rlkit.buffers.sampling``; None for uniform replay)

    @property
    def write_row(self) -> jax.Array:
        return self.cursor[..., 0]

    @property
    def count(self) -> jax.Array:
        return self.cursor[..., 1]

    @property
    def next_episode_id(self) -> jax.Array:
        return self.cursor[..., 2:]


def _cursor(write_row: jax.Array, count: jax.Array, next_episode_id: jax.Array) -> jax.Array:
    return jnp.concatenate(
        [jnp.stack([write_row, count]).astype(jnp.int32), next_episode_id.astype(jnp.int32)]
    )


@dataclasses.dataclass(frozen=True)
class RingLayout:
    """Static description of a ring buffer (shapes, field names); hashable, never traced."""

    spec: Any
    capacity_per_env: int
    num_envs: int
    terminated_field: str = "terminated"
    truncated_field: str = "truncated"

    def __hash__(self) -> int:  # the spec holds ShapeDtypeStructs in arbitrary containers
        return hash((self.capacity_per_env, self.num_envs, self.terminated_field, self.truncated_field))


def make_layout(
    example: Any, capacity: int, num_envs: int, terminated_field: str, truncated_field: str
) -> RingLayout:
    if num_envs < 1:
        raise ValueError(f"num_envs must be >= 1, got {num_envs}")
    if capacity < num_envs:
        raise ValueError(f"capacity ({capacity}) must be at least num_envs ({num_envs})")
    if capacity % num_envs:
        raise ValueError(
            f"capacity ({capacity}) must be a multiple of num_envs ({num_envs}): each env owns capacity/num_envs rows"
        )
    spec = leaf_specs(example)
    for name in (terminated_field, truncated_field):
        flag = get_field(spec, name)
        if not isinstance(flag, jax.ShapeDtypeStruct) or flag.shape != ():
            raise ValueError(f"field {name!r} must be one scalar per item, got {flag}")
    return RingLayout(spec, capacity // num_envs, num_envs, terminated_field, truncated_field)


def init(layout: RingLayout) -> ReplayState:
    T, E = layout.capacity_per_env, layout.num_envs
    data = jax.tree.map(lambda s: jnp.zeros((T, E, *s.shape), s.dtype), layout.spec)
    return ReplayState(
        data=data, episode_id=jnp.zeros((T, E), jnp.int32), cursor=jnp.zeros((2 + E,), jnp.int32)
    )


def _done(layout: RingLayout, items: Any) -> jax.Array:
    term = get_field(items, layout.terminated_field)
    trunc = get_field(items, layout.truncated_field)
    return jnp.logical_or(term.astype(bool), trunc.astype(bool))


def add(layout: RingLayout, state: ReplayState, step: Any) -> ReplayState:
    """Writes one step of all envs: every leaf ``[E, ...]``. In place when the state is donated."""
    check_matches(layout.spec, step, (layout.num_envs,), "add")
    T = layout.capacity_per_env
    row = state.write_row
    data = jax.tree.map(
        lambda buf, x: jax.lax.dynamic_update_index_in_dim(buf, x, row, axis=0), state.data, step
    )
    episode_id = jax.lax.dynamic_update_index_in_dim(state.episode_id, state.next_episode_id, row, axis=0)
    next_episode_id = state.next_episode_id + _done(layout, step).astype(jnp.int32)
    return state.replace(
        data=data,
        episode_id=episode_id,
        cursor=_cursor((row + 1) % T, jnp.minimum(state.count + 1, T), next_episode_id),
    )


def add_chunk(layout: RingLayout, state: ReplayState, chunk: Any) -> ReplayState:
    """Writes ``L`` consecutive steps of all envs at once (a scanned rollout): every leaf ``[L, E, ...]``."""
    leaves = jax.tree.leaves(chunk)
    if not leaves:
        raise ValueError("add_chunk: empty chunk")
    L = leaves[0].shape[0] if leaves[0].ndim else 0
    T = layout.capacity_per_env
    if not 1 <= L <= T:
        raise ValueError(f"add_chunk: chunk length must be in [1, capacity_per_env={T}], got {L}")
    check_matches(layout.spec, chunk, (L, layout.num_envs), "add_chunk")
    rows = (state.write_row + jnp.arange(L, dtype=jnp.int32)) % T
    data = jax.tree.map(
        lambda buf, x: buf.at[rows].set(x, unique_indices=True, mode="promise_in_bounds"), state.data, chunk
    )
    done = _done(layout, chunk).astype(jnp.int32)  # [L, E]
    ids = (
        state.next_episode_id[None] + jnp.cumsum(done, axis=0) - done
    )  # exclusive cumsum: a done row keeps its id
    episode_id = state.episode_id.at[rows].set(ids, unique_indices=True, mode="promise_in_bounds")
    cursor = _cursor(
        (state.write_row + L) % T, jnp.minimum(state.count + L, T), state.next_episode_id + done.sum(0)
    )
    return state.replace(data=data, episode_id=episode_id, cursor=cursor)


def end_episodes(layout: RingLayout, state: ReplayState) -> ReplayState:
    """Ends every env's running episode at the newest written row: that row is marked truncated (its ``next_obs``
    is still the true next observation, so a learner bootstraps from it, as for a time limit) and the next
    ``add`` starts a new episode id. For loops that cannot continue an episode where the data stopped (a host run
    resumed with fresh Gymnasium episodes): without it n-step, sequence and goal samplers would see one episode
    spliced from two. Envs whose newest row already ended an episode, and an empty buffer, are left as they are."""
    T = layout.capacity_per_env
    newest = (state.write_row - 1) % T
    rows = jax.tree.map(lambda buf: jax.lax.dynamic_index_in_dim(buf, newest, 0, keepdims=False), state.data)
    running = jnp.logical_and(~_done(layout, rows), state.count > 0)  # [E]

    truncated = get_field(rows, layout.truncated_field)
    marked = jnp.where(running, jnp.ones_like(truncated), truncated)

    def mark(path, buf):
        if path_name(path) != layout.truncated_field:
            return buf
        return jax.lax.dynamic_update_index_in_dim(buf, marked, newest, axis=0)

    data = jax.tree_util.tree_map_with_path(mark, state.data)
    cursor = _cursor(state.write_row, state.count, state.next_episode_id + running.astype(jnp.int32))
    return state.replace(data=data, cursor=cursor)


# ---- index arithmetic shared by every sampler -------------------------------------------------------------


def physical_row(layout: RingLayout, state: ReplayState, q: jax.Array) -> jax.Array:
    """Logical position (0 = oldest valid row) -> physical row."""
    return jnp.mod(state.write_row - state.count + q, layout.capacity_per_env)


def gather(layout: RingLayout, state: ReplayState, tree: Any, q: jax.Array, env: jax.Array) -> Any:
    """Items at logical rows ``q`` of envs ``env`` (same shape, any rank) from ``tree`` (leaves ``[T, E, ...]``).

    One flat gather per leaf: ``[T, E, ...]`` reshapes for free to ``[T*E, ...]``; ``q`` is always inside
    ``[0, count)`` here, so bounds checks are promised away."""
    flat = physical_row(layout, state, q) * layout.num_envs + env
    E_T = layout.capacity_per_env * layout.num_envs

    def take(leaf):
        return leaf.reshape(E_T, *leaf.shape[2:]).at[flat].get(mode="promise_in_bounds")

    return jax.tree.map(take, tree)


def sample_positions(
    layout: RingLayout, state: ReplayState, key: jax.Array, shape: tuple[int, ...], window: int = 1
) -> tuple[jax.Array, jax.Array]:
    """Uniform ``(q, env)`` over every window of ``window`` rows that lies inside the written data.

    Every env has the same number of starts, so one uniform integer over ``starts * E`` is exactly uniform
    over (start, env) pairs."""
    starts = jnp.maximum(
        state.count - (window - 1), 1
    )  # callers check can_sample; keep randint's range non-empty
    flat = jax.random.randint(key, shape, 0, starts * layout.num_envs, dtype=jnp.int32)
    return flat // layout.num_envs, flat % layout.num_envs


def sample_recent(
    layout: RingLayout, state: ReplayState, key: jax.Array, batch_size: int, window: int
) -> Any:
    """Uniform over the newest ``window`` items (all envs' newest ``ceil(window / E)`` rows; fewer while the
    buffer holds less): a small recent-policy window, e.g. an adversarial imitation discriminator's generator
    samples (imitation keeps the last 512). Leaves ``[batch_size, ...]``."""
    rows = jnp.minimum(state.count, -(-window // layout.num_envs))
    flat = jax.random.randint(key, (batch_size,), 0, jnp.maximum(rows, 1) * layout.num_envs, dtype=jnp.int32)
    q = state.count - jnp.maximum(rows, 1) + flat // layout.num_envs
    return gather(layout, state, state.data, jnp.maximum(q, 0), flat % layout.num_envs)


def episode_last(layout: RingLayout, state: ReplayState, q: jax.Array, env: jax.Array) -> jax.Array:
    """Last logical row of the episode containing ``(q, env)`` that is in the buffer (binary search on ids).

    If the episode is still running, this is the newest row (``count - 1``)."""
    my_id = gather(layout, state, state.episode_id, q, env)
    lo, hi = (
        q,
        jnp.broadcast_to(state.count, q.shape),
    )  # invariant: id[lo] == my_id; hi == count or id[hi] > my_id
    for _ in range(math.ceil(math.log2(layout.capacity_per_env + 1))):
        mid = (lo + hi) // 2
        same = gather(layout, state, state.episode_id, jnp.minimum(mid, state.count - 1), env) == my_id
        lo = jnp.where(same, mid, lo)
        hi = jnp.where(same, hi, mid)
    return lo


def can_sample(state: ReplayState, min_rows: int | jax.Array = 1) -> jax.Array:
    """Whether at least ``min_rows`` rows per env are written (a window of that length fits)."""
    return state.count >= min_rows


def size(layout: RingLayout, state: ReplayState) -> jax.Array:
    """Valid items in the buffer (rows × envs)."""
    return state.count * layout.num_envs


def sample(layout: RingLayout, state: ReplayState, key: jax.Array, batch_size: int) -> Any:
    """Uniform over every written item; returns the item pytree with leaves ``[batch_size, ...]``."""
    q, env = sample_positions(layout, state, key, (batch_size,))
    batch = gather(layout, state, state.data, q, env)
    chex.assert_tree_shape_prefix(batch, (batch_size,))
    return batch
