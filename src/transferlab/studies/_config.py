"""Study configurations: frozen dataclasses whose loading, checking and serialisation follow their fields.

A study's configuration is a frozen dataclass that derives from
:class:`StudyConfig`. Its fields say everything the generic code needs:

- the type of each field (``int``, ``float``, ``str``, ``bool``, ``X | None``,
  ``tuple[X, ...]``, a fixed ``tuple[X, Y]``, ``dict``, or a nested dataclass
  such as :class:`~transferlab.train.TrainConfig`) drives the conversion of a
  TOML table or a JSON payload and its type checks;
- a field without a default is a required key of a preset, a field with one an
  optional key; any other key is refused (with the closest valid name);
- :func:`setting` adds bounds (``min_val``, ``max_val``, checked by
  :func:`~transferlab._validation.check_scalar` on every number, also inside
  lists), allowed ``choices`` for strings and a ``min_len`` for lists.

``to_dict`` and ``from_dict`` are derived from the fields (nested dataclasses,
tuples, dicts and scalars), so ``Config.from_dict(cfg.to_dict()) == cfg``, and
a job can rebuild the part of the configuration it reads from its payload alone
(:meth:`StudyConfig.view`). Checks that involve several fields go in a
``_validate`` method of the class.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import numbers
import tomllib
import types
import typing
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from transferlab._validation import check_scalar

_MISSING = dataclasses.MISSING


def setting(
    default: Any = _MISSING,
    *,
    default_factory: Any = _MISSING,
    min_val: float | None = None,
    max_val: float | None = None,
    include_boundaries: str = "both",
    choices: Sequence[str] | None = None,
    min_len: int | None = None,
) -> Any:
    """A dataclass field of a study config with its checks.

    Parameters
    ----------
    default, default_factory
        As for :func:`dataclasses.field`; without either the key is required.
    min_val, max_val, include_boundaries
        Bounds of every number of the field (each entry of a list), checked
        with :func:`~transferlab._validation.check_scalar`.
    choices : sequence of str, optional
        The allowed values of every string of the field.
    min_len : int, optional
        The fewest entries of a list field.

    Returns
    -------
    dataclasses.Field
    """
    metadata = {"min_val": min_val, "max_val": max_val, "include_boundaries": include_boundaries,
                "choices": None if choices is None else tuple(choices), "min_len": min_len}
    return dataclasses.field(default=default, default_factory=default_factory, metadata=metadata)


# --------------------------------------------------------------------------- conversion by type


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _plain(value: Any) -> Any:
    """``value`` as JSON-ready data: dataclasses as dicts of their fields (less a field marked
    ``omit_if_default`` while it has its default, e.g. ``TrainConfig.steps``), tuples as lists."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)
                if not (f.metadata.get("omit_if_default") and getattr(value, f.name) == f.default)}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _coerce(value: Any, hint: Any, name: str, meta: Mapping[str, Any]) -> Any:
    """``value`` converted to the field type ``hint`` and checked against ``meta``; ValueError otherwise."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        if len(inner) != 1:
            raise TypeError(f"field {name}: unsupported type {hint!r} (one type or 'X | None')")
        return _coerce(value, inner[0], name, meta)
    if origin is tuple:
        return _coerce_tuple(value, args, name, meta)
    if hint is dict or origin is dict:
        if not isinstance(value, Mapping):
            raise ValueError(f"{name} must be a table; got {value!r}")
        return dict(value)
    if dataclasses.is_dataclass(hint):
        if isinstance(value, hint):
            return value
        if not isinstance(value, Mapping):
            raise ValueError(f"{name} must be a table of {hint.__name__} keys; got {value!r}")
        return _from_mapping(hint, value, name)
    if hint is bool:
        return check_scalar(value, name, bool)
    if hint in (int, float):
        number = numbers.Integral if hint is int else numbers.Real
        return check_scalar(value, name, number, min_val=meta.get("min_val"), max_val=meta.get("max_val"),
                            include_boundaries=meta.get("include_boundaries", "both"))
    if hint is str:
        value = check_scalar(value, name, str)
        choices = meta.get("choices")
        if choices is not None and value not in choices:
            raise ValueError(f"{name} must be one of {sorted(choices)}; got {value!r}")
        return value
    raise TypeError(f"field {name}: unsupported type {hint!r}")


def _coerce_tuple(value: Any, args: tuple, name: str, meta: Mapping[str, Any]) -> tuple:
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, (list, tuple)):
        raise ValueError(f"{name} must be a list; got {value!r}")
    inner = {**meta, "min_len": None}  # the length applies to the outer list only
    if len(args) == 2 and args[1] is Ellipsis:
        items = tuple(_coerce(v, args[0], f"{name}[{i}]", inner) for i, v in enumerate(value))
    else:
        if len(value) != len(args):
            raise ValueError(f"{name} must be a list of {len(args)} entries; got {value!r}")
        items = tuple(_coerce(v, a, f"{name}[{i}]", inner) for i, (v, a) in enumerate(zip(value, args)))
    min_len = meta.get("min_len")
    if min_len is not None and len(items) < min_len:
        what = "the preset lists no " + name if not items else f"got {list(value)!r}"
        raise ValueError(f"{name} must list at least {min_len} entr{'y' if min_len == 1 else 'ies'}; {what}")
    return items


def _from_mapping(cls: type, data: Mapping, where: str) -> Any:
    """A nested dataclass from a table: its own ``from_dict`` (prefixing errors with ``where``)."""
    if issubclass(cls, StudyConfig):
        return cls.from_dict(data, where=where)
    try:
        return cls.from_dict(data) if hasattr(cls, "from_dict") else cls(**data)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}: {exc}") from None


def _keys_message(cls: type, where: str, keys: Sequence[str]) -> str | None:
    """Why the keys of a table do not fit ``cls`` (unknown or missing keys), or None when they do."""
    fields = [f for f in dataclasses.fields(cls) if f.init]
    names = [f.name for f in fields]
    required = [f.name for f in fields if f.default is _MISSING and f.default_factory is _MISSING]
    unknown = [k for k in keys if k not in names]
    missing = [k for k in required if k not in keys]
    if not unknown and not missing:
        return None
    problems = []
    if unknown:
        hints = []
        for key in unknown:
            close = difflib.get_close_matches(str(key), names, n=1)
            hints.append(f"{key!r} (did you mean {close[0]!r}?)" if close else repr(key))
        problems.append(f"unknown keys [{', '.join(hints)}]")
    if missing:
        problems.append(f"missing keys {missing}")
    optional = [n for n in names if n not in required]
    return f"{where}: {', '.join(problems)}; required keys are {required}, optional keys {optional}"


# --------------------------------------------------------------------------- the base class


class StudyConfig:
    """Base of the frozen config dataclasses of the studies: conversion, checks and serialisation.

    A subclass is a ``@dataclass(frozen=True, kw_only=True)``. Building one
    (directly or through :meth:`from_dict`) converts and checks every field by
    its type and :func:`setting`, then calls ``_validate`` for checks that
    involve several fields.

    Examples
    --------
    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True, kw_only=True)
    ... class Sweep(StudyConfig):
    ...     seeds: tuple[int, ...] = setting(min_val=0, min_len=1)
    ...     lr: float = setting(0.1, min_val=0, include_boundaries="neither")
    >>> cfg = Sweep.from_dict({"seeds": [0, 1]})
    >>> cfg
    Sweep(seeds=(0, 1), lr=0.1)
    >>> cfg.to_dict()
    {'seeds': [0, 1], 'lr': 0.1}
    >>> Sweep.from_dict(cfg.to_dict()) == cfg
    True
    >>> Sweep.from_dict({"seeds": [0], "lrs": 1.0})
    Traceback (most recent call last):
        ...
    ValueError: Sweep: unknown keys ['lrs' (did you mean 'lr'?)]; required keys are ['seeds'], optional keys ['lr']
    >>> Sweep.view({"lr": 0.5}, ["lr"]).seeds  # doctest: +ELLIPSIS
    Traceback (most recent call last):
        ...
    transferlab.studies._config.UndeclaredFieldError: this job reads Sweep.seeds but declares only ['lr']; ...
    """

    def __post_init__(self) -> None:
        hints = _hints(type(self))
        for f in dataclasses.fields(self):
            object.__setattr__(self, f.name, _coerce(getattr(self, f.name), hints[f.name], f.name, f.metadata))
        self._validate()

    def _validate(self) -> None:
        """Checks across fields (and normalisations such as sorting); none by default."""

    def _set(self, name: str, value: Any) -> None:
        """Replace a field while validating (the dataclass is frozen)."""
        object.__setattr__(self, name, value)

    def to_dict(self) -> dict[str, Any]:
        """The fields as JSON-ready data (nested dataclasses as tables, tuples as lists)."""
        return _plain(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, where: str | None = None):
        """The config of a table (a preset's, or :meth:`to_dict`'s): unknown and missing keys refused.

        Parameters
        ----------
        data : mapping
            ``{field: value}``; fields with a default may be left out.
        where : str, optional
            What the table is, for the messages (default: the class name).

        Raises
        ------
        ValueError
            An unknown or missing key, a value of the wrong type or out of range;
            the message starts with ``where``.
        """
        where = where or cls.__name__
        if not isinstance(data, Mapping):
            raise ValueError(f"{where} must be a table; got {data!r}")
        problem = _keys_message(cls, where, list(data))
        if problem:
            raise ValueError(problem)
        try:
            return cls(**data)
        except ValueError as exc:
            message = str(exc)
            raise ValueError(message if message.startswith(where) else f"{where}: {message}") from None

    def part(self, names: Sequence[str]) -> dict[str, Any]:
        """``{name: value}`` of the fields ``names``, JSON-ready: what a job that reads them carries."""
        known = {f.name for f in dataclasses.fields(self)}
        unknown = [n for n in names if n not in known]
        if unknown:
            raise ValueError(f"{type(self).__name__} has no fields {unknown}; fields are {sorted(known)}")
        return {n: _plain(getattr(self, n)) for n in names}

    @classmethod
    def view(cls, data: Mapping[str, Any], names: Sequence[str]) -> ConfigView:
        """The fields ``names`` of this config rebuilt from ``data`` (a :meth:`part`); any other field raises.

        Each field is converted and checked by its type, as in :meth:`from_dict`;
        the checks across fields were made when the whole config was built.
        """
        names = tuple(names)
        if not isinstance(data, Mapping) or sorted(data) != sorted(names):
            got = sorted(data) if isinstance(data, Mapping) else data
            raise ValueError(f"a {cls.__name__} part must hold exactly the fields {sorted(names)}; got {got!r}")
        hints = _hints(cls)
        fields = {f.name: f for f in dataclasses.fields(cls)}
        return ConfigView(cls, {n: _coerce(data[n], hints[n], n, fields[n].metadata) for n in names})


class UndeclaredFieldError(AttributeError):
    """A job read a field of its config that it did not declare (so its key does not hold it)."""


class ConfigView:
    """Some fields of a study config, read-only: what one job declared it reads.

    Reading any other field of the config raises :class:`UndeclaredFieldError`:
    a job's key holds exactly the fields it declared, so a job that read more
    could return a result that its key does not describe.
    """

    def __init__(self, cls: type, values: Mapping[str, Any]):
        object.__setattr__(self, "_cls", cls)
        object.__setattr__(self, "_values", dict(values))

    def __getattr__(self, name: str) -> Any:
        values = object.__getattribute__(self, "_values")
        if name in values:
            return values[name]
        cls = object.__getattribute__(self, "_cls")
        if name in {f.name for f in dataclasses.fields(cls)}:
            raise UndeclaredFieldError(
                f"this job reads {cls.__name__}.{name} but declares only {sorted(values)}; "
                f"add {name!r} to the job's reads (they make its key)"
            )
        raise AttributeError(f"{cls.__name__} has no field {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"a config view is read-only; cannot set {name!r}")

    def __repr__(self) -> str:
        values = object.__getattribute__(self, "_values")
        inner = ", ".join(f"{k}={v!r}" for k, v in values.items())
        return f"{object.__getattribute__(self, '_cls').__name__}View({inner})"


# --------------------------------------------------------------------------- presets


def read_presets(path: str | Path | None, builtin: str) -> tuple[dict, str]:
    """The parsed TOML of ``path``, or of the built-in ``presets/<builtin>.toml``; and where it came from."""
    if path is None:
        text = (resources.files("transferlab.studies") / "presets" / f"{builtin}.toml").read_text()
        return tomllib.loads(text), f"the built-in {builtin} presets"
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"preset file {str(path)!r} is a folder, not a file; give a .toml file")
    if not path.is_file():
        raise ValueError(f"preset file {str(path)!r} does not exist")
    try:
        return tomllib.loads(path.read_text()), str(path)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path} is not valid TOML: {exc}") from None


def preset_names(path: str | Path | None, builtin: str) -> list[str]:
    """The names of the presets of ``path`` (or of the built-in file), sorted."""
    data, _ = read_presets(path, builtin)
    return sorted(data.get("presets", {}))


def load_preset(
    cls: type, preset: str, *, path: str | Path | None, builtin: str, study: str, overrides: Mapping | None = None
):
    """The config ``cls`` of one preset of a TOML file of ``[presets.<name>]`` tables.

    The table's keys are the fields of ``cls`` but ``preset`` (the preset's name).

    Parameters
    ----------
    cls : type
        A :class:`StudyConfig` dataclass with a ``preset`` field.
    preset : str
        The table's name.
    path : path or None
        A TOML file; None reads the built-in ``presets/<builtin>.toml``.
    builtin : str
        The name of the built-in file.
    study : str
        The study's name, for the messages.
    overrides : mapping, optional
        Keys that replace (or add to) the preset's table, checked like it.
    """
    data, where = read_presets(path, builtin)
    presets = data.get("presets", {})
    if preset not in presets:
        raise ValueError(f"unknown {study} preset {preset!r}; presets in {where} are {sorted(presets)}")
    table = presets[preset]
    where = f"preset {preset!r} of {where}"
    if not isinstance(table, Mapping):
        raise ValueError(f"{where} must be a table; got {table!r}")
    if "preset" in table:
        raise ValueError(f"{where}: 'preset' is the table's name, not a key")
    return cls.from_dict({"preset": preset, **table, **(overrides or {})}, where=where)
