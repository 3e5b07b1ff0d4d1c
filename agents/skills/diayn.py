"""DIAYN (Eysenbach et al. 2019, "Diversity is All You Need"): skills z from a categorical prior, held for the
episode; a discriminator q(z | s′) learns which skill visited a state; the policy π(a | s, z) is paid
``log q(z | s′) − log p(z)`` (reference code ``ben-eysenbach/sac``; URLB ``agent/diayn.py``) — positive when the
skill is more recognisable than chance, at most log K.

Continuous skills (``continuous_dim = d > 0``, the form the LSD / METRA papers compare against): z ~ N(0, I_d)
and q(z | s′) = N(μ(s′), diag σ(s′)²) with log σ learned and clipped to [−5, 2]; the same reward, now
unbounded above (a sharper q pays more).

Composition, nothing else: ``SAC × [discriminator reward term] × Conditioned(env, categorical(K))``:

- conditioning (``rlkit.conditioning``) samples z at every reset (or every ``resample_every`` steps, URLB's 50),
  shows the learner ``concat(obs, z)`` and stores z with each transition (the ``z`` extra);
- the discriminator is a reward term (``rlkit.rewards``): per sampled batch it takes one cross-entropy step on
  (s′, z), then the batch is relabelled with its *updated* log-probabilities (never stored rewards);
- the learner is SAC, unchanged. With ``env_reward=True`` the env's reward is kept as a first reward term, the
  skill reward second, summed with ``reward_weights`` or one critic per term with ``multi_critic``.

The discriminator sees the raw next observation (the conditioned observation without its z), or ``info["xy"]``
(``disc_input="xy"``: the x-y prior of locomotion experiments).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax import struct

from agents import sac
from envs.core import Environment, EnvSpec
from rlkit import conditioning, optim
from rlkit.configs import ConfigError, param
from rlkit.networks import MLP
from rlkit.off_policy import make_off_policy_trainer
from rlkit.rewards import RewardTerm, with_reward_terms
from rlkit.training import Trainer


@struct.dataclass
class DIAYNConfig(sac.SACConfig):
    num_skills: int = param(8, static=True, low=2)
    """K: skills of the categorical prior p(z) = 1/K (when continuous_dim = 0)"""
    continuous_dim: int = param(0, static=True, low=0)
    """0 = K categorical skills; d > 0 = continuous z ~ N(0, I_d) with a Gaussian discriminator"""
    resample_every: int = param(0, low=0)
    """0 = one skill per episode (DIAYN); N = also draw a new skill every N steps (URLB uses 50); sweepable"""
    disc_hidden_sizes: tuple[int, ...] = param((256, 256), static=True)
    """hidden layers of the discriminator q(z | s′)"""
    disc_input: str = param("obs", static=True, choices=("obs", "xy"))
    """what q sees: the env's next observation ("obs") or info["xy"] ("xy", an x-y prior)"""
    disc_lr: float = param(3e-4, low=0.0, low_inclusive=False)
    """discriminator learning rate (ben-eysenbach/sac: 3e-4)"""
    env_reward: bool = param(False, static=True)
    """keep the env's reward as a first reward term (then reward_weights has one weight per term)"""


@struct.dataclass
class DiscriminatorState:
    params: Any
    opt: Any


def prior(config: DIAYNConfig) -> conditioning.Prior:
    if config.continuous_dim:
        return conditioning.gaussian(config.continuous_dim)
    return conditioning.categorical(config.num_skills)


def skill_size(config: DIAYNConfig) -> int:
    """The length of z: d (continuous) or K (one-hot)."""
    return config.continuous_dim or config.num_skills


def classify(config: DIAYNConfig, params, states):
    """The discriminator's most likely skill for ``states [..., D]`` (its input: raw obs or x-y): the index
    (categorical) or the mean μ(s′) (continuous)."""
    out = _net(config).apply(params, states)
    return out[..., : config.continuous_dim] if config.continuous_dim else jnp.argmax(out, axis=-1)


