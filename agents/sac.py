"""Soft Actor-Critic (Haarnoja et al. 2018, "SAC: Algorithms and Applications"), checked against CleanRL
``sac_continuous_action.py`` and SB3 in the details that decide whether it learns:

- an ensemble of ``num_critics`` Q networks (2 = twin critics) with Polyak-averaged targets (τ = 0.005); the
  target takes the min over ``num_min_critics`` critics drawn at random per update (REDQ / RLPD; with 2 critics
  that is the usual twin min), optional LayerNorm in critics (RLPD); the actor takes the min over the twin
  critics (CleanRL, SB3) but the ensemble mean over more (``actor_q``: REDQ, RLPD);
- a tanh-squashed Gaussian actor, log-std squashed into [−5, 2], with the exact change-of-variables correction
  (including the action-scale term), acting in the env's action box;
- a learned temperature α = exp(log α) with target entropy −scale·|A| (scale 1 by default; METRA uses ½);
- bootstrap with (1 − terminated) only: a time-limit truncation still bootstraps from ``next_obs``, which the loop
  fills with the pre-reset observation;
- one actor and α step per critic step (SB3's schedule; CleanRL's ``policy_frequency=2`` with two actor steps
  every other step is the same count).

Multi-critic (SLIM's idea carried to an off-policy learner): with K named reward terms and ``multi_critic=True``
every critic outputs K values (``separate_term_critics``: one network per term instead of one K-output head), each
term has its own TD target, and the actor maximizes Σ_k w_k Q_k. The target's min over critics picks, per
sample, the one critic whose weighted sum is lowest and takes its per-term values (``rlkit.off_policy.
weighted_min``; a min per term would sit below the scalar min, further with more terms).
With ``multi_critic=False`` the terms are summed with ``reward_weights`` first (the single-critic baseline).

``term_normalization="none"``: the critics regress raw per-term targets and the entropy bonus of the soft target is
split over the terms in proportion 1/Σw, so the weighted sum of the per-term targets is the scalar soft target.

``term_normalization="per_term"`` (the default with ≥ 2 terms): PopArt (van Hasselt et al. 2016) per term. Each
critic output is a normalized value (Q_k − μ_k) / σ_k, with μ_k, σ_k the debiased moving mean and std of term k's
TD targets (``rlkit.off_policy.TermScale``; the critics' mean target feeds them, so a term's statistics do not
depend on which critic the other terms pick); targets are normalized with the updated statistics, and the
critics' last layer is rescaled as the statistics move so that their outputs keep their meaning in reward units
(``rescale_term_outputs``: PopArt's output preservation). Every term's critic then regresses O(1) targets — the
off-policy counterpart of PPO's per-term reward scaling (the min picks the critic with the lowest Σ_k w_k Q_k /
σ_k). The actor maximizes Σ_k w_k Q̂_k / σ^A_k, σ^A_k the running std of term k's action advantage Q̂_k(s,
a_data) − Q̂_k(s, a_π) (``rlkit.off_policy.advantage_scale``), the counterpart of SLIM's per-term advantage
normalization: a target's std mixes in how much a term varies over *states* (reach's by far the most), while
the actor only sees how it varies with the *action*; ``actor_term_scale="none"`` keeps Σ_k w_k Q̂_k. The per-term
critics carry no entropy bonus (jaxrl's ``backup_entropy=False``): σ_k would measure each term's entropy slice and
the actor would amplify the small terms' slices ~1/σ_k times; the entropy is the actor's −α log π alone. The std, not the raw magnitude, is the scale so that a constant offset (the always
negative reach term) does not count as scale; multiplying one term's reward by c multiplies its μ and σ by c and
leaves every update unchanged (tested). σ_k is floored at ``q_scale_floor``, so a term whose targets are nearly
constant (a sparse reward not yet received) is amplified at most 1/floor times. With one term there is nothing
to balance: normalization is off, and the learner is plain SAC exactly (tested).

Measured (``experiments/multi_critic_push2d.py``, README): per-term normalized SAC is scale-invariant on push2d
(the same returns with the reach term ×10), but at 150k env steps it balances the terms into a cautious policy
that does not reach the block (success 0.23 vs the single critic's 1.00 at native scales).
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
from rlkit.distributions import BoxTanhGaussian
from rlkit.networks import GaussianActor
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
    weighted_min,
)
from rlkit.training import Trainer


@struct.dataclass
class SACConfig(OffPolicyConfig):
    # ---- static: shapes and structure (fixed for one compiled program)
    num_min_critics: int = param(2, static=True, low=1)
    """critics drawn at random for the min in the target (REDQ/RLPD); equal to num_critics = min over all"""
    actor_q: str = param("auto", static=True, choices=("auto", "min", "mean"))
    """how the actor's objective reduces the critic ensemble (per reward term): "min" over all critics
    (twin-critic SAC: CleanRL, SB3), "mean" (REDQ, Chen et al. 2021, Alg. 1 line 13; RLPD); "auto" is "min" for
    num_critics <= 2 and "mean" above"""
    # ---- sweepable: leaves of the pytree, vmapped over the runs axis
    policy_lr: float = param(3e-4, low=0.0, low_inclusive=False)
    """actor learning rate (CleanRL)"""
    q_lr: float = param(1e-3, low=0.0, low_inclusive=False)
    """critic and temperature learning rate (CleanRL)"""
    init_alpha: float = param(1.0, low=0.0, low_inclusive=False)
    """initial temperature"""
    autotune: bool = param(True, static=True)
    """learn the temperature to hit the target entropy; False keeps alpha = init_alpha"""
    target_entropy_scale: float = param(1.0, low=0.0)
    """target entropy = -scale * |A|"""


@struct.dataclass
class SACState:
    actor: Any
    critic: Any
    target_critic: Any
    log_alpha: jax.Array
    actor_opt: Any
    critic_opt: Any
    alpha_opt: Any
    updates: jax.Array
    term_scale: TermScale  # running statistics of the TD targets, one entry per critic output
    adv_scale: TermScale  # running statistics of each term's action advantage (per-term normalization)


def validate(config: SACConfig, spec: EnvSpec) -> None:
    if not isinstance(spec.action_space, Box) or not spec.action_space.bounded:
        raise ConfigError(
            f"SAC needs a bounded continuous (Box) action space; {spec.id} has {spec.action_space} "
            "(use PPO for discrete actions)"
        )
    if config.num_min_critics > config.num_critics:
        raise ConfigError(
            f"SACConfig.num_min_critics = {config.num_min_critics} > num_critics = {config.num_critics}"
        )
    # multi_critic on a one-term env without weights is allowed: it reduces exactly to SAC (tested)
    check_reward_weights(config, spec)


def make_sac(
    config: SACConfig, spec: EnvSpec, *, actor_terms: Sequence[ActorLossTerm] = (), log_prior=None
) -> Agent:
    """``actor_terms``: extra actor-loss terms added to SAC's (``rlkit.off_policy.ActorLossTerm``).
    ``log_prior(obs, action) -> [B]``: a prior policy's log-density; the entropy term α log π becomes the KL term
    α (log π − log π_prior) in the actor loss and the soft target alike (demonstration-regularized RL)."""
    space = spec.action_space
    action_size = int(np.prod(space.shape))
    dist = BoxTanhGaussian(space.low, space.high)
    k = spec.num_reward_terms
    num_q_out = k if config.multi_critic else 1
    weights = jnp.asarray(config.reward_weights or (1.0,) * k, jnp.float32)
    actor_net = GaussianActor(config.hidden_sizes, action_size)
    critic_net = term_critics(
        config.hidden_sizes,
        config.num_critics,
        num_q_out,
        config.critic_layer_norm,
        config.separate_term_critics,
    )
    normalize_terms = config.multi_critic and k > 1 and config.term_normalization == "per_term"
    # checked here too: make_sac is also called without validate (load_agent, tests), and a typo must not fall
    # back to the min silently
    actor_mean = {"min": False, "mean": True, "auto": config.num_critics > 2}.get(config.actor_q)
    if actor_mean is None:
        raise ConfigError(
            f"SACConfig.actor_q = {config.actor_q!r} is not allowed; choose one of ['auto', 'min', 'mean']"
        )
    actor_tx = optax.inject_hyperparams(optax.adam)(learning_rate=config.policy_lr)
    critic_tx = optax.inject_hyperparams(optax.adam)(learning_rate=config.q_lr)
    alpha_tx = optax.inject_hyperparams(optax.adam)(learning_rate=config.q_lr)
    target_entropy = -config.target_entropy_scale * action_size
    scale_args = (config.q_scale_rate, config.q_scale_floor)

    def policy(actor_params, obs, key):
        return dist.sample(key, *actor_net.apply(actor_params, obs))

    def init(key, spec_=None) -> SACState:
        ka, kc = jax.random.split(key)
        obs = jnp.zeros(spec.observation_space.shape, jnp.float32)
        act = jnp.zeros(space.shape, jnp.float32)
        actor = actor_net.init(ka, obs)
        critic = critic_net.init(kc, obs, act)
        log_alpha = jnp.log(jnp.asarray(config.init_alpha, jnp.float32))
        return SACState(
            actor,
            critic,
            critic,
            log_alpha,
            actor_tx.init(actor),
            critic_tx.init(critic),
            alpha_tx.init(log_alpha),
            jnp.zeros((), jnp.int32),
            TermScale.zeros(num_q_out),
            TermScale.zeros(num_q_out),
        )

    def log_prob(state: SACState, obs, action):
        return dist.log_prob(action, *actor_net.apply(state.actor, obs))

    def act(state: SACState, obs, key, mode="explore"):
        if mode == "deterministic":
            return dist.mode(actor_net.apply(state.actor, obs)[0])
        return policy(state.actor, obs, key)[0]

    def scalarize(reward):
        """[B] or [B, K] rewards → [B, num_q_out]."""
        r = jnp.reshape(reward, (reward.shape[0], k))
        return r if config.multi_critic else jnp.sum(r * weights, axis=-1, keepdims=True)

    def target_critics(q, key):
        """q: [N, B, K] → the random subset of num_min_critics critics the target's min is taken over."""
        if config.num_min_critics == config.num_critics:
            return q
        return q[jax.random.choice(key, config.num_critics, (config.num_min_critics,), replace=False)]

    def update(state: SACState, batch, key):
        k_next, k_min, k_pi = jax.random.split(key, 3)
        alpha = jnp.exp(state.log_alpha)
        # ---- CRITIC: soft TD target per term, bootstrapping through truncation
        next_a, next_logp = policy(state.actor, batch["next_obs"], k_next)
        if log_prior is not None:
            next_logp = next_logp - log_prior(batch["next_obs"], next_a)
        q_next = target_critics(critic_net.apply(state.target_critic, batch["next_obs"], next_a), k_min)
        not_done = 1.0 - batch["terminated"].astype(jnp.float32)[:, None]
        reward = scalarize(batch["reward"])
        # the entropy bonus of the soft target split over terms (1/Σw each), so that without normalization the
        # weighted sum of the per-term targets is the scalar soft target; PopArt-normalized critics carry none (σ_k
        # would measure each term's entropy slice and the actor would amplify the small terms' slices ~1/σ_k)
        entropy_share = alpha * next_logp[:, None] / (jnp.sum(weights) if config.multi_critic else 1.0)
        term_scale, target, (critic, target_critic) = term_targets(
            state.term_scale, (state.critic, state.target_critic), q_next, reward, not_done, config.gamma,
            weights, *scale_args, normalize=normalize_terms, entropy=entropy_share,
        )  # fmt: skip
        q_mu, q_scale = term_scale.stats(*scale_args)  # [K]
        target = jax.lax.stop_gradient(target)

        def critic_loss(critic_params):
            q = critic_net.apply(critic_params, batch["obs"], batch["action"])  # [N, B, K]
            # sum over critics and terms of each one's MSE (CleanRL: qf1_loss + qf2_loss)
            return jnp.sum(jnp.mean((q - target[None]) ** 2, axis=1)), q

        critic, critic_opt, (q_loss, q_pred) = optim.gradient_step(
            critic_loss, critic, state.critic_opt, critic_tx, has_aux=True
        )

        # ---- ACTOR: maximize Σ_k w_k Q_k / σ^A_k − α log π (with the updated critics, as CleanRL; σ^A_k the
        # running std of term k's action advantage under per-term normalization, else 1), Q_k the min over
        # critics or their mean (actor_q): REDQ (Alg. 1 line 13) and RLPD (`qs.mean(axis=0)`) average the whole
        # ensemble here and keep the pessimistic min for the target
        adv_scale, adv_sigma = state.adv_scale, jnp.ones(num_q_out)
        if normalize_terms and config.actor_term_scale == "advantage":
            a_pi, _ = policy(state.actor, batch["obs"], k_pi)
            q_data = critic_net.apply(critic, batch["obs"], batch["action"])
            adv_scale, adv_sigma = advantage_scale(
                adv_scale, q_data, critic_net.apply(critic, batch["obs"], a_pi), *scale_args
            )

        def actor_loss(actor_params):
            a, logp = policy(actor_params, batch["obs"], k_pi)
            if log_prior is not None:  # the KL to the prior in place of the entropy
                logp = logp - log_prior(batch["obs"], a)
            qs = critic_net.apply(critic, batch["obs"], a)  # [N, B, K]
            if normalize_terms and config.actor_term_scale == "advantage":
                qs = qs / adv_sigma
            q = jnp.mean(qs, axis=0) if actor_mean else weighted_min(qs, weights)  # [B, K]
            q_total = jnp.sum(q * weights, axis=-1) if config.multi_critic else q[:, 0]
            q_fn = lambda obs, act: critic_net.apply(critic, obs, act)  # noqa: E731
            extra, extra_metrics = actor_term_losses(actor_terms, batch, a, logp, q_fn, k_pi)
            return jnp.mean(alpha * logp - q_total) + extra, (logp, extra_metrics)

        actor, actor_opt, (pi_loss, (logp, extra_metrics)) = optim.gradient_step(
            actor_loss, state.actor, state.actor_opt, actor_tx, has_aux=True
        )

        # ---- TEMPERATURE: CleanRL's loss −α (log π + target entropy)
        entropy_gap = jax.lax.stop_gradient(logp + target_entropy)

        def alpha_loss(log_alpha):
            return jnp.mean(-jnp.exp(log_alpha) * entropy_gap)

        tuned, alpha_opt, a_loss = optim.gradient_step(alpha_loss, state.log_alpha, state.alpha_opt, alpha_tx)
        log_alpha = tuned if config.autotune else state.log_alpha

        target_critic = optax.incremental_update(critic, target_critic, config.tau)
        new = SACState(
            actor,
            critic,
            target_critic,
            log_alpha,
            actor_opt,
            critic_opt,
            alpha_opt,
            state.updates + 1,
            term_scale,
            adv_scale,
        )
        metrics = {
            "loss/critic": q_loss,
            "loss/actor": pi_loss,
            "loss/alpha": a_loss,
            "alpha": alpha,
            "q_mean": jnp.mean(q_pred * q_scale + q_mu) if normalize_terms else jnp.mean(q_pred),
        } | extra_metrics
        if log_prior is None:
            metrics["entropy"] = -jnp.mean(logp)
        else:  # logp holds log π − log π_prior: a one-sample estimate of KL(π ‖ π_prior)
            metrics["kl_to_prior"] = jnp.mean(logp)
        if config.multi_critic and k > 1:
            metrics |= term_metrics(
                spec.reward_names, q_pred, target, q_scale, q_mu if normalize_terms else None, adv_sigma
            )
        return new, metrics

    return Agent("sac", config, init, act, update, log_prob)


def make_trainer(config: SACConfig, env: Environment, params=None) -> Trainer:
    validate(config, env.spec)
    return make_off_policy_trainer("sac", env, make_sac, config, params=params)
