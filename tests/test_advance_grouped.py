"""Grouped, set-based advancing gives exactly what stepping each due enrollment on its own gives; and
enrolling straight into the state after the first moves (enroll.first_moves) gives what enrolling at the
first step and advancing gives.

Random journeys (messages of every kind, waits, wait_until with and without timeout, branches, guards,
both audiences) and random enrollments (step, wait start, due time, holdout, removed steps, not yet due)
are advanced by `advance.advance_batch` in small batches; the expected rows come from `stepper.decide`
called once per enrollment, the delivery ids from `delivery_id` in Python, the recipients read in Python.
"""

from __future__ import annotations

import hashlib
import random
from datetime import datetime, timedelta
from typing import Any

import pytest
import yaml
from engine_world import NOW, World
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import literal, select

from engagement.delivery.ids import DeliveryId, delivery_id
from engagement.engine import load_catalog
from engagement.evaluation import advance, enroll, holdout, stepper, tick, variants
from engagement.journeys.catalog import Journey
from engagement.store import md5, schema

BACKENDS = ("sqlite", "postgresql")  # each `world` test runs on both (PostgreSQL when configured)

en, d = schema.enrollments, schema.deliveries
CONTACT_CONDITIONS = [
    {"contact.role": "admin"},
    {"account.plan": "pro"},
    {"not": {"contact.role": "viewer"}},
]
ACCOUNT_CONDITIONS = [
    {"account.plan": "pro"},
    {"account.plan": {"in": ["pro", "business"]}},
    {"not": {"account.plan": "free"}},
]
TIMES = [
    NOW - timedelta(days=10),
    NOW - timedelta(days=3),
    NOW - timedelta(hours=1),
    NOW,
    NOW + timedelta(hours=1),
]


class Steps:
    """Random step lists with unique ids."""

    def __init__(self, rng: random.Random, conditions: list[dict[str, Any]]) -> None:
        self.rng, self.conditions, self.count = rng, conditions, 0

    def make(self, depth: int = 0) -> list[dict[str, Any]]:
        kinds = ["email", "in_app", "notify", "survey", "wait", "wait_until"] + (
            ["branch"] if depth < 2 else []
        )
        return [self.one(self.rng.choice(kinds), depth) for _ in range(self.rng.randint(1, 4))]

    def one(self, kind: str, depth: int) -> dict[str, Any]:
        rng = self.rng
        self.count += 1
        step: dict[str, Any] = {"id": f"s{self.count}"}
        if rng.random() < 0.3:
            step["if"] = rng.choice(self.conditions)
        if kind == "email":
            step["email"] = {"template": "onboarding/welcome", "subject": "Hi"}
        elif kind == "in_app":
            step["in_app"] = {"title": "Hi", "body": "There"}
        elif kind == "notify":
            step["notify"] = {"webhook": "csm-alerts", "text": "Look"}
        elif kind == "survey":
            channel = rng.choice(["email", "in_app"])
            step["survey"] = {"kind": rng.choice(["nps", "csat"]), "channel": channel, "question": "Q?"}
            if channel == "email":
                step["survey"]["subject"] = "One question"
        elif kind == "wait":
            step["wait"] = rng.choice(["1h", "2d", "5d"])
        elif kind == "wait_until":
            step["wait_until"] = rng.choice(self.conditions)
            if rng.random() < 0.6:
                step["timeout"] = rng.choice(["2h", "2d", "7d"])
        else:
            step["branch"] = {"if": rng.choice(self.conditions), "then": self.make(depth + 1)}
            if rng.random() < 0.7:
                step["branch"]["else"] = self.make(depth + 1)
        return step


def random_journey(world: World, rng: random.Random, audience: str, **extra: Any) -> Journey:
    conditions = ACCOUNT_CONDITIONS if audience == "account" else CONTACT_CONDITIONS
    body: dict[str, Any] = {
        "id": "random",
        "name": "Random",
        "status": "active",
        "audience": audience,
        "trigger": {"event": "never_sent"},
        "priority": rng.randint(0, 5),
        "steps": Steps(rng, conditions).make(),
        **extra,
    }
    if audience == "account":
        body["recipients"] = {"contact.role": "admin"}
    world.journey(yaml.safe_dump(body, sort_keys=False))
    return load_catalog(world.settings).get("random")


