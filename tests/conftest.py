"""Fixtures shared by the engine behaviour tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from engine_world import World


@pytest.fixture
def world(tmp_path: Path) -> World:
    """A fresh working folder with config, an empty database and recording providers."""
    return World(tmp_path)
