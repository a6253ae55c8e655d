"""Tests for the deterministic Chartwell demo dataset."""

from __future__ import annotations

import csv
import itertools
import json
import re
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo, available_timezones

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engagement.dryrun.demo import dataset
from engagement.dryrun.demo.dataset import Dataset

START = datetime(2026, 3, 2, tzinfo=UTC)
END = START + timedelta(days=60)
MILESTONES = ("first_login", "integration_connected", "first_report_created", "report_shared")
MRR_RANGES = {
    "free": (0.0, 0.0),
    "cancelled": (0.0, 0.0),
    "starter": (29.0, 99.0),
    "pro": (149.0, 799.0),
    "business": (1000.0, 4000.0),
    "enterprise": (5000.0, 25000.0),
}


@pytest.fixture(scope="module")
def data() -> Dataset:
    return dataset.generate(start=START)


@pytest.fixture(scope="module")
def small() -> Dataset:
    return dataset.generate(start=START, accounts=40, seed=3)


def _time(row: dict[str, object]) -> datetime:
    for name in ("timestamp", "created_at", "signed_up_at"):
        value = row.get(name)
        if isinstance(value, datetime):
            return value
    raise AssertionError(f"row without a time: {row}")


def _dt(value: object) -> datetime:
    assert isinstance(value, datetime)
    return value


def _named(data: Dataset, name: str) -> list[dict[str, object]]:
    return [event for event in data.events if event["name"] == name]


def _ids(rows: list[dict[str, object]]) -> list[object]:
    return [row["id"] for row in rows]


def test_same_seed_gives_identical_rows(data: Dataset) -> None:
    assert dataset.generate(start=START) == data


def test_different_seed_gives_different_rows(data: Dataset) -> None:
    other = dataset.generate(start=START, seed=8)
    assert other.accounts != data.accounts
    assert other.contacts != data.contacts


def test_an_aware_start_in_another_zone_means_the_same_instant(small: Dataset) -> None:
    shifted = START.astimezone(ZoneInfo("America/New_York"))
    assert dataset.generate(start=shifted, accounts=40, seed=3) == small


def test_naive_start_is_rejected() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        dataset.generate(start=datetime(2026, 3, 2))  # noqa: DTZ001


def test_base_has_at_least_500_accounts_and_2000_contacts(data: Dataset) -> None:
    assert len(data.accounts) >= 500
    assert 2000 <= len(data.contacts) <= 2500
    assert len(data.events) < 60_000


def test_rows_have_exactly_the_import_fields(data: Dataset) -> None:
    account_fields = [
        "id",
        "name",
        "plan",
        "mrr",
        "touch",
        "signed_up_at",
        "renewal_date",
        "traits",
    ]
    contact_fields = [
        "id", "account_id", "email", "first_name", "last_name", "role", "timezone",
        "created_at", "traits",
    ]  # fmt: skip
    event_fields = ["id", "contact_id", "account_id", "name", "timestamp", "properties"]
    assert all(list(row) == account_fields for row in data.accounts)
    assert all(list(row) == contact_fields for row in data.contacts)
    assert all(list(row) == event_fields for row in data.events)


def test_ids_are_unique_and_well_formed(data: Dataset) -> None:
    for rows, pattern in (
        (data.accounts, r"acc-\d{4}"),
        (data.contacts, r"con-\d{5}"),
        (data.events, r"evt-\d{6}"),
    ):
        ids = _ids(rows)
        assert len(set(ids)) == len(ids)
        assert all(isinstance(i, str) and re.fullmatch(pattern, i) for i in ids)


def test_every_contact_belongs_to_an_existing_account(data: Dataset) -> None:
    account_ids = set(_ids(data.accounts))
    assert all(contact["account_id"] in account_ids for contact in data.contacts)


def test_every_event_points_to_an_existing_contact_and_its_account(data: Dataset) -> None:
    account_of = {contact["id"]: contact["account_id"] for contact in data.contacts}
    for event in data.events:
        assert event["contact_id"] in account_of
        assert event["account_id"] == account_of[event["contact_id"]]


def test_no_datetime_is_naive_and_all_are_utc(data: Dataset) -> None:
    for rows in (data.accounts, data.contacts, data.events):
        for row in rows:
            moment = _time(row)
            assert moment.tzinfo is not None
            assert moment.utcoffset() == timedelta(0)


