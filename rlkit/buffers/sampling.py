"""Which slots of the ring buffer a learner trains on: uniform, random reshuffling (RR-C), proportional
prioritised replay (PER) and RR-M, as pure functions over a small ``SamplerState`` pytree, on device, safe
under ``jit``, ``vmap`` over runs and ``lax.scan``.

    sampler = make_sampler("per", capacity_per_env=T, num_envs=E)
    s = sampler.init()
    s = sampler.on_add(s, rows, count_after)                 # the physical rows the ring just wrote
    s, slots, weights = sampler.draw(s, key, 256, count, beta=0.4)
    s = sampler.update(s, slots, jnp.abs(td_error), alpha=0.6)

Slots: a slot id is ``physical_row * E + env`` in ``[0, N)``, ``N = T * E``, i.e. the index into the ring's
``[T, E, ...]`` leaves reshaped to ``[N, ...]`` (``slots_to_rows`` splits it again). The ring writes physical
rows 0, 1, 2, ... and then wraps, so the written slots are exactly the prefix ``slot < count * E`` until the
ring is full, and all ``N`` afterwards; samplers take ``count`` where they need validity and never return an
unwritten slot while at least one slot is written (with none written they return slot 0s: callers check
``can_sample``, as for the ring's own samplers). ``on_add`` must see every write, with the rows of that write.

Modes (the state holds only what its mode needs; the other fields are ``None``):

- ``uniform``: with-replacement uniform over the written slots (the law of ``ring.sample_positions``); no
  state.
- ``rr``, RR-C (Fujita 2025, "Experience Replay with Random Reshuffling", arXiv 2503.02269; reference
  ``rrc/rrc.py`` of pfnet-research/errr): one random permutation of all ``N`` slot ids per epoch, consumed in
  order; an entry whose slot is not yet written when the pointer passes it is skipped (discarded for this
  epoch); when the permutation runs out a fresh one is drawn and the batch continues in it, so a batch may
  straddle two epochs (and, with fewer written slots than ``batch_size``, several, repeating slots).
  Consequences: an item added mid-epoch is drawn in this epoch iff its slot's position has not been passed
  yet; an item that overwrites a slot (full ring) is drawn in this epoch iff that slot has not been drawn in
  it yet — the permutation is over slots, not items, so an overwritten item that had not been drawn never
  is. On a full static buffer every slot is drawn exactly once per epoch. State: ``perm`` / ``pos`` (the
  permutation and its inverse), ``ptr`` (positions ``< ptr`` are passed) and ``remaining``, an int32 count
  tree over permutation *positions* whose leaf ``i`` is 1 iff position ``i`` is not passed and ``perm[i]`` is
  written. ``draw`` takes the first ``batch_size`` ones in position order by k-th-one descents, zeroes them
  and moves ``ptr`` past the last one taken; ``on_add`` sets the leaves of written slots whose position is
  ``>= ptr``. That is the reference's pop loop exactly (same slots, same order, given the permutation) in
  ``O(B log N)`` per draw, where the direct static-shape version (mask the permutation by validity, cumsum,
  take the first ``B``) costs ``O(N)``; the permutation itself (a sort) and the tree rebuild cost
  ``O(N log N)`` once per epoch. The first ``draw`` starts the first epoch (``init`` takes no key).
- ``per``, proportional PER (Schaul et al. 2016): a float32 sum tree over slots (``[2P]``, ``P`` the next
  power of two ``>= N``, root at 1, leaves at ``[P, 2P)``) holding ``p_i = (|δ_i| + eps)^α``, ``eps = 1e-6``;
  unwritten leaves are 0. ``draw`` descends from the root with ``u ~ U[0, Σp)``, going right only into a
  non-empty subtree (so float round-off can never land on a 0 leaf) and clipping into ``[0, count·E)``.
  ``update`` sets the leaves and then recomputes each parent on the touched paths level by level as
  ``left + right`` (a set, not an add of differences): every internal node is always the float sum of its
  children, so the tree is a function of its leaves, no round-off accumulates over millions of updates, a
  slot drawn twice in a batch is harmless (it keeps the larger priority, deterministically) and a full
  rebuild gives the same bits. New slots get the running max of stored priorities (starts at 1.0).
  ``α = 0`` stores exactly 1.0 everywhere, i.e. exactly uniform over written slots.
  IS weights: ``w_i = (N_valid · P(i))^(−β) / max_j w_j`` over the *batch* (as errr's ``rrm/utils.py``,
  Fujimoto's LAP code and Dopamine do), computed in log space. Schaul's paper divides by the max over the
  whole buffer, which needs a min-tree kept next to the sum tree; the batch-max weights are those times one
  factor ``>= 1`` per batch (a per-batch step-size scale), with the same ratios within a batch.
  (``N_valid`` and ``Σp`` cancel in the ratio; they are kept so the formula reads like the paper's.)
- ``rr-m``, RR-M (same paper; reference ``rrm/utils.py``): PER's tree, per-slot actual sample counts and
  expected counts (``Σ_draws p_i · B / Σp``). Each draw: slots with ``actual > expected`` are oversampled and
  their priority is scaled by ``1e-8`` in a second tree; ``batch_size`` slots are drawn *without*
  replacement from it (a bounded ``lax.while_loop``: zero the slots already kept in the second tree, redraw
  only the duplicates; each round keeps at least one new slot, so ``batch_size`` rounds are enough and the
  bound never truncates while ``count·E >= batch_size``; with fewer written slots duplicates are unavoidable
  and remain); then ``expected += p · B / Σp`` over all ``N``
  slots (``O(N)`` per draw, as the reference) and ``actual[drawn] += 1``. IS weights come from the *first*
  tree, as PER (an approximation, as in the reference). ``on_add``: an overwritten slot that had
  ``expected > 0`` gets both counts reset to 0, and then all expected counts are rescaled so
  ``Σexpected = Σactual`` (the reference's rule; one rescale per write of ``L·E`` slots is the same as the
  reference's one per item). Two representation choices, same law as the reference: (1) the second tree is
  rebuilt in every draw from the first tree's leaves and the oversampled mask (``O(N)``, the order the
  expected-count update costs anyway); the reference updates it where the mask changed, which gives the same
  leaves and — since every node is the sum of its children — the same tree, so the state needs neither the
  second tree nor the mask. (2) the state stores ``deficit = expected − actual`` (float32) instead of
  ``expected``: the reference's float64 is not available on device by default, and a float32 expected count
  past a few thousand adding increments of ``B/N ≈ 1e-3`` per draw rounds each one by up to ~25%,
  which would bias the ``actual > expected`` test that drives the whole scheme; the deficit stays O(1), so
  the same increments are exact to ~1e-7. ``expected_counts(state)`` gives ``deficit + actual``.

Rules: ``mode``, ``capacity_per_env``, ``num_envs`` and ``batch_size`` are static; ``count``, ``alpha`` and
``beta`` may be traced (swept per run under ``vmap``); Python-number ``alpha`` / ``beta`` outside ``[0, 1]``
are rejected, traced ones are the caller's to check. ``alpha`` is applied when a priority is stored
(``update``), as in PER; ``draw`` accepts ``alpha`` so that every mode's call site looks the same, but does
not use it. ``priorities`` must be finite. Under ``vmap`` a ``lax.cond`` on per-run data runs both branches,
so there RR-C pays its ``O(N log N)`` epoch rollover on every draw, and RR-M's rescale on every ``on_add``.

Why by hand rather than flashbax: flashbax's prioritised buffer is a separate buffer type with its own
storage, so it cannot share our ring storage, episode ids or the n-step / sequence samplers built on them,
and it has no random reshuffling.

What it deliberately does not do: store or gather items (slots index the ring's storage; the data sources
do the gathering), stratified or rank-based PER, β annealing (pass the scheduled β), Schaul's buffer-wide
weight normalisation (see above), or check that an n-step window starting at a slot is complete (the n-step
sampler stops at the newest row).
"""

