"""Brax's and MuJoCo Playground's JAX envs as rlkit envs: ``envs.make("brax:ant")``,
``envs.make("playground:CartpoleBalance")`` — real locomotion and control tasks that run fully on device, so SAC,
PPO and every family built on them train on them inside one compiled program, like the native envs.

Both libraries already have pure functional envs (``reset(rng) -> State``, ``step(State, action) -> State`` with
``State.obs``, ``.reward``, ``.done``); the bridge maps them onto the env protocol (``envs.core``) and adds
nothing else:

- ``spec``: observations ``Box(−inf, inf, (obs_size,))``, actions ``Box(−1, 1, (action_size,))`` (both libraries'
  action range), one reward term, ``max_episode_steps`` the library's episode length (Brax: 1000; Playground: its
  config's ``episode_length``), applied by ``envs.make``'s ``TimeLimit`` — the libraries' own ``EpisodeWrapper`` /
  auto-reset are not used, so ``terminated`` (the env's ``done``: an unhealthy Ant) and ``truncated`` (the time
  limit) stay apart and truncation bootstraps, as everywhere in rlkit;
- ``reset`` / ``step`` call the library's with the same key and action; the library's ``State`` is the env state
  (a pytree: it vmaps, scans and checkpoints with the rest).

Checked on JAX 0.12 (this repository's pin): Brax 0.14 imports and steps with its MJX backend (``backend="mjx"``,
the default here; ``"generalized"``, ``"positional"``, ``"spring"`` are Brax's others) — Brax says its own
envs are no longer actively developed and points to Playground; MuJoCo Playground 0.2 needs ``warp-lang`` and
``mujoco-mjx`` and is bridged the same way when installed (``pip install "rlkit[playground]"``; its MJX
``impl="jax"`` by default here, which vmaps on any backend — Playground's own default ``"warp"`` is NVIDIA
Warp's kernels). Brax is the
``brax`` extra. Compilation of a MuJoCo step is the cost on CPU (tens of seconds for Ant); on a GPU these envs
run thousands of copies at once.
"""

from __future__ import annotations

import difflib
import warnings
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from envs.core import Environment, EnvParams, EnvSpec
from envs.spaces import Box

BRAX_PREFIX = "brax:"
PLAYGROUND_PREFIX = "playground:"
PREFIXES = (BRAX_PREFIX, PLAYGROUND_PREFIX)


@struct.dataclass
class BridgeParams(EnvParams):
    max_episode_steps: int = 1000


def _missing(extra: str, module: str):
    from envs.registry import UnknownEnvError

    return UnknownEnvError(
        f'{extra}: envs need {module}, which is not installed: pip install "rlkit[{extra}]" (in a checkout: pip '
        f'install -e ".[{extra}]")'
    )


def _unknown(prefix: str, name: str, known: list[str]):
    from envs.registry import UnknownEnvError

    close = difflib.get_close_matches(name, known, n=3)
    hint = f" Did you mean {' or '.join(repr(prefix + c) for c in close)}?" if close else ""
    return UnknownEnvError(f"unknown env id {prefix + name!r}.{hint} Known: {', '.join(sorted(known))}.")


def brax_names() -> list[str]:
    try:
        from brax import envs as brax_envs
    except ImportError:
        raise _missing("brax", "brax") from None
    return sorted(brax_envs._envs)  # brax's registry (get_environment reads the same dict)


def playground_names() -> list[str]:
    try:
        from mujoco_playground import registry
    except ImportError:
        raise _missing("playground", "mujoco_playground") from None
    return sorted(registry.ALL_ENVS)


def check_id(id: str) -> None:
    """Raise ``UnknownEnvError`` (one line) unless ``id`` names an installed Brax / Playground env."""
    prefix = next(p for p in PREFIXES if id.startswith(p))
    name = id[len(prefix) :]
    known = brax_names() if prefix == BRAX_PREFIX else playground_names()
    if name not in known:
        raise _unknown(prefix, name, known)


class JaxLibraryEnv(Environment):
    """One Brax or Playground env behind the env protocol (see the module docstring)."""

    params_cls = BridgeParams

    def __init__(self, id: str, backend: str | None = None, impl: str = "jax", **params):
        check_id(id)
        self._id = id
        if id.startswith(BRAX_PREFIX):
            from brax import envs as brax_envs

            with warnings.catch_warnings():  # Brax's notice that its envs are unmaintained (module docstring)
                warnings.filterwarnings("ignore", "Brax System, piplines and environments", UserWarning)
                self._env = brax_envs.get_environment(id[len(BRAX_PREFIX) :], backend=backend or "mjx")
            length = 1000
        else:
            from mujoco_playground import registry

            name = id[len(PLAYGROUND_PREFIX) :]
            self._env = registry.load(name, config_overrides={"impl": impl})
            length = int(registry.get_default_config(name).episode_length)
        super().__init__(**({"max_episode_steps": length} | params))
        obs = jax.eval_shape(self._env.reset, jax.random.PRNGKey(0)).obs
        if not hasattr(obs, "shape") or len(obs.shape) != 1:
            raise ValueError(
                f"{id}: observations must be one flat array, got {jax.tree.map(lambda x: x.shape, obs)}"
            )
        self._obs_size, self._action_size = int(obs.shape[0]), int(self._env.action_size)

    @property
    def spec(self) -> EnvSpec:
        return EnvSpec(
            id=self._id,
            observation_space=Box.uniform(-np.inf, np.inf, (self._obs_size,)),
            action_space=Box.uniform(-1.0, 1.0, (self._action_size,)),
            max_episode_steps=self.default_params.max_episode_steps,
        )

    def _reset(self, key, params) -> tuple[jax.Array, Any]:
        state = self._env.reset(_raw(key))
        state = state.replace(
            reward=jnp.asarray(state.reward, jnp.float32), done=jnp.asarray(state.done, jnp.float32)
        )
        return state.obs, state

    def _step(self, key, state, action, params):
        nxt = self._env.step(state, action)
        reward = jnp.asarray(
            nxt.reward, jnp.float32
        )  # some envs return a Python float (inverted_pendulum: 1.0)
        nxt = nxt.replace(reward=reward, done=jnp.asarray(nxt.done, jnp.float32))  # one pytree type in a scan
        return nxt.obs, nxt, reward, nxt.done > 0.5, jnp.zeros((), bool), {}


def _raw(key: jax.Array) -> jax.Array:
    """The libraries split ``jax.random.PRNGKey``-style uint32[2] keys; typed keys are converted."""
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        return jax.random.key_data(key)
    return key
