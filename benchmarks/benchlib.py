"""Shared pieces of the benchmarks: targets, server CPU/RSS from a pid, results, workers.

Everything here serves the load generators, which must stay cheaper than the servers they
measure: the IRC client is a raw :class:`asyncio.Protocol` on uvloop that counts delivered
``PRIVMSG`` lines with ``bytes.count`` (C speed) and parses whole lines only when a block
holds something else (a PING, a numeric, a JOIN) or when the connection is a latency probe.
"""

from __future__ import annotations

import asyncio
import ctypes
import json
import multiprocessing as mp
import os
import resource
import signal
import socket
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any, cast

import psutil

from chat.runtime import new_event_loop as new_loop  # noqa: F401 - re-exported
from chat.runtime import raise_fd_limit  # noqa: F401 - re-exported

TCP_QUICKACK = getattr(socket, "TCP_QUICKACK", 12)
PR_SET_PDEATHSIG = 1
FD_PER_PROCESS = 20_000   # the machine's per-process descriptor limit
CONNS_PER_WORKER = 6_000  # connections one load process holds (well under FD_PER_PROCESS)


# --- targets and the measured server --------------------------------------------------------

def parse_target(text: str) -> tuple[str, int]:
    """``host:port`` -> ``(host, port)``; exits with a usage message when malformed."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit():
        sys.exit(f"target must be host:port, got {text!r}")
    return host.strip("[]"), int(port)


class ServerWatch:
    """CPU seconds and RSS of a server process and its children (nginx has workers)."""

    def __init__(self, pid: int | list[int] | None) -> None:
        pids = [] if not pid else [pid] if isinstance(pid, int) else pid
        self.procs = [psutil.Process(p) for p in pids]
        self.proc = self.procs[0] if self.procs else None

    def _tree(self) -> list[psutil.Process]:
        tree: list[psutil.Process] = []
        for proc in self.procs:
            try:
                tree += [proc, *proc.children(recursive=True)]
            except psutil.NoSuchProcess:
                continue
        return tree

    def cpu(self) -> float:
        """User+system CPU seconds used so far (0.0 without a pid)."""
        return sum(self.cpu_split())

    def cpu_split(self) -> tuple[float, float]:
        """(user, system) CPU seconds used so far: system is the kernel's share, for a
        push server mostly its sends over loopback."""
        user = system = 0.0
        for p in self._tree():
            try:
                t = p.cpu_times()
            except psutil.NoSuchProcess:
                continue
            user += t.user
            system += t.system
        return user, system

    def rss(self) -> int:
        """Resident bytes now (0 without a pid)."""
        total = 0
        for p in self._tree():
            try:
                total += p.memory_info().rss
            except psutil.NoSuchProcess:
                continue
        return total

    def alive(self) -> bool:
        return all(p.is_running() for p in self.procs)


def own_cpu() -> float:
    """CPU seconds used by this process (user+system)."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def emit(result: dict[str, Any], summary: str, json_path: str | None = None) -> None:
    """Print the result as one JSON line, then the one-line summary (the matrix reads both)."""
    line = json.dumps(result, sort_keys=True)
    if json_path:
        with open(json_path, "w") as f:
            f.write(line + "\n")
    print(line)
    print(summary, flush=True)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


# --- the IRC client --------------------------------------------------------------------------

def command_of(line: bytes) -> tuple[bytes, bytes]:
    """``(command, rest)`` of an IRC line, skipping tags and the prefix."""
    if line.startswith(b"@"):
        line = line.partition(b" ")[2]
    if line.startswith(b":"):
        line = line.partition(b" ")[2]
    cmd, _, rest = line.partition(b" ")
    return cmd.upper(), rest


