"""`GET /reports`: the marketing dashboard behind a login; `GET /v1/reports/…`: the same numbers as JSON.

A person logs in with a name and password from `reports.users`, or with a server key (name left
empty); scripts send a server key as `Authorization: Bearer KEY`. The login form carries a CSRF token
(the same random value in a cookie and a hidden field), its body is capped, attempts are throttled per
user name and per client address (`api/throttle.py`), and scrypt runs in worker threads, at most
HASHING_AT_ONCE at a time, never on the event loop.
"""

from __future__ import annotations

import hmac
import math
import secrets
from html import escape
from typing import Annotated, Any
from urllib.parse import parse_qs

import anyio.to_thread
from anyio import CapacityLimiter
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from engagement import errors
from engagement.api import auth, body, logins, sessions, throttle
from engagement.api.deps import Services, services
from engagement.reports import (
    build,
    html,
    months,
    period,
    retention,
    retention_html,
    retention_sheets,
    sheets,
)
from engagement.reports.model import Report
from engagement.reports.retention import RetentionReport

router = APIRouter()
Svc = Annotated[Services, Depends(services)]
SERVER_KEY_USER = sessions.SERVER_KEY_USER
CSRF_COOKIE = "engagement_login_csrf"
MAX_FORM_BYTES = 4096
HASHING_AT_ONCE = 2  # scrypt is CPU work: more at once only slows every request of the process

