"""The compiled chunk of every off-policy learner (SAC, TD3, and the families built on them).

One chunk is a ``lax.scan`` of ``chunk_steps`` iterations of: act in ``num_envs`` vmapped envs (uniformly random
actions until ``learning_starts`` env steps, as CleanRL / SB3 do), step them (auto-reset, same-step, so the true
next observation of a truncated episode is ``info["final_obs"]``), add the transition to the on-device replay
buffer (``rlkit.buffers``), then ``updates_per_step`` gradient updates on uniformly sampled batches. Before
``learning_starts`` the update is computed but discarded (a select, so the chunk stays one branch-free program
under ``vmap`` over runs).

Transitions stored: ``obs``, ``action``, ``reward`` (``float32[K]`` for K named terms, ``[]`` for one),
``next_obs``, ``terminated``, ``truncated``. The learner bootstraps with ``1 − terminated`` (never ``truncated``).

The learner supplies ``make_agent(config, spec) -> Agent``; it is called *inside* the traced functions so that
sweepable config fields may be traced values (one compiled program for a whole sweep).

Multi-critic pieces shared by SAC and TD3 (``agents.sac`` says why each exists): ``term_critics`` (one Q output
per reward term, from shared per-critic torsos or from separate networks per term), ``TermScale`` (running
per-term scale of the TD targets that puts the terms of the actor objective on a common scale) and
``check_reward_weights`` (every mismatch between weights and the env's terms names the terms).

Composition hooks (the same in ``rlkit.host_loop``): ``extras`` stores named ``info`` entries with every
transition; ``data`` replaces uniform replay by another data source (demonstrations, a mix at a scheduled ratio,
reward overrides by source — ``rlkit.data_sources``).

Deliberately not here: n-step returns and the data sources themselves (``rlkit.data_sources``), and Gymnasium envs
(``rlkit.host_loop``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax import struct

from envs.core import Environment, EnvSpec
from rlkit import data_sources, devices
from rlkit.agent import Agent
from rlkit.buffers import make_replay_buffer
from rlkit.configs import ConfigError, param
from rlkit.evaluation import evaluate_policy
from rlkit.networks import QEnsemble
from rlkit.rollout import episode_metrics, finish_episode_metrics, rollout_env, rollout_extras
from rlkit.training import Trainer


@struct.dataclass
class ReplayLoopConfig:
    """Fields of every learner on the replay loop (``make_off_policy_trainer`` and ``rlkit.host_loop`` read
    them), γ and reward weights. DQN subclasses it directly; actor-critic learners through ``OffPolicyConfig``."""

    num_envs: int = param(1, static=True, low=1)
    """parallel envs per run"""
    chunk_steps: int = param(1000, static=True, low=1)
    """vector-env steps in one compiled chunk (logs and checkpoints happen between chunks)"""
    buffer_size: int = param(1_000_000, static=True, low=1)
    """replay capacity in transitions"""
    batch_size: int = param(256, static=True, low=1)
    """transitions per gradient step"""
    learning_starts: int = param(5000, static=True, low=0)
    """env steps of uniformly random actions before learning (CleanRL 5e3)"""
    updates_per_step: int = param(1, static=True, low=1)
    """gradient steps per update phase (update-to-data ratio × num_envs × train_frequency)"""
    train_frequency: int = param(1, static=True, low=1)
    """vector-env steps between update phases (CleanRL DQN: 10); must divide chunk_steps"""
    gamma: float = param(0.99, low=0.0, high=1.0)
    """discount"""
    reward_weights: tuple[float, ...] | None = param(None, static=True)
    """per-term weights for vector rewards (None = all 1), in spec.reward_names order"""
    sampling: str = param("uniform", static=True, choices=("uniform", "rr", "per", "rr-m"))
    """how replay batches are drawn: with replacement ("uniform"), random reshuffling ("rr", RR-C), proportional
    prioritized replay ("per") or RR-M ("rr-m"); per and rr-m need a learner that reports TD errors (DQN)"""
    priority_alpha: float = param(0.6, low=0.0, high=1.0)
    """per / rr-m: priorities are (|TD error| + 1e-6)^alpha (0 = uniform)"""
    priority_beta: float = param(0.4, low=0.0, high=1.0)
    """per / rr-m: importance-sampling exponent at the start (1 = full correction)"""
    priority_beta_steps: int = param(0, low=0)
    """per / rr-m: env steps over which beta anneals linearly to 1 (0 = constant)"""


def check_sampling(config) -> None:
    """Refuse what a sampling scheme cannot do or would ignore (one line, before compiling): a buffer smaller
    than one batch under a scheme that draws without replacement, and priority settings without priorities."""
    if config.sampling in ("rr", "rr-m") and config.buffer_size < config.batch_size:
        raise ConfigError(
            f"{type(config).__name__}: sampling={config.sampling!r} draws batches without replacement, so "
            f"buffer_size = {config.buffer_size} must be at least batch_size = {config.batch_size}"
        )
    if config.sampling in ("per", "rr-m"):
        return
    default = ReplayLoopConfig()
    changed = [
        f"{name}={getattr(config, name)!r}"
        for name in ("priority_alpha", "priority_beta", "priority_beta_steps")
        if not isinstance(getattr(config, name), jax.Array)
        and getattr(config, name) != getattr(default, name)
    ]
    if changed:
        raise ConfigError(
            f"{type(config).__name__}: {', '.join(changed)} set, but sampling={config.sampling!r} draws no "
            "priorities; set sampling='per' or 'rr-m', or leave them at their defaults"
        )


@struct.dataclass
class OffPolicyConfig(ReplayLoopConfig):
    """Fields every off-policy actor-critic shares (SAC, TD3): the critic structure, the multi-critic options
    and τ, on top of the loop's. Learners subclass it and add their own fields (and may redeclare a default,
    e.g. TD3's ``learning_starts``)."""

    hidden_sizes: tuple[int, ...] = param((256, 256), static=True)
    """hidden layer sizes of actor and critics"""
    num_critics: int = param(2, static=True, low=1)
    """Q networks in the ensemble (2 = twin critics; RLPD uses 10)"""
    critic_layer_norm: bool = param(False, static=True)
    """LayerNorm after every hidden layer of the critics (RLPD)"""
    multi_critic: bool = param(False, static=True)
    """one Q output per named reward term (vector-reward envs) instead of one on the weighted sum"""
    separate_term_critics: bool = param(False, static=True)
    """multi_critic: a separate network per reward term (and critic) instead of one K-output head per critic"""
    term_normalization: str = param("per_term", static=True, choices=("per_term", "none"))
    """multi_critic with >= 2 terms: PopArt-normalized critics, each term's outputs and targets normalized by
    the running mean and std of its TD targets, the actor maximizing the weighted normalized values
    ("per_term"), or raw per-term critics ("none")"""
    actor_term_scale: str = param("advantage", static=True, choices=("advantage", "none"))
    """per_term: the actor maximizes Σ_k w_k Q̂_k / σ^A_k with σ^A_k the running std of term k's action advantage
    ("advantage": SLIM's normalized per-term advantages) or Σ_k w_k Q̂_k over the PopArt-normalized values
    ("none")"""
    tau: float = param(0.005, low=0.0, high=1.0)
    """Polyak factor of the target networks"""
    q_scale_rate: float = param(0.01, low=0.0, high=1.0, low_inclusive=False)
    """rate of the moving averages behind each term's scale (TD-MPC2's running scale uses 0.01)"""
    q_scale_floor: float = param(0.01, low=0.0, low_inclusive=False)
    """smallest per-term scale (reward units): caps how much a near-constant term is amplified"""


