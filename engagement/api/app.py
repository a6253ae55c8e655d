"""The web app: health, one-click unsubscribe and the preference page (more routes join later)."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from engagement.api import contact_routes, inbox_routes, unsubscribe_routes
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
    app.include_router(inbox_routes.router)
    app.include_router(contact_routes.router)
    if (
        settings.inapp.cors_origins
    ):  # pages on these origins may call the API from a browser (Bearer, no cookies)
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.inapp.cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
            max_age=600,
        )
    return app
