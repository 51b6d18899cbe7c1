"""What the four HTTP modes share: the session, requests, commands and feed recovery.

All share one session (``POST /api/sessions``, a bearer token) and a keep-alive *control*
connection for commands (join, send, who ...); :class:`HttpTransport` owns those, the
per-room cursors and one *feed* task per room (and one for private messages).  How a feed
fetches events is each mode's own business: see :mod:`chat.client.httpmodes`.

Recovery: a failed request is retried with exponential backoff and jitter from the room's
cursor, so nothing is lost and :class:`~chat.client.model.Cursors` drops repeats.  A 401 (the
session expired, or the server restarted and forgot it) makes a new session and rejoins.
A server restart is recognised by the ``epoch`` field, by a join answering a ``last_id``
below our cursor, or by a poll whose ``next`` falls below ``since``; cursors then start over.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import orjson

from ..core.names import casefold
from .base import Transport
from .httpconn import HttpConnection, Response
from .model import ChatEvent, Member, TransportError, error_reason, event_from_json

INBOX = ""  # the feed key of private messages


class Slot:
    """A keep-alive connection reused by one sequence of requests (one at a time)."""

    __slots__ = ("conn", "lock")

    def __init__(self) -> None:
        self.conn: HttpConnection | None = None
        self.lock = asyncio.Lock()

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


class Restarted(Exception):
    """The server's ids started over: re-read from the new run's start."""


class HttpTransport(Transport):
    """Shared machinery; subclasses choose how events are fetched."""

    fresh_connections = False  # poll-close: a new TCP connection for every request

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.token: str | None = None
        self._session_gen = 0
        self._session_lock = asyncio.Lock()
        self._ctl = Slot()
        self._feeds: dict[str, asyncio.Task[None]] = {}
        self._failing: set[str] = set()
        self._inbox_cursor: int | None = None

    # --- requests ---------------------------------------------------------------------------
    async def _open(self) -> HttpConnection:
        return await HttpConnection.open(self.host, self.http_port, self.counters,
                                         within=self.timeout)

    async def _request(self, slot: Slot | None, method: str, target: str,
                       data: Any = None, *, wait: float = 0.0, auth: bool = True,
                       token: str | None = None) -> Response:
        """One request: on ``slot``'s keep-alive connection, or a fresh one if None.

        A reused keep-alive connection the server had already closed is retried once on a
        new connection, as long as no byte of an answer arrived (so nothing was processed).
        """
        body = orjson.dumps(data) if data is not None else None
        token = token or (self.token if auth else None)
        within = self.timeout + wait
        started = time.perf_counter()  # not loop.time(): uvloop's ticks in whole ms
        if slot is None or self.fresh_connections:
            conn = await self._open()
            try:
                response = await conn.request(method, target, token=token, body=body,
                                              close=True, within=within)
            finally:
                conn.close()
        else:
            async with slot.lock:
                response = await self._on_slot(slot, method, target, token, body, within)
        if not wait:
            self.counters.heartbeat_rtt_ms = (time.perf_counter() - started) * 1000.0
        return response

    async def _on_slot(self, slot: Slot, method: str, target: str, token: str | None,
                       body: bytes | None, within: float) -> Response:
        for _attempt in range(2):
            conn, fresh = slot.conn, False
            if conn is None or not conn.usable:
                conn = slot.conn = await self._open()
                fresh = True
            try:
                return await conn.request(method, target, token=token, body=body,
                                          within=within)
            except ConnectionError:
                slot.conn = None
                if fresh or conn.answered:
                    raise
        raise ConnectionResetError("connection closed by the server")

    async def _api(self, slot: Slot | None, method: str, target: str | Callable[[], str],
                   data: Any = None, *, wait: float = 0.0, renew: bool = True) -> Any:
        """A request whose JSON answer is returned; a 401 renews the session and retries.

        ``target`` may be a function, called again for the retry (a renewed session may
        have moved the cursors it reads).  Raises TransportError with the server's message
        for any other error status.
        """
        for _attempt in range(3):
            gen = self._session_gen
            path = target if isinstance(target, str) else target()
            response = await self._request(slot, method, path, data, wait=wait)
            if response.status == 401 and renew and not self._closing:
                await self._renew_session(gen)
                continue
            body = response.json()
            if isinstance(body, dict) and self.cursors.see_epoch(body.get("epoch")):
                self._inbox_cursor = None
                self._notice("the server restarted: replaying from its start")
            if response.status >= 300:
                raise TransportError(response.error_text())
            return body
        raise TransportError("the server keeps refusing our session")

    # --- the session -------------------------------------------------------------------------
    async def _create_session(self, nick: str) -> str:
        response = await self._request(self._ctl, "POST", "/api/sessions", {"nick": nick},
                                       auth=False)
        body = response.json()
        if response.status != 201 or not isinstance(body, dict) or "token" not in body:
            raise TransportError(f"server refused {nick}: {response.error_text()}")
        if self.cursors.see_epoch(body.get("epoch")):
            self._inbox_cursor = None
            self._notice("the server restarted: replaying from its start")
        self.nick = str(body.get("nick") or nick)
        return str(body["token"])

    async def _renew_session(self, gen: int) -> None:
        """Make a new session after a 401 (once for all feeds) and rejoin every room."""
        async with self._session_lock:
            if gen != self._session_gen or self._closing:
                return  # another feed already did it
            self._notice("session lost (expired or server restarted): signing in again")
            self.token = await self._create_session(self.nick)
            self._session_gen += 1
            self._inbox_cursor = None
            if not self._failing:  # else the recovering feed counts the reconnect
                self.counters.reconnects += 1
            for room in list(self._rooms):
                await self._join_room(room, renew=False)

    async def _join_room(self, room: str, renew: bool = True) -> None:
        body = await self._api(self._ctl, "POST", f"/api/rooms/{room}/join", renew=renew)
        last_id = int(body.get("last_id") or 0)
        cursor = self.cursors.get(room)
        if cursor is None:
            self.cursors.set(room, last_id)
        elif last_id < cursor:  # our cursor is ahead of the room: a new server run
            self.cursors.restarted()
            self._notice("the server restarted: replaying from its start")

    # --- public API ---------------------------------------------------------------------------
    async def start(self) -> None:
        self._set_state("connecting")
        try:
            self.token = await self._create_session(self.nick)
            for room in list(self._rooms):
                await self._join_room(room)
        except (OSError, ConnectionError, TimeoutError) as exc:
            self._set_state("closed")
            raise TransportError(f"cannot reach {self.host}:{self.http_port}: "
                                 f"{error_reason(exc)}") from None
        except TransportError:
            self._set_state("closed")
            raise
        self._set_state("connected")
        self._start_feeds()

    async def join(self, room: str) -> None:
        room = self.check_room(room)
        if room in self._rooms:
            return
        await self._command(self._join_room(room))
        self._rooms[room] = None
        self._room_added(room)

    async def part(self, room: str) -> None:
        room = self.check_room(room)
        self._rooms.pop(room, None)
        task = self._feeds.pop(room, None)
        if task is not None:
            task.cancel()
        self.cursors.forget(room)
        await self._command(self._api(self._ctl, "POST", f"/api/rooms/{room}/part"))

    async def send(self, room: str, text: str) -> None:
        room = self.check_room(room)
        await self._command(self._api(self._ctl, "POST", f"/api/rooms/{room}/messages",
                                      {"text": text}))

    async def msg(self, nick: str, text: str) -> None:
        body = await self._command(self._api(
            self._ctl, "POST", f"/api/users/{quote(nick, safe='')}/messages", {"text": text}))
        if casefold(nick) == casefold(self.nick) and self.inbox:
            return  # a note to self comes back through the inbox
        now = self.now()
        self._emit(ChatEvent(room="", id=int(body.get("id") or 0),
                             ts=float(body.get("ts") or now), kind="message",
                             nick=self.nick, text=text, received=now, to=nick))

    async def set_nick(self, nick: str) -> None:
        """The API has no rename: sign in under the new nick, rejoin, drop the old session."""
        old_token, old_nick = self.token, self.nick
        new_token = await self._command(self._create_session(nick))
        self.token = new_token
        self._session_gen += 1
        try:
            for room in list(self._rooms):
                await self._command(self._join_room(room, renew=False))
        except TransportError:
            await self._delete(new_token)
            self.token, self.nick = old_token, old_nick
            self._session_gen += 1
            raise
        self._inbox_cursor = None
        if old_token is not None:
            await self._delete(old_token)

    async def who(self, room: str) -> list[Member]:
        room = self.check_room(room)
        body = await self._command(self._api(self._ctl, "GET", f"/api/rooms/{room}/members"))
        return [Member(str(m.get("nick")),
                       f"{m.get('transport', '?')}, idle {float(m.get('idle_s') or 0):.0f} s")
                for m in body.get("members", [])]

    async def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        for task in self._feeds.values():
            task.cancel()
        feeds = list(self._feeds.values())
        self._feeds.clear()
        await asyncio.gather(*feeds, return_exceptions=True)
        if self.token is not None:
            await self._delete(self.token)
        self._ctl.close()
        self._set_state("closed")

    async def _delete(self, token: str) -> None:
        """End the session ``token`` (best effort: a failure only leaves it to expire)."""
        with contextlib.suppress(OSError, ConnectionError, TimeoutError):
            async with asyncio.timeout(2.0):
                await self._request(self._ctl, "DELETE", "/api/sessions/me", token=token)

    async def _command(self, coro: Any) -> Any:
        """Run a user command; connection trouble becomes a one-line TransportError."""
        try:
            return await coro
        except (OSError, ConnectionError, TimeoutError) as exc:
            raise TransportError(f"not sent: {error_reason(exc)}") from None

    # --- receiving ---------------------------------------------------------------------------
    def _start_feeds(self) -> None:
        for room in self._rooms:
            self._room_added(room)
        if self.inbox:
            self._spawn(INBOX)

    def _room_added(self, room: str) -> None:
        self._spawn(room)

    def _spawn(self, key: str) -> None:
        if key not in self._feeds and not self._closing:
            self._feeds[key] = asyncio.get_running_loop().create_task(self._feed(key))

    async def _feed(self, key: str) -> None:
        """Fetch ``key``'s events (a room, or INBOX) until closed, recovering from errors."""
        backoff = self._new_backoff()
        slot = Slot()
        try:
            while not self._closing and (key == INBOX or key in self._rooms):
                try:
                    await self._fetch(slot, key)
                except (OSError, ConnectionError, TimeoutError, TransportError) as exc:
                    slot.close()
                    if key != INBOX and key not in self._rooms:
                        break  # parted while its request was on the way
                    self._feed_failed(key, exc)
                    await asyncio.sleep(backoff.next_delay())
                    continue
                except Restarted:
                    continue
                backoff.reset()
                self._feed_ok(key)
        finally:
            slot.close()

    async def _fetch(self, slot: Slot, key: str) -> None:
        """One round of fetching for ``key`` (subclasses)."""
        raise NotImplementedError

    def _feed_failed(self, key: str, exc: BaseException) -> None:
        if not self._failing:
            self._notice(f"disconnected: {error_reason(exc)}; retrying")
        self._failing.add(key)
        self._set_state("reconnecting")

    def _feed_ok(self, key: str) -> None:
        if key in self._failing:
            self._failing.discard(key)
            if not self._failing:
                self.counters.reconnects += 1
                self._notice("reconnected")
        if not self._failing:
            self._set_state("connected")

    async def _poll(self, slot: Slot | None, key: str, wait: float, feed: str) -> None:
        """One ``GET`` of new events for a room or the inbox; emits them.

        ``feed`` names the fetching loop, marked healthy as soon as an answer is in.
        """
        since: int | None = None

        def target() -> str:
            nonlocal since
            since = self._inbox_cursor if key == INBOX else self.cursors.get(key)
            path = "/api/me/messages" if key == INBOX else f"/api/rooms/{key}/messages"
            query = [] if since is None else [f"since={since}"]
            if wait:
                query.append(f"wait={wait:g}")
            return path + ("?" + "&".join(query) if query else "")

        body = await self._api(slot, "GET", target, wait=wait)
        self._feed_ok(feed)
        events = body.get("events") or []
        if not events:
            self.counters.empty_polls += 1
        nxt = body.get("next")
        if body.get("gap") and since and self._receive_gap(key, since, nxt):
            raise Restarted
        now = self.now()
        if key == INBOX:
            for data in events:
                event = event_from_json("", data, now, to=self.nick)
                if since is None or event.id > since:
                    self._emit(event)
            if isinstance(nxt, int):
                self._inbox_cursor = nxt
            return
        for data in events:
            self._deliver(event_from_json(key, data, now))
        if isinstance(nxt, int) and nxt > (self.cursors.get(key) or 0):
            self.cursors.set(key, nxt)

    def _receive_gap(self, key: str, since: Any, nxt: Any) -> bool:
        """Events of ``key`` are missing after ``since``: say so; True if ids started over.

        A ``next`` below ``since`` means a new server run: the cursors start over.
        """
        if isinstance(since, int) and isinstance(nxt, int) and nxt < since:
            self._notice("the server restarted: replaying from its start")
            if key == INBOX:
                self._inbox_cursor = None
            else:
                self.cursors.restarted()
            return True
        self._notice(f"{_label(key)}: some events had already left the server's history")
        return False


def _label(key: str) -> str:
    """How a feed is named to the user."""
    return "private messages" if key == INBOX else "#" + key