@struct.dataclass
class OffPolicyState:
    key: jax.Array
    obs: jax.Array  # [num_envs, *obs]
    env_state: Any
    agent_state: Any
    buffer_state: Any
    env_steps: jax.Array  # int32[]: env steps so far (all envs of the run)


# ---------------------------------------------------------------------------------------------- multi-critic
def check_reward_weights(config, spec: EnvSpec) -> None:
    """Refuse weights that do not match the env's reward terms, naming them (before anything compiles)."""
    cls, names = type(config).__name__, list(spec.reward_names)
    weights = config.reward_weights
    if weights is None or len(weights) == len(names):
        return
    if len(names) == 1:
        raise ConfigError(
            f"{cls}.reward_weights has {len(weights)} entries, but {spec.id} has a single scalar reward term "
            f"{names}: a multi-critic learner needs an env with named reward terms (one critic per term; "
            "envs.wrappers.SumReward turns a vector into this scalar); leave reward_weights unset here"
        )
    raise ConfigError(
        f"{cls}.reward_weights has {len(weights)} entries; {spec.id} has reward terms {names}: give one weight "
        "per term in that order (or leave it unset for all ones)"
    )


def weights_for(spec: EnvSpec, weights: dict[str, float]) -> tuple[float, ...]:
    """``reward_weights`` from a ``{term: weight}`` dict (missing terms weigh 1); unknown names raise, naming the
    env's terms."""
    names = list(spec.reward_names)
    unknown = sorted(set(weights) - set(names))
    if unknown:
        raise ConfigError(f"reward weights for unknown terms {unknown}; {spec.id} has reward terms {names}")
    return tuple(float(weights.get(n, 1.0)) for n in names)


