"""GAIL (Ho & Ermon 2016, "Generative Adversarial Imitation Learning"): a discriminator D(s, a) learns to tell
expert transitions from the policy's; the policy is paid −log(1 − D(s, a)), so it is pushed to visit what the
expert visits and act as the expert did there.

Composition, nothing else: ``learner × [the discriminator reward term]`` (``agents.imitation.adversarial``: the
balanced batches, normalizations, gradient penalty and the absorbing-state fix of the survival bias). Two
learners: PPO (``gail``; the paper used TRPO, imitation uses PPO) and SAC (``gail-sac``; off-policy as in
Kostrikov et al. 2019, DAC: far fewer env steps, the discriminator's policy rows from the newest ``disc_window``
replay transitions). Demonstrations need actions (D reads (s, a)).
"""

from __future__ import annotations

from flax import struct

from agents import ppo, sac
from agents.imitation import adversarial
from rlkit.configs import param


@struct.dataclass
class GAILConfig(ppo.PPOConfig, adversarial.AdversarialConfig):
    disc_steps: int = param(4, static=True, low=1)
    """discriminator steps per rollout (imitation's n_disc_updates_per_round is 4 in its examples)"""
    disc_lr: float = param(1e-3, low=0.0, low_inclusive=False)
    """discriminator Adam learning rate: imitation's (torch Adam's default). Measured on pendulum: at 8 envs × 256,
    204,800 steps, final returns (3 seeds) −1181, −506, −254 with 3e-4 and −146, −244, −357 with 1e-3; at 1 env ×
    2048, 246k steps (5 seeds) IQM 0.93 with 3e-4 and 0.85 with 1e-3 — for AIRL there 0.45 and 0.83"""


@struct.dataclass
class GAILSACConfig(sac.SACConfig, adversarial.AdversarialConfig):
    pass


make_gail, validate, host_pieces, make_trainer = adversarial.make_learner("gail", "ppo", "gail")
make_gail_sac, validate_sac, host_pieces_sac, make_trainer_sac = adversarial.make_learner(
    "gail", "sac", "gail-sac"
)
