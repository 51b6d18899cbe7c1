"""The transport base class: what every mode shares (state, counters, rooms, cursors).

A transport connects one user to the server in one *mode* and turns whatever the wire
brings into :class:`~chat.client.model.ChatEvent` callbacks.  Subclasses own the sockets;
this class owns the bookkeeping so that a transport can be swapped for another mid-session
(``/mode``) without losing the user's place: :meth:`Transport.preset` hands the rooms, the
per-room cursors and the QUIT/NICK memory of the old transport to the new one before it
starts.  Every event shown goes through :meth:`Transport._deliver`, which drops what a
room's cursor says was shown already and shows each QUIT/NICK once, naming no room.
"""

from __future__ import annotations

import dataclasses
import logging
import ssl
import time
from collections.abc import Callable, Iterable

from ..core.names import ROOM_RE, casefold
from .model import Backoff, ChatEvent, Counters, Cursors, Member, TransportError, key_change
from .presence import FANOUT_KINDS, FanOut

log = logging.getLogger(__name__)

EventCallback = Callable[[ChatEvent], None]
StateCallback = Callable[[str], None]
NoticeCallback = Callable[[str], None]


def client_context(insecure: bool = False) -> ssl.SSLContext:
    """The client side of TLS: the system's trusted CAs and a hostname check, or with
    ``insecure`` no check at all (a self-signed test certificate)."""
    context = ssl.create_default_context()
    if insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