def term_critics(
    hidden_sizes: Sequence[int], num_critics: int, num_terms: int, layer_norm: bool, separate: bool
) -> nn.Module:
    """``num_critics`` Q functions with ``num_terms`` outputs each → ``float[num_critics, ..., num_terms]``.

    ``separate=False``: each critic is one network with a K-output head (the terms share its torso; the plain
    ``QEnsemble``, so one term gives the base learner's parameters). ``separate=True``: each (critic, term) pair
    is its own single-output network (no shared features between terms; K times the parameters, still one
    batched matmul through ``nn.vmap``)."""
    if not separate or num_terms == 1:
        return QEnsemble(hidden_sizes, num_critics, num_terms, layer_norm)
    return SeparateTermQEnsemble(hidden_sizes, num_critics, num_terms, layer_norm)


class SeparateTermQEnsemble(nn.Module):
    """``num_critics × num_terms`` single-output Q networks, arranged as ``float[num_critics, ..., num_terms]``."""

    hidden_sizes: Sequence[int]
    num_critics: int
    num_terms: int
    layer_norm: bool = False

    @nn.compact
    def __call__(self, obs, action):
        q = QEnsemble(self.hidden_sizes, self.num_critics * self.num_terms, 1, self.layer_norm)(obs, action)
        q = jnp.reshape(q[..., 0], (self.num_critics, self.num_terms) + q.shape[1:-1])  # [N, K, ...]
        return jnp.moveaxis(q, 1, -1)


def weighted_min(q: jax.Array, weights: jax.Array) -> jax.Array:
    """``q [N, B, K]`` (N critics, K reward terms) → ``[B, K]``: per sample, the per-term values of the one
    critic whose weighted sum ``Σ_k w_k Q_ik`` is lowest, so that ``Σ_k w_k result_k = min_i Σ_k w_k Q_ik`` —
    the scalar learner's pessimistic target. (A min taken per term, ``Σ_k w_k min_i Q_ik``, sits below it, and
    further below the more terms there are.) With K = 1 and a positive weight it is the plain min over critics."""
    if q.shape[-1] == 1:
        return jnp.min(q, axis=0)
    chosen = jnp.argmin(jnp.sum(q * weights, axis=-1), axis=0)  # [B]
    return jnp.take_along_axis(q, chosen[None, :, None], axis=0)[0]


@struct.dataclass
class TermScale:
    """Exponential moving averages of each term's TD-target mean and second moment (PopArt's statistics,
    van Hasselt et al. 2016, sec. 2), debiased like Adam's moments since they start at zero."""

    mean: jax.Array  # float32[K]
    second: jax.Array  # float32[K]
    count: jax.Array  # int32[]: updates folded in

    @classmethod
    def zeros(cls, k: int) -> TermScale:
        return cls(jnp.zeros(k, jnp.float32), jnp.zeros(k, jnp.float32), jnp.zeros((), jnp.int32))

    def update(self, targets: jax.Array, rate) -> TermScale:
        """Fold in a batch of targets ``[B, K]``."""
        # over the whole batch when it is split over a run's devices
        mean = (1 - rate) * self.mean + rate * devices.batch_mean(jnp.mean(targets, axis=0))
        second = (1 - rate) * self.second + rate * devices.batch_mean(jnp.mean(targets**2, axis=0))
        return TermScale(mean, second, self.count + 1)

    def stats(self, rate, floor) -> tuple[jax.Array, jax.Array]:
        """``(mean, std)``, each ``float32[K]``: the debiased running mean and std of each term's targets, the
        std at least ``floor``; ``(0, floor)`` before any update."""
        debias = 1.0 - (1.0 - rate) ** jnp.maximum(self.count, 1).astype(jnp.float32)
        mean, second = self.mean / debias, self.second / debias
        return mean, jnp.maximum(jnp.sqrt(jnp.maximum(second - mean**2, 0.0)), floor)

    def std(self, rate, floor) -> jax.Array:
        """``float32[K]``: the debiased running std of each term's targets, at least ``floor``."""
        return self.stats(rate, floor)[1]


