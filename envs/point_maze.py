"""A 2-D point that moves in a room or a maze with walls: the navigation testbed of skill-discovery papers.

What it is for: METRA / LSD / DIAYN / DADS style unsupervised skill discovery, where the state *is* the x-y
position, so state coverage (``info["xy"]``, e.g. the number of distinct ``floor(x, y)`` cells visited) and
trajectory pictures (``render_trajectories``) are the metrics; and later goal-conditioned / hierarchical agents on
a maze (an optional sparse goal reward).

Reference: METRA's point env (``seohongpark/METRA``, ``envs/maze_env.py`` with ``tests/main.py``): observation
(x, y) starting at the origin; ``state += action`` with actions in ``[-0.2, 0.2]²`` (the policy's ``[-1, 1]²`` is
rescaled affinely and clipped by garage's ``consistent_normalize``); episodes of ``--max_path_length 200`` steps.
Here the action box is ``[-1, 1]²`` scaled by ``params.max_step`` (default 0.2), so the same policy outputs give the
same motion, and ``max_episode_steps`` defaults to 200.

Differences from METRA, on purpose:
- METRA's env has no walls and an unbounded plane. Here every layout has an outer boundary and may have interior
  walls (axis-aligned blocks): ``PointMaze.room`` is an empty walled square (side 20 by default, so a straight
  200-step skill of length 40 does reach a wall), ``PointMaze.maze`` a small corridor maze of unit cells.
- METRA's task reward is the x displacement; skill discovery ignores it. Here the single reward term
  ``"reward"`` is 0 unless ``params.goal_reward`` is set, in which case it is ``goal_reward`` on every step the
  point is within ``goal_radius`` of ``goal_xy`` (sparse; never terminates).

Motion against walls: the displacement is applied along x, then along y (a point of radius ``agent_radius``
against blocks inflated by that radius). Each leg is a swept test, so no step, however large, passes through a
wall, however thin; a leg that would enter a wall stops on its face, and the other leg still moves, so the point
slides along walls instead of sticking. Walls are the union of the blocks: seams where blocks touch are inside
the wall (see ``_sweep_axis``). The price of the x-then-y split is that a diagonal step
follows an L-shaped path: it never enters a wall, but near a corner the straight segment between two successive
positions may clip the corner's tip.

Deliberately not here: velocities / inertia (METRA's point has none), a MuJoCo point mass (use the Gymnasium
bridge to gymnasium-robotics' PointMaze for that), walls that are not axis-aligned, and any task reward other than
the optional goal bonus.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from envs.core import Environment, EnvParams, EnvSpec
from envs.rendering import Canvas
from envs.spaces import Box

Rect = tuple[float, float, float, float]  # (xmin, ymin, xmax, ymax)


# ================================================================================================ layouts
@dataclass(frozen=True)
class Layout:
    """Static geometry: the outer boundary, the interior walls (axis-aligned blocks), a start and a goal.

    Blocks must have positive width and height (a point lying on a zero-thickness wall could not tell which side
    it came from); make a thin wall from a segment with ``Layout.wall``. Blocks may touch or overlap.
    """

    name: str
    bounds: Rect
    blocks: tuple[Rect, ...] = ()
    start: tuple[float, float] = (0.0, 0.0)
    goal: tuple[float, float] | None = None
    free: tuple[
        Rect, ...
    ] = ()  # the free cells of a grid layout (goals are drawn from them); () = the bounds

    def __post_init__(self):
        xmin, ymin, xmax, ymax = (float(v) for v in self.bounds)
        if not (xmin < xmax and ymin < ymax):
            raise ValueError(
                f"Layout {self.name!r}: bounds must be (xmin, ymin, xmax, ymax) with min < max, got {self.bounds}"
            )
        blocks = tuple(tuple(float(v) for v in b) for b in self.blocks)
        for b in blocks:
            if len(b) != 4 or not (b[0] < b[2] and b[1] < b[3]):
                raise ValueError(
                    f"Layout {self.name!r}: a block must be (xmin, ymin, xmax, ymax) with min < max, got {b} "
                    "(make a thin wall with Layout.wall)"
                )
        object.__setattr__(self, "bounds", (xmin, ymin, xmax, ymax))
        object.__setattr__(self, "blocks", blocks)
        object.__setattr__(self, "free", tuple(tuple(float(v) for v in r) for r in self.free))
        object.__setattr__(self, "start", (float(self.start[0]), float(self.start[1])))
        if self.goal is not None:
            object.__setattr__(self, "goal", (float(self.goal[0]), float(self.goal[1])))

    @staticmethod
    def wall(start: tuple[float, float], end: tuple[float, float], thickness: float = 0.1) -> Rect:
        """The block of an axis-aligned wall segment from ``start`` to ``end``, ``thickness`` wide."""
        (x0, y0), (x1, y1) = start, end
        if x0 != x1 and y0 != y1:
            raise ValueError(f"Layout.wall: walls are axis-aligned, got {start} -> {end}")
        h = thickness / 2
        return (min(x0, x1) - h, min(y0, y1) - h, max(x0, x1) + h, max(y0, y1) + h)

    @classmethod
    def room(cls, size: float = 20.0) -> Layout:
        """An empty square room of side ``size`` centred on the origin; start at the centre."""
        h = float(size) / 2
        return cls("room", (-h, -h, h, h), (), (0.0, 0.0), None)

    @classmethod
    def from_grid(cls, rows: Sequence[str], cell_size: float = 1.0, name: str = "custom") -> Layout:
        """A layout from a character grid: ``#`` wall, ``S`` start, ``G`` goal, anything else free.

        The grid's first row is the top. Cell edges lie on multiples of ``cell_size`` and the grid is centred on
        the origin up to a whole cell, so with ``cell_size = 1`` METRA's ``floor(x, y)`` coverage cells are the
        maze's cells. Runs of ``#`` in a row become one block (fewer blocks, cheaper steps). The start is the
        centre of the ``S`` cell (default: the first free cell); the goal that of the ``G`` cell (default: none).
        """
        rows = [str(r) for r in rows]
        height, width = len(rows), max((len(r) for r in rows), default=0)
        if height == 0 or width == 0:
            raise ValueError("Layout.from_grid: the grid is empty")
        rows = [r.ljust(width) for r in rows]
        c = float(cell_size)
        x0, y0 = -(width // 2) * c, -(height // 2) * c

        def cell_rect(i: int, j0: int, j1: int) -> Rect:  # row i (0 = top), columns j0..j1-1
            top = y0 + (height - i) * c
            return (x0 + j0 * c, top - c, x0 + j1 * c, top)

        blocks, start, goal, free, cells = [], None, None, None, []
        for i, row in enumerate(rows):
            j = 0
            while j < width:
                if row[j] == "#":
                    k = j
                    while k < width and row[k] == "#":
                        k += 1
                    blocks.append(cell_rect(i, j, k))
                    j = k
                    continue
                r = cell_rect(i, j, j + 1)
                cells.append(r)
                centre = ((r[0] + r[2]) / 2, (r[1] + r[3]) / 2)
                free = free or centre
                if row[j] == "S":
                    start = centre
                elif row[j] == "G":
                    goal = centre
                j += 1
        if free is None:
            raise ValueError("Layout.from_grid: the grid has no free cell")
        bounds = (x0, y0, x0 + width * c, y0 + height * c)
        return cls(name, bounds, tuple(blocks), start or free, goal, tuple(cells))


# A small corridor maze (11 × 9 unit cells): from the centre start, branches lead to dead ends in every direction,
# so a skill-discovery agent must learn to turn corners to cover it. Cells are 1 × 1: a corridor takes 5 steps of
# the default 0.2 to cross, and the longest shortest path from S is ~16 cells (80 steps).
MAZE_GRID = (
    "###########",
    "#...#....G#",
    "#.#.#.###.#",
    "#.#...#...#",
    "#.#####.#.#",
    "#...S...#.#",
    "#.###.###.#",
    "#...#.....#",
    "###########",
)

# The 11 × 11 spiral of single-goal contrastive RL (``graliuce/sgcrl``, ``point_env.py``, ``Spiral11x11``, with
# its fixed start (5, 5) and goal (10, 10) in (row, column) cells): a one-cell-wide corridor winds from the centre
# out to the far corner, ~54 cells long, so reaching the goal needs sustained exploration. sgcrl moves the point
# up to 1 per step in 100-step episodes: ``PointMaze.spiral`` sets max_step 1.0 and 100 steps to match.
SPIRAL_GRID = (
    "###########",
    "#..........",
    "#.########.",
    "#.#......#.",
    "#.#.####.#.",
    "#.#.#S.#.#.",
    "#.#.##.#.#.",
    "#.#....#.#.",
    "#.######.#.",
    "#........#.",
    "##########G",
)

LAYOUTS = {
    "room": Layout.room,
    "maze": lambda: Layout.from_grid(MAZE_GRID, 1.0, "maze"),
    "spiral": lambda: Layout.from_grid(SPIRAL_GRID, 1.0, "spiral"),
}


# ================================================================================================ params, state
@struct.dataclass
class PointMazeParams(EnvParams):
    """Sweepable params. ``start_xy`` / ``goal_xy`` default to the layout's start and goal."""

    max_episode_steps: int = 200  # METRA's --max_path_length default
    max_step: float = 0.2  # action [-1, 1]² is scaled by this: METRA's action_range=0.2
    start_xy: Any = (0.0, 0.0)  # float32[2] (or a pair): where episodes start
    start_noise: float = 0.0  # start = start_xy + U[-start_noise, start_noise]² (moved there as a step would)
    agent_radius: float = 0.0  # collision radius of the point (METRA: 0)
    goal_xy: Any = (0.0, 0.0)  # float32[2]: centre of the optional goal
    goal_radius: float = 0.5
    goal_reward: float = 0.0  # reward on steps that end within goal_radius of goal_xy; 0 = no task reward


