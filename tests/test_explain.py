"""`engagement explain`: one reason for each way not to be enrolled, the step of an enrolled one, and
verdicts that agree with the next tick on a thousand random subjects."""

from __future__ import annotations

import json
import random
from datetime import timedelta
from typing import Any

from engine_world import NOW, World
from sqlalchemy import select

from engagement import errors, vocab
from engagement.dryrun import explain
from engagement.engine import load_catalog
from engagement.store import schema

BACKENDS = ("sqlite", "postgresql")

ONBOARDING = """\
id: onboarding
name: Onboarding
status: active
trigger: {event: signed_up}
filter:
  all:
    - account.touch: tech
    - contact.role: {in: [admin, member]}
goal: {milestone: first_report}
re_entry: never
holdout: 20%
steps:
  - id: welcome
    email: {template: onboarding/welcome, subject: "Welcome aboard, {{ contact.first_name }}"}
  - id: pause
    wait: 2d
  - id: wait-connect
    wait_until: {milestone: connected}
    timeout: 3d
  - id: stalled
    if: {not: {milestone: first_report}}
    in_app: {title: Stuck, body: Connect your data.}
"""

STALLED = """\
id: stalled
name: Stalled
status: active
trigger:
  condition:
    all:
      - days_since: {field: contact.created_at, gte: 7}
      - not: {milestone: first_report}
re_entry: {after: 10d}
exit: {account.plan: {in: [cancelled]}}
steps:
  - id: nudge
    in_app: {title: Need a hand, body: Reports take two minutes.}
  - id: breather
    wait: 1d
  - id: check
    branch:
      if: {event_count: {event: active_day, within: 14d, gte: 3}}
      then:
        - id: thanks
          in_app: {title: Nice, body: You are on a roll.}
      else:
        - id: help
          in_app: {title: Help, body: Book a call.}
"""

RENEWAL = """\
id: renewal
name: Renewal
status: active
audience: account
trigger: {condition: {account.plan: pro}}
re_entry: always
recipients: {contact.role: admin}
steps:
  - id: heads-up
    in_app: {title: Renewal soon, body: Your plan renews soon.}
  - id: later
    wait: 3d
"""

DRAFT = """\
id: sketch
name: Sketch
status: draft
trigger: {event: signed_up}
steps:
  - id: hello
    in_app: {title: Hi, body: Hello.}
"""

PAUSED = """\
id: paused
name: Paused
status: paused
trigger: {event: signed_up}
goal: {milestone: first_report}
steps:
  - id: one
    wait: 1d
  - id: two
    in_app: {title: Two, body: Second.}
"""


def _account(id: str, **fields: Any) -> dict[str, Any]:
    return {"id": id, "name": id.title(), "plan": "pro", "mrr": 10.0, "touch": "tech", "traits": {}} | fields


def _contact(id: str, account_id: str, **fields: Any) -> dict[str, Any]:
    row = {"id": id, "account_id": account_id, "email": f"{id}@example.com", "first_name": id.upper(),
           "last_name": "", "role": "admin", "timezone": "UTC", "created_at": NOW - timedelta(days=30),
           "traits": {}, "erased_at": None}  # fmt: skip
    return row | fields


def _event(contact_id: str, account_id: str, name: str, at: Any) -> dict[str, Any]:
    return {"contact_id": contact_id, "account_id": account_id, "name": name, "timestamp": at,
            "properties": {}, "source": "product", "received_at": at}  # fmt: skip


def _milestone(contact_id: str, account_id: str, name: str, at: Any) -> dict[str, Any]:
    return {"contact_id": contact_id, "account_id": account_id, "name": name, "reached_at": at}


def _enrollment(journey_id: str, subject_id: str, account_id: str, **fields: Any) -> dict[str, Any]:
    row = {"journey_id": journey_id, "audience": "contact", "subject_id": subject_id,
           "account_id": account_id, "holdout": False, "state": "ended", "outcome": "completed",
           "end_reason": "completed", "step_id": None, "next_action_at": None, "wait_started_at": None,
           "entered_at": NOW - timedelta(days=40), "ended_at": NOW - timedelta(days=30)}  # fmt: skip
    return row | fields


def _store(world: World, **tables: list[dict[str, Any]]) -> None:
    order = ("accounts", "contacts", "events", "milestones", "enrollments")
    with world.db.begin() as conn:
        for name in order:
            if tables.get(name):
                conn.execute(getattr(schema, name).insert(), tables[name])