class Transport:
    """Base of the modes; see :func:`chat.client.transports.make_transport`.

    Public attributes: ``mode``, ``counters``, ``state``, ``nick`` (the nick the server
    knows us by), ``rooms`` (joined rooms, without ``#``).  Optional keyword arguments tune
    the reconnect backoff (``backoff``/``backoff_max`` seconds), the request timeout, the
    long-poll ``wait``, irc mode's own heartbeat (``ping_interval``/``ping_timeout``), the
    SSE silence limit (``stream_timeout``), whether private messages are fetched at all
    (``inbox``; HTTP modes spend a request stream on them), the server ``password`` and
    ``tls`` (IRC over TLS, HTTPS, WSS; ``insecure``: without checking the certificate).
    """

    mode = ""

    def __init__(self, *, host: str, irc_port: int, http_port: int, nick: str,
                 interval: float = 1.0, on_event: EventCallback,
                 on_state: StateCallback | None = None,
                 on_notice: NoticeCallback | None = None,
                 backoff: float = 0.5, backoff_max: float = 15.0, timeout: float = 10.0,
                 wait: float = 25.0, ping_interval: float = 30.0, ping_timeout: float = 15.0,
                 stream_timeout: float = 45.0, inbox: bool = True,
                 password: str | None = None, tls: bool = False,
                 insecure: bool = False) -> None:
        self.host = host
        self.irc_port = irc_port
        self.http_port = http_port
        self.nick = nick
        self.interval = interval
        self.on_event = on_event
        self.on_state = on_state
        self.on_notice = on_notice
        self.backoff = backoff
        self.backoff_max = backoff_max
        self.timeout = timeout
        self.wait = wait
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.stream_timeout = stream_timeout
        self.inbox = inbox
        self.password = password
        self.tls = client_context(insecure) if tls else None  # TLS on every connection
        self.counters = Counters()
        self.state = "connecting"
        self.cursors = Cursors()
        self.fanout = FanOut()
        self.ended: str | None = None       # why the server closed us for good (no reconnect)
        self.on_left: Callable[[str, str], None] | None = None  # (room, why): we were removed
        self._rooms: dict[str, None] = {}   # joined rooms, in join order
        self.keys: dict[str, str] = {}      # room -> the key (+k) it is joined with
        self._closing = False
        self._handed_over = False  # preset cursors are exact up to the old transport's leaving

    # --- the public operations (subclasses implement the _do_* parts) ----------------------
    @property
    def rooms(self) -> list[str]:
        return list(self._rooms)

    def preset(self, rooms: Iterable[str], cursors: dict[str, int], epoch: object = None,
               *, fanout: FanOut | None = None, exact: bool = False,
               keys: dict[str, str] | None = None) -> None:
        """Before :meth:`start`: rooms to join at start, resuming after ``cursors``' ids.

        ``epoch`` is the server run the cursors belong to (None: unknown), ``fanout`` the
        memory of QUIT/NICK events shown, ``exact`` True if the cursors cover every event
        up to the previous transport's leaving (its :meth:`settle` returned True), ``keys``
        the keys of ``+k`` rooms.
        """
        for room in rooms:
            self._rooms[room] = None
        self.keys.update(keys or {})
        for room, last in cursors.items():
            self.cursors.set(room, last)
        self.cursors.epoch = epoch
        if fanout is not None:
            self.fanout = fanout
        self._handed_over = exact

    async def start(self) -> None:
        """Connect and register; join preset rooms.  Raises TransportError on failure."""
        raise NotImplementedError

    async def join(self, room: str, key: str | None = None) -> None:
        """Join ``room`` (no ``#``; ``key`` for a ``+k`` room); returns once the server
        confirmed.  The key is remembered: reconnects and ``/mode`` switches join with it."""
        raise NotImplementedError

    async def part(self, room: str) -> None:
        raise NotImplementedError

    async def send(self, room: str, text: str) -> None:
        """Send a message to ``room``; it comes back as an event like everyone else's."""
        raise NotImplementedError

    async def msg(self, nick: str, text: str) -> None:
        """Send a private message; it comes back as an event with ``to`` set."""
        raise NotImplementedError

    async def set_nick(self, nick: str) -> None:
        """Change nick (raises TransportError if refused)."""
        raise NotImplementedError

    async def who(self, room: str) -> list[Member]:
        raise NotImplementedError

    async def topic(self, room: str, text: str | None = None) -> str:
        """Set ``room``'s topic to ``text``, or read it (None); returns the topic now."""
        raise NotImplementedError

    async def settle(self) -> bool:
        """Before a ``/mode`` switch: stop receiving, fetch what is still on its way.

        True if the cursors now cover everything sent so far (the transport was connected).
        """
        return self.state == "connected"

    async def close(self) -> None:
        """Leave the server (QUIT / DELETE session) and close every socket.  Idempotent."""
        raise NotImplementedError

    # --- helpers for subclasses -----------------------------------------------------------
    @staticmethod
    def check_room(room: str) -> str:
        """``room`` without a leading ``#``; TransportError if it is not a legal room name."""
        name = room[1:] if room.startswith("#") else room
        if not ROOM_RE.match(name):
            raise TransportError(f"bad room name {room!r}: use letters, digits, _ and -")
        return name

    def _new_backoff(self) -> Backoff:
        return Backoff(self.backoff, self.backoff_max)

    def _set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            if self.on_state is not None:
                self.on_state(state)

    def _notice(self, text: str) -> None:
        log.debug("%s %s: %s", self.mode, self.nick, text)
        if self.on_notice is not None:
            self.on_notice(text)

    def _emit(self, event: ChatEvent) -> None:
        if event.kind == "tagmsg":  # typing notices: this client shows none
            return
        self.counters.events += 1
        self.on_event(event)

    def _deliver(self, event: ChatEvent) -> bool:
        """Emit ``event`` unless already shown: its room's cursor is past it, or it is
        another room's copy of a QUIT/NICK shown before.  QUIT/NICK name no room."""
        if event.kind == "kill":  # the last event of an HTTP user an operator killed
            self._killed(f"Killed ({event.nick} ({event.text}))")
            return False
        if event.room and not event.to and not self.cursors.accept(event.room, event.id):
            return False
        if not self.fanout.first(event):
            return False
        if event.room and event.kind in FANOUT_KINDS and not event.to:
            event = dataclasses.replace(event, room="")
        self._emit(event)
        if event.kind == "kick" and event.args and casefold(event.args[0]) == casefold(
                self.nick) and event.room in self._rooms:
            reason = f" ({event.text})" if event.text else ""
            self._left(event.room, f"kicked from #{event.room} by {event.nick}{reason}")
        elif event.kind == "mode" and event.room in self._rooms:
            key = key_change(event.text, event.args)
            if key:
                self.keys[event.room] = key
            elif key == "":
                self.keys.pop(event.room, None)
        return True

    def _left(self, room: str, why: str) -> None:
        """The server took ``room`` from us (a kick; ``why`` says so in a line): forget
        it, so that nothing joins it again by itself (a ``join`` does), and tell
        ``on_left`` (else a notice)."""
        self._rooms.pop(room, None)
        self.cursors.forget(room)
        self.keys.pop(room, None)
        if self.on_left is not None:
            self.on_left(room, why)
        else:
            self._notice(why)

    def _killed(self, reason: str) -> None:
        """An operator disconnected us (``reason``): final, as irc mode's ERROR after a KILL."""
        self._finish(reason)

    def _finish(self, reason: str) -> None:
        """The server closed us for good (``reason``): no reconnect; ``ended`` says why
        and the state becomes closed (the user of the transport tells the user)."""
        self.ended = reason
        log.info("%s %s: closed by the server for good: %s", self.mode, self.nick, reason)
        self._set_state("closed")

    def _alone(self, members: object) -> bool:
        """True if a join answer's member list is us alone (we made the room again)."""
        me = casefold(self.nick)
        return isinstance(members, list) and [casefold(str(m)) for m in members] == [me]

    @staticmethod
    def now() -> float:
        return time.time()
