"""Deterministic demo customer base for "Chartwell", a fictional reporting SaaS.

Rows match the import formats (accounts, contacts, events) field for field. Everything is
drawn from one ``random.Random(seed)`` and placed relative to ``start``; the clock is never read.
"""

from __future__ import annotations

import csv
import json
import random
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TypeVar
from zoneinfo import ZoneInfo

__all__ = ["Dataset", "between", "generate", "split_by_time", "write_csv", "write_jsonl"]

Row = dict[str, object]
T = TypeVar("T")

# --- word lists -------------------------------------------------------------------------------

# fmt: off
_PREFIXES = (
    "Northwind", "Bluefin", "Cedar", "Granite", "Harbor", "Juniper", "Lumen", "Maple", "Meridian",
    "Nimbus", "Oakridge", "Pinecrest", "Quartz", "Redwood", "Silverline", "Summit", "Tidewater",
    "Vertex", "Willow", "Zephyr", "Ambergate", "Brightwater", "Copperfield", "Driftwood",
    "Evergreen", "Foxglove", "Goldcrest", "Highland", "Ironbark", "Kestrel", "Lakeside",
    "Moonstone", "Northstar", "Orchard", "Pebble", "Riverbend", "Sandstone", "Starling", "Thistle",
    "Upland", "Bramble", "Cobalt", "Alder", "Beacon", "Caldera", "Dunmore", "Elmstead", "Fairhaven",
    "Glacier", "Hollow Oak", "Indigo", "Jasper", "Keystone", "Larkspur", "Mistral", "Nettle",
    "Osprey", "Palisade", "Quill", "Rosewood", "Saffron", "Trillium", "Umber", "Vantage",
    "Wayfarer", "Yarrow", "Arbor", "Birchwood", "Coral", "Denali", "Ember", "Fjord", "Greystone",
    "Halcyon", "Ivory", "Kingfisher", "Lighthouse", "Marigold", "Nova", "Obsidian", "Pioneer",
    "Sequoia", "Tamarack", "Sablewood",
)

# Suffix -> industry, so a name and its industry trait agree.
_SUFFIXES = (
    ("Logistics", "logistics"), ("Freight", "logistics"), ("Shipping", "logistics"),
    ("Health", "healthcare"), ("Clinics", "healthcare"), ("Dental", "healthcare"),
    ("Labs", "software"), ("Analytics", "software"), ("Software", "software"),
    ("Systems", "software"), ("Foods", "food & beverage"), ("Brewing", "food & beverage"),
    ("Coffee", "food & beverage"), ("Capital", "financial services"),
    ("Insurance", "financial services"), ("Finance", "financial services"),
    ("Retail", "retail"), ("Outfitters", "retail"), ("Goods", "retail"), ("Energy", "energy"),
    ("Solar", "energy"), ("Media", "media"), ("Studio", "media"),
    ("Partners", "professional services"), ("Consulting", "professional services"),
    ("Legal", "professional services"),
    ("Robotics", "manufacturing"), ("Manufacturing", "manufacturing"), ("Works", "manufacturing"),
    ("Realty", "real estate"), ("Properties", "real estate"), ("Learning", "education"),
    ("Academy", "education"), ("Travel", "travel"), ("Hotels", "travel"),
    ("Nonprofit", "nonprofit"),
)

_TLDS = ((".com", 62), (".io", 23), (".co", 15))

# IANA zone -> (weight, name region)
_TIMEZONES: dict[str, tuple[int, str]] = {
    "America/New_York": (18, "en"),
    "America/Chicago": (9, "en"),
    "America/Denver": (4, "en"),
    "America/Los_Angeles": (12, "en"),
    "America/Toronto": (3, "en"),
    "America/Mexico_City": (2, "es"),
    "America/Sao_Paulo": (5, "pt"),
    "Europe/London": (12, "en"),
    "Europe/Berlin": (8, "de"),
    "Europe/Paris": (6, "fr"),
    "Europe/Madrid": (4, "es"),
    "Asia/Kolkata": (6, "in"),
    "Asia/Singapore": (4, "sg"),
    "Asia/Tokyo": (4, "jp"),
    "Australia/Sydney": (5, "en"),
    "Africa/Lagos": (3, "ng"),
}

