"""`GET /reports`: the marketing dashboard behind a login; `GET /v1/reports/…`: the same numbers as JSON.

A person logs in with a name and password from `reports.users`, or with a server key (name left
empty); scripts send a server key as `Authorization: Bearer KEY`.
"""

from __future__ import annotations

from datetime import timedelta
from html import escape
from typing import Annotated, Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from engagement import errors
from engagement.api import auth, logins
from engagement.api.deps import Services, services
from engagement.reports import build, html, period, sheets
from engagement.reports.model import Report

router = APIRouter()
Svc = Annotated[Services, Depends(services)]
SERVER_KEY_USER = "server key"

LOGIN = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><link rel="icon" href="data:,">
<title>Log in · engagement reports</title>
<style>body{{font:15px/1.5 system-ui,sans-serif;max-width:24rem;margin:5rem auto;padding:0 1rem;color:#1f2937}}
label{{display:block;margin:.6rem 0}}input{{font:inherit;width:100%;padding:.4rem;box-sizing:border-box}}
button{{font:inherit;padding:.5rem 1.2rem;border:0;border-radius:6px;background:#2563eb;color:#fff}}
.error{{color:#b91c1c}}.muted{{color:#6b7280;font-size:.9rem}}</style></head><body>
<h1>Engagement reports</h1>{message}
<form method="post" action="/reports/login">
<label>Name <input name="username" autocomplete="username"></label>
<label>Password, or a server key with no name <input name="password" type="password" autocomplete="current-password"></label>
<button type="submit">Log in</button></form>
<p class="muted">Logins are set in config.toml: <code>reports.users</code> or <code>api.server_keys</code>.</p>
</body></html>"""


def _login_page(message: str = "", status: int = 200) -> HTMLResponse:
    return HTMLResponse(LOGIN.format(message=message), status_code=status)


def _user(request: Request, svc: Services) -> str | None:
    """Who is asking: the session cookie's user, or a Bearer server key."""
    if auth.is_server_key(svc, auth.bearer(request)):
        return SERVER_KEY_USER
    secret = svc.settings.reports.session_secret
    return logins.session_user(request.cookies.get(logins.COOKIE), secret, svc.clock.now())


def _report(
    svc: Services, journey: str | None, since: str | None, first: str | None, last: str | None
) -> Report:
    now = svc.clock.now()
    chosen = period.choose(now, since, first, last)
    return build.for_settings(
        svc.settings, svc.db, chosen, now, journey=journey or None, explicit=bool(since or first or last)
    )


@router.get("/reports/login", response_class=HTMLResponse)
def login_form() -> HTMLResponse:
    """The login form."""
    return _login_page()


@router.post("/reports/login")
async def login(request: Request, svc: Svc) -> Response:
    """Check a name and password (or a server key) and set the session cookie."""
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    name = (form.get("username") or [""])[0].strip()
    password = (form.get("password") or [""])[0]
    reports = svc.settings.reports
    if not reports.users and not svc.settings.api.server_keys:
        return _login_page(
            '<p class="error">No logins are configured: set reports.users or api.server_keys.</p>', 401
        )
    if name:
        stored = reports.users.get(name)
        ok = stored is not None and logins.check_password(password, stored)
    else:
        ok, name = auth.is_server_key(svc, password), SERVER_KEY_USER
    if not ok:
        return _login_page('<p class="error">That name and password do not match.</p>', 401)
    response = RedirectResponse("/reports", status_code=303)
    lifetime = timedelta(hours=reports.session_hours)
    response.set_cookie(
        logins.COOKIE,
        logins.session_cookie(name, reports.session_secret, svc.clock.now(), lifetime),
        max_age=int(lifetime.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=svc.settings.server.public_url.startswith("https://"),
        path="/",
    )
    return response


@router.get("/reports/logout")
def logout() -> Response:
    """Forget the session."""
    response = RedirectResponse("/reports/login", status_code=303)
    response.delete_cookie(logins.COOKIE, path="/")
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
    user = _user(request, svc)
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
    if _user(request, svc) is None:
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
