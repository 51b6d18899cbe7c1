"""The four HTTP modes: ``sse``, ``longpoll``, ``poll`` and ``poll-close``.

Each is an :class:`~chat.client.httpclient.HttpTransport` (one session, a control
connection for commands); they differ only in how events come back:

* ``poll``: every ``interval`` seconds, one ``GET .../messages?since=N`` per room (and one
  for private messages) over the control connection;
* ``poll-close``: the same, but every request, commands included, on a fresh TCP
  connection with ``Connection: close`` (a handshake per request, on purpose);
* ``longpoll``: one held ``GET ...?since=N&wait=W`` per room, each on its own keep-alive
  connection, re-issued as soon as it returns;
* ``sse``: one ``text/event-stream`` response per room, resumed with ``since`` and
  ``Last-Event-ID`` (private messages: ``/api/me/events``).  As an EventSource does, it
  waits the server's ``retry:`` time before reopening a stream that ended, and at least
  that long (more with backoff) after a failure.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import orjson

from .httpclient import INBOX, HttpTransport, NotJoined, Restarted, Slot, refusal
from .httpconn import HttpConnection
from .model import TransportError
from .sse import SseDecoder


class PollTransport(HttpTransport):
    """``poll``: a request per room every ``interval`` over one keep-alive connection."""

    mode = "poll"

    def _start_feeds(self) -> None:
        self._spawn("*poll*")

    def _room_added(self, room: str) -> None:
        return None  # the single poll loop picks it up on its next round

    async def _feed(self, key: str) -> None:
        loop = asyncio.get_running_loop()
        backoff = self._new_backoff()
        slot = None if self.fresh_connections else self._ctl
        next_round = loop.time()
        while not self._closing:
            current = INBOX
            try:
                for room in list(self._rooms):
                    current = room
                    if room in self._rooms:
                        await self._poll(slot, room, 0.0, key)
                current = INBOX
                if self.inbox:
                    await self._poll(slot, INBOX, 0.0, key)
            except NotJoined as exc:
                self._not_joined(current, exc)
                continue
            except (OSError, ConnectionError, TimeoutError, TransportError) as exc:
                if self._closing:
                    break
                if current != INBOX and current not in self._rooms:
                    continue  # parted while its poll was on the way
                self._feed_failed(key, exc)
                await asyncio.sleep(backoff.next_delay())
                next_round = loop.time()
                continue
            except Restarted:
                continue
            backoff.reset()
            self._feed_ok(key)
            next_round = max(next_round + self.interval, loop.time())
            await asyncio.sleep(next_round - loop.time())


class PollCloseTransport(PollTransport):
    """``poll-close``: like poll, with a fresh TCP connection (and handshake) per request."""

    mode = "poll-close"
    fresh_connections = True


class LongPollTransport(HttpTransport):
    """``longpoll``: a held request per room (and for the inbox), re-issued on return."""

    mode = "longpoll"

    async def _fetch(self, slot: Slot, key: str) -> None:
        if key in self._failing and (slot.conn is None or not slot.conn.usable):
            slot.conn = await self._open()  # reachable again: a held poll may answer late
            self._feed_ok(key)
        await self._poll(slot, key, self.wait, key)


class SseTransport(HttpTransport):
    """``sse``: one event stream per room, and one for private messages."""

    mode = "sse"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._retry_ms: int | None = None  # the server's reconnection time (``retry:``)

    def _retry_floor(self) -> float:
        return (self._retry_ms or 0) / 1000.0

    async def _fetch(self, slot: Slot, key: str) -> None:
        for _attempt in range(3):
            gen = self._session_gen
            conn = await self._open()
            slot.conn = conn
            since = self._inbox_cursor if key == INBOX else self.cursors.get(key)
            path = "/api/me/events" if key == INBOX else f"/api/rooms/{key}/events"
            if since is not None:
                path += f"?since={since}"
            resume = "" if since is None else f"Last-Event-ID: {since}\r\n"
            response = await conn.stream(path, self._sse_receiver(key), token=self.token,
                                         extra_headers=resume, within=self.timeout)
            if response.status == 401:
                conn.close()
                await self._renew_session(gen)
                continue
            if response.status != 200:
                conn.close()
                raise refusal(response)
            self._feed_ok(key)
            opened = asyncio.get_running_loop().time()
            await self._watch_stream(conn)
            if asyncio.get_running_loop().time() - opened < 1.0:
                raise ConnectionResetError("the event stream ended at once")
            await asyncio.sleep(self._retry_floor())  # then reopen it, as the server asked
            return
        raise TransportError("the server keeps refusing our session")

    async def _watch_stream(self, conn: HttpConnection) -> None:
        """Wait for the stream to end; abort it if the server goes silent for too long.

        The deadline is ``stream_timeout`` after the last byte, moved lazily: a window
        started afresh at each wake-up would let a stream stay silent for up to twice the
        limit before it is given up.
        """
        loop = asyncio.get_running_loop()
        while not conn.closed:
            try:
                async with asyncio.timeout_at(conn.last_rx + self.stream_timeout):
                    await conn.finished()
                return
            except TimeoutError:
                if loop.time() - conn.last_rx >= self.stream_timeout:
                    conn.abort()
                    raise ConnectionError(
                        f"event stream silent for {self.stream_timeout:g} s") from None

    def _sse_receiver(self, room: str) -> Callable[[bytes], None]:
        decoder = SseDecoder()
        return lambda chunk: self._receive_sse(room, decoder, chunk)

    def _receive_sse(self, key: str, decoder: SseDecoder, chunk: bytes) -> None:
        if key in self._failing:  # the stream is flowing: healthy before any event shows
            self._feed_ok(key)
        now = self.now()
        events = decoder.feed(chunk)
        if decoder.retry is not None:
            self._retry_ms = decoder.retry
        for sse in events:
            try:
                data = orjson.loads(sse.data) if sse.data else {}
            except orjson.JSONDecodeError:
                continue
            if not isinstance(data, dict):
                continue
            if sse.event == "gap":
                self._receive_gap(key, data.get("since"), data.get("next"))
            elif "id" in data:
                self._deliver_pushed(key, data, now)
