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
  ``rrc/rrc.py`` of pfnet-research/errr): the reference draws one random permutation of all ``N`` slot ids per
  epoch and pops it entry by entry, keeping an entry whose slot is written and discarding one that is not;
  when the permutation runs out a fresh one is drawn and the batch continues in it, so a batch may straddle two
  epochs (and, with fewer written slots than ``batch_size``, several, repeating slots). Consequences: an item
  added mid-epoch is drawn in this epoch iff the permutation has not reached its slot yet; an item that
  overwrites a slot (full ring) is drawn in this epoch iff that slot has not been drawn in it yet — the
  permutation is over slots, not items, so an overwritten item that had not been drawn never is. On a full
  static buffer every slot is drawn exactly once per epoch.
  This sampler draws the same batches *in law* without storing a permutation, so that nothing costs
  ``O(N)`` per draw — under ``vmap`` a per-run epoch rollover runs on every draw, which made a sort of the
  permutation per draw the dominant cost. The written slots still to come in this epoch (``left``) and the
  unwritten ones the permutation has not reached (``alive``; all unwritten slots are alike, so only their
  number matters) are interleaved uniformly in the rest of the permutation. So a batch takes ``B`` of the
  ``left`` uniformly without replacement (distinct ranks, found by descending a count tree over slots), and
  passes ``BetaBinomial(alive, B, left + 1 - B)`` unwritten ones on the way (the number of failures before
  the ``B``-th success in a uniform arrangement); a slot written for the first time is still to come with
  probability ``alive / unwritten``. With fewer than ``B`` left the batch takes all of them, passes every
  unwritten slot, and goes on in fresh epochs. The count tree holds one flag per slot, flipped when the slot
  is drawn (or passed unwritten); an epoch ends with every written flag flipped, so the next epoch reads the
  flags with the opposite parity and a rollover writes nothing. Per draw: ``O(B log N)`` (a descent and one
  scatter-add) plus sorts of ``O(B)`` values; per write ``O(L·E log N)``. A test checks each batch and
  each pair of consecutive batches against a model of the reference loop (chi-square) on a ring that grows,
  fills and wraps.
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
so RR-M pays its rescale on every ``on_add`` there.

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

from rlkit import devices

MODES = ("uniform", "rr", "per", "rr-m")
PRIORITY_EPS = 1e-6  # stored priority (|δ| + eps)^α: a zero TD error keeps a slot drawable
OVERSAMPLED_SCALE = 1e-8  # RR-M: the factor on an oversampled slot's priority in the second tree
DEFAULT_ALPHA = 0.6  # Schaul et al.'s proportional variant
DEFAULT_BETA = 0.4


@struct.dataclass
class SamplerState:
    """A sampler's state: a pytree (jits, vmaps over runs, checkpoints); unused fields are ``None``.

    flags:        rr: ``[2P]`` int32 count tree over slots: a written slot's leaf is 1 iff "drawn (or passed)
                  in this epoch" differs from the epoch's parity; unwritten leaves are 0.
    epoch:        rr: int32 scalar, the current epoch.
    left:         rr: int32 scalar, written slots not drawn yet in this epoch (the tree's root, kept apart).
    alive:        rr: int32 scalar, unwritten slots the current epoch's permutation has not reached yet.
    written:      rr: int32 scalar, written slots ``[0, written)`` as of the last ``on_add``.
    key:          rr: PRNG key for ``on_add``'s draws (a fresh one from every ``draw``).
    priorities:   per, rr-m: ``[2P]`` float32 sum tree over slots of ``(|δ| + eps)^α`` (0: unwritten).
    max_priority: per, rr-m: float32 scalar, the running max of stored priorities (starts at 1.0).
    actual:       rr-m: ``[N]`` int32, times each slot was drawn since it was last written.
    deficit:      rr-m: ``[N]`` float32, expected − actual sample count (oversampled iff ``< 0``).
    """

    flags: jax.Array | None = None
    epoch: jax.Array | None = None
    left: jax.Array | None = None
    alive: jax.Array | None = None
    written: jax.Array | None = None
    key: jax.Array | None = None
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
    return SamplerState(
        flags=jnp.zeros((2 * geo.leaves,), jnp.int32),
        epoch=jnp.zeros((), jnp.int32),
        left=jnp.zeros((), jnp.int32),
        alive=jnp.asarray(geo.n, jnp.int32),  # every slot is unwritten and still to come
        written=jnp.zeros((), jnp.int32),
        key=jax.random.key(0),  # replaced by the first draw; not used before it (alive == unwritten then)
    )


