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


def preset_table(path, builtin: str, preset: str, keys: set[str], study: str) -> tuple[dict, str]:
    """The table of ``preset`` with exactly ``keys`` (unknown and missing keys refused), and where it came from."""
    data, where = read_presets(path, builtin)
    presets = data.get("presets", {})
    if preset not in presets:
        raise ValueError(f"unknown {study} preset {preset!r}; presets in {where} are {sorted(presets)}")
    table = dict(presets[preset])
    unknown, missing = sorted(set(table) - keys), sorted(keys - set(table))
    if unknown or missing:
        raise ValueError(f"preset {preset!r} of {where}: unknown keys {unknown}, missing keys {missing}")
    return table, where


def job_payload(cfg, path) -> dict:
    """What every job of a study carries: the preset, its file, and the resolved config.

    The resolved config is part of every job key, so changing any setting reruns what it affects.
    """
    return {"preset": cfg.preset, "path": None if path is None else str(path), "resolved": cfg.to_dict()}


def job_resources(device: str) -> dict | None:
    """On Ray, a CUDA job asks for a GPU (the executor refuses what no node can run)."""
    return {"num_gpus": 1} if str(device).startswith("cuda") else None
