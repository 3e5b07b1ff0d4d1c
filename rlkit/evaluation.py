"""Policy evaluation on JAX-native envs: complete episodes of ``agent.act`` in parallel, fully compiled.

Used by every learner's ``Trainer.evaluate`` (deterministic returns between chunks) and by ``rlkit eval``.
Deliberately not here: videos (``envs`` render functions, vmapped over a trajectory) and host-side Gymnasium
evaluation (``rlkit.host_loop``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from agents.base import Agent
from envs.core import Environment


def evaluate_policy(
    env: Environment,
    agent: Agent,
    agent_state,
    key,
    *,
    params=None,
    num_episodes: int = 10,
    mode: str = "deterministic",
) -> dict[str, jax.Array]:
    """Mean return of ``num_episodes`` complete episodes (one per env, all in parallel) of ``agent.act``."""
    horizon = env.spec.max_episode_steps
    if not horizon:
        raise ValueError(f"evaluate_policy needs a time-limited env; {env.spec.id} has no max_episode_steps")
    params = env.default_params if params is None else params
    reset_key, run_key = jax.random.split(key)
    obs, state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(reset_key, num_episodes), params)

    def step(carry, k):
        obs, state, ret, alive = carry
        act_key, step_key = jax.random.split(k)
        a = jax.vmap(agent.act, in_axes=(None, 0, 0, None))(
            agent_state, obs, jax.random.split(act_key, num_episodes), mode
        )
        obs, state, r, term, trunc, info = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
            jax.random.split(step_key, num_episodes), state, a, params
        )
        r = jnp.sum(jnp.reshape(r, (num_episodes, -1)), axis=-1)
        ret = ret + alive * r
        alive = alive * (1.0 - jnp.logical_or(term, trunc).astype(jnp.float32))
        return (obs, state, ret, alive), None

    init = (obs, state, jnp.zeros(num_episodes), jnp.ones(num_episodes))
    (_, _, ret, _), _ = jax.lax.scan(step, init, jax.random.split(run_key, horizon))
    return {"eval_return": jnp.mean(ret)}
