"""What every on-device loop does to its env and its episode statistics, in one place.

``wrap_for_rollout`` stacks ``FlagNonFinite → AutoReset → EpisodeStatistics`` on a (time-limited) env, and
``episode_metrics`` / ``finish_episode_metrics`` reduce a chunk's finished episodes *inside* the compiled chunk
(sums per step, means per chunk; NaN when no episode ended), so the host sees a handful of scalars per chunk
and never syncs inside it. ``rollout_extras`` finds the shapes of the ``info`` entries a composition piece asks
to store with each transition (the transition extras). Used by ``rlkit.off_policy`` and ``rlkit.on_policy``.

Deliberately not here: acting, learning, logging.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from envs.core import Environment
from envs.wrappers import AutoReset, EpisodeStatistics, FlagNonFinite
from rlkit.configs import ConfigError


def wrap_for_rollout(env: Environment) -> Environment:
    return EpisodeStatistics(AutoReset(FlagNonFinite(env)))


def evaluation_env(env: Environment) -> Environment:
    """The env evaluation plays: ``env`` without a training-only start distribution — a wrapper that offers
    ``evaluation_env()`` (``rlkit.resets.ExpertResets``: expert-state resets must never reach evaluation), which
    must then be the outermost wrapper (anywhere deeper it is refused: it cannot be removed from under another)."""
    if hasattr(env, "evaluation_env"):
        return env.evaluation_env()
    inner = getattr(env, "env", None)
    while inner is not None:
        if hasattr(inner, "evaluation_env"):
            what = (
                "conditions on goals whose evaluation goal replaces the training goals"
                if hasattr(inner, "eval_prior")  # GoalConditioned
                else "changes how training episodes start"
            )
            raise ConfigError(
                f"{type(inner).__name__} {what} and must be the outermost wrapper (evaluation replaces it with "
                f"its evaluation_env); it is inside {env!r}"
            )
        inner = getattr(inner, "env", None)
    return env


def rollout_env(
    env: Environment | Callable[[Any], Environment], *, evaluation: bool = False
) -> Callable[[Any], Environment]:
    """``cfg -> wrap_for_rollout(env)`` for an env, or for an env built from the (traced) config; with
    ``evaluation``, of its ``evaluation_env``."""
    strip = evaluation_env if evaluation else (lambda e: e)
    if isinstance(env, Environment):
        wrapped = wrap_for_rollout(strip(env))
        return lambda cfg: wrapped
    return lambda cfg: wrap_for_rollout(strip(env(cfg)))


def episode_metrics(done, info, reward_names) -> dict[str, jax.Array]:
    """Per-step sums that ``finish_episode_metrics`` turns into per-chunk means (shared by the on-device loops)."""
    d = done.astype(jnp.float32)
    out = {
        "episodes": jnp.sum(d),
        "return_sum": jnp.sum(d * info["episode_return"]),
        "length_sum": jnp.sum(d * info["episode_length"]),
        "nonfinite_obs": jnp.sum(info["nonfinite_obs"].astype(jnp.int32)),
    }
    if len(reward_names) > 1:
        out["return_terms_sum"] = jnp.sum(d[:, None] * info["episode_return_terms"], axis=0)
    return out


def finish_episode_metrics(sums: dict[str, jax.Array], reward_names) -> dict[str, jax.Array]:
    n = sums["episodes"]
    safe = jnp.maximum(n, 1.0)
    out = {
        "episodes": n,
        "episode_return": jnp.where(n > 0, sums["return_sum"] / safe, jnp.nan),
        "episode_length": jnp.where(n > 0, sums["length_sum"] / safe, jnp.nan),
        "nonfinite_obs": sums["nonfinite_obs"],
    }
    if "return_terms_sum" in sums:
        for i, name in enumerate(reward_names):
            out[f"episode_return/{name}"] = jnp.where(n > 0, sums["return_terms_sum"][i] / safe, jnp.nan)
    return out


def info_extras(names: Sequence[str], info_shapes: dict[str, Any], env_id: str) -> dict[str, Any]:
    """``{name: ShapeDtypeStruct}`` of the ``info`` entries stored as transition extras (one env's shapes), or one
    line naming the missing entry and the ones the env has."""
    missing = [n for n in names if n not in info_shapes]
    if missing:
        raise ConfigError(
            f"transition extras {missing} are not in the info of {env_id}; it has {sorted(info_shapes)}"
        )
    return {n: jax.ShapeDtypeStruct(info_shapes[n].shape, info_shapes[n].dtype) for n in names}


def rollout_extras(env: Environment, params, names: Sequence[str]) -> dict[str, Any]:
    """``info_extras`` of ``env`` (wrapped for rollout) from the shapes of one abstract step (nothing runs)."""
    if not names:
        return {}
    key = jax.random.key(0)
    shapes = jax.eval_shape(
        lambda: env.step(key, env.reset(key, params)[1], env.spec.action_space.sample(key), params)
    )[-1]
    return info_extras(names, shapes, env.spec.id)