def rescale_term_outputs(params, scale: jax.Array, shift: jax.Array):
    """``term_critics`` parameters whose output for term k is ``scale_k · Q_k + shift_k`` (PopArt's
    output-preserving step, van Hasselt et al. 2016, eq. 6): the last layer's kernel and bias of every critic
    are rescaled per term. Works for both layouts: a K-output head per critic (kernel ``[N, H, K]``) and one
    network per (critic, term) (kernel ``[N·K, H, 1]``, term k at rows ``n·K + k``)."""
    inner = params["params"]
    inner = inner.get("QEnsemble_0", inner)["VmapMLP_0"]
    last = max((n for n in inner if n.startswith("Dense_")), key=lambda n: int(n.split("_")[1]))
    kernel, bias = inner[last]["kernel"], inner[last]["bias"]
    k = scale.shape[0]
    if kernel.shape[-1] == k:  # [N, H, K], [N, K]
        new = {"kernel": kernel * scale, "bias": bias * scale + shift}
    else:  # [N·K, H, 1], [N·K, 1]
        rows = kernel.shape[0] // k
        s, b = jnp.tile(scale, rows)[:, None], jnp.tile(shift, rows)[:, None]
        new = {"kernel": kernel * s[:, None], "bias": bias * s + b}
    out = jax.tree.map(lambda x: x, params)  # a copy of the nested dicts, leaves shared
    target = out["params"]
    target = target.get("QEnsemble_0", target)["VmapMLP_0"]
    target[last] = new
    return out


def advantage_scale(scale: TermScale, q_data: jax.Array, q_pi: jax.Array, rate, floor):
    """The actor's per-term weights' denominators: the running std of each term's action advantage
    ``Q_k(s, a_data) − Q_k(s, a_π)`` (``q_data``, ``q_pi``: ``[N, B, K]``, averaged over critics), the
    off-policy counterpart of PPO normalizing each term's advantages over the minibatch — how much a term's value
    changes with the action, not with the state (a target's std mixes in the latter: reach's Q varies ~100×
    more over states than its advantage does). Returns ``(new scale, std [K] at least floor)``."""
    adv = jax.lax.stop_gradient(jnp.mean(q_data - q_pi, axis=0))  # [B, K]
    scale = scale.update(adv, rate)
    return scale, scale.std(rate, floor)


def term_targets(
    term_scale: TermScale,
    critics,
    q_next,
    reward,
    not_done,
    gamma,
    weights,
    rate,
    floor,
    *,
    normalize,
    entropy=0.0,
):
    """Per-term TD targets ``[B, K]`` of SAC / TD3 from the target critics' outputs ``q_next [N, B, K]``; returns
    ``(new term_scale, target, critics)``. Either way the min over critics is the one with the lowest weighted sum
    (``weighted_min``) and the statistics take in the critics' mean target.

    ``normalize=False``: raw targets, ``entropy [B, K]`` (SAC's share of the soft target's bonus) subtracted from
    the bootstrapped value; the statistics are only reported; ``critics`` come back as given.
    ``normalize=True``: PopArt (van Hasselt et al. 2016) — the outputs are normalized values ``(Q_k − μ_k) / σ_k``,
    read in reward units with the current statistics; the min is by ``Σ_k w_k Q_k / σ_k``; the target is
    normalized with the updated statistics; no entropy in it; and every parameter set in ``critics`` (the critics
    and their targets) is rescaled so its outputs keep their meaning while the statistics move
    (``rescale_term_outputs``, output preservation)."""
    if not normalize:
        term_scale = term_scale.update(reward + gamma * not_done * (jnp.mean(q_next, axis=0) - entropy), rate)
        return term_scale, reward + gamma * not_done * (weighted_min(q_next, weights) - entropy), critics
    mu, sigma = term_scale.stats(rate, floor)
    raw_next = q_next * sigma + mu
    term_scale = term_scale.update(reward + gamma * not_done * jnp.mean(raw_next, axis=0), rate)
    new_mu, new_sigma = term_scale.stats(rate, floor)
    raw_target = reward + gamma * not_done * weighted_min(raw_next, weights / new_sigma)
    scale, shift = sigma / new_sigma, (mu - new_mu) / new_sigma
    critics = tuple(rescale_term_outputs(c, scale, shift) for c in critics)
    return term_scale, (raw_target - new_mu) / new_sigma, critics