def _rr_descend(geo: _Geometry, flags: jax.Array, epoch, n_written, rank: jax.Array) -> jax.Array:
    """The slot of each ``rank`` among the written slots left in ``epoch``, in slot order."""
    idx = jnp.ones(rank.shape, jnp.int32)
    for level in range(1, geo.depth + 1):
        size = geo.leaves >> level
        left = 2 * idx
        base = jnp.clip(n_written - (left - (1 << level)) * size, 0, size)
        count = flags.at[left].get(mode="promise_in_bounds")
        here = jnp.where(epoch % 2 == 0, base - count, count)
        go_right = rank >= here
        rank = jnp.where(go_right, rank - here, rank)
        idx = left + go_right.astype(jnp.int32)
    return idx - geo.leaves


def _rr_toggle(geo: _Geometry, flags: jax.Array, slots, delta) -> jax.Array:
    """Adds ``delta`` (per slot: +1, -1 or 0) to each slot's leaf and all its ancestors: one scatter-add.

    The draw reads the tree only in its descent (the root is kept apart as ``left``): XLA on CPU then adds in
    place, where reads of the tree feeding the scatter's operands made it copy the tree on every draw."""
    node = jnp.concatenate([(1 << level) + (slots >> (geo.depth - level)) for level in range(geo.depth + 1)])
    return flags.at[node].add(jnp.tile(delta, geo.depth + 1), mode="promise_in_bounds")


def _removal(epoch) -> jax.Array:
    """The change of a written slot's flag when it is drawn (or passed) in ``epoch``: 0 -> 1 or 1 -> 0."""
    return jnp.where(epoch % 2 == 0, 1, -1).astype(jnp.int32)


