"""Gymnasium's classic-control tasks as pure JAX envs: Pendulum-v1, CartPole-v1, MountainCarContinuous-v0.

Same dynamics, rewards, termination rules, start distributions (in law, not in RNG stream), observation and
action spaces, and episode lengths as Gymnasium 1.x (``gymnasium/envs/classic_control``); tests drive both from
the same start state with the same actions and compare every step. Written here rather than taken from gymnax
because gymnax pins ``jax < 0.12`` (see DESIGN.md), and these are small.

Deliberately not here: Gymnasium's ``render_mode`` machinery — ``render`` returns an RGB array from the state.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from envs.core import Environment, EnvParams, EnvSpec
from envs.rendering import Canvas
from envs.spaces import Box


# ================================================================================================ Pendulum-v1
@struct.dataclass
class PendulumParams(EnvParams):
    max_episode_steps: int = 200
    max_speed: float = 8.0
    max_torque: float = 2.0
    dt: float = 0.05
    g: float = 10.0
    m: float = 1.0
    l: float = 1.0  # noqa: E741 (Gymnasium's name)


@struct.dataclass
class PendulumState:
    theta: jax.Array
    theta_dot: jax.Array


def angle_normalize(x):
    return ((x + jnp.pi) % (2 * jnp.pi)) - jnp.pi


class Pendulum(Environment):
    """Swing a pendulum up and hold it; reward −(θ² + 0.1 θ̇² + 0.001 u²), never terminates."""

    params_cls = PendulumParams

    @property
    def spec(self) -> EnvSpec:
        p = self.default_params
        high = np.array([1.0, 1.0, p.max_speed], np.float32)
        return EnvSpec(
            id="pendulum",
            observation_space=Box(-high, high),
            action_space=Box.uniform(-p.max_torque, p.max_torque, (1,)),
            max_episode_steps=p.max_episode_steps,
        )

    def _obs(self, s: PendulumState):
        return jnp.stack([jnp.cos(s.theta), jnp.sin(s.theta), s.theta_dot]).astype(jnp.float32)

    def _reset(self, key, params):
        th, thdot = jax.random.uniform(key, (2,), minval=jnp.array([-jnp.pi, -1.0]), maxval=jnp.array([jnp.pi, 1.0]))
        state = PendulumState(th, thdot)
        return self._obs(state), state

    def _step(self, key, state, action, params):
        p = params
        u = jnp.clip(action, -p.max_torque, p.max_torque)[0]
        th, thdot = state.theta, state.theta_dot
        costs = angle_normalize(th) ** 2 + 0.1 * thdot**2 + 0.001 * u**2
        newthdot = thdot + (3 * p.g / (2 * p.l) * jnp.sin(th) + 3.0 / (p.m * p.l**2) * u) * p.dt
        newthdot = jnp.clip(newthdot, -p.max_speed, p.max_speed)
        newth = th + newthdot * p.dt
        new = PendulumState(newth, newthdot)
        false = jnp.zeros((), bool)
        return self._obs(new), new, (-costs).astype(jnp.float32), false, false, {}

    def render(self, state, params=None):
        c = Canvas(-2.2, 2.2, -2.2, 2.2, 256, 256)
        img = c.blank()
        # θ = 0 is upright; the rod points from the pivot along (sin θ, cos θ)... in Gymnasium's drawing, θ grows
        # counter-clockwise from the top.
        end = (-jnp.sin(state.theta), jnp.cos(state.theta))
        img = c.segment(img, (0.0, 0.0), end, 0.2, (0.8, 0.3, 0.3))
        img = c.circle(img, (0.0, 0.0), 0.06, (0.0, 0.0, 0.0))
        return c.to_uint8(img)
