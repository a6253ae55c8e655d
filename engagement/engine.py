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
from engagement.errors import ConfigError
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
    """The configured email provider; a real one (SMTP, SendGrid) refuses the shipped example sender."""
    if settings.email.provider != "outbox":
        _check_sender(settings)
    if settings.email.provider == "smtp":
        return SmtpEmail.from_settings(settings)
    if settings.email.provider == "sendgrid":
        return SendgridEmail.from_settings(settings)
    return OutboxEmail(settings.path(settings.email.outbox.dir))


def _check_sender(settings: Settings) -> None:
    """ConfigError when real mail would go out as the demo's fictional company: its footer must carry
    the sender's own name and postal address (CAN-SPAM, and most providers' terms), from an address of its own."""
    shipped = Settings.model_construct()
    pairs = (
        ("email.from", settings.email.from_, shipped.email.from_),
        ("company.name", settings.company.name, shipped.company.name),
        ("company.postal_address", settings.company.postal_address, shipped.company.postal_address),
    )
    found = [key for key, value, example in pairs if value == example]
    if found:
        raise ConfigError(
            f"email.provider is {settings.email.provider}, but {', '.join(found)} still "
            f"{'is' if len(found) == 1 else 'are'} the shipped example (the demo's fictional company): "
            "every email carries them in its From header and footer. Set them in config.toml "
            "([email] from, [company] name and postal_address) before sending real mail."
        )


def webhook_provider(settings: Settings) -> WebhookProvider:
    """The configured provider for notify steps."""
    if settings.notify.provider == "http":
        retry = settings.email.retry
        return HttpWebhook(
            attempts=retry.attempts, base_seconds=retry.base_seconds, max_seconds=retry.max_seconds
        )
    return OutboxWebhook(settings.path(settings.email.outbox.dir))
