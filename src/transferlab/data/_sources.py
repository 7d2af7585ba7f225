"""The registry of built-in data sources and the task-spec parser.

A task spec names a source, optionally a variant, and keyword options::

    spec    := source [":" variant] ("," key "=" value)*
    value   := int | float | "true" | "false" | "none" | text

for example ``"fashion"``, ``"digits"``, ``"glyphs:greek"``,
``"glyphs:latin-upper,n_train_per_class=100"`` or ``"shapes,seed=3"``.
:func:`load_task` parses a spec, calls the source's loader and names the task
by the normalised spec: lower case, no spaces, options sorted by key, options
equal to their defaults dropped (so ``"Shapes, seed=0"`` and ``"shapes"`` name
the same task); an alias variant is kept as written (``"glyphs:greek"``).

Every option value is checked when the spec is parsed (``seed=abc`` or
``n_train_per_class=-1`` is a ``ValueError`` naming the option and the value),
and an option set both in the spec and as a keyword argument of
:func:`load_task` must have the same value: a spec option is never silently
replaced.
"""

from __future__ import annotations

import dataclasses
import difflib
import numbers
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from transferlab._validation import check_scalar
from transferlab.data import _digits, _fashion, _glyphs, _procedural
from transferlab.data._task import Task

__all__ = ["SourceInfo", "list_sources", "load_task", "parse_spec"]


@dataclass(frozen=True)
class SourceInfo:
    """What ``transferlab data list`` shows about one source.

    Attributes
    ----------
    name : str
        Source name used in task specs.
    description : str
        One line.
    variants : tuple of str
        Accepted variants (empty when the source has none).
    available : bool
        Whether :func:`load_task` can load it now, offline.
    location : str
        Where the data come from: a folder, ``"built in ..."``,
        ``"rendered from N fonts"`` or ``"procedural"``.
    """

    name: str
    description: str
    variants: tuple[str, ...]
    available: bool
    location: str


@dataclass(frozen=True)
class _Source:
    name: str
    description: str
    loader: Callable[..., Task]
    options: dict[str, Any]  # option -> default
    kinds: dict[str, dict[str, Any]]  # option -> check_scalar's keywords (target_type, bounds)
    variant_option: str | None = None  # loader argument that receives the variant
    variants: tuple[str, ...] = ()
    aliases: dict[str, str] = dataclasses.field(default_factory=dict)
    default_variant: str | None = None


_SOURCES: dict[str, _Source] = {}

# What each option accepts (check_scalar's keywords); the loaders check the rest (e.g. font names).
_COUNT = {"target_type": numbers.Integral, "min_val": 1}
_SEED = {"target_type": numbers.Integral, "min_val": 0}
_GENERATED_KINDS = {"n_train_per_class": _COUNT, "n_test_per_class": _COUNT, "seed": _SEED}


def _register(source: _Source) -> None:
    if source.name in _SOURCES:
        raise ValueError(f"source {source.name!r} is already registered")
    if set(source.kinds) != set(source.options):
        raise ValueError(f"source {source.name!r}: every option needs a kind; options {sorted(source.options)}, "
                         f"kinds {sorted(source.kinds)}")
    _SOURCES[source.name] = source


