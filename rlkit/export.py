"""Export a trained agent to one file and load it into a new env with a compatible spec.

The file (``.rlkit``, a msgpack blob written by ``flax.serialization``) holds the agent's name, its config as
JSON, the spec it was trained on (observation / action spaces and reward names) and its full state's parameters.
``load_agent(path, spec)`` rebuilds the agent from the config (so the networks are the same), restores the
state into a freshly initialised one (so every array has the right structure), and refuses a spec whose
observation or action shapes differ, naming both — three lines from file to acting in another env:

    agent, state = load_agent("pendulum_sac.rlkit", env.spec)
    action = agent.act(state, obs, key, "deterministic")

Deliberately not here: the optimizer-free "inference only" format and ONNX / TF export.
"""

from __future__ import annotations

import dataclasses
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
from flax import serialization

from envs.core import EnvSpec
from envs.spaces import Box, Discrete
from rlkit import configs, running_stats
from rlkit.running_stats import RunningMeanStd

FORMAT = "rlkit-agent-v1"


def _registry() -> dict:
    """name → (config class, make_agent), from the one agent registry (``rlkit.registry``)."""
    from rlkit import registry

    return {name: (e.config_cls, e.make_agent) for name, e in registry.entries().items()}


def _space_dict(space) -> dict:
    if isinstance(space, Discrete):
        return {"type": "Discrete", "n": int(space.n)}
    return {"type": "Box", "shape": list(space.shape), "low": space.low.tolist(), "high": space.high.tolist()}


def _space_from_dict(d: dict):
    if d["type"] == "Discrete":
        return Discrete(d["n"])
    return Box(
        np.asarray(d["low"], np.float32).reshape(d["shape"]),
        np.asarray(d["high"], np.float32).reshape(d["shape"]),
    )


def export_agent(
    path: str | os.PathLike,
    name: str,
    config,
    state,
    spec: EnvSpec,
    *,
    obs_stats=None,
    obs_clip: float = 10.0,
) -> str:
    """Write ``state`` (one run: index a vmapped state first) with the config and spec that rebuild it.

    ``obs_stats`` (a ``RunningMeanStd``) is the observation normalizer a training loop kept outside the agent
    (PPO's ``normalize_obs``); the loaded agent then normalizes raw observations itself before acting."""
    if name not in _registry():
        raise ValueError(f"unknown agent {name!r}; exportable agents: {sorted(_registry())}")
    header = {
        "format": FORMAT,
        "agent": name,
        "config": configs.to_dict(config),
        "spec": {
            "id": spec.id,
            "observation_space": _space_dict(spec.observation_space),
            "action_space": _space_dict(spec.action_space),
            "reward_names": list(spec.reward_names),
        },
        "obs_clip": obs_clip if obs_stats is not None else None,
    }
    state = jax.tree.map(
        lambda x: jax.random.key_data(x) if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key) else x, state
    )
    payload = {"header": json.dumps(header), "state": serialization.to_state_dict(jax.device_get(state))}
    if obs_stats is not None:
        payload["obs_stats"] = {k: np.asarray(v) for k, v in serialization.to_state_dict(obs_stats).items()}
    blob = serialization.msgpack_serialize(payload)
    tmp = f"{path}.tmp"
    with open(tmp, "wb") as f:
        f.write(blob)
    os.replace(tmp, path)  # never leave a half-written file where a good one was
    return str(path)


def _read(path: str | os.PathLike) -> tuple[dict, dict]:
    """``(header, payload)`` of an agent file; a missing file, a directory or a file that is not an rlkit agent
    raises one line saying which (``FileNotFoundError`` / ``IsADirectoryError`` / ``ValueError``)."""
    if os.path.isdir(path):
        inside = os.path.join(path, "agent.rlkit")
        hint = f"use {inside}" if os.path.isfile(inside) else "give an agent file (<run dir>/agent.rlkit)"
        raise IsADirectoryError(f"{path} is a {'run ' if os.path.isfile(inside) else ''}directory; {hint}")
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"{path} does not exist (expected an agent file such as <run dir>/agent.rlkit)"
        )
    with open(path, "rb") as f:
        blob = f.read()
    try:
        raw = serialization.msgpack_restore(blob)
        header = json.loads(raw["header"])
        if not isinstance(header, dict) or not isinstance(raw.get("state"), dict):
            raise TypeError
    except Exception:  # msgpack / JSON / structure errors: any of them means "not one of ours"
        raise ValueError(
            f"{path} is not an rlkit agent file (it has no {FORMAT} header; agent files are written by "
            "rlkit train or rlkit.export.export_agent)"
        ) from None
    if header.get("format") != FORMAT:
        raise ValueError(
            f"{path} is not an rlkit agent file (format {header.get('format')!r}, expected {FORMAT!r})"
        )
    return header, raw