@struct.dataclass
class PointMazeState:
    xy: jax.Array  # float32[2]


# ================================================================================================ motion
def _sweep_axis(xy, delta, axis: int, lo, hi, bounds_lo, bounds_hi):
    """Move ``xy`` by ``delta`` along ``axis`` (0 = x, 1 = y), stopping where the leg would enter the walls.

    ``lo`` / ``hi``: ``float32[K, 2]`` corners of the (radius-inflated) blocks. The leg runs on the line
    ``other coordinate = q``. A point of that line is inside the walls when the walls cover it from *both* sides of
    the line: some block i with ``lo_i <= q < hi_i`` (covers just above) and some block j with ``lo_j < q <= hi_j``
    (just below), both spanning it along the leg. Testing pairs (i, j), not single blocks, matters: a point that
    slid along a face sits exactly on a line where two stacked blocks meet, and no single block holds that seam
    strictly inside, yet the seam is inside the wall. With i = j this is the plain "q strictly inside block i".
    The point is never inside the walls before the leg (the invariant), hence never after: the leg ends at most on
    the first face where the line enters them.
    """
    other = 1 - axis
    p0, q = xy[axis], xy[other]
    p1 = jnp.clip(p0 + delta, bounds_lo[axis], bounds_hi[axis])
    above = (lo[:, other] <= q) & (q < hi[:, other])  # [K]
    below = (lo[:, other] < q) & (q <= hi[:, other])
    pair = above[:, None] & below[None, :]  # [K, K]: i covers above, j covers below
    enter = jnp.maximum(lo[:, None, axis], lo[None, :, axis])  # where the line enters the pair's common span
    leave = jnp.minimum(hi[:, None, axis], hi[None, :, axis])
    pair = pair & (enter < leave)
    hit_up = pair & (p0 <= enter) & (p1 > enter)
    hit_down = pair & (p0 >= leave) & (p1 < leave)
    p1 = jnp.minimum(p1, jnp.min(jnp.where(hit_up, enter, jnp.inf), initial=jnp.inf))
    p1 = jnp.maximum(p1, jnp.max(jnp.where(hit_down, leave, -jnp.inf), initial=-jnp.inf))
    return xy.at[axis].set(p1)


