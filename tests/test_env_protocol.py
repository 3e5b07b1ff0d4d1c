"""The env protocol's core: spaces, spec, params validation, wrappers and the registry (env-agnostic parts,
exercised on Pendulum / CartPole and on a tiny counting env written here so that each wrapper's semantics are
checked against numbers computed by hand)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct

import envs
from envs import wrappers
from envs.core import Environment, EnvParams, EnvSpec
from envs.spaces import Box, Discrete


# ---------------------------------------------------------------------------------------------- a test env
@struct.dataclass
class CounterParams(EnvParams):
    max_episode_steps: int = 5
    terminate_at: int = 100  # position at which the episode terminates


class Counter(Environment):
    """obs = [position]; action ∈ [-1, 1] is added to the position; two reward terms (a, b) = (action, 1)."""

    params_cls = CounterParams

    @property
    def spec(self):
        return EnvSpec(
            "counter",
            Box.uniform(-np.inf, np.inf, (1,)),
            Box.uniform(-1, 1, (1,)),
            ("a", "b"),
            self.default_params.max_episode_steps,
        )

    def _reset(self, key, params):
        x = jax.random.uniform(key, (1,), minval=0.0, maxval=0.5)
        return x, {"x": x}

    def _step(self, key, state, action, params):
        x = state["x"] + action
        reward = jnp.stack([action[0], jnp.ones(())])
        return x, {"x": x}, reward, x[0] >= params.terminate_at, jnp.zeros((), bool), {}


def rollout(env, actions, key=0, params=None):
    obs, state = env.reset(jax.random.key(key), params)
    out = []
    step = jax.jit(env.step)
    for t, a in enumerate(actions):
        obs, state, r, te, tr, info = step(
            jax.random.key(1000 + t), state, jnp.asarray(a, jnp.float32), params
        )
        out.append((np.asarray(obs), np.asarray(r), bool(te), bool(tr), jax.device_get(info)))
    return out, state


# ---------------------------------------------------------------------------------------------- spaces
def test_box_and_discrete_checks():
    box = Box.uniform(-2, 2, (3,))
    assert (
        box.shape == (3,) and box.bounded and box.contains(np.zeros(3)) and not box.contains(np.full(3, 3.0))
    )
    assert box.check(np.zeros(3, np.float64)).dtype == jnp.float32
    with pytest.raises(ValueError, match=r"shape \(2,\), expected \(3,\)"):
        box.check(np.zeros(2))
    with pytest.raises(ValueError, match="floating dtype"):
        box.check(np.zeros(3, np.int32))
    d = Discrete(4)
    assert d.check(np.int64(2)).dtype == jnp.int32
    with pytest.raises(ValueError, match="discrete action space"):
        d.check(np.float32(1.0))
    with pytest.raises(ValueError, match="scalar integer"):
        d.check(np.zeros(2, np.int32))
    with pytest.raises(ValueError, match="low must be <= high"):
        Box(np.ones(2), np.zeros(2))
    samples = jax.vmap(box.sample)(jax.random.split(jax.random.key(0), 256))
    assert samples.shape == (256, 3) and float(samples.min()) >= -2 and float(samples.max()) <= 2


# ---------------------------------------------------------------------------------------------- bad input
def test_wrong_action_raises_before_compiling():
    env = envs.make("pendulum")
    obs, state = env.reset(jax.random.key(0))
    with pytest.raises(ValueError, match=r"pendulum: action has shape \(\), expected \(1,\)"):
        jax.jit(env.step)(jax.random.key(1), state, jnp.zeros(()))
    with pytest.raises(ValueError, match="batch of envs"):
        env.step(jax.random.key(1), state, jnp.zeros((4, 1)))
    with pytest.raises(ValueError, match="floating dtype"):
        env.step(jax.random.key(1), state, jnp.zeros((1,), jnp.int32))


def test_action_space_the_env_does_not_have():
    cartpole = envs.make("cartpole")
    _, state = cartpole.reset(jax.random.key(0))
    with pytest.raises(ValueError, match="discrete action space"):
        cartpole.step(jax.random.key(1), state, jnp.zeros((1,), jnp.float32))


def test_unknown_params_and_wrong_params_type():
    with pytest.raises(ValueError, match=r"has no param 'gravity'.*Its params are: .*\bg\b"):
        envs.make("pendulum", gravity=9.81)
    env = envs.make("pendulum", max_speed=4.0)
    assert env.default_params.max_speed == 4.0
    with pytest.raises(ValueError, match="Did you mean 'max_speed'"):
        env.make_params(max_sped=1.0)
    with pytest.raises(TypeError, match="params must be a PendulumParams"):
        env.reset(jax.random.key(0), {"g": 10.0})
    with pytest.raises(TypeError, match="one PRNG key"):
        env.reset(jax.random.split(jax.random.key(0), 3))


def test_params_are_a_sweepable_pytree():
    env = envs.make("pendulum")
    params = jax.vmap(lambda g: env.default_params.replace(g=g))(jnp.array([5.0, 10.0, 15.0]))
    obs, state = jax.vmap(env.reset, in_axes=(None, 0))(jax.random.key(0), params)
    action = jnp.zeros((3, 1))
    _, _, reward, *_ = jax.vmap(env.step, in_axes=(None, 0, 0, 0))(jax.random.key(1), state, action, params)
    assert reward.shape == (3,)
    # same start, different gravity -> different next state
    out = jax.vmap(env.step, in_axes=(None, 0, 0, 0))(jax.random.key(1), state, action, params)[0]
    assert not np.allclose(out[0], out[2])


# ---------------------------------------------------------------------------------------------- registry
def test_registry_lists_and_suggests():
    ids = envs.registered_ids()
    for expected in ("pendulum", "cartpole", "mountain-car-continuous", "point-maze", "point-room", "push2d"):
        assert expected in ids
    with pytest.raises(envs.UnknownEnvError, match="Did you mean 'cartpole'"):
        envs.make("cart-pole")
    with pytest.raises(envs.UnknownEnvError, match="gymnasium:"):
        envs.make("zzzz")
    assert isinstance(envs.make("pendulum"), wrappers.TimeLimit)
    assert not isinstance(envs.make("pendulum", time_limit=False), wrappers.TimeLimit)
    envs.register("counter-test", Counter, "a test env")
    try:
        assert envs.make("counter-test").spec.reward_names == ("a", "b")
    finally:
        envs.registry._REGISTRY.pop("counter-test")


# ---------------------------------------------------------------------------------------------- wrappers
def test_time_limit_truncates_and_never_terminates():
    env = wrappers.TimeLimit(Counter())
    out, state = rollout(env, [[0.1]] * 5)
    assert [o[3] for o in out] == [False, False, False, False, True]
    assert not any(o[2] for o in out)
    assert env.spec.max_episode_steps == 5
    # the limit is a param: a swept value changes it without rebuilding the env
    out, _ = rollout(env, [[0.1]] * 3, params=env.make_params(max_episode_steps=3))
    assert [o[3] for o in out] == [False, False, True]


def test_time_limit_keeps_termination_apart():
    env = wrappers.TimeLimit(Counter(terminate_at=1.0))
    out, _ = rollout(env, [[1.0]] * 2)
    assert out[0][2] and not out[0][3]


def test_auto_reset_same_step_semantics():
    env = wrappers.AutoReset(wrappers.TimeLimit(Counter()))
    out, state = rollout(env, [[1.0]] * 7)
    # step 5 ends the episode: obs is the new episode's first obs, final_obs the pre-reset one
    obs5, info5 = out[4][0], out[4][4]
    assert out[4][3] and info5["final_obs"][0] > 4.9 and obs5[0] < 0.5
    assert np.allclose(out[3][4]["final_obs"], out[3][0])  # not done: final_obs == obs
    assert int(state.elapsed) == 2  # the counter restarted with the episode
    assert out[5][0][0] == pytest.approx(obs5[0] + 1.0)


def test_episode_statistics_per_term_returns():
    env = wrappers.EpisodeStatistics(wrappers.AutoReset(wrappers.TimeLimit(Counter())))
    actions = [[0.5], [-0.25], [1.0], [0.0], [0.25], [1.0]]
    out, state = rollout(env, actions)
    info = out[4][4]
    assert info["episode_done"] and info["episode_length"] == 5
    np.testing.assert_allclose(info["episode_return_terms"], [1.5, 5.0], rtol=1e-6)
    assert info["episode_return"] == pytest.approx(6.5)
    assert int(state.episodes) == 1 and int(state.running_length) == 1
    np.testing.assert_allclose(state.running_return, [1.0, 1.0])


def test_sum_reward_weights_and_names():
    env = wrappers.SumReward(wrappers.TimeLimit(Counter()), {"a": 2.0})
    assert env.spec.reward_names == ("reward",)
    out, _ = rollout(env, [[0.5]])
    assert out[0][1].shape == () and float(out[0][1]) == pytest.approx(2.0 * 0.5 + 1.0)
    np.testing.assert_allclose(out[0][4]["reward_terms"], [0.5, 1.0])
    with pytest.raises(ValueError, match=r"unknown reward terms \['c'\].*\['a', 'b'\]"):
        wrappers.SumReward(Counter(), {"c": 1.0})


def test_rescale_and_clip_action():
    base = wrappers.TimeLimit(Counter())
    rescaled = wrappers.RescaleAction(base, low=0.0, high=4.0)
    out, _ = rollout(rescaled, [[4.0]], key=3)  # 4 -> +1 in the inner box
    ref, _ = rollout(base, [[1.0]], key=3)
    np.testing.assert_allclose(out[0][0], ref[0][0])
    assert rescaled.spec.action_space == Box.uniform(0.0, 4.0, (1,))
    clipped = wrappers.ClipAction(base)
    out, _ = rollout(clipped, [[7.0]], key=3)
    np.testing.assert_allclose(out[0][0], ref[0][0])
    with pytest.raises(ValueError, match="Box action space"):
        wrappers.ClipAction(envs.make("cartpole"))


def test_normalize_observation_shares_statistics_over_a_named_vmap_axis():
    n = 64
    inner = wrappers.TimeLimit(Counter())
    shared = wrappers.NormalizeObservation(inner, axis_name="envs")
    keys = jax.random.split(jax.random.key(0), n)
    obs, state = jax.vmap(shared.reset, in_axes=(0, None), axis_name="envs")(keys, None)
    # every env holds the same statistics: the exact mean / var of the n start observations
    raw = jax.vmap(inner.reset, in_axes=(0, None))(keys, None)[0]
    np.testing.assert_allclose(state.stats.mean[0], raw.mean(0), rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(np.ptp(np.asarray(state.stats.mean)), 0.0)
    assert abs(float(obs.mean())) < 1e-2  # normalized batch is centred
    actions = jnp.full((n, 1), 0.3)
    obs2, state2, *_, info = jax.vmap(shared.step, in_axes=(0, 0, 0, None), axis_name="envs")(
        keys, state, actions, None
    )
    np.testing.assert_allclose(info["raw_obs"], raw + 0.3, rtol=1e-6)
    assert float(state2.stats.count[0]) == pytest.approx(2 * n, rel=1e-3)
    # without an axis name, statistics are per env
    per_env = wrappers.NormalizeObservation(inner)
    _, st = jax.vmap(per_env.reset, in_axes=(0, None))(keys, None)
    assert np.ptp(np.asarray(st.stats.mean)) > 0


def test_flag_non_finite():
    @struct.dataclass
    class P(EnvParams):
        max_episode_steps: int = 10

    class NaNEnv(Counter):
        params_cls = P

        def _step(self, key, state, action, params):
            obs, state, r, te, tr, info = super()._step(key, state, action, CounterParams())
            return obs / 0.0, state, r, te, tr, info

    env = wrappers.FlagNonFinite(NaNEnv())
    _, state = env.reset(jax.random.key(0))
    *_, info = env.step(jax.random.key(0), state, jnp.zeros(1))
    assert bool(info["nonfinite_obs"])


def test_render_through_wrappers():
    env = wrappers.EpisodeStatistics(wrappers.AutoReset(envs.make("pendulum")))
    _, state = env.reset(jax.random.key(0))
    img = jax.jit(env.render)(state)
    assert img.shape[-1] == 3 and img.dtype == jnp.uint8 and int(img.min()) < 255
