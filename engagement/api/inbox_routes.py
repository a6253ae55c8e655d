"""The in-app inbox over HTTP: a contact's nudges, nudge events, and the embeddable `/static/nudges.js`.

Callers hold a server key or the contact's in-app token (see `api.auth`), so a browser page can
read one contact's inbox and nothing else.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, StrictInt, StrictStr
from sqlalchemy import Connection

from engagement.api import auth, body
from engagement.api.deps import Services, services
from engagement.responses import inbox, surveys
from engagement.scores import scoring

router = APIRouter()
Svc = Annotated[Services, Depends(services)]
SCRIPT = Path(__file__).parent / "static" / "nudges.js"


class NudgeEventIn(BaseModel):
    """What the contact did with a nudge."""

    model_config = ConfigDict(extra="forbid")
    kind: inbox.NudgeEvent


async def _nudge_event_in(request: Request, svc: Svc) -> NudgeEventIn:
    """The body, capped like one intake call and checked at the door before anything else reads it."""
    return await body.model(request, NudgeEventIn, svc.settings.api.max_call_bytes, "a nudge event")


@router.get("/v1/contacts/{contact_id}/nudges")
def contact_nudges(contact_id: str, request: Request, svc: Svc) -> dict[str, Any]:
    """The contact's live nudges (not expired, clicked or dismissed), unseen first."""
    body.path_id("contact_id", contact_id)
    auth.require_contact_access(request, svc, contact_id)
    with svc.db.begin() as conn:
        return {"nudges": inbox.live(conn, contact_id, svc.clock.now())}


def documented(model: type[BaseModel]) -> dict[str, Any]:
    """OpenAPI for a body read by hand (`body.model`), so /docs still shows it."""
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": model.model_json_schema()}},
        }
    }


DOCUMENTED = documented(NudgeEventIn)


@router.post("/v1/nudges/{nudge_id}/events", openapi_extra=DOCUMENTED)
def nudge_event(
    nudge_id: str, payload: Annotated[NudgeEventIn, Depends(_nudge_event_in)], request: Request, svc: Svc
) -> dict[str, Any]:
    """Record `seen`, `clicked` or `dismissed` (once each; a repeat changes nothing) and credit the score.

    The caller is authenticated before anything about the nudge is told: a contact token is checked
    against the nudge's owner, and a nudge that does not exist has no owner, so only a server key
    learns that an id is unknown (404); everyone else gets the same 401 either way.
    """
    body.path_id("nudge_id", nudge_id)
    now = svc.clock.now()
    with svc.db.begin() as conn:
        found = _owned(conn, request, svc, nudge_id)
        recorded = inbox.record(svc.db, conn, found.row, payload.kind, now)
    if recorded:
        scoring.credit(svc.db, svc.settings, now)
    return {"nudge": nudge_id, "kind": payload.kind, "recorded": recorded}


def _owned(conn: Connection, request: Request, svc: Services, nudge_id: str) -> inbox.Found:
    """The nudge, if the caller may act on it (see nudge_event); else 401, or 404 for a server key."""
    credential = auth.bearer(request)
    if credential is None:
        raise auth.unauthorized(auth.CONTACT_ACCESS)
    found = inbox.find(conn, nudge_id)
    owner = None if found is None or found.erased else str(found.row["contact_id"])
    if not auth.is_server_key(svc, credential) and (
        owner is None or not auth.is_contact_token(svc, credential, owner)
    ):
        raise auth.unauthorized(auth.CONTACT_ACCESS)
    if found is None or owner is None:
        raise HTTPException(404, f"no nudge {nudge_id}")
    return found


class SurveyAnswerIn(BaseModel):
    """The contact's answer to an in-app survey: NPS 0 to 10, CSAT 1 to 5, and an optional comment."""

    model_config = ConfigDict(extra="forbid")
    score: StrictInt
    comment: StrictStr | None = None


async def _answer_in(request: Request, svc: Svc) -> SurveyAnswerIn:
    return await body.model(request, SurveyAnswerIn, svc.settings.api.max_call_bytes, "a survey answer")


@router.post("/v1/nudges/{nudge_id}/answer", openapi_extra=documented(SurveyAnswerIn))
def nudge_answer(
    nudge_id: str, payload: Annotated[SurveyAnswerIn, Depends(_answer_in)], request: Request, svc: Svc
) -> dict[str, Any]:
    """Record the answer to an in-app survey (answering again updates it) and credit the score."""
    body.path_id("nudge_id", nudge_id)
    now = svc.clock.now()
    with svc.db.begin() as conn:
        found = _owned(conn, request, svc, nudge_id)
        survey = surveys.find(conn, str(found.row["delivery_id"]))
        if survey is None:
            raise body.invalid_field(["path", "nudge_id"], f"nudge {nudge_id} is not an open survey")
        try:
            answer = surveys.check(
                survey.kind, payload.score, payload.comment, svc.settings.surveys.comment_chars
            )
        except surveys.AnswerError as exc:
            raise body.invalid_field(["body", exc.field], exc.message) from exc
        first = surveys.record(svc.db, conn, survey, answer, now, "inbox")
        inbox.record(svc.db, conn, found.row, "seen", now)
    scoring.credit(svc.db, svc.settings, now)
    return {"nudge": nudge_id, "kind": survey.kind, "score": answer.score, "first": first}


@router.get("/static/nudges.js", include_in_schema=False)
def script() -> FileResponse:
    """The embeddable inbox script (no dependencies)."""
    return FileResponse(
        SCRIPT, media_type="text/javascript; charset=utf-8", headers={"Cache-Control": "public, max-age=300"}
    )
