"""The agent protocol every learner follows:

    init(key, spec)              -> state
    act(state, obs, key, mode)   -> action          # mode: "explore" | "deterministic" (static)
    update(state, batch, key)    -> (state, metrics)

An ``Agent`` is a frozen bundle of these pure functions plus the config that built them; its state is a pytree.
``act`` takes one observation (vmap it over envs); ``update`` must be jittable, with no host callbacks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

Mode = Literal["explore", "deterministic"]


@dataclass(frozen=True)
class Agent:
    name: str
    config: Any
    init: Callable[..., Any]
    act: Callable[..., Any]
    update: Callable[..., tuple[Any, dict]]
