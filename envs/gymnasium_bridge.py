"""Bridges between rlkit's env protocol and Gymnasium, both ways.

Gymnasium → rlkit (host side): ``GymnasiumVectorEnv`` runs any Gymnasium env (a registered id, an ``Env`` class, a
factory, or one instance) in ``gymnasium.vector.SyncVectorEnv`` / ``AsyncVectorEnv`` and hands the host training
loop NumPy batches in our conventions: ``float32`` observations, ``terminated`` and ``truncated`` kept apart,
same-step auto-reset with the pre-reset observation in ``info["final_obs"]`` (exactly like ``wrappers.AutoReset``),
and an ``envs.EnvSpec`` translated from the Gymnasium spaces so agents are built the same way for both loops.
Inputs and outputs are checked eagerly, because a wrong action or a NaN observation from a user env is far easier
to diagnose at the step it happens than as a NaN loss thousands of steps later.

rlkit → Gymnasium: ``to_gymnasium`` / ``to_gymnasium_vector`` expose a JAX-native env (``envs.make(...)``) as a
``gymnasium.Env`` / ``gymnasium.vector.VectorEnv`` (the vector one batched with ``jax.vmap`` and ``AutoReset``), so
other libraries (Stable-Baselines3, Gymnasium wrappers, Minari recorders, ``check_env``) can use our envs.

Deliberately not here:

- Dict / Tuple / MultiDiscrete / MultiBinary / Text spaces and Discrete observations: our ``EnvSpec`` has one Box
  observation and a Box or Discrete action. They are refused with a message naming the space (flatten a Dict with
  ``gymnasium.wrappers.FlattenObservation`` first).
- Integer-valued Box actions (refused): our Box actions are float32 and rounding them silently would hide bugs.
- Bounds checks on observations or Box actions: Gymnasium envs routinely leave their declared boxes by a little
  and clip actions themselves; shapes, dtypes, finiteness and Discrete ranges are what we check.
- Running JAX envs inside a host loop for speed: ``to_gymnasium`` pays one dispatch and one device→host copy per
  step; train JAX-native envs with the on-device loop instead.
"""

from __future__ import annotations

import functools
import multiprocessing
import pickle
from collections.abc import Callable, Sequence
from typing import Any

import gymnasium
import jax
import jax.numpy as jnp
import numpy as np
from gymnasium import spaces as gym_spaces
from gymnasium.envs.registration import EnvSpec as GymEnvSpec
from gymnasium.utils import EzPickle
from gymnasium.vector import AsyncVectorEnv, AutoresetMode, SyncVectorEnv
from gymnasium.vector.utils import batch_space

from envs.core import Environment, EnvSpec
from envs.spaces import Box, Discrete, Space
from envs.wrappers import AutoReset, TimeLimit, Wrapper

__all__ = [
    "GymnasiumVectorEnv",
    "JaxToGymnasiumEnv",
    "JaxToGymnasiumVectorEnv",
    "to_gymnasium",
    "to_gymnasium_vector",
]

_F32_MAX = float(np.finfo(np.float32).max)


# ================================================================================================ shared checks
def _describe_space(space: gym_spaces.Space) -> str:
    return f"{type(space).__name__} space {space}"


def _float32_bounds(x: np.ndarray) -> np.ndarray:
    """Bounds as float32; float64 bounds beyond float32's range (e.g. ``finfo(float64).max``) become ±inf."""
    x = np.asarray(x, np.float64)
    return np.where(np.abs(x) > _F32_MAX, np.sign(x) * np.inf, x).astype(np.float32)


