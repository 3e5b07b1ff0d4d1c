"""The host training loop for Gymnasium envs (MuJoCo, Meta-World, any user env), off-policy and on-policy.

The env steps on the host through ``envs.gymnasium_bridge.GymnasiumVectorEnv``; everything else is the same
agent as on device, jitted, with its state (and replay buffer) on the device and donated:

- **Runs axis.** Seeds × swept values (``rlkit.sweeps.make_runs``) step together, exactly as on device: one
  Gymnasium vector env holds ``runs × num_envs`` sub-envs (run ``r`` owns copies ``r·num_envs …``), and the
  agent's ``act`` and ``update`` are vmapped over runs, so R runs cost one dispatch per env step, not R. With
  ``asynchronous=True`` the sub-envs step in worker processes (MuJoCo stepping on every core).
- **Off-policy** (SAC, TD3, DQN): per env step one dispatch — add the transition, ``updates_per_step`` updates (every ``train_frequency`` steps), then
  the next actions (``rlkit.off_policy.example_transition`` is the buffer item, as on device). Uniformly random
  actions until ``learning_starts`` env steps; until then the update is not computed at all (all runs step in
  lockstep, so the host knows the count and calls a function without it).
- **On-policy** (PPO): the pieces of ``rlkit.on_policy.make_on_policy_learner`` — the same normalizers, GAE and
  minibatch epochs as the on-device chunk; per env step one dispatch (record the step into an on-device
  trajectory, sample the next actions), per iteration one more (learn). Box actions are clipped to the env's
  box on the way out, as ``ClipAction`` does on device; the learner keeps the unclipped sample.
- **Evaluation** every ``eval_every`` chunks (and after the last): deterministic episodes on a second vector env
  with per-env episode quotas (``evaluate_host``), logged as ``eval_return`` per run.
- **Logs, checkpoints, resume** through ``rlkit.training.RunRecorder``, as on device.

What resumes exactly: the learner (parameters, optimizers, targets, normalizers), the replay buffer, RNG keys,
counters, the current observations and the pending actions are in the orbax checkpoint. The Gymnasium env itself
has no general state API; at every checkpoint the bridge pickles each sub-env (``GymnasiumVectorEnv.snapshot``)
into ``<log_dir>/host_envs/<step>.pkl``. Where that works (classic control, and any env whose state pickles,
including its ``np_random``) a resumed run is bit-identical to an uninterrupted one (tested). Where it does not
— an env holding an unpicklable simulator handle, or one that pickles by its constructor arguments
(``gymnasium.utils.EzPickle``: Gymnasium's MuJoCo and Box2D envs, whose unpickled copy is a fresh env) — the run
says so once, and a resumed run starts fresh episodes (seeded from the step), cutting every env's episode in the
replay buffer (``end_episodes``) so no sampler sees one episode spliced from two; everything else still resumes
exactly.

Deliberately not here: asynchronous actor / learner splits, and the on-device loops (``rlkit.off_policy``,
``rlkit.on_policy``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from envs.gymnasium_bridge import GymnasiumVectorEnv
from envs.spaces import Box
from rlkit import conditioning, data_sources
from rlkit.agent import Agent
from rlkit.buffers import make_replay_buffer
from rlkit.configs import ConfigError
from rlkit.off_policy import check_sampling, example_transition
from rlkit.on_policy import OnPolicyAgent, OnPolicyState, learner_for
from rlkit.rollout import info_extras
from rlkit.sweeps import Runs
from rlkit.training import RunRecorder, TrainResult, check_finite

EVAL_ENVS_PER_RUN = 10  # sub-envs per run in the evaluation env (episodes are spread over them by quota)


@struct.dataclass
class HostOffPolicyState:
    key: jax.Array
    agent_state: Any
    buffer_state: Any
    env_steps: jax.Array  # int32[]: env steps so far (all envs of the run)
    obs: jax.Array  # [num_envs, *obs]: the observations the pending actions answer (with z when conditioned)
    actions: jax.Array  # [num_envs, *action]: the actions the next env step takes
    z: Any = None  # [num_envs, size]: each env's conditioning latent (None without a prior)
    z_steps: Any = None  # int32[num_envs]: steps since each env's z was drawn


@struct.dataclass
class HostOnPolicyState:
    learner: OnPolicyState  # env_state is unused on the host (an empty tuple)
    key: jax.Array  # the learner key that the next recorded step installs
    action: jax.Array  # [num_envs, *action]: pending unclipped sample, its log-prob and values
    log_prob: jax.Array
    value: jax.Array
    z: Any = None  # [num_envs, size]: each env's conditioning latent (None without a prior)
    z_steps: Any = None  # int32[num_envs]: steps since each env's z was drawn


def env_seeds(seeds: list[int], num_envs: int, salt: int = 0) -> list[int]:
    """One Gymnasium seed per sub-env: run ``r`` (seed ``seeds[r]``) owns ``num_envs`` consecutive copies. Runs
    with the same seed get the same episodes (common random numbers across swept values, as on device)."""
    out = []
    for s in seeds:
        ss = np.random.SeedSequence([int(s), int(salt)])
        out += [int(x) for x in ss.generate_state(num_envs, np.uint32)]
    return out


def _split_runs(x: np.ndarray, r: int) -> np.ndarray:
    return np.asarray(x).reshape((r, -1) + np.shape(x)[1:])


def _per_run_means(values: list[list[float]]) -> np.ndarray:
    return np.array([np.mean(v) if v else np.nan for v in values], np.float64)


# ================================================================================================ evaluation
def evaluate_runs(
    policy: Callable[..., jax.Array],
    config: Any,
    states: Any,
    env: GymnasiumVectorEnv,
    num_runs: int,
    *,
    episodes: int,
    seed: int | list[int] = 0,
    prior: Any = None,
    resample_every: int | np.ndarray = 0,
) -> dict[str, np.ndarray]:
    """Complete episodes of ``policy(cfg, state, obs, key) -> action`` (one env, one run) for each of
    ``num_runs`` runs (``config`` and ``states`` with a leading runs axis) on a vector env of ``num_runs × m``
    sub-envs. Each run's ``episodes`` are spread over its ``m`` envs by fixed quotas (env ``j`` contributes
    ``(episodes + j) // m``, as SB3's ``evaluate_policy``): keeping the first episodes to finish would favour
    short ones. With a conditioning ``prior`` each episode draws its z (and every ``resample_every`` steps) by the
    training rule (``resample_every``: one N, or one per run), and ``policy`` sees ``concat(obs, z)``. Returns
    ``eval_return`` and ``eval_return_std`` ``[num_runs]``."""
    if env.num_envs % num_runs:
        raise ValueError(f"evaluation env has {env.num_envs} sub-envs, not a multiple of {num_runs} runs")
    m = env.num_envs // num_runs
    quota = np.tile([(episodes + j) // m for j in range(m)], num_runs)
    act = jax.jit(
        jax.vmap(
            lambda cfg, s, obs, keys: jax.vmap(policy, in_axes=(None, None, 0, 0))(cfg, s, obs, keys),
        )
    )
    obs = env.reset(seed=seed)  # an int seeds copy i with seed + i (Gymnasium), a list one seed per copy
    key = jax.random.key(seed if isinstance(seed, int) else seed[0])
    counts = np.zeros(env.num_envs, np.int64)
    returns: list[list[float]] = [[] for _ in range(num_runs)]
    z = z_steps = None
    if prior is not None:
        every = np.repeat(np.broadcast_to(np.asarray(resample_every, np.int32), (num_runs,)), m)
        resample = jax.jit(lambda k, z_, s_, d: conditioning.resample(prior, k, z_, s_, d, every)[:2])
        key, k = jax.random.split(key)
        z, z_steps = resample(
            k,
            jnp.zeros((env.num_envs, prior.size)),
            jnp.zeros(env.num_envs, jnp.int32),
            np.ones(env.num_envs, bool),
        )
    while np.any(counts < quota):
        key, k = jax.random.split(key)
        keys = jax.random.split(k, env.num_envs).reshape(num_runs, m)
        seen = obs if z is None else np.concatenate([obs, np.asarray(z)], axis=-1)
        actions = np.asarray(act(config, states, _split_runs(seen, num_runs), keys))
        obs, _, terminated, truncated, info = env.step(actions.reshape((env.num_envs,) + actions.shape[2:]))
        if z is not None:
            key, k = jax.random.split(key)
            z, z_steps = resample(k, z, z_steps + 1, np.logical_or(terminated, truncated))
        for i in np.flatnonzero(info["episode_done"] & (counts < quota)):
            returns[i // m].append(float(info["episode_return"][i]))
            counts[i] += 1
    return {
        "eval_return": _per_run_means(returns),
        "eval_return_std": np.array([np.std(v) for v in returns], np.float64),
    }


def evaluate_host(
    agent: Agent,
    agent_state: Any,
    env: GymnasiumVectorEnv,
    *,
    episodes: int = 10,
    seed: int = 0,
    mode: str = "deterministic",
    prior: Any = None,
    resample_every: int = 0,
) -> dict[str, float]:
    """Returns of ``episodes`` complete episodes of ``agent.act`` on a host vector env (any Gymnasium env), spread
    over its sub-envs by quota (``evaluate_runs``; a conditioning ``prior`` as there)."""
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    if mode not in ("deterministic", "explore"):
        raise ValueError(f"mode must be 'deterministic' or 'explore', got {mode!r}")
    policy = lambda cfg, s, obs, k: agent.act(s, obs, k, mode)  # noqa: E731
    batched = jax.tree.map(lambda x: jnp.asarray(x)[None], agent_state)
    out = evaluate_runs(
        policy, jnp.zeros(1), batched, env, 1, episodes=episodes, seed=seed, prior=prior,
        resample_every=resample_every,
    )  # fmt: skip
    return {
        "eval_return": float(out["eval_return"][0]),
        "eval_return_std": float(out["eval_return_std"][0]),
        "episodes": episodes,
    }


# ================================================================================================ learners
def _per_config(resample_every) -> Callable[[Any], Any]:
    """``cfg -> N``: ``resample_every`` is one N for every run or a function of each run's (traced) config."""
    return resample_every if callable(resample_every) else (lambda cfg: resample_every)


