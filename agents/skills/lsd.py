"""LSD (Park et al. 2022, "Lipschitz-constrained Unsupervised Skill Discovery"): a 1-Lipschitz φ: S → R^d and
the skill reward ``(φ(s′) − φ(s))ᵀ z`` with z ~ N(0, I), unnormalized (reference code ``seohongpark/LSD``,
``iod/lsd.py``). Because ‖φ(s′) − φ(s)‖ ≤ ‖s′ − s‖, a skill is paid only for distance actually travelled in
state space, so maximizing the reward spreads skills far apart rather than into states that are merely easy to
tell apart (DIAYN). Discrete skills: K centred one-hot directions, LSD's ``masks`` form.

φ is spectrally normalized on every layer: ``rlkit.networks.SpectralMLP`` wraps each ``nn.Dense`` in flax's own
``nn.SpectralNorm`` (one power-iteration step per φ update, on the stacked (s, s′) batch; the gradient flows
through σ as in ``torch.nn.utils.spectral_norm``). Its φ loss is the negated mean reward, no constraint, no dual.
The temperature α is fixed (``--sac_lr_a -1`` in LSD's commands, α = 0.01 for continuous skills). LSD updates φ
after the policy in each epoch; here φ goes first (the composition layer's order), so the batch's rewards are
those of the updated φ — one gradient step apart.

Composition: ``SAC × [the φ reward term] × Conditioned(env, N(0, I) or centred one-hot)`` through
``agents.skills.distance``; this file holds the config and φ's update.
"""

from __future__ import annotations

import jax.numpy as jnp
import optax
from flax import struct

from agents.skills import distance
from agents.skills.distance import DistanceSkillConfig, PhiState
from envs.core import EnvSpec
from rlkit import conditioning, optim
from rlkit.configs import param
from rlkit.networks import SpectralMLP
from rlkit.rewards import RewardTerm


@struct.dataclass
class LSDConfig(DistanceSkillConfig):
    policy_lr: float = param(1e-4, low=0.0, low_inclusive=False)
    """actor learning rate (LSD: common_lr 1e-4)"""
    q_lr: float = param(1e-4, low=0.0, low_inclusive=False)
    """critic learning rate (LSD: common_lr 1e-4)"""
    init_alpha: float = param(0.01, low=0.0, low_inclusive=False)
    """the temperature, fixed by default (LSD: 0.01 for continuous skills, 0.003 for discrete)"""
    autotune: bool = param(False, static=True)
    """LSD keeps α fixed"""
    hidden_sizes: tuple[int, ...] = param((1024, 1024), static=True)
    """hidden layers of actor and critics (LSD: 2 × 1024)"""
    phi_lr: float = param(3e-5, low=0.0, low_inclusive=False)
    """learning rate of φ (LSD: lr_te 3e-5)"""


@struct.dataclass
class LSDState:
    phi: PhiState


def _net(config: LSDConfig) -> SpectralMLP:
    return SpectralMLP(config.phi_hidden_sizes, config.skill_dim)


def phi(config: LSDConfig):
    """``phi(phi_state, x) -> φ(x)`` with the current power-iteration estimate (no update)."""
    net = _net(config)
    return lambda p, x: net.apply({"params": p.params, **p.stats}, x)


def term(config: LSDConfig, spec: EnvSpec) -> RewardTerm:
    net = _net(config)
    tx = optax.adam(config.phi_lr)

    def pair(params, stats, batch, update):
        fn = lambda x: net.apply(  # noqa: E731
            {"params": params, **stats}, x, update_stats=update, mutable=["batch_stats"] if update else False
        )
        s, s2 = distance.raw_obs(config, batch["obs"]), distance.raw_obs(config, batch["next_obs"])
        return distance.phi_pair(fn, s, s2)

    def init(key, spec_) -> LSDState:
        variables = net.init(key, jnp.zeros((distance.phi_input_size(config, spec),), jnp.float32))
        params, stats = variables["params"], {k: v for k, v in variables.items() if k != "params"}
        return LSDState(PhiState(params, stats, tx.init(params)))

    def reward(state: LSDState, batch):
        phi_s, phi_next, _ = pair(state.phi.params, state.phi.stats, batch, False)
        return distance.skill_reward(phi_s, phi_next, batch["z"])

    def update(state: LSDState, batch, key):
        p = state.phi

        def loss(params):
            phi_s, phi_next, stats = pair(params, p.stats, batch, True)
            r = distance.skill_reward(phi_s, phi_next, batch["z"])
            return -jnp.mean(r), (stats, jnp.linalg.norm(phi_next - phi_s, axis=-1))

        params, opt, (value, (stats, step)) = optim.gradient_step(loss, p.params, p.opt, tx, has_aux=True)
        new = PhiState(params, stats, opt)
        return LSDState(new), {"loss/phi": value, "phi_step": jnp.mean(step)}

    return RewardTerm("lsd", init, reward, update)


skills = distance.skill_agent("lsd", term, conditioning.gaussian)
make_lsd, make_trainer, validate = skills.make_agent, skills.make_trainer, skills.validate
