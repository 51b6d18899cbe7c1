"""UDP registrations: a session's endpoint, its limits and its event datagrams (pure).

A :class:`Registration` ties one HTTP session to one UDP address.  While it lives it is
the session's user's hub sink (everything the hub pushes to that user leaves as one
datagram each, numbered) and one of the session's holds (so the session does not expire
while its client keeps the registration alive); the user's own room events come back to it
through the session's ``echo`` (the hub never pushes a user its own events).  No socket and
no clock here: the adapter (:mod:`chat.udp.server`) hands in ``now`` and a ``send``
function, and sweeps :meth:`Registry.expired`.

The limits (:class:`~chat.config.Config`): one registration per session (registering
again, from anywhere, moves it); a datagram larger than ``udp_max_datagram`` is dropped
unread, and an event that would not fit in one is sent as a ``big`` marker instead; a
registration without a keepalive for ``udp_timeout`` seconds ends; no answer is larger
than the datagram it answers (:func:`~chat.udp.datagrams.answer_fits`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from ..core.events import Cache, Event
from ..core.hub import EventLog
from ..core.stats import UdpStats
from ..http.sessions import HttpSession
from .datagrams import end, event_datagram

Address = tuple[str, int]
Send = Callable[[bytes, Address], None]
INBOX = ""  # the chain key of private messages


class Registration:
    """One session's UDP endpoint: the user's sink, a hold of the session."""

    __slots__ = ("id", "session", "addr", "seq", "last_seen", "prevs", "send", "stats",
                 "cap", "registry", "ended")
    transport = "udp"                 # what the members list shows for its user
    log: EventLog | None = None       # as a session hold it waits on no one log

    def __init__(self, registry: Registry, id: int, session: HttpSession, addr: Address,
                 now: float) -> None:
        self.registry = registry
        self.id = id
        self.session = session
        self.addr = addr
        self.seq = 0                   # event datagrams sent
        self.last_seen = now           # monotonic time of the last keepalive
        self.prevs: dict[str, int] = {}  # the last event id sent, per room ("" = private)
        self.send = registry.send
        self.stats = registry.stats
        self.cap = registry.max_datagram
        self.ended = False

    # --- the hub sink ---------------------------------------------------------------------------
    def deliver(self, event: Event, cache: Cache) -> None:
        """The hub's push (and our own events' echo): one numbered datagram."""
        if self.ended:
            return
        key = INBOX if event.private else event.target
        prev = self.prevs.get(key, 0)
        self.prevs[key] = event.id
        self.seq += 1
        data, big = event_datagram(self.seq, prev, event, self.cap)
        if big:
            self.stats.too_big += 1
        self.stats.deliveries += 1
        self.send(data, self.addr)
        if event.kind == "part" and event.nick == self.session.user.nick:
            self.prevs.pop(key, None)  # our own part: a later join starts the chain again

    def offer(self, event: Event, cache: Cache) -> None:
        """Transient events (typing, away, invitations) are not sent: each datagram links
        to the room's previous stored event, and one that no history keeps would read as
        a loss the client could never fetch."""

    def echo(self, event: Event) -> None:
        """One of the user's own room events (the hub pushes everyone else's)."""
        self.deliver(event, {})

    def dropped(self, reason: str) -> None:
        """The hub removed our user on someone else's change."""
        self.registry.end(self, reason)

    # --- the session hold ------------------------------------------------------------------------
    def end(self) -> None:
        """The session ended (``DELETE /api/sessions/me``, or elsewhere)."""
        self.registry.end(self, "Session ended")


class Registry:
    """Every registration, by session and by address (see the module docstring)."""

    def __init__(self, timeout: float, max_datagram: int, stats: UdpStats, send: Send) -> None:
        self.timeout = timeout
        self.max_datagram = max_datagram
        self.stats = stats
        self.send = send
        self.by_session: dict[HttpSession, Registration] = {}
        self.by_addr: dict[Address, Registration] = {}
        self.next_id = 1

    def __len__(self) -> int:
        return len(self.by_session)

    def register(self, session: HttpSession, addr: Address,
                 now: float) -> tuple[Registration, Literal["new", "moved", "same"]]:
        """Make ``addr`` the session's endpoint: a new registration, the session's old one
        moved here (a NAT rebinding, a new socket), or the same one refreshed."""
        taken = self.by_addr.get(addr)
        if taken is not None and taken.session is not session:
            self.end(taken, "Address taken over")  # its client is gone; the port was reused
        reg = self.by_session.get(session)
        if reg is None:
            reg = Registration(self, self.next_id, session, addr, now)
            self.next_id += 1
            self.by_session[session] = reg
            self.by_addr[addr] = reg
            session.holds.add(reg)
            session.echo = reg.echo
            session.user.sink = reg
            self.stats.registrations += 1
            self.stats.registrations_open += 1
            return reg, "new"
        reg.last_seen = now
        if reg.addr != addr:
            self.by_addr.pop(reg.addr, None)
            reg.addr = addr
            self.by_addr[addr] = reg
            self.stats.rebinds += 1
            return reg, "moved"
        return reg, "same"

    def refresh(self, session: HttpSession, addr: Address,
                now: float) -> Registration | None:
        """A keepalive: the session's registration refreshed (moved if ``addr`` is new);
        None if it has none."""
        if session not in self.by_session:
            return None
        reg, _how = self.register(session, addr, now)
        return reg

    def expired(self, now: float) -> list[Registration]:
        """Registrations without a keepalive for ``timeout`` seconds (none if 0)."""
        if self.timeout <= 0:
            return []
        cutoff = now - self.timeout
        return [r for r in self.by_session.values() if r.last_seen < cutoff]

    def end(self, reg: Registration, reason: str) -> None:
        """Forget ``reg``: tell its address why, stop being the user's sink and hold."""
        if reg.ended:
            return
        reg.ended = True
        self.stats.registrations_open -= 1
        self.stats.ended[reason] += 1
        if self.by_session.get(reg.session) is reg:
            del self.by_session[reg.session]
        if self.by_addr.get(reg.addr) is reg:
            del self.by_addr[reg.addr]
        session = reg.session
        session.holds.discard(reg)
        session.last_seen = max(session.last_seen, reg.last_seen)  # its keepalives counted
        if session.echo == reg.echo:
            session.echo = None
        if session.user.sink is reg:
            session.user.sink = None
        self.send(end(reason), reg.addr)

    def end_all(self, reason: str) -> None:
        for reg in list(self.by_session.values()):
            self.end(reg, reason)
