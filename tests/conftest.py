"""Shared test set-up: every test runs against a private, throw-away cache."""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

# CI replays the same draws every run (a red CI must mean a change broke something);
# local runs keep drawing new examples and so keep looking for defects.
settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI") or os.environ.get("HYPOTHESIS_PROFILE") == "ci":
    settings.load_profile("ci")

# No network in tests: Hugging Face loaders read only local folders and caches.
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def transferlab_home(tmp_path_factory):
    return tmp_path_factory.mktemp("transferlab-home")


@pytest.fixture(autouse=True)
def _isolated_home(transferlab_home, monkeypatch):
    # Session-wide so that the tiny zoo is built once for all end-to-end tests.
    monkeypatch.setenv("TRANSFERLAB_HOME", str(transferlab_home))
    monkeypatch.setenv("TRANSFERLAB_DATA", str(transferlab_home / "data"))
