"""Stripe's signed webhook on the API served on 127.0.0.1: subscription events built and signed as Stripe
builds and signs them (its library's own signing helper, and the documented scheme by hand) become
revenue rows; replays, tampered bodies, stale timestamps and wrong secrets write nothing; events for an
account not known yet wait for it."""

from __future__ import annotations

import hashlib
import hmac
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
import stripe
from engine_world import NOW, World
from hypothesis import given
from hypothesis import strategies as st
from test_hostile_fuzz import ANSWERS, FUZZ, HOSTILE, ID

from engagement import config
from engagement.api.app import create_app
from engagement.clock import ManualClock
from engagement.ingest import importer, stripe_events
from engagement.store import schema
from engagement.testing.served import served

BACKENDS = ("sqlite", "postgresql")
SECRET = "whsec_" + "k3yF0rTh1sT3st0nlyN0tARealS3cret"
revenue = schema.table(schema.Revenue)
a, events, subs = schema.accounts, schema.stripe_events, schema.stripe_subscriptions
T0 = NOW - timedelta(days=30)  # when the subscription was created


def price(unit_amount: int, interval: str = "month", interval_count: int = 1) -> dict[str, Any]:
    return {
        "id": f"price_{unit_amount}_{interval}_{interval_count}",
        "object": "price",
        "currency": "usd",
        "unit_amount": unit_amount,
        "unit_amount_decimal": str(unit_amount),
        "billing_scheme": "per_unit",
        "recurring": {"interval": interval, "interval_count": interval_count, "usage_type": "licensed"},
        "type": "recurring",
    }


def subscription(
    sub_id: str, account: str | None, items: list[tuple[dict[str, Any], int]], status: str = "active"
) -> dict[str, Any]:
    """A subscription object as Stripe sends it (the fields a real one has around the ones we read)."""
    return {
        "id": sub_id,
        "object": "subscription",
        "customer": "cus_Q1w2E3r4",
        "status": status,
        "currency": "usd",
        "metadata": {} if account is None else {"account_id": account},
        "items": {
            "object": "list",
            "data": [
                {"id": f"si_{sub_id}_{n}", "object": "subscription_item", "price": p, "quantity": q}
                for n, (p, q) in enumerate(items)
            ],
            "has_more": False,
            "url": f"/v1/subscription_items?subscription={sub_id}",
        },
    }


def event(event_id: str, kind: str, created: datetime, obj: dict[str, Any]) -> bytes:
    """An event body as Stripe posts it (pretty-printed JSON, as Stripe sends)."""
    envelope = {
        "id": event_id,
        "object": "event",
        "api_version": "2025-09-30.clover",
        "created": int(created.timestamp()),
        "data": {"object": obj},
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": kind,
    }
    return json.dumps(envelope, indent=2).encode()


def sign(body: bytes, at: datetime, secret: str = SECRET) -> dict[str, str]:
    """The Stripe-Signature header Stripe's library makes for `body` signed at `at`."""
    header = stripe.WebhookSignature.generate_signature_header(body.decode(), secret, int(at.timestamp()))
    return {"Stripe-Signature": header, "Content-Type": "application/json"}


@dataclass
class Hooked:
    """A world whose API, served on 127.0.0.1, takes Stripe events signed with SECRET."""

    world: World
    url: str
    http: httpx.Client
    clock: ManualClock

    def post(self, body: bytes, headers: dict[str, str]) -> httpx.Response:
        return self.http.post(f"{self.url}/webhooks/stripe", content=body, headers=headers)

    def send(self, body: bytes) -> httpx.Response:
        """Post `body` signed now (by the app's clock), as Stripe signs each delivery when it sends it."""
        return self.post(body, sign(body, self.clock.now()))

    def revenue(self, account: str = "acme") -> list[tuple[datetime, float, str]]:
        found = self.world.rows(revenue, revenue.c.account_id == account)
        return sorted((r["effective_at"], r["mrr"], r["source"]) for r in found)

    def mrr(self, account: str = "acme") -> float:
        return float(self.world.rows(a, a.c.id == account)[0]["mrr"])

    def state(self) -> tuple[list[Any], ...]:
        """Everything the webhook may write."""
        return tuple(
            sorted(tuple(row.values()) for row in self.world.rows(table))
            for table in (revenue, a, events, subs)
        )


