"""Message variants: checked at the door, fixed per recipient by a hash SQL and Python agree on, sent as written."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta

import pytest
from backends import url_for
from engine_world import NOW, World
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import String, bindparam, select

from engagement.engine import load_catalog
from engagement.evaluation import variants
from engagement.journeys import program, spec
from engagement.store import schema
from engagement.store.database import Database

BACKENDS = ("sqlite", "postgresql")

HEAD = "id: welcome\nname: Welcome\nstatus: active\ntrigger: {event: signed_up}\n"
HELLO = """\
  - id: hello
    email: {template: onboarding/welcome, subject: "Welcome, {{ contact.first_name }}"}
    variants:
      - {id: plain}
      - {id: warm, subject: "So glad you are here, {{ contact.first_name }}"}
"""
WELCOME = (
    HEAD
    + "steps:\n"
    + HELLO
    + """\
    weights: {plain: 1, warm: 3}
  - wait: 1d
  - id: nudge
    in_app: {title: Connect your data, body: It takes two minutes.}
    variants:
      - {id: short}
      - {id: long, body: "Reports need a data source. It takes two minutes, and we can help."}
"""
)


def three_to_one(weights: tuple[int, ...] = (1, 3)) -> tuple[program.Variant[spec.EmailSpec], ...]:
    base = spec.EmailSpec(template="t", subject="s")
    return tuple(
        program.Variant(name, w, base) for name, w in zip(("plain", "warm", "third"), weights, strict=False)
    )


@pytest.fixture(scope="module")
def database(backend: str) -> Iterator[Database]:
    handle = Database(url_for(backend))
    try:
        yield handle
    finally:
        handle.dispose()


ids = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=0, max_size=40)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    journey=st.from_regex(r"[a-z][a-z0-9-]{0,30}", fullmatch=True),
    step=ids,
    recipient=ids,
    weights=st.lists(st.integers(1, 1000), min_size=2, max_size=3),
)
def test_sql_and_python_pick_the_same_variant_for_any_ids_and_weights(
    database: Database, journey: str, step: str, recipient: str, weights: list[int]
) -> None:
    chosen = three_to_one(tuple(weights))
    instr = program.Email(
        index=0, step_id=step, loc=("steps", 0), next=1, spec=chosen[0].spec, variants=chosen
    )
    query = select(variants.chosen_sql(journey, instr, bindparam("r", type_=String())))
    with database.engine.connect() as conn:
        in_sql = conn.execute(query, {"r": recipient}).scalar_one()
    assert in_sql == variants.pick(journey, step, recipient, chosen)


def test_the_shares_match_the_weights_within_binomial_bounds_over_10000_recipients() -> None:
    chosen = three_to_one((1, 3))
    counts = Counter(variants.pick("welcome", "hello", f"c{i:05d}", chosen) for i in range(10_000))
    expected, sd = 10_000 * 0.75, math.sqrt(10_000 * 0.75 * 0.25)  # 7500 ± 43.3
    assert abs(counts["warm"] - expected) < 4 * sd, counts
    assert counts["plain"] + counts["warm"] == 10_000
    thirds = Counter(
        variants.pick("welcome", "hello", f"c{i:05d}", three_to_one((1, 1, 1))) for i in range(10_000)
    )
    for name in ("plain", "warm", "third"):
        assert abs(thirds[name] - 10_000 / 3) < 4 * math.sqrt(10_000 * (1 / 3) * (2 / 3)), thirds


def test_each_recipient_gets_its_variant_recorded_and_rendered_and_keeps_it_on_later_ticks(
    world: World,
) -> None:
    world.journey(WELCOME)
    people = world.people(40)
    world.events(*({"contact_id": p, "name": "signed_up", "timestamp": NOW} for p in people))
    world.tick(NOW)
    world.tick(NOW + timedelta(days=1, hours=1))
    world.tick(NOW + timedelta(days=1, hours=2))  # a later tick changes nothing already chosen

    journey = load_catalog(world.settings).get("welcome")
    rows = world.rows(schema.deliveries)
    assert len(rows) == 80
    for row in rows:
        assert row["variant"] == variants.variant_for(journey, row["step_id"], row["recipient"])
    picked = {r["recipient"]: r["variant"] for r in rows if r["step_id"] == "hello"}
    assert set(picked.values()) == {"plain", "warm"}
    wanted = {
        f"So glad you are here, {p.upper()}" if picked[p] == "warm" else f"Welcome, {p.upper()}"
        for p in people
    }
    assert {m.subject for m in world.email.sent} == wanted
    nudges = {n["contact_id"]: n["body"] for n in world.rows(schema.nudges)}
    long = {r["recipient"] for r in rows if r["variant"] == "long"}
    assert long and {c for c, body in nudges.items() if body.startswith("Reports need")} == long


def test_preview_shows_and_renders_the_contacts_variant(world: World) -> None:
    world.journey(WELCOME)
    people = world.people(8)
    journey = load_catalog(world.settings).get("welcome")
    warm = next(p for p in people if variants.variant_for(journey, "hello", p) == "warm")

    result = world.cli("preview", "welcome", "hello", "--contact", warm, "--out", str(world.root / "p.html"))

    assert result.exit_code == 0, result.output
    assert "Variant: warm" in result.output
    assert f"So glad you are here, {warm.upper()}" in result.output


@pytest.mark.parametrize(
    ("steps", "line", "field", "message"),
    [
        (
            "      - {id: a}\n      - {id: a, subject: x}\n",
            10,
            "steps[0].variants[1].id",
            "duplicate variant id 'a'",
        ),
        (
            "      - {id: a}\n      - {id: b, subject: x}\n    weights: {a: 1, c: 2}\n",
            11,
            "steps[0].weights.c",
            "no variant 'c'",
        ),
        (
            "      - {id: a}\n      - {id: b, subject: x}\n    weights: {a: 1}\n",
            11,
            "steps[0].weights",
            "no weight for variant(s) b",
        ),
        (
            "      - {id: a}\n      - {id: b, subject: x}\n    weights: {a: 1, b: 0}\n",
            11,
            "steps[0].weights.b",
            "greater than 0",
        ),
        (
            "      - {id: a}\n      - {id: b, subject: '{{ contact.first_name '}\n",
            10,
            "steps[0].variants[1].subject",
            "",
        ),
        (
            "      - {id: a}\n      - {id: b, template: nowhere/none}\n",
            10,
            "steps[0].variants[1].template",
            "nowhere/none",
        ),
        ("      - {id: a}\n      - {id: b, title: x}\n", 10, "steps[0].variants[1].title", "unknown key"),
        ("      - {id: a}\n", 8, "steps[0].variants", "at least 2"),
    ],
    ids=[
        "duplicate id",
        "unknown weight",
        "missing weight",
        "zero weight",
        "bad subject",
        "missing template",
        "unknown key",
        "one variant",
    ],
)
def test_a_bad_variant_is_reported_with_its_file_line_and_field(
    world: World, steps: str, line: int, field: str, message: str
) -> None:
    path = world.journey(
        "id: bad\nname: Bad\nstatus: active\ntrigger: {event: signed_up}\nsteps:\n  - id: hello\n"
        '    email: {template: onboarding/welcome, subject: "Hi"}\n    variants:\n' + steps
    )

    result = world.cli("validate")

    assert result.exit_code == 1
    found = [line_ for line_ in result.output.splitlines() if line_.startswith(f"{path}:{line}: {field}:")]
    assert found and message in found[0], result.output


def test_an_in_app_survey_asks_each_contact_its_variants_question(world: World) -> None:
    world.journey(
        HEAD
        + "steps:\n  - id: ask\n    survey: {kind: nps, channel: in_app, question: 'How likely are you to recommend us?'}\n"
        + "    variants:\n      - {id: plain}\n      - {id: friendly, question: 'Would you tell a friend about us?'}\n"
    )
    people = world.people(12)
    world.events(*({"contact_id": p, "name": "signed_up", "timestamp": NOW} for p in people))
    world.tick(NOW)

    chosen = {r["recipient"]: r["variant"] for r in world.rows(schema.deliveries)}
    asked = {n["contact_id"]: n["title"] for n in world.rows(schema.nudges)}
    assert set(chosen.values()) == {"plain", "friendly"}
    for contact, variant in chosen.items():
        friendly = variant == "friendly"
        assert asked[contact] == (
            "Would you tell a friend about us?" if friendly else "How likely are you to recommend us?"
        )
