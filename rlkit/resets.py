"""Expert-state resets: with probability ``p`` an episode starts from a state on an expert trajectory instead of the
env's own initial distribution ("Inverse Reinforcement Learning without Reinforcement Learning", Swamy et al.
2023; reference code ``gkswamy98/fast_irl``, ``learners/gym_wrappers.py`` ``ResetWrapper``, ``alpha = 0.5``).
It changes only where episodes start, so any learner (GAIL, AIRL, SAC, PPO …) trains on it unchanged.

Two forms, one rule (a coin with probability ``p``, then a uniformly random step of all the demonstrations):

- **JAX-native envs**: ``ExpertResets(env, store, p)`` wraps a time-limited env (``envs.make(id)``) and restores the
  env state ``rlkit demos collect`` stored before each action (``store.extras["env_state"]``). Place it directly
  around the env the demos were collected on and inside the rollout stack, ``wrap_for_rollout(ExpertResets(env,
  store, p))``: ``AutoReset`` starts every later episode through its ``reset_where``, so every episode of a
  training chunk draws its own coin. ``p`` may be traced (a swept config field): the choice is a ``jnp.where``
  over the state pytree, both branches are always computed, and nothing branches on it in Python.
- **Gymnasium MuJoCo envs** (the host loop): ``GymnasiumExpertResets(gym_env, store, p)`` is a ``gymnasium.Wrapper``
  that, after the env's own ``reset()``, calls ``env.unwrapped.set_state(qpos, qvel)`` with a stored simulator
  state (``rlkit demos collect`` stores ``qpos``, ``qvel``, ``time`` and ``qacc_warmstart``, as float64 bit patterns,
  for envs that have ``set_state``) and returns ``env.unwrapped._get_obs()``. It lives inside each sub-env, because a Gymnasium vector
  env auto-resets its sub-envs itself; ``gymnasium_make_env`` builds the ``make_env(n)`` that
  ``rlkit.host_loop.train_host`` takes (pass a plain one as its ``make_eval_env``).

**The time limit's clock.** A reset into step ``t`` of an expert episode keeps the expert's elapsed time ``t``
(``keep_elapsed=True``, the default): the episode truncates after ``H − t`` more steps, so the learner plays the
rest of the expert's horizon-``H`` episode from the expert's time-``t`` state. This is fast_irl's choice
(``ResetWrapper.reset`` sets ``self.t = t`` and ends the episode at ``max_t``; ``AntMazeResetWrapper`` likewise
keeps ``t`` against ``T = 700``), and it is what the paper's argument needs: the reset distribution is the expert's
state distribution at each time step of the *same* finite-horizon problem, and states beyond step ``H`` — which
a fresh budget of ``H`` steps from a late expert state would reach, and which no expert ever visited — never
appear. For JAX envs it is also plain restoration: the stored ``TimeLimitState`` holds ``elapsed = t``.
``keep_elapsed=False`` restarts the clock at 0 (a fresh budget of ``H`` steps; for time-unaware, infinite-horizon
uses). Truncation is not termination, so either way a learner still bootstraps there.

Wrong input is one ``rlkit.configs.ConfigError`` line before anything compiles: ``p`` outside ``[0, 1]``,
demonstrations without stored states, states of another env (their structure or shapes do not match the env's),
and a Gymnasium env that cannot restore a state.

Deliberately not here: resets to states of a learner's own replay buffer, choosing the reset step by anything
but uniform over demonstration steps, and wiring into the trainers (a learner's ``make_trainer`` wraps its env
with ``ExpertResets``; its evaluation must use the plain env).
"""

from __future__ import annotations

import functools
import os
from typing import Any

import gymnasium
import jax
import jax.numpy as jnp
import numpy as np

from envs.core import Environment
from envs.wrappers import TimeLimitState, Wrapper
from rlkit.buffers.datasets import ENV_STATE_KEY, env_state_from_tree, load_demos
from rlkit.buffers.demos import DemoStore
from rlkit.buffers.specs import path_name
from rlkit.configs import ConfigError

# fold_in salt of the reset key for the coin and the step: the env's own reset keeps the key itself, so p = 0
# is the env's reset bit for bit
_SALT = 0x5EED
SIMULATOR_FIELDS = ("qpos", "qvel", "time", "qacc_warmstart")
"""What ``rlkit demos collect`` stores per step for a Gymnasium env with ``set_state`` (MuJoCo), in
``extras["env_state"]``; ``qacc_warmstart`` (the constraint solver's warm start) makes the next step bit-exact."""

