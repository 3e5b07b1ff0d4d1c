"""DAgger (Ross, Gordon & Bagnell 2011): roll out a β-mixture of expert and learner, label every visited state with
the expert's action, fit the learner by BC on all labels gathered so far, repeat with a smaller β.

Composition, nothing else: ``BC × expert labels × the off-policy replay loop`` (``rlkit.off_policy``). A round is
one update period of the loop: ``train_frequency`` env steps per env (its rollout), then ``updates_per_step`` BC
steps (its training) on batches drawn uniformly, with replacement, from the replay buffer — the aggregated dataset.
In round i each env step executes, with probability β_i, the expert's deterministic action, else the learner's
sampled one, drawn per env and step (imitation's ``InteractiveTrajectoryCollector``). "linear" β_i = clip((R − i) /
R, 0, 1), R = ``rampdown_rounds`` (imitation's ``LinearBetaSchedule``); "exponential" β_i = p^i (the paper's
p^(i−1) from round 1). ``"deterministic"`` acts (evaluation) are the learner's alone. γ and reward weights are unused.

Labels are computed when a batch is sampled, not when its state was visited: the expert is frozen and deterministic,
so both give the same label (the buffer's ``action`` column keeps the executed action, unused). The expert is any
rlkit agent, ``(agent, state)`` from ``rlkit.export.load_agent``, its state a constant of the compiled program (as
a ``DemoStore`` in ``rlkit.data_sources.demonstrations``).

Never overwritten: ``buffer_size`` must hold the run's env steps (all envs): ``rlkit.training.train`` refuses a
longer run before compiling (``Trainer.max_steps``). Through the Gymnasium host loop, whose runs are not checked
that way, every update on an overwritten buffer is a no-op reporting ``nonfinite_dataset_overwritten`` = 1, which
stops the run at the end of that chunk, before it is logged or checkpointed. Warm-up steps (``learning_starts`` > 0) act uniformly at random (their states labelled
like any other); an update phase ending before ``learning_starts`` env steps is discarded and not counted as a round.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from agents.imitation import bc
from envs.core import Environment, EnvSpec
from envs.spaces import Discrete
from rlkit.agent import Agent
from rlkit.configs import ConfigError, param
from rlkit.off_policy import ReplayLoopConfig, make_off_policy_trainer
from rlkit.training import Trainer


@struct.dataclass
class DAggerConfig(bc.BCConfig, ReplayLoopConfig):
    chunk_updates: int = param(1000, static=True, low=1)
    """offline BC only; unused by DAgger (a chunk is chunk_steps env steps): leave it at its default"""
    train_frequency: int = param(1000, static=True, low=1)
    """round steps: env steps per env in one DAgger round, after which the round's BC updates run"""
    updates_per_step: int = param(500, static=True, low=1)
    """BC gradient steps at the end of every round (on all states gathered so far)"""
    learning_starts: int = param(0, static=True, low=0)
    """env steps of uniformly random actions (and no rounds counted) before round 0; DAgger: 0"""
    beta_schedule: str = param("linear", static=True, choices=("linear", "exponential"))
    """β_i, the probability of executing the expert's action in round i: linear (imitation) or p^i"""
    rampdown_rounds: int = param(15, low=1)
    """linear: β falls from 1 in round 0 to 0 at this round (imitation's default: 15)"""
    beta_decay: float = param(0.5, low=0.0, high=1.0)
    """exponential: p in β_i = p^i"""


@struct.dataclass
class DAggerState:
    bc: bc.BCState
    updates: jax.Array  # int32[]: BC gradient steps kept; rounds completed = updates // updates_per_step


def rounds(config: DAggerConfig, state: DAggerState) -> jax.Array:
    """Rounds completed: the loop runs whole update phases and discards warm-up ones, so this is exact."""
    return state.updates // config.updates_per_step


def beta(config: DAggerConfig, round_num) -> jax.Array:
    """β of round ``round_num`` (0-based), in [0, 1]."""
    i = jnp.asarray(round_num, jnp.float32)
    if config.beta_schedule == "exponential":
        return jnp.asarray(config.beta_decay, jnp.float32) ** i
    return jnp.clip((config.rampdown_rounds - i) / config.rampdown_rounds, 0.0, 1.0)


def check_expert(expert, spec: EnvSpec) -> None:
    """Refuse, in one line, an expert that cannot act on the env's observations or acts in another action space."""
    agent, state = expert
    obs, space = spec.observation_space, spec.action_space
    try:
        out = jax.eval_shape(
            lambda s, o: agent.act(s, o, jax.random.key(0), "deterministic"),
            state,
            jax.ShapeDtypeStruct(obs.shape, obs.dtype),
        )
    except Exception as err:  # shape errors from inside the expert's networks: name the expert, not the layer
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
        msg = f"expert ({agent.name!r} agent) cannot act on {spec.id}'s observations {obs.shape}: {reason}"
        raise ConfigError(msg) from None
    discrete = isinstance(space, Discrete)
    integer = jnp.issubdtype(out.dtype, jnp.integer)
    if integer != discrete or int(np.prod(out.shape)) != int(np.prod(space.shape)):
        kind = "discrete" if integer else "continuous"
        raise ConfigError(
            f"expert ({agent.name!r} agent) gives {kind} actions {out.dtype}{list(out.shape)}, but {spec.id} has "
            f"action space {space}: use an expert trained on this env's action space"
        )


