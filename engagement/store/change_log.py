"""Database triggers that record which subjects' facts changed, whoever wrote them.

Every write to a table a condition reads (contacts, accounts, events, milestones, scores) and every
enrollment that ends (or is deleted) adds a row to `subject_change`: the contact and/or account it
concerns. Triggers, not calls in each writer, so no writer (bulk ingest, import, API, scoring, erasure,
the simulator, a hand-written SQL fix) can forget. On PostgreSQL the triggers are per statement and
read the statement's transition tables (one INSERT … SELECT per statement, not one per row; an
enrollment's end is a row trigger, see below), and each
row carries the writing transaction's id, which is what readers order by (see `incremental.py`).

Each row also says which fact changed (`fact`): the table, and for events, milestones and survey answers
the name or kind too (`event:active_day`), so a journey re-evaluates a subject only for a change to a fact
its conditions read (`incremental.facts_read`). Rows logged before migration 0025 name no fact: every
journey reads them.
"""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import Connection

# table -> (contact id, account id, journey id, fact) expressions over one of its rows, aliased `r`;
# a journey id marks an enrollment's end, which matters to that journey's re-entry rule alone
SUBJECTS = {
    "contact": ("r.id", "NULL", "NULL", "'contact'"),
    "account": ("NULL", "r.id", "NULL", "'account'"),
    "event": ("r.contact_id", "r.account_id", "NULL", "'event:' || r.name"),
    "milestone": ("r.contact_id", "NULL", "NULL", "'milestone:' || r.name"),
    "account_milestone": ("NULL", "r.account_id", "NULL", "'account_milestone:' || r.name"),
    "contact_score": ("r.contact_id", "NULL", "NULL", "'contact_score'"),
    "account_score": ("NULL", "r.account_id", "NULL", "'account_score'"),
    "survey_answer": ("r.contact_id", "NULL", "NULL", "'survey_answer:' || r.kind"),
    "health_score": ("NULL", "r.account_id", "NULL", "'health_score'"),
    "enrollment": (
        "CASE WHEN r.audience = 'contact' THEN r.subject_id END",
        "CASE WHEN r.audience = 'account' THEN r.subject_id END",
        "r.journey_id",
        "NULL",
    ),
}
COLUMNS = ("contact_id", "account_id", "journey_id", "fact")
OPS = ("insert", "update", "delete")
# the tables migration 0007 put triggers on; later migrations add their own tables' (0019: survey_answer,
# 0022: health_score)
AS_OF_0007 = tuple(t for t in SUBJECTS if t not in ("survey_answer", "health_score"))


def _names(facts: bool) -> tuple[str, ...]:
    """The log's columns the triggers write: with `fact`, or without it. The migrations before 0025 (which
    added the column) ask for `facts=False`, so an upgrade that copies rows on the way (0012 rebuilds
    tables) logs them as it did then."""
    return COLUMNS if facts else COLUMNS[:-1]


def _tables(tables: Collection[str] | None, facts: bool) -> list[tuple[str, tuple[str, ...]]]:
    width = len(_names(facts))
    return [(t, e[:width]) for t, e in SUBJECTS.items() if tables is None or t in tables]


def _pg_typed(exprs: tuple[str, ...]) -> list[str]:
    """The expressions with each bare NULL typed, as PostgreSQL needs in a SELECT list."""
    return ["NULL::varchar" if e == "NULL" else e for e in exprs]


def _columns(facts: bool) -> str:
    return ", ".join(_names(facts))


def _wanted(table: str, op: str) -> bool:
    # a new enrollment blocks re-entry, it never admits anyone: only ends (and deletions) matter;
    # one written already ended (enroll.py's first moves) is an end: see ended_on_insert_statements
    return not (table == "enrollment" and op == "insert")


def _name(table: str, op: str) -> str:
    return f"subject_change_{table}_{op}"


def sqlite_statements(tables: Collection[str] | None = None, *, facts: bool = True) -> list[str]:
    """CREATE TRIGGER statements for SQLite (row level), for `tables` (default: all)."""
    statements = []
    for table, exprs in _tables(tables, facts):
        for op in OPS:
            if not _wanted(table, op):
                continue

            def values(row: str, exprs: tuple[str, ...] = exprs) -> str:
                return "SELECT " + ", ".join(e.replace("r.", row + ".") for e in exprs)

            insert = f"INSERT INTO subject_change ({_columns(facts)}) "
            when = ""
            if op == "insert":
                body = insert + values("NEW") + ";"
            elif op == "delete":
                body = insert + values("OLD") + ";"
            else:
                body = insert + values("NEW") + "; " + insert + values("OLD") + ";"
                if table == "enrollment":
                    when = " WHEN OLD.state IS NOT NEW.state"
            statements.append(
                f"CREATE TRIGGER IF NOT EXISTS {_name(table, op)} AFTER {op.upper()} ON {table}{when} "
                f"BEGIN {body} END"
            )
    return statements


XID = "pg_current_xact_id()::text::bigint"


def _pg_enrollment_row_trigger(op: str, when: str, facts: bool = True) -> list[str]:
    """A row-level trigger on enrollment, firing only `when`, logging the row's subject for its journey."""
    name = _name("enrollment", op)
    columns = _names(facts)
    exprs = _pg_typed(dict(_tables(["enrollment"], facts))["enrollment"])
    row = "SELECT " + ", ".join(
        f"{e.replace('r.', 'NEW.')} AS {c}" for e, c in zip(exprs, columns, strict=True)
    )
    return [
        f"CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        f"INSERT INTO subject_change ({_columns(facts)}, txid) "
        f"SELECT {', '.join('s.' + c for c in columns)}, {XID} FROM ({row}) s; RETURN NULL; END $$",
        f"DROP TRIGGER IF EXISTS {name} ON enrollment",
        f"CREATE TRIGGER {name} AFTER {op.upper()} ON enrollment FOR EACH ROW WHEN ({when}) "
        f"EXECUTE FUNCTION {name}()",
    ]


