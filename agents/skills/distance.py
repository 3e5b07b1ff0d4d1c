"""What the distance-based skill methods share (LSD, METRA, CSD): a state representation φ: S → R^d, the skill
reward ``(φ(s′) − φ(s))ᵀ z``, zero-shot goal reaching through φ, skill rollouts, and the glue that makes each
method one reward term composed with SAC and a conditioning prior.

The methods differ only in how φ is kept from growing without bound — LSD by making φ 1-Lipschitz in the
Euclidean metric (spectral normalization), METRA by a dual constraint ‖φ(s′) − φ(s)‖² ≤ d on consecutive
states (the temporal distance), CSD by the same constraint under a learned controllability metric — so each
algorithm file holds its config and its φ update, and this module everything else:

- ``SkillConfig``: SAC's config plus the skill prior (continuous of dimension ``skill_dim``, or ``discrete``
  with ``skill_dim`` skills, here as a centred one-hot, METRA's ``(onehot − 1/K)·K/(K − 1)``) and ``obs_dims``
  (the observation coordinates the skill's model sees: ``()`` = all, ``(0, 1)`` an x-y prior as in the papers'
  locomotion runs); ``DistanceSkillConfig`` adds φ's network and learning rate;
- ``skill_reward``: ``Δφ · z`` for continuous z and, because the centred one-hot *is* the reward's direction
  in METRA's and LSD's discrete form, for discrete z too;
- ``goal_skill``: the z that heads from s towards a goal g (METRA: ``normalize(φ(g) − φ(s))``; LSD: the raw
  ``φ(g) − φ(s)``, its skills being unnormalized Gaussians; discrete: the skill whose direction best aligns);
  ``act_to_goal`` acts on it (``rlkit.evaluation.conditioned_trajectories`` re-chooses it every K steps, or
  holds fixed skills, in parallel episodes);
- ``skill_agent``: the registry's pieces of one method (``make_agent``, ``make_trainer``, ``validate``,
  ``host_pieces``, ``condition``), all from its config and its reward term — DADS registers through it too,
  its term being skill dynamics instead of φ.

The skill is drawn at every reset and held for the episode (``rlkit.conditioning.Conditioned``;
``resample_every`` > 0 draws again every N steps), and every sampled batch is relabelled with the *updated*
φ (``rlkit.rewards``: the term's update, then its reward, then SAC — METRA's order φ → λ → rewards → critic →
actor → α). Exported agents carry φ (the reward term's state is part of the agent's state), so a trained skill
library loads with its representation: ``agents.skills.library.load_skills`` (checked against the
skill dimension and env it is used with), then ``representation(library.state)``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from agents import sac
from envs.core import Environment, EnvSpec
from rlkit import conditioning
from rlkit.configs import ConfigError, param
from rlkit.off_policy import make_off_policy_trainer
from rlkit.rewards import RewardTerm, with_reward_terms
from rlkit.training import Trainer


@struct.dataclass
class SkillFields:
    """The skill fields every skill method shares, mixed into its learner's config (``SkillConfig`` over SAC;
    ``agents.skills.slim.SLIMConfig`` over PPO)."""

    skill_dim: int = param(2, static=True, low=1)
    """d, the dimension of z (discrete: the number of skills K, >= 2)"""
    discrete: bool = param(False, static=True)
    """K discrete skills (one-hot vectors) instead of continuous z"""
    obs_dims: tuple[int, ...] = param((), static=True)
    """observation coordinates the skill's model (φ, skill dynamics) sees (() = all; (0, 1) = an x-y prior)"""
    resample_every: int = param(0, low=0)
    """0 = one skill per episode (the papers); N = also draw a new skill every N steps"""
    env_reward: bool = param(False, static=True)
    """keep the env's reward as a first reward term (then reward_weights has one weight per term)"""


@struct.dataclass
class SkillConfig(sac.SACConfig, SkillFields):
    """What every skill method composed with SAC through ``skill_agent`` shares (LSD, METRA, CSD, DADS)."""