# ================================================================================================ env
class PointMaze(Environment):
    """A point in a walled 2-D layout; obs = (x, y), action ∈ [-1, 1]² times ``max_step``; reward 0 by default.

    Constructor options (static): ``layout`` — ``"room"``, ``"maze"``, a ``Layout``, or a character grid
    (a sequence of strings, see ``Layout.from_grid``); ``**param_overrides`` for ``PointMazeParams``.
    ``info["xy"]`` is the position after the step (the next observation), ``info["goal_reached"]`` whether it is
    within ``goal_radius`` of ``goal_xy``.
    """

    params_cls = PointMazeParams

    def __init__(self, layout: str | Layout | Sequence[str] = "room", **param_overrides):
        if isinstance(layout, str):
            if layout not in LAYOUTS:
                raise ValueError(
                    f"PointMaze: unknown layout {layout!r}; known: {sorted(LAYOUTS)}, or pass a Layout"
                )
            layout = LAYOUTS[layout]()
        elif not isinstance(layout, Layout):
            layout = Layout.from_grid(layout)
        self.layout = layout
        param_overrides.setdefault("start_xy", layout.start)
        param_overrides.setdefault("goal_xy", layout.goal if layout.goal is not None else layout.start)
        super().__init__(**param_overrides)
        p = self.default_params
        start = np.asarray(p.start_xy, np.float32)
        if start.shape != (2,):
            raise ValueError(f"PointMaze: start_xy must be a pair (x, y), got {p.start_xy!r}")
        if not self.is_free(start, float(p.agent_radius)):
            raise ValueError(
                f"PointMaze: start_xy={tuple(start.tolist())} is inside a wall or outside the bounds "
                f"{layout.bounds} of layout {layout.name!r} (agent_radius={p.agent_radius})"
            )

    @classmethod
    def room(cls, size: float = 20.0, **param_overrides) -> PointMaze:
        """The empty square room of side ``size`` (registry id ``point-room``)."""
        return cls(Layout.room(size), **param_overrides)

    @classmethod
    def maze(cls, **param_overrides) -> PointMaze:
        """The corridor maze ``MAZE_GRID`` (registry id ``point-maze``)."""
        return cls("maze", **param_overrides)

    @classmethod
    def spiral(cls, **param_overrides) -> PointMaze:
        """sgcrl's spiral ``SPIRAL_GRID`` (registry id ``point-spiral``): max_step 1.0, 100-step episodes, a goal
        radius of 1 (sgcrl's success: distance < 1)."""
        for name, value in (("max_step", 1.0), ("max_episode_steps", 100), ("goal_radius", 1.0)):
            param_overrides.setdefault(name, value)
        return cls("spiral", **param_overrides)

    def sample_free(self, key: jax.Array) -> jax.Array:
        """A position ``float32[2]`` uniform over the layout's free cells (a cell uniformly, then a point
        uniformly inside it: sgcrl's ``_sample_empty_state``); uniform over the bounds for a layout without
        cells (the room). What goal-sampling agents draw their goals from."""
        cells = np.asarray(self.layout.free or (self.layout.bounds,), np.float32).reshape(-1, 4)
        k_cell, k_in = jax.random.split(key)
        cell = jnp.asarray(cells)[jax.random.randint(k_cell, (), 0, cells.shape[0])]
        u = jax.random.uniform(k_in, (2,), jnp.float32)
        return cell[:2] + u * (cell[2:] - cell[:2])

    @property
    def spec(self) -> EnvSpec:
        xmin, ymin, xmax, ymax = self.layout.bounds
        return EnvSpec(
            id=f"point-{self.layout.name}",
            observation_space=Box(np.array([xmin, ymin], np.float32), np.array([xmax, ymax], np.float32)),
            action_space=Box.uniform(-1.0, 1.0, (2,)),
            max_episode_steps=self.default_params.max_episode_steps,
        )

    # ------------------------------------------------------------------ geometry
    def _geometry(self, radius):
        """Blocks inflated by the agent radius (``float32[K, 2]`` lower / upper corners) and the shrunk bounds."""
        blocks = jnp.asarray(np.asarray(self.layout.blocks, np.float32).reshape(-1, 4))
        xmin, ymin, xmax, ymax = self.layout.bounds
        lo, hi = blocks[:, :2] - radius, blocks[:, 2:] + radius
        return lo, hi, jnp.array([xmin, ymin]) + radius, jnp.array([xmax, ymax]) - radius

    def move(self, xy: jax.Array, delta: jax.Array, params=None) -> jax.Array:
        """The position after trying to move ``xy`` by ``delta`` (x leg, then y leg; see the module docstring)."""
        params = self._check_params(params)
        lo, hi, blo, bhi = self._geometry(params.agent_radius)
        xy = jnp.asarray(xy, jnp.float32)
        xy = _sweep_axis(xy, delta[0], 0, lo, hi, blo, bhi)
        return _sweep_axis(xy, delta[1], 1, lo, hi, blo, bhi)

    def is_free(self, xy, radius: float = 0.0) -> bool:
        """Host-side: whether a point of ``radius`` at ``xy`` is inside the bounds and not inside the walls.

        Inside the walls = inside their union: the four points ``xy ± (ε, ε)`` are each strictly inside some
        (inflated) block, so a point on a seam between two blocks counts as inside, one on a face does not.
        """
        x, y = (float(v) for v in np.asarray(xy))
        xmin, ymin, xmax, ymax = self.layout.bounds
        if not (xmin + radius <= x <= xmax - radius and ymin + radius <= y <= ymax - radius):
            return False
        eps = 1e-6 * max(xmax - xmin, ymax - ymin)

        def covered(px, py):
            return any(
                b[0] - radius < px < b[2] + radius and b[1] - radius < py < b[3] + radius
                for b in self.layout.blocks
            )

        return not all(covered(x + sx * eps, y + sy * eps) for sx in (-1, 1) for sy in (-1, 1))

    # ------------------------------------------------------------------ protocol
    def _reset(self, key, params):
        start = jnp.asarray(params.start_xy, jnp.float32)
        noise = jax.random.uniform(key, (2,), minval=-1.0, maxval=1.0) * params.start_noise
        # Noise is applied as a move from the start, so a noisy start next to a wall lands on its face, not inside.
        xy = self.move(start, noise, params)
        return xy, PointMazeState(xy)

    def _step(self, key, state, action, params):
        delta = jnp.clip(action, -1.0, 1.0) * params.max_step
        xy = self.move(state.xy, delta, params)
        reached = jnp.linalg.norm(xy - jnp.asarray(params.goal_xy, jnp.float32)) <= params.goal_radius
        reward = jnp.where(reached, params.goal_reward, 0.0).astype(jnp.float32)
        false = jnp.zeros((), bool)
        info = {"xy": xy, "goal_reached": reached}
        return xy, PointMazeState(xy), reward, false, false, info

    # ------------------------------------------------------------------ pictures
    def canvas(self, size: int = 256) -> Canvas:
        """The square canvas every picture of this env uses: the bounds plus a 3 % margin."""
        xmin, ymin, xmax, ymax = self.layout.bounds
        cx, cy, half = (xmin + xmax) / 2, (ymin + ymax) / 2, max(xmax - xmin, ymax - ymin) / 2 * 1.03
        return Canvas(cx - half, cx + half, cy - half, cy + half, size, size)

    def _background(self, canvas: Canvas, params) -> jax.Array:
        xmin, ymin, xmax, ymax = self.layout.bounds
        # The walls and the outside of the bounds as one signed distance, painted once: painting blocks one by one
        # leaves anti-aliased seams where they touch. Inside a union, min of the blocks' distances is 0 (not < 0) on
        # a seam, so the union is grown by half a pixel, which makes seams solid and walls half a pixel fatter.
        b = np.asarray(self.layout.blocks + ((xmin, ymin, xmax, ymax),), np.float32)
        x, y = canvas.grid()
        cx, cy = (b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2
        qx = jnp.abs(x[..., None] - cx) - (b[:, 2] - b[:, 0]) / 2
        qy = jnp.abs(y[..., None] - cy) - (b[:, 3] - b[:, 1]) / 2
        d = jnp.sqrt(jnp.maximum(qx, 0) ** 2 + jnp.maximum(qy, 0) ** 2) + jnp.minimum(jnp.maximum(qx, qy), 0)
        walls = jnp.minimum(jnp.min(d[..., :-1], axis=-1, initial=jnp.inf), -d[..., -1])  # blocks ∪ outside
        img = canvas.paint(canvas.blank(), walls - canvas.pixel_size / 2, (0.25, 0.25, 0.3))
        # the goal, only when it pays (goal_reward != 0): a translucent green disk
        goal_alpha = jnp.where(params.goal_reward != 0, 0.5, 0.0)
        goal = canvas.circle(
            img, jnp.asarray(params.goal_xy, jnp.float32), params.goal_radius, (0.2, 0.75, 0.3)
        )
        return img * (1 - goal_alpha) + goal * goal_alpha

    def render(self, state, params=None, size: int = 256) -> jax.Array:
        """``uint8[size, size, 3]``: walls dark, free space white, the goal (if rewarded) green, the agent red."""
        params = self._check_params(params)
        c = self.canvas(size)
        img = self._background(c, params)
        radius = jnp.maximum(params.agent_radius, 3 * c.pixel_size)
        img = c.circle(img, state.xy, radius, (0.85, 0.1, 0.1))
        return c.to_uint8(img)

    def render_trajectories(self, xys, colors=None, params=None, size: int = 256, width: float | None = None):
        """Draw trajectories over the layout, as in skill-discovery figures; pure JAX (jit / vmap friendly).

        Args:
            xys: ``float[N, T, 2]`` positions (or ``[T, 2]`` for one), e.g. ``info["xy"]`` of a scanned rollout
                with the start prepended. Each is drawn as a polyline; its last point gets a dot.
            colors: ``float[N, 3]`` in [0, 1]; default evenly spaced hues (N skills around the colour wheel, as
                METRA colours 2-D skills by direction).
            width: line thickness in world units (default two pixels).

        Returns: ``uint8[size, size, 3]``.
        """
        params = self._check_params(params)
        c = self.canvas(size)
        xys = jnp.asarray(xys, jnp.float32)
        if xys.ndim == 2:
            xys = xys[None]
        if xys.ndim != 3 or xys.shape[-1] != 2:
            raise ValueError(f"render_trajectories: xys must have shape [N, T, 2] or [T, 2], got {xys.shape}")
        n = xys.shape[0]
        colors = hue_colors(n) if colors is None else jnp.asarray(colors, jnp.float32)
        if colors.shape != (n, 3):
            raise ValueError(f"render_trajectories: colors must have shape [{n}, 3], got {colors.shape}")
        width = 2 * c.pixel_size if width is None else width
        gx, gy = c.grid()

        def distance_to_polyline(
            xy,
        ):  # float32[H, W]: pixel distance to the nearest segment of one trajectory
            def seg(dmin, ab):
                a, b = ab
                px, py, vx, vy = gx - a[0], gy - a[1], b[0] - a[0], b[1] - a[1]
                t = jnp.clip((px * vx + py * vy) / jnp.maximum(vx * vx + vy * vy, 1e-12), 0.0, 1.0)
                return jnp.minimum(dmin, jnp.sqrt((px - t * vx) ** 2 + (py - t * vy) ** 2)), None

            starts = xy[:-1] if xy.shape[0] > 1 else xy
            ends = xy[1:] if xy.shape[0] > 1 else xy
            d, _ = jax.lax.scan(seg, jnp.full(gx.shape, jnp.inf), (starts, ends))
            return d

        img = self._background(c, params)
        for i in range(n):  # N is static and small (a figure's worth of skills)
            img = c.paint(img, distance_to_polyline(xys[i]) - width / 2, colors[i])
            img = c.circle(img, xys[i, -1], 2 * width, colors[i])
        return c.to_uint8(img)


def hue_colors(n: int) -> jax.Array:
    """``float32[n, 3]``: ``n`` saturated colours at evenly spaced hues (HSV with s = v = 0.9)."""
    h = jnp.arange(n, dtype=jnp.float32) / max(n, 1)
    k = (jnp.array([5.0, 3.0, 1.0]) + h[:, None] * 6) % 6
    return 0.9 - 0.9 * 0.9 * jnp.clip(jnp.minimum(k, 4 - k), 0.0, 1.0)
