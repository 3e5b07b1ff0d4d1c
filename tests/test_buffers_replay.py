"""The online ring buffer: validation, wrap-around, uniform sampling, n-step targets, sequence windows and
hindsight goals, each checked against a slow pure-Python model of the same history."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from rlkit.buffers import GoalMixture, make_replay_buffer, ring
from rlkit.buffers.relabel import future_offsets

T = 8  # rows per env in the property tests: small, so wrap-around happens often
SETTINGS = settings(max_examples=12, deadline=None, derandomize=True)


def example_item():
    return {
        "obs": np.zeros(3, np.float32),  # (t, env, episode uid)
        "next_obs": np.zeros(3, np.float32),
        "action": np.zeros(2, np.float32),
        "reward": np.zeros(2, np.float32),  # two reward terms
        "terminated": np.bool_(False),
        "truncated": np.bool_(False),
        "stamp": np.int32(0),  # t + 1; 0 would mean "never written"
    }


@functools.cache
def buffer_for(num_envs: int):
    buf = make_replay_buffer(example_item(), T * num_envs, num_envs)
    return buf, jax.jit(buf.add, donate_argnums=0), jax.jit(buf.add_chunk, donate_argnums=0)


class History:
    """Generates steps for ``E`` envs and keeps the slow reference: one list of items per env."""

    def __init__(self, num_envs: int, rng: np.random.Generator, p_term: float, p_trunc: float):
        self.E, self.rng, self.p_term, self.p_trunc = num_envs, rng, p_term, p_trunc
        self.t = 0
        self.uid = np.arange(num_envs) * 1000
        self.items: list[list[dict]] = [[] for _ in range(num_envs)]

    def step(self) -> dict:
        E, t = self.E, self.t
        term = self.rng.random(E) < self.p_term
        trunc = ~term & (self.rng.random(E) < self.p_trunc)
        uid = self.uid.astype(np.float32)
        out = {
            "obs": np.stack([np.full(E, t), np.arange(E), uid], 1).astype(np.float32),
            "next_obs": np.stack([np.full(E, t + 1), np.arange(E), uid], 1).astype(np.float32),
            "action": self.rng.normal(size=(E, 2)).astype(np.float32),
            "reward": self.rng.integers(-3, 4, size=(E, 2)).astype(np.float32),
            "terminated": term,
            "truncated": trunc,
            "stamp": np.full(E, t + 1, np.int32),
        }
        for e in range(E):
            self.items[e].append({k: v[e] for k, v in out.items()})
        self.uid = self.uid + (term | trunc)
        self.t += 1
        return out

    def valid(self, e: int, count: int) -> list[dict]:
        return self.items[e][len(self.items[e]) - count :]


def run_history(num_envs: int, ops: list[int], seed: int, p_term=0.15, p_trunc=0.1):
    """Applies ``ops`` (1 = one add, 3 = one add_chunk of 3 steps) and returns (buffer, state, history)."""
    buf, add, add_chunk = buffer_for(num_envs)
    hist = History(num_envs, np.random.default_rng(seed), p_term, p_trunc)
    state = buf.init()
    for op in ops:
        if op == 1:
            state = add(state, hist.step())
        else:
            steps = [hist.step() for _ in range(op)]
            state = add_chunk(state, jax.tree.map(lambda *xs: np.stack(xs), *steps))
    return buf, state, hist


ops_strategy = st.lists(st.sampled_from([1, 1, 3]), min_size=1, max_size=14)


def locate(hist: History, env: int, stamp: int, count: int) -> int:
    """Index of the item with ``stamp`` in env's valid list; fails if it is not valid (unwritten/overwritten)."""
    valid = hist.valid(env, count)
    idx = [i for i, it in enumerate(valid) if int(it["stamp"]) == stamp]
    assert idx, f"sampled stamp {stamp} of env {env} is not among the {count} valid rows"
    return idx[0]


