"""EventLog: a room's (or a poller's inbox's) bounded, id-ordered history (pure).

No clock and no I/O.  Long polls and SSE streams register one-shot *watchers* that fire on
the next event; transient events (typing notices) fire the watchers and move the cursor
without being kept (:meth:`EventLog.notify`).
"""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Callable

from .events import Cache, Event

Watcher = Callable[[Event, Cache], None]


class EventLog:
    """A bounded, id-ordered event history with one-shot watchers."""

    __slots__ = ("events", "last_id", "evicted_upto", "watchers")

    def __init__(self, maxlen: int, floor: int) -> None:
        self.events: deque[Event] = deque(maxlen=maxlen)
        self.last_id = floor       # id of the newest event (0, or where a dropped room ended)
        self.evicted_upto = floor  # events with id <= this may exist but are gone
        self.watchers: list[Watcher] = []

    def append(self, event: Event, cache: Cache) -> None:
        """Store ``event`` (evicting the oldest if full) and fire the waiting watchers once.

        ``cache`` is the publish's encoding cache, handed on to the watchers.
        """
        if event.id <= self.last_id:
            return  # stored already (a replayed Op): appends are idempotent
        events = self.events
        if events.maxlen is not None and len(events) == events.maxlen:
            if events:
                self.evicted_upto = events[0].id
            else:  # maxlen 0: nothing is kept
                self.evicted_upto = event.id
        events.append(event)
        self.last_id = event.id
        if self.watchers:
            watchers, self.watchers = self.watchers, []
            for watcher in watchers:
                watcher(event, cache)

    def notify(self, event: Event, cache: Cache) -> None:
        """Fire the waiting watchers with a transient ``event`` without keeping it.

        The cursor moves on, so a poller that saw the event's id is not told of a gap.
        """
        self.last_id = max(self.last_id, event.id)
        if self.watchers:
            watchers, self.watchers = self.watchers, []
            for watcher in watchers:
                watcher(event, cache)

    def since(self, since: int | None, limit: int) -> tuple[list[Event], int, bool]:
        """Events with id > ``since`` (oldest first, at most ``limit``), the next cursor, gap.

        Without ``since``, the latest ``limit`` events.  ``gap`` is True when events after
        ``since`` have left the history (or ``since`` is ahead of this log: the server was
        restarted), so the caller knows it missed something.
        """
        events = self.events
        if since is None:
            start = max(0, len(events) - limit)
            out = [events[i] for i in range(start, len(events))]
            return out, (out[-1].id if out else self.last_id), False
        if since >= self.last_id:  # the common empty poll: nothing newer
            if since > self.last_id:
                return [], self.last_id, True
            return [], since, False
        gap = since < self.evicted_upto
        start = bisect.bisect_right(events, since, key=_event_id)
        out = [events[i] for i in range(start, min(len(events), start + limit))]
        return out, (out[-1].id if out else since), gap

    def load(self, events: list[Event], evicted_upto: int) -> None:
        """Fill an empty log with stored history (oldest first) that ends where it ends."""
        self.events.extend(events)
        if events:
            self.last_id = max(self.last_id, events[-1].id)
        self.evicted_upto = max(self.evicted_upto, evicted_upto)

    def watch(self, watcher: Watcher) -> None:
        """Call ``watcher(event, cache)`` once, on the next append."""
        self.watchers.append(watcher)

    def unwatch(self, watcher: Watcher) -> None:
        """Forget ``watcher`` if it has not fired yet."""
        try:
            self.watchers.remove(watcher)
        except ValueError:
            pass


def _event_id(event: Event) -> int:
    return event.id
