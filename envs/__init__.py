"""rlkit's environments: the pure env protocol, wrappers, a registry, JAX-native envs and Gymnasium bridges.

import envs
env = envs.make("pendulum")                 # a TimeLimit-wrapped JAX-native env
obs, state = env.reset(jax.random.key(0))
obs, state, reward, terminated, truncated, info = env.step(key, state, action)
envs.make("gymnasium:Ant-v5", num_envs=8)   # a host-side vector env over Gymnasium
"""

from envs.core import Environment, EnvParams, EnvSpec, reward_vector
from envs.registry import UnknownEnvError, describe, make, register, registered_ids
from envs.spaces import Box, Discrete

__all__ = [
    "Box",
    "Discrete",
    "EnvParams",
    "EnvSpec",
    "Environment",
    "UnknownEnvError",
    "describe",
    "make",
    "register",
    "registered_ids",
    "reward_vector",
]