# ---- validation -------------------------------------------------------------------------------------------


def test_add_rejects_wrong_structure_shape_and_dtype_naming_the_field():
    ex = {
        "obs": {"pixels": np.zeros((4, 4), np.uint8), "state": np.zeros(3, np.float32)},
        "terminated": False,
        "truncated": False,
    }
    buf = make_replay_buffer(ex, 8, 2)
    state = buf.init()
    good = jax.tree.map(lambda x: np.zeros((2, *np.shape(x)), np.asarray(x).dtype), ex)
    jax.jit(buf.add)(state, good)  # the good one traces fine
    bad_shape = {**good, "obs": {**good["obs"], "pixels": np.zeros((2, 4, 5), np.uint8)}}
    with pytest.raises(ValueError, match=r"'obs\.pixels' expected shape \(2, 4, 4\), got \(2, 4, 5\)"):
        jax.jit(buf.add)(state, bad_shape)
    bad_dtype = {**good, "obs": {**good["obs"], "state": np.zeros((2, 3), np.float64)}}
    with pytest.raises(ValueError, match=r"'obs\.state' expected dtype float32, got float64"):
        buf.add(state, bad_dtype)
    with pytest.raises(ValueError, match=r"missing fields \['obs\.state'\]"):
        buf.add(state, {**good, "obs": {"pixels": good["obs"]["pixels"]}})
    with pytest.raises(ValueError, match="terminated"):
        make_replay_buffer({"obs": np.zeros(3), "truncated": False}, 8, 2)
    with pytest.raises(ValueError, match="multiple of num_envs"):
        make_replay_buffer(ex, 9, 2)


# ---- wrap-around and uniform sampling -----------------------------------------------------------------------


@SETTINGS
@given(num_envs=st.sampled_from([1, 3]), ops=ops_strategy, seed=st.integers(0, 2**16))
def test_contents_match_the_last_rows_after_wrap_around(num_envs, ops, seed):
    buf, state, hist = run_history(num_envs, ops, seed)
    count = int(state.count)
    assert count == min(hist.t, T)
    for e in range(num_envs):
        rows = np.asarray(ring.physical_row(buf.layout, state, jnp.arange(count)))
        stored = np.asarray(state.data["stamp"])[rows, e]
        assert stored.tolist() == [int(it["stamp"]) for it in hist.valid(e, count)]


@SETTINGS
@given(num_envs=st.sampled_from([1, 3]), ops=ops_strategy, seed=st.integers(0, 2**16))
def test_uniform_sample_never_returns_unwritten_or_overwritten_items(num_envs, ops, seed):
    buf, state, hist = run_history(num_envs, ops, seed)
    batch = jax.jit(buf.sample, static_argnums=2)(state, jax.random.key(seed), 64)
    count = int(state.count)
    for obs, stamp, action in zip(
        np.asarray(batch["obs"]), np.asarray(batch["stamp"]), np.asarray(batch["action"])
    ):
        env = int(obs[1])
        item = hist.valid(env, count)[locate(hist, env, int(stamp), count)]
        np.testing.assert_array_equal(action, item["action"])  # the whole item, not just its stamp


def test_sampling_frequencies_are_uniform_chi_square():
    # 4 envs × 8 rows after wrap-around: 32 cells, 64k draws with a fixed seed.
    buf, state, hist = run_history(4, [1] * 21, seed=0)
    draws = jax.jit(lambda s, k: buf.sample(s, k, 65536))(state, jax.random.key(123))
    cells = (np.asarray(draws["stamp"]) - (hist.t - T + 1)) * 4 + np.asarray(draws["obs"][:, 1]).astype(int)
    assert cells.min() >= 0, "sampled an overwritten row"
    counts = np.bincount(cells, minlength=32)
    assert counts.size == 32
    assert stats.chisquare(counts).pvalue > 1e-3


