"""`sprites`: binary images of shapes with known factors, in the spirit of dSprites,
rendered from code so that nothing is downloaded.

Every combination of the factors is one image (the full grid, in a fixed order, with
no randomness): 3 shapes (square, ellipse, heart) x 6 scales x 10 rotations x 8 x 8
positions = 11,520 images of 1x32x32 pixels. A pixel is on when its centre lies inside
the shape, moved to the image frame by scale, rotation (about the shape's centre) and
position: plain float64 arithmetic, so the images are the same on every machine and a
user can regenerate them bit for bit (`SPRITES_ARGS` pins the grid; tests hash a slice).
Rendering takes a few seconds; the result is cached as .npz under `cache_dir()`, its name
hashing the arguments and the renderer's version.

Columns: `image` (1x32x32, 0 or 1), `label` (the shape, 0..2), and the factors `scale`,
`rotation` (radians), `x` and `y` (the centre, in pixels) for metrics and pictures.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import zipfile
from typing import TYPE_CHECKING

from ..core.files import atomic
from .base import cache_dir

if TYPE_CHECKING:
    import numpy as np

SPRITES_VERSION = 1
"""Bumped whenever the renderer changes what it draws (the cache key includes it)."""
SPRITES_ARGS: dict[str, object] = {
    "size": 32, "shapes": ["square", "ellipse", "heart"], "scales": [0.5, 0.6, 0.7, 0.8, 0.9, 1.0],
    "rotations": 10, "positions": 8, "extent": 6.0, "margin": 8.0,
}
"""The factor grid: image side, shapes, scales (times `extent` pixels: the shape's
half-width), rotations evenly over one turn, positions evenly over [margin, size -
margin] on each axis."""


def _inside(shape: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Whether the point (u, v) of the shape's own frame (half-width 1, y up) is inside."""
    if shape == "square":
        return (abs(u) <= 0.8) & (abs(v) <= 0.8)
    if shape == "ellipse":
        return (u / 1.0) ** 2 + (v / 0.5) ** 2 <= 1.0
    if shape == "heart":  # (x^2 + y^2 - 1)^3 - x^2 y^3 <= 0, shrunk to half-width 1
        x, y = u * 1.1, v * 1.1 + 0.1
        return (x * x + y * y - 1.0) ** 3 - x * x * y ** 3 <= 0.0
    raise ValueError(f"unknown shape {shape!r}")


def render_sprites(args: dict[str, object] = SPRITES_ARGS) -> dict[str, np.ndarray]:
    """The full factor grid, shape-major then scale, rotation, x, y."""
    import numpy as np

    size, extent, margin = int(args["size"]), float(args["extent"]), float(args["margin"])
    steps = int(args["positions"])
    positions = margin + (size - 2 * margin) * np.arange(steps) / (steps - 1)
    rotations = 2 * np.pi * np.arange(int(args["rotations"])) / int(args["rotations"])
    scales = np.asarray(args["scales"], dtype=np.float64)
    centres = np.arange(size, dtype=np.float64) + 0.5
    py, px = np.meshgrid(centres, centres, indexing="ij")
    images, factors = [], []
    for label, shape in enumerate(args["shapes"]):
        for scale in scales:
            for angle in rotations:
                cos, sin = np.cos(angle), np.sin(angle)
                for x in positions:
                    for y in positions:
                        dx, dy = (px - x) / (scale * extent), (y - py) / (scale * extent)
                        u, v = cos * dx + sin * dy, -sin * dx + cos * dy  # rotate the point back
                        images.append(_inside(shape, u, v))
                        factors.append((label, scale, angle, x, y))
    table = np.asarray(factors, dtype=np.float64)
    return {"image": np.stack(images).astype(np.uint8).reshape(len(images), 1, size, size),
            "label": table[:, 0].astype(np.int64), "scale": table[:, [1]], "rotation": table[:, [2]],
            "x": table[:, [3]], "y": table[:, [4]]}


def sprites() -> dict[str, np.ndarray]:
    """The rendered grid, from the cache when it holds this version's."""
    import numpy as np

    key = json.dumps({"version": SPRITES_VERSION, **SPRITES_ARGS}, sort_keys=True)
    path = cache_dir() / f"sprites-{hashlib.sha256(key.encode()).hexdigest()[:16]}.npz"
    names = ("image", "label", "scale", "rotation", "x", "y")
    with contextlib.suppress(OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile), np.load(path) as cached:
        return {name: cached[name] for name in names}
    arrays = render_sprites()
    with contextlib.suppress(OSError), atomic(path) as temporary, temporary.open("wb") as file:
        np.savez_compressed(file, **arrays)  # an unwritable cache costs time, not the run
    return arrays
