"""`engagement …` as child processes for the crash, outage and multi-worker tests."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Engagement:
    """`engagement --config CFG ARGS…` as a child process, logging to a file."""

    def __init__(self, config_path: Path, log: Path, *args: str) -> None:
        script = Path(sys.executable).with_name("engagement")
        command = [str(script)] if script.exists() else [sys.executable, "-m", "engagement.cli"]
        self.log = log
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                [*command, "--config", str(config_path), *args],
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=config_path.parent,
            )

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, needle: str, within: float = 60.0) -> None:
        """Wait until the log shows `needle`; fail with the log if the process exits or time runs out."""
        deadline = time.monotonic() + within
        while needle.encode() not in self.log.read_bytes():
            assert self.process.poll() is None, f"exited early ({self.process.returncode}):\n{self.text()}"
            assert time.monotonic() < deadline, f"no {needle!r} within {within}s:\n{self.text()}"
            time.sleep(0.01)

    def wait_started(self, within: float = 60.0) -> None:
        self.wait_for("worker started", within)

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self, within: float = 60.0) -> int:
        """SIGTERM; the exit code."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=within)

    def ensure_dead(self) -> None:
        if self.process.poll() is None:
            self.kill()
