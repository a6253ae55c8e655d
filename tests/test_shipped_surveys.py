"""The shipped NPS journeys: NPS at 90 days for tech-touch admins, and the detractors' follow-up."""

from __future__ import annotations

from pathlib import Path

from engagement import config
from engagement.journeys import catalog
from engagement.reports import surveys

REPO = Path(__file__).resolve().parents[1]
NAMES = ("nps-day-90.yaml", "nps-detractor-follow-up.yaml")


def _shipped(name: str) -> Path:
    return REPO / "journeys" / name


def test_the_shipped_nps_journeys_load_without_problems() -> None:
    settings = config.load(REPO / "config.toml")

    found = catalog.load([_shipped(name) for name in NAMES], settings)

    assert [str(p) for p in found.problems] == []
    asking, follow_up = found.journeys["nps-day-90"], found.journeys["nps-detractor-follow-up"]
    assert surveys.survey_steps(asking.spec.steps) == [("nps-day-90", "nps")]
    assert asking.spec.filter == {"all": [{"account.touch": "tech"}, {"contact.role": "admin"}]}
    assert follow_up.spec.trigger.condition == {
        "survey": {"kind": "nps", "score": {"lte": 6}, "within": "90d"}
    }
    assert [getattr(s, "id", None) for s in follow_up.spec.steps] == ["alert-csm", None, "detractor-note"]