_FIRST_NAMES: dict[str, tuple[str, ...]] = {
    "en": (
        "James", "Olivia", "Liam", "Emma", "Noah", "Ava", "William", "Sophia", "Benjamin",
        "Isabella", "Lucas", "Mia", "Henry", "Charlotte", "Alexander", "Amelia", "Daniel", "Harper",
        "Michael", "Evelyn", "Ethan", "Abigail", "Jacob", "Emily", "Logan", "Ella", "Jackson",
        "Grace", "Samuel", "Chloe", "David", "Hannah", "Ryan", "Lily", "Nathan", "Zoe", "Owen",
        "Natalie", "Caleb", "Sarah", "Tyler", "Megan", "Connor", "Rachel", "Dylan", "Laura",
        "Aaron", "Kate", "Marcus", "Jordan",
    ),
    "es": (
        "Sofía", "Mateo", "Lucía", "Santiago", "Valentina", "Diego", "Camila", "Alejandro",
        "Martina", "Javier", "Elena", "Pablo", "Carmen", "Andrés", "Paula", "Miguel", "Daniela",
        "Jorge", "Isabel", "Raúl",
    ),
    "pt": (
        "João", "Ana", "Pedro", "Beatriz", "Gabriel", "Mariana", "Rafael", "Juliana", "Fernanda",
        "Thiago", "Larissa", "Bruno", "Camila", "Felipe", "Letícia", "Gustavo", "Carolina",
        "Rodrigo", "Bianca", "Vinícius",
    ),
    "de": (
        "Lukas", "Anna", "Jonas", "Lea", "Felix", "Maximilian", "Laura", "Paul", "Katharina",
        "Leon", "Sophie", "Tobias", "Julia", "Florian", "Lena", "Matthias", "Miriam", "Stefan",
        "Clara", "Jürgen", "Sabine", "Niklas",
    ),
    "fr": (
        "Camille", "Louis", "Léa", "Hugo", "Manon", "Arthur", "Chloé", "Jules", "Inès", "Théo",
        "Juliette", "Raphaël", "Margaux", "Antoine", "Élodie", "Nicolas", "Amélie", "Mathieu",
        "Céline", "François",
    ),
    "in": (
        "Aarav", "Priya", "Arjun", "Ananya", "Rohan", "Diya", "Vikram", "Kavya", "Aditya",
        "Ishita", "Rahul", "Neha", "Siddharth", "Pooja", "Karan", "Sneha", "Aniket", "Meera",
        "Varun", "Shreya", "Nikhil", "Divya",
    ),
    "sg": (
        "Wei", "Jia Hui", "Jun Jie", "Mei Ling", "Hui Min", "Kai", "Xin Yi", "Zhi Hao", "Siti",
        "Ahmad", "Nur", "Farhan", "Rachel", "Marcus", "Jasmine", "Daryl", "Shawn", "Cheryl",
    ),
    "jp": (
        "Haruto", "Yui", "Sota", "Aoi", "Yuto", "Hina", "Ren", "Sakura", "Kenji", "Yuki", "Takumi",
        "Mio", "Daiki", "Emi", "Hiroshi", "Naoko", "Kaito", "Riko", "Shota", "Ayaka",
    ),
    "ng": (
        "Chinedu", "Ngozi", "Oluwaseun", "Adaeze", "Emeka", "Funmilayo", "Tunde", "Chiamaka",
        "Ifeanyi", "Yetunde", "Babajide", "Amara", "Obinna", "Folake", "Segun", "Kemi", "Uche",
        "Zainab", "Ibrahim", "Aisha",
    ),
}

