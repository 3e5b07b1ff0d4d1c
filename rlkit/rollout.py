"""What every on-device loop does to its env and its episode statistics, in one place.

``wrap_for_rollout`` stacks ``FlagNonFinite → AutoReset → EpisodeStatistics`` on a (time-limited) env, and
``episode_metrics`` / ``finish_episode_metrics`` reduce a chunk's finished episodes *inside* the compiled chunk
(sums per step, means per chunk; NaN when no episode ended), so the host sees a handful of scalars per chunk
and never syncs inside it. Used by ``rlkit.off_policy`` and ``rlkit.on_policy``.

Deliberately not here: acting, learning, logging.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from envs.core import Environment
from envs.wrappers import AutoReset, EpisodeStatistics, FlagNonFinite


def wrap_for_rollout(env: Environment) -> Environment:
    return EpisodeStatistics(AutoReset(FlagNonFinite(env)))


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
