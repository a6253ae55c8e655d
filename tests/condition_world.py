"""Small customer worlds for the condition tests: rows by hand, or drawn by hypothesis."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import strategies as st
from sqlalchemy import Connection, select

from engagement.conditions import ast, pure, sql
from engagement.conditions.context import EvalContext, day_number
from engagement.store import schema
from engagement.store.database import Database

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
WORLD_TABLES = (
    schema.survey_answers,
    schema.events,
    schema.milestones,
    schema.account_milestones,
    schema.contact_scores,
    schema.account_scores,
    schema.contacts,
    schema.accounts,
)  # children first, so deleting in this order respects the foreign keys

Row = dict[str, Any]


@dataclass
class World:
    """The rows of every table a condition can look at."""

    accounts: list[Row] = field(default_factory=list)
    contacts: list[Row] = field(default_factory=list)
    events: list[Row] = field(default_factory=list)
    milestones: list[Row] = field(default_factory=list)
    account_milestones: list[Row] = field(default_factory=list)
    contact_scores: list[Row] = field(default_factory=list)
    account_scores: list[Row] = field(default_factory=list)
    survey_answers: list[Row] = field(default_factory=list)


def account(id: str, **fields: Any) -> Row:
    """An account row with defaults for every column a condition can read."""
    row: Row = {
        "id": id, "name": "", "plan": None, "mrr": 0.0, "touch": "tech",
        "signed_up_at": None, "renewal_date": None, "traits": {},
    }  # fmt: skip
    return row | fields


def contact(id: str, account_id: str = "a1", **fields: Any) -> Row:
    """A contact row with defaults for every column a condition can read."""
    row: Row = {
        "id": id, "account_id": account_id, "email": None, "first_name": "", "last_name": "",
        "role": None, "timezone": "UTC", "created_at": None, "traits": {},
    }  # fmt: skip
    return row | fields


def event(contact_id: str, name: str, at: datetime, account_id: str | None = None) -> Row:
    """One event row."""
    return {
        "contact_id": contact_id, "account_id": account_id, "name": name, "timestamp": at,
        "properties": {}, "source": "product", "received_at": at,
    }  # fmt: skip


def reached(contact_id: str, name: str, at: datetime) -> Row:
    """A contact milestone row."""
    return {"contact_id": contact_id, "name": name, "account_id": None, "reached_at": at}


def account_reached(account_id: str, name: str, at: datetime) -> Row:
    """An account milestone row."""
    return {"account_id": account_id, "name": name, "reached_at": at}


def contact_score(contact_id: str, value: float, as_of: datetime) -> Row:
    """A contact score row stored as of `as_of`."""
    return {"contact_id": contact_id, "value": value, "as_of_day": day_number(as_of)}


def account_score(account_id: str, value: float, as_of: datetime) -> Row:
    """An account score row stored as of `as_of`."""
    return {"account_id": account_id, "value": value, "as_of_day": day_number(as_of)}


def open_database(url: str) -> Database:
    """A database with every table created, empty (a PostgreSQL database may hold an earlier test's rows)."""
    db = Database(url)
    if db.dialect == "postgresql":
        schema.metadata.drop_all(db.engine)
    db.create_all()
    return db


def drop_database(db: Database) -> None:
    """Drop every table again and close the pool (PostgreSQL databases outlive the test)."""
    schema.metadata.drop_all(db.engine)
    db.dispose()


def store(conn: Connection, world: World) -> None:
    """Replace whatever rows are in the tables with this world's rows."""
    for table in WORLD_TABLES:
        conn.execute(table.delete())
    for table in reversed(WORLD_TABLES):
        rows = getattr(world, table.name + "s")  # survey_answer -> survey_answers
        if rows:
            conn.execute(table.insert(), rows)


def sql_ids(conn: Connection, cond: ast.Condition, ctx: EvalContext) -> set[str]:
    """The subjects the compiled SQL selects."""
    source, subject = sql.subjects_from(ctx.audience)
    query = select(subject).select_from(source).where(sql.compile_condition(cond, ctx))
    return set(conn.execute(query).scalars())


def pure_ids(conn: Connection, cond: ast.Condition, ctx: EvalContext) -> set[str]:
    """The subjects for which the Python evaluator says yes, one load_facts at a time."""
    source, subject = sql.subjects_from(ctx.audience)
    found = set()
    for subject_id in conn.execute(select(subject).select_from(source)).scalars():
        facts = pure.load_facts(conn, ctx.audience, subject_id)
        assert facts is not None
        if pure.evaluate(cond, facts, ctx):
            found.add(subject_id)
    return found


# ---------------------------------------------------------------- hypothesis strategies

NAMES = ("x", "y")  # event and milestone names
KEYS = ("a", "0")  # trait keys; "0" must not index a JSON array
TEXT = st.text(alphabet="aAb", max_size=3)
# dyadic floats only: every engine parses and prints them exactly
FLOATS = st.sampled_from([0.0, 0.5, 1.0, -1.5, 2.25, 5.0, 100.0])
NUMBERS = st.integers(-3, 6) | FLOATS
SCALARS = st.none() | st.booleans() | NUMBERS | TEXT
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=2) | st.dictionaries(st.sampled_from(KEYS), inner, max_size=2),
    max_leaves=4,
)
TRAITS = st.dictionaries(st.sampled_from(KEYS), JSON | st.lists(SCALARS, min_size=1, max_size=2), max_size=3)
# instants around NOW, often on or next to a whole-day boundary
SHIFTS = st.sampled_from(
    [
        timedelta(0),
        timedelta(microseconds=1),
        -timedelta(microseconds=1),
        timedelta(hours=5),
        -timedelta(hours=13),
    ]
)
OFFSETS = st.builds(lambda days, shift: timedelta(days=days) + shift, st.integers(-20, 20), SHIFTS)
INSTANTS = OFFSETS.map(lambda offset: NOW + offset)
DAYS = st.integers(-70, 70).map(lambda days: NOW.date() + timedelta(days=days))
SCORES = st.tuples(
    st.integers(-20, 120).map(float) | st.floats(-20, 120, allow_nan=False),
    st.floats(-45, 3, allow_nan=False),  # days before NOW the score was stored
)