def _check_actions(actions: Any, space: Space, num_envs: int | None, owner: str) -> np.ndarray:
    """Validate one action (``num_envs=None``) or a batch of actions against one env's ``space``.

    Returns a float32 (Box) or int64 (Discrete) NumPy array; accepts anything ``np.asarray`` takes (jax arrays too).
    """
    actions = np.asarray(actions)
    batch = () if num_envs is None else (num_envs,)
    expected = (*batch, *space.shape)
    noun = "action" if num_envs is None else "actions"
    discrete = isinstance(space, Discrete)

    def what() -> str:  # built only when a check fails: this runs on every host step
        count = "one" if num_envs is None else num_envs
        if discrete:
            return f"{count} integer {noun} in [0, {space.n}) for Discrete({space.n})"
        return f"{count} float {noun} of shape {space.shape} for {space!r}"

    if discrete:
        kind_ok, kind = np.issubdtype(actions.dtype, np.integer), "an integer"
    else:
        kind_ok, kind = np.issubdtype(actions.dtype, np.floating), "a floating"
    if actions.shape != expected:
        raise ValueError(f"{owner}: {noun} of shape {actions.shape}, expected {expected}: {what()}")
    if not kind_ok:
        raise ValueError(f"{owner}: {noun} of dtype {actions.dtype}, expected {kind} dtype: {what()}")
    per_env = actions.reshape(num_envs or 1, -1)
    if isinstance(space, Discrete):
        bad = np.flatnonzero(np.any((per_env < 0) | (per_env >= space.n), axis=1))
        problem = f"outside [0, {space.n})"
    else:
        bad = np.flatnonzero(~np.all(np.isfinite(per_env), axis=1))
        problem = "not finite (NaN or inf)"
    if bad.size:
        which = "" if num_envs is None else f" of envs {bad.tolist()}"
        values = f" {per_env[bad].squeeze(-1).tolist()}" if isinstance(space, Discrete) else ""
        raise ValueError(
            f"{owner}: {noun}{values}{which} {'is' if num_envs is None else 'are'} {problem}: {what()}"
        )
    return actions.astype(np.int64 if isinstance(space, Discrete) else np.float32)


# ================================================================================================ Gymnasium → rlkit
def _translate_observation_space(space: gym_spaces.Space, env_id: str) -> Box:
    if isinstance(space, gym_spaces.Box):
        # Any Box dtype (uint8 images included) becomes float32 observations: our networks and buffers are float32.
        return Box(_float32_bounds(space.low), _float32_bounds(space.high), np.dtype(np.float32))
    hint = (
        " (flatten it first, e.g. gymnasium.wrappers.FlattenObservation)"
        if isinstance(space, gym_spaces.Dict | gym_spaces.Tuple)
        else ""
    )
    raise ValueError(
        f"Gymnasium env {env_id!r} has a {_describe_space(space)} as observation space; the bridge supports only "
        f"Box observations{hint}"
    )


def _translate_action_space(space: gym_spaces.Space, env_id: str) -> tuple[Space, int]:
    """Our action space and the offset added to our actions before Gymnasium sees them."""
    if isinstance(space, gym_spaces.Discrete):
        # Our Discrete is {0, …, n-1}; a Gymnasium Discrete(n, start=s) is {s, …, s+n-1}, so the bridge adds s.
        return Discrete(int(space.n)), int(space.start)
    if isinstance(space, gym_spaces.Box):
        if not np.issubdtype(space.dtype, np.floating):
            raise ValueError(
                f"Gymnasium env {env_id!r} has an integer-valued {_describe_space(space)} as action space; the "
                "bridge supports float Box and Discrete actions"
            )
        return Box(_float32_bounds(space.low), _float32_bounds(space.high), np.dtype(np.float32)), 0
    raise ValueError(
        f"Gymnasium env {env_id!r} has a {_describe_space(space)} as action space; the bridge supports only Box "
        "and Discrete actions"
    )


# info key through which a sub-env reports an observation of the wrong shape to the bridge
_SHAPE_ERROR = "rlkit_observation_shape_error"