_LAST_NAMES: dict[str, tuple[str, ...]] = {
    "en": (
        "Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "Wilson", "Anderson",
        "Taylor", "Thomas", "Moore", "Martin", "Jackson", "Thompson", "White", "Harris", "Clark",
        "Lewis", "Robinson", "Walker", "Young", "Allen", "King", "Wright", "Scott", "Hill", "Green",
        "Adams", "Baker", "Nelson", "Carter", "Mitchell", "Roberts", "Turner", "Phillips",
        "Campbell", "Parker", "Evans", "Edwards", "Collins", "Stewart", "Murphy", "Cook", "Morgan",
        "Cooper", "Reed", "Bailey", "Kelly", "Hughes", "Foster", "Brooks", "Price", "Bennett",
        "O'Brien", "Walsh", "Fitzgerald", "McAllister",
    ),
    "es": (
        "García", "Martínez", "López", "Sánchez", "Pérez", "Gómez", "Fernández", "Ruiz", "Díaz",
        "Moreno", "Álvarez", "Romero", "Navarro", "Torres", "Domínguez", "Vázquez", "Ramos", "Gil",
        "Serrano", "Molina", "Castro", "Ortega",
    ),
    "pt": (
        "Silva", "Santos", "Oliveira", "Souza", "Rodrigues", "Ferreira", "Alves", "Pereira", "Lima",
        "Gomes", "Costa", "Ribeiro", "Martins", "Carvalho", "Almeida", "Lopes", "Barbosa",
        "Cardoso", "Rocha", "Moura",
    ),
    "de": (
        "Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Schulz",
        "Hoffmann", "Koch", "Bauer", "Richter", "Klein", "Wolf", "Schröder", "Neumann", "Schwarz",
        "Zimmermann", "Braun", "Krüger", "Hartmann", "Lange", "Werner",
    ),
    "fr": (
        "Bernard", "Dubois", "Robert", "Richard", "Petit", "Durand", "Leroy", "Moreau", "Simon",
        "Laurent", "Lefebvre", "Michel", "Bertrand", "Roux", "Vincent", "Fournier", "Morel",
        "Girard", "Bonnet", "Dupont", "Lambert", "Fontaine", "Rousseau", "Chevalier",
    ),
    "in": (
        "Sharma", "Patel", "Gupta", "Singh", "Kumar", "Reddy", "Iyer", "Nair", "Mehta", "Desai",
        "Joshi", "Rao", "Chatterjee", "Banerjee", "Mukherjee", "Kapoor", "Malhotra", "Verma",
        "Agarwal", "Bhat", "Menon", "Pillai",
    ),
    "sg": (
        "Tan", "Lim", "Lee", "Ng", "Ong", "Wong", "Goh", "Chua", "Chan", "Koh", "Teo", "Ang", "Yeo",
        "Tay", "Ho", "Low", "Toh", "Sim", "Chong", "Rahman", "Ismail",
    ),
    "jp": (
        "Sato", "Suzuki", "Takahashi", "Tanaka", "Watanabe", "Ito", "Yamamoto", "Nakamura",
        "Kobayashi", "Kato", "Yoshida", "Yamada", "Sasaki", "Matsumoto", "Inoue", "Kimura",
        "Hayashi", "Shimizu", "Yamaguchi", "Mori",
    ),
    "ng": (
        "Okafor", "Adeyemi", "Okonkwo", "Balogun", "Eze", "Adebayo", "Nwosu", "Ogunleye", "Chukwu",
        "Bello", "Afolabi", "Obi", "Oyelaran", "Nnamdi", "Abubakar", "Olawale", "Okeke", "Ibekwe",
        "Adewale", "Danjuma",
    ),
}

_JOB_TITLES: dict[str, tuple[str, ...]] = {
    "admin": (
        "Head of Operations", "Operations Manager", "Finance Director", "CTO", "Head of Data",
        "COO", "Founder", "IT Manager", "RevOps Lead", "VP Finance",
    ),
    "member": (
        "Data Analyst", "Business Analyst", "Financial Analyst", "Marketing Manager",
        "Product Manager", "Analytics Engineer", "Sales Operations Analyst", "Controller",
        "Growth Marketer", "BI Developer", "Account Manager", "Customer Success Manager",
    ),
    "viewer": (
        "Sales Director", "CEO", "Account Executive", "Regional Manager", "Board Member",
        "Store Manager", "Customer Support Lead", "HR Business Partner",
    ),
}

_REPORT_TEMPLATES = (
    "weekly-revenue", "pipeline-overview", "marketing-funnel", "churn-cohorts", "inventory-levels",
    "support-sla", "cash-flow", "headcount", "ad-spend-roi", "product-usage",
)
_INTEGRATIONS = (
    "postgres", "mysql", "bigquery", "snowflake", "google_sheets", "hubspot", "salesforce",
    "stripe", "shopify", "quickbooks",
)
_SHARE_CHANNELS = ("link", "email", "slack")
# fmt: on

# --- plans ------------------------------------------------------------------------------------

