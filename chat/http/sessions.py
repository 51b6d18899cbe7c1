"""API sessions: token -> user, activity, request budget, meter, expiry (pure: ``now`` passed in).

HTTP has no connection to ping, so a session is kept alive by its requests: one that has
made no request for ``--session-timeout`` seconds (on the monotonic clock) and holds no
long poll or stream open expires.  Each session spends one token of a
:class:`~chat.core.bucket.TokenBucket` per request (``--http-rate``/``--http-burst``).
"""

from __future__ import annotations

import hashlib
import math
import secrets
from collections.abc import Callable
from typing import Protocol

from ..core.bucket import TokenBucket
from ..core.events import Event
from ..core.hub import EventLog, User


class Hold(Protocol):
    """What the adapter holds open for a session: a long poll, an SSE stream, a WebSocket."""

    @property
    def log(self) -> EventLog | None:
        """What it waits on: a room's history or the inbox (None: a WebSocket, everything)."""

    def end(self) -> None:
        """The session or the membership ended: finish the request now."""


class Meter:
    """What one session has cost the server, by transport-independent measures.

    ``requests``: HTTP requests made with the session's token; ``empty``: poll answers
    without an event; ``bytes_in``/``bytes_out``: bytes read from and written to the
    connections its requests (or its WebSocket) travelled on, HTTP heads and frame headers
    included; ``connections``: TCP connections it opened (whose first metered request was its own);
    ``heartbeats``:
    SSE comments and WebSocket Ping frames sent to it.  Requests to ``GET
    /api/sessions/me`` (where these figures are read) are not counted, so reading the meter
    does not move it.
    """

    __slots__ = ("requests", "empty", "bytes_in", "bytes_out", "connections", "heartbeats")

    def __init__(self) -> None:
        self.requests = 0
        self.empty = 0
        self.bytes_in = 0
        self.bytes_out = 0
        self.connections = 0
        self.heartbeats = 0

    def snapshot(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__slots__}


class HttpSession:
    """One API client: its hub user, token, last request, budget, holds and meter."""

    __slots__ = ("token", "user", "last_seen", "budget", "holds", "meter", "echo")

    def __init__(self, token: str, user: User, now: float, budget: TokenBucket | None) -> None:
        self.token = token
        self.user = user
        self.last_seen = now      # monotonic seconds
        self.budget = budget
        self.holds: set[Hold] = set()
        self.meter = Meter()
        # Who also wants the user's own room events (the hub pushes a user only everyone
        # else's): a UDP registration, whose numbered chain must include them.
        self.echo: Callable[[Event], None] | None = None

    def end_holds(self) -> None:
        for hold in list(self.holds):
            hold.end()


def new_token() -> str:
    """An unguessable session token (192 random bits)."""
    return secrets.token_urlsafe(24)


def token_hash(token: str) -> str:
    """What the engine keeps of a token (never the token itself): it names the session's
    user on every node, so a poller may reach any of them."""
    return hashlib.sha256(token.encode()).hexdigest()


class CreationBudget:
    """Sessions each address may create: a token bucket per address (``--session-rate``,
    ``--session-burst``), kept only while it is not full again, so the table stays as
    small as the set of addresses creating sessions right now."""

    MAX_ADDRESSES = 65536  # past this, the fullest buckets go first (see prune)

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = max(1, burst)
        self.by_ip: dict[str, TokenBucket] = {}

    def charge(self, ip: str, now: float) -> int | None:
        """Count a creation from ``ip``: None if allowed, else whole seconds to wait."""
        if self.rate <= 0:
            return None
        bucket = self.by_ip.get(ip)
        if bucket is None:
            if len(self.by_ip) >= self.MAX_ADDRESSES:
                self.prune(now)
            bucket = self.by_ip[ip] = TokenBucket(self.burst, self.rate, now)
        if bucket.take(now):
            return None
        return max(1, math.ceil(bucket.wait(now)))

    def prune(self, now: float) -> None:
        """Forget the addresses whose bucket has refilled (they are as good as new)."""
        self.by_ip = {ip: b for ip, b in self.by_ip.items() if not b.full(now)}


class SessionTable:
    """The sessions this process has seen requests for, by token."""

    def __init__(self, rate: float, burst: int, timeout: float) -> None:
        self.rate = rate
        self.burst = max(1, burst)
        self.timeout = timeout
        self.by_token: dict[str, HttpSession] = {}
        self.peak = 0  # the most sessions since the table was last compacted

    def __len__(self) -> int:
        return len(self.by_token)

    def create(self, token: str, user: User, now: float) -> HttpSession:
        """The local session of ``token`` (new here, or created on another node)."""
        budget = TokenBucket(self.burst, self.rate, now) if self.rate > 0 else None
        session = self.by_token[token] = HttpSession(token, user, now, budget)
        self.peak = max(self.peak, len(self.by_token))
        return session

    def get(self, token: str) -> HttpSession | None:
        return self.by_token.get(token)

    def charge(self, session: HttpSession, now: float) -> int | None:
        """Count a request: None if within budget, else whole seconds until one would be."""
        session.last_seen = now
        budget = session.budget
        if budget is None or budget.take(now):
            return None
        return max(1, math.ceil(budget.wait(now)))

    def remove(self, session: HttpSession) -> bool:
        """Forget ``session``; False if it was already gone."""
        return self.by_token.pop(session.token, None) is not None

    def compact(self) -> bool:
        """Rebuild the table once it holds under a quarter of its peak (a dict never
        shrinks by itself: after a mass expiry its slots would stay allocated); True if
        it did."""
        if self.peak < 1024 or len(self.by_token) * 4 > self.peak:
            return False
        self.by_token = dict(self.by_token)
        self.peak = len(self.by_token)
        return True

    def active_since(self, when: float) -> list[HttpSession]:
        """Sessions with a request after ``when`` or something held open."""
        return [s for s in self.by_token.values() if s.last_seen > when or s.holds]

    def expired(self, now: float) -> list[HttpSession]:
        """Sessions idle for ``timeout`` with nothing held open (none if timeout is 0)."""
        if self.timeout <= 0:
            return []
        cutoff = now - self.timeout
        return [s for s in self.by_token.values() if s.last_seen < cutoff and not s.holds]
