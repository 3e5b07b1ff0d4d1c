"""SLIM ("Skill Learning with Multiple Critics"): skill discovery that must also respect the task's own terms — a
skill-discovery reward on the object's position, the env's reward terms (reaching the object, safety, control),
each term its own critic, each normalized, then weighted.

Composition, nothing new in the loop: PPO (the paper's learner: one network, one value output per reward term) ×
[METRA's reward term ``(φ(s′) − φ(s))ᵀ z`` under its temporal-distance constraint, with φ reading ``obs_dims``
(push2d: the block's x-y, ``(2, 3)``)] × ``Conditioned(env, unit-sphere z)``, the env's reward terms kept in
front of the skill term. The reward names the learner sees are the env's and then ``"metra"``; ``reward_weights``
has one weight per name. Per-term normalization is PPO's (``agents.ppo``): each term's rewards divided by the
running std of its own discounted return, each term's advantages normalized over the minibatch, then weighted.

φ learns from the labelled rollout: ``phi_steps`` METRA updates per PPO iteration, each on ``phi_batch_size``
rows drawn from it (``rlkit.rewards.repeated``), before the rollout's skill rewards are computed with the updated
φ. ``resample_every`` is static here: the on-policy loop builds the conditioned env once per program.

The same composition over SAC is METRA's registry entry with ``env_reward=True, multi_critic=True`` (PopArt-
normalized per-term critics, ``agents.sac``); ``experiments/reproduce/slim.py`` measures both learners (the
per-term benefit holds with PPO; per-term SAC is the safest but its skills move the block least: README).
"""

from __future__ import annotations

from flax import struct

from agents import ppo
from agents.skills import distance, metra
from envs.core import Environment, EnvSpec
from rlkit import conditioning
from rlkit.configs import param
from rlkit.on_policy import make_on_policy_trainer
from rlkit.rewards import repeated, with_reward_terms
from rlkit.training import Trainer


@struct.dataclass
class SLIMConfig(ppo.PPOConfig, distance.SkillFields, distance.PhiFields, metra.DualFields):
    multi_critic: bool = param(True, static=True)
    """one value output per reward term (SLIM); False: one critic on the weighted sum (the naive baseline)"""
    normalize_reward: bool = param(True, static=True)
    """divide each term's rewards by the running std of its discounted return (see PPOConfig.reward_scale)"""
    env_reward: bool = param(True, static=True)
    """keep the env's reward terms in front of the skill term (False: the skill reward alone)"""
    resample_every: int = param(0, static=True, low=0)
    """0 = one skill per episode; N = also draw a new skill every N steps (static: the env is built once)"""
    phi_hidden_sizes: tuple[int, ...] = param((256, 256), static=True)
    """hidden layers of φ"""
    phi_lr: float = param(1e-3, low=0.0, low_inclusive=False)
    """learning rate of φ"""
    dual_lr: float = param(1e-3, low=0.0, low_inclusive=False)
    """Adam learning rate of METRA's log λ"""
    phi_steps: int = param(16, static=True, low=1)
    """METRA updates of φ and λ per PPO iteration, on minibatches of its rollout"""
    phi_batch_size: int = param(256, static=True, low=1)
    """rows of the rollout per φ update"""


def skills(config: SLIMConfig) -> conditioning.Prior:
    return distance.prior(config, conditioning.unit_sphere)


def _terms(config: SLIMConfig, spec: EnvSpec):
    return [repeated(metra.term(config, spec), config.phi_steps, config.phi_batch_size)]


make_slim = with_reward_terms(ppo.make_ppo, _terms, env_reward=lambda c: c.env_reward, name="slim")


def validate(config: SLIMConfig, spec: EnvSpec) -> None:
    distance.check_skill_fields("metra", config, spec, ppo.validate)


def make_trainer(config: SLIMConfig, env: Environment, params=None) -> Trainer:
    validate(config, env.spec)
    conditioned = conditioning.Conditioned(env, skills(config), config.resample_every)
    return make_on_policy_trainer("slim", conditioned, make_slim, config, params=params, extras=("z",))