def agent_conditioning(path: str | os.PathLike):
    """``(prior, resample_every)`` when the exported agent acts on ``concat(obs, z)`` (a skill- or goal-conditioned
    agent, ``AgentEntry.condition``), else ``None``: wrap the env with ``rlkit.conditioning.Conditioned(env, prior,
    resample_every)`` before ``load_agent`` (``rlkit eval`` does), so it is evaluated as it was trained."""
    from rlkit import registry

    header = _read(path)[0]
    entry = registry.entries().get(header.get("agent"))
    if entry is None or entry.condition is None:
        return None
    return entry.condition(configs.from_dict(entry.config_cls, header["config"]))


def agent_env(path: str | os.PathLike, env):
    """The JAX env an exported agent acts on, built from the plain ``env``: its ``AgentEntry.wrap_env`` (goal-
    conditioned agents), else ``Conditioned(env, prior, resample_every)`` (``agent_conditioning``), else ``env``."""
    from rlkit import registry
    from rlkit.conditioning import Conditioned

    header = _read(path)[0]
    entry = registry.entries().get(header.get("agent"))
    if entry is None or (entry.wrap_env is None and entry.condition is None):
        return env
    config = configs.from_dict(entry.config_cls, header["config"])
    if entry.wrap_env is not None:
        return entry.wrap_env(config, env)
    return Conditioned(env, *entry.condition(config))


def read_header(path: str | os.PathLike) -> dict:
    """What an export says of itself without loading its parameters: ``agent`` (the registry name), ``config``
    (a dict) and ``spec`` (the trained env's id and spaces)."""
    return _read(path)[0]


def trained_env_id(path: str | os.PathLike) -> str:
    """The id of the env an exported agent was trained on."""
    return _read(path)[0]["spec"]["id"]


def load_agent(path: str | os.PathLike, spec: EnvSpec | None = None):
    """``(agent, state)`` from ``path``; with ``spec``, the agent is built for that env after a compatibility check."""
    header, raw = _read(path)
    saved = header["spec"]
    saved_spec = EnvSpec(
        saved["id"],
        _space_from_dict(saved["observation_space"]),
        _space_from_dict(saved["action_space"]),
        tuple(saved["reward_names"]),
    )
    if spec is None:
        spec = saved_spec
    problems = []
    if spec.observation_space.shape != saved_spec.observation_space.shape:
        problems.append(
            f"observation shape {spec.observation_space.shape} != trained {saved_spec.observation_space.shape}"
        )
    if (
        type(spec.action_space) is not type(saved_spec.action_space)
        or spec.action_space.shape != saved_spec.action_space.shape
    ):
        problems.append(f"action space {spec.action_space} != trained {saved_spec.action_space}")
    elif isinstance(spec.action_space, Discrete) and spec.action_space.n != saved_spec.action_space.n:
        problems.append(f"{spec.action_space.n} discrete actions != trained {saved_spec.action_space.n}")
    if problems:
        raise ValueError(
            f"{path} (trained on {saved_spec.id}) does not fit {spec.id}: " + "; ".join(problems)
        )
    if header.get("agent") not in _registry():
        raise ValueError(
            f"{path} holds a {header.get('agent')!r} agent, which is not available here; "
            f"loadable agents: {sorted(_registry())}"
        )
    config_cls, make = _registry()[header["agent"]]
    config = configs.from_dict(config_cls, header["config"])
    agent = make(config, spec)
    # only the structure, shapes and dtypes of a fresh state are needed: eval_shape skips the initialisation
    target = jax.eval_shape(
        lambda: jax.tree.map(
            lambda x: jax.random.key_data(x) if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key) else x,
            agent.init(jax.random.key(0)),
        )
    )
    try:
        state = serialization.from_state_dict(target, raw["state"])
        state = jax.tree.map(lambda t, x: np.asarray(x, t.dtype).reshape(t.shape), target, state)
    except (ValueError, KeyError, TypeError) as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(
            f"{path}: its parameters do not fit a {header['agent']} agent built from its own config ({reason})"
        ) from None
    if "obs_stats" in raw:
        stats = RunningMeanStd(**{k: jax.numpy.asarray(v) for k, v in raw["obs_stats"].items()})
        clip, base_act = header["obs_clip"], agent.act

        def act(state, obs, key, mode="explore"):
            return base_act(state, running_stats.normalize(stats, obs, clip=clip), key, mode)

        agent = dataclasses.replace(agent, act=act)
    return agent, jax.tree.map(jax.numpy.asarray, state)


