"""The coordinator's handles on other processes: the server under test, workers, the link.

:class:`ServerTarget` either launches ``python -m chat serve`` on free loopback ports (so its
CPU and memory are its own, read with psutil) or attaches to a running server given by
``--server``; either way ``/api/stats`` is read before and after a run for the deltas.
:class:`WorkerHandle` runs one :mod:`chat.compare.worker` process and :class:`LinkHandle`
the link emulator's relays (:mod:`chat.link.service`, one relay per lane and transport);
both turn their JSON report lines into awaitable messages (:class:`JsonProcess`).
"""

from __future__ import annotations

import asyncio
import http.client
import os
import signal
import socket
import sys
import tempfile
import time
from collections import deque
from contextlib import suppress
from dataclasses import dataclass
from typing import IO, Any

import orjson
import psutil

from ..config import Config
from .options import WorkerSpec

READY_TIMEOUT = 20.0
STATS_TIMEOUT = 5.0
LINE_LIMIT = 1 << 24  # a worker's result carries an encoded histogram


class LabError(Exception):
    """The lab cannot go on (server would not start, a worker died...): a one-line reason."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The server as seen at one instant: counters, CPU seconds, resident memory."""

    wall: float
    stats: dict[str, Any] | None
    cpu_s: float | None
    rss: int | None


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """``count`` distinct TCP ports that were free a moment ago on ``host``."""
    socks = [socket.socket() for _ in range(count)]
    try:
        for s in socks:
            s.bind((host, 0))
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


def free_udp_port(host: str = "127.0.0.1") -> int:
    """A UDP port that was free a moment ago on ``host``."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def settings_to_args(settings: dict[str, Any]) -> list[str]:
    """``chat serve`` options for Config ``settings`` (None values are left out)."""
    args: list[str] = []
    for name, value in settings.items():
        if isinstance(value, bool):
            args.append(f"--{'' if value else 'no-'}{name.replace('_', '-')}")
        elif value is not None:
            args += [f"--{name.replace('_', '-')}", str(value)]
    return args


def listening_pid(port: int) -> int | None:
    """The pid of the local process listening on TCP ``port``, if the OS tells us."""
    with suppress(psutil.Error, OSError):
        for conn in psutil.net_connections(kind="tcp"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
                return int(conn.pid) if conn.pid else None
    return None


def http_call(host: str, port: int, method: str, path: str, body: Any = None,
              token: str | None = None) -> tuple[int, Any]:
    """One HTTP request on a fresh connection (blocking; run it in a thread).

    Returns the status and the decoded JSON body ({} when there is none).
    """
    headers = {"Connection": "close", "Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    conn = http.client.HTTPConnection(host, port, timeout=STATS_TIMEOUT)
    try:
        conn.request(method, path, body=None if body is None else orjson.dumps(body),
                     headers=headers)
        response = conn.getresponse()
        data = response.read()
        return response.status, orjson.loads(data) if data else {}
    finally:
        conn.close()


def fetch_json(host: str, port: int, path: str) -> Any:
    """GET ``path`` on the server's HTTP port (blocking; run it in a thread)."""
    status, data = http_call(host, port, "GET", path)
    if status != 200:
        raise LabError(f"GET {path}: HTTP {status}")
    return data