_PAYING = ("starter", "pro", "business", "enterprise")
_EXISTING_PLAN_WEIGHTS = (
    ("free", 30),
    ("starter", 28),
    ("pro", 24),
    ("business", 9),
    ("enterprise", 4),
    ("cancelled", 5),
)
_NEW_PLAN_WEIGHTS = (("free", 50), ("starter", 30), ("pro", 16), ("business", 4))
# Inclusive MRR bounds per plan (USD per month).
_MRR_RANGE: dict[str, tuple[float, float]] = {
    "free": (0.0, 0.0),
    "cancelled": (0.0, 0.0),
    "starter": (29.0, 99.0),
    "pro": (149.0, 799.0),
    "business": (1000.0, 4000.0),
    "enterprise": (5000.0, 25000.0),
}
_CONTACT_COUNT_WEIGHTS = ((2, 24), (3, 22), (4, 17), (5, 13), (6, 10), (7, 8), (8, 6))

_HISTORY_DAYS = 540  # existing accounts signed up within ~18 months before start
_NEW_SHARE = 0.25  # share of accounts that sign up inside the simulated window
_RENEWAL_COHORT_SHARE = 0.3  # paying accounts placed to renew within 60 days of start
_ACTIVITY_DAYS = 30  # active_day history length before start
_SOURCE = "demo"
_LARGE = ("business", "enterprise")
# Local hours as (earliest, latest, most likely) for triangular draws.
_SIGNUP_HOURS = (7.0, 22.0, 11.0)
_WORK_HOURS = (8.0, 19.0, 11.0)
_ACTIVE_HOURS = (8.0, 19.0, 11.5)


# --- public API -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Dataset:
    """Accounts, contacts and events as import-ready rows."""

    accounts: list[Row]
    contacts: list[Row]
    events: list[Row]


def generate(*, start: datetime, days: int = 60, accounts: int = 520, seed: int = 7) -> Dataset:
    """Build a deterministic Chartwell customer base around the window [start, start + days)."""
    if start.tzinfo is None or start.utcoffset() is None:
        raise ValueError("start must be timezone-aware, e.g. datetime(2026, 3, 2, tzinfo=UTC)")
    if days < 0:
        raise ValueError(f"days must be >= 0, got {days}")
    if accounts < 1:
        raise ValueError(f"accounts must be >= 1, got {accounts}")
    return _Generator(random.Random(seed), start.astimezone(UTC), days, accounts).run()


def split_by_time(dataset: Dataset, until: datetime) -> Dataset:
    """Rows whose time (signup, creation or event timestamp) is at or before ``until``."""
    _require_aware(until, "until")
    return _select(dataset, lambda moment: moment <= until)


def between(dataset: Dataset, after: datetime, until: datetime) -> Dataset:
    """Rows whose time falls in the half-open interval (after, until]."""
    _require_aware(after, "after")
    _require_aware(until, "until")
    return _select(dataset, lambda moment: after < moment <= until)


def write_csv(rows: list[Row], path: Path) -> None:
    """Write rows as CSV with a header row, JSON objects for traits/properties, ISO times."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        if not rows:
            return
        fieldnames = list(rows[0])
        writer = csv.writer(handle)
        writer.writerow(fieldnames)
        for row in rows:
            writer.writerow([_csv_value(row.get(name)) for name in fieldnames])


def write_jsonl(rows: list[Row], path: Path) -> None:
    """Write rows as JSON Lines, one object per row, with ISO 8601 times and dates."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, default=_json_default, ensure_ascii=False))
            handle.write("\n")


# --- selection and serialisation --------------------------------------------------------------

_TIME_FIELDS = ("timestamp", "created_at", "signed_up_at")


def _require_aware(moment: datetime, name: str) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {moment.isoformat()}")


def _row_time(row: Row) -> datetime:
    for name in _TIME_FIELDS:
        value = row.get(name)
        if isinstance(value, datetime):
            return value
    raise ValueError(f"row {row.get('id')!r} has none of the time fields {_TIME_FIELDS}")


def _select(dataset: Dataset, keep: Callable[[datetime], bool]) -> Dataset:
    def pick(rows: list[Row]) -> list[Row]:
        return [row for row in rows if keep(_row_time(row))]

    return Dataset(pick(dataset.accounts), pick(dataset.contacts), pick(dataset.events))


def _iso(value: date) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    return value.isoformat()


def _csv_value(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, date):
        return _iso(value)
    if isinstance(value, dict | list):
        return json.dumps(value, default=_json_default, ensure_ascii=False, sort_keys=True)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _json_default(value: object) -> str:
    if isinstance(value, date):
        return _iso(value)
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


# --- generation -------------------------------------------------------------------------------


