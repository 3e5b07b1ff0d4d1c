"""METRA (Park et al. 2024, "METRA: Scalable Unsupervised RL with Metric-Aware Abstraction"): skills z on the
unit sphere (discrete: centred one-hot), reward ``(φ(s′) − φ(s))ᵀ z``, and φ trained to maximize that reward
under the temporal-distance constraint ``mean_d (φ(s′) − φ(s))² ≤ 1`` on every transition, enforced by a dual
variable λ (reference code ``seohongpark/METRA``, ``iod/metra.py``, whose constraint averages over φ's d
dimensions, i.e. ‖Δφ‖² ≤ d; so with unit z a step pays at most √d):

- φ loss: ``−mean[Δφᵀz + λ · min(ε, c(s, s′) − mean_d Δφ²)]`` with λ detached and slack ε = 1e-3; METRA's
  distance c is 1 for every transition (``dual_dist="one"``), CSD (``agents.skills.csd``) learns it;
- λ = exp(log λ), log λ initialized at log 30 and trained by Adam on ``log λ · mean(penalty)`` (the penalty of
  the same batch, detached, before φ's step): λ rises while the constraint is violated, falls while slack;
- the order per gradient step: φ → λ → rewards recomputed with the new φ → SAC critic → actor → α, which is
  the composition layer's order (``rlkit.rewards``);
- SAC with target entropy −|A|/2, α initialized at 0.01 and learned, learning rates 1e-4, 2 × 1024 networks.

Composition: ``SAC × [the φ reward term] × Conditioned(env, unit sphere or centred one-hot)`` through
``agents.skills.distance``; this file holds the config and the φ / λ update, which CSD reuses with its metric.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax import struct

from agents.skills import distance
from agents.skills.distance import DistanceSkillConfig, PhiState
from envs.core import EnvSpec
from rlkit import conditioning, devices, optim
from rlkit.configs import param
from rlkit.networks import MLP
from rlkit.rewards import RewardTerm


@struct.dataclass
class DualFields:
    """METRA's dual: the temperature-like λ of its Lipschitz constraint (mixed into SLIM's PPO config too)."""

    dual_init: float = param(30.0, low=0.0, low_inclusive=False)
    """initial λ (METRA: 30)"""
    dual_slack: float = param(1e-3, low=0.0)
    """ε: the penalty is min(ε, c − mean Δφ²), so a satisfied constraint stops pulling (METRA: 1e-3)"""
    dual_lr: float = param(1e-4, low=0.0, low_inclusive=False)
    """Adam learning rate of log λ (METRA: dual_lr = common_lr)"""


@struct.dataclass
class METRAConfig(DistanceSkillConfig, DualFields):
    policy_lr: float = param(1e-4, low=0.0, low_inclusive=False)
    """actor learning rate (METRA: common_lr 1e-4)"""
    q_lr: float = param(1e-4, low=0.0, low_inclusive=False)
    """critic and temperature learning rate (METRA: common_lr 1e-4)"""
    init_alpha: float = param(0.01, low=0.0, low_inclusive=False)
    """initial temperature (METRA: alpha 0.01)"""
    target_entropy_scale: float = param(0.5, low=0.0)
    """target entropy = −scale·|A| (METRA: −|A|/2)"""
    hidden_sizes: tuple[int, ...] = param((1024, 1024), static=True)
    """hidden layers of actor and critics (METRA: 2 × 1024)"""


@struct.dataclass
class METRAState:
    phi: PhiState
    log_lambda: jax.Array
    lambda_opt: Any
    extra: Any = ()  # CSD: its distance model's state


def _net(config: METRAConfig) -> nn.Module:
    # in a Sequential: the parameter layout saved files hold (MLP once shadowed Module.init)
    return nn.Sequential([MLP(config.phi_hidden_sizes, config.skill_dim)])


def phi(config: METRAConfig):
    """``phi(phi_state, x) -> φ(x)``."""
    net = _net(config)
    return lambda p, x: net.apply(p.params, x)


def dual_term(
    name: str,
    config: METRAConfig,
    spec: EnvSpec,
    distance_fn: Callable[[Any, jax.Array, jax.Array], jax.Array] | None = None,
    extra: tuple | None = None,
) -> RewardTerm:
    """METRA's reward term; ``distance_fn(extra_state, s, s′) -> c[B]`` replaces the constant 1 (CSD) and
    ``extra = (init(key) -> state, update(state, s, s′) -> (state, metrics))`` trains what it reads (after λ's
    step, as the reference trains its distance predictor)."""
    net, phi_fn = _net(config), phi(config)
    tx, dual_tx = optax.adam(config.phi_lr), optax.adam(config.dual_lr)
    size = distance.phi_input_size(config, spec)

    def inputs(batch):
        return distance.raw_obs(config, batch["obs"]), distance.raw_obs(config, batch["next_obs"])

    def init(key, spec_) -> METRAState:
        k_phi, k_extra = jax.random.split(key)
        params = net.init(k_phi, jnp.zeros((size,), jnp.float32))
        log_lambda = jnp.log(jnp.asarray(config.dual_init, jnp.float32))  # swept: traced
        return METRAState(
            PhiState(params, {}, tx.init(params)),
            log_lambda,
            dual_tx.init(log_lambda),
            extra[0](k_extra) if extra else (),
        )

    def reward(state: METRAState, batch):
        s, s2 = inputs(batch)
        phi_s, phi_next, _ = distance.phi_pair(lambda x: phi_fn(state.phi, x), s, s2)
        return distance.skill_reward(phi_s, phi_next, batch["z"])

    def update(state: METRAState, batch, key):
        s, s2 = inputs(batch)
        c = jnp.ones(s.shape[0]) if distance_fn is None else distance_fn(state.extra, s, s2)
        lam = jnp.exp(state.log_lambda)

        def loss(params):
            phi_s, phi_next, _ = distance.phi_pair(lambda x: net.apply(params, x), s, s2)
            r = distance.skill_reward(phi_s, phi_next, batch["z"])
            penalty = jnp.minimum(config.dual_slack, c - jnp.mean(jnp.square(phi_next - phi_s), axis=-1))
            return -jnp.mean(r + lam * penalty), (r, penalty)

        params, opt, (value, (r, penalty)) = optim.gradient_step(
            loss, state.phi.params, state.phi.opt, tx, has_aux=True
        )
        phi_state = PhiState(params, {}, opt)
        # λ's step: d/d(log λ) of log λ · mean(penalty) is mean(penalty)
        dual_updates, dual_opt = dual_tx.update(
            devices.batch_mean(jnp.mean(penalty)), state.lambda_opt, state.log_lambda
        )
        new = METRAState(
            phi_state, optax.apply_updates(state.log_lambda, dual_updates), dual_opt, state.extra
        )
        metrics = {
            "loss/phi": value,
            "lambda": lam,
            "penalty": jnp.mean(penalty),
            "violated": jnp.mean(penalty < 0),
            "reward_before_update": jnp.mean(r),
        }
        if extra:
            extra_state, extra_metrics = extra[1](state.extra, s, s2)
            new, metrics = new.replace(extra=extra_state), metrics | extra_metrics
        return new, metrics

    return RewardTerm(name, init, reward, update)


def term(config: METRAConfig, spec: EnvSpec) -> RewardTerm:
    return dual_term("metra", config, spec)


skills = distance.skill_agent("metra", term, conditioning.unit_sphere)
make_metra, make_trainer, validate = skills.make_agent, skills.make_trainer, skills.validate
