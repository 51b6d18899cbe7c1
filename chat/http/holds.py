"""Requests the HTTP adapter holds open: long polls, SSE streams, replies awaiting the engine.

The API (:mod:`chat.http.api`) only *describes* these (``WaitForEvents``,
``StreamEvents``, ``Later``); the connection creates and owns the objects here.  None runs
a task.  A long poll or stream registers a one-shot watcher on an
:class:`~chat.core.hub.EventLog` (a room's history or a user's inbox) and lets its
connection's one deadline stand for the wait limit (long poll) or the next heartbeat
(stream).  Both are tracked in their session's ``holds``: while any is open the session
counts as active, and ending the session (or parting the room) ends them.

Contract with :class:`chat.http.connection.HttpConnection` (its ``Held`` protocol):
``expire`` when the deadline passes, ``shutdown`` when the server stops, ``abandon`` when
the connection is gone; the API calls ``end`` when the session or membership ends.
Every path runs its cleanup exactly once (``done``).

A stream ends by itself after the event that takes its user out of the room (a KICK, or
the QUIT of a KILL) or a KILL in its inbox.  A long poll answered by a transient event (a
typing notice, which the log does not keep) answers with that event.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from ..core.events import TRANSIENT_KINDS, Cache, Event
from ..core.hub import EventLog
from ..runtime import PacedFlusher
from .answers import Answer, Later, Reply
from .sessions import HttpSession
from .wire import (
    LAST_CHUNK,
    SSE_HEARTBEAT,
    SSE_RETRY,
    Request,
    encode_chunk,
    sse_block,
    sse_gap,
)

if TYPE_CHECKING:
    from .api import Api

BACKLOG_BATCH = 1000  # events per write when a stream replays history after Last-Event-ID


class Held(Protocol):
    """What the connection calls on the request it holds."""

    def expire(self) -> None:
        """The deadline given to :meth:`Holder.hold` passed."""

    def shutdown(self) -> None:
        """The server is stopping: finish now."""

    def abandon(self) -> None:
        """The connection is gone: drop watchers, write nothing."""


class HttpConnection(Protocol):
    """What a held request needs of its connection (:mod:`chat.http.connection`)."""

    @property
    def loop(self) -> asyncio.AbstractEventLoop: ...

    def hold(self, held: Held, deadline: float) -> None: ...
    def rearm(self, deadline: float) -> None: ...
    def release(self, request: Request, reply: Reply) -> None: ...
    def resume(self, request: Request, answer: Answer) -> None: ...
    def start_stream(self, request: Request, held: Held) -> bool: ...
    def end_stream(self, request: Request, tail: bytes) -> None: ...
    def write(self, data: bytes) -> None: ...
    def buffered(self) -> int: ...
    def abort(self, reason: str) -> None: ...


class _Hold:
    """What a long poll and a stream share: a watcher on one log and a place in the session's
    ``holds``, both given up exactly once by :meth:`_drop`."""

    __slots__ = ("api", "conn", "request", "session", "log", "watcher", "done")

    def __init__(self, api: Api, conn: HttpConnection, request: Request,
                 session: HttpSession, log: EventLog) -> None:
        self.api = api
        self.conn = conn
        self.request = request
        self.session = session
        self.log = log
        self.done = False
        self.watcher = self._on_event  # one bound method, so unwatch finds it

    def _on_event(self, event: Event, cache: Cache) -> None:
        raise NotImplementedError

    def _closed(self) -> None:
        """Count this hold as no longer open."""
        raise NotImplementedError

    def abandon(self) -> None:
        self._drop()

    def _drop(self) -> None:
        if self.done:
            return
        self.done = True
        self.log.unwatch(self.watcher)
        self.session.holds.discard(self)
        self.session.last_seen = self.conn.loop.time()
        self._closed()


class LongPoll(_Hold):
    """``GET .../messages?wait=S`` with nothing newer: answered on the next event or at S."""

    __slots__ = ("since", "limit", "transient")

    def __init__(self, api: Api, conn: HttpConnection, request: Request,
                 session: HttpSession, log: EventLog, since: int, limit: int,
                 wait: float) -> None:
        super().__init__(api, conn, request, session, log)
        self.since = since
        self.limit = limit
        self.transient: Event | None = None
        log.watch(self.watcher)
        session.holds.add(self)
        stats = api.stats
        stats.long_polls_held += 1
        stats.long_polls_open += 1
        conn.hold(self, conn.loop.time() + wait)

    def _on_event(self, event: Event, cache: Cache) -> None:
        # Runs inside a hub operation.  Answer on the next loop turn instead: answering
        # moves on to the pipelined request behind this one, which must not change the hub
        # in the middle of someone else's broadcast.
        if not self.done:
            if event.kind in TRANSIENT_KINDS:
                self.transient = event  # not in the log: _answer would not find it
            self.conn.loop.call_soon(self._answer)

    def expire(self) -> None:
        self._answer()

    def shutdown(self) -> None:
        self._answer()

    def end(self) -> None:
        self._answer()

    def _answer(self) -> None:
        if self.done:
            return
        self._drop()
        events, next_id, gap = self.log.since(self.since, self.limit)
        if not events and self.transient is not None:
            events, next_id = [self.transient], self.transient.id
        body = self.api.poll_answer(events, next_id, gap, self.session.meter)
        self.conn.release(self.request, Reply(200, body))

    def _closed(self) -> None:
        self.api.stats.long_polls_open -= 1


class EventStream(_Hold):
    """``GET .../events``: SSE blocks for every event of one log, comment heartbeats.

    Live events wait in ``pending`` for the next flush of the server's
    :class:`~chat.runtime.PacedFlusher` (SSE output coalesced like IRC's and the WebSocket's:
    one write per stream per window under load); everything else (a replay, heartbeats,
    the end) writes what is pending first.
    """

    __slots__ = ("chunked", "flusher", "pending", "pending_size")

    def __init__(self, api: Api, conn: HttpConnection, request: Request,
                 session: HttpSession, log: EventLog, since: int | None,
                 flusher: PacedFlusher) -> None:
        super().__init__(api, conn, request, session, log)
        self.flusher = flusher
        self.pending: list[bytes] | None = None  # live blocks not written yet
        self.pending_size = 0
        self.chunked = conn.start_stream(request, self)
        stats = api.stats
        stats.sse_streams += 1
        stats.sse_streams_open += 1
        session.holds.add(self)
        self._send(SSE_RETRY)
        if since is not None:
            self._replay(since)
        if not self.done:
            log.watch(self.watcher)
            self._arm_heartbeat()

    def _replay(self, since: int) -> None:
        """Send what the client missed after ``since`` (Last-Event-ID), flagging a gap."""
        events, next_id, gap = self.log.since(since, BACKLOG_BATCH)
        if gap:
            self._send(sse_gap(since, next_id, self.api.engine.epoch))
        while events and not self.done:
            self.api.stats.deliveries += len(events)
            self._send(b"".join([sse_block(e) for e in events]))
            if len(events) < BACKLOG_BATCH:
                break
            events, _next, _gap = self.log.since(events[-1].id, BACKLOG_BATCH)

    def _on_event(self, event: Event, cache: Cache) -> None:
        # Writing is all this does (no hub call), so it is safe inside the hub operation.
        if self.done:
            return
        self.api.stats.deliveries += 1
        block = sse_block(event, cache)
        if self.pending is None:
            self.pending = [block]
            self.flusher.add(self, self.conn.loop)
        else:
            self.pending.append(block)
        self.pending_size += len(block)
        if self.pending_size > self.api.config.sendq:
            self.flush()  # past --sendq: write now, so a reader that cannot keep up is cut
            if self.done:
                return
        if event.kind == "kill" or event.leaver() == self.session.user.key:
            # Kicked or killed: nothing more for this user.  Ended on the next loop turn
            # (ending may start a pipelined request, which must not run inside a publish).
            self.conn.loop.call_soon(self.end)
        elif not self.done:
            self.log.watch(self.watcher)  # watchers are one-shot

    def flush(self) -> None:
        """The flusher's turn (or a write that must come after them): the pending blocks
        in one write."""
        pending, self.pending = self.pending, None
        self.pending_size = 0
        if pending and not self.done:
            self.api.stats.writes += 1  # pushed output: one write per flush turn
            self._send(pending[0] if len(pending) == 1 else b"".join(pending))

    def _send(self, data: bytes) -> None:
        conn = self.conn
        data = encode_chunk(data) if self.chunked else data
        conn.write(data)
        self.session.meter.bytes_out += len(data)
        if conn.buffered() > self.api.config.sendq:
            # A reader that cannot keep up is cut off rather than buffered without bound.
            self._drop()
            conn.abort("sse_slow")

    def _arm_heartbeat(self) -> None:
        interval = self.api.config.sse_heartbeat
        if interval > 0:
            self.conn.rearm(self.conn.loop.time() + interval)

    def expire(self) -> None:
        """Heartbeat time: a comment line keeps proxies from closing an idle stream."""
        if self.done:
            return
        self.session.last_seen = self.conn.loop.time()
        self.session.meter.heartbeats += 1
        self.flush()
        if self.done:
            return
        self._send(SSE_HEARTBEAT)
        if not self.done:
            self._arm_heartbeat()

    def end(self) -> None:
        if self.done:
            return
        self.flush()  # the events before the end (a KICK's own line) are not lost
        if self.done:
            return
        self._drop()
        self.conn.end_stream(self.request, LAST_CHUNK if self.chunked else b"")

    def shutdown(self) -> None:
        self.end()

    def _closed(self) -> None:
        self.api.stats.sse_streams_open -= 1


class Awaiting:
    """A request whose answer waits for the engine (``Later``): answered when it settles."""

    __slots__ = ("conn", "request", "done")

    def __init__(self, conn: HttpConnection, request: Request, later: Later) -> None:
        self.conn = conn
        self.request = request
        self.done = False
        conn.hold(self, float("inf"))
        later.pending.then(lambda value: self._answer(later.then, value),
                           lambda exc: self._answer(later.error, exc))

    def _answer(self, build: Callable[[Any], Answer], value: Any) -> None:
        if self.done:
            return  # the connection went; the engine's outcome stands, unanswered
        self.done = True
        self.conn.resume(self.request, build(value))

    def expire(self) -> None:
        """No deadline of its own: the engine bounds its calls."""

    def shutdown(self) -> None:
        """Shutdown waits for the answer like any request in flight."""

    def abandon(self) -> None:
        self.done = True