def populate(world: World, rng: random.Random, journey: Journey) -> None:
    """Accounts with contacts of random roles and plans, and one random enrollment per subject."""
    for a in range(12):
        account = f"a{a:02d}"
        world.accounts({"id": account, "name": account, "plan": rng.choice(["free", "pro", "business"])})
        world.contacts(
            *(
                {"id": f"{account}c{i}", "account_id": account, "email": f"{account}c{i}@example.com",
                 "role": rng.choice(["admin", "member", "viewer"])}
                for i in range(4)
            )
        )  # fmt: skip
    if journey.audience == "account":
        subjects = [(f"a{a:02d}", f"a{a:02d}") for a in range(12)]
    else:
        subjects = [(f"a{a:02d}c{i}", f"a{a:02d}") for a in range(12) for i in range(4)]
    step_ids = [i.step_id for i in journey.program] + ["gone", None]
    rows = [
        {
            "journey_id": journey.id,
            "audience": journey.audience,
            "subject_id": subject,
            "account_id": account,
            "holdout": rng.random() < 0.2,
            "state": "active",
            "step_id": rng.choice(step_ids),
            "wait_started_at": rng.choice([None, *TIMES[:3]]),
            "next_action_at": rng.choice([None, *TIMES]),
            "entered_at": NOW - timedelta(days=20),
        }
        for subject, account in subjects
    ]
    with world.db.begin() as conn:
        conn.execute(en.insert(), rows)
        erased = rng.choice(subjects)[0]  # an erased recipient gets nothing from an account journey
        conn.execute(schema.contacts.update().where(schema.contacts.c.id == erased).values(erased_at=NOW))


def expected(
    world: World, journey: Journey, now: datetime
) -> tuple[dict[int, tuple[Any, ...]], set[tuple[Any, ...]], int]:
    """Each enrollment's row after advancing, the deliveries queued and how many were due, one at a time."""
    ctx = tick.context(world.settings, journey, now)
    with world.db.begin() as conn:
        rows = conn.execute(select(en)).all()
        contacts = conn.execute(select(schema.contacts)).all()
        due = [
            r
            for r in rows
            if r.state == "active" and r.next_action_at is not None and r.next_action_at <= now
        ]
        truth = {
            cond: advance.holding(conn, journey, [r.subject_id for r in due], cond, ctx)
            for cond in set(journey.conditions())
        }
    states = {
        r.id: (r.step_id, r.next_action_at, r.wait_started_at, r.state, r.outcome, r.end_reason, r.ended_at)
        for r in rows
    }
    deliveries: set[tuple[Any, ...]] = set()
    for row in due:
        position = journey.position(row.step_id)
        if position is None:
            states[row.id] = (None, None, None, "ended", "exited", "step removed from journey", now)
            continue
        decision = stepper.decide(
            journey.program, position, row.wait_started_at, now,
            lambda cond, s=row.subject_id: s in truth[cond], holdout=row.holdout, due_since=row.next_action_at,
        )  # fmt: skip
        for instr, moment in decision.messages:
            contact = row.subject_id if journey.audience == "contact" else None
            if instr.kind == "notify":
                targets = [(f"webhook:{instr.spec.webhook}", contact)]
            elif journey.audience == "contact":
                targets = [(row.subject_id, row.subject_id)]
            else:
                targets = [
                    (c.id, c.id) for c in contacts
                    if c.account_id == row.subject_id and c.role == "admin" and c.erased_at is None
                ]  # fmt: skip
            for recipient, contact_id in targets:
                deliveries.add((
                    delivery_id(row.id, instr.step_id, recipient), row.id, journey.id, instr.step_id, instr.channel,
                    recipient, contact_id, "queued", journey.spec.priority, moment, now, now,
                    instr.spec.kind if instr.kind == "survey" else None, journey.version,
                    variants.variant_for(journey, instr.step_id, recipient),
                ))  # fmt: skip
        if decision.outcome is not None:
            states[row.id] = (None, None, None, "ended", decision.outcome, decision.outcome, now)
        else:
            states[row.id] = (
                decision.step_id,
                decision.next_action_at,
                decision.wait_started_at,
                "active",
                None,
                None,
                None,
            )
    return states, deliveries, len(due)


