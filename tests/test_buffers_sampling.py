"""The slot samplers of ``rlkit.buffers.sampling``: RR-C against a pure-Python model of the reference pop
loop, PER's draw law (chi-square), trees and IS weights, RR-M's count tracking against PER, input checks."""

from __future__ import annotations

import collections
import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from rlkit.buffers import sampling
from rlkit.buffers.sampling import PRIORITY_EPS, expected_counts, make_sampler
from tests.helpers.trees import assert_leaves_equal


@functools.cache
def sampler(mode: str, T: int, E: int) -> sampling.Sampler:
    return make_sampler(mode, T, E)


@functools.cache
def jitted(s: sampling.Sampler, B: int):
    draw = jax.jit(lambda st, key, count, beta: s.draw(st, key, B, count, beta=beta))
    update = jax.jit(lambda st, slots, prio, alpha: s.update(st, slots, prio, alpha=alpha))
    on_add = jax.jit(s.on_add)
    return draw, update, on_add


@functools.cache
def scanned(s: sampling.Sampler, B: int, steps: int):
    """``steps`` consecutive draws in one jitted scan: (final state, slots [steps, B], weights [steps, B])."""

    def run(st, key, count, beta):
        def step(st, k):
            st, slots, w = s.draw(st, k, B, count, beta=beta)
            return st, (slots, w)

        st, (slots, w) = jax.lax.scan(step, st, jax.random.split(key, steps))
        return st, slots, w

    return jax.jit(run)


def filled(s: sampling.Sampler, rows: int) -> sampling.SamplerState:
    """The state after the ring wrote physical rows ``0 .. rows-1`` in one chunk."""
    return s.on_add(s.init(), jnp.arange(rows, dtype=jnp.int32), rows)


def leaves_of(s: sampling.Sampler, st: sampling.SamplerState) -> np.ndarray:
    tree = np.asarray(st.priorities)
    P = tree.shape[0] // 2
    return tree[P : P + s.num_slots]


def assert_tree_consistent(tree: jax.Array) -> None:
    """Every internal node is exactly the float sum of its two children (the set-not-add invariant)."""
    tree = np.asarray(tree)
    P = tree.shape[0] // 2
    idx = np.arange(1, P)
    np.testing.assert_array_equal(tree[idx], tree[2 * idx] + tree[2 * idx + 1])


# ---- rr (RR-C) ---------------------------------------------------------------------------------------------


def test_rr_full_static_buffer_each_slot_once_per_epoch():
    T, E, B = 16, 4, 8  # N = 64, 8 draws per epoch
    s = sampler("rr", T, E)
    st, slots, w = scanned(s, B, 24)(filled(s, T), jax.random.key(0), T, 0.4)
    flat = np.asarray(slots).reshape(3, 64)
    for epoch in flat:
        np.testing.assert_array_equal(np.sort(epoch), np.arange(64))
    assert not np.array_equal(flat[0], flat[1])  # a fresh permutation per epoch
    np.testing.assert_array_equal(np.asarray(w), 1.0)


def test_rr_batches_straddle_epoch_boundaries():
    T, E, B = 15, 4, 8  # N = 60 is not a multiple of 8: batches 8 and 15 straddle epochs
    s = sampler("rr", T, E)
    _, slots, _ = scanned(s, B, 30)(filled(s, T), jax.random.key(1), T, 0.4)
    flat = np.asarray(slots).reshape(-1)  # 240 = 4 epochs of 60
    for epoch in flat.reshape(4, 60):
        np.testing.assert_array_equal(np.sort(epoch), np.arange(60))
    np.testing.assert_array_equal(np.bincount(flat, minlength=60), 4)


class ReferenceRRC:
    """errr's ``RRCReplayBuffer.sample`` (rrc/rrc.py): a permutation of all ``n`` slots per epoch, entries
    popped one by one, the written ones kept, a fresh permutation when it runs out."""

    def __init__(self, n: int, rng: np.random.Generator):
        self.n, self.rng, self.perm = n, rng, []

    def draw(self, batch_size: int, n_valid: int) -> list[int]:
        out = []
        while len(out) < batch_size:
            if not self.perm:
                self.perm = list(self.rng.permutation(self.n))
            slot = int(self.perm.pop())
            if slot < n_valid:
                out.append(slot)
        return out


