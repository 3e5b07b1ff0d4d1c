"""CSD (Park et al. 2023, "Controllability-Aware Unsupervised Skill Discovery"): METRA's dual-constrained φ, but
the distance a step may cover is learned: a Gaussian model q(s′ − s | s) = N(μ(s), diag σ(s)²) of the
transitions the agent makes, and the constraint ``mean_d Δφ² ≤ c(s, s′)`` with

    c(s, s′) = mean_d ((s′ − s − μ(s)) · w(s))²,   w = σ⁻¹ / geometric_mean(σ⁻¹)

(reference: ``seohongpark/CSD-locomotion`` and METRA's ``dual_dist="s2_from_s"`` branch of ``iod/metra.py``), so a
transition the agent can already make easily (small, predictable) is short, a rare controllable one is long, and
skills are pushed towards the latter. The inverse std is normalized by its geometric mean over dimensions, so c
is invariant to a common scale of σ. λ starts at 3000 with slack 1e-6 (CSD's ``--dual_init_lambda 3000
--dual_slack 1e-6``). The model is trained by likelihood on the same batch after λ's step; the constraint
reads it before (the reference's order), and no gradient from φ's loss reaches it.

Composition: METRA's term (``agents.skills.metra.dual_term``) with this distance; this file holds the config
and the distance model.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax import struct

from agents.skills import distance, metra
from envs.core import EnvSpec
from rlkit import conditioning, optim
from rlkit.configs import param
from rlkit.networks import MLP
from rlkit.rewards import RewardTerm


@struct.dataclass
class CSDConfig(metra.METRAConfig):
    dual_init: float = param(3000.0, low=0.0, low_inclusive=False)
    """initial λ (CSD: 3000)"""
    dual_slack: float = param(1e-6, low=0.0)
    """ε of the penalty min(ε, c − mean Δφ²) (CSD: 1e-6)"""
    model_hidden_sizes: tuple[int, ...] = param((1024, 1024), static=True)
    """hidden layers of the transition model q(s′ − s | s)"""
    model_lr: float = param(1e-4, low=0.0, low_inclusive=False)
    """learning rate of the transition model"""


@struct.dataclass
class ModelState:
    params: Any
    opt: Any


class _Gaussian(nn.Module):
    hidden_sizes: tuple[int, ...]
    size: int

    @nn.compact
    def __call__(self, x):
        out = MLP(self.hidden_sizes, 2 * self.size)(x)
        mean, log_std = jnp.split(out, 2, axis=-1)
        return mean, jnp.clip(log_std, -10.0, 5.0)


def controllability_distance(mean, log_std, delta):
    """``c[B]`` from the model's ``mean, log_std [B, D]`` and the observed ``delta = s′ − s [B, D]``."""
    inv_std = jnp.exp(-log_std)
    w = inv_std / jnp.exp(jnp.mean(jnp.log(inv_std), axis=-1, keepdims=True))
    return jnp.mean(jnp.square((delta - mean) * w), axis=-1)


def term(config: CSDConfig, spec: EnvSpec) -> RewardTerm:
    size = distance.phi_input_size(config, spec)
    net = _Gaussian(config.model_hidden_sizes, size)
    tx = optax.adam(config.model_lr)

    def init(key) -> ModelState:
        params = net.init(key, jnp.zeros((size,), jnp.float32))
        return ModelState(params, tx.init(params))

    def dist(state: ModelState, s, s2):
        mean, log_std = jax.lax.stop_gradient(net.apply(state.params, s))
        return controllability_distance(mean, log_std, s2 - s)

    def update(state: ModelState, s, s2):
        def nll(params):
            mean, log_std = net.apply(params, s)
            z = (s2 - s - mean) * jnp.exp(-log_std)
            return jnp.mean(jnp.sum(0.5 * jnp.square(z) + log_std, axis=-1))

        params, opt, value = optim.gradient_step(nll, state.params, state.opt, tx)
        return ModelState(params, opt), {"loss/model": value}

    return metra.dual_term("csd", config, spec, dist, (init, update))


skills = distance.skill_agent("csd", term, conditioning.unit_sphere)
make_csd, make_trainer, validate = skills.make_agent, skills.make_trainer, skills.validate
