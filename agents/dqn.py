"""DQN (Mnih et al. 2015), checked against CleanRL ``dqn.py`` / ``dqn_jax.py`` and SB3's ``DQN``: ε-greedy with a
linear schedule over env steps, a target network (hard copies every ``target_network_frequency`` env steps with
τ = 1, CleanRL's default, or Polyak averaging with τ < 1), updates every ``train_frequency`` env steps after
``learning_starts``, and bootstrapping with (1 − terminated) only (a time limit still bootstraps from the
pre-reset ``next_obs``). Config choices: the Huber loss (SB3, Mnih et al.; the default is CleanRL's squared error,
see below), double-DQN targets
(van Hasselt et al. 2016: the online network picks a′, the target network values it), a dueling head (Wang et al.
2016: Q = V + A − mean A), n-step returns (``n_step``; the targets come from the buffer's ``sample_nstep`` through
the ``rlkit.data_sources.nstep`` data source), and SB3's gradient-norm clip.

Huber is not the default because it diverged here at CleanRL's CartPole settings (measured: from the same static
buffer of 10k random-policy transitions, 3k updates took the mean Q to 7.6e3 with Huber and to 42 with the squared
error — the true values are below 100 — and on-line DQN with Huber collapsed to 9.6-step episodes where the
squared error reached ~300 by 80k steps).

ε follows env steps, t = learning_starts + (updates / updates_per_step) · train_frequency · num_envs once learning
has started (the update count is in the state; the loops update exactly on that schedule), and is 1 before:
rlkit's loops act uniformly at random until ``learning_starts`` (CleanRL's ε is still ≥ 0.96 there).

Vector rewards: with ``multi_critic`` the network has one Q head per named reward term, Q_k(s, ·); actions are
chosen greedily on Σ_k w_k Q_k, the double-DQN a′ likewise, and each head regresses its own term's target (the
losses summed). Without it the terms are summed with ``reward_weights`` first; with one term the two coincide.

Prioritized replay and random reshuffling are the loop's ``sampling`` (``rlkit.buffers.sampling``): DQN weights
each row's loss by the batch's importance ``weight`` when there is one, and reports each row's |TD error| (the
mean over heads) as its new priority.

Deliberately not here: distributional heads (C51, QR), noisy nets, and continuous actions (SAC, TD3).
"""

from __future__ import annotations

import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax import struct

from envs.core import Environment, EnvSpec
from envs.spaces import Box, Discrete
from rlkit import data_sources, optim
from rlkit.agent import Agent
from rlkit.configs import ConfigError, param
from rlkit.networks import MLP
from rlkit.off_policy import ReplayLoopConfig, check_reward_weights, make_off_policy_trainer
from rlkit.training import Trainer


@struct.dataclass
class DQNConfig(ReplayLoopConfig):
    """Defaults are CleanRL ``dqn.py`` (CartPole-v1, 500k steps) plus SB3's gradient-norm clip."""

    # ---- static
    hidden_sizes: tuple[int, ...] = param((120, 84), static=True)
    """hidden layers of the Q-network (CleanRL: 120, 84)"""
    dueling: bool = param(False, static=True)
    """dueling head: Q = V + A − mean_a A (Wang et al. 2016)"""
    double_q: bool = param(False, static=True)
    """double-DQN targets: a′ = argmax of the online network, valued by the target network"""
    loss: str = param("mse", static=True, choices=("mse", "huber"))
    """TD loss: ½ squared error (CleanRL) or Huber with δ = 1 (SB3, Mnih et al.)"""
    n_step: int = param(1, static=True, low=1)
    """n-step returns (1 = the one-step target)"""
    multi_critic: bool = param(False, static=True)
    """one Q head per named reward term (vector-reward envs) instead of one on the weighted sum"""
    buffer_size: int = param(10_000, static=True, low=1)
    """replay capacity in transitions"""
    batch_size: int = param(128, static=True, low=1)
    """transitions per gradient step"""
    learning_starts: int = param(10_000, static=True, low=0)
    """env steps of uniformly random actions before learning"""
    train_frequency: int = param(10, static=True, low=1)
    """vector-env steps between update phases"""
    target_network_frequency: int = param(500, static=True, low=1)
    """env steps between target updates (a multiple of train_frequency · num_envs / updates_per_step)"""
    # ---- sweepable
    learning_rate: float = param(2.5e-4, low=0.0, low_inclusive=False)
    """Adam learning rate"""
    tau: float = param(1.0, low=0.0, high=1.0, low_inclusive=False)
    """target update: 1 = hard copy (CleanRL), < 1 = Polyak averaging at every target update"""
    start_e: float = param(1.0, low=0.0, high=1.0)
    """ε at the start of the schedule"""
    end_e: float = param(0.05, low=0.0, high=1.0)
    """ε at the end of the schedule and after"""
    exploration_steps: int = param(250_000, low=1)
    """env steps of the linear ε decay (CleanRL: exploration_fraction 0.5 × 500k)"""
    max_grad_norm: float = param(10.0, low=0.0, low_inclusive=False)
    """global gradient-norm clip (SB3: 10)"""