_HOW_TO_COLLECT = (
    "collect them with `rlkit demos collect --agent-file <agent.rlkit> --out <dir>` on a JAX-native env (e.g. "
    "--env pendulum), which stores the env state before every action in extras['env_state']"
)


def check_probability(p: Any, what: str = "expert reset probability p") -> Any:
    """``p`` itself when it lies in ``[0, 1]`` (a number or a concrete array, checked elementwise); a traced value
    (a swept config field inside a compiled program) is returned unchecked — its sweep is the caller's to check."""
    if isinstance(p, jax.core.Tracer):
        return p
    if isinstance(p, bool | np.bool_) or isinstance(p, str):
        raise ConfigError(f"{what} must be a number in [0, 1], got {p!r}")
    try:
        values = np.asarray(p, np.float64)
    except (TypeError, ValueError):
        raise ConfigError(f"{what} must be a number in [0, 1], got {p!r}") from None
    if values.size == 0 or not np.all((values >= 0) & (values <= 1)):  # NaN fails too
        raise ConfigError(f"{what} must lie in [0, 1], got {p!r}")
    return p


def _as_store(store: Any) -> tuple[DemoStore, str]:
    """A ``DemoStore`` (given, or loaded from a path ``load_demos`` accepts) and how to name it in messages."""
    if isinstance(store, str | os.PathLike):
        return load_demos(store), f"demonstrations {os.fspath(store)}"
    if not isinstance(store, DemoStore):
        raise ConfigError(
            f"expert resets need demonstrations (an rlkit.buffers.DemoStore or a path load_demos reads), got "
            f"{type(store).__name__}"
        )
    return store, "demonstrations"


def _stored_states(store: DemoStore, what: str, env_id: str) -> Any:
    extras = store.extras
    if not isinstance(extras, dict) or ENV_STATE_KEY not in extras:
        raise ConfigError(
            f"{what} hold no env states (extras['{ENV_STATE_KEY}']), so {env_id} cannot be reset to them; "
            f"{_HOW_TO_COLLECT}"
        )
    return extras[ENV_STATE_KEY]


def _expert_observations(store: DemoStore) -> np.ndarray:
    """The observation of every step (``[N, ...]``, the one its stored state shows): row ``i + episode(i)``."""
    steps = np.arange(store.num_steps)
    return np.asarray(store.observations)[steps + np.asarray(store.step_episode)]


def _elapsed_in_episode(store: DemoStore) -> np.ndarray:
    """``int64[N]``: each step's index within its episode (the time limit's clock at that step)."""
    return np.arange(store.num_steps) - np.asarray(store.episode_starts)[np.asarray(store.step_episode)]


# ================================================================================================ JAX envs
def _leaf_layout(template: Any) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """``{field path: (per-step shape, dtype)}`` of a state as ``env_state_to_tree`` stores it (typed keys as
    their key data, uint32)."""
    from flax import serialization

    out = {}
    tree = serialization.to_state_dict(template)
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            data = jax.eval_shape(jax.random.key_data, leaf)
            out[path_name(path)] = (tuple(data.shape), np.dtype(data.dtype))
        else:
            out[path_name(path)] = (tuple(leaf.shape), np.dtype(leaf.dtype))
    return out


def _check_state_layout(stored: Any, template: Any, what: str, env: Environment) -> None:
    """One ConfigError line unless the stored states have the fields, shapes and dtypes of ``env``'s state."""
    want = _leaf_layout(template)
    if not isinstance(stored, dict):
        raise ConfigError(
            f"{what}: the stored env states are one array, but {env!r}'s state has fields {sorted(want)}"
        )
    have = {
        path_name(p): (tuple(np.shape(x)[1:]), np.dtype(x.dtype))
        for p, x in jax.tree_util.tree_flatten_with_path(stored)[0]
    }
    if set(have) >= {"qpos", "qvel"} and set(have) <= set(SIMULATOR_FIELDS):
        raise ConfigError(
            f"{what} hold MuJoCo simulator states ({', '.join(sorted(have))}) from a Gymnasium env, not states of "
            f"{env!r}: use rlkit.resets.GymnasiumExpertResets on that Gymnasium env, or {_HOW_TO_COLLECT}"
        )
    missing, extra = sorted(set(want) - set(have)), sorted(set(have) - set(want))
    if missing or extra:
        raise ConfigError(
            f"{what}: the stored env states do not match the state of {env!r} (from another env or wrapper "
            f"stack?): missing fields {missing}, unexpected fields {extra}; wrap the env the demonstrations "
            "were collected on (envs.make(<id>)) and nothing between"
        )
    for name, (shape, dtype) in want.items():
        if have[name] != (shape, dtype):
            raise ConfigError(
                f"{what}: stored env state field {name!r} is {have[name][1]} {have[name][0]} per step, but "
                f"{env!r}'s is {dtype} {shape} (demonstrations of another env?)"
            )


