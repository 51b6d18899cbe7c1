"""What every client transport hands to its user: events, counters, errors, backoff (pure).

No I/O here.  :class:`ChatEvent` and :class:`Counters` are the public data of
:mod:`chat.client.transports` (re-exported there); :class:`Cursors` is the "no loss, no
duplicates" bookkeeping shared by the IRC and HTTP transports.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, NamedTuple

from ..core.modes import decode_changes

MODES = ("irc", "ws", "sse", "longpoll", "poll", "poll-close", "udp")
STATES = ("connecting", "connected", "reconnecting", "closed")


@dataclass(slots=True)
class ChatEvent:
    """One received event.

    ``room`` is the room name without ``#``; it is ``""`` for private messages (then ``to`` is
    the recipient's nick) and for IRC QUIT/NICK lines, which the server sends once for all
    shared rooms.  ``id`` is the server's event id (the IRC ``msgid``), 0 if the server gave
    none; ``ts`` the server timestamp and ``received`` the local ``time.time()`` on arrival.
    ``args`` holds what a ``kick`` (the nick kicked) or a ``mode`` (the mode parameters, in
    order) acts on.  An ``invite`` is private (``to`` is us) and names the room invited to.
    """

    room: str
    id: int
    ts: float
    kind: str
    nick: str
    text: str
    received: float
    to: str = ""
    recovered: bool = False  # udp mode: lost on the way, fetched over HTTP
    args: tuple[str, ...] = ()

    @property
    def delay_ms(self) -> float:
        """How long the event took to reach us: local arrival minus the server timestamp."""
        return (self.received - self.ts) * 1000.0

    @property
    def private(self) -> bool:
        return self.to != ""

    def to_json(self) -> dict[str, Any]:
        """The scriptable-mode record: id, ts, kind, nick, text, delay_ms (plus room/to)."""
        out: dict[str, Any] = {"id": self.id, "ts": self.ts, "kind": self.kind,
                               "nick": self.nick, "text": self.text,
                               "delay_ms": round(self.delay_ms, 3), "room": self.room}
        if self.to:
            out["to"] = self.to
        if self.recovered:
            out["recovered"] = True
        if self.kind == "kick" and self.args:
            out["target"] = self.args[0]
        elif self.kind == "mode":
            out["args"] = list(self.args)
        return out


@dataclass(slots=True)
class Counters:
    """Everything the status line and the compare lab show about one transport."""

    requests: int = 0            # HTTP requests sent (irc: lines sent)
    empty_polls: int = 0         # poll responses with no event
    bytes_in: int = 0            # bytes read from sockets (headers included)
    bytes_out: int = 0           # bytes written to sockets
    connections_opened: int = 0  # TCP connects (handshakes)
    reconnects: int = 0
    heartbeat_rtt_ms: float | None = None
    events: int = 0
    request_time_ms: float = 0.0  # summed over the requests that did not wait (HTTP modes)
    timed_requests: int = 0
    datagrams_in: int = 0        # udp: datagrams received (events, acks)
    datagrams_out: int = 0       # udp: registrations and keepalives sent
    lost: int = 0                # udp: event datagrams that never came (within the window)
    reordered: int = 0           # udp: event datagrams that came after a later one
    recovered: int = 0           # udp: events shown after fetching them over HTTP
    late: int = 0                # udp: datagrams that came after their event was fetched


class Member(NamedTuple):
    """One line of a /who answer."""

    nick: str
    info: str  # "irc", "http", a user@host, idle time ... whatever the server tells
    op: bool = False  # a room operator


class TransportError(Exception):
    """A refused or failed operation, with a one-line message fit to show a user.

    ``unsent`` is the part of a message that did not go out (all of it, unless the first
    pieces of a long one did), so the front end can give it back to the user.
    """

    def __init__(self, message: str, unsent: str = "") -> None:
        super().__init__(message)
        self.unsent = unsent


def error_reason(exc: BaseException) -> str:
    """A short reason for a failed connection or request (``Connection refused`` ...)."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


