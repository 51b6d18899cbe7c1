"""When the next coalesced flush may run: adaptive coalescing (pure: times are passed in).

A push server's cost under load is dominated by its writes, one ``send`` per member per
flush, each a system call that runs the whole loopback (or NIC) transmit path and usually
wakes the reader.  Waiting longer between flushes gives each write more lines and cuts the
number of writes, at the price of latency.  :class:`FlushPacer` takes that price only when it
buys something:

* a flush never follows the previous one sooner than ``interval`` after it began (the
  ``--flush-interval`` floor, as before); a line after a quiet spell goes out at once;
* with ``share`` > 0 it also waits until the previous flush's own CPU cost is at most
  ``share`` of the time since it began: ``wait = cost / share``, so writing can never take
  more than that share of the core, however many members are dirty;
* never longer than ``longest`` after the previous flush began.

At light load a flush costs microseconds and the floor decides; as the members (and so the
writes per flush) grow, the window grows with the flush's cost, up to ``longest``.  The
window therefore follows the load without any timer of its own and without guessing the
machine's system-call cost: it is measured on every flush.
"""

from __future__ import annotations


class FlushPacer:
    """The flush window of one server (see the module docstring).

    The adapter calls :meth:`delay` when a connection becomes dirty and no flush is
    scheduled, and :meth:`flushed` after every flush with when it began (its loop clock)
    and how much CPU it took.
    """

    __slots__ = ("interval", "share", "longest", "next_at", "window")

    def __init__(self, interval: float, share: float = 0.0, longest: float = 0.0) -> None:
        self.interval = interval  # the floor (0: flush on the next loop turn)
        self.share = share        # the most of the core writing may take (0: fixed window)
        self.longest = max(longest, interval)
        self.next_at = float("-inf")  # loop time before which no flush may start
        self.window = interval    # the last window chosen (for stats and tests)

    def delay(self, now: float) -> float:
        """Seconds from ``now`` until a flush may run (0: on the next loop turn)."""
        return max(0.0, self.next_at - now)

    def flushed(self, began: float, cost: float) -> None:
        """A flush began at ``began`` and used ``cost`` seconds of CPU."""
        window = self.interval
        if self.share > 0 and window > 0:
            window = min(self.longest, max(window, cost / self.share))
        self.window = window
        self.next_at = began + window
