"""Data sources for the off-policy loops: what a gradient step's batch is drawn from.

``rlkit.off_policy.make_off_policy_trainer`` and ``rlkit.host_loop.train_host`` take ``data(buffer) -> sample``
with ``sample(cfg, buffer_state, key, batch_size, env_steps) -> batch``. This module builds them:

- ``online()``: uniform rows of the online replay buffer (the default; SAC, TD3);
- ``nstep(n)``: uniform rows with n-step targets (``rlkit.buffers.nstep``): ``reward`` the discounted n-step
  return, ``next_obs`` the bootstrap observation and ``discount`` = γ^k (1 − terminated) — a learner that
  finds ``discount`` in its batch bootstraps with it instead of γ (1 − terminated) (DQN);
- ``demonstrations(store, spec)``: uniform transitions of a read-only ``DemoStore``, shaped like online rows;
- ``mixture(sources, fraction, reward_by_source=...)``: several sources in every batch at an exact share
  (``rlkit.buffers.mix``: ``round(f·B)`` rows of the first source in every (sub-)batch), the share fixed, read
  from a sweepable config field, or an optax schedule of env steps; optionally each source's rewards replaced by
  a constant (SQIL: 1 for demonstration rows, 0 for online rows).

A batch carries no marker of its rows' source unless asked: ``mixture(..., source_field="source")`` adds an
``int32[B]`` column (0 = the first source).

Deliberately not here: the buffers and samplers themselves (``rlkit.buffers``), and what a source's rows mean to a
learner beyond a reward override (that is the learner's: extra loss terms).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp

from envs.core import EnvSpec
from rlkit.buffers import DemoStore, demos, mix
from rlkit.configs import ConfigError

Sample = Callable[..., dict]  # (cfg, buffer_state, key, batch_size, env_steps) -> batch
Source = Callable[..., Sample]  # buffer -> sample


def online() -> Source:
    """Uniform rows of the online replay buffer."""

    def build(buffer) -> Sample:
        def sample(cfg, buffer_state, key, batch_size, env_steps):
            return buffer.sample(buffer_state, key, batch_size)

        return sample

    return build


def nstep(n: int, gamma_field: str = "gamma") -> Source:
    """Uniform rows with ``n``-step targets, γ read from the (sweepable) config field ``gamma_field``; ``n = 1``
    gives the one-step target with ``discount`` = γ (1 − terminated)."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ConfigError(f"n_step must be an integer >= 1, got {n!r}")

    def build(buffer) -> Sample:
        def sample(cfg, buffer_state, key, batch_size, env_steps):
            s = buffer.sample_nstep(buffer_state, key, batch_size, n, getattr(cfg, gamma_field))
            return dict(s.transition, reward=s.returns, next_obs=s.bootstrap_obs, discount=s.discount)

        return sample

    return build


def demonstrations(store: DemoStore, spec: EnvSpec) -> Source:
    """Uniform demonstration transitions with the online rows' fields: ``obs``, ``action``, ``reward`` (the stored
    rewards, or zeros when the store has none — override them by source), ``next_obs``, ``terminated``,
    ``truncated``. Needs actions."""
    if not store.has_actions:
        raise ConfigError(
            "demonstrations without actions cannot fill a transition batch (they have no 'action')"
        )
    shape = spec.reward_shape

    def build(buffer) -> Sample:
        def sample(cfg, buffer_state, key, batch_size, env_steps):
            t = demos.sample_transitions(store, key, batch_size)
            reward = t.get("reward")
            if reward is None or reward.shape[1:] != shape:
                reward = jnp.zeros((batch_size, *shape), jnp.float32)
            return {
                "obs": t["obs"],
                "action": t["action"],
                "reward": reward.astype(jnp.float32),
                "next_obs": t["next_obs"],
                "terminated": t["terminated"],
                "truncated": t["truncated"],
            }

        return sample

    return build


def mixture(
    sources: Sequence[Source],
    fraction: float | str | Callable,
    *,
    reward_by_source: Sequence[float] | None = None,
    num_splits: int = 1,
    source_field: str | None = None,
) -> Source:
    """Two sources in every batch: ``fraction`` of the rows from ``sources[0]``, the rest from ``sources[1]``.

    ``fraction``: a number; the name of a (sweepable) config field holding it; or a schedule
    ``env_steps -> fraction`` (any optax schedule). ``reward_by_source``: a constant reward per source replacing
    the rows' rewards (every reward term gets it). ``num_splits``: the share holds in each of that many equal
    sub-batches too (RLPD at a high update-to-data ratio)."""
    if len(sources) != 2:
        raise ConfigError(f"mixture takes two sources (got {len(sources)}); nest mixtures for more")
    if reward_by_source is not None and len(reward_by_source) != len(sources):
        raise ConfigError(f"reward_by_source has {len(reward_by_source)} entries for {len(sources)} sources")

    def build(buffer) -> Sample:
        samplers = [s(buffer) for s in sources]

        def sample(cfg, buffer_state, key, batch_size, env_steps):
            if isinstance(fraction, str):
                f = getattr(cfg, fraction)
            elif callable(fraction):
                f = fraction(env_steps)
            else:
                f = fraction
            f = jnp.asarray(f, jnp.float32)
            keys = jax.random.split(key, len(samplers))
            batches = [s(cfg, buffer_state, k, batch_size, env_steps) for s, k in zip(samplers, keys)]
            batch, source = mix(batches, jnp.stack([f, 1.0 - f]), env_steps, num_splits)
            if reward_by_source is not None:
                values = jnp.asarray(reward_by_source, jnp.float32)[source]
                batch["reward"] = jnp.broadcast_to(
                    jnp.reshape(values, (-1,) + (1,) * (batch["reward"].ndim - 1)), batch["reward"].shape
                )
            if source_field is not None:
                batch[source_field] = source
            return batch

        return sample

    return build
