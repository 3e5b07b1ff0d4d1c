"""``rlkit demos``: demonstrations from our own exported agents, and what a demonstration dataset holds.

rlkit demos collect --agent-file runs/x/agent.rlkit --episodes 20 --out demos/pendulum
rlkit demos collect --agent-file runs/x/agent.rlkit --episodes 5 --out demos/pendulum-gym --env gymnasium:Pendulum-v1
rlkit demos info demos/pendulum                 (or demos/pendulum/demos.npz, or demos/pendulum/minari)

``collect`` rolls out ``--episodes`` complete episodes of an exported agent (``rlkit train`` writes
``<run dir>/agent.rlkit``) on the env it was trained on (or ``--env``: a registered id or ``gymnasium:<id>``)
and writes, under ``--out``:

- ``demos.npz``: everything (``rlkit.buffers.save_npz``; format ``rlkit-demos-v1``): ``T + 1`` observations and
  ``T`` actions / rewards / terminations / truncations per episode and, for JAX-native envs, the env state
  before every action in ``extras["env_state"]`` (nested dicts of arrays, ``[steps, ...]``; turn them back into
  the env's state with ``rlkit.buffers.datasets.env_state_from_tree``, or reset to them with
  ``rlkit.resets.ExpertResets``); for Gymnasium envs with ``unwrapped.set_state`` (MuJoCo) the simulator state
  before every action there instead (``qpos``, ``qvel``, ``time``, ``qacc_warmstart`` as float64 bit patterns; for
  ``rlkit.resets.GymnasiumExpertResets``);
- ``minari/``: the same episodes as a Minari dataset ``rlkit/<env>/expert-v0`` (no env states: Minari has no
  place for them), for tools of the Gymnasium ecosystem (``MINARI_DATASETS_PATH=<out>/minari``);
- ``demos.json``: what was collected and how (env, agent, mode, seed, per-episode returns, shapes).

Observations are the env's raw ones (an agent exported with an observation normaliser normalises them itself);
Box actions are clipped to the action space's bounds before they are stepped and stored (what the env
executed, as PPO's training does). An existing non-empty ``--out`` is refused unless ``--force``; everything is
written into a fresh directory next to it first and swapped in only once complete, so an interrupted or failed
collect leaves what was there untouched.

``info`` reads any form ``rlkit.buffers.datasets.load_demos`` accepts and prints its episodes, steps, shapes and
dtypes, what is stored, the returns and episode lengths, and ``demos.json`` when there is one.

Wrong input (a missing agent file, an env that does not fit the agent, ``--episodes 0``, an unknown env id, a
damaged dataset) is one line on stderr (``rlkit demos: error: …``), exit status 2.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import tyro

from experiments.cli import UsageError, check_argv, check_command, check_values, one_line, parse_cli

SUBCOMMANDS = ("collect", "info")
NPZ_NAME, MINARI_DIR, META_NAME = "demos.npz", "minari", "demos.json"
MAX_BATCH = 256  # JAX episodes rolled out together (one compiled program for every batch)


@dataclass(frozen=True)
class CollectArgs:
    agent_file: str
    """an exported agent (``agent.rlkit`` in a run directory)"""
    out: str
    """directory to write demos.npz, demos.json and minari/ into (refused if it exists and is not empty,
    unless --force)"""
    episodes: int = 10
    """complete episodes to record"""
    env: str = ""
    """env to collect on (default: the env the agent was trained on); any registered id or gymnasium:<id>"""
    seed: int = 0
    """seed of the resets and of the agent's action noise (same seed, same data)"""
    mode: str = "deterministic"
    """deterministic | explore (the agent's action mode)"""
    force: bool = False
    """replace an existing --out (the new data is written aside first and swapped in once complete)"""

    LIMITS: ClassVar[dict] = {
        "episodes": {"low": 1},
        "seed": {"low": 0},
        "mode": {"choices": ("deterministic", "explore")},
    }


@dataclass(frozen=True)
class InfoArgs:
    path: tyro.conf.Positional[str]
    """a directory written by rlkit demos collect, a .npz demonstration file, or a Minari dataset directory"""


