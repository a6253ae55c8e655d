"""Fixtures shared by the engine behaviour tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from engine_world import World

from engagement.testing.sendgrid_server import SendgridServer


@pytest.fixture
def world(tmp_path: Path) -> World:
    """A fresh working folder with config, an empty database and recording providers."""
    return World(tmp_path)


@pytest.fixture(scope="module")
def running() -> Iterator[SendgridServer]:
    """One SendGrid-compatible server on 127.0.0.1 for a test module."""
    with SendgridServer() as shared:
        yield shared


@pytest.fixture
def server(running: SendgridServer) -> Iterator[SendgridServer]:
    """The module's server, emptied; afterwards its faults are cleared and no delivery id was accepted twice."""
    running.reset()
    yield running
    running.clear_faults()
    assert running.ledger.duplicates() == {}, "a delivery id was accepted twice"
    counts = running.ledger.counts()
    assert counts.duplicates == 0 and counts.accepted == counts.delivery_ids


CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """Headless Debian Chromium driven by Playwright (no browser download); `.ci/run` installs it."""
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            yield launched
        finally:
            launched.close()