def test_sample_from_a_partly_filled_buffer_only_sees_written_rows():
    buf, state, hist = run_history(2, [1, 1, 1], seed=1)  # 3 of 8 rows written
    batch = jax.jit(lambda s, k: buf.sample(s, k, 4096))(state, jax.random.key(0))
    stamps = np.asarray(batch["stamp"])
    assert stamps.min() >= 1 and set(stamps.tolist()) == {1, 2, 3}
    assert bool(buf.can_sample(state, 3)) and not bool(buf.can_sample(state, 4))


def test_add_chunk_equals_repeated_add():
    b1, s1, _ = run_history(3, [1] * 7, seed=5)
    b2, s2, _ = run_history(3, [1, 3, 3], seed=5)
    jax.tree.map(np.testing.assert_array_equal, s1, s2)


def test_jit_scan_vmap_over_runs_and_donation():
    buf = make_replay_buffer(example_item(), 16, 2)
    hist = History(2, np.random.default_rng(0), 0.2, 0.1)
    chunk = jax.tree.map(lambda *xs: jnp.stack(xs), *[hist.step() for _ in range(5)])
    runs = 3

    def collect(state, chunk):
        def body(s, step):
            s = buf.add(s, step)
            return s, buf.sample(s, jax.random.key(0), 4)["stamp"]

        return jax.lax.scan(body, state, chunk)

    states = jax.vmap(lambda _: buf.init())(jnp.arange(runs))
    chunks = jax.tree.map(lambda x: jnp.broadcast_to(x, (runs, *x.shape)), chunk)
    step_fn = jax.jit(jax.vmap(collect), donate_argnums=0)
    old_leaf = states.data["obs"]
    states, stamps = step_fn(states, chunks)
    assert old_leaf.is_deleted()  # donated: the update reused the buffer instead of copying it
    assert states.data["obs"].shape == (runs, 8, 2, 3)
    assert stamps.shape == (runs, 5, 4) and int(stamps.min()) >= 1
    np.testing.assert_array_equal(np.asarray(states.count), [5, 5, 5])


# ---- n-step -------------------------------------------------------------------------------------------------


def nstep_reference(items: list[dict], i: int, n: int, gamma: np.ndarray):
    """Slow reference: sum up to n rewards from items[i], stopping at episode end or at the newest item."""
    ret = np.zeros(2, np.float64)
    k = 0
    for j in range(n):
        if i + j >= len(items):
            break
        it = items[i + j]
        ret += gamma**j * it["reward"]
        k = j + 1
        if it["terminated"] or it["truncated"]:
            break
    last = items[i + k - 1]
    return ret, gamma**k * (1.0 - float(last["terminated"])), last["next_obs"], k


@SETTINGS
@given(
    num_envs=st.sampled_from([1, 3]),
    ops=ops_strategy,
    seed=st.integers(0, 2**16),
    per_term_gamma=st.booleans(),
)
def test_nstep_matches_slow_reference(num_envs, ops, seed, per_term_gamma):
    n = 3
    gamma = np.array([0.9, 0.5], np.float32) if per_term_gamma else np.float32(0.8)
    buf, state, hist = run_history(num_envs, ops, seed, p_term=0.2, p_trunc=0.2)
    out = jax.jit(buf.sample_nstep, static_argnums=(2, 3))(state, jax.random.key(seed), 32, n, gamma)
    count = int(state.count)
    g = np.broadcast_to(gamma, (2,)).astype(np.float64)
    for b in range(32):
        env = int(out.transition["obs"][b, 1])
        valid = hist.valid(env, count)
        i = locate(hist, env, int(out.transition["stamp"][b]), count)
        ret, disc, boot, k = nstep_reference(valid, i, n, g)
        assert int(out.steps[b]) == k
        np.testing.assert_allclose(np.asarray(out.returns[b]), ret, rtol=1e-5)
        np.testing.assert_allclose(np.asarray(out.discount[b]), disc, rtol=1e-5)
        np.testing.assert_array_equal(np.asarray(out.bootstrap_obs[b]), boot)


