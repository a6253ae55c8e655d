"""`mime.to_bytes` against writing every message with the wire policy, on a demo's own emails.

    .venv/bin/python bench/mime_serialize.py engagement-demo/outbox [COUNT]

Reads COUNT (default 400) `.eml` files back into messages, checks both ways write the same bytes (the
random MIME boundary masked), then times them in alternation, five rounds, in CPU time.
"""

from __future__ import annotations

import email
import re
import sys
import time
from email import policy
from email.message import EmailMessage
from email.utils import parseaddr
from pathlib import Path

from engagement.delivery import mime
from engagement.delivery.message import OutboundEmail

BOUNDARY = re.compile(rb"={15}\d+==")
HEADERS = ("List-Unsubscribe", "List-Unsubscribe-Post", "X-Engagement-Delivery")


def read(path: Path) -> OutboundEmail:
    """The message an outbox file was written from."""
    parsed = email.message_from_bytes(path.read_bytes(), policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    text, html = (str(part.get_content()) for part in parsed.iter_parts() if isinstance(part, EmailMessage))
    name, to = parseaddr(str(parsed["To"]))
    return OutboundEmail(
        delivery_id=path.stem,
        to=to,
        to_name=name,
        sender=str(parsed["From"]),
        reply_to=str(parsed["Reply-To"]),
        subject=str(parsed["Subject"]),
        html=html,
        text=text,
        sent_at=parsed["Date"].datetime,
        headers={name: str(parsed[name]) for name in HEADERS},
    )


def wire(message: OutboundEmail) -> bytes:
    return mime.build_mime(message).as_bytes(policy=mime.WIRE)


def main(folder: Path, count: int) -> None:
    messages = [read(path) for path in sorted(folder.glob("*.eml"))[:count]]
    for message in messages:
        assert BOUNDARY.sub(b"", wire(message)) == BOUNDARY.sub(b"", mime.to_bytes(message))
    spent = {"wire policy": 0.0, "to_bytes": 0.0}
    for _ in range(5):
        for label, write in (("wire policy", wire), ("to_bytes", mime.to_bytes)):
            started = time.process_time()
            for message in messages:
                write(message)
            spent[label] += time.process_time() - started
    each = {label: seconds / (5 * len(messages)) * 1000 for label, seconds in spent.items()}
    print(
        f"{len(messages)} messages, the same bytes both ways; CPU a message: wire policy "
        f"{each['wire policy']:.3f} ms, to_bytes {each['to_bytes']:.3f} ms "
        f"(x{spent['wire policy'] / spent['to_bytes']:.2f})"
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 400)
