"""DADS (Sharma et al. 2020, "Dynamics-Aware Unsupervised Discovery of Skills"): skills whose effect is
predictable. A skill-dynamics model q(Δs | s, z) (a mixture of Gaussians over the change of state) is fitted by
likelihood on the agent's transitions; the policy is paid how much better its own skill predicts the change than
skills drawn from the prior do (reference code ``google-research/dads``, ``dads_agent.py`` and
``skill_dynamics.py``; its off-policy configs):

    r = log(L + 1) − log(1 + Σ_{i=1..L} exp(clip(log q(Δs | s, z_i) − log q(Δs | s, z), −50, 50))),  z_i ~ p(z)

at most log(L + 1) (the own skill explains Δs and no other does), 0 when z is no better than a random one.

As in the reference: continuous skills uniform on [−1, 1]^d (``cont_uniform``; discrete: one-hot), 4 mixture
components with unit variance (``fix_variance``; ``fix_variance=False`` learns σ ∈ [0.3, 10] through a
softplus), inputs s and targets Δs standardized (here by running statistics of every batch the model was
trained on, the counterpart of its batch normalization), ``obs_dims`` restricting both to some coordinates (the
x-y prior of its locomotion runs), L = 100 prior samples, α fixed at 0.1, 2 × 512 networks, lr 3e-4. Not
reproduced: its importance-weighted dynamics updates for stale off-policy data (``skill_dynamics_relabel_type``);
keep the buffer small instead (its configs: 10,000 transitions). Here the model takes one gradient step per
SAC batch, then the batch is relabelled with the updated model (the composition layer's order); DADS takes 8
model steps per 64 agent steps.

Composition: ``SAC × [the skill-dynamics reward term] × Conditioned(env, uniform or one-hot)`` through
``agents.skills.distance.skill_agent``; this file holds the config, the model and its update. The model is the
term's state, so an exported DADS agent carries it (``dynamics(state)``, ``predict(config, ...)``: the mean
next state under a skill, what model-predictive control over skills plans with).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax import struct

from agents.skills import distance
from agents.skills.distance import SkillConfig
from envs.core import EnvSpec
from rlkit import conditioning, optim, running_stats
from rlkit.configs import param
from rlkit.networks import MLP
from rlkit.rewards import RewardTerm


@struct.dataclass
class DADSConfig(SkillConfig):
    hidden_sizes: tuple[int, ...] = param((512, 512), static=True)
    """hidden layers of actor and critics (DADS: hidden_layer_size 512)"""
    init_alpha: float = param(0.1, low=0.0, low_inclusive=False)
    """the temperature, fixed by default (DADS: agent_entropy 0.1)"""
    autotune: bool = param(False, static=True)
    """DADS keeps α fixed"""
    dynamics_hidden_sizes: tuple[int, ...] = param((512, 512), static=True)
    """hidden layers of the skill dynamics q(Δs | s, z)"""
    num_components: int = param(4, static=True, low=1)
    """Gaussians in the mixture (DADS: 4)"""
    fix_variance: bool = param(True, static=True)
    """unit variance per component (DADS: fix_variance 1); False learns σ ∈ [0.3, 10]"""
    normalize: bool = param(True, static=True)
    """standardize s and Δs by running statistics (DADS: normalize_data 1)"""
    num_prior_samples: int = param(100, static=True, low=1)
    """L: prior skills each transition's own skill is compared with (DADS: random_skills 100)"""
    dynamics_lr: float = param(3e-4, low=0.0, low_inclusive=False)
    """learning rate of the skill dynamics (DADS: 3e-4)"""


@struct.dataclass
class Dynamics:
    params: Any
    opt: Any
    obs_stats: running_stats.RunningMeanStd  # of s (the model's input)
    delta_stats: running_stats.RunningMeanStd  # of Δs (its target)


@struct.dataclass
class DADSState:
    dynamics: Dynamics
    key: jax.Array  # the prior samples' key of this batch: the update's key, read by the reward after it


def prior(config: DADSConfig) -> conditioning.Prior:
    return distance.prior(config, conditioning.uniform, conditioning.categorical)


def _net(config: DADSConfig, size: int) -> nn.Module:
    m = config.num_components
    out = m + m * size * (1 if config.fix_variance else 2)
    return nn.Sequential(
        [MLP(config.dynamics_hidden_sizes, out)]
    )  # Sequential: the parameter layout saved files hold


def _standardize(config: DADSConfig, dyn: Dynamics, s, delta):
    if not config.normalize:
        return s, delta
    return running_stats.normalize(dyn.obs_stats, s), running_stats.normalize(dyn.delta_stats, delta)


