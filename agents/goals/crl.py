"""Contrastive RL (Eysenbach et al. 2022, "Contrastive Learning as Goal-Conditioned RL"; JaxGCRL, Bortkiewicz et
al. 2025, ``jaxgcrl/agents/crl``) and single-goal contrastive RL (Liu et al. 2025, "A Single Goal is All You
Need"; ``graliuce/sgcrl``).

- The critic is a representation: ``f(s, a, g) = φ(s, a)ᵀψ(g)`` (``energy="dot"``, contrastive RL and sgcrl) or
  ``−‖φ(s, a) − ψ(g)‖`` (``"norm"``, JaxGCRL's default), φ and ψ MLPs onto ``repr_dim`` = 64. It is trained by
  forward InfoNCE over the batch: row i's positive is its own goal (the diagonal), every other row's goal a
  negative, ``−mean_i [f_ii − logsumexp_j f_ij]``, plus ``logsumexp_coef · mean_i (logsumexp_j f_ij)²`` (0.1 in
  JaxGCRL, 0.01 in sgcrl's CPC loss), which pins the free per-row constant of InfoNCE so logits stay bounded.
- Goals are hindsight goals: the achieved goal of a state ``s_{t+Δ}`` of the same episode, ``Δ ≥ 1`` with
  weights ``γ^(Δ−1)`` (``rlkit.data_sources.hindsight_goals``: JaxGCRL's ``flatten_batch``), so ``exp f`` learns
  the discounted state-occupancy ratio and is a Q-function of the goal-reaching reward up to a per-goal constant.
  No reward, no TD target, no target networks.
- The actor is a tanh-Gaussian ``π(a | s, g)`` maximizing ``f(s, π(s, g), g) − α log π`` on the batch's goals;
  ``actor_shuffled_goals`` of the rows take another row's goal instead (sgcrl's ``random_goals`` 0.5); α is
  learned towards target entropy ``−|A|/2`` (JaxGCRL) unless ``autotune=False`` fixes it at ``init_alpha``.
- Single-goal CRL (``SGCRLConfig``, registry ``sgcrl``) is the same learner with every training episode aimed
  at one ``goal`` (data collection), learning still on hindsight goals, and no entropy bonus (α = 0), sgcrl's
  settings otherwise (logsumexp 0.01, half the actor's goals shuffled).

Composition: ``[this learner] × GoalConditioned(env, goals) × hindsight_goals`` on the off-policy loop
(``agents.goals.base``); this file holds the config, the two losses and the update.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from agents.goals import base
from envs.core import Environment, EnvSpec
from envs.spaces import Box
from rlkit import configs, data_sources, optim
from rlkit.agent import Agent
from rlkit.configs import ConfigError, param
from rlkit.distributions import BoxTanhGaussian
from rlkit.networks import MLP, GaussianActor
from rlkit.off_policy import ReplayLoopConfig, make_off_policy_trainer
from rlkit.training import Trainer


@struct.dataclass
class CRLConfig(ReplayLoopConfig, base.GoalFields):
    hidden_sizes: tuple[int, ...] = param((256, 256), static=True)
    """hidden layers of the actor, φ and ψ (JaxGCRL: 2 × 256)"""
    repr_dim: int = param(64, static=True, low=1)
    """size of φ(s, a) and ψ(g) (JaxGCRL, sgcrl: 64)"""
    energy: str = param("dot", static=True, choices=("dot", "norm"))
    """critic f(s, a, g): "dot" φᵀψ (contrastive RL, sgcrl) or "norm" −‖φ − ψ‖ (JaxGCRL's default)"""
    logsumexp_coef: float = param(0.1, low=0.0)
    """weight of mean (logsumexp_j f_ij)² in the critic loss (JaxGCRL 0.1)"""
    policy_lr: float = param(3e-4, low=0.0, low_inclusive=False)
    """actor learning rate (JaxGCRL 3e-4)"""
    critic_lr: float = param(3e-4, low=0.0, low_inclusive=False)
    """φ, ψ and temperature learning rate (JaxGCRL 3e-4)"""
    autotune: bool = param(True, static=True)
    """learn α towards the target entropy; False keeps α = init_alpha (0: no entropy bonus)"""
    init_alpha: float = param(1.0, low=0.0)
    """initial (or, without autotune, fixed) temperature (JaxGCRL: log α = 0)"""
    target_entropy_scale: float = param(0.5, low=0.0)
    """target entropy = −scale·|A| (JaxGCRL: −|A|/2)"""
    actor_shuffled_goals: float = param(0.0, low=0.0, high=1.0)
    """share of the actor's rows that take another row's goal (sgcrl: 0.5)"""


@struct.dataclass
class SGCRLConfig(CRLConfig):
    """Single-goal CRL: ``goal`` is required; sgcrl's settings."""

    autotune: bool = param(False, static=True)
    """learn α; sgcrl: no entropy bonus"""
    init_alpha: float = param(0.0, low=0.0)
    """the fixed temperature (sgcrl: 0)"""
    logsumexp_coef: float = param(0.01, low=0.0)
    """weight of mean (logsumexp_j f_ij)² (sgcrl's CPC loss: 0.01)"""
    actor_shuffled_goals: float = param(0.5, low=0.0, high=1.0)
    """share of the actor's rows with another row's goal (sgcrl: random_goals 0.5)"""


@struct.dataclass
class CRLState:
    actor: Any
    critic: Any  # {"sa": φ's params, "g": ψ's params}
    log_alpha: jax.Array
    actor_opt: Any
    critic_opt: Any
    alpha_opt: Any


def validate(config: CRLConfig, spec: EnvSpec) -> None:
    configs.validate(config)
    if not isinstance(spec.action_space, Box) or not spec.action_space.bounded:
        raise ConfigError(
            f"CRL needs a bounded continuous (Box) action space; {spec.id} has {spec.action_space}"
        )
    if config.autotune and not np.all(np.asarray(config.init_alpha) > 0):
        raise ConfigError(
            f"{type(config).__name__}: autotune learns log α and needs init_alpha > 0, got {config.init_alpha}; "
            "set autotune=False for a fixed α (0: no entropy bonus)"
        )
    if isinstance(config, SGCRLConfig) and config.goal is None:
        raise ConfigError(
            "SGCRLConfig.goal is None: single-goal CRL needs the one goal data collection aims at, e.g. "
            "goal=(5.5, -4.5) (point-spiral's far end); use agent crl to draw goals per episode"
        )
    base.check_goals(config, spec)


def energy(config: CRLConfig, sa: jax.Array, g: jax.Array) -> jax.Array:
    """f of each row: representations ``sa [B, R]``, ``g [B, R]`` → ``[B]``."""
    if config.energy == "dot":
        return jnp.sum(sa * g, axis=-1)
    return -jnp.sqrt(jnp.sum((sa - g) ** 2, axis=-1) + 1e-6)


def pair_logits(config: CRLConfig, sa: jax.Array, g: jax.Array) -> jax.Array:
    """f of every pair, ``[B, B]`` with ``[i, j] = f(s_i, a_i, g_j)``, by matrix products (never ``[B, B, R]``)."""
    dot = sa @ g.T
    if config.energy == "dot":
        return dot
    sq = jnp.sum(sa**2, -1)[:, None] + jnp.sum(g**2, -1)[None, :] - 2.0 * dot
    return -jnp.sqrt(jnp.maximum(sq, 0.0) + 1e-6)


def infonce_loss(logits: jax.Array, logsumexp_coef) -> tuple[jax.Array, dict]:
    """Forward InfoNCE on ``logits [B, B]`` (positives on the diagonal) plus the logsumexp regularizer."""
    lse = jax.nn.logsumexp(logits, axis=1)
    loss = -jnp.mean(jnp.diag(logits) - lse) + logsumexp_coef * jnp.mean(lse**2)
    eye = jnp.eye(logits.shape[0])
    metrics = {
        "crl/accuracy": jnp.mean(jnp.argmax(logits, axis=1) == jnp.arange(logits.shape[0])),
        "crl/logits_pos": jnp.sum(logits * eye) / jnp.sum(eye),
        "crl/logits_neg": jnp.sum(logits * (1 - eye)) / jnp.sum(1 - eye),
        "crl/logsumexp": jnp.mean(lse),
    }
    return loss, metrics


def make_crl(config: CRLConfig, spec: EnvSpec, name: str = "crl") -> Agent:
    """The agent on the goal-conditioned spec (observation ``concat(s, g)``)."""
    space = spec.action_space
    action_size = int(np.prod(space.shape))
    g_size = base.goal_size(config, spec)
    dist = BoxTanhGaussian(space.low, space.high)
    actor_net = GaussianActor(config.hidden_sizes, action_size)
    # in a Sequential: the parameter layout saved files hold (MLP once shadowed Module.init)
    phi, psi = (nn.Sequential([MLP(config.hidden_sizes, config.repr_dim)]) for _ in range(2))
    actor_tx = optax.inject_hyperparams(optax.adam)(learning_rate=config.policy_lr)
    critic_tx = optax.inject_hyperparams(optax.adam)(learning_rate=config.critic_lr)
    alpha_tx = optax.inject_hyperparams(optax.adam)(learning_rate=config.critic_lr)
    target_entropy = -config.target_entropy_scale * action_size

    def split(obs):
        return obs[..., :-g_size], obs[..., -g_size:]

    def represent(critic, state, action, goal):
        return phi.apply(critic["sa"], jnp.concatenate([state, action], -1)), psi.apply(critic["g"], goal)

    def init(key, spec_=None) -> CRLState:
        ka, ks, kg = jax.random.split(key, 3)
        obs = jnp.zeros(spec.observation_space.shape, jnp.float32)
        state, goal = split(obs)
        actor = actor_net.init(ka, obs)
        critic = {
            "sa": phi.init(ks, jnp.concatenate([state, jnp.zeros(action_size)])),
            "g": psi.init(kg, goal),
        }
        log_alpha = jnp.log(jnp.maximum(jnp.asarray(config.init_alpha, jnp.float32), 1e-30))
        return CRLState(
            actor, critic, log_alpha, actor_tx.init(actor), critic_tx.init(critic), alpha_tx.init(log_alpha)
        )

    def act(state: CRLState, obs, key, mode="explore"):
        mean, log_std = actor_net.apply(state.actor, obs)
        return dist.mode(mean) if mode == "deterministic" else dist.sample(key, mean, log_std)[0]

    def log_prob(state: CRLState, obs, action):
        return dist.log_prob(action, *actor_net.apply(state.actor, obs))

    def update(state: CRLState, batch, key):
        s, g = split(batch["obs"])
        alpha = jnp.exp(state.log_alpha) if config.autotune else jnp.asarray(config.init_alpha, jnp.float32)

        # ---- CRITIC: InfoNCE over the batch, row i's own (hindsight) goal its positive
        def critic_loss(critic):
            sa, gr = represent(critic, s, batch["action"], g)
            return infonce_loss(pair_logits(config, sa, gr), config.logsumexp_coef)

        critic, critic_opt, (c_loss, c_metrics) = optim.gradient_step(
            critic_loss, state.critic, state.critic_opt, critic_tx, has_aux=True
        )

        # ---- ACTOR: maximize f(s, π(s, g), g) − α log π with the updated critic (JaxGCRL's order)
        rows = jnp.arange(s.shape[0])
        shuffled = rows < config.actor_shuffled_goals * s.shape[0]
        g_pi = jnp.where(shuffled[:, None], jnp.roll(g, 1, axis=0), g)

        def actor_loss(actor):
            a, logp = dist.sample(key, *actor_net.apply(actor, jnp.concatenate([s, g_pi], -1)))
            return jnp.mean(alpha * logp - energy(config, *represent(critic, s, a, g_pi))), logp

        actor, actor_opt, (a_loss, logp) = optim.gradient_step(
            actor_loss, state.actor, state.actor_opt, actor_tx, has_aux=True
        )

        # ---- TEMPERATURE: −α (log π + target entropy), as SAC
        gap = jax.lax.stop_gradient(logp + target_entropy)
        tuned, alpha_opt, t_loss = optim.gradient_step(
            lambda la: jnp.mean(-jnp.exp(la) * gap), state.log_alpha, state.alpha_opt, alpha_tx
        )
        log_alpha = tuned if config.autotune else state.log_alpha

        new = CRLState(actor, critic, log_alpha, actor_opt, critic_opt, alpha_opt)
        metrics = {"loss/critic": c_loss, "loss/actor": a_loss, "loss/alpha": t_loss, "alpha": alpha}
        return new, metrics | c_metrics | {"entropy": -jnp.mean(logp)}

    return Agent(name, config, init, act, update, log_prob)


def make_sgcrl(config: SGCRLConfig, spec: EnvSpec) -> Agent:
    return make_crl(config, spec, "sgcrl")


def data(config: CRLConfig, spec: EnvSpec) -> data_sources.Source:
    """Hindsight goals with γ^(Δ−1) weights, every row relabelled (``spec``: the unconditioned env's)."""
    dims = base.goal_dims(config, spec)
    return data_sources.hindsight_goals(len(dims), dims, future="geometric", gamma="gamma")


def make_trainer(config: CRLConfig, env: Environment, params=None) -> Trainer:
    validate(config, env.spec)
    name = "sgcrl" if isinstance(config, SGCRLConfig) else "crl"
    make = make_sgcrl if name == "sgcrl" else make_crl
    return make_off_policy_trainer(
        name, base.goal_env(config, env), make, config, params=params, data=data(config, env.spec)
    )