class Backoff:
    """Exponential backoff with jitter: ``initial * 2**n`` capped at ``maximum``.

    Each delay is drawn uniformly from the upper half of the current step ("equal jitter"),
    so a crowd of clients cut off together does not come back in lockstep, yet no client
    waits less than half the step.
    """

    __slots__ = ("initial", "maximum", "attempt", "rng")

    def __init__(self, initial: float, maximum: float, rng: random.Random | None = None) -> None:
        self.initial = initial
        self.maximum = max(initial, maximum)
        self.attempt = 0
        self.rng = rng or random.Random()

    def next_delay(self) -> float:
        step = min(self.maximum, self.initial * (2 ** min(self.attempt, 30)))
        self.attempt += 1
        return float(step * self.rng.uniform(0.5, 1.0))

    def reset(self) -> None:
        self.attempt = 0


RESTARTED = "the server restarted: carrying on after the last event seen"


class Cursors:
    """The last event id seen per room, and the server run (epoch) those ids belong to.

    ``accept(room, id)`` is True only for an id newer than the room's cursor (and then moves
    the cursor), so an event replayed after a reconnect is never shown twice.  Our server's
    ids never repeat across runs, so a new run (a changed ``epoch``) keeps the cursors: they
    read the new run's events after them.  A server whose ids went backwards (``next``
    below ``since``, a join below the cursor) did restart numbering: :meth:`restarted`
    forgets every cursor so its new events are not dropped as "duplicates".  The ``epoch``
    is None when not known (irc mode cannot see it); the next epoch seen is then adopted.
    """

    __slots__ = ("last", "epoch")

    def __init__(self) -> None:
        self.last: dict[str, int] = {}
        self.epoch: Any = None

    def get(self, room: str) -> int | None:
        return self.last.get(room)

    def set(self, room: str, last_id: int) -> None:
        self.last[room] = last_id

    def forget(self, room: str) -> None:
        self.last.pop(room, None)

    def accept(self, room: str, event_id: int) -> bool:
        """True if ``event_id`` is new for ``room`` (the cursor then moves to it)."""
        if event_id <= 0:  # the server gave no id: nothing to deduplicate against
            return True
        if event_id <= self.last.get(room, 0):
            return False
        self.last[room] = event_id
        return True

    def see_epoch(self, epoch: Any) -> bool:
        """Record the server run seen now; True if it is a new run (cursors stay valid)."""
        if epoch is None:
            return False
        changed = self.epoch is not None and epoch != self.epoch
        self.epoch = epoch
        return changed

    def new_run(self) -> None:
        """A new server run seen where its epoch is not (irc mode): keep the cursors and
        adopt the next epoch seen."""
        self.epoch = None

    def restarted(self, epoch: Any = None) -> None:
        """The server restarted its ids (into run ``epoch``, None if unknown): every known
        room replays from its first event."""
        for room in self.last:
            self.last[room] = 0
        self.epoch = epoch


def event_from_json(room: str, data: dict[str, Any], received: float, to: str = "") -> ChatEvent:
    """A :class:`ChatEvent` from the HTTP API's event object ``{id, ts, kind, nick, text}``
    (a ``kick``'s ``target`` and a ``mode``'s ``args`` go to ``args``; an ``invite``, found
    among private messages, keeps the room it names)."""
    kind = str(data.get("kind") or "message")
    if kind == "kick":
        args: tuple[str, ...] = (str(data.get("target") or ""),)
    else:
        args = tuple(str(arg) for arg in data.get("args") or ())
    if kind == "invite":
        room = str(data.get("room") or room)
    return ChatEvent(room=room, id=int(data.get("id") or 0), ts=float(data.get("ts") or received),
                     kind=kind, nick=str(data.get("nick") or data.get("from") or ""),
                     text=str(data.get("text") or ""), received=received,
                     to=to or str(data.get("to") or ""), args=args)


def key_change(modes: str, args: tuple[str, ...] | list[str]) -> str | None:
    """The room key after a MODE change ``modes`` with ``args``: the new key, ``""`` if it
    was removed, None if the change leaves the key alone (read by the hub's own decoder)."""
    return next((c.param if c.adding else "" for c in reversed(decode_changes(modes, tuple(args)))
                 if c.mode == "k"), None)
