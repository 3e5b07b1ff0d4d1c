"""Skill / goal conditioning: a prior over a latent ``z`` and an env wrapper that holds ``z`` in the env state.

What it is for: DIAYN (categorical skills held for an episode), METRA (unit-sphere or centred one-hot skills), LSD
(Gaussian skills) and goal-conditioned agents. ``Conditioned(env, prior)`` draws ``z`` at every reset (and, with
``resample_every=N``, every N steps as URLB's DIAYN does with N = 50), shows the learner ``concat(obs, z)`` and
puts the ``z`` each transition was taken under in ``info["z"]``, so any learner trains on it unchanged; a reward
term gets the raw observation back with ``split(obs, prior.size)``.

Place it inside the rollout stack, ``wrap_for_rollout(Conditioned(TimeLimit(env), prior))`` (inside
``AutoReset``, whose ``reset_where`` draws each new episode's ``z``), and outside ``NormalizeObservation`` unless
``z`` should be normalized too. ``resample`` is the one rule for when ``z`` changes, shared with host loops (the
Gymnasium loop holds ``z`` itself).

Goals: ``goals(sample_fn, ...)`` draws a goal per episode (``PointMaze.sample_free``: uniform over a maze's floor),
``fixed(goal)`` is one goal for every episode (single-goal contrastive RL). ``GoalConditioned`` is ``Conditioned``
for goal reaching: it also reports ``info["success"]`` (the achieved goal ``obs[goal_dims]`` after the step lies
within ``radius`` of the episode's goal) and ``info["achieved_goal"]``, and evaluation plays it with its
``eval_prior`` (the task's goal) through ``evaluation_env()``, so ``Trainer.evaluate`` reports the success rate
at the goal that matters whatever goals training drew.

Deliberately not here: skill-discovery rewards and discriminators (the agents), learned or adaptive priors, and
goal relabelling (hindsight goals come from the replay buffer: ``rlkit.data_sources.hindsight_goals``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from envs.core import Environment, EnvSpec
from envs.spaces import Box
from envs.wrappers import Wrapper
from rlkit.configs import ConfigError

Fn = Callable[[jax.Array], jax.Array]


@dataclass(frozen=True, eq=False)
class Prior:
    """A distribution over ``z ∈ R^size``. ``sample(key) -> float32[size]`` and ``log_prob(z: float32[size]) ->
    float32[]`` are pure (jit / vmap them); ``log_prob`` is ``None`` where there is no density (goals).
    ``low`` / ``high`` (``float32[size]``, may be ±inf) bound the samples and widen the observation box. The
    callables are ``functools.partial`` of module functions, so a prior pickles (a ``goals`` one if its sampler does).
    """

    name: str
    size: int
    sample: Fn
    log_prob: Fn | None
    low: np.ndarray
    high: np.ndarray
    discrete: bool = False
    num_skills: int | None = None  # K for the discrete priors

    def __post_init__(self):
        _check_size(self.size, 1, self.name)
        for side in ("low", "high"):
            value = np.broadcast_to(np.asarray(getattr(self, side), np.float32), (self.size,))
            object.__setattr__(self, side, value)

    def index_of(self, z: jax.Array) -> jax.Array:
        """The skill index ``int32[...]`` of discrete ``z: float32[..., K]`` (either one-hot form peaks at it)."""
        if not self.discrete:
            raise TypeError(f"index_of needs a discrete prior; {self!r} is continuous")
        return jnp.argmax(z, axis=-1).astype(jnp.int32)

    def __repr__(self) -> str:
        return f"Prior({self.name!r}, size={self.size})"


def _check_size(size: Any, minimum: int, what: str) -> int:
    if isinstance(size, bool) or not isinstance(size, int | np.integer) or size < minimum:
        raise ConfigError(f"{what} prior needs an integer size >= {minimum}, got {size!r}")
    return int(size)


def _table_sample(table: np.ndarray, key: jax.Array) -> jax.Array:
    return jnp.asarray(table)[jax.random.randint(key, (), 0, table.shape[0])]


def _table_log_prob(table: np.ndarray, z: jax.Array) -> jax.Array:
    # uniform over the K rows: log(1/K) at a row, -inf off the support (so a wrong encoding shows)
    on = jnp.any(jnp.all(jnp.abs(jnp.asarray(table) - z) <= 1e-6, axis=-1))
    return jnp.where(on, -math.log(table.shape[0]), -jnp.inf).astype(jnp.float32)


def _table_prior(name: str, table: np.ndarray) -> Prior:
    k, t = table.shape[0], table.astype(np.float32)
    return Prior(name, k, partial(_table_sample, t), partial(_table_log_prob, t), t.min(0), t.max(0), True, k)


def categorical(k: int) -> Prior:
    """One-hot of a uniform index in {0, …, k-1} (DIAYN)."""
    return _table_prior("categorical", np.eye(_check_size(k, 2, "categorical")))


def centred_one_hot(k: int) -> Prior:
    """METRA's discrete skills ``(onehot − 1/k) · k/(k−1)``: 1 at the skill, ``−1/(k−1)`` elsewhere, sum 0.

    From ``seohongpark/METRA`` ``iod/metra.py`` ``_update_rewards``: ``masks = (options - options.mean(dim=1)) *
    dim_option / (dim_option - 1)``. METRA uses it only as the reward's direction (its policy sees the plain
    one-hot); conditioning on the centred vector is this prior's choice, ``categorical`` the other.
    """
    k = _check_size(k, 2, "centred_one_hot")
    return _table_prior("centred_one_hot", (np.eye(k) - 1.0 / k) * k / (k - 1))


def _gaussian_sample(d: int, scale: float, key: jax.Array) -> jax.Array:
    return scale * jax.random.normal(key, (d,), jnp.float32)


def _gaussian_log_prob(scale: float, z: jax.Array) -> jax.Array:
    d = z.shape[-1]
    return -0.5 * jnp.sum(jnp.square(z / scale), -1) - d * math.log(scale * math.sqrt(2 * math.pi))


def gaussian(d: int, scale: float = 1.0) -> Prior:
    """``N(0, scale² I)`` in R^d (LSD); unbounded."""
    d = _check_size(d, 1, "gaussian")
    if not scale > 0:
        raise ConfigError(f"gaussian prior needs scale > 0, got {scale!r}")
    s = float(scale)
    return Prior(
        "gaussian", d, partial(_gaussian_sample, d, s), partial(_gaussian_log_prob, s), -np.inf, np.inf
    )


def _sphere_sample(d: int, key: jax.Array) -> jax.Array:
    n = jax.random.normal(key, (d,), jnp.float32)
    return n / jnp.linalg.norm(n)


def _sphere_log_prob(log_area: float, z: jax.Array) -> jax.Array:
    return jnp.full(z.shape[:-1], -log_area, jnp.float32)  # z is taken to lie on the sphere (not checked)


def unit_sphere(d: int) -> Prior:
    """``N(0, I)`` normalised to unit length, uniform on S^{d-1} (METRA's continuous skills). ``log_prob`` is the
    density w.r.t. surface measure, ``−log(2π^{d/2} / Γ(d/2))`` (``−log 2π`` for d = 2)."""
    d = _check_size(d, 1, "unit_sphere")
    log_area = math.log(2.0) + 0.5 * d * math.log(math.pi) - math.lgamma(0.5 * d)
    return Prior("unit_sphere", d, partial(_sphere_sample, d), partial(_sphere_log_prob, log_area), -1.0, 1.0)


def _uniform_sample(d: int, key: jax.Array) -> jax.Array:
    return jax.random.uniform(key, (d,), jnp.float32, -1.0, 1.0)


def _uniform_log_prob(d: int, z: jax.Array) -> jax.Array:
    inside = jnp.all(jnp.abs(z) <= 1.0, axis=-1)
    return jnp.where(inside, -d * math.log(2.0), -jnp.inf).astype(jnp.float32)


def uniform(d: int) -> Prior:
    """Uniform on the box ``[−1, 1]^d`` (DADS's continuous skills, ``cont_uniform``); density ``2^{−d}``."""
    d = _check_size(d, 1, "uniform")
    return Prior("uniform", d, partial(_uniform_sample, d), partial(_uniform_log_prob, d), -1.0, 1.0)


def _goal_sample(fn: Fn, key: jax.Array) -> jax.Array:
    return jnp.asarray(fn(key), jnp.float32)


def goals(sample_fn: Fn, size: int, low, high, name: str = "goal") -> Prior:
    """Goals ``float32[size]`` from ``sample_fn(key)`` (e.g. uniform over a maze's floor); no ``log_prob``."""
    size = _check_size(size, 1, name)
    shape = jax.eval_shape(sample_fn, jax.random.key(0)).shape  # traced here, to fail before any rollout
    if shape != (size,):
        raise ConfigError(f"{name} prior: sample_fn(key) has shape {shape}, expected ({size},)")
    return Prior(name, size, partial(_goal_sample, sample_fn), None, low, high)


def _fixed_sample(goal: np.ndarray, key: jax.Array) -> jax.Array:
    return jnp.asarray(goal)


def fixed(goal, name: str = "goal") -> Prior:
    """The same goal ``float32[size]`` for every episode (single-goal RL); no ``log_prob``."""
    g = np.asarray(goal, np.float32)
    if g.ndim != 1 or g.size == 0 or not np.all(np.isfinite(g)):
        raise ConfigError(
            f"{name}: a fixed goal must be a non-empty 1-D vector of finite numbers, got {goal!r}"
        )
    return Prior(name, int(g.size), partial(_fixed_sample, g), None, g, g)


PRIORS: dict[str, Callable[[int], Prior]] = {
    "categorical": categorical,
    "centred_one_hot": centred_one_hot,
    "gaussian": gaussian,
    "unit_sphere": unit_sphere,
    "uniform": uniform,
}


def make_prior(kind: str, size: int) -> Prior:
    """The prior named ``kind`` (a key of ``PRIORS``) over ``R^size``."""
    if kind not in PRIORS:
        raise ConfigError(f"unknown prior kind {kind!r}; expected one of: {', '.join(PRIORS)}")
    return PRIORS[kind](size)


def split(obs: jax.Array, size: int) -> tuple[jax.Array, jax.Array]:
    """``float32[..., D + size]`` → ``(obs float32[..., D], z float32[..., size])``: z is the last ``size``."""
    return obs[..., :-size], obs[..., -size:]


def resample(prior: Prior, key: jax.Array, z, steps_since, done, resample_every) -> tuple[jax.Array, ...]:
    """The z to act on next: a fresh draw where ``done`` (a new episode) or, if ``resample_every = N > 0``, where
    ``steps_since >= N``; ``z`` elsewhere.

    Shapes, for any batch shape ``B`` (``()`` for one env): ``z float32[*B, size]``, ``steps_since int32[*B]`` (steps
    taken under ``z``, counting the one just taken), ``done bool[*B]``, ``resample_every`` an int or an int array
    broadcasting to ``B`` (Python or traced); one ``key`` for the batch. Returns ``(z_next float32[*B, size],
    steps_since_next int32[*B], resampled bool[*B])``, with ``steps_since_next`` 0 where resampled.
    """
    done, steps = jnp.asarray(done, jnp.bool_), jnp.asarray(steps_since, jnp.int32)
    n = jnp.asarray(resample_every, jnp.int32)
    if done.shape:  # one draw per env, each from its own key
        keys = jax.random.split(key, math.prod(done.shape))
        fresh = jax.vmap(prior.sample)(keys).reshape(*done.shape, prior.size)
    else:
        fresh = prior.sample(key)
    mask = done | ((n > 0) & (steps >= n))
    # The barrier makes XLA compute z once: it may otherwise recompute the draw inside each fusion that uses it
    # (the observation, the state) and round differently, and obs[-size:] would differ from info["z"] in a bit.
    z_next = jax.lax.optimization_barrier(jnp.where(mask[..., None], fresh, z))
    return z_next, jnp.where(mask, 0, steps), mask


def conditioned_spec(spec: EnvSpec, prior: Prior) -> EnvSpec:
    """``spec`` with its 1-D observation Box widened by the prior's bounds: what a conditioned learner sees (also
    the host loop's, which conditions Gymnasium envs itself)."""
    inner = spec.observation_space
    if not isinstance(inner, Box) or len(inner.shape) != 1:
        raise ConfigError(
            f"conditioning appends z to a 1-D Box observation; {spec.id} has {inner!r} "
            f"(shape {getattr(inner, 'shape', None)})"
        )
    box = Box(np.concatenate([inner.low, prior.low]), np.concatenate([inner.high, prior.high]))
    return spec.replace(observation_space=box)


@struct.dataclass
class ConditionedState:
    env_state: Any
    z: jax.Array  # float32[size]: the z the next transition is taken under
    steps_since: jax.Array  # int32[]: steps taken under z


class Conditioned(Wrapper):
    """Appends ``z ~ prior`` to the (1-D) observation; ``z`` is drawn at every reset and, if ``resample_every = N >
    0``, after every N steps under it within an episode. ``info["z"]`` is the z of each transition; on a step that
    resamples, the returned observation carries the new z (what is acted on next) and ``info["final_obs"]`` the
    old one (the transition's bootstrap target, which ``AutoReset`` keeps)."""

    has_own_state = True

    def __init__(self, env: Environment, prior: Prior, resample_every: int = 0):
        super().__init__(env)
        if not isinstance(prior, Prior):
            raise TypeError(
                f"Conditioned needs an rlkit.conditioning.Prior (e.g. categorical(8)), got {prior!r}"
            )
        space = env.spec.observation_space
        if not isinstance(space, Box) or len(space.shape) != 1:
            shape = getattr(space, "shape", None)
            raise ConfigError(
                f"Conditioned appends z to a 1-D Box observation; {env.spec.id} has shape {shape}"
            )
        if not isinstance(
            resample_every, jax.core.Tracer
        ):  # a traced value (a sweep) is its caller's to check
            if int(resample_every) != resample_every or resample_every < 0:
                raise ConfigError(
                    f"resample_every must be an integer >= 0 (0: per episode), got {resample_every!r}"
                )
        self.prior, self.resample_every = prior, resample_every

    @property
    def spec(self) -> EnvSpec:
        return conditioned_spec(self.env.spec, self.prior)

    def __repr__(self) -> str:
        return f"Conditioned({self.env!r}, prior={self.prior!r}, resample_every={self.resample_every})"

    # Reset and reset_where (AutoReset's) draw z from a key split off the reset key, so z is independent of the
    # inner reset. They override _reset / _reset_where, not _begin_episode, because drawing z needs a key.
    def _reset(self, key, params):
        env_key, z_key = jax.random.split(key)
        obs, env_state = self.env.reset(env_key, params)
        z, steps, _ = resample(self.prior, z_key, jnp.zeros(self.prior.size), 0, True, 0)
        return jnp.concatenate([obs, z]), ConditionedState(env_state, z, steps)

    def _reset_where(self, key, state, done, params):
        env_key, z_key = jax.random.split(key)
        obs, env_state = self.env.reset_where(env_key, state.env_state, done, params)
        z, steps, _ = resample(self.prior, z_key, state.z, state.steps_since, done, 0)
        return jnp.concatenate([obs, z]), ConditionedState(env_state, z, steps)

    def _step(self, key, state, action, params):
        env_key, z_key = jax.random.split(key)
        obs, env_state, reward, term, trunc, info = self.env.step(env_key, state.env_state, action, params)
        # No periodic draw on a step that ends the episode (N = 0 there): reset_where draws the next episode's z,
        # and the returned obs, the transition's next obs where nothing resets it, keeps the old one.
        every = jnp.where(term | trunc, 0, self.resample_every)
        z, steps, _ = resample(self.prior, z_key, state.z, state.steps_since + 1, False, every)
        info = dict(info, z=state.z, final_obs=jnp.concatenate([obs, state.z]))
        return jnp.concatenate([obs, z]), ConditionedState(env_state, z, steps), reward, term, trunc, info


def goal_dims_of(goal_dims, obs_size: int, what: str = "goal_dims") -> tuple[int, ...]:
    """The observation indices that make the achieved goal (``None``: the whole observation), checked."""
    dims = tuple(range(obs_size)) if goal_dims is None else tuple(goal_dims)
    if not dims or any(isinstance(i, bool) or not isinstance(i, int | np.integer) for i in dims):
        raise ConfigError(f"{what} must be a non-empty tuple of observation indices, got {goal_dims!r}")
    if any(not 0 <= i < obs_size for i in dims) or len(set(dims)) != len(dims):
        raise ConfigError(
            f"{what}={goal_dims!r}: indices must be distinct and in [0, {obs_size}) for an observation of "
            f"size {obs_size}"
        )
    return tuple(int(i) for i in dims)


def goal_success(achieved: jax.Array, goal: jax.Array, radius) -> jax.Array:
    """``bool[...]``: the achieved goal ``[..., G]`` within ``radius`` (Euclidean) of ``goal [..., G]``."""
    return jnp.linalg.norm(achieved - goal, axis=-1) <= radius


class GoalConditioned(Conditioned):
    """``Conditioned`` on goals, for goal reaching: the learner sees ``concat(obs, g)`` with ``g ~ prior`` per
    episode, and ``info["success"]`` says whether the achieved goal ``obs′[goal_dims]`` (``None``: all of
    ``obs′``) is within ``radius`` of ``g``, ``info["achieved_goal"]`` is ``obs′[goal_dims]``. The env's own
    reward is left as it is (hindsight learners compute theirs from the relabelled goal). ``evaluation_env()``
    plays the same env with ``eval_prior`` (default: ``prior``): the goal that evaluation measures success at."""

    def __init__(
        self,
        env: Environment,
        prior: Prior,
        *,
        goal_dims=None,
        radius: float = 0.5,
        eval_prior: Prior | None = None,
    ):
        super().__init__(env, prior)
        obs_size = env.spec.observation_space.shape[0]
        self.goal_dims = goal_dims_of(goal_dims, obs_size)
        for p, what in ((prior, "prior"), (eval_prior, "eval_prior")):
            if p is not None and p.size != len(self.goal_dims):
                raise ConfigError(
                    f"GoalConditioned: the {what}'s goals have size {p.size}, but the achieved goal "
                    f"obs[{list(self.goal_dims)}] of {env.spec.id} has size {len(self.goal_dims)}"
                )
        if not float(radius) > 0:
            raise ConfigError(f"GoalConditioned: radius must be > 0, got {radius!r}")
        self.radius, self.eval_prior = float(radius), eval_prior

    def __repr__(self) -> str:
        return f"GoalConditioned({self.env!r}, prior={self.prior!r}, goal_dims={self.goal_dims})"

    def achieved(self, obs: jax.Array) -> jax.Array:
        """The achieved goal ``[..., G]`` of (unconditioned) observations ``[..., D]``."""
        return obs[..., jnp.asarray(self.goal_dims)]

    def evaluation_env(self) -> GoalConditioned:
        """The same env conditioned on ``eval_prior`` (``rlkit.rollout.evaluation_env``), with whatever the inner
        env strips for evaluation stripped too (``ExpertResets`` inside: evaluation never starts from experts)."""
        from rlkit.rollout import evaluation_env  # rollout imports nothing of this module's

        inner = evaluation_env(self.env)
        if self.eval_prior is None and inner is self.env:
            return self
        prior = self.prior if self.eval_prior is None else self.eval_prior
        return GoalConditioned(inner, prior, goal_dims=self.goal_dims, radius=self.radius)

    def _step(self, key, state, action, params):
        obs, new_state, reward, term, trunc, info = super()._step(key, state, action, params)
        achieved = self.achieved(split(info["final_obs"], self.prior.size)[0])
        success = goal_success(achieved, state.z, self.radius)
        return obs, new_state, reward, term, trunc, dict(info, success=success, achieved_goal=achieved)
