"""Typed configs with the static / sweepable split, validated before anything compiles.

A config is a ``flax.struct`` dataclass. A field declared with ``static=True`` (network sizes, batch sizes, which
pieces are composed) is pytree *metadata*: changing it changes shapes, so it is fixed for a compiled program. Every
other field (learning rates, γ, τ, coefficients, mixing ratios) is a pytree *leaf*, so seeds × swept values vmap
into one program (``rlkit.sweeps``). Field docstrings (the string literal under each field) are what
``rlkit train --help`` shows, through tyro.

``validate`` checks every field's declared range or choices — on every entry of a swept (batched) field — and
``from_dict`` / ``replace`` refuse names that do not exist, naming the closest ones. All errors are
``ConfigError`` (a ``ValueError``) with the config class, field, value and what is allowed.

Deliberately not here: YAML/Hydra-style config files (a config round-trips through ``to_dict`` / JSON, which is
what checkpoints store) and per-agent cross-field rules (each agent's ``validate`` adds those).
"""

from __future__ import annotations

import dataclasses
import difflib
from typing import Any

import numpy as np
from flax import struct


class ConfigError(ValueError):
    pass


def param(
    default: Any,
    *,
    static: bool = False,
    low: float | None = None,
    high: float | None = None,
    low_inclusive: bool = True,
    high_inclusive: bool = True,
    choices: tuple | None = None,
):
    """A config field. ``static=True`` fixes it at compile time; ``low`` / ``high`` / ``choices`` are checked by
    ``validate``."""
    metadata = {
        "low": low,
        "high": high,
        "low_inclusive": low_inclusive,
        "high_inclusive": high_inclusive,
        "choices": choices,
    }
    return struct.field(pytree_node=not static, default=default, metadata=metadata)


def is_static(cls, name: str) -> bool:
    return not _fields(cls)[name].metadata.get("pytree_node", True)


def _fields(cls) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(cls)}


def check_names(cls, names, what: str = "field") -> None:
    known = list(_fields(cls))
    for name in names:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=3)
            hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise ConfigError(
                f"{cls.__name__} has no {what} {name!r}.{hint} Its fields are: {', '.join(known)}."
            )


def replace(config, **changes):
    check_names(type(config), changes)
    return validate(config.replace(**changes))


def from_dict(cls, values: dict[str, Any]):
    check_names(cls, values)
    values = dict(values)
    for name in _fields(cls):  # JSON turns tuples into lists; static fields must stay hashable
        if name in values and isinstance(values[name], list):
            values[name] = tuple(values[name])
    return validate(cls(**values))


def to_dict(config) -> dict[str, Any]:
    out = {}
    for f in dataclasses.fields(config):
        v = getattr(config, f.name)
        out[f.name] = np.asarray(v).tolist() if hasattr(v, "shape") else v
    return out


def _describe_range(meta) -> str:
    parts = []
    if meta.get("low") is not None:
        parts.append(f"{'>=' if meta['low_inclusive'] else '>'} {meta['low']}")
    if meta.get("high") is not None:
        parts.append(f"{'<=' if meta['high_inclusive'] else '<'} {meta['high']}")
    return " and ".join(parts)


def validate(config):
    """Check every field's range / choices (all entries of a swept field); return the config unchanged."""
    for f in dataclasses.fields(config):
        meta = f.metadata
        value = getattr(config, f.name)
        where = f"{type(config).__name__}.{f.name}"
        if meta.get("choices") is not None and value not in meta["choices"]:
            raise ConfigError(f"{where} = {value!r} is not allowed; choose one of {list(meta['choices'])}")
        low, high = meta.get("low"), meta.get("high")
        if (low is None and high is None) or value is None:  # None: an optional field left unset
            continue
        arr = np.asarray(value, dtype=np.float64)
        bad = ~np.isfinite(arr)
        if low is not None:
            bad |= (arr < low) if meta["low_inclusive"] else (arr <= low)
        if high is not None:
            bad |= (arr > high) if meta["high_inclusive"] else (arr >= high)
        if np.any(bad):
            shown = float(arr[bad].flat[0]) if arr.ndim else value
            raise ConfigError(f"{where} = {shown!r} is out of range: it must be {_describe_range(meta)}")
    return config