class _ObservationShapeGuard(gymnasium.Wrapper):
    """Checks each sub-env's observations against its own declared shape, before the vector env stacks them.

    It sits inside the sub-env (so inside the worker process of an ``AsyncVectorEnv``) because a wrong shape would
    otherwise surface as a NumPy broadcasting error in Gymnasium's concatenation or shared-memory copy. It reports
    through ``info`` instead of raising: an exception in an async worker reaches us only through Gymnasium's
    worker-error path (the worker is shut down, the error is logged as warnings), and the bridge can then name all
    offending envs at once, as it does for non-finite observations.
    """

    def __init__(self, env: gymnasium.Env, env_id: str, index: int):
        super().__init__(env)
        self._env_id, self._index, self._episode_step = env_id, index, 0

    @property
    def spec(self):  # the user env's own; Gymnasium's Wrapper.spec would list this guard among its wrappers
        return self.env.spec

    def _check(self, obs, info: dict, where: str):
        shape, declared = np.shape(obs), self.observation_space.shape
        if shape == declared:
            return obs, info
        message = (
            f"env {self._index} returned shape {shape} {where}, but its observation_space declares {declared}"
        )
        return np.zeros(declared, self.observation_space.dtype), {**info, _SHAPE_ERROR: message}

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        self._episode_step = 0
        return self._check(obs, info, "from reset()")

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._episode_step += 1
        obs, info = self._check(obs, info, f"at step {self._episode_step} of its episode")
        return obs, reward, terminated, truncated, info

    # Snapshots run inside the sub-env (so inside an async worker too, through ``VectorEnv.call``): the env is
    # pickled where it lives and only bytes cross the pipe.
    def rlkit_snapshot(self) -> tuple[bytes | None, str]:
        """``(pickled state of the wrapped env, "")``, or ``(None, why)`` when it cannot be pickled."""
        node = self.env
        while node is not None:
            # EzPickle envs (Gymnasium's MuJoCo and Box2D envs) pickle their constructor arguments, so unpickling
            # builds a *fresh* env: a snapshot would silently restart every episode. Refuse instead.
            if isinstance(node, EzPickle):
                return None, (
                    f"{type(node).__name__} pickles its constructor arguments (gymnasium.utils.EzPickle), not "
                    "its state"
                )
            node = getattr(node, "env", None)
        try:
            return pickle.dumps((self.env, self._episode_step)), ""
        except Exception as err:  # any pickling failure means "cannot snapshot", never a crash
            return None, f"{type(err).__name__}: {err}".splitlines()[0]

    rlkit_pending_restore: bytes | None = None  # a class attribute, so Gymnasium's set_attr sets it here

    def rlkit_apply_restore(self) -> None:
        env, self._episode_step = pickle.loads(self.rlkit_pending_restore)
        self.rlkit_pending_restore = None
        self.env.close()
        self.env = env


def _pop_shape_errors(info: dict) -> list[str]:
    """The guards' messages, from ``info`` and, for envs that ended this step, from ``info["final_info"]``."""
    messages = []
    for d in (info, info.get("final_info", {})):
        if _SHAPE_ERROR in d:
            values, mask = d.pop(_SHAPE_ERROR), d.pop("_" + _SHAPE_ERROR)
            messages += [str(v) for v, m in zip(values, mask) if m]
    return messages


def _make_guarded(make_env: Callable[[], Any], env_id: str, index: int) -> gymnasium.Env:
    # module level (not a closure) so AsyncVectorEnv can pickle it by reference for its worker processes
    env = make_env()
    if not isinstance(env, gymnasium.Env):
        raise TypeError(
            f"the factory for Gymnasium env {env_id!r} returned {type(env).__name__}, not a gymnasium.Env"
        )
    return _ObservationShapeGuard(env, env_id, index)


def _make_by_id(gym_id: str, gym_kwargs: dict) -> gymnasium.Env:
    return gymnasium.make(gym_id, **gym_kwargs)


def _call(factory: Callable, gym_kwargs: dict) -> Any:
    return factory(**gym_kwargs)


def _return(env: gymnasium.Env) -> gymnasium.Env:
    return env


def _default_context() -> str:
    # JAX is multithreaded, so a plain fork of this process can deadlock (JAX and Python ≥ 3.12 both warn);
    # forkserver forks workers from a clean single-threaded server instead.
    return "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"


