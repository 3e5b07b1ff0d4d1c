"""The Gymnasium bridges: Gymnasium envs on the host in our conventions, and our JAX envs as Gymnasium envs."""

from __future__ import annotations

import importlib
import re
import warnings

import gymnasium
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct
from gymnasium import spaces as gym_spaces
from gymnasium.utils.env_checker import check_env, check_space_limit
from gymnasium.vector import AutoresetMode

import envs
from envs.core import EnvParams
from envs.gymnasium_bridge import GymnasiumVectorEnv, to_gymnasium, to_gymnasium_vector
from envs.registry import lookup
from envs.wrappers import AutoReset


# ================================================================================================ user envs
class RandomWalk(gymnasium.Env):
    """A 1-D walk: action 1 steps right, 0 steps left; terminates at |x| = 3, truncates after ``limit`` steps."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 4}

    def __init__(self, limit: int = 5, render_mode: str | None = None):
        self.observation_space = gym_spaces.Box(-5.0, 5.0, (1,), np.float32)
        self.action_space = gym_spaces.Discrete(2)
        self.limit, self.render_mode = limit, render_mode
        self.x, self.t = 0, 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.x, self.t = 0, 0
        return np.array([self.x], np.float32), {}

    def step(self, action):
        assert self.action_space.contains(action), action
        self.x += 1 if action == 1 else -1
        self.t += 1
        obs = np.array([self.x], np.float32)
        return obs, float(self.x), abs(self.x) >= 3, self.t >= self.limit, {"x": self.x}

    def render(self):
        img = np.zeros((4, 8, 3), np.uint8)
        img[:, self.x + 4] = 255
        return img


def random_walk_factory() -> gymnasium.Env:
    return RandomWalk(limit=5)


class NaNOnOddSeeds(RandomWalk):
    """Returns a NaN observation from step 2 on when it was reset with an odd seed."""

    def reset(self, *, seed=None, options=None):
        if seed is not None:
            self.odd = seed % 2 == 1
        return super().reset(seed=seed, options=options)

    def step(self, action):
        obs, *rest = super().step(action)
        if self.odd and self.t >= 2:
            obs[:] = np.nan
        return obs, *rest


class WrongShape(RandomWalk):
    def step(self, action):
        obs, *rest = super().step(action)
        return np.zeros(2, np.float32), *rest


class DictObservation(RandomWalk):
    def __init__(self):
        super().__init__()
        self.observation_space = gym_spaces.Dict({"x": gym_spaces.Box(-5.0, 5.0, (1,), np.float32)})


class MultiDiscreteActions(RandomWalk):
    def __init__(self):
        super().__init__()
        self.action_space = gym_spaces.MultiDiscrete([2, 2])


class ShiftedDiscrete(RandomWalk):
    """Actions {-1, 0, 1} move the walker by that much."""

    def __init__(self):
        super().__init__()
        self.action_space = gym_spaces.Discrete(3, start=-1)

    def step(self, action):
        self.x += int(action) - (1 if action == 1 else -1)  # undo the parent's ±1, then move by `action`
        return super().step(action)


# ================================================================================================ host bridge
def test_make_returns_a_bridge_with_the_translated_spec():
    with envs.make("gymnasium:Pendulum-v1", num_envs=4) as env:
        assert isinstance(env, GymnasiumVectorEnv) and env.num_envs == 4
        gym_space = gymnasium.make("Pendulum-v1").observation_space
        assert env.spec.observation_space == envs.Box(gym_space.low, gym_space.high)
        assert env.spec.action_space == envs.Box.uniform(-2.0, 2.0, (1,))
        assert (env.id, env.max_episode_steps, env.reward_names) == ("Pendulum-v1", 200, ("reward",))
    with GymnasiumVectorEnv("CartPole-v1", 2) as env:
        assert env.spec.action_space == envs.Discrete(2) and env.spec.discrete_actions
        assert env.max_episode_steps == 500
        # CartPole's velocity bounds are float32 ±inf in Gymnasium; they stay ±inf
        assert np.isinf(env.spec.observation_space.high[1]) and env.spec.observation_space.dtype == np.float32


@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
def test_pendulum_truncation_gives_the_true_last_observation(asynchronous):
    """final_obs at truncation equals what plain Gymnasium returns on step 200 from the same seed and actions."""
    rng = np.random.default_rng(0)
    actions = rng.uniform(-2, 2, (200, 2, 1)).astype(np.float32)
    with GymnasiumVectorEnv("Pendulum-v1", 2, asynchronous=asynchronous, seed=7) as env:
        obs = env.reset()
        assert obs.shape == (2, 3) and obs.dtype == np.float32
        for t in range(200):
            obs, reward, terminated, truncated, info = env.step(actions[t])
            assert reward.shape == (2,) and reward.dtype == np.float32
            assert terminated.dtype == truncated.dtype == np.bool_ and not terminated.any()
            assert info["final_obs"].shape == (2, 3) and info["final_obs"].dtype == np.float32
            if t < 199:
                assert not truncated.any()
                np.testing.assert_array_equal(info["final_obs"], obs)
        assert truncated.all() and info["episode_done"].all()
        np.testing.assert_array_equal(info["episode_length"], [200, 200])
    reference = gymnasium.make("Pendulum-v1")
    ref_obs, _ = reference.reset(seed=8)  # env 1 is seeded with seed + 1
    ref_return = 0.0
    for t in range(200):
        ref_obs, r, *_ = reference.step(actions[t, 1])
        ref_return += r
    np.testing.assert_allclose(info["final_obs"][1], ref_obs, rtol=1e-6)
    np.testing.assert_allclose(info["episode_return"][1], ref_return, rtol=1e-4)
    assert not np.allclose(obs[1], ref_obs)  # obs is already the next episode's first observation


@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
def test_cartpole_termination_keeps_final_obs_apart_from_the_reset_obs(asynchronous):
    with GymnasiumVectorEnv("CartPole-v1", 2, asynchronous=asynchronous) as env:
        obs = env.reset(seed=0)
        assert obs.shape == (2, 4) and obs.dtype == np.float32
        for _ in range(100):
            obs, reward, terminated, truncated, info = env.step(
                np.ones(2, np.int64)
            )  # push right until it falls
            if terminated.any():
                break
        assert terminated.any() and not truncated.any()
        i = np.flatnonzero(terminated)[0]
        final = info["final_obs"][i]
        assert (
            abs(final[0]) > 2.4 or abs(final[2]) > 0.2095
        )  # the pole fell or the cart left: a terminal state
        assert np.all(np.abs(obs[i]) <= 0.05)  # Gymnasium's reset distribution
        np.testing.assert_array_equal(info["final_obs"][~terminated], obs[~terminated])


@pytest.mark.parametrize("how", ["class", "factory", "instance"])
def test_user_env_runs_through_the_bridge(how):
    env_arg = {"class": RandomWalk, "factory": random_walk_factory, "instance": RandomWalk(limit=5)}[how]
    with GymnasiumVectorEnv(env_arg, 1) as env:
        assert env.spec.observation_space == envs.Box.uniform(-5.0, 5.0, (1,))
        assert env.spec.action_space == envs.Discrete(2) and env.max_episode_steps is None
        assert env.id == ("random_walk_factory" if how == "factory" else "RandomWalk")
        np.testing.assert_array_equal(env.reset(seed=0), [[0.0]])
        for expected in (1.0, 2.0):
            obs, reward, terminated, truncated, info = env.step(np.array([1]))
            np.testing.assert_array_equal(obs, [[expected]])
        obs, reward, terminated, truncated, info = env.step(jnp.array([1]))  # jax actions are accepted
        assert terminated.tolist() == [True] and truncated.tolist() == [False]
        np.testing.assert_array_equal(info["final_obs"], [[3.0]])
        np.testing.assert_array_equal(obs, [[0.0]])  # reset on the same step
        np.testing.assert_array_equal(info["episode_return"], [6.0])
        for t, action in enumerate(
            [0, 1, 0, 1, 0]
        ):  # never reaches |x| = 3: truncated by the env's own limit
            obs, reward, terminated, truncated, info = env.step(np.array([action]))
            assert truncated.tolist() == [t == 4] and terminated.tolist() == [False]
        np.testing.assert_array_equal(info["final_obs"], [[-1.0]])
        np.testing.assert_array_equal(info["episode_length"], [5])
        np.testing.assert_array_equal(info["episode_return"], [-3.0])  # the second episode's own return


def test_user_env_in_worker_processes_and_render():
    with GymnasiumVectorEnv(RandomWalk, 2, asynchronous=True, gym_kwargs={"render_mode": "rgb_array"}) as env:
        env.reset(seed=0)
        obs, *_ = env.step(np.array([1, 0]))
        np.testing.assert_array_equal(obs, [[1.0], [-1.0]])
        frames = env.render()
        assert frames.shape == (2, 4, 8, 3) and frames.dtype == np.uint8
        assert frames[0, 0, 5, 0] == 255 and frames[1, 0, 3, 0] == 255
    assert env.vector_env.closed
    with GymnasiumVectorEnv(RandomWalk, 1) as env, pytest.raises(ValueError, match="render_mode"):
        env.render()


def test_discrete_start_is_translated_with_an_offset():
    with GymnasiumVectorEnv(ShiftedDiscrete, 1) as env:
        assert env.spec.action_space == envs.Discrete(3) and env.action_offset == -1
        env.reset(seed=0)
        obs, *_ = env.step(np.array([0]))  # our 0 is Gymnasium's -1
        np.testing.assert_array_equal(obs, [[-1.0]])
        obs, *_ = env.step(np.array([2]))
        np.testing.assert_array_equal(obs, [[0.0]])


def test_nan_observations_name_the_env_the_step_and_the_envs():
    with GymnasiumVectorEnv(NaNOnOddSeeds, 3) as env:
        env.reset(seed=0)  # env i is seeded 0 + i: env 1 is the odd one
        env.step(np.ones(3, np.int64))
        with pytest.raises(
            ValueError, match=r"'NaNOnOddSeeds'.*non-finite.*observations at step 2 .*envs \[1\]"
        ):
            env.step(np.ones(3, np.int64))


@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
def test_observations_of_the_wrong_shape_are_refused(asynchronous):
    with GymnasiumVectorEnv(WrongShape, 1, asynchronous=asynchronous) as env:
        env.reset(seed=0)
        with pytest.raises(
            ValueError,
            match=r"'WrongShape'.*wrong shape at step 1 .*env 0 returned shape \(2,\) .*declares \(1,\)",
        ):
            env.step(np.ones(1, np.int64))


@pytest.mark.parametrize(
    "env_id, actions, message",
    [
        ("Pendulum-v1", np.zeros(2, np.float32), r"shape \(2,\), expected \(2, 1\)"),
        ("Pendulum-v1", np.zeros((2, 1), np.int32), r"dtype int32, expected a floating dtype"),
        ("Pendulum-v1", np.array([[0.0], [np.nan]], np.float32), r"envs \[1\] are not finite"),
        ("CartPole-v1", np.zeros((2, 1), np.int64), r"shape \(2, 1\), expected \(2,\)"),
        ("CartPole-v1", np.zeros(2, np.float32), r"dtype float32, expected an integer dtype"),
        ("CartPole-v1", np.array([0, 2]), r"actions \[2\] of envs \[1\] are outside \[0, 2\)"),
    ],
)
def test_wrong_actions_raise_clear_errors(env_id, actions, message):
    with GymnasiumVectorEnv(env_id, 2) as env:
        env.reset(seed=0)
        with pytest.raises(ValueError, match=f"{env_id}.*{message}"):
            env.step(actions)


@pytest.mark.parametrize(
    "env_cls, message",
    [
        (DictObservation, r"Dict space .* observation space.*FlattenObservation"),
        (MultiDiscreteActions, r"MultiDiscrete space .* action space"),
    ],
)
def test_unsupported_spaces_are_refused_by_name(env_cls, message):
    with pytest.raises(ValueError, match=message):
        GymnasiumVectorEnv(env_cls, 1)


def test_misuse_is_refused_clearly():
    with pytest.raises(ValueError, match="one gymnasium.Env instance .* num_envs=2"):
        GymnasiumVectorEnv(RandomWalk(), 2)
    with pytest.raises(ValueError, match="instance .* asynchronous=True"):
        GymnasiumVectorEnv(RandomWalk(), 1, asynchronous=True)
    with pytest.raises(TypeError, match="must be a Gymnasium id"):
        GymnasiumVectorEnv(3)
    with GymnasiumVectorEnv(RandomWalk, 1) as env, pytest.raises(RuntimeError, match="reset"):
        env.step(np.ones(1, np.int64))


# ================================================================================================ rlkit → Gymnasium
# Gymnasium's reference versions of our classic envs: check_env's advice about their spaces (infinite observation
# bounds, a non-normalized action box) applies to Gymnasium's own envs too, and we keep their spaces for parity.
GYMNASIUM_TWINS = {
    "pendulum": "Pendulum-v1",
    "cartpole": "CartPole-v1",
    "mountain-car-continuous": "MountainCarContinuous-v0",
}


def make_or_skip(env_id: str, **kwargs) -> envs.Environment:
    """``envs.make(env_id)``, skipped while the module that defines it is still being written."""
    entry = lookup(env_id).entry_point
    module, _, attr = entry.partition(":")
    try:
        obj = importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name != module:
            raise
        pytest.skip(f"{env_id}: module {module} does not exist yet")
    if not hasattr(obj, attr.split(".")[0]):
        pytest.skip(f"{env_id}: {module} does not define {attr.split('.')[0]} yet")
    return envs.make(env_id, **kwargs)


def twin_space_advice(env_id: str) -> list[str]:
    """The space warnings check_env gives Gymnasium's own version of ``env_id`` (none for envs without one)."""
    if env_id not in GYMNASIUM_TWINS:
        return []
    twin = gymnasium.make(GYMNASIUM_TWINS[env_id])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_space_limit(twin.action_space, "action")
        check_space_limit(twin.observation_space, "observation")
    return [str(w.message) for w in caught]


