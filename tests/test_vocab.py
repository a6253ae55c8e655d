"""The engine decides on codes, never on the words it writes for people to read."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import engagement
from engagement.delivery import sendgrid_events
from engagement.vocab import DeliveryStatus, ResponseKind

PACKAGE = Path(engagement.__file__).parent
# status_reason compared, matched or searched: `.like(`, `.startswith(`, `==`, `!=`, `in`, `.contains(`…
COMPARED = re.compile(
    r"status_reason[\"'\]\)]*\s*(\.(i?like|not_?like|startswith|endswith|contains|regexp_match|in_|match)\b"
    r"|like\b|==|!=|\bnot\s+in\b|\bin\b)"
    r"|(==|!=|\blike|\bin)\s+[\w.\[\]\"']*status_reason",
    re.IGNORECASE,
)


def test_no_code_in_the_package_compares_the_status_reason_text() -> None:
    found = [
        f"{path.relative_to(PACKAGE)}:{n}: {line.strip()}"
        for path in sorted(PACKAGE.rglob("*.py"))
        for n, line in enumerate(path.read_text().splitlines(), start=1)
        if COMPARED.search(line)
    ]
    assert found == []


def test_the_pattern_sees_the_comparisons_it_is_there_to_keep_out() -> None:
    for line in (
        "_count(d.c.status_reason.like(HELD_CAP))",
        "d.c.status_reason.startswith(RATE_LIMIT_HOLD),",
        'if row["status_reason"] == "held: weekly email cap reached":',
        "if row.status_reason in HOLDS:",
        "WHERE status_reason LIKE 'held: %'",
    ):
        assert COMPARED.search(line), line
    for line in ('"status_reason": verdict.reason,', "status_reason=None, updated_at=now"):
        assert not COMPARED.search(line), line


@pytest.mark.parametrize(
    ("event", "kind", "status"),
    [
        ("delivered", ResponseKind.DELIVERED, DeliveryStatus.DELIVERED),
        ("open", ResponseKind.OPEN, DeliveryStatus.DELIVERED),
        ("click", ResponseKind.CLICK, DeliveryStatus.DELIVERED),
        ("spamreport", ResponseKind.SPAMREPORT, DeliveryStatus.DELIVERED),
        ("unsubscribe", ResponseKind.UNSUBSCRIBE, DeliveryStatus.DELIVERED),
        ("group_unsubscribe", ResponseKind.GROUP_UNSUBSCRIBE, DeliveryStatus.DELIVERED),
        ("deferred", ResponseKind.DEFERRED, DeliveryStatus.DEFERRED),
        ("bounce", ResponseKind.BOUNCE, DeliveryStatus.BOUNCED),
        ("dropped", ResponseKind.DROPPED, DeliveryStatus.DROPPED),
    ],
)
def test_each_sendgrid_event_becomes_a_response_kind_of_ours_with_its_delivery_status(
    event: str, kind: ResponseKind, status: DeliveryStatus
) -> None:
    found = sendgrid_events.interpret(sendgrid_events.SendgridEvent(event=event, timestamp=1767000000))
    assert found is not None
    assert type(found.kind) is ResponseKind and found.kind == kind
    assert type(found.status) is DeliveryStatus and found.status == status


def test_a_sendgrid_event_we_do_not_record_has_no_kind() -> None:
    for event in ("processed", "group_resubscribe", "machine_opened"):
        assert (
            sendgrid_events.interpret(sendgrid_events.SendgridEvent(event=event, timestamp=1767000000))
            is None
        )
