"""Wrappers of the env protocol: time limit, auto-reset, episode statistics, observation normalization,
action rescaling / clipping, reward summation, and a non-finite observation guard.

Each wrapper is itself an ``Environment``: pure ``reset`` / ``step``, its own state a ``flax.struct`` dataclass
holding the inner state in ``env_state``. The usual stack, innermost first, is

    raw env → TimeLimit → [NormalizeObservation] → [RescaleAction | ClipAction] → AutoReset → EpisodeStatistics

``envs.make`` applies ``TimeLimit``; the training loops add ``AutoReset`` and ``EpisodeStatistics``.

Semantics kept from Gymnasium, because users compare against it: ``TimeLimit`` truncates when the elapsed step
count reaches ``params.max_episode_steps`` (``terminated`` and ``truncated`` may both be true on the same step);
``AutoReset`` resets on the same step (Gymnasium's ``AutoresetMode.SAME_STEP``) and returns the pre-reset
observation in ``info["final_obs"]``, so a learner bootstraps a truncated step from the true next state.

Deliberately not here: frame stacking and pixel pipelines (no pixel env yet), reward normalization (it belongs
to the learner, which knows γ; see ``rlkit.running_stats``).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from envs.core import Environment, EnvSpec, StepResult
from envs.spaces import Box
from rlkit import running_stats


class Wrapper(Environment):
    """Delegates everything to ``env``; subclasses override what they change.

    A wrapper that keeps state of its own sets ``has_own_state = True`` and keeps the inner state in
    ``state.env_state``; one that does not passes the inner state through untouched.
    """

    has_own_state = False

    def __init__(self, env: Environment):
        if not isinstance(env, Environment):
            raise TypeError(f"{type(self).__name__} wraps an envs.Environment, got {type(env).__name__}")
        self.env = env

    @property
    def spec(self) -> EnvSpec:
        return self.env.spec

    @property
    def default_params(self):
        return self.env.default_params

    @property
    def unwrapped(self) -> Environment:
        return self.env.unwrapped

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.env!r})"

    def _reset(self, key, params):
        return self.env.reset(key, params)

    def _step(self, key, state, action, params) -> StepResult:
        return self.env.step(key, state, action, params)

    def render(self, state, params=None):
        return self.env.render(state.env_state if self.has_own_state else state, params)


# ---------------------------------------------------------------------------------------------- time limit
@struct.dataclass
class TimeLimitState:
    env_state: Any
    elapsed: jax.Array  # int32[]: steps taken in this episode


class TimeLimit(Wrapper):
    """Sets ``truncated`` once ``params.max_episode_steps`` steps have been taken (never touches ``terminated``)."""

    @property
    def spec(self) -> EnvSpec:
        return self.env.spec.replace(max_episode_steps=int(self.default_params.max_episode_steps))

    has_own_state = True

    def _reset(self, key, params):
        obs, state = self.env.reset(key, params)
        return obs, TimeLimitState(state, jnp.zeros((), jnp.int32))

    def _step(self, key, state, action, params):
        obs, env_state, reward, terminated, truncated, info = self.env.step(
            key, state.env_state, action, params
        )
        elapsed = state.elapsed + 1
        truncated = jnp.logical_or(truncated, elapsed >= params.max_episode_steps)
        return obs, TimeLimitState(env_state, elapsed), reward, terminated, truncated, info


# ---------------------------------------------------------------------------------------------- auto-reset
class AutoReset(Wrapper):
    """Resets an episode on the step that ends it; the pre-reset observation is in ``info["final_obs"]``.

    The reset branch is always computed (``jnp.where`` selects), which keeps the step branch-free under ``vmap``.
    """

    def _step(self, key, state, action, params):
        step_key, reset_key = jax.random.split(key)
        obs, next_state, reward, terminated, truncated, info = self.env.step(step_key, state, action, params)
        reset_obs, reset_state = self.env.reset(reset_key, params)
        done = jnp.logical_or(terminated, truncated)
        next_state = jax.tree.map(lambda r, s: jnp.where(done, r, s), reset_state, next_state)
        info = dict(info, final_obs=obs)
        return jnp.where(done, reset_obs, obs), next_state, reward, terminated, truncated, info


# ---------------------------------------------------------------------------------------------- statistics
@struct.dataclass
class EpisodeStatisticsState:
    env_state: Any
    running_return: jax.Array  # float32[K] per reward term (K = 1 for a scalar reward)
    running_length: jax.Array  # int32[]
    episode_return: jax.Array  # float32[K]: the last finished episode's return per term
    episode_length: jax.Array  # int32[]
    episodes: jax.Array  # int32[]: episodes finished so far


class EpisodeStatistics(Wrapper):
    """Tracks per-term returns and lengths; ``info`` gets ``episode_return`` (summed over terms),
    ``episode_return_terms`` (``float32[K]``), ``episode_length`` and ``episode_done`` for the step that ended
    an episode (use them where ``episode_done`` is true). Place it outside ``AutoReset``."""

    has_own_state = True

    def _reset(self, key, params):
        obs, state = self.env.reset(key, params)
        k = self.spec.num_reward_terms
        zf, zi = jnp.zeros((k,), jnp.float32), jnp.zeros((), jnp.int32)
        return obs, EpisodeStatisticsState(state, zf, zi, zf, zi, zi)

    def _step(self, key, state, action, params):
        obs, env_state, reward, terminated, truncated, info = self.env.step(
            key, state.env_state, action, params
        )
        done = jnp.logical_or(terminated, truncated)
        ret = state.running_return + jnp.reshape(reward, (-1,))
        length = state.running_length + 1
        new = EpisodeStatisticsState(
            env_state=env_state,
            running_return=jnp.where(done, 0.0, ret),
            running_length=jnp.where(done, 0, length),
            episode_return=jnp.where(done, ret, state.episode_return),
            episode_length=jnp.where(done, length, state.episode_length),
            episodes=state.episodes + done.astype(jnp.int32),
        )
        info = dict(
            info,
            episode_done=done,
            episode_return=jnp.sum(ret),
            episode_return_terms=ret,
            episode_length=length,
        )
        return obs, new, reward, terminated, truncated, info


# ---------------------------------------------------------------------------------------------- normalization
@struct.dataclass
class NormalizeObservationState:
    env_state: Any
    stats: running_stats.RunningMeanStd


class NormalizeObservation(Wrapper):
    """Normalizes observations with running mean / std kept in the state; ``info["raw_obs"]`` keeps the original.

    Args:
        axis_name: when the env is vmapped with ``jax.vmap(..., axis_name=axis_name)``, the statistics are merged
            over that axis so all parallel envs share one estimate (as Gymnasium's vector wrapper does). ``None``
            keeps per-env statistics.
        update: set ``False`` to freeze the statistics (evaluation).
    """

    def __init__(
        self, env: Environment, *, axis_name: str | None = None, clip: float = 10.0, update: bool = True
    ):
        super().__init__(env)
        if not isinstance(env.spec.observation_space, Box):
            raise ValueError(
                f"NormalizeObservation needs a Box observation space, got {env.spec.observation_space}"
            )
        self.axis_name, self.clip, self.update = axis_name, clip, update

    has_own_state = True

    @property
    def spec(self) -> EnvSpec:
        shape = self.env.spec.observation_space.shape
        return self.env.spec.replace(observation_space=Box.uniform(-self.clip, self.clip, shape))

    def _observe(self, stats, obs):
        if self.update:
            stats = running_stats.update(stats, obs[None], axis_name=self.axis_name)
        return stats, running_stats.normalize(stats, obs, clip=self.clip)

    def _reset(self, key, params):
        obs, state = self.env.reset(key, params)
        stats, norm = self._observe(running_stats.RunningMeanStd.zeros(obs.shape), obs)
        return norm, NormalizeObservationState(state, stats)

    def _step(self, key, state, action, params):
        obs, env_state, reward, terminated, truncated, info = self.env.step(
            key, state.env_state, action, params
        )
        stats, norm = self._observe(state.stats, obs)
        info = dict(info, raw_obs=obs)
        if "final_obs" in info:  # an inner AutoReset: normalize the bootstrap observation the same way
            info["final_obs"] = running_stats.normalize(stats, info["final_obs"], clip=self.clip)
        return norm, NormalizeObservationState(env_state, stats), reward, terminated, truncated, info


# ---------------------------------------------------------------------------------------------- actions
def _box_action_space(env: Environment, wrapper: str) -> Box:
    space = env.spec.action_space
    if not isinstance(space, Box):
        raise ValueError(f"{wrapper} needs a Box action space; {env.spec.id} has {space}")
    if not space.bounded:
        raise ValueError(f"{wrapper} needs finite action bounds; {env.spec.id} has {space}")
    return space


class ClipAction(Wrapper):
    """Clips actions into the action box (so a Gaussian policy's samples are always legal)."""

    def __init__(self, env: Environment):
        super().__init__(env)
        self._space = _box_action_space(env, "ClipAction")

    @property
    def spec(self) -> EnvSpec:
        shape = self._space.shape
        return self.env.spec.replace(action_space=Box.uniform(-np.inf, np.inf, shape))

    def _step(self, key, state, action, params):
        action = jnp.clip(action, self._space.low, self._space.high)
        return self.env.step(key, state, action, params)


class RescaleAction(Wrapper):
    """Exposes the action box ``[low, high]`` (default ``[-1, 1]``) and maps it affinely onto the env's box."""

    def __init__(self, env: Environment, low: float = -1.0, high: float = 1.0):
        super().__init__(env)
        self._inner = _box_action_space(env, "RescaleAction")
        self._outer = Box.uniform(low, high, self._inner.shape)

    @property
    def spec(self) -> EnvSpec:
        return self.env.spec.replace(action_space=self._outer)

    def _step(self, key, state, action, params):
        lo, hi = self._outer.low, self._outer.high
        action = self._inner.low + (action - lo) * (self._inner.high - self._inner.low) / (hi - lo)
        return self.env.step(key, state, jnp.clip(action, self._inner.low, self._inner.high), params)


# ---------------------------------------------------------------------------------------------- rewards
class SumReward(Wrapper):
    """Turns a named vector reward into one scalar, ``Σ_k w_k r_k``; ``info["reward_terms"]`` keeps the vector.

    This is the "naive single critic" baseline of the multi-critic experiments.
    """

    def __init__(self, env: Environment, weights: dict[str, float] | None = None):
        super().__init__(env)
        names = env.spec.reward_names
        weights = dict(weights or {})
        unknown = sorted(set(weights) - set(names))
        if unknown:
            raise ValueError(
                f"SumReward: unknown reward terms {unknown} for {env.spec.id}; its terms are {list(names)}"
            )
        self._weights = np.asarray([weights.get(n, 1.0) for n in names], np.float32)

    @property
    def spec(self) -> EnvSpec:
        return self.env.spec.replace(reward_names=("reward",))

    def _step(self, key, state, action, params):
        obs, state, reward, terminated, truncated, info = self.env.step(key, state, action, params)
        terms = jnp.reshape(reward, (-1,))
        info = dict(info, reward_terms=terms)
        return obs, state, jnp.sum(terms * self._weights), terminated, truncated, info


# ---------------------------------------------------------------------------------------------- guards
class FlagNonFinite(Wrapper):
    """Adds ``info["nonfinite_obs"]`` (bool) so a training loop can stop with a clear error between chunks,
    since a compiled step cannot raise. Host-side paths (the Gymnasium bridges) raise directly instead."""

    def _step(self, key, state, action, params):
        obs, state, reward, terminated, truncated, info = self.env.step(key, state, action, params)
        bad = ~jnp.all(jnp.isfinite(obs)) | ~jnp.all(jnp.isfinite(reward))
        return obs, state, reward, terminated, truncated, dict(info, nonfinite_obs=bad)
