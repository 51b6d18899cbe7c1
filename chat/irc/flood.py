"""Per-connection flood control: a token bucket in the spirit of RFC 1459 section 8.10.

Pure (the caller passes ``now``).  A client may send ``burst`` lines at once, then
``rate`` lines per second; the adapter holds the excess lines and processes them as tokens
come back (delayed, not dropped), and disconnects a client whose held input grows past
``--recvq`` bytes.
"""

from __future__ import annotations


class FloodBudget:
    """A token bucket of ``burst`` tokens refilled at ``rate`` tokens per second."""

    __slots__ = ("burst", "rate", "tokens", "stamp")

    def __init__(self, burst: int, rate: float, now: float) -> None:
        self.burst = float(burst)
        self.rate = rate
        self.tokens = float(burst)
        self.stamp = now

    def _refill(self, now: float) -> None:
        if now > self.stamp:
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now

    def take(self, now: float) -> bool:
        """Spend one token if there is one; False means the line must wait."""
        self._refill(now)
        if self.tokens < 1.0:
            return False
        self.tokens -= 1.0
        return True

    def wait(self, now: float) -> float:
        """Seconds until a token is available (0 if one is).  A zero rate never refills."""
        self._refill(now)
        if self.tokens >= 1.0:
            return 0.0
        if self.rate <= 0:
            return float("inf")
        return (1.0 - self.tokens) / self.rate