@pytest.mark.parametrize("env_id", envs.registered_ids())
def test_check_env_passes_for_every_registered_env(env_id):
    env = make_or_skip(env_id)
    gym_env = to_gymnasium(env)
    render_mode = "rgb_array" if "rgb_array" in gym_env.metadata["render_modes"] else None
    if render_mode:
        gym_env = to_gymnasium(env, render_mode=render_mode)
    with warnings.catch_warnings():
        for message in twin_space_advice(env_id):  # see GYMNASIUM_TWINS: advice Gymnasium's own env gets too
            warnings.filterwarnings("ignore", message=re.escape(message))
        check_env(gym_env, skip_render_check=False)
    assert gym_env.spec.max_episode_steps == env.spec.max_episode_steps
    assert gym_env.observation_space.dtype == np.float32


def test_seeded_episodes_are_deterministic_and_truncate_at_the_time_limit():
    env = to_gymnasium(envs.make("pendulum", max_episode_steps=7))
    assert env.spec.max_episode_steps == 7 and env.spec.id == "rlkit/pendulum"

    def episode(seed):
        obs, info = env.reset(seed=seed)
        out = [obs]
        for t in range(7):
            obs, reward, terminated, truncated, info = env.step(np.array([np.sin(t)], np.float32))
            assert isinstance(reward, float) and truncated is (t == 6) and terminated is False
            assert obs.dtype == np.float32 and obs in env.observation_space
            out.append(obs)
        return np.stack(out)

    np.testing.assert_array_equal(episode(3), episode(3))
    assert not np.allclose(episode(3), episode(4))
    env.reset(seed=3)
    first = env.reset()[0]  # an unseeded reset continues the seeded chain deterministically
    env.reset(seed=3)
    np.testing.assert_array_equal(env.reset()[0], first)


