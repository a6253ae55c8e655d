"""`./dev test` provisions what the suite needs when it can, and otherwise says in one line what it skips."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "tests" / "provision.sh"
REPORT = 'echo "url=${ENGAGEMENT_TEST_POSTGRES_URL:-}"'


def _shims(folder: Path, uid: int, apt_status: int | None) -> Path:
    """A PATH of the few tools the script uses, a fake `id -u`, and an `apt-get` that logs and fails."""
    folder.mkdir()
    for tool in ("bash", "ls", "sort", "tail", "grep"):
        found = shutil.which(tool)
        assert found is not None, tool
        (folder / tool).symlink_to(found)
    (folder / "id").write_text(f"#!/bin/sh\necho {uid}\n")
    if apt_status is not None:
        (folder / "apt-get").write_text(f'#!/bin/sh\necho "$*" >> "{folder}/apt.log"\nexit {apt_status}\n')
    for shim in folder.iterdir():
        if not shim.is_symlink():
            shim.chmod(0o755)
    return folder


def _provision(path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(path / "bash"), "-c", f'set -euo pipefail; . "{SCRIPT}"; provision_tests; {REPORT}'],
        env={"PATH": str(path), "HOME": str(path), **env},
        capture_output=True,
        text=True,
        check=False,
    )


def test_without_root_it_skips_the_browser_and_postgresql_tests_in_one_line(tmp_path: Path) -> None:
    path = _shims(tmp_path / "bin", 1000, apt_status=0)
    done = _provision(path, ENGAGEMENT_TEST_CHROMIUM=str(tmp_path / "no-chromium"))

    assert done.returncode == 0 and done.stdout == "url=\n"
    [line] = done.stderr.splitlines()
    assert line.startswith("tests: skipping the browser tests") and "PostgreSQL variants" in line
    assert line.count("not root") == 2
    assert not (path / "apt.log").exists()  # no install was tried


def test_as_root_without_a_package_source_it_tries_apt_then_skips_in_one_line(tmp_path: Path) -> None:
    path = _shims(tmp_path / "bin", 0, apt_status=100)
    done = _provision(path, ENGAGEMENT_TEST_CHROMIUM=str(tmp_path / "no-chromium"))

    assert done.returncode == 0 and done.stdout == "url=\n"
    [line] = done.stderr.splitlines()
    assert line.count("apt-get could not install it") == 2, line
    assert (path / "apt.log").read_text().splitlines() == [
        "update -qq",
        "update -qq",
    ]  # update failed: no install


def test_as_root_with_apt_it_installs_chromium_and_postgresql(tmp_path: Path) -> None:
    path = _shims(tmp_path / "bin", 0, apt_status=0)
    done = _provision(path, ENGAGEMENT_TEST_CHROMIUM=str(tmp_path / "no-chromium"))

    assert done.returncode == 0
    log = (path / "apt.log").read_text().splitlines()
    assert log == ["update -qq", "install -y -qq chromium", "install -y -qq postgresql"]
    [line] = done.stderr.splitlines()
    assert "installed elsewhere" in line  # the fake apt put no browser at the path asked for


def test_a_postgresql_url_already_set_is_used_as_it_is(tmp_path: Path) -> None:
    path = _shims(tmp_path / "bin", 0, apt_status=100)
    chromium = tmp_path / "chromium"
    chromium.write_text("#!/bin/sh\n")
    chromium.chmod(0o755)
    done = _provision(
        path, ENGAGEMENT_TEST_CHROMIUM=str(chromium), ENGAGEMENT_TEST_POSTGRES_URL="postgresql://u:p@h/db"
    )

    assert done.returncode == 0 and done.stdout == "url=postgresql://u:p@h/db\n"
    assert done.stderr == f"tests: on SQLite and PostgreSQL, browser tests with {chromium}\n"
    assert not (path / "apt.log").exists()


def test_the_browser_tests_skip_when_chromium_cannot_be_had(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-rs",
            "tests/test_report_dashboard.py",
            "-k",
            "chromium_opens_the_report_file_offline",
        ],
        cwd=REPO,
        env={**os.environ, "ENGAGEMENT_TEST_CHROMIUM": str(tmp_path / "no-chromium")},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SKIPPED [1]" in done.stdout and "no-chromium is missing" in done.stdout


def test_the_dev_script_provisions_before_the_checks_and_ci_just_calls_it() -> None:
    dev = (REPO / "dev").read_text()
    assert dev.index("provision_tests") < dev.index('"$venv/bin/ruff" check')
    ci = [
        line for line in (REPO / ".ci" / "run").read_text().splitlines() if line and not line.startswith("#")
    ]
    assert ci[-1] == 'exec ./dev test "$@"' and not any("apt-get" in line for line in ci)