@pytest.fixture
def hooked(world: World) -> Iterator[Hooked]:
    world.configure(f'[webhooks.stripe]\nsecret = "{SECRET}"\n[api]\nwrite_keys = ["wk_test"]\n')
    world.accounts({"id": "acme", "name": "Acme", "plan": "pro"})
    clock = ManualClock(NOW)
    app = create_app(world.settings, database=world.db, clock=clock)
    with served(app) as url, httpx.Client(timeout=10) as http:
        yield Hooked(world, url, http, clock)


SEAT = price(5000)  # $50 a seat a month


def test_created_updated_deleted_become_new_expansion_and_churn_rows(hooked: Hooked) -> None:
    h = hooked
    created = event("evt_1", stripe_events.CREATED, T0, subscription("sub_1", "acme", [(SEAT, 2)]))
    updated = event(
        "evt_2", stripe_events.UPDATED, T0 + timedelta(days=10), subscription("sub_1", "acme", [(SEAT, 5)])
    )
    deleted_sub = subscription("sub_1", "acme", [(SEAT, 5)], status="canceled")
    deleted = event("evt_3", stripe_events.DELETED, T0 + timedelta(days=20), deleted_sub)

    answers = [h.send(created), h.send(updated)]
    assert h.mrr() == 250.0
    answers.append(h.send(deleted))

    assert [x.status_code for x in answers] == [200, 200, 200], [x.text for x in answers]
    assert [(x.json()["outcome"], x.json()["mrr"]) for x in answers] == [
        ("applied", 100.0),
        ("applied", 250.0),
        ("applied", 0.0),
    ]
    assert h.revenue() == [
        (T0, 100.0, "stripe"),  # new
        (T0 + timedelta(days=10), 250.0, "stripe"),  # expansion
        (T0 + timedelta(days=20), 0.0, "stripe"),  # churn
    ]
    assert h.mrr() == 0.0


def test_replays_tampered_bodies_stale_timestamps_and_wrong_secrets_write_nothing(hooked: Hooked) -> None:
    h = hooked
    body = event("evt_1", stripe_events.CREATED, T0, subscription("sub_1", "acme", [(SEAT, 2)]))
    assert h.send(body).json()["outcome"] == "applied"
    after_first = h.state()

    h.clock.advance(timedelta(minutes=1))
    replayed = h.send(body)  # Stripe's retry of the same event: signed afresh, applied once
    tampered = body.replace(b'"quantity": 2', b'"quantity": 20')
    forged = h.post(tampered, sign(body, h.clock.now()))
    stale = h.post(body, sign(body, h.clock.now() - timedelta(minutes=5, seconds=1)))
    ahead = h.post(body, sign(body, h.clock.now() + timedelta(minutes=5, seconds=1)))
    wrong = h.post(body, sign(body, h.clock.now(), secret="whsec_someone-elses-endpoint-secret-0000"))
    unsigned = h.post(body, {"Content-Type": "application/json"})
    garbled = h.post(body, {"Stripe-Signature": "v1=abc"})

    assert (replayed.status_code, replayed.json()["outcome"]) == (200, "duplicate")
    assert [x.status_code for x in (forged, stale, ahead, wrong)] == [403, 403, 403, 403]
    assert "webhooks.stripe.tolerance" in stale.json()["detail"]
    assert [unsigned.status_code, garbled.status_code] == [401, 401]
    assert h.state() == after_first
    assert h.revenue() == [(T0, 100.0, "stripe")]

    # just inside the tolerance is taken; a second replay of the same event still changes nothing
    late_but_fine = h.post(body, sign(body, h.clock.now() - timedelta(minutes=4, seconds=59)))
    assert (late_but_fine.status_code, late_but_fine.json()["outcome"]) == (200, "duplicate")
    assert h.state() == after_first


