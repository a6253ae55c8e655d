"""`GET /v1/contacts/{id}/survey-answers` and `GET /v1/accounts/{id}/survey-answers` (server key).

The survey answers of one contact or one account, oldest first, as `engagement report surveys` lists
them; there is no account or contact page in the dashboard yet, so these are their JSON views.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from engagement import values
from engagement.api import body
from engagement.api.auth import require_server_key
from engagement.api.deps import Services, services
from engagement.reports import surveys

router = APIRouter()
Svc = Annotated[Services, Depends(services)]


def _answers(svc: Services, *, contact: str | None = None, account: str | None = None) -> dict[str, Any]:
    with svc.db.begin() as conn:
        found = surveys.answers(conn, contact=contact, account=account)
    return {
        "answers": [
            {
                "journey": a.journey,
                "step": a.step,
                "contact": a.contact,
                "account": a.account,
                "kind": a.kind,
                "score": a.score,
                "comment": a.comment,
                "answered_at": a.answered_at.isoformat(),
            }
            for a in found
        ]
    }


def _checked(name: str, value: str) -> str:
    wrong = values.text_problem(value)
    if wrong is not None:
        raise body.invalid_field(["path", name], wrong)
    return value


@router.get("/v1/contacts/{contact_id:path}/survey-answers", dependencies=[Depends(require_server_key)])
def contact_answers(contact_id: str, svc: Svc) -> dict[str, Any]:
    """The contact's survey answers, oldest first (an unknown contact has none)."""
    return _answers(svc, contact=_checked("contact_id", contact_id))


@router.get("/v1/accounts/{account_id:path}/survey-answers", dependencies=[Depends(require_server_key)])
def account_answers(account_id: str, svc: Svc) -> dict[str, Any]:
    """The survey answers of the account's contacts, oldest first (an unknown account has none)."""
    return _answers(svc, account=_checked("account_id", account_id))