def test_nstep_truncation_bootstraps_and_termination_does_not():
    ex = example_item()
    buf = make_replay_buffer(ex, 4, 1)
    state = buf.init()
    for t, (term, trunc) in enumerate([(False, False), (False, True), (False, False), (True, False)]):
        step = jax.tree.map(lambda x: np.zeros((1, *np.shape(x)), np.asarray(x).dtype), ex)
        step.update(
            reward=np.ones((1, 2), np.float32),
            terminated=np.array([term]),
            truncated=np.array([trunc]),
            stamp=np.array([t + 1], np.int32),
            next_obs=np.full((1, 3), t + 1, np.float32),
        )
        state = buf.add(state, step)
    out = buf.sample_nstep(state, jax.random.key(0), 256, 5, 0.5)
    by_stamp = {
        int(s): (float(d[0]), int(k), float(r[0]))
        for s, d, k, r in zip(out.transition["stamp"], out.discount, out.steps, out.returns)
    }
    assert by_stamp[1] == (0.25, 2, 1.5)  # truncated at step 2: bootstrap with γ²
    assert by_stamp[2] == (0.5, 1, 1.0)
    assert by_stamp[3] == (0.0, 2, 1.5)  # terminated: no bootstrap


# ---- sequences ----------------------------------------------------------------------------------------------


@SETTINGS
@given(num_envs=st.sampled_from([1, 3]), ops=ops_strategy, seed=st.integers(0, 2**16))
def test_sequences_are_contiguous_valid_and_masked_at_episode_ends(num_envs, ops, seed):
    L = 4
    buf, state, hist = run_history(num_envs, ops, seed, p_term=0.2, p_trunc=0.1)
    if not bool(buf.can_sample(state, L)):
        return
    out = jax.jit(buf.sample_sequences, static_argnums=(2, 3))(state, jax.random.key(seed), 16, L)
    count = int(state.count)
    for b in range(16):
        env = int(out.env[b])
        valid = hist.valid(env, count)
        i = locate(hist, env, int(out.data["stamp"][b, 0]), count)
        assert i + L <= len(valid), "window runs past the newest row (would read overwritten data)"
        window = valid[i : i + L]
        np.testing.assert_array_equal(np.asarray(out.data["stamp"][b]), [w["stamp"] for w in window])
        expect_mask, alive = [], True
        for w in window:
            expect_mask.append(alive)
            alive = alive and not (w["terminated"] or w["truncated"])
        assert np.asarray(out.mask[b]).tolist() == expect_mask
        uids = np.asarray(out.data["obs"][b, :, 2])
        assert (uids[np.asarray(out.mask[b])] == uids[0]).all()  # masked-in steps are one episode
        starts = np.asarray(out.episode_start[b])
        assert starts.tolist() == [False] + (uids[1:] != uids[:-1]).tolist()


# ---- hindsight goals ----------------------------------------------------------------------------------------


@SETTINGS
@given(
    num_envs=st.sampled_from([1, 3]),
    ops=ops_strategy,
    seed=st.integers(0, 2**16),
    future=st.sampled_from(["geometric", "geometric_clamped", "uniform"]),
)
def test_relabelled_goals_are_future_states_of_the_same_episode(num_envs, ops, seed, future):
    buf, state, hist = run_history(num_envs, ops, seed, p_term=0.2, p_trunc=0.1)
    mix = GoalMixture(p_current=0.2, p_future=0.6, p_random=0.2, gamma=0.7, future=future)
    out = jax.jit(buf.sample_goals, static_argnums=2)(state, jax.random.key(seed), 32, mix)
    count = int(state.count)
    for b in range(32):
        obs, goal = np.asarray(out.transition["obs"][b]), np.asarray(out.goal[b])
        env, src, off = int(obs[1]), int(out.source[b]), int(out.goal_offset[b])
        valid = hist.valid(env, count)
        i = locate(hist, env, int(out.transition["stamp"][b]), count)
        if src == 0:
            np.testing.assert_array_equal(goal, obs)
            assert off == 0
        elif src == 1:
            assert goal[2] == obs[2] and goal[1] == obs[1], "future goal from another episode or env"
            assert goal[0] == obs[0] + off and off >= 1
            assert any(np.array_equal(it["next_obs"], goal) for it in valid[i:]), (
                "goal not stored in the buffer"
            )
        else:
            assert off == -1
            assert any(
                np.array_equal(it["next_obs"], goal) for e in range(num_envs) for it in hist.valid(e, count)
            )