# A growing, filling, wrapping ring of T = 6 rows of one env, batches of 3: (rows written, draws). It covers
# draws with fewer written slots than a batch (whole epochs inside one batch), slots written mid-epoch, the
# ring filling mid-epoch and overwrites.
RR_T, RR_E, RR_B = 6, 1, 3
RR_SCHEDULE = [(1, 2), (1, 2), (1, 2), (2, 2), (1, 1), (2, 3)]


def rr_batches_jax(reps: int, seed: int) -> np.ndarray:
    """``[reps, draws, B]`` slots: every replication runs the schedule with its own key (one scan over its
    events, so that one write and one draw are compiled, not the whole unrolled schedule)."""
    s = sampler("rr", RR_T, RR_E)
    events, row, count = [], 0, 0  # (row written or -1, count after, draws?)
    for rows, draws in RR_SCHEDULE:
        for _ in range(rows):
            row, count = (row + 1) % RR_T, min(count + 1, RR_T)
            events.append(((row - 1) % RR_T, count, False))
        events += [(-1, count, True)] * draws
    rows_, counts, is_draw = (jnp.asarray(x) for x in zip(*events))

    def one(key):
        def step(st, x):
            row, count, is_draw, k = x
            added = s.on_add(st, jnp.maximum(row, 0)[None], count)
            st = jax.tree.map(lambda a, b: jnp.where(row >= 0, a, b), added, st)
            drawn, slots, _ = s.draw(st, k, RR_B, count)
            return jax.tree.map(lambda a, b: jnp.where(is_draw, a, b), drawn, st), slots

        keys = jax.random.split(key, len(events))
        return jax.lax.scan(step, s.init(), (rows_, counts, is_draw, keys))[1]

    out = jax.jit(jax.vmap(one))(jax.random.split(jax.random.key(seed), reps))
    return np.asarray(out)[:, np.asarray(is_draw)]


