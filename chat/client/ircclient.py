"""irc mode: push over one persistent TCP connection speaking IRC with IRCv3 extensions.

Registration negotiates ``message-tags``, ``server-time``, ``echo-message``, ``batch`` and
``draft/chathistory``.  Our own messages come back through echo-message with their
``msgid`` (the server's event id), so the client shows them exactly as everyone else does.
The socket, line splitting and the heartbeat live in :mod:`chat.client.ircwire`.

Resume: after a reconnect every room is rejoined and replayed with CHATHISTORY; see
:mod:`chat.client.ircresume`.  A QUIT or NICK line names no room; the client knows from
NAMES and JOIN/PART lines (:class:`~chat.client.presence.Rosters`) which rooms it belongs
to and moves their cursors past it, so a later replay or ``/mode`` switch does not show it
again.  Lines are parsed and formatted by :mod:`chat.irc.message`, the server's own module.

The server says why it closes a connection (``ERROR :Closing Link: <reason>``).  A reason
it chose (Idle timeout, Excess Flood, SendQ exceeded, a kill) is final: the client says so
and stays closed.  After a restart (``Server shutting down``), a ping timeout or a
connection lost without a word it reconnects.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from ..core.names import casefold
from ..irc.message import Message
from .base import Transport
from .ircline import (
    chat_event,
    close_is_final,
    from_user,
    msgid,
    nick_of,
    param,
    split_text,
    tag,
    text_limit,
)
from .ircresume import Resume
from .ircwire import IrcProtocol, Keepalive
from .model import ChatEvent, Member, TransportError, error_reason
from .presence import FANOUT_KINDS, Rosters

WANTED_CAPS = ("message-tags", "server-time", "echo-message", "batch", "draft/chathistory",
               "chathistory", "draft/event-playback")
HISTORY_CAPS = frozenset({"chathistory", "draft/chathistory"})
JOIN_ERRORS = frozenset({"403", "405", "471", "473", "474", "475", "476", "477", "479"})
NICK_ERRORS = frozenset({"431", "432", "433", "436", "437"})
TOPIC_ERRORS = frozenset({"403", "442", "482"})
REGISTRATION_ERRORS = NICK_ERRORS | {"464", "465", "ERROR"}
Matcher = Callable[[Message], bool]

__all__ = ["IrcProtocol", "IrcTransport"]


class IrcTransport(Transport):
    """The ``irc`` mode."""

    mode = "irc"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._proto: IrcProtocol | None = None
        self._keepalive: Keepalive | None = None
        self._waiters: list[tuple[Matcher, asyncio.Future[Message]]] = []
        self._caps: set[str] = set()
        self._offered: set[str] = set()
        self._resume = Resume(self, self._send_line)
        self._rosters = Rosters()
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

    async def join(self, room: str, key: str | None = None) -> None:
        room = self.check_room(room)
        proto = self._require()
        if room in self._rooms:
            return
        channel, me = casefold("#" + room), casefold(self.nick)
        waiter = self._expect(lambda ln: (
            (ln.command == "JOIN" and casefold(nick_of(ln)) == me
             and casefold(param(ln, 0)) == channel)
            or (ln.command in JOIN_ERRORS and casefold(param(ln, 1)) == channel)))
        self._rooms[room] = None
        proto.send("JOIN", "#" + room, *([key] if key else []))
        line = await self._wait(waiter)
        if line.command != "JOIN":
            self._rooms.pop(room, None)
            raise TransportError(f"cannot join #{room}: {param(line, 2, line.command)}")
        if key:
            self.keys[room] = key

    async def part(self, room: str) -> None:
        room = self.check_room(room)
        proto = self._require()
        key, me = casefold("#" + room), casefold(self.nick)
        waiter = self._expect(lambda ln: (
            (ln.command == "PART" and casefold(nick_of(ln)) == me and casefold(param(ln, 0)) == key)
            or (ln.command in ("403", "442") and casefold(param(ln, 1)) == key)))
        proto.send("PART", "#" + room)
        try:
            await self._wait(waiter)
        finally:
            self._rooms.pop(room, None)
            self.cursors.forget(room)
            self._resume.forget(room)

    async def send(self, room: str, text: str) -> None:
        room = self.check_room(room)
        if room not in self._rooms:
            raise TransportError(f"not in #{room}: /join it first", unsent=text)
        proto = self._require(text)
        for piece in split_text(text, text_limit(self.nick, "#" + room)):
            proto.send("PRIVMSG", "#" + room, piece)

    async def msg(self, nick: str, text: str) -> None:
        proto = self._require(text)
        key, me = casefold(nick), casefold(self.nick)
        waiter = None
        if "echo-message" in self._caps:
            waiter = self._expect(lambda ln: (
                (ln.command == "PRIVMSG" and casefold(nick_of(ln)) == me
                 and casefold(param(ln, 0)) == key)
                or (ln.command in ("401", "404", "411", "412") and casefold(param(ln, 1)) == key)))
        for piece in split_text(text, text_limit(self.nick, nick)):
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
                members.append(Member(param(ln, 5), f"{param(ln, 2)}@{param(ln, 3)}",
                                      "@" in param(ln, 6)))
                return False
            return ln.command in ("315", "403", "421") and (
                ln.command == "421" or casefold(param(ln, 1)) == key)

        waiter = self._expect(match)
        proto.send("WHO", "#" + room)
        line = await self._wait(waiter)
        if line.command != "315":
            raise TransportError(f"who #{room}: {param(line, 2, line.command)}")
        return members

    async def topic(self, room: str, text: str | None = None) -> str:
        room = self.check_room(room)
        proto = self._require()
        key, me = casefold("#" + room), casefold(self.nick)
        answers = ("332", "331") if text is None else ()
        waiter = self._expect(lambda ln: casefold(param(ln, 1)) == key and (
            ln.command in answers or ln.command in TOPIC_ERRORS) or (
            text is not None and ln.command == "TOPIC" and casefold(nick_of(ln)) == me
            and casefold(param(ln, 0)) == key))
        if text is None:
            proto.send("TOPIC", "#" + room)
        else:  # the line must fit; the server cuts the topic to its TOPICLEN anyway
            proto.send("TOPIC", "#" + room,
                       split_text(text, text_limit(self.nick, "#" + room))[0])
        line = await self._wait(waiter)
        if line.command in TOPIC_ERRORS:
            raise TransportError(f"topic of #{room}: {param(line, 2, line.command)}")
        if line.command == "331":  # RPL_NOTOPIC
            return ""
        return param(line, 1) if line.command == "TOPIC" else param(line, 2)

    async def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        if self._reconnect_task is not None:
            self._reconnect_task.cancel()
        if self._keepalive is not None:
            self._keepalive.cancel()
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
            _, proto = await loop.create_connection(
                lambda: IrcProtocol(self), self.host, self.irc_port, ssl=self.tls,
                server_hostname=self.host if self.tls else None)
        self.counters.connections_opened += 1
        self._proto = proto
        welcome = self._expect(lambda ln: ln.command == "001"
                               or ln.command in REGISTRATION_ERRORS)
        burst_end = self._expect(lambda ln: ln.command in ("376", "422"))
        try:
            if self.password:
                proto.send("PASS", self.password)
            proto.send("CAP", "LS", "302")
            proto.send("NICK", self.nick)
            proto.send("USER", self.nick, "0", "*", self.nick)
            line = await self._wait(welcome)
            if line.command != "001":
                raise TransportError(f"server refused {self.nick}: {self._refusal(line)}")
            # Read the rest of the burst (003 tells a restart, 005 the history limit) first.
            try:
                await self._wait(burst_end, 2.0)
            except TransportError:
                if proto.closed:
                    raise
        except BaseException:
            self._discard(burst_end)  # nobody will await it now
            proto.abort()
            raise

    def _refusal(self, line: Message) -> str:
        """The server's reason for refusing our registration: its text, not the numeric
        (``433 * nick :Nickname is already in use``, ``464 nick :Password incorrect``)."""
        text = line.params[-1] if len(line.params) > 1 or (line.command == "ERROR"
                                                          and line.params) else ""
        if line.command == "464" and not self.password:
            return "this server wants a password: use --password"
        return text or line.command

    def _after_register(self) -> None:
        proto = self._proto
        assert proto is not None
        self._connected.set()
        self._set_state("connected")
        self._keepalive = Keepalive(proto, self.counters, self.ping_interval,
                                    self.ping_timeout, self._link_dead)
        self._keepalive.start()
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

    def _left(self, room: str, why: str) -> None:
        self._resume.forget(room)
        super()._left(room, why)

    def _link_dead(self, reason: str) -> None:
        """The heartbeat gave up: drop the connection (then reconnect)."""
        self._closed_reason = reason
        if self._proto is not None:
            self._proto.abort()

    def _connection_lost(self, proto: IrcProtocol, exc: Exception | None) -> None:
        for _matcher, fut in self._waiters:
            if not fut.done():
                fut.set_exception(ConnectionResetError("connection lost"))
        self._waiters.clear()
        if proto is not self._proto:
            return
        was_connected = self._connected.is_set()
        self._connected.clear()
        if self._keepalive is not None:
            self._keepalive.cancel()
            self._keepalive = None
        self._resume.connection_lost()
        reason, self._closed_reason = self._closed_reason, ""
        if self._closing:
            self._set_state("closed")
        elif not was_connected:  # lost while (re)registering: the connecting code handles it
            return
        elif close_is_final(reason):
            self._finish(reason.removeprefix("Closing Link:").strip())
        else:
            self._notice(f"disconnected: {reason or error_reason(exc or ConnectionError())}")
            self._reconnect_task = asyncio.get_running_loop().create_task(self._reconnect())

    def _require(self, unsent: str = "") -> IrcProtocol:
        proto = self._proto
        if proto is None or proto.closed or not self._connected.is_set():
            raise TransportError(f"not connected ({self.state}); not sent", unsent=unsent)
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

    def _discard(self, fut: asyncio.Future[Message]) -> None:
        """Forget a waiter nobody will await (its exception read, so asyncio logs nothing)."""
        self._waiters = [(m, f) for m, f in self._waiters if f is not fut]
        if not fut.done():
            fut.cancel()
        elif not fut.cancelled():
            fut.exception()

    # --- receiving -------------------------------------------------------------------------
    def _receive_line(self, proto: IrcProtocol, line: Message) -> None:
        if proto is not self._proto:
            return
        cmd = line.command
        resume = self._resume
        if cmd == "PING":
            if self._keepalive is not None:
                self._keepalive.receive_ping(param(line, 0))
            else:  # still registering
                proto.send("PONG", param(line, 0))
        elif cmd == "PONG":
            if self._keepalive is not None:
                self._keepalive.receive_pong(line)
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
        elif cmd == "353":
            self._rosters.names(param(line, 2)[1:], param(line, 3))
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
        self._track(event)
        self._resume.receive_live(event)
        if event.kind == "nick" and casefold(event.nick) == casefold(self.nick):
            self.nick = event.text

    def _track(self, event: ChatEvent) -> None:
        """Keep the rosters; a QUIT/NICK moves the cursors of the rooms it belongs to.

        Its id is that of the first room we shared (the other rooms' copies follow it),
        and every earlier event of those rooms has reached us already: the line order is
        the id order.  Rooms it does not belong to keep their cursors, which must never
        pass a room's last id (the HTTP API would take that for a server restart).
        """
        kind, rosters = event.kind, self._rosters
        if kind in FANOUT_KINDS and event.id:
            for room in rosters.rooms_of(event.nick):
                last = self.cursors.get(room)
                if last is not None and last < event.id and room not in self._resume.resyncing:
                    self.cursors.set(room, event.id)
        if kind in ("join", "part", "kick"):
            who = event.args[0] if kind == "kick" and event.args else event.nick
            me = casefold(who) == casefold(self.nick)
            if kind == "join":
                rosters.joined(event.room, who, me)
            else:
                rosters.parted(event.room, who, me)
        elif kind == "quit":
            rosters.quit(event.nick)
        elif kind == "nick":
            rosters.renamed(event.nick, event.text)

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


# Error numerics worth a one-line notice when no waiter asked for them.
_SHOWN_NUMERICS = frozenset({"401", "403", "404", "405", "411", "412", "417", "421", "442",
                             "461", "482"})
