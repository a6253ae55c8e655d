"""The embedded default: every email becomes an RFC 5322 `.eml` file, every webhook a JSON file."""

from __future__ import annotations

import json
import os
import tempfile
from email.charset import QP, Charset
from email.header import Header
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import SMTP
from email.utils import format_datetime, formataddr, parseaddr
from pathlib import Path

from engagement.delivery.message import OutboundEmail, OutboundWebhook

# Folding at 78 turns a long unbreakable value (an unsubscribe URL) into an RFC 2047 encoded
# word, which mail clients do not decode in List-Unsubscribe; fold only at RFC 5322's hard limit.
WIRE = SMTP.clone(max_line_length=998)


def _utf8() -> Charset:
    charset = Charset("utf-8")
    charset.header_encoding = QP
    charset.body_encoding = QP
    return charset


def _address(text: str, name: str | None = None) -> str:
    display, address = parseaddr(text)
    shown = " ".join((name if name is not None else display).split())  # a line break would start a header
    return formataddr((shown, address), charset="utf-8")


def build_mime(message: OutboundEmail) -> MIMEMultipart:
    """A multipart/alternative MIME message (text first, then HTML) with all our headers."""
    mime = MIMEMultipart("alternative")
    domain = parseaddr(message.sender)[1].rsplit("@", 1)[-1] or "localhost"
    mime["Message-ID"] = f"<{message.delivery_id}@{domain}>"
    if message.sent_at is not None:
        mime["Date"] = format_datetime(message.sent_at, usegmt=True)
    mime["From"] = _address(message.sender)
    mime["To"] = _address(message.to, message.to_name)
    if message.reply_to:
        mime["Reply-To"] = _address(message.reply_to)
    mime["Subject"] = (
        message.subject if message.subject.isascii() else Header(message.subject, "utf-8").encode()
    )
    for name, value in message.headers.items():
        mime[name] = value
    # MIMEText takes a Charset at run time (quoted-printable bodies); typeshed only says str
    mime.attach(MIMEText(message.text, "plain", _utf8()))  # type: ignore[arg-type]
    mime.attach(MIMEText(message.html, "html", _utf8()))  # type: ignore[arg-type]
    return mime


def write_atomically(path: Path, data: bytes) -> None:
    """Write a whole file or nothing: a temporary file renamed into place."""
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
        mime = build_mime(message)
        write_atomically(self.directory / f"{message.delivery_id}.eml", mime.as_bytes(policy=WIRE))
        return str(mime["Message-ID"]).strip("<>")


class OutboxWebhook:
    """Writes `notify/<delivery id>.json` instead of calling the webhook."""

    name = "outbox"

    def __init__(self, directory: Path) -> None:
        self.directory = directory / "notify"

    def send(self, message: OutboundWebhook) -> str:
        body = {"webhook": message.name, "url": message.url, "payload": message.payload}
        write_atomically(self.directory / f"{message.delivery_id}.json", json.dumps(body, indent=2).encode())
        return message.delivery_id
