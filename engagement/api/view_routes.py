"""The CS ops pages behind the dashboard login: `/journeys`, `/journeys/{id}`, `/contacts/{id}`,
`/accounts/{id}` and `/search` (views/ reads and renders them; this module only routes).

Every page is a GET that writes nothing; someone not logged in is sent to the login form.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from engagement.api.deps import Services, services
from engagement.api.report_routes import dashboard_user
from engagement.dryrun import explain
from engagement.journeys import catalog as catalogs
from engagement.views import journeys, people, render, search

router = APIRouter()
Svc = Annotated[Services, Depends(services)]
MAX_QUERY = 200


def _catalog(svc: Services) -> catalogs.Catalog:
    settings = svc.settings
    return catalogs.load([settings.path(settings.journeys.dir)], settings)


def _logged_in(request: Request, svc: Services, make: Callable[[str, datetime], str]) -> Response:
    user = dashboard_user(request, svc)
    if user is None:
        return RedirectResponse("/reports/login", status_code=303)
    return HTMLResponse(make(user, svc.clock.now()))


@router.get("/journeys", response_class=HTMLResponse)
def journey_list(request: Request, svc: Svc) -> Response:
    """Every journey: status, people active per step, entered, converted."""

    def make(user: str, now: datetime) -> str:
        with svc.db.begin() as conn:
            found = journeys.summaries(conn, _catalog(svc))
        return render.page("journeys.html.j2", "Journeys", user, now, journeys=found)

    return _logged_in(request, svc, make)


@router.get("/journeys/{journey_id}", response_class=HTMLResponse)
def journey_page(
    journey_id: str,
    request: Request,
    svc: Svc,
    step: Annotated[str | None, Query(max_length=100)] = None,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
) -> Response:
    """One journey drawn as its steps with the people at each now, and who is at `step` (50 a page)."""

    def make(user: str, now: datetime) -> str:
        catalog = _catalog(svc)
        if journey_id not in catalog.journeys:
            raise HTTPException(404, f"journey_id: no journey {journey_id!r}")
        journey = catalog.journeys[journey_id]
        if step is not None and step not in {s for s, _, _ in journeys.steps_of(journey)}:
            raise HTTPException(404, f"step: journey {journey_id!r} has no step {step!r}")
        with svc.db.begin() as conn:
            [summary] = journeys.summaries(conn, catalog, journey_id)
            listed, total = journeys.people_at(conn, journey, step, page) if step else ([], 0)
        pages = max(1, -(-total // journeys.PAGE))
        return render.page(
            "journey.html.j2", f"Journey {journey_id}", user, now, j=summary, step=step, people=listed,
            total=total, page=page, pages=pages,
        )  # fmt: skip

    return _logged_in(request, svc, make)


def _explained(svc: Services, now: datetime, audiences: tuple[str, ...], **subject: str) -> list[Any]:
    catalog = _catalog(svc)
    return [
        explain.explain(svc.db, svc.settings, j, now, **subject)
        for j in sorted(catalog.journeys.values(), key=lambda j: j.id)
        if j.audience in audiences
    ]


@router.get("/contacts/{contact_id}", response_class=HTMLResponse)
def contact_page(contact_id: str, request: Request, svc: Svc) -> Response:
    """A contact: who, score, why (or why not) in each journey, enrollments, messages, answers, timeline."""

    def make(user: str, now: datetime) -> str:
        with svc.db.begin() as conn:
            found = people.contact(conn, svc.settings, contact_id, now)
        if found is None:
            raise HTTPException(404, f"contact_id: no contact {contact_id!r}")
        explained = _explained(svc, now, ("contact", "account"), contact=contact_id)
        return render.page(
            "contact.html.j2",
            f"Contact {contact_id}",
            user,
            now,
            c=found.row,
            page=found,
            explained=explained,
        )

    return _logged_in(request, svc, make)


@router.get("/accounts/{account_id}", response_class=HTMLResponse)
def account_page(account_id: str, request: Request, svc: Svc) -> Response:
    """An account: health, MRR history, contacts, enrollments, messages, answers, timeline, explain."""

    def make(user: str, now: datetime) -> str:
        with svc.db.begin() as conn:
            found = people.account(conn, svc.settings, account_id, now)
        if found is None:
            raise HTTPException(404, f"account_id: no account {account_id!r}")
        explained = _explained(svc, now, ("account",), account=account_id)
        chart = render.mrr_chart(account_id, found.mrr)
        return render.page(
            "account.html.j2", f"Account {account_id}", user, now, a=found.row, page=found,
            explained=explained, chart=chart,
        )  # fmt: skip

    return _logged_in(request, svc, make)


@router.get("/search", response_class=HTMLResponse)
def search_page(request: Request, svc: Svc, q: Annotated[str, Query(max_length=MAX_QUERY)] = "") -> Response:
    """Contacts and accounts by id, email, name or account name (indexed prefixes, at most 20)."""

    def make(user: str, now: datetime) -> str:
        with svc.db.begin() as conn:
            hits = search.search(conn, q)
        return render.page("search.html.j2", "Search", user, now, hits=hits, query=q)

    return _logged_in(request, svc, make)