def _net(config: DIAYNConfig) -> nn.Module:
    # in a Sequential: the parameter layout saved files hold (MLP once shadowed Module.init)
    return nn.Sequential([MLP(config.disc_hidden_sizes, 2 * config.continuous_dim or config.num_skills)])


def discriminator(config: DIAYNConfig, spec: EnvSpec) -> RewardTerm:
    """The skill reward ``log q(z | s′) + log K``, with q trained by cross-entropy on the sampled batch."""
    k, d = skill_size(config), config.continuous_dim
    net = _net(config)
    skills = prior(config)
    tx = optax.inject_hyperparams(optax.adam)(learning_rate=config.disc_lr)

    def inputs(batch):
        if config.disc_input == "xy":
            return batch["xy"]
        return conditioning.split(batch["next_obs"], k)[0]

    def log_q(params, batch):
        """``float[B]``: log q(z | s′) of each row's own skill."""
        out = net.apply(params, inputs(batch))
        if d:
            mean, log_std = out[..., :d], jnp.clip(out[..., d:], -5.0, 2.0)
            x = (batch["z"] - mean) * jnp.exp(-log_std)
            return jnp.sum(-0.5 * jnp.square(x) - log_std - 0.5 * jnp.log(2 * jnp.pi), axis=-1)
        return jnp.sum(jax.nn.log_softmax(out) * batch["z"], axis=-1)

    def init(key, spec_) -> DiscriminatorState:
        size = spec.observation_space.shape[0] - k if config.disc_input == "obs" else 2
        params = net.init(key, jnp.zeros((size,), jnp.float32))
        return DiscriminatorState(params, tx.init(params))

    def reward(state: DiscriminatorState, batch):
        if d:
            return log_q(state.params, batch) - skills.log_prob(batch["z"])
        return log_q(state.params, batch) + jnp.log(float(k))  # − log p(z), p uniform

    def update(state: DiscriminatorState, batch, key):
        def loss(params):
            lq = log_q(params, batch)
            return -jnp.mean(lq), lq

        params, opt, (value, lq) = optim.gradient_step(loss, state.params, state.opt, tx, has_aux=True)
        out = net.apply(state.params, inputs(batch))  # the metrics are the batch's before the step
        if d:  # how much of z's variance q's mean explains (1 = all, 0 = none)
            fit = 1.0 - jnp.mean(jnp.square(out[..., :d] - batch["z"])) / jnp.mean(jnp.square(batch["z"]))
            metrics = {"explained_variance": fit}
        else:
            metrics = {"accuracy": jnp.mean(jnp.argmax(out, -1) == jnp.argmax(batch["z"], -1))}
        new = DiscriminatorState(params, opt)
        return new, {"loss/discriminator": value, **metrics}

    return RewardTerm("diayn", init, reward, update)


def validate(config: DIAYNConfig, spec: EnvSpec) -> None:
    """``spec``: the env's own (unconditioned) spec."""
    names = (spec.reward_names if config.env_reward else ()) + ("diayn",)
    sac.validate(config, spec.replace(reward_names=names))
    if len(spec.observation_space.shape) != 1:
        raise ConfigError(
            f"DIAYN conditions flat observations; {spec.id} has shape {spec.observation_space.shape}"
        )


make_diayn = with_reward_terms(
    sac.make_sac,
    lambda config, spec: [discriminator(config, spec)],
    env_reward=lambda c: c.env_reward,
    name="diayn",
)


def extras(config: DIAYNConfig) -> tuple[str, ...]:
    return ("z", "xy") if config.disc_input == "xy" else ("z",)


def host_pieces(config: DIAYNConfig, spec: EnvSpec) -> dict:
    """The z extra (its prior comes from the registry entry's ``condition``)."""
    return {"extras": extras(config)}


def make_trainer(config: DIAYNConfig, env: Environment, params=None) -> Trainer:
    validate(config, env.spec)
    skills = prior(config)  # N from each run's config: one compiled program for a sweep over it

    def conditioned(cfg):
        return conditioning.Conditioned(env, skills, cfg.resample_every)

    return make_off_policy_trainer(
        "diayn", conditioned, make_diayn, config, params=params, extras=extras(config)
    )
