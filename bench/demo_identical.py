"""Check that two `engagement demo` runs told the same story: same summary, same rows, same emails.

    ./dev demo --dir /tmp/demo-a > /tmp/demo-a.out    # before a change
    ./dev demo --dir /tmp/demo-b > /tmp/demo-b.out    # after it
    .venv/bin/python bench/demo_identical.py /tmp/demo-a /tmp/demo-b

Compares the printed summary (from DIR.out next to each folder, when there: every line but the
timing and the folder's own path), a digest of every row of the tables the demo writes (the journey
table is left out: it records the folder's path), and the outbox's `.eml` and webhook files (the
MIME boundary, random in every message, and signed links' signatures, made with the folder's random
secrets, are masked). Exit status 1 on any difference.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
import sys
from pathlib import Path

TABLES = (
    "account",
    "contact",
    "event",
    "milestone",
    "account_milestone",
    "enrollment",
    "delivery",
    "response",
    "survey_answer",
    "nudge",
    "suppression",
    "contact_score",
    "account_score",
    "score_snapshot",
    "score_credit",
)
BOUNDARY = re.compile(rb"={15}\d+==")
# a signed link's signature (unsubscribe, survey: 22 URL-safe base64 characters after a dot) depends on the
# folder's random secrets; quoted-printable may break the line inside it: masked like the boundary
SIGNATURE = re.compile(rb"\.(?:(?:=\r\n)?[A-Za-z0-9_-]){22}(?![A-Za-z0-9_-])")


def digest(folder: Path) -> dict[str, str]:
    """Row count and hash of every table, the outbox's files, and the summary lines."""
    found: dict[str, str] = {}
    with sqlite3.connect(folder / "engagement.db") as conn:
        for table in TABLES:
            rows = sorted(repr(row) for row in conn.execute(f"SELECT * FROM {table}"))
            found[f"table {table}"] = f"{len(rows)} rows {_sha(chr(10).join(rows).encode())}"
    outbox = folder / "outbox"
    for pattern in ("*.eml", "notify/*.json"):
        files = sorted(outbox.glob(pattern))
        contents = b"".join(f.name.encode() + _masked(f.read_bytes()) for f in files)
        found[f"outbox {pattern}"] = f"{len(files)} files {_sha(contents)}"
    printed = folder.with_name(folder.name + ".out")
    if printed.exists():
        text = printed.read_text().replace(str(folder), "DIR")
        lines = [
            line.rstrip() for line in text.splitlines() if not line.startswith(("Done in", "simulating"))
        ]
        found["summary"] = "\n".join(line for line in lines if line)
    return found


def _masked(message: bytes) -> bytes:
    """A message without what differs between two runs of the same code: boundary, link signatures."""
    return SIGNATURE.sub(b".SIGNATURE", BOUNDARY.sub(b"BOUNDARY", message))


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def main(a: Path, b: Path) -> int:
    """Print each part's digest and whether the two runs agree on it."""
    left, right = digest(a), digest(b)
    differ = 0
    for key in sorted(set(left) | set(right)):
        same = left.get(key) == right.get(key)
        differ += not same
        if key == "summary":
            print(
                f"{'same' if same else 'DIFFERENT'}  summary ({len((left.get(key) or '').splitlines())} lines)"
            )
            if not same:
                print(left.get(key), "\n---\n", right.get(key), sep="")
        else:
            print(
                f"{'same' if same else 'DIFFERENT'}  {key}: {left.get(key)}"
                + ("" if same else f" / {right.get(key)}")
            )
    print("identical" if not differ else f"{differ} parts differ")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
