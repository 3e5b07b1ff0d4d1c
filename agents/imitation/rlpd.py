"""RLPD (Ball, Smith, Kostrikov & Levine 2023, "Efficient Online Reinforcement Learning with Offline Data";
reference code ``ikostrikov/rlpd``): SAC that learns from the env's reward on batches that are half
demonstrations (or any prior data, with their rewards), half online replay, with the three changes that make a
high update-to-data ratio work: LayerNorm in the critics, an ensemble of 10 critics whose target takes the min over
2 drawn at random (the actor averages all of them), and many updates per env step.

Composition, nothing else: ``SAC(RLPD's defaults) × mixture(demonstrations, online, demo_ratio)``. The share is
exact in every batch, and every one of the ``updates_per_step`` updates draws its own batch, so each stays 50/50
(the reference interleaves one big batch into per-update halves: the same law). Truncation is not terminal (SAC
bootstraps through it). Demonstrations need actions and rewards (RLPD learns from the task's reward; the
demonstration rows keep their stored rewards).
"""

from __future__ import annotations

import dataclasses

from flax import struct

from agents import sac
from envs.core import Environment, EnvSpec
from rlkit import configs, data_sources
from rlkit.buffers import DemoStore
from rlkit.buffers.datasets import check_demos_match
from rlkit.configs import ConfigError, param
from rlkit.off_policy import make_off_policy_trainer
from rlkit.training import Trainer


@struct.dataclass
class RLPDConfig(sac.SACConfig):
    num_critics: int = param(10, static=True, low=1)
    """critic ensemble size (RLPD: 10)"""
    num_min_critics: int = param(2, static=True, low=1)
    """critics drawn at random for the min in the target (RLPD: 2)"""
    critic_layer_norm: bool = param(True, static=True)
    """LayerNorm after every hidden layer of the critics (RLPD)"""
    updates_per_step: int = param(20, static=True, low=1)
    """update-to-data ratio (RLPD: 20)"""
    target_entropy_scale: float = param(0.5, low=0.0)
    """target entropy = −scale·|A| (RLPD: −|A|/2)"""
    q_lr: float = param(3e-4, low=0.0, low_inclusive=False)
    """critic and temperature learning rate (RLPD: 3e-4)"""
    demo_ratio: float = param(0.5, low=0.0, high=1.0)
    """share of every batch drawn from the demonstrations (RLPD: 0.5)"""


def validate(config: RLPDConfig, spec: EnvSpec, demos: DemoStore | None = None) -> None:
    configs.validate(config)
    sac.validate(config, spec)
    if demos is not None:
        check_demos_match(demos, spec, need_actions=True)
        if demos.rewards is None:
            raise ConfigError(
                "RLPD learns from the task's reward and these demonstrations have no rewards; collect them with "
                "`rlkit demos collect` (which stores rewards), or use an imitation learner (sqil, gail-sac)"
            )


def make_rlpd(config: RLPDConfig, spec: EnvSpec):
    return dataclasses.replace(sac.make_sac(config, spec), name="rlpd")


def data(config: RLPDConfig, spec: EnvSpec, demos: DemoStore):
    return data_sources.mixture(
        [data_sources.demonstrations(demos, spec), data_sources.online()], "demo_ratio"
    )


def host_pieces(config: RLPDConfig, spec: EnvSpec, *, demos: DemoStore) -> dict:
    return {"data": data(config, spec, demos)}


def make_trainer(config: RLPDConfig, env: Environment, params=None, *, demos: DemoStore) -> Trainer:
    validate(config, env.spec, demos)
    return make_off_policy_trainer(
        "rlpd", env, make_rlpd, config, params=params, data=data(config, env.spec, demos)
    )
