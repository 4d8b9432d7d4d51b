"""Child processes that never outlive their owner.

Every component Phoenix starts locally (collectors, Prometheus, LoadSim, the
test control plane) runs in its own process group so that stopping it also
stops anything it spawned, and each start waits for a health check with a
deadline and reports the child's last output when it fails.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

Started = TypeVar("Started")


class StartupError(Exception):
    """A component did not become healthy; the message carries its last output."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def on_free_ports(start: Callable[[], Started], attempts: int = 3) -> Started:
    """Call `start`, which picks its free ports itself, again while a port it picked is taken.

    `free_port` releases the port before the child binds it, so another
    process can take it in between; picking anew is the only remedy.
    """
    for _ in range(attempts - 1):
        try:
            return start()
        except StartupError as error:
            if "address already in use" not in str(error).lower():
                raise
    return start()


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


class ManagedProcess:
    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        on_start: Callable[[ManagedProcess], None] | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        # told the moment the child exists, before any wait on it: whoever must reap it later learns its pid
        # even if this process is killed while the child starts
        self.on_start = on_start
        self._popen: subprocess.Popen[bytes] | None = None
        self._log_start = 0  # the log is appended to; tail() shows only this start's output

    @property
    def pid(self) -> int | None:
        return self._popen.pid if self._popen else None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self._log_start = log.tell()
            try:
                self._popen = subprocess.Popen(
                    self.argv,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    env=self.env,
                    cwd=self.cwd,
                    start_new_session=True,
                )
            except OSError as error:
                raise StartupError(f"{self.name}: cannot start {self.argv[0]}: {error}") from None
        if self.on_start is not None:
            self.on_start(self)

    @property
    def returncode(self) -> int | None:
        return self._popen.poll() if self._popen else None

    def running(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    def output(self) -> str:
        """What the child wrote since this start."""
        try:
            with self.log_path.open("rb") as log:
                log.seek(self._log_start)
                return log.read().decode("utf-8", errors="replace")
        except OSError:
            return ""

    def tail(self, lines: int = 15) -> str:
        return "\n".join(self.output().strip().splitlines()[-lines:])

    def wait_healthy(self, check: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running():
                code = self._popen.returncode if self._popen else None
                raise StartupError(f"{self.name} exited (code {code}) before {what}; its output:\n{self.tail()}")
            if check():
                return
            time.sleep(0.1)
        self.stop()
        raise StartupError(f"{self.name}: no {what} within {timeout:.0f}s; its output:\n{self.tail()}")

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM the whole group, then SIGKILL what is left after `grace` seconds."""
        if self._popen is None:
            return
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._popen.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._popen.wait(timeout=wait)
                break
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._popen.pid, signal.SIGKILL)
