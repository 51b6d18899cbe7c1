"""One IRC client's protocol state: registration state, capabilities and an outbox (pure).

The session owns no socket and reads no clock.  The adapter (:mod:`chat.irc.server`)
feeds each received line to :func:`chat.irc.commands.receive` with the current
:class:`~chat.core.clock.Now`; command handlers (in :mod:`chat.irc.commands`, grouped by
topic) call the engine and queue replies here.  The adapter takes the queued bytes with
:meth:`Session.take_pending` when the session calls its owner's ``wakeup``.

The session is also the hub :class:`~chat.core.model.Sink` of its user: :meth:`deliver`
appends an event's wire bytes, encoded once per tag variant per publish, to the outbox;
:meth:`offer` does so only for the kinds the client asked for by a cap (typing notices,
away-notify, ...); :meth:`dropped` tells it the hub removed its user (a KILL, which also
pushed the KILL line first; a lost node): the adapter closes the connection.

``labeled-response``: while a labelled command is answered, the lines the session sends
(replies, echoes; not pushes from others) are held in a :class:`Labeled` and go out
labelled once the command is done: one line with the label, several in a
``labeled-response`` batch, none as ``ACK``.

Engine writes may settle later (a remote engine): :meth:`Session.expect` runs the
continuation when they do and, meanwhile, counts the session as ``waiting`` so the adapter
holds the client's next lines back until the owner's ``resume`` is called: a client's commands
take effect in the order it sent them.

The session never closes anything itself: after :meth:`end` (or a QUIT / bad password)
its state is CLOSED and the adapter flushes and closes the socket.

States (``State``): REGISTERING -> REGISTERED -> CLOSED, or REGISTERING -> CLOSED;
:data:`TRANSITIONS` is the whole table and :meth:`Session._move` refuses anything else.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import ClassVar, Protocol, TypeVar

from ..core.errors import HubError
from ..core.events import PRESENCE_KINDS, Cache, Event
from ..core.heartbeat import Heartbeat
from ..core.hub import User
from ..core.pending import Pending
from ..core.sharing import per_server
from ..core.stats import TransportStats
from ..engine.base import Engine
from . import numerics as N
from .caps import (
    CAP_EXTENDED_JOIN,
    CAP_MESSAGE_TAGS,
    CAP_SERVER_TIME,
    CAPABILITIES,
    OFFERED,
    ServerInfo,
)
from .events import TAG_EXTENDED_JOIN, TAG_MSGID, TAG_TIME, encode_event
from .message import add_tags, encode, escape_tag_value, format_line

T = TypeVar("T")


class State(enum.Enum):
    REGISTERING = "registering"
    REGISTERED = "registered"
    CLOSED = "closed"


TRANSITIONS = {
    State.REGISTERING: frozenset({State.REGISTERED, State.CLOSED}),
    State.REGISTERED: frozenset({State.CLOSED}),
    State.CLOSED: frozenset(),
}


class Owner(Protocol):
    """What a session calls back: its adapter (one object, not four bound methods, since an
    idle connection's memory is mostly such per-connection objects)."""

    def wakeup(self) -> None:
        """The outbox went from empty to not (or past the send queue limit): flush soon."""

    def lazy_wakeup(self) -> None:
        """The outbox holds presence lines only: they may wait for the presence tick."""

    def resume(self) -> None:
        """The engine writes the session waited for have settled: go on with input."""

    def dropped(self, reason: str) -> None:
        """The hub removed our user on someone else's change (a KILL, a lost node)."""


SELF_MESSAGE_KINDS = frozenset({"message", "notice", "tagmsg"})
# Presence lines a session holds for the presence tick at most; the next flush takes them
# once there are this many.  The tick may wait up to --presence-max under a join storm, and
# what members hold meanwhile is memory the allocator keeps: 8 lines bound it at 19,000
# joined users (2.38 KiB each after the storm; 16 lines: 2.49, no bound: 2.62).
LAZY_LINES = 8


class Labeled:
    """The answer to one labelled command, held until the command is done."""

    __slots__ = ("label", "lines")

    def __init__(self, label: str) -> None:
        self.label = label
        self.lines: list[bytes] = []


class Registration:
    """What a connection brings before it is a user: its host, USER's name and realname,
    PASS, an open CAP negotiation.  The session drops it once registered (32 bytes less per
    user than five slots of its own; the hub's User keeps what lasts, equal strings once)."""

    __slots__ = ("host", "username", "realname", "password", "negotiating")

    def __init__(self, host: str) -> None:
        self.host = host
        self.username: str | None = None
        self.realname = ""
        self.password: str | None = None
        self.negotiating = False  # CAP LS/REQ seen, CAP END not yet


class Session:
    """The protocol state of one connection (see the module docstring for the contract)."""

    __slots__ = ("heartbeat", "owner", "state", "nick", "registration", "caps",
                 "variant", "user", "pending", "pending_size", "batches", "labeled",
                 "close_reason", "pending_lazy", "waiting")

    # What every session of one server shares: class attributes of the subclass that
    # :meth:`of_server` makes once per server, not four slots per session (32 bytes).
    engine: ClassVar[Engine]
    info: ClassVar[ServerInfo]
    stats: ClassVar[TransportStats]
    sendq: ClassVar[int]

    @classmethod
    def of_server(cls, engine: Engine, info: ServerInfo, stats: TransportStats,
                  sendq: int) -> type[Session]:
        """The Session class of one server: ``of_server(...)(host, heartbeat, owner)``."""
        return per_server(cls, engine=engine, info=info, stats=stats, sendq=sendq)

    def __init__(self, host: str, heartbeat: Heartbeat, owner: Owner) -> None:
        self.heartbeat = heartbeat
        self.owner = owner        # its wakeup: pending went from empty to not, or overflows
        # Presence lines (JOIN/PART/QUIT/NICK) alone only need a lazy flush (the owner's
        # lazy_wakeup): a set-up burst into big channels then costs one write per member per
        # presence tick (or per LAZY_LINES lines), not per join.
        self.pending_lazy = False  # pending holds presence lines only, awaiting a lazy flush
        self.state = State.REGISTERING
        self.nick: str | None = None
        self.registration: Registration | None = Registration(host)  # None once registered
        self.caps = 0
        self.variant = 0          # tag variant: TAG_TIME | TAG_MSGID bits
        self.user: User | None = None
        self.pending: list[bytes] | None = None  # queued bytes (None when empty: idle is cheap)
        self.pending_size = 0
        self.batches = 0          # batch reference counter
        self.labeled: Labeled | None = None  # the labelled command being answered
        self.close_reason: str | None = None
        self.waiting = 0          # engine writes not settled yet (input is held meanwhile)

    # --- output --------------------------------------------------------------------------
    def deliver(self, event: Event, cache: Cache) -> None:
        """Queue ``event`` (the hub's push).

        The broadcast hot path (called once per member per message): one dict lookup
        for bytes formatted once per tag variant per publish, one append, and a wakeup
        only for the first line of a flush (or past the send queue limit).
        """
        variant = self.variant
        data = cache.get(variant)
        if data is None:
            data = cache[variant] = encode_event(event, variant)
        if self.labeled is not None and event.nick == self.nick \
                and event.kind in SELF_MESSAGE_KINDS:
            # a message to ourselves, pushed back to us, answers our labelled command
            self.labeled.lines.append(data)
            self.stats.deliveries += 1
            return
        pending = self.pending
        if pending is None:
            self.pending = [data]
            if event.kind in PRESENCE_KINDS:
                self.pending_lazy = True
                self.owner.lazy_wakeup()
            else:
                self.owner.wakeup()
        else:
            pending.append(data)
            if self.pending_lazy and (event.kind not in PRESENCE_KINDS
                                      or len(pending) >= LAZY_LINES):
                self.pending_lazy = False
                self.owner.wakeup()  # a message does not wait for the presence lines before it
        size = self.pending_size + len(data)
        self.pending_size = size
        self.stats.deliveries += 1
        if size > self.sendq:
            self.owner.wakeup()

    def offer(self, event: Event, cache: Cache) -> None:
        """Queue ``event`` if the client enabled the cap its kind needs (:data:`OFFERED`)."""
        if self.caps & OFFERED.get(event.kind, 0):
            self.deliver(event, cache)

    def send_bytes(self, data: bytes) -> None:
        """Queue already encoded bytes (held back while a labelled command is answered)."""
        labeled = self.labeled
        if labeled is not None:
            labeled.lines.append(data)
            return
        pending = self.pending
        if pending is None:
            self.pending = [data]
            self.owner.wakeup()
        else:
            pending.append(data)
            if self.pending_lazy:
                self.pending_lazy = False
                self.owner.wakeup()
        size = self.pending_size + len(data)
        self.pending_size = size
        if size > self.sendq:
            self.owner.wakeup()

    def send_line(self, line: str) -> None:
        """Queue one formatted line (CR LF is added)."""
        self.send_bytes(encode(line))

    def send(self, command: str, *params: str) -> None:
        """Queue a line from the server: ``:<server> COMMAND params``."""
        self.send_line(format_line(command, *params, source=self.info.name))

    def reply(self, code: str, *params: str, trailing: bool = False) -> None:
        """Queue a numeric to this client; error numerics are counted in stats.errors.

        ``trailing`` forces ``:`` on the last parameter (for lists, which may be one word).
        """
        if code[0] in "45":
            self.stats.errors[code] += 1
        middle = [safe_param(p) for p in params[:-1]]
        self.send_line(format_line(code, self.nick or "*", *middle, *params[-1:],
                                   source=self.info.name, trailing=trailing))

    def hub_error(self, exc: HubError) -> None:
        """Answer a refused engine write with its numeric (:data:`numerics.HUB_ERRORS`)."""
        self.reply(N.HUB_ERRORS.get(exc.code, N.ERR_UNKNOWNERROR), *exc.params, exc.message)

    def fail(self, command: str, code: str, *context: str) -> None:
        """An IRCv3 standard reply: ``FAIL <command> <code> [context...] :description``."""
        self.stats.errors[f"FAIL {code}"] += 1
        self.send("FAIL", command, code, *context)

    def hub_fail(self, command: str, exc: HubError) -> None:
        """Answer a refusal with FAIL when :data:`numerics.FAIL_CODES` has its code, else
        with its numeric."""
        code = N.FAIL_CODES.get(exc.code)
        if code is None:
            self.hub_error(exc)
        else:
            self.fail(command, code, *exc.params, exc.message)

    def echo(self, event: Event) -> None:
        """Send our own event (JOIN, PART, NICK, TOPIC, echo-message) back to us."""
        self.send_bytes(encode_event(event, self.variant))

    def dropped(self, reason: str) -> None:
        """The hub removed our user on someone else's change: the connection must go."""
        if self.user is None or self.state is State.CLOSED:
            return  # our own quit
        self.user = None
        self.owner.dropped(reason)

    def take_pending(self) -> list[bytes]:
        """Hand the queued bytes to the adapter (the one way out) and start a new buffer."""
        pending = self.pending
        self.pending = None
        self.pending_size = 0
        self.pending_lazy = False
        return pending or []

    # --- engine writes ---------------------------------------------------------------------
    def expect(self, pending: Pending[T], on_ok: Callable[[T], None],
               on_error: Callable[[HubError], None] | None = None) -> None:
        """Run ``on_ok`` (or ``on_error``, default :meth:`hub_error`) when ``pending`` settles.

        Until then the session is ``waiting`` and the adapter holds further input.
        """
        fail = self.hub_error if on_error is None else on_error
        if pending.done:  # the in-memory engine: no bookkeeping at all
            pending.then(on_ok, fail)
            return
        self.waiting += 1
        pending.then(lambda value: self._settled(on_ok, value),
                     lambda exc: self._settled(fail, exc))

    def _settled(self, callback: Callable[[T], None], value: T) -> None:
        # Called even after the session closed: a continuation may have to undo (a nick
        # registered for a connection that has gone meanwhile must be released).
        self.waiting -= 1
        callback(value)
        if not self.waiting:
            self.end_label()
            if self.state is not State.CLOSED:
                self.owner.resume()

    # --- labeled-response ------------------------------------------------------------------
    def start_label(self, label: str) -> None:
        """Hold what the next command sends, to label it (see the module docstring)."""
        self.labeled = Labeled(label)

    def end_label(self) -> None:
        """The labelled command is done (no write still pending): send its answer."""
        labeled = self.labeled
        if labeled is None or self.waiting:
            return
        self.labeled = None
        tag = "label=" + escape_tag_value(labeled.label)
        lines = labeled.lines
        if not lines:
            self.send_line(format_line("ACK", source=self.info.name, tags={"label":
                                                                          labeled.label}))
        elif len(lines) == 1:
            self.send_bytes(add_tags(lines[0], tag))
        else:
            self.batches += 1
            ref = f"l{self.batches}"
            self.send_bytes(add_tags(encode(format_line(
                "BATCH", f"+{ref}", "labeled-response", source=self.info.name)), tag))
            for line in lines:
                self.send_bytes(add_tags(line, f"batch={ref}", unless="batch="))
            self.send("BATCH", f"-{ref}")

    # --- lifecycle -----------------------------------------------------------------------
    def set_caps(self, caps: int) -> None:
        """Enable exactly ``caps`` (bits of :data:`caps.CAPABILITIES`)."""
        self.caps = caps
        self.variant = ((TAG_TIME if caps & CAP_SERVER_TIME else 0)
                        | (TAG_MSGID if caps & CAP_MESSAGE_TAGS else 0)
                        | (TAG_EXTENDED_JOIN if caps & CAP_EXTENDED_JOIN else 0))

    def enabled_caps(self) -> str:
        return " ".join(name for name, bit in CAPABILITIES.items() if self.caps & bit)

    def registered(self, user: User, mono: float) -> None:
        """The engine accepted our nick: the session is registered from ``mono`` on."""
        self.user = user
        self.nick = user.nick
        self.registration = None
        self._move(State.REGISTERED)
        self.heartbeat.register(mono)

    def line_too_long(self) -> None:
        """The adapter dropped a line over the length limit: tell the client (417)."""
        self.reply(N.ERR_INPUTTOOLONG, "Input line was too long")

    def end(self, reason: str, now: float, error: str | None = None,
            quit_hub: bool = True) -> None:
        """Queue the ERROR line and leave the hub (QUIT with ``reason`` to shared channels).

        ``error`` replaces the default ``Closing Link: <reason>`` text.  With ``quit_hub``
        False the caller calls :meth:`leave_hub` later (server shutdown tells everybody
        first).  Idempotent.
        """
        if self.state is State.CLOSED:
            return
        self._move(State.CLOSED)
        self.close_reason = reason
        labeled, self.labeled = self.labeled, None
        for line in labeled.lines if labeled is not None else ():
            self.send_bytes(line)  # what was answered so far, unlabelled: we are closing
        self.send_line(format_line("ERROR", error if error is not None else
                                   f"Closing Link: {reason}"))
        if quit_hub:
            self.leave_hub(reason, now)

    def leave_hub(self, reason: str, now: float) -> None:
        """Quit the hub (without queueing anything); safe to call more than once."""
        user, self.user = self.user, None
        if user is not None:
            self.engine.quit(user, reason, now)

    def send_ping(self) -> None:
        """The heartbeat asks for a PING."""
        self.send("PING", self.info.name)

    def send_isupport(self) -> None:
        for tokens in self.info.isupport:
            self.reply(N.RPL_ISUPPORT, *tokens, "are supported by this server")

    def _move(self, new: State) -> None:
        if new not in TRANSITIONS[self.state]:
            raise RuntimeError(f"illegal session transition {self.state} -> {new}")
        self.state = new

    def __repr__(self) -> str:
        return f"Session({self.nick or '*'}, {self.state.value})"


def safe_param(param: str) -> str:
    """A client-supplied value made safe as a middle parameter of a reply."""
    if not param:
        return "*"
    if " " in param or param[0] == ":":
        return param.replace(" ", "_").lstrip(":") or "*"
    return param
