"""The agent protocol every learner follows:

    init(key, spec)              -> state
    act(state, obs, key, mode)   -> action          # mode: "explore" | "deterministic" (static)
    update(state, batch, key)    -> (state, metrics)
    log_prob(state, obs, action) -> float[B]         # optional: log π(action | obs) over a batch

An ``Agent`` is a frozen bundle of these pure functions plus the config that built them; its state is a pytree.
``act`` takes one observation (vmap it over envs); ``update`` must be jittable, with no host callbacks.
``log_prob`` (stochastic policies that offer it: SAC, PPO, BC) takes a batch of observations and actions in the
env's action space; learned reward terms that need the policy (AIRL's discriminator) read it.
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
    log_prob: Callable[..., Any] | None = None
