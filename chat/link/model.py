"""What a network path does to the bytes that cross it (pure: every call takes ``now``).

The link emulator (:mod:`chat.link.relay`) relays each client connection to the server and
asks this model, for every chunk of bytes and every FIN, *when* it reaches the other side,
or whether it does at all.  Nothing here reads a clock or touches a socket, so the
behaviour is testable with made-up times and reproducible with a seed.

A TCP connection is a :class:`Flow`:

* **delay**: each way takes ``rtt / 2``, give or take ``jitter`` (uniform), and the
  bytes stay in order (TCP delivers a byte stream: a chunk never overtakes an earlier one);
* **handshake**: a new connection's first bytes leave only once one RTT has passed since it
  opened (SYN, SYN-ACK, then the first data with the ACK), so a request on a fresh
  connection arrives after ``1.5 x rtt`` instead of ``0.5 x rtt``; once per connection;
* **bandwidth**: each way sends at most ``bandwidth`` bytes per second (a queue forms);
* **loss**: a lost segment is sent again after a retransmission timeout, and everything
  behind it waits for it (head-of-line blocking): TCP loses nothing, it is late instead;
* **NAT timeout**: once the flow was idle that long, the middlebox has forgotten it: every
  later byte, either way, is black-holed (no FIN, no RST: a half-open connection).  Both
  directions count as traffic that keeps a mapping alive;
* **proxy timeout**: once the flow was idle that long, the proxy closes both sides (FIN),
  like a reverse proxy's read timeout.  The adapter asks :meth:`Flow.deadline` when.

The states and their moves are the table :data:`TRANSITIONS`.  Datagrams (the UDP lane)
go through a :class:`DatagramPath`: the same delays, but each datagram on its own (jitter
reorders them), lost for good with probability ``loss`` or by number (``drop``), and a
:class:`NatTable` whose mappings expire after ``nat_timeout``: the next datagram from the
client gets a new mapping, and with it a new outside port (what the server sees).
"""

from __future__ import annotations

import enum
import math
import random
from dataclasses import asdict, dataclass
from typing import Any

from .units import format_duration, format_rate

NEVER = math.inf
RTO_MIN = 0.2           # seconds: Linux's least retransmission timeout (TCP_RTO_MIN)
FLOW_RECORDS_KEPT = 10_000


class Direction(enum.IntEnum):
    """Which way bytes travel."""

    UP = 0    # client -> server
    DOWN = 1  # server -> client


