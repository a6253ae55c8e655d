"""The web app: health, one-click unsubscribe and the preference page (more routes join later)."""

from __future__ import annotations

from fastapi import FastAPI

from engagement.api import report_routes, unsubscribe_routes
from engagement.api.deps import Services
from engagement.clock import Clock, SystemClock
from engagement.config import Settings
from engagement.store.database import Database


def create_app(
    settings: Settings, *, database: Database | None = None, clock: Clock | None = None
) -> FastAPI:
    """Build the app; tests pass their own database and clock."""
    services = Services(settings, database or Database(settings.database_url), clock or SystemClock())
    app = FastAPI(title="engagement", version="0.1.0", docs_url="/docs")
    app.state.services = services

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        """Liveness and database reachability."""
        services.db.check_ready()
        return {"status": "ok"}

    app.include_router(unsubscribe_routes.router)
    app.include_router(report_routes.router)
    return app