def test_the_documented_signature_scheme_by_hand_is_accepted(hooked: Hooked) -> None:
    h = hooked
    body = event("evt_hand", stripe_events.CREATED, T0, subscription("sub_1", "acme", [(SEAT, 1)]))
    t = int(h.clock.now().timestamp())
    v1 = hmac.new(SECRET.encode(), f"{t}.{body.decode()}".encode(), hashlib.sha256).hexdigest()
    # Stripe may list several signatures (a rolled secret): any v1 that matches will do
    header = f"t={t},v1={'0' * 64},v1={v1},v0=ignored"

    answer = h.post(body, {"Stripe-Signature": header})

    assert answer.status_code == 200, answer.text
    assert h.revenue() == [(T0, 50.0, "stripe")]


def test_an_account_mrr_is_the_sum_of_its_subscriptions_even_when_events_come_out_of_order(
    hooked: Hooked,
) -> None:
    h = hooked
    t1, t2, t3 = T0, T0 + timedelta(days=3), T0 + timedelta(days=6)
    yearly = price(120_000, "year")  # $1,200 a year: $100 a month
    quarterly = price(30_000, "month", 3)  # $300 every 3 months: $100 a month
    # Stripe does not promise order: the second subscription's update arrives before anything else
    h.send(event("evt_b2", stripe_events.UPDATED, t3, subscription("sub_b", "acme", [(quarterly, 2)])))
    h.send(event("evt_a1", stripe_events.CREATED, t1, subscription("sub_a", "acme", [(yearly, 1)])))
    h.send(
        event("evt_b1", stripe_events.CREATED, t2, subscription("sub_b", "acme", [(quarterly, 1), (SEAT, 1)]))
    )

    assert h.revenue() == [(t1, 100.0, "stripe"), (t2, 250.0, "stripe"), (t3, 300.0, "stripe")]
    assert h.mrr() == 300.0
    assert h.world.count(subs) == 3


def test_an_event_for_an_account_not_known_yet_waits_and_applies_when_the_account_is_imported(
    hooked: Hooked,
) -> None:
    h = hooked
    body = event("evt_early", stripe_events.CREATED, T0, subscription("sub_n", "newco", [(SEAT, 3)]))

    answer = h.send(body)

    assert (answer.status_code, answer.json()["outcome"]) == (200, "pending")
    assert h.revenue("newco") == [] and h.world.count(subs) == 0
    path = h.world.root / "accounts.csv"
    path.write_text("id,name\nnewco,NewCo\n")
    importer.import_file(h.world.db, h.world.settings, "accounts", path, NOW + timedelta(hours=1))

    assert h.revenue("newco") == [(T0, 150.0, "stripe")]
    assert h.mrr("newco") == 150.0
    assert h.world.rows(events)[0]["applied_at"] == NOW + timedelta(hours=1)
    assert h.send(body).json()["outcome"] == "duplicate"  # kept or applied, an event counts once


def test_a_waiting_event_applies_when_a_segment_group_call_brings_its_account(hooked: Hooked) -> None:
    h = hooked
    h.send(event("evt_early", stripe_events.CREATED, T0, subscription("sub_s", "segco", [(SEAT, 2)])))
    call = {"type": "group", "groupId": "segco", "userId": "u1", "traits": {"name": "SegCo"}}

    answer = h.http.post(f"{h.url}/v1/group", json=call, auth=("wk_test", ""))

    assert answer.status_code == 200, answer.text
    assert h.revenue("segco") == [(T0, 100.0, "stripe")]
    assert h.mrr("segco") == 100.0


