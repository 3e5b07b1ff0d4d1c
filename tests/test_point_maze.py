"""PointMaze: walls never crossed (property test), sliding, seams, layouts, info, determinism, batching, pictures."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import envs
from envs.point_maze import MAZE_GRID, Layout, PointMaze, PointMazeParams
from envs.wrappers import AutoReset, TimeLimit

KEY = jax.random.key(0)

# Thin walls (0.05 thick) with gaps, and blocks that touch (stacked, and an L made of two blocks): the cases where
# a large step could tunnel or a point could slip along a seam.
THIN = Layout(
    "thin",
    (-3.0, -3.0, 3.0, 3.0),
    (
        Layout.wall((-1.0, -3.0), (-1.0, 1.0), 0.05),
        Layout.wall((1.0, -1.0), (1.0, 3.0), 0.05),
        (-0.5, 1.5, 0.5, 2.0),
        (-0.5, 2.0, 0.5, 2.5),  # stacked on the one above: the seam y = 2 is inside the wall
        (1.5, -2.5, 2.5, -2.0),
        (1.5, -2.0, 2.0, -1.0),  # an L
    ),
    (0.0, 0.0),
)


def inside_walls(layout: Layout, x: float, y: float, radius: float = 0.0) -> bool:
    """Independent oracle: (x, y) is inside the union of the inflated blocks (all four ε-diagonal points covered)."""
    eps = 1e-4

    def covered(px, py):
        return any(
            b[0] - radius < px < b[2] + radius and b[1] - radius < py < b[3] + radius for b in layout.blocks
        )

    return all(covered(x + sx * eps, y + sy * eps) for sx in (-1, 1) for sy in (-1, 1))


def rollout_positions(env: PointMaze, params, start, actions) -> np.ndarray:
    """float[T + 1, 2]: the start and the position after each action (one compiled program per env)."""
    return np.asarray(_rollout(env)(params.replace(start_xy=jnp.asarray(start, jnp.float32)), actions))


@functools.cache
def _rollout(env):
    @jax.jit
    def run(params, actions):
        obs, state = env.reset(KEY, params)

        def body(s, a):
            o, s, *_ = env.step(KEY, s, a, params)
            return s, o

        _, xs = jax.lax.scan(body, state, actions)
        return jnp.concatenate([obs[None], xs])

    return run


ENVS = {"maze": PointMaze.maze(), "thin": PointMaze(THIN)}


# ---------------------------------------------------------------------------------------------- property test
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.sampled_from(sorted(ENVS)),
    max_step=st.sampled_from([0.2, 0.7, 3.0]),  # METRA's step, and steps far larger than any wall
    radius=st.sampled_from([0.0, 0.1]),
    start=st.tuples(st.floats(-0.99, 0.99), st.floats(-0.99, 0.99)),
    direction=st.tuples(st.floats(-1, 1), st.floats(-1, 1)),
    jitter=st.floats(0.0, 2.0),
    seed=st.integers(0, 2**16),
)
def test_random_actions_never_cross_a_wall(name, max_step, radius, start, direction, jitter, seed):
    env = ENVS[name]
    layout = env.layout
    xmin, ymin, xmax, ymax = layout.bounds
    sx = (xmin + xmax) / 2 + start[0] * (xmax - xmin) / 2
    sy = (ymin + ymax) / 2 + start[1] * (ymax - ymin) / 2
    if not env.is_free((sx, sy), radius) or inside_walls(layout, sx, sy, radius):
        return  # an illegal start; hypothesis moves on
    # a persistent direction (presses into walls and corners) plus noise; |a| up to 3 exercises the clipping
    rng = np.random.default_rng(seed)
    actions = np.asarray(direction) + jitter * rng.standard_normal((48, 2))
    actions = np.clip(actions, -3, 3).astype(np.float32)
    params = env.make_params(max_step=max_step, agent_radius=radius)
    xs = rollout_positions(env, params, (sx, sy), actions)
    for (x0, y0), (x1, y1) in zip(xs[:-1], xs[1:]):
        assert (
            xmin + radius - 1e-5 <= x1 <= xmax - radius + 1e-5
            and ymin + radius - 1e-5 <= y1 <= ymax - radius + 1e-5
        )
        assert abs(x1 - x0) <= max_step + 1e-5 and abs(y1 - y0) <= max_step + 1e-5
        # the motion is the x leg then the y leg: no point of either leg may be inside the walls
        for t in np.linspace(0.0, 1.0, 41):
            assert not inside_walls(layout, x0 + t * (x1 - x0), y0, radius), ((x0, y0), (x1, y1))
            assert not inside_walls(layout, x1, y0 + t * (y1 - y0), radius), ((x0, y0), (x1, y1))


# ---------------------------------------------------------------------------------------------- walls
def test_wall_stops_the_point_on_its_face_and_it_slides():
    env = PointMaze(Layout("one-wall", (-2.0, -2.0, 2.0, 2.0), ((0.5, -1.0, 0.6, 1.0),), (0.0, 0.0)))
    xs = rollout_positions(
        env, env.default_params, (0.0, 0.0), np.tile([[1.0, 1.0]], (8, 1)).astype(np.float32)
    )
    assert xs[3, 0] == pytest.approx(0.5)  # stopped on the face after 3 steps of 0.2 (0.6 > 0.5)
    assert np.all(xs[3:6, 0] == np.float32(0.5)) and xs[5, 1] == pytest.approx(1.0)
    np.testing.assert_allclose(np.diff(xs[:6, 1]), 0.2, atol=1e-6)  # y keeps moving: sliding, not sticking
    assert xs[-1, 0] > 0.6  # from the wall's end (y = 1) on, it moves on in x


def test_one_huge_step_cannot_tunnel_through_a_thin_wall():
    env = PointMaze(THIN, max_step=100.0)
    xs = rollout_positions(
        env, env.default_params, (0.0, 0.0), np.array([[1.0, 0.0], [-1.0, 0.0]], np.float32)
    )
    assert xs[1, 0] == pytest.approx(1.0 - 0.025)  # right: stopped by the thin wall at x = 1
    assert xs[2, 0] == pytest.approx(-1.0 + 0.025)  # left: by the other one


def test_seams_between_touching_blocks_are_inside_the_wall():
    # two stacked blocks; a point exactly on the seam line y = 0 must not slip between them
    stacked = Layout(
        "stacked", (-2.0, -2.0, 2.0, 2.0), ((1.0, -1.0, 2.0, 0.0), (1.0, 0.0, 2.0, 1.0)), (0.0, 0.0)
    )
    env = PointMaze(stacked)
    xs = rollout_positions(
        env, env.default_params, (0.5, 0.0), np.tile([[1.0, 0.0]], (6, 1)).astype(np.float32)
    )
    assert xs[-1, 0] == np.float32(1.0)
    # and a point on their common face slides along it across the seam instead of sticking there
    xs = rollout_positions(
        env, env.default_params, (0.5, -0.5), np.tile([[1.0, 1.0]], (8, 1)).astype(np.float32)
    )
    assert xs[-1, 0] == np.float32(1.0) and xs[-1, 1] > 0.5


def test_maze_blocks_match_the_grid():
    env = PointMaze.maze()
    x0, y0, x1, y1 = env.layout.bounds
    h, w = len(MAZE_GRID), len(MAZE_GRID[0])
    assert (x1 - x0, y1 - y0) == (w, h)
    for i, row in enumerate(MAZE_GRID):
        for j, ch in enumerate(row):
            cx, cy = x0 + j + 0.5, y1 - i - 0.5
            assert inside_walls(env.layout, cx, cy) == (ch == "#"), (i, j)
    s = env.layout.start
    assert MAZE_GRID[int(y1 - s[1])][int(s[0] - x0)] == "S"
    assert env.layout.goal is not None and env.is_free(env.layout.goal)


# ---------------------------------------------------------------------------------------------- layouts, registry
def test_registry_layouts_and_overrides():
    room, maze = envs.make("point-room"), envs.make("point-maze")
    assert isinstance(room, TimeLimit) and room.spec.id == "point-room" and maze.spec.id == "point-maze"
    for env in (room, maze):
        spec = env.spec
        assert spec.observation_space.shape == (2,) and spec.action_space.shape == (2,)
        np.testing.assert_array_equal(spec.action_space.high, [1.0, 1.0])
        assert spec.reward_names == ("reward",) and spec.max_episode_steps == 200
        assert env.default_params.max_step == pytest.approx(0.2)  # METRA's action_range
    assert room.unwrapped.layout.blocks == () and room.unwrapped.layout.bounds == (-10.0, -10.0, 10.0, 10.0)
    assert len(maze.unwrapped.layout.blocks) > 0
    small = envs.make("point-room", size=4.0, max_step=0.5, max_episode_steps=50)
    assert small.unwrapped.layout.bounds == (-2.0, -2.0, 2.0, 2.0)
    assert small.default_params.max_step == 0.5 and small.spec.max_episode_steps == 50
    custom = PointMaze(["#####", "#S.G#", "#####"])
    assert custom.layout.start == (-0.5, 0.5) and custom.layout.goal == (1.5, 0.5)
    assert isinstance(PointMaze().default_params, PointMazeParams)


def test_start_position_and_noise():
    maze = PointMaze.maze()
    obs, state = maze.reset(KEY)
    np.testing.assert_array_equal(obs, maze.layout.start)
    np.testing.assert_array_equal(PointMaze.room().reset(KEY)[0], [0.0, 0.0])
    noisy = PointMaze.room(start_noise=0.5, start_xy=(1.0, 2.0))
    starts = np.asarray(jax.vmap(lambda k: noisy.reset(k)[0])(jax.random.split(KEY, 512)))
    assert np.all(np.abs(starts - [1.0, 2.0]) <= 0.5) and starts.std(0).min() > 0.2
    # noise next to a wall puts the start on the wall's face, never inside
    walled = PointMaze(THIN, start_xy=(0.9, 0.0), start_noise=0.5)
    starts = np.asarray(jax.vmap(lambda k: walled.reset(k)[0])(jax.random.split(KEY, 256)))
    assert starts[:, 0].max() == pytest.approx(1.0 - 0.025)
    assert not any(inside_walls(THIN, x, y) for x, y in starts)


def test_info_xy_reward_and_termination():
    env = PointMaze.room()
    obs, state = env.reset(KEY)
    for a in ([1.0, -0.5], [0.3, 0.3]):
        new_obs, state, reward, terminated, truncated, info = env.step(KEY, state, jnp.array(a))
        np.testing.assert_allclose(new_obs - obs, np.array(a) * 0.2, atol=1e-6)
        assert info["xy"].dtype == jnp.float32 and info["xy"].shape == (2,)
        np.testing.assert_array_equal(info["xy"], new_obs)
        assert reward.shape == () and reward.dtype == jnp.float32 and float(reward) == 0.0
        assert not bool(terminated) and not bool(truncated)
        obs = new_obs
    # actions are clipped to [-1, 1] before scaling
    o2 = env.step(KEY, env.reset(KEY)[1], jnp.array([7.0, -7.0]))[0]
    np.testing.assert_allclose(o2, [0.2, -0.2])


def test_optional_goal_reward():
    env = PointMaze.room(goal_xy=(0.5, 0.0), goal_radius=0.15, goal_reward=1.0)
    _, state = env.reset(KEY)
    rewards, reached = [], []
    for _ in range(4):
        _, state, r, terminated, _, info = env.step(KEY, state, jnp.array([1.0, 0.0]))
        rewards.append(float(r))
        reached.append(bool(info["goal_reached"]))
        assert not bool(terminated)
    assert rewards == [0.0, 1.0, 1.0, 0.0] and reached == [False, True, True, False]


def test_determinism():
    env = PointMaze.maze(start_noise=0.3)
    actions = jax.random.uniform(jax.random.key(3), (30, 2), minval=-1, maxval=1)
    a = rollout_positions(env, env.default_params, env.layout.start, actions)
    b = rollout_positions(env, env.default_params, env.layout.start, actions)
    np.testing.assert_array_equal(a, b)
    k1, k2 = jax.random.split(KEY)
    np.testing.assert_array_equal(env.reset(k1)[0], env.reset(k1)[0])
    assert not np.array_equal(env.reset(k1)[0], env.reset(k2)[0])


@pytest.mark.parametrize("make", [PointMaze.room, PointMaze.maze])
def test_jit_vmap_autoreset_1024(make):
    env = AutoReset(TimeLimit(make(max_episode_steps=5)))
    n = 1024
    keys = jax.random.split(KEY, n)
    obs, state = jax.jit(jax.vmap(env.reset))(keys)
    step = jax.jit(jax.vmap(env.step))
    start = np.asarray(obs)
    for t in range(5):
        actions = jax.random.uniform(jax.random.fold_in(KEY, t), (n, 2), minval=-1, maxval=1)
        obs, state, reward, terminated, truncated, info = step(keys, state, actions)
        assert obs.shape == (n, 2) and obs.dtype == jnp.float32
        assert reward.shape == (n,) and reward.dtype == jnp.float32
        assert terminated.shape == (n,) and terminated.dtype == jnp.bool_ and not bool(terminated.any())
        assert info["xy"].shape == (n, 2) and info["xy"].dtype == jnp.float32
    assert bool(truncated.all())  # the fifth step ends every episode ...
    np.testing.assert_array_equal(obs, start)  # ... and AutoReset puts every point back at the start
    np.testing.assert_array_equal(info["final_obs"], info["xy"])


# ---------------------------------------------------------------------------------------------- pictures
def _pixel(canvas, x, y):
    col = int((x - canvas.xmin) / (canvas.xmax - canvas.xmin) * canvas.width)
    row = int((canvas.ymax - y) / (canvas.ymax - canvas.ymin) * canvas.height)
    return row, col


def test_render_shows_walls_and_the_agent_where_it_is():
    env = PointMaze.maze()
    c = env.canvas()
    _, state = env.reset(KEY)
    for xy in [(-0.5, -0.5), (3.5, 1.5), (-4.5, 3.5)]:
        state = state.replace(xy=jnp.asarray(xy, jnp.float32))
        img = np.asarray(jax.jit(env.render)(state))
        assert img.shape == (256, 256, 3) and img.dtype == np.uint8
        red = (img[..., 0] > 150) & (img[..., 1] < 80) & (img[..., 2] < 80)
        rows, cols = np.nonzero(red)
        assert abs(rows.mean() - _pixel(c, *xy)[0]) <= 1.5 and abs(cols.mean() - _pixel(c, *xy)[1]) <= 1.5
    wall = img[_pixel(c, -4.5, 4.5)]  # the top-left border cell is a wall
    free = img[_pixel(c, -3.5, 3.5)]
    assert wall.max() < 100 and free.min() > 200


def test_render_trajectories():
    env = PointMaze.room(size=4.0)
    c = env.canvas()
    xys = jnp.array([[[0.0, 0.0], [1.5, 0.0]], [[0.0, 0.0], [0.0, -1.5]]])
    colors = jnp.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    img = np.asarray(jax.jit(env.render_trajectories)(xys, colors))
    assert img.shape == (256, 256, 3) and img.dtype == np.uint8
    np.testing.assert_array_equal(img[_pixel(c, 0.75, 0.0)], [255, 0, 0])
    np.testing.assert_array_equal(img[_pixel(c, 0.0, -0.75)], [0, 0, 255])
    np.testing.assert_array_equal(img[_pixel(c, -1.0, 1.0)], [255, 255, 255])
    one = np.asarray(env.render_trajectories(xys[0]))  # [T, 2] and default colours work too
    assert one.shape == (256, 256, 3) and (one[_pixel(c, 0.75, 0.0)] != 255).any()


# ---------------------------------------------------------------------------------------------- bad inputs
def test_bad_inputs_raise():
    env = PointMaze.room()
    _, state = env.reset(KEY)
    for bad in (jnp.zeros(3), jnp.zeros((1, 2)), jnp.zeros(())):
        with pytest.raises(ValueError, match="shape"):
            env.step(KEY, state, bad)
    with pytest.raises(ValueError, match="unknown layout"):
        PointMaze("helix")
    with pytest.raises(ValueError, match="inside a wall"):
        PointMaze.maze(start_xy=(-4.5, 3.5))
    with pytest.raises(ValueError, match="min < max"):
        Layout("flat", (0, 0, 1, 1), ((0.5, 0.0, 0.5, 1.0),))
    with pytest.raises(ValueError, match="no param 'max_steps'"):
        PointMaze.room(max_steps=3)
    with pytest.raises(ValueError, match="shape"):
        env.render_trajectories(jnp.zeros((2, 5, 3)))
