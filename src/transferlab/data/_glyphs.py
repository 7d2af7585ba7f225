"""Printed characters rendered from TrueType fonts with seeded jitter: the "glyphs" source.

A printed-character domain of any size, always available offline: the fonts
are those matplotlib ships (``matplotlib/mpl-data/fonts/ttf``) plus any system
fonts that :func:`matplotlib.font_manager.findSystemFonts` finds. A font is
used for a charset only if its character map covers every character
(:meth:`matplotlib.ft2font.FT2Font.get_charmap`) and its glyphs render
non-empty and mostly distinct; symbol fonts (``cmex``, ``cmsy``, ``STIXSize*``,
``STIXNonUnicode``, ``LastResort``, dingbats, emoji) are skipped, and fonts
with the same family and style are kept once.

Each sample is made as in the MNIST preprocessing (LeCun et al., 1998: the
glyph normalised to a 20x20 box inside 28x28, anti-aliased): the glyph is
rendered once per (font, character, stroke) at 64 px, then mapped by one
affine transform (scale so its longer side is 0.6-0.85 of a 56x56 canvas,
rotation in +-15 degrees, translation within the free margin, at most 10% of
the side), reduced 2x2 by a box filter to 28x28, dimmed by a factor in
[0.8, 1] and given Gaussian noise of standard deviation in [0, 0.06] of the
range. White glyph on black.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from transferlab._validation import check_int
from transferlab.data._task import Task, _check_generated_size

__all__ = ["available_charsets", "glyph_fonts", "load_glyphs"]

_CHARSETS: dict[str, str] = {
    "digits": "0123456789",
    "latin-upper": "ABCDEFGHIJKLMNOPQRSTUVWXYZ",
    "latin-lower": "abcdefghijklmnopqrstuvwxyz",
    # U+0391..U+03A9 without the unassigned U+03A2.
    "greek-upper": "".join(chr(c) for c in range(0x0391, 0x03AA) if c != 0x03A2),
    # U+03B1..U+03C9 without final sigma U+03C2.
    "greek-lower": "".join(chr(c) for c in range(0x03B1, 0x03CA) if c != 0x03C2),
}
_ALIASES: dict[str, str] = {"greek": "greek-upper"}

_RENDER_SIZE = 64  # font size in px of the cached master glyphs
_CANVAS = 56  # render side before the 2x2 reduction
_SIDE = 28
_STROKES = (0, 1, 2)  # stroke widths at 64 px (0 to about 0.5 px at 28x28)
_SCALE_RANGE = (0.6, 0.85)  # longer glyph side / canvas side
_MAX_ANGLE = 15.0  # degrees
_MAX_SHIFT = 0.1  # of the canvas side
_DIM_RANGE = (0.8, 1.0)
_MAX_NOISE = 0.06  # standard deviation, share of 255
_SKIP = re.compile(
    r"^(cmex|cmsy|stixsiz|stixnonuni|lastresort)|symbol|dingbat|emoji|wingding|webding|awesome|icons",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class _Glyph:
    image: Image.Image  # tight crop, mode "L"
    side: int  # longer side in px


def available_charsets() -> tuple[str, ...]:
    """Names of the built-in charsets (``"greek"`` is also accepted, for ``"greek-upper"``)."""
    return tuple(_CHARSETS)


def glyph_fonts(charset: str = "latin-upper", fonts: str | Sequence[str] = "all") -> tuple[Path, ...]:
    """The font files that can render every character of ``charset``.

    Parameters
    ----------
    charset : str, default "latin-upper"
        One of :func:`available_charsets` or an alias.
    fonts : {"all", "matplotlib"} or sequence of str, default "all"
        Candidate fonts: matplotlib's and the system's, matplotlib's only (the
        same on every machine with the same matplotlib), or explicit files.

    Returns
    -------
    tuple of pathlib.Path
        Usable fonts sorted by file name; one per (family, style).
    """
    chars = _CHARSETS[_canonical_charset(charset)]
    return _usable_fonts(chars, _candidate_key(fonts))


def load_glyphs(
    charset: str = "latin-upper",
    *,
    n_train_per_class: int = 200,
    n_test_per_class: int = 50,
    seed: int = 0,
    fonts: str | Sequence[str] = "all",
) -> Task:
    """Render a printed-character task: one class per character of ``charset``.

    Parameters
    ----------
    charset : str, default "latin-upper"
        ``"digits"`` (0-9), ``"latin-upper"`` (A-Z), ``"latin-lower"`` (a-z),
        ``"greek-upper"`` (24 capitals; alias ``"greek"``) or ``"greek-lower"``
        (24 small letters, final sigma excluded). Some Greek capitals look like
        Latin ones (A and Alpha), which is intended.
    n_train_per_class, n_test_per_class : int, default 200 and 50
        Images per class in each split (balanced classes).
    seed : int, default 0
        Train and test are drawn from two independent streams spawned from
        ``numpy.random.SeedSequence(seed)``; same seed, same arrays.
    fonts : {"all", "matplotlib"} or sequence of str, default "all"
        Candidate fonts (see :func:`glyph_fonts`).

    Returns
    -------
    Task
        Images ``uint8`` of shape ``(C * n, 1, 28, 28)`` in shuffled order,
        labels ``int64`` in ``0..C-1``, the characters as class names. The
        recipe lists the font files used by name.

    Examples
    --------
    >>> task = load_glyphs("digits", n_train_per_class=3, n_test_per_class=1)
    >>> task.x_train.shape, task.class_names[:3]
    ((30, 1, 28, 28), ('0', '1', '2'))
    """
    name = _canonical_charset(charset)
    n_train = check_int(n_train_per_class, "n_train_per_class", 1)
    n_test = check_int(n_test_per_class, "n_test_per_class", 1)
    seed = check_int(seed, "seed", 0)
    chars = _CHARSETS[name]
    _check_generated_size(f"glyphs:{name}", len(chars), n_train, n_test)
    font_paths = _usable_fonts(chars, _candidate_key(fonts))
    if not font_paths:
        raise ValueError(
            f"no font can render every character of charset {name!r}; install a TrueType font "
            f"that covers {chars!r} or pass fonts=[...] with such a file"
        )
    rng_train, rng_test = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    x_train, y_train = _render_split(chars, font_paths, n_train, rng_train)
    x_test, y_test = _render_split(chars, font_paths, n_test, rng_test)
    recipe = {
        "source": "glyphs",
        "charset": name,
        "n_train_per_class": n_train,
        "n_test_per_class": n_test,
        "seed": seed,
        "fonts": [p.name for p in font_paths],
    }
    return Task(
        name=f"glyphs:{name}",
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        class_names=tuple(chars),
        recipe=recipe,
    )


def _render_split(
    chars: str, font_paths: tuple[Path, ...], n_per_class: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    n_classes = len(chars)
    n = n_classes * n_per_class
    labels = rng.permutation(np.repeat(np.arange(n_classes, dtype=np.int64), n_per_class))
    font_idx = rng.integers(0, len(font_paths), size=n)
    stroke_idx = rng.integers(0, len(_STROKES), size=n)
    scale = rng.uniform(*_SCALE_RANGE, size=n)
    angle = np.deg2rad(rng.uniform(-_MAX_ANGLE, _MAX_ANGLE, size=n))
    shift = rng.uniform(-1.0, 1.0, size=(n, 2))
    dim = rng.uniform(*_DIM_RANGE, size=n)
    noise_sd = rng.uniform(0.0, _MAX_NOISE, size=n) * 255.0
    noise = rng.standard_normal((n, _SIDE, _SIDE))

    out = np.empty((n, _SIDE, _SIDE), dtype=np.uint8)
    for i in range(n):
        glyph = _glyph(str(font_paths[font_idx[i]]), chars[labels[i]], _STROKES[stroke_idx[i]])
        side = scale[i] * _CANVAS
        # Free margin of the rotated box, at most _MAX_SHIFT of the canvas.
        margin = max(0.0, (_CANVAS - side * (abs(np.cos(angle[i])) + abs(np.sin(angle[i])))) / 2)
        tx, ty = shift[i] * min(margin, _MAX_SHIFT * _CANVAS)
        out[i] = _place(glyph, side, angle[i], tx, ty)

    images = out.astype(np.float64) * dim[:, None, None] + noise * noise_sd[:, None, None]
    images = np.clip(np.rint(images), 0, 255).astype(np.uint8)
    return images[:, None, :, :], labels


def _place(glyph: _Glyph, side: float, angle: float, tx: float, ty: float) -> np.ndarray:
    """Affine-map a master glyph onto the 56x56 canvas and reduce it 2x2 to 28x28.

    Output pixel ``o`` samples input ``c_in + R(angle) (o - c_out) / s`` with
    ``s = side / glyph.side``, ``c_out`` the canvas centre plus ``(tx, ty)``.
    """
    inv = glyph.side / side
    cos, sin = np.cos(angle) * inv, np.sin(angle) * inv
    cx_out, cy_out = _CANVAS / 2 + tx, _CANVAS / 2 + ty
    cx_in, cy_in = glyph.image.width / 2, glyph.image.height / 2
    coeffs = (
        cos,
        -sin,
        cx_in - cos * cx_out + sin * cy_out,
        sin,
        cos,
        cy_in - sin * cx_out - cos * cy_out,
    )
    canvas = glyph.image.transform(
        (_CANVAS, _CANVAS), Image.Transform.AFFINE, coeffs, resample=Image.Resampling.BILINEAR, fillcolor=0
    )
    return np.asarray(canvas.reduce(_CANVAS // _SIDE))


@cache
def _font(path: str) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size=_RENDER_SIZE)


@cache
def _glyph(path: str, char: str, stroke: int) -> _Glyph:
    """The master glyph: ``char`` at 64 px with ``stroke``, cropped to its ink."""
    font = _font(path)
    left, top, right, bottom = font.getbbox(char, stroke_width=stroke)
    pad = 2
    width, height = max(1, right - left) + 2 * pad, max(1, bottom - top) + 2 * pad
    image = Image.new("L", (width, height), 0)
    ImageDraw.Draw(image).text(
        (pad - left, pad - top), char, font=font, fill=255, stroke_width=stroke, stroke_fill=255
    )
    box = image.getbbox()
    if box is None:
        return _Glyph(image=image, side=0)
    image = image.crop(box)
    return _Glyph(image=image, side=max(image.size))


def _candidate_key(fonts: str | Sequence[str]) -> str | tuple[str, ...]:
    if isinstance(fonts, str):
        if fonts not in ("all", "matplotlib"):
            raise ValueError(f"fonts must be 'all', 'matplotlib' or a sequence of font files; got {fonts!r}")
        return fonts
    paths = tuple(str(Path(p).expanduser()) for p in fonts)
    missing = [p for p in paths if not Path(p).is_file()]
    if not paths or missing:
        raise ValueError(f"fonts must name existing font files; missing: {missing or 'none given'}")
    return paths


def _candidates(key: str | tuple[str, ...]) -> list[Path]:
    if isinstance(key, tuple):
        return [Path(p) for p in key]
    import matplotlib

    bundled = sorted(Path(matplotlib.get_data_path(), "fonts", "ttf").glob("*.ttf"), key=_sort_key)
    if key == "matplotlib":
        return bundled
    from matplotlib import font_manager

    system = [Path(p) for p in font_manager.findSystemFonts(fontext="ttf")]
    system = sorted((p for p in system if p.suffix.lower() in (".ttf", ".otf")), key=_sort_key)
    return bundled + system


def _sort_key(path: Path) -> tuple[str, str]:
    return (path.name.lower(), str(path))


@cache
def _usable_fonts(chars: str, key: str | tuple[str, ...]) -> tuple[Path, ...]:
    from matplotlib.ft2font import FT2Font

    seen: set[tuple[str, str]] = set()
    usable: list[Path] = []
    for path in _candidates(key):
        if _SKIP.search(path.stem):
            continue
        try:
            ft = FT2Font(str(path))
            charmap = ft.get_charmap()
        except (OSError, RuntimeError, ValueError):
            continue
        identity = (ft.family_name.lower(), ft.style_name.lower())
        if identity in seen or _SKIP.search(ft.family_name):
            continue
        if not all(charmap.get(ord(c), 0) != 0 for c in chars):
            continue
        if not _renders_distinct(str(path), chars):
            continue
        seen.add(identity)
        usable.append(path)
    return tuple(sorted(usable, key=_sort_key))


def _renders_distinct(path: str, chars: str) -> bool:
    """Every glyph has ink, and at least half of them differ (no box-for-everything fonts)."""
    try:
        glyphs = [_glyph(path, c, 0) for c in chars]
    except OSError:
        return False
    if any(g.side == 0 for g in glyphs):
        return False
    distinct = {(g.image.size, g.image.tobytes()) for g in glyphs}
    return len(distinct) >= len(chars) / 2


def _canonical_charset(charset: str) -> str:
    if not isinstance(charset, str):
        raise ValueError(f"charset must be a string; got {charset!r}")
    key = charset.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in _CHARSETS:
        import difflib

        names = list(_CHARSETS) + list(_ALIASES)
        close = difflib.get_close_matches(key, names, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"charset must be one of {', '.join(names)}; got {charset!r}{hint}")
    return key
