"""A trained skill agent loaded as a frozen skill library: what a high-level policy (options over skills, planning
over skills, zero-shot goals) needs from an exported DIAYN / DADS / LSD / METRA / CSD agent.

``load_skills(path, spec, skill_dim=None)`` reads the export's own config (so its prior, its z's size and its
representation are the ones it was trained with), checks it against what the caller means to use, and returns a
``SkillLibrary``: ``act(obs, z, key, mode)`` on the *raw* env observation, the prior to draw z from, and the
agent's full state (φ, the discriminator or the skill dynamics inside it: ``distance.representation``,
``dads.dynamics``). Refused, in one line and before anything is built: a file that holds no skill agent, a
skill dimension other than the library's, an env whose observation the library was not trained on.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import jax.numpy as jnp

from envs.core import EnvSpec
from rlkit import conditioning, configs, registry
from rlkit.configs import ConfigError
from rlkit.export import agent_conditioning, load_agent, read_header


@dataclass(frozen=True)
class SkillLibrary:
    name: str  # the registry name of the method ("metra", ...)
    config: Any
    prior: conditioning.Prior
    agent: Any
    state: Any

    @property
    def skill_dim(self) -> int:
        return self.prior.size

    def act(self, obs, z, key, mode: str = "deterministic"):
        """The skill policy's action for raw ``obs [..., D]`` under skill ``z [..., skill_dim]``."""
        if z.shape[-1] != self.skill_dim:
            raise ConfigError(
                f"z has {z.shape[-1]} dimensions; the {self.name} skill library takes {self.skill_dim}"
            )
        return self.agent.act(self.state, jnp.concatenate([obs, z], -1), key, mode)


def load_skills(path: str | os.PathLike, spec: EnvSpec, skill_dim: int | None = None) -> SkillLibrary:
    """The skill agent exported at ``path``, for an env of (unconditioned) ``spec``; ``skill_dim`` (optional) is
    the z size the caller's high level emits."""
    header = read_header(path)
    name = header.get("agent")
    entry = registry.entries().get(name)
    if entry is None or entry.family != "skills" or entry.condition is None:
        raise ConfigError(
            f"{path} holds a {name!r} agent, not a skill agent (skill agents: {_skill_names()})"
        )
    prior, _ = agent_conditioning(path)
    if skill_dim is not None and skill_dim != prior.size:
        raise ConfigError(
            f"skill_dim = {skill_dim}, but the {name} skill library at {path} was trained with {prior.size}-dimensional "
            f"z ({prior.name} prior)"
        )
    trained = tuple(header["spec"]["observation_space"]["shape"])
    raw = (trained[0] - prior.size,) if len(trained) == 1 else trained
    if tuple(spec.observation_space.shape) != raw:
        raise ConfigError(
            f"the {name} skill library at {path} was trained on {header['spec']['id']} with observations of shape "
            f"{raw}; {spec.id} has {tuple(spec.observation_space.shape)}"
        )
    agent, state = load_agent(path, conditioning.conditioned_spec(spec, prior))
    config = configs.from_dict(entry.config_cls, header["config"])
    return SkillLibrary(name, config, prior, agent, state)


def _skill_names() -> str:
    return ", ".join(sorted(n for n, e in registry.entries().items() if e.family == "skills"))
