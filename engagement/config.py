"""Settings from `config.toml` with `ENGAGEMENT_SECTION__KEY` environment overrides."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal, cast

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from engagement import errors
from engagement.durations import Duration

CONFIG_ENV = "ENGAGEMENT_CONFIG"
DEFAULT_FILE = "config.toml"
DEV_SECRET = "dev-only-change-me"


class Section(BaseModel):
    """A config table; unknown keys are errors so typos surface."""

    model_config = ConfigDict(extra="forbid")


class Database(Section):
    url: str = "sqlite:///engagement.db"


class Folder(Section):
    dir: str


class Outbox(Section):
    dir: str = "outbox"


class Smtp(Section):
    host: str = "localhost"
    port: int = 25
    username: str | None = None
    password: str | None = None
    starttls: bool = False
    tls: bool = False
    timeout_seconds: float = 10.0


class Sendgrid(Section):
    api_key: str | None = None
    api_url: str = "https://api.sendgrid.com"
    timeout_seconds: float = 10.0
    connections: int = Field(
        8, ge=1, description="requests in flight at once, one keep-alive connection each"
    )


class Retry(Section):
    attempts: int = Field(4, ge=1, description="tries per message for 5xx and connection errors")
    base_seconds: float = Field(0.5, ge=0)
    max_seconds: float = Field(8.0, ge=0)


class Email(Section):
    provider: Literal["outbox", "smtp", "sendgrid"] = "outbox"
    retry: Retry = Retry()
    from_: str = Field("Chartwell <success@chartwell.example>", alias="from")
    reply_to: str | None = None
    outbox: Outbox = Outbox()
    smtp: Smtp = Smtp()
    sendgrid: Sendgrid = Sendgrid()

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Company(Section):
    name: str = "Chartwell Analytics, Inc."
    postal_address: str = "500 Example Street, Suite 100, Springfield, OR 97477, USA"
    app_url: str = "https://app.chartwell.example"


class Unsubscribe(Section):
    secret: str = DEV_SECRET
    mailto: str | None = None


class Server(Section):
    public_url: str = "http://127.0.0.1:8000"
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = Field(
        1, ge=1, le=64, description="`engagement serve` processes sharing the port (uvicorn workers), 1 to 64"
    )
    forwarded_allow_ips: list[str] = Field(
        ["127.0.0.1"],
        description="reverse proxies whose X-Forwarded-For names the client (the login throttle counts "
        "per client address); `*` trusts any, `[]` none",
    )


class Limits(Section):
    emails_per_contact_per_week: int = Field(
        3, ge=1, description="at least 1; set it high for no practical cap"
    )
    in_flight: int = Field(100, ge=1)
    sending_lease: Duration = timedelta(minutes=10)
    batch_size: int = Field(2000, ge=1)


class Scheduler(Section):
    tick_seconds: int = Field(60, ge=1)
    max_lateness: Duration = timedelta(days=1)


class Surveys(Section):
    min_interval: Duration = Field(
        timedelta(days=90),
        description="a contact asked a survey of one kind is not asked that kind again within it",
    )
    comment_chars: int = Field(2000, ge=1, le=5000, description="the longest survey comment kept")
    link_days: int = Field(60, ge=1, description="how long a survey email's links take answers")


class Api(Section):
    write_keys: list[str] = []
    server_keys: list[str] = []
    max_call_bytes: int = Field(32 * 1024, ge=1024, description="one Segment call (Segment's 32 KB)")
    max_batch_bytes: int = Field(500 * 1024, ge=1024, description="one /v1/batch request (Segment's 500 KB)")
    unassigned_account: str = Field(
        "unassigned", min_length=1, description="account of contacts identified before any group call"
    )


class Inapp(Section):
    token_secret: str = DEV_SECRET
    cors_origins: list[str] = Field(
        [], description="web origins (scheme://host[:port]) whose pages may call the inbox from a browser"
    )


class SendgridWebhook(Section):
    public_key: str | None = None
    max_body_bytes: int = Field(8 * 1024 * 1024, ge=1024)
    tolerance: Duration = Field(
        timedelta(minutes=10),
        gt=timedelta(0),
        description="how far a request's signed timestamp may be from now (SendGrid signs each retry afresh)",
    )


class StripeWebhook(Section):
    secret: str | None = Field(
        None,
        description="the endpoint's signing secret (whsec_…) from Stripe's dashboard; unset, the webhook answers 503",
    )
    max_body_bytes: int = Field(1024 * 1024, ge=1024)
    tolerance: Duration = Field(
        timedelta(minutes=5),
        gt=timedelta(0),
        description="how far a request's signed timestamp may be from now (Stripe's own default, 5 minutes)",
    )


class OutboundWebhook(Section):
    url: str
    headers: dict[str, str] = {}
    timeout_seconds: float = 5.0
    escape: Literal["slack", "none"] = Field(
        "slack",
        description="slack: each value shown in `text` has &, <, > escaped, so an account named <!channel> pings no one",
    )


class Webhooks(BaseModel):
    """`webhooks.sendgrid` and `webhooks.stripe` verify inbound events; every other name is a notify target."""

    model_config = ConfigDict(extra="allow")
    __pydantic_extra__: dict[str, OutboundWebhook] = Field(init=False)
    sendgrid: SendgridWebhook = SendgridWebhook()
    stripe: StripeWebhook = StripeWebhook()

    def named(self, name: str) -> OutboundWebhook | None:
        """Return the outbound webhook called `name`, if configured."""
        return (self.__pydantic_extra__ or {}).get(name)


class Notify(Section):
    provider: Literal["outbox", "http"] = "outbox"


class Bands(Section):
    green: float = 60.0
    yellow: float = 30.0


class ContactBands(Bands):
    """A contact's bands: one person's score is a fraction of an account's, the sum of its people's."""

    green: float = 20.0
    yellow: float = 8.0


WEIGHTS = {
    "open": 1.0,
    "click": 3.0,
    "nudge_seen": 0.5,
    "nudge_clicked": 3.0,
    "nudge_dismissed": 0.0,
    "milestone": 10.0,
    "active_day": 2.0,
    "unsubscribe": -20.0,
    "bounce": -5.0,
    "spamreport": -20.0,
    "survey_answered": 3.0,
}


class Scoring(Section):
    half_life_days: float = Field(14.0, gt=0)
    weights: dict[str, float] = dict(WEIGHTS)
    milestones: list[str] = Field(
        ["first_login", "integration_connected", "first_report_created"],
        description="event names whose first occurrence per contact earns the `milestone` weight",
    )
    bands: Bands = Field(Bands(), description="an account's health bands")
    contact_bands: ContactBands = Field(ContactBands(), description="a contact's health bands")

    def bands_of(self, subject_type: str) -> Bands:
        """The health bands of a contact's or an account's score."""
        return self.contact_bands if subject_type == "contact" else self.bands

    @field_validator("weights")
    @classmethod
    def _known_weights(cls, weights: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(weights) - set(WEIGHTS))
        if unknown:
            raise ValueError(f"unknown weight {', '.join(unknown)}; known: {', '.join(WEIGHTS)}")
        return {**WEIGHTS, **weights}  # a table in config.toml changes only the weights it names


NOT_ACTIVITY = ["payment_*", "invoice_*", "ticket_*", "subscription_*", "survey_*"]
GLOB_FORBIDDEN = (
    "[]\\"  # character classes and escapes: SQLite's GLOB and PostgreSQL's LIKE read them differently
)


class Events(Section):
    not_activity: list[str] = Field(
        list(NOT_ACTIVITY),
        description="glob patterns (* and ?) of event names that are not product use: never an active day",
    )

    @field_validator("not_activity")
    @classmethod
    def _plain_globs(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            if not pattern or any(ch in GLOB_FORBIDDEN for ch in pattern):
                raise ValueError(f"pattern {pattern!r}: write names with the wildcards * and ? only")
        return patterns


class TouchRule(Section):
    touch: Literal["high", "low", "tech"]
    min_mrr: float | None = None
    plans: list[str] | None = None


class Touch(Section):
    default: Literal["high", "low", "tech"] = "tech"
    rules: list[TouchRule] = [
        TouchRule(touch="high", plans=["enterprise"]),
        TouchRule(touch="high", min_mrr=5000),
        TouchRule(touch="low", min_mrr=1000),
    ]

    @field_validator("rules")
    @classmethod
    def _rules_say_something(cls, rules: list[TouchRule]) -> list[TouchRule]:
        for i, rule in enumerate(rules):
            if rule.min_mrr is None and rule.plans is None:
                raise ValueError(f"rule {i} needs min_mrr or plans")
        return rules


Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


class Reports(Section):
    users: dict[str, str] = Field(
        {}, description="dashboard logins: name = scrypt hash from `engagement report --hash-password`"
    )
    session_secret: str = DEV_SECRET
    session_hours: float = Field(12.0, gt=0)
    login_attempts_per_user: int = Field(5, ge=1, description="dashboard logins tried per user name a window")
    login_attempts_per_address: int = Field(
        20, ge=1, description="dashboard logins tried per client address a window"
    )
    login_window: Duration = Field(
        timedelta(minutes=15), gt=timedelta(0), description="the login throttle's window"
    )
    digest_recipients: list[str] = []
    digest_weekday: Weekday = "mon"
    min_sample: int = Field(30, ge=1, description="per group, before the lift gets a verdict")
    retention_window: Duration = Field(
        timedelta(days=90),
        gt=timedelta(0),
        description="journeys judged on retention: accounts still paying and MRR kept this long after entry",
    )
    calibration_lead: Duration = Field(
        timedelta(days=90),
        gt=timedelta(0),
        description="`report health` reads each account's band this long before its renewal date",
    )


class Health(Section):
    dir: str = Field(
        "scorecards", description="scorecard files (YAML or TOML); none there: health is the engagement bands"
    )
    refresh: Duration = Field(
        timedelta(hours=1), gt=timedelta(0), description="the scheduler recomputes health scores this often"
    )


class Settings(BaseSettings):
    """Everything the engine can be told; defaults run with nothing else installed."""

    model_config = SettingsConfigDict(env_prefix="ENGAGEMENT_", env_nested_delimiter="__", extra="forbid")

    database: Database = Database()
    journeys: Folder = Folder(dir="journeys")
    templates: Folder = Folder(dir="templates/email")
    email: Email = Email()
    company: Company = Company()
    unsubscribe: Unsubscribe = Unsubscribe()
    server: Server = Server()
    limits: Limits = Limits()
    surveys: Surveys = Surveys()
    scheduler: Scheduler = Scheduler()
    api: Api = Api()
    inapp: Inapp = Inapp()
    webhooks: Webhooks = Webhooks()
    notify: Notify = Notify()
    scoring: Scoring = Scoring()
    events: Events = Events()
    health: Health = Health()
    touch: Touch = Touch()
    reports: Reports = Reports()

    base_dir: Path = Field(default=Path("."), exclude=True)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))

    def path(self, value: str) -> Path:
        """Resolve a configured path against the folder of the config file."""
        path = Path(value)
        return path if path.is_absolute() else self.base_dir / path

    @property
    def database_url(self) -> str:
        """The database URL, with a relative SQLite path resolved like other paths."""
        url = self.database.url
        prefix = "sqlite:///"
        if url.startswith(prefix) and not url.startswith(prefix + "/") and ":memory:" not in url:
            return prefix + str(self.path(url[len(prefix) :]))
        return url


def load(path: str | Path | None = None, **overrides: Any) -> Settings:
    """Load settings from `path`, $ENGAGEMENT_CONFIG or ./config.toml, then the environment."""
    explicit = path or os.environ.get(CONFIG_ENV)
    file = Path(explicit) if explicit else Path(DEFAULT_FILE)
    if explicit and not file.is_file():
        raise errors.ConfigError(f"config file {file} does not exist (from --config or {CONFIG_ENV})")
    source = {**Settings.model_config, "toml_file": str(file) if file.is_file() else None}
    bound = type("Settings", (Settings,), {"model_config": source})
    try:
        settings = cast(Settings, bound(base_dir=file.resolve().parent, **overrides))
    except ValidationError as exc:
        raise errors.ConfigError(_describe(exc, file)) from exc
    except ValueError as exc:  # a TOML syntax error
        raise errors.ConfigError(f"{file}: {exc}") from exc
    return settings


def _describe(exc: ValidationError, file: Path) -> str:
    lines = [f"invalid configuration ({file} and ENGAGEMENT_* environment variables):"]
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"])
        env = "ENGAGEMENT_" + "__".join(str(p).upper() for p in err["loc"])
        lines.append(f"  {key}: {err['msg']} (set it in {file.name} or {env})")
    return "\n".join(lines)
