"""SQIL (Reddy, Dragan & Levine 2020, "SQIL: Imitation Learning via Reinforcement Learning with Sparse Rewards"):
soft Q-learning / SAC on a replay that is half demonstrations with reward 1 and half online experience with
reward 0 — so the agent is paid for returning to demonstrated states and acting as the expert did there.

Composition, nothing else: ``SAC × mixture(demonstrations, online, demo_ratio, reward_by_source=(1, 0))``. The
share is exact in every batch (``rlkit.buffers.mix``), as in the paper's balanced batches (and imitation's
``SQIL``, which fills half of each batch from the expert buffer). The env's own reward is never seen by the
learner; episode returns are still logged from it.
"""

from __future__ import annotations

import dataclasses

from flax import struct

from agents import sac
from envs.core import Environment, EnvSpec
from rlkit import data_sources
from rlkit.agent import Agent
from rlkit.buffers import DemoStore
from rlkit.buffers.datasets import check_demos_match
from rlkit.configs import ConfigError, param
from rlkit.off_policy import make_off_policy_trainer
from rlkit.training import Trainer


@struct.dataclass
class SQILConfig(sac.SACConfig):
    demo_ratio: float = param(0.5, low=0.0, high=1.0)
    """share of every batch drawn from the demonstrations (reward 1); the rest is online replay (reward 0)"""
    demo_reward: float = param(1.0, static=True)
    """reward of demonstration rows (SQIL: 1)"""
    online_reward: float = param(0.0, static=True)
    """reward of online rows (SQIL: 0)"""


def validate(config: SQILConfig, spec: EnvSpec, demos: DemoStore | None = None) -> None:
    sac.validate(config, spec)
    if spec.num_reward_terms != 1 or config.multi_critic:
        raise ConfigError(
            f"SQIL replaces the env's reward by a constant per source; {spec.id} has reward terms "
            f"{list(spec.reward_names)} (multi_critic={config.multi_critic}): use a one-term env, no multi_critic"
        )
    if demos is not None:
        check_demos_match(demos, spec, need_actions=True)


def make_sqil(config: SQILConfig, spec: EnvSpec) -> Agent:
    return dataclasses.replace(sac.make_sac(config, spec), name="sqil")


def data(config: SQILConfig, spec: EnvSpec, demos: DemoStore):
    """Demonstrations (reward ``demo_reward``) and online replay (``online_reward``), ``demo_ratio`` of each batch
    from the demonstrations."""
    return data_sources.mixture(
        [data_sources.demonstrations(demos, spec), data_sources.online()],
        "demo_ratio",
        reward_by_source=(config.demo_reward, config.online_reward),
    )


def host_pieces(config: SQILConfig, spec: EnvSpec, *, demos: DemoStore) -> dict:
    return {"data": data(config, spec, demos)}


def make_trainer(config: SQILConfig, env: Environment, params=None, *, demos: DemoStore) -> Trainer:
    validate(config, env.spec, demos)
    return make_off_policy_trainer(
        "sqil", env, make_sqil, config, params=params, data=data(config, env.spec, demos)
    )
