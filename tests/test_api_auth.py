"""The API's credentials: write keys as Basic usernames, server keys and per-contact in-app tokens as Bearer."""

from __future__ import annotations

import base64
from pathlib import Path

from fastapi import Depends, FastAPI, Request
from fastapi.testclient import TestClient

from engagement import config
from engagement.api import auth
from engagement.api.deps import Services, services
from engagement.clock import SystemClock
from engagement.store.database import Database


def _client(tmp_path: Path) -> TestClient:
    settings = config.load(
        None, api={"write_keys": ["wk-1"], "server_keys": ["sk-1"]}, inapp={"token_secret": "in-app-secret"}
    )
    app = FastAPI()
    app.state.services = Services(settings, Database(f"sqlite:///{tmp_path / 'e.db'}"), SystemClock())

    @app.get("/write")
    def write(request: Request, found: Services = Depends(services)) -> str:
        auth.check_write_key(found, auth.basic_username(request))
        return "ok"

    @app.get("/server", dependencies=[Depends(auth.require_server_key)])
    def server() -> str:
        return "ok"

    @app.get("/contacts/{contact_id}")
    def contact(contact_id: str, request: Request, found: Services = Depends(services)) -> str:
        auth.require_contact_access(request, found, contact_id)
        return "ok"

    return TestClient(app)


def _basic(user: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:".encode()).decode()}


def test_write_key_is_the_basic_username(tmp_path: Path) -> None:
    client = _client(tmp_path)
    assert client.get("/write", headers=_basic("wk-1")).status_code == 200
    for headers in ({}, _basic("wk-2"), {"Authorization": "Basic !!!"}, {"Authorization": "Bearer wk-1"}):
        answer = client.get("/write", headers=headers)
        assert answer.status_code == 401 and "write key" in answer.json()["detail"]


def test_server_key_is_a_bearer_token(tmp_path: Path) -> None:
    client = _client(tmp_path)
    assert client.get("/server", headers={"Authorization": "Bearer sk-1"}).status_code == 200
    assert client.get("/server", headers={"Authorization": "Bearer wk-1"}).status_code == 401
    assert client.get("/server").status_code == 401


def test_in_app_token_opens_only_its_own_contact(tmp_path: Path) -> None:
    client = _client(tmp_path)
    token = auth.contact_token("c-1", "in-app-secret")
    assert (
        token == "428c291d48463a868a311468b037b25ffd96eda4fb9e33f3ee1c29f712007f3d"
    )  # what any HMAC library gives
    assert client.get("/contacts/c-1", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert client.get("/contacts/c-2", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert client.get("/contacts/c-2", headers={"Authorization": "Bearer sk-1"}).status_code == 200
    assert client.get("/contacts/c-1").status_code == 401
