"""Proximal Policy Optimization (Schulman et al. 2017), faithful to CleanRL ``ppo.py`` /
``ppo_continuous_action.py`` and PureJaxRL ``ppo.py`` in the details that decide whether it learns: clipped
surrogate (0.2), advantages normalized per minibatch, optional value clipping (CleanRL ``clip_vloss``), value
coefficient 0.5 on ½·MSE, entropy bonus, orthogonal init (√2 hidden, 0.01 policy head, 1.0 value head), tanh
MLPs 64×64, Adam ε = 1e-5, global grad-norm clip 0.5, optional linear learning-rate annealing.

Actions follow the env spec: a categorical over logits (``Discrete``) or a diagonal Gaussian with a
state-independent log-std parameter (``Box``). As CleanRL, the env clips a Gaussian sample to a bounded box while
the learner keeps the unclipped sample and its log-prob (the rollout's ``sample``); the agent's ``act`` (both
modes) returns the clipped action itself, so an exported agent acts the same wherever it is loaded. The rollout,
GAE (truncation bootstraps from V(final_obs)) and the minibatch loop are ``rlkit.on_policy``.

Multi-critic (SLIM): with ``multi_critic=True`` the value network outputs one value per named reward term (heads
on the policy's torso with ``shared_torso``, as SLIM, or a separate value network), GAE runs per term, each term's
advantages are normalized over the minibatch, then combined with ``reward_weights``; the value loss is the sum of
per-term losses. With one term and weight 1 this is plain PPO exactly (tested). ``normalize_reward`` then scales
each term's rewards by the running std of that term's own discounted return, so every critic learns targets of
order 1 whatever the term's units; keep it on (``continuous_config``'s default) for SLIM. Normalizing only the
advantages is not enough: a critic on raw rewards of a large-scale term learns slowly under the absolute value
clipping (``clip_coef`` in reward units) and its gradients dominate the global grad-norm clip, which shrinks the
policy's step — on push2d with the reach term ×10, advantage normalization alone reached 0.01 success (IQM, 5
seeds) where adding per-term reward normalization reached 0.98 (``experiments/multi_critic_push2d.py``).

``term_normalization="none"`` is the ablation that isolates SLIM's per-term normalization: per-term critics and
GAE, but the *raw* per-term advantages are summed with the weights and only that sum is normalized, exactly as
the single critic normalizes its advantage. Since GAE is linear in the rewards and values, Σ_k w_k A_k is the GAE
of the weighted reward sum under the value Σ_k w_k V_k, so this variant differs from the single-critic baseline
only in how the value function is parameterized (K heads fitted per term) — any further gain of the per-term
variant is due to the normalization. With ``normalize_reward`` use ``reward_scale="shared"`` for this ablation:
every term is then divided by the std of the weighted sum's return, the single critic's own scale (the default,
``"per_term"``, divides each term by its own return's std, itself a per-term normalization).

Deliberately not here: KL early stopping (``target_kl``), recurrent policies, state-dependent log-std.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from envs.core import Environment, EnvSpec
from envs.spaces import Box, Discrete
from rlkit import devices, on_policy, optim
from rlkit.configs import ConfigError, param
from rlkit.configs import validate as validate_ranges
from rlkit.distributions import (
    categorical_entropy,
    categorical_log_prob,
    gaussian_entropy,
    gaussian_log_prob,
)
from rlkit.networks import MLP
from rlkit.training import Trainer


@struct.dataclass
class PPOConfig:
    """Defaults are CleanRL ``ppo.py`` (CartPole); ``continuous_config()`` gives ``ppo_continuous_action.py``'s."""

    # ---- static: shapes and structure (fixed for one compiled program)
    hidden_sizes: tuple[int, ...] = param((64, 64), static=True)
    """hidden layer sizes of policy and value networks"""
    activation: str = param("tanh", static=True, choices=("tanh", "relu", "gelu", "silu"))
    """hidden activation (CleanRL: tanh)"""
    shared_torso: bool = param(False, static=True)
    """one torso for policy and value heads (SLIM) instead of two separate networks (CleanRL)"""
    multi_critic: bool = param(False, static=True)
    """one value output per named reward term, GAE and advantage normalization per term"""
    num_envs: int = param(4, static=True, low=1)
    """parallel envs per run"""
    num_steps: int = param(128, static=True, low=1)
    """steps per env in one rollout (batch = num_envs * num_steps)"""
    num_minibatches: int = param(4, static=True, low=1)
    """minibatches per epoch; must divide num_envs * num_steps"""
    update_epochs: int = param(4, static=True, low=1)
    """passes over each rollout batch"""
    iterations_per_chunk: int = param(10, static=True, low=1)
    """rollout + update iterations in one compiled chunk (logs and checkpoints happen between chunks)"""
    normalize_obs: bool = param(False, static=True)
    """running mean/std observation normalization, clipped to ±10 (CleanRL continuous)"""
    normalize_reward: bool = param(False, static=True)
    """divide rewards by the running std of the discounted return, clipped to ±10 (CleanRL continuous); with
    multi_critic, each term by its own return's std (see reward_scale)"""
    reward_scale: str = param("per_term", static=True, choices=("per_term", "shared"))
    """normalize_reward with multi_critic: each term by its own return's std ("per_term", SLIM) or every term by
    the std of the weighted sum's return ("shared": the single critic's scale, so that a multi-critic ablation
    differs from the single critic only in how the value is parameterized)"""
    normalize_advantages: bool = param(True, static=True)
    """normalize advantages per minibatch (and per term, see term_normalization)"""
    term_normalization: str = param("per_term", static=True, choices=("per_term", "none"))
    """multi_critic: normalize each term's advantages before the weighted sum ("per_term", SLIM) or only the
    weighted sum of the raw per-term advantages, as the single critic does ("none")"""
    clip_vloss: bool = param(True, static=True)
    """clip the value update around the rollout's values (CleanRL clip_vloss)"""
    anneal_lr: bool = param(True, static=True)
    """decay the learning rate linearly to 0 over anneal_steps env steps"""
    # ---- sweepable: leaves of the pytree, vmapped over the runs axis
    learning_rate: float = param(2.5e-4, low=0.0, low_inclusive=False)
    """Adam learning rate (the start of the annealing)"""
    anneal_steps: int = param(500_000, low=1)
    """env steps over which the learning rate anneals to 0 (CleanRL total_timesteps)"""
    gamma: float = param(0.99, low=0.0, high=1.0)
    """discount"""
    gae_lambda: float = param(0.95, low=0.0, high=1.0)
    """GAE λ"""
    clip_coef: float = param(0.2, low=0.0)
    """surrogate clipping ε (also the value clipping range)"""
    ent_coef: float = param(0.01, low=0.0)
    """entropy bonus coefficient"""
    vf_coef: float = param(0.5, low=0.0)
    """value loss coefficient"""
    max_grad_norm: float = param(0.5, low=0.0, low_inclusive=False)
    """global gradient-norm clip"""
    reward_weights: tuple[float, ...] = param(())
    """per-term weights in spec.reward_names order (empty = all 1): the combination of per-term advantages with
    multi_critic, the reward sum without"""


