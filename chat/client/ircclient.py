"""irc mode: push over one persistent TCP connection speaking IRC with IRCv3 extensions.

Registration negotiates ``message-tags``, ``server-time``, ``echo-message``, ``batch`` and
``draft/chathistory``.  Our own messages come back through echo-message with their
``msgid`` (the server's event id), so the client shows them exactly as everyone else does.

Heartbeat: the server's PINGs are answered at once; when the server has been silent for
``ping_interval`` we PING it and, with nothing back within ``ping_timeout``, declare the
connection dead.  One timer per connection, moved lazily (it reschedules itself when it
fires early) rather than re-armed on every byte.

Resume: after a reconnect every room is rejoined and replayed with CHATHISTORY; see
:mod:`chat.client.ircresume`.  Lines are parsed and formatted by :mod:`chat.irc.message`,
the server's own module; a line it cannot parse is ignored.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from typing import Any, cast

from ..core.names import casefold
from ..irc.message import Message, encode, format_line
from .base import Transport
from .ircline import chat_event, from_user, msgid, nick_of, param, read_line, split_text, tag
from .ircresume import Resume
from .model import Member, TransportError, error_reason

WANTED_CAPS = ("message-tags", "server-time", "echo-message", "batch", "draft/chathistory",
               "chathistory", "draft/event-playback")
HISTORY_CAPS = frozenset({"chathistory", "draft/chathistory"})
JOIN_ERRORS = frozenset({"403", "405", "471", "473", "474", "475", "476", "477", "479"})
NICK_ERRORS = frozenset({"431", "432", "433", "436", "437"})
REGISTRATION_ERRORS = NICK_ERRORS | {"464", "465", "ERROR"}
MAX_LINE = 8192 + 512   # longest line (tags included) we keep buffering for
Matcher = Callable[[Message], bool]


class IrcProtocol(asyncio.Protocol):
    """Bytes to lines for one :class:`IrcTransport` connection (counts every byte)."""

    __slots__ = ("owner", "transport", "buffer", "closed", "last_rx")

    def __init__(self, owner: IrcTransport) -> None:
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


class IrcTransport(Transport):
    """The ``irc`` mode."""

    mode = "irc"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._proto: IrcProtocol | None = None
        self._waiters: list[tuple[Matcher, asyncio.Future[Message]]] = []
        self._caps: set[str] = set()
        self._offered: set[str] = set()
        self._resume = Resume(self, self._send_line)
        self._ping_token = ""
        self._ping_sent = 0.0                # loop time of our outstanding PING (0: none)
        self._ping_clock = 0.0
        self._ping_seq = itertools.count(1)
        self._timer: asyncio.TimerHandle | None = None
        self._reconnect_task: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()
        self._closed_reason = ""

    # --- public API -----------------------------------------------------------------------
    async def start(self) -> None:
        self._set_state("connecting")
        try:
            await self._connect()
        except TransportError:
            self._set_state("closed")
            raise
        except (OSError, ConnectionError, TimeoutError) as exc:
            self._set_state("closed")
            raise TransportError(f"cannot reach {self.host}:{self.irc_port}: "
                                 f"{error_reason(exc)}") from None
        self._after_register()

    async def join(self, room: str) -> None:
        room = self.check_room(room)
        proto = self._require()
        if room in self._rooms:
            return
        channel = "#" + room
        key = casefold(channel)
        me = casefold(self.nick)
        waiter = self._expect(lambda ln: (
            (ln.command == "JOIN" and casefold(nick_of(ln)) == me and casefold(param(ln, 0)) == key)
            or (ln.command in JOIN_ERRORS and casefold(param(ln, 1)) == key)))
        self._rooms[room] = None
        proto.send("JOIN", channel)
        line = await self._wait(waiter)
        if line.command != "JOIN":
            self._rooms.pop(room, None)
            raise TransportError(f"cannot join {channel}: {param(line, 2, line.command)}")

    async def part(self, room: str) -> None:
        room = self.check_room(room)
        proto = self._require()
        channel = "#" + room
        key = casefold(channel)
        me = casefold(self.nick)
        waiter = self._expect(lambda ln: (
            (ln.command == "PART" and casefold(nick_of(ln)) == me and casefold(param(ln, 0)) == key)
            or (ln.command in ("403", "442") and casefold(param(ln, 1)) == key)))
        proto.send("PART", channel)
        try:
            await self._wait(waiter)
        finally:
            self._rooms.pop(room, None)
            self.cursors.forget(room)
            self._resume.forget(room)

    async def send(self, room: str, text: str) -> None:
        room = self.check_room(room)
        if room not in self._rooms:
            raise TransportError(f"not in #{room}: /join it first")
        proto = self._require()
        for piece in split_text(text):
            proto.send("PRIVMSG", "#" + room, piece)

    async def msg(self, nick: str, text: str) -> None:
        proto = self._require()
        key = casefold(nick)
        me = casefold(self.nick)
        waiter = None
        if "echo-message" in self._caps:
            waiter = self._expect(lambda ln: (
                (ln.command == "PRIVMSG" and casefold(nick_of(ln)) == me
                 and casefold(param(ln, 0)) == key)
                or (ln.command in ("401", "404", "411", "412") and casefold(param(ln, 1)) == key)))
        for piece in split_text(text):
            proto.send("PRIVMSG", nick, piece)
        if waiter is not None:
            line = await self._wait(waiter)
            if line.command != "PRIVMSG":
                raise TransportError(f"{nick}: {param(line, 2, line.command)}")

    async def set_nick(self, nick: str) -> None:
        proto = self._require()
        me = casefold(self.nick)
        waiter = self._expect(lambda ln: (
            (ln.command == "NICK" and casefold(nick_of(ln)) == me) or ln.command in NICK_ERRORS))
        proto.send("NICK", nick)
        line = await self._wait(waiter)
        if line.command != "NICK":
            raise TransportError(f"{nick}: {param(line, 2, line.command)}")

    async def who(self, room: str) -> list[Member]:
        room = self.check_room(room)
        proto = self._require()
        key = casefold("#" + room)
        members: list[Member] = []

        def match(ln: Message) -> bool:
            if ln.command == "352" and casefold(param(ln, 1)) == key:
                members.append(Member(param(ln, 5), f"{param(ln, 2)}@{param(ln, 3)}"))
                return False
            return ln.command in ("315", "403", "421") and (
                ln.command == "421" or casefold(param(ln, 1)) == key)

        waiter = self._expect(match)
        proto.send("WHO", "#" + room)
        line = await self._wait(waiter)
        if line.command != "315":
            raise TransportError(f"who #{room}: {param(line, 2, line.command)}")
        return members

    async def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        if self._reconnect_task is not None:
            self._reconnect_task.cancel()
        self._cancel_timer()
        proto = self._proto
        if proto is not None and not proto.closed:
            proto.send("QUIT", "Leaving")
            lost = self._expect(lambda ln: ln.command == "ERROR")
            try:
                async with asyncio.timeout(2.0):
                    await lost
            except (TimeoutError, ConnectionError):
                pass
            proto.abort()
        self._set_state("closed")

    # --- connecting and registering -------------------------------------------------------
    async def _connect(self) -> None:
        """Open the socket and register; sets ``nick``; raises on refusal or timeout."""
        loop = asyncio.get_running_loop()
        self._caps, self._offered = set(), set()
        async with asyncio.timeout(self.timeout):
            _, proto = await loop.create_connection(lambda: IrcProtocol(self),
                                                    self.host, self.irc_port)
        self.counters.connections_opened += 1
        self._proto = proto
        try:
            waiter = self._expect(lambda ln: ln.command == "001"
                                  or ln.command in REGISTRATION_ERRORS)
            burst_end = self._expect(lambda ln: ln.command in ("376", "422"))
            if self.password:
                proto.send("PASS", self.password)
            proto.send("CAP", "LS", "302")
            proto.send("NICK", self.nick)
            proto.send("USER", self.nick, "0", "*", self.nick)
            line = await self._wait(waiter)
            if line.command != "001":
                text = param(line, 0) if line.command == "ERROR" else param(line, 2, line.command)
                raise TransportError(f"server refused {self.nick}: {text}")
            # Read the rest of the burst (003 tells a restart, 005 the history limit) first.
            try:
                await self._wait(burst_end, 2.0)
            except TransportError:
                if proto.closed:
                    raise
        except BaseException:
            proto.abort()
            raise

    def _after_register(self) -> None:
        proto = self._proto
        assert proto is not None
        self._connected.set()
        self._set_state("connected")
        self._send_ping(proto)  # a first round trip for the status line
        self._arm_timer()
        if self._rooms:
            self._resume.begin(history=not self._caps.isdisjoint(HISTORY_CAPS))

    async def _reconnect(self) -> None:
        """Reconnect with exponential backoff and jitter, then rejoin and replay."""
        backoff = self._new_backoff()
        self._set_state("reconnecting")
        last_failure = ""
        while not self._closing:
            await asyncio.sleep(backoff.next_delay())
            try:
                await self._connect()
            except (OSError, ConnectionError, TimeoutError, TransportError) as exc:
                if error_reason(exc) != last_failure:  # say it once, not on every retry
                    last_failure = error_reason(exc)
                    self._notice(f"reconnect failed: {last_failure}; still trying")
                continue
            self.counters.reconnects += 1
            self._notice("reconnected")
            self._after_register()
            return

    def _connection_lost(self, proto: IrcProtocol, exc: Exception | None) -> None:
        for _matcher, fut in self._waiters:
            if not fut.done():
                fut.set_exception(ConnectionResetError("connection lost"))
        self._waiters.clear()
        if proto is not self._proto:
            return
        was_connected = self._connected.is_set()
        self._connected.clear()
        self._cancel_timer()
        self._resume.connection_lost()
        if self._closing:
            self._set_state("closed")
            return
        if not was_connected:  # lost while (re)registering: the connecting code handles it
            return
        reason = self._closed_reason or (error_reason(exc) if exc else "connection closed")
        self._closed_reason = ""
        self._notice(f"disconnected: {reason}")
        self._reconnect_task = asyncio.get_running_loop().create_task(self._reconnect())

    def _require(self) -> IrcProtocol:
        proto = self._proto
        if proto is None or proto.closed or not self._connected.is_set():
            raise TransportError(f"not connected ({self.state}); not sent")
        return proto

    # --- waiting for replies ----------------------------------------------------------------
    def _expect(self, matcher: Matcher) -> asyncio.Future[Message]:
        fut: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._waiters.append((matcher, fut))
        return fut

    async def _wait(self, fut: asyncio.Future[Message], within: float | None = None) -> Message:
        try:
            async with asyncio.timeout(within or self.timeout):
                return await fut
        except TimeoutError:
            raise TransportError("no answer from the server") from None
        except ConnectionError:
            raise TransportError("connection lost") from None
        finally:
            self._waiters = [(m, f) for m, f in self._waiters if f is not fut]

    # --- receiving -------------------------------------------------------------------------
    def _receive_line(self, proto: IrcProtocol, line: Message) -> None:
        if proto is not self._proto:
            return
        cmd = line.command
        resume = self._resume
        if cmd == "PING":
            proto.send("PONG", param(line, 0))
        elif cmd == "PONG":
            self._receive_pong(line)
        elif cmd == "CAP":
            self._receive_cap(proto, line)
        elif cmd == "BATCH":
            resume.receive_batch(param(line, 0), param(line, 1), param(line, 2))
        elif cmd == "001":
            self.nick = param(line, 0, self.nick)
        elif cmd == "003":
            resume.receive_created(param(line, 1))
        elif cmd == "005":
            resume.receive_isupport(line.params[1:-1])
        elif cmd == "ERROR":
            self._closed_reason = param(line, 0)
        elif cmd == "JOIN" and casefold(nick_of(line)) == casefold(self.nick):
            resume.receive_own_join(param(line, 0)[1:], msgid(line.tags))
        elif cmd in ("FAIL", "421") and "CHATHISTORY" in (param(line, 0), param(line, 1)):
            resume.history_failed(" ".join(line.params[1:]))
        elif cmd in ("NOTICE", "PRIVMSG") and not from_user(line):
            self._notice(param(line, 1))   # a server notice, not a chat event
        self._dispatch_event(line)
        answered = False
        if self._waiters:
            for matcher, fut in list(self._waiters):
                if not fut.done() and matcher(line):
                    fut.set_result(line)
                    answered = True
        if not answered and cmd in _SHOWN_NUMERICS:
            self._notice(" ".join(line.params[1:]))  # an error nobody waited for

    def _dispatch_event(self, line: Message) -> None:
        """Route the chat event of ``line``: into its history batch, or live."""
        batch = self._resume.batch(tag(line, "batch"))
        if batch is not None:
            room, events = batch
            event = chat_event(line, room, self.now())
            if event is not None:
                events.append(event)
            return
        event = chat_event(line, None, self.now())
        if event is None:
            return
        self._resume.receive_live(event)
        if event.kind == "nick" and casefold(event.nick) == casefold(self.nick):
            self.nick = event.text

    def _receive_cap(self, proto: IrcProtocol, line: Message) -> None:
        sub = param(line, 1).upper()
        if sub == "LS":
            more = len(line.params) > 3 and line.params[2] == "*"
            for item in line.params[-1].split():
                self._offered.add(item.split("=", 1)[0])
            if not more:
                wanted = [c for c in WANTED_CAPS if c in self._offered]
                if "draft/chathistory" in wanted and "chathistory" in wanted:
                    wanted.remove("draft/chathistory")
                if wanted:
                    proto.send("CAP", "REQ", " ".join(wanted))
                else:
                    proto.send("CAP", "END")
        elif sub == "ACK":
            self._caps.update(c.lstrip("-") for c in line.params[-1].split()
                              if not c.startswith("-"))
            proto.send("CAP", "END")
        elif sub == "NAK":
            proto.send("CAP", "END")

    def _send_line(self, command: str, *params: str) -> None:
        """Send one line on the current connection (for :class:`Resume`)."""
        assert self._proto is not None
        self._proto.send(command, *params)

    # --- heartbeat --------------------------------------------------------------------------
    def _send_ping(self, proto: IrcProtocol) -> None:
        self._ping_token = f"chatlab-{next(self._ping_seq)}"
        self._ping_sent = asyncio.get_running_loop().time()
        self._ping_clock = time.perf_counter()  # for the RTT: uvloop's time() ticks in ms
        proto.send("PING", self._ping_token)

    def _receive_pong(self, line: Message) -> None:
        if self._ping_sent and line.params and line.params[-1] == self._ping_token:
            rtt = time.perf_counter() - self._ping_clock
            self.counters.heartbeat_rtt_ms = rtt * 1000.0
            self._ping_sent = 0.0

    def _arm_timer(self) -> None:
        self._cancel_timer()
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(self._next_check(loop.time()), self._heartbeat)

    def _next_check(self, now: float) -> float:
        proto = self._proto
        if proto is None:
            return self.ping_interval
        if self._ping_sent:
            return max(0.01, self._ping_sent + self.ping_timeout - now)
        return max(0.01, proto.last_rx + self.ping_interval - now)

    def _heartbeat(self) -> None:
        """Fires at the next deadline: send our PING, or give up on a silent server."""
        self._timer = None
        proto = self._proto
        if proto is None or proto.closed or self._closing:
            return
        now = asyncio.get_running_loop().time()
        if self._ping_sent and proto.last_rx < self._ping_sent:
            if now >= self._ping_sent + self.ping_timeout:
                self._closed_reason = f"ping timeout: no reply in {self.ping_timeout:g} s"
                self._ping_sent = 0.0
                proto.abort()
                return
        elif self._ping_sent and now >= self._ping_sent + self.ping_timeout:
            self._ping_sent = 0.0  # data flowed, only the PONG is late: the link is alive
        elif not self._ping_sent and now >= proto.last_rx + self.ping_interval:
            self._send_ping(proto)
        self._timer = asyncio.get_running_loop().call_later(self._next_check(now),
                                                            self._heartbeat)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


# Error numerics worth a one-line notice when no waiter asked for them.
_SHOWN_NUMERICS = frozenset({"401", "403", "404", "405", "411", "412", "417", "421", "442",
                             "461", "482"})

