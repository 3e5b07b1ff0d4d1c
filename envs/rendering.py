"""Pure-JAX rasterization of simple 2-D scenes into RGB pictures.

Every JAX-native env renders with these primitives, so ``render`` is itself a pure function of the env state:
``jax.vmap(env.render)`` turns a batch of states (or a whole scanned trajectory) into video frames on the device,
with no host round-trip per frame. Shapes are drawn as signed-distance masks with one pixel of anti-aliasing.

A ``Canvas`` maps world coordinates (x right, y up) to pixels (row 0 at the top). Colours are floats in [0, 1].
Deliberately not here: text, textures, 3-D; use Gymnasium's renderers for MuJoCo envs.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax.numpy as jnp


@dataclass(frozen=True)
class Canvas:
    """A ``height × width`` picture of the world rectangle ``[xmin, xmax] × [ymin, ymax]``."""

    xmin: float
    xmax: float
    ymin: float
    ymax: float
    width: int = 256
    height: int = 256

    @property
    def pixel_size(self) -> float:
        return (self.xmax - self.xmin) / self.width

    def grid(self) -> tuple[jnp.ndarray, jnp.ndarray]:
        """World coordinates of every pixel centre, each ``float32[H, W]``."""
        xs = (
            self.xmin
            + (jnp.arange(self.width, dtype=jnp.float32) + 0.5) * (self.xmax - self.xmin) / self.width
        )
        ys = (
            self.ymax
            - (jnp.arange(self.height, dtype=jnp.float32) + 0.5) * (self.ymax - self.ymin) / self.height
        )
        return jnp.meshgrid(xs, ys)

    def blank(self, color=(1.0, 1.0, 1.0)) -> jnp.ndarray:
        return jnp.broadcast_to(jnp.asarray(color, jnp.float32), (self.height, self.width, 3))

    def _coverage(self, signed_distance: jnp.ndarray) -> jnp.ndarray:
        return jnp.clip(0.5 - signed_distance / self.pixel_size, 0.0, 1.0)[..., None]

    def paint(self, image: jnp.ndarray, signed_distance: jnp.ndarray, color) -> jnp.ndarray:
        """Blend ``color`` where ``signed_distance < 0`` (inside the shape)."""
        a = self._coverage(signed_distance)
        return image * (1 - a) + a * jnp.asarray(color, jnp.float32)

    def circle(self, image, center, radius, color):
        x, y = self.grid()
        d = jnp.sqrt((x - center[0]) ** 2 + (y - center[1]) ** 2) - radius
        return self.paint(image, d, color)

    def rectangle(self, image, center, half_extent, color, angle=0.0):
        """A (rotated) rectangle of half sizes ``half_extent = (hx, hy)``."""
        x, y = self.grid()
        c, s = jnp.cos(angle), jnp.sin(angle)
        dx, dy = x - center[0], y - center[1]
        lx, ly = c * dx + s * dy, -s * dx + c * dy
        qx, qy = jnp.abs(lx) - half_extent[0], jnp.abs(ly) - half_extent[1]
        outside = jnp.sqrt(jnp.maximum(qx, 0) ** 2 + jnp.maximum(qy, 0) ** 2)
        d = outside + jnp.minimum(jnp.maximum(qx, qy), 0.0)
        return self.paint(image, d, color)

    def segment(self, image, start, end, width, color):
        """A line from ``start`` to ``end`` of total thickness ``width`` (world units)."""
        x, y = self.grid()
        ax, ay = start[0], start[1]
        bx, by = end[0], end[1]
        px, py, vx, vy = x - ax, y - ay, bx - ax, by - ay
        t = jnp.clip((px * vx + py * vy) / jnp.maximum(vx * vx + vy * vy, 1e-12), 0.0, 1.0)
        d = jnp.sqrt((px - t * vx) ** 2 + (py - t * vy) ** 2) - width / 2
        return self.paint(image, d, color)

    @staticmethod
    def to_uint8(image: jnp.ndarray) -> jnp.ndarray:
        return jnp.round(jnp.clip(image, 0.0, 1.0) * 255).astype(jnp.uint8)