def test_params_override_the_default_params():
    base = envs.make("pendulum")
    env = to_gymnasium(base, base.make_params(max_episode_steps=3, max_speed=0.5))
    assert env.spec.max_episode_steps == 3
    env.reset(seed=0)
    for _ in range(3):
        obs, reward, terminated, truncated, info = env.step(np.array([2.0], np.float32))
    assert truncated and abs(obs[2]) <= 0.5


@struct.dataclass
class TwoTermParams(EnvParams):
    max_episode_steps: int = 4


class TwoTermWalk(envs.Environment):
    """x moves by the action; reward terms ("progress", "alive") = (x, 1). For the vector-reward path."""

    params_cls = TwoTermParams

    @property
    def spec(self):
        return envs.EnvSpec(
            "two-term",
            envs.Box.uniform(-10.0, 10.0, (1,)),
            envs.Box.uniform(-1.0, 1.0, (1,)),
            reward_names=("progress", "alive"),
            max_episode_steps=4,
        )

    def _reset(self, key, params):
        return jnp.zeros(1), jnp.zeros(1)

    def _step(self, key, state, action, params):
        x = state + action
        false = jnp.zeros((), bool)
        return (
            x,
            x,
            envs.reward_vector({"progress": x[0], "alive": 1.0}, self.spec.reward_names),
            false,
            false,
            {},
        )


