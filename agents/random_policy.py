"""A uniformly random policy in the agent protocol: the baseline of every return table, and the agent the main
job runs until the learners exist. ``update`` does nothing (it still returns the protocol's ``(state, metrics)``).
"""

from __future__ import annotations

import jax.numpy as jnp

from agents.base import Agent
from envs.core import EnvSpec
from envs.spaces import Box


def make_random_agent(spec: EnvSpec) -> Agent:
    space = spec.action_space
    if isinstance(space, Box) and not space.bounded:
        raise ValueError(f"a random policy needs a bounded action space; {spec.id} has {space}")

    def init(key, spec_=None):
        return {"steps": jnp.zeros((), jnp.int32)}

    def act(state, obs, key, mode="explore"):
        if mode == "deterministic" and isinstance(space, Box):
            return jnp.asarray((space.low + space.high) / 2, space.dtype)
        return space.sample(key)

    def update(state, batch, key):
        return {"steps": state["steps"] + 1}, {}

    return Agent("random", None, init, act, update)