from __future__ import annotations

import dataclasses
import functools
import numbers
from collections.abc import Callable

import jax
import jax.numpy as jnp
from flax import struct

MODES = ("uniform", "rr", "per", "rr-m")
PRIORITY_EPS = 1e-6  # stored priority (|δ| + eps)^α: a zero TD error keeps a slot drawable
OVERSAMPLED_SCALE = 1e-8  # RR-M: the factor on an oversampled slot's priority in the second tree
DEFAULT_ALPHA = 0.6  # Schaul et al.'s proportional variant
DEFAULT_BETA = 0.4


@struct.dataclass
class SamplerState:
    """A sampler's state: a pytree (jits, vmaps over runs, checkpoints); unused fields are ``None``.

    perm:         rr: ``[N]`` int32, the slot at each permutation position of the current epoch.
    pos:          rr: ``[N]`` int32, the inverse: the position of each slot.
    remaining:    rr: ``[2P]`` int32 count tree over positions; leaf ``i`` is 1 iff position ``i`` is not
                  passed and ``perm[i]`` is written. ``remaining[1]``: ones left in this epoch.
    ptr:          rr: int32 scalar, positions ``< ptr`` are passed (``N`` before the first epoch).
    priorities:   per, rr-m: ``[2P]`` float32 sum tree over slots of ``(|δ| + eps)^α`` (0: unwritten).
    max_priority: per, rr-m: float32 scalar, the running max of stored priorities (starts at 1.0).
    actual:       rr-m: ``[N]`` int32, times each slot was drawn since it was last written.
    deficit:      rr-m: ``[N]`` float32, expected − actual sample count (oversampled iff ``< 0``).
    """

    perm: jax.Array | None = None
    pos: jax.Array | None = None
    remaining: jax.Array | None = None
    ptr: jax.Array | None = None
    priorities: jax.Array | None = None
    max_priority: jax.Array | None = None
    actual: jax.Array | None = None
    deficit: jax.Array | None = None