@pytest.mark.parametrize("seed", range(8))
def test_grouped_advancing_matches_stepping_each_enrollment(world: World, seed: int) -> None:
    rng = random.Random(seed)
    journey = random_journey(world, rng, "account" if seed % 3 == 2 else "contact")
    populate(world, rng, journey)
    want_states, want_deliveries, due = expected(world, journey, NOW)
    ctx = tick.context(world.settings, journey, NOW)
    stepped = queued = 0
    while True:
        with world.db.begin() as conn:
            batch = advance.advance_batch(world.db, conn, journey, ctx, rng.randint(3, 20))
        if batch is None:
            break
        stepped, queued = stepped + batch.stepped, queued + batch.queued
    with world.db.begin() as conn:
        got_states = {
            r.id: (
                r.step_id,
                r.next_action_at,
                r.wait_started_at,
                r.state,
                r.outcome,
                r.end_reason,
                r.ended_at,
            )
            for r in conn.execute(select(en))
        }
        columns = [d.c[name] for name in advance.DELIVERY_COLUMNS]
        got_deliveries = {tuple(r) for r in conn.execute(select(*columns))}
    assert got_states == want_states
    assert got_deliveries == want_deliveries
    assert queued == len(want_deliveries)
    assert stepped == due


STATE = [en.c.holdout, en.c.state, en.c.outcome, en.c.end_reason, en.c.step_id, en.c.next_action_at,
         en.c.wait_started_at, en.c.entered_at, en.c.ended_at]  # fmt: skip