def test_a_subscription_without_metadata_account_id_is_refused_naming_the_field(hooked: Hooked) -> None:
    h = hooked
    before = h.state()

    answer = h.send(event("evt_x", stripe_events.CREATED, T0, subscription("sub_x", None, [(SEAT, 1)])))

    assert answer.status_code == 422
    assert answer.json()["detail"][0]["field"] == "data.object.metadata.account_id"
    assert h.state() == before


def test_signed_bodies_no_door_accepts_are_refused_and_write_nothing(hooked: Hooked) -> None:
    h = hooked
    before = h.state()
    not_text = b'{"id": "evt_1", "type": "customer.subscription.created", "x": "\xff"}'
    header = f"t={int(h.clock.now().timestamp())},v1={'0' * 64}"
    nan = event("evt_n", stripe_events.CREATED, T0, subscription("sub_1", "acme", [(SEAT, 1)]))
    nan = nan.replace(b'"quantity": 1', b'"quantity": NaN')
    bad_count = event(
        "evt_c", stripe_events.CREATED, T0, subscription("sub_1", "acme", [(price(100, "month", 0), 1)])
    )

    answers = [h.post(not_text, {"Stripe-Signature": header}), h.send(nan), h.send(bad_count)]

    assert [x.status_code for x in answers] == [400, 422, 422], [x.text for x in answers]
    assert (
        answers[2].json()["detail"][0]["field"] == "data.object.items.data[0].price.recurring.interval_count"
    )
    assert h.state() == before


def test_other_event_types_are_answered_200_and_ignored(hooked: Hooked) -> None:
    h = hooked
    before = h.state()

    answer = h.send(event("evt_inv", "invoice.paid", T0, {"id": "in_1", "object": "invoice"}))

    assert (answer.status_code, answer.json()["outcome"]) == (200, "ignored")
    assert h.state() == before


def test_without_a_secret_the_webhook_answers_503_naming_the_key(world: World) -> None:
    app = create_app(world.settings, database=world.db, clock=ManualClock(NOW))
    body = event("evt_1", stripe_events.CREATED, T0, subscription("sub_1", "acme", [(SEAT, 1)]))
    with served(app) as url:
        answer = httpx.post(f"{url}/webhooks/stripe", content=body, headers=sign(body, NOW))
    assert answer.status_code == 503 and "webhooks.stripe.secret" in answer.json()["detail"]


def _item(
    unit_amount: int | None, interval: str, count: int = 1, quantity: int | None = 1
) -> stripe_events.Item:
    recurring = {"interval": interval, "interval_count": count}
    return stripe_events.Item.model_validate(
        {"price": {"unit_amount": unit_amount, "recurring": recurring}, "quantity": quantity}
    )


@pytest.mark.parametrize(
    ("item", "monthly"),
    [
        (_item(1000, "month"), Decimal(10)),
        (_item(1200, "year"), Decimal(1)),
        (_item(1200, "month", 3), Decimal(4)),  # billed every 3 months
        (_item(2400, "year", 2), Decimal(1)),  # billed every 2 years
        (_item(1200, "week"), Decimal(12) * 52 / 12),
        (_item(100, "day"), Decimal(1) * 365 / 12),
        (_item(100, "week", 2), Decimal(1) * 52 / 12 / 2),
        (_item(500, "month", quantity=4), Decimal(20)),
        (_item(500, "month", quantity=None), Decimal(5)),  # no quantity given: one
        (_item(None, "month"), Decimal(0)),  # metered: nothing known in advance
    ],
)
def test_an_items_amount_is_made_monthly_over_its_billing_period(
    item: stripe_events.Item, monthly: Decimal
) -> None:
    assert stripe_events.monthly(item) == monthly


def test_a_tiered_price_counts_its_decimal_unit_amount() -> None:
    item = stripe_events.Item.model_validate(
        {"price": {"unit_amount_decimal": "1234.5", "recurring": {"interval": "month"}}, "quantity": 2}
    )
    assert stripe_events.monthly(item) == Decimal("24.69")