@struct.dataclass
class PhiFields:
    """φ's fields (LSD, METRA, CSD; mixed into SLIM's PPO config too)."""

    phi_hidden_sizes: tuple[int, ...] = param((1024, 1024), static=True)
    """hidden layers of φ (the papers: 2 × 1024)"""
    phi_lr: float = param(1e-4, low=0.0, low_inclusive=False)
    """learning rate of φ"""


@struct.dataclass
class DistanceSkillConfig(SkillConfig, PhiFields):
    """A distance-based skill method over SAC: the skill fields and φ's."""


@struct.dataclass
class PhiState:
    params: Any
    stats: Any  # flax collections besides params (spectral norm's power-iteration vectors), {} if none
    opt: Any


def raw_obs(config: DistanceSkillConfig, obs: jax.Array) -> jax.Array:
    """The part of a conditioned observation ``[..., D + d]`` that φ sees: z removed, then ``obs_dims``."""
    x = conditioning.split(obs, config.skill_dim)[0]
    return x[..., list(config.obs_dims)] if config.obs_dims else x


def phi_input_size(config: DistanceSkillConfig, spec: EnvSpec) -> int:
    """φ's input size on ``spec``, the conditioned spec the learner sees (z appended)."""
    return len(config.obs_dims) if config.obs_dims else spec.observation_space.shape[0] - config.skill_dim


def phi_pair(apply_phi, batch_obs, batch_next_obs):
    """``(φ(s), φ(s′))`` in one call of ``apply_phi`` on the stacked ``[2B, D]`` inputs (one power-iteration
    step for a spectrally normalized φ, and half the kernel launches)."""
    b = batch_obs.shape[0]
    out = apply_phi(jnp.concatenate([batch_obs, batch_next_obs]))
    if isinstance(out, tuple):  # (φ, updated collections)
        return out[0][:b], out[0][b:], out[1]
    return out[:b], out[b:], None


def skill_reward(phi_s: jax.Array, phi_next: jax.Array, z: jax.Array) -> jax.Array:
    """``(φ(s′) − φ(s))ᵀ z`` per row: ``float[B]``."""
    return jnp.sum((phi_next - phi_s) * z, axis=-1)


def prior(
    config: SkillConfig,
    continuous: Callable[[int], conditioning.Prior],
    discrete: Callable[[int], conditioning.Prior] = conditioning.centred_one_hot,
) -> conditioning.Prior:
    """The skill prior: ``discrete(K)`` (centred one-hot by default) when ``config.discrete``, else
    ``continuous(d)``."""
    if config.discrete:
        return discrete(config.skill_dim)
    return continuous(config.skill_dim)


def goal_skill(config: DistanceSkillConfig, phi_s, phi_g, *, normalize: bool) -> jax.Array:
    """The z that heads from φ(s) towards φ(g) (``[..., d]``): ``φ(g) − φ(s)``, unit-normalized if
    ``normalize`` (METRA), and for discrete skills the centred one-hot whose direction aligns best with it."""
    direction = phi_g - phi_s
    if config.discrete:
        k = config.skill_dim
        table = (jnp.eye(k) - 1.0 / k) * k / (k - 1)
        return table[jnp.argmax(direction @ table.T, axis=-1)]
    if normalize:
        return direction / jnp.maximum(jnp.linalg.norm(direction, axis=-1, keepdims=True), 1e-6)
    return direction


def representation(state) -> PhiState:
    """φ's state inside a skill agent's state (``TermsState``: the base learner's, then its one term's, whose
    ``phi`` field every method's term state has)."""
    return state.terms[0].phi


