"""Gymnasium's classic-control tasks as pure JAX envs: Pendulum-v1, CartPole-v1, MountainCarContinuous-v0,
Acrobot-v1.

Same dynamics, rewards, termination rules, start distributions (in law, not in RNG stream), observation and
action spaces, and episode lengths as Gymnasium 1.x (``gymnasium/envs/classic_control``); tests drive both from
the same start state with the same actions and compare every step (``tests/test_classic_parity.py``). Written
here rather than taken from gymnax because gymnax pins ``jax < 0.12``, and these are small.

Every physical constant is a field of the env's params dataclass, so a sweep can vmap over it; the observation
and action spaces are built from the *default* params (spaces are static metadata).

Numerics: state is float32 (Gymnasium keeps Pendulum, CartPole and Acrobot in float64 and MountainCarContinuous
in float32), and each update follows Gymnasium's order of operations, so one step agrees to float32 rounding.

Deliberately not here: Gymnasium's ``render_mode`` machinery (``render`` returns an RGB array from the state,
drawn with ``envs.rendering``, not pixel-identical to pygame), reset ``options`` (custom start bounds),
CartPole's ``sutton_barto_reward`` / semi-implicit integrator options (not used by ``CartPole-v1``), and Acrobot's
torque noise and NIPS-paper dynamics (``torque_noise_max = 0`` and ``book_or_nips = "book"`` in ``Acrobot-v1``).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from envs.core import Environment, EnvParams, EnvSpec
from envs.rendering import Canvas
from envs.spaces import Box, Discrete


def _rgb(r: int, g: int, b: int) -> tuple[float, float, float]:
    """Gymnasium's pygame colours (0-255) as the [0, 1] floats ``Canvas`` paints with."""
    return (r / 255, g / 255, b / 255)


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
    # float32[]: 0 = upright, counter-clockwise positive; never wrapped (as in Gymnasium), so it is unbounded
    theta: jax.Array
    theta_dot: jax.Array  # float32[]


# 2π split into a head with 8 significant bits (k · head is exact in float32 for |k| < 2**16) and the float32
# rounding of the rest: the Cody-Waite range reduction.
_TWO_PI_HEAD = np.float32(6.28125)
_TWO_PI_TAIL = np.float32(2 * np.pi - 6.28125)


def angle_normalize(x):
    """θ wrapped to [-π, π] (Gymnasium's ``((x + π) % 2π) - π``, which gives [-π, π); ±π only differ in sign).

    Pendulum's θ is never wrapped in the state and reaches tens of radians when the pole spins. Gymnasium wraps
    in float64; Gymnasium's expression evaluated in float32 is off by up to ~4e-6 rad at |θ| ≈ 90 (the 2π
    constant and the sum x + π both round), i.e. ~2e-5 in the cost. The two-constant reduction below keeps the
    float32 result within ~1e-7 of the float64 one. Only the square of the result enters the reward.
    """
    x = jnp.asarray(x, jnp.float32)
    k = jnp.round(x / (2 * np.pi)).astype(jnp.float32)
    return (x - k * _TWO_PI_HEAD) - k * _TWO_PI_TAIL


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
        # Gymnasium: uniform(low=-[π, 1], high=[π, 1]); the dtype is explicit so jax_enable_x64 does not change it.
        high = jnp.array([jnp.pi, 1.0], jnp.float32)
        th, thdot = jax.random.uniform(key, (2,), jnp.float32, minval=-high, maxval=high)
        state = PendulumState(th, thdot)
        return self._obs(state), state

    def _step(self, key, state, action, params):
        p = params
        # Gymnasium clips the torque first and charges the *clipped* torque in the cost (pendulum.py, step()).
        u = jnp.clip(action, -p.max_torque, p.max_torque)[0]
        th, thdot = state.theta, state.theta_dot
        costs = angle_normalize(th) ** 2 + 0.1 * thdot**2 + 0.001 * u**2
        # Explicit Euler on θ̇ from the *old* θ, clip θ̇, then θ from the *new* θ̇ (semi-implicit, as Gymnasium).
        newthdot = thdot + (3 * p.g / (2 * p.l) * jnp.sin(th) + 3.0 / (p.m * p.l**2) * u) * p.dt
        newthdot = jnp.clip(newthdot, -p.max_speed, p.max_speed)
        newth = th + newthdot * p.dt
        new = PendulumState(newth, newthdot)
        false = jnp.zeros((), bool)
        return self._obs(new), new, (-costs).astype(jnp.float32), false, false, {}

    def render(self, state, params=None):
        # Gymnasium's picture: a 2.2-unit half-width view, a rod of length 1 and width 0.2 with round ends (drawn
        # at length 1 whatever params.l is, as Gymnasium does) and a black axle of radius 0.05. Gymnasium rotates
        # the rod by θ + π/2 from the +x axis and flips the surface so y points up, i.e. the free end sits at
        # (−sin θ, cos θ): θ = 0 points straight up and positive θ swings counter-clockwise (to the left).
        c = Canvas(-2.2, 2.2, -2.2, 2.2, 256, 256)
        img = c.blank()
        end = (-jnp.sin(state.theta), jnp.cos(state.theta))
        img = c.segment(img, (0.0, 0.0), end, 0.2, _rgb(204, 77, 77))
        img = c.circle(img, (0.0, 0.0), 0.05, (0.0, 0.0, 0.0))
        return c.to_uint8(img)