@st.composite
def worlds(draw: st.DrawFn) -> World:
    """A few accounts and contacts with events, milestones and scores around NOW."""
    world = World()
    account_ids = [f"a{i}" for i in range(draw(st.integers(1, 3)))]
    for account_id in account_ids:
        world.accounts.append(
            account(
                account_id,
                name=draw(TEXT),
                plan=draw(st.none() | st.sampled_from(["pro", "Pro", "free", ""])),
                mrr=draw(FLOATS),
                signed_up_at=draw(st.none() | INSTANTS),
                renewal_date=draw(st.none() | DAYS),
                traits=draw(TRAITS),
            )
        )
        for name in draw(st.sets(st.sampled_from(NAMES))):
            world.account_milestones.append(account_reached(account_id, name, draw(INSTANTS)))
        if draw(st.booleans()):
            value, ago = draw(SCORES)
            world.account_scores.append({"account_id": account_id, "value": value, "as_of_day": _day(ago)})
    for index in range(draw(st.integers(0, 4))):
        contact_id = f"c{index}"
        account_id = draw(st.sampled_from(account_ids))
        world.contacts.append(
            contact(
                contact_id,
                account_id,
                email=draw(st.none() | TEXT),
                role=draw(st.none() | st.sampled_from(["admin", "Admin", "member", "adm"])),
                created_at=draw(st.none() | INSTANTS),
                traits=draw(TRAITS),
            )
        )
        for name in draw(st.sets(st.sampled_from(NAMES))):
            world.milestones.append(reached(contact_id, name, draw(INSTANTS)))
        for name, at, owned in draw(st.lists(st.tuples(st.sampled_from(NAMES), INSTANTS, st.booleans()))):
            world.events.append(event(contact_id, name, at, account_id if owned else None))
        if draw(st.booleans()):
            value, ago = draw(SCORES)
            world.contact_scores.append({"contact_id": contact_id, "value": value, "as_of_day": _day(ago)})
        for kind, score, at in draw(
            st.lists(st.tuples(st.sampled_from(["nps", "csat"]), st.integers(0, 10), INSTANTS), max_size=3)
        ):
            world.survey_answers.append(
                answer(contact_id, account_id, kind, score, at, len(world.survey_answers))
            )
    return world


def answer(contact_id: str, account_id: str, kind: str, score: int, at: datetime, n: int) -> Row:
    """A survey answer row (delivery ids in an order unrelated to time, so ties in time test the tie-break)."""
    return {
        "delivery_id": f"d{(n * 7) % 10}{n}", "contact_id": contact_id, "account_id": account_id,
        "journey_id": "j", "step_id": "s", "kind": kind, "score": score if kind == "nps" else 1 + score % 5,
        "comment": None, "answered_at": at,
    }  # fmt: skip


def _day(days_before_now: float) -> float:
    return day_number(NOW) - days_before_now


@st.composite
def contexts(draw: st.DrawFn, audience: str) -> EvalContext:
    """NOW in a random time zone (same instant), with random half-life and bands."""
    zone = timezone(timedelta(hours=draw(st.integers(-11, 13))))
    green, yellow = draw(st.sampled_from([(60.0, 30.0), (50.0, 50.0), (30.0, 60.0), (0.0, -10.0)]))
    half_life = draw(st.sampled_from([14.0, 1.0, 30.0]))
    return EvalContext(NOW.astimezone(zone), audience, half_life, green, yellow)


DURATIONS = st.sampled_from(["1d", "7d", "36h", "90m", "2w", "86400s", "1000000d"])  # the last: before year 1
PLAIN_FIELDS = {
    "contact": {"email": "text", "role": "text", "id": "text", "created_at": "datetime"},
    "account": {
        "name": "text", "plan": "text", "id": "text", "touch": "text", "mrr": "number",
        "signed_up_at": "datetime", "renewal_date": "date",
    },
}  # fmt: skip


