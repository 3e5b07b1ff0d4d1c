"""Behavioural cloning (Pomerleau 1991) with HumanCompatibleAI/imitation's loss (``algorithms/bc.py``):
−mean log π(a|s) − ent_weight · H[π(·|s)] + l2_weight · ½‖θ‖² over all policy parameters (biases too), Adam.

Policies: a categorical over logits for ``Discrete`` actions; for ``Box`` actions ``"tanh_gaussian"``, SAC's actor
exactly (``GaussianActor``, the same log-std range and affine map into the box: for equal ``hidden_sizes`` the
parameters are a SAC actor's, tree and distribution alike), or ``"gaussian"``, unsquashed over the box-normalized
action (the same tree, a different distribution). A squashed Gaussian has no closed-form entropy: imitation (via
SB3, which returns None there) drops the term; here H is the one-sample estimate −log π(ã|s), ã reparameterized
from ``jax.random.normal(key, ...)`` with the update's key (unbiased, differentiable). Deterministic actions are
the mode (tanh(mean)·scale + bias; the mean clipped to the box; argmax), "explore" samples (clipped for "gaussian").
Trained by ``rlkit.offline`` (steps are gradient steps).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from envs.core import Environment, EnvSpec
from envs.spaces import Box, Discrete
from rlkit import configs, optim
from rlkit import distributions as dist
from rlkit.agent import Agent
from rlkit.buffers.datasets import check_demos_match
from rlkit.buffers.demos import DemoStore, sample_transitions
from rlkit.configs import ConfigError, param
from rlkit.networks import MLP, GaussianActor
from rlkit.offline import make_offline_trainer
from rlkit.training import Trainer

POLICIES = ("tanh_gaussian", "gaussian")


@struct.dataclass
class BCConfig:
    hidden_sizes: tuple[int, ...] = param((256, 256), static=True)
    """hidden layer sizes of the policy (SAC's default, so a BC policy fits a default SAC actor)"""
    policy: str = param("tanh_gaussian", static=True, choices=POLICIES)
    """Box actions: "tanh_gaussian" (SAC's actor; bounded boxes) or "gaussian" (unsquashed); Discrete: categorical"""
    batch_size: int = param(256, static=True, low=1)
    """demonstration transitions per gradient step (uniform, with replacement)"""
    chunk_updates: int = param(1000, static=True, low=1)
    """gradient steps in one compiled chunk (logs, evaluation and checkpoints happen between chunks)"""
    learning_rate: float = param(1e-3, low=0.0, low_inclusive=False)
    """Adam learning rate (imitation's default: torch Adam's 1e-3)"""
    ent_weight: float = param(1e-3, low=0.0)
    """weight of the entropy bonus in the loss (imitation: 1e-3)"""
    l2_weight: float = param(0.0, low=0.0)
    """weight of ½‖θ‖² over all policy parameters in the loss (imitation: 0)"""


@struct.dataclass
class BCState:
    actor: Any  # a GaussianActor's (SAC's actor) or an MLP's parameters
    opt: Any  # Adam state, the learning rate a leaf of it (sweepable)


def validate(config: BCConfig, spec: EnvSpec, demos: DemoStore | None = None) -> None:
    """Refuse, in one ``ConfigError`` line, what BC cannot model (before anything compiles)."""
    configs.validate(config)
    space = spec.action_space
    if not isinstance(space, Box | Discrete):
        raise ConfigError(f"BC supports Box and Discrete action spaces; {spec.id} has {space}")
    if isinstance(space, Box) and config.policy == "tanh_gaussian" and not space.bounded:
        raise ConfigError(
            f"BCConfig.policy = 'tanh_gaussian' needs a bounded Box action space; {spec.id} has {space} "
            "(policy='gaussian' models unbounded actions; Discrete spaces get a categorical policy)"
        )
    if demos is not None:
        check_demos_match(demos, spec, need_actions=True)


def make_bc(config: BCConfig, spec: EnvSpec) -> Agent:
    space = spec.action_space
    discrete = isinstance(space, Discrete)
    if not discrete and config.policy not in POLICIES:  # make_bc is also called without validate (load_agent)
        msg = f"BCConfig.policy = {config.policy!r} is not allowed; choose one of {list(POLICIES)}"
        raise ConfigError(msg)
    squash = not discrete and config.policy == "tanh_gaussian"
    if discrete:
        net = MLP(config.hidden_sizes, space.n)  # logits
    else:
        net = GaussianActor(config.hidden_sizes, int(np.prod(space.shape)))
        low, high = space.low.reshape(-1), space.high.reshape(-1)
        finite = np.isfinite(low) & np.isfinite(high)  # unbounded dims ("gaussian" only): unscaled
        scale = jnp.asarray(np.where(finite, (high - low) / 2, 1.0), jnp.float32)
        bias = jnp.asarray(np.where(finite, (high + low) / 2, 0.0), jnp.float32)
        log_scale = jnp.sum(jnp.log(scale))  # the affine map's log-Jacobian, so densities are in env units
    tx = optax.inject_hyperparams(optax.adam)(learning_rate=config.learning_rate)

    def log_prob_entropy(actor, obs, action, key):
        """obs ``[B, *obs]``, action ``[B, *action]`` → (log π(action|obs), entropy estimate), each ``[B]``."""
        if discrete:
            logits = net.apply(actor, obs)
            return dist.categorical_log_prob(logits, action), dist.categorical_entropy(logits)
        mean, log_std = net.apply(actor, obs)  # [B, A] each
        y = (jnp.reshape(action, mean.shape) - bias) / scale
        if not squash:
            logp = dist.gaussian_log_prob(y, mean, log_std) - log_scale
            return logp, dist.gaussian_entropy(log_std) + log_scale
        logp = dist.tanh_gaussian_log_prob(y, mean, log_std) - log_scale
        return logp, -(dist.sample_tanh_gaussian(key, mean, log_std)[1] - log_scale)

    def loss_fn(actor, batch, key):
        logp, entropy = log_prob_entropy(actor, batch["obs"], batch["action"], key)
        l2 = 0.5 * sum(jnp.sum(jnp.square(w)) for w in jax.tree.leaves(actor))
        loss = -jnp.mean(logp) - config.ent_weight * jnp.mean(entropy) + config.l2_weight * l2
        return loss, {"loss/bc": loss, "log_prob": jnp.mean(logp), "entropy": jnp.mean(entropy), "l2": l2}

    def init(key, spec_=None) -> BCState:
        actor = net.init(key, jnp.zeros(spec.observation_space.shape, jnp.float32))
        return BCState(actor, tx.init(actor))

    def act(state: BCState, obs, key, mode="explore"):
        if discrete:
            logits = net.apply(state.actor, obs)
            a = jnp.argmax(logits, -1) if mode == "deterministic" else jax.random.categorical(key, logits)
            return a.astype(jnp.int32)
        mean, log_std = net.apply(state.actor, obs)
        u = mean if mode == "deterministic" else mean + jnp.exp(log_std) * jax.random.normal(key, mean.shape)
        a = jnp.tanh(u) * scale + bias if squash else jnp.clip(u * scale + bias, low, high)
        return jnp.reshape(a, space.shape).astype(space.dtype)

    def update(state: BCState, batch, key):
        """batch: ``obs [B, *obs]``, ``action [B, *action]`` (other fields ignored)."""
        actor, opt, (_, metrics) = optim.gradient_step(
            loss_fn, state.actor, state.opt, tx, batch, key, has_aux=True
        )
        return BCState(actor, opt), metrics

    def log_prob(state: BCState, obs, action):
        return log_prob_entropy(state.actor, obs, action, jax.random.key(0))[0]  # the entropy part is unused

    return Agent("bc", config, init, act, update, log_prob)


def make_trainer(config: BCConfig, env: Environment | EnvSpec, params=None, *, demos: DemoStore) -> Trainer:
    """BC on ``demos`` (transitions drawn uniformly), evaluated deterministically in ``env`` — or, given an
    ``EnvSpec`` (a Gymnasium env's), trained without evaluation (``rlkit.offline.make_offline_trainer``)."""
    validate(config, env if isinstance(env, EnvSpec) else env.spec, demos)

    def sample(cfg, key, batch_size):
        return sample_transitions(demos, key, batch_size)

    return make_offline_trainer("bc", env, make_bc, config, sample, params=params)