class GymnasiumVectorEnv:
    """``num_envs`` copies of a Gymnasium env on the host, in rlkit's conventions.

    Args:
        env: a registered Gymnasium id (``"Pendulum-v1"``), a ``gymnasium.Env`` subclass or a factory returning a
            ``gymnasium.Env`` (called once per copy), or one ``gymnasium.Env`` instance (then ``num_envs`` must be 1;
            the bridge steps that very object and ``close()`` closes it).
        num_envs: number of copies.
        asynchronous: one worker process per copy (``AsyncVectorEnv``) instead of stepping them in turn.
        gym_kwargs: keyword arguments for ``gymnasium.make`` or the class / factory (e.g. ``render_mode``).
        seed: seeds the first ``reset()`` that is given no seed; copy ``i`` gets ``seed + i`` (Gymnasium's rule).
        context: the ``multiprocessing`` start method of the async workers (default forkserver, never fork).

    ``step`` returns ``obs float32[N, ...]``, ``reward float32[N]``, ``terminated bool[N]``, ``truncated bool[N]``
    and ``info``: Gymnasium's vector info (keys with ``_key`` masks, ``final_info``), plus ``final_obs float32[N,
    ...]`` (the pre-reset observation where an episode ended, ``obs`` elsewhere) and ``episode_done``,
    ``episode_return``, ``episode_length`` as in ``wrappers.EpisodeStatistics`` (read them where ``episode_done``).

    A Gymnasium ``Discrete(n, start=s)`` action space is translated to our ``Discrete(n)``: agents emit
    ``0 … n-1`` and the bridge adds ``s`` (``action_offset``) before Gymnasium sees the action.
    """

    def __init__(
        self,
        env: str | type | Callable[[], gymnasium.Env] | gymnasium.Env,
        num_envs: int = 1,
        *,
        asynchronous: bool = False,
        gym_kwargs: dict | None = None,
        seed: int | None = None,
        context: str | None = None,
    ):
        if isinstance(num_envs, bool) or not isinstance(num_envs, int | np.integer) or num_envs < 1:
            raise ValueError(f"GymnasiumVectorEnv: num_envs must be a positive int, got {num_envs!r}")
        gym_kwargs = dict(gym_kwargs or {})
        make_env, env_id = self._factory(env, num_envs, asynchronous, gym_kwargs)
        fns = [functools.partial(_make_guarded, make_env, env_id, i) for i in range(num_envs)]
        if asynchronous:
            self.vector_env = AsyncVectorEnv(
                fns, autoreset_mode=AutoresetMode.SAME_STEP, context=context or _default_context()
            )
        else:
            self.vector_env = SyncVectorEnv(fns, autoreset_mode=AutoresetMode.SAME_STEP)
        try:
            gym_spec = self.vector_env.get_attr("spec")[0]
            # a factory around gymnasium.make: its registered id says more than the function's name
            if callable(env) and not isinstance(env, type | gymnasium.Env) and gym_spec is not None:
                env_id = gym_spec.id
            action_space, self.action_offset = _translate_action_space(
                self.vector_env.single_action_space, env_id
            )
            self.spec = EnvSpec(
                id=env_id,
                observation_space=_translate_observation_space(
                    self.vector_env.single_observation_space, env_id
                ),
                action_space=action_space,
                reward_names=("reward",),
                max_episode_steps=None if gym_spec is None else gym_spec.max_episode_steps,
            )
        except BaseException:
            self.vector_env.close()  # do not leave worker processes behind a refused env
            raise
        self.num_envs = int(num_envs)
        self._seed = seed
        self._steps: int | None = None  # step() calls since the last reset(); None before the first reset
        self._running_return = np.zeros(num_envs, np.float32)
        self._running_length = np.zeros(num_envs, np.int32)

    @staticmethod
    def _factory(env, num_envs: int, asynchronous: bool, gym_kwargs: dict) -> tuple[Callable, str]:
        """A picklable zero-argument factory for one copy, and the id to show in messages."""
        if isinstance(env, str):
            return functools.partial(_make_by_id, env, gym_kwargs), env
        if isinstance(env, gymnasium.Env):
            name = env.spec.id if env.spec is not None else type(env.unwrapped).__name__
            if num_envs != 1:
                raise ValueError(
                    f"GymnasiumVectorEnv got one gymnasium.Env instance ({name}) but num_envs={num_envs}: an instance "
                    "cannot be copied; pass its class or a zero-argument factory to run several copies"
                )
            if asynchronous:
                raise ValueError(
                    f"GymnasiumVectorEnv got a gymnasium.Env instance ({name}) with asynchronous=True: a worker process "
                    "would step a pickled copy, not your object; pass its class or a factory instead"
                )
            if gym_kwargs:
                raise ValueError(
                    f"GymnasiumVectorEnv: gym_kwargs {sorted(gym_kwargs)} cannot apply to an existing instance"
                )
            return functools.partial(_return, env), name
        if isinstance(env, type) and issubclass(env, gymnasium.Env):
            return functools.partial(_call, env, gym_kwargs), env.__qualname__
        if callable(env):
            return functools.partial(_call, env, gym_kwargs), getattr(env, "__qualname__", None) or repr(env)
        raise TypeError(
            "GymnasiumVectorEnv: env must be a Gymnasium id, a gymnasium.Env subclass or factory, or a gymnasium.Env "
            f"instance, got {type(env).__name__}"
        )

    # ------------------------------------------------------------------ metadata
    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def max_episode_steps(self) -> int | None:
        return self.spec.max_episode_steps

    @property
    def reward_names(self) -> tuple[str, ...]:
        return self.spec.reward_names

    def __repr__(self) -> str:
        kind = "async" if isinstance(self.vector_env, AsyncVectorEnv) else "sync"
        return f"GymnasiumVectorEnv({self.id!r}, num_envs={self.num_envs}, {kind})"

    # ------------------------------------------------------------------ protocol
    def reset(self, seed: int | None = None) -> np.ndarray:
        """Reset every copy (copy ``i`` seeded with ``seed + i``); returns ``obs float32[num_envs, ...]``."""
        if seed is None and self._steps is None:
            seed = self._seed
        obs, info = self.vector_env.reset(seed=seed)
        self._check_shapes(dict(info), "reset()")
        obs = np.asarray(obs, np.float32)
        self._steps = 0
        self._running_return[:] = 0.0
        self._running_length[:] = 0
        self._check_finite(obs, "reset()", "observations")
        return obs

    def step(self, actions) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        if self._steps is None:
            raise RuntimeError(f"{self!r}: call reset() before step()")
        actions = _check_actions(actions, self.spec.action_space, self.num_envs, f"Gymnasium env {self.id!r}")
        if isinstance(self.spec.action_space, Discrete):
            actions = actions + self.action_offset
        else:
            actions = actions.astype(self.vector_env.single_action_space.dtype)
        obs, reward, terminated, truncated, info = self.vector_env.step(actions)
        self._steps += 1
        obs = np.asarray(obs, np.float32)
        reward = np.asarray(reward, np.float32)
        terminated, truncated = np.asarray(terminated, bool), np.asarray(truncated, bool)
        done = terminated | truncated

        info = dict(info)
        if "final_info" in info:  # _check_shapes pops from it: do not edit Gymnasium's own dict
            info["final_info"] = dict(info["final_info"])
        where = f"step {self._steps} after reset()"
        self._check_shapes(info, where)
        final_obs = obs.copy()
        ended = info.pop("_final_obs", np.zeros(self.num_envs, bool))
        gym_final = info.pop("final_obs", None)
        for i in np.flatnonzero(ended):
            final_obs[i] = np.asarray(gym_final[i], np.float32)
        info["final_obs"] = final_obs

        self._check_finite(obs, where, "observations")
        self._check_finite(final_obs, where, "final observations (before auto-reset)")
        self._check_finite(reward, where, "rewards")

        ret, length = self._running_return + reward, self._running_length + 1
        info.update(episode_done=done, episode_return=ret, episode_length=length)
        self._running_return = np.where(done, 0.0, ret).astype(np.float32)
        self._running_length = np.where(done, 0, length).astype(np.int32)
        return obs, reward, terminated, truncated, info

    def _check_shapes(self, info: dict, where: str) -> None:
        messages = _pop_shape_errors(info)
        if messages:
            raise ValueError(
                f"Gymnasium env {self.id!r} returned observations of the wrong shape at {where}: "
                + "; ".join(messages)
            )

    def _check_finite(self, x: np.ndarray, where: str, what: str) -> None:
        bad = np.flatnonzero(~np.all(np.isfinite(x.reshape(self.num_envs, -1)), axis=1))
        if bad.size:
            raise ValueError(
                f"Gymnasium env {self.id!r} returned non-finite (NaN or inf) {what} at {where} in envs {bad.tolist()}"
            )

    def snapshot(self) -> tuple[bytes | None, str]:
        """The state of every copy and of the bridge's episode statistics as bytes, for a checkpoint — or
        ``(None, why)`` when a copy cannot be pickled (e.g. it holds a handle to an external simulator). Gymnasium
        has no general state API; pickling the env objects is as far as it allows: it restores an env exactly
        when its whole state lives in Python / NumPy objects (classic control, and any env whose simulator
        pickles), including each env's ``np_random``."""
        if self._steps is None:
            return None, "the env has not been reset"
        parts = self.vector_env.call("rlkit_snapshot")
        failed = [why for blob, why in parts if blob is None]
        if failed:
            return None, failed[0]
        mine = (self._steps, self._running_return.copy(), self._running_length.copy())
        return pickle.dumps(([blob for blob, _ in parts], mine)), ""

    def restore(self, blob: bytes) -> None:
        """Put every copy back into the state ``snapshot`` saved (same ``num_envs``)."""
        parts, (steps, ret, length) = pickle.loads(blob)
        if len(parts) != self.num_envs:
            raise ValueError(f"{self!r}: the snapshot holds {len(parts)} envs, not {self.num_envs}")
        # Gymnasium's call() passes the same arguments to every copy, set_attr() one value each: hand each
        # copy its bytes first, then let it unpickle them where it lives
        self.vector_env.set_attr("rlkit_pending_restore", list(parts))
        self.vector_env.call("rlkit_apply_restore")
        self._steps, self._running_return, self._running_length = steps, ret, length

    def render(self) -> np.ndarray:
        """One frame per copy, ``uint8[num_envs, H, W, 3]`` (make the env with ``gym_kwargs={"render_mode":
        "rgb_array"}``)."""
        if self.vector_env.render_mode != "rgb_array":
            raise ValueError(
                f"{self!r} was made with render_mode={self.vector_env.render_mode!r}; pass "
                "gym_kwargs={'render_mode': 'rgb_array'} to render frames"
            )
        return np.stack([np.asarray(f, np.uint8) for f in self.vector_env.render()])

    def close(self) -> None:
        self.vector_env.close()

    def __enter__(self) -> GymnasiumVectorEnv:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# ================================================================================================ rlkit → Gymnasium
