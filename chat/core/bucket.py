"""A token bucket: ``burst`` at once, then ``rate`` per second (pure: the caller passes ``now``).

One primitive for every budget of the server: IRC flood control (RFC 1459 section 8.10:
excess lines are delayed, not dropped) and the HTTP request budget per session (excess
requests get 429 with Retry-After).
"""

from __future__ import annotations

import math


class TokenBucket:
    """``burst`` tokens refilled at ``rate`` tokens per second (monotonic seconds)."""

    __slots__ = ("burst", "rate", "tokens", "stamp")

    def __init__(self, burst: float, rate: float, now: float) -> None:
        # float() of a float is that float: buckets made with one float share it, and a full
        # bucket's ``tokens`` is that object too (24 bytes less per connection each).
        self.burst = self.tokens = float(burst)
        self.rate = rate
        self.stamp = now

    def _refill(self, now: float) -> None:
        if now > self.stamp:
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now

    def full(self, now: float) -> bool:
        """True if the bucket has refilled to ``burst`` by ``now`` (a new one is the same)."""
        return self.tokens + (now - self.stamp) * self.rate >= self.burst

    def take(self, now: float) -> bool:
        """Spend one token if there is one; False means the caller must wait."""
        self._refill(now)
        if self.tokens < 1.0:
            return False
        self.tokens -= 1.0
        return True

    def wait(self, now: float) -> float:
        """Seconds until a token is available (0 if one is; inf if the rate is zero)."""
        self._refill(now)
        if self.tokens >= 1.0:
            return 0.0
        if self.rate <= 0:
            return math.inf
        return (1.0 - self.tokens) / self.rate
