"""What every goal-conditioned agent shares: its goal fields, the goal-conditioned env it trains and is evaluated
on, and the hindsight data source (composition, not a loop: ``rlkit.conditioning.GoalConditioned`` ×
``rlkit.data_sources.hindsight_goals`` × the off-policy loop).

A goal lives in the space of ``obs[goal_dims]`` (the achieved goal; ``goal_dims=None``: the whole observation).
``goal`` set: every training episode aims at that one goal (single-goal RL); ``goal=None``: each episode draws
its goal from the env's ``sample_free(key)`` (``PointMaze``: uniform over the floor). Evaluation measures
success at ``eval_goal`` (default: the training goals) within ``goal_radius``.
"""

from __future__ import annotations

import numpy as np
from flax import struct

from envs.core import Environment, EnvSpec
from rlkit import conditioning
from rlkit.configs import ConfigError, param


@struct.dataclass
class GoalFields:
    goal: tuple[float, ...] | None = param(None, static=True)
    """the one goal every training episode aims at (single-goal RL), in the space of obs[goal_dims]; None: a goal
    per episode from the env's sample_free"""
    goal_dims: tuple[int, ...] | None = param(None, static=True)
    """observation indices that make the achieved goal (None: the whole observation)"""
    goal_radius: float | None = param(None, static=True, low=0.0, low_inclusive=False)
    """success = the achieved goal within this distance of the goal (None: the env's goal_radius param)"""
    eval_goal: tuple[float, ...] | None = param(None, static=True)
    """the goal evaluation measures success at (None: the training goals)"""


def goal_dims(config, spec: EnvSpec) -> tuple[int, ...]:
    """The achieved goal's observation indices on the unconditioned ``spec``, checked."""
    space = spec.observation_space
    if len(getattr(space, "shape", ())) != 1:
        raise ConfigError(f"goal-conditioned agents need a 1-D observation; {spec.id} has {space!r}")
    return conditioning.goal_dims_of(config.goal_dims, space.shape[0], f"{type(config).__name__}.goal_dims")


def goal_size(config, spec: EnvSpec | None = None) -> int:
    """G, the goal's size: ``len(goal_dims)``, else that of ``goal`` or ``eval_goal``, else (on the conditioned
    spec, observation ``D + G`` with ``G = D``) half the observation."""
    if config.goal_dims is not None:
        return len(config.goal_dims)
    for g in (config.goal, config.eval_goal):
        if g is not None:
            return len(g)
    return spec.observation_space.shape[0] // 2


def _fixed(config, name: str, value, dims) -> conditioning.Prior:
    cls = type(config).__name__
    g = np.asarray(value, np.float64)
    if g.ndim != 1 or g.size != len(dims):
        raise ConfigError(
            f"{cls}.{name}={value!r}: a goal has {len(dims)} entries here (the achieved goal obs{list(dims)}); "
            f"got shape {g.shape}"
        )
    if not np.all(np.isfinite(g)):
        raise ConfigError(f"{cls}.{name}={value!r}: goal entries must be finite numbers")
    return conditioning.fixed(g, name)


def goal_radius(config, env: Environment) -> float:
    """The success radius: ``goal_radius``, else the env's ``goal_radius`` param."""
    if config.goal_radius is not None:
        return float(config.goal_radius)
    radius = getattr(env.default_params, "goal_radius", None)
    if radius is None:
        raise ConfigError(
            f"{type(config).__name__}.goal_radius=None takes the env's goal_radius param, and {env.spec.id} has "
            "none; set goal_radius"
        )
    return float(radius)


def check_goals(config, spec: EnvSpec) -> None:
    """Refuse goal dims outside the observation and goals of the wrong size, in one line, before compiling."""
    dims = goal_dims(config, spec)
    for name in ("goal", "eval_goal"):
        if getattr(config, name) is not None:
            _fixed(config, name, getattr(config, name), dims)


def goal_env(config, env: Environment) -> conditioning.GoalConditioned:
    """``env`` conditioned on the config's goals (one line for a goal of the wrong size or an env that cannot
    draw goals); what the agent trains on, and — through ``evaluation_env`` — is evaluated on."""
    dims = goal_dims(config, env.spec)
    if config.goal is not None:
        prior = _fixed(config, "goal", config.goal, dims)
    elif callable(getattr(env.unwrapped, "sample_free", None)):  # under TimeLimit: the base env's floor
        box = env.spec.observation_space
        sampler = env.unwrapped.sample_free
        prior = conditioning.goals(sampler, len(dims), box.low[list(dims)], box.high[list(dims)])
    else:
        raise ConfigError(
            f"{type(config).__name__}.goal=None draws each episode's goal from the env's sample_free(key), which "
            f"{env.spec.id} does not have; set goal=(...) to one goal in the space of obs{list(dims)}"
        )
    eval_prior = None if config.eval_goal is None else _fixed(config, "eval_goal", config.eval_goal, dims)
    return conditioning.GoalConditioned(
        env, prior, goal_dims=dims, radius=goal_radius(config, env), eval_prior=eval_prior
    )


def check_single_term(config, spec: EnvSpec, what: str) -> None:
    if spec.num_reward_terms != 1:
        raise ConfigError(
            f"{type(config).__name__}: {what} replaces the env's reward by the goal-reaching reward; {spec.id} has "
            f"{spec.num_reward_terms} reward terms {list(spec.reward_names)}"
        )
