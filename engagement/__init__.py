"""Tech-touch customer success: journeys as code, set-based ticks, templated email, in-app nudges, reports.

The names in `__all__` are the public API; everything else is internal. They load on first use, so
`import engagement` (and `engagement --help`) does not pay for the engine, reports and scoring.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engagement.clock import Clock, FileClock, ManualClock, ScaledClock, SystemClock
    from engagement.config import Settings
    from engagement.engine import Engine
    from engagement.errors import EngagementError
    from engagement.reports.digest import send_digest
    from engagement.scores.scoring import snapshot

__all__ = [
    "Clock",
    "EngagementError",
    "Engine",
    "FileClock",
    "ManualClock",
    "ScaledClock",
    "Settings",
    "SystemClock",
    "send_digest",
    "snapshot",
]

_HOMES = {
    "Clock": "engagement.clock",
    "EngagementError": "engagement.errors",
    "Engine": "engagement.engine",
    "FileClock": "engagement.clock",
    "ManualClock": "engagement.clock",
    "ScaledClock": "engagement.clock",
    "Settings": "engagement.config",
    "SystemClock": "engagement.clock",
    "send_digest": "engagement.reports.digest",
    "snapshot": "engagement.scores.scoring",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'engagement' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
