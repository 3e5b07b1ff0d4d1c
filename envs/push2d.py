"""Planar pushing: a point gripper pushes a disk-shaped block across a table toward a goal; vector reward.

What it is for: the multi-critic experiments (SLIM: one critic per reward term, terms of very different scales and
timing) and skill discovery with an object (skills that move the block, "object-displacement diversity"). It is a
2-D stand-in for a tabletop push task, small enough to run thousands of copies on one device.

Reward terms, in ``spec.reward_names`` order (all weights and thresholds are params):

- ``reach``: ``-reach_weight * |gripper - block|`` every step (dense, always negative, order 1).
- ``push``: ``push_reward`` on every step the block is within ``goal_radius`` of the goal (sparse), plus
  ``push_progress_weight * (previous - current block-to-goal distance)`` (0 by default). Sparse by default on
  purpose: SLIM's point is that a naive sum lets the dense ``reach`` term drown a rare success signal, so the
  default terms must differ in scale and timing for a multi-critic learner to show its worth.
- ``safety``: ``-safety_penalty`` on a step where the block leaves the table or the gripper or block speed exceeds
  ``speed_limit`` (a safety violation; rare once learned, but it has to be learned).
- ``control``: ``-control_cost * |action|²`` (small, every step).

``envs.wrappers.SumReward(env, weights)`` gives the scalar sum for the single-critic baseline.

Dynamics (deterministic, per step of ``dt``): the gripper is velocity-controlled and kinematic (infinitely heavy):
velocity = clip(action, -1, 1) * ``max_speed``, position clipped to the table. The block coasts, its speed reduced
to ``max(0, speed * (1 - block_damping * dt) - block_friction * dt)`` (viscous plus Coulomb friction, so it comes to
rest in a few steps instead of creeping forever), then, if it overlaps the gripper (centre distance <
``gripper_radius + block_radius``), it is moved out along the contact normal (gripper centre → block centre) by the
penetration depth. Its new velocity is its displacement over ``dt`` (position-based dynamics), so a pushed block
slides a little after contact ends. No tunnelling as long as one step of the gripper,
``max_speed * dt * √2``, is shorter than ``gripper_radius + block_radius``; the constructor checks this for the
default params. The block leaving the table (its centre outside the table rectangle) terminates the episode;
success (block on the goal) does not, unless ``terminate_on_success`` (default off: the sparse push reward then
pays for *holding* the block on the goal, as in Fetch-style tasks, and episodes have a fixed length).

Reset: gripper uniform in ``gripper_init_frac`` of the table, block in ``block_init_frac``, goal in
``goal_init_frac``; a gripper that would overlap the block is moved out along the normal; the goal is the first of
four draws at least ``goal_min_distance`` from the block (the farthest draw if none is).

Deliberately not here: rotation, a square block, friction cones, block–table-edge collisions, several blocks,
and pixels as observations (``render`` draws the scene for videos only).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from envs.core import Environment, EnvParams, EnvSpec, reward_vector
from envs.rendering import Canvas
from envs.spaces import Box

REWARD_NAMES = ("reach", "push", "safety", "control")


@struct.dataclass
class Push2DParams(EnvParams):
    max_episode_steps: int = 100
    dt: float = 0.1
    max_speed: float = 1.0  # gripper speed per axis at |action| = 1 (table units / second)
    table_half_x: float = 1.0  # the table is [-table_half_x, table_half_x] × [-table_half_y, table_half_y]
    table_half_y: float = 1.0
    gripper_radius: float = 0.05
    block_radius: float = 0.1
    block_damping: float = (
        5.0  # 1/s: viscous friction, the block keeps (1 - block_damping·dt) of its speed per step
    )
    block_friction: float = (
        0.5  # table units/s²: Coulomb friction, then takes this·dt off its speed (so it stops)
    )
    goal_radius: float = 0.1
    # reward terms
    reach_weight: float = 1.0
    push_reward: float = 1.0
    push_progress_weight: float = 0.0  # optional dense progress on block-to-goal distance (0: purely sparse)
    safety_penalty: float = 1.0
    speed_limit: float = 1.2  # gripper or block speed above this is a violation (full-speed diagonal is √2)
    control_cost: float = 0.1
    terminate_on_success: bool = False
    # start distribution: fractions of the table's half sizes
    gripper_init_frac: float = 0.9
    block_init_frac: float = 0.6
    goal_init_frac: float = 0.8
    goal_min_distance: float = 0.3


@struct.dataclass
class Push2DState:
    gripper_xy: jax.Array  # float32[2]
    gripper_vel: jax.Array  # float32[2]
    block_xy: jax.Array  # float32[2]
    block_vel: jax.Array  # float32[2]
    goal_xy: jax.Array  # float32[2]


def _on_table(xy, p) -> jax.Array:
    return (jnp.abs(xy[0]) <= p.table_half_x) & (jnp.abs(xy[1]) <= p.table_half_y)


def _separate(gripper, block, min_dist, fallback):
    """Move ``block`` out of a disk of radius ``min_dist`` around ``gripper`` along the contact normal.

    Returns (new block position, whether they were in contact). When the centres coincide the normal is
    ``fallback`` (a unit vector), so the result is defined everywhere.
    """
    d = block - gripper
    dist = jnp.linalg.norm(d)
    normal = jnp.where(dist > 1e-9, d / jnp.maximum(dist, 1e-9), fallback)
    contact = dist < min_dist
    return jnp.where(contact, gripper + normal * min_dist, block), contact


class Push2D(Environment):
    """A point gripper pushes a disk to a goal on a table; obs float32[10], action [-1, 1]², 4 reward terms.

    Observation: ``[gripper_xy, block_xy, goal_xy, gripper_vel, block_vel]``. ``info``: ``success``,
    ``safety_violation``, ``block_off_table``, ``gripper_xy``, ``block_xy``, ``goal_xy``, ``xy`` (= gripper xy,
    for state coverage).
    """

    params_cls = Push2DParams

    def __init__(self, **param_overrides):
        super().__init__(**param_overrides)
        p = self.default_params
        step = float(p.max_speed) * float(p.dt) * np.sqrt(2)
        if step >= float(p.gripper_radius) + float(p.block_radius):
            raise ValueError(
                f"Push2D: one gripper step (max_speed·dt·√2 = {step:.3g}) must be shorter than "
                f"gripper_radius + block_radius = {float(p.gripper_radius) + float(p.block_radius):.3g}, "
                "or the gripper can pass through the block; lower max_speed or dt, or enlarge the radii"
            )

    @property
    def spec(self) -> EnvSpec:
        # Finite bounds, derived from the dynamics at the default params: the gripper moves at most √2·max_speed;
        # a contact moves the block by at most one gripper step (the two were apart before it) on top of its
        # coasting, so block speed obeys v' <= (1 - damping·dt)·v + √2·max_speed, i.e. v <= √2·max_speed /
        # (damping·dt). The block leaves the table by at most one step before the episode terminates.
        p = self.default_params
        grip_speed = float(np.sqrt(2) * p.max_speed)
        decay = min(1.0, max(float(p.block_damping * p.dt), 1e-3))
        block_speed = grip_speed / decay
        reach = max(float(p.table_half_x), float(p.table_half_y)) + block_speed * float(p.dt)
        high = np.array([reach] * 6 + [grip_speed] * 2 + [block_speed] * 2, np.float32) * 1.01
        return EnvSpec(
            id="push2d",
            observation_space=Box(-high, high),
            action_space=Box.uniform(-1.0, 1.0, (2,)),
            reward_names=REWARD_NAMES,
            max_episode_steps=self.default_params.max_episode_steps,
        )

    @staticmethod
    def _obs(s: Push2DState) -> jax.Array:
        return jnp.concatenate([s.gripper_xy, s.block_xy, s.goal_xy, s.gripper_vel, s.block_vel]).astype(
            jnp.float32
        )

    def _reset(self, key, params):
        p = params
        half = jnp.array([p.table_half_x, p.table_half_y], jnp.float32)
        kg, kb, kgoal = jax.random.split(key, 3)
        gripper = jax.random.uniform(kg, (2,), minval=-1.0, maxval=1.0) * half * p.gripper_init_frac
        block = jax.random.uniform(kb, (2,), minval=-1.0, maxval=1.0) * half * p.block_init_frac
        # A gripper drawn on the block is moved out along the normal (here the block is the fixed one).
        away, _ = _separate(block, gripper, p.gripper_radius + p.block_radius, jnp.array([-1.0, 0.0]))
        gripper = jnp.clip(away, -half, half)
        goals = jax.random.uniform(kgoal, (4, 2), minval=-1.0, maxval=1.0) * half * p.goal_init_frac
        dist = jnp.linalg.norm(goals - block, axis=-1)
        far = dist >= p.goal_min_distance
        goal = goals[jnp.where(jnp.any(far), jnp.argmax(far), jnp.argmax(dist))]
        zero = jnp.zeros(2, jnp.float32)
        state = Push2DState(gripper, zero, block, zero, goal)
        return self._obs(state), state

    def _step(self, key, state, action, params):
        p = params
        half = jnp.array([p.table_half_x, p.table_half_y], jnp.float32)
        a = jnp.clip(action, -1.0, 1.0)
        gripper = jnp.clip(state.gripper_xy + a * p.max_speed * p.dt, -half, half)
        gripper_vel = (gripper - state.gripper_xy) / p.dt
        # block: friction, coast, then contact (the gripper wins: it is kinematic)
        block_speed = jnp.linalg.norm(state.block_vel)
        slowed = jnp.maximum(0.0, block_speed * (1.0 - p.block_damping * p.dt) - p.block_friction * p.dt)
        coast = state.block_vel * slowed / jnp.maximum(block_speed, 1e-9)
        gripper_speed = jnp.linalg.norm(gripper_vel)
        # only used when the centres coincide exactly: push the block along the gripper's motion
        fallback = jnp.where(
            gripper_speed > 0, gripper_vel / jnp.maximum(gripper_speed, 1e-9), jnp.array([1.0, 0.0])
        )
        block, _ = _separate(
            gripper, state.block_xy + coast * p.dt, p.gripper_radius + p.block_radius, fallback
        )
        block_vel = (block - state.block_xy) / p.dt
        new = Push2DState(gripper, gripper_vel, block, block_vel, state.goal_xy)

        off_table = ~_on_table(block, p)
        goal_dist = jnp.linalg.norm(block - state.goal_xy)
        success = (goal_dist <= p.goal_radius) & ~off_table
        too_fast = (gripper_speed > p.speed_limit) | (jnp.linalg.norm(block_vel) > p.speed_limit)
        violation = off_table | too_fast
        progress = jnp.linalg.norm(state.block_xy - state.goal_xy) - goal_dist
        terms = {
            "reach": -p.reach_weight * jnp.linalg.norm(gripper - block),
            "push": jnp.where(success, p.push_reward, 0.0) + p.push_progress_weight * progress,
            "safety": jnp.where(violation, -p.safety_penalty, 0.0),
            "control": -p.control_cost * jnp.sum(a**2),
        }
        terminated = off_table | (success & p.terminate_on_success)
        info = {
            "success": success,
            "safety_violation": violation,
            "block_off_table": off_table,
            "gripper_xy": gripper,
            "block_xy": block,
            "goal_xy": state.goal_xy,
            "xy": gripper,
        }
        return self._obs(new), new, reward_vector(terms, REWARD_NAMES), terminated, jnp.zeros((), bool), info

    # ------------------------------------------------------------------ pictures
    def canvas(self, params=None, size: int = 256) -> Canvas:
        """The square canvas of ``render``: the table (default params' size) plus a 15 % margin."""
        p = self._check_params(params) if params is not None else self.default_params
        half = max(float(p.table_half_x), float(p.table_half_y)) * 1.15
        return Canvas(-half, half, -half, half, size, size)

    def render(self, state, params=None, size: int = 256) -> jax.Array:
        """``uint8[size, size, 3]``: the table (tan), the goal (green disk of ``goal_radius``), the block (blue),
        the gripper (dark red). The canvas is sized from the *default* params so frames of a sweep line up."""
        p = self._check_params(params)
        c = self.canvas(size=size)
        img = c.blank((0.2, 0.2, 0.25))
        img = c.rectangle(img, (0.0, 0.0), (p.table_half_x, p.table_half_y), (0.87, 0.78, 0.62))
        img = c.circle(img, state.goal_xy, p.goal_radius, (0.3, 0.75, 0.35))
        img = c.circle(img, state.block_xy, p.block_radius, (0.2, 0.35, 0.85))
        img = c.circle(
            img, state.gripper_xy, jnp.maximum(p.gripper_radius, 2 * c.pixel_size), (0.6, 0.05, 0.05)
        )
        return c.to_uint8(img)
