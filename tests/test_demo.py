"""`engagement demo` builds a working folder, runs the shipped journeys and reports what happened."""

from __future__ import annotations

import io
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from rich.console import Console

from engagement import errors
from engagement.dryrun.demo import run


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[run.Summary], str]:
    folder = tmp_path_factory.mktemp("demo-run") / "demo"
    console = Console(file=io.StringIO(), width=160)
    summaries = run.main(folder, days=5, console=console)
    assert isinstance(console.file, io.StringIO)
    return folder, summaries, console.file.getvalue()


@pytest.mark.slow
def test_a_short_demo_enrolls_people_in_onboarding_and_sends_them_email(
    demo: tuple[Path, list[run.Summary], str],
) -> None:
    _, summaries, printed = demo

    [onboarding] = [s for s in summaries if s.journey == "onboarding-first-report"]
    assert onboarding.entered > 0
    assert 0 < onboarding.emails <= onboarding.entered - onboarding.holdout
    assert "Per-journey summary" in printed and "onboarding-first-report" in printed
    # the NPS of the simulated answers (or n/a), labelled simulated (tests/test_demo_surveys.py checks it)
    assert any(line.startswith("NPS") for line in printed.splitlines())


@pytest.mark.slow
def test_every_demo_email_in_the_outbox_parses_with_both_parts_and_unsubscribe_headers(
    demo: tuple[Path, list[run.Summary], str],
) -> None:
    folder, summaries, _ = demo

    files = sorted((folder / "outbox").glob("*.eml"))

    assert len(files) == sum(s.emails for s in summaries) > 0
    for file in files:
        parsed = message_from_bytes(file.read_bytes(), policy=policy.default)
        assert parsed.defects == [], file
        assert [p.get_content_type() for p in parsed.iter_parts()] == ["text/plain", "text/html"], file
        assert parsed["Subject"] and parsed["To"] and parsed["Date"], file
        assert str(parsed["List-Unsubscribe"]).startswith("<http"), file


def test_the_demo_refuses_to_wipe_a_folder_it_did_not_make(tmp_path: Path) -> None:
    precious = tmp_path / "notes.txt"
    precious.write_text("keep me")

    with pytest.raises(errors.EngagementError, match="was not made by `engagement demo`"):
        run.main(tmp_path, days=1, console=Console(file=io.StringIO()))

    assert precious.read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_the_demo_may_start_over_in_a_folder_it_made_itself(tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    run.prepare(folder)
    (folder / "outbox").mkdir()
    (folder / "outbox" / "old.eml").write_text("stale")

    run.prepare(folder)

    assert not (folder / "outbox").exists()
    assert (folder / "config.toml").is_file() and (folder / "journeys" / "onboarding.yaml").is_file()


@pytest.mark.slow
def test_the_report_on_demo_data_shows_the_onboarding_lift_with_its_interval(
    demo: tuple[Path, list[run.Summary], str],
) -> None:
    import re

    from typer.testing import CliRunner

    from engagement.cli import app

    folder, _, _ = demo
    out = folder / "report.html"

    result = CliRunner().invoke(
        app, ["--config", str(folder / "config.toml"), "report", "--format", "html", "--out", str(out)]
    )

    assert result.exit_code == 0, result.output
    page = out.read_text()
    start = page.index('id="journey-onboarding-first-report"')
    onboarding = page[start : page.index("</section>", start)]
    lift = re.search(r'data-chart="lift".*?data-low="(-?[\d.]+)" data-high="(-?[\d.]+)"', onboarding)
    assert lift is not None, "no lift chart with an interval for onboarding"
    assert float(lift.group(1)) < float(lift.group(2))
    assert "treatment" in onboarding and "holdout" in onboarding and "95% interval" in onboarding


def test_each_demo_folder_gets_signing_secrets_of_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from engagement import config
    from engagement.running import secret_policy

    for name in (
        "ENGAGEMENT_UNSUBSCRIBE__SECRET",
        "ENGAGEMENT_INAPP__TOKEN_SECRET",
        "ENGAGEMENT_REPORTS__SESSION_SECRET",
    ):
        monkeypatch.delenv(name, raising=False)
    first, second = (config.load(run.prepare(tmp_path / name)) for name in ("one", "two"))

    assert secret_policy.weak(first) == [] and secret_policy.weak(second) == []
    assert first.unsubscribe.secret != second.unsubscribe.secret
    assert len({first.unsubscribe.secret, first.inapp.token_secret, first.reports.session_secret}) == 3


@pytest.mark.slow
def test_the_demo_summary_spreads_contacts_over_their_own_bands(
    demo: tuple[Path, list[run.Summary], str],
) -> None:
    import re

    _, _, printed = demo
    text = " ".join(printed.split())
    found = re.search(
        r"contacts green (\d+) \((\d+)%\), yellow (\d+) \((\d+)%\), red (\d+) \((\d+)%\) "
        r"\(green >= 20, yellow >= 8\)",
        text,
    )
    assert found is not None, text[-600:]
    counts = [int(found.group(i)) for i in (1, 3, 5)]
    assert all(n > 0 for n in counts) and max(counts) < 0.7 * sum(counts)  # no band holds nearly everyone


@pytest.mark.slow
def test_the_demo_records_simulated_revenue_and_shows_the_renewal_journeys_retention_lift(
    demo: tuple[Path, list[run.Summary], str],
) -> None:
    import sqlite3

    folder, _, printed = demo
    text = " ".join(printed.split())

    with sqlite3.connect(folder / "engagement.db") as conn:
        sources = dict(conn.execute("SELECT source, count(*) FROM revenue GROUP BY source").fetchall())
        held = conn.execute(
            "SELECT count(*) FROM enrollment WHERE journey_id = 'upcoming-renewal' AND holdout"
        ).fetchone()[0]
    assert list(sources) == ["demo"] and sources["demo"] > 500
    assert held > 0
    assert "Renewal journey (upcoming-renewal) on simulated revenue, 4 days after entry: still paying" in text
    assert 'retention_window = "4d"' in (folder / "config.toml").read_text()
