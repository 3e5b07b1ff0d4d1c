"""Data sources for the off-policy loops: what a gradient step's batch is drawn from.

``rlkit.off_policy.make_off_policy_trainer`` and ``rlkit.host_loop.train_host`` take ``data(buffer) -> sample``
with ``sample(cfg, buffer_state, key, batch_size, env_steps) -> (buffer_state, batch)`` (the buffer state comes
back because some sampling schemes keep state in it). This module builds them:

- ``online()``: rows of the online replay buffer (the default; SAC, TD3, DQN), drawn by the buffer's ``sampling``
  scheme (``rlkit.buffers.sampling``: uniform, RR-C, PER, RR-M; the config's ``sampling``, ``priority_alpha``,
  ``priority_beta`` and ``priority_beta_steps``). Prioritised draws carry ``slot`` and ``weight`` (importance
  weights) columns, and ``feedback`` hands the learner's per-row ``priority`` (its |TD errors|) back;
- ``nstep(n)``: uniform rows with n-step targets (``rlkit.buffers.nstep``): ``reward`` the discounted n-step
  return, ``next_obs`` the bootstrap observation and ``discount`` = γ^k (1 − terminated) — a learner that
  finds ``discount`` in its batch bootstraps with it instead of γ (1 − terminated) (DQN);
- ``recent(window)``: uniform rows among the newest ``window`` online transitions (a recent-policy window);
- ``with_side_batches(main, name=(source, size))``: the main source's batch plus, under each ``name``, a batch of
  another source (a learned reward term's own data: an adversarial discriminator's recent generator rows are
  ``batch["policy"]`` while the learner trains on all of replay);
- ``demonstrations(store, spec)``: uniform transitions of a read-only ``DemoStore``, shaped like online rows;
- ``hindsight_goals(goal_size, goal_dims, ...)``: rows of a goal-conditioned replay (observations ``concat(s, g)``,
  ``rlkit.conditioning.GoalConditioned``) whose goal is replaced, with probability ``relabel``, by a state of the
  same episode's future (``rlkit.buffers.relabel``: geometric weights γ^(Δ−1) for contrastive RL, uniform for
  HER), mapped to the goal space; ``obs`` and ``next_obs`` carry the new goal, ``goal_offset`` the Δ (0 where the
  stored goal was kept), and ``reward(achieved_next, goal)`` recomputes the reward for the new goal (HER);
- ``mixture(sources, fraction, reward_by_source=...)``: several sources in every batch at an exact share
  (``rlkit.buffers.mix``: ``round(f·B)`` rows of the first source in every (sub-)batch), the share fixed, read
  from a sweepable config field, or an optax schedule of env steps; optionally each source's rewards replaced by
  a constant (SQIL: 1 for demonstration rows, 0 for online rows).

A batch carries no marker of its rows' source unless asked: ``mixture(..., source_field="source")`` adds an
``int32[B]`` column (0 = the first source).

Deliberately not here: the buffers and samplers themselves (``rlkit.buffers``), what a source's rows mean to a
learner beyond a reward override (that is the learner's: extra loss terms), and non-uniform sampling inside a
mixture (refused).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp

from envs.core import EnvSpec
from rlkit.buffers import DemoStore, GoalMixture, demos, mix
from rlkit.configs import ConfigError

Sample = Callable[..., tuple]  # (cfg, buffer_state, key, batch_size, env_steps) -> (buffer_state, batch)
Source = Callable[..., Sample]  # buffer -> sample
PRIORITY = "priority"  # the metrics entry an update reports per-row |TD errors| under (float32[B])


def _beta(cfg, env_steps):
    """PER's importance-sampling exponent, annealed linearly from ``priority_beta`` to 1 over
    ``priority_beta_steps`` env steps (0: constant)."""
    steps = cfg.priority_beta_steps
    frac = jnp.clip(env_steps / jnp.maximum(steps, 1), 0.0, 1.0) * (jnp.asarray(steps) > 0)
    return cfg.priority_beta + (1.0 - cfg.priority_beta) * frac


def _draw(buffer, cfg, buffer_state, key, batch_size, env_steps, n=None):
    """``(buffer_state, batch)`` of one non-uniform draw (with ``n``: n-step targets)."""
    kw = dict(alpha=cfg.priority_alpha, beta=_beta(cfg, env_steps))
    if n is None:
        buffer_state, batch, slots, weights = buffer.draw(buffer_state, key, batch_size, **kw)
    else:
        buffer_state, s, slots, weights = buffer.draw_nstep(buffer_state, key, batch_size, n, cfg.gamma, **kw)
        batch = dict(s.transition, reward=s.returns, next_obs=s.bootstrap_obs, discount=s.discount)
    if buffer.prioritized:
        batch = dict(batch, slot=slots, weight=weights)
    return buffer_state, batch


def online() -> Source:
    """Rows of the online replay buffer, by its sampling scheme (uniform with replacement by default)."""

    def build(buffer) -> Sample:
        def sample(cfg, buffer_state, key, batch_size, env_steps):
            if buffer.sampling == "uniform":
                return buffer_state, buffer.sample(buffer_state, key, batch_size)
            return _draw(buffer, cfg, buffer_state, key, batch_size, env_steps)

        return sample

    return build


def recent(window: int | str) -> Source:
    """Uniform rows among the newest ``window`` transitions of the online replay (fewer while it holds less);
    ``window`` a number or the name of a (sweepable) config field."""

    def build(buffer) -> Sample:
        def sample(cfg, buffer_state, key, batch_size, env_steps):
            w = getattr(cfg, window) if isinstance(window, str) else window
            return buffer_state, buffer.sample_recent(buffer_state, key, batch_size, w)

        return sample

    return build


def with_side_batches(main: Source, **sides: tuple[Source, int | str]) -> Source:
    """``main``'s batch plus ``batch[name]``: a batch of ``size`` rows (a number or a static config field) drawn
    from each side source, for what reads its own data (a reward term's update); the learner sees the main rows.
    Side sources must not change the buffer state (no prioritised or reshuffled draws)."""
    for name in sides:
        if name in ("obs", "action", "reward", "next_obs", "terminated", "truncated", "slot", "weight"):
            raise ConfigError(f"side batch name {name!r} would replace the batch's own field {name!r}")

    def build(buffer) -> Sample:
        first = main(buffer)
        others = {name: (src(buffer), size) for name, (src, size) in sides.items()}

        def sample(cfg, buffer_state, key, batch_size, env_steps):
            keys = jax.random.split(key, len(others) + 1)
            buffer_state, batch = first(cfg, buffer_state, keys[0], batch_size, env_steps)
            batch = dict(batch)
            for k, (name, (side, size)) in zip(keys[1:], others.items()):
                n = getattr(cfg, size) if isinstance(size, str) else size
                batch[name] = side(cfg, buffer_state, k, n, env_steps)[1]
            return buffer_state, batch

        return sample

    return build


def feedback(cfg, buffer, buffer_state, batch: dict, metrics: dict, learner: str = "the learner"):
    """``(buffer_state, metrics)`` after an update: the per-row ``priority`` the update reported (removed from the
    metrics, which are scalars) becomes the drawn slots' priorities under prioritised sampling; a learner that
    reports none cannot use it (one line, at trace time)."""
    metrics = dict(metrics)
    priority = metrics.pop(PRIORITY, None)
    if not buffer.prioritized:
        return buffer_state, metrics
    if priority is None:
        raise ConfigError(
            f"sampling={buffer.sampling!r} needs per-row TD errors from the learner and {learner} reports none "
            "(DQN does); use sampling='uniform' or 'rr'"
        )
    return buffer.update_priorities(buffer_state, batch["slot"], priority, alpha=cfg.priority_alpha), metrics


def nstep(n: int, gamma_field: str = "gamma") -> Source:
    """Uniform rows with ``n``-step targets, γ read from the (sweepable) config field ``gamma_field``; ``n = 1``
    gives the one-step target with ``discount`` = γ (1 − terminated)."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ConfigError(f"n_step must be an integer >= 1, got {n!r}")

    def build(buffer) -> Sample:
        def sample(cfg, buffer_state, key, batch_size, env_steps):
            if buffer.sampling != "uniform":
                return _draw(buffer, cfg, buffer_state, key, batch_size, env_steps, n=n)
            s = buffer.sample_nstep(buffer_state, key, batch_size, n, getattr(cfg, gamma_field))
            return buffer_state, dict(
                s.transition, reward=s.returns, next_obs=s.bootstrap_obs, discount=s.discount
            )

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
            return buffer_state, {
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
        if buffer.sampling != "uniform":
            raise ConfigError(
                f"sampling={buffer.sampling!r} inside a mixture of sources is not supported (a mixture draws "
                "uniformly from each source); use sampling='uniform'"
            )
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
            batches = [s(cfg, buffer_state, k, batch_size, env_steps)[1] for s, k in zip(samplers, keys)]
            batch, source = mix(batches, jnp.stack([f, 1.0 - f]), env_steps, num_splits)
            if reward_by_source is not None:
                values = jnp.asarray(reward_by_source, jnp.float32)[source]
                batch["reward"] = jnp.broadcast_to(
                    jnp.reshape(values, (-1,) + (1,) * (batch["reward"].ndim - 1)), batch["reward"].shape
                )
            if source_field is not None:
                batch[source_field] = source
            return buffer_state, batch

        return sample

    return build


def hindsight_goals(
    goal_size: int,
    goal_dims: Sequence[int],
    *,
    relabel: float | str = 1.0,
    future: str = "geometric",
    gamma: float | str = "gamma",
    reward: Callable | None = None,
) -> Source:
    """Goal-relabelled rows of a replay of goal-conditioned observations ``concat(s, g)`` (``g`` the last
    ``goal_size`` entries). Each row's goal becomes, with probability ``relabel`` (a number or a config field),
    the achieved goal ``s_{t+Δ}[goal_dims]`` of a future state of its own episode, ``Δ ≥ 1`` drawn by
    ``future`` (``rlkit.buffers.GoalMixture``: "geometric" ∝ γ^(Δ−1), γ a number or a config field; "uniform"
    over the rest of the episode), else stays the stored one. ``reward(achieved_next float32[B, G], goal
    float32[B, G]) -> float32[B]``, if given, replaces the rows' rewards (the goal-reaching reward of the goal
    the row now carries). The batch gains ``goal_offset`` (``int32[B]``: Δ, 0 where the goal was kept)."""
    dims = jnp.asarray(tuple(goal_dims), jnp.int32)

    def build(buffer) -> Sample:
        if buffer.sampling != "uniform":
            raise ConfigError(
                f"sampling={buffer.sampling!r} with hindsight goals is not supported (goals are relabelled on "
                "uniform draws); use sampling='uniform'"
            )

        def sample(cfg, buffer_state, key, batch_size, env_steps):
            g = getattr(cfg, gamma) if isinstance(gamma, str) else gamma
            p = getattr(cfg, relabel) if isinstance(relabel, str) else relabel
            k_goal, k_keep = jax.random.split(key)
            drawn = buffer.sample_goals(
                buffer_state, k_goal, batch_size, GoalMixture(0.0, 1.0, 0.0, g, future)
            )
            t = dict(drawn.transition)
            state, stored = t["obs"][..., :-goal_size], t["obs"][..., -goal_size:]
            next_state = t["next_obs"][..., :-goal_size]
            new = jax.random.uniform(k_keep, (batch_size,)) < p
            goal = jnp.where(new[:, None], drawn.goal[..., :-goal_size][..., dims], stored)
            t["obs"] = jnp.concatenate([state, goal], axis=-1)
            t["next_obs"] = jnp.concatenate([next_state, goal], axis=-1)
            t["goal_offset"] = jnp.where(new, drawn.goal_offset, 0).astype(jnp.int32)
            if reward is not None:
                t["reward"] = jnp.asarray(reward(next_state[..., dims], goal), jnp.float32)
            return buffer_state, t

        return sample

    return build