# ================================================================================================ CartPole-v1
@struct.dataclass
class CartPoleParams(EnvParams):
    max_episode_steps: int = 500
    gravity: float = 9.8
    masscart: float = 1.0
    masspole: float = 0.1
    length: float = 0.5  # half the pole's length (Gymnasium's name and meaning)
    force_mag: float = 10.0
    tau: float = 0.02  # seconds per step
    theta_threshold_radians: float = 12 * 2 * math.pi / 360  # Gymnasium's expression for 12°
    x_threshold: float = 2.4


@struct.dataclass
class CartPoleState:
    x: jax.Array  # float32[] cart position
    x_dot: jax.Array  # float32[]
    theta: jax.Array  # float32[] pole angle, 0 = upright, positive = leaning right (towards +x)
    theta_dot: jax.Array  # float32[]


class CartPole(Environment):
    """Balance a pole on a cart pushed left (action 0) or right (action 1) with a fixed force.

    Reward 1 on every step, the terminating one included; terminates when |x| > 2.4 or |θ| > 12°. The dynamics
    are Florian (2007)'s correction of Barto, Sutton & Anderson (1983), integrated with explicit Euler
    (Gymnasium's default ``kinematics_integrator="euler"``).
    """

    params_cls = CartPoleParams

    @property
    def spec(self) -> EnvSpec:
        p = self.default_params
        # Gymnasium's bounds are twice the termination thresholds so the terminating observation is still inside.
        high = np.array([p.x_threshold * 2, np.inf, p.theta_threshold_radians * 2, np.inf], np.float32)
        return EnvSpec(
            id="cartpole",
            observation_space=Box(-high, high),
            action_space=Discrete(2),
            max_episode_steps=p.max_episode_steps,
        )

    def _obs(self, s: CartPoleState):
        return jnp.stack([s.x, s.x_dot, s.theta, s.theta_dot]).astype(jnp.float32)

    def _reset(self, key, params):
        x, x_dot, theta, theta_dot = jax.random.uniform(key, (4,), jnp.float32, minval=-0.05, maxval=0.05)
        state = CartPoleState(x, x_dot, theta, theta_dot)
        return self._obs(state), state

    def _step(self, key, state, action, params):
        p = params
        # Gymnasium: `force_mag if action == 1 else -force_mag` (it asserts the action is 0 or 1; a compiled step
        # cannot raise, so any other integer pushes left, which is what that expression alone does).
        force = jnp.where(action == 1, p.force_mag, -p.force_mag)
        total_mass = p.masspole + p.masscart
        polemass_length = p.masspole * p.length
        costheta, sintheta = jnp.cos(state.theta), jnp.sin(state.theta)
        temp = (force + polemass_length * jnp.square(state.theta_dot) * sintheta) / total_mass
        thetaacc = (p.gravity * sintheta - costheta * temp) / (
            p.length * (4.0 / 3.0 - p.masspole * jnp.square(costheta) / total_mass)
        )
        xacc = temp - polemass_length * thetaacc * costheta / total_mass
        # Explicit Euler: positions advance with the *old* velocities.
        new = CartPoleState(
            x=state.x + p.tau * state.x_dot,
            x_dot=state.x_dot + p.tau * xacc,
            theta=state.theta + p.tau * state.theta_dot,
            theta_dot=state.theta_dot + p.tau * thetaacc,
        )
        # Strict inequalities, as Gymnasium: exactly ±2.4 or ±12° is still alive.
        terminated = (
            (new.x < -p.x_threshold)
            | (new.x > p.x_threshold)
            | (new.theta < -p.theta_threshold_radians)
            | (new.theta > p.theta_threshold_radians)
        )
        # CartPole-v1 pays 1.0 on the terminating step too (Gymnasium's `steps_beyond_terminated is None` branch);
        # what Gymnasium pays for stepping past termination is undefined behaviour and not reproduced.
        reward = jnp.ones((), jnp.float32)
        return self._obs(new), new, reward, terminated, jnp.zeros((), bool), {}

    def render(self, state, params=None):
        # Gymnasium's 600 x 400 picture: the view spans ±x_threshold (125 px per metre), the cart (50 x 30 px) is
        # centred 100 px above the bottom on a black track line, the pole (10 px wide, 2·length long) hinges at
        # a quarter of the cart's height above its centre and leans right for positive θ (pygame rotate by −θ).
        p = self.default_params if params is None else params
        half_width = 2.4  # a fixed view (Gymnasium uses x_threshold; fixed here so the canvas stays static)
        scale = 600 / (2 * half_width)
        c = Canvas(-half_width, half_width, -100 / scale, 300 / scale, 600, 400)
        img = c.blank()
        img = c.segment(img, (-half_width, 0.0), (half_width, 0.0), 1 / scale, (0.0, 0.0, 0.0))
        img = c.rectangle(img, (state.x, 0.0), (25 / scale, 15 / scale), (0.0, 0.0, 0.0))
        axle = (state.x, 7.5 / scale)
        pole_width = 10 / scale
        pole_len = 2 * p.length - pole_width / 2
        tip = (axle[0] + pole_len * jnp.sin(state.theta), axle[1] + pole_len * jnp.cos(state.theta))
        img = c.segment(img, axle, tip, pole_width, _rgb(202, 152, 101))
        img = c.circle(img, axle, pole_width / 2, _rgb(129, 132, 203))
        return c.to_uint8(img)