def act_to_goal(agent, config: DistanceSkillConfig, phi_apply, *, normalize: bool):
    """``act(state, obs, goal, key, mode="deterministic")`` of a trained skill agent: the skill ``goal_skill``
    picks from φ of the (raw) observation and of the goal, then the agent's action on ``concat(obs, z)``.
    ``goal`` is a point of φ's input space (an observation, or its ``obs_dims``)."""

    def act(state, obs, goal, key, mode="deterministic"):
        d_in = obs.shape[-1] if not config.obs_dims else len(config.obs_dims)
        if goal.shape[-1] != d_in:
            raise ConfigError(
                f"goal has {goal.shape[-1]} coordinates; φ of {agent.name} takes {d_in} "
                f"(obs_dims={config.obs_dims or 'all'})"
            )
        x = obs[..., list(config.obs_dims)] if config.obs_dims else obs
        phi = representation(state)
        z = goal_skill(config, phi_apply(phi, x), phi_apply(phi, goal), normalize=normalize)
        return agent.act(state, jnp.concatenate([obs, z], -1), key, mode)

    return act


@dataclass(frozen=True)
class SkillAgent:
    """The registry's pieces of one distance-based skill method (see ``skill_agent``)."""

    name: str
    make_agent: Callable
    make_trainer: Callable
    validate: Callable
    host_pieces: Callable
    condition: Callable
    prior: Callable


def check_skill_fields(name: str, config: SkillFields, spec: EnvSpec, validate_learner) -> None:
    """Refuse skill fields that cannot work on ``spec`` (one line each), then ``validate_learner(config, spec
    with the reward names the learner sees)``: the env's (when kept) and then the method's ``name``."""
    if config.skill_dim < 1:
        raise ConfigError(f"{name.upper()}: skill_dim = {config.skill_dim}; z needs at least one dimension")
    names = (spec.reward_names if config.env_reward else ()) + (name,)
    validate_learner(config, spec.replace(reward_names=names))
    shape = spec.observation_space.shape
    if len(shape) != 1:
        raise ConfigError(f"{name.upper()} takes flat observations; {spec.id} has shape {shape}")
    if config.discrete and config.skill_dim < 2:
        raise ConfigError(
            f"{name.upper()}: discrete skills need skill_dim >= 2 (K skills), got {config.skill_dim}"
        )
    bad = [i for i in config.obs_dims if not 0 <= i < shape[0]]
    if bad or len(set(config.obs_dims)) != len(config.obs_dims):
        raise ConfigError(
            f"{name.upper()}: obs_dims={config.obs_dims} must be distinct coordinates of {spec.id}'s "
            f"observation, in [0, {shape[0]})"
        )


def skill_agent(
    name: str,
    term: Callable[[Any, EnvSpec], RewardTerm],
    continuous,
    discrete=conditioning.centred_one_hot,
) -> SkillAgent:
    """SAC × ``term(config, spec)`` × ``Conditioned(env, prior(config))``: what a method registers.
    ``continuous(d)`` is its continuous prior (``conditioning.gaussian`` for LSD, ``unit_sphere`` for METRA,
    ``uniform`` for DADS), ``discrete(K)`` its discrete one (DADS: plain one-hot)."""

    def skills(config):
        return prior(config, continuous, discrete)

    def validate(config: SkillConfig, spec: EnvSpec) -> None:
        check_skill_fields(name, config, spec, sac.validate)

    make_agent = with_reward_terms(
        sac.make_sac, lambda config, spec: [term(config, spec)], env_reward=lambda c: c.env_reward, name=name
    )

    def make_trainer(config, env: Environment, params=None) -> Trainer:
        validate(config, env.spec)
        p = skills(config)

        def conditioned(cfg):
            return conditioning.Conditioned(env, p, cfg.resample_every)

        return make_off_policy_trainer(name, conditioned, make_agent, config, params=params, extras=("z",))

    return SkillAgent(
        name,
        make_agent,
        make_trainer,
        validate,
        host_pieces=lambda config, spec: {"extras": ("z",)},
        condition=lambda config: (skills(config), config.resample_every),
        prior=skills,
    )