def _condition(obs, z):
    """What a conditioned agent sees: ``concat(obs, z)`` (``obs`` itself without a prior)."""
    return obs if z is None else jnp.concatenate([obs, z], axis=-1)


def _conditioning(raw_spec, prior, extras, info_shapes):
    """``(agent spec, {extra: ShapeDtypeStruct})``: the conditioned spec, and the ``info`` extras with ``z`` (held
    by the loop itself under a prior) among them."""
    spec = raw_spec if prior is None else conditioning.conditioned_spec(raw_spec, prior)
    names = [n for n in extras if n != "z" or prior is None]
    specs = info_extras(names, info_shapes or {}, raw_spec.id) if names else {}
    if prior is not None and "z" in extras:
        specs["z"] = jax.ShapeDtypeStruct((prior.size,), jnp.float32)
    return spec, specs


class _OffPolicy:
    """Off-policy learner pieces per run (vmapped over runs by ``train_host``).

    Conditioning (``prior``) lives here rather than in a Gymnasium wrapper: z is drawn with the run's JAX key
    by ``rlkit.conditioning.resample`` (the rule of the on-device ``Conditioned`` wrapper), kept in the
    checkpointed state, and shown to the agent as ``concat(obs, z)``; the transition's ``next_obs`` carries the
    z it was taken under, and ``z`` is stored as a transition extra."""

    def __init__(self, make_agent, config, raw_spec, num_envs, *, data=None, extras=(), info_shapes=None,
                 prior=None, resample_every=0):  # fmt: skip
        self.prior, self.resample_every = prior, _per_config(resample_every)
        spec, extra_specs = _conditioning(raw_spec, prior, extras, info_shapes)
        self.make_agent, self.spec, self.n = make_agent, spec, num_envs
        self.extras = tuple(extra_specs)
        check_sampling(config)
        self.buffer = make_replay_buffer(
            example_transition(spec, extra_specs),
            capacity=config.buffer_size,
            num_envs=num_envs,
            sampling=config.sampling,
        )
        self.sample = (data or data_sources.online())(self.buffer)
        self.learning_starts, self.train_frequency = config.learning_starts, config.train_frequency
        self.steps_per_chunk = config.chunk_steps * num_envs
        self.chunk_steps = config.chunk_steps
        self.batch_size, self.updates_per_step = config.batch_size, config.updates_per_step

    def _act(self, cfg, state: HostOffPolicyState, raw_obs) -> HostOffPolicyState:
        agent = self.make_agent(cfg, self.spec)
        key, act_key, rand_key = jax.random.split(state.key, 3)
        obs = _condition(raw_obs, state.z)
        policy = jax.vmap(agent.act, in_axes=(None, 0, 0, None))(
            state.agent_state, obs, jax.random.split(act_key, self.n), "explore"
        )
        random = jax.vmap(self.spec.action_space.sample)(jax.random.split(rand_key, self.n))
        actions = jnp.where(state.env_steps < self.learning_starts, random, policy)
        return state.replace(key=key, obs=obs, actions=actions)

    def _resample(self, cfg, state: HostOffPolicyState, done) -> HostOffPolicyState:
        if self.prior is None:
            return state
        key, z_key = jax.random.split(state.key)
        z, steps, _ = conditioning.resample(  # z_steps + 1: the step just taken was under z
            self.prior, z_key, state.z, state.z_steps + 1, done, self.resample_every(cfg)
        )
        return state.replace(key=key, z=z, z_steps=steps)

    def init(self, cfg, key, raw_obs) -> HostOffPolicyState:
        agent = self.make_agent(cfg, self.spec)
        key, agent_key = jax.random.split(key)
        actions = jnp.zeros((self.n,) + self.spec.action_space.shape, self.spec.action_space.dtype)
        z = z_steps = None
        if self.prior is not None:
            z = jnp.zeros((self.n, self.prior.size), jnp.float32)
            z_steps = jnp.zeros((self.n,), jnp.int32)
        obs = jnp.zeros((self.n,) + self.spec.observation_space.shape, self.spec.observation_space.dtype)
        state = HostOffPolicyState(
            key, agent.init(agent_key), self.buffer.init(), jnp.zeros((), jnp.int32), obs, actions, z, z_steps
        )
        state = self._resample(cfg, state, jnp.ones((self.n,), bool))
        return self._act(cfg, state, raw_obs)

    def step(self, cfg, state: HostOffPolicyState, env_out, info, *, learn: bool):
        """Add the transition, learn (when ``learn``: a Python branch, so warm-up steps skip the update), act."""
        next_obs, reward, terminated, truncated, final_obs = env_out
        transition = {
            "obs": state.obs,
            "action": state.actions,
            "reward": reward.reshape((self.n,) + self.spec.reward_shape),
            "next_obs": _condition(final_obs, state.z),
            "terminated": terminated,
            "truncated": truncated,
        } | {
            name: (state.z if name == "z" and self.prior is not None else info[name]) for name in self.extras
        }
        state = state.replace(
            buffer_state=self.buffer.add(state.buffer_state, transition), env_steps=state.env_steps + self.n
        )
        metrics = {}
        if learn:
            agent = self.make_agent(cfg, self.spec)

            def one_update(carry, k):
                agent_state, buffer_state = carry
                sample_key, learn_key = jax.random.split(k)
                buffer_state, batch = self.sample(
                    cfg, buffer_state, sample_key, self.batch_size, state.env_steps
                )
                agent_state, m = agent.update(agent_state, batch, learn_key)
                buffer_state, m = data_sources.feedback(cfg, self.buffer, buffer_state, batch, m, agent.name)
                return (agent_state, buffer_state), m

            key, update_key = jax.random.split(state.key)
            (agent_state, buffer_state), metrics = jax.lax.scan(
                one_update,
                (state.agent_state, state.buffer_state),
                jax.random.split(update_key, self.updates_per_step),
            )
            metrics = jax.tree.map(lambda m: m[-1], metrics)
            state = state.replace(key=key, agent_state=agent_state, buffer_state=buffer_state)
        state = self._resample(cfg, state, jnp.logical_or(terminated, truncated))
        return self._act(cfg, state, next_obs), metrics

    def restart(self, cfg, state: HostOffPolicyState, raw_obs) -> HostOffPolicyState:
        """Fresh episodes after a resume without the env's state: cut the buffer's episodes, act anew."""
        state = state.replace(buffer_state=self.buffer.end_episodes(state.buffer_state))
        return self._act(cfg, self._resample(cfg, state, jnp.ones((self.n,), bool)), raw_obs)

    def policy(self, cfg, state: HostOffPolicyState, obs, key):
        return self.make_agent(cfg, self.spec).act(state.agent_state, obs, key, "deterministic")


