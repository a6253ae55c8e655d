"""What route handlers need, carried on the app's state."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from engagement.clock import Clock
from engagement.config import Settings
from engagement.store.database import Database


@dataclass(frozen=True)
class Services:
    """Settings, database and clock of one running app."""

    settings: Settings
    db: Database
    clock: Clock


def services(request: Request) -> Services:
    """The app's services (FastAPI dependency)."""
    found = request.app.state.services
    assert isinstance(found, Services)
    return found