def continuous_config(**changes) -> PPOConfig:
    """CleanRL ``ppo_continuous_action.py`` defaults (MuJoCo)."""
    defaults = dict(num_envs=1, num_steps=2048, num_minibatches=32, update_epochs=10, learning_rate=3e-4)
    defaults |= dict(ent_coef=0.0, normalize_obs=True, normalize_reward=True, anneal_steps=1_000_000)
    return validate_ranges(PPOConfig(**(defaults | changes)))


@struct.dataclass
class PPOState:
    params: Any
    opt_state: Any


class ActorCritic(nn.Module):
    """Policy output (logits or Gaussian mean) and ``num_values`` values; a state-independent log-std."""

    hidden_sizes: tuple[int, ...]
    activation: str
    action_size: int
    num_values: int
    continuous: bool
    shared_torso: bool

    @nn.compact
    def __call__(self, obs):
        mlp = dict(activation=self.activation, weight_init="orthogonal")
        if self.shared_torso:
            x = MLP(self.hidden_sizes, **mlp)(obs)
            pi = MLP((), self.action_size, output_scale=0.01, **mlp)(x)
            value = MLP((), self.num_values, output_scale=1.0, **mlp)(x)
        else:
            pi = MLP(self.hidden_sizes, self.action_size, output_scale=0.01, **mlp)(obs)
            value = MLP(self.hidden_sizes, self.num_values, output_scale=1.0, **mlp)(obs)
        log_std = (
            self.param("log_std", nn.initializers.zeros, (self.action_size,)) if self.continuous else None
        )
        return pi, log_std, value


def validate(config: PPOConfig, spec: EnvSpec) -> None:
    validate_ranges(config)
    if not isinstance(spec.action_space, Box | Discrete):
        raise ConfigError(f"PPO needs a Box or Discrete action space; {spec.id} has {spec.action_space}")
    on_policy.validate(config, spec)


