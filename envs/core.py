"""The env protocol: pure, vmappable environments with pytree params and (possibly vector) rewards.

An ``Environment`` is a Python object that holds only *static* configuration (layouts, sizes) and exposes pure
functions::

    reset(key, params)                    -> (obs, state)
    step(key, state, action, params)      -> (obs, state, reward, terminated, truncated, info)
    reset_where(key, state, done, params) -> (obs, state)
    render(state, params)                 -> uint8[H, W, 3]

``params`` is a ``flax.struct`` dataclass (a pytree), so a sweep can vmap over physics constants or episode
lengths. Every params class derives from ``EnvParams`` and so carries ``max_episode_steps``, which the
``TimeLimit`` wrapper reads: raw envs never truncate, wrappers do, and ``terminated`` / ``truncated`` stay apart
everywhere (a learner bootstraps through truncation).

Rewards are named: ``spec.reward_names`` lists the terms. With one term the reward is a scalar ``float32[]``;
with K > 1 terms it is ``float32[K]`` in the order of ``reward_names`` (multi-critic learners keep one critic
per term; ``wrappers.SumReward`` gives the weighted scalar for comparison).

The public ``reset`` / ``step`` validate their inputs at trace time (params type, action shape and dtype) and
then call the subclass's ``_reset`` / ``_step``; checks cost nothing at run time because shapes are static.

``reset_where`` is what ``wrappers.AutoReset`` calls after every step: it starts a new episode where ``done`` and
keeps ``state`` elsewhere, branch-free (both are computed, ``jnp.where`` selects). A raw env just resets; a
wrapper whose state outlives an episode (``NormalizeObservation``'s running statistics) carries that part of
``state`` into the new episode instead of starting it afresh, which a plain ``reset`` cannot do.

Deliberately not here: auto-reset, time limits, statistics and normalization (see ``wrappers``), and any host
(NumPy / Gymnasium) execution (see ``gymnasium_bridge``).
"""

from __future__ import annotations

import abc
import dataclasses
import difflib
from dataclasses import dataclass
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
from flax import struct

from envs.spaces import Box, Discrete, Space

StepResult = tuple[jax.Array, Any, jax.Array, jax.Array, jax.Array, dict[str, jax.Array]]


@struct.dataclass
class EnvParams:
    """Base of every env's params: the time limit the ``TimeLimit`` wrapper applies (sweepable)."""

    max_episode_steps: int = 1000


@dataclass(frozen=True)
class EnvSpec:
    """What an agent needs to know about an env before it builds its networks."""

    id: str
    observation_space: Box
    action_space: Space
    reward_names: tuple[str, ...] = ("reward",)
    max_episode_steps: int | None = None

    @property
    def num_reward_terms(self) -> int:
        return len(self.reward_names)

    @property
    def reward_shape(self) -> tuple[int, ...]:
        return () if len(self.reward_names) == 1 else (len(self.reward_names),)

    @property
    def discrete_actions(self) -> bool:
        return isinstance(self.action_space, Discrete)

    def replace(self, **changes) -> EnvSpec:
        return dataclasses.replace(self, **changes)


def params_field_names(params_cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(params_cls)]


def build_params(params_cls: type, overrides: dict[str, Any], owner: str):
    """``params_cls(**overrides)`` with an error that names the unknown field and the ones that exist."""
    known = params_field_names(params_cls)
    for name in overrides:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=3)
            hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise ValueError(f"{owner} has no param {name!r}.{hint} Its params are: {', '.join(known)}.")
    return params_cls(**overrides)