def _restart_clocks(state: Any) -> Any:
    """``state`` with every ``TimeLimitState.elapsed`` set to 0 (a fresh episode budget)."""

    def fresh(s):
        if isinstance(s, TimeLimitState):
            return s.replace(env_state=_restart_clocks(s.env_state), elapsed=jnp.zeros_like(s.elapsed))
        return s

    return jax.tree.map(fresh, state, is_leaf=lambda s: isinstance(s, TimeLimitState))


def _select(use: jax.Array, a: Any, b: Any) -> Any:
    return jax.tree.map(lambda x, y: jnp.where(use, x, y), a, b)


class ExpertResets(Wrapper):
    """With probability ``p`` a reset (and every ``AutoReset`` reset) restores the env state of a uniformly random
    step of the demonstrations and returns that step's stored observation; otherwise it is the env's own reset
    (the very same: it gets the same key, so ``p = 0`` changes nothing, bit for bit).

    Args:
        env: the env the demonstrations were collected on, as ``envs.make(id)`` made it (time-limited); stateless
            wrappers that pass the state through (``ClipAction``, ``RescaleAction``) may sit in between.
        store: a ``DemoStore`` whose ``extras["env_state"]`` holds the state before each action (``rlkit demos
            collect`` on a JAX-native env writes it), or a path ``rlkit.buffers.datasets.load_demos`` reads.
        p: the reset probability in ``[0, 1]``; a Python number, or a traced value (a swept config field, when the
            wrapper is built inside the traced function: ``env=lambda cfg: ExpertResets(base, store, cfg.p)``).
        keep_elapsed: keep the expert's elapsed time in the restored state (the episode truncates ``H − t``
            steps after a reset into step ``t``, as fast_irl does) or restart the clock at 0 (see the module
            docstring).

    The demonstration states and observations are held by the wrapper and become constants of the compiled
    program (``N`` steps × the state's size); the returned observation is the stored one, which is the
    observation the env computed from that state when the demonstration was recorded.
    """

    def __init__(self, env: Environment, store: Any, p: Any, *, keep_elapsed: bool = True):
        super().__init__(env)
        self.p = check_probability(p)
        store, what = _as_store(store)
        stored = _stored_states(store, what, repr(env))
        params = env.default_params
        obs_shape, template = jax.eval_shape(lambda k: env.reset(k, params), jax.random.key(0))
        _check_state_layout(stored, template, what, env)
        obs = _expert_observations(store)
        if obs.shape[1:] != tuple(obs_shape.shape):
            raise ConfigError(
                f"{what}: observations of shape {obs.shape[1:]}, but {env!r} observes {tuple(obs_shape.shape)}"
            )
        # a concrete state of the env for env_state_from_tree (it rebuilds typed PRNG keys with their impl)
        concrete = env.reset(jax.random.key(0), params)[1]
        states = env_state_from_tree(stored, concrete)
        self._states = states if keep_elapsed else _restart_clocks(states)
        self._obs = jnp.asarray(obs, obs_shape.dtype)
        self._num_steps = store.num_steps
        self.keep_elapsed = keep_elapsed

    def evaluation_env(self) -> Environment:
        """What evaluation plays: the env itself, its own initial states (``rlkit.rollout.evaluation_env``)."""
        return self.env

    @property
    def num_expert_states(self) -> int:
        return self._num_steps

    def __repr__(self) -> str:
        return f"ExpertResets({self.env!r}, p={self.p}, states={self._num_steps})"

    def expert_state(self, index: jax.Array) -> tuple[jax.Array, Any]:
        """``(obs, state)`` of demonstration step ``index`` (global over episodes), what a reset there returns."""
        return self._obs[index], jax.tree.map(lambda x: x[index], self._states)

    def _draw(self, key: jax.Array) -> tuple[jax.Array, jax.Array, Any]:
        """``(use, obs, state)``: the coin (``bool[]``, true with probability p) and a uniformly drawn expert step."""
        coin_key, pick_key = jax.random.split(jax.random.fold_in(key, _SALT))
        # uniform is in [0, 1): p = 0 never and p = 1 always takes the expert state
        use = jax.random.uniform(coin_key, (), jnp.float32) < jnp.asarray(self.p, jnp.float32)
        index = jax.random.randint(pick_key, (), 0, self._num_steps, dtype=jnp.int32)
        return (use, *self.expert_state(index))

    def _reset(self, key, params):
        obs, state = self.env.reset(key, params)
        use, expert_obs, expert = self._draw(key)
        return jnp.where(use, expert_obs, obs), _select(use, expert, state)

    def _reset_where(self, key, state, done, params):
        obs, state = self.env.reset_where(key, state, done, params)  # the env's own, selected where done
        use, expert_obs, expert = self._draw(key)
        use = use & done
        return jnp.where(use, expert_obs, obs), _select(use, expert, state)


