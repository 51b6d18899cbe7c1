"""A token bucket: ``burst`` at once, then ``rate`` per second (pure: the caller passes ``now``).

One primitive for every budget of the server: IRC flood control (RFC 1459 section 8.10:
excess lines are delayed, not dropped), WebSocket frames, and the HTTP request budget per
session (excess requests get 429 with Retry-After).

The bucket's whole state is one float, the time it is full again (the "theoretical arrival
time" of the generic cell rate algorithm, GCRA): ``burst - (full_at - now) * rate`` tokens
are left.  :func:`spend` and :func:`wait_for` work on that float, so a connection can keep
its budget in one slot (24 bytes) instead of a bucket object (88); :class:`TokenBucket`
holds it for the callers that want an object.
"""

from __future__ import annotations

import math
from typing import Protocol

FULL = 0.0  # a ``full_at`` that has passed: the bucket is full (one float for every holder)


def _interval(now: float, rate: float) -> tuple[float, float]:
    """Seconds per token, and the time to measure at: with no refill (rate 0) time stands
    still, so ``full_at`` counts the tokens spent."""
    return (1.0 / rate, now) if rate > 0 else (1.0, 0.0)


def spend(full_at: float, now: float, burst: float, rate: float) -> float | None:
    """The new ``full_at`` once one token is spent at ``now``; None if none is left."""
    interval, now = _interval(now, rate)
    if full_at - now > (burst - 1.0) * interval:
        return None
    return (full_at if full_at > now else now) + interval


def wait_for(full_at: float, now: float, burst: float, rate: float) -> float:
    """Seconds until a token is there (0 if one is; inf if none ever comes back)."""
    interval, at = _interval(now, rate)
    late = full_at - at - (burst - 1.0) * interval
    if late <= 0:
        return 0.0
    return late if rate > 0 else math.inf


def is_full(full_at: float, now: float, rate: float) -> bool:
    """True if the bucket has refilled to its burst by ``now`` (a new one is the same)."""
    return full_at <= _interval(now, rate)[1]


class Budget(Protocol):
    """What holds input back: a :class:`TokenBucket`, or a connection keeping the float."""

    def take(self, now: float) -> bool:
        """Spend one token if there is one; False means the caller must wait."""

    def wait(self, now: float) -> float:
        """Seconds until a token is available (0 if one is; inf if the rate is zero)."""


class TokenBucket:
    """``burst`` tokens refilled at ``rate`` tokens per second (monotonic seconds)."""

    __slots__ = ("burst", "rate", "full_at")

    def __init__(self, burst: float, rate: float, now: float) -> None:
        self.burst = float(burst)
        self.rate = rate
        self.full_at = now if rate > 0 else FULL  # full from now on

    def full(self, now: float) -> bool:
        """True if the bucket has refilled to ``burst`` by ``now`` (a new one is the same)."""
        return is_full(self.full_at, now, self.rate)

    def take(self, now: float) -> bool:
        full_at = spend(self.full_at, now, self.burst, self.rate)
        if full_at is None:
            return False
        self.full_at = full_at
        return True

    def wait(self, now: float) -> float:
        return wait_for(self.full_at, now, self.burst, self.rate)