@dataclasses.dataclass(frozen=True)
class Sampler:
    """Pure functions of one sampling scheme over a ring of ``capacity_per_env`` rows of ``num_envs`` envs.

    init() -> SamplerState
    on_add(state, rows, count_after) -> state            rows: int32 [L] physical rows just written (all envs)
    draw(state, key, batch_size, count, *, alpha, beta) -> (state, slots int32 [B], weights float32 [B])
    update(state, slots, priorities, *, alpha) -> state  priorities: float32 [B], the learner's |TD error|
    """

    mode: str
    capacity_per_env: int
    num_envs: int
    init: Callable[[], SamplerState]
    on_add: Callable[..., SamplerState]
    draw: Callable[..., tuple[SamplerState, jax.Array, jax.Array]]
    update: Callable[..., SamplerState]

    @property
    def num_slots(self) -> int:
        return self.capacity_per_env * self.num_envs


def make_sampler(mode: str, capacity_per_env: int, num_envs: int) -> Sampler:
    """The sampler ``mode`` (one of ``MODES``) over a ring of ``capacity_per_env`` × ``num_envs`` slots."""
    if mode not in MODES:
        raise ValueError(f"unknown sampler mode {mode!r}; expected one of {MODES}")
    if capacity_per_env < 1 or num_envs < 1:
        raise ValueError(f"capacity_per_env ({capacity_per_env}) and num_envs ({num_envs}) must both be >= 1")
    n = capacity_per_env * num_envs
    geo = _Geometry(n, num_envs, max(n - 1, 0).bit_length())
    p = functools.partial
    if mode == "uniform":
        fns = (SamplerState, p(_noop_add, geo), p(_uniform_draw, geo), p(_noop_update, geo))
    elif mode == "rr":
        fns = (p(_rr_init, geo), p(_rr_add, geo), p(_rr_draw, geo), p(_noop_update, geo))
    elif mode == "per":
        fns = (p(_per_init, geo), p(_per_add, geo), p(_per_draw, geo), p(_per_update, geo))
    else:
        fns = (p(_rrm_init, geo), p(_rrm_add, geo), p(_rrm_draw, geo), p(_per_update, geo))
    return Sampler(mode, capacity_per_env, num_envs, *fns)


