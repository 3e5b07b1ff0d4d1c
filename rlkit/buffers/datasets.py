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


# ---- one loader for every form, and the check against an env ----------------------------------------------

ENV_STATE_KEY = "env_state"
"""The ``extras`` key under which ``rlkit demos collect`` stores each step's env state (before its action)."""

ACCEPTED_FORMS = (
    "a directory written by `rlkit demos collect` (with demos.npz), a .npz written by save_npz, or a Minari "
    "dataset directory (one holding data/metadata.json, or a folder of exactly one such dataset)"
)


def _minari_datasets(root: str) -> list[str]:
    """The Minari dataset directories at or under ``root`` (each one holds ``data/metadata.json``)."""
    found = []
    for here, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        if os.path.basename(here) == "data" and "metadata.json" in files:
            found.append(os.path.dirname(here))
            dirs[:] = []
    return found


def _load_minari_dir(dataset_dir: str) -> DemoStore:
    """A Minari dataset directory (``<datasets root>/<namespace>/<name>-vN``) loaded through ``load_minari``,
    with ``MINARI_DATASETS_PATH`` pointed at its root for the call (and restored afterwards)."""
    import json

    meta_path = os.path.join(dataset_dir, "data", "metadata.json")
    try:
        with open(meta_path, encoding="utf-8") as f:
            dataset_id = json.load(f)["dataset_id"]
        if not isinstance(dataset_id, str) or not dataset_id:
            raise ValueError(f"dataset_id {dataset_id!r}")
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise DatasetError(f"{meta_path}: not a readable Minari metadata file: {e!r}") from e
    parts = dataset_id.split("/")
    root = os.path.abspath(dataset_dir)
    if tuple(root.split(os.sep)[-len(parts) :]) != tuple(parts):
        raise DatasetError(
            f"{dataset_dir}: its metadata names dataset {dataset_id!r}, which does not end the directory's "
            "path (Minari finds a dataset at <MINARI_DATASETS_PATH>/<dataset id>)"
        )
    for _ in parts:
        root = os.path.dirname(root)
    saved = os.environ.get("MINARI_DATASETS_PATH")
    os.environ["MINARI_DATASETS_PATH"] = root
    try:
        return load_minari(dataset_id)
    finally:
        if saved is None:
            del os.environ["MINARI_DATASETS_PATH"]
        else:
            os.environ["MINARI_DATASETS_PATH"] = saved