def _to_gym_space(space: Space) -> gym_spaces.Space:
    if isinstance(space, Discrete):
        return gym_spaces.Discrete(space.n)
    return gym_spaces.Box(space.low.astype(np.float32), space.high.astype(np.float32), dtype=np.float32)


def _wrapper_chain(env: Environment):
    while True:
        yield env
        if not isinstance(env, Wrapper):
            return
        env = env.env


def _keys_from_seeds(seeds: Sequence[int]) -> jax.Array:
    """One PRNG key per non-negative integer seed (any size), the same for a seed whichever bridge asks.

    NumPy's ``SeedSequence`` hashes an arbitrary-size seed into well-mixed key words, which ``jax.random.key(seed)``
    cannot do for seeds past 64 bits (Gymnasium allows any non-negative int).
    """
    words = jax.random.key_data(jax.random.key(0)).shape[-1]
    data = np.stack([np.random.SeedSequence(int(s)).generate_state(words, np.uint32) for s in seeds])
    return jax.random.wrap_key_data(data)


def _check_exportable(env: Environment, params, what: str):
    if not isinstance(env, Environment):
        raise TypeError(
            f"{what} exports an envs.Environment (e.g. envs.make('pendulum')), got {type(env).__name__}"
        )
    if any(isinstance(e, AutoReset) for e in _wrapper_chain(env)):
        raise ValueError(
            f"{what}({env!r}): remove the AutoReset wrapper; a Gymnasium env is reset by its user, and "
            "to_gymnasium_vector adds its own AutoReset"
        )
    params = env._check_params(params)
    has_limit = any(isinstance(e, TimeLimit) for e in _wrapper_chain(env))
    max_steps = int(params.max_episode_steps) if has_limit else None
    return params, max_steps


