"""One user's chat session: a transport plus the slash commands, for both front ends.

:class:`ChatSession` is what the interactive UI (:mod:`chat.client.ui`) and the scriptable
mode (:mod:`chat.client.script`) drive: they feed it input lines and give it an
:class:`Output` to show events, notices and errors on.  ``/mode`` swaps the transport for
another one that resumes from the old one's rooms and cursors, so no event is lost or
shown twice across the switch; ``/reconnect`` does the same in the same mode after the
server closed the connection for good.  A chat line that could not be sent is handed back
by :meth:`ChatSession.handle`, so the front end can give it back to the user.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

from .commands import Command, UsageError, help_lines, parse_input
from .model import ChatEvent, TransportError
from .render import stats_lines
from .transports import Transport, make_transport

log = logging.getLogger(__name__)


class Output(Protocol):
    """Where a session shows things."""

    def event(self, event: ChatEvent, me: str) -> None: ...

    def info(self, text: str) -> None: ...

    def error(self, text: str) -> None: ...

    def state(self, state: str) -> None: ...


class ChatSession:
    """A transport in some mode, the current room, and the commands that act on them."""

    def __init__(self, out: Output, *, mode: str, host: str, irc_port: int, http_port: int,
                 nick: str, interval: float = 1.0, **options: Any) -> None:
        self.out = out
        self.settings: dict[str, Any] = dict(host=host, irc_port=irc_port,
                                             http_port=http_port, interval=interval, **options)
        self.room: str | None = None
        self.running = True
        self.started = time.monotonic()
        self.failures = 0          # input lines that failed (scriptable mode's exit status)
        self.interrupted = 0       # the signal that asked us to leave (0: none)
        self.on_interrupt: Callable[[], None] | None = None  # the front end's way to leave
        self.on_ended: Callable[[], None] | None = None      # the server closed us for good
        self._switching = False
        self._started = False
        self.transport = self._make(mode, nick)

    def _make(self, mode: str, nick: str) -> Transport:
        transport: Transport | None = None

        def on_event(event: ChatEvent) -> None:
            self.out.event(event, transport.nick if transport is not None else nick)

        def on_state(state: str) -> None:
            # Not news: "closed" during /mode, or anything before the first connect (a
            # failed start is reported as one error line instead).
            if not self._started or (self._switching and state == "closed"):
                return
            self.out.state(state)
            if state == "closed" and transport is not None and transport.ended is not None:
                self.out.error(f"the server closed the connection: {transport.ended}; not "
                               "reconnecting (/reconnect to try again)")
                if self.on_ended is not None:
                    self.on_ended()

        transport = make_transport(mode, nick=nick, on_event=on_event, on_state=on_state,
                                   on_notice=self.out.info, **self.settings)
        transport.on_left = self._left
        return transport

    def _left(self, room: str, why: str) -> None:
        """The server took ``room`` from us (``why``: kicked ...): say so, and talk in
        another room (the last joined) if it was the current one."""
        if self.room == room:
            rooms = [other for other in self.transport.rooms if other != room]
            self.room = rooms[-1] if rooms else None
        self.out.info(f"{why}; " + (f"now talking in #{self.room}; " if self.room else "")
                      + f"/join {room} to go back")

    def interrupt(self, signum: int) -> None:
        """A signal (SIGTERM, or SIGINT outside the prompt) asks us to leave properly."""
        self.interrupted = signum
        if self.on_interrupt is not None:
            self.on_interrupt()

    @property
    def mode(self) -> str:
        return self.transport.mode

    @property
    def nick(self) -> str:
        return self.transport.nick

    async def start(self, room: str | None) -> None:
        """Connect, then join ``room``; raises TransportError (one line) on failure."""
        await self.transport.start()
        self._started = True
        self.out.state(self.transport.state)
        self.started = time.monotonic()
        if room:
            await self.transport.join(room)
            self.room = Transport.check_room(room)

    async def close(self) -> None:
        self.running = False
        await self.transport.close()

    async def handle(self, line: str) -> str | None:
        """Run one input line; problems are shown as one-line errors, never raised.

        Returns what the user typed that did not go out (a chat line or a ``/msg``, or the
        rest of a long one), to give back to them; None if there is nothing to give back.
        """
        command: Command | None = None
        try:
            command = parse_input(line)
            if command is not None:
                await self._run(command)
            return None
        except (UsageError, TransportError) as exc:
            self._failed(str(exc))
            return _give_back(command, getattr(exc, "unsent", ""))
        except (OSError, ConnectionError, TimeoutError) as exc:
            self._failed(f"network error: {exc}")
            return _give_back(command, "")

    def _failed(self, text: str) -> None:
        self.failures += 1
        self.out.error(text)

    async def _run(self, command: Command) -> None:
        name, args = command
        t = self.transport
        if name == "say":
            if self.room is None:
                raise UsageError("you are in no room: /join <room> first")
            await t.send(self.room, args[0])
        elif name == "join":
            room = Transport.check_room(args[0])
            await t.join(room, *args[1:])
            self.room = room
            self.out.info(f"now talking in #{room}")
        elif name == "part":
            leaving = Transport.check_room(args[0]) if args else self.room
            if leaving is None or leaving not in t.rooms:
                raise UsageError(f"not in #{leaving}" if leaving else "you are in no room")
            await t.part(leaving)
            if self.room == leaving:
                self.room = t.rooms[-1] if t.rooms else None
            self.out.info(f"left #{leaving}" + (f"; now talking in #{self.room}"
                                                if self.room else ""))
        elif name == "nick":
            await t.set_nick(args[0])
            self.out.info(f"you are now {t.nick}")
        elif name == "msg":
            await t.msg(args[0], args[1])
        elif name == "me":  # a CTCP ACTION, as IRC clients send it
            if self.room is None:
                raise UsageError("you are in no room: /join <room> first")
            await t.send(self.room, f"\x01ACTION {args[0]}\x01")
        elif name == "who":
            await self._who(args[0] if args else self.room)
        elif name == "topic":
            await self._topic(args[0] if args else None)
        elif name == "mode":
            await self.switch_mode(args[0])
        elif name == "reconnect":
            await self.reconnect()
        elif name == "stats":
            for text in stats_lines(t.mode, t.counters, time.monotonic() - self.started):
                self.out.info(text)
        elif name == "quit":
            await self.close()
        elif name == "help":
            for text in help_lines():
                self.out.info(text)

    async def _who(self, room: str | None) -> None:
        if room is None:
            raise UsageError("usage: /who <room> (you are in no room)")
        members = await self.transport.who(room)
        listed = ", ".join(f"{'@' if m.op else ''}{m.nick} ({m.info})" for m in members)
        self.out.info(f"#{Transport.check_room(room)}: {len(members)} member(s): {listed}")

    async def _topic(self, text: str | None) -> None:
        """Show the current room's topic, or set it (the topic event then shows it)."""
        if self.room is None:
            raise UsageError("you are in no room: /join <room> first")
        topic = await self.transport.topic(self.room, text)
        if text is None:
            self.out.info(f"topic of #{self.room}: {topic}" if topic
                          else f"#{self.room} has no topic")

    async def switch_mode(self, mode: str) -> None:
        """Replace the transport by one in ``mode``, resuming from the same place."""
        old = self.transport
        if mode == old.mode:
            self.out.info(f"already in {mode} mode")
            return
        self.out.info(f"switching from {old.mode} to {mode} ...")
        await self._replace(mode)
        self.out.info(f"now in {self.mode} mode")

    async def reconnect(self) -> None:
        """After the server closed the connection for good: connect again, same place."""
        if self.transport.state != "closed":
            raise UsageError(f"{self.transport.state}: nothing to reconnect")
        self.out.info(f"reconnecting in {self.mode} mode ...")
        await self._replace(self.mode)

    async def _replace(self, mode: str) -> None:
        """A new transport in ``mode`` resuming the old one's place (back to the old
        mode if ``mode`` cannot connect)."""
        old = self.transport
        self._switching = True
        try:
            exact = await old.settle()
            await old.close()
            try:
                new = await self._resume_in(mode, old, exact)
            except TransportError as exc:
                if mode == old.mode:
                    raise
                self.out.error(f"{mode}: {exc}; going back to {old.mode}")
                new = await self._resume_in(old.mode, old, exact)  # failing: the caller says
        finally:
            self._switching = False
        self.transport = new
        self.started = time.monotonic()

    async def _resume_in(self, mode: str, old: Transport, exact: bool) -> Transport:
        # Read the place only now: the old transport may show events while it closes.
        new = self._make(mode, old.nick)
        new.preset(old.rooms, dict(old.cursors.last), old.cursors.epoch, fanout=old.fanout,
                   exact=exact, keys=old.keys)
        await new.start()
        return new


def _give_back(command: Command | None, unsent: str) -> str | None:
    """The input line that gives the user back an unsent chat line or /msg (or its rest)."""
    if command is None or command.name not in ("say", "msg"):
        return None
    if command.name == "msg":
        return f"/msg {command.args[0]} {unsent or command.args[1]}"
    text = unsent or command.args[0]
    return "/" + text if text.startswith("/") else text