def export_run(path: str | os.PathLike, result, runs, k: int, *, config, spec: EnvSpec) -> str:
    """Export run ``k`` of a ``rlkit.training.train`` (or ``rlkit.host_loop.train_host``) result in one call;
    returns the path written.

    ``runs`` is the ``rlkit.sweeps.Runs`` the result was trained on and ``config`` the config it was made from
    (``make_runs(config, ...)``): run ``k``'s config is ``config`` with the exact Python values of run ``k``'s
    swept fields (``runs.values[k]``), so the file records ``3e-4``, not its float32 rounding. The agent's name
    comes from the config's class; PPO's observation normalizer (``normalize_obs``) travels with the agent, so
    the loaded agent acts on raw observations. ``spec`` is the env's (``env.spec``)."""
    n = len(runs)
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or not 0 <= k < n:
        raise IndexError(f"run k={k!r} is out of range: there are {n} runs (k = 0 … {n - 1})")
    k = int(k)
    names = {cls: name for name, (cls, _) in _registry().items()}
    if type(config) not in names:
        raise ValueError(
            f"cannot export a {type(config).__name__}: exportable agents take {sorted(c.__name__ for c in names)}"
        )
    if type(runs.config) is not type(config):
        raise ValueError(
            f"config is a {type(config).__name__} but runs were made from a {type(runs.config).__name__}"
        )
    swept = {name: value for name, value in runs.values[k].items() if name != "seed"}
    run_config = config.replace(**swept)
    for f in dataclasses.fields(config):  # the runs must come from this config (static and unswept fields)
        if configs.is_static(type(config), f.name):
            same = getattr(runs.config, f.name) == getattr(config, f.name)
        else:
            column = np.asarray(getattr(runs.config, f.name))
            same = column.shape[:1] == (n,) and np.array_equal(
                column[k], np.asarray(getattr(run_config, f.name), column.dtype)
            )
        if not same:
            raise ValueError(
                f"runs were not made from this config: {type(config).__name__}.{f.name} differs "
                f"(pass the config given to make_runs)"
            )
    agent_state = getattr(result.state, "agent_state", None)
    obs_stats = getattr(result.state, "obs_stats", None)
    # one run over several devices (train's devices_per_run): its copies are equal, take one
    if getattr(result, "devices_per_run", 1) > 1:

        def first_copy(x):
            if jnp.issubdtype(x.dtype, jax.dtypes.prng_key):  # typed keys: through their data
                data = np.asarray(jax.device_get(jax.random.key_data(x)))[:, 0]
                return jax.random.wrap_key_data(data, impl=jax.random.key_impl(x))
            return np.asarray(jax.device_get(x))[:, 0]

        agent_state, obs_stats = jax.tree.map(first_copy, (agent_state, obs_stats))
    leading = {np.shape(x)[:1] for x in jax.tree.leaves(agent_state)}
    if agent_state is None or leading != {(n,)}:
        raise ValueError(
            f"result does not hold {n} runs (leading axes {sorted(leading)}): pass the TrainResult of "
            "rlkit.training.train or rlkit.host_loop.train_host trained on these runs"
        )
    state = jax.tree.map(lambda x: x[k], agent_state)
    if obs_stats is None or not getattr(config, "normalize_obs", False):
        return export_agent(path, names[type(config)], run_config, state, spec)
    from rlkit.on_policy import NORMALIZE_CLIP  # the clip PPO's loop applied after normalizing

    obs_stats = jax.tree.map(lambda x: x[k], obs_stats)
    return export_agent(
        path, names[type(config)], run_config, state, spec, obs_stats=obs_stats, obs_clip=NORMALIZE_CLIP
    )
