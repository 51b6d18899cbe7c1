"""irc mode: push over one persistent TCP connection speaking IRC with IRCv3 extensions.

Registration negotiates ``message-tags``, ``server-time``, ``echo-message``, ``batch`` and
``draft/chathistory``.  Our own messages come back through echo-message with their
``msgid`` (the server's event id), so the client shows them exactly as everyone else does.

Heartbeat: the server's PINGs are answered at once; when the server has been silent for
``ping_interval`` we PING it and, with nothing back within ``ping_timeout``, declare the
connection dead.  One timer per connection, moved lazily (it reschedules itself when it
fires early) rather than re-armed on every byte.

Resume: after a reconnect every room is rejoined and ``CHATHISTORY AFTER #room
msgid=<cursor>`` replays what was missed; live lines for a room arriving meanwhile are held
and merged after the replay, so nothing is lost or shown twice.  A server restart (ids
restart) is recognised by a changed ``003`` creation line or by our JOIN getting an id not
above the cursor; then the room replays from the new run's start (``LATEST``).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import deque
from collections.abc import Callable
from typing import Any, cast

from ..names import casefold
from .base import Transport
from .ircline import Line, format_line, msgid, parse_line, server_time, split_text
from .model import ChatEvent, Member, TransportError

WANTED_CAPS = ("message-tags", "server-time", "echo-message", "batch", "draft/chathistory",
               "chathistory", "draft/event-playback")
JOIN_ERRORS = frozenset({"403", "405", "471", "473", "474", "475", "476", "477", "479"})
NICK_ERRORS = frozenset({"431", "432", "433", "436", "437"})
REGISTRATION_ERRORS = NICK_ERRORS | {"464", "465", "ERROR"}
MAX_LINE = 8192 + 512   # longest line (tags included) we keep buffering for
Matcher = Callable[[Line], bool]


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
            line = parse_line(raw.rstrip(b"\r").decode("utf-8", "replace"))
            if line is not None:
                owner._receive_line(self, line)

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
        self._waiters: list[tuple[Matcher, asyncio.Future[Line]]] = []
        self._caps: set[str] = set()
        self._offered: set[str] = set()
        self._history_limit = 100
        self._created: str | None = None     # the 003 line: changes when the server restarts
        self._restarted = False
        self._batches: dict[str, tuple[str, list[ChatEvent]]] = {}   # ref -> (room, events)
        self._resync: dict[str, list[ChatEvent]] = {}    # room -> live events held
        self._held: list[ChatEvent] = []                 # room-less live events held
        self._recent: deque[ChatEvent] = deque(maxlen=64)  # room-less events shown
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
                                 f"{_reason(exc)}") from None
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
            (ln.command == "JOIN" and casefold(ln.nick) == me and casefold(ln.param(0)) == key)
            or (ln.command in JOIN_ERRORS and casefold(ln.param(1)) == key)))
        self._rooms[room] = None
        proto.write(format_line("JOIN", channel))
        line = await self._wait(waiter)
        if line.command != "JOIN":
            self._rooms.pop(room, None)
            raise TransportError(f"cannot join {channel}: {line.param(2, line.command)}")

    async def part(self, room: str) -> None:
        room = self.check_room(room)
        proto = self._require()
        channel = "#" + room
        key = casefold(channel)
        me = casefold(self.nick)
        waiter = self._expect(lambda ln: (
            (ln.command == "PART" and casefold(ln.nick) == me and casefold(ln.param(0)) == key)
            or (ln.command in ("403", "442") and casefold(ln.param(1)) == key)))
        proto.write(format_line("PART", channel))
        try:
            await self._wait(waiter)
        finally:
            self._rooms.pop(room, None)
            self.cursors.forget(room)
            self._resync.pop(room, None)

    async def send(self, room: str, text: str) -> None:
        room = self.check_room(room)
        if room not in self._rooms:
            raise TransportError(f"not in #{room}: /join it first")
        proto = self._require()
        for piece in split_text(text):
            proto.write(format_line("PRIVMSG", "#" + room, piece))

    async def msg(self, nick: str, text: str) -> None:
        proto = self._require()
        key = casefold(nick)
        me = casefold(self.nick)
        waiter = None
        if "echo-message" in self._caps:
            waiter = self._expect(lambda ln: (
                (ln.command == "PRIVMSG" and casefold(ln.nick) == me
                 and casefold(ln.param(0)) == key)
                or (ln.command in ("401", "404", "411", "412") and casefold(ln.param(1)) == key)))
        for piece in split_text(text):
            proto.write(format_line("PRIVMSG", nick, piece))
        if waiter is not None:
            line = await self._wait(waiter)
            if line.command != "PRIVMSG":
                raise TransportError(f"{nick}: {line.param(2, line.command)}")

    async def set_nick(self, nick: str) -> None:
        proto = self._require()
        me = casefold(self.nick)
        waiter = self._expect(lambda ln: (
            (ln.command == "NICK" and casefold(ln.nick) == me) or ln.command in NICK_ERRORS))
        proto.write(format_line("NICK", nick))
        line = await self._wait(waiter)
        if line.command != "NICK":
            raise TransportError(f"{nick}: {line.param(2, line.command)}")

    async def who(self, room: str) -> list[Member]:
        room = self.check_room(room)
        proto = self._require()
        key = casefold("#" + room)
        members: list[Member] = []

        def match(ln: Line) -> bool:
            if ln.command == "352" and casefold(ln.param(1)) == key:
                members.append(Member(ln.param(5), f"{ln.param(2)}@{ln.param(3)}"))
                return False
            return ln.command in ("315", "403", "421") and (
                ln.command == "421" or casefold(ln.param(1)) == key)

        waiter = self._expect(match)
        proto.write(format_line("WHO", "#" + room))
        line = await self._wait(waiter)
        if line.command != "315":
            raise TransportError(f"who #{room}: {line.param(2, line.command)}")
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
            proto.write(format_line("QUIT", "Leaving"))
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
                proto.write(format_line("PASS", self.password))
            proto.write(format_line("CAP", "LS", "302"))
            proto.write(format_line("NICK", self.nick))
            proto.write(format_line("USER", self.nick, "0", "*", self.nick))
            line = await self._wait(waiter)
            if line.command != "001":
                text = line.param(0) if line.command == "ERROR" else line.param(2, line.command)
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
            self._begin_resync()

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
                if _reason(exc) != last_failure:  # say it once, not on every retry
                    last_failure = _reason(exc)
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
        self._batches.clear()
        if self._closing:
            self._set_state("closed")
            return
        if not was_connected:  # lost while (re)registering: the connecting code handles it
            return
        reason = self._closed_reason or (_reason(exc) if exc else "connection closed")
        self._closed_reason = ""
        self._notice(f"disconnected: {reason}")
        self._reconnect_task = asyncio.get_running_loop().create_task(self._reconnect())

    def _require(self) -> IrcProtocol:
        proto = self._proto
        if proto is None or proto.closed or not self._connected.is_set():
            raise TransportError(f"not connected ({self.state}); not sent")
        return proto

    # --- waiting for replies ----------------------------------------------------------------
    def _expect(self, matcher: Matcher) -> asyncio.Future[Line]:
        fut: asyncio.Future[Line] = asyncio.get_running_loop().create_future()
        self._waiters.append((matcher, fut))
        return fut

    async def _wait(self, fut: asyncio.Future[Line], within: float | None = None) -> Line:
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
    def _receive_line(self, proto: IrcProtocol, line: Line) -> None:
        if proto is not self._proto:
            return
        cmd = line.command
        if cmd == "PING":
            proto.write(format_line("PONG", line.param(0)))
        elif cmd == "PONG":
            self._receive_pong(line)
        elif cmd == "CAP":
            self._receive_cap(proto, line)
        elif cmd == "BATCH":
            self._receive_batch(line)
        elif cmd == "001":
            self.nick = line.param(0, self.nick)
        elif cmd == "003":
            self._receive_created(line.param(1))
        elif cmd == "005":
            self._receive_isupport(line.params[1:-1])
        elif cmd == "ERROR":
            self._closed_reason = line.param(0)
        elif cmd == "JOIN" and casefold(line.nick) == casefold(self.nick):
            self._receive_own_join(line)
        elif cmd in ("FAIL", "421") and "CHATHISTORY" in (line.param(0), line.param(1)):
            self._history_failed(line)
        elif cmd in ("NOTICE", "PRIVMSG") and "!" not in line.source:
            self._notice(line.param(1))   # a server notice, not a chat event
        self._dispatch_event(line)
        answered = False
        if self._waiters:
            for matcher, fut in list(self._waiters):
                if not fut.done() and matcher(line):
                    fut.set_result(line)
                    answered = True
        if not answered and cmd in _SHOWN_NUMERICS:
            self._notice(" ".join(line.params[1:]))  # an error nobody waited for

    def _dispatch_event(self, line: Line) -> None:
        ref = line.tags.get("batch")
        if ref is not None and ref in self._batches:
            room, events = self._batches[ref]
            event = self._line_event(line, room)
            if event is not None:
                events.append(event)
            return
        event = self._line_event(line, None)
        if event is None:
            return
        if event.room in self._resync:
            self._resync[event.room].append(event)
        elif not event.room and not event.to and self._resync:
            self._held.append(event)
        elif event.room or event.to:
            self._deliver(event)
        else:
            self._recent.append(event)
            self._emit(event)
        if event.kind == "nick" and casefold(event.nick) == casefold(self.nick):
            self.nick = event.text

    def _line_event(self, line: Line, room: str | None) -> ChatEvent | None:
        """The chat event a line carries (None for protocol traffic)."""
        cmd = line.command
        if cmd not in _EVENT_KINDS or ("!" not in line.source and cmd in ("PRIVMSG", "NOTICE")):
            return None
        now = self.now()
        target, to, text = line.param(0), "", ""
        if cmd in ("PRIVMSG", "NOTICE"):
            text = line.param(1)
            if not target.startswith("#"):
                to, target = target, ""
            if text.startswith("\x01ACTION ") and text.endswith("\x01"):
                text = "* " + line.nick + " " + text[8:-1]
        elif cmd in ("PART", "TOPIC"):
            text = line.param(1)
        elif cmd in ("QUIT", "NICK"):
            text, target = line.param(0), ""
        if room is None:
            room = target[1:] if target.startswith("#") else ""
        return ChatEvent(room=room, id=msgid(line.tags), ts=server_time(line.tags, now),
                         kind=_EVENT_KINDS[cmd], nick=line.nick, text=text, received=now,
                         to=to)

    def _receive_cap(self, proto: IrcProtocol, line: Line) -> None:
        sub = line.param(1).upper()
        if sub == "LS":
            more = len(line.params) > 3 and line.params[2] == "*"
            for item in line.params[-1].split():
                self._offered.add(item.split("=", 1)[0])
            if not more:
                wanted = [c for c in WANTED_CAPS if c in self._offered]
                if "draft/chathistory" in wanted and "chathistory" in wanted:
                    wanted.remove("draft/chathistory")
                if wanted:
                    proto.write(format_line("CAP", "REQ", " ".join(wanted)))
                else:
                    proto.write(format_line("CAP", "END"))
        elif sub == "ACK":
            self._caps.update(c.lstrip("-") for c in line.params[-1].split()
                              if not c.startswith("-"))
            proto.write(format_line("CAP", "END"))
        elif sub == "NAK":
            proto.write(format_line("CAP", "END"))

    def _receive_created(self, text: str) -> None:
        if self._created is not None and text != self._created:
            self._restarted = True
        self._created = text

    def _receive_isupport(self, tokens: list[str]) -> None:
        for token in tokens:
            name, _, value = token.partition("=")
            if name.upper() in ("CHATHISTORY", "DRAFT/CHATHISTORY") and value.isdigit():
                self._history_limit = max(1, int(value))

    # --- replay after a reconnect -----------------------------------------------------------
    @property
    def _history_cap(self) -> str | None:
        for cap in ("chathistory", "draft/chathistory"):
            if cap in self._caps:
                return cap
        return None

    def _begin_resync(self) -> None:
        """Rejoin every room, holding live lines until each room's replay is in."""
        proto = self._proto
        assert proto is not None
        if self._restarted:
            self._restart_noticed()
        for room in self._rooms:
            self._resync[room] = []
        for room in list(self._rooms):
            proto.write(format_line("JOIN", "#" + room))

    def _receive_own_join(self, line: Line) -> None:
        room = line.param(0)[1:]
        if room not in self._resync or self._proto is None:
            return
        cursor = self.cursors.get(room)
        join_id = msgid(line.tags)
        if cursor is None:
            self._end_resync(room)  # nothing seen yet in this room: start from now
            return
        if join_id and join_id <= cursor:  # ids went backwards: a new server run
            self._restart_noticed()
            cursor = 0
        if self._history_cap is None:
            self._notice(f"#{room}: the server keeps no history; messages sent while "
                         "disconnected are lost")
            self._end_resync(room)
            return
        self._request_history(room, cursor)

    def _restart_noticed(self) -> None:
        """Ids start over: every room replays from the new run's start (once per run)."""
        self._restarted = False
        if any(self.cursors.get(room) for room in self._rooms):
            self.cursors.restarted()
            self._notice("the server restarted: replaying each room from its start")

    def _request_history(self, room: str, cursor: int) -> None:
        assert self._proto is not None
        limit = str(self._history_limit)
        if cursor > 0:
            line = format_line("CHATHISTORY", "AFTER", "#" + room, f"msgid={cursor}", limit)
        else:
            line = format_line("CHATHISTORY", "LATEST", "#" + room, "*", limit)
        self._proto.write(line)

    def _receive_batch(self, line: Line) -> None:
        ref = line.param(0)
        if ref.startswith("+") and line.param(1).lower().endswith("chathistory"):
            target = line.param(2)
            self._batches[ref[1:]] = (target[1:] if target.startswith("#") else target, [])
        elif ref.startswith("-") and ref[1:] in self._batches:
            room, events = self._batches.pop(ref[1:])
            self._replay(room, events)

    def _replay(self, room: str, events: list[ChatEvent]) -> None:
        """One history batch: merge it with the live lines held for ``room``."""
        held = self._resync.get(room)
        if held is None:  # a batch nobody is waiting for: just show what is new
            for event in sorted(events, key=_event_id):
                self._deliver(event)
            return
        held.extend(events)
        if len(events) >= self._history_limit:  # there may be more: ask for the next page
            self._request_history(room, max(e.id for e in events))
        else:
            self._end_resync(room)

    def _seen_live(self, event: ChatEvent) -> bool:
        """True if a QUIT/NICK replayed for one room was already shown from the live line."""
        return any(seen.kind == event.kind and seen.nick == event.nick
                   and seen.text == event.text and abs(seen.id - event.id) <= 64
                   for seen in self._recent)

    def _history_failed(self, line: Line) -> None:
        self._notice("history replay refused: " + " ".join(line.params[1:]))
        for room in list(self._resync):
            self._end_resync(room)

    def _end_resync(self, room: str) -> None:
        """Show the replayed and held events of ``room`` once each, in id order."""
        merged: dict[int, ChatEvent] = {}
        unnumbered: list[ChatEvent] = []
        for event in self._resync.pop(room, []):
            if event.id:
                merged.setdefault(event.id, event)
            else:
                unnumbered.append(event)
        for event_id in sorted(merged):
            event = merged[event_id]
            if event.kind in ("quit", "nick") and self._seen_live(event):
                self.cursors.accept(room, event.id)
            else:
                self._deliver(event)
        for event in unnumbered:
            self._emit(event)
        if not self._resync and self._held:
            held, self._held = self._held, []
            for event in held:
                if not self._seen_live(event):
                    self._recent.append(event)
                    self._emit(event)

    # --- heartbeat --------------------------------------------------------------------------
    def _send_ping(self, proto: IrcProtocol) -> None:
        self._ping_token = f"chatlab-{next(self._ping_seq)}"
        self._ping_sent = asyncio.get_running_loop().time()
        self._ping_clock = time.perf_counter()  # for the RTT: uvloop's time() ticks in ms
        proto.write(format_line("PING", self._ping_token))

    def _receive_pong(self, line: Line) -> None:
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


_EVENT_KINDS = {"PRIVMSG": "message", "NOTICE": "notice", "JOIN": "join", "PART": "part",
                "QUIT": "quit", "NICK": "nick", "TOPIC": "topic"}
# Error numerics worth a one-line notice when no waiter asked for them.
_SHOWN_NUMERICS = frozenset({"401", "403", "404", "405", "411", "412", "417", "421", "442",
                             "461", "482"})


def _event_id(event: ChatEvent) -> int:
    return event.id


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__