def rows_to_slots(rows: jax.Array, num_envs: int) -> jax.Array:
    """The slot ids of physical ``rows`` (int32 ``[L]``) for every env: ``[L * num_envs]``, row-major."""
    rows = jnp.asarray(rows, jnp.int32).reshape(-1)
    return (rows[:, None] * num_envs + jnp.arange(num_envs, dtype=jnp.int32)).reshape(-1)


def slots_to_rows(slots: jax.Array, num_envs: int) -> tuple[jax.Array, jax.Array]:
    """``(physical_row, env)`` of each slot id."""
    return slots // num_envs, slots % num_envs


def expected_counts(state: SamplerState) -> jax.Array:
    """rr-m: each slot's expected sample count ``Σ_draws p_i · B / Σp`` since it was last written."""
    return state.deficit + state.actual.astype(jnp.float32)


# ---- checks ------------------------------------------------------------------------------------------------


def _check_unit(name: str, value) -> None:
    """A Python / NumPy number must lie in [0, 1]; arrays and tracers are the caller's to check."""
    if isinstance(value, numbers.Real) and not (0.0 <= float(value) <= 1.0):
        raise ValueError(f"{name} must be in [0, 1], got {value}")


def _check_update(slots: jax.Array, priorities: jax.Array, alpha) -> None:
    _check_unit("alpha", alpha)
    s, p = jnp.shape(slots), jnp.shape(priorities)
    if len(s) != 1 or p != s:
        raise ValueError(
            f"update: priorities shape {p} must match slots shape {s} (one priority per slot, [B])"
        )


# ---- sum trees ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Geometry:
    n: int  # slots, T * E
    num_envs: int
    depth: int  # P = 2**depth >= n leaves

    @property
    def leaves(self) -> int:
        return 1 << self.depth


def _build(leaves: jax.Array) -> jax.Array:
    """The ``[2P]`` tree over ``P`` leaves: index 0 unused, root at 1, children of ``i`` at ``2i, 2i+1``."""
    levels = [leaves]
    while levels[-1].shape[0] > 1:
        x = levels[-1]
        levels.append(x[0::2] + x[1::2])
    return jnp.concatenate([jnp.zeros((1,), leaves.dtype), *levels[::-1]])


def _set_leaves(
    tree: jax.Array,
    leaf: jax.Array,
    values: jax.Array,
    active: jax.Array,
    depth: int,
    *,
    dedupe: bool = False,
) -> jax.Array:
    """Sets leaves ``leaf[active]`` of ``tree`` to ``values``; recomputes each ancestor as left + right child.

    ``O(len(leaf) · depth)``. Inactive entries go to an out-of-range node and are dropped. With ``dedupe``
    a leaf named twice gets the larger value (a plain scatter-set would pick an unspecified one)."""
    top = 2 << depth  # out of range at every level
    node = jnp.where(active, (1 << depth) + leaf, top)
    values = jnp.broadcast_to(values, node.shape).astype(tree.dtype)
    if dedupe:
        tree = tree.at[node].set(0, mode="drop").at[node].max(values, mode="drop")
    else:
        tree = tree.at[node].set(values, mode="drop")
    for _ in range(depth):
        node = jnp.where(active, node >> 1, top)
        left = tree.at[2 * node].get(mode="fill", fill_value=0)
        right = tree.at[2 * node + 1].get(mode="fill", fill_value=0)
        tree = tree.at[node].set(left + right, mode="drop")
    return tree


