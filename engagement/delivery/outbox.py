"""The embedded default: every email becomes an RFC 5322 `.eml` file, every webhook a JSON file."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from engagement.delivery import mime
from engagement.delivery.message import OutboundEmail, OutboundWebhook

build_mime = mime.build_mime  # kept importable from here for older callers


def write_atomically(path: Path, data: bytes) -> None:
    """Write a whole file or nothing: a temporary file renamed into place."""
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    except FileNotFoundError:  # the folder's first file (asking first cost a call per message)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class OutboxEmail:
    """Writes `<delivery id>.eml` into a folder; a second send of the same delivery overwrites it."""

    name = "outbox"

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def send(self, message: OutboundEmail) -> str:
        write_atomically(self.directory / f"{message.delivery_id}.eml", mime.to_bytes(message))
        return mime.message_id(message)


class OutboxWebhook:
    """Writes `notify/<delivery id>.json` instead of calling the webhook."""

    name = "outbox"

    def __init__(self, directory: Path) -> None:
        self.directory = directory / "notify"

    def send(self, message: OutboundWebhook) -> str:
        body = {"webhook": message.name, "url": message.url, "payload": message.payload}
        write_atomically(self.directory / f"{message.delivery_id}.json", json.dumps(body, indent=2).encode())
        return message.delivery_id
