"""Pytree specs of buffer items: fixed at ``init`` from an example, checked at trace time on every ``add``.

What it is for: turning "the example transition" into a frozen description (structure, per-leaf shape and
dtype) and comparing later inputs against it, so a mismatch fails *before* compiling with a ``ValueError`` that
names the field path (``"obs.pixels"``), what was expected and what came in. It also reads named fields
(``terminated``, ``reward``, ``next_obs`` …) out of dicts, dataclasses and named tuples alike.

What it deliberately does not do: cast or reshape inputs. A silent ``float64 -> float32`` or a broadcast
``[E] -> [E, 1]`` is how replay data goes quietly wrong, so every mismatch is an error.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


def path_name(path: tuple) -> str:
    """Renders a pytree key path as a dotted field name: ``obs.pixels``, ``extras.0``."""
    parts = []
    for key in path:
        if isinstance(key, jax.tree_util.DictKey):
            parts.append(str(key.key))
        elif isinstance(key, jax.tree_util.GetAttrKey):
            parts.append(key.name)
        elif isinstance(key, jax.tree_util.SequenceKey):
            parts.append(str(key.idx))
        elif isinstance(key, jax.tree_util.FlattenedIndexKey):
            parts.append(str(key.key))
        else:  # pragma: no cover - future key kinds
            parts.append(str(key))
    return ".".join(parts) or "<root>"


def leaf_specs(example: Any) -> Any:
    """The ``ShapeDtypeStruct`` of every leaf of one example item (no leading batch axis)."""
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(np.shape(x), jnp.result_type(x)), example)


def check_matches(spec: Any, tree: Any, leading: tuple[int, ...], what: str) -> None:
    """Raises ``ValueError`` naming the field unless ``tree`` has ``spec``'s structure, dtypes, and shapes
    ``leading + spec.shape``. Runs on shapes only, so it is free under ``jit`` (it runs at trace time)."""
    spec_def = jax.tree.structure(spec)
    tree_def = jax.tree.structure(tree)
    if spec_def != tree_def:
        want = sorted(path_name(p) for p, _ in jax.tree_util.tree_flatten_with_path(spec)[0])
        got = sorted(path_name(p) for p, _ in jax.tree_util.tree_flatten_with_path(tree)[0])
        missing = sorted(set(want) - set(got))
        extra = sorted(set(got) - set(want))
        raise ValueError(
            f"{what}: pytree structure differs from the one fixed at init; missing fields {missing}, "
            f"unexpected fields {extra} (expected structure {spec_def}, got {tree_def})"
        )
    for (path, s), x in zip(jax.tree_util.tree_flatten_with_path(spec)[0], jax.tree.leaves(tree)):
        name = path_name(path)
        want_shape = tuple(leading) + tuple(s.shape)
        if tuple(np.shape(x)) != want_shape:
            raise ValueError(f"{what}: field {name!r} expected shape {want_shape}, got {tuple(np.shape(x))}")
        # The raw dtype, not JAX's canonical one: a float64 numpy array would be cast silently otherwise.
        got_dtype = x.dtype if hasattr(x, "dtype") else np.result_type(x)
        if got_dtype != s.dtype:
            raise ValueError(f"{what}: field {name!r} expected dtype {s.dtype}, got {got_dtype}")


def get_field(tree: Any, name: str) -> Any:
    """Reads a dotted field (``"obs"``, ``"info.final_obs"``) from dicts, dataclasses or named tuples."""
    node = tree
    for part in name.split("."):
        if isinstance(node, dict) or hasattr(node, "keys") and hasattr(node, "__getitem__"):
            if part not in node:
                raise ValueError(f"field {name!r} not found in the buffer item (fields: {list(node.keys())})")
            node = node[part]
        elif hasattr(node, part):
            node = getattr(node, part)
        else:
            raise ValueError(f"field {name!r} not found in the buffer item of type {type(node).__name__}")
    return node


def has_field(tree: Any, name: str) -> bool:
    try:
        get_field(tree, name)
    except ValueError:
        return False
    return True