def test_values_have_the_promised_types(data: Dataset) -> None:
    for account in data.accounts:
        assert isinstance(account["mrr"], float)
        assert round(account["mrr"], 2) == account["mrr"]
        renewal = account["renewal_date"]
        assert renewal is None or (isinstance(renewal, date) and not isinstance(renewal, datetime))
        assert isinstance(account["traits"], dict)
    for rows, key in (
        (data.accounts, "traits"),
        (data.contacts, "traits"),
        (data.events, "properties"),
    ):
        for row in rows:
            json.dumps(row[key])


def test_mrr_matches_the_plan(data: Dataset) -> None:
    plans = Counter(account["plan"] for account in data.accounts)
    assert set(plans) == set(MRR_RANGES)
    assert plans["free"] + plans["starter"] + plans["pro"] > 0.6 * len(data.accounts)
    assert 0 < plans["cancelled"] < 0.1 * len(data.accounts)
    for account in data.accounts:
        low, high = MRR_RANGES[str(account["plan"])]
        mrr = account["mrr"]
        assert isinstance(mrr, float)
        assert low <= mrr <= high


def test_touch_is_high_for_a_few_accounts_and_unset_otherwise(data: Dataset) -> None:
    touches = Counter(account["touch"] for account in data.accounts)
    assert set(touches) == {None, "high"}
    assert 1 <= touches["high"] <= 0.02 * len(data.accounts)


def test_account_names_and_emails_are_unique(data: Dataset) -> None:
    names = [account["name"] for account in data.accounts]
    emails = [contact["email"] for contact in data.contacts]
    assert len(set(names)) == len(names)
    assert len(set(emails)) == len(emails)
    assert all(re.fullmatch(r"[a-z0-9]+\.[a-z0-9]+@[a-z0-9]+\.(com|io|co)", str(e)) for e in emails)


def test_account_traits_are_consistent_with_size(data: Dataset) -> None:
    for account in data.accounts:
        traits = account["traits"]
        assert isinstance(traits, dict)
        assert set(traits) == {"industry", "seats", "reports_created", "dashboards", "active_users"}
        assert 0 <= traits["active_users"] <= traits["seats"]
        assert 0 <= traits["dashboards"] <= traits["reports_created"]


def test_first_contact_of_each_account_is_its_admin_created_at_signup(data: Dataset) -> None:
    signed_up = {account["id"]: account["signed_up_at"] for account in data.accounts}
    first: dict[object, dict[str, object]] = {}
    for contact in data.contacts:
        first.setdefault(contact["account_id"], contact)
        assert _dt(contact["created_at"]) >= _dt(signed_up[contact["account_id"]])
    assert len(first) == len(data.accounts)
    for account_id, contact in first.items():
        assert contact["role"] == "admin"
        assert contact["created_at"] == signed_up[account_id]
    roles = Counter(contact["role"] for contact in data.contacts)
    assert roles["admin"] == len(data.accounts)
    assert roles["member"] > roles["viewer"] > 0


def test_contacts_have_real_time_zones_mostly_shared_within_an_account(data: Dataset) -> None:
    zones = available_timezones()
    by_account: dict[object, Counter[object]] = {}
    for contact in data.contacts:
        assert contact["timezone"] in zones
        by_account.setdefault(contact["account_id"], Counter())[contact["timezone"]] += 1
    shared = sum(counts.most_common(1)[0][1] for counts in by_account.values())
    assert shared >= 0.75 * len(data.contacts)


def test_every_contact_has_one_signed_up_event_at_its_creation(data: Dataset) -> None:
    signups = {e["contact_id"]: e["timestamp"] for e in data.events if e["name"] == "signed_up"}
    assert len(signups) == sum(1 for e in data.events if e["name"] == "signed_up")
    assert signups == {contact["id"]: contact["created_at"] for contact in data.contacts}


def test_only_signups_fall_inside_the_window(data: Dataset) -> None:
    for event in data.events:
        moment = _dt(event["timestamp"])
        assert moment < END
        if moment >= START:
            assert event["name"] == "signed_up"


