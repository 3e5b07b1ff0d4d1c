"""The read-only demonstration store: whole episodes on device, with or without actions.

An episode of ``T`` steps holds ``T + 1`` observations and ``T`` actions / rewards / flags (the Minari and
imitation convention), so no episode's last next-observation is lost and episodes never share a state.
All episodes are concatenated: step ``i`` (global, over all episodes) of episode ``e`` has observation row
``i + e`` and next observation row ``i + e + 1``. ``step_episode[i]`` is precomputed (4 bytes a step) so
sampling needs no search.

Provides: uniform transitions, windows that lie entirely inside one episode (exactly uniform over all such
windows; demos are fixed, so excluding boundary-crossing windows costs nothing at sample time, unlike the
online ring buffer), hindsight goals from the same episode's future, and per-episode access on the host.

What it deliberately does not do: change after construction (``DemoStore`` is a frozen pytree; build a new one
to add data), or read files (``datasets`` does that and hands the arrays here).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from rlkit.buffers import relabel
from rlkit.buffers.specs import path_name


@struct.dataclass
class DemoStore:
    """observations: leaves ``[N + num_episodes, ...]``; actions: leaves ``[N, ...]`` or None (imitation from
    observation); rewards: ``[N, ...]`` or None; terminations, truncations: ``[N]`` bool; extras: a pytree with
    leaves ``[N, ...]`` or None; episode_lengths, episode_starts: ``[num_episodes]`` int32 (in steps);
    step_episode: ``[N]`` int32."""

    observations: Any
    actions: Any
    rewards: Any
    terminations: jax.Array
    truncations: jax.Array
    extras: Any
    episode_lengths: jax.Array
    episode_starts: jax.Array
    step_episode: jax.Array

    @property
    def num_episodes(self) -> int:
        return int(self.episode_lengths.shape[0])

    @property
    def num_steps(self) -> int:
        return int(self.terminations.shape[0])

    @property
    def has_actions(self) -> bool:
        return self.actions is not None


def _leading(tree: Any, want: int, what: str) -> None:
    for path, x in jax.tree_util.tree_flatten_with_path(tree)[0]:
        if np.ndim(x) == 0 or np.shape(x)[0] != want:
            field = f"{what}.{path_name(path)}" if path else what
            raise ValueError(
                f"demonstrations: field {field!r} has leading length {np.shape(x)[:1]}, expected {want} "
                f"(from episode_lengths)"
            )


def make_demo_store(
    observations: Any,
    episode_lengths: Any,
    *,
    actions: Any = None,
    rewards: Any = None,
    terminations: Any = None,
    truncations: Any = None,
    extras: Any = None,
) -> DemoStore:
    """Validates lengths against the episode boundaries on the host, then moves everything to the device.

    episode_lengths: ``[num_episodes]`` steps per episode (each ≥ 1). Missing ``terminations`` /
    ``truncations`` default to "truncated at the last step of each episode" (time limit: still bootstrap)."""
    lengths = np.asarray(episode_lengths)
    if lengths.ndim != 1 or lengths.size == 0 or not np.issubdtype(lengths.dtype, np.integer):
        raise ValueError(f"episode_lengths must be a non-empty 1-D integer array, got {lengths!r}")
    if (lengths < 1).any():
        raise ValueError(f"every episode needs at least one step, got lengths {lengths.tolist()}")
    n = int(lengths.sum())
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int32)
    last = np.zeros(n, bool)
    last[np.cumsum(lengths) - 1] = True
    terminations = np.zeros(n, bool) if terminations is None else np.asarray(terminations).astype(bool)
    truncations = (last & ~terminations) if truncations is None else np.asarray(truncations).astype(bool)
    _leading(observations, n + lengths.size, "observations")
    for name, tree in (
        ("actions", actions),
        ("rewards", rewards),
        ("terminations", terminations),
        ("truncations", truncations),
        ("extras", extras),
    ):
        if tree is not None:
            _leading(tree, n, name)
    if ((terminations | truncations) & ~last).any():
        bad = int(np.flatnonzero((terminations | truncations) & ~last)[0])
        raise ValueError(
            f"demonstrations: step {bad} ends an episode but is not its last step per episode_lengths"
        )
    return DemoStore(
        observations=jax.tree.map(jnp.asarray, observations),
        actions=None if actions is None else jax.tree.map(jnp.asarray, actions),
        rewards=None if rewards is None else jax.tree.map(jnp.asarray, rewards),
        terminations=jnp.asarray(terminations),
        truncations=jnp.asarray(truncations),
        extras=None if extras is None else jax.tree.map(jnp.asarray, extras),
        episode_lengths=jnp.asarray(lengths, jnp.int32),
        episode_starts=jnp.asarray(starts),
        step_episode=jnp.asarray(np.repeat(np.arange(lengths.size, dtype=np.int32), lengths)),
    )


def _take(tree: Any, idx: jax.Array) -> Any:
    return None if tree is None else jax.tree.map(lambda x: x.at[idx].get(mode="promise_in_bounds"), tree)


def transitions_at(store: DemoStore, steps: jax.Array) -> dict[str, Any]:
    """The transitions at global step indices ``steps`` (any shape): a dict with ``obs``, ``next_obs``,
    ``terminated``, ``truncated`` and, when stored, ``action``, ``reward``, ``extras``."""
    obs_row = steps + store.step_episode.at[steps].get(mode="promise_in_bounds")
    out = {
        "obs": _take(store.observations, obs_row),
        "next_obs": _take(store.observations, obs_row + 1),
        "terminated": _take(store.terminations, steps),
        "truncated": _take(store.truncations, steps),
    }
    for name, tree in (("action", store.actions), ("reward", store.rewards), ("extras", store.extras)):
        if tree is not None:
            out[name] = _take(tree, steps)
    return out


def sample_transitions(store: DemoStore, key: jax.Array, batch_size: int) -> dict[str, Any]:
    """Uniform over all demonstration steps; leaves ``[batch_size, ...]``."""
    steps = jax.random.randint(key, (batch_size,), 0, store.terminations.shape[0], dtype=jnp.int32)
    return transitions_at(store, steps)


def sample_sequences(store: DemoStore, key: jax.Array, batch_size: int, length: int) -> dict[str, Any]:
    """Uniform over every window of ``length`` steps that lies inside one episode (episodes shorter than
    ``length`` are never drawn). Returns transitions with leaves ``[batch_size, length, ...]`` plus ``episode``
    and ``start`` (``[batch_size]``, the episode index and the window's first step within it)."""
    windows = jnp.maximum(store.episode_lengths - length + 1, 0)
    cum = jnp.cumsum(windows)
    try:
        empty = int(cum[-1]) == 0
    except jax.errors.ConcretizationTypeError:  # traced: checked by the caller's can-sample logic instead
        empty = False
    if empty:
        raise ValueError(
            f"no demonstration episode has {length} steps (longest: {int(store.episode_lengths.max())})"
        )
    u = jax.random.randint(key, (batch_size,), 0, jnp.maximum(cum[-1], 1), dtype=jnp.int32)
    episode = jnp.searchsorted(cum, u, side="right").astype(jnp.int32)
    offset = u - (cum[episode] - windows[episode])
    steps = (store.episode_starts[episode] + offset)[:, None] + jnp.arange(length, dtype=jnp.int32)
    out = transitions_at(store, steps)
    out["episode"], out["start"] = episode, offset
    return out


def sample_goals(
    store: DemoStore, key: jax.Array, batch_size: int, mixture: relabel.GoalMixture
) -> relabel.GoalSample:
    """Uniform transitions, each with a goal observation per ``mixture`` (see ``relabel``): current ``s_t``,
    a future ``s_{t+Δ}`` of the same episode (``Δ ∈ [1, steps left]``, the final observation included), or a
    uniformly random observation of the store."""
    k_pos, k_src, k_off, k_rand = jax.random.split(key, 4)
    steps = jax.random.randint(k_pos, (batch_size,), 0, store.terminations.shape[0], dtype=jnp.int32)
    episode = store.step_episode[steps]
    remaining = store.episode_starts[episode] + store.episode_lengths[episode] - steps  # future states, ≥ 1
    delta = relabel.future_offsets(k_off, remaining, mixture)
    source = relabel.choose_sources(k_src, (batch_size,), mixture)
    num_obs = jax.tree.leaves(store.observations)[0].shape[0]
    random_row = jax.random.randint(k_rand, (batch_size,), 0, num_obs, dtype=jnp.int32)
    obs_row = steps + episode
    row = jnp.where(
        source == relabel.SOURCE_CURRENT,
        obs_row,
        jnp.where(source == relabel.SOURCE_FUTURE, obs_row + delta, random_row),
    )
    offset = jnp.where(
        source == relabel.SOURCE_CURRENT, 0, jnp.where(source == relabel.SOURCE_FUTURE, delta, -1)
    )
    return relabel.GoalSample(
        transitions_at(store, steps),
        _take(store.observations, row),
        offset.astype(jnp.int32),
        source.astype(jnp.int32),
    )


def episode(store: DemoStore, index: int) -> dict[str, Any]:
    """Episode ``index`` on the host as numpy: ``observations`` ``[T+1, ...]``, ``actions``/``rewards``/
    ``terminations``/``truncations``/``extras`` ``[T, ...]`` (absent fields are None)."""
    start = int(store.episode_starts[index])
    length = int(store.episode_lengths[index])
    obs0 = start + index

    def cut(tree, a, b):
        return None if tree is None else jax.tree.map(lambda x: np.asarray(x[a:b]), tree)

    return {
        "observations": cut(store.observations, obs0, obs0 + length + 1),
        "actions": cut(store.actions, start, start + length),
        "rewards": cut(store.rewards, start, start + length),
        "terminations": cut(store.terminations, start, start + length),
        "truncations": cut(store.truncations, start, start + length),
        "extras": cut(store.extras, start, start + length),
    }
