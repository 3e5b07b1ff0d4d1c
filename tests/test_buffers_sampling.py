"""The slot samplers of ``rlkit.buffers.sampling``: RR-C against a pure-Python model of the reference pop
loop, PER's draw law (chi-square), trees and IS weights, RR-M's count tracking against PER, input checks."""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from rlkit.buffers import sampling
from rlkit.buffers.sampling import PRIORITY_EPS, expected_counts, make_sampler


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
    """errr's ``RRCReplayBuffer.sample``: pop permutation entries one by one, keep the written ones, reshuffle
    when empty. The permutation is taken from the sampler under test (its randomness is not the point)."""

    def __init__(self, n: int):
        self.n, self.perm, self.ptr = n, None, n

    def draw(self, batch_size: int, n_valid: int, next_perm: np.ndarray) -> list[int]:
        out, reshuffled = [], False
        while len(out) < batch_size:
            if self.ptr == self.n:
                assert not reshuffled, "at most one new epoch per batch in this test"
                self.perm, self.ptr, reshuffled = next_perm, 0, True
            slot = int(self.perm[self.ptr])
            self.ptr += 1
            if slot < n_valid:
                out.append(slot)
        return out


def test_rr_growing_buffer_matches_reference_and_its_epoch_rules():
    T, E, B = 16, 2, 4  # N = 32
    N = T * E
    s = sampler("rr", T, E)
    draw, _, on_add = jitted(s, B)
    ref = ReferenceRRC(N)
    st = s.init()
    key = jax.random.key(2)
    write_row, count = 0, 0
    started = False  # the first draw starts the first epoch
    drawn: list[int] = []  # this epoch's draws (JAX side)
    must_draw: set[int] = set()  # written while their position was not yet passed in this epoch
    epochs_checked = 0
    chunks = [1, 1, 1, 3, 1, 1, 3, 1, 1, 1, 3, 3, 1, 1, 1, 3, 1, 1, 3, 1] * 3  # grows, fills, wraps twice
    for L in chunks:
        rows = (write_row + np.arange(L)) % T
        pos, ptr = np.asarray(st.pos), int(st.ptr)
        # the new items are drawn in this epoch iff their slot's position is not passed yet
        must_draw |= {int(x) for x in sampling.rows_to_slots(rows, E) if pos[x] >= ptr}
        write_row, count = (write_row + L) % T, min(count + L, T)
        st = on_add(st, jnp.asarray(rows, jnp.int32), count)
        if count * E < B:
            continue
        for _ in range(2):
            key, sub = jax.random.split(key)
            left_before, perm_before = int(st.remaining[1]), np.asarray(st.perm)
            st, slots, _ = draw(st, sub, count, 0.4)
            slots = np.asarray(slots).tolist()
            assert max(slots) < count * E, "an unwritten slot was drawn"
            assert slots == ref.draw(B, count * E, np.asarray(st.perm))
            new_epoch = left_before < B
            assert new_epoch == (not np.array_equal(perm_before, np.asarray(st.perm)))
            if not new_epoch:
                drawn += slots
                continue
            drawn += slots[:left_before]
            if started:
                assert len(set(drawn)) == len(drawn), "a slot was drawn twice in one epoch"
                assert must_draw <= set(drawn), "a slot written before the pointer reached it was skipped"
                epochs_checked += 1
            started = True
            drawn, must_draw = slots[left_before:], set(range(count * E))
    assert epochs_checked >= 8


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
    assert len(leaves) == 4  # perm, pos, remaining, ptr
    copy = jax.tree.unflatten(treedef, [np.array(x) for x in leaves])  # host copies, as a checkpoint holds
    copy = jax.tree.map(jnp.asarray, copy)
    for k in jax.random.split(jax.random.key(5), 12):  # crosses the epoch boundary
        st, a, _ = draw(st, k, T, 0.4)
        copy, b, _ = draw(copy, k, T, 0.4)
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    for x, y in zip(jax.tree.leaves(st), jax.tree.leaves(copy)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


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
        ("rr", {"perm", "pos", "remaining", "ptr"}),
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