class _OnPolicy:
    """On-policy learner pieces per run, over ``rlkit.on_policy.make_on_policy_learner`` (learned reward terms
    label each rollout before GAE, as on device; ``extras`` are the ``info`` entries they read).

    Conditioning as ``_OffPolicy``: z drawn by ``rlkit.conditioning.resample`` with a key folded from the run's,
    held in the checkpointed state; the learner records ``concat(obs, z)`` — the new z on the next observation,
    the z the step was taken under on the true next state — and ``z`` as the transition extra."""

    def __init__(self, make_agent, config, raw_spec, num_envs, *, extras=(), info_shapes=None, prior=None,
                 resample_every=0):  # fmt: skip
        self.prior, self.resample_every = prior, _per_config(resample_every)
        spec, self.extra_specs = _conditioning(raw_spec, prior, extras, info_shapes)
        self.make_agent, self.spec, self.n = make_agent, spec, num_envs
        self.learner = learner_for(make_agent, config, spec, extras)
        self.extras = tuple(self.extra_specs)
        self.num_steps = config.num_steps
        self.chunk_steps = config.iterations_per_chunk * config.num_steps
        self.steps_per_chunk = self.chunk_steps * num_envs

    def _sample(self, cfg, state: HostOnPolicyState) -> HostOnPolicyState:
        agent = self.make_agent(cfg, self.spec)
        key, act_key, _ = jax.random.split(state.learner.key, 3)  # the on-device split (its step key unused)
        action, log_prob, value = self.learner.act(cfg, agent, state.learner, act_key)
        return state.replace(key=key, action=action, log_prob=log_prob, value=value)

    def _resample(self, cfg, key, z, z_steps, done):
        """``(z, z_steps)`` after a step (``z_steps + 1``: the step just taken was under z); ``(None, None)``
        without a prior."""
        if self.prior is None:
            return None, None
        return conditioning.resample(
            self.prior, jax.random.fold_in(key, 1), z, z_steps + 1, done, self.resample_every(cfg)
        )[:2]

    def init(self, cfg, key, obs) -> HostOnPolicyState:
        agent = self.make_agent(cfg, self.spec)
        key, agent_key, _ = jax.random.split(key, 3)
        z = z_steps = None
        if self.prior is not None:
            z0 = jnp.zeros((self.n, self.prior.size), jnp.float32)
            z, z_steps = self._resample(
                cfg, key, z0, jnp.zeros((self.n,), jnp.int32), jnp.ones((self.n,), bool)
            )
        learner = self.learner.start(cfg, agent, key, agent_key, _condition(obs, z), ())
        example = jax.eval_shape(lambda: self.learner.act(cfg, agent, learner, key))
        zeros = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), example)
        return self._sample(cfg, HostOnPolicyState(learner, key, *zeros, z, z_steps))

    def step(self, cfg, state: HostOnPolicyState, traj, t, env_out, info, *, learn: bool):
        next_obs, reward, terminated, truncated, final_obs = env_out
        done = jnp.logical_or(terminated, truncated)
        z, z_steps = self._resample(cfg, state.key, state.z, state.z_steps, done)
        extras = {n: (state.z if n == "z" and self.prior is not None else info[n]) for n in self.extras}
        learner, transition = self.learner.record(
            cfg, state.learner, state.key, state.action, state.log_prob, state.value,
            _condition(next_obs, z), reward, terminated, truncated, _condition(final_obs, state.z), (), extras,
        )  # fmt: skip
        state = state.replace(z=z, z_steps=z_steps)
        traj = jax.tree.map(
            lambda buf, x: jax.lax.dynamic_update_index_in_dim(buf, x, t, 0), traj, transition
        )
        metrics = {}
        if learn:
            learner, metrics = self.learner.learn(cfg, self.make_agent(cfg, self.spec), learner, traj)
        return self._sample(cfg, state.replace(learner=learner)), traj, metrics

    def empty_trajectory(self, cfg, state: HostOnPolicyState):
        """Zeros shaped like one iteration's trajectory ``[num_steps, num_envs, ...]`` (for one run)."""
        shapes = jax.eval_shape(
            lambda: self.learner.record(
                cfg, state.learner, state.key, state.action, state.log_prob, state.value,
                state.learner.obs, jnp.zeros((self.n,) + self.spec.reward_shape),
                jnp.zeros(self.n, bool), jnp.zeros(self.n, bool), state.learner.obs, (),
                {n: jnp.zeros((self.n,) + s.shape, s.dtype) for n, s in self.extra_specs.items()},
            )[1]
        )  # fmt: skip
        return jax.tree.map(lambda s: jnp.zeros((self.num_steps,) + s.shape, s.dtype), shapes)

    def restart(self, cfg, state: HostOnPolicyState, obs) -> HostOnPolicyState:
        """Fresh episodes after a resume without the env's state (and fresh z's, as at any reset)."""
        z, z_steps = self._resample(cfg, state.key, state.z, state.z_steps, jnp.ones((self.n,), bool))
        learner = self.learner.restart(cfg, state.learner, _condition(obs, z))
        return self._sample(cfg, state.replace(learner=learner, z=z, z_steps=z_steps))

    def policy(self, cfg, state: HostOnPolicyState, obs, key):
        agent = self.make_agent(cfg, self.spec)
        return self.learner.policy(cfg, agent, state.learner, obs, key, "deterministic")

    def env_actions(self, actions: np.ndarray) -> np.ndarray:
        space = self.spec.action_space
        if isinstance(space, Box) and space.bounded:  # ClipAction on device: the env sees legal actions
            return np.clip(actions, space.low, space.high)
        return actions