def _render_support(env: Environment, params) -> bool:
    """Whether ``env.render`` is implemented and returns ``uint8[H, W, 3]`` (checked by tracing, no compute)."""

    def frame(key):
        return env.render(env.reset(key, params)[1], params)

    try:
        out = jax.eval_shape(frame, jax.random.key(0))
    except NotImplementedError:
        return False
    if out.dtype != jnp.uint8 or len(out.shape) != 3 or out.shape[-1] != 3:
        raise ValueError(f"{env!r}.render returns {out.dtype}{list(out.shape)}, expected uint8[H, W, 3]")
    return True


def _render_fps(params) -> int:
    # Our envs know their integration step, not a frame rate; one frame per env step is the natural speed.
    for name in ("dt", "tau"):
        dt = getattr(params, name, None)
        if isinstance(dt, int | float) and dt > 0:
            return max(1, round(1.0 / dt))
    return 30


class JaxToGymnasiumEnv(gymnasium.Env):
    """A JAX-native env behind Gymnasium's single-env API (see ``to_gymnasium``)."""

    def __init__(self, env: Environment, params=None, *, render_mode: str | None = None):
        self._env = env
        self._params, max_steps = _check_exportable(env, params, "to_gymnasium")
        spec = env.spec
        self._space = spec.action_space
        self._vector_reward = spec.num_reward_terms > 1
        self.observation_space = _to_gym_space(spec.observation_space)
        self.action_space = _to_gym_space(spec.action_space)
        renders = _render_support(env, self._params)
        self.metadata = {
            "render_modes": ["rgb_array"] if renders else [],
            "render_fps": _render_fps(self._params),
        }
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"to_gymnasium({env!r}): render_mode={render_mode!r} is not supported; this env supports "
                f"{self.metadata['render_modes'] or 'no render mode'}"
            )
        self.render_mode = render_mode
        # A spec lets gymnasium.make / check_env re-create the env (e.g. with another render_mode); the TimeLimit
        # that gymnasium.make adds from max_episode_steps truncates on the same step as ours, so it is harmless.
        self.spec = GymEnvSpec(
            id=f"rlkit/{spec.id}",
            entry_point=functools.partial(to_gymnasium, env, params),
            max_episode_steps=max_steps,
            nondeterministic=False,
        )

        def reset(key, params):
            key, sub = jax.random.split(key)
            obs, state = env.reset(sub, params)
            return key, obs, state

        def step(key, state, action, params):
            key, sub = jax.random.split(key)
            obs, state, reward, terminated, truncated, info = env.step(sub, state, action, params)
            return key, obs, state, reward, terminated, truncated, info

        self._reset_fn, self._step_fn = jax.jit(reset), jax.jit(step)
        self._render_fn = jax.jit(env.render) if renders else None
        self._key = None
        self._state = None

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """``seed`` makes the episode (reset and every step) deterministic; ``reset()`` without a seed continues the
        PRNG chain of the last episode, or starts from Gymnasium's ``np_random`` on the first call."""
        super().reset(seed=seed)
        if options:
            raise ValueError(f"{self._env!r}: reset options are not supported, got {sorted(options)}")
        if seed is not None:
            self._key = _keys_from_seeds([seed])[0]
        elif self._key is None:
            self._key = _keys_from_seeds([int(self.np_random.integers(2**63))])[0]
        self._key, obs, self._state = self._reset_fn(self._key, self._params)
        return np.array(obs, np.float32), {}

    def step(self, action):
        if self._state is None:
            raise gymnasium.error.ResetNeeded(f"{self._env!r}: call reset() before step()")
        action = _check_actions(action, self._space, None, f"{self._env.spec.id} (to_gymnasium)")
        if isinstance(self._space, Discrete):
            action = action.astype(np.int32)
        self._key, obs, self._state, *rest = self._step_fn(self._key, self._state, action, self._params)
        obs, reward, terminated, truncated, info = jax.device_get((obs, *rest))  # one device→host transfer
        info = jax.tree.map(np.array, info)  # fresh, writable arrays: users keep what we return
        if self._vector_reward:
            info["reward_terms"] = np.array(reward, np.float32)
            reward = np.sum(reward)
        return np.array(obs, np.float32), float(reward), bool(terminated), bool(truncated), info

    def render(self):
        if self.render_mode is None:
            gymnasium.logger.warn(
                f"{self._env!r}: render() called without a render_mode; make it with render_mode='rgb_array'"
            )
            return None
        if self._state is None:
            raise gymnasium.error.ResetNeeded(f"{self._env!r}: call reset() before render()")
        return np.array(self._render_fn(self._state, self._params), np.uint8)