def test_history_milestones_are_ordered_and_before_start(data: Dataset) -> None:
    created = {contact["id"]: _dt(contact["created_at"]) for contact in data.contacts}
    reached: dict[object, dict[str, datetime]] = {}
    for event in data.events:
        if event["name"] in MILESTONES:
            per_contact = reached.setdefault(event["contact_id"], {})
            assert event["name"] not in per_contact
            per_contact[str(event["name"])] = _dt(event["timestamp"])
    for contact_id, milestones in reached.items():
        previous = created[contact_id]
        assert previous < START
        for name in MILESTONES[: len(milestones)]:
            assert name in milestones, f"{contact_id} skipped {name}"
            assert previous <= milestones[name] < START
            previous = milestones[name]


def test_milestones_drop_off_like_a_funnel(data: Dataset) -> None:
    history = [c for c in data.contacts if _dt(c["created_at"]) < START]
    counts = Counter(e["name"] for e in data.events if e["name"] in MILESTONES)
    shares = [counts[name] / len(history) for name in MILESTONES]
    assert shares == sorted(shares, reverse=True)
    for share, expected in zip(shares, (0.9, 0.6, 0.45, 0.25), strict=True):
        assert abs(share - expected) < 0.08


def test_active_days_cover_the_30_days_before_start_once_per_local_day(data: Dataset) -> None:
    first_login = {e["contact_id"]: e["timestamp"] for e in _named(data, "first_login")}
    zone = {contact["id"]: ZoneInfo(str(contact["timezone"])) for contact in data.contacts}
    seen: set[tuple[object, object]] = set()
    for event in data.events:
        if event["name"] != "active_day":
            continue
        moment = _dt(event["timestamp"])
        assert START - timedelta(days=30) <= moment < START
        assert moment > _dt(first_login[event["contact_id"]])
        local = moment.astimezone(zone[event["contact_id"]])
        assert 7 <= local.hour < 20
        key = (event["contact_id"], local.date())
        assert key not in seen
        seen.add(key)


def test_a_real_share_of_established_contacts_has_low_adoption(data: Dataset) -> None:
    recent = Counter(
        e["contact_id"]
        for e in data.events
        if e["name"] == "active_day" and _dt(e["timestamp"]) >= START - timedelta(days=14)
    )
    established = [c for c in data.contacts if _dt(c["created_at"]) <= START - timedelta(days=21)]
    low = sum(1 for contact in established if recent[contact["id"]] < 3)
    engaged = sum(1 for contact in established if recent[contact["id"]] >= 6)
    assert 0.2 <= low / len(established) <= 0.6
    assert engaged >= 0.25 * len(established)


def test_in_window_signups_arrive_every_weekday(data: Dataset) -> None:
    new_accounts = [a for a in data.accounts if _dt(a["signed_up_at"]) >= START]
    assert 0.2 * len(data.accounts) <= len(new_accounts) <= 0.3 * len(data.accounts)
    days = Counter(_dt(a["signed_up_at"]).date() for a in new_accounts)
    weekdays = [START.date() + timedelta(days=d) for d in range(60)]
    assert all(days[day] > 0 for day in weekdays if day.weekday() < 5)
    weekday_rate = sum(days[d] for d in weekdays if d.weekday() < 5) / 43
    weekend_rate = sum(days[d] for d in weekdays if d.weekday() >= 5) / 17
    assert weekend_rate < weekday_rate
    new_contacts = [c for c in data.contacts if START <= _dt(c["created_at"]) < END]
    assert len(new_contacts) > len(new_accounts)


def test_renewal_date_is_the_next_anniversary_for_paying_plans(data: Dataset) -> None:
    for account in data.accounts:
        renewal = account["renewal_date"]
        if account["plan"] in ("free", "cancelled"):
            assert renewal is None
            continue
        assert isinstance(renewal, date)
        signed = _dt(account["signed_up_at"]).date()
        assert (renewal.month, renewal.day) == (signed.month, signed.day) or (
            (signed.month, signed.day) == (2, 29) and (renewal.month, renewal.day) == (2, 28)
        )
        assert renewal >= START.date()
        assert renewal > signed
        year_before = renewal.replace(year=renewal.year - 1, day=min(renewal.day, 28))
        assert year_before <= signed or year_before < START.date()


