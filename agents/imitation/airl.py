"""AIRL (Fu, Luo & Levine 2018, "Learning Robust Rewards with Adversarial Inverse Reinforcement Learning"): the
discriminator's logit is f(s, a, s′) − log π(a|s) with the shaped f = g(s) + γ h(s′) − h(s); at optimum g
recovers the expert's reward up to a constant (state-only g: the paper's disentangled reward) and h a potential.
The policy is paid f (imitation's ``reward_train``; the −log π half of log D − log(1 − D) is the learner's own
entropy term).

Composition, nothing else: ``learner × [the AIRL discriminator reward term]`` (``agents.imitation.adversarial``;
the term reads the learner's current log π through ``RewardTerm.needs_policy``). Learners: PPO (``airl``, the
paper's family and imitation's) and SAC (``airl-sac``). Demonstrations need actions (log π(a|s) of expert rows).
"""

from __future__ import annotations

from flax import struct

from agents import ppo, sac
from agents.imitation import adversarial
from rlkit.configs import param


@struct.dataclass
class AIRLConfig(ppo.PPOConfig, adversarial.AdversarialConfig):
    disc_steps: int = param(4, static=True, low=1)
    """discriminator steps per rollout"""
    disc_lr: float = param(1e-3, low=0.0, low_inclusive=False)
    """discriminator Adam learning rate: imitation's (torch Adam's default). Measured on pendulum (1 env × 2048,
    246k steps, 5 seeds): IQM 0.45 with 3e-4, 0.83 with 1e-3 (GAIL there: 0.93 and 0.85; see GAILConfig)"""


@struct.dataclass
class AIRLSACConfig(sac.SACConfig, adversarial.AdversarialConfig):
    pass


make_airl, validate, host_pieces, make_trainer = adversarial.make_learner("airl", "ppo", "airl")
make_airl_sac, validate_sac, host_pieces_sac, make_trainer_sac = adversarial.make_learner(
    "airl", "sac", "airl-sac"
)