# ================================================================================================ Gymnasium envs
def simulator_state(env: gymnasium.Env) -> dict[str, np.ndarray] | None:
    """The MuJoCo simulator state of ``env`` (``qpos``, ``qvel``, ``time``, ``qacc_warmstart``; copies) when its
    unwrapped env can restore one (``set_state`` and ``data.qpos``/``data.qvel``, as Gymnasium's MuJoCo envs),
    else ``None``."""
    if restore_problem(env) is not None:
        return None
    data = env.unwrapped.data
    out = {
        "qpos": np.array(data.qpos, np.float64),
        "qvel": np.array(data.qvel, np.float64),
        "time": np.asarray(data.time, np.float64),
    }
    if getattr(data, "qacc_warmstart", None) is not None:
        out["qacc_warmstart"] = np.array(data.qacc_warmstart, np.float64)
    return out


def float64_bits(x: Any) -> np.ndarray:
    """float64 values as their bit patterns, ``uint32[..., 2]``: a ``DemoStore`` lives on the device, where arrays
    are float32 unless x64 is on, and a simulator state rounded to float32 no longer steps like the original."""
    return np.ascontiguousarray(x, np.float64)[..., None].view(np.uint32)


def _from_bits(x: Any) -> np.ndarray:
    x = np.asarray(x)
    if x.dtype == np.uint32 and x.shape[-1:] == (2,):
        return np.ascontiguousarray(x).view(np.float64)[..., 0]
    return np.asarray(x, np.float64)  # stored as floats by someone else: taken as they are