def _descend(tree: jax.Array, u: jax.Array, depth: int) -> jax.Array:
    """The leaf where the prefix sum passes ``u``: a float in ``[0, Σ)``, or an int ``k`` (the k-th one).

    Goes right only into a non-empty subtree, so whenever the root is positive the result is a positive leaf,
    whatever float round-off did to ``u``."""
    idx = jnp.ones(u.shape, jnp.int32)
    for _ in range(depth):
        left, right = tree[2 * idx], tree[2 * idx + 1]
        go_right = (u >= left) & (right > 0)
        u = jnp.where(go_right, u - left, u)
        idx = 2 * idx + go_right.astype(jnp.int32)
    return idx - (1 << depth)


def _pad(x: jax.Array, geo: _Geometry) -> jax.Array:
    return jnp.pad(x, (0, geo.leaves - geo.n))


# ---- uniform -----------------------------------------------------------------------------------------------


def _noop_add(geo: _Geometry, state: SamplerState, rows: jax.Array, count_after: jax.Array) -> SamplerState:
    return state


def _noop_update(
    geo: _Geometry, state: SamplerState, slots: jax.Array, priorities: jax.Array, *, alpha
) -> SamplerState:
    _check_update(slots, priorities, alpha)
    return state


def _uniform_draw(
    geo: _Geometry,
    state: SamplerState,
    key: jax.Array,
    batch_size: int,
    count: jax.Array,
    *,
    alpha=DEFAULT_ALPHA,
    beta=DEFAULT_BETA,
):
    _check_unit("alpha", alpha)
    _check_unit("beta", beta)
    n_valid = jnp.maximum(jnp.asarray(count, jnp.int32) * geo.num_envs, 1)
    slots = jax.random.randint(key, (batch_size,), 0, n_valid, dtype=jnp.int32)
    return state, slots, jnp.ones((batch_size,), jnp.float32)


# ---- rr (RR-C) ---------------------------------------------------------------------------------------------


def _rr_init(geo: _Geometry) -> SamplerState:
    ident = jnp.arange(geo.n, dtype=jnp.int32)
    return SamplerState(
        perm=ident,
        pos=ident,
        remaining=jnp.zeros((2 * geo.leaves,), jnp.int32),
        ptr=jnp.asarray(geo.n, jnp.int32),  # "epoch exhausted": the first draw draws the first permutation
    )


def _rr_new_epoch(geo: _Geometry, key: jax.Array, n_valid: jax.Array):
    perm = jax.random.permutation(key, geo.n).astype(jnp.int32)
    pos = jnp.zeros((geo.n,), jnp.int32).at[perm].set(jnp.arange(geo.n, dtype=jnp.int32), unique_indices=True)
    remaining = _build(_pad((perm < n_valid).astype(jnp.int32), geo))
    return perm, pos, remaining, jnp.zeros((), jnp.int32)


def _rr_add(geo: _Geometry, state: SamplerState, rows: jax.Array, count_after: jax.Array) -> SamplerState:
    slots = rows_to_slots(rows, geo.num_envs)
    position = state.pos[slots]
    # Written slots at unpassed positions are drawable in this epoch; for a slot that was already written
    # (an overwrite) the leaf is already 1 there, and a passed position stays passed.
    remaining = _set_leaves(state.remaining, position, 1, position >= state.ptr, geo.depth)
    return state.replace(remaining=remaining)


