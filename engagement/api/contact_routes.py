"""`DELETE /v1/contacts/{id}` (server key): erase a contact's personal data (see `engagement.store.erasure`)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException

from engagement import values
from engagement.api import body
from engagement.api.auth import require_server_key
from engagement.api.deps import Services, services
from engagement.store import erasure

router = APIRouter()
Svc = Annotated[Services, Depends(services)]


# `:path`, so a contact stored before ids were refused with a `/` can still be erased
@router.delete("/v1/contacts/{contact_id:path}", dependencies=[Depends(require_server_key)])
def erase_contact(contact_id: str, svc: Svc) -> dict[str, Any]:
    """Erase the contact; the answer counts what was scrubbed. Erasing twice is harmless."""
    wrong = values.text_problem(contact_id)
    if wrong is not None:
        raise body.invalid_field(["path", "contact_id"], wrong)
    settings = svc.settings
    outbox = settings.path(settings.email.outbox.dir) if settings.email.provider == "outbox" else None
    try:
        done = erasure.erase(svc.db, contact_id, svc.clock.now(), outbox=outbox)
    except erasure.ContactNotFound as exc:
        raise HTTPException(404, str(exc)) from exc
    return {"erased": asdict(done)}