# ================================================================================================ the loop
def train_host(
    make_agent: Callable[[Any, Any], Agent],
    runs: Runs,
    make_env: Callable[[int], GymnasiumVectorEnv],
    *,
    total_steps: int,
    log_dir: str | os.PathLike | None = None,
    checkpoint_every: int = 10,
    keep: int = 3,
    resume: bool = False,
    eval_every: int = 0,
    eval_episodes: int = 10,
    config_record: dict | None = None,
    console: bool = True,
    on_chunk: Callable[[int, dict], None] | None = None,
    data: Callable | None = None,
    extras: tuple[str, ...] = (),
    prior: Any = None,
    resample_every: int | Callable[[Any], Any] = 0,
    make_eval_env: Callable[[int], GymnasiumVectorEnv] | None = None,
) -> TrainResult:
    """Train every run of ``runs`` on Gymnasium envs made by ``make_env(n)`` (a ``GymnasiumVectorEnv`` of ``n``
    sub-envs: ``len(runs) × config.num_envs`` for training, ``len(runs) × 10`` for evaluation).

    ``make_agent(config, spec)`` is the learner's agent factory; an ``OnPolicyAgent`` (PPO) trains on-policy,
    any other agent off-policy. Arguments as ``rlkit.training.train``; the result's state has a leading runs
    axis (``result.state.agent_state``, and ``obs_stats`` for on-policy learners).

    Composition (as ``rlkit.off_policy.make_off_policy_trainer`` and ``rlkit.on_policy.make_on_policy_trainer``):
    ``data`` the data source (off-policy learners), ``extras`` the ``info`` entries stored with each transition
    (``"z"``: the conditioning latent; on-policy, for the agent's learned reward terms), ``prior`` a
    ``rlkit.conditioning.Prior`` drawn per episode (and every ``resample_every`` steps when > 0: one N, or
    ``cfg -> N`` for a swept N), shown to the agent as ``concat(obs, z)`` in training and in evaluation alike.

    ``make_eval_env(n)`` makes the evaluation env instead of ``make_env`` (default: ``make_env``): training envs
    that change where episodes start (``rlkit.resets.gymnasium_make_env``'s expert-state resets, which live inside
    each sub-env's ``reset()``, so auto-resets use them too) are evaluated on plain ones."""
    if total_steps < 1:
        raise ValueError(f"total_steps must be >= 1, got {total_steps}")
    config, num_runs = runs.config, len(runs)
    num_envs = config.num_envs
    env = make_env(num_runs * num_envs)
    eval_env = None
    try:
        if env.num_envs != num_runs * num_envs:
            raise ValueError(
                f"make_env({num_runs * num_envs}) returned a vector env of {env.num_envs} sub-envs; it must make "
                f"runs × num_envs = {num_runs} × {num_envs}"
            )
        spec = env.spec
        first = jax.tree.map(lambda x: x[0], config)
        agent_spec = spec if prior is None else conditioning.conditioned_spec(spec, prior)
        on_policy = isinstance(make_agent(first, agent_spec), OnPolicyAgent)
        if on_policy:
            if data is not None:
                raise ConfigError(
                    "an on-policy learner trains on its own rollouts and takes no data source; data sources "
                    "(demonstrations, mixtures) are for off-policy learners (SAC, TD3)"
                )
        info_names = [n for n in extras if n != "z" or prior is None]
        if on_policy:
            pieces = _OnPolicy(
                make_agent, first, spec, num_envs, extras=extras,
                info_shapes=_info_shapes(make_env, spec) if info_names else None, prior=prior,
                resample_every=resample_every,
            )  # fmt: skip
        else:
            pieces = _OffPolicy(
                make_agent, first, spec, num_envs, data=data, extras=extras,
                info_shapes=_info_shapes(make_env, spec) if info_names else None, prior=prior,
                resample_every=resample_every,
            )  # fmt: skip
        seeds = [int(v["seed"]) for v in runs.values]
        # each run's N (a swept one differs per run), for the evaluation's host-side resampling
        eval_resample_every = np.asarray(
            jax.vmap(lambda c: jnp.asarray(_per_config(resample_every)(c), jnp.int32))(config)
        )
        num_chunks = -(-total_steps // pieces.steps_per_chunk)

        vm = lambda f, **kw: jax.vmap(f, **kw)  # noqa: E731
        init = jax.jit(vm(pieces.init))
        restart = jax.jit(vm(pieces.restart), donate_argnums=1)
        if on_policy:
            step = {
                learn: jax.jit(
                    vm(lambda c, s, tr, t, o, i, learn=learn: pieces.step(c, s, tr, t, o, i, learn=learn),
                       in_axes=(0, 0, 0, None, 0, 0)),
                    donate_argnums=(1, 2),
                )
                for learn in (False, True)
            }  # fmt: skip
        else:
            step = {
                learn: jax.jit(
                    vm(lambda c, s, o, i, learn=learn: pieces.step(c, s, o, i, learn=learn)), donate_argnums=1
                )
                for learn in (False, True)
            }

        # first: a run directory that cannot be used is refused before anything compiles
        recorder = RunRecorder.for_runs(
            log_dir,
            f"host/{type(first).__name__}",
            runs,
            total_steps=total_steps,
            config_record=config_record,
            steps_per_chunk=pieces.steps_per_chunk,
            num_chunks=num_chunks,
            resume=resume,
            keep=keep,
            checkpoint_every=checkpoint_every,
            console=console,
            headline="episode_return",
        )
    except BaseException:
        env.close()
        raise
    snapshots = None if log_dir is None else Path(log_dir) / "host_envs"

    try:
        obs = env.reset(seed=env_seeds(seeds, num_envs))
        state = init(config, runs.keys, jnp.asarray(_split_runs(obs, num_runs)))
        state, first_chunk = recorder.restore(state)
        if first_chunk > 1:
            done = (first_chunk - 1) * pieces.steps_per_chunk
            blob_path = None if snapshots is None else snapshots / f"{done}.pkl"
            if blob_path is not None and blob_path.exists():
                env.restore(blob_path.read_bytes())
            else:
                recorder.say(
                    f"{env.id}: no env snapshot for step {done}; resuming with fresh episodes (learner, buffer, "
                    "RNG and counters resume exactly; the env's own state does not)"
                )
                obs = env.reset(seed=env_seeds(seeds, num_envs, salt=done))
                state = restart(config, state, jnp.asarray(_split_runs(obs, num_runs)))
        traj = jax.jit(vm(pieces.empty_trajectory))(config, state) if on_policy else None
        warned_snapshot = False
        history, metrics = [], {}
        env_steps = (first_chunk - 1) * pieces.steps_per_chunk
        for c in range(first_chunk, num_chunks + 1):
            returns = [[] for _ in range(num_runs)]
            lengths = [[] for _ in range(num_runs)]
            updates = []
            for t in range(pieces.chunk_steps):
                actions = np.asarray(state.actions if not on_policy else state.action)
                actions = actions.reshape((num_runs * num_envs,) + actions.shape[2:])
                if on_policy:
                    actions = pieces.env_actions(actions)
                next_obs, reward, terminated, truncated, info = env.step(actions)
                env_out = tuple(  # NumPy views: the jitted step transfers them in its one dispatch
                    _split_runs(x, num_runs)
                    for x in (next_obs, reward, terminated, truncated, info["final_obs"])
                )
                env_steps += num_envs
                extra_info = {n: _split_runs(info[n], num_runs) for n in pieces.extras if n in info}
                if on_policy:
                    learn = (t + 1) % pieces.num_steps == 0
                    state, traj, m = step[learn](
                        config, state, traj, t % pieces.num_steps, env_out, extra_info
                    )
                else:
                    # an update phase every train_frequency vector steps once learning has started
                    period_end = (env_steps // num_envs) % pieces.train_frequency == 0
                    learn = env_steps >= pieces.learning_starts and period_end
                    state, m = step[learn](config, state, env_out, extra_info)
                if learn:
                    updates.append(m)
                for i in np.flatnonzero(info["episode_done"]):
                    returns[i // num_envs].append(float(info["episode_return"][i]))
                    lengths[i // num_envs].append(float(info["episode_length"][i]))
            metrics = {
                "episodes": np.array([len(r) for r in returns], np.float64),
                "episode_return": _per_run_means(returns),
                "episode_length": _per_run_means(lengths),
                "learning_steps": np.full(num_runs, float(len(updates))),
                "env_steps": np.full(num_runs, float(env_steps)),
            }
            if updates:
                stacked = jax.device_get(jax.tree.map(lambda *xs: jnp.stack(xs), *updates))
                metrics |= {k: np.mean(np.asarray(v, np.float64), axis=0) for k, v in stacked.items()}
            if eval_every and (c % eval_every == 0 or c == num_chunks):
                if eval_env is None:
                    eval_env = (make_eval_env or make_env)(num_runs * EVAL_ENVS_PER_RUN)
                metrics |= evaluate_runs(
                    pieces.policy,
                    config,
                    state,
                    eval_env,
                    num_runs,
                    episodes=eval_episodes,
                    seed=env_seeds(seeds, EVAL_ENVS_PER_RUN, salt=2**31 - 1 - c),
                    prior=prior,
                    resample_every=eval_resample_every,
                )
            check_finite(env.id, c, metrics, runs.names)
            history.append(metrics)
            if snapshots is not None and (c % checkpoint_every == 0 or c == num_chunks):
                blob, why = env.snapshot()
                if blob is not None:
                    _write_snapshot(snapshots, c * pieces.steps_per_chunk, blob)
                elif not warned_snapshot:
                    warned_snapshot = True
                    recorder.say(
                        f"{env.id} cannot be snapshotted ({why}): a resumed run will start fresh episodes "
                        "(learner, buffer, RNG and counters resume exactly)"
                    )
            recorder.after_chunk(c, state, metrics)
            if snapshots is not None and recorder.checkpointer is not None:
                _prune_snapshots(snapshots, recorder.checkpointer.all_steps())
            if on_chunk is not None:
                on_chunk(c, metrics)
    finally:
        recorder.close()
        env.close()
        if eval_env is not None:
            eval_env.close()
    result_state = state.learner if on_policy else state
    return TrainResult(result_state, metrics, history, num_chunks * pieces.steps_per_chunk)


def _info_shapes(make_env, spec) -> dict[str, jax.ShapeDtypeStruct]:
    """One env's shapes of the ``info`` entries a vector env returns (one probe step of a one-copy env)."""
    with make_env(1) as probe:
        probe.reset(seed=0)
        action = np.asarray(jax.vmap(spec.action_space.sample)(jax.random.split(jax.random.key(0), 1)))
        info = probe.step(action)[-1]
    return {k: jax.ShapeDtypeStruct(np.shape(v)[1:], np.asarray(v).dtype) for k, v in info.items()}


def _write_snapshot(directory: Path, step: int, blob: bytes) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / f"{step}.pkl.tmp"
    tmp.write_bytes(blob)
    os.replace(tmp, directory / f"{step}.pkl")  # never a half-written snapshot under the real name


def _prune_snapshots(directory: Path, kept_steps: list[int]) -> None:
    """Keep the snapshots of the checkpoints orbax keeps (and none of those it deleted)."""
    if not directory.exists():
        return
    keep = {f"{s}.pkl" for s in kept_steps}
    for path in directory.glob("*.pkl"):
        if path.name not in keep:
            path.unlink()