def rr_batches_reference(reps: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(reps):
        ref, count, batches = ReferenceRRC(RR_T * RR_E, rng), 0, []
        for rows, draws in RR_SCHEDULE:
            count = min(count + rows, RR_T)
            batches += [ref.draw(RR_B, count * RR_E) for _ in range(draws)]
        out.append(batches)
    return np.asarray(out)


def two_sample_p(a: list, b: list) -> float:
    """Chi-square test that two samples of hashable outcomes share one law (outcomes seen < 20 times pooled)."""
    ca, cb = collections.Counter(a), collections.Counter(b)
    keys = [k for k in set(ca) | set(cb) if ca[k] + cb[k] >= 20]
    table = [[ca[k] for k in keys], [cb[k] for k in keys]]
    table[0].append(len(a) - sum(table[0]))
    table[1].append(len(b) - sum(table[1]))
    if table[0][-1] + table[1][-1] == 0:
        table = [row[:-1] for row in table]
    return stats.chi2_contingency(table).pvalue


def test_rr_growing_ring_has_the_reference_pop_loops_law():
    """RR-C draws the batches the reference's pop loop draws, in law: each batch, and each pair of
    consecutive batches (which carries the within-epoch without-replacement dependence), as sets."""
    reps = 20_000
    mine, ref = rr_batches_jax(reps, 0), rr_batches_reference(reps, 0)
    assert mine.shape == ref.shape
    sets_mine = [[tuple(sorted(b)) for b in mine[:, d]] for d in range(mine.shape[1])]
    sets_ref = [[tuple(sorted(b)) for b in ref[:, d]] for d in range(ref.shape[1])]
    pvalues = [two_sample_p(a, b) for a, b in zip(sets_mine, sets_ref)]
    for d in range(mine.shape[1] - 1):
        pairs = [list(zip(x[d], x[d + 1])) for x in (sets_mine, sets_ref)]
        pvalues.append(two_sample_p(*pairs))
    assert min(pvalues) > 1e-4 / len(pvalues), pvalues  # Bonferroni over the family


def test_rr_mid_epoch_writes_and_epochs():
    """On a ring that grows between draws: no slot twice in an epoch, never an unwritten slot, the counts
    (``left``, ``alive``) match the tree, and an epoch ends only when every written slot was drawn."""
    T, E, B = 16, 2, 4
    N = T * E
    s = sampler("rr", T, E)
    draw, _, on_add = jitted(s, B)
    st, key, row, count = s.init(), jax.random.key(2), 0, 0
    seen: set[int] = set()
    epochs = 0
    for L in [1, 1, 1, 3, 1, 1, 3, 1, 1, 1, 3, 3, 1, 1, 1, 3, 1, 1, 3, 1] * 3:  # grows, fills, wraps twice
        rows = (row + np.arange(L)) % T
        row, count = (row + L) % T, min(count + L, T)
        st = on_add(st, jnp.asarray(rows, jnp.int32), count)
        if count * E < B:
            continue
        for _ in range(2):
            key, sub = jax.random.split(key)
            before = int(st.epoch)
            left_before = int(st.left)
            st, slots, _ = draw(st, sub, count, 0.4)
            slots = np.asarray(slots).tolist()
            assert max(slots) < count * E, "an unwritten slot was drawn"
            root = int(st.flags[1])
            assert int(st.left) == (count * E - root if int(st.epoch) % 2 == 0 else root)
            assert 0 <= int(st.alive) <= N - count * E
            if int(st.epoch) == before:
                assert not seen & set(slots), "a slot was drawn twice in one epoch"
                seen |= set(slots)
                assert len(set(slots)) == B
            else:
                assert int(st.epoch) == before + 1
                assert left_before < B and len(set(slots[:left_before])) == left_before
                assert seen.isdisjoint(slots[:left_before]), "a slot was drawn twice in one epoch"
                epochs += 1
                seen = set(slots[left_before:])
    assert epochs >= 8


def test_rr_jit_vmap_over_runs():
    T, E, B = 16, 4, 8
    s = sampler("rr", T, E)
    counts = (16, 11, 7)  # 64, 44 and 28 written slots: the runs' epochs end at different draws
    states = jax.tree.map(lambda *x: jnp.stack(x), *[filled(s, c) for c in counts])
    draw = jax.jit(jax.vmap(lambda st, key, count: s.draw(st, key, B, count)))
    out = []
    for k in jax.random.split(jax.random.key(3), (20, len(counts))):
        states, slots, _ = draw(states, k, jnp.array(counts))
        out.append(np.asarray(slots))
    out = np.concatenate(out, axis=1)  # [runs, 160]
    for run, c in zip(out, counts):
        n = c * E
        epochs = run[: len(run) // n * n].reshape(-1, n)
        assert len(epochs) >= 2
        for epoch in epochs:
            np.testing.assert_array_equal(np.sort(epoch), np.arange(n))
    assert not np.array_equal(out[0, :28], out[2, :28])  # different keys, different orders


def test_rr_state_round_trips_and_resumes_bit_identically():
    T, E, B = 16, 4, 8
    s = sampler("rr", T, E)
    draw, _, _ = jitted(s, B)
    st = filled(s, T)
    for k in jax.random.split(jax.random.key(4), 3):  # mid-epoch
        st, _, _ = draw(st, k, T, 0.4)
    leaves, treedef = jax.tree.flatten(st)
    assert len(leaves) == 6  # flags, epoch, left, alive, written, key

    def host(x):  # host copies, as a checkpoint holds them (a typed key as its key data)
        if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            return jax.random.wrap_key_data(np.array(jax.random.key_data(x)))
        return jnp.asarray(np.array(x))

    copy = jax.tree.unflatten(treedef, [host(x) for x in leaves])
    for k in jax.random.split(jax.random.key(5), 12):  # crosses the epoch boundary
        st, a, _ = draw(st, k, T, 0.4)
        copy, b, _ = draw(copy, k, T, 0.4)
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert_leaves_equal(st, copy)


# ---- per ---------------------------------------------------------------------------------------------------


def chi_square_p(slots: np.ndarray, probs: np.ndarray) -> float:
    counts = np.bincount(slots.reshape(-1), minlength=probs.size)
    assert counts.size == probs.size, "a slot outside the expected support was drawn"
    return stats.chisquare(counts, probs / probs.sum() * counts.sum()).pvalue


def test_per_draw_frequencies_follow_p_alpha():
    T, E, B, alpha = 16, 4, 256, 0.7
    s = sampler("per", T, E)
    _, update, _ = jitted(s, B)
    delta = np.random.default_rng(0).uniform(0.05, 3.0, T * E).astype(np.float32)
    st = update(filled(s, T), jnp.arange(T * E), jnp.asarray(delta), alpha)
    _, slots, _ = scanned(s, B, 200)(st, jax.random.key(6), T, 0.4)
    probs = (delta.astype(np.float64) + PRIORITY_EPS) ** alpha
    assert chi_square_p(np.asarray(slots), probs) > 1e-3
    # and not uniform: the test has the power to see the α exponent
    assert chi_square_p(np.asarray(slots), delta.astype(np.float64)) < 1e-6


def test_per_alpha_zero_is_uniform_over_written_slots():
    T, E, B = 16, 4, 256
    count = 10  # 40 written slots of 64
    s = sampler("per", T, E)
    _, update, _ = jitted(s, B)
    delta = np.random.default_rng(1).exponential(1.0, 40).astype(np.float32)
    st = update(filled(s, count), jnp.arange(40), jnp.asarray(delta), 0.0)
    np.testing.assert_array_equal(leaves_of(s, st)[:40], 1.0)
    np.testing.assert_array_equal(leaves_of(s, st)[40:], 0.0)
    _, slots, w = scanned(s, B, 200)(st, jax.random.key(7), count, 0.4)
    assert int(np.max(slots)) < 40
    assert chi_square_p(np.asarray(slots), np.ones(40)) > 1e-3
    np.testing.assert_array_equal(np.asarray(w), 1.0)


def test_per_updates_land_on_drawn_slots_across_wraparound():
    T, E, B, alpha = 16, 4, 32, 0.6
    N = T * E
    s = sampler("per", T, E)
    draw, update, on_add = jitted(s, B)
    st = filled(s, T)
    st = update(st, jnp.array([N - 1, N - 2, 0, 1]), jnp.array([50.0, 40.0, 30.0, 20.0]), alpha)
    max_p = float(st.max_priority)
    st = on_add(st, jnp.array([T - 1, 0], jnp.int32), T)  # a chunk that wraps: rows 15 and 0 are new items
    wrapped = np.r_[N - E : N, 0:E]
    np.testing.assert_array_equal(leaves_of(s, st)[wrapped], max_p)
    st, slots, _ = draw(st, jax.random.key(8), T, 0.4)
    slots = np.asarray(slots)
    assert (slots >= N - E).any() and (slots < E).any()  # the max-priority wrapped slots dominate the draw
    before = leaves_of(s, st)
    new = np.random.default_rng(2).uniform(0.1, 1.0, B).astype(np.float32)
    st = update(st, jnp.asarray(slots), jnp.asarray(new), alpha)
    after = leaves_of(s, st)
    for k in np.unique(slots):  # a slot drawn twice keeps the larger of its priorities
        same = new[slots == k]
        np.testing.assert_allclose(after[k], (same.max() + PRIORITY_EPS) ** alpha, rtol=1e-6)
    untouched = np.setdiff1d(np.arange(N), slots)
    np.testing.assert_array_equal(after[untouched], before[untouched])
    assert_tree_consistent(st.priorities)
    assert float(st.priorities[1]) == pytest.approx(after.sum(), rel=1e-6)


def test_per_duplicate_slots_in_one_update():
    T, E, alpha = 4, 2, 0.5
    s = sampler("per", T, E)
    st = s.update(filled(s, T), jnp.array([5, 5, 3, 5]), jnp.array([1.0, 9.0, 2.0, 4.0]), alpha=alpha)
    leaves = leaves_of(s, st)
    np.testing.assert_allclose(leaves[5], (9.0 + PRIORITY_EPS) ** alpha, rtol=1e-6)
    np.testing.assert_allclose(leaves[3], (2.0 + PRIORITY_EPS) ** alpha, rtol=1e-6)
    np.testing.assert_array_equal(leaves[[0, 1, 2, 4, 6, 7]], 1.0)
    np.testing.assert_allclose(float(st.max_priority), (9.0 + PRIORITY_EPS) ** alpha, rtol=1e-6)
    assert_tree_consistent(st.priorities)


def test_per_importance_weights_match_the_formula():
    T, E, B, count, beta = 16, 4, 32, 12, 0.4  # 48 written slots
    s = sampler("per", T, E)
    draw, update, _ = jitted(s, B)
    delta = np.random.default_rng(3).uniform(0.01, 5.0, 48).astype(np.float32)
    st = update(filled(s, count), jnp.arange(48), jnp.asarray(delta), 0.8)
    _, slots, w = draw(st, jax.random.key(9), count, beta)
    p = leaves_of(s, st).astype(np.float64)
    prob = p[np.asarray(slots)] / p.sum()
    want = (48 * prob) ** -beta
    np.testing.assert_allclose(np.asarray(w), want / want.max(), rtol=1e-5)
    assert float(np.max(w)) == 1.0


def test_per_never_draws_an_unwritten_slot():
    T, E, B, count = 16, 4, 256, 3  # 12 written slots; the last one holds almost all the mass
    s = sampler("per", T, E)
    _, update, _ = jitted(s, B)
    st = update(filled(s, count), jnp.arange(12), jnp.r_[jnp.full(11, 1e-6), 1e6], 1.0)
    _, slots, _ = scanned(s, B, 200)(st, jax.random.key(10), count, 0.4)
    assert int(np.max(slots)) == 11
    # the descent itself, with u at and beyond the total (what float round-off can produce)
    total = st.priorities[1]
    u = jnp.stack([total, jnp.nextafter(total, jnp.inf), total * 2, jnp.float32(0)])
    leaf = sampling._descend(st.priorities, u, int(np.log2(st.priorities.shape[0] // 2)))
    np.testing.assert_array_equal(np.asarray(leaf), [11, 11, 11, 0])


def test_per_new_slots_get_the_running_max_priority():
    T, E, alpha = 8, 2, 0.6
    s = sampler("per", T, E)
    st = filled(s, 3)
    np.testing.assert_array_equal(leaves_of(s, st)[:6], 1.0)  # starts at 1.0
    st = s.update(st, jnp.array([0, 1]), jnp.array([9.0, 0.5]), alpha=alpha)
    st = s.update(st, jnp.array([0]), jnp.array([0.1]), alpha=alpha)  # the max does not come back down
    big = (9.0 + PRIORITY_EPS) ** alpha
    st = s.on_add(st, jnp.array([3], jnp.int32), 4)
    np.testing.assert_allclose(leaves_of(s, st)[6:8], big, rtol=1e-6)
    np.testing.assert_array_equal(leaves_of(s, st)[8:], 0.0)


# ---- rr-m --------------------------------------------------------------------------------------------------


def test_rrm_counts_track_expected_far_tighter_than_per():
    T, E, B, steps = 32, 4, 16, 300  # N = 128; expected ~37 draws per slot
    delta = jnp.asarray(np.random.default_rng(4).uniform(0.2, 2.0, T * E).astype(np.float32))
    results = {}
    for mode in ("rr-m", "per"):
        s = sampler(mode, T, E)
        st = s.update(filled(s, T), jnp.arange(T * E), delta, alpha=1.0)
        p = leaves_of(s, st).astype(np.float64)
        st, slots, _ = scanned(s, B, steps)(st, jax.random.key(11), T, 0.4)
        actual = np.bincount(np.asarray(slots).reshape(-1), minlength=T * E)
        expected = steps * B * p / p.sum()
        results[mode] = np.var(actual - expected)
        if mode == "rr-m":
            np.testing.assert_array_equal(np.asarray(st.actual), actual)
            np.testing.assert_allclose(np.asarray(expected_counts(st)), expected, atol=2e-3)
    assert results["rr-m"] < 0.1 * results["per"], results


def test_rrm_batches_have_no_duplicates():
    T, E = 16, 4
    N = T * E
    s = sampler("rr-m", T, E)
    delta = jnp.asarray(np.random.default_rng(5).exponential(1.0, N).astype(np.float32))
    st = s.update(filled(s, T), jnp.arange(N), delta, alpha=1.0)
    for B in (16, N):  # B == N must return every slot once
        _, slots, _ = scanned(s, B, 20)(st, jax.random.key(12), T, 0.4)
        for batch in np.asarray(slots):
            assert len(np.unique(batch)) == B
        if B == N:
            np.testing.assert_array_equal(np.sort(np.asarray(slots), axis=1), np.tile(np.arange(N), (20, 1)))


def test_rrm_overwrite_resets_counts_and_rescales_expected():
    T, E, B = 16, 4, 16
    s = sampler("rr-m", T, E)
    on_add = jitted(s, B)[2]
    st = s.update(filled(s, 8), jnp.arange(32), jnp.linspace(0.1, 2.0, 32), alpha=1.0)  # half full
    st, _, _ = scanned(s, B, 20)(st, jax.random.key(13), 8, 0.4)
    # a new row (expected == 0): nothing to reset, nothing rescaled
    before = np.asarray(st.deficit)
    st = on_add(st, jnp.array([8], jnp.int32), 9)
    np.testing.assert_array_equal(np.asarray(st.deficit), before)
    # fill the ring, draw, then overwrite row 3
    st = on_add(st, jnp.arange(9, T, dtype=jnp.int32), T)
    st, _, _ = scanned(s, B, 20)(st, jax.random.key(14), T, 0.4)
    exp_before = np.asarray(expected_counts(st), np.float64)
    assert (exp_before[12:16] > 0).all()
    st = on_add(st, jnp.array([3], jnp.int32), T)
    exp_after = np.asarray(expected_counts(st), np.float64)
    np.testing.assert_array_equal(np.asarray(st.actual)[12:16], 0)
    np.testing.assert_array_equal(exp_after[12:16], 0.0)
    np.testing.assert_allclose(exp_after.sum(), np.asarray(st.actual).sum(), rtol=1e-5)
    others = np.r_[0:12, 16 : T * E]
    ratio = exp_after[others] / exp_before[others]
    np.testing.assert_allclose(ratio, ratio[0], rtol=1e-4)  # one common factor
    np.testing.assert_allclose(leaves_of(s, st)[12:16], float(st.max_priority))


def test_rrm_importance_weights_come_from_the_first_tree():
    T, E, B, beta = 16, 4, 16, 0.5
    s = sampler("rr-m", T, E)
    delta = jnp.asarray(np.random.default_rng(6).uniform(0.1, 3.0, T * E).astype(np.float32))
    st = s.update(filled(s, T), jnp.arange(T * E), delta, alpha=0.7)
    p = leaves_of(s, st).astype(np.float64)  # draws do not change the first tree
    end, slots, w = scanned(s, B, 20)(st, jax.random.key(15), T, beta)
    assert (np.asarray(end.deficit) < 0).any()  # later draws came from a second tree unlike the first
    np.testing.assert_array_equal(leaves_of(s, end), p)
    want = (T * E * p[np.asarray(slots)] / p.sum()) ** -beta
    np.testing.assert_allclose(np.asarray(w), want / want.max(axis=1, keepdims=True), rtol=1e-5)


# ---- every mode --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "fields"),
    [
        ("uniform", set()),
        ("rr", {"flags", "epoch", "left", "alive", "written", "key"}),
        ("per", {"priorities", "max_priority"}),
        ("rr-m", {"priorities", "max_priority", "actual", "deficit"}),
    ],
)
def test_state_holds_only_what_the_mode_needs(mode, fields):
    st = make_sampler(mode, 4, 2).init()
    names = [f.name for f in dataclasses.fields(st)]
    assert {f for f in names if getattr(st, f) is not None} == fields
    assert len(jax.tree.leaves(st)) == len(fields)


@pytest.mark.parametrize("mode", sampling.MODES)
def test_vmap_over_runs_with_swept_alpha_and_beta(mode):
    T, E, B, R = 8, 2, 4, 3
    s = sampler(mode, T, E)
    states = jax.vmap(lambda _: filled(s, 5))(jnp.arange(R))  # 10 written slots per run
    alpha, beta = jnp.array([0.0, 0.5, 1.0]), jnp.array([0.0, 0.4, 1.0])

    @jax.jit
    def step(st, key, alpha, beta):
        st, slots, w = s.draw(st, key, B, 5, alpha=alpha, beta=beta)
        return s.update(st, slots, jnp.arange(1.0, B + 1.0), alpha=alpha), slots, w

    states, slots, w = jax.vmap(step)(states, jax.random.split(jax.random.key(17), R), alpha, beta)
    assert slots.shape == (R, B) and w.shape == (R, B) and w.dtype == jnp.float32
    assert int(slots.max()) < 10
    np.testing.assert_array_equal(np.asarray(w.max(axis=1)), 1.0)
    np.testing.assert_array_equal(np.asarray(w[0]), 1.0)  # β = 0
    if mode in ("per", "rr-m"):
        tree = np.asarray(states.priorities)
        P = tree.shape[1] // 2
        for r in range(R):
            want = (np.arange(1.0, B + 1.0) + PRIORITY_EPS) ** float(alpha[r])
            run_slots = np.asarray(slots[r])
            for k in np.unique(run_slots):  # a slot drawn twice keeps the larger priority
                np.testing.assert_allclose(tree[r, P + k], want[run_slots == k].max(), rtol=1e-6)


def test_uniform_is_uniform_over_written_slots_and_stateless():
    T, E, B, count = 16, 4, 256, 5  # 20 written slots
    s = sampler("uniform", T, E)
    st = filled(s, count)
    assert jax.tree.leaves(st) == []
    _, slots, w = scanned(s, B, 40)(st, jax.random.key(18), count, 0.4)
    assert int(np.max(slots)) < 20
    assert chi_square_p(np.asarray(slots), np.ones(20)) > 1e-3
    np.testing.assert_array_equal(np.asarray(w), 1.0)


# ---- bad input ---------------------------------------------------------------------------------------------


def test_unknown_mode_is_one_line():
    with pytest.raises(ValueError, match=r"^unknown sampler mode 'prioritized'; expected one of \(") as e:
        make_sampler("prioritized", 8, 2)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("mode", sampling.MODES)
def test_alpha_beta_outside_unit_interval(mode):
    s = sampler(mode, 4, 2)
    st = filled(s, 4)
    key = jax.random.key(0)
    with pytest.raises(ValueError, match=r"^beta must be in \[0, 1\], got -0.1$"):
        s.draw(st, key, 2, 4, beta=-0.1)
    with pytest.raises(ValueError, match=r"^alpha must be in \[0, 1\], got 1.5$"):
        s.draw(st, key, 2, 4, alpha=1.5)
    with pytest.raises(ValueError, match=r"^alpha must be in \[0, 1\], got 2$"):
        s.update(st, jnp.array([0, 1]), jnp.array([1.0, 2.0]), alpha=2)
    s.draw(
        st, key, 2, 4, alpha=jnp.float32(3.0), beta=jnp.float32(2.0)
    )  # traced values: the caller's to check


@pytest.mark.parametrize("mode", sampling.MODES)
def test_priority_update_of_the_wrong_shape(mode):
    s = sampler(mode, 4, 2)
    st = filled(s, 4)
    with pytest.raises(ValueError, match=r"^update: priorities shape \(3,\) must match slots shape \(2,\)"):
        s.update(st, jnp.array([0, 1]), jnp.ones(3), alpha=0.5)
    with pytest.raises(ValueError, match=r"priorities shape \(2, 1\) must match slots shape \(2,\)"):
        jax.jit(lambda st, p: s.update(st, jnp.array([0, 1]), p, alpha=0.5))(st, jnp.ones((2, 1)))
