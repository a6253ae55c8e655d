"""What route handlers need, carried on the app's state."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from engagement.api.scorer import BackgroundScorer
from engagement.clock import Clock
from engagement.config import Settings
from engagement.scores import scoring
from engagement.store.database import Database


@dataclass(frozen=True)
class Services:
    """Settings, database and clock of one running app."""

    settings: Settings
    db: Database
    clock: Clock
    scorer: BackgroundScorer | None = None

    def responses_arrived(self) -> None:
        """Credit scores for what was just committed: in the background if the app runs a scorer, else now."""
        if self.scorer is not None:
            self.scorer.poke()
        else:
            scoring.credit(self.db, self.settings, self.clock.now())


def services(request: Request) -> Services:
    """The app's services (FastAPI dependency)."""
    found = request.app.state.services
    assert isinstance(found, Services)
    return found