def test_vector_rewards_are_summed_with_the_terms_in_info():
    env = to_gymnasium(envs.wrappers.TimeLimit(TwoTermWalk()))
    env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step(np.array([0.5], np.float32))
    assert reward == pytest.approx(1.5) and isinstance(reward, float)
    np.testing.assert_allclose(info["reward_terms"], [0.5, 1.0])
    venv = to_gymnasium_vector(envs.wrappers.TimeLimit(TwoTermWalk()), 2)
    venv.reset(seed=0)
    obs, reward, *_, info = venv.step(np.array([[0.5], [-1.0]], np.float32))
    np.testing.assert_allclose(reward, [1.5, 0.0])
    np.testing.assert_allclose(info["reward_terms"], [[0.5, 1.0], [-1.0, 1.0]])


def test_render_returns_the_env_picture():
    env = to_gymnasium(envs.make("pendulum"), render_mode="rgb_array")
    assert env.metadata["render_modes"] == ["rgb_array"] and env.metadata["render_fps"] == 20
    env.reset(seed=0)
    before = env.render()
    env.step(np.array([2.0], np.float32))
    after = env.render()
    assert before.shape == (256, 256, 3) and before.dtype == np.uint8 and not np.array_equal(before, after)
    np.testing.assert_array_equal(after, np.asarray(envs.make("pendulum").render(env._state)))
    with pytest.raises(ValueError, match="render_mode='human' is not supported"):
        to_gymnasium(envs.make("pendulum"), render_mode="human")