def _explain(world: World, journey_id: str, **subject: str) -> explain.Explanation:
    catalog = load_catalog(world.settings)
    return explain.explain(world.db, world.settings, catalog.get(journey_id), NOW, **subject)


def test_each_reason_not_to_be_enrolled_is_named_and_an_enrolled_one_names_its_step(world: World) -> None:
    for text in (ONBOARDING, DRAFT):
        world.journey(text)
    hour = timedelta(hours=1)
    contacts = [
        _contact("fresh", "acme"),
        _contact("quiet", "acme"),
        _contact("lowtouch", "lowco"),
        _contact("again", "acme"),
        _contact("won", "acme"),
        _contact("gone", "acme", email=None, first_name="", erased_at=NOW - hour),
        _contact("inside", "acme"),
        _contact("reached", "acme"),
    ]
    signed = [
        _event(c["id"], c["account_id"], "signed_up", NOW - hour) for c in contacts if c["id"] != "quiet"
    ]
    _store(
        world,
        accounts=[_account("acme"), _account("lowco", touch="low")],
        contacts=contacts,
        events=signed,
        milestones=[_milestone("reached", "acme", "first_report", NOW - 2 * hour)],
        enrollments=[
            _enrollment("onboarding", "again", "acme"),
            _enrollment("onboarding", "won", "acme", outcome="converted", end_reason="converted"),
            _enrollment(
                "onboarding",
                "inside",
                "acme",
                state="active",
                outcome=None,
                end_reason=None,
                step_id="pause",
                entered_at=NOW - timedelta(days=1),
                ended_at=None,
                wait_started_at=NOW - timedelta(days=1),
                next_action_at=NOW + timedelta(days=1),
            ),
        ],
    )
    said = {c["id"]: _explain(world, "onboarding", contact=c["id"]) for c in contacts}
    assert said["fresh"].standing == vocab.Standing.ENTERS
    assert said["fresh"].sentence.startswith("not enrolled yet: enters")
    assert said["quiet"].standing == vocab.Standing.TRIGGER
    assert "trigger event signed_up" in said["quiet"].sentence
    assert said["lowtouch"].sentence == "not enrolled: filter account.touch = low, needs tech"
    assert said["again"].standing == vocab.Standing.RE_ENTRY
    assert "re-entry never" in said["again"].sentence
    assert said["won"].standing == vocab.Standing.CONVERTED
    assert said["won"].sentence.startswith("not enrolled: already converted")
    assert said["gone"].standing == vocab.Standing.ERASED
    assert said["reached"].standing == vocab.Standing.GOAL_REACHED
    assert said["inside"].standing == vocab.Standing.ENROLLED
    assert said["inside"].sentence.startswith("enrolled at step pause")
    assert "waiting until" in said["inside"].sentence
    draft = _explain(world, "sketch", contact="fresh")
    assert draft.standing == vocab.Standing.DRAFT
    assert "draft" in draft.sentence
    filtered = {p.part: p for p in said["lowtouch"].parts if p.part in ("filter", "trigger", "send window")}
    assert filtered["filter"].holds is False and filtered["trigger"].holds is True
    assert filtered["send window"].holds is True


def test_the_command_prints_the_table_and_the_sentence_and_json(world: World) -> None:
    world.journey(ONBOARDING)
    _store(
        world,
        accounts=[_account("lowco", touch="low")],
        contacts=[_contact("c1", "lowco", first_name="<b>Ann</b>")],
        events=[_event("c1", "lowco", "signed_up", NOW - timedelta(hours=1))],
    )
    shown = world.cli("explain", "onboarding", "--contact", "c1", "--now", NOW.isoformat())
    assert shown.exit_code == 0, shown.output
    assert "filter" in shown.output and "account.touch = tech" in shown.output
    assert shown.output.rstrip().endswith("not enrolled: filter account.touch = low, needs tech")
    as_json = world.cli(
        "explain", "onboarding", "--contact", "c1", "--now", NOW.isoformat(), "--format", "json"
    )
    assert as_json.exit_code == 0, as_json.output
    data = json.loads(as_json.output)
    assert data["standing"] == "filter" and data["after"]["state"] is None
    missing = world.cli("explain", "onboarding", "--contact", "nobody", "--now", NOW.isoformat())
    assert isinstance(missing.exception, errors.NotFoundError) and "nobody" in str(missing.exception)
    wrong = world.cli("explain", "onboarding", "--account", "lowco", "--now", NOW.isoformat())
    assert isinstance(wrong.exception, errors.EngagementError) and "--contact" in str(wrong.exception)