def _distinct_ranks(key: jax.Array, m: jax.Array, r: jax.Array, lanes: int) -> jax.Array:
    """``m`` distinct ranks uniform over ``[0, r)`` (``m <= r``, ``m <= lanes``) in lanes ``[0, m)``, 0 after.

    The first ``t`` distinct values of a stream of uniform draws are a uniformly random ``t``-subset (drawing
    with replacement and dropping repeats is drawing without replacement). To keep the stream short, ``t`` is
    the smaller of ``m`` and ``r - m``: for ``m > r / 2`` the ``r - m`` ranks left out are drawn and the ``m``
    kept ones enumerated (the ``u``-th rank not left out is ``u`` plus the number of left-out ``c_i`` with
    ``c_i - i <= u``, ``c`` sorted). With ``t <= r / 2`` a stream of ``2 · lanes`` draws holds ``t``
    distinct values all but very rarely; a loop extends it until it does (``[lanes]`` carries only)."""
    lane = jnp.arange(lanes, dtype=jnp.int32)
    outside = 2 * m > r
    t = jnp.where(outside, r - m, m)

    def extend(carry):  # append the first occurrences of 2 · lanes new draws to the ``got`` values so far
        out, got, key = carry
        key, sub = jax.random.split(key)
        stream = jax.random.randint(sub, (2 * lanes,), 0, jnp.maximum(r, 1), dtype=jnp.int32)
        held = jnp.where(lane < got, out, -1 - lane)  # the placeholders never equal a rank
        new = ~_duplicates(jnp.concatenate([held, stream]))[lanes:]
        at = got + jnp.cumsum(new, dtype=jnp.int32) - 1
        out = out.at[jnp.where(new & (at < t), at, lanes)].set(stream, mode="drop")
        return out, jnp.minimum(got + jnp.sum(new, dtype=jnp.int32), t), key

    carry = extend((jnp.zeros((lanes,), jnp.int32), jnp.int32(0), key))
    out, _, _ = jax.lax.while_loop(lambda c: c[1] < t, extend, carry)
    c = jnp.sort(jnp.where(lane < t, out, jnp.iinfo(jnp.int32).max // 2)) - lane
    kept = lane + jnp.searchsorted(c, lane, side="right").astype(jnp.int32)
    return jnp.where(lane < m, jnp.where(outside, kept, out), 0)


def _beta_binomial(key: jax.Array, n: jax.Array, a: jax.Array, b: jax.Array) -> jax.Array:
    """A BetaBinomial(n, a, b) count (a, b >= 1): the unwritten slots popped before the m-th written one."""
    kp, kn = jax.random.split(key)
    p = jax.random.beta(kp, a.astype(jnp.float32), b.astype(jnp.float32))
    d = jax.random.binomial(kn, n.astype(jnp.float32), p)
    return jnp.clip(jnp.round(d).astype(jnp.int32), 0, n)


def _rr_add(geo: _Geometry, state: SamplerState, rows: jax.Array, count_after: jax.Array) -> SamplerState:
    slots = rows_to_slots(rows, geo.num_envs)
    written = jnp.minimum(jnp.asarray(count_after, jnp.int32) * geo.num_envs, geo.n)
    new = (slots >= state.written) & (slots < written)  # first writes; an overwrite keeps its eligibility

    # A slot written for the first time mid-epoch is still to come in this epoch iff the permutation has not
    # reached it yet: of the ``unwritten`` slots ``alive`` are still to come, all alike, so it is with
    # probability alive / unwritten (exactly: an integer draw), decided slot by slot.
    def step(carry, x):
        alive, unwritten = carry
        slot, is_new = x
        k = jax.random.fold_in(state.key, slot)
        comes = is_new & (jax.random.randint(k, (), 0, jnp.maximum(unwritten, 1)) < alive)
        return (alive - comes, unwritten - is_new), comes

    (alive, _), comes = jax.lax.scan(step, (state.alive, geo.n - state.written), (slots, new))
    # The new leaf's flag, from 0: "removed" (passed, not drawn in this epoch) XOR the epoch's parity.
    flag = (new & (~comes ^ (state.epoch % 2 == 1))).astype(jnp.int32)
    flags = _rr_toggle(geo, state.flags, slots, flag)
    return state.replace(
        flags=flags,
        left=state.left + jnp.sum(comes, dtype=jnp.int32),
        alive=alive,
        written=jnp.maximum(state.written, written),
    )


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
    n = jnp.minimum(jnp.asarray(count, jnp.int32) * geo.num_envs, geo.n)  # written slots: [0, n)
    k_pick, k_skip, k_next = jax.random.split(key, 3)
    lane = jnp.arange(B, dtype=jnp.int32)
    epoch, left = state.epoch, state.left  # ``left`` is not read off the tree's root: see _rr_toggle
    ends = left < B  # the batch takes all ``left`` still to come, passes every unwritten slot, goes on
    m1 = jnp.minimum(left, B)  # lanes [0, m1): this epoch
    n1 = jnp.maximum(n, 1)
    whole = jnp.where(ends & (n > 0), (B - m1 - 1) // n1, 0)  # then epochs of all n slots (only if n < B)
    m2 = jnp.where(ends & (n > 0), B - m1 - whole * n, 0)  # and m2 slots of the last epoch

    # One set of distinct random ranks serves the case that needs one: B of the ``left`` (a rank among them,
    # in slot order, is found by descending the tree), or m2 of the n of a fresh epoch (a rank is a slot).
    picks = _distinct_ranks(k_pick, jnp.where(ends, m2, B), jnp.where(ends, n, left), B)
    first = _rr_descend(
        geo, state.flags, epoch, n, jnp.where(ends, jnp.minimum(lane, jnp.maximum(left - 1, 0)), picks)
    )
    j = lane - m1  # position in the rest of the batch
    in_whole = j < whole * n
    slots = jnp.where(lane < m1, first, jnp.where(in_whole, j % n1, picks[jnp.clip(j - whole * n, 0, B - 1)]))
    slots = jnp.where(n > 0, slots, 0)
    # Drawing a slot flips its flag; each epoch ends with every written flag at its parity's "drawn", which is
    # the next epoch's "not drawn", so a rollover writes nothing.
    lane_epoch = jnp.where(lane < m1, epoch, epoch + 1 + jnp.where(in_whole, j // n1, whole))
    flags = _rr_toggle(geo, state.flags, slots, jnp.where(n > 0, _removal(lane_epoch), 0))

    # Unwritten slots passed up to the m-th written slot taken: the permutation interleaves the ``alive``
    # unwritten and the ``left`` written slots uniformly, so they are BetaBinomial(alive, m, left + 1 - m) —
    # in this epoch (m = B), or in the last one (all n + its unwritten, m = m2).
    unwritten = geo.n - n
    fresh = ends & (m2 > 0)
    skipped = _beta_binomial(
        k_skip,
        jnp.where(fresh, unwritten, state.alive),
        jnp.where(fresh, m2, B),
        jnp.maximum(jnp.where(fresh, n + 1 - m2, left + 1 - B), 1),
    )
    state = state.replace(
        flags=flags,
        epoch=jnp.where(ends & (n > 0), epoch + 1 + whole, epoch),
        left=jnp.where(ends, n - m2, left - B),
        alive=jnp.where(ends, unwritten - jnp.where(fresh, skipped, 0), state.alive - skipped),
        key=k_next,
    )
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
    """``(N_valid · P(i))^(−β) / max_j (N_valid · P(j))^(−β)`` over the batch, in log space (the max over the
    whole batch when it is split over a run's devices, each with its own buffer: ``rlkit.devices``)."""
    total = tree[1]
    prob = tree[geo.leaves + slots] / total
    log_w = -jnp.asarray(beta, jnp.float32) * jnp.log(n_valid.astype(jnp.float32) * prob)
    top = jnp.max(log_w)
    if devices.batch_axis() is not None:
        top = jax.lax.pmax(top, devices.batch_axis())
    w = jnp.exp(log_w - top)
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