def make_ppo(config: PPOConfig, spec: EnvSpec) -> on_policy.OnPolicyAgent:
    space = spec.action_space
    continuous = isinstance(space, Box)
    clip_actions = continuous and space.bounded
    action_size = int(np.prod(space.shape)) if continuous else int(space.n)
    weights = on_policy.reward_weights(config, spec)
    net = ActorCritic(
        tuple(config.hidden_sizes),
        config.activation,
        action_size,
        on_policy.value_terms(config, spec),
        continuous,
        config.shared_torso,
    )
    updates_per_iteration = config.update_epochs * config.num_minibatches
    steps_per_iteration = config.num_envs * config.num_steps

    def learning_rate(count):
        # CleanRL: frac = 1 − (iteration − 1) / num_iterations, set once per iteration before its updates
        done = (count // updates_per_iteration) * steps_per_iteration
        frac = jnp.maximum(0.0, 1.0 - done / config.anneal_steps) if config.anneal_lr else 1.0
        return config.learning_rate * frac

    def make_tx(learning_rate, max_grad_norm):
        return optax.chain(optax.clip_by_global_norm(max_grad_norm), optax.adam(learning_rate, eps=1e-5))

    tx = optax.inject_hyperparams(make_tx)(learning_rate=learning_rate, max_grad_norm=config.max_grad_norm)

    def log_prob(pi, log_std, action):
        return gaussian_log_prob(action, pi, log_std) if continuous else categorical_log_prob(pi, action)

    def entropy(pi, log_std):
        return (
            gaussian_entropy(jnp.broadcast_to(log_std, pi.shape)) if continuous else categorical_entropy(pi)
        )

    def draw(pi, log_std, key):
        if continuous:
            return pi + jnp.exp(log_std) * jax.random.normal(key, pi.shape)
        return jax.random.categorical(key, pi).astype(jnp.int32)

    def init(key, spec_=None) -> PPOState:
        params = net.init(key, jnp.zeros(spec.observation_space.shape, jnp.float32))
        return PPOState(params, tx.init(params))

    def act(state: PPOState, obs, key, mode="explore"):
        pi, log_std, _ = net.apply(state.params, obs)
        if mode == "deterministic":  # the mode: the Gaussian mean, the most likely category
            action = pi if continuous else jnp.argmax(pi, axis=-1).astype(jnp.int32)
        else:
            action = draw(pi, log_std, key)
        # what the env does to a training sample (CleanRL's ClipAction), here so that no caller has to know it
        return jnp.clip(action, space.low, space.high) if clip_actions else action

    def sample(state: PPOState, obs, key):
        pi, log_std, values = net.apply(state.params, obs)
        action = draw(pi, log_std, key)  # unclipped: the ratio in the loss needs this sample's log-prob
        return action, log_prob(pi, log_std, action), values

    def value(state: PPOState, obs):
        return net.apply(state.params, obs)[2]

    def log_prob_of(state: PPOState, obs, action):
        pi, log_std, _ = net.apply(state.params, obs)
        return log_prob(pi, log_std, action)

    def loss_fn(params, mb):
        pi, log_std, values = net.apply(params, mb["obs"])  # the MLPs broadcast over the minibatch axis
        logratio = log_prob(pi, log_std, mb["action"]) - mb["log_prob"]
        ratio = jnp.exp(logratio)
        adv = mb["advantage"]  # [B, K]
        per_term = config.multi_critic and config.term_normalization == "per_term"
        if config.multi_critic and not per_term:  # combine the raw advantages first (the ablation)
            adv = jnp.sum(adv * weights, axis=-1, keepdims=True)
        if config.normalize_advantages:  # per column over the minibatch; CleanRL uses torch's unbiased std
            mean, std = devices.batch_moments(adv, ddof=1)  # over the whole minibatch, on every device
            adv = (adv - mean) / (std + 1e-8)
        adv = jnp.sum(adv * weights, axis=-1) if per_term else adv[:, 0]
        clipped_ratio = jnp.clip(ratio, 1 - config.clip_coef, 1 + config.clip_coef)
        pg_loss = jnp.mean(jnp.maximum(-adv * ratio, -adv * clipped_ratio))
        v_loss = (values - mb["return"]) ** 2
        if config.clip_vloss:
            clipped = mb["value"] + jnp.clip(values - mb["value"], -config.clip_coef, config.clip_coef)
            v_loss = jnp.maximum(v_loss, (clipped - mb["return"]) ** 2)
        v_loss_terms = 0.5 * jnp.mean(v_loss, axis=0)  # [K]: one loss per critic, summed
        ent = jnp.mean(entropy(pi, log_std))
        loss = pg_loss - config.ent_coef * ent + config.vf_coef * jnp.sum(v_loss_terms)
        aux = {
            "loss/policy": pg_loss,
            "loss/value": jnp.sum(v_loss_terms),
            "entropy": ent,
            "approx_kl": jnp.mean((ratio - 1) - logratio),  # Schulman's k3 estimator, as CleanRL
            "clipfrac": jnp.mean((jnp.abs(ratio - 1) > config.clip_coef).astype(jnp.float32)),
        }
        if config.multi_critic and len(spec.reward_names) > 1:
            for i, name in enumerate(spec.reward_names):
                aux[f"loss/value/{name}"] = v_loss_terms[i]
                aux[f"advantage_scale/{name}"] = jnp.std(mb["advantage"][:, i])
        return loss, aux

    def update(state: PPOState, minibatch, key):
        params, opt_state, (_, metrics) = optim.gradient_step(
            loss_fn, state.params, state.opt_state, tx, minibatch, has_aux=True
        )
        metrics["learning_rate"] = opt_state.hyperparams["learning_rate"]
        return PPOState(params, opt_state), metrics

    return on_policy.OnPolicyAgent("ppo", config, init, act, update, log_prob_of, sample=sample, value=value)


def make_trainer(config: PPOConfig, env: Environment, params=None) -> Trainer:
    validate(config, env.spec)
    return on_policy.make_on_policy_trainer("ppo", env, make_ppo, config, params=params)
