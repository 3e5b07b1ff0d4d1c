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

``AutoReset`` starts the next episode with ``reset_where`` (see ``envs.core``), not ``reset``, so state that
outlives an episode survives it: ``NormalizeObservation`` inside ``AutoReset`` keeps its running statistics across
episodes, as a stateful Gymnasium wrapper does across ``reset()`` calls.

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

    A wrapper that changes what a reset returns overrides ``_begin_episode`` (not ``_reset``): both ``reset`` and
    ``AutoReset``'s ``reset_where`` go through it, the latter after the inner env carried over what outlives an
    episode. One whose own state outlives an episode also overrides ``_reset_where`` (``NormalizeObservation``).
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
        return self._begin_episode(*self.env.reset(key, params), params)

    def _begin_episode(self, obs, env_state, params):
        """This wrapper's ``(obs, state)`` at the start of an episode whose inner reset gave ``(obs, env_state)``."""
        return obs, env_state

    def _reset_where(self, key, state, done, params):
        cls = type(self)
        if cls._reset is not Wrapper._reset and cls._begin_episode is Wrapper._begin_episode:
            # written against the protocol before reset_where (it overrides _reset only): reset it and
            # everything below afresh, as AutoReset always did, rather than skip what its _reset does
            return super()._reset_where(key, state, done, params)
        inner = state.env_state if self.has_own_state else state
        obs, inner = self.env.reset_where(key, inner, done, params)  # already selected where done
        obs, fresh = self._begin_episode(obs, inner, params)
        if not self.has_own_state:
            return obs, fresh
        # this wrapper's own fields start afresh where done; env_state is `inner` on both sides
        return obs, jax.tree.map(lambda f, s: jnp.where(done, f, s), fresh, state.replace(env_state=inner))

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

    def _begin_episode(self, obs, env_state, params):
        return obs, TimeLimitState(env_state, jnp.zeros((), jnp.int32))

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

    ``info["final_obs"]`` is the transition's true next observation on every step. An inner wrapper that already
    set it keeps its value: ``rlkit.conditioning.Conditioned`` does when it swaps the skill in the returned
    observation, whose transition still ends in the old skill.

    The reset branch is always computed (``jnp.where`` selects), which keeps the step branch-free under ``vmap``.
    It is the inner env's ``reset_where``, so what outlives an episode (running statistics) is carried over.
    """

    def _step(self, key, state, action, params):
        step_key, reset_key = jax.random.split(key)
        obs, next_state, reward, terminated, truncated, info = self.env.step(step_key, state, action, params)
        done = jnp.logical_or(terminated, truncated)
        reset_obs, next_state = self.env.reset_where(reset_key, next_state, done, params)
        info = dict(info, final_obs=info.get("final_obs", obs))  # an inner wrapper's final_obs is kept
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

    def _begin_episode(self, obs, env_state, params):
        k = self.spec.num_reward_terms
        zf, zi = jnp.zeros((k,), jnp.float32), jnp.zeros((), jnp.int32)
        return obs, EpisodeStatisticsState(env_state, zf, zi, zf, zi, zi)

    def _reset_where(self, key, state, done, params):
        # _step already restarted the running sums where done; the last episode's figures and the count carry on
        obs, env_state = self.env.reset_where(key, state.env_state, done, params)
        return obs, state.replace(env_state=env_state)

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

    The statistics outlive episodes: inside ``AutoReset`` they absorb the last observation of an episode (in its
    step) and the first of the next (in ``reset_where``), which is then normalized with them — what CleanRL's
    per-env Gymnasium ``NormalizeObservation`` under a vector env's auto-reset sees. Only ``reset`` starts afresh.

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

    def _begin_episode(self, obs, env_state, params):
        stats, norm = self._observe(running_stats.RunningMeanStd.zeros(obs.shape), obs)
        return norm, NormalizeObservationState(env_state, stats)

    def _reset_where(self, key, state, done, params):
        obs, env_state = self.env.reset_where(key, state.env_state, done, params)
        stats = state.stats
        if self.update:
            stats = running_stats.update(stats, obs[None], self.axis_name, where=done[None])
        norm = running_stats.normalize(stats, obs, clip=self.clip)
        return norm, NormalizeObservationState(env_state, stats)

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