@dataclass
class _Account:
    name: str
    domain: str
    industry: str
    plan: str
    seats: int
    mrr: float
    signed_up_at: datetime
    renewal_date: date | None
    timezone: str
    health: str
    contact_count: int
    touch: str | None = None
    traits: Row = field(default_factory=dict)
    contacts: list[_Contact] = field(default_factory=list)
    id: str = ""


@dataclass
class _Contact:
    account: _Account
    first_name: str
    last_name: str
    email: str
    role: str
    timezone: str
    created_at: datetime
    traits: Row
    id: str = ""
    active_days: int = 0
    reported: bool = False


@dataclass
class _Event:
    contact: _Contact
    name: str
    timestamp: datetime
    properties: Row


class _Generator:
    """One generation run: all randomness flows through ``rng`` in a fixed order."""

    def __init__(self, rng: random.Random, start: datetime, days: int, accounts: int) -> None:
        self.rng = rng
        self.start = start
        self.end = start + timedelta(days=days)
        self.days = days
        self.account_total = accounts
        self.zones = {name: ZoneInfo(name) for name in _TIMEZONES}
        self.zone_names = list(_TIMEZONES)
        self.zone_weights = [weight for weight, _ in _TIMEZONES.values()]
        self.events: list[_Event] = []

    def run(self) -> Dataset:
        accounts = self._accounts()
        for account in accounts:
            self._contacts(account)
            for contact in account.contacts:
                self._history(contact)
            self._account_traits(account)
        self._strategic(accounts)
        return self._rows(accounts)

    # accounts

    def _accounts(self) -> list[_Account]:
        rng = self.rng
        new_count = round(self.account_total * _NEW_SHARE) if self.days > 0 else 0
        existing = self.account_total - new_count
        names = self._company_names(self.account_total)
        new_days = self._signup_days(new_count)
        result: list[_Account] = []
        for index, (name, industry, domain) in enumerate(names):
            is_new = index >= existing
            plan = _weighted(rng, _NEW_PLAN_WEIGHTS if is_new else _EXISTING_PLAN_WEIGHTS)
            zone = rng.choices(self.zone_names, self.zone_weights)[0]
            if is_new:
                signed_up_at = self._new_signup(new_days[index - existing], zone)
            else:
                signed_up_at = self._existing_signup(plan, zone)
            contact_count = self._contact_count(plan)
            seats = self._seats(plan, contact_count)
            health = (
                "at_risk"
                if plan == "cancelled"
                else _weighted(rng, (("thriving", 35), ("steady", 45), ("at_risk", 20)))
            )
            anniversary = _next_anniversary(signed_up_at.date(), self.start.date())
            renewal = anniversary if plan in _PAYING else None
            result.append(
                _Account(
                    name=name,
                    domain=domain,
                    industry=industry,
                    plan=plan,
                    seats=seats,
                    mrr=self._mrr(plan, seats),
                    signed_up_at=signed_up_at,
                    renewal_date=renewal,
                    timezone=zone,
                    health=health,
                    contact_count=contact_count,
                )
            )
        return result

    def _company_names(self, count: int) -> list[tuple[str, str, str]]:
        rng = self.rng
        names: list[tuple[str, str, str]] = []
        used_names: dict[str, None] = {}
        used_domains: dict[str, None] = {}
        for index in range(count):
            for attempt in range(200):
                prefix = rng.choice(_PREFIXES)
                suffix, industry = rng.choice(_SUFFIXES)
                name = f"{prefix} {suffix}" if attempt < 100 else f"{prefix} {suffix} {index}"
                if name not in used_names:
                    break
            tld = _weighted(rng, _TLDS)
            stem = _ascii_slug(name)
            domain = f"{stem}{tld}"
            if domain in used_domains:
                domain = f"{stem}{index}{tld}"
            used_names[name] = None
            used_domains[domain] = None
            names.append((name, industry, domain))
        return names

    def _signup_days(self, count: int) -> list[int]:
        """Window day offsets for new signups: every weekday gets one, weekends fewer."""
        rng = self.rng
        if count == 0:
            return []
        offsets = list(range(self.days))
        weekday = [(self.start + timedelta(days=d)).weekday() < 5 for d in offsets]
        weights = [1.0 if is_weekday else 0.3 for is_weekday in weekday]
        chosen = [d for d in offsets if weekday[d]] if count >= sum(weekday) else []
        chosen += rng.choices(offsets, weights, k=count - len(chosen))
        rng.shuffle(chosen)
        return chosen

    def _new_signup(self, offset: int, zone: str) -> datetime:
        day = (self.start + timedelta(days=offset)).date()
        moment = self._local_time(day, zone, _SIGNUP_HOURS)
        # Keep the UTC calendar day that was drawn, so weekday arrivals stay as planned.
        while moment.date() > day:
            moment -= timedelta(days=1)
        while moment.date() < day:
            moment += timedelta(days=1)
        while moment < self.start:
            moment += timedelta(days=1)
        while moment >= self.end:
            moment -= timedelta(days=1)
        return max(moment, self.start)

    def _existing_signup(self, plan: str, zone: str) -> datetime:
        rng = self.rng
        today = self.start.date()
        if plan in _PAYING and rng.random() < _RENEWAL_COHORT_SHARE:
            # Last year's cohort: the anniversary lands 2-58 days after start.
            day = _add_years(today + timedelta(days=rng.randint(2, 58)), -1)
        elif plan == "cancelled":
            day = today - timedelta(days=rng.randint(90, _HISTORY_DAYS))
        else:
            # More recent signups are more frequent (density falls off with age).
            day = today - timedelta(days=1 + int((_HISTORY_DAYS - 1) * rng.random() ** 1.5))
        moment = self._local_time(day, zone, _SIGNUP_HOURS)
        while moment >= self.start:
            moment -= timedelta(days=1)
        return moment

    def _contact_count(self, plan: str) -> int:
        rng = self.rng
        if plan in _LARGE:
            return rng.randint(5, 8)
        if plan == "cancelled":
            return rng.randint(2, 3)
        return _weighted(rng, _CONTACT_COUNT_WEIGHTS)

    def _seats(self, plan: str, contacts: int) -> int:
        rng = self.rng
        if plan == "starter":
            return max(contacts, rng.randint(2, 5))
        if plan == "pro":
            return max(contacts, rng.randint(3, 15))
        if plan == "business":
            return rng.randint(10, 60)
        if plan == "enterprise":
            return rng.randint(40, 300)
        return contacts

    def _mrr(self, plan: str, seats: int) -> float:
        low, high = _MRR_RANGE[plan]
        if high == 0.0:
            return 0.0
        list_price = {
            "starter": 29.0 + 10.0 * (seats - 1),
            "pro": 149.0 + 46.0 * (seats - 3),
            "business": 1000.0 + 60.0 * (seats - 10),
            "enterprise": 5000.0 + 77.0 * (seats - 40),
        }[plan]
        discount = _weighted(self.rng, ((1.0, 60), (0.9, 20), (0.85, 15), (0.8, 5)))
        return round(min(high, max(low, list_price * discount)), 2)

    def _strategic(self, accounts: list[_Account]) -> None:
        """Mark ~1% of accounts (large, established ones first) as high-touch."""
        wanted = max(1, round(len(accounts) * 0.01))
        large = [a for a in accounts if a.plan in _LARGE and a.signed_up_at < self.start]
        pool = large if len(large) >= wanted else accounts
        for account in self.rng.sample(pool, min(wanted, len(pool))):
            account.touch = "high"

    # contacts

    def _contacts(self, account: _Account) -> None:
        rng = self.rng
        seen_emails: dict[str, None] = {}
        for position in range(account.contact_count):
            if position == 0:
                role = "admin"
                created_at = account.signed_up_at
            else:
                role = "viewer" if rng.random() < 0.18 else "member"
                created_at = self._invited_at(account)
            zone = account.timezone if rng.random() < 0.8 else self._any_zone()
            region = _TIMEZONES[zone][1] if rng.random() < 0.7 else _TIMEZONES[self._any_zone()][1]
            first = rng.choice(_FIRST_NAMES[region])
            last = rng.choice(_LAST_NAMES[region])
            local = f"{_ascii_slug(first)}.{_ascii_slug(last)}"
            email = f"{local}@{account.domain}"
            suffix = 2
            while email in seen_emails:
                email = f"{local}{suffix}@{account.domain}"
                suffix += 1
            seen_emails[email] = None
            if role == "viewer":
                seat_type = "read_only"
            else:
                seat_type = "guest" if role == "member" and rng.random() < 0.1 else "full"
            account.contacts.append(
                _Contact(
                    account=account,
                    first_name=first,
                    last_name=last,
                    email=email,
                    role=role,
                    timezone=zone,
                    created_at=created_at,
                    traits={"job_title": rng.choice(_JOB_TITLES[role]), "seat_type": seat_type},
                )
            )

    def _any_zone(self) -> str:
        return self.rng.choices(self.zone_names, self.zone_weights)[0]

    def _invited_at(self, account: _Account) -> datetime:
        """Teammates join over the weeks after signup; some join much later as teams grow."""
        rng = self.rng
        signed = account.signed_up_at
        horizon = self.end - signed
        if rng.random() < 0.8:
            offset = timedelta(days=min(75.0, rng.expovariate(1 / 9)))
        else:
            offset = horizon * rng.random()
        moment = self._local_time((signed + offset).date(), account.timezone, _WORK_HOURS)
        if moment <= signed:
            moment = signed + timedelta(minutes=rng.randint(5, 240))
        if moment >= self.end:
            seconds = horizon.total_seconds() * rng.uniform(0.05, 0.95)
            moment = signed + timedelta(seconds=int(seconds))
        return moment

    # events

    def _history(self, contact: _Contact) -> None:
        method = "self_serve" if contact.role == "admin" else "invite"
        self._emit(contact, "signed_up", contact.created_at, {"source": _SOURCE, "method": method})
        if contact.created_at >= self.start:
            return
        first_login = self._milestones(contact)
        if first_login is not None:
            self._active_days(contact, first_login)

    def _milestones(self, contact: _Contact) -> datetime | None:
        """Emit the onboarding funnel up to where this contact dropped off or start cut it."""
        rng = self.rng
        health = contact.account.health
        factor = {"thriving": 1.08, "steady": 1.0, "at_risk": 0.8}[health]
        viewer = contact.role == "viewer"
        # Conditional probability of each step given the previous one, and median delay (hours).
        funnel = (
            ("first_login", 0.93, 0.0),
            ("integration_connected", 0.1 if viewer else 0.72, 30.0),
            ("first_report_created", 0.5 if viewer else 0.8, 40.0),
            ("report_shared", 0.6, 120.0),
        )
        template = rng.choice(_REPORT_TEMPLATES)
        previous = contact.created_at
        first_login: datetime | None = None
        for name, probability, median_hours in funnel:
            if rng.random() >= min(0.98, probability * factor):
                break
            if name == "first_login":
                if rng.random() < 0.65:
                    delay = timedelta(minutes=rng.randint(2, 90))
                else:
                    delay = timedelta(hours=rng.expovariate(1 / 30))
                moment = previous + delay
            else:
                delay = timedelta(hours=rng.lognormvariate(0.0, 1.0) * median_hours)
                day = (previous + delay).date()
                moment = self._local_time(day, contact.timezone, _WORK_HOURS)
                if moment <= previous:
                    moment = previous + timedelta(minutes=rng.randint(10, 120))
            if moment >= self.start:
                break
            properties: Row = {"source": _SOURCE}
            if name == "integration_connected":
                properties["integration"] = rng.choice(_INTEGRATIONS)
            elif name == "first_report_created":
                properties["report_template"] = template
                contact.reported = True
            elif name == "report_shared":
                properties["report_template"] = template
                properties["channel"] = rng.choice(_SHARE_CHANNELS)
            self._emit(contact, name, moment, properties)
            previous = moment
            if name == "first_login":
                first_login = moment
        return first_login

    def _active_days(self, contact: _Contact, first_login: datetime) -> None:
        """One active_day per active local day over the last 30 days before start."""
        rng = self.rng
        if contact.account.plan == "cancelled":
            level = "low"
        else:
            engaged, casual, low = (60, 25, 15) if contact.reported else (30, 35, 35)
            tilt = {
                "thriving": (1.5, 1.0, 0.5),
                "steady": (1.0, 1.0, 1.0),
                "at_risk": (0.3, 0.8, 2.5),
            }
            e, c, lo = tilt[contact.account.health]
            options = (("engaged", engaged * e), ("casual", casual * c), ("low", low * lo))
            level = _weighted(rng, options)
        rate = {"engaged": 0.8, "casual": 0.32, "low": 0.05}[level]
        earliest = self.start - timedelta(days=_ACTIVITY_DAYS)
        for back in range(_ACTIVITY_DAYS, -1, -1):
            day = (self.start - timedelta(days=back)).date()
            chance = rate if day.weekday() < 5 else rate * 0.25
            if rng.random() >= chance:
                continue
            moment = self._local_time(day, contact.timezone, _ACTIVE_HOURS)
            if earliest <= moment < self.start and moment > first_login:
                self._emit(contact, "active_day", moment, {"source": _SOURCE})
                contact.active_days += 1

    def _emit(self, contact: _Contact, name: str, moment: datetime, properties: Row) -> None:
        self.events.append(_Event(contact, name, moment, properties))

    # account traits

    def _account_traits(self, account: _Account) -> None:
        rng = self.rng
        if account.signed_up_at >= self.start:
            reports = dashboards = 0
            active_users = 1
        else:
            known = [c for c in account.contacts if c.created_at < self.start]
            active = sum(1 for c in known if c.active_days > 0)
            share = active / len(known)
            unknown_seats = max(0, account.seats - len(known))
            extra_active = round(unknown_seats * share * rng.uniform(0.6, 1.0))
            active_users = min(account.seats, active + extra_active)
            reporting = [c for c in known if c.reported]
            reports = sum(1 + int(c.active_days * rng.uniform(0.2, 0.6)) for c in reporting)
            reports += int(extra_active * rng.uniform(0.5, 2.0))
            dashboards = reports // rng.randint(3, 6) + (1 if reports else 0)
        account.traits = {
            "industry": account.industry,
            "seats": account.seats,
            "reports_created": reports,
            "dashboards": dashboards,
            "active_users": active_users,
        }

    # rows

    def _local_time(self, day: date, zone: str, hours: tuple[float, float, float]) -> datetime:
        """A UTC moment at a plausible local hour on ``day`` in ``zone``."""
        minute = int(self.rng.triangular(*hours) * 60)
        local = datetime(
            day.year,
            day.month,
            day.day,
            minute // 60,
            minute % 60,
            self.rng.randrange(60),
            tzinfo=self.zones[zone],
        )
        return local.astimezone(UTC)

    def _rows(self, accounts: list[_Account]) -> Dataset:
        # Ids follow creation order, as a production database would have issued them.
        ordered_accounts = sorted(accounts, key=lambda a: a.signed_up_at)
        for number, account in enumerate(ordered_accounts, start=1):
            account.id = f"acc-{number:04d}"
        everyone = [c for a in ordered_accounts for c in a.contacts]
        contacts = sorted(everyone, key=lambda c: c.created_at)
        for number, contact in enumerate(contacts, start=1):
            contact.id = f"con-{number:05d}"
        events = sorted(self.events, key=lambda e: e.timestamp)
        return Dataset(
            accounts=[
                {
                    "id": a.id,
                    "name": a.name,
                    "plan": a.plan,
                    "mrr": a.mrr,
                    "touch": a.touch,
                    "signed_up_at": a.signed_up_at,
                    "renewal_date": a.renewal_date,
                    "traits": a.traits,
                }
                for a in ordered_accounts
            ],
            contacts=[
                {
                    "id": c.id,
                    "account_id": c.account.id,
                    "email": c.email,
                    "first_name": c.first_name,
                    "last_name": c.last_name,
                    "role": c.role,
                    "timezone": c.timezone,
                    "created_at": c.created_at,
                    "traits": c.traits,
                }
                for c in contacts
            ],
            events=[
                {
                    "id": f"evt-{number:06d}",
                    "contact_id": e.contact.id,
                    "account_id": e.contact.account.id,
                    "name": e.name,
                    "timestamp": e.timestamp,
                    "properties": e.properties,
                }
                for number, e in enumerate(events, start=1)
            ],
        )


# --- helpers ----------------------------------------------------------------------------------


def _weighted(rng: random.Random, options: Sequence[tuple[T, float]]) -> T:
    values = [value for value, _ in options]
    weights = [weight for _, weight in options]
    return rng.choices(values, weights)[0]


_TRANSLITERATE = str.maketrans({"ø": "o", "ß": "ss", "æ": "ae", "ł": "l", "đ": "d", "œ": "oe"})


def _ascii_slug(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.lower().translate(_TRANSLITERATE))
    return "".join(ch for ch in decomposed if ch.isascii() and ch.isalnum())


def _add_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February in a non-leap year
        return day.replace(year=day.year + years, day=28)


def _next_anniversary(signed_up: date, on_or_after: date) -> date:
    years = 1
    while (anniversary := _add_years(signed_up, years)) < on_or_after:
        years += 1
    return anniversary