def first_tick(world: World, journey: Journey, stepwise: bool, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Enroll everyone and advance what is due at NOW; the rows written, keyed by subject, not by id."""
    ctx = tick.context(world.settings, journey, NOW)
    with monkeypatch.context() as patch:
        if stepwise:
            patch.setattr(enroll, "first_moves", lambda journey, now: None)
        with world.db.begin() as conn:
            entered = enroll.enroll(world.db, conn, journey, ctx)
        counts = [entered.enrolled, entered.stepped, entered.queued, entered.completed]
        while True:
            with world.db.begin() as conn:
                batch = advance.advance_batch(world.db, conn, journey, ctx, 7)
            if batch is None:
                break
            counts = [
                counts[0],
                counts[1] + batch.stepped,
                counts[2] + batch.queued,
                counts[3] + batch.completed,
            ]
    log = schema.subject_changes
    with world.db.begin() as conn:
        enrollments = {r.subject_id: tuple(r)[1:] for r in conn.execute(select(en.c.subject_id, *STATE))}
        deliveries = set()
        for r in conn.execute(select(d, en.c.subject_id).join(en, en.c.id == d.c.enrollment_id)):
            assert r.id == delivery_id(r.enrollment_id, r.step_id, r.recipient)
            deliveries.add((r.subject_id, r.step_id, r.channel, r.recipient, r.contact_id, r.status, r.priority,
                            r.due_at, r.created_at, r.updated_at))  # fmt: skip
        ends = {
            (r.contact_id, r.account_id)
            for r in conn.execute(select(log).where(log.c.journey_id == journey.id))
        }
        for table in (d, en, log):
            conn.execute(table.delete())
    return enrollments, deliveries, ends, counts


EMAIL = {"template": "onboarding/welcome", "subject": "Hi"}
OPENINGS: list[list[dict[str, Any]]] = [  # what a journey opens with: the last consults a condition
    [{"id": "o1", "email": EMAIL}],
    [{"id": "o1", "in_app": {"title": "Hi", "body": "There"}}, {"id": "o2", "notify": {"webhook": "csm-alerts", "text": "x"}}],
    [{"id": "o1", "email": EMAIL}, {"id": "o2", "wait": "2d"}],
    [{"id": "o1", "wait": "1h"}],
    [{"id": "o1", "if": {"not": {"account.plan": "free"}}, "email": EMAIL}],
]  # fmt: skip


@pytest.mark.parametrize("seed", range(10))
def test_first_moves_match_enrolling_then_advancing(
    world: World, seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Written straight into the state after its first moves, or at its first step then advanced: the same
    enrollments, deliveries and change-log ends (journeys that end at once), and the same counts."""
    rng = random.Random(100 + seed)
    audience = "account" if seed % 3 == 2 else "contact"
    trigger = {"not": {"account.plan": "none"}} if audience == "account" else {"not": {"contact.role": "x"}}
    rest = Steps(rng, ACCOUNT_CONDITIONS if audience == "account" else CONTACT_CONDITIONS).make()
    steps = OPENINGS[seed % len(OPENINGS)] + (rest if seed % 3 else [])  # or only the opening: ends at once
    journey = random_journey(world, rng, audience, trigger={"condition": trigger}, holdout="30%", steps=steps)
    populate(world, rng, journey)
    with world.db.begin() as conn:
        conn.execute(en.delete())  # populate's enrollments would block entry
        conn.execute(schema.subject_changes.delete())
    fast = first_tick(world, journey, False, monkeypatch)
    slow = first_tick(world, journey, True, monkeypatch)
    assert fast == slow
    assert len(fast[0]) == (12 if audience == "account" else 47)  # everyone but the erased contact
    assert any(f[0] for f in fast[0].values()) and not all(f[0] for f in fast[0].values())  # both holdouts
    assert fast[3][2] == len(fast[1])  # every delivery written was counted as queued


def test_first_moves_apply_only_when_nothing_about_the_subject_is_consulted(world: World) -> None:
    """Every seed of the test above is either kind; and the moves of a few fixed journeys."""
    kinds = set()
    for seed in range(10):
        journey = random_journey(world, random.Random(100 + seed), "contact")
        kinds.add(enroll.first_moves(journey, NOW) is None)
    assert kinds == {True, False}
    cases = [
        ([{"id": "a", "email": {"template": "onboarding/welcome", "subject": "Hi"}}], "completed", None),
        ([{"id": "a", "in_app": {"title": "t", "body": "b"}}, {"id": "w", "wait": "2d"}], None, "w"),
        ([{"id": "w", "wait": "1h"}, {"id": "a", "in_app": {"title": "t", "body": "b"}}], None, "w"),
        ([{"id": "a", "if": {"contact.role": "admin"}, "in_app": {"title": "t", "body": "b"}}], "consulted", None),
        ([{"id": "a", "in_app": {"title": "t", "body": "b"}}, {"id": "u", "wait_until": {"contact.role": "admin"}}],
         "consulted", None),
    ]  # fmt: skip
    for steps, outcome, step_id in cases:
        body = {"id": "random", "name": "R", "status": "active", "trigger": {"event": "x"}, "steps": steps}
        world.journey(yaml.safe_dump(body, sort_keys=False))
        moves = enroll.first_moves(load_catalog(world.settings).get("random"), NOW)
        if outcome == "consulted":
            assert moves is None
            continue
        assert moves is not None and moves.outcome == outcome and moves.step_id == step_id
        if step_id == "w":
            assert moves.next_action_at == NOW + (
                timedelta(days=2) if len(moves.messages) else timedelta(hours=1)
            )


def test_sql_delivery_ids_equal_the_python_ones(world: World) -> None:
    cases = [(1, "welcome", "c000"), (2**40 + 7, "s1", "webhook:csm-alerts"), (123456, "é-step", "a@b")]
    with world.db.begin() as conn:
        for enrollment_id, step_id, recipient in cases:
            found = conn.execute(select(DeliveryId(enrollment_id, step_id, recipient))).scalar_one()
            assert found == delivery_id(enrollment_id, step_id, recipient)
            assert len(found) == 36


@given(st.binary(max_size=300))
def test_the_md5_behind_ids_and_buckets_is_md5(data: bytes) -> None:
    assert md5.hexdigest(data) == hashlib.md5(data, usedforsecurity=False).hexdigest()


def test_sql_holdout_buckets_equal_the_python_ones(world: World) -> None:
    keys = ["onboarding:c000", "low-adoption:c0001234", "é-journey:a@b", ""]
    with world.db.begin() as conn:
        for key in keys:
            assert conn.execute(select(holdout.Bucket(literal(key)))).scalar_one() == holdout.bucket(key)