# =================================================================================== MountainCarContinuous-v0
@struct.dataclass
class MountainCarContinuousParams(EnvParams):
    max_episode_steps: int = 999
    min_action: float = -1.0
    max_action: float = 1.0
    min_position: float = -1.2
    max_position: float = 0.6
    max_speed: float = 0.07
    goal_position: float = 0.45  # Gymnasium's (Arnaud de Broissia's version), not the discrete env's 0.5
    goal_velocity: float = 0.0
    power: float = 0.0015
    gravity: float = 0.0025  # the hill's pull, Gymnasium's literal `0.0025 * cos(3 * position)`


# The track is y = 0.45 sin(3x) + 0.55 (Gymnasium's `_height`); its frequency 3 is the shape of the world, used by
# the gravity term and the picture alike, so it is a constant rather than a sweepable param.
_HILL_FREQUENCY = 3.0


def _hill_height(x):
    return jnp.sin(_HILL_FREQUENCY * x) * 0.45 + 0.55


@struct.dataclass
class MountainCarContinuousState:
    position: jax.Array  # float32[]
    velocity: jax.Array  # float32[]


class MountainCarContinuous(Environment):
    """Drive an under-powered car up the right hill: reward −0.1 a² per step, +100 on reaching the flag.

    Terminates when position ≥ goal_position and velocity ≥ goal_velocity. The action cost uses the action *as
    given*, not the clipped force (Gymnasium squares ``action[0]``), so out-of-range actions cost more than they
    push; wrap in ``wrappers.ClipAction`` to avoid paying for them.
    """

    params_cls = MountainCarContinuousParams

    @property
    def spec(self) -> EnvSpec:
        p = self.default_params
        return EnvSpec(
            id="mountain-car-continuous",
            observation_space=Box(
                np.array([p.min_position, -p.max_speed], np.float32),
                np.array([p.max_position, p.max_speed], np.float32),
            ),
            action_space=Box.uniform(p.min_action, p.max_action, (1,)),
            max_episode_steps=p.max_episode_steps,
        )

    def _obs(self, s: MountainCarContinuousState):
        return jnp.stack([s.position, s.velocity]).astype(jnp.float32)

    def _reset(self, key, params):
        position = jax.random.uniform(key, (), jnp.float32, minval=-0.6, maxval=-0.4)
        state = MountainCarContinuousState(position, jnp.zeros((), jnp.float32))
        return self._obs(state), state

    def _step(self, key, state, action, params):
        p = params
        a = action[0]
        # Gymnasium: `min(max(action[0], min_action), max_action)`, max first (equal to a clip for ordered bounds).
        force = jnp.minimum(jnp.maximum(a, p.min_action), p.max_action)
        # The order below is Gymnasium's: velocity update, velocity clip, position update, position clip, and only
        # then the inelastic left wall (velocity zeroed when the *clipped* position sits on min_position).
        velocity = state.velocity + (force * p.power - p.gravity * jnp.cos(_HILL_FREQUENCY * state.position))
        velocity = jnp.clip(velocity, -p.max_speed, p.max_speed)
        position = jnp.clip(state.position + velocity, p.min_position, p.max_position)
        velocity = jnp.where((position == p.min_position) & (velocity < 0), 0.0, velocity)
        terminated = (position >= p.goal_position) & (velocity >= p.goal_velocity)
        # Gymnasium: `reward -= math.pow(action[0], 2) * 0.1`, the unclipped action.
        reward = jnp.where(terminated, 100.0, 0.0) - a**2 * 0.1
        new = MountainCarContinuousState(position.astype(jnp.float32), velocity.astype(jnp.float32))
        return self._obs(new), new, reward.astype(jnp.float32), terminated, jnp.zeros((), bool), {}

    def render(self, state, params=None):
        # Gymnasium's 600 x 400 picture: the view spans [min_position, max_position] (1/1.8 of 600 px per unit,
        # 1.2 units high), the track is the height curve, the car (40 x 20 px) rides 10 px above it with grey
        # wheels, and a flag (a 50 px pole with a yellow pennant) marks goal_position.
        p = self.default_params if params is None else params
        # A fixed view (Gymnasium spans the position bounds; fixed here so the canvas is static).
        xmin, xmax = -1.2, 0.6
        px = (xmax - xmin) / 600
        c = Canvas(xmin, xmax, 0.0, 400 * px, 600, 400)
        img = c.blank()
        gx, gy = c.grid()
        # Vertical distance to the curve divided by sqrt(1 + h'²) ≈ the normal distance, so the line keeps its width.
        slope = 0.45 * _HILL_FREQUENCY * jnp.cos(_HILL_FREQUENCY * gx)
        img = c.paint(img, jnp.abs(gy - _hill_height(gx)) / jnp.sqrt(1 + slope**2) - px, (0.0, 0.0, 0.0))

        pos = state.position
        # The car sits on the true tangent (Gymnasium tilts it by cos(3x) radians, an approximation of this).
        angle = jnp.arctan(0.45 * _HILL_FREQUENCY * jnp.cos(_HILL_FREQUENCY * pos))
        ca, sa = jnp.cos(angle), jnp.sin(angle)
        base = (pos, _hill_height(pos) + 10 * px)

        def at(lx, ly):  # car-frame point -> world
            return (base[0] + ca * lx - sa * ly, base[1] + sa * lx + ca * ly)

        img = c.rectangle(img, at(0.0, 10 * px), (20 * px, 10 * px), (0.0, 0.0, 0.0), angle=angle)
        for lx in (10 * px, -10 * px):
            img = c.circle(img, at(lx, 0.0), 8 * px, _rgb(128, 128, 128))

        flag_x, flag_y = p.goal_position, _hill_height(p.goal_position)
        img = c.segment(img, (flag_x, flag_y), (flag_x, flag_y + 50 * px), px, (0.0, 0.0, 0.0))
        pennant = (
            (flag_x, flag_y + 50 * px),
            (flag_x, flag_y + 40 * px),
            (flag_x + 25 * px, flag_y + 45 * px),
        )
        img = c.paint(img, _triangle_distance(gx, gy, pennant), _rgb(204, 204, 0))
        return c.to_uint8(img)


