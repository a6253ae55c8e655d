"""`serve`, `run` and `worker` refuse the published, empty or short signing secrets on a reachable server,
run as real processes; on loopback they start with a loud warning."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from conftest import SECRET_VARIABLES

from engagement import config
from engagement.running import secret_policy
from engagement.store import migrate
from engagement.store.database import Database
from engagement.testing.api_process import ApiProcess, free_port

ENGAGEMENT = Path(sys.executable).parent / "engagement"
STRONG = "s" * 40


def _without_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in SECRET_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def _run(config_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ENGAGEMENT), "--config", str(config_path), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=os.environ.copy(),
    )


def test_serve_on_a_public_address_with_the_default_secrets_exits_1_naming_the_keys_before_binding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _without_secrets(monkeypatch)
    path = tmp_path / "config.toml"
    path.write_text('[database]\nurl = "sqlite:///missing.db"\n')  # no schema: the refusal comes first
    port = free_port()

    done = _run(path, "serve", "--host", "0.0.0.0", "--port", str(port))

    assert done.returncode == 1, done.stdout + done.stderr
    for key, variable in zip(secret_policy.KEYS, SECRET_VARIABLES, strict=True):
        assert key in done.stderr and variable in done.stderr
    assert "refuses to start on 0.0.0.0" in done.stderr
    assert "Uvicorn running" not in done.stdout + done.stderr and "db upgrade" not in done.stderr
    assert not (tmp_path / "missing.db").exists()  # not even the database was opened


def test_a_short_or_empty_secret_is_refused_and_a_loopback_bind_behind_a_public_url_is_not_local(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENGAGEMENT_UNSUBSCRIBE__SECRET", "short")
    monkeypatch.setenv("ENGAGEMENT_INAPP__TOKEN_SECRET", "")
    path = tmp_path / "config.toml"
    path.write_text('[server]\npublic_url = "https://engagement.example.com"\n')

    for command in (["worker"], ["run", "--host", "127.0.0.1"], ["serve", "--host", "127.0.0.1"]):
        done = _run(path, *command)
        assert done.returncode == 1, done.stdout + done.stderr
        assert "unsubscribe.secret" in done.stderr and "inapp.token_secret" in done.stderr
        assert "reports.session_secret" not in done.stderr  # the test's own, long one is fine


def test_on_loopback_the_default_secrets_start_the_server_with_a_loud_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _without_secrets(monkeypatch)
    path = tmp_path / "config.toml"
    path.write_text(f'[database]\nurl = "sqlite:///{tmp_path / "e.db"}"\n')
    migrate.upgrade(Database(config.load(path).database_url))

    with ApiProcess(path) as api:
        assert httpx.get(f"{api.url}/healthz").status_code == 200

    log = api.log.read_text()
    assert "WARNING: weak signing secrets" in log and "reports.session_secret" in log


def test_weak_secrets_are_the_default_empty_or_short_ones_and_loopback_means_this_machine() -> None:
    strong = {"unsubscribe": {"secret": STRONG}, "inapp": {"token_secret": STRONG}}
    settings = config.load(None, **strong, reports={"session_secret": "x" * 31})
    assert secret_policy.weak(settings) == ["reports.session_secret"]
    assert secret_policy.weak(config.load(None, **strong, reports={"session_secret": STRONG})) == []
    assert [
        h for h in ("127.0.0.1", "::1", "[::1]", "localhost", "127.8.0.1") if not secret_policy.is_loopback(h)
    ] == []
    assert [h for h in ("0.0.0.0", "::", "10.0.0.5", "example.com", "") if secret_policy.is_loopback(h)] == []