# ================================================================================================ collect
def _resolve_env(agent_file: str, env: str) -> str:
    """The env id to collect on: ``env``, or the one the agent was trained on (a Gymnasium id gets its prefix)."""
    import envs
    from envs import registry
    from experiments.cli import _check_env_id
    from rlkit.export import trained_env_id

    trained = trained_env_id(agent_file)  # a missing file, a directory, a non-agent file: one line here
    if env:
        _check_env_id(env)
        return env
    if trained in envs.registered_ids():
        return trained
    try:
        _check_env_id(registry.GYMNASIUM_PREFIX + trained)
    except envs.UnknownEnvError:
        raise UsageError(
            f"{agent_file} was trained on {trained!r}, which is neither a registered env nor a Gymnasium id; "
            "pass --env with the env to collect on"
        ) from None
    return registry.GYMNASIUM_PREFIX + trained


def _check_out(out: str, force: bool, agent_file: str) -> None:
    """Refuse an ``--out`` whose contents would be lost: a file, a non-empty directory without ``--force``, and
    even with ``--force`` a directory that is not an earlier collect's output (no ``demos.json``) or that holds
    the agent file or the current directory."""
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise UsageError(f"--out {out!r} is a file; give a directory to write the demonstrations into")
    if not path.is_dir() or not any(path.iterdir()):
        return
    if not force:
        raise UsageError(
            f"--out {out!r} exists and is not empty; nothing was written (pass --force to replace an earlier "
            "rlkit demos collect output, or choose another --out)"
        )
    inside = [
        p for p in (Path(agent_file), Path.cwd()) if path.resolve() in (p.resolve(), *p.resolve().parents)
    ]
    if inside:
        raise UsageError(
            f"--out {out!r} holds {inside[0]}; --force will not replace it: choose another --out"
        )
    if not (path / META_NAME).is_file():
        raise UsageError(
            f"--out {out!r} is not the output of rlkit demos collect (it has no {META_NAME}); --force only "
            "replaces those: nothing was written, choose another --out"
        )


def _time_limit(spec, env_id: str) -> int:
    if not spec.max_episode_steps:
        raise UsageError(
            f"{env_id} has no time limit (max_episode_steps): demonstrations need episodes that end"
        )
    return int(spec.max_episode_steps)


def _clip(space, action):
    """Box actions clipped to the space's bounds (what the env executes); Discrete ones as they are."""
    import jax.numpy as jnp

    from envs.spaces import Box

    if isinstance(space, Box):
        return jnp.clip(action, space.low, space.high).astype(space.dtype)
    return action