def _rr_draw(
    geo: _Geometry,
    state: SamplerState,
    key: jax.Array,
    batch_size: int,
    count: jax.Array,
    *,
    alpha=DEFAULT_ALPHA,
    beta=DEFAULT_BETA,
):
    _check_unit("alpha", alpha)
    _check_unit("beta", beta)
    B = batch_size
    n_valid = jnp.asarray(count, jnp.int32) * geo.num_envs
    j = jnp.arange(B, dtype=jnp.int32)

    def body(carry):
        perm, pos, remaining, ptr, key, slots, taken = carry
        key, sub = jax.random.split(key)
        # Epoch over: every unpassed position is unwritten now (the reference would pop and discard them).
        perm, pos, remaining, ptr = jax.lax.cond(
            remaining[1] == 0,
            lambda _: _rr_new_epoch(geo, sub, n_valid),
            lambda c: c,
            (perm, pos, remaining, ptr),
        )
        m = jnp.minimum(remaining[1], B - taken)  # >= 1: the root is positive here
        k = j - taken  # batch entry j takes the k-th remaining one of this epoch
        active = (k >= 0) & (k < m)
        position = _descend(remaining, jnp.maximum(k, 0), geo.depth)
        slots = jnp.where(active, perm[jnp.minimum(position, geo.n - 1)], slots)
        remaining = _set_leaves(remaining, position, 0, active, geo.depth)
        ptr = jnp.maximum(ptr, jnp.max(jnp.where(active, position + 1, 0)))
        return perm, pos, remaining, ptr, key, slots, taken + m

    carry = (state.perm, state.pos, state.remaining, state.ptr, key, jnp.zeros((B,), jnp.int32), jnp.int32(0))
    perm, pos, remaining, ptr, _, slots, _ = jax.lax.while_loop(
        lambda c: (c[-1] < B) & (n_valid > 0), body, carry
    )
    state = state.replace(perm=perm, pos=pos, remaining=remaining, ptr=ptr)
    return state, slots, jnp.ones((B,), jnp.float32)


# ---- per ---------------------------------------------------------------------------------------------------


def _per_init(geo: _Geometry) -> SamplerState:
    return SamplerState(
        priorities=jnp.zeros((2 * geo.leaves,), jnp.float32), max_priority=jnp.ones((), jnp.float32)
    )


def _per_add(geo: _Geometry, state: SamplerState, rows: jax.Array, count_after: jax.Array) -> SamplerState:
    slots = rows_to_slots(rows, geo.num_envs)
    tree = _set_leaves(state.priorities, slots, state.max_priority, jnp.ones(slots.shape, bool), geo.depth)
    return state.replace(priorities=tree)


def _per_update(
    geo: _Geometry, state: SamplerState, slots: jax.Array, priorities: jax.Array, *, alpha
) -> SamplerState:
    _check_update(slots, priorities, alpha)
    slots = jnp.asarray(slots, jnp.int32)
    values = (jnp.abs(jnp.asarray(priorities, jnp.float32)) + PRIORITY_EPS) ** jnp.asarray(alpha, jnp.float32)
    tree = _set_leaves(state.priorities, slots, values, jnp.ones(slots.shape, bool), geo.depth, dedupe=True)
    return state.replace(priorities=tree, max_priority=jnp.maximum(state.max_priority, jnp.max(values)))


def _sample_tree(geo: _Geometry, tree: jax.Array, key: jax.Array, batch_size: int, n_valid: jax.Array):
    u = jax.random.uniform(key, (batch_size,), jnp.float32) * tree[1]
    return jnp.clip(_descend(tree, u, geo.depth), 0, jnp.maximum(n_valid - 1, 0))


def _is_weights(geo: _Geometry, tree: jax.Array, slots: jax.Array, n_valid: jax.Array, beta) -> jax.Array:
    """``(N_valid · P(i))^(−β) / max_j (N_valid · P(j))^(−β)`` over the batch, in log space."""
    total = tree[1]
    prob = tree[geo.leaves + slots] / total
    log_w = -jnp.asarray(beta, jnp.float32) * jnp.log(n_valid.astype(jnp.float32) * prob)
    w = jnp.exp(log_w - jnp.max(log_w))
    return jnp.where((n_valid > 0) & (total > 0), w, 1.0).astype(jnp.float32)


