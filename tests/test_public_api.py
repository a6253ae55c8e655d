"""The package's pinned public surface and its one error tree."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import subprocess
import sys
from types import ModuleType

import engagement
from engagement import errors

PINNED = {
    "Engine",
    "Settings",
    "EngagementError",
    "Clock",
    "SystemClock",
    "ManualClock",
    "ScaledClock",
    "FileClock",
    "send_digest",
    "snapshot",
}


def every_module() -> list[ModuleType]:
    found = [engagement]
    for info in pkgutil.walk_packages(engagement.__path__, "engagement."):
        found.append(importlib.import_module(info.name))
    return found


def test_every_exception_the_package_defines_derives_from_engagement_error() -> None:
    defined = [
        f"{module.__name__}.{name}"
        for module in every_module()
        for name, value in vars(module).items()
        if inspect.isclass(value) and issubclass(value, BaseException) and value.__module__ == module.__name__
        if not issubclass(value, errors.EngagementError)
    ]
    assert defined == []


def test_the_walk_reaches_the_modules_that_define_exceptions() -> None:
    names = {module.__name__ for module in every_module()}
    assert {"engagement.errors", "engagement.delivery.message", "engagement.journeys.files"} <= names


def test_errors_that_callers_catch_as_value_error_still_are_value_errors() -> None:
    from engagement.delivery import sendgrid_events
    from engagement.ingest import segment

    for kind in (errors.ConditionError, segment.InvalidCall, sendgrid_events.BadBatch):
        assert issubclass(kind, errors.EngagementError) and issubclass(kind, ValueError)


def test_the_public_api_is_exactly_the_pinned_names_and_each_imports() -> None:
    assert set(engagement.__all__) == PINNED and len(engagement.__all__) == len(PINNED)
    for name in engagement.__all__:
        assert getattr(engagement, name) is not None
    namespace: dict[str, object] = {}
    exec(f"from engagement import {', '.join(engagement.__all__)}", namespace)
    assert namespace.keys() >= PINNED
    assert engagement.EngagementError is errors.EngagementError


def test_importing_the_package_does_not_load_the_engine() -> None:
    probe = "import sys, engagement; print(sorted(m for m in sys.modules if m.startswith('engagement')))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "['engagement']"