def rollout_jax(env, agent, agent_state, *, episodes: int, seed: int, mode: str) -> dict[str, Any]:
    """``episodes`` complete episodes of ``agent.act`` on a (time-limited) JAX env, each a jitted ``lax.scan``
    to the time limit, vmapped over episodes (at most ``MAX_BATCH`` at a time; episode ``e`` always uses key
    ``split(key(seed), episodes)[e]``). Returns host arrays, leaves ``[episodes, horizon(+1), ...]``:
    ``obs`` (``horizon + 1``), ``states`` (before each action), ``actions``, ``rewards``, ``terminations``,
    ``truncations`` and ``alive`` (the step belongs to the episode); after its end an episode's carry is frozen
    and its steps are dropped by the caller."""
    import jax
    import jax.numpy as jnp

    horizon = _time_limit(env.spec, env.spec.id)
    params = env.default_params
    space = env.spec.action_space

    def one_episode(key):
        reset_key, run_key = jax.random.split(key)
        obs, state = env.reset(reset_key, params)

        def step(carry, k):
            obs, state, alive = carry
            act_key, step_key = jax.random.split(k)
            action = _clip(space, agent.act(agent_state, obs, act_key, mode))
            next_obs, next_state, reward, term, trunc, _ = env.step(step_key, state, action, params)
            out = {
                "states": state,
                "actions": action,
                "rewards": reward,
                "terminations": term,
                "truncations": trunc,
                "alive": alive,
                "next_obs": next_obs,
            }
            keep = lambda new, old: jnp.where(alive, new, old)  # noqa: E731  frozen once the episode ended
            carry = (keep(next_obs, obs), jax.tree.map(keep, next_state, state), alive & ~(term | trunc))
            return carry, out

        _, out = jax.lax.scan(step, (obs, state, jnp.asarray(True)), jax.random.split(run_key, horizon))
        out["obs"] = jnp.concatenate([obs[None], out.pop("next_obs")])
        return out

    run = jax.jit(jax.vmap(one_episode))
    keys = jax.random.split(jax.random.key(seed), episodes)
    num_batches = -(-episodes // MAX_BATCH)
    batch = -(-episodes // num_batches)
    parts = []
    for b in range(num_batches):
        chunk = keys[b * batch : (b + 1) * batch]
        real = chunk.shape[0]
        if real < batch:  # pad the last batch: one compiled shape for all of them
            chunk = jnp.concatenate([chunk, keys[: batch - real]])
        parts.append(jax.tree.map(lambda x, n=real: np.asarray(x[:n]), jax.device_get(_key_data(run(chunk)))))
    return jax.tree.map(lambda *xs: np.concatenate(xs), *parts)


def _key_data(tree):
    import jax

    return jax.tree.map(
        lambda x: jax.random.key_data(x) if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key) else x, tree
    )


def _episodes_to_store(rolled: dict[str, Any], *, with_states: bool):
    """The ``DemoStore`` of the steps of each episode up to its end (``alive``): ``T + 1`` observations each."""
    import jax

    from rlkit.buffers import make_demo_store
    from rlkit.buffers.datasets import ENV_STATE_KEY, env_state_to_tree

    alive = rolled["alive"]
    lengths = alive.sum(axis=1).astype(np.int64)
    obs_mask = np.concatenate([np.ones((alive.shape[0], 1), bool), alive], axis=1)
    ends = np.logical_or(rolled["terminations"], rolled["truncations"])[np.arange(len(lengths)), lengths - 1]
    if (lengths < 1).any() or not ends.all():
        bad = int(np.flatnonzero((lengths < 1) | ~ends)[0])
        raise RuntimeError(
            f"episode {bad} did not end within the env's time limit"
        )  # TimeLimit guarantees it
    extras = None
    if with_states:
        states = jax.tree.map(lambda x: x[alive], rolled["states"])
        extras = {ENV_STATE_KEY: env_state_to_tree(states)}
    return make_demo_store(
        rolled["obs"][obs_mask],
        lengths,
        actions=rolled["actions"][alive],
        rewards=rolled["rewards"][alive],
        terminations=rolled["terminations"][alive],
        truncations=rolled["truncations"][alive],
        extras=extras,
    )


def rollout_gymnasium(env, agent, agent_state, *, episodes: int, seed: int, mode: str) -> dict[str, Any]:
    """``episodes`` complete episodes of ``agent.act`` on a one-copy ``GymnasiumVectorEnv``, stepped on the host;
    episode ``e`` is reset with seed ``seed + e`` and acts with keys folded from ``key(seed)``, ``e`` and the
    step. Returns the per-step arrays of every episode concatenated (``obs`` has ``T + 1`` rows an episode)
    and ``lengths``; for an env that can restore a simulator state (``rlkit.resets.restore_problem`` is None:
    MuJoCo's ``set_state``) also ``states``, the simulator state before each action (``rlkit.resets.
    simulator_state``: ``qpos``, ``qvel``, ``time``, ``qacc_warmstart``, each ``[steps, ...]`` as float64 bit patterns
    ``uint32[..., 2]``, ``rlkit.resets.stack_simulator_states``)."""
    import jax

    from rlkit.resets import simulator_state, stack_simulator_states

    space = env.spec.action_space
    horizon = _time_limit(env.spec, f"gymnasium:{env.id}")
    act = jax.jit(lambda obs, k: _clip(space, agent.act(agent_state, obs, k, mode)))
    key = jax.random.key(seed)
    rows: dict[str, list] = {k: [] for k in ("obs", "actions", "rewards", "terminations", "truncations")}
    simulator = _simulator(env)
    states: list[dict[str, np.ndarray]] = []
    lengths = []
    for e in range(episodes):
        obs = env.reset(seed=seed + e)[0]
        episode_key = jax.random.fold_in(key, e)
        rows["obs"].append(obs)
        for t in range(horizon):
            if simulator is not None:  # the state this action is taken in (the vector env auto-resets after)
                states.append(simulator_state(simulator))
            action = np.asarray(act(obs, jax.random.fold_in(episode_key, t)))
            next_obs, reward, term, trunc, info = env.step(action[None])
            rows["actions"].append(action)
            rows["rewards"].append(reward[0])
            rows["terminations"].append(term[0])
            rows["truncations"].append(trunc[0])
            rows["obs"].append(info["final_obs"][0])  # the pre-reset observation where the episode ended
            obs = next_obs[0]
            if term[0] or trunc[0]:
                break
        else:
            raise RuntimeError(f"episode {e} did not end within the time limit of {horizon} steps")
        lengths.append(t + 1)
    out = {k: np.stack(v) for k, v in rows.items()}
    out["actions"] = out["actions"].astype(space.dtype)
    out["lengths"] = np.asarray(lengths, np.int64)
    if simulator is not None:
        out["states"] = stack_simulator_states(states)  # float64 bit patterns: the store is float32
    return out


def _simulator(env):
    """The one sub-env of a synchronous one-copy ``GymnasiumVectorEnv`` when it can restore a simulator state
    (``set_state``: Gymnasium's MuJoCo envs), else ``None``: then no states are stored."""
    from gymnasium.vector import SyncVectorEnv

    from rlkit.resets import restore_problem

    vector = getattr(env, "vector_env", None)
    if not isinstance(vector, SyncVectorEnv) or len(vector.envs) != 1:
        return None
    return vector.envs[0] if restore_problem(vector.envs[0]) is None else None


def _dataset_id(env_id: str) -> str:
    from minari.dataset.minari_dataset import parse_dataset_id

    dataset_id = f"rlkit/{re.sub(r'[^-_A-Za-z0-9]', '-', env_id)}/expert-v0"
    parse_dataset_id(dataset_id)  # raises on an id Minari would not accept
    return dataset_id


@contextlib.contextmanager
def _minari_root(path: str) -> Iterator[None]:
    """``MINARI_DATASETS_PATH`` set to ``path`` for the block, and restored (or unset) afterwards."""
    saved = os.environ.get("MINARI_DATASETS_PATH")
    os.environ["MINARI_DATASETS_PATH"] = path
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("MINARI_DATASETS_PATH", None)
        else:
            os.environ["MINARI_DATASETS_PATH"] = saved


def episode_returns(store) -> np.ndarray:
    """Per-episode undiscounted return (every reward term summed), float64; empty without rewards."""
    if store.rewards is None:
        return np.zeros(0)
    rewards = np.asarray(store.rewards, np.float64).reshape(store.num_steps, -1).sum(axis=1)
    starts = np.asarray(store.episode_starts)
    return np.add.reduceat(rewards, starts) if rewards.size else np.zeros(store.num_episodes)


def _write(store, out_dir: str, dataset_id: str, meta: dict) -> None:
    import dataclasses

    from rlkit.buffers import save_minari, save_npz

    save_npz(store, os.path.join(out_dir, NPZ_NAME))
    with _minari_root(os.path.join(out_dir, MINARI_DIR)):
        save_minari(
            dataclasses.replace(store, extras=None),
            dataset_id,
            algorithm_name=f"rlkit {meta['agent']} ({meta['mode']})",
            description=(
                f"{meta['episodes']} episodes of {meta['agent_file']} ({meta['agent']}, {meta['mode']} actions, "
                f"seed {meta['seed']}) on {meta['env']}, written by rlkit demos collect"
            ),
        )
    with open(os.path.join(out_dir, META_NAME), "w", encoding="utf-8") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")


def _swap_in(tmp: str, out: str) -> None:
    """Put the finished ``tmp`` directory where ``out`` is (``out`` absent, empty, or being replaced)."""
    if os.path.isdir(out) and not os.listdir(out):
        os.rmdir(out)
    if not os.path.exists(out):
        os.replace(tmp, out)
        return
    old = tempfile.mkdtemp(prefix=f".{os.path.basename(out)}.old-", dir=os.path.dirname(out))
    os.rmdir(old)
    os.replace(out, old)
    try:
        os.replace(tmp, out)
    except BaseException:
        os.replace(old, out)  # put the earlier output back
        raise
    shutil.rmtree(old, ignore_errors=True)


def collect(args: CollectArgs) -> dict[str, Any]:
    """Roll out the agent, write ``<out>/demos.npz``, ``<out>/minari/`` and ``<out>/demos.json`` (see the module
    docstring), print one summary line and return the summary (the ``demos.json`` contents plus ``paths``)."""
    import jax

    import envs
    from envs import registry
    from rlkit.export import load_agent

    check_values(args, CollectArgs.LIMITS)
    _check_out(args.out, args.force, args.agent_file)
    env_id = _resolve_env(args.agent_file, args.env)
    dataset_id = _dataset_id(env_id)
    gymnasium_env = env_id.startswith(registry.GYMNASIUM_PREFIX)
    if gymnasium_env:
        with envs.make(env_id) as env:
            agent, state = load_agent(args.agent_file, env.spec)
            spec = env.spec
            rolled = rollout_gymnasium(
                env, agent, state, episodes=args.episodes, seed=args.seed, mode=args.mode
            )
        from rlkit.buffers import make_demo_store
        from rlkit.buffers.datasets import ENV_STATE_KEY

        store = make_demo_store(
            rolled["obs"],
            rolled["lengths"],
            actions=rolled["actions"],
            rewards=rolled["rewards"],
            terminations=rolled["terminations"],
            truncations=rolled["truncations"],
            # MuJoCo envs: the simulator state (qpos, qvel, time, qacc_warmstart) before each action
            extras={ENV_STATE_KEY: rolled["states"]} if "states" in rolled else None,
        )
    else:
        env = envs.make(env_id)
        agent, state = load_agent(args.agent_file, env.spec)
        spec = env.spec
        rolled = rollout_jax(env, agent, state, episodes=args.episodes, seed=args.seed, mode=args.mode)
        store = _episodes_to_store(rolled, with_states=True)
    returns = episode_returns(store)
    lengths = np.asarray(store.episode_lengths)
    obs = np.asarray(store.observations)
    actions = np.asarray(store.actions)
    meta = {
        "format": "rlkit-demos-v1",
        "env": env_id,
        "agent_file": str(Path(args.agent_file).resolve()),
        "agent": agent.name,
        "episodes": store.num_episodes,
        "steps": store.num_steps,
        "mode": args.mode,
        "seed": args.seed,
        "returns": [float(r) for r in returns],
        "return_mean": float(returns.mean()),
        "return_std": float(returns.std()),
        "episode_lengths": [int(n) for n in lengths],
        "observation_shape": list(obs.shape[1:]),
        "observation_dtype": str(obs.dtype),
        "action_space": repr(spec.action_space),
        "action_shape": list(actions.shape[1:]),
        "action_dtype": str(actions.dtype),
        "reward_names": list(spec.reward_names),
        "env_states": store.extras is not None,
        "env_states_note": (
            (
                "extras/env_state in demos.npz: the MuJoCo simulator state (qpos, qvel, time, qacc_warmstart) "
                "before each action, for rlkit.resets.GymnasiumExpertResets (not in the Minari copy)"
                if gymnasium_env
                else "extras/env_state in demos.npz: the env state before each action (not in the Minari copy)"
            )
            if store.extras is not None
            else "not stored: this Gymnasium env has no unwrapped.set_state(qpos, qvel) to restore a state with"
        ),
        "minari_dataset_id": dataset_id,
        "jax_version": jax.__version__,
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
    out = os.path.abspath(args.out)
    parent = os.path.dirname(out)
    os.makedirs(parent, exist_ok=True)
    _check_out(args.out, args.force, args.agent_file)  # again: it may have appeared while the episodes ran
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(out)}.new-", dir=parent)
    try:
        _write(store, tmp, dataset_id, meta)
        _swap_in(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    paths = {
        "npz": os.path.join(args.out, NPZ_NAME),
        "minari": os.path.join(args.out, MINARI_DIR),
        "json": os.path.join(args.out, META_NAME),
    }
    print(
        f"collected {meta['episodes']} episodes ({meta['steps']} steps) of {args.agent_file} on {env_id}: "
        f"return {meta['return_mean']:.4g} ± {meta['return_std']:.3g}; wrote {paths['npz']}, "
        f"{paths['minari']} (Minari {dataset_id}), {paths['json']}"
    )
    return {**meta, "paths": paths}


# ================================================================================================ info
def _describe(tree: Any) -> str:
    if tree is None:
        return "not stored"
    if isinstance(tree, dict):
        return ", ".join(f"{k}: {_describe(v)}" for k, v in tree.items())
    x = np.asarray(tree)
    return f"{x.dtype} {tuple(x.shape[1:])}"


def _metadata_for(path: Path) -> tuple[dict | None, Path | None]:
    """``demos.json`` of a collect directory given as itself, as its ``demos.npz`` or as its ``minari/`` folder."""
    for candidate in (path / META_NAME, path.parent / META_NAME):
        if candidate.is_file() and (candidate.parent == path or path.name in (NPZ_NAME, MINARI_DIR)):
            try:
                return json.loads(candidate.read_text(encoding="utf-8")), candidate
            except (OSError, ValueError):
                return {"unreadable": True}, candidate
    return None, None


def info(args: InfoArgs) -> dict[str, Any]:
    """Print what the demonstrations at ``args.path`` hold; return the same as a dict."""
    from rlkit.buffers.datasets import ENV_STATE_KEY, load_demos, resolve_demos

    kind, target = resolve_demos(args.path)
    store = load_demos(args.path)
    source = f"{target} ({'an rlkit .npz' if kind == 'npz' else 'a Minari dataset'})"
    returns = episode_returns(store)
    lengths = np.asarray(store.episode_lengths)
    terminations = np.asarray(store.terminations)
    meta, meta_path = _metadata_for(Path(args.path))
    has_states = isinstance(store.extras, dict) and ENV_STATE_KEY in store.extras

    def first(tree):
        return None if tree is None or isinstance(tree, dict) else np.asarray(tree)

    obs, act = first(store.observations), first(store.actions)
    summary: dict[str, Any] = {
        "path": args.path,
        "source": source,
        "episodes": store.num_episodes,
        "steps": store.num_steps,
        "observations": _describe(store.observations),
        "observation_shape": None if obs is None else list(obs.shape[1:]),
        "observation_dtype": None if obs is None else str(obs.dtype),
        "has_actions": store.actions is not None,
        "actions": _describe(store.actions),
        "action_shape": None if act is None else list(act.shape[1:]),
        "action_dtype": None if act is None else str(act.dtype),
        "has_rewards": store.rewards is not None,
        "rewards": _describe(store.rewards),
        "has_env_states": has_states,
        "length_min": int(lengths.min()),
        "length_max": int(lengths.max()),
        "terminated_episodes": int(terminations.sum()),
        "metadata": meta,
    }
    if returns.size:
        summary |= {
            "return_mean": float(returns.mean()),
            "return_std": float(returns.std()),
            "return_min": float(returns.min()),
            "return_max": float(returns.max()),
        }
    lines = [
        f"{args.path}: {source}",
        f"  episodes      {summary['episodes']}",
        f"  steps         {summary['steps']} (episode lengths {summary['length_min']} … {summary['length_max']}; "
        f"{summary['terminated_episodes']} episodes terminated, the others truncated)",
        f"  observations  {summary['observations']} per step (T + 1 per episode)",
        f"  actions       {summary['actions']}",
        f"  rewards       {summary['rewards']}",
        "  env states    "
        + ("stored (extras/env_state, the state before each action)" if has_states else "not stored"),
    ]
    if store.extras is not None and set(store.extras) - {ENV_STATE_KEY}:
        lines.append(
            f"  extras        {_describe({k: v for k, v in store.extras.items() if k != ENV_STATE_KEY})}"
        )
    if returns.size:
        lines.append(
            f"  returns       {summary['return_mean']:.4g} ± {summary['return_std']:.3g} "
            f"(min {summary['return_min']:.4g}, max {summary['return_max']:.4g})"
        )
    else:
        lines.append("  returns       n/a (no rewards stored)")
    if meta is not None:
        lines.append(f"  metadata      {meta_path}:")
        for key in (
            "env",
            "agent",
            "agent_file",
            "mode",
            "seed",
            "minari_dataset_id",
            "created",
            "env_states_note",
        ):
            if key in meta:
                lines.append(f"    {key:<18} {meta[key]}")
    print("\n".join(lines))
    return summary


# ================================================================================================ entry point
def main(argv: Sequence[str]) -> None:
    """``rlkit demos collect|info …``; wrong input: one line on stderr, exit status 2."""
    argv = list(argv)
    prog = "rlkit demos"
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__)
        raise SystemExit(0)
    if not argv:
        print(
            f"{prog}: error: missing command: rlkit demos collect … or rlkit demos info PATH", file=sys.stderr
        )
        raise SystemExit(2)
    check_command(argv[0], SUBCOMMANDS, prog)
    command, rest = argv[0], argv[1:]
    cls = CollectArgs if command == "collect" else InfoArgs
    try:
        check_argv(rest, [cls], f"{prog} {command}")
        args = parse_cli(cls, rest, f"{prog} {command}")
        collect(args) if command == "collect" else info(args)
    except (ValueError, OSError, KeyError) as err:
        print(f"{prog}: error: {one_line(err)}", file=sys.stderr)
        raise SystemExit(2) from None
