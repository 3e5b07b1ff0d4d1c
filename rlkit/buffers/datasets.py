"""Demonstration datasets on disk: plain ``.npz`` and Minari (the Gymnasium ecosystem's offline format).

Both load into a ``DemoStore`` and save from one; a saved-then-loaded store is identical (same arrays, dtypes
and episode boundaries). Loading is all-or-nothing: every array is read eagerly, lengths are checked against
the episode boundaries, and a truncated or corrupted file raises ``DatasetError`` naming the file and what is
wrong, never a half-loaded store.

``.npz`` layout (format ``rlkit-demos-v1``): ``observations``, ``actions``, ``rewards``, ``extras`` are arrays
or nested dicts of arrays stored under ``group/key/subkey``; ``terminations``, ``truncations``,
``episode_lengths`` are arrays; ``__format__`` names the format. Saved uncompressed: zip CRCs are still checked
on read, and loading 1M steps stays I/O-bound.

Minari: ``MINARI_DATASETS_PATH`` decides where datasets live; we only ever read local datasets
(``minari.load_dataset(id, download=False)``) and never call a download function.

What it deliberately does not do: stream datasets bigger than memory, or convert D4RL/OGBench files (their
``terminals`` / ``timeouts`` conventions differ; convert explicitly and build a store with ``make_demo_store``).
"""

from __future__ import annotations

import os
import warnings
import zipfile
from typing import Any

import jax
import numpy as np

from rlkit.buffers.demos import DemoStore, episode, make_demo_store

FORMAT = "rlkit-demos-v1"
_GROUPS = ("observations", "actions", "rewards", "extras")


class DatasetError(ValueError):
    """A dataset file is missing pieces, truncated, corrupted or inconsistent."""


def _flatten(prefix: str, tree: Any, out: dict[str, np.ndarray]) -> None:
    if isinstance(tree, dict):
        for k, v in tree.items():
            if "/" in str(k):
                raise ValueError(f"field names may not contain '/': {prefix}/{k}")
            _flatten(f"{prefix}/{k}", v, out)
    elif isinstance(tree, (list, tuple)):
        raise ValueError(f"{prefix}: only arrays and (nested) dicts of arrays can be saved to .npz")
    else:
        out[prefix] = np.asarray(tree)


def _unflatten(group: str, arrays: dict[str, np.ndarray]) -> Any:
    if group in arrays:
        return arrays[group]
    sub = {k[len(group) + 1 :]: v for k, v in arrays.items() if k.startswith(group + "/")}
    if not sub:
        return None
    tree: dict[str, Any] = {}
    for key, value in sub.items():
        node = tree
        *parents, leaf = key.split("/")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return tree


def save_npz(store: DemoStore, path: str | os.PathLike) -> None:
    """Writes ``store`` to ``path`` (a ``.npz``), atomically: a crash leaves no half-written file behind."""
    arrays: dict[str, np.ndarray] = {"__format__": np.asarray(FORMAT)}
    for group in _GROUPS:
        tree = getattr(store, group)
        if tree is not None:
            _flatten(group, jax.tree.map(np.asarray, tree), arrays)
    arrays["terminations"] = np.asarray(store.terminations)
    arrays["truncations"] = np.asarray(store.truncations)
    arrays["episode_lengths"] = np.asarray(store.episode_lengths)
    path = os.fspath(path)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        np.savez(f, **arrays)
    os.replace(tmp, path)


