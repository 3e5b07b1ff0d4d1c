"""Step-for-step parity of ``envs.classic`` with Gymnasium's Pendulum-v1, CartPole-v1, MountainCarContinuous-v0
and Acrobot-v1.

Both sides start from the same state (Gymnasium's ``env.unwrapped.state`` is overwritten with ours after its
reset) and receive the same actions: random, constant, closed-loop ones that reach the interesting branches
(velocity clips, the left wall, the goal, termination by angle and by position, Acrobot's angle wraps,
truncation), and out-of-range extremes that both must clip the same way. Our side is jitted and wrapped by
``envs.make`` (so ``TimeLimit`` truncates, as Gymnasium's registration does).

Besides observations and rewards, the simulator states are compared (to the same tolerance), because an
observation can hide a state: Acrobot observes only cos / sin of its angles, so an angle left unwrapped (or wrapped
to the wrong range) would look right. Angles that Gymnasium wraps to [−π, π] are compared modulo 2π (a float32
angle a rounding away from ±π may sit on the other end of the range than Gymnasium's float64 one) and must lie in
[−π, π] (float32 π).

Tolerances. Observations and rewards agree to ``atol=1e-5`` plus ``rtol=1e-6`` of Gymnasium's value: float32
carries 24 significant bits (a relative spacing of 6e-8), so a value above ~100 in magnitude (MountainCar's goal
reward of 100, or −0.1·a² for an out-of-range a = 1e3, i.e. −1e5) cannot be stored to 1e-5 absolute; 1e-6
relative is about eight float32 ulps. ``terminated``, ``truncated`` and the episode length must agree exactly.

Why two kinds of comparison. Gymnasium keeps Pendulum, CartPole and Acrobot in float64, we keep float32.
Free-running from the same start, the two trajectories separate at the systems' own rate: the balanced pole, the
pumped pendulum and the double pendulum are chaotic (rounding differences of ~1e-8 double every few steps), and
MountainCar's oscillation slowly accumulates them. Measured over 10 seeds per sequence, the first step beyond 1e-5
was ≥ 36 (Pendulum), ≥ 72 (CartPole, balancing only: short episodes never get there), ≥ 483 (MountainCar), ≥ 62
(Acrobot swinging up; ≥ 130 under random torques) and ≥ 7 (Acrobot with a light second link spinning at the
velocity bounds). So
  * ``test_free_running_episode`` compares values only over the first ``FREE_RUN_HORIZON`` steps (below those
    measurements; a sequence may set a shorter horizon of its own) and ``terminated`` / ``truncated`` / length over
    the whole episode, except for the sequences marked chaotic (an open-loop copy of a balanced pole falls at a
    step of its own), and
  * ``test_resynced_transitions`` checks every step of every sequence's full episode at the full tolerance: it
    follows Gymnasium's own trajectory, rounding its state to float32 each step and writing it into both
    simulators, so each comparison is one transition from identical inputs and no drift can accumulate.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs

RTOL, ATOL = 1e-6, 1e-5

GYM_IDS = {
    "pendulum": "Pendulum-v1",
    "cartpole": "CartPole-v1",
    "mountain-car-continuous": "MountainCarContinuous-v0",
    "acrobot": "Acrobot-v1",
}
# Steps compared to 1e-5 when free-running (see the module docstring for the measured drift).
FREE_RUN_HORIZON = {"pendulum": 25, "cartpole": 50, "mountain-car-continuous": 300, "acrobot": 40}
# State fields Gymnasium wraps to [-π, π]: compared modulo 2π, and ours must lie in [-π, π].
WRAPPED_ANGLES = {"acrobot": ("theta1", "theta2")}

Policy = Callable[[int, np.ndarray, np.random.Generator], object]


def _box(*values) -> np.ndarray:
    return np.asarray(values, np.float32)


@dataclass
class Trajectory:
    """What one compared episode saw (Gymnasium's side) and how far apart the two sides were."""

    obs: list[np.ndarray] = field(default_factory=list)
    actions: list[object] = field(default_factory=list)
    terminated: bool = False
    truncated: bool = False
    length: int = 0
    max_obs_dev: float = 0.0
    max_reward_dev: float = 0.0


@dataclass(frozen=True)
class Sequence:
    env_id: str
    name: str
    policy: Policy
    # params set on both sides (on Gymnasium's unwrapped env as attributes of the same names, or of the upper-cased
    # names where Gymnasium's are class constants: Acrobot's link_mass_1 is its LINK_MASS_1)
    overrides: dict = field(default_factory=dict)
    chaotic: bool = False  # free-running flags and length diverge within the episode (see module docstring)
    free_run_horizon: int | None = (
        None  # instead of FREE_RUN_HORIZON[env_id], for a faster-diverging sequence
    )
    covers: str = ""  # the branch this sequence must reach, checked on Gymnasium's trajectory
    reaches: Callable[[Trajectory], bool] | None = None


def _sign(v: float, default: float) -> float:
    return float(np.sign(v)) if v != 0 else default


def _tip_height(o: np.ndarray) -> float:
    """Acrobot's −cos θ1 − cos(θ1 + θ2) from an observation (cos θ1, sin θ1, cos θ2, sin θ2, ...)."""
    return float(-o[0] - (o[0] * o[2] - o[1] * o[3]))


def _crosses_pi(tr: Trajectory) -> bool:
    """Whether an Acrobot angle passed ±π between two observations (cos < 0 on both sides, sin changes sign)."""
    return any(
        a[c] < 0 and b[c] < 0 and a[c + 1] * b[c + 1] < 0
        for a, b in zip(tr.obs, tr.obs[1:], strict=False)
        for c in (0, 2)
    )


MC_LEFT = np.float32(-1.2)
ACRO_MAX_VEL = np.float32(4 * np.pi), np.float32(9 * np.pi)
ACRO_OVERRIDES = {
    "dt": 0.1,
    "link_length_1": 0.8,
    "link_length_2": 1.2,
    "link_mass_1": 1.3,
    "link_mass_2": 0.7,
    "link_com_pos_1": 0.4,
    "link_com_pos_2": 0.6,
    "link_moi": 0.8,
    "max_vel_1": 3.0,
    "max_vel_2": 7.0,
}
SEQUENCES = [
    # ------------------------------------------------------------------------------------ Pendulum-v1
    Sequence("pendulum", "random", lambda t, o, r: r.uniform(-2, 2, (1,)).astype(np.float32)),
    Sequence("pendulum", "constant", lambda t, o, r: _box(1.3)),
    Sequence(
        "pendulum",
        "out-of-range",  # just outside the bounds, far outside, both signs: Gymnasium clips before use
        lambda t, o, r: _box(r.choice([-1e3, -5.0, -2.0000002, 2.0000002, 5.0, 1e3])),
    ),
    Sequence(
        "pendulum",
        "pump-to-max-speed",  # torque along θ̇ (5, clipped to 2) spins the pole up to the ±8 speed clip
        lambda t, o, r: _box(5.0 * _sign(o[2], 1.0)),
        covers="|θ̇| clipped at max_speed",
        reaches=lambda tr: any(abs(o[2]) == 8.0 for o in tr.obs),
    ),
    Sequence(
        "pendulum",
        "params-override",
        lambda t, o, r: r.uniform(-3, 3, (1,)).astype(np.float32),
        overrides={"g": 9.81, "m": 0.7, "l": 1.3, "max_torque": 2.5, "dt": 0.03},
    ),
    # ------------------------------------------------------------------------------------ CartPole-v1
    Sequence(
        "cartpole",
        "random",
        lambda t, o, r: int(r.integers(0, 2)),
        covers="terminated by |θ| > 12°",
        reaches=lambda tr: tr.terminated and abs(tr.obs[-1][2]) > 12 * 2 * np.pi / 360,
    ),
    Sequence("cartpole", "constant-left", lambda t, o, r: 0, reaches=lambda tr: tr.terminated),
    Sequence("cartpole", "constant-right", lambda t, o, r: 1, reaches=lambda tr: tr.terminated),
    Sequence(
        "cartpole",
        "balance",  # a PD-like controller: keeps the pole up for the whole episode
        lambda t, o, r: int(o[2] + 0.5 * o[3] + 0.05 * o[0] + 0.1 * o[1] > 0),
        chaotic=True,
        covers="truncated at 500 steps",
        reaches=lambda tr: tr.truncated and not tr.terminated and tr.length == 500,
    ),
    Sequence(
        "cartpole",
        "run-off-the-track",  # balance around a pole tilted 0.1 rad to the right: the cart accelerates right
        lambda t, o, r: int(o[2] + 0.5 * o[3] - 0.1 > 0),
        chaotic=True,
        covers="terminated by |x| > 2.4",
        reaches=lambda tr: tr.terminated and abs(tr.obs[-1][0]) > 2.4,
    ),
    Sequence(
        "cartpole",
        "params-override",
        lambda t, o, r: int(r.integers(0, 2)),
        overrides={"force_mag": 15.0, "gravity": 9.81, "tau": 0.01, "x_threshold": 1.0},
    ),
    # ------------------------------------------------------------------------------------ MountainCarContinuous-v0
    Sequence(
        "mountain-car-continuous",
        "random",
        lambda t, o, r: r.uniform(-1, 1, (1,)).astype(np.float32),
        covers="truncated at 999 steps",
        reaches=lambda tr: tr.truncated and tr.length == 999,
    ),
    Sequence("mountain-car-continuous", "constant-left", lambda t, o, r: _box(-1.0)),
    Sequence(
        "mountain-car-continuous",
        "out-of-range",  # the force is clipped but the action cost is not (Gymnasium squares action[0])
        lambda t, o, r: _box(r.choice([-1e3, -3.0, -1.0000001, 1.0000001, 3.0, 1e3])),
    ),
    Sequence(
        "mountain-car-continuous",
        "pump-to-goal",  # push along the velocity with an out-of-range 1.5: reaches the flag in ~80 steps
        lambda t, o, r: _box(1.5 * _sign(o[1], -1.0)),
        covers="terminated at the goal (reward 100 − 0.1·1.5²)",
        reaches=lambda tr: tr.terminated,
    ),
    Sequence(
        "mountain-car-continuous",
        "pump-then-left-wall",
        lambda t, o, r: _box(_sign(o[1], -1.0) if t < 60 else -1.0),
        covers="left wall (position clipped to -1.2, velocity zeroed)",
        reaches=lambda tr: any(o[0] == MC_LEFT and o[1] == 0 for o in tr.obs),
    ),
    Sequence(
        "mountain-car-continuous",
        "params-override",  # a stronger engine reaches the ±max_speed clip
        lambda t, o, r: _box(_sign(o[1], 1.0)),
        overrides={"power": 0.01, "max_speed": 0.06, "goal_position": 0.5, "goal_velocity": 0.01},
        covers="velocity clipped at max_speed",
        reaches=lambda tr: any(abs(o[1]) == np.float32(0.06) for o in tr.obs),
    ),
    # ------------------------------------------------------------------------------------ Acrobot-v1
    Sequence(
        "acrobot",
        "random",
        lambda t, o, r: int(r.integers(0, 3)),
        covers="truncated at 500 steps",
        reaches=lambda tr: tr.truncated and not tr.terminated and tr.length == 500,
    ),
    Sequence("acrobot", "constant-no-torque", lambda t, o, r: 1),
    Sequence(
        "acrobot",
        "negative-indices",  # Gymnasium indexes its torque list with the action: -3, -2, -1 act like 0, 1, 2
        lambda t, o, r: int(r.choice([-3, -2, -1])),
    ),
    Sequence(
        "acrobot",
        "pump-to-goal",  # torque along θ̇2 swings the tip over the line in ~60-330 steps
        lambda t, o, r: 2 if o[5] > 0 else 0,
        chaotic=True,
        covers="terminated with the tip above the line (reward 0)",
        reaches=lambda tr: tr.terminated and _tip_height(tr.obs[-1]) > 1.0,
    ),
    Sequence(
        "acrobot",
        "spin-light-link",  # a heavy first link hangs, a light second one spins: both velocity bounds, many wraps
        lambda t, o, r: 2,
        overrides={"link_mass_1": 2.0, "link_mass_2": 0.05, "link_moi": 0.02},
        chaotic=True,
        free_run_horizon=5,
        covers="θ̇1 and θ̇2 bounded at 4π and 9π, angles wrapped past ±π",
        reaches=lambda tr: (
            any(abs(o[4]) == ACRO_MAX_VEL[0] for o in tr.obs)
            and any(abs(o[5]) == ACRO_MAX_VEL[1] for o in tr.obs)
            and _crosses_pi(tr)
        ),
    ),
    Sequence("acrobot", "params-override", lambda t, o, r: int(r.integers(0, 3)), overrides=ACRO_OVERRIDES),
]
SEQUENCE_IDS = [f"{s.env_id}-{s.name}" for s in SEQUENCES]


# ---------------------------------------------------------------------------------------------- harness
_JITTED: dict[str, tuple] = {}


def _ours(env_id: str):
    """One ``envs.make`` env per id with its jitted reset / step (compiled once per test session)."""
    if env_id not in _JITTED:
        env = envs.make(env_id)
        _JITTED[env_id] = (env, jax.jit(env.reset), jax.jit(env.step))
    return _JITTED[env_id]


def _state_fields(state) -> list[str]:
    # Our state dataclasses list their fields in Gymnasium's `self.state` order.
    return [f.name for f in dataclasses.fields(state)]


def _to_gym(state) -> np.ndarray:
    return np.array([float(getattr(state, n)) for n in _state_fields(state)], np.float64)


def _from_gym(values, like):
    return type(like)(*[jnp.float32(v) for v in values])


def _gym_env(env_id: str, overrides: dict):
    genv = gym.make(GYM_IDS[env_id])
    for name, value in overrides.items():
        attr = name if hasattr(genv.unwrapped, name) else name.upper()
        assert hasattr(genv.unwrapped, attr), f"Gymnasium's {GYM_IDS[env_id]} has no attribute {name}"
        setattr(genv.unwrapped, attr, value)
    return genv


def _gym_action(env_id: str, action):
    return int(action) if np.ndim(action) == 0 else np.asarray(action, np.float32)


def _assert_states_close(env_id: str, ours, theirs, where: str) -> None:
    """Our state (a state dataclass) against Gymnasium's ``env.unwrapped.state``, at the episode tolerances."""
    ours_v, theirs_v = _to_gym(ours), np.asarray(theirs, np.float64)
    diff = ours_v - theirs_v
    for i, name in enumerate(_state_fields(ours)):
        if name in WRAPPED_ANGLES.get(env_id, ()):
            assert abs(ours_v[i]) <= np.float32(np.pi), (
                f"{name} = {ours_v[i]} is not wrapped to [-π, π] at {where}"
            )
            diff[i] = (diff[i] + np.pi) % (2 * np.pi) - np.pi
    np.testing.assert_array_less(np.abs(diff), ATOL + RTOL * np.abs(theirs_v), err_msg=f"state at {where}")


def run_episode(seq: Sequence, seed: int, *, resync: bool) -> Trajectory:
    """Drive both envs through one episode, asserting agreement step by step; returns Gymnasium's trajectory."""
    env, reset, step = _ours(seq.env_id)
    params = env.make_params(**seq.overrides)
    obs, state = reset(jax.random.key(seed), params)
    genv = _gym_env(seq.env_id, seq.overrides)
    genv.reset(seed=seed)
    genv.unwrapped.state = _to_gym(state.env_state)
    rng = np.random.default_rng(seed)
    step_key = jax.random.key(0)  # these envs are deterministic; the key is unused
    traj = Trajectory(obs=[np.asarray(obs)])
    horizon = seq.free_run_horizon or FREE_RUN_HORIZON[seq.env_id]
    max_steps = int(params.max_episode_steps)

    for t in range(max_steps + 1):
        assert t < max_steps, "neither side ended the episode at the time limit"
        if resync:
            # Gymnasium's state rounded to float32, written into both: identical inputs to one transition.
            gstate = np.asarray(genv.unwrapped.state)
            rounded = gstate.astype(np.float32)
            genv.unwrapped.state = rounded.astype(gstate.dtype)
            state = state.replace(env_state=_from_gym(rounded, state.env_state))
        action = seq.policy(t, traj.obs[-1] if resync else np.asarray(obs), rng)
        traj.actions.append(action)
        obs, state, reward, terminated, truncated, _ = step(step_key, state, jnp.asarray(action), params)
        gobs, greward, gterminated, gtruncated, _ = genv.step(_gym_action(seq.env_id, action))
        traj.obs.append(gobs)
        obs_np, reward_f = np.asarray(obs), float(reward)

        where = f"{seq.env_id}/{seq.name} seed {seed} step {t} (action {action!r})"
        assert obs_np.dtype == np.float32 and gobs.dtype == np.float32, where
        if resync or t < horizon:
            np.testing.assert_allclose(obs_np, gobs, rtol=RTOL, atol=ATOL, err_msg=f"obs at {where}")
            np.testing.assert_allclose(reward_f, greward, rtol=RTOL, atol=ATOL, err_msg=f"reward at {where}")
            _assert_states_close(seq.env_id, state.env_state, genv.unwrapped.state, where)
            traj.max_obs_dev = max(traj.max_obs_dev, float(np.max(np.abs(obs_np - gobs))))
            traj.max_reward_dev = max(traj.max_reward_dev, abs(reward_f - float(greward)))
        elif seq.chaotic:
            break  # beyond the horizon the free-running copies of a chaotic episode are unrelated
        assert (bool(terminated), bool(truncated)) == (gterminated, gtruncated), f"flags at {where}"
        if gterminated or gtruncated:
            traj.terminated, traj.truncated, traj.length = gterminated, gtruncated, t + 1
            break
    genv.close()
    return traj


# ---------------------------------------------------------------------------------------------- episodes
@pytest.mark.parametrize("seq", SEQUENCES, ids=SEQUENCE_IDS)
def test_resynced_transitions(seq: Sequence):
    for seed in (0, 1):
        traj = run_episode(seq, seed, resync=True)
        assert traj.length > 0
        if seq.reaches is not None:
            assert seq.reaches(traj), (
                f"{seq.env_id}/{seq.name} seed {seed} never reached: {seq.covers or 'its end'}"
            )


@pytest.mark.parametrize("seq", SEQUENCES, ids=SEQUENCE_IDS)
def test_free_running_episode(seq: Sequence):
    traj = run_episode(seq, seed=2, resync=False)
    if not seq.chaotic:
        assert traj.length > 0


def test_out_of_range_actions_are_clipped_but_mountain_car_charges_them():
    """The clipping details the sequences above exercise, pinned down on single transitions."""
    env, reset, step = _ours("mountain-car-continuous")
    _, state = reset(jax.random.key(0))
    key = jax.random.key(0)
    obs_in, _, r_in, *_ = step(key, state, _box(1.0))
    obs_out, _, r_out, *_ = step(key, state, _box(7.0))
    np.testing.assert_array_equal(obs_in, obs_out)  # the force is clipped to max_action …
    np.testing.assert_allclose([r_in, r_out], [-0.1, -4.9], rtol=1e-6)  # … the cost is not

    env, reset, step = _ours("pendulum")
    _, state = reset(jax.random.key(0))
    obs_in, _, r_in, *_ = step(key, state, _box(-2.0))
    obs_out, _, r_out, *_ = step(key, state, _box(-9.0))
    np.testing.assert_array_equal(obs_in, obs_out)
    assert float(r_in) == float(r_out)  # Pendulum charges the clipped torque


# ---------------------------------------------------------------------------------------------- start states
def _reset_states(env_id: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(ours, Gymnasium's) start states, ``float64[n, state_dim]`` each."""
    env, reset, _ = _ours(env_id)
    keys = jax.random.split(jax.random.key(123), n)
    _, states = jax.jit(jax.vmap(reset))(keys)
    ours = np.stack(
        [np.asarray(getattr(states.env_state, f), np.float64) for f in _state_fields(states.env_state)], 1
    )
    genv = gym.make(GYM_IDS[env_id])
    theirs = []
    for seed in range(n):
        genv.reset(seed=seed)
        theirs.append(np.asarray(genv.unwrapped.state, np.float64))
    genv.close()
    return ours, np.stack(theirs)


START_LAWS = {  # Gymnasium's reset(): per state dimension, uniform(low, high) (low == high: a constant)
    "pendulum": ([-np.pi, -1.0], [np.pi, 1.0]),
    "cartpole": ([-0.05] * 4, [0.05] * 4),
    "mountain-car-continuous": ([-0.6, 0.0], [-0.4, 0.0]),
    "acrobot": ([-0.1] * 4, [0.1] * 4),
}


@pytest.mark.parametrize("env_id", list(GYM_IDS))
def test_start_state_distribution(env_id: str):
    low, high = (np.asarray(b) for b in START_LAWS[env_id])
    ours, theirs = _reset_states(env_id, 2000)
    for name, samples in (("ours", ours), ("Gymnasium's", theirs)):
        # Bounds with float32 slack (our π rounds up by 9e-8), then the uniform law's first two moments, each to
        # 5 standard errors (a true uniform fails one of the 4 x 2 checks with probability ~1e-5).
        slack = 1e-6
        assert np.all(samples >= low - slack) and np.all(samples <= high + slack), name
        n = len(samples)
        width = high - low
        mean_se = width / np.sqrt(12 * n)
        var_se = width**2 / np.sqrt(180 * n)  # std of the sample variance of a uniform law
        np.testing.assert_array_less(np.abs(samples.mean(0) - (low + high) / 2), 5 * mean_se + 1e-12, name)
        np.testing.assert_array_less(np.abs(samples.var(0) - width**2 / 12), 5 * var_se + 1e-12, name)
    # The two laws also match each other, not just the one written above.
    np.testing.assert_allclose(
        ours.mean(0), theirs.mean(0), atol=float(np.max(10 * (high - low) / np.sqrt(12 * 2000)))
    )


@pytest.mark.parametrize("env_id", list(GYM_IDS))
def test_reset_observation_is_gymnasiums_function_of_the_state(env_id: str):
    env, reset, _ = _ours(env_id)
    obs, state = reset(jax.random.key(7))
    genv = gym.make(GYM_IDS[env_id])
    genv.reset(seed=0)
    genv.unwrapped.state = _to_gym(state.env_state)
    if env_id == "pendulum":
        expected = genv.unwrapped._get_obs()
    elif env_id == "acrobot":
        expected = genv.unwrapped._get_ob()
    else:
        expected = np.asarray(genv.unwrapped.state, np.float32)
    genv.close()
    assert obs.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(obs), expected, rtol=RTOL, atol=1e-7)


# ---------------------------------------------------------------------------------------------- spaces
@pytest.mark.parametrize("env_id", list(GYM_IDS))
def test_spaces_and_time_limit_match_gymnasium(env_id: str):
    env = envs.make(env_id)
    genv = gym.make(GYM_IDS[env_id])
    ours, theirs = env.spec.observation_space, genv.observation_space
    assert ours.shape == theirs.shape and ours.dtype == theirs.dtype == np.float32
    np.testing.assert_array_equal(ours.low, theirs.low)
    np.testing.assert_array_equal(ours.high, theirs.high)
    ours, theirs = env.spec.action_space, genv.action_space
    if isinstance(theirs, gym.spaces.Discrete):
        # n and start match; the dtype is int32 here by design (JAX's default integer), int64 in Gymnasium.
        assert isinstance(ours, envs.Discrete) and ours.n == theirs.n and theirs.start == 0
    else:
        assert ours.shape == theirs.shape and ours.dtype == theirs.dtype == np.float32
        np.testing.assert_array_equal(ours.low, theirs.low)
        np.testing.assert_array_equal(ours.high, theirs.high)
    assert env.spec.max_episode_steps == genv.spec.max_episode_steps
    assert int(env.default_params.max_episode_steps) == genv.spec.max_episode_steps
    genv.close()


def test_pendulum_angle_wrap_keeps_float64_accuracy_for_spinning_poles():
    """Pendulum's θ is never wrapped in the state, so a spinning pole reaches |θ| of tens of radians. Gymnasium
    wraps it in float64; the cost θ_wrapped² must stay within 2e-6 of that (Gymnasium's expression evaluated in
    float32 is off by up to ~2e-5 there, which the episode tolerances above would not notice)."""
    from envs.classic import angle_normalize

    theta = np.random.default_rng(0).uniform(-100, 100, 20_000).astype(np.float32)
    theta = np.concatenate([theta, np.float32([np.pi, -np.pi, 0.0, 3 * np.pi, -3 * np.pi, 2 * np.pi])])
    reference = ((theta.astype(np.float64) + np.pi) % (2 * np.pi)) - np.pi
    ours = np.asarray(jax.jit(angle_normalize)(theta), np.float64)
    assert ours.dtype == np.float64 and np.all(np.abs(ours) <= np.float32(np.pi))
    np.testing.assert_allclose(ours**2, reference**2, rtol=0, atol=2e-6)


def test_acrobot_wrap_is_gymnasiums_loop():
    """Gymnasium wraps each angle after the RK4 step by subtracting (adding) 2π while it is above π (below −π); an
    angle can leave [−π, π] by more than 2π in one step of a fast spin. Ours is one closed-form reduction."""
    from gymnasium.envs.classic_control.acrobot import wrap

    from envs.classic import _wrap_angle

    x = np.random.default_rng(0).uniform(-25, 25, 20_000).astype(np.float32)
    x = np.concatenate([x, np.float32([0.0, 3.0, -3.0, 3.5, -3.5, 10.0, -10.0, 20.0, -20.0])])
    reference = np.array([wrap(float(v), -np.pi, np.pi) for v in x])
    ours = np.asarray(jax.jit(_wrap_angle)(x), np.float64)
    assert np.all(np.abs(ours) <= np.float32(np.pi))
    # Away from ±π the two agree to float32 rounding; at ±π they may pick opposite ends of the range.
    diff = (ours - reference + np.pi) % (2 * np.pi) - np.pi
    np.testing.assert_allclose(diff, 0.0, atol=2e-6)
    away = np.abs(np.abs(reference) - np.pi) > 1e-5
    np.testing.assert_allclose(ours[away], reference[away], rtol=0, atol=2e-6)


def test_acrobot_torque_is_gymnasiums_list_index():
    """Actions index Gymnasium's [-1, 0, +1] torque list: -3..-1 act like 0..2 (Python indexing; the
    negative-indices sequence above checks them against Gymnasium), and indices Gymnasium rejects with an
    IndexError are clamped to the last entry here (a compiled step cannot raise)."""
    _, reset, step = _ours("acrobot")
    _, state = reset(jax.random.key(0))
    key = jax.random.key(0)
    obs = {a: np.asarray(step(key, state, jnp.int32(a))[0]) for a in (-3, -2, -1, 0, 1, 2, 3, 100)}
    for a in (0, 1, 2):
        np.testing.assert_array_equal(obs[a - 3], obs[a])
    np.testing.assert_array_equal(obs[3], obs[2])
    np.testing.assert_array_equal(obs[100], obs[2])
    assert not np.array_equal(obs[0], obs[2])