_register(
    _Source(
        name="fashion",
        description="Fashion-MNIST: 70,000 Zalando article photos, 10 classes (real, IDX files)",
        loader=_fashion.load_fashion,
        options={"path": None, "download": False, "seed": 0},
        kinds={"path": {"target_type": (str, type(None))}, "download": {"target_type": bool}, "seed": _SEED},
    )
)
_register(
    _Source(
        name="digits",
        description="scikit-learn handwritten digits: 1,797 images 8x8 resized to 28x28, 10 classes (real)",
        loader=_digits.load_digits,
        options={"test_fraction": 0.3, "seed": 0},
        kinds={
            "test_fraction": {"target_type": numbers.Real, "min_val": 0, "max_val": 1, "include_boundaries": "neither"},
            "seed": _SEED,
        },
    )
)
_register(
    _Source(
        name="glyphs",
        description="printed characters rendered from TrueType fonts with seeded jitter (synthetic)",
        loader=_glyphs.load_glyphs,
        options={"n_train_per_class": 200, "n_test_per_class": 50, "seed": 0, "fonts": "all"},
        kinds={**_GENERATED_KINDS, "fonts": {"target_type": str}},
        variant_option="charset",
        variants=_glyphs.available_charsets(),
        aliases=dict(_glyphs._ALIASES),
        default_variant="latin-upper",
    )
)
_register(
    _Source(
        name="shapes",
        description="geometric shapes, filled or outlined, 8 classes (procedural)",
        loader=_procedural.load_shapes,
        options={"n_train_per_class": 200, "n_test_per_class": 50, "seed": 0},
        kinds=_GENERATED_KINDS,
    )
)
_register(
    _Source(
        name="textures",
        description="stripes, checkerboards, dots, grids, blobs, rings: 8 classes (procedural)",
        loader=_procedural.load_textures,
        options={"n_train_per_class": 200, "n_test_per_class": 50, "seed": 0},
        kinds=_GENERATED_KINDS,
    )
)


def list_sources() -> list[SourceInfo]:
    """Describe every built-in source, in registry order.

    Returns
    -------
    list of SourceInfo
        One entry per source, with whether it can be loaded now and from where.
    """
    infos = []
    for src in _SOURCES.values():
        available, location = _availability(src.name)
        infos.append(SourceInfo(src.name, src.description, src.variants, available, location))
    return infos


def _availability(name: str) -> tuple[bool, str]:
    if name == "fashion":
        folder = _fashion.fashion_location()
        if folder is None:
            return False, (
                "not found: apt-get install dataset-fashion-mnist, or transferlab data download fashion"
            )
        return True, str(folder)
    if name == "digits":
        return True, "built in (scikit-learn)"
    if name == "glyphs":
        n_fonts = len(_glyphs.glyph_fonts(_SOURCES["glyphs"].default_variant or "latin-upper"))
        return n_fonts > 0, f"rendered from {n_fonts} fonts"
    return True, "procedural"