def _triangle_distance(x, y, corners):
    """Signed distance bound of a triangle (max over its edges' half-plane distances): exact along the edges,
    which is all the one-pixel anti-aliasing of ``Canvas.paint`` looks at. Corners in any winding order."""
    (ax, ay), (bx, by), (cx, cy) = corners
    orientation = jnp.sign((bx - ax) * (cy - ay) - (by - ay) * (cx - ax))
    d = None
    for (px, py), (qx, qy) in (((ax, ay), (bx, by)), ((bx, by), (cx, cy)), ((cx, cy), (ax, ay))):
        ex, ey = qx - px, qy - py
        # Positive outside: the cross product's sign flips with the winding, hence `orientation`.
        edge = -orientation * (ex * (y - py) - ey * (x - px)) / jnp.sqrt(ex * ex + ey * ey)
        d = edge if d is None else jnp.maximum(d, edge)
    return d


# ================================================================================================ Acrobot-v1
@struct.dataclass
class AcrobotParams(EnvParams):
    # Gymnasium's class attributes, lower-cased (LINK_LENGTH_1 -> link_length_1, ...); dt keeps its name.
    max_episode_steps: int = 500
    dt: float = 0.2  # seconds per step: one RK4 step over [0, dt]
    link_length_1: float = 1.0
    # Only drawn: neither the dynamics nor the goal height depend on it (as in Gymnasium).
    link_length_2: float = 1.0
    link_mass_1: float = 1.0
    link_mass_2: float = 1.0
    link_com_pos_1: float = 0.5  # distance of each link's centre of mass from its joint
    link_com_pos_2: float = 0.5
    link_moi: float = 1.0  # both links' moment of inertia
    max_vel_1: float = 4 * math.pi
    max_vel_2: float = 9 * math.pi
    g: float = 9.8  # a literal in Gymnasium's `_dsdt`, not an attribute there


