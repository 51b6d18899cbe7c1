"""``Now``: the two clocks every core call may need, read once by the adapter (pure).

``wall`` (unix seconds) stamps events and answers TIME; it may jump (NTP, a manual change).
``mono`` (the event loop's monotonic seconds) drives every deadline: heartbeats, idle and
registration timeouts, session expiry, budgets.  Keeping the two apart is what makes a
wall-clock step harmless.
"""

from __future__ import annotations

from typing import NamedTuple


class Now(NamedTuple):
    wall: float
    mono: float
