"""The CS ops pages behind the dashboard login: `/journeys`, `/journeys/{id}`, `/contacts/{id}`,
`/accounts/{id}` and `/search` (views/ reads and renders them; this module only routes).

Every page is a GET that writes nothing; someone not logged in is sent to the login form. The one POST,
the contact page's test send, carries a CSRF token bound to the session.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from html import escape
from typing import Annotated, Any
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from engagement import errors, values, vocab
from engagement.api import auth, body, sessions
from engagement.api.deps import Services, services
from engagement.api.report_routes import dashboard_user
from engagement.delivery.templates import Renderer
from engagement.dryrun import explain, test_send
from engagement.engine import email_provider
from engagement.journeys import catalog as catalogs
from engagement.journeys import program
from engagement.views import journeys, people, render, search

router = APIRouter()
Svc = Annotated[Services, Depends(services)]
MAX_QUERY = 200
MAX_PAGE = 1_000_000
MAX_FORM_BYTES = 4096
TEST_SEND_FORM = "test-send"


def _text(name: str, value: str, limit: int) -> None:
    """422 naming the query parameter when it is too long or holds what no door accepts."""
    if len(value) > limit:
        raise body.invalid_field([name], f"at most {limit} characters")
    wrong = values.problem(value, [name])
    if wrong is not None:
        raise body.invalid_field(*wrong)


def _catalog(svc: Services) -> catalogs.Catalog:
    settings = svc.settings
    return catalogs.load([settings.path(settings.journeys.dir)], settings)


def _logged_in(request: Request, svc: Services, make: Callable[[str, datetime], str]) -> Response:
    """The page `make` renders for a logged-in user; the login form for anyone else; a 404 page (its
    message escaped) for an id or step that does not exist."""
    user = dashboard_user(request, svc)
    if user is None:
        return RedirectResponse("/reports/login", status_code=303)
    try:
        return HTMLResponse(make(user, svc.clock.now()))
    except errors.NotFoundError as exc:
        body = f"<p>{escape(str(exc))}</p><p><a href='/journeys'>Journeys</a></p>"
        return HTMLResponse(body, status_code=404)


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
    step: str | None = None,
    page: str = "1",
) -> Response:
    """One journey drawn as its steps with the people at each now, and who is at `step` (50 a page)."""
    body.path_id("journey_id", journey_id)
    if step is not None:
        _text("step", step, 100)
    if not page.isascii() or not page.isdigit() or not 1 <= int(page) <= MAX_PAGE:
        raise body.invalid_field(["page"], f"a page number from 1 to {MAX_PAGE:,}")
    number = int(page)

    def make(user: str, now: datetime) -> str:
        catalog = _catalog(svc)
        if journey_id not in catalog.journeys:
            raise errors.NotFoundError(f"journey_id: no journey {journey_id!r}")
        journey = catalog.journeys[journey_id]
        if step is not None and step not in {s for s, _, _ in journeys.steps_of(journey)}:
            raise errors.NotFoundError(f"step: journey {journey_id!r} has no step {step!r}")
        with svc.db.begin() as conn:
            [summary] = journeys.summaries(conn, catalog, journey_id)
            listed, total = journeys.people_at(conn, journey, step, number) if step else ([], 0)
        pages = max(1, -(-total // journeys.PAGE))
        return render.page(
            "journey.html.j2",
            f"Journey {journey_id}",
            user,
            now,
            j=summary,
            step=step,
            people=listed,
            total=total,
            page=number,
            pages=pages,
        )

    return _logged_in(request, svc, make)


def _email_steps(catalog: catalogs.Catalog) -> list[tuple[str, str]]:
    """(value, label) of every email step a test send can send: `journey:step`."""
    return [
        (f"{j.id}:{i.step_id}", f"{j.id} / {i.step_id}")
        for j in sorted(catalog.journeys.values(), key=lambda j: j.id)
        for i in j.program
        if isinstance(i, program.Email)
        or (isinstance(i, program.Survey) and i.channel == vocab.Channel.EMAIL)
    ]


def _explained(
    svc: Services, catalog: catalogs.Catalog, now: datetime, audiences: tuple[str, ...], **subject: str
) -> list[Any]:
    return [
        explain.explain(svc.db, svc.settings, j, now, **subject)
        for j in sorted(catalog.journeys.values(), key=lambda j: j.id)
        if j.audience in audiences
    ]


@router.get("/contacts/{contact_id}", response_class=HTMLResponse)
def contact_page(contact_id: str, request: Request, svc: Svc) -> Response:
    """A contact: who, score, why (or why not) in each journey, enrollments, messages, answers, timeline."""
    body.path_id("contact_id", contact_id)

    def make(user: str, now: datetime) -> str:
        with svc.db.begin() as conn:
            found = people.contact(conn, svc.settings, contact_id, now)
        if found is None:
            raise errors.NotFoundError(f"contact_id: no contact {contact_id!r}")
        catalog = _catalog(svc)
        explained = _explained(svc, catalog, now, ("contact", "account"), contact=contact_id)
        token = sessions.form_token(svc.settings, request.cookies.get(sessions.COOKIE), TEST_SEND_FORM)
        return render.page(
            "contact.html.j2",
            f"Contact {contact_id}",
            user,
            now,
            c=found.row,
            page=found,
            explained=explained,
            email_steps=_email_steps(catalog),
            csrf=token,
            sent=request.query_params.get("sent"),
        )

    return _logged_in(request, svc, make)


@router.get("/accounts/{account_id}", response_class=HTMLResponse)
def account_page(account_id: str, request: Request, svc: Svc) -> Response:
    """An account: health, MRR history, contacts, enrollments, messages, answers, timeline, explain."""
    body.path_id("account_id", account_id)

    def make(user: str, now: datetime) -> str:
        with svc.db.begin() as conn:
            found = people.account(conn, svc.settings, account_id, now)
        if found is None:
            raise errors.NotFoundError(f"account_id: no account {account_id!r}")
        explained = _explained(svc, _catalog(svc), now, ("account",), account=account_id)
        chart = render.mrr_chart(account_id, found.mrr)
        return render.page(
            "account.html.j2",
            f"Account {account_id}",
            user,
            now,
            a=found.row,
            page=found,
            explained=explained,
            chart=chart,
        )

    return _logged_in(request, svc, make)


@router.get("/search", response_class=HTMLResponse)
def search_page(request: Request, svc: Svc, q: str = "") -> Response:
    """Contacts and accounts by id, email, name or account name (indexed prefixes, at most 20)."""
    _text("q", q, MAX_QUERY)

    def make(user: str, now: datetime) -> str:
        with svc.db.begin() as conn:
            hits = search.search(conn, q)
        return render.page("search.html.j2", "Search", user, now, hits=hits, query=q)

    return _logged_in(request, svc, make)


def _field(form: dict[str, list[str]], name: str) -> str:
    return (form.get(name) or [""])[0]


@router.post("/contacts/{contact_id}/test-send")
async def test_send_button(contact_id: str, request: Request, svc: Svc) -> Response:
    """The contact page's test send: one email step rendered for this contact, sent to a test address.

    The form carries a CSRF token bound to the session (`sessions.form_token`); a Bearer server key, which
    no browser sends on its own, needs none. Nothing is written unless the send is made.
    """
    body.path_id("contact_id", contact_id)
    user = dashboard_user(request, svc)
    if user is None:
        raise auth.unauthorized("a dashboard login or a server key (Authorization: Bearer KEY) is required")
    raw = await body.read(request, MAX_FORM_BYTES, "a test send form")
    try:
        form = parse_qs(raw.decode("utf-8", "replace"), max_num_fields=10)
    except ValueError as exc:
        raise body.invalid_field(["body"], "not the test send form") from exc
    cookie = request.cookies.get(sessions.COOKIE)
    bearer = auth.is_server_key(svc, auth.bearer(request))
    if not bearer and not sessions.form_token_ok(svc.settings, cookie, TEST_SEND_FORM, _field(form, "csrf")):
        raise HTTPException(403, "csrf: the form expired or came from elsewhere: reload the contact page")
    journey_id, _, step_id = _field(form, "step").partition(":")
    for name, value, limit in (("step", journey_id + step_id, 200), ("to", _field(form, "to"), 320)):
        _text(name, value, limit)
    now = svc.clock.now()

    def run() -> str:
        settings = svc.settings
        renderer = Renderer(settings.path(settings.templates.dir))
        catalog = catalogs.load([settings.path(settings.journeys.dir)], settings, renderer)
        if journey_id not in catalog.journeys:
            raise body.invalid_field(["step"], f"no journey {journey_id!r}")
        provider = email_provider(settings)
        try:
            sent = test_send.send(
                svc.db,
                settings,
                renderer,
                provider,
                catalog.journeys[journey_id],
                step_id,
                contact_id,
                _field(form, "to"),
                now,
                requested_by=user,
                field="to",
            )
        except errors.NotFoundError as exc:
            raise body.invalid_field(["step"], str(exc)) from exc
        except test_send.RefusedError as exc:
            raise body.invalid_field(["to" if str(exc).startswith("to:") else "step"], str(exc)) from exc
        return sent.id

    sent_id = await run_in_threadpool(run)
    return RedirectResponse(
        f"/contacts/{quote(contact_id, safe='')}?sent={sent_id}#test-send", status_code=303
    )