def stack_simulator_states(states: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Per-step ``simulator_state`` dicts as the arrays ``rlkit demos collect`` stores in ``extras["env_state"]``:
    each field ``[N, ...]`` as float64 bit patterns (``float64_bits``), so a restored state is bit-exact."""
    return {k: float64_bits(np.stack([s[k] for s in states])) for k in states[0]}


def restore_problem(env: gymnasium.Env) -> str | None:
    """Why ``env`` cannot be reset to a stored simulator state (``None`` when it can)."""
    u = getattr(env, "unwrapped", env)
    data = getattr(u, "data", None)
    if not callable(getattr(u, "set_state", None)):
        return "it has no unwrapped.set_state(qpos, qvel)"
    if data is None or getattr(data, "qpos", None) is None or getattr(data, "qvel", None) is None:
        return "its unwrapped env has no data.qpos / data.qvel (a MuJoCo simulator)"
    if not callable(getattr(u, "_get_obs", None)):
        return "it has no unwrapped._get_obs() to observe a restored state"
    return None


def _env_name(env: gymnasium.Env) -> str:
    spec = getattr(env, "spec", None)
    return spec.id if spec is not None else type(env.unwrapped).__name__


def gymnasium_reset_states(store: Any) -> dict[str, np.ndarray]:
    """The host arrays a ``GymnasiumExpertResets`` restores, from demonstrations ``rlkit demos collect`` wrote on a
    Gymnasium MuJoCo env: ``qpos [N, nq]``, ``qvel [N, nv]``, ``time [N]``, ``qacc_warmstart [N, nv]`` (when
    stored), ``elapsed int64[N]`` (the step within its episode) and ``obs [N, ...]`` (the stored observations).
    Small and NumPy-only, so it pickles cheaply into async workers."""
    store, what = _as_store(store)
    stored = _stored_states(store, what, "a Gymnasium env")
    if not isinstance(stored, dict) or not {"qpos", "qvel"} <= set(stored):
        fields = sorted(stored) if isinstance(stored, dict) else "one array"
        raise ConfigError(
            f"{what}: the stored env states ({fields}) are not MuJoCo simulator states (qpos, qvel); collect "
            "them with `rlkit demos collect --env gymnasium:<MuJoCo id>` (or use rlkit.resets.ExpertResets for "
            "states of a JAX-native env)"
        )
    out = {k: _from_bits(stored[k]) for k in SIMULATOR_FIELDS if k in stored}
    out["time"] = out.get("time", np.zeros(store.num_steps))
    out["elapsed"] = _elapsed_in_episode(store)
    out["obs"] = _expert_observations(store)
    return out


def _find_time_limit(env: gymnasium.Env) -> gymnasium.wrappers.TimeLimit | None:
    node = env
    while isinstance(node, gymnasium.Wrapper):
        if isinstance(node, gymnasium.wrappers.TimeLimit):
            return node
        node = node.env
    return None


class GymnasiumExpertResets(gymnasium.Wrapper):
    """With probability ``p``, ``reset()`` is followed by ``env.unwrapped.set_state(qpos, qvel)`` with the state of a
    uniformly random demonstration step (and its ``time`` / ``qacc_warmstart``), and returns
    ``env.unwrapped._get_obs()`` of that state; otherwise it is the env's own reset, untouched.

    ``states``: demonstrations (a ``DemoStore`` or a path, see ``gymnasium_reset_states``) or the dict
    ``gymnasium_reset_states`` returns. ``p`` is also the attribute ``expert_reset_p``, so a vector env can set
    it per sub-env (``vector_env.set_attr("expert_reset_p", [...])``: one per run of a sweep). The coin and the
    step come from the wrapper's own generator, re-seeded by every ``reset(seed=s)`` (from ``s``) and continued by
    the vector env's seedless auto-resets, so a seeded run is reproducible. With ``keep_elapsed`` (the default) the
    time limit below it (``gymnasium.make``'s ``TimeLimit``) continues from the expert step's index in its episode,
    as the JAX ``ExpertResets`` does. Wrap ``gymnasium.make(id)`` (its ``TimeLimit`` is then inside).
    """

    def __init__(
        self,
        env: gymnasium.Env,
        states: Any,
        p: float,
        *,
        keep_elapsed: bool = True,
        seed: int | None = None,
    ):
        super().__init__(env)
        problem = restore_problem(env)
        if problem is not None:
            raise ConfigError(
                f"Gymnasium env {_env_name(env)!r} cannot be reset to expert states: {problem}; expert resets on "
                "a Gymnasium env need env.unwrapped.set_state(qpos, qvel) and _get_obs() (MuJoCo envs have "
                "them), or use a JAX-native env with rlkit.resets.ExpertResets"
            )
        self.expert_reset_p = float(check_probability(p))
        if not (isinstance(states, dict) and "elapsed" in states):
            states = gymnasium_reset_states(states)
        model = env.unwrapped.model
        for name, width in (("qpos", model.nq), ("qvel", model.nv)):
            if states[name].shape[1:] != (width,):
                raise ConfigError(
                    f"Gymnasium env {_env_name(env)!r} has {name} of size {width}, but the stored states' {name} "
                    f"are {states[name].shape[1:]} per step (demonstrations of another env?)"
                )
        self._states = states
        self._num_steps = int(states["qpos"].shape[0])
        self._keep_elapsed = keep_elapsed
        self._time_limit = _find_time_limit(env)
        self._rng = np.random.default_rng(seed)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        obs, info = self.env.reset(seed=seed, options=options)
        if seed is not None:
            self._rng = np.random.default_rng(np.random.SeedSequence([int(seed), _SALT]))
        p = check_probability(self.expert_reset_p)  # it may have been set per sub-env since
        # both draws every reset, whatever the coin says: the stream does not depend on p
        coin, index = self._rng.random(), int(self._rng.integers(self._num_steps))
        if coin < p:
            obs = self.restore(index)
        return obs, info

    def restore(self, index: int) -> np.ndarray:
        """Put the simulator into demonstration step ``index``'s state; returns its observation."""
        u, s = self.env.unwrapped, self._states
        if (
            "qacc_warmstart" in s
        ):  # before set_state: its mj_forward warm-starts the constraint solver from it
            u.data.qacc_warmstart[:] = s["qacc_warmstart"][index]
        u.set_state(s["qpos"][index], s["qvel"][index])
        u.data.time = float(s["time"][index])
        # Gymnasium's MuJoCo step ends with mj_rnePostConstraint (cfrc_ext, in some observations); mj_forward
        # alone leaves those stale
        _rne_post_constraint(u)
        if self._keep_elapsed and self._time_limit is not None:
            self._time_limit._elapsed_steps = int(s["elapsed"][index])
        return u._get_obs()


def _rne_post_constraint(u) -> None:
    try:
        import mujoco
    except ImportError:  # pragma: no cover - only envs that have set_state get here, and those are MuJoCo's
        return
    if isinstance(getattr(u, "model", None), mujoco.MjModel):
        mujoco.mj_rnePostConstraint(u.model, u.data)


def _make_reset_env(
    gym_id: str, gym_kwargs: dict, states: dict, p: float, keep_elapsed: bool
) -> gymnasium.Env:
    # module level (not a closure) so that AsyncVectorEnv pickles it by reference for its workers
    return GymnasiumExpertResets(gymnasium.make(gym_id, **gym_kwargs), states, p, keep_elapsed=keep_elapsed)


def gymnasium_make_env(
    env_id: str,
    store: Any,
    p: float | Any,
    *,
    keep_elapsed: bool = True,
    asynchronous: bool = False,
    gym_kwargs: dict | None = None,
):
    """``make_env(n) -> GymnasiumVectorEnv`` for ``rlkit.host_loop.train_host``: ``n`` copies of ``gymnasium.make
    (env_id)``, each inside a ``GymnasiumExpertResets``. ``p``: one probability, or one per run (a sequence of
    ``R``; copies are split evenly over the runs in order, as ``train_host`` lays them out). Checked here, once, in
    this process (a probe env is made and closed): ``p``, the stored states, and that the env can restore them —
    every refusal is one ConfigError line, before any worker starts. Evaluate on plain envs
    (``train_host(..., make_eval_env=lambda n: GymnasiumVectorEnv(env_id, n))``)."""
    from envs.gymnasium_bridge import GymnasiumVectorEnv
    from envs.registry import GYMNASIUM_PREFIX

    gym_id = env_id[len(GYMNASIUM_PREFIX) :] if env_id.startswith(GYMNASIUM_PREFIX) else env_id
    gym_kwargs = dict(gym_kwargs or {})
    per_run = np.atleast_1d(np.asarray(check_probability(p), np.float64))
    if per_run.ndim != 1:
        raise ConfigError(
            f"expert reset probability p must be one number or one per run, got shape {per_run.shape}"
        )
    states = gymnasium_reset_states(store)
    probe = gymnasium.make(gym_id, **gym_kwargs)
    try:
        GymnasiumExpertResets(probe, states, float(per_run[0]), keep_elapsed=keep_elapsed)
    finally:
        probe.close()
    factory = functools.partial(_make_reset_env, gym_id, gym_kwargs, states, float(per_run[0]), keep_elapsed)

    def make_env(n: int) -> GymnasiumVectorEnv:
        if n % per_run.size:
            raise ConfigError(
                f"{n} sub-envs cannot be split evenly over {per_run.size} runs' reset probabilities"
            )
        vec = GymnasiumVectorEnv(factory, n, asynchronous=asynchronous)
        if per_run.size > 1:
            vec.vector_env.set_attr(
                "expert_reset_p", [float(x) for x in np.repeat(per_run, n // per_run.size)]
            )
        return vec

    return make_env


__all__ = [
    "ExpertResets",
    "GymnasiumExpertResets",
    "check_probability",
    "gymnasium_make_env",
    "gymnasium_reset_states",
    "restore_problem",
    "simulator_state",
    "stack_simulator_states",
]
