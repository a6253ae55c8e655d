"""`GET /unsubscribe/{token}`: the preference page; `POST`: one-click unsubscribe (RFC 8058)."""

from __future__ import annotations

from html import escape
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import HTMLResponse
from sqlalchemy import select, update

from engagement import values
from engagement.api.deps import Services, services
from engagement.delivery import suppression, unsubscribe
from engagement.store import schema

router = APIRouter()
Svc = Annotated[Services, Depends(services)]

PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{title}</title>
<style>body{{font:16px/1.5 system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;color:#1f2937}}
button{{font:inherit;padding:.6rem 1.2rem;border:0;border-radius:6px;background:#2563eb;color:#fff;cursor:pointer}}
.muted{{color:#6b7280;font-size:.9rem}}</style></head><body>{body}
<p class="muted">{company}<br>{address}</p></body></html>"""


def _contact(svc: Services, token: str) -> tuple[str, str | None]:
    try:
        contact_id = unsubscribe.read_token(token, svc.settings.unsubscribe.secret)
    except unsubscribe.BadToken as exc:
        raise HTTPException(404, "This unsubscribe link is not valid.") from exc
    with svc.db.begin() as conn:
        email = conn.execute(
            select(schema.contacts.c.email).where(schema.contacts.c.id == contact_id)
        ).scalar()
    return contact_id, email


def _query(delivery_id: str | None) -> str:
    return f"?{urlencode({'d': delivery_id})}" if delivery_id else ""


def _page(svc: Services, title: str, body: str) -> HTMLResponse:
    company = svc.settings.company
    return HTMLResponse(
        PAGE.format(
            title=escape(title),
            body=body,
            company=escape(company.name),
            address=escape(company.postal_address),
        )
    )


@router.get("/unsubscribe/{token}", response_class=HTMLResponse)
def preferences(token: str, svc: Svc, d: str | None = None) -> HTMLResponse:
    """Show who is subscribed and a button to unsubscribe (a GET never changes anything)."""
    _, email = _contact(svc, token)
    if email is None:
        return _page(svc, "Unsubscribed", "<h1>You are unsubscribed</h1><p>We hold no address for you.</p>")
    with svc.db.begin() as conn:
        already = suppression.suppressed(conn, [email])
    if already:
        body = f"<h1>You are unsubscribed</h1><p><strong>{escape(email)}</strong> gets no more emails from us.</p>"
        return _page(svc, "Unsubscribed", body)
    body = (
        f"<h1>Email preferences</h1><p>Emails about {escape(svc.settings.company.name)} go to "
        f"<strong>{escape(email)}</strong>.</p>"
        f'<form method="post" action="/unsubscribe/{escape(token)}{escape(_query(d))}">'
        '<input type="hidden" name="List-Unsubscribe" value="One-Click">'
        "<button type=submit>Unsubscribe from all emails</button></form>"
    )
    return _page(svc, "Email preferences", body)


@router.post("/unsubscribe/{token}", response_class=HTMLResponse)
def unsubscribe_now(token: str, svc: Svc, d: str | None = None) -> HTMLResponse:
    """Unsubscribe in one request (mail clients POST `List-Unsubscribe=One-Click` here).

    `d` names the email the link came in; the unsubscribe is recorded as its response, so it shows in
    reports and lowers the contact's score like a provider's unsubscribe event.
    """
    contact_id, email = _contact(svc, token)
    if d is not None and values.id_problem(d) is not None:
        d = None  # no email of ours has such an id: counted like a link without one
    now = svc.clock.now()
    with svc.db.begin() as conn:
        if email is not None:
            suppression.add(svc.db, conn, email, "unsubscribe", f"link:{contact_id}", now)
        conn.execute(
            update(schema.contacts)
            .where(schema.contacts.c.id == contact_id, schema.contacts.c.unsubscribed_at.is_(None))
            .values(unsubscribed_at=now)
        )
        recorded = unsubscribe.record(svc.db, conn, contact_id, d, now)
    if recorded:
        svc.responses_arrived()
    return _page(
        svc, "Unsubscribed", "<h1>You are unsubscribed</h1><p>You will get no more emails from us.</p>"
    )