def load_npz(path: str | os.PathLike) -> DemoStore:
    """Reads a store written by ``save_npz``; raises ``DatasetError`` on any damage."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}  # eager: a bad CRC or short member fails here, not later
    except FileNotFoundError:
        raise
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, KeyError) as e:
        raise DatasetError(f"{path}: not a readable demonstration .npz (truncated or corrupted?): {e}") from e
    fmt = arrays.pop("__format__", None)
    if fmt is None or str(fmt) != FORMAT:
        raise DatasetError(f"{path}: format {fmt!r}, expected {FORMAT!r}")
    for required in ("observations", "terminations", "truncations", "episode_lengths"):
        if required not in arrays and not any(k.startswith(required + "/") for k in arrays):
            raise DatasetError(f"{path}: missing {required!r}")
    try:
        return make_demo_store(
            _unflatten("observations", arrays),
            arrays["episode_lengths"],
            actions=_unflatten("actions", arrays),
            rewards=_unflatten("rewards", arrays),
            terminations=arrays["terminations"],
            truncations=arrays["truncations"],
            extras=_unflatten("extras", arrays),
        )
    except ValueError as e:
        raise DatasetError(f"{path}: inconsistent contents: {e}") from e


# ---- Minari -------------------------------------------------------------------------------------------


def _space_for(tree: Any):
    """A Gymnasium space matching one step of ``tree`` (leaves ``[N, ...]``): unbounded Box / Dict of them."""
    import gymnasium as gym

    if isinstance(tree, dict):
        return gym.spaces.Dict({k: _space_for(v) for k, v in tree.items()})
    x = np.asarray(tree)
    if np.issubdtype(x.dtype, np.integer):
        info = np.iinfo(x.dtype)
        return gym.spaces.Box(info.min, info.max, x.shape[1:], x.dtype)
    return gym.spaces.Box(-np.inf, np.inf, x.shape[1:], x.dtype)


def save_minari(
    store: DemoStore,
    dataset_id: str,
    *,
    env: Any = None,
    observation_space: Any = None,
    action_space: Any = None,
    **metadata: Any,
):
    """Writes ``store`` as a local Minari dataset ``dataset_id`` under ``$MINARI_DATASETS_PATH``.

    Minari stores actions and rewards for every step: a store without actions cannot be written (save it as
    ``.npz``); missing rewards are written as zeros. Spaces default to unbounded boxes of the stored dtypes."""
    import minari
    from minari.data_collector.episode_buffer import EpisodeBuffer

    if store.actions is None:
        raise ValueError("Minari datasets need actions; save an action-free store with save_npz")
    if store.extras is not None:
        raise ValueError("extras are not written to Minari (its infos are per-step dicts); use save_npz")
    buffers = []
    for i in range(store.num_episodes):
        ep = episode(store, i)
        rewards = (
            ep["rewards"] if ep["rewards"] is not None else np.zeros(len(ep["terminations"]), np.float32)
        )
        buffers.append(
            EpisodeBuffer(
                id=i,
                observations=ep["observations"],
                actions=ep["actions"],
                rewards=rewards,
                terminations=ep["terminations"],
                truncations=ep["truncations"],
            )
        )
    if env is None:
        observation_space = observation_space or _space_for(store.observations)
        action_space = action_space or _space_for(store.actions)
    with warnings.catch_warnings():
        # Minari nags (UserWarning) about every metadata field left None (author, code_permalink, ...); those
        # are the caller's choice, and our tests turn warnings into errors.
        warnings.filterwarnings("ignore", message=".*(is set to None|env_spec is None)", category=UserWarning)
        return minari.create_dataset_from_buffers(
            dataset_id,
            buffers,
            env=env,
            observation_space=observation_space,
            action_space=action_space,
            **metadata,
        )


def load_minari(dataset_id: str, *, include_actions: bool = True, include_rewards: bool = True) -> DemoStore:
    """Reads a local Minari dataset (never downloads); ``include_actions=False`` gives an observation-only store.

    Raises ``FileNotFoundError`` when the dataset is not under ``$MINARI_DATASETS_PATH`` and ``DatasetError``
    when its files are damaged or inconsistent."""
    import minari

    try:
        dataset = minari.load_dataset(dataset_id, download=False)
        episodes = list(dataset.iterate_episodes())
    except FileNotFoundError:
        raise
    except (OSError, KeyError, ValueError, EOFError) as e:
        raise DatasetError(f"Minari dataset {dataset_id!r}: unreadable (truncated or corrupted?): {e}") from e
    if not episodes:
        raise DatasetError(f"Minari dataset {dataset_id!r} has no episodes")

    def cat(trees):
        return jax.tree.map(lambda *xs: np.concatenate([np.asarray(x) for x in xs]), *trees)

    try:
        lengths = np.array([len(ep.rewards) for ep in episodes], np.int64)
        for i, ep in enumerate(episodes):
            n_obs = len(jax.tree.leaves(ep.observations)[0])
            if n_obs != lengths[i] + 1:
                raise ValueError(f"episode {ep.id}: {n_obs} observations for {lengths[i]} steps")
        return make_demo_store(
            cat([ep.observations for ep in episodes]),
            lengths,
            actions=cat([ep.actions for ep in episodes]) if include_actions else None,
            rewards=np.concatenate([np.asarray(ep.rewards) for ep in episodes]) if include_rewards else None,
            terminations=np.concatenate([np.asarray(ep.terminations) for ep in episodes]),
            truncations=np.concatenate([np.asarray(ep.truncations) for ep in episodes]),
        )
    except ValueError as e:
        raise DatasetError(f"Minari dataset {dataset_id!r}: inconsistent contents: {e}") from e