class IrcConn(asyncio.Protocol):
    """One benchmark user.  ``registered``/``joined`` resolve as the server answers.

    Hot path: :meth:`data_received` keeps the incomplete tail, counts ``PRIVMSG`` lines of
    the complete block with ``bytes.count`` and falls into :meth:`_slow` only when the block
    holds other lines (a PING to answer, a numeric awaited during set-up).
    """

    __slots__ = ("nick", "channel", "transport", "tail", "privmsgs", "pings", "lost",
                 "closing", "registered", "joined", "error", "probe", "lines", "quickack",
                 "_want_quickack", "loop", "read_pause", "parse_all", "last_rx_ns",
                 "reads", "undecodable", "realname")

    def __init__(self, nick: str, channel: str, loop: asyncio.AbstractEventLoop,
                 probe: Callable[[bytes], None] | None = None, quickack: bool = False,
                 read_pause: float = 0.0, parse_all: bool = False,
                 realname: str = "bench") -> None:
        self.nick = nick
        self.realname = realname
        self.channel = channel
        self.transport: asyncio.Transport | None = None
        self.tail = b""
        self.privmsgs = 0
        self.pings = 0
        self.lines = 0
        self.lost = False        # closed by the server (or the network) before we closed it
        self.closing = False
        self.registered: asyncio.Future[None] = loop.create_future()
        self.joined: asyncio.Future[None] = loop.create_future()
        self.error = ""
        self.probe = probe       # called with every complete block (latency probes only)
        self.quickack: socket.socket | None = None
        self.loop = loop
        self.read_pause = read_pause  # seconds to stop reading once joined (idle set-up)
        self._want_quickack = quickack
        self.parse_all = parse_all  # split and parse every line, as a real client does
        self.last_rx_ns = 0         # monotonic ns of the last block holding a PRIVMSG
        self.reads = 0              # data_received calls (one per read the kernel gave)
        self.undecodable = 0        # blocks that were not valid UTF-8 (parse_all only)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        if self._want_quickack:
            self.quickack = transport.get_extra_info("socket")
        self.transport.write(b"NICK %s\r\nUSER %s 0 * :%s\r\n" % (
            self.nick.encode(), self.nick.encode(), self.realname.encode()))

    def data_received(self, data: bytes) -> None:
        if self.quickack is not None:
            # Re-armed on every read: Linux drops out of quick-ACK mode once a connection
            # also sends, and a server without TCP_NODELAY then waits for our delayed ACK.
            self.quickack.setsockopt(socket.IPPROTO_TCP, TCP_QUICKACK, 1)
        if self.tail:
            data = self.tail + data
        if data[-1] == 10:          # the common case: the chunk ends on a line end
            self.tail = b""
        else:
            nl = data.rfind(b"\n")
            if nl < 0:
                self.tail = data
                return
            self.tail = data[nl + 1:]
            data = data[:nl + 1]
        block = data
        self.reads += 1
        if self.parse_all:
            n = self._parse_all(block)
        else:
            n = block.count(b" PRIVMSG ")
            self.privmsgs += n
        if n:
            self.last_rx_ns = time.monotonic_ns()
        if self.probe is not None:
            self.probe(block)
        if n != block.count(b"\n") and (not self.joined.done() or b"PING" in block
                                         or b"ERROR" in block):
            # Set-up numerics, PINGs and ERRORs need parsing; once joined, the other lines
            # (JOIN/QUIT of other members) only need counting.
            self._slow(block)
        if self.read_pause > 0 and self.joined.done() and self.transport is not None:
            # Read at most once per read_pause: while thousands of others join, their JOIN
            # lines would cost this process one read each; the kernel holds them meanwhile.
            self.transport.pause_reading()
            self.loop.call_later(self.read_pause, self._resume_reading)

    def _parse_all(self, block: bytes) -> int:
        """What a real client does with a block: decode it (UTF-8, as it would display the
        text) and split every line into prefix, command and parameters; returns the PRIVMSGs
        in it.  A line that does not decode is counted in ``undecodable``."""
        try:
            block.decode()
        except UnicodeDecodeError:
            self.undecodable += 1
        n = 0
        for line in block.split(b"\r\n"):
            parts = line.split(b" ", 3)  # [":prefix", command, target, ":text"]
            if len(parts) == 4 and parts[1] == b"PRIVMSG" and parts[3][:1] == b":":
                n += 1
        self.privmsgs += n
        return n

    def _slow(self, block: bytes) -> None:
        for raw in block.split(b"\n"):
            line = raw.rstrip(b"\r")
            if not line:
                continue
            cmd, rest = command_of(line)
            self.lines += 1
            if cmd == b"PING":
                self.pings += 1
                if self.transport is not None:
                    self.transport.write(b"PONG " + rest + b"\r\n")
            elif cmd == b"001":
                if not self.registered.done():
                    self.registered.set_result(None)
            elif cmd == b"366":
                if not self.joined.done():
                    self.joined.set_result(None)

            elif cmd in (b"433", b"432", b"465", b"464", b"ERROR", b"405", b"471", b"403"):
                self.error = line.decode("utf-8", "replace")[:200]
                for fut in (self.registered, self.joined):
                    if not fut.done():
                        fut.set_exception(ConnectionError(self.error))

    def _resume_reading(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closing:
            self.lost = True
            if not self.error:
                self.error = f"connection lost: {exc or 'closed by server'}"
        for fut in (self.registered, self.joined):
            if not fut.done():
                fut.set_exception(ConnectionError(self.error or "closed"))
        self.transport = None

    def send(self, data: bytes) -> None:
        if self.transport is not None:
            self.transport.write(data)

    def close(self) -> None:
        self.closing = True
        if self.transport is not None:
            self.transport.close()


def future_ok(fut: asyncio.Future[None]) -> bool:
    """Resolved without error (a step that timed out leaves its future cancelled)."""
    return fut.done() and not fut.cancelled() and fut.exception() is None


@dataclass(frozen=True)
class SocketOptions:
    """How the load's sockets are set up (see fanout's ``--rcvbuf``/``--nagle``).

    ``rcvbuf`` > 0 fixes SO_RCVBUF before connecting (which also switches off the kernel's
    receive-buffer autotuning); ``nagle`` clears the TCP_NODELAY that uvloop sets.
    """

    rcvbuf: int = 0
    nagle: bool = False

    def plain(self) -> bool:
        return not self.rcvbuf and not self.nagle


PLAIN = SocketOptions()


async def _open(loop: asyncio.AbstractEventLoop, host: str, port: int, conn: IrcConn,
                source: str | None, opts: SocketOptions) -> None:
    local = (source, 0) if source else None
    if opts.plain():
        await loop.create_connection(lambda: conn, host, port, local_addr=local)
        return
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET,
                         socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        if opts.rcvbuf:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, opts.rcvbuf)
        if local:
            sock.bind(local)
        await loop.sock_connect(sock, (host, port))
        await loop.create_connection(lambda: conn, sock=sock)
    except BaseException:
        sock.close()
        raise
    if opts.nagle:  # after create_connection, which sets TCP_NODELAY
        raw = conn.transport.get_extra_info("socket") if conn.transport else None
        if raw is not None:
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 0)