@struct.dataclass
class AcrobotState:
    # float32[]: link 1's angle, 0 = hanging straight down, counter-clockwise positive; wrapped to [-π, π]
    theta1: jax.Array
    theta2: jax.Array  # float32[]: link 2's angle *relative to link 1*, wrapped to [-π, π]
    dtheta1: jax.Array  # float32[], bounded to ±max_vel_1
    dtheta2: jax.Array  # float32[], bounded to ±max_vel_2


def _wrap_angle(x):
    """Gymnasium's ``wrap(x, -π, π)``: subtract (add) 2π while x > π (x < -π), so π itself stays π.

    The loop count k is computed in one go (an RK4 step can move an angle by more than 2π), and k · 2π is
    subtracted as the two-constant sum of ``angle_normalize`` so that the float32 result stays within rounding of
    Gymnasium's float64 one.
    """
    k = jnp.where(
        x > np.pi,
        jnp.ceil((x - np.pi) / (2 * np.pi)),
        jnp.where(x < -np.pi, -jnp.ceil((-np.pi - x) / (2 * np.pi)), 0.0),
    ).astype(jnp.float32)
    return (x - k * _TWO_PI_HEAD) - k * _TWO_PI_TAIL


class Acrobot(Environment):
    """Swing the tip of a two-link chain, actuated at the middle joint, above a line one link above the pivot.

    Actions 0 / 1 / 2 apply a torque of −1 / 0 / +1 on the joint between the links. Reward −1 per step and 0 on
    the terminating one; terminates when −cos θ1 − cos(θ1 + θ2) > 1. The dynamics are Sutton & Barto's book
    equations (Gymnasium's default ``book_or_nips="book"``), integrated with one classical RK4 step of ``dt``;
    after it both angles are wrapped to [−π, π] and the velocities clipped to ±4π and ±9π.
    """

    params_cls = AcrobotParams

    @property
    def spec(self) -> EnvSpec:
        p = self.default_params
        high = np.array([1.0, 1.0, 1.0, 1.0, p.max_vel_1, p.max_vel_2], np.float32)
        return EnvSpec(
            id="acrobot",
            observation_space=Box(-high, high),
            action_space=Discrete(3),
            max_episode_steps=p.max_episode_steps,
        )

    def _obs(self, s: AcrobotState):
        return jnp.stack(
            [jnp.cos(s.theta1), jnp.sin(s.theta1), jnp.cos(s.theta2), jnp.sin(s.theta2), s.dtheta1, s.dtheta2]
        ).astype(jnp.float32)

    def _reset(self, key, params):
        theta1, theta2, dtheta1, dtheta2 = jax.random.uniform(key, (4,), jnp.float32, minval=-0.1, maxval=0.1)
        state = AcrobotState(theta1, theta2, dtheta1, dtheta2)
        return self._obs(state), state

    def _dsdt(self, s, torque, p: AcrobotParams):
        """Gymnasium's ``_dsdt`` with the book's ddθ2: the time derivative of (θ1, θ2, θ̇1, θ̇2)."""
        m1, m2, l1, lc1, lc2 = (
            p.link_mass_1,
            p.link_mass_2,
            p.link_length_1,
            p.link_com_pos_1,
            p.link_com_pos_2,
        )
        i1 = i2 = p.link_moi
        theta1, theta2, dtheta1, dtheta2 = s
        d1 = m1 * lc1**2 + m2 * (l1**2 + lc2**2 + 2 * l1 * lc2 * jnp.cos(theta2)) + i1 + i2
        d2 = m2 * (lc2**2 + l1 * lc2 * jnp.cos(theta2)) + i2
        # Gymnasium writes cos(x − π/2); sin(x) is the same function without float32's rounding of π/2 and of the
        # difference, so it stays closer to Gymnasium's float64 value.
        phi2 = m2 * lc2 * p.g * jnp.sin(theta1 + theta2)
        phi1 = (
            -m2 * l1 * lc2 * dtheta2**2 * jnp.sin(theta2)
            - 2 * m2 * l1 * lc2 * dtheta2 * dtheta1 * jnp.sin(theta2)
            + (m1 * lc1 + m2 * l1) * p.g * jnp.sin(theta1)
            + phi2
        )
        ddtheta2 = (torque + d2 / d1 * phi1 - m2 * l1 * lc2 * dtheta1**2 * jnp.sin(theta2) - phi2) / (
            m2 * lc2**2 + i2 - d2**2 / d1
        )
        ddtheta1 = -(d2 * ddtheta2 + phi1) / d1
        return jnp.stack([dtheta1, dtheta2, ddtheta1, ddtheta2])

    def _step(self, key, state, action, params):
        p = params
        # Gymnasium: `AVAIL_TORQUE[a]` with AVAIL_TORQUE = [-1, 0, +1], a Python list index: it does not check the
        # action, so -3, -2, -1 select like 0, 1, 2 there and here; a larger index raises there and, as a compiled
        # step cannot raise, selects +1 here (JAX clamps out-of-range indices). torque_noise_max is 0 in Acrobot-v1.
        torque = jnp.asarray([-1.0, 0.0, 1.0], jnp.float32)[action]
        # Gymnasium's `rk4(_dsdt, s, [0, dt])`: one classical Runge-Kutta step, only its final state kept (the
        # torque rides along as a fifth state component of derivative 0, i.e. it is held constant over the step).
        y0 = jnp.stack([state.theta1, state.theta2, state.dtheta1, state.dtheta2])
        dt, dt2 = p.dt, p.dt / 2.0
        k1 = self._dsdt(y0, torque, p)
        k2 = self._dsdt(y0 + dt2 * k1, torque, p)
        k3 = self._dsdt(y0 + dt2 * k2, torque, p)
        k4 = self._dsdt(y0 + dt * k3, torque, p)
        y1 = (y0 + dt / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)).astype(jnp.float32)
        # Gymnasium's `bound(x, m, M)` is min(max(x, m), M), i.e. a clip.
        new = AcrobotState(
            theta1=_wrap_angle(y1[0]),
            theta2=_wrap_angle(y1[1]),
            dtheta1=jnp.clip(y1[2], -p.max_vel_1, p.max_vel_1).astype(jnp.float32),
            dtheta2=jnp.clip(y1[3], -p.max_vel_2, p.max_vel_2).astype(jnp.float32),
        )
        # Strict, as Gymnasium: the tip exactly one link length above the pivot is not yet at the goal.
        terminated = -jnp.cos(new.theta1) - jnp.cos(new.theta2 + new.theta1) > 1.0
        reward = jnp.where(terminated, 0.0, -1.0).astype(jnp.float32)
        return self._obs(new), new, reward, terminated, jnp.zeros((), bool), {}

    def render(self, state, params=None):
        # Gymnasium's 500 x 500 picture: a ±2.2 view (link lengths + 0.2), a black goal line at height 1, each link
        # a 0.2-wide cyan bar from its joint and each joint a yellow disc of radius 0.1 drawn over the bar it starts.
        # Link 1 points along (sin θ1, −cos θ1) from the pivot (θ1 = 0 hangs down), link 2 along θ1 + θ2.
        p = self.default_params if params is None else params
        c = Canvas(-2.2, 2.2, -2.2, 2.2, 500, 500)
        px = c.pixel_size
        img = c.blank()
        img = c.segment(img, (-2.2, 1.0), (2.2, 1.0), px, (0.0, 0.0, 0.0))
        joint = (0.0, 0.0)
        for angle, length in (
            (state.theta1, p.link_length_1),
            (state.theta1 + state.theta2, p.link_length_2),
        ):
            direction = (jnp.sin(angle), -jnp.cos(angle))
            centre = (joint[0] + direction[0] * length / 2, joint[1] + direction[1] * length / 2)
            img = c.rectangle(img, centre, (length / 2, 0.1), _rgb(0, 204, 204), angle=angle - jnp.pi / 2)
            img = c.circle(img, joint, 0.1, _rgb(204, 204, 0))
            joint = (joint[0] + direction[0] * length, joint[1] + direction[1] * length)
        return c.to_uint8(img)