def _random_world(world: World, rng: random.Random, size: int) -> list[str]:
    """`size` contacts in 40 accounts with random attributes, events, milestones and enrollments."""
    accounts = [
        _account(f"a{i}", plan=rng.choice(["pro", "free", "cancelled"]), touch=rng.choice(["tech", "low"]))
        for i in range(40)
    ]
    contacts, events, milestones, enrollments = [], [], [], []

    def ago(days: float) -> Any:
        return NOW - timedelta(days=days)

    for n in range(size):
        cid, aid = f"c{n:04d}", f"a{rng.randrange(40)}"
        erased = rng.random() < 0.04
        contacts.append(
            _contact(
                cid,
                aid,
                role=rng.choice(["admin", "member", None]),
                created_at=ago(rng.uniform(0, 14)),
                erased_at=ago(1) if erased else None,
                email=None if erased else f"{cid}@example.com",
            )
        )
        for _ in range(rng.choice([0, 0, 1, 2])):
            events.append(_event(cid, aid, "signed_up", ago(rng.uniform(0, 2.5))))
        for _ in range(rng.randrange(5)):
            events.append(_event(cid, aid, "active_day", ago(rng.uniform(0, 20))))
        for name in ("first_report", "connected"):
            if rng.random() < 0.2:
                milestones.append(_milestone(cid, aid, name, ago(rng.uniform(0, 5))))
        for journey_id, steps in (
            ("onboarding", ["welcome", "pause", "wait-connect", "stalled"]),
            ("stalled", ["nudge", "breather", "check"]),
            ("paused", ["one", "two"]),
            ("sketch", ["hello"]),
        ):
            roll = rng.random()
            if roll < 0.25:
                ended = ago(rng.uniform(0, 20))
                outcome = rng.choice(["converted", "completed", "exited"])
                enrollments.append(
                    _enrollment(
                        journey_id,
                        cid,
                        aid,
                        outcome=outcome,
                        end_reason=outcome,
                        entered_at=ended - timedelta(days=rng.uniform(0, 5)),
                        ended_at=ended,
                    )
                )
            elif roll < 0.5:
                started = ago(rng.uniform(0, 6))
                enrollments.append(
                    _enrollment(
                        journey_id,
                        cid,
                        aid,
                        state="active",
                        outcome=None,
                        end_reason=None,
                        step_id=rng.choice(steps),
                        holdout=rng.random() < 0.2,
                        entered_at=started,
                        ended_at=None,
                        wait_started_at=started,
                        next_action_at=NOW + timedelta(days=rng.uniform(-2, 2)),
                    )
                )
    for n in range(40):  # account journey enrollments
        if rng.random() < 0.3:
            state = rng.choice(["active", "ended"])
            enrollments.append(
                _enrollment(
                    "renewal",
                    f"a{n}",
                    f"a{n}",
                    audience="account",
                    state=state,
                    outcome=None if state == "active" else "completed",
                    end_reason=None if state == "active" else "completed",
                    step_id="later" if state == "active" else None,
                    entered_at=ago(2),
                    ended_at=None if state == "active" else ago(1),
                    wait_started_at=ago(2),
                    next_action_at=NOW + timedelta(days=rng.uniform(-1, 1)) if state == "active" else None,
                )
            )
    _store(
        world,
        accounts=accounts,
        contacts=contacts,
        events=events,
        milestones=milestones,
        enrollments=enrollments,
    )
    return [c["id"] for c in contacts]


def _latest(world: World) -> dict[tuple[str, str], explain.After]:
    en = schema.enrollments.c
    found: dict[tuple[str, str], explain.After] = {}
    with world.db.begin() as conn:
        rows = conn.execute(
            select(en.journey_id, en.subject_id, en.state, en.step_id, en.outcome, en.holdout).order_by(en.id)
        )
        for r in rows:
            found[(r.journey_id, r.subject_id)] = explain.After(
                r.state, r.step_id, r.outcome, bool(r.holdout)
            )
    return found


def test_verdicts_agree_with_the_next_tick_on_a_thousand_random_subjects(world: World) -> None:
    for text in (ONBOARDING, STALLED, RENEWAL, DRAFT, PAUSED):
        world.journey(text)
    contacts = _random_world(world, random.Random(18), 1000)
    catalog = load_catalog(world.settings)
    expected: dict[tuple[str, str], explain.After] = {}
    standings: dict[vocab.Standing, int] = {}
    for journey in catalog.journeys.values():
        subjects = [f"a{n}" for n in range(40)] if journey.audience == "account" else contacts
        for subject_id in subjects:
            option = {"account": subject_id} if journey.audience == "account" else {"contact": subject_id}
            told = explain.explain(world.db, world.settings, journey, NOW, **option)
            expected[(journey.id, subject_id)] = told.after
            standings[told.standing] = standings.get(told.standing, 0) + 1
    world.tick(NOW)
    found = _latest(world)
    disagree = {
        key: (after, found.get(key, explain.After(None)))
        for key, after in expected.items()
        if after != found.get(key, explain.After(None))
    }
    assert list(disagree.items())[:5] == [], len(disagree)
    # the world exercises every standing the tick can reach
    assert set(standings) >= set(vocab.Standing) - {vocab.Standing.NO_ACCOUNT}, standings


