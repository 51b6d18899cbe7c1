"""A real ``redis-server`` on a free loopback port in a temp dir, for the engine tests.

The tests are skipped, with the reason, only when the ``redis-server`` binary cannot be
found; ``.ci/run`` installs it, so CI always runs them.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from chat.runtime import free_ports
from tests.conftest import missing


class RedisServer:
    """One redis-server process with append-only persistence; stop and start it again."""

    def __init__(self, binary: str, directory: Path) -> None:
        self.binary = binary
        self.dir = directory
        self.port = free_ports(1)[0]
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, tries: int = 1) -> None:
        """Start redis-server on ``port``.  With ``tries`` > 1 (the first start only: a
        restart keeps its port) a port another process took between being picked and
        being bound (redis-server exits) is given up for a new one."""
        for attempt in range(tries):
            if attempt:
                self.port = free_ports(1)[0]
            proc = self.proc = subprocess.Popen(
                [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir",
                 str(self.dir), "--save", "", "--appendonly", "yes", "--appendfsync",
                 "always"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and proc.poll() is None:
                try:
                    with socket.create_connection(("127.0.0.1", self.port), 0.2) as sock:
                        sock.sendall(b"PING\r\n")
                        if sock.recv(16).startswith(b"+PONG"):
                            return
                except OSError:
                    time.sleep(0.02)
            proc.kill()
            proc.wait()
            self.proc = None
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(5)
            self.proc = None


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    binary = shutil.which("redis-server") or (
        "/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None)
    if binary is None:
        missing("redis-server is not installed (Debian package redis-server)")
    server = RedisServer(binary, tmp_path)
    server.start(tries=5)
    yield server
    server.stop()