@dataclass(frozen=True, slots=True)
class LinkSettings:
    """What the emulated path does; every figure ``0`` (or empty) turns its effect off."""

    rtt: float = 0.0            # seconds, there and back
    jitter: float = 0.0         # seconds each one-way delay may vary, up or down
    bandwidth: float = 0.0      # bytes per second, each way
    nat_timeout: float = 0.0    # seconds idle before a NAT forgets the flow (black hole)
    proxy_timeout: float = 0.0  # seconds idle before a proxy closes the flow (FIN both ways)
    loss: float = 0.0           # share of segments (TCP: late) or datagrams (lost) lost
    drop: tuple[int, ...] = ()  # datagrams towards the client dropped by number (1-based)
    seed: int | None = None     # random seed for jitter and loss (None: unpredictable)

    def __post_init__(self) -> None:
        for name in ("rtt", "jitter", "bandwidth", "nat_timeout", "proxy_timeout", "loss"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        if self.loss > 1:
            raise ValueError("loss is a share: at most 1 (100%)")

    @property
    def one_way(self) -> float:
        return self.rtt / 2

    @property
    def retransmit_after(self) -> float:
        """How much later a lost TCP segment arrives: one retransmission timeout."""
        return max(RTO_MIN, 2 * self.rtt)

    @property
    def emulates(self) -> bool:
        """True if the path does anything at all (otherwise it is a plain relay)."""
        return any((self.rtt, self.jitter, self.bandwidth, self.nat_timeout,
                    self.proxy_timeout, self.loss, self.drop))

    def describe(self) -> str:
        """One line for a report: ``rtt 50ms ±5ms, 1% loss, NAT forgets idle flows ...``."""
        if not self.emulates:
            return "no emulation (a plain relay: loopback delays only)"
        parts = []
        if self.rtt or self.jitter:
            parts.append(f"rtt {format_duration(self.rtt)}"
                         + (f" ±{format_duration(self.jitter)} jitter" if self.jitter else ""))
        if self.bandwidth:
            parts.append(f"{format_rate(self.bandwidth)} each way")
        if self.loss:
            parts.append(f"{self.loss * 100:g}% loss")
        if self.drop:
            parts.append(f"datagrams {','.join(map(str, self.drop))} to the client dropped")
        if self.nat_timeout:
            parts.append(f"a NAT forgets flows idle for {format_duration(self.nat_timeout)}")
        if self.proxy_timeout:
            parts.append(f"a proxy closes flows idle for "
                         f"{format_duration(self.proxy_timeout)}")
        return ", ".join(parts)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["drop"] = list(self.drop)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LinkSettings:
        return cls(**{**data, "drop": tuple(data.get("drop") or ())})


class Pipe:
    """One direction of a path: when bytes sent at ``now`` arrive.

    ``ordered`` (a TCP byte stream): nothing overtakes what was sent before it.  Unordered
    (datagrams): each gets its own delay, so jitter can reorder them.
    """

    __slots__ = ("settings", "rng", "ordered", "free_at", "last_due")

    def __init__(self, settings: LinkSettings, rng: random.Random, ordered: bool) -> None:
        self.settings = settings
        self.rng = rng
        self.ordered = ordered
        self.free_at = -NEVER  # when the sender's link is free again (bandwidth)
        self.last_due = -NEVER

    def due(self, now: float, size: int, lost: bool = False) -> tuple[float, bool]:
        """``(arrival time, overtakes)``: ``overtakes`` if it arrives before something sent
        earlier (only possible when unordered)."""
        s = self.settings
        depart = now
        if s.bandwidth > 0:
            depart = max(now, self.free_at) + size / s.bandwidth
            self.free_at = depart
        delay = s.one_way
        if s.jitter:
            delay = max(0.0, delay + self.rng.uniform(-s.jitter, s.jitter))
        due = depart + delay + (s.retransmit_after if lost else 0.0)
        if self.ordered:
            due = max(due, self.last_due)
        overtakes = due < self.last_due
        self.last_due = max(self.last_due, due)
        return due, overtakes


class FlowState(enum.Enum):
    OPEN = "open"
    CLIENT_CLOSED = "client closed"    # the client's FIN passed; the server may still send
    SERVER_CLOSED = "server closed"    # the server's FIN passed; the client may still send
    CLOSED = "closed"                  # both FINs passed
    BLACKHOLED = "black-holed"         # the NAT forgot it: nothing passes, either way
    CUT = "cut by the proxy"           # the proxy closed both sides
    RESET = "reset"                    # one side aborted (RST); the other is aborted too


class FlowEvent(enum.Enum):
    FIN_UP = "client FIN"
    FIN_DOWN = "server FIN"
    NAT_IDLE = "NAT timeout"
    PROXY_IDLE = "proxy timeout"
    RESET = "reset"


_LIVE = (FlowState.OPEN, FlowState.CLIENT_CLOSED, FlowState.SERVER_CLOSED)
# (state, event) -> next state.  A move that is not here leaves the state as it is (a FIN
# into a black hole is noted, not passed on; nothing revives a finished flow).
TRANSITIONS: dict[tuple[FlowState, FlowEvent], FlowState] = {
    (FlowState.OPEN, FlowEvent.FIN_UP): FlowState.CLIENT_CLOSED,
    (FlowState.OPEN, FlowEvent.FIN_DOWN): FlowState.SERVER_CLOSED,
    (FlowState.CLIENT_CLOSED, FlowEvent.FIN_DOWN): FlowState.CLOSED,
    (FlowState.SERVER_CLOSED, FlowEvent.FIN_UP): FlowState.CLOSED,
    **{(state, FlowEvent.NAT_IDLE): FlowState.BLACKHOLED for state in _LIVE},
    **{(state, FlowEvent.PROXY_IDLE): FlowState.CUT for state in _LIVE},
    **{(state, FlowEvent.RESET): FlowState.RESET for state in _LIVE},
}
PASSING = frozenset(_LIVE)  # states in which bytes still cross


class Flow:
    """One relayed TCP connection (see the module docstring).

    The adapter calls :meth:`receive` for every chunk read from either side and delivers it
    at the returned time (None: it never arrives), :meth:`fin` / :meth:`reset` when a side
    closes, and :meth:`expire` once :meth:`deadline` has passed.
    """

    __slots__ = ("settings", "rng", "pipes", "opened_at", "ready_at", "last_active", "state",
                 "first_fin", "closed_at", "blackholed_at", "cut_at", "handshake_waited",
                 "lost_segments", "blackholed_bytes", "bytes", "segments")

    def __init__(self, settings: LinkSettings, now: float,
                 rng: random.Random | None = None) -> None:
        self.settings = settings
        self.rng = rng or random.Random(settings.seed)
        self.pipes = (Pipe(settings, self.rng, True), Pipe(settings, self.rng, True))
        self.opened_at = now
        self.ready_at = now + settings.rtt  # the three-way handshake
        self.last_active = now
        self.state = FlowState.OPEN
        self.first_fin: Direction | None = None      # who closed first
        self.closed_at: list[float | None] = [None, None]  # each side's FIN/RST, by Direction
        self.blackholed_at: float | None = None
        self.cut_at: float | None = None
        self.handshake_waited = False  # the first bytes waited for the handshake
        self.lost_segments = 0
        self.blackholed_bytes = 0
        self.bytes = [0, 0]
        self.segments = [0, 0]

    def _move(self, event: FlowEvent) -> None:
        self.state = TRANSITIONS.get((self.state, event), self.state)

    def notice_idle(self, now: float) -> None:
        """Black-hole the flow if the NAT forgot it before ``now`` (no timer needed: the
        next byte finds out, or whoever asks)."""
        timeout = self.settings.nat_timeout
        if timeout and self.state in PASSING and now - self.last_active >= timeout:
            self.blackholed_at = self.last_active + timeout
            self._move(FlowEvent.NAT_IDLE)

    def receive(self, direction: Direction, size: int, now: float) -> float | None:
        """``size`` bytes arrived from one side at ``now``: when the other side gets them,
        or None if they never do (black-holed, or the flow is over)."""
        self.notice_idle(now)
        if self.state is FlowState.BLACKHOLED:
            self.blackholed_bytes += size
            return None
        if self.state not in PASSING:
            return None
        self.last_active = now
        self.bytes[direction] += size
        self.segments[direction] += 1
        start = now
        if now < self.ready_at:
            start = self.ready_at
            self.handshake_waited = True
        settings = self.settings
        lost = settings.loss > 0 and self.rng.random() < settings.loss
        if lost:
            self.lost_segments += 1
        return self.pipes[direction].due(start, size, lost)[0]

    def fin(self, direction: Direction, now: float) -> float | None:
        """One side closed its sending half (a FIN): when it reaches the other side, after
        everything sent before it; None if it never does."""
        self.notice_idle(now)
        if self.closed_at[direction] is None:
            self.closed_at[direction] = now
        if self.first_fin is None and self.state is not FlowState.BLACKHOLED:
            self.first_fin = direction
        passing = self.state in PASSING
        self._move(FlowEvent.FIN_UP if direction is Direction.UP else FlowEvent.FIN_DOWN)
        if not passing:
            return None
        self.last_active = now
        return self.pipes[direction].due(max(now, self.ready_at), 0)[0]

    def reset(self, direction: Direction, now: float) -> bool:
        """One side aborted (or vanished): True if the other side should be aborted too."""
        self.notice_idle(now)
        if self.closed_at[direction] is None:
            self.closed_at[direction] = now
        passing = self.state in PASSING
        self._move(FlowEvent.RESET)
        return passing

    def deadline(self) -> float:
        """When :meth:`expire` next has work: the proxy's idle cut (NEVER without one)."""
        timeout = self.settings.proxy_timeout
        if not timeout or self.state not in PASSING:
            return NEVER
        return self.last_active + timeout

    def expire(self, now: float) -> bool:
        """The deadline passed: True if the proxy cuts the flow now (else check later)."""
        self.notice_idle(now)
        if now < self.deadline():
            return False
        self.cut_at = now
        self._move(FlowEvent.PROXY_IDLE)
        return True

    @property
    def finished(self) -> bool:
        """Both sides are done with it (the adapter may forget it)."""
        if self.state in (FlowState.CLOSED, FlowState.CUT, FlowState.RESET):
            return True
        return None not in self.closed_at

    def record(self) -> dict[str, Any]:
        """What happened to this flow, times relative to its opening (seconds)."""
        def rel(t: float | None) -> float | None:
            return None if t is None else round(t - self.opened_at, 4)
        return {"state": self.state.value,
                "first_fin": None if self.first_fin is None else self.first_fin.name.lower(),
                "client_closed_s": rel(self.closed_at[Direction.UP]),
                "server_closed_s": rel(self.closed_at[Direction.DOWN]),
                "blackholed_s": rel(self.blackholed_at), "cut_s": rel(self.cut_at),
                "bytes_up": self.bytes[0], "bytes_down": self.bytes[1],
                "blackholed_bytes": self.blackholed_bytes}


class Mapping:
    """One NAT mapping of a datagram client: an outside port of its own while it lives."""

    __slots__ = ("id", "client", "created", "last_active")

    def __init__(self, id: int, client: tuple[str, int], now: float) -> None:
        self.id = id
        self.client = client
        self.created = now
        self.last_active = now


class NatTable:
    """Datagram mappings by client address; one expires ``timeout`` after its last use.

    Expiry is lazy: the next datagram either way finds out, so there is no timer.  A
    client whose mapping expired gets a new one (a new outside port: the server sees a new
    address); datagrams from the server to an expired mapping are black-holed.
    """

    __slots__ = ("timeout", "by_client", "by_id", "next_id", "created", "expired",
                 "forgotten")

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.by_client: dict[tuple[str, int], Mapping] = {}
        self.by_id: dict[int, Mapping] = {}
        self.forgotten: dict[tuple[str, int], Mapping] = {}  # each client's expired one
        self.next_id = 1
        self.created = 0
        self.expired = 0

    def _alive(self, mapping: Mapping, now: float) -> bool:
        return not self.timeout or now - mapping.last_active < self.timeout

    def outbound(self, client: tuple[str, int], now: float) -> tuple[Mapping, Mapping | None]:
        """A datagram from ``client``: its live mapping, and the one it replaces because it
        expired (None if none did)."""
        mapping = self.by_client.get(client)
        if mapping is not None and not self._alive(mapping, now):
            self._forget(mapping)
            mapping = None
        old = None
        if mapping is None:
            old = self.forgotten.pop(client, None)
            mapping = Mapping(self.next_id, client, now)
            self.next_id += 1
            self.created += 1
            self.by_client[client] = mapping
            self.by_id[mapping.id] = mapping
        mapping.last_active = now
        return mapping, old

    def inbound(self, mapping_id: int, now: float) -> Mapping | None:
        """A datagram from the server to mapping ``mapping_id``: the mapping, or None if it
        is gone (the datagram is black-holed)."""
        mapping = self.by_id.get(mapping_id)
        if mapping is None:
            return None
        if not self._alive(mapping, now):
            self._forget(mapping)
            return None
        mapping.last_active = now
        return mapping

    def expired_at(self, mapping: Mapping) -> float:
        return mapping.last_active + self.timeout

    def _forget(self, mapping: Mapping) -> None:
        self.expired += 1
        self.forgotten[mapping.client] = mapping
        self.by_id.pop(mapping.id, None)
        if self.by_client.get(mapping.client) is mapping:
            del self.by_client[mapping.client]


class DatagramPath:
    """The datagrams of one listener, both ways: delay, jitter, loss, the drop list."""

    __slots__ = ("settings", "rng", "pipes", "sent", "lost", "reordered", "drop")

    def __init__(self, settings: LinkSettings, rng: random.Random | None = None) -> None:
        self.settings = settings
        self.rng = rng or random.Random(settings.seed)
        self.pipes = (Pipe(settings, self.rng, False), Pipe(settings, self.rng, False))
        self.sent = [0, 0]
        self.lost = [0, 0]
        self.reordered = [0, 0]
        self.drop = frozenset(settings.drop)

    def send(self, direction: Direction, size: int, now: float) -> float | None:
        """A datagram sent at ``now``: when it arrives, or None if it is lost.

        Datagrams towards the client are numbered from 1; those in ``drop`` are lost on
        purpose (for tests), the others with probability ``loss``.
        """
        self.sent[direction] += 1
        number = self.sent[direction]
        loss = self.settings.loss
        if ((direction is Direction.DOWN and number in self.drop)
                or (loss > 0 and self.rng.random() < loss)):
            self.lost[direction] += 1
            return None
        due, overtakes = self.pipes[direction].due(now, size)
        if overtakes:
            self.reordered[direction] += 1
        return due