def resolve_demos(path: str | os.PathLike) -> tuple[str, str]:
    """Which file or dataset ``load_demos(path)`` reads: ``("npz", <the .npz>)`` or ``("minari", <the Minari
    dataset directory>)``; raises as ``load_demos`` does when ``path`` is none of the accepted forms."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} does not exist; demonstrations are {ACCEPTED_FORMS}")
    if os.path.isfile(path):
        if not path.endswith(".npz"):
            raise DatasetError(f"{path} is not a .npz file; demonstrations are {ACCEPTED_FORMS}")
        return "npz", path
    if not os.path.isdir(path):
        raise DatasetError(f"{path} is neither a file nor a directory; demonstrations are {ACCEPTED_FORMS}")
    npz = os.path.join(path, "demos.npz")
    if os.path.isfile(npz):
        return "npz", npz
    found = _minari_datasets(path)
    if len(found) == 1:
        return "minari", found[0]
    if len(found) > 1:
        names = ", ".join(os.path.relpath(d, path) for d in found)
        raise DatasetError(f"{path} holds {len(found)} Minari datasets ({names}); give the directory of one")
    raise DatasetError(
        f"{path} holds no demonstrations (no demos.npz, no Minari dataset); expected {ACCEPTED_FORMS}"
    )


def load_demos(path: str | os.PathLike) -> DemoStore:
    """Demonstrations from ``path``, in any of the three forms ``rlkit`` writes or reads:

    - a directory written by ``rlkit demos collect``: its ``demos.npz`` (which also holds the env states);
    - a ``.npz`` file written by ``save_npz``;
    - a Minari dataset directory (the one holding ``data/metadata.json``), or a directory holding exactly one
      Minari dataset somewhere below it (e.g. the ``minari/`` folder of a collect directory). Read locally
      only: ``MINARI_DATASETS_PATH`` points at that dataset's root just for the call; nothing is downloaded.

    A path that does not exist raises ``FileNotFoundError`` naming it and the accepted forms; anything else
    that is not one of the forms, or is damaged, raises ``DatasetError`` (one line; never a partial store)."""
    kind, target = resolve_demos(path)
    return load_npz(target) if kind == "npz" else _load_minari_dir(target)


def _per_step(tree: Any) -> Any:
    """``(shape, dtype)`` of one step of an array (leaves ``[N, ...]``), or a dict of those for a dict."""
    if isinstance(tree, dict):
        return {k: _per_step(v) for k, v in tree.items()}
    return tuple(np.shape(tree)[1:]), np.dtype(tree.dtype)


def check_demos_match(store: DemoStore, spec: Any, *, need_actions: bool = True, source: str = "") -> None:
    """Raise ``DatasetError`` (one line) unless ``store`` fits the env of ``spec`` (an ``envs.core.EnvSpec``):
    one observation array whose per-step shape is ``spec.observation_space.shape``; when stored (or when
    ``need_actions``), actions of ``spec.action_space``'s shape — floating for a Box, integer indices of shape
    ``()`` in ``[0, n)`` for a Discrete. ``source`` names the demonstrations in the message (e.g. the path)."""
    from envs.spaces import Discrete

    what = f"demonstrations {source}" if source else "demonstrations"
    want_obs = tuple(spec.observation_space.shape)
    obs = _per_step(store.observations)
    if isinstance(obs, dict):
        raise DatasetError(
            f"{what}: observations are a dict ({', '.join(f'{k} {v[0]}' for k, v in obs.items())}) but "
            f"{spec.id} has one observation of shape {want_obs}"
        )
    if obs[0] != want_obs:
        raise DatasetError(
            f"{what}: observation shape {obs[0]} does not match {spec.id}'s observation shape {want_obs}"
        )
    if store.actions is None:
        if need_actions:
            raise DatasetError(
                f"{what} hold no actions (observations only), but actions are needed to learn from them on "
                f"{spec.id}"
            )
        return
    space = spec.action_space
    act = _per_step(store.actions)
    if isinstance(act, dict):
        raise DatasetError(f"{what}: actions are a dict but {spec.id} has one action of shape {space.shape}")
    shape, dtype = act
    discrete = isinstance(space, Discrete)
    if shape != tuple(space.shape):
        hint = " (integer indices, one per step)" if discrete else ""
        raise DatasetError(
            f"{what}: action shape {shape} does not match {spec.id}'s action shape {tuple(space.shape)} "
            f"of {space!r}{hint}"
        )
    if discrete:
        if not np.issubdtype(dtype, np.integer):
            raise DatasetError(
                f"{what}: actions of dtype {dtype}, but {spec.id} has {space!r} actions (integer indices)"
            )
        actions = np.asarray(store.actions)
        if actions.size and (actions.min() < 0 or actions.max() >= space.n):
            raise DatasetError(
                f"{what}: actions range over [{actions.min()}, {actions.max()}], outside [0, {space.n}) of "
                f"{spec.id}'s {space!r}"
            )
    elif not np.issubdtype(dtype, np.floating):
        raise DatasetError(
            f"{what}: actions of dtype {dtype}, but {spec.id} has {space!r} (floating) actions"
        )


def env_state_to_tree(state: Any) -> dict[str, Any] | Any:
    """An env state pytree (leaves ``[N, ...]``) as nested dicts of plain arrays, as ``save_npz`` stores them:
    dataclasses become dicts of their fields (``flax.serialization.to_state_dict``), typed PRNG keys their
    key data. ``env_state_from_tree`` turns it back, given a state of the same env as the template."""
    from flax import serialization

    def plain(x):
        x = np.asarray(jax.random.key_data(x)) if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key) else x
        return np.asarray(x)

    return serialization.to_state_dict(jax.tree.map(plain, state))


def env_state_from_tree(tree: Any, template: Any) -> Any:
    """The env state pytree of ``template``'s structure (a state of the same env, e.g. ``env.reset(key)[1]``) with
    the arrays of ``tree`` (from ``env_state_to_tree``, e.g. ``store.extras["env_state"]`` indexed at some
    steps); typed PRNG keys are rebuilt from their key data. Leading axes of ``tree`` are kept."""
    from flax import serialization

    def is_key(t):
        return jax.dtypes.issubdtype(t.dtype, jax.dtypes.prng_key)

    plain = jax.tree.map(lambda t: jax.eval_shape(jax.random.key_data, t) if is_key(t) else t, template)
    restored = serialization.from_state_dict(plain, tree)

    def back(t, x):
        if is_key(t):
            return jax.random.wrap_key_data(jax.numpy.asarray(x), impl=jax.random.key_impl(t))
        return jax.numpy.asarray(x, t.dtype)

    return jax.tree.map(back, template, restored)