LOGIN = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><link rel="icon" href="data:,">
<title>Log in · engagement reports</title>
<style>body{{font:15px/1.5 system-ui,sans-serif;max-width:24rem;margin:5rem auto;padding:0 1rem;color:#1f2937}}
label{{display:block;margin:.6rem 0}}input{{font:inherit;width:100%;padding:.4rem;box-sizing:border-box}}
button{{font:inherit;padding:.5rem 1.2rem;border:0;border-radius:6px;background:#2563eb;color:#fff}}
.error{{color:#b91c1c}}.muted{{color:#6b7280;font-size:.9rem}}</style></head><body>
<h1>Engagement reports</h1>{message}
<form method="post" action="/reports/login"><input type="hidden" name="csrf" value="{csrf}">
<label>Name <input name="username" autocomplete="username"></label>
<label>Password, or a server key with no name <input name="password" type="password" autocomplete="current-password"></label>
<button type="submit">Log in</button></form>
<p class="muted">Logins are set in config.toml: <code>reports.users</code> or <code>api.server_keys</code>.</p>
</body></html>"""


def _secure(svc: Services) -> bool:
    return svc.settings.server.public_url.startswith("https://")


def _login_page(svc: Services, message: str = "", status: int = 200) -> HTMLResponse:
    """The form with a fresh CSRF token, set in its cookie too."""
    token = secrets.token_urlsafe(32)
    page = HTMLResponse(LOGIN.format(message=message, csrf=token), status_code=status)
    page.set_cookie(
        CSRF_COOKIE, token, httponly=True, samesite="strict", secure=_secure(svc), path="/reports/login"
    )
    return page


def _hashing_limiter(request: Request) -> CapacityLimiter:
    """The app's limit on password checks at once (made in the event loop that uses it)."""
    state = request.app.state
    if getattr(state, "hashing", None) is None:
        state.hashing = CapacityLimiter(HASHING_AT_ONCE)
    limiter: CapacityLimiter = state.hashing
    return limiter


def dashboard_user(request: Request, svc: Services) -> str | None:
    """Who is asking: the session cookie's user, or a Bearer server key."""
    if auth.is_server_key(svc, auth.bearer(request)):
        return SERVER_KEY_USER
    return sessions.user(svc.db, svc.settings, request.cookies.get(sessions.COOKIE), svc.clock.now())


def _report(
    svc: Services, journey: str | None, since: str | None, first: str | None, last: str | None
) -> Report:
    now = svc.clock.now()
    chosen = period.choose(now, since, first, last)
    return build.for_settings(
        svc.settings, svc.db, chosen, now, journey=journey or None, explicit=bool(since or first or last)
    )


@router.get("/reports/login", response_class=HTMLResponse)
def login_form(svc: Svc) -> HTMLResponse:
    """The login form."""
    return _login_page(svc)


def _field(form: dict[str, list[str]], name: str) -> str:
    return (form.get(name) or [""])[0]


@router.post("/reports/login")
async def login(request: Request, svc: Svc) -> Response:
    """Check a name and password (or a server key) and open a session."""
    raw = await body.read(request, MAX_FORM_BYTES, "a login form")
    try:
        form = parse_qs(raw.decode("utf-8", "replace"), max_num_fields=10)
    except ValueError:  # more fields than a login form has
        return _login_page(svc, '<p class="error">That is not the login form.</p>', 400)
    sent, kept = _field(form, "csrf"), request.cookies.get(CSRF_COOKIE, "")
    if not sent or not hmac.compare_digest(sent.encode("utf-8", "replace"), kept.encode("utf-8", "replace")):
        return _login_page(
            svc, '<p class="error">The form expired or came from elsewhere: log in again.</p>', 403
        )
    name, password = _field(form, "username").strip(), _field(form, "password")
    reports = svc.settings.reports
    if not reports.users and not svc.settings.api.server_keys:
        return _login_page(
            svc, '<p class="error">No logins are configured: set reports.users or api.server_keys.</p>', 401
        )
    now = svc.clock.now()
    address = request.client.host if request.client else "unknown"
    limits = [(throttle.address_key(address), reports.login_attempts_per_address)]
    if name:  # the server key's empty name is throttled by address only, so nobody can lock it out
        limits.append((throttle.user_key(name), reports.login_attempts_per_user))
    wait = await run_in_threadpool(throttle.take, svc.db, limits, reports.login_window, now)
    if wait is not None:
        seconds = max(1, math.ceil(wait.total_seconds()))
        page = _login_page(svc, f'<p class="error">Too many attempts: try again in {seconds} s.</p>', 429)
        page.headers["Retry-After"] = str(seconds)
        return page
    if name:
        ok = await anyio.to_thread.run_sync(
            logins.check_user, reports.users, name, password, limiter=_hashing_limiter(request)
        )
        credential = sessions.user_credential(svc.settings, name)
    else:
        ok, name = auth.is_server_key(svc, password), SERVER_KEY_USER
        credential = sessions.key_credential(svc.settings, password)
    if not ok or credential is None:
        return _login_page(svc, '<p class="error">That name and password do not match.</p>', 401)
    if name != SERVER_KEY_USER:
        await run_in_threadpool(throttle.clear, svc.db, throttle.user_key(name))
    cookie = await run_in_threadpool(sessions.start, svc.db, svc.settings, name, credential, now)
    response = RedirectResponse("/reports", status_code=303)
    response.set_cookie(
        sessions.COOKIE,
        cookie,
        max_age=int(reports.session_hours * 3600),
        httponly=True,
        samesite="lax",
        secure=_secure(svc),
        path="/",
    )
    response.delete_cookie(CSRF_COOKIE, path="/reports/login")
    return response


@router.get("/reports/logout", response_class=HTMLResponse)
def logout_page() -> HTMLResponse:
    """Ends nothing: a page with the logout button (for an old bookmark of the former GET link)."""
    return HTMLResponse(f"<!doctype html><title>Log out</title><p>{html.LOGOUT_FORM}</p>")


@router.post("/reports/logout")
def logout(request: Request, svc: Svc) -> Response:
    """End the session (its row is deleted, so a copy of the cookie stops working too)."""
    sessions.end(svc.db, svc.settings, request.cookies.get(sessions.COOKIE))
    response = RedirectResponse("/reports/login", status_code=303)
    response.delete_cookie(sessions.COOKIE, path="/")
    return response


@router.get("/reports", response_class=HTMLResponse)
def dashboard(
    request: Request,
    svc: Svc,
    journey: str | None = None,
    since: str | None = None,
    first: Annotated[str | None, Query(alias="from")] = None,
    last: Annotated[str | None, Query(alias="to")] = None,
) -> Response:
    """The dashboard: every journey (or one), for a date range."""
    user = dashboard_user(request, svc)
    if user is None:
        return RedirectResponse("/reports/login", status_code=303)
    try:
        made = _report(svc, journey, since, first, last)
    except errors.EngagementError as exc:
        return HTMLResponse(f"<p>{escape(str(exc))}</p><p><a href='/reports'>Back</a></p>", status_code=400)
    known = build.infos_from_settings(svc.settings)
    choices = sorted({(j.id, j.name) for j in made.journeys} | {(j.id, j.name) for j in known.values()})
    controls = html.Controls(
        journeys=choices,
        selected=journey,
        first=made.period.first_day.isoformat(),
        last=made.period.last_day.isoformat(),
        user=user,
    )
    return HTMLResponse(html.page(made, controls))


def _json_user(request: Request, svc: Services) -> None:
    if dashboard_user(request, svc) is None:
        raise auth.unauthorized("a server key (Authorization: Bearer KEY) or a dashboard login is required")


def _json_report(
    request: Request,
    svc: Services,
    journey: str | None,
    since: str | None,
    first: str | None,
    last: str | None,
) -> dict[str, Any]:
    _json_user(request, svc)
    try:
        return sheets.to_json(_report(svc, journey, since, first, last))
    except errors.NotFoundError as exc:
        raise HTTPException(404, str(exc)) from exc
    except errors.EngagementError as exc:
        raise HTTPException(400, str(exc)) from exc


@router.get("/v1/reports")
def report_json(
    request: Request,
    svc: Svc,
    journey: str | None = None,
    since: str | None = None,
    first: Annotated[str | None, Query(alias="from")] = None,
    last: Annotated[str | None, Query(alias="to")] = None,
) -> dict[str, Any]:
    """The whole report as JSON (the same document as `engagement report --format json`)."""
    return _json_report(request, svc, journey, since, first, last)


@router.get("/v1/reports/journeys/{journey_id}")
def journey_json(
    journey_id: str,
    request: Request,
    svc: Svc,
    since: str | None = None,
    first: Annotated[str | None, Query(alias="from")] = None,
    last: Annotated[str | None, Query(alias="to")] = None,
) -> dict[str, Any]:
    """One journey: funnel, steps, daily series, lift and time-to-value."""
    doc = _json_report(request, svc, journey_id, since, first, last)
    [found] = doc["journeys"]
    return {"period": doc["period"], "generated_at": doc["generated_at"], **found}


@router.get("/v1/reports/engagement")
def engagement_json(
    request: Request,
    svc: Svc,
    since: str | None = None,
    first: Annotated[str | None, Query(alias="from")] = None,
    last: Annotated[str | None, Query(alias="to")] = None,
) -> dict[str, Any]:
    """Score bands by day, who moved to red this week, and the top responding steps."""
    doc = _json_report(request, svc, None, since, first, last)
    return {k: doc[k] for k in ("period", "generated_at", "bands", "turned_red", "top_steps")}


def _retention(svc: Services, first: str | None, last: str | None, by: str | None) -> RetentionReport:
    now = svc.clock.now()
    chosen = months.choose(now, first, last, ("from", "to"))
    return retention.build(svc.db, chosen, now, retention.split(by, "by"))


@router.get("/reports/retention", response_class=HTMLResponse)
def retention_dashboard(
    request: Request,
    svc: Svc,
    first: Annotated[str | None, Query(alias="from")] = None,
    last: Annotated[str | None, Query(alias="to")] = None,
    by: str | None = None,
) -> Response:
    """The retention page: the MRR bridge, GRR/NRR by month and the tables, for a range of months."""
    user = dashboard_user(request, svc)
    if user is None:
        return RedirectResponse("/reports/login", status_code=303)
    try:
        made = _retention(svc, first, last, by)
    except errors.EngagementError as exc:
        return HTMLResponse(
            f"<p>{escape(str(exc))}</p><p><a href='/reports/retention'>Back</a></p>", status_code=400
        )
    controls = retention_html.Controls(first=made.first_month, last=made.last_month, by=made.by, user=user)
    return HTMLResponse(retention_html.page(made, controls))


@router.get("/v1/reports/retention")
def retention_json(
    request: Request,
    svc: Svc,
    first: Annotated[str | None, Query(alias="from")] = None,
    last: Annotated[str | None, Query(alias="to")] = None,
    by: str | None = None,
) -> dict[str, Any]:
    """The retention report as JSON (the same document as `engagement report retention --format json`)."""
    _json_user(request, svc)
    try:
        return retention_sheets.to_json(_retention(svc, first, last, by))
    except errors.EngagementError as exc:
        raise HTTPException(400, str(exc)) from exc
