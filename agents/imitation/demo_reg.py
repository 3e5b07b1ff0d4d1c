"""Demonstration-regularized RL (Tiapkin et al. 2024, "Demonstration-Regularized RL"): fit a behaviour-cloning
prior π_BC to the demonstrations by likelihood, then run SAC on the task's reward with its entropy term replaced by
the KL to that prior: −λ (log π − log π_BC) in the actor's loss and in the soft target (λ fixed).

Composition: BC's loss (``agents.imitation.bc``) fits the prior inside the agent's ``init`` (``prior_steps`` Adam
steps on uniformly drawn demonstration transitions, ``rlkit.offline.fit``, the offline learners' scan): the prior
is part of each run's state, so it is vmapped over a sweep, checkpointed and frozen thereafter. SAC runs unchanged but for its ``log_prior`` hook.
The prior's density is kept off zero by mixing in ``prior_uniform`` of the uniform density over the action box —
π_prior = (1 − ε) π_BC + ε U — so a policy action the expert never took costs at most log(1/ε) + log|box| nats
(our choice of smoothing; the paper assumes a prior bounded away from zero). λ is SAC's temperature, fixed:
``kl_weight`` sets it (``autotune`` must stay off and ``init_alpha`` unset). Demonstrations need actions.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from agents import sac
from agents.imitation import bc
from envs.core import Environment, EnvSpec
from rlkit import configs, offline
from rlkit.agent import Agent
from rlkit.buffers import DemoStore
from rlkit.buffers.datasets import check_demos_match
from rlkit.buffers.demos import sample_transitions
from rlkit.configs import ConfigError, param
from rlkit.off_policy import make_off_policy_trainer
from rlkit.training import Trainer


@struct.dataclass
class DemoRegConfig(sac.SACConfig):
    autotune: bool = param(False, static=True)
    """must stay False: the KL weight λ is fixed (kl_weight)"""
    kl_weight: float = param(0.1, low=0.0, low_inclusive=False)
    """λ: weight of KL(π ‖ π_BC) in the actor loss and the soft target"""
    prior_steps: int = param(5000, static=True, low=1)
    """Adam steps of the BC prior's likelihood fit (in each run's init)"""
    prior_lr: float = param(1e-3, low=0.0, low_inclusive=False)
    """learning rate of the BC prior's fit"""
    prior_uniform: float = param(0.01, low=0.0, high=1.0, high_inclusive=False)
    """ε: the prior is (1 − ε) π_BC + ε · uniform over the action box (keeps its density off zero)"""


@struct.dataclass
class DemoRegState:
    sac: Any
    prior: Any  # the BC prior's state, fitted in init and frozen


def validate(config: DemoRegConfig, spec: EnvSpec, demos: DemoStore | None = None) -> None:
    configs.validate(config)
    if config.autotune:
        raise ConfigError("DemoRegConfig.autotune = True: the KL weight is fixed; set kl_weight (λ) instead")
    if config.init_alpha != sac.SACConfig().init_alpha:
        raise ConfigError(
            f"DemoRegConfig.init_alpha = {config.init_alpha}: λ is kl_weight here; leave init_alpha unset"
        )
    sac.validate(config, spec)
    if demos is not None:
        check_demos_match(demos, spec, need_actions=True)


def _prior_config(config: DemoRegConfig) -> bc.BCConfig:
    return bc.BCConfig(
        hidden_sizes=config.hidden_sizes, batch_size=config.batch_size, learning_rate=config.prior_lr
    )


def make_demo_reg(config: DemoRegConfig, spec: EnvSpec, demos: DemoStore | None = None) -> Agent:
    prior = bc.make_bc(_prior_config(config), spec)
    space = spec.action_space
    log_uniform = -float(np.sum(np.log(space.high - space.low)))
    eps = config.prior_uniform

    def sac_with(prior_state):
        def log_prior(obs, action):
            logp = prior.log_prob(prior_state, obs, action)
            return jnp.logaddexp(jnp.log1p(-eps) + logp, jnp.log(eps) + log_uniform)

        return sac.make_sac(config.replace(init_alpha=config.kl_weight), spec, log_prior=log_prior)

    def init(key, spec_=None) -> DemoRegState:
        if demos is None:
            raise ConfigError(
                "demonstration-regularized SAC fits its prior in init and needs the demonstrations"
            )
        k_sac, k_prior, k_fit = jax.random.split(key, 3)
        sample = lambda k, b: sample_transitions(demos, k, b)  # noqa: E731
        steps, b = config.prior_steps, config.batch_size
        prior_state = offline.fit(prior, prior.init(k_prior), sample, k_fit, steps=steps, batch_size=b)[0]
        return DemoRegState(sac_with(prior_state).init(k_sac), prior_state)

    def act(state: DemoRegState, obs, key, mode="explore"):
        return sac_with(state.prior).act(state.sac, obs, key, mode)

    def update(state: DemoRegState, batch, key):
        new, metrics = sac_with(state.prior).update(state.sac, batch, key)
        return DemoRegState(new, state.prior), metrics

    return Agent("demo-reg", config, init, act, update)


def make_trainer(config: DemoRegConfig, env: Environment, params=None, *, demos: DemoStore) -> Trainer:
    validate(config, env.spec, demos)
    agent = lambda c, s: make_demo_reg(c, s, demos)  # noqa: E731
    return make_off_policy_trainer("demo-reg", env, agent, config, params=params)


def host_pieces(config: DemoRegConfig, spec: EnvSpec, *, demos: DemoStore) -> dict:
    return {"make_agent": lambda c, s: make_demo_reg(c, s, demos)}
