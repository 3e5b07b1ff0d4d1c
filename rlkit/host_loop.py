"""The host training loop for Gymnasium envs (MuJoCo, Meta-World, any user env) with off-policy learners.

The env steps on the host through ``envs.gymnasium_bridge.GymnasiumVectorEnv``; the agent's ``act`` and one fused
``add + update`` function are jitted, with the replay buffer and learner state on the device and donated, so a
step costs one env step on the host and two dispatches (act; learn) — no Python-side learning logic. The same
``make_agent(config, spec)`` and the same ``rlkit.off_policy.example_transition`` as the on-device loop are used,
so an agent trained here is the same agent (and exports the same way).

Logging mirrors ``rlkit.training``: a chunk is ``config.chunk_steps`` vector-env steps, after which metrics are
logged and, every ``checkpoint_every`` chunks, the learner state, buffer, RNG key and counters are checkpointed.
Resume restores all of that; the Gymnasium env itself cannot be snapshotted in general, so a resumed host run
starts fresh episodes (it is not bit-exact, unlike the on-device loop) — said here so nobody relies on it.

Deliberately not here: on-policy learners on the host (PPO with Gymnasium envs comes with a later issue) and
asynchronous actor/learner splits.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from agents.base import Agent
from envs.core import EnvSpec
from envs.gymnasium_bridge import GymnasiumVectorEnv
from rlkit.buffers import make_replay_buffer
from rlkit.off_policy import example_transition
from rlkit.training import RunRecorder, TrainResult, check_finite


@struct.dataclass
class HostLearnerState:
    key: jax.Array
    agent_state: Any
    buffer_state: Any
    env_steps: jax.Array


def train_host(
    make_agent: Callable[[Any, EnvSpec], Agent],
    config: Any,
    env: GymnasiumVectorEnv,
    *,
    total_steps: int,
    seed: int = 0,
    log_dir: str | os.PathLike | None = None,
    checkpoint_every: int = 10,
    resume: bool = False,
    console: bool = True,
    on_chunk: Callable[[int, dict], None] | None = None,
) -> TrainResult:
    """Train one run of an off-policy learner on a host vector env (``config.num_envs`` must match it)."""
    spec = env.spec
    if env.num_envs != config.num_envs:
        raise ValueError(
            f"config.num_envs = {config.num_envs} but the Gymnasium vector env has {env.num_envs}"
        )
    agent = make_agent(config, spec)
    buffer = make_replay_buffer(example_transition(spec), capacity=config.buffer_size, num_envs=env.num_envs)
    n, learning_starts = env.num_envs, config.learning_starts

    def init(key):
        key, agent_key = jax.random.split(key)
        return HostLearnerState(key, agent.init(agent_key), buffer.init(), jnp.zeros((), jnp.int32))

    def act(state: HostLearnerState, obs):
        key, act_key, rand_key = jax.random.split(state.key, 3)
        policy = jax.vmap(agent.act, in_axes=(None, 0, 0, None))(
            state.agent_state, obs, jax.random.split(act_key, n), "explore"
        )
        random = jax.vmap(spec.action_space.sample)(jax.random.split(rand_key, n))
        return state.replace(key=key), jnp.where(state.env_steps < learning_starts, random, policy)

    def learn(state: HostLearnerState, transition):
        buffer_state = buffer.add(state.buffer_state, transition)
        env_steps = state.env_steps + n

        def one_update(carry, k):
            agent_state, buffer_state = carry
            sample_key, learn_key = jax.random.split(k)
            agent_state, metrics = agent.update(
                agent_state, buffer.sample(buffer_state, sample_key, config.batch_size), learn_key
            )
            return (agent_state, buffer_state), metrics

        key, update_key = jax.random.split(state.key)
        (updated, buffer_state), metrics = jax.lax.scan(
            one_update,
            (state.agent_state, buffer_state),
            jax.random.split(update_key, config.updates_per_step),
        )
        # before learning_starts only the data is kept (a real branch here: no vmap, so lax.cond skips the work)
        agent_state = jax.lax.cond(env_steps >= learning_starts, lambda: updated, lambda: state.agent_state)
        metrics = jax.tree.map(lambda m: m[-1], metrics)
        metrics["learning"] = env_steps >= learning_starts
        return HostLearnerState(key, agent_state, buffer_state, env_steps), metrics

    def learn_then_act(state: HostLearnerState, transition, next_obs):
        """One dispatch per env step: the update on this transition, then the next step's actions (the same
        computation, in the same order, as calling ``learn`` and ``act`` separately)."""
        state, metrics = learn(state, transition)
        state, actions = act(state, next_obs)
        return state, metrics, actions

    act = jax.jit(act)
    learn_then_act = jax.jit(learn_then_act, donate_argnums=0)
    state = init(jax.random.key(seed))
    num_chunks = -(-total_steps // (config.chunk_steps * n))
    steps_per_chunk = config.chunk_steps * n
    record = {
        "trainer": f"host/{type(config).__name__}",
        "env": env.id,
        "seed": seed,
        "total_steps": total_steps,
        "runs": [f"seed_{seed}"],
    }
    recorder = RunRecorder(
        log_dir,
        [f"seed_{seed}"],
        record,
        steps_per_chunk=steps_per_chunk,
        num_chunks=num_chunks,
        resume=resume,
        keep=3,
        checkpoint_every=checkpoint_every,
        console=console,
        headline="episode_return",
    )
    try:
        state, first_chunk = recorder.restore(state)
    except BaseException:
        recorder.close()
        raise

    obs = env.reset(seed=seed + 7919 * (first_chunk - 1))  # fresh episodes after a resume
    history, metrics = [], {}
    state, actions = act(state, obs)
    try:
        for c in range(first_chunk, num_chunks + 1):
            returns, lengths, losses = [], [], []
            for _ in range(config.chunk_steps):
                actions = np.asarray(actions)
                next_obs, reward, terminated, truncated, info = env.step(actions)
                transition = {
                    "obs": obs,
                    "action": actions,
                    "reward": reward.reshape((n,) + spec.reward_shape),
                    "next_obs": info["final_obs"],
                    "terminated": terminated,
                    "truncated": truncated,
                }
                state, update_metrics, actions = learn_then_act(state, transition, next_obs)
                losses.append(update_metrics)
                done = info["episode_done"]
                returns.extend(np.asarray(info["episode_return"])[done].tolist())
                lengths.extend(np.asarray(info["episode_length"])[done].tolist())
                obs = next_obs
            losses = jax.device_get(losses)
            metrics = {
                "episodes": np.float64(len(returns)),
                "episode_return": np.float64(np.mean(returns)) if returns else np.float64(np.nan),
                "episode_length": np.float64(np.mean(lengths)) if lengths else np.float64(np.nan),
            }
            learning = np.array([m.pop("learning") for m in losses], bool)
            metrics["learning_steps"] = np.float64(learning.sum())
            for k in losses[0]:
                vals = np.array([m[k] for m in losses], np.float64)[learning]
                metrics[k] = np.float64(np.mean(vals)) if vals.size else np.float64(np.nan)
            check_finite(env.id, c, {k: np.atleast_1d(v) for k, v in metrics.items()}, [f"seed_{seed}"])
            history.append(metrics)
            recorder.after_chunk(c, state, {k: np.atleast_1d(v) for k, v in metrics.items()})
            if on_chunk is not None:
                on_chunk(c, metrics)
    finally:
        recorder.close()
    return TrainResult(state, metrics, history, num_chunks * config.chunk_steps * n)


def evaluate_host(
    agent: Agent,
    agent_state: Any,
    env: GymnasiumVectorEnv,
    *,
    episodes: int = 10,
    seed: int = 0,
    mode: str = "deterministic",
) -> dict[str, float]:
    """Returns of ``episodes`` complete episodes of ``agent.act`` on a host vector env (any Gymnasium env)."""
    act = jax.jit(jax.vmap(agent.act, in_axes=(None, 0, 0, None)), static_argnums=3)
    obs = env.reset(seed=seed)
    key = jax.random.key(seed)
    returns: list[float] = []
    while len(returns) < episodes:
        key, k = jax.random.split(key)
        obs, _, _, _, info = env.step(
            np.asarray(act(agent_state, obs, jax.random.split(k, env.num_envs), mode))
        )
        returns.extend(np.asarray(info["episode_return"])[info["episode_done"]].tolist())
    returns = returns[:episodes]
    return {
        "eval_return": float(np.mean(returns)),
        "eval_return_std": float(np.std(returns)),
        "episodes": len(returns),
    }