def test_at_least_60_paying_accounts_renew_within_60_days(data: Dataset) -> None:
    renewals = [a["renewal_date"] for a in data.accounts]
    days_until = [(r - START.date()).days for r in renewals if isinstance(r, date)]
    soon = [days for days in days_until if 0 <= days <= 60]
    assert len(soon) >= 60


def test_split_by_time_keeps_rows_up_to_the_cut(data: Dataset) -> None:
    before = dataset.split_by_time(data, START)
    assert all(_time(row) <= START for row in before.accounts + before.contacts + before.events)
    assert len(before.accounts) + len(before.contacts) + len(before.events) == sum(
        1 for row in data.accounts + data.contacts + data.events if _time(row) <= START
    )
    account_ids = set(_ids(before.accounts))
    contact_ids = set(_ids(before.contacts))
    assert all(c["account_id"] in account_ids for c in before.contacts)
    assert all(e["contact_id"] in contact_ids for e in before.events)


def test_split_and_between_partition_the_dataset(data: Dataset) -> None:
    cuts = [START + timedelta(days=d) for d in range(0, 61, 7)] + [END]
    parts = [dataset.split_by_time(data, cuts[0])]
    parts += [dataset.between(data, a, b) for a, b in itertools.pairwise(cuts)]
    for name in ("accounts", "contacts", "events"):
        joined = [row["id"] for part in parts for row in getattr(part, name)]
        assert joined == _ids(getattr(data, name))


@settings(max_examples=30, deadline=None)
@given(
    first=st.integers(min_value=-200 * 24, max_value=70 * 24),
    gap=st.integers(min_value=0, max_value=40 * 24),
)
def test_between_is_the_difference_of_two_splits(small: Dataset, first: int, gap: int) -> None:
    after = START + timedelta(hours=first)
    until = after + timedelta(hours=gap)
    early, late = dataset.split_by_time(small, after), dataset.split_by_time(small, until)
    middle = dataset.between(small, after, until)
    for name in ("accounts", "contacts", "events"):
        # Rows are in time order, so the earlier part followed by the middle is the later split.
        assert _ids(getattr(early, name)) + _ids(getattr(middle, name)) == _ids(getattr(late, name))


def test_split_by_time_rejects_a_naive_cut(small: Dataset) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        dataset.split_by_time(small, datetime(2026, 3, 2))  # noqa: DTZ001


def test_write_csv_reads_back_with_the_same_ids(small: Dataset, tmp_path: Path) -> None:
    for name in ("accounts", "contacts", "events"):
        rows = getattr(small, name)
        path = tmp_path / f"{name}.csv"
        dataset.write_csv(rows, path)
        with path.open(encoding="utf-8", newline="") as handle:
            back = list(csv.DictReader(handle))
        assert [row["id"] for row in back] == _ids(rows)
        assert list(back[0]) == list(rows[0])
    with (tmp_path / "accounts.csv").open(encoding="utf-8", newline="") as handle:
        accounts = list(csv.DictReader(handle))
    for original, row in zip(small.accounts, accounts, strict=True):
        assert datetime.fromisoformat(row["signed_up_at"]) == original["signed_up_at"]
        assert row["signed_up_at"].endswith("+00:00")
        assert json.loads(row["traits"]) == original["traits"]
        assert float(row["mrr"]) == original["mrr"]
        if original["renewal_date"] is None:
            assert row["renewal_date"] == ""
        else:
            assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", row["renewal_date"])
        assert row["touch"] == (original["touch"] or "")


def test_write_jsonl_reads_back_with_the_same_ids(small: Dataset, tmp_path: Path) -> None:
    for name in ("accounts", "contacts", "events"):
        rows = getattr(small, name)
        path = tmp_path / f"{name}.jsonl"
        dataset.write_jsonl(rows, path)
        back = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        assert [row["id"] for row in back] == _ids(rows)
    events = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    for original, row in zip(small.events, events, strict=True):
        assert datetime.fromisoformat(row["timestamp"]) == original["timestamp"]
        assert row["timestamp"].endswith("+00:00")
        assert row["properties"] == original["properties"]


def test_write_csv_of_no_rows_writes_an_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    dataset.write_csv([], path)
    assert path.read_text() == ""
