"""The web app: health, unsubscribe, intake, the SendGrid and Stripe webhooks, the in-app inbox, erasure, the reports
and the CS views."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from engagement.api import (
    contact_routes,
    inbox_routes,
    intake_routes,
    report_routes,
    stripe_routes,
    survey_answer_routes,
    survey_routes,
    unsubscribe_routes,
    view_routes,
    webhook_routes,
)
from engagement.api.deps import Services
from engagement.api.scorer import BackgroundScorer
from engagement.clock import Clock, SystemClock
from engagement.config import Settings, load
from engagement.store.database import Database


def create_app(
    settings: Settings, *, database: Database | None = None, clock: Clock | None = None
) -> FastAPI:
    """Build the app; tests pass their own database and clock."""
    db = database or Database(settings.database_url)
    clock = clock or SystemClock()
    scorer = BackgroundScorer(db, settings, clock)
    services = Services(settings, db, clock, scorer)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        scorer.stop()

    app = FastAPI(title="engagement", version="0.1.0", docs_url="/docs", lifespan=lifespan)
    app.state.services = services

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        """Liveness and database reachability."""
        services.db.check_ready()
        return {"status": "ok"}

    app.include_router(unsubscribe_routes.router)
    app.include_router(survey_routes.router)
    app.include_router(report_routes.router)
    app.include_router(view_routes.router)
    app.include_router(intake_routes.router)
    app.include_router(webhook_routes.router)
    app.include_router(stripe_routes.router)
    app.include_router(inbox_routes.router)
    app.include_router(contact_routes.router)
    app.include_router(survey_answer_routes.router)
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


def served_app() -> FastAPI:
    """The app of one `engagement serve --workers N` process: settings from $ENGAGEMENT_CONFIG and the environment."""
    settings = load()
    database = Database(settings.database_url)
    database.check_ready()
    return create_app(settings, database=database)
