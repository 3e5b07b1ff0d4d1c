"""The demonstration store and its files: sampling inside episodes, hindsight goals, .npz and Minari round
trips, and damaged files reported instead of half-loaded."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rlkit.buffers import (
    DatasetError,
    GoalMixture,
    demos,
    load_minari,
    load_npz,
    make_demo_store,
    save_minari,
    save_npz,
)

SETTINGS = settings(max_examples=10, deadline=None, derandomize=True)


def make_episodes(lengths, with_actions=True, dict_obs=False, seed=0):
    """Observation rows encode (episode, t) so every sampled row can be traced back."""
    rng = np.random.default_rng(seed)
    obs = np.concatenate([np.stack([np.full(n + 1, e), np.arange(n + 1)], 1) for e, n in enumerate(lengths)])
    obs = obs.astype(np.float32)
    n = int(sum(lengths))
    terminations = np.zeros(n, bool)
    ends = np.cumsum(lengths) - 1
    terminations[ends[::2]] = True  # even episodes terminate, odd ones are truncated (the default)
    truncations = np.zeros(n, bool)
    truncations[ends[1::2]] = True
    return make_demo_store(
        {"state": obs, "pixels": rng.integers(0, 255, (len(obs), 2, 2), dtype=np.uint8)} if dict_obs else obs,
        np.asarray(lengths),
        actions=rng.normal(size=(n, 2)).astype(np.float32) if with_actions else None,
        rewards=rng.normal(size=n).astype(np.float32),
        terminations=terminations,
        truncations=truncations,
    )


lengths_strategy = st.lists(st.integers(1, 9), min_size=1, max_size=6)


@SETTINGS
@given(lengths=lengths_strategy, seed=st.integers(0, 1000))
def test_transitions_pair_each_state_with_its_own_next_state(lengths, seed):
    store = make_episodes(lengths)
    out = jax.jit(demos.sample_transitions, static_argnums=2)(store, jax.random.key(seed), 64)
    obs, nxt = np.asarray(out["obs"]), np.asarray(out["next_obs"])
    assert (obs[:, 0] == nxt[:, 0]).all() and (nxt[:, 1] == obs[:, 1] + 1).all()
    ends = np.asarray(lengths)[obs[:, 0].astype(int)]
    assert (obs[:, 1] < ends).all()
    last = obs[:, 1] == ends - 1
    done = np.asarray(out["terminated"]) | np.asarray(out["truncated"])
    assert (done == last).all()


@SETTINGS
@given(lengths=lengths_strategy, seed=st.integers(0, 1000))
def test_sequences_stay_inside_one_episode(lengths, seed):
    L = 3
    if max(lengths) < L:
        with pytest.raises(ValueError, match="no demonstration episode has 3 steps"):
            demos.sample_sequences(make_episodes(lengths), jax.random.key(0), 4, L)
        return
    store = make_episodes(lengths)
    out = jax.jit(demos.sample_sequences, static_argnums=(2, 3))(store, jax.random.key(seed), 32, L)
    obs = np.asarray(out["obs"])  # [B, L, 2]
    assert (obs[:, :, 0] == obs[:, :1, 0]).all()
    assert (np.diff(obs[:, :, 1], axis=1) == 1).all()
    assert (np.asarray(out["next_obs"])[:, -1, 1] <= np.asarray(lengths)[obs[:, 0, 0].astype(int)]).all()


def test_sequence_windows_are_uniform_over_valid_windows():
    from scipy import stats

    store = make_episodes([2, 5, 7])  # L = 3: 0 + 3 + 5 windows
    out = jax.jit(lambda k: demos.sample_sequences(store, k, 40000, 3))(jax.random.key(0))
    cell = np.asarray(out["episode"]) * 10 + np.asarray(out["start"])
    _, counts = np.unique(cell, return_counts=True)
    assert counts.size == 8 and stats.chisquare(counts).pvalue > 1e-3


@SETTINGS
@given(lengths=lengths_strategy, seed=st.integers(0, 1000))
def test_demo_goals_are_future_states_of_the_same_episode(lengths, seed):
    store = make_episodes(lengths)
    mix = GoalMixture(p_current=0.1, p_future=0.8, p_random=0.1, gamma=0.6)
    out = jax.jit(demos.sample_goals, static_argnums=2)(store, jax.random.key(seed), 64, mix)
    obs, goal = np.asarray(out.transition["obs"]), np.asarray(out.goal)
    for o, g, src, off in zip(obs, goal, np.asarray(out.source), np.asarray(out.goal_offset)):
        if src == 1:
            assert g[0] == o[0] and g[1] == o[1] + off and 1 <= off and g[1] <= lengths[int(o[0])]
        elif src == 0:
            assert (g == o).all()


def test_episode_access_and_action_free_store():
    store = make_episodes([3, 4], with_actions=False)
    assert not store.has_actions and store.num_episodes == 2 and store.num_steps == 7
    ep = demos.episode(store, 1)
    assert ep["actions"] is None and ep["observations"].shape == (5, 2) and ep["truncations"][-1]
    assert "action" not in demos.sample_transitions(store, jax.random.key(0), 4)


def test_inconsistent_arrays_are_rejected_naming_the_field():
    with pytest.raises(ValueError, match="'observations.state' has leading length"):
        make_demo_store({"state": np.zeros((5, 2))}, np.array([3, 2]))  # needs 3+1 + 2+1 = 7 rows
    with pytest.raises(ValueError, match="'actions'"):
        make_demo_store(np.zeros((7, 2)), np.array([3, 2]), actions=np.zeros((4, 1)))
    with pytest.raises(ValueError, match="ends an episode but is not its last step"):
        make_demo_store(np.zeros((7, 2)), np.array([3, 2]), terminations=np.array([1, 0, 0, 0, 0], bool))


def assert_stores_equal(a, b):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        assert x.dtype == y.dtype
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


@pytest.mark.parametrize("dict_obs,with_actions", [(False, True), (True, False)])
def test_npz_save_then_load_is_identical(tmp_path, dict_obs, with_actions):
    store = make_episodes([3, 1, 5], with_actions=with_actions, dict_obs=dict_obs)
    save_npz(store, tmp_path / "demos.npz")
    assert_stores_equal(store, load_npz(tmp_path / "demos.npz"))


def test_truncated_or_corrupted_npz_is_reported(tmp_path):
    store = make_episodes([30, 20])
    path = tmp_path / "demos.npz"
    save_npz(store, path)
    raw = path.read_bytes()
    (tmp_path / "cut.npz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DatasetError, match="truncated or corrupted"):
        load_npz(tmp_path / "cut.npz")
    flipped = bytearray(raw)
    offset = raw.index(b"observations.npy") + 200  # inside the observation array's data
    flipped[offset] ^= 0xFF
    (tmp_path / "flip.npz").write_bytes(bytes(flipped))
    with pytest.raises(DatasetError):
        load_npz(tmp_path / "flip.npz")
    # A file whose arrays disagree with its episode boundaries is reported too.
    arrays = dict(np.load(path))
    arrays["episode_lengths"] = np.array([30, 21])
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(DatasetError, match="inconsistent"):
        load_npz(tmp_path / "bad.npz")


@pytest.fixture
def minari_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    return tmp_path / "minari"


def test_minari_save_then_load_is_identical(minari_dir):
    store = make_episodes([3, 1, 5], dict_obs=True)
    save_minari(store, "rlkit/test-v0")
    assert_stores_equal(store, load_minari("rlkit/test-v0"))
    no_actions = load_minari("rlkit/test-v0", include_actions=False)
    assert no_actions.actions is None
    np.testing.assert_array_equal(
        np.asarray(no_actions.observations["state"]), np.asarray(store.observations["state"])
    )
    with pytest.raises(FileNotFoundError):
        load_minari("rlkit/missing-v0")
    with pytest.raises(ValueError, match="need actions"):
        save_minari(make_episodes([2], with_actions=False), "rlkit/noact-v0")


def test_corrupted_minari_dataset_is_reported(minari_dir):
    save_minari(make_episodes([40, 40]), "rlkit/broken-v0")
    (h5,) = list(minari_dir.rglob("*.hdf5"))
    raw = h5.read_bytes()
    h5.write_bytes(raw[: len(raw) // 3])
    with pytest.raises(DatasetError, match="truncated or corrupted"):
        load_minari("rlkit/broken-v0")