def term_metrics(names, q, target, q_scale, q_mean=None, adv_scale=None) -> dict[str, jax.Array]:
    """Per-term critic losses (summed over critics, as ``loss/critic``), mean Q-values and running scales, from
    the critics' predictions ``q [N, B, K]``, the TD targets ``[B, K]`` and the scales ``[K]``. ``q_mean [K]``:
    the critics output normalized values (PopArt): losses are reported as trained (normalized), Q-values in
    reward units (``q · q_scale + q_mean``). ``adv_scale [K]``: the actor's per-term advantage scales."""
    losses = jnp.sum(jnp.mean((q - target[None]) ** 2, axis=1), axis=0)
    raw = q if q_mean is None else q * q_scale + q_mean
    out = {}
    for i, name in enumerate(names):
        out[f"loss/critic/{name}"] = losses[i]
        out[f"q_mean/{name}"] = jnp.mean(raw[..., i])
        out[f"q_scale/{name}"] = q_scale[i]
        if adv_scale is not None:
            out[f"adv_scale/{name}"] = adv_scale[i]
    return out


@dataclass(frozen=True)
class ActorLossTerm:
    """An extra term of an off-policy actor's loss (demonstration-regularized RL's −λ(log π − log π_BC), TD3+BC's
    λ·‖π(s) − a‖², goal-conditioned IL's Q-filtered BC). ``loss(batch, action, log_prob, q, key) -> (scalar,
    metrics)``: ``action [B, A]`` is the actor's action at ``batch["obs"]`` (differentiable in the actor's
    parameters), ``log_prob [B]`` its log-probability (``None`` for deterministic actors), ``q(obs, action) ->
    [N, B, K]`` the current critics (differentiable in ``action``). The learner adds the scalar to its actor loss
    and reports the metrics under ``actor_term/<name>/``."""

    name: str
    loss: Callable[..., tuple[jax.Array, dict]]


def actor_term_losses(terms, batch, action, log_prob, q, key) -> tuple[jax.Array, dict]:
    """The summed extra actor loss and its metrics (``0.0`` and ``{}`` with no terms)."""
    total, metrics = jnp.zeros((), jnp.float32), {}
    for i, term in enumerate(terms):
        value, m = term.loss(batch, action, log_prob, q, jax.random.fold_in(key, i))
        total = total + value
        metrics |= {f"actor_term/{term.name}": value} | {
            f"actor_term/{term.name}/{k}": v for k, v in m.items()
        }
    return total, metrics


def example_transition(spec: EnvSpec, extras: dict[str, Any] | None = None) -> dict[str, jax.Array]:
    """One stored transition (zeros): the six base fields plus ``extras`` (name → array-like with ``shape`` and
    ``dtype``, e.g. a ``jax.ShapeDtypeStruct``), the transition extras a piece asked for."""
    obs = jnp.zeros(spec.observation_space.shape, spec.observation_space.dtype)
    out = {
        "obs": obs,
        "action": jnp.zeros(spec.action_space.shape, spec.action_space.dtype),
        "reward": jnp.zeros(spec.reward_shape, jnp.float32),
        "next_obs": obs,
        "terminated": jnp.zeros((), bool),
        "truncated": jnp.zeros((), bool),
    }
    for name, like in (extras or {}).items():
        if name in out:
            raise ConfigError(f"transition extra {name!r} would replace the base field {name!r}; rename it")
        out[name] = jnp.zeros(like.shape, like.dtype)
    return out


