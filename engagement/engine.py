"""The composition root: settings, database, journeys, templates, providers and the clock."""

from __future__ import annotations

import threading
from datetime import datetime
from pathlib import Path

from engagement.clock import Clock, SystemClock
from engagement.config import Settings
from engagement.delivery.dispatch import Ports
from engagement.delivery.http_webhook import HttpWebhook
from engagement.delivery.message import EmailProvider, WebhookProvider
from engagement.delivery.outbox import OutboxEmail, OutboxWebhook
from engagement.delivery.sendgrid import SendgridEmail
from engagement.delivery.smtp import SmtpEmail
from engagement.delivery.templates import Renderer
from engagement.evaluation import tick
from engagement.journeys import catalog as catalogs
from engagement.store.database import Database


class Engine:
    """Everything one process needs to run ticks, built once from settings."""

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock | None = None,
        database: Database | None = None,
        catalog: catalogs.Catalog | None = None,
        email: EmailProvider | None = None,
        webhooks: WebhookProvider | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        self.db = database or Database(settings.database_url)
        self.renderer = Renderer(settings.path(settings.templates.dir))
        self.catalog = catalog or load_catalog(settings, self.renderer)
        self.ports = Ports(
            email or email_provider(settings), webhooks or webhook_provider(settings), clock=self.clock.now
        )
        self.stopping = threading.Event()

    def tick(self, now: datetime | None = None) -> tick.TickReport:
        """Run one tick at `now` (default: the clock's time)."""
        at = now or self.clock.now()
        return tick.run(
            self.db,
            self.settings,
            self.catalog,
            self.renderer,
            self.ports,
            at,
            stopping=self.stopping.is_set,
            clock=lambda: max(at, self.clock.now()),  # leases follow the clock, never before the tick
        )

    def stop(self) -> None:
        """Make a running tick stop sending after its current batch (the worker's SIGTERM)."""
        self.stopping.set()


def load_catalog(
    settings: Settings, renderer: Renderer | None = None, paths: list[Path] | None = None
) -> catalogs.Catalog:
    """Load the configured journeys; any problem stops the engine with every problem listed."""
    catalog = catalogs.load(paths or [settings.path(settings.journeys.dir)], settings, renderer)
    catalog.raise_problems()
    return catalog


def email_provider(settings: Settings) -> EmailProvider:
    """The configured email provider."""
    if settings.email.provider == "smtp":
        return SmtpEmail.from_settings(settings)
    if settings.email.provider == "sendgrid":
        return SendgridEmail.from_settings(settings)
    return OutboxEmail(settings.path(settings.email.outbox.dir))


def webhook_provider(settings: Settings) -> WebhookProvider:
    """The configured provider for notify steps."""
    if settings.notify.provider == "http":
        retry = settings.email.retry
        return HttpWebhook(
            attempts=retry.attempts, base_seconds=retry.base_seconds, max_seconds=retry.max_seconds
        )
    return OutboxWebhook(settings.path(settings.email.outbox.dir))