def test_an_account_journey_counts_the_recipients_its_messages_would_go_to(world: World) -> None:
    world.journey(RENEWAL)
    _store(
        world,
        accounts=[_account("acme")],
        contacts=[
            _contact("boss", "acme"),
            _contact("quitter", "acme", email=None, erased_at=NOW - timedelta(days=1)),
            _contact("member", "acme", role="member"),
            _contact("muted", "acme"),
        ],
    )
    world.suppress("muted@example.com")
    told = _explain(world, "renewal", contact="member")  # an account journey explains the contact's account
    assert told.subject_id == "acme" and told.standing == vocab.Standing.ENTERS
    [recipients] = [p for p in told.parts if p.part == "recipients"]
    assert (recipients.rule, recipients.value) == (
        "contact.role = admin",
        "2 contact(s), 1 with an address not suppressed",
    )


def test_a_step_removed_from_the_file_is_explained_as_the_tick_moves_it(world: World) -> None:
    world.journey(ONBOARDING)
    world.tick(NOW - timedelta(days=3))  # records the journey's outline
    _store(
        world,
        accounts=[_account("acme")],
        contacts=[_contact(f"p{n}", "acme") for n in range(3)],
        enrollments=[
            _enrollment(
                "onboarding",
                f"p{n}",
                "acme",
                state="active",
                outcome=None,
                end_reason=None,
                step_id=step,
                entered_at=NOW - timedelta(days=1),
                ended_at=None,
                wait_started_at=NOW - timedelta(days=1),
                next_action_at=NOW + timedelta(days=1),
            )
            for n, step in enumerate(["pause", "wait-connect", "stalled"])
        ],
    )
    world.journey(
        ONBOARDING.replace("  - id: pause\n    wait: 2d\n", "").replace(
            "  - id: stalled\n", "  - id: stuck\n"
        )
    )
    told = {f"p{n}": _explain(world, "onboarding", contact=f"p{n}") for n in range(3)}
    assert [p.value for p in told["p0"].parts if p.part == "moved"] == ["to wait-connect (step removed)"]
    world.tick(NOW)
    found = _latest(world)
    assert {s: told[s].after for s in told} == {s: found[("onboarding", s)] for s in told}
    assert found[("onboarding", "p2")].state == "ended"  # nothing after the renamed last step


VARIANTS = """\
id: trial
name: Trial
status: active
trigger: {event: signed_up}
re_entry: never
steps:
  - id: pause
    wait: 1d
  - id: welcome
    email: {template: onboarding/welcome, subject: "Welcome aboard, {{ contact.first_name }}"}
    variants:
      - {id: plain}
      - {id: warm, subject: "So glad you are here, {{ contact.first_name }}"}
"""


def test_explain_names_the_variant_the_next_tick_records_on_the_delivery(world: World) -> None:
    world.journey(VARIANTS)
    world.tick(NOW - timedelta(days=3))  # records the journey's outline
    people = [f"v{n}" for n in range(12)]
    waiting = {"state": "active", "outcome": None, "end_reason": None, "ended_at": None}
    _store(
        world,
        accounts=[_account("acme")],
        contacts=[_contact(p, "acme") for p in people],
        enrollments=[
            _enrollment(
                "trial",
                p,
                "acme",
                **waiting,
                step_id="welcome",
                entered_at=NOW - timedelta(days=1),
                next_action_at=NOW - timedelta(minutes=5),
            )
            for p in people
        ],
    )
    told = {}
    for p in people:
        [part] = [part for part in _explain(world, "trial", contact=p).parts if part.part == "variant"]
        assert part.rule == "welcome: one of plain, warm"
        told[p] = part.value
    world.tick(NOW)
    d = schema.deliveries.c
    with world.db.begin() as conn:
        sent = dict(conn.execute(select(d.contact_id, d.variant).where(d.journey_id == "trial")).all())

    assert sent == told
    assert set(told.values()) == {"plain", "warm"}  # twelve people fall in both halves
