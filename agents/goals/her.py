"""SAC + hindsight experience replay (Andrychowicz et al. 2017, "Hindsight Experience Replay"; SB3's
``HerReplayBuffer``): goal-conditioned SAC on the sparse goal-reaching reward ``−1[‖achieved′ − g‖ > radius]``
(HER's convention: −1 per step until the goal, 0 there; no termination), with a share ``relabel_prob`` = 0.8 of
every batch's goals replaced by an achieved goal of the same episode's future (HER's "future" strategy with
k = 4: uniform over the rest of the episode, ``her_future``), the reward recomputed for the goal each row carries.

Composition, nothing else: ``SAC × GoalConditioned(env, goals) × hindsight_goals(relabel_prob, reward)``
(``agents.goals.base``); the env's own reward is never used.
"""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
from flax import struct

from agents import sac
from agents.goals import base
from envs.core import Environment, EnvSpec
from rlkit import configs, data_sources
from rlkit.conditioning import goal_success
from rlkit.configs import param
from rlkit.off_policy import make_off_policy_trainer
from rlkit.training import Trainer


@struct.dataclass
class HERConfig(sac.SACConfig, base.GoalFields):
    relabel_prob: float = param(0.8, low=0.0, high=1.0)
    """share of each batch's goals replaced by a future achieved goal (HER's k = 4: 0.8)"""
    her_future: str = param("uniform", static=True, choices=("uniform", "geometric"))
    """how the future state is drawn: uniform over the rest of the episode (HER) or with γ^(Δ−1) weights"""


def validate(config: HERConfig, spec: EnvSpec) -> None:
    configs.validate(config)
    sac.validate(config, spec)
    base.check_single_term(config, spec, "HER")
    base.check_goals(config, spec)


def make_her(config: HERConfig, spec: EnvSpec):
    return dataclasses.replace(sac.make_sac(config, spec), name="her")


def data(config: HERConfig, env: Environment) -> data_sources.Source:
    dims, radius = base.goal_dims(config, env.spec), base.goal_radius(config, env)

    def reward(achieved, goal):
        return goal_success(achieved, goal, radius).astype(jnp.float32) - 1.0

    return data_sources.hindsight_goals(
        len(dims), dims, relabel="relabel_prob", future=config.her_future, reward=reward
    )


def make_trainer(config: HERConfig, env: Environment, params=None) -> Trainer:
    validate(config, env.spec)
    return make_off_policy_trainer(
        "her", base.goal_env(config, env), make_her, config, params=params, data=data(config, env)
    )