def test_exports_refuse_wrong_inputs():
    env = to_gymnasium(envs.make("pendulum"))
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"pendulum.*shape \(2,\), expected \(1,\)"):
        env.step(np.zeros(2, np.float32))
    with pytest.raises(ValueError, match="remove the AutoReset"):
        to_gymnasium(AutoReset(envs.make("pendulum")))
    with pytest.raises(ValueError, match="remove the AutoReset"):
        to_gymnasium_vector(AutoReset(envs.make("pendulum")), 2)
    venv = to_gymnasium_vector(envs.make("pendulum"), 2)
    venv.reset(seed=0)
    with pytest.raises(ValueError, match=r"shape \(1, 1\), expected \(2, 1\)"):
        venv.step(np.zeros((1, 1), np.float32))


def test_discrete_export_checks_the_action_range():
    env = to_gymnasium(make_or_skip("cartpole"))
    assert env.action_space == gym_spaces.Discrete(2)
    env.reset(seed=0)
    env.step(np.int64(1))
    with pytest.raises(ValueError, match=r"outside \[0, 2\)"):
        env.step(2)
    venv = to_gymnasium_vector(make_or_skip("cartpole"), 2)
    venv.reset(seed=0)
    with pytest.raises(ValueError, match=r"actions \[-1\] of envs \[0\] are outside \[0, 2\)"):
        venv.step(np.array([-1, 0]))


