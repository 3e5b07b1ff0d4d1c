"""The compiled chunk of every offline learner: gradient steps on fixed data, no env interaction while learning.

For behavioural cloning now (``agents.imitation.bc``) and later offline RL and goal-conditioned learners (IQL,
HIQL, goal-conditioned BC): anything whose update consumes batches drawn from a dataset rather than from its own
experience. One chunk is one jitted ``lax.scan`` of ``config.chunk_updates`` (static) gradient steps, each
``agent.update`` on ``sample(cfg, key, config.batch_size)``; ``sample`` is a pure function that closes over the
data (a ``DemoStore`` with ``demos.sample_transitions``, ``sample_sequences``, ``sample_goals``, or any arrays), so
the data is a constant of the compiled chunk, never part of the state: it is not checkpointed, and a resumed run
must be given the same data (nothing here can check that).

**Steps are gradient steps.** ``steps_per_chunk = chunk_updates``, so the driver's ``total_steps``, the logged
``step``, ``checkpoint_every`` / ``eval_every`` (in chunks) and the progress line's "steps/s" count updates of
one run, not env steps or samples. The env is used only by ``evaluate``: ``rlkit.evaluation.evaluate_policy``'s
deterministic returns (``eval_return``, the headline metric), which ``rlkit.training.train`` runs every
``eval_every`` chunks and after the last one. No episode is ever played inside a chunk, so ``episode_return`` is
never reported; with ``eval_every=0`` the progress line shows the step count only.

Per-chunk metrics (per run): the means over the chunk of every metric ``update`` returns, ``learning_steps``
(updates in this chunk: every step learns), ``nonfinite_loss`` (how many of the chunk's ``loss*`` values are not
finite, so ``rlkit.training.check_finite`` stops a diverged run) and ``updates`` (gradient steps so far).

Composes with ``rlkit.training.train`` like the other loops: the ``runs`` axis (seeds × swept values) is vmapped
over ``init`` / ``run_chunk``, and the full ``OfflineState`` (agent, optimizers, RNG key, counter) is what the
driver checkpoints, so a resumed run equals an uninterrupted one bit for bit (tested in ``tests/test_bc.py``).

Deliberately not here: collecting or loading data (``rlkit.buffers``), checking data against the env spec
(``rlkit.buffers.datasets``), mixing offline data with online experience (an off-policy learner passing
``rlkit.buffers.mix`` as its sampler), epochs (batches are drawn with replacement, independently per step), and
online fine-tuning after offline training (a separate trainer started from the exported parameters).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from envs.core import Environment, EnvSpec
from rlkit.agent import Agent
from rlkit.configs import ConfigError
from rlkit.evaluation import evaluate_policy
from rlkit.training import Trainer

#: ``sample(cfg, key, batch_size) -> batch``: a pytree with leaves ``[batch_size, ...]``
Sampler = Callable[[Any, jax.Array, int], Any]


def fit(
    agent: Agent,
    agent_state: Any,
    sample: Callable[[jax.Array, int], Any],
    key: jax.Array,
    *,
    steps: int,
    batch_size: int,
) -> tuple[Any, dict[str, jax.Array]]:
    """``steps`` (static) gradient steps of ``agent.update``, each on ``sample(key, batch_size)``, as one
    ``lax.scan``: the updated state and each step's metrics (leading axis ``steps``). The chunk of every offline
    learner, and a prior fitted inside another agent's ``init`` (``agents.imitation.demo_reg``)."""

    def one_update(state, k):
        sample_key, learn_key = jax.random.split(k)
        return agent.update(state, sample(sample_key, batch_size), learn_key)

    return jax.lax.scan(one_update, agent_state, jax.random.split(key, steps))


@struct.dataclass
class OfflineState:
    key: jax.Array
    agent_state: Any
    updates: jax.Array  # int32[]: gradient steps so far


def make_offline_trainer(
    name: str,
    env: Environment | EnvSpec,
    make_agent: Callable[[Any, EnvSpec], Agent],
    config: Any,
    sample: Sampler,
    *,
    params=None,
    num_eval_episodes: int = 10,
) -> Trainer:
    """A ``Trainer`` of ``config.chunk_updates`` gradient steps per chunk on batches of ``config.batch_size``
    (both static fields of ``config``), evaluated in ``env`` (a JAX-native, time-limited env; ``params``:
    its params, default ``env.default_params``). ``make_agent(cfg, spec)`` is called inside the traced
    functions so sweepable fields of ``cfg`` may be traced (one program for a whole sweep).

    ``env`` may instead be an ``EnvSpec`` — a Gymnasium env's (``envs.make("gymnasium:Hopper-v5").spec``), which
    cannot be stepped inside a compiled program: the trainer then has no ``evaluate`` (``train`` refuses
    ``eval_every > 0``) and the trained agent is evaluated on the host (``rlkit.host_loop.evaluate_host``)."""
    if isinstance(env, EnvSpec):
        spec = env
    elif not isinstance(env, Environment):
        raise ConfigError(
            f"{name}: offline training evaluates in a JAX-native env (envs.make('pendulum'), ...); got "
            f"{type(env).__name__}, which steps on the host"
        )
    elif not env.spec.max_episode_steps:
        raise ConfigError(
            f"{name}: evaluation needs a time-limited env; {env.spec.id} has no max_episode_steps "
            "(envs.make wraps JAX-native envs in TimeLimit)"
        )
    else:
        spec = env.spec
    chunk_updates, batch_size = int(config.chunk_updates), int(config.batch_size)
    if not isinstance(env, EnvSpec):
        params = env.default_params if params is None else params

    def init(cfg, key) -> OfflineState:
        key, agent_key = jax.random.split(key)
        return OfflineState(key, make_agent(cfg, spec).init(agent_key), jnp.zeros((), jnp.int32))

    def run_chunk(cfg, state: OfflineState) -> tuple[OfflineState, dict[str, jax.Array]]:
        key, chunk_key = jax.random.split(state.key)
        agent_state, updates = fit(
            make_agent(cfg, spec),
            state.agent_state,
            lambda k, b: sample(cfg, k, b),
            chunk_key,
            steps=chunk_updates,
            batch_size=batch_size,
        )
        # a non-finite loss is counted, not only averaged (a mean would also be NaN, but the count says how many)
        metrics = {k: jnp.mean(v, axis=0) for k, v in updates.items()}
        metrics["nonfinite_loss"] = sum(
            (jnp.sum(~jnp.isfinite(v)) for k, v in updates.items() if k.startswith("loss")),
            jnp.zeros((), jnp.int32),
        )
        metrics["learning_steps"] = jnp.asarray(chunk_updates, jnp.int32)
        new = OfflineState(key, agent_state, state.updates + chunk_updates)
        metrics["updates"] = new.updates
        return new, metrics

    def evaluate(cfg, state: OfflineState, key) -> dict[str, jax.Array]:
        agent = make_agent(cfg, spec)
        return evaluate_policy(
            env, agent, state.agent_state, key, params=params, num_episodes=num_eval_episodes
        )

    if isinstance(env, EnvSpec):
        return Trainer(name, init, run_chunk, chunk_updates, None, headline="updates", spec=spec)
    return Trainer(name, init, run_chunk, chunk_updates, evaluate, headline="eval_return")
