"""irc mode's socket side: bytes to lines (:class:`IrcProtocol`) and the heartbeat.

:class:`IrcProtocol` is the ``asyncio.Protocol`` of one connection: it counts every byte and
line, cuts the stream into lines (junk is ignored) and hands each to its owner.

:class:`Keepalive` is the client's heartbeat on that connection.  Each server PING is
answered at once and, unless one of ours is out already, followed a moment later
(:data:`PING_DELAY`) by our own PING, so the round trip shown is measured at every
heartbeat rather than once at connect.  The moment matters: the server coalesces its
writes for a few ms after each flush (``--flush-interval``), and a PING sent right after
its own would time that wait, not the network.  The first PING waits a little longer
(:data:`FIRST_PING_DELAY`): the server's flood control may still be pacing the lines of
our connect burst (registration, rejoins, history requests).  When the server has been silent for
``interval`` seconds we PING it ourselves; nothing back within ``timeout`` and the
connection is declared dead.  One timer per connection, moved lazily (it reschedules
itself when it fires early) rather than re-armed on every byte.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from typing import Protocol, cast

from ..irc.message import Message, encode, format_line
from .ircline import read_line
from .model import Counters

MAX_LINE = 8192 + 512   # longest line (tags included) we keep buffering for
PING_DELAY = 0.25       # seconds from the server's PING to our own
FIRST_PING_DELAY = 1.0  # seconds from registering to our first PING


class LineOwner(Protocol):
    """What an :class:`IrcProtocol` reports to."""

    counters: Counters

    def _receive_line(self, proto: IrcProtocol, line: Message) -> None: ...

    def _connection_lost(self, proto: IrcProtocol, exc: Exception | None) -> None: ...


class IrcProtocol(asyncio.Protocol):
    """Bytes to lines for one irc-mode connection (counts every byte)."""

    __slots__ = ("owner", "transport", "buffer", "closed", "last_rx")

    def __init__(self, owner: LineOwner) -> None:
        self.owner = owner
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.closed = False
        self.last_rx = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.last_rx = asyncio.get_running_loop().time()

    def data_received(self, data: bytes) -> None:
        owner = self.owner
        owner.counters.bytes_in += len(data)
        self.last_rx = asyncio.get_running_loop().time()
        buf = self.buffer + data
        if b"\n" not in buf:
            self.buffer = buf if len(buf) <= MAX_LINE else b""
            return
        *lines, self.buffer = buf.split(b"\n")
        for raw in lines:
            if self.closed:
                return
            line = read_line(raw)
            if line is not None:  # junk is ignored
                owner._receive_line(self, line)

    def send(self, command: str, *params: str) -> None:
        """Format one line and write it."""
        self.write(encode(format_line(command, *params)))

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.closed:
            self.transport.write(data)
            self.owner.counters.bytes_out += len(data)
            self.owner.counters.requests += 1

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.owner._connection_lost(self, exc)

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()


class Keepalive:
    """The heartbeat of one connection; ``on_dead(reason)`` when the server stays silent."""

    __slots__ = ("proto", "counters", "interval", "timeout", "on_dead", "token", "sent",
                 "clock", "due", "seq", "timer")

    def __init__(self, proto: IrcProtocol, counters: Counters, interval: float,
                 timeout: float, on_dead: Callable[[str], None]) -> None:
        self.proto = proto
        self.counters = counters
        self.interval = interval
        self.timeout = timeout
        self.on_dead = on_dead
        self.token = ""
        self.sent = 0.0          # loop time of our outstanding PING (0: none)
        self.clock = 0.0         # perf_counter of that PING: uvloop's time() ticks in ms
        self.due = 0.0           # loop time our next PING is due (0: none planned)
        self.seq = itertools.count(1)
        self.timer: asyncio.TimerHandle | None = None

    def start(self) -> None:
        """Plan a first round trip for the status line; arm the timer."""
        self._plan_ping(FIRST_PING_DELAY)

    def ping(self) -> None:
        """Send our PING (and move the timer to its deadline)."""
        self.due = 0.0
        self.token = f"chatlab-{next(self.seq)}"
        self.sent = asyncio.get_running_loop().time()
        self.clock = time.perf_counter()
        self.proto.send("PING", self.token)
        self._arm()

    def receive_ping(self, token: str) -> None:
        """The server's PING: answer, and plan ours to measure the round trip."""
        self.proto.send("PONG", token)
        self._plan_ping()

    def _plan_ping(self, delay: float = PING_DELAY) -> None:
        if not self.sent and not self.due:
            self.due = asyncio.get_running_loop().time() + delay
            self._arm()

    def receive_pong(self, line: Message) -> None:
        if self.sent and line.params and line.params[-1] == self.token:
            self.counters.heartbeat_rtt_ms = (time.perf_counter() - self.clock) * 1000.0
            self.sent = 0.0

    def cancel(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _arm(self) -> None:
        self.cancel()
        loop = asyncio.get_running_loop()
        self.timer = loop.call_later(self._next_check(loop.time()), self._fire)

    def _next_check(self, now: float) -> float:
        if self.sent:
            return max(0.01, self.sent + self.timeout - now)
        check = self.proto.last_rx + self.interval
        if self.due:
            check = min(check, self.due)
        return max(0.01, check - now)

    def _fire(self) -> None:
        """At the next deadline: send our PING, or give up on a silent server."""
        self.timer = None
        proto = self.proto
        if proto.closed:
            return
        now = asyncio.get_running_loop().time()
        if self.sent and proto.last_rx < self.sent:
            if now >= self.sent + self.timeout:
                self.sent = 0.0
                self.on_dead(f"ping timeout: no reply in {self.timeout:g} s")
                return
        elif self.sent and now >= self.sent + self.timeout:
            self.sent = 0.0  # data flowed, only the PONG is late: the link is alive
        elif not self.sent and (now >= proto.last_rx + self.interval
                                or (self.due and now >= self.due)):
            self.ping()
            return
        self._arm()