def _per_draw(
    geo: _Geometry,
    state: SamplerState,
    key: jax.Array,
    batch_size: int,
    count: jax.Array,
    *,
    alpha=DEFAULT_ALPHA,
    beta=DEFAULT_BETA,
):
    _check_unit("alpha", alpha)
    _check_unit("beta", beta)
    n_valid = jnp.asarray(count, jnp.int32) * geo.num_envs
    slots = _sample_tree(geo, state.priorities, key, batch_size, n_valid)
    return state, slots, _is_weights(geo, state.priorities, slots, n_valid, beta)


# ---- rr-m --------------------------------------------------------------------------------------------------


def _rrm_init(geo: _Geometry) -> SamplerState:
    return _per_init(geo).replace(
        actual=jnp.zeros((geo.n,), jnp.int32), deficit=jnp.zeros((geo.n,), jnp.float32)
    )


def _rrm_add(geo: _Geometry, state: SamplerState, rows: jax.Array, count_after: jax.Array) -> SamplerState:
    state = _per_add(geo, state, rows, count_after)
    slots = rows_to_slots(rows, geo.num_envs)
    had_expected = jnp.any(state.deficit[slots] + state.actual[slots].astype(jnp.float32) > 0)
    # A slot with expected == 0 was never written during a draw, so its counts are 0 already.
    actual = state.actual.at[slots].set(0, unique_indices=True)
    deficit = state.deficit.at[slots].set(0.0, unique_indices=True)

    def rescale(d):  # expected *= Σactual / Σexpected, written on the deficit d = expected − actual
        a = actual.astype(jnp.float32)
        sum_d = jnp.sum(d)
        sum_e = sum_d + jnp.sum(a)
        r = jnp.where(sum_e > 0, sum_d / sum_e, 0.0)
        return d - r * (d + a)

    deficit = jax.lax.cond(had_expected, rescale, lambda d: d, deficit)
    return state.replace(actual=actual, deficit=deficit)


def _duplicates(slots: jax.Array) -> jax.Array:
    """True at every entry equal to an earlier one (the first occurrence is kept). ``O(B log B)``."""
    order = jnp.argsort(slots, stable=True)
    s = slots[order]
    dup_sorted = jnp.concatenate([jnp.zeros((1,), bool), s[1:] == s[:-1]])
    return jnp.zeros_like(dup_sorted).at[order].set(dup_sorted, unique_indices=True)


def _rrm_draw(
    geo: _Geometry,
    state: SamplerState,
    key: jax.Array,
    batch_size: int,
    count: jax.Array,
    *,
    alpha=DEFAULT_ALPHA,
    beta=DEFAULT_BETA,
):
    _check_unit("alpha", alpha)
    _check_unit("beta", beta)
    B = batch_size
    n_valid = jnp.asarray(count, jnp.int32) * geo.num_envs
    tree = state.priorities
    p = tree[geo.leaves : geo.leaves + geo.n]
    oversampled = state.deficit < 0  # actual > expected
    second = _build(_pad(jnp.where(oversampled, OVERSAMPLED_SCALE * p, p), geo))

    def body(carry):  # zero the kept slots (so no redraw can land on them), redraw the duplicates
        second, slots, redraw, key, rounds = carry
        second = _set_leaves(second, slots, 0, ~redraw, geo.depth)
        key, sub = jax.random.split(key)
        slots = jnp.where(redraw, _sample_tree(geo, second, sub, B, n_valid), slots)
        return second, slots, _duplicates(slots), key, rounds + 1

    # Round 0 draws every entry; each later round keeps >= 1 new slot, so B rounds in all always suffice.
    carry = (second, jnp.zeros((B,), jnp.int32), jnp.ones((B,), bool), key, jnp.int32(0))
    _, slots, _, _, _ = jax.lax.while_loop(lambda c: jnp.any(c[2]) & (c[4] < B), body, carry)

    total = tree[1]
    deficit = state.deficit + jnp.where(total > 0, p * B / total, 0.0)
    deficit = deficit.at[slots].add(-1.0)
    actual = state.actual.at[slots].add(1)
    weights = _is_weights(geo, tree, slots, n_valid, beta)
    return state.replace(actual=actual, deficit=deficit), slots, weights