@pytest.mark.parametrize("future", ["geometric", "geometric_clamped", "uniform"])
def test_future_offset_distribution_chi_square(future):
    gamma, m, n = 0.8, 12, 40000
    mix = GoalMixture(gamma=gamma, future=future)
    draws = np.asarray(future_offsets(jax.random.key(7), jnp.full((n,), m, jnp.int32), mix))
    assert draws.min() >= 1 and draws.max() <= m
    d = np.arange(1, m + 1)
    if future == "geometric":
        pmf = gamma ** (d - 1) / (gamma ** (d - 1)).sum()
    elif future == "geometric_clamped":
        pmf = (1 - gamma) * gamma ** (d - 1)
        pmf[-1] = gamma ** (m - 1)  # everything from m on lands on the last state
    else:
        pmf = np.full(m, 1.0 / m)
    counts = np.bincount(draws, minlength=m + 1)[1:]
    assert stats.chisquare(counts, pmf * n).pvalue > 1e-3


def test_goal_source_proportions_follow_the_mixture():
    buf, state, _ = run_history(2, [1] * 10, seed=3)
    mix = GoalMixture(p_current=0.3, p_future=0.5, p_random=0.2)
    out = jax.jit(lambda s, k: buf.sample_goals(s, k, 20000, mix))(state, jax.random.key(1))
    counts = np.bincount(np.asarray(out.source), minlength=3)
    assert stats.chisquare(counts, np.array([0.3, 0.5, 0.2]) * 20000).pvalue > 1e-3
    with pytest.raises(ValueError, match="must be 1"):
        GoalMixture(p_current=0.5, p_future=0.6, p_random=0.0)


def test_end_episodes_cuts_running_episodes_only():
    """A host run resumed with fresh episodes cuts each env's running episode at the newest row: that row
    becomes truncated and the next add starts a new episode; envs whose newest row ended an episode keep theirs."""
    buf, add, _ = buffer_for(2)
    state = buf.init()
    assert np.array_equal(
        np.asarray(buf.end_episodes(state).cursor), np.asarray(state.cursor)
    )  # empty: no-op
    item = jax.tree.map(lambda x: np.stack([x, x]), example_item())
    state = add(state, item)
    state = add(state, item | {"terminated": np.array([True, False])})  # env 0 ends its episode here
    state = buf.end_episodes(state)
    data = jax.tree.map(np.asarray, state.data)
    assert data["truncated"][1].tolist() == [False, True] and not data["truncated"][0].any()
    assert data["terminated"][1].tolist() == [True, False]  # termination untouched
    assert np.asarray(state.next_episode_id).tolist() == [1, 1]
    state = add(state, item)
    assert np.asarray(state.episode_id)[2].tolist() == [1, 1]  # both envs start a new episode
    # windows no longer cross the cut: a 2-step window from row 1 of env 1 ends after its first step
    seq = buf.sample_sequences(state, jax.random.key(0), 256, 2)
    at_cut = (np.asarray(seq.start) == 1) & (np.asarray(seq.env) == 1)
    assert at_cut.any() and (np.asarray(seq.mask)[at_cut] == [True, False]).all()