class Environment(abc.ABC):
    """Base class of JAX-native envs and of wrappers. Subclasses implement ``_reset`` and ``_step``."""

    #: the params dataclass of this env (a subclass of ``EnvParams``)
    params_cls: ClassVar[type] = EnvParams

    def __init__(self, **param_overrides):
        self._default_params = build_params(self.params_cls, param_overrides, type(self).__name__)

    # ------------------------------------------------------------------ metadata
    @property
    @abc.abstractmethod
    def spec(self) -> EnvSpec: ...

    @property
    def default_params(self):
        return self._default_params

    @property
    def unwrapped(self) -> Environment:
        return self

    def make_params(self, **overrides):
        """Default params with some fields replaced; unknown names raise a ``ValueError`` listing the known ones."""
        known = params_field_names(type(self.default_params))
        for name in overrides:
            if name not in known:
                build_params(type(self.default_params), overrides, self.spec.id)  # raises with the message
        return self.default_params.replace(**overrides)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.spec.id!r})"

    # ------------------------------------------------------------------ protocol
    def reset(self, key: jax.Array, params=None) -> tuple[jax.Array, Any]:
        params = self._check_params(params)
        self._check_key(key)
        return self._reset(key, params)

    def step(self, key: jax.Array, state, action, params=None) -> StepResult:
        params = self._check_params(params)
        self._check_key(key)
        action = self.spec.action_space.check(action, what="action", owner=self.spec.id)
        return self._step(key, state, action, params)

    def reset_where(self, key: jax.Array, state, done, params=None) -> tuple[jax.Array, Any]:
        """Start a new episode where ``done`` (a bool scalar; per env under ``vmap``) after a step that gave ``state``.

        Returns the new episode's first observation (meaningful where ``done``; select it with ``jnp.where``) and
        the state to continue from: the new episode's where ``done``, ``state`` elsewhere. State that outlives an
        episode (a wrapper's running statistics) is carried over rather than reset.
        """
        params = self._check_params(params)
        self._check_key(key)
        done = jnp.asarray(done)
        if done.shape != () or done.dtype != jnp.bool_:
            raise TypeError(
                f"{self.spec.id}: done must be a bool scalar (terminated | truncated of one env; vmap reset_where "
                f"for a batch), got shape {done.shape} dtype {done.dtype}"
            )
        return self._reset_where(key, state, done, params)

    def render(self, state, params=None) -> jax.Array:
        """An RGB picture of ``state`` as ``uint8[H, W, 3]`` (pure; vmap it to render a batch)."""
        raise NotImplementedError(f"{self.spec.id} does not render")

    @abc.abstractmethod
    def _reset(self, key: jax.Array, params) -> tuple[jax.Array, Any]: ...

    @abc.abstractmethod
    def _step(self, key: jax.Array, state, action: jax.Array, params) -> StepResult: ...

    def _reset_where(self, key: jax.Array, state, done: jax.Array, params) -> tuple[jax.Array, Any]:
        # nothing of a raw env outlives its episode: a fresh reset, selected where done
        obs, fresh = self._reset(key, params)
        return obs, jax.tree.map(lambda f, s: jnp.where(done, f, s), fresh, state)

    # ------------------------------------------------------------------ validation
    def _check_params(self, params):
        if params is None:
            return self.default_params
        expected = type(self.default_params)
        if not isinstance(params, expected):
            raise TypeError(
                f"{self.spec.id}: params must be a {expected.__name__} (from env.default_params or "
                f"env.make_params(...)), got {type(params).__name__}"
            )
        return params

    def _check_key(self, key) -> None:
        dtype = getattr(key, "dtype", None)
        is_typed = dtype is not None and jnp.issubdtype(dtype, jax.dtypes.prng_key)
        shape = getattr(key, "shape", None)
        if not ((is_typed and shape == ()) or (not is_typed and shape == (2,) and dtype == jnp.uint32)):
            raise TypeError(
                f"{self.spec.id}: key must be one PRNG key (jax.random.key(seed) or jax.random.PRNGKey(seed)), "
                f"got shape {shape} dtype {dtype}; vmap reset/step to use a batch of keys"
            )


def reward_vector(terms: dict[str, jax.Array], names: tuple[str, ...]) -> jax.Array:
    """Stack named reward terms in ``names`` order (a scalar when there is only one)."""
    if len(names) == 1:
        return jnp.asarray(terms[names[0]], jnp.float32)
    return jnp.stack([jnp.asarray(terms[n], jnp.float32) for n in names])