def validate(config: DAggerConfig, spec: EnvSpec, expert=None) -> None:
    bc.validate(config, spec)
    name = type(config).__name__
    if config.sampling != "uniform":
        raise ConfigError(
            f"{name}.sampling = {config.sampling!r}: DAgger trains on every visited state alike; use 'uniform'"
        )
    if config.chunk_updates != bc.BCConfig.chunk_updates:
        raise ConfigError(
            f"{name}.chunk_updates = {config.chunk_updates} is offline BC's; DAgger's chunks are chunk_steps env "
            "steps and its updates per round updates_per_step: leave chunk_updates unset"
        )
    chunk = config.num_envs * config.chunk_steps
    if config.buffer_size % config.num_envs or config.buffer_size < chunk:
        raise ConfigError(
            f"{name}.buffer_size = {config.buffer_size}: the aggregated dataset is never overwritten, so the "
            f"buffer must hold the whole run — a multiple of num_envs = {config.num_envs} and at least one chunk "
            f"(num_envs × chunk_steps = {chunk}); give at least the run's total env steps"
        )
    if expert is not None:
        check_expert(expert, spec)


def make_dagger(config: DAggerConfig, spec: EnvSpec, expert=None) -> Agent:
    """Without ``expert`` (an exported DAgger agent, loaded): the learner alone, no updates."""
    learner, space = bc.make_bc(config, spec), spec.action_space

    def expert_act(obs, key):
        action = expert[0].act(expert[1], obs, key, "deterministic")
        return jnp.reshape(action, space.shape).astype(space.dtype)

    def init(key, spec_=None) -> DAggerState:
        return DAggerState(learner.init(key), jnp.zeros((), jnp.int32))

    def act(state: DAggerState, obs, key, mode="explore"):
        if mode == "deterministic" or expert is None:  # the learner alone (evaluation, a loaded file)
            return learner.act(state.bc, obs, key, mode)
        coin_key, learner_key = jax.random.split(key)
        action = learner.act(state.bc, obs, learner_key, mode)
        use_expert = jax.random.uniform(coin_key) < beta(config, rounds(config, state))
        return jnp.where(use_expert, expert_act(obs, coin_key), action)

    def update(state: DAggerState, batch, key):
        """One BC step on ``(batch["obs"], expert's action there)``; the stored actions are ignored."""
        if expert is None:
            raise ConfigError("a DAgger agent loaded without its expert can act but not learn")
        label_key, bc_key = jax.random.split(key)
        obs = batch["obs"]
        labels = jax.vmap(expert_act)(obs, jax.random.split(label_key, obs.shape[0]))
        new, metrics = learner.update(state.bc, {"obs": obs, "action": labels}, bc_key)
        overwritten = jnp.asarray(batch.get("dataset_overwritten", False))
        new = jax.tree.map(lambda n, o: jnp.where(overwritten, o, n), new, state.bc)
        metrics |= {
            "beta": beta(config, rounds(config, state)),
            "rounds": rounds(config, state).astype(jnp.float32),
            "nonfinite_dataset_overwritten": overwritten.astype(jnp.float32),
        }
        return DAggerState(new, state.updates + 1), metrics

    return Agent("dagger", config, init, act, update)


def dataset():
    """Uniform rows of the whole buffer, flagged once the buffer has begun to overwrite (env steps > capacity)."""

    def build(buffer):
        def sample(cfg, buffer_state, key, batch_size, env_steps):
            batch = buffer.sample(buffer_state, key, batch_size)
            return buffer_state, dict(batch, dataset_overwritten=env_steps > cfg.buffer_size)

        return sample

    return build


def host_pieces(config: DAggerConfig, spec: EnvSpec, *, expert: Any) -> dict:
    validate(config, spec, expert)
    return {"make_agent": functools.partial(make_dagger, expert=expert), "data": dataset()}


def make_trainer(config: DAggerConfig, env: Environment, params=None, *, expert: Any) -> Trainer:
    """DAgger with ``expert`` = ``(agent, state)`` (``rlkit.export.load_agent(path, env.spec)``)."""
    validate(config, env.spec, expert)
    make_agent = functools.partial(make_dagger, expert=expert)
    trainer = make_off_policy_trainer("dagger", env, make_agent, config, params=params, data=dataset())
    return dataclasses.replace(
        trainer, max_steps=config.buffer_size
    )  # refused before compiling: never overwrite
