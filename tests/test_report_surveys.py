"""Survey figures of a report, hand-computed from tests/survey_world.py, on SQLite and PostgreSQL.

NPS = % promoters (9-10) - % detractors (0-6) over each contact's latest answer to the step in the
period; ties on answered_at go to the greater delivery id; nobody answered -> n/a.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest
from backends import migrated, url_for
from survey_world import KNOWN, NOW, PERIOD, seed

from engagement.reports import build, html, sheets, stats, surveys, tables
from engagement.reports.model import Report, SurveyFigures
from engagement.store.database import Database

Z = 1.959963984540054


@pytest.fixture(scope="module")
def seeded(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    """The hand-built week in a migrated database, on each backend."""
    folder = tmp_path_factory.mktemp("surveys") if backend == "sqlite" else None
    with migrated(url_for(backend, folder)) as db:
        seed(db)
        yield db


@pytest.fixture(scope="module")
def report(seeded: Database) -> Report:
    return build.build(seeded, KNOWN, PERIOD, NOW)


def _figures(report: Report, journey: str, touch: str = surveys.ALL_TIERS) -> SurveyFigures:
    [found] = [f for f in report.journey(journey).surveys if f.touch == touch]
    return found


def _adjusted_wald(promoters: int, detractors: int, n: int) -> tuple[float, float]:
    size = n + 3
    p, d = (promoters + 0.75) / size, (detractors + 0.75) / size
    spread = Z * math.sqrt((p + d - (p - d) ** 2) / size)
    return 100 * (p - d - spread), 100 * (p - d + spread)


def test_nps_counts_each_contacts_latest_answer_with_ties_to_the_greater_delivery_id(report: Report) -> None:
    # tech: t1 answered 9 then 3 (latest: detractor), t2 10, t3 4 and 8 at one instant (t3-b wins: passive),
    # t4 7, t7 0 (sent before the period, answered in it); t6 answered after the period
    tech = _figures(report, "nps", "tech")
    assert (tech.respondents, tech.promoters, tech.passives, tech.detractors) == (5, 1, 2, 2)
    assert tech.nps == pytest.approx(-20.0)
    # sent in the period: t1 twice, t2, t3 twice, t4, t5, t6 (t7's was sent in February); all but t5 answered
    assert (tech.sent, tech.answered) == (8, 7)
    assert tech.response_rate == pytest.approx(7 / 8)


def test_every_tier_and_all_tiers_have_their_own_nps(report: Report) -> None:
    low = _figures(report, "nps", "low")  # l1 9, l2 6, l4 10; l3 never answered
    assert (low.sent, low.answered, low.respondents, low.promoters, low.passives, low.detractors) == (
        4,
        3,
        3,
        2,
        0,
        1,
    )
    assert low.nps == pytest.approx(100 / 3)
    everyone = _figures(report, "nps")
    assert (everyone.sent, everyone.answered, everyone.respondents) == (13, 10, 8)
    assert (everyone.promoters, everyone.passives, everyone.detractors) == (3, 2, 3)
    assert everyone.nps == pytest.approx(0.0)
    assert [f.touch for f in report.journey("nps").surveys] == [surveys.ALL_TIERS, "high", "low", "tech"]


def test_a_tier_or_step_nobody_answered_shows_n_a(report: Report) -> None:
    high = _figures(report, "nps", "high")
    assert (high.sent, high.answered, high.respondents, high.nps, high.nps_low) == (1, 0, 0, None, None)
    quiet = _figures(report, "quiet")  # declared in the journey file, no answer on record
    assert (quiet.sent, quiet.answered, quiet.nps, quiet.response_rate) == (1, 0, None, 0.0)
    assert tables.display("nps", quiet.nps) == "n/a"


def test_the_nps_interval_is_the_adjusted_wald_one(report: Report) -> None:
    everyone, tech = _figures(report, "nps"), _figures(report, "nps", "tech")
    # all tiers: n' = 11, p' = d' = 3.75 / 11, so centre 0 and spread 1.96 * sqrt(7.5 / 121)
    assert (everyone.nps_low, everyone.nps_high) == pytest.approx((-48.797, 48.797), abs=1e-3)
    assert (tech.nps_low, tech.nps_high) == pytest.approx(_adjusted_wald(1, 2, 5))
    assert (tech.nps_low, tech.nps_high) == pytest.approx((-63.744, 38.744), abs=1e-3)


def test_the_interval_stays_within_the_nps_scale() -> None:
    interval = stats.nps_interval(40, 0, 40)
    assert interval is not None and interval.high <= 100.0
    assert stats.nps_interval(0, 0, 0) is None


def test_csat_shows_the_mean_and_the_satisfied_share_of_latest_answers(report: Report) -> None:
    everyone = _figures(report, "support")  # l1 5, l2 4 then 2 (latest 2), t1 3
    assert (everyone.sent, everyone.answered, everyone.respondents) == (4, 4, 3)
    assert everyone.csat_mean == pytest.approx(10 / 3)
    assert everyone.csat_satisfied == pytest.approx(1 / 3)
    assert everyone.nps is None
    low = _figures(report, "support", "low")
    assert (low.respondents, low.csat_mean, low.csat_satisfied) == (2, pytest.approx(3.5), pytest.approx(0.5))


def test_a_journey_without_survey_steps_has_no_survey_figures(seeded: Database) -> None:
    made = build.build(seeded, {"other": build.JourneyInfo("other", "Other", "contact", None)}, PERIOD, NOW)
    assert made.journey("other").surveys == []
    assert "nps" in {j.id for j in made.journeys}  # found by its deliveries, with its answered steps
    assert made.journey("nps").surveys[0].step == "nps-day-90"


def test_the_sheets_and_json_carry_the_survey_figures(report: Report) -> None:
    sheet = {s.name: s for s in sheets.sheets(report)}["surveys"]
    row = next(r for r in sheet.rows if r[:3] == ("nps", "nps-day-90", "tech"))
    values = dict(zip(sheet.metrics, row[3:], strict=True))
    assert (values["kind"], values["sent"], values["nps"]) == ("nps", 8, pytest.approx(-20.0))
    doc = sheets.to_json(report)
    [nps] = [j for j in doc["journeys"] if j["id"] == "nps"]
    assert nps["surveys"][0]["response_rate"] == pytest.approx(10 / 13)
    lines = [line for line in sheets.to_csv(report).splitlines() if line.startswith("surveys,nps,nps-day-90")]
    assert "surveys,nps,nps-day-90,,,,,,,tech,nps,-20.0" in lines


def test_the_answer_list_is_every_answer_oldest_first(seeded: Database) -> None:
    with seeded.begin() as conn:
        everything = surveys.answers(conn)
        in_march = surveys.answers(conn, period=PERIOD, journey="nps")
        t1 = surveys.answers(conn, contact="t1")
        low = surveys.answers(conn, account="low-co")
    assert len(everything) == 15  # 11 NPS, 4 CSAT
    assert [a.answered_at for a in everything] == sorted(a.answered_at for a in everything)
    assert len(in_march) == 10  # t6's answer is after the period; the CSAT ones are another journey
    assert [(a.step, a.score) for a in t1] == [("nps-day-90", 9), ("csat-ticket", 3), ("nps-day-90", 3)]
    assert {a.contact for a in low} == {"l1", "l2", "l4"}


def test_the_html_page_shows_the_survey_figures(report: Report) -> None:
    page = html.page(report)
    section = page[page.index('id="journey-nps"') :]
    section = section[: section.index("</section>")]
    assert "<h3>Surveys by touch tier</h3>" in section
    assert "<td>-20.0</td>" in section and "<td>n/a</td>" in section
    quiet = page[page.index('id="journey-quiet"') :]
    assert "Surveys by touch tier" in quiet[: quiet.index("</section>")]
