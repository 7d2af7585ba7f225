"""Procedural image sources: geometric shapes and periodic textures (28x28, uint8).

Two domains far from characters, drawn from seeded parameters with vectorised
NumPy (one array operation per class, no Python loop over images):

* **shapes** -- a white shape on black: circle, square, triangle, star,
  cross, hexagon, ellipse, ring; random size, position and rotation, filled or
  a thick outline (circle always filled, ring always an outline, so the two
  stay distinct). Rendered on a 56x56 grid and reduced 2x2 by a box filter
  (anti-aliasing), then dimmed and given Gaussian noise.
* **textures** -- a full-frame pattern: horizontal, vertical and diagonal
  stripes, checkerboard, dots, grid, smooth noise blobs, concentric rings;
  random period (4 to 9 px), phase, orientation jitter (+-10 degrees),
  edge sharpness, contrast and Gaussian noise.

Polygon and star outlines use the polar boundary of a star polygon: the ray
at angle ``phi`` from the centre meets the edge from the tip ``P1 = (R, 0)``
to the notch ``P2 = rho R (cos(pi/n), sin(pi/n))`` at
``r(phi) = (P1 x P2) / (d(phi) x (P2 - P1))`` (2-D cross products), with
``phi`` folded into ``[0, pi/n]``; ``rho = cos(pi/n)`` gives the regular
``n``-gon. Smooth noise is white noise low-pass filtered in the Fourier domain
by the Gaussian transfer function ``exp(-2 pi^2 l^2 |f|^2)`` (length scale
``l``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from transferlab._validation import check_int
from transferlab.data._task import Task, _check_generated_size

__all__ = ["SHAPE_CLASSES", "TEXTURE_CLASSES", "load_shapes", "load_textures"]

SHAPE_CLASSES: tuple[str, ...] = (
    "circle", "square", "triangle", "star", "cross", "hexagon", "ellipse", "ring",
)  # fmt: skip
TEXTURE_CLASSES: tuple[str, ...] = (
    "horizontal stripes", "vertical stripes", "diagonal stripes", "checkerboard",
    "dots", "grid", "blobs", "rings",
)  # fmt: skip

_SIDE = 28
_SUPER = 2  # supersampling factor of the shapes


def load_shapes(*, n_train_per_class: int = 200, n_test_per_class: int = 50, seed: int = 0) -> Task:
    """Geometric shapes, eight classes (:data:`SHAPE_CLASSES`).

    Parameters
    ----------
    n_train_per_class, n_test_per_class : int, default 200 and 50
        Images per class in each split.
    seed : int, default 0
        Train and test come from two independent streams spawned from
        ``numpy.random.SeedSequence(seed)``.

    Returns
    -------
    Task
        Images ``uint8`` of shape ``(8 * n, 1, 28, 28)`` in shuffled order,
        labels ``int64`` in ``0..7``.

    Examples
    --------
    >>> load_shapes(n_train_per_class=2, n_test_per_class=1).x_train.shape
    (16, 1, 28, 28)
    """
    return _load("shapes", SHAPE_CLASSES, _shape_batch, n_train_per_class, n_test_per_class, seed)


def load_textures(*, n_train_per_class: int = 200, n_test_per_class: int = 50, seed: int = 0) -> Task:
    """Periodic and noise textures, eight classes (:data:`TEXTURE_CLASSES`).

    Parameters
    ----------
    n_train_per_class, n_test_per_class : int, default 200 and 50
        Images per class in each split.
    seed : int, default 0
        Train and test come from two independent streams spawned from
        ``numpy.random.SeedSequence(seed)``.

    Returns
    -------
    Task
        Images ``uint8`` of shape ``(8 * n, 1, 28, 28)`` in shuffled order,
        labels ``int64`` in ``0..7``.

    Examples
    --------
    >>> load_textures(n_train_per_class=2, n_test_per_class=1).y_test.shape
    (8,)
    """
    return _load("textures", TEXTURE_CLASSES, _texture_batch, n_train_per_class, n_test_per_class, seed)


_Batch = Callable[[int, int, np.random.Generator], np.ndarray]


def _load(source: str, classes: tuple[str, ...], batch: _Batch, n_train: object, n_test: object, seed: object) -> Task:
    n_train = check_int(n_train, "n_train_per_class", 1)
    n_test = check_int(n_test, "n_test_per_class", 1)
    seed = check_int(seed, "seed", 0)
    _check_generated_size(source, len(classes), n_train, n_test)
    rngs = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2)]
    splits = [_split(len(classes), n, batch, rng) for n, rng in zip((n_train, n_test), rngs, strict=True)]
    recipe = {"source": source, "n_train_per_class": n_train, "n_test_per_class": n_test, "seed": seed}
    return Task(
        name=source,
        x_train=splits[0][0],
        y_train=splits[0][1],
        x_test=splits[1][0],
        y_test=splits[1][1],
        class_names=classes,
        recipe=recipe,
    )


def _split(n_classes: int, n_per_class: int, batch: _Batch, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    labels = rng.permutation(np.repeat(np.arange(n_classes, dtype=np.int64), n_per_class))
    images = np.empty((labels.size, _SIDE, _SIDE), dtype=np.float64)
    for c in range(n_classes):
        idx = np.flatnonzero(labels == c)
        images[idx] = batch(c, idx.size, rng)
    pixels = np.clip(np.rint(images * 255.0), 0, 255).astype(np.uint8)
    return pixels[:, None, :, :], labels


def _col(values: np.ndarray) -> np.ndarray:
    """``(m,)`` -> ``(m, 1, 1)`` for broadcasting against ``(m, H, W)``."""
    return values[:, None, None]


# --------------------------------------------------------------------- shapes


def _shape_batch(c: int, m: int, rng: np.random.Generator) -> np.ndarray:
    """``m`` images of shape class ``c``, floats in [0, 1] of shape ``(m, 28, 28)``."""
    n_fine = _SIDE * _SUPER
    axis = (np.arange(n_fine) + 0.5) / n_fine * 2.0 - 1.0  # pixel centres in [-1, 1]
    radius = rng.uniform(0.45, 0.8, size=m)
    slack = np.maximum(0.95 - radius, 0.0)
    cx, cy = (rng.uniform(-1.0, 1.0, size=(2, m)) * np.minimum(slack, 0.25)).reshape(2, m)
    theta = rng.uniform(0.0, 2.0 * np.pi, size=m)
    filled = rng.random(m) < 0.5
    thickness = rng.uniform(0.12, 0.22, size=m)
    aspect = rng.uniform(0.35, 0.55, size=m)
    brightness = rng.uniform(0.6, 1.0, size=m)
    noise_sd = rng.uniform(0.01, 0.06, size=m)

    dx = axis[None, None, :] - _col(cx)
    dy = axis[None, :, None] - _col(cy)
    cos, sin = _col(np.cos(theta)), _col(np.sin(theta))
    u, v = cos * dx + sin * dy, -sin * dx + cos * dy
    R, t = _col(radius), _col(thickness)
    name = SHAPE_CLASSES[c]
    if name == "circle":
        mask = np.hypot(u, v) < R
    elif name == "ring":
        r = np.hypot(u, v)
        mask = (r < R) & (r > R - t)
    elif name == "ellipse":
        a, b = R, R * _col(aspect)
        outer = (u / a) ** 2 + (v / b) ** 2 < 1.0
        ai, bi = np.maximum(a - t, 1e-3), np.maximum(b - t, 1e-3)
        mask = _outline(outer, (u / ai) ** 2 + (v / bi) ** 2 < 1.0, filled)
    elif name == "cross":
        w = 0.3 * R
        outer = _plus(u, v, w, R)
        solid = filled | (0.3 * radius - thickness / 2 < 0.04)  # arms too thin to hollow
        mask = _outline(outer, _plus(u, v, w - t / 2, R - t / 2), solid)
    else:
        n_points, inner = {"square": (4, None), "triangle": (3, None), "hexagon": (6, None), "star": (5, 0.45)}[name]
        rho = np.cos(np.pi / n_points) if inner is None else inner
        r, boundary = np.hypot(u, v), _star_radius(np.arctan2(v, u), n_points, rho)
        outer = r < R * boundary
        # Shrink so that the inradius drops by about the stroke thickness.
        k = np.clip(1.0 - t / (R * rho), 0.2, 1.0)
        mask = _outline(outer, r < k * R * boundary, filled)
    fine = mask.astype(np.float64)
    coarse = fine.reshape(m, _SIDE, _SUPER, _SIDE, _SUPER).mean(axis=(2, 4))
    return coarse * _col(brightness) + rng.standard_normal(coarse.shape) * _col(noise_sd)


def _outline(outer: np.ndarray, inner: np.ndarray, filled: np.ndarray) -> np.ndarray:
    return np.where(_col(filled), outer, outer & ~inner)


def _plus(u: np.ndarray, v: np.ndarray, w: np.ndarray, arm: np.ndarray) -> np.ndarray:
    au, av = np.abs(u), np.abs(v)
    return ((au < w) & (av < arm)) | ((av < w) & (au < arm))


def _star_radius(phi: np.ndarray, n_points: int, rho: float) -> np.ndarray:
    """Boundary radius (for unit tip radius) of an ``n``-point star with notch ratio ``rho``."""
    sector = 2.0 * np.pi / n_points
    psi = np.mod(phi, sector)
    psi = np.minimum(psi, sector - psi)  # fold into [0, pi/n]
    p2x, p2y = rho * np.cos(sector / 2), rho * np.sin(sector / 2)
    cross_p1p2 = p2y  # (1, 0) x (p2x, p2y)
    dx, dy = p2x - 1.0, p2y
    return cross_p1p2 / (np.cos(psi) * dy - np.sin(psi) * dx)


# ------------------------------------------------------------------- textures


def _texture_batch(c: int, m: int, rng: np.random.Generator) -> np.ndarray:
    """``m`` images of texture class ``c``, floats in [0, 1] of shape ``(m, 28, 28)``."""
    axis = np.arange(_SIDE) - (_SIDE - 1) / 2.0
    x, y = axis[None, None, :], axis[None, :, None]
    period = _col(rng.uniform(4.0, 9.0, size=m))
    phase = rng.uniform(0.0, 2.0 * np.pi, size=(2, m))
    jitter = np.deg2rad(rng.uniform(-10.0, 10.0, size=m))
    sharp = _col(rng.uniform(0.5, 4.0, size=m))
    contrast = rng.uniform(0.5, 1.0, size=m)
    noise_sd = rng.uniform(0.01, 0.06, size=m)
    k = 2.0 * np.pi / period

    def along(angle: np.ndarray) -> np.ndarray:
        return _col(np.cos(angle)) * x + _col(np.sin(angle)) * y

    def wave(arg: np.ndarray) -> np.ndarray:
        return np.tanh(sharp * np.sin(arg)) / np.tanh(sharp)

    name = TEXTURE_CLASSES[c]
    if name == "horizontal stripes":
        pattern = wave(k * along(np.pi / 2 + jitter) + _col(phase[0]))
    elif name == "vertical stripes":
        pattern = wave(k * along(jitter) + _col(phase[0]))
    elif name == "diagonal stripes":
        sign = np.where(rng.random(m) < 0.5, 1.0, -1.0)
        pattern = wave(k * along(sign * np.pi / 4 + jitter) + _col(phase[0]))
    elif name == "checkerboard":
        s1, s2 = along(jitter), along(np.pi / 2 + jitter)
        pattern = wave(k * s1 + _col(phase[0])) * wave(k * s2 + _col(phase[1]))
    elif name in ("dots", "grid"):
        f1 = np.mod(along(jitter) / period + _col(phase[0]) / (2 * np.pi), 1.0) - 0.5
        f2 = np.mod(along(np.pi / 2 + jitter) / period + _col(phase[1]) / (2 * np.pi), 1.0) - 0.5
        if name == "dots":
            dist = np.hypot(f1, f2) * period
            size = _col(rng.uniform(0.2, 0.32, size=m)) * period
        else:
            dist = np.minimum(np.abs(f1), np.abs(f2)) * period
            size = _col(rng.uniform(0.5, 1.0, size=m))
        pattern = np.tanh(sharp * (size - dist))
    elif name == "blobs":
        pattern = np.clip(_smooth_noise(m, rng) / 1.5, -1.0, 1.0)
    else:  # rings
        centre = rng.uniform(-6.0, 6.0, size=(2, m))
        r = np.hypot(x - _col(centre[0]), y - _col(centre[1]))
        pattern = wave(k * r + _col(phase[0]))
    image = 0.5 + 0.5 * _col(contrast) * pattern
    return image + rng.standard_normal(image.shape) * _col(noise_sd)


def _smooth_noise(m: int, rng: np.random.Generator) -> np.ndarray:
    """White noise low-passed by a Gaussian of length 1.5-3.5 px, unit variance per image."""
    length = _col(rng.uniform(1.5, 3.5, size=m))
    white = rng.standard_normal((m, _SIDE, _SIDE))
    freq = np.fft.fftfreq(_SIDE)
    f2 = freq[None, :, None] ** 2 + freq[None, None, :] ** 2
    smooth = np.fft.ifft2(np.fft.fft2(white) * np.exp(-2.0 * np.pi**2 * length**2 * f2)).real
    smooth -= smooth.mean(axis=(1, 2), keepdims=True)
    return smooth / np.maximum(smooth.std(axis=(1, 2), keepdims=True), 1e-12)
