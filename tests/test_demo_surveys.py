"""The demo's simulated survey answers: a deterministic share of the survey messages, labelled simulated."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from backends import url_for
from sqlalchemy import select
from survey_world import Surveys, at

from engagement.dryrun.demo import surveys as demo_surveys
from engagement.reports.period import Period
from engagement.store import database, schema
from engagement.store.database import Database

STEPS = {"nps-day-90": [("nps-day-90", "nps")]}
END = at(20)


def _world(folder: Path) -> Database:
    folder.mkdir(exist_ok=True)
    db = database.Database(url_for("sqlite", folder))
    db.create_all()
    s = Surveys(db)
    s.accounts({"tech-co": "tech"})
    for i in range(300):
        s.contact(f"c{i}", "tech-co")
        s.delivery(f"d{i:03}", "nps-day-90", "nps-day-90", f"c{i}", at(1 + i % 19))
    s.delivery("welcome", "nps-day-90", "welcome", "c0", at(1))  # not a survey step
    return db


def _answers(db: Database) -> list[tuple[object, ...]]:
    s = schema.survey_answers
    with db.begin() as conn:
        return [tuple(r) for r in conn.execute(select(s).order_by(s.c.delivery_id))]


def test_the_same_deliveries_get_the_same_answers_in_every_run(tmp_path: Path) -> None:
    first, second = _world(tmp_path / "a"), _world(tmp_path / "b")
    assert demo_surveys.answer(first, STEPS, seed=7, end=END) > 0
    demo_surveys.answer(second, STEPS, seed=7, end=END)
    assert _answers(first) == _answers(second)
    assert demo_surveys.answer(first, STEPS, seed=7, end=END) == 0  # answered already: nothing new


def test_a_share_of_survey_messages_is_answered_before_the_end_and_marked_simulated(tmp_path: Path) -> None:
    db = _world(tmp_path)
    written = demo_surveys.answer(db, STEPS, seed=7, end=END)
    answers = _answers(db)
    assert len(answers) == written
    assert 0.25 * 300 < written < 0.45 * 300  # about ANSWER_SHARE of 300, less those cut off by the end
    assert {a[4] for a in answers} == {"nps-day-90"} and {a[5] for a in answers} == {"nps"}
    assert all(at(1) < a[8] < END for a in answers)
    assert all(a[7] is None or a[7].startswith("[simulated]") for a in answers)
    r = schema.responses
    with db.begin() as conn:
        responses = conn.execute(select(r.c.kind, r.c.simulated, r.c.step_id)).all()
    assert len(responses) == written
    assert set(responses) == {("answered", True, "nps-day-90")}


def test_the_summary_shows_the_nps_of_the_simulated_answers(tmp_path: Path) -> None:
    db = _world(tmp_path)
    period = Period(at(1) - timedelta(days=1), END)
    assert demo_surveys.summary(db, STEPS, period).startswith(
        "NPS nps-day-90/nps-day-90: n/a (300 asked, nobody answered)"
    )
    demo_surveys.answer(db, STEPS, seed=7, end=END)
    line = demo_surveys.summary(db, STEPS, period)
    assert line.startswith("NPS nps-day-90/nps-day-90 (simulated answers): ")
    assert "of 300 asked answered" in line
    empty = database.Database(url_for("sqlite"))
    empty.create_all()
    assert demo_surveys.summary(empty, {}, period) == "NPS: n/a (no survey step in the shipped journeys)"
