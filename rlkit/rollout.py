"""On-device rollouts in compiled chunks: the env-stepping half of the training loop.

``make_rollout(env, agent, num_envs, chunk_steps)`` returns ``(init, run_chunk)``: ``run_chunk`` is one
``lax.scan`` of ``chunk_steps`` steps of ``num_envs`` vmapped envs driven by ``agent.act``, with episode
statistics reduced *inside* the chunk, so the host sees a handful of scalars per chunk and never syncs inside
it. Both functions are pure: ``jax.vmap`` them over a leading ``runs`` axis (seeds × swept values) and ``jax.jit``
them with the state donated. The env is wrapped ``FlagNonFinite → AutoReset → EpisodeStatistics`` here, once.

Deliberately not here: learning (the learners' loops in ``agents`` call ``update`` between or inside chunks),
logging and checkpoints (the host does those between chunks).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from agents.base import Agent
from envs.core import Environment
from envs.wrappers import AutoReset, EpisodeStatistics, FlagNonFinite


@struct.dataclass
class RolloutState:
    key: jax.Array
    obs: jax.Array  # [num_envs, *obs_shape]
    env_state: Any  # batched over num_envs
    agent_state: Any
    env_steps: jax.Array  # int32[]: env steps taken, summed over the env batch


def wrap_for_rollout(env: Environment) -> Environment:
    return EpisodeStatistics(AutoReset(FlagNonFinite(env)))


def make_rollout(env: Environment, agent: Agent, *, num_envs: int, chunk_steps: int, params=None):
    if num_envs < 1 or chunk_steps < 1:
        raise ValueError(f"num_envs and chunk_steps must be >= 1, got {num_envs} and {chunk_steps}")
    env = wrap_for_rollout(env)
    params = env.default_params if params is None else params
    k = env.spec.num_reward_terms

    def init(key: jax.Array) -> RolloutState:
        key, agent_key, env_key = jax.random.split(key, 3)
        obs, env_state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(env_key, num_envs), params)
        return RolloutState(key, obs, env_state, agent.init(agent_key, env.spec), jnp.zeros((), jnp.int32))

    def one_step(state: RolloutState, _):
        key, act_key, step_key = jax.random.split(state.key, 3)
        act_keys, step_keys = jax.random.split(act_key, num_envs), jax.random.split(step_key, num_envs)
        actions = jax.vmap(agent.act, in_axes=(None, 0, 0, None))(
            state.agent_state, state.obs, act_keys, "explore"
        )
        obs, env_state, reward, terminated, truncated, info = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
            step_keys, state.env_state, actions, params
        )
        done = info["episode_done"].astype(jnp.float32)
        stats = {
            "episodes": jnp.sum(done),
            "return_sum": jnp.sum(done * info["episode_return"]),
            "return_terms_sum": jnp.sum(done[:, None] * info["episode_return_terms"], axis=0),
            "length_sum": jnp.sum(done * info["episode_length"]),
            "nonfinite": jnp.sum(info["nonfinite_obs"].astype(jnp.int32)),
        }
        new = state.replace(key=key, obs=obs, env_state=env_state, env_steps=state.env_steps + num_envs)
        return new, stats

    def run_chunk(state: RolloutState) -> tuple[RolloutState, dict[str, jax.Array]]:
        """``chunk_steps`` steps; metrics are means over the episodes that *ended* in the chunk (NaN if none)."""
        state, stats = jax.lax.scan(one_step, state, None, length=chunk_steps)
        total = jax.tree.map(lambda x: jnp.sum(x, axis=0), stats)
        n = total["episodes"]
        safe = jnp.maximum(n, 1.0)
        metrics = {
            "episodes": n,
            "episode_return": jnp.where(n > 0, total["return_sum"] / safe, jnp.nan),
            "episode_length": jnp.where(n > 0, total["length_sum"] / safe, jnp.nan),
            "nonfinite_steps": total["nonfinite"],
        }
        if k > 1:
            for i, name in enumerate(env.spec.reward_names):
                metrics[f"episode_return/{name}"] = jnp.where(
                    n > 0, total["return_terms_sum"][i] / safe, jnp.nan
                )
        return state, metrics

    return init, run_chunk
