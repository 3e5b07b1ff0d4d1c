"""TD3 (Fujimoto et al. 2018), checked against CleanRL ``td3_continuous_action.py``: twin critics with the min in
the target, target policy smoothing (Gaussian noise 0.2·scale clipped to ±0.5·scale), the actor and all targets
updated every ``policy_frequency`` = 2 critic steps, Gaussian exploration noise 0.1·scale, Polyak τ = 0.005, and
bootstrapping with (1 − terminated) only (truncation bootstraps from the pre-reset ``next_obs``).

Vector rewards follow SAC's convention (``agents.sac``, which says why): ``multi_critic=True`` keeps one Q output
per named term (or one network per term with ``separate_term_critics``), the target's twin min is the critic with
the lowest weighted sum (``rlkit.off_policy.weighted_min``) and the actor maximizes Σ_k w_k Q_k; with
``term_normalization="per_term"`` the critics are PopArt-normalized per term (outputs and targets in units of
each term's running target std, the last layer rescaled to preserve outputs) and the actor maximizes the weighted
normalized values. The target critic takes the output-preserving rescale at every critic step, also between the
delayed Polyak updates. With one term there is nothing to balance and the learner is plain TD3 exactly (tested).
Otherwise the terms are summed with ``reward_weights`` first.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from envs.core import Environment, EnvSpec
from envs.spaces import Box
from rlkit import optim
from rlkit.agent import Agent
from rlkit.configs import ConfigError, param
from rlkit.networks import DeterministicActor
from rlkit.off_policy import (
    ActorLossTerm,
    OffPolicyConfig,
    TermScale,
    actor_term_losses,
    advantage_scale,
    check_reward_weights,
    make_off_policy_trainer,
    term_critics,
    term_metrics,
    term_targets,
)
from rlkit.training import Trainer


@struct.dataclass
class TD3Config(OffPolicyConfig):
    # ---- static
    policy_frequency: int = param(2, static=True, low=1)
    """critic steps per actor / target step (the policy delay)"""
    learning_starts: int = param(25_000, static=True, low=0)
    """env steps of uniformly random actions before learning (CleanRL 25e3)"""
    # ---- sweepable
    learning_rate: float = param(3e-4, low=0.0, low_inclusive=False)
    """actor and critic learning rate"""
    exploration_noise: float = param(0.1, low=0.0)
    """std of the Gaussian exploration noise, in units of the action half-range"""
    policy_noise: float = param(0.2, low=0.0)
    """std of the target smoothing noise, in units of the action half-range"""
    noise_clip: float = param(0.5, low=0.0)
    """clip of the target smoothing noise, in units of the action half-range"""


@struct.dataclass
class TD3State:
    actor: Any
    target_actor: Any
    critic: Any
    target_critic: Any
    actor_opt: Any
    critic_opt: Any
    updates: jax.Array
    term_scale: TermScale  # running statistics of the TD targets, one entry per critic output
    adv_scale: TermScale  # running statistics of each term's action advantage (per-term normalization)


def validate(config: TD3Config, spec: EnvSpec) -> None:
    if not isinstance(spec.action_space, Box) or not spec.action_space.bounded:
        raise ConfigError(
            f"TD3 needs a bounded continuous (Box) action space; {spec.id} has {spec.action_space} "
            "(use PPO for discrete actions)"
        )
    check_reward_weights(config, spec)


def make_td3(config: TD3Config, spec: EnvSpec, *, actor_terms: Sequence[ActorLossTerm] = ()) -> Agent:
    """``actor_terms``: extra actor-loss terms added to TD3's (``rlkit.off_policy.ActorLossTerm``; TD3+BC)."""
    space = spec.action_space
    action_size = int(np.prod(space.shape))
    low, high = jnp.asarray(space.low), jnp.asarray(space.high)
    scale, bias = (high - low) / 2, (high + low) / 2
    k = spec.num_reward_terms
    weights = jnp.asarray(config.reward_weights or (1.0,) * k, jnp.float32)
    actor_net = DeterministicActor(config.hidden_sizes, action_size)
    num_q_out = k if config.multi_critic else 1
    critic_net = term_critics(
        config.hidden_sizes,
        config.num_critics,
        num_q_out,
        config.critic_layer_norm,
        config.separate_term_critics,
    )
    normalize_terms = config.multi_critic and k > 1 and config.term_normalization == "per_term"
    scale_args = (config.q_scale_rate, config.q_scale_floor)
    tx = optax.inject_hyperparams(optax.adam)(learning_rate=config.learning_rate)

    def init(key, spec_=None) -> TD3State:
        ka, kc = jax.random.split(key)
        obs = jnp.zeros(spec.observation_space.shape, jnp.float32)
        actor = actor_net.init(ka, obs)
        critic = critic_net.init(kc, obs, jnp.zeros(space.shape, jnp.float32))
        return TD3State(
            actor,
            actor,
            critic,
            critic,
            tx.init(actor),
            tx.init(critic),
            jnp.zeros((), jnp.int32),
            TermScale.zeros(num_q_out),
            TermScale.zeros(num_q_out),
        )

    def act(state: TD3State, obs, key, mode="explore"):
        a = actor_net.apply(state.actor, obs) * scale + bias
        if mode == "deterministic":
            return a
        noise = jax.random.normal(key, a.shape) * scale * config.exploration_noise
        return jnp.clip(a + noise, low, high)

    def scalarize(reward):
        r = jnp.reshape(reward, (reward.shape[0], k))
        return r if config.multi_critic else jnp.sum(r * weights, axis=-1, keepdims=True)

    def update(state: TD3State, batch, key):
        # ---- CRITIC: clipped double-Q target with target policy smoothing
        noise = (
            jnp.clip(
                jax.random.normal(key, batch["action"].shape) * config.policy_noise,
                -config.noise_clip,
                config.noise_clip,
            )
            * scale
        )
        next_a = jnp.clip(
            actor_net.apply(state.target_actor, batch["next_obs"]) * scale + bias + noise, low, high
        )
        q_next = critic_net.apply(state.target_critic, batch["next_obs"], next_a)  # [N, B, K]
        not_done = 1.0 - batch["terminated"].astype(jnp.float32)[:, None]
        reward = scalarize(batch["reward"])
        term_scale, target, (critic, target_critic) = term_targets(
            state.term_scale, (state.critic, state.target_critic), q_next, reward, not_done, config.gamma,
            weights, *scale_args, normalize=normalize_terms,
        )  # fmt: skip
        q_mu, q_scale = term_scale.stats(*scale_args)  # [K]
        target = jax.lax.stop_gradient(target)

        def critic_loss(params):
            q = critic_net.apply(params, batch["obs"], batch["action"])
            return jnp.sum(jnp.mean((q - target[None]) ** 2, axis=1)), q

        critic, critic_opt, (q_loss, q_pred) = optim.gradient_step(
            critic_loss, critic, state.critic_opt, tx, has_aux=True
        )

        # ---- ACTOR + TARGETS, every policy_frequency critic steps (a select, not a branch, under vmap); under
        # per-term normalization each term's Q̂ over the running std of its action advantage (as SAC)
        adv_scale, adv_sigma = state.adv_scale, jnp.ones(num_q_out)
        by_advantage = normalize_terms and config.actor_term_scale == "advantage"
        if by_advantage:
            a_pi = actor_net.apply(state.actor, batch["obs"]) * scale + bias
            adv_scale, adv_sigma = advantage_scale(
                adv_scale,
                critic_net.apply(critic, batch["obs"], batch["action"])[:1],
                critic_net.apply(critic, batch["obs"], a_pi)[:1],
                *scale_args,
            )

        def actor_loss(params):
            a = actor_net.apply(params, batch["obs"]) * scale + bias
            q = critic_net.apply(critic, batch["obs"], a)[0]  # CleanRL: Q1 only (normalized under per_term)
            q = q / adv_sigma if by_advantage else q
            q_fn = lambda obs, act: critic_net.apply(critic, obs, act)  # noqa: E731
            extra, extra_metrics = actor_term_losses(
                actor_terms, batch, a, None, q_fn, jax.random.fold_in(key, 1)
            )
            base = -jnp.mean(jnp.sum(q * weights, axis=-1) if config.multi_critic else q[:, 0])
            return base + extra, extra_metrics

        actor, actor_opt, (pi_loss, extra_metrics) = optim.gradient_step(
            actor_loss, state.actor, state.actor_opt, tx, has_aux=True
        )
        target_actor = optax.incremental_update(actor, state.target_actor, config.tau)
        delayed = (state.updates + 1) % config.policy_frequency == 0
        keep = lambda new, old: jax.tree.map(lambda n, o: jnp.where(delayed, n, o), new, old)  # noqa: E731
        # the target critics take the output-preserving rescale every step (delayed or not): their outputs keep
        # their meaning in reward units while the statistics move
        target_critic = keep(optax.incremental_update(critic, target_critic, config.tau), target_critic)
        new = TD3State(
            keep(actor, state.actor),
            keep(target_actor, state.target_actor),
            critic,
            target_critic,
            keep(actor_opt, state.actor_opt),
            critic_opt,
            state.updates + 1,
            term_scale,
            adv_scale,
        )
        q_raw = q_pred * q_scale + q_mu if normalize_terms else q_pred
        metrics = {"loss/critic": q_loss, "loss/actor": pi_loss, "q_mean": jnp.mean(q_raw)} | extra_metrics
        if config.multi_critic and k > 1:
            metrics |= term_metrics(
                spec.reward_names, q_pred, target, q_scale, q_mu if normalize_terms else None, adv_sigma
            )
        return new, metrics

    return Agent("td3", config, init, act, update)


def make_trainer(config: TD3Config, env: Environment, params=None) -> Trainer:
    validate(config, env.spec)
    return make_off_policy_trainer("td3", env, make_td3, config, params=params)
