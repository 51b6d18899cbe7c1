"""One user's chat session: a transport plus the slash commands, for both front ends.

:class:`ChatSession` is what the interactive UI (:mod:`chat.client.ui`) and the scriptable
mode (:mod:`chat.client.script`) drive: they feed it input lines and give it an
:class:`Output` to show events, notices and errors on.  ``/mode`` swaps the transport for
another one that resumes from the old one's rooms and cursors, so no event is lost or
shown twice across the switch.
"""

from __future__ import annotations

import logging
import time
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
            if self._started and not (self._switching and state == "closed"):
                self.out.state(state)

        transport = make_transport(mode, nick=nick, on_event=on_event, on_state=on_state,
                                   on_notice=self.out.info, **self.settings)
        return transport

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

    async def handle(self, line: str) -> None:
        """Run one input line; problems are shown as one-line errors, never raised."""
        try:
            command = parse_input(line)
            if command is not None:
                await self._run(command)
        except (UsageError, TransportError) as exc:
            self.out.error(str(exc))
        except (OSError, ConnectionError, TimeoutError) as exc:
            self.out.error(f"network error: {exc}")

    async def _run(self, command: Command) -> None:
        name, args = command
        t = self.transport
        if name == "say":
            if self.room is None:
                raise UsageError("you are in no room: /join <room> first")
            await t.send(self.room, args[0])
        elif name == "join":
            room = Transport.check_room(args[0])
            await t.join(room)
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
        elif name == "who":
            await self._who(args[0] if args else self.room)
        elif name == "mode":
            await self.switch_mode(args[0])
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
        listed = ", ".join(f"{m.nick} ({m.info})" for m in members)
        self.out.info(f"#{Transport.check_room(room)}: {len(members)} member(s): {listed}")

    async def switch_mode(self, mode: str) -> None:
        """Replace the transport by one in ``mode``, resuming from the same place."""
        old = self.transport
        if mode == old.mode:
            self.out.info(f"already in {mode} mode")
            return
        self.out.info(f"switching from {old.mode} to {mode} ...")
        self._switching = True
        try:
            await old.close()
            # Read the place only now: the old transport may show events while it closes.
            rooms, cursors, epoch = old.rooms, dict(old.cursors.last), old.cursors.epoch
            new = self._make(mode, old.nick)
            new.preset(rooms, cursors, epoch)
            try:
                await new.start()
            except TransportError as exc:
                self.out.error(f"{mode}: {exc}; going back to {old.mode}")
                new = self._make(old.mode, old.nick)
                new.preset(rooms, cursors, epoch)
                await new.start()  # if this fails too, the caller shows it
                self.transport = new
                return
        finally:
            self._switching = False
        self.transport = new
        self.started = time.monotonic()
        self.out.info(f"now in {mode} mode")