def parse_spec(spec: str) -> tuple[str, str | None, dict[str, Any]]:
    """Split a task spec into ``(source, variant, options)`` and check the names.

    Parameters
    ----------
    spec : str
        ``source[:variant][,key=value...]``; see the module docstring.

    Returns
    -------
    source : str
        A registered source name.
    variant : str or None
        The variant as written (lower case), or None.
    options : dict
        Option values parsed as int, float, bool, None or str, each checked
        against what its option accepts (``seed`` a non-negative integer,
        ``n_train_per_class`` a positive one, ...).

    Raises
    ------
    ValueError
        For an empty or malformed spec (an option without ``=``), an unknown
        source, variant or option (the message lists the valid names and the
        closest match), or an option value its option does not accept (the
        message names the option and the value).

    Examples
    --------
    >>> parse_spec("glyphs:greek,n_train_per_class=100")
    ('glyphs', 'greek', {'n_train_per_class': 100})
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"spec must be a non-empty string like 'glyphs:greek,seed=1'; got {spec!r}")
    head, *pairs = [part.strip() for part in spec.split(",")]
    name, _, variant = (s.strip() for s in head.partition(":"))
    name = name.lower()
    src = _SOURCES.get(name)
    if src is None:
        raise ValueError(_unknown("source", name, list(_SOURCES), spec))
    if variant:
        variant = variant.lower()
        if src.variant_option is None:
            raise ValueError(f"source {name!r} takes no variant; got {variant!r} in spec {spec!r}")
        if variant not in src.variants and variant not in src.aliases:
            raise ValueError(_unknown(f"variant of {name!r}", variant, list(src.variants) + list(src.aliases), spec))
    elif head.endswith(":"):
        raise ValueError(f"spec {spec!r} has an empty variant after ':'")
    options: dict[str, Any] = {}
    for pair in pairs:
        key, eq, text = (s.strip() for s in pair.partition("="))
        if not eq or not key or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            raise ValueError(f"spec options must be key=value; got {pair!r} in spec {spec!r}")
        if key not in src.options:
            raise ValueError(_unknown(f"option of {name!r}", key, list(src.options), spec))
        if key in options:
            raise ValueError(f"option {key!r} is given twice in spec {spec!r}")
        options[key] = _check_option(key, text, src, spec)
    return name, variant or None, options


def _check_option(key: str, text: str, src: _Source, spec: str) -> Any:
    """The value of ``key=text``, parsed and checked against what the option accepts."""
    kind = src.kinds[key]["target_type"]
    takes_text = str in (kind if isinstance(kind, tuple) else (kind,))
    value = _parse_value(text)
    if takes_text and isinstance(value, numbers.Number) and not isinstance(value, bool):
        value = text  # a text option (a path, a font set) keeps what was written, e.g. path=2024
    try:
        return check_scalar(value, key, **src.kinds[key])
    except ValueError as error:
        raise ValueError(f"invalid option {key}={text} in spec {spec!r}: {error}") from None


def load_task(spec: str, **options: Any) -> Task:
    """Load a built-in task from a spec string.

    Parameters
    ----------
    spec : str
        ``source[:variant][,key=value...]``, e.g. ``"glyphs:greek"`` or
        ``"shapes,seed=3"``. Sources: ``fashion``, ``digits``, ``glyphs``
        (variant = charset), ``shapes``, ``textures``.
    **options
        Loader options (checked by the loader). An option given both here
        and in ``spec`` must have the same value in both.

    Returns
    -------
    Task
        The loader's task, named by the normalised spec.

    Raises
    ------
    ValueError
        For an unknown source, variant or option (with the valid names and
        the closest match), an invalid option value, or an option given in
        ``spec`` and as a keyword with different values (both are named).

    Examples
    --------
    >>> load_task("shapes, n_train_per_class=2, n_test_per_class=1").name
    'shapes,n_test_per_class=1,n_train_per_class=2'
    """
    name, variant, parsed = parse_spec(spec)
    src = _SOURCES[name]
    for key, value in options.items():
        if key not in src.options:
            raise ValueError(_unknown(f"option of {name!r}", key, list(src.options), spec))
        if key in parsed and not _same(value, parsed[key]):
            raise ValueError(
                f"{key} is set twice, to different values: {key}={_format_value(parsed[key])} in spec {spec!r} "
                f"and {key}={_format_value(value)} as an argument; give it in one place"
            )
    merged = {**parsed, **options}
    kwargs = dict(merged)
    if src.variant_option is not None:
        kwargs[src.variant_option] = variant if variant is not None else src.default_variant
    task = src.loader(**kwargs)
    return dataclasses.replace(task, name=_normalised(name, variant, merged, src))


def _normalised(name: str, variant: str | None, options: dict[str, Any], src: _Source) -> str:
    text = name + (f":{variant}" if variant else "")
    for key in sorted(options):
        value = options[key]
        if _same(value, src.options[key]):
            continue
        text += f",{key}={_format_value(value)}"
    return text


def _same(value: Any, default: Any) -> bool:
    if isinstance(value, bool) or isinstance(default, bool) or value is None or default is None:
        return value is default or (type(value) is type(default) and value == default)
    if isinstance(value, (int, float)) and isinstance(default, (int, float)):
        return float(value) == float(default)
    return value == default


def _parse_value(text: str) -> Any:
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    if low == "none":
        return None
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def _format_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "none"
    if isinstance(value, (list, tuple)):
        return "[" + ";".join(str(v) for v in value) + "]"
    return str(value)


def _unknown(what: str, got: str, valid: list[str], spec: str) -> str:
    close = difflib.get_close_matches(got, valid, n=1, cutoff=0.5)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"unknown {what}: {got!r} (in spec {spec!r}); valid: {', '.join(valid)}{hint}"