def postgresql_statements(tables: Collection[str] | None = None, *, facts: bool = True) -> list[str]:
    """CREATE FUNCTION and CREATE TRIGGER statements for PostgreSQL (statement level), for `tables`."""
    statements = []
    columns = _names(facts)
    for table, exprs in _tables(tables, facts):
        for op in OPS:
            if not _wanted(table, op):
                continue
            typed = _pg_typed(exprs)
            pair = ", ".join(f"{e} AS {c}" for e, c in zip(typed, columns, strict=True))
            if op == "insert":
                rows, referencing = f"SELECT {pair} FROM new_rows r", "NEW TABLE AS new_rows"
            elif op == "delete":
                rows, referencing = f"SELECT {pair} FROM old_rows r", "OLD TABLE AS old_rows"
            elif table == "enrollment":
                # row level, filtered by WHEN: enrollments are updated one statement a row (executemany),
                # and a statement trigger would build transition tables for every one of them
                statements += _pg_enrollment_row_trigger(
                    "update", "OLD.state IS DISTINCT FROM NEW.state", facts
                )
                continue
            else:
                rows = f"SELECT {pair} FROM new_rows r UNION SELECT {pair} FROM old_rows r"
                referencing = "OLD TABLE AS old_rows NEW TABLE AS new_rows"
            name = _name(table, op)
            statements.append(
                f"CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                f"INSERT INTO subject_change ({_columns(facts)}, txid) "
                f"SELECT {', '.join('s.' + c for c in columns)}, {XID} FROM ({rows}) s; RETURN NULL; END $$"
            )
            statements.append(f"DROP TRIGGER IF EXISTS {name} ON {table}")
            statements.append(
                f"CREATE TRIGGER {name} AFTER {op.upper()} ON {table} REFERENCING {referencing} "
                f"FOR EACH STATEMENT EXECUTE FUNCTION {name}()"
            )
    return statements


ENDED_ON_INSERT = _name("enrollment", "insert")


def ended_on_insert_statements(dialect: str, *, facts: bool = True) -> list[str]:
    """The trigger logging an enrollment written already ended (a journey whose first moves end it).

    Row level with a WHEN on both engines: it fires for those rows alone, not for every enrollment.
    """
    if dialect == "postgresql":
        return _pg_enrollment_row_trigger("insert", "NEW.state = 'ended'", facts)
    exprs = SUBJECTS["enrollment"] if facts else SUBJECTS["enrollment"][:-1]
    values = ", ".join(e.replace("r.", "NEW.") for e in exprs)
    return [
        f"CREATE TRIGGER IF NOT EXISTS {ENDED_ON_INSERT} AFTER INSERT ON enrollment "
        f"WHEN NEW.state = 'ended' BEGIN "
        f"INSERT INTO subject_change ({_columns(facts)}) SELECT {values}; END"
    ]


def drop_ended_on_insert_statements(dialect: str) -> list[str]:
    """Statements removing the trigger above."""
    if dialect == "postgresql":
        return [
            f"DROP TRIGGER IF EXISTS {ENDED_ON_INSERT} ON enrollment",
            f"DROP FUNCTION IF EXISTS {ENDED_ON_INSERT}()",
        ]
    return [f"DROP TRIGGER IF EXISTS {ENDED_ON_INSERT}"]


def drop_statements(dialect: str, tables: Collection[str] | None = None) -> list[str]:
    """Statements removing every trigger (and PostgreSQL function) created above, on `tables`.

    The enrollment-ended-on-insert trigger goes with the enrollment table's.
    """
    statements = drop_ended_on_insert_statements(dialect) if tables is None or "enrollment" in tables else []
    for table, _ in _tables(tables, facts=True):
        for op in OPS:
            if not _wanted(table, op):
                continue
            name = _name(table, op)
            if dialect == "postgresql":
                statements += [
                    f"DROP TRIGGER IF EXISTS {name} ON {table}",
                    f"DROP FUNCTION IF EXISTS {name}()",
                ]
            else:
                statements.append(f"DROP TRIGGER IF EXISTS {name}")
    return statements


def triggers() -> list[tuple[str, str]]:
    """(table, trigger name) of every trigger created above."""
    found = [(table, _name(table, op)) for table in SUBJECTS for op in OPS if _wanted(table, op)]
    return [*found, ("enrollment", ENDED_ON_INSERT)]


def create_statements(
    dialect: str, tables: Collection[str] | None = None, *, facts: bool = True
) -> list[str]:
    """The statements creating the triggers on `tables` (default: all), for this dialect; `facts=False`
    makes them as before migration 0025, which added the `fact` column."""
    if dialect == "postgresql":
        return postgresql_statements(tables, facts=facts)
    return sqlite_statements(tables, facts=facts)


def create(conn: Connection) -> None:
    """Create every trigger on this connection's database (after the tables exist)."""
    dialect = conn.dialect.name
    for statement in create_statements(dialect) + ended_on_insert_statements(dialect):
        conn.exec_driver_sql(statement)