@struct.dataclass
class DQNState:
    params: Any
    target: Any
    opt: Any
    updates: jax.Array  # int32[]: gradient updates so far


class QNetwork(nn.Module):
    """Q-values ``[..., K, A]``: K reward terms, A actions (a dueling head when asked)."""

    hidden_sizes: tuple[int, ...]
    num_actions: int
    num_terms: int
    dueling: bool

    @nn.compact
    def __call__(self, obs):
        k, a = self.num_terms, self.num_actions
        x = MLP(self.hidden_sizes, name="torso")(obs)
        adv = MLP((), k * a, name="q")(x).reshape(x.shape[:-1] + (k, a))
        if not self.dueling:
            return adv
        value = MLP((), k, name="value")(x)[..., None]
        return value + adv - jnp.mean(adv, axis=-1, keepdims=True)


def validate(config: DQNConfig, spec: EnvSpec) -> None:
    if not isinstance(spec.action_space, Discrete):
        raise ConfigError(
            f"DQN needs a Discrete action space; {spec.id} has {spec.action_space}"
            + (" (use SAC or TD3 for continuous actions)" if isinstance(spec.action_space, Box) else "")
        )
    if len(spec.observation_space.shape) != 1:
        raise ConfigError(f"DQN's MLP takes flat observations; {spec.id} has {spec.observation_space.shape}")
    period = config.train_frequency * config.num_envs
    if (config.target_network_frequency * config.updates_per_step) % period:
        raise ConfigError(
            f"DQNConfig.target_network_frequency = {config.target_network_frequency} env steps is not a whole "
            f"number of update phases ({period} env steps each, train_frequency × num_envs); choose a multiple "
            f"of {period // math.gcd(period, config.updates_per_step)}"
        )
    check_reward_weights(config, spec)