def test_the_stripe_secret_is_held_to_the_signing_secret_rule_only_when_set() -> None:
    from engagement.running import secret_policy

    strong = "s" * 40
    base = {
        "unsubscribe": {"secret": strong},
        "inapp": {"token_secret": strong},
        "reports": {"session_secret": strong},
    }
    assert (
        secret_policy.weak(config.load(None, **base)) == []
    )  # unset: the webhook is off, no secret to judge
    for value in ("", "whsec_short", config.DEV_SECRET):
        settings = config.load(None, **base, webhooks={"stripe": {"secret": value}})
        assert secret_policy.weak(settings) == ["webhooks.stripe.secret"], value
    assert secret_policy.weak(config.load(None, **base, webhooks={"stripe": {"secret": SECRET}})) == []


def test_the_secret_comes_from_the_environment_like_the_other_webhook_keys(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ENGAGEMENT_WEBHOOKS__STRIPE__SECRET", SECRET)
    monkeypatch.setenv("ENGAGEMENT_WEBHOOKS__STRIPE__TOLERANCE", "2m")

    stripe_config = config.load(None).webhooks.stripe

    assert (stripe_config.secret, stripe_config.tolerance) == (SECRET, timedelta(minutes=2))


def test_hostile_values_in_signed_stripe_events_get_a_clear_answer_and_store_only_sound_revenue(
    hooked: Hooked,
) -> None:
    """Signed correctly, so the values themselves are what the door must judge: NaN, huge numbers, surrogates,
    wrong types, `/` in ids, extreme times. Every answer is 200 (applied, pending or ignored) or a 4xx naming
    what is wrong; every row written is a finite, non-negative MRR; nothing stops a tick."""
    h = hooked
    money = st.one_of(HOSTILE, st.integers(0, 10**6), st.just(-100), st.floats(allow_nan=True))
    item = st.fixed_dictionaries(
        {
            "price": st.fixed_dictionaries(
                {
                    "unit_amount": money,
                    "recurring": st.fixed_dictionaries(
                        {
                            "interval": st.one_of(HOSTILE, st.sampled_from(["day", "week", "month", "year"])),
                            "interval_count": st.one_of(HOSTILE, st.integers(-2, 12)),
                        }
                    ),
                }
            ),
            "quantity": st.one_of(HOSTILE, st.integers(-1, 10**9)),
        }
    )
    envelope = st.fixed_dictionaries(
        {
            "id": st.one_of(HOSTILE, st.sampled_from(["evt_a", "evt_b"])),
            "type": st.one_of(HOSTILE, st.sampled_from(sorted(stripe_events.SUBSCRIPTION_EVENTS))),
            "created": st.one_of(HOSTILE, st.just(int(T0.timestamp())), st.integers(-(2**40), 2**40)),
            "data": st.fixed_dictionaries(
                {
                    "object": st.fixed_dictionaries(
                        {
                            "id": st.one_of(HOSTILE, st.just("sub_f")),
                            "status": st.one_of(HOSTILE, st.sampled_from(["active", "canceled"])),
                            "metadata": st.one_of(
                                HOSTILE, st.fixed_dictionaries({"account_id": st.one_of(ID, HOSTILE)})
                            ),
                            "items": st.fixed_dictionaries({"data": st.lists(item, max_size=3)}),
                        }
                    )
                }
            ),
        }
    )

    @FUZZ
    @given(envelope)
    def door(doc: dict[str, Any]) -> None:
        body = json.dumps(doc).encode("utf-8", "surrogatepass")  # NaN as JSON's lookalike, surrogates escaped
        answer = h.post(body, sign(body, h.clock.now()))
        assert answer.status_code in ANSWERS, answer.text
        if answer.status_code == 422:
            assert answer.json()["detail"], answer.text

    door()
    for row in h.world.rows(revenue):
        assert math.isfinite(row["mrr"]) and row["mrr"] >= 0, row
    assert math.isfinite(h.mrr()) and h.mrr() >= 0
    h.world.tick(NOW + timedelta(hours=1))
