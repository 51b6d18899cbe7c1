"""Counters, one set per transport, served by ``GET /api/stats`` (pure: plain integers).

Adapters bump the fields directly (attribute increments are the cheapest thing Python can
do on a hot path); :meth:`Stats.snapshot` turns them into JSON-ready dicts.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

RTT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Histogram:
    """Fixed-bucket counts of durations in seconds (Prometheus' cumulative form is made at
    scrape time): one list of integers, so :meth:`observe` allocates nothing."""

    __slots__ = ("bounds", "counts", "total", "count")

    def __init__(self, bounds: tuple[float, ...] = RTT_BUCKETS) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one: above every bound
        self.total = 0.0
        self.count = 0

    def observe(self, seconds: float) -> None:
        index = 0
        for bound in self.bounds:
            if seconds <= bound:
                break
            index += 1
        self.counts[index] += 1
        self.total += seconds
        self.count += 1

    def cumulative(self) -> list[tuple[str, int]]:
        """``(upper bound, observations at or under it)`` pairs, ``+Inf`` last."""
        out, running = [], 0
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            running += count
            out.append(("+Inf" if bound == float("inf") else repr(bound), running))
        return out

    def snapshot(self) -> dict[str, Any]:
        return {"count": self.count, "sum_s": round(self.total, 6),
                "buckets": dict(self.cumulative())}


class TransportStats:
    """What one transport (``irc``, ``http`` or ``ws``) has done since the server started.

    For ``ws``: ``requests`` counts frames received, ``lines_delayed`` frames held back by
    flood control, ``connections_*`` WebSocket upgrades (accepted, open, refused).
    """

    __slots__ = ("connections_accepted", "connections_open", "connections_refused",
                 "requests", "polls", "empty_polls", "long_polls_held", "long_polls_open",
                 "sse_streams", "sse_streams_open", "bytes_in", "bytes_out", "pings_sent",
                 "pongs_received", "messages", "deliveries", "sessions_created",
                 "sessions_open", "timeouts", "reaps", "errors", "lines_delayed", "writes",
                 "flushes", "heartbeat_rtt")

    def __init__(self) -> None:
        self.connections_accepted = 0
        self.connections_open = 0
        self.connections_refused = 0
        self.requests = 0           # HTTP requests / IRC lines received
        self.polls = 0              # GET .../messages answered
        self.empty_polls = 0        # ... answered with no new event
        self.long_polls_held = 0    # polls that had to wait (wait=S and nothing new)
        self.long_polls_open = 0
        self.sse_streams = 0
        self.sse_streams_open = 0
        self.bytes_in = 0
        self.bytes_out = 0
        self.pings_sent = 0
        self.pongs_received = 0
        self.messages = 0           # PRIVMSG/NOTICE or POSTed messages accepted
        self.deliveries = 0         # events pushed to a client
        self.sessions_created = 0
        self.sessions_open = 0
        self.timeouts: Counter[str] = Counter()  # heartbeat/keep-alive timeouts by name
        self.reaps: Counter[str] = Counter()     # connections/sessions closed by reason
        self.errors: Counter[str] = Counter()    # error replies by code
        self.lines_delayed = 0      # IRC lines held back by flood control
        self.writes = 0             # socket writes of pushed output (coalescing shows here)
        self.flushes = 0            # coalesced flushes (each writes every dirty connection)
        self.heartbeat_rtt = Histogram()  # server PING (Ping frame) to the next input

    def snapshot(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in self.__slots__:
            value = getattr(self, name)
            if isinstance(value, Counter):
                value = dict(value)
            elif isinstance(value, Histogram):
                value = value.snapshot()
            out[name] = value
        return out


class UdpStats:
    """What the udp lane has done: registrations and datagrams (``port``: where it listens,
    0 when it is off; ``same_port``: it has the HTTP port's number)."""

    __slots__ = ("port", "same_port", "registrations", "registrations_open", "rebinds",
                 "keepalives", "datagrams_in", "datagrams_out", "bytes_in", "bytes_out",
                 "deliveries",
                 "too_big", "oversize", "malformed", "refused", "unanswered", "send_dropped",
                 "ended")

    def __init__(self) -> None:
        self.port = 0
        self.same_port = False       # a client behind a relay then dials the relay's number
        self.registrations = 0       # made (a moved one is not new)
        self.registrations_open = 0
        self.rebinds = 0             # a registration moved to a new address
        self.keepalives = 0
        self.datagrams_in = 0
        self.datagrams_out = 0
        self.bytes_in = 0
        self.bytes_out = 0
        self.deliveries = 0          # event datagrams sent
        self.too_big = 0             # events sent as a 'big' marker (fetch over HTTP)
        self.oversize = 0            # datagrams in over --udp-max-datagram, dropped unread
        self.malformed = 0
        self.refused = 0             # unknown or expired token
        self.unanswered = 0          # an answer would have been larger than its request
        self.send_dropped = 0        # not sent: the socket's send buffer was full
        self.ended: Counter[str] = Counter()  # registrations ended, by reason

    def snapshot(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in self.__slots__:
            value = getattr(self, name)
            out[name] = dict(value) if isinstance(value, Counter) else value
        return out


class Stats:
    """The server's counters: ``stats.irc``, ``stats.http``, ``stats.ws`` and ``stats.udp``."""

    __slots__ = ("irc", "http", "ws", "udp")

    def __init__(self) -> None:
        self.irc = TransportStats()
        self.http = TransportStats()
        self.ws = TransportStats()
        self.udp = UdpStats()

    def snapshot(self, uptime: float) -> dict[str, Any]:
        return {"uptime_s": round(uptime, 3), "irc": self.irc.snapshot(),
                "http": self.http.snapshot(), "ws": self.ws.snapshot(),
                "udp": self.udp.snapshot()}