def make_off_policy_trainer(
    name: str,
    env: Environment | Callable[[Any], Environment],
    make_agent: Callable[[Any, EnvSpec], Agent],
    config: Any,
    *,
    params=None,
    data: Callable | None = None,
    extras: Sequence[str] = (),
) -> Trainer:
    """``config`` must have the static fields ``num_envs``, ``chunk_steps``, ``buffer_size``, ``batch_size``,
    ``learning_starts`` and ``updates_per_step``.

    ``extras``: ``info`` entries stored with every transition under their own names (the conditioning ``z``,
    ``info["xy"]``, the episode's time index ``episode_length``). ``data(buffer) -> sample`` picks the data
    source: ``sample(cfg, buffer_state, key, batch_size, env_steps) -> (buffer_state, batch)`` (``rlkit.data_sources``: online
    replay — the default —, demonstrations, a mix at a scheduled ratio, relabelled goals).

    ``env`` may also be a function of the (traced) config, ``env(cfg) -> Environment``, built inside every traced
    function, so that a wrapper's sweepable setting (``Conditioned``'s ``resample_every``) follows the config of
    each run; its spec must not depend on the traced fields."""
    num_envs, chunk_steps = config.num_envs, config.chunk_steps
    build, build_eval = rollout_env(env), rollout_env(env, evaluation=True)
    env = build(config)
    spec = env.spec
    params = env.default_params if params is None else params
    extra_specs = rollout_extras(env, params, extras)
    check_sampling(config)
    pieces: dict[int, tuple] = {}

    def replay() -> tuple[Any, Callable]:
        """``(buffer, sample)`` of this device: one run over k devices keeps a buffer of ``buffer_size / k``
        transitions of its ``num_envs / k`` envs on each (built when first traced for that k)."""
        k = devices.batch_devices()
        if k not in pieces:
            buffer = make_replay_buffer(
                example_transition(spec, extra_specs),
                capacity=config.buffer_size // k,
                num_envs=num_envs // k,
                sampling=config.sampling,
            )
            pieces[k] = (buffer, (data or data_sources.online())(buffer))
        return pieces[k]

    replay()  # the 1-device pieces: a data source's errors surface here, before anything is traced
    batch_size, updates_per_step = config.batch_size, config.updates_per_step
    learning_starts, train_frequency = config.learning_starts, config.train_frequency
    if chunk_steps % train_frequency:
        raise ConfigError(
            f"{type(config).__name__}: chunk_steps = {chunk_steps} is not a multiple of train_frequency = "
            f"{train_frequency} (each chunk holds whole update periods)"
        )

    def init(cfg, key) -> OffPolicyState:
        agent, env = make_agent(cfg, spec), build(cfg)
        key, agent_key, env_key = jax.random.split(key, 3)
        # one run over several devices: the same agent on each, its own envs, buffer and randomness
        key, env_key = devices.shard_key(key), devices.shard_key(env_key)
        obs, env_state = jax.vmap(env.reset, in_axes=(0, None))(
            jax.random.split(env_key, devices.local(num_envs)), params
        )
        return OffPolicyState(
            key, obs, env_state, agent.init(agent_key), replay()[0].init(), jnp.zeros((), jnp.int32)
        )

    def env_step(cfg, agent: Agent, env: Environment, state: OffPolicyState, _):
        """Act, step every env, add the transition; returns the key the update phase may use."""
        key, act_key, rand_key, step_key, update_key = jax.random.split(state.key, 5)
        n = devices.local(num_envs)
        policy_actions = jax.vmap(agent.act, in_axes=(None, 0, 0, None))(
            state.agent_state, state.obs, jax.random.split(act_key, n), "explore"
        )
        random_actions = jax.vmap(spec.action_space.sample)(jax.random.split(rand_key, n))
        warmup = state.env_steps < learning_starts
        actions = jnp.where(warmup, random_actions, policy_actions)
        obs, env_state, reward, terminated, truncated, info = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
            jax.random.split(step_key, n), state.env_state, actions, params
        )
        transition = {
            "obs": state.obs,
            "action": actions,
            "reward": reward,
            "next_obs": info["final_obs"],
            "terminated": terminated,
            "truncated": truncated,
        } | {name: info[name] for name in extra_specs}
        buffer_state = replay()[0].add(state.buffer_state, transition)
        env_steps = state.env_steps + num_envs  # the run's, over all its devices
        new = OffPolicyState(key, obs, env_state, state.agent_state, buffer_state, env_steps)
        return new, (episode_metrics(info["episode_done"], info, spec.reward_names), update_key)

    def one_period(cfg, agent: Agent, env: Environment, state: OffPolicyState, _):
        """``train_frequency`` env steps, then one update phase of ``updates_per_step`` gradient steps."""
        if train_frequency == 1:
            state, (sums, update_key) = env_step(cfg, agent, env, state, None)
        else:
            state, (sums, keys) = jax.lax.scan(
                lambda s, x: env_step(cfg, agent, env, s, x), state, None, length=train_frequency
            )
            sums, update_key = jax.tree.map(lambda x: jnp.sum(x, axis=0), sums), keys[-1]
        buffer_state, env_steps = state.buffer_state, state.env_steps
        buffer, sample = replay()

        # The buffer rides in the inner scan's carry rather than being closed over: XLA copies a large
        # loop-invariant operand into a nested while loop (measured: a 40 MB copy per env step at 1M capacity).
        def one_update(carry, k):
            agent_state, buffer_state = carry
            sample_key, learn_key = jax.random.split(k)
            buffer_state, batch = sample(cfg, buffer_state, sample_key, devices.local(batch_size), env_steps)
            agent_state, metrics = agent.update(agent_state, batch, learn_key)
            buffer_state, metrics = data_sources.feedback(
                cfg, buffer, buffer_state, batch, metrics, agent.name
            )
            return (agent_state, buffer_state), metrics

        sampler_before = buffer_state.sampler
        (updated, buffer_state), update_metrics = jax.lax.scan(
            one_update, (state.agent_state, buffer_state), jax.random.split(update_key, updates_per_step)
        )
        learning = env_steps >= learning_starts
        keep = lambda new, old: jnp.where(learning, new, old)  # noqa: E731 — warm-up updates leave no trace
        agent_state = jax.tree.map(keep, updated, state.agent_state)
        buffer_state = buffer_state.replace(sampler=jax.tree.map(keep, buffer_state.sampler, sampler_before))
        update_metrics = jax.tree.map(lambda m: m[-1], update_metrics)
        new = state.replace(agent_state=agent_state, buffer_state=buffer_state)
        return new, (sums, update_metrics, learning)

    def run_chunk(cfg, state: OffPolicyState):
        agent, env = make_agent(cfg, spec), build(cfg)
        state, (sums, updates, learning) = jax.lax.scan(
            lambda s, x: one_period(cfg, agent, env, s, x), state, None, length=chunk_steps // train_frequency
        )
        sums = devices.batch_sum(jax.tree.map(lambda x: jnp.sum(x, axis=0), sums))  # episodes of all devices
        metrics = finish_episode_metrics(sums, spec.reward_names)
        # update metrics: means over the chunk's learning steps (NaN before learning starts); a non-finite loss
        # on a learning step is counted, never averaged away, so the driver stops the run with a clear error
        n_learning = jnp.sum(learning)
        metrics["learning_steps"] = n_learning
        for k, v in updates.items():
            metrics[k] = jnp.where(
                n_learning > 0, jnp.sum(jnp.where(learning, v, 0.0)) / jnp.maximum(n_learning, 1), jnp.nan
            )
        metrics["nonfinite_loss"] = sum(
            jnp.sum(learning & ~jnp.isfinite(v)) for k, v in updates.items() if k.startswith("loss")
        )
        metrics["env_steps"] = state.env_steps
        return state, metrics

    def evaluate(cfg, state: OffPolicyState, key):
        key = devices.shard_key(key)  # one run over k devices: k × the episodes, averaged
        return evaluate_policy(build_eval(cfg), make_agent(cfg, spec), state.agent_state, key, params=params)

    shards = {"num_envs": num_envs, "batch_size": batch_size, "buffer_size": config.buffer_size}
    return Trainer(
        name,
        init,
        run_chunk,
        num_envs * chunk_steps,
        evaluate,
        spec=spec,
        shards=shards,
        replicated=lambda s: s.agent_state,
    )
