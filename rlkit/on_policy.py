"""The compiled chunk of every on-policy learner (PPO, and the multi-critic / skill learners built on it).

One chunk is a ``lax.scan`` of ``iterations_per_chunk`` iterations, each the loop of CleanRL ``ppo.py`` and
PureJaxRL ``ppo.py``, read top to bottom:

1. COLLECT TRAJECTORIES: ``num_steps`` steps of ``num_envs`` vmapped envs (``AutoReset`` same-step +
   ``EpisodeStatistics`` through ``rlkit.rollout.wrap_for_rollout``; continuous actions are clipped to the env
   box by ``ClipAction`` while the learner keeps the unclipped sample and its log-prob, as CleanRL does).
2. CALCULATE ADVANTAGE: GAE per reward term (``gae``), bootstrapping every step from V(final_obs) — the true
   next state, which ``AutoReset`` keeps in ``info["final_obs"]`` — masked by ``1 − terminated`` only.
3. UPDATE NETWORK: ``update_epochs`` passes over a fresh permutation of the batch in ``num_minibatches``
   minibatches, each one call of the agent's ``update``.

Rewards: the trajectory keeps the env's raw reward terms; ``learn`` turns them into value-term rewards before
GAE. Learned reward terms first (an agent with a ``label``, built by ``rlkit.rewards.with_reward_terms``): the
terms are updated on the whole rollout and relabel it with their *updated* parameters, stacked after the env's
terms (the agent's ``reward_names``). Then a vector of K named terms is kept per term when
``config.multi_critic`` (one value per term, K GAEs), otherwise summed with ``reward_weights`` (one value).
Optional normalizers, kept in the learner state (CleanRL's Gymnasium wrappers): observations by running mean /
std (clipped to ±10), updated step by step in the rollout, and rewards by the running std of the discounted
return, per term (clipped to ±10) — the same recurrence as CleanRL's per-step wrapper, run over the rollout at
learn time so that learned terms are normalized like the env's.

The learner supplies ``make_agent(config, spec) -> OnPolicyAgent``, called *inside* the traced functions so
sweepable config fields may be traced values (one compiled program for a whole sweep).

The pieces of one iteration (``make_on_policy_learner``: start, act, record a step, learn from a trajectory) are
shared with the Gymnasium host loop (``rlkit.host_loop``), which steps the env on the host instead.

Deliberately not here: recurrent policies, the host-side stepping of Gymnasium envs (``rlkit.host_loop``), and
the losses (``agents/ppo.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from envs.core import Environment, EnvSpec
from envs.spaces import Box
from envs.wrappers import ClipAction
from rlkit import devices, running_stats
from rlkit.agent import Agent
from rlkit.configs import ConfigError
from rlkit.evaluation import evaluate_policy
from rlkit.rollout import (
    episode_metrics,
    evaluation_env,
    finish_episode_metrics,
    rollout_extras,
    wrap_for_rollout,
)
from rlkit.training import Trainer

NORMALIZE_CLIP = 10.0  # CleanRL: TransformObservation / TransformReward clip to ±10 after normalizing
#: trajectory fields the learned reward terms do not see as such (normalized copies and learner-side outputs)
_TRAJECTORY_ONLY = ("obs", "final_obs", "raw_obs", "raw_final_obs", "log_prob", "value", "done")


@dataclass(frozen=True)
class OnPolicyAgent(Agent):
    """An ``Agent`` plus what a rollout needs beyond ``act``; all take the (normalized) observation of one env.

    ``update(state, minibatch, key)`` is one gradient step on a minibatch dict with ``obs``, ``action``,
    ``log_prob`` ``[B]`` and ``value``, ``advantage``, ``return`` ``[B, K]`` (K value terms)."""

    #: ``(state, obs, key) -> (action, log_prob [], value [K])``: an exploring step, its log-prob and the values
    sample: Callable[..., tuple[jax.Array, jax.Array, jax.Array]] = None
    #: ``(state, obs) -> value [K]``
    value: Callable[..., jax.Array] = None
    #: optional ``(state, batch, key, obs_fn) -> (state, reward [B, R], metrics)``: learned reward terms label the
    #: rollout before GAE (``rlkit.rewards``). ``batch`` is the flattened trajectory (B = num_envs · num_steps) with
    #: the *raw* ``obs`` and ``next_obs`` (the true next state), ``action``, the env's ``reward [B, R_env]``,
    #: ``terminated``, ``truncated`` and the transition extras; ``obs_fn`` maps a raw observation to what the
    #: policy sees (the running normalization, when on).
    label: Callable[..., tuple[Any, jax.Array, dict]] | None = None
    #: the R reward terms ``label`` returns, in order (None: the env's own)
    reward_names: tuple[str, ...] | None = None


@struct.dataclass
class OnPolicyState:
    key: jax.Array
    obs: jax.Array  # [num_envs, *obs]: what the policy sees next (normalized when normalize_obs)
    env_state: Any
    agent_state: Any
    obs_stats: running_stats.RunningMeanStd  # running statistics of raw observations
    return_stats: running_stats.RunningMeanStd  # [K] ([1]: reward_scale="shared"): discounted return
    discounted_return: jax.Array  # [num_envs, K]: CleanRL NormalizeReward's ``returns``
    env_steps: jax.Array  # int32[]: env steps so far (all envs of the run)
    raw_obs: Any = (
        None  # [num_envs, *obs]: the raw ``obs`` (kept only for an agent with learned reward terms)
    )


def value_terms(config, spec: EnvSpec) -> int:
    """K: values the critic outputs (one per reward term with ``multi_critic``, else one on the weighted sum)."""
    return spec.num_reward_terms if config.multi_critic else 1


def reward_weights(config, spec: EnvSpec) -> jax.Array:
    """``float32[num_reward_terms]`` from ``config.reward_weights`` (empty = all ones); checked at trace time too,
    so a swept value of the wrong length fails before compiling."""
    names = list(spec.reward_names)
    if config.reward_weights is None:  # the off-policy learners' "unset"
        return jnp.ones(len(names), jnp.float32)
    w = jnp.asarray(config.reward_weights, jnp.float32)
    if w.shape == (0,):
        return jnp.ones(len(names), jnp.float32)
    if w.shape != (len(names),) and len(names) == 1:
        raise ConfigError(
            f"{type(config).__name__}.reward_weights has {w.shape[0] if w.ndim else 'a scalar'} entries, but "
            f"{spec.id} has a single scalar reward term {names}: a multi-critic learner needs an env with named "
            "reward terms (one critic per term; envs.wrappers.SumReward turns a vector into this scalar); leave "
            "reward_weights empty here"
        )
    if w.shape != (len(names),):
        raise ConfigError(
            f"{type(config).__name__}.reward_weights has {w.shape[0] if w.ndim else 'a scalar'} entries; "
            f"{spec.id} has {len(names)} reward terms {names}: give one weight per term in that order "
            "(or leave it empty for all ones)"
        )
    return w


def validate(config, spec: EnvSpec) -> None:
    """Cross-field checks shared by on-policy learners (per-field ranges: ``rlkit.configs.validate``)."""
    batch = config.num_envs * config.num_steps
    if batch % config.num_minibatches:
        raise ConfigError(
            f"{type(config).__name__}: num_envs * num_steps = {config.num_envs} * {config.num_steps} = {batch} "
            f"is not divisible by num_minibatches = {config.num_minibatches}; choose num_minibatches among the "
            f"divisors of {batch} (e.g. {[d for d in (1, 2, 4, 8, 16, 32, 64) if batch % d == 0]})"
        )
    reward_weights(config, spec)


def gae(rewards, values, next_values, terminated, done, gamma, gae_lambda):
    """Generalized advantage estimation (Schulman et al. 2016, eq. 16) over time-major arrays, per value term.

    Args:
        rewards, values, next_values: ``[T, ..., K]``; ``next_values[t]`` = V(s'_t), the value of the true next
            state (the pre-reset observation where an episode ended).
        terminated, done: ``[T, ...]`` bool; ``done = terminated | truncated``.
    Returns:
        ``(advantages, returns)``, both ``[T, ..., K]``; returns = advantages + values (the value targets).

    δ_t = r_t + γ (1 − terminated_t) V(s'_t) − V(s_t) and A_t = δ_t + γλ (1 − done_t) A_{t+1}: a truncated step
    bootstraps from V(final_obs) but does not carry the next episode's advantages back. CleanRL's single
    ``next_done`` mask conflates the two and treats a time-limit truncation as a terminal state.
    """
    not_term = 1.0 - terminated.astype(jnp.float32)[..., None]
    not_done = 1.0 - done.astype(jnp.float32)[..., None]
    deltas = rewards + gamma * not_term * next_values - values

    def backward(next_adv, x):
        delta, nd = x
        adv = delta + gamma * gae_lambda * nd * next_adv
        return adv, adv

    _, advantages = jax.lax.scan(backward, jnp.zeros_like(deltas[0]), (deltas, not_done), reverse=True)
    return advantages, advantages + values


def explained_variance(values, returns):
    """1 − Var[returns − values] / Var[returns] per term over the batch (``[N, K]`` → ``[K]``), as CleanRL."""
    var = jnp.var(returns, axis=0)
    return jnp.where(var == 0, jnp.nan, 1.0 - jnp.var(returns - values, axis=0) / var)


@dataclass(frozen=True)
class OnPolicyLearner:
    """The pieces of one on-policy iteration for one run, shared by the on-device chunk (``make_on_policy_trainer``)
    and the Gymnasium host loop (``rlkit.host_loop``), so both run the same learner on the same numbers:

    - ``start(cfg, agent, key, agent_key, raw_obs, env_state) -> state``: the learner state from the first (raw)
      observations of every env;
    - ``act(cfg, agent, state, act_key) -> (action, log_prob, value)``: the exploring step of every env;
    - ``record(cfg, state, key, action, log_prob, value, raw_obs, reward, terminated, truncated, raw_final_obs,
      env_state) -> (state, transition)``: normalizes the env's output, scales rewards, and returns one step of
      the trajectory;
    - ``learn(cfg, agent, state, traj) -> (state, metrics)``: GAE and the epochs of minibatch updates;
    - ``policy(cfg, agent, state, raw_obs, key, mode)``: act on a raw observation with the training-time
      normalization frozen (evaluation, export);
    - ``restart(cfg, state, raw_obs) -> state``: fresh episodes in every env (a host run resumed without its
      env's state): observe their first observations and zero the running discounted returns.
    """

    start: Callable[..., OnPolicyState]
    act: Callable[..., tuple[jax.Array, jax.Array, jax.Array]]
    record: Callable[..., tuple[OnPolicyState, dict]]
    learn: Callable[..., tuple[OnPolicyState, dict]]
    policy: Callable[..., jax.Array]
    restart: Callable[..., OnPolicyState]
    steps_per_iteration: int


def make_on_policy_learner(
    spec: EnvSpec, config: Any, *, reward_names: tuple[str, ...] | None = None, label: bool = False
) -> OnPolicyLearner:
    """``config`` must have the static fields ``num_envs``, ``num_steps``, ``num_minibatches``, ``update_epochs``,
    ``multi_critic``, ``normalize_obs``, ``normalize_reward`` and the sweepable ones ``gamma``, ``gae_lambda``,
    ``reward_weights``. ``spec`` is the env's as the learner sees it (actions unclipped).

    ``label``: the agent relabels its rollouts (``OnPolicyAgent.label``) into the terms ``reward_names`` (default:
    the env's), which ``reward_weights`` and the critics then index; the trajectory then also keeps raw
    observations and the transition extras ``record`` is given."""
    terms_spec = spec if reward_names is None else spec.replace(reward_names=tuple(reward_names))
    validate(config, terms_spec)
    num_envs, num_steps = config.num_envs, config.num_steps
    batch_size = num_envs * num_steps
    num_minibatches, update_epochs = config.num_minibatches, config.update_epochs
    normalize_obs, normalize_reward = config.normalize_obs, config.normalize_reward
    k = value_terms(config, terms_spec)
    # normalize_reward's return statistics: one per value term, or one for the weighted sum (reward_scale="shared")
    shared_scale = (
        config.multi_critic and normalize_reward and getattr(config, "reward_scale", "per_term") == "shared"
    )
    k_ret = 1 if shared_scale else k
    term_names = terms_spec.reward_names if config.multi_critic else ("reward",)
    obs_shape = spec.observation_space.shape

    def scalarize(cfg, reward):
        """``[..., R]`` reward terms → ``[..., K]`` value-term rewards."""
        if config.multi_critic:
            return reward
        return jnp.sum(reward * reward_weights(cfg, terms_spec), axis=-1, keepdims=True)

    def scale(cfg, reward, done, ret, return_stats):
        """``[T, N, R]`` rewards → ``[T, N, K]``, normalized as CleanRL (gym 0.23) NormalizeReward does step by
        step: by the std of the discounted return, reset at episode ends (terminated or truncated)."""
        reward = scalarize(cfg, reward)
        if not normalize_reward:
            return reward, ret, return_stats

        def step(carry, x):
            ret, stats = carry
            r, d = x
            summed = jnp.sum(r * reward_weights(cfg, terms_spec), -1, keepdims=True) if shared_scale else r
            ret = ret * cfg.gamma + summed
            stats = running_stats.update(stats, ret)
            r = jnp.clip(r / jnp.sqrt(stats.var + 1e-8), -NORMALIZE_CLIP, NORMALIZE_CLIP)
            return (jnp.where(d[:, None], 0.0, ret), stats), r

        (ret, return_stats), reward = jax.lax.scan(step, (ret, return_stats), (reward, done))
        return reward, ret, return_stats

    def relabel(cfg, agent: OnPolicyAgent, agent_state, traj, key, obs_stats):
        """The learned terms' update and rewards on the flattened rollout → ``[T, N, R]``."""
        batch = {
            "obs": traj["raw_obs"],
            "next_obs": traj["raw_final_obs"],
            "truncated": jnp.logical_and(traj["done"], jnp.logical_not(traj["terminated"])),
        } | {k_: v for k_, v in traj.items() if k_ not in _TRAJECTORY_ONLY}
        n_batch = devices.local(batch_size)  # this device's share of the rollout
        batch = jax.tree.map(lambda x: x.reshape((n_batch,) + x.shape[2:]), batch)
        if normalize_obs:  # what the policy sees of a raw observation (log π for terms that need the policy)
            obs_fn = lambda o: running_stats.normalize(obs_stats, o, clip=NORMALIZE_CLIP)  # noqa: E731
        else:
            obs_fn = lambda o: o  # noqa: E731
        agent_state, reward, metrics = agent.label(agent_state, batch, key, obs_fn)
        if reward.shape != (n_batch, terms_spec.num_reward_terms):
            raise ConfigError(
                f"{agent.name}.label returned rewards of shape {reward.shape}; expected ({n_batch}, "
                f"{terms_spec.num_reward_terms}): one row per rollout step, one column per term "
                f"{list(terms_spec.reward_names)}"
            )
        return agent_state, reward.reshape((num_steps, devices.local(num_envs), -1)), metrics

    def observe(stats, obs, final_obs):
        """CleanRL's NormalizeObservation: update with the new observations, then normalize them."""
        if not normalize_obs:
            return stats, obs, final_obs
        stats = running_stats.update(stats, obs)
        norm = lambda x: running_stats.normalize(stats, x, clip=NORMALIZE_CLIP)  # noqa: E731
        return stats, norm(obs), norm(final_obs)

    def start(cfg, agent: OnPolicyAgent, key, agent_key, raw_obs, env_state) -> OnPolicyState:
        obs_stats, obs, _ = observe(running_stats.RunningMeanStd.zeros(obs_shape), raw_obs, raw_obs)
        return OnPolicyState(
            key=key,
            obs=obs,
            env_state=env_state,
            agent_state=agent.init(agent_key),
            obs_stats=obs_stats,
            return_stats=running_stats.RunningMeanStd.zeros((k_ret,)),
            discounted_return=jnp.zeros((devices.local(num_envs), k_ret), jnp.float32),
            env_steps=jnp.zeros((), jnp.int32),
            raw_obs=raw_obs if label else None,
        )

    def act(cfg, agent: OnPolicyAgent, state: OnPolicyState, act_key):
        return jax.vmap(agent.sample, in_axes=(None, 0, 0))(
            state.agent_state, state.obs, jax.random.split(act_key, devices.local(num_envs))
        )

    def record(
        cfg,
        state,
        key,
        action,
        log_prob,
        value,
        raw_obs,
        reward,
        terminated,
        truncated,
        raw_final,
        env_state,
        extras=None,
    ):
        done = jnp.logical_or(terminated, truncated)
        obs_stats, obs, final_obs = observe(state.obs_stats, raw_obs, raw_final)
        transition = {
            "obs": state.obs,
            "action": action,
            "log_prob": log_prob,
            "value": value,
            "reward": jnp.reshape(reward, (devices.local(num_envs), spec.num_reward_terms)).astype(
                jnp.float32
            ),  # raw terms
            "final_obs": final_obs,
            "terminated": terminated,
            "done": done,
        }
        if label:  # what the learned terms see: raw observations and the extras
            transition |= {"raw_obs": state.raw_obs, "raw_final_obs": raw_final} | (extras or {})
        new = state.replace(
            key=key,
            obs=obs,
            env_state=env_state,
            obs_stats=obs_stats,
            env_steps=state.env_steps + num_envs,  # the run's, over all its devices
            raw_obs=raw_obs if label else None,
        )
        return new, transition

    def learn(cfg, agent: OnPolicyAgent, state: OnPolicyState, traj):
        key, epochs_key = jax.random.split(state.key)
        agent_state, metrics = state.agent_state, {}
        reward = traj["reward"]
        if label:  # LABEL: the learned reward terms, updated on this rollout, then their rewards
            key, label_key = jax.random.split(key)
            agent_state, reward, metrics = relabel(cfg, agent, agent_state, traj, label_key, state.obs_stats)
        reward, ret, return_stats = scale(
            cfg, reward, traj["done"], state.discounted_return, state.return_stats
        )
        # CALCULATE ADVANTAGE: V(s'_t) for every step in one batched call (equal to the next step's value
        # where the episode goes on, V(final_obs) where it ended)
        next_values = jax.vmap(jax.vmap(agent.value, in_axes=(None, 0)), in_axes=(None, 0))(
            agent_state, traj["final_obs"]
        )
        advantages, returns = gae(
            reward,
            traj["value"],
            next_values,
            traj["terminated"],
            traj["done"],
            cfg.gamma,
            cfg.gae_lambda,
        )
        # UPDATE NETWORK
        batch = {k_: traj[k_] for k_ in ("obs", "action", "log_prob", "value")}
        batch |= {"advantage": advantages, "return": returns}
        n_batch = devices.local(batch_size)  # each device shuffles its share; a minibatch spans all devices
        batch = jax.tree.map(lambda x: x.reshape((n_batch,) + x.shape[2:]), batch)

        def epoch(agent_state, key):
            perm_key, update_key = jax.random.split(key)
            perm = jax.random.permutation(perm_key, n_batch)
            minibatches = jax.tree.map(lambda x: x[perm].reshape((num_minibatches, -1) + x.shape[1:]), batch)
            return jax.lax.scan(
                lambda s, x: agent.update(s, x[0], x[1]),
                agent_state,
                (minibatches, jax.random.split(update_key, num_minibatches)),
            )

        agent_state, update_metrics = jax.lax.scan(
            epoch, agent_state, jax.random.split(epochs_key, update_epochs)
        )
        # over epochs × minibatches (PureJaxRL; CleanRL logs the last)
        metrics = jax.tree.map(jnp.mean, update_metrics) | metrics
        ev = explained_variance(batch["value"], batch["return"])
        metrics["explained_variance"] = jnp.mean(ev)
        if k > 1:
            for i, term in enumerate(term_names):
                metrics[f"explained_variance/{term}"] = ev[i]
        new = state.replace(
            key=key, agent_state=agent_state, discounted_return=ret, return_stats=return_stats
        )
        return new, metrics

    def policy(cfg, agent: OnPolicyAgent, state: OnPolicyState, raw_obs, key, mode):
        obs = (
            running_stats.normalize(state.obs_stats, raw_obs, clip=NORMALIZE_CLIP)
            if normalize_obs
            else raw_obs
        )
        return agent.act(state.agent_state, obs, key, mode)

    def restart(cfg, state: OnPolicyState, raw_obs) -> OnPolicyState:
        obs_stats, obs, _ = observe(state.obs_stats, raw_obs, raw_obs)
        return state.replace(
            obs=obs,
            obs_stats=obs_stats,
            discounted_return=jnp.zeros_like(state.discounted_return),
            raw_obs=raw_obs if label else None,
        )

    return OnPolicyLearner(start, act, record, learn, policy, restart, batch_size)


def learner_for(make_agent, config, spec: EnvSpec, extras: Sequence[str]) -> OnPolicyLearner:
    """The learner for the agent ``make_agent(config, spec)`` builds: its reward terms, relabelling or not."""
    agent = make_agent(config, spec)
    if extras and agent.label is None:
        raise ConfigError(
            f"transition extras {list(extras)} are stored for learned reward terms, and {agent.name} has none "
            "(build it with rlkit.rewards.with_reward_terms)"
        )
    return make_on_policy_learner(
        spec, config, reward_names=agent.reward_names, label=agent.label is not None
    )


def make_on_policy_trainer(
    name: str,
    env: Environment,
    make_agent: Callable[[Any, EnvSpec], OnPolicyAgent],
    config: Any,
    *,
    params=None,
    extras: Sequence[str] = (),
) -> Trainer:
    """The on-device chunk over ``make_on_policy_learner``'s pieces; ``config`` also needs the static
    ``iterations_per_chunk``. ``extras``: ``info`` entries stored with every step for the agent's learned reward
    terms (the conditioning ``z``, ``info["xy"]``)."""
    spec, env_in = env.spec, env
    learner = learner_for(make_agent, config, spec, extras)
    space = spec.action_space
    clip = isinstance(space, Box) and space.bounded
    env = wrap_for_rollout(ClipAction(env) if clip else env)
    eval_env = ClipAction(evaluation_env(env_in)) if clip else evaluation_env(env_in)
    params = env.default_params if params is None else params
    extras = tuple(rollout_extras(env, params, extras))
    num_envs, num_steps = config.num_envs, config.num_steps

    def init(cfg, key) -> OnPolicyState:
        agent = make_agent(cfg, spec)
        key, agent_key, env_key = jax.random.split(key, 3)
        # one run over several devices: the same agent on each, its own envs and rollout randomness
        key, env_key = devices.shard_key(key), devices.shard_key(env_key)
        obs, env_state = jax.vmap(env.reset, in_axes=(0, None))(
            jax.random.split(env_key, devices.local(num_envs)), params
        )
        return learner.start(cfg, agent, key, agent_key, obs, env_state)

    def env_step(cfg, agent: OnPolicyAgent, state: OnPolicyState, _):
        key, act_key, step_key = jax.random.split(state.key, 3)
        action, log_prob, value = learner.act(cfg, agent, state, act_key)
        obs, env_state, reward, terminated, truncated, info = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
            jax.random.split(step_key, devices.local(num_envs)), state.env_state, action, params
        )
        state, transition = learner.record(
            cfg,
            state,
            key,
            action,
            log_prob,
            value,
            obs,
            reward,
            terminated,
            truncated,
            info["final_obs"],
            env_state,
            {name: info[name] for name in extras},
        )
        return state, (transition, episode_metrics(info["episode_done"], info, spec.reward_names))

    def iteration(cfg, agent: OnPolicyAgent, state: OnPolicyState, _):
        # COLLECT TRAJECTORIES
        state, (traj, sums) = jax.lax.scan(lambda s, x: env_step(cfg, agent, s, x), state, None, num_steps)
        # CALCULATE ADVANTAGE and UPDATE NETWORK
        state, metrics = learner.learn(cfg, agent, state, traj)
        return state, (jax.tree.map(lambda x: jnp.sum(x, axis=0), sums), metrics)

    def run_chunk(cfg, state: OnPolicyState):
        agent = make_agent(cfg, spec)
        state, (sums, updates) = jax.lax.scan(
            lambda s, x: iteration(cfg, agent, s, x), state, None, config.iterations_per_chunk
        )
        sums = devices.batch_sum(jax.tree.map(lambda x: jnp.sum(x, axis=0), sums))  # episodes of all devices
        metrics = finish_episode_metrics(sums, spec.reward_names)
        metrics |= jax.tree.map(jnp.mean, updates)
        metrics["env_steps"] = state.env_steps
        return state, metrics

    def evaluate(cfg, state: OnPolicyState, key):
        agent = make_agent(cfg, spec)
        key = devices.shard_key(key)  # one run over k devices: k × the episodes, averaged

        def act(s: OnPolicyState, obs, k_, mode):  # the training-time normalization, frozen
            return learner.policy(cfg, agent, s, obs, k_, mode)

        return evaluate_policy(
            eval_env, Agent(name, cfg, agent.init, act, agent.update), state, key, params=params
        )

    return Trainer(
        name,
        init,
        run_chunk,
        config.iterations_per_chunk * learner.steps_per_iteration,
        evaluate,
        spec=spec,
        shards={"num_envs": num_envs},
        replicated=lambda s: (s.agent_state, s.obs_stats, s.return_stats),
    )