class ServerTarget:
    """The server under test (launched by the lab, or an existing one)."""

    def __init__(self, host: str, irc_port: int, http_port: int, *, pid: int | None,
                 config: Config | None, proc: asyncio.subprocess.Process | None = None,
                 log: IO[bytes] | None = None, udp_port: int = 0) -> None:
        self.host = host
        self.irc_port = irc_port
        self.http_port = http_port
        self.udp_port = udp_port  # 0: not known yet (read from /api/stats), or no udp lane
        self.pid = pid
        self.config = config  # known only for a server the lab launched
        self.proc = proc
        self.log = log
        self._ps = psutil.Process(pid) if pid else None

    @property
    def own(self) -> bool:
        return self.proc is not None

    @property
    def password(self) -> str | None:
        """The password the lab's clients sign in with (that of a server it launched)."""
        return self.config.password if self.config is not None else None

    @classmethod
    async def launch(cls, settings: dict[str, Any], host: str = "127.0.0.1",
                     attempts: int = 3) -> ServerTarget:
        """Start ``chat serve`` with ``settings`` on free ports; retry if a port was taken."""
        error = "no attempt"
        for _ in range(attempts):
            irc_port, http_port = free_ports(2, host)
            udp_port = free_udp_port(host)
            config = Config(**{**settings, "host": host, "irc_port": irc_port,
                               "http_port": http_port, "udp_port": udp_port})
            log = tempfile.TemporaryFile()
            args = ["--host", host, "--irc-port", str(irc_port), "--http-port", str(http_port),
                    "--udp-port", str(udp_port), *settings_to_args(settings)]
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "chat", "serve", *args,
                stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log)
            target = cls(host, irc_port, http_port, pid=proc.pid, config=config, proc=proc,
                         log=log, udp_port=udp_port if config.udp else 0)
            error = await target._wait_ready()
            if not error:
                return target
            await target.close()
        raise LabError(f"the server would not start: {error}")

    @classmethod
    def attach(cls, host: str, irc_port: int, http_port: int) -> ServerTarget:
        """Use a running server; its pid (for CPU and memory) is found if it is local."""
        pid = listening_pid(irc_port) if host in ("127.0.0.1", "localhost", "::1") else None
        return cls(host, irc_port, http_port, pid=pid, config=None)

    async def _wait_ready(self) -> str:
        """'' once both ports accept connections; otherwise why not."""
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.returncode is not None:
                return self.log_tail() or f"exit status {self.proc.returncode}"
            try:
                for port in (self.irc_port, self.http_port):
                    _reader, writer = await asyncio.open_connection(self.host, port)
                    writer.close()
                    with suppress(OSError):
                        await writer.wait_closed()
                return ""
            except OSError:
                await asyncio.sleep(0.05)
        return f"ports not open after {READY_TIMEOUT:.0f} s"

    def log_tail(self, lines: int = 5) -> str:
        """The last lines the launched server wrote to stderr."""
        if self.log is None:
            return ""
        self.log.seek(0)
        text = self.log.read().decode(errors="replace").strip().splitlines()
        return " | ".join(text[-lines:])

    async def stats(self) -> dict[str, Any] | None:
        """``GET /api/stats`` (None if the server does not answer it)."""
        try:
            data = await asyncio.to_thread(fetch_json, self.host, self.http_port, "/api/stats")
        except (OSError, LabError, orjson.JSONDecodeError, http.client.HTTPException):
            return None
        if not isinstance(data, dict):
            return None
        if not self.udp_port:  # a server the lab did not start says where its udp lane is
            self.udp_port = int((data.get("udp") or {}).get("port") or 0)
        return data

    def cpu_s(self) -> float | None:
        if self._ps is None:
            return None
        with suppress(psutil.Error):
            times = self._ps.cpu_times()
            return float(times.user + times.system)
        return None

    def rss(self) -> int | None:
        if self._ps is None:
            return None
        with suppress(psutil.Error):
            return int(self._ps.memory_info().rss)
        return None

    async def snapshot(self) -> Snapshot:
        stats = await self.stats()
        return Snapshot(time.time(), stats, self.cpu_s(), self.rss())

    async def close(self) -> None:
        """Stop a launched server (SIGTERM, then SIGKILL); an attached one is left alone."""
        proc = self.proc
        if proc is not None and proc.returncode is None:
            with suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            grace = (self.config.shutdown_timeout if self.config else 5.0) + 2.0
            try:
                await asyncio.wait_for(proc.wait(), grace)
            except TimeoutError:
                with suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        if self.log is not None:
            self.log.close()
            self.log = None


