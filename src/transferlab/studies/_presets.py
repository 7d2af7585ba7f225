"""Preset files of the studies: the built-in TOML or a user's file of the same shape."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path


def read_presets(path, builtin: str) -> tuple[dict, str]:
    """The parsed TOML of ``path``, or of the built-in ``presets/<builtin>.toml``; and where it came from."""
    if path is None:
        text = (resources.files("transferlab.studies") / "presets" / f"{builtin}.toml").read_text()
        return tomllib.loads(text), f"the built-in {builtin} presets"
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"preset file {str(path)!r} does not exist")
    try:
        return tomllib.loads(path.read_text()), str(path)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path} is not valid TOML: {exc}") from None