def _operands(kind: str) -> st.SearchStrategy[Any]:
    if kind == "text":
        return TEXT | st.sampled_from(["admin", "pro", "c1", "a0", "tech"])
    if kind == "number":
        return NUMBERS
    if kind == "datetime":
        return INSTANTS.map(lambda at: at.isoformat())
    if kind == "date":
        return DAYS.map(lambda day: day.isoformat())
    return st.booleans() | NUMBERS | TEXT  # a trait


@st.composite
def attributes(draw: st.DrawFn, audience: str) -> dict[str, Any]:
    """An attribute compare on a plain column or a (possibly nested) trait."""
    scope = "account" if audience == "account" else draw(st.sampled_from(["contact", "account"]))
    if draw(st.booleans()):
        name = draw(st.sampled_from(sorted(PLAIN_FIELDS[scope])))
        kind = PLAIN_FIELDS[scope][name]
    else:
        name = "traits." + ".".join(draw(st.lists(st.sampled_from(KEYS), min_size=1, max_size=2)))
        kind = "trait"
    ops = ["eq", "ne", "in", "not_in", "exists", "exists"]
    if kind in ("text", "trait"):
        ops.append("contains")
    if kind != "text":
        ops += ["lt", "lte", "gt", "gte"]
    op = draw(st.sampled_from(ops))
    if op == "exists":
        operand: Any = draw(st.booleans())
    elif op in ("in", "not_in"):
        operand = draw(st.lists(_operands(kind), min_size=1, max_size=3))
    elif op == "contains":
        operand = draw(TEXT)
    elif op in ("lt", "lte", "gt", "gte"):
        operand = draw(NUMBERS if kind == "trait" else _operands(kind))
    else:
        operand = draw(_operands(kind))
    if op == "eq" and draw(st.booleans()):
        return {f"{scope}.{name}": operand}  # the bare `field: value` shorthand
    return {f"{scope}.{name}": {op: operand}}


def _bounds(numbers: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    ops = st.sampled_from(["eq", "ne", "lt", "lte", "gt", "gte"])
    return st.dictionaries(ops, numbers, min_size=1, max_size=2)


@st.composite
def leaves(draw: st.DrawFn, audience: str) -> dict[str, Any]:
    """One condition form other than the combinators."""
    forms = ["milestone", "event_count", "days_since", "days_until", "score", "account_score", "health"]
    if audience == "contact":
        forms.append("survey")
    form = draw(st.sampled_from(["attr"] * 4 + forms))
    if form == "survey":
        survey: dict[str, Any] = {"kind": draw(st.sampled_from(["nps", "csat"]))}
        if draw(st.booleans()):
            survey["score"] = draw(_bounds(st.integers(-1, 11)))
        if draw(st.booleans()):
            survey["within"] = draw(DURATIONS)
        return {"survey": survey}
    if form == "attr":
        return draw(attributes(audience))
    if form == "milestone":
        raw: dict[str, Any] = {"milestone": draw(st.sampled_from(NAMES))}
        if draw(st.booleans()):
            raw["within"] = draw(DURATIONS)
        return raw
    if form == "event_count":
        body: dict[str, Any] = {"event": draw(st.sampled_from(NAMES))} | draw(_bounds(st.integers(0, 4)))
        if draw(st.booleans()):
            body["within"] = draw(DURATIONS)
        return {"event_count": body}
    if form in ("days_since", "days_until"):
        fields = [f for f in ast.TIME_FIELDS if audience == "contact" or f.startswith("account.")]
        days = st.integers(-25, 25) | st.integers(-75, 75) | st.sampled_from([10**6, -(10**6), 10**20])
        return {form: {"field": draw(st.sampled_from(fields))} | draw(_bounds(days))}
    if form in ("score", "account_score"):
        numbers = st.integers(-10, 110) | st.sampled_from([0, 0.0, 30, 60])
        return {form: draw(_bounds(numbers))}
    return {"health": draw(st.sampled_from(ast.BANDS))}


def conditions(audience: str) -> st.SearchStrategy[dict[str, Any]]:
    """Raw conditions of every form, nested with all/any/not and multi-key mappings."""

    def merge(parts: list[dict[str, Any]]) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        for part in parts:
            if not set(part) & set(merged):
                merged |= part
        return merged

    leaf = leaves(audience)
    return st.recursive(
        leaf | st.lists(leaf, min_size=2, max_size=3).map(merge),
        lambda inner: (
            st.builds(lambda items: {"all": items}, st.lists(inner, min_size=1, max_size=3))
            | st.builds(lambda items: {"any": items}, st.lists(inner, min_size=1, max_size=3))
            | st.builds(lambda item: {"not": item}, inner)
        ),
        max_leaves=6,
    )
