"""Push2D: contact (block moves only when pushed, no tunnelling), each reward term, termination, batching, render."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import envs
from envs.push2d import REWARD_NAMES, Push2D, Push2DState
from envs.wrappers import AutoReset, SumReward, TimeLimit

KEY = jax.random.key(0)
ENV = Push2D()
P = ENV.default_params
CONTACT = P.gripper_radius + P.block_radius  # 0.15


def make_state(gripper, block, goal=(0.0, 0.8), block_vel=(0.0, 0.0)):
    f = lambda v: jnp.asarray(v, jnp.float32)  # noqa: E731
    return Push2DState(f(gripper), f((0.0, 0.0)), f(block), f(block_vel), f(goal))


def run(env, state, actions, params=None):
    """Step through ``actions``; returns stacked (obs, reward, terminated, info)."""
    params = env.default_params if params is None else params

    @jax.jit
    def go(state, actions):
        def body(s, a):
            obs, s, r, term, _, info = env.step(KEY, s, a, params)
            return s, (obs, r, term, info)

        return jax.lax.scan(body, state, jnp.asarray(actions, jnp.float32))[1]

    return go(state, actions)


def terms(reward):
    return dict(zip(REWARD_NAMES, np.moveaxis(np.asarray(reward), -1, 0)))


# ---------------------------------------------------------------------------------------------- spec, reset
def test_spec_and_registry():
    env = envs.make("push2d")
    assert isinstance(env, TimeLimit) and env.spec.id == "push2d"
    assert env.spec.reward_names == ("reach", "push", "safety", "control") and env.spec.reward_shape == (4,)
    assert env.spec.observation_space.shape == (10,) and env.spec.action_space.shape == (2,)
    assert env.spec.max_episode_steps == 100
    assert envs.make("push2d", max_episode_steps=150, push_reward=5.0).default_params.push_reward == 5.0


def test_reset_distribution():
    obs, state = jax.vmap(ENV.reset)(jax.random.split(KEY, 1024))
    g, b, goal = (np.asarray(x) for x in (state.gripper_xy, state.block_xy, state.goal_xy))
    assert obs.shape == (1024, 10) and obs.dtype == jnp.float32
    np.testing.assert_array_equal(obs[:, :2], g)
    assert np.abs(g).max() <= 1.0 and np.abs(b).max() <= 0.6 + 1e-6 and np.abs(goal).max() <= 0.8 + 1e-6
    assert np.linalg.norm(g - b, axis=1).min() >= CONTACT - 1e-5  # the gripper never starts inside the block
    assert (np.linalg.norm(goal - b, axis=1) >= P.goal_min_distance).mean() > 0.99
    np.testing.assert_array_equal(obs[:, 6:], 0.0)  # at rest
    assert g.std(0).min() > 0.3 and b.std(0).min() > 0.2 and goal.std(0).min() > 0.3  # randomized


# ---------------------------------------------------------------------------------------------- contact
def test_block_moves_only_when_pushed():
    # gripper wanders far from the block: the block does not move
    state = make_state((-0.8, -0.8), (0.5, 0.5))
    obs, _, _, info = run(ENV, state, np.tile([[0.5, -0.3], [-0.5, 0.3]], (10, 1)))
    np.testing.assert_array_equal(info["block_xy"], np.tile([0.5, 0.5], (20, 1)))
    np.testing.assert_array_equal(obs[:, 8:], 0.0)
    # gripper right behind the block pushes it along +x; the block keeps its distance (no penetration)
    state = make_state((0.0, 0.0), (CONTACT + 0.01, 0.0))
    obs, _, _, info = run(ENV, state, np.tile([[1.0, 0.0]], (5, 1)))
    bx = np.asarray(info["block_xy"])[:, 0]
    assert bx[0] == pytest.approx(0.1 + CONTACT)  # the gripper moved 0.1 and pushed the block out of its way
    np.testing.assert_allclose(np.diff(bx), P.max_speed * P.dt, rtol=1e-5)  # then it moves with the gripper
    np.testing.assert_allclose(np.asarray(info["block_xy"])[:, 1], 0.0)
    gap = np.linalg.norm(np.asarray(info["block_xy"]) - np.asarray(info["gripper_xy"]), axis=1)
    assert gap.min() >= CONTACT - 1e-5
    # after contact ends the block coasts, slowed by friction, then stops
    _, _, _, info2 = run(ENV, jax.tree.map(lambda x: x[-1], _last_state(ENV, state, 5)), np.zeros((6, 2)))
    moves = np.linalg.norm(np.diff(np.asarray(info2["block_xy"]), axis=0), axis=1)
    assert moves[0] > 0 and np.all(np.diff(moves) <= 1e-7) and moves[-1] < 1e-6


def _last_state(env, state, n):
    def body(s, _):
        s = env.step(KEY, s, jnp.array([1.0, 0.0]))[1]
        return s, s

    return jax.lax.scan(body, state, None, length=n)[1]


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**16), persistence=st.floats(0.0, 1.0))
def test_gripper_never_passes_through_the_block(seed, persistence):
    rng = np.random.default_rng(seed)
    direction = rng.uniform(-1, 1, 2)
    actions = persistence * direction + (1 - persistence) * rng.uniform(-1, 1, (64, 2))
    _, state = ENV.reset(jax.random.key(seed))
    _, _, term, info = run(ENV, state, actions)
    gap = np.linalg.norm(np.asarray(info["block_xy"]) - np.asarray(info["gripper_xy"]), axis=1)
    assert gap.min() >= CONTACT - 1e-5
    assert np.abs(np.asarray(info["gripper_xy"])).max() <= 1.0  # the gripper stays over the table


# ---------------------------------------------------------------------------------------------- reward terms
def test_reach_and_control_terms():
    state = make_state((0.0, 0.0), (0.6, 0.8))
    _, s1, r, _, _, info = ENV.step(KEY, state, jnp.array([0.5, 0.0]))
    t = terms(r)
    assert t["reach"] == pytest.approx(-np.linalg.norm(np.array([0.6, 0.8]) - [0.05, 0.0]), rel=1e-5)
    assert t["control"] == pytest.approx(-0.1 * 0.25)
    assert t["push"] == 0.0 and t["safety"] == 0.0
    assert r.shape == (4,) and r.dtype == jnp.float32


def test_push_term_fires_only_when_the_block_is_on_the_goal():
    # push the block straight up onto the goal at (0, 0.5): the term is 0 until it is within goal_radius
    state = make_state((0.0, 0.0), (0.0, CONTACT), goal=(0.0, 0.5))
    _, r, term, info = run(ENV, state, np.tile([[0.0, 1.0]], (6, 1)))
    dist = np.linalg.norm(np.asarray(info["block_xy"]) - [0.0, 0.5], axis=1)
    on_goal = dist <= P.goal_radius
    assert on_goal.any() and not on_goal.all()
    np.testing.assert_array_equal(terms(r)["push"], np.where(on_goal, 1.0, 0.0))
    np.testing.assert_array_equal(info["success"], on_goal)
    assert not np.asarray(term).any()  # success does not terminate by default
    # ... unless asked to; and the optional progress term pays for moving the block toward the goal
    p = P.replace(terminate_on_success=True, push_progress_weight=2.0, push_reward=0.0)
    _, r, term, _ = run(ENV, state, np.tile([[0.0, 1.0]], (6, 1)), p)
    np.testing.assert_array_equal(term, on_goal)
    dist_before = np.linalg.norm(
        np.concatenate([[[0.0, CONTACT]], np.asarray(info["block_xy"])[:-1]]) - [0, 0.5], axis=1
    )
    np.testing.assert_allclose(terms(r)["push"], 2.0 * (dist_before - dist), atol=1e-5)
    assert terms(r)["push"][0] > 0 and terms(r)["push"][-1] < 0  # toward the goal, then past it


def test_safety_block_off_the_table_terminates():
    state = make_state((0.7, 0.0), (0.7 + CONTACT, 0.0))
    _, r, term, info = run(ENV, state, np.tile([[1.0, 0.0]], (5, 1)))
    off = np.asarray(info["block_xy"])[:, 0] > 1.0
    assert off.any() and not off.all()
    np.testing.assert_array_equal(info["block_off_table"], off)
    np.testing.assert_array_equal(term, off)
    np.testing.assert_array_equal(terms(r)["safety"], np.where(off, -1.0, 0.0))  # axis-aligned: not too fast
    np.testing.assert_array_equal(info["safety_violation"], off)


def test_safety_speed_limit():
    state = make_state((0.0, 0.0), (0.6, 0.6))
    for action, violation in (([1.0, 1.0], True), ([1.0, 0.0], False), ([0.8, 0.8], False)):
        _, _, r, term, _, info = ENV.step(KEY, state, jnp.array(action))
        assert bool(info["safety_violation"]) == violation and not bool(term)
        assert terms(r)["safety"] == (-1.0 if violation else 0.0)
    _, _, r, _, _, _ = ENV.step(
        KEY, state, jnp.array([1.0, 1.0]), P.replace(speed_limit=2.0, safety_penalty=3.0)
    )
    assert terms(r)["safety"] == 0.0
    # a fast block is a violation too, even when the gripper is still
    moving = make_state((-0.8, -0.8), (0.0, 0.0), block_vel=(2.0, 0.0))
    _, _, r, _, _, info = ENV.step(KEY, moving, jnp.zeros(2), P.replace(block_damping=0.0))
    assert bool(info["safety_violation"]) and terms(r)["safety"] == -1.0


def test_sum_reward_wrapper():
    weights = {"push": 10.0, "control": 0.5}
    env = SumReward(ENV, weights)
    assert env.spec.reward_names == ("reward",)
    state = make_state((0.0, 0.0), (0.0, CONTACT), goal=(0.0, 0.25))
    _, _, r, _, _, info = env.step(KEY, state, jnp.array([0.3, 1.0]))
    t = terms(info["reward_terms"])
    assert t["push"] == 1.0
    assert r.shape == () and float(r) == pytest.approx(
        t["reach"] + 10 * t["push"] + t["safety"] + 0.5 * t["control"]
    )


# ---------------------------------------------------------------------------------------------- info, batching
def test_info_and_determinism():
    obs, state = ENV.reset(KEY)
    obs2, state2 = ENV.reset(KEY)
    np.testing.assert_array_equal(obs, obs2)
    actions = jax.random.uniform(jax.random.key(5), (20, 2), minval=-1, maxval=1)
    a, b = run(ENV, state, actions), run(ENV, state2, actions)
    jax.tree.map(np.testing.assert_array_equal, a, b)
    obs, _, _, info = a
    np.testing.assert_array_equal(info["xy"], info["gripper_xy"])
    np.testing.assert_array_equal(obs[:, 0:2], info["gripper_xy"])
    np.testing.assert_array_equal(obs[:, 2:4], info["block_xy"])
    np.testing.assert_array_equal(obs[:, 4:6], info["goal_xy"])
    for k in ("xy", "gripper_xy", "block_xy", "goal_xy"):
        assert info[k].shape == (20, 2) and info[k].dtype == jnp.float32
    for k in ("success", "safety_violation"):
        assert info[k].shape == (20,) and info[k].dtype == jnp.bool_


def test_jit_vmap_autoreset_1024():
    env = AutoReset(TimeLimit(Push2D(max_episode_steps=4)))
    n = 1024
    keys = jax.random.split(KEY, n)
    obs, state = jax.jit(jax.vmap(env.reset))(keys)
    step = jax.jit(jax.vmap(env.step))
    for t in range(4):
        keys = jax.vmap(jax.random.fold_in, (0, None))(keys, t)
        actions = jax.random.uniform(jax.random.fold_in(KEY, t), (n, 2), minval=-1, maxval=1)
        new_obs, state, reward, terminated, truncated, info = step(keys, state, actions)
        assert new_obs.shape == (n, 10) and new_obs.dtype == jnp.float32
        assert reward.shape == (n, 4) and reward.dtype == jnp.float32
        assert terminated.shape == (n,) and terminated.dtype == jnp.bool_
        assert info["success"].shape == (n,) and info["xy"].shape == (n, 2)
    assert bool(truncated.all())
    # after the reset the goals are freshly drawn, so they differ from the pre-reset ones
    assert (np.asarray(new_obs[:, 4:6]) != np.asarray(info["final_obs"][:, 4:6])).all(axis=1).mean() > 0.99


# ---------------------------------------------------------------------------------------------- pictures, errors
def test_render_draws_gripper_block_and_goal_where_they_are():
    c = ENV.canvas()

    def pixel(x, y):
        return (
            int((c.ymax - y) / (c.ymax - c.ymin) * c.height),
            int((x - c.xmin) / (c.xmax - c.xmin) * c.width),
        )

    state = make_state((-0.5, 0.4), (0.3, -0.2), goal=(0.6, 0.6))
    img = np.asarray(jax.jit(ENV.render)(state))
    assert img.shape == (256, 256, 3) and img.dtype == np.uint8
    red = (img[..., 0] > 120) & (img[..., 1] < 40) & (img[..., 2] < 40)
    rows, cols = np.nonzero(red)
    assert abs(rows.mean() - pixel(-0.5, 0.4)[0]) <= 1.5 and abs(cols.mean() - pixel(-0.5, 0.4)[1]) <= 1.5
    assert img[pixel(0.3, -0.2)][2] > 180 and img[pixel(0.3, -0.2)][0] < 80  # the block is blue
    assert img[pixel(0.6, 0.6)][1] > 160 and img[pixel(0.6, 0.6)][0] < 100  # the goal green
    assert img[pixel(-0.9, -0.9)].tolist() == img[pixel(0.9, -0.9)].tolist()  # plain table elsewhere
    assert img[0, 0].max() < 80  # outside the table


def test_bad_inputs_raise():
    _, state = ENV.reset(KEY)
    for bad in (jnp.zeros(3), jnp.zeros((4, 2)), jnp.zeros(())):
        with pytest.raises(ValueError, match="shape"):
            ENV.step(KEY, state, bad)
    with pytest.raises(ValueError, match="pass through the block"):
        Push2D(max_speed=3.0)
    with pytest.raises(ValueError, match="no param"):
        Push2D(push_weight=1.0)