def make_dqn(config: DQNConfig, spec: EnvSpec) -> Agent:
    num_actions, r = int(spec.action_space.n), spec.num_reward_terms
    k = r if config.multi_critic else 1
    weights = jnp.asarray(config.reward_weights or (1.0,) * r, jnp.float32)
    net = QNetwork(tuple(config.hidden_sizes), num_actions, k, config.dueling)
    tx = optax.inject_hyperparams(
        lambda learning_rate, max_grad_norm: optax.chain(
            optax.clip_by_global_norm(max_grad_norm), optax.adam(learning_rate)
        )
    )(learning_rate=config.learning_rate, max_grad_norm=config.max_grad_norm)
    period = config.train_frequency * config.num_envs  # env steps per update phase
    target_every = max(config.target_network_frequency * config.updates_per_step // period, 1)  # in updates
    head_weights = weights if config.multi_critic else jnp.ones((1,), jnp.float32)

    def greedy(q):  # [..., K, A] -> [...]: the action maximizing the weighted sum of the heads
        return jnp.argmax(jnp.einsum("...ka,k->...a", q, head_weights), axis=-1).astype(jnp.int32)

    def epsilon(updates):
        steps = config.learning_starts + updates / config.updates_per_step * period
        frac = jnp.minimum(steps / config.exploration_steps, 1.0)
        return config.start_e + (config.end_e - config.start_e) * frac

    def init(key, spec_=None) -> DQNState:
        params = net.init(key, jnp.zeros(spec.observation_space.shape, jnp.float32))
        return DQNState(params, params, tx.init(params), jnp.zeros((), jnp.int32))

    def act(state: DQNState, obs, key, mode="explore"):
        action = greedy(net.apply(state.params, obs))
        if mode == "deterministic":
            return action
        explore_key, random_key = jax.random.split(key)
        random = jax.random.randint(random_key, action.shape, 0, num_actions, jnp.int32)
        return jnp.where(jax.random.uniform(explore_key) < epsilon(state.updates), random, action)

    def per_term(x, batch_size):  # [B] or [B, R] -> [B, K]
        x = jnp.reshape(x, (batch_size, r))
        return x if config.multi_critic else jnp.sum(x * weights, axis=-1, keepdims=True)

    def update(state: DQNState, batch, key):
        b = batch["action"].shape[0]
        reward = per_term(batch["reward"], b)
        if "discount" in batch:  # n-step targets: γ^k (1 − terminated), the same for every term
            discount = jnp.reshape(batch["discount"], (b, -1))[:, :1]
        else:
            discount = config.gamma * (1.0 - batch["terminated"].astype(jnp.float32))[:, None]
        next_target = net.apply(state.target, batch["next_obs"])  # [B, K, A]
        next_online = net.apply(state.params, batch["next_obs"]) if config.double_q else next_target
        next_action = greedy(next_online)
        next_q = jnp.take_along_axis(next_target, next_action[:, None, None], axis=-1)[..., 0]  # [B, K]
        target = jax.lax.stop_gradient(reward + discount * next_q)

        def loss_fn(params):
            q = net.apply(params, batch["obs"])
            q_taken = jnp.take_along_axis(q, batch["action"][:, None, None].astype(jnp.int32), axis=-1)[
                ..., 0
            ]
            td = q_taken - target
            per = optax.huber_loss(q_taken, target) if config.loss == "huber" else 0.5 * td**2
            if "weight" in batch:  # prioritized replay's importance weights
                per = per * batch["weight"][:, None]
            return jnp.sum(jnp.mean(per, axis=0)), (q_taken, td)

        params, opt, (loss, (q_taken, td)) = optim.gradient_step(
            loss_fn, state.params, state.opt, tx, has_aux=True
        )
        count = state.updates + 1
        polyak = optax.incremental_update(params, state.target, config.tau)
        target_params = jax.tree.map(
            lambda new, old: jnp.where(count % target_every == 0, new, old), polyak, state.target
        )
        metrics = {
            "loss/q": loss,
            "q_mean": jnp.mean(q_taken),
            "td_abs": jnp.mean(jnp.abs(td)),
            "epsilon": epsilon(count),
            data_sources.PRIORITY: jnp.mean(jnp.abs(td), axis=-1),  # per row: the new priorities (PER)
        }
        return DQNState(params, target_params, opt, count), metrics

    return Agent("dqn", config, init, act, update)


def host_pieces(config: DQNConfig, spec: EnvSpec) -> dict:
    """The n-step data source (none for one-step targets: uniform replay)."""
    return {"data": data_sources.nstep(config.n_step)} if config.n_step > 1 else {}


def make_trainer(config: DQNConfig, env: Environment, params=None) -> Trainer:
    validate(config, env.spec)
    data = host_pieces(config, env.spec).get("data")
    return make_off_policy_trainer("dqn", env, make_dqn, config, params=params, data=data)
