"""One outbound email as an RFC 5322 MIME message: what the outbox writes and SMTP transmits."""

from __future__ import annotations

import functools
import random
import re
import sys
from email.charset import QP, Charset
from email.header import Header
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import SMTP, Compat32
from email.utils import format_datetime, formataddr, parseaddr

from engagement.delivery.message import OutboundEmail

# Folding at 78 turns a long unbreakable value (an unsubscribe URL) into an RFC 2047 encoded
# word, which mail clients do not decode in List-Unsubscribe; fold only at RFC 5322's hard limit.
WIRE = SMTP.clone(max_line_length=998)


class _Unfolded(Compat32):
    """Writes each header as `name: value` unchanged: for a message `_unfolded` admits, WIRE's bytes.

    WIRE re-parses every MIME header through email's header registry each time the generator reads one,
    and compat32 runs each through `Header.encode`: most of a message's cost, for nothing to fold.
    """

    def fold_binary(self, name: str, value: str) -> bytes:
        return f"{name}: {value}{self.linesep}".encode("ascii")


PLAIN = _Unfolded(linesep="\r\n", max_line_length=998, mangle_from_=False)
NEWLINE = re.compile(r"\r\n|\r|\n")  # the line ends email's generator rewrites (its NLCRE)
BOUNDARY_DIGITS = f"%0{len(repr(sys.maxsize - 1))}d"  # as email's generator draws a boundary
PART_HEADERS = (
    'Content-Type: text/{subtype}; charset="utf-8"\r\nMIME-Version: 1.0\r\n'
    "Content-Transfer-Encoding: quoted-printable\r\n"
)


def build_mime(message: OutboundEmail) -> MIMEMultipart:
    """A multipart/alternative MIME message (text first, then HTML) with all our headers."""
    mime = MIMEMultipart("alternative")
    for name, value in _headers(message):
        mime[name] = value
    # MIMEText takes a Charset at run time (quoted-printable bodies); typeshed only says str
    mime.attach(MIMEText(message.text, "plain", _utf8()))  # type: ignore[arg-type]
    mime.attach(MIMEText(message.html, "html", _utf8()))  # type: ignore[arg-type]
    return mime


def to_bytes(message: OutboundEmail) -> bytes:
    """The message as it goes on the wire: CRLF line ends, headers folded only at 998."""
    written = _written(message)
    if written is not None:
        return written
    mime = build_mime(message)
    return mime.as_bytes(policy=PLAIN if _unfolded(mime) else WIRE)


def _headers(message: OutboundEmail) -> list[tuple[str, str]]:
    """Our headers, in order, as `build_mime` sets them after Content-Type and MIME-Version."""
    found = [("Message-ID", f"<{message_id(message)}>")]
    if message.sent_at is not None:
        found.append(("Date", format_datetime(message.sent_at, usegmt=True)))
    found += [("From", _address(message.sender)), ("To", _address(message.to, message.to_name))]
    if message.reply_to:
        found.append(("Reply-To", _address(message.reply_to)))
    subject = message.subject if message.subject.isascii() else Header(message.subject, "utf-8").encode()
    found.append(("Subject", subject))
    return found + list(message.headers.items())


def _written(message: OutboundEmail) -> bytes | None:
    """`to_bytes` for the usual message, written directly: the bytes email's generator writes for
    `build_mime` under PLAIN (tests/test_outbox.py holds them to it), at a fraction of the cost; None for
    anything else (a header to fold, an empty part, a boundary that would need a suffix)."""
    headers = _headers(message)
    if not all(_one_line(name, value) for name, value in headers):
        return None
    parts = []
    for subtype, text in (("plain", message.text), ("html", message.html)):
        if not text:
            return None  # email's own path writes an empty part differently
        # what MIMEText stores for a quoted-printable utf-8 body, with the generator's CRLF line ends
        body = "\r\n".join(NEWLINE.split(quoted_printable(text)))
        parts.append(f"{PART_HEADERS.format(subtype=subtype)}\r\n{body}")
    boundary = "=" * 15 + BOUNDARY_DIGITS % random.randrange(sys.maxsize) + "=="
    if any("--" + boundary in part for part in parts):
        return None  # email would add a counter to the boundary
    lines = [f'Content-Type: multipart/alternative; boundary="{boundary}"', "MIME-Version: 1.0"]
    lines += [f"{name}: {value}" for name, value in headers]
    head = "\r\n".join(lines)
    middle = f"\r\n--{boundary}\r\n".join(parts)
    return f"{head}\r\n\r\n--{boundary}\r\n{middle}\r\n--{boundary}--\r\n".encode("ascii")


# the octets quoted-printable escapes in a body, but "=" (escaped first, with str.replace): all but
# email.quoprimime's body map of safe ones, CR and LF
_UNSAFE = re.compile(r"[^ -<>-~\t\r\n=]")


def _escape(found: re.Match[str]) -> str:
    return f"={ord(found[0]):02X}"


def quoted_printable(text: str) -> str:
    """`text` as UTF-8 quoted-printable: `Charset("utf-8")`'s QP `body_encode`, character for character
    (tests/test_outbox.py holds it to it), with the octets escaped in one regular-expression pass where
    email.quoprimime looks each one up in a table, most of a message's cost. Lines break as there."""
    if not text:
        return text
    body = _UNSAFE.sub(_escape, text.encode("utf-8").decode("latin1").replace("=", "=3D"))
    lines: list[str] = []
    for line in body.splitlines():
        # pieces of at most 75 characters and a soft break, never splitting an escape
        start, last = 0, len(line) - 77
        while start <= last:
            stop = start + 75
            if line[stop - 2] == "=":
                lines.append(line[start : stop - 1])
                start = stop - 2
            elif line[stop - 1] == "=":
                lines.append(line[start:stop])
                start = stop - 1
            else:
                lines.append(line[start:stop] + "=")
                start = stop
        if line and line[-1] in " \t":  # whitespace at a line's end is escaped, room permitting
            room = start - last
            end = f"={ord(line[-1]):02X}"
            if room == 2:
                end = line[-1] + "=\n"
            elif room < 2:
                end = "=\n" + end
            lines.append(line[start:-1] + end)
        else:
            lines.append(line[start:])
    if body[-1] in "\r\n":
        lines.append("")
    return "\n".join(lines)


def _one_line(name: str, value: str) -> bool:
    """Whether a header is one ASCII line within the 998 limit (nothing for a policy to fold)."""
    return value.isascii() and "\n" not in value and "\r" not in value and len(name) + 2 + len(value) <= 998


def message_id(message: OutboundEmail) -> str:
    """Our Message-ID without angle brackets: `<delivery id>@<sender domain>`."""
    return f"{message.delivery_id}@{sender_domain(message.sender)}"


@functools.lru_cache(maxsize=64)
def sender_domain(sender: str) -> str:
    """The domain of a `Name <address>` sender, or `localhost` when it has none."""
    return parseaddr(sender)[1].rsplit("@", 1)[-1] or "localhost"


def _unfolded(mime: Message) -> bool:
    """Whether every header is one ASCII line within the 998 limit (nothing for a policy to fold)."""
    return all(_one_line(name, value) for part in mime.walk() for name, value in part.items())


def _utf8() -> Charset:
    charset = Charset("utf-8")
    charset.header_encoding = QP
    charset.body_encoding = QP
    return charset


@functools.lru_cache(maxsize=1024)  # the sender and reply-to are the same in every message
def _address(text: str, name: str | None = None) -> str:
    display, address = parseaddr(text)
    shown = " ".join((name if name is not None else display).split())  # a line break would start a header
    return formataddr((shown, address), charset="utf-8")