class JsonProcess:
    """A child process that takes JSON command lines and writes JSON report lines; its
    reports arrive through :meth:`expect`."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.progress: dict[str, Any] = {"delivered": 0, "sent": 0}
        self.reports: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.stderr: deque[str] = deque(maxlen=20)
        self._tasks = [asyncio.create_task(self._read_reports()),
                       asyncio.create_task(self._read_stderr())]

    @staticmethod
    async def start(module: str, argument: str) -> asyncio.subprocess.Process:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", module, argument,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, limit=LINE_LIMIT, env=env)

    @property
    def pid(self) -> int:
        return self.proc.pid

    async def _read_reports(self) -> None:
        assert self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            try:
                report = orjson.loads(line)
            except orjson.JSONDecodeError:
                self.stderr.append(line.decode(errors="replace").rstrip())
                continue
            if report.get("type") == "progress":
                self.progress = report
            else:
                self.reports.put_nowait(report)
        await self.proc.wait()
        self.reports.put_nowait({"type": "exit", "status": self.proc.returncode})

    async def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        while line := await self.proc.stderr.readline():
            self.stderr.append(line.decode(errors="replace").rstrip())

    def command(self, name: str, **fields: Any) -> None:
        """Send one command line (ignored if the worker is already gone)."""
        stdin = self.proc.stdin
        if stdin is not None and not stdin.is_closing():
            stdin.write(orjson.dumps({"cmd": name, **fields}) + b"\n")

    async def expect(self, kind: str, within: float) -> dict[str, Any]:
        """The next report of type ``kind``; LabError if the worker dies or stays silent."""
        deadline = time.monotonic() + within
        while True:
            if self.proc.returncode is not None and self.reports.empty():
                raise LabError(f"{self.describe()} exited (status {self.proc.returncode})"
                               f"{self._why()}")
            left = deadline - time.monotonic()
            try:
                report = await asyncio.wait_for(self.reports.get(), max(left, 0.001))
            except TimeoutError:
                raise LabError(f"{self.describe()}: no '{kind}' after {within:.0f} s"
                               f"{self._why()}") from None
            if report["type"] == kind:
                return report
            if report["type"] == "exit":
                raise LabError(f"{self.describe()} exited (status {report['status']})"
                               f"{self._why()}")

    def describe(self) -> str:
        return "a lab process"

    def _why(self) -> str:
        lines = [ln for ln in self.stderr if ln.strip()]
        return ": " + lines[-1] if lines else ""

    async def close(self, grace: float = 10.0) -> None:
        """Ask the worker to close its clients and exit; kill it if it does not."""
        self.command("close")
        try:
            await asyncio.wait_for(self.proc.wait(), grace)
        except TimeoutError:
            with suppress(ProcessLookupError):
                self.proc.kill()
            await self.proc.wait()
        for task in self._tasks:
            with suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(task, 1.0)


class WorkerHandle(JsonProcess):
    """One worker process (:mod:`chat.compare.worker`)."""

    def __init__(self, spec: WorkerSpec, proc: asyncio.subprocess.Process) -> None:
        super().__init__(proc)
        self.spec = spec

    @classmethod
    async def spawn(cls, spec: WorkerSpec) -> WorkerHandle:
        return cls(spec, await cls.start("chat.compare.worker", spec.to_json()))

    def describe(self) -> str:
        return f"{self.spec.role} worker for {self.spec.mode}"


class LinkHandle(JsonProcess):
    """The link emulator process: a relay per lane and transport (``ports[lane][name]``)."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        super().__init__(proc)
        self.ports: dict[str, dict[str, int]] = {}

    @classmethod
    async def spawn(cls, settings: dict[str, Any], lanes: dict[str, dict[str, Any]],
                    host: str = "127.0.0.1") -> LinkHandle:
        """Start the relays of ``lanes`` (lane -> {"irc"|"http"|"udp": [host, port]})."""
        spec = orjson.dumps({"settings": settings, "host": host, "lanes": lanes}).decode()
        handle = cls(await cls.start("chat.link.service", spec))
        try:
            ready = await handle.expect("ready", READY_TIMEOUT)
        except LabError:
            await handle.close()
            raise
        handle.ports = ready["ports"]
        return handle

    async def stats(self) -> dict[str, dict[str, Any]]:
        """What crossed each relay: ``{lane: {name: counters}}``."""
        self.command("stats")
        report = await self.expect("stats", STATS_TIMEOUT)
        lanes: dict[str, dict[str, Any]] = report["lanes"]
        return lanes

    def describe(self) -> str:
        return "the link emulator"