def _mixture(config: DADSConfig, params, s, z):
    """``(log weights [..., M], means [..., M, D], stds [..., M, D])`` of q(· | s, z) (standardized units)."""
    size, m = s.shape[-1], config.num_components
    s = jnp.broadcast_to(s, z.shape[:-1] + (size,))
    out = _net(config, size).apply(params, jnp.concatenate([s, z], -1))
    logits, rest = out[..., :m], out[..., m:]
    mean = rest[..., : m * size].reshape(*out.shape[:-1], m, size)
    if config.fix_variance:
        std = jnp.ones_like(mean)
    else:
        std = jnp.clip(jax.nn.softplus(rest[..., m * size :]).reshape(mean.shape), 0.3, 10.0)
    return jax.nn.log_softmax(logits), mean, std


def log_prob(config: DADSConfig, params, s, z, delta) -> jax.Array:
    """``log q(Δs | s, z)`` of standardized ``s [..., D]``, ``delta [..., D]`` under skills ``z [..., d]``."""
    log_w, mean, std = _mixture(config, params, s, z)
    x = delta[..., None, :]
    normal = -0.5 * jnp.square((x - mean) / std) - jnp.log(std) - 0.5 * jnp.log(2 * jnp.pi)
    return jax.nn.logsumexp(log_w + jnp.sum(normal, -1), axis=-1)


def dynamics(state) -> Dynamics:
    """The skill dynamics inside a DADS agent's state (its one reward term's)."""
    return state.terms[0].dynamics


def predict(config: DADSConfig, dyn: Dynamics, s, z) -> jax.Array:
    """The mixture's mean next state ``s + E[Δs | s, z]`` on ``s``'s ``obs_dims`` coordinates."""
    x = s[..., list(config.obs_dims)] if config.obs_dims else s
    xn = running_stats.normalize(dyn.obs_stats, x) if config.normalize else x
    log_w, means, _ = _mixture(config, dyn.params, xn, z)
    mean = jnp.sum(jnp.exp(log_w)[..., None] * means, -2)
    return x + (mean * dyn.delta_stats.std + dyn.delta_stats.mean if config.normalize else mean)


def term(config: DADSConfig, spec: EnvSpec) -> RewardTerm:
    tx = optax.adam(config.dynamics_lr)
    skills, n_alt = prior(config), config.num_prior_samples

    def transitions(batch):
        s, s2 = distance.raw_obs(config, batch["obs"]), distance.raw_obs(config, batch["next_obs"])
        return s, s2 - s

    def init(key, spec_) -> DADSState:
        size, d = distance.phi_input_size(config, spec), config.skill_dim
        params = _net(config, size).init(key, jnp.zeros((size + d,), jnp.float32))
        stats = running_stats.RunningMeanStd.zeros((size,))
        return DADSState(Dynamics(params, tx.init(params), stats, stats), key)

    def reward(state: DADSState, batch):
        dyn = state.dynamics
        s, delta = _standardize(config, dyn, *transitions(batch))
        own = log_prob(config, dyn.params, s, batch["z"], delta)  # [B]
        keys = jax.random.split(state.key, s.shape[0] * n_alt)
        z_alt = jax.vmap(skills.sample)(keys).reshape(s.shape[0], n_alt, -1)
        alt = log_prob(config, dyn.params, s[:, None], z_alt, delta[:, None])  # [B, L]
        ratio = jnp.exp(jnp.clip(alt - own[:, None], -50.0, 50.0))
        return jnp.log(n_alt + 1.0) - jnp.log1p(jnp.sum(ratio, -1))

    def update(state: DADSState, batch, key):
        dyn = state.dynamics
        s_raw, delta_raw = transitions(batch)
        if config.normalize:  # the statistics include this batch before it is fitted (batch norm's order)
            dyn = dyn.replace(
                obs_stats=running_stats.update(dyn.obs_stats, s_raw),
                delta_stats=running_stats.update(dyn.delta_stats, delta_raw),
            )
        s, delta = _standardize(config, dyn, s_raw, delta_raw)

        def loss(params):
            return -jnp.mean(log_prob(config, params, s, batch["z"], delta))

        params, opt, value = optim.gradient_step(loss, dyn.params, dyn.opt, tx)
        dyn = dyn.replace(params=params, opt=opt)
        return DADSState(dyn, key), {"loss/dynamics": value}

    return RewardTerm("dads", init, reward, update)


skills = distance.skill_agent("dads", term, conditioning.uniform, conditioning.categorical)
make_dads, make_trainer, validate = skills.make_agent, skills.make_trainer, skills.validate
