"""md5 for holdout buckets and delivery ids (not for security): CPython's own where it has one.

`hashlib.md5` is OpenSSL's, and setting it up costs about 0.35 µs a call more than CPython's built-in md5
(0.57 against 0.24 µs a digest here). SQLite calls Python once a row for buckets and delivery ids, so a
first tick that queues 1.5M messages makes as many calls (bench/RESULTS.md).
"""

from __future__ import annotations

import hashlib
import importlib
from collections.abc import Callable
from typing import Any

new: Callable[[bytes], Any]
try:
    new = importlib.import_module("_md5").md5
except ImportError:  # a Python built without its own md5: OpenSSL's, as hashlib gives it
    new = hashlib.md5


def hexdigest(data: bytes) -> str:
    """md5(data) in 32 lower-case hex digits."""
    return str(new(data).hexdigest())
