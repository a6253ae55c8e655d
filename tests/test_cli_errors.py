"""A user's mistake ends every command in one line naming the problem and exit 1; a bug keeps its traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from engagement import cli

REPO = Path(__file__).resolve().parents[1]
JOURNEY = "id: x\nname: X\nstatus: draft\ntrigger: {event: a}\nsteps:\n  - wait: 99999999999d\n"


def _main(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[str, str]:
    """Run the installed entry point, `engagement.cli:main`, in process; return its stdout and stderr."""
    monkeypatch.setattr(sys, "argv", ["engagement", *args])
    with pytest.raises(SystemExit) as exited:
        cli.main()
    assert exited.value.code == 1
    captured = capsys.readouterr()
    return captured.out, captured.err


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ENGAGEMENT_CONFIG", raising=False)
    (tmp_path / "ok.toml").write_text('[database]\nurl = "sqlite:///engagement.db"\n')
    (tmp_path / "broken.toml").write_text("[database\nurl = 1\n")
    (tmp_path / "nowhere.toml").write_text(f'[database]\nurl = "sqlite:///{tmp_path}/missing/dir/x.db"\n')
    (tmp_path / "dialect.toml").write_text('[database]\nurl = "nosuchdb+driver://host/db"\n')
    (tmp_path / "refused.toml").write_text('[database]\nurl = "postgresql://user:secret@127.0.0.1:1/db"\n')
    (tmp_path / "journeys").mkdir()
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.yaml").write_text(JOURNEY)
    subprocess.run(
        [str(Path(sys.executable).parent / "engagement"), "--config", "ok.toml", "db", "upgrade"],
        check=True,
        capture_output=True,
    )
    return tmp_path


CASES = {
    "a --since too long for any calendar": (
        ("--config", "ok.toml", "report", "--since", "99999999999d"),
        "--since: duration '99999999999d' is too long",
    ),
    "a --since that is no duration": (
        ("--config", "ok.toml", "report", "--since", "abc"),
        "bad duration 'abc'",
    ),
    "a missing config file": (("--config", "none.toml", "report"), "none.toml does not exist"),
    "a config that does not parse": (("--config", "broken.toml", "report"), "broken.toml"),
    "a database that cannot be opened": (
        ("--config", "nowhere.toml", "db", "upgrade"),
        "unable to open database file",
    ),
    "a database URL of an unknown kind": (("--config", "dialect.toml", "report"), "database.url"),
    "a database server that refuses": (("--config", "refused.toml", "db", "upgrade"), "***@127.0.0.1:1"),
    "an unknown journey": (
        ("--config", "ok.toml", "preview", "nope", "welcome", "--contact", "c1"),
        "no journey 'nope'",
    ),
    "a missing import file": (
        ("--config", "ok.toml", "import", "events", "none.csv"),
        "none.csv: no such file",
    ),
    "an output file in a missing folder": (
        ("--config", "ok.toml", "report", "--format", "csv", "--out", "missing/r.csv"),
        "missing/r.csv: No such file or directory",
    ),
    "a journey wait too long for any calendar": (
        ("--config", "ok.toml", "validate", "bad"),
        "steps[0].wait: duration '99999999999d' is too long",
    ),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_a_user_error_is_one_line_naming_the_problem_and_exit_1(
    case: str, folder: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    args, named = CASES[case]
    stdout, stderr = _main(monkeypatch, capsys, *args)

    assert "Traceback" not in stderr and named in stdout + stderr
    assert "secret" not in stderr
    # validate prints each problem on stdout and their count here; every other error is one line here
    assert len(stderr.strip().splitlines()) == 1, stderr


def test_a_bug_still_shows_its_traceback(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> None:
        raise RuntimeError("a bug in the engine")

    monkeypatch.setattr(cli, "settings", broken)
    monkeypatch.setattr(sys, "argv", ["engagement", "--config", "ok.toml", "report"])
    with pytest.raises(RuntimeError, match="a bug in the engine"):
        cli.main()


def test_the_installed_command_reports_a_user_error_in_one_line(folder: Path) -> None:
    done = subprocess.run(
        [str(Path(sys.executable).parent / "engagement"), "--config", "nowhere.toml", "db", "upgrade"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1 and done.stderr.startswith("error: database sqlite:///"), done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