def test_vector_export_api_and_same_step_autoreset():
    env = envs.make("pendulum", max_episode_steps=5)
    venv = to_gymnasium_vector(env, 3)
    assert isinstance(venv, gymnasium.vector.VectorEnv) and venv.num_envs == 3
    assert venv.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
    assert venv.single_observation_space == gym_spaces.Box(
        env.spec.observation_space.low, env.spec.observation_space.high, dtype=np.float32
    )
    assert venv.observation_space.shape == (3, 3) and venv.action_space.shape == (3, 1)
    assert venv.single_action_space == gym_spaces.Box(-2.0, 2.0, (1,), np.float32)
    obs, info = venv.reset(seed=0)
    assert obs.shape == (3, 3) and obs.dtype == np.float32 and obs in venv.observation_space and info == {}
    for t in range(5):
        actions = venv.action_space.sample()
        obs, reward, terminated, truncated, info = venv.step(actions)
        assert reward.shape == (3,) and reward.dtype == np.float32
        assert (
            terminated.dtype == truncated.dtype == np.bool_
            and obs.dtype == info["final_obs"].dtype == np.float32
        )
        if t < 4:
            np.testing.assert_array_equal(info["final_obs"], obs)
            assert not truncated.any()
    assert truncated.all() and not terminated.any()
    assert not np.allclose(
        info["final_obs"], obs
    )  # obs is the next episode's start, final_obs the last state
    # a reset on the same step: the next step continues from obs, not from final_obs
    theta = np.arctan2(obs[:, 1], obs[:, 0])
    obs2, *_ = venv.step(np.zeros((3, 1), np.float32))
    np.testing.assert_allclose(np.arctan2(obs2[:, 1], obs2[:, 0]), theta + obs2[:, 2] * 0.05, atol=1e-5)


def run_vector(venv, seed, actions):
    out = [venv.reset(seed=seed)[0]]
    for a in actions:
        out.append(venv.step(a)[0])
    return np.stack(out)


@pytest.mark.parametrize("env_id", ["pendulum", "cartpole"])
def test_vector_export_is_seeded_and_agrees_with_the_single_env(env_id):
    env = make_or_skip(env_id)
    venv = to_gymnasium_vector(env, 2)
    venv.action_space.seed(0)
    actions = [venv.action_space.sample() for _ in range(8)]
    a = run_vector(venv, 5, actions)
    np.testing.assert_array_equal(a, run_vector(venv, 5, actions))
    assert not np.allclose(a, run_vector(venv, 6, actions))
    np.testing.assert_array_equal(a, run_vector(venv, [5, 6], actions))
    single = to_gymnasium(env)
    for i in range(2):  # env i of the vector is seeded s + i, like Gymnasium's vector envs
        obs = [single.reset(seed=5 + i)[0]]
        for act in actions:
            o, _, terminated, truncated, _ = single.step(act[i])
            assert not (terminated or truncated)  # agreement holds until an episode ends (then keys differ)
            obs.append(o)
        np.testing.assert_allclose(np.stack(obs), a[:, i], rtol=1e-6, atol=1e-6)