def to_gymnasium(env: Environment, params=None, *, render_mode: str | None = None) -> gymnasium.Env:
    """``env`` as a ``gymnasium.Env``.

    ``reset`` / ``step`` call ``env``'s pure functions, jitted once here; the PRNG key and state live inside.
    Observations are ``float32`` NumPy arrays, the reward a Python float — for a vector-reward env the (unweighted)
    sum of its terms, with the terms in ``info["reward_terms"]`` — and ``terminated`` / ``truncated`` Python bools
    (``truncated`` comes from the ``TimeLimit`` that ``envs.make`` adds; ``spec.max_episode_steps`` says when).
    ``render_mode="rgb_array"`` makes ``render()`` return ``env.render(state)`` as ``uint8[H, W, 3]``.
    """
    return JaxToGymnasiumEnv(env, params, render_mode=render_mode)


class JaxToGymnasiumVectorEnv(gymnasium.vector.VectorEnv):
    """A batch of a JAX-native env behind Gymnasium's vector API (see ``to_gymnasium_vector``)."""

    def __init__(self, env: Environment, num_envs: int, params=None):
        if isinstance(num_envs, bool) or not isinstance(num_envs, int | np.integer) or num_envs < 1:
            raise ValueError(f"to_gymnasium_vector: num_envs must be a positive int, got {num_envs!r}")
        self._params, max_steps = _check_exportable(env, params, "to_gymnasium_vector")
        self._env, self.num_envs = env, int(num_envs)
        spec = env.spec
        self._space = spec.action_space
        self._vector_reward = spec.num_reward_terms > 1
        self.single_observation_space = _to_gym_space(spec.observation_space)
        self.single_action_space = _to_gym_space(spec.action_space)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.metadata = {"autoreset_mode": AutoresetMode.SAME_STEP, "render_modes": []}
        self.spec = GymEnvSpec(id=f"rlkit/{spec.id}", max_episode_steps=max_steps, nondeterministic=False)
        auto = AutoReset(env)

        def reset(keys, params):
            keys, subs = jax.vmap(jax.random.split, out_axes=1)(keys)
            obs, state = jax.vmap(auto.reset, in_axes=(0, None))(subs, params)
            return keys, obs, state

        def step(keys, state, actions, params):
            keys, subs = jax.vmap(jax.random.split, out_axes=1)(keys)
            return keys, *jax.vmap(auto.step, in_axes=(0, 0, 0, None))(subs, state, actions, params)

        self._reset_fn, self._step_fn = jax.jit(reset), jax.jit(step)
        self._keys = None
        self._state = None

    def reset(self, *, seed: int | Sequence[int] | None = None, options: dict | None = None):
        """``seed=s`` seeds env ``i`` with ``s + i`` (Gymnasium's rule; env 0 then matches ``to_gymnasium``'s
        ``reset(seed=s)``); a list gives one seed per env; ``None`` continues the PRNG chains."""
        super().reset(seed=seed if isinstance(seed, int | np.integer) else None)
        if options:
            raise ValueError(
                f"to_gymnasium_vector({self._env!r}): reset options are not supported, got {sorted(options)}"
            )
        if seed is not None:
            seeds = (
                [int(seed) + i for i in range(self.num_envs)]
                if isinstance(seed, int | np.integer)
                else list(seed)
            )
            if len(seeds) != self.num_envs:
                raise ValueError(f"to_gymnasium_vector: got {len(seeds)} seeds for {self.num_envs} envs")
            self._keys = _keys_from_seeds(seeds)
        elif self._keys is None:
            start = int(self.np_random.integers(2**63))
            self._keys = _keys_from_seeds([start + i for i in range(self.num_envs)])
        self._keys, obs, self._state = self._reset_fn(self._keys, self._params)
        return np.array(obs, np.float32), {}

    def step(self, actions):
        if self._state is None:
            raise gymnasium.error.ResetNeeded(
                f"to_gymnasium_vector({self._env!r}): call reset() before step()"
            )
        owner = f"{self._env.spec.id} (to_gymnasium_vector)"
        actions = _check_actions(actions, self._space, self.num_envs, owner)
        if isinstance(self._space, Discrete):
            actions = actions.astype(np.int32)
        self._keys, obs, self._state, *rest = self._step_fn(self._keys, self._state, actions, self._params)
        obs, reward, terminated, truncated, info = jax.device_get((obs, *rest))
        info = jax.tree.map(np.array, info)
        if self._vector_reward:
            info["reward_terms"] = np.array(reward, np.float32)
            reward = np.sum(reward, axis=-1)
        return (
            np.array(obs, np.float32),
            np.array(reward, np.float32),
            np.array(terminated, bool),
            np.array(truncated, bool),
            info,
        )


def to_gymnasium_vector(env: Environment, num_envs: int, params=None) -> gymnasium.vector.VectorEnv:
    """``num_envs`` copies of ``env`` as a ``gymnasium.vector.VectorEnv``, batched with ``jax.vmap``.

    Same-step auto-reset (``metadata["autoreset_mode"]`` is ``AutoresetMode.SAME_STEP``) through
    ``wrappers.AutoReset``: ``info["final_obs"]`` is a dense ``float32[num_envs, ...]`` array, the pre-reset
    observation where an episode ended and ``obs`` elsewhere (not Gymnasium's object array). Rewards are
    ``float32[num_envs]`` (summed over terms for a vector-reward env, the terms in ``info["reward_terms"]``).
    No rendering: render states with ``jax.vmap(env.render)`` on the device instead.
    """
    return JaxToGymnasiumVectorEnv(env, num_envs, params)