async def connect_user(loop: asyncio.AbstractEventLoop, host: str, port: int, conn: IrcConn,
                       step_timeout: float, source: str | None = None,
                       opts: SocketOptions = PLAIN) -> None:
    """Connect, register and join ``conn.channel``; raises on failure or timeout."""
    async with asyncio.timeout(step_timeout):  # no task per step, unlike wait_for
        await _open(loop, host, port, conn, source, opts)
        await conn.registered
        conn.send(b"JOIN %s\r\n" % conn.channel.encode())
        await conn.joined


async def connect_all(loop: asyncio.AbstractEventLoop, host: str, port: int,
                      conns: list[IrcConn], concurrency: int, step_timeout: float,
                      source: str | None = None, opts: SocketOptions = PLAIN) -> list[str]:
    """Set up ``conns`` with at most ``concurrency`` handshakes in flight; returns errors."""
    sem = asyncio.Semaphore(concurrency)
    errors: list[str] = []

    async def one(c: IrcConn) -> None:
        async with sem:
            try:
                await connect_user(loop, host, port, c, step_timeout, source, opts)
            except (TimeoutError, OSError, ConnectionError) as exc:
                errors.append(f"{c.nick}: {type(exc).__name__} {exc}"[:200])
                c.close()
                for fut in (c.registered, c.joined):  # seen: no "never retrieved" noise
                    if fut.done() and not fut.cancelled():
                        fut.exception()

    await asyncio.gather(*(one(c) for c in conns))
    return errors


# --- load processes --------------------------------------------------------------------------

@dataclass
class Workers:
    """Load processes, each running ``target(pipe, **kwargs)`` and talking over a pipe."""

    procs: list[mp.process.BaseProcess] = field(default_factory=list)
    pipes: list[Connection] = field(default_factory=list)

    def start(self, target: Callable[..., None], kwargs_list: list[dict[str, Any]]) -> None:
        ctx = mp.get_context("fork")
        for kwargs in kwargs_list:
            parent, child = ctx.Pipe()
            p = ctx.Process(target=_die_with_parent, args=(target, child), kwargs=kwargs,
                            daemon=True)
            p.start()
            child.close()
            self.procs.append(p)
            self.pipes.append(parent)

    def gather(self, timeout: float) -> list[dict[str, Any]]:
        """One message from every worker; exits if any is missing after ``timeout``."""
        out = []
        deadline = time.monotonic() + timeout
        for pipe in self.pipes:
            if not pipe.poll(max(0.0, deadline - time.monotonic())):
                self.stop()
                sys.exit("a load process did not answer in time")
            try:
                out.append(pipe.recv())
            except EOFError:
                self.stop()
                sys.exit("a load process died")
        return out

    def broadcast(self, msg: dict[str, Any]) -> None:
        for pipe in self.pipes:
            pipe.send(msg)

    def stop(self) -> None:
        for p in self.procs:
            p.join(timeout=5)
            if p.is_alive():
                p.kill()


def _die_with_parent(target: Callable[..., None], pipe: Connection, **kwargs: Any) -> None:
    """Run ``target`` in a load process that is killed if the parent dies (never orphaned)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        pass
    if os.getppid() == 1:
        os._exit(1)
    target(pipe, **kwargs)


def wait_message(loop: asyncio.AbstractEventLoop, pipe: Connection) -> asyncio.Future[Any]:
    """A future resolved with the next message the parent sends on ``pipe``."""
    fut: asyncio.Future[Any] = loop.create_future()

    def readable() -> None:
        loop.remove_reader(pipe.fileno())
        try:
            fut.set_result(pipe.recv())
        except EOFError as exc:
            fut.set_exception(exc)

    loop.add_reader(pipe.fileno(), readable)
    return fut


def split_evenly(n: int, parts: int) -> list[range]:
    """``range(n)`` cut into ``parts`` contiguous pieces of nearly equal size."""
    bounds = [n * i // parts for i in range(parts + 1)]
    return [range(bounds[i], bounds[i + 1]) for i in range(parts)]


def cpu_count_note() -> dict[str, Any]:
    """Where the load ran (so a reader can tell whether it had its own core)."""
    return {"load_affinity": sorted(os.sched_getaffinity(0)), "load_pid": os.getpid()}
