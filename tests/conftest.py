"""Fixtures shared by the engine behaviour tests."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from backends import BACKENDS, POSTGRES_ENV, drop_everything, postgres_url
from engine_world import World

from engagement.store.database import Database
from engagement.testing.sendgrid_server import SendgridServer

SECRET_VARIABLES = (
    "ENGAGEMENT_UNSUBSCRIBE__SECRET",
    "ENGAGEMENT_INAPP__TOKEN_SECRET",
    "ENGAGEMENT_REPORTS__SESSION_SECRET",
)


@pytest.fixture(scope="session", autouse=True)
def fresh_postgres() -> None:
    """The PostgreSQL test database starts each run empty: a world creates only the tables that are missing,
    so tables an earlier run of an older checkout left there would keep their old columns."""
    url = os.environ.get(POSTGRES_ENV)
    if url:
        db = Database(url)
        drop_everything(db.engine)
        db.dispose()


@pytest.fixture(autouse=True)
def signing_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test signs with secrets of its own (the environment reaches the processes it starts too),
    never the published default; a test about the default removes them."""
    for name in SECRET_VARIABLES:
        monkeypatch.setenv(name, secrets.token_urlsafe(32))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Modules that set `BACKENDS = ("sqlite", "postgresql")` run each `world` test on both backends."""
    backends = getattr(metafunc.module, "BACKENDS", None)
    if backends and "world" in metafunc.fixturenames:
        metafunc.parametrize("world", backends, indirect=True)


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The store tests' backend: SQLite, then PostgreSQL (skipped, in one line, when no URL is set)."""
    if request.param == "postgresql":
        postgres_url()
    return str(request.param)


@pytest.fixture
def world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    """A fresh working folder with config, an empty database and recording providers.

    SQLite unless the module asks for both backends; then PostgreSQL too, when ENGAGEMENT_TEST_POSTGRES_URL
    names one (CI sets it), else that variant is skipped.
    """
    backend = getattr(request, "param", "sqlite")
    if backend == "sqlite":
        yield World(tmp_path)
        return
    made = World(tmp_path, postgres_url())
    try:
        yield made
    finally:
        made.db.dispose()


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


CHROMIUM = Path(os.environ.get("ENGAGEMENT_TEST_CHROMIUM", "/usr/bin/chromium"))


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """Headless Debian Chromium driven by Playwright (no browser download); `./dev test` installs it as root."""
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium)")
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
