"""What the four HTTP modes share: the session, requests, commands and feed recovery.

All share one session (``POST /api/sessions``, a bearer token) and a keep-alive *control*
connection for commands (join, send, who ...); :class:`HttpTransport` owns those, the
per-room cursors and one *feed* task per room (and one for private messages).  How a feed
fetches events is each mode's own business: see :mod:`chat.client.httpmodes`.

Recovery: a failed request is retried with exponential backoff and jitter from the room's
cursor, so nothing is lost and :class:`~chat.client.model.Cursors` drops repeats.  A 401 (the
session expired, or the server restarted and forgot it) makes a new session and rejoins:
like a network failure, it is nothing the user did.  If that sign-in is refused (the nick
was taken meanwhile, or the server will not have us), the client stops and says why.
A server restart is recognised by the ``epoch`` field, by a join answering a ``last_id``
below our cursor, or by a poll whose ``next`` falls below ``since``; cursors then start over.

Text longer than one IRC message is sent as several messages, cut as irc mode cuts it
(:func:`~chat.client.ircline.split_text`), since the server relays every message to IRC.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

import orjson

from ..core.names import casefold
from .base import Transport
from .httpconn import HttpConnection, Response
from .ircline import split_text, text_limit
from .model import RESTARTED, ChatEvent, Member, TransportError, error_reason, event_from_json

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


class Refused(TransportError):
    """The server will not sign us in (a 4xx other than 401 and 429): retrying cannot help."""


class NotJoined(TransportError):
    """403 ``not_joined``: we are not in the room (kicked when no request of ours waited
    on it, so that the kick never reached us)."""


def refusal(response: Response) -> TransportError:
    """The error an answer that is not a success stands for, with the server's message."""
    body = response.json()
    if response.status == 403 and isinstance(body, dict) and body.get("error") == "not_joined":
        return NotJoined(response.error_text())
    return TransportError(response.error_text())


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
        self._signed_in_again = False  # a 401 made us a new session (expired, or killed?)
        self._ending: asyncio.Task[None] | None = None  # killed: ending the new session

    # --- requests ---------------------------------------------------------------------------
    async def _open(self) -> HttpConnection:
        return await HttpConnection.open(self.host, self.http_port, self.counters,
                                         within=self.timeout, tls=self.tls)

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
            took = (time.perf_counter() - started) * 1000.0
            self.counters.heartbeat_rtt_ms = took
            self.counters.request_time_ms += took
            self.counters.timed_requests += 1
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
                self._notice(RESTARTED)
            if response.status >= 300:
                raise refusal(response)
            return body
        raise TransportError("the server keeps refusing our session")

    # --- the session -------------------------------------------------------------------------
    async def _create_session(self, nick: str) -> str:
        sign_in: dict[str, str] = {"nick": nick}
        if self.password:
            sign_in["password"] = self.password
        response = await self._request(self._ctl, "POST", "/api/sessions", sign_in,
                                       auth=False)
        body = response.json()
        if response.status != 201 or not isinstance(body, dict) or "token" not in body:
            refused = 400 <= response.status < 500 and response.status != 429
            error = Refused if refused else TransportError
            raise error(f"server refused {nick}: {response.error_text()}")
        if self.cursors.see_epoch(body.get("epoch")):
            self._inbox_cursor = None
            self._notice(RESTARTED)
        self.nick = str(body.get("nick") or nick)
        return str(body["token"])

    async def _renew_session(self, gen: int) -> None:
        """Make a new session after a 401 (once for all feeds) and rejoin every room."""
        async with self._session_lock:
            if gen != self._session_gen or self._closing:
                return  # another feed already did it
            self._notice("session lost (expired or server restarted): signing in again")
            try:
                self.token = await self._create_session(self.nick)
            except Refused as exc:
                await self._give_up(f"the session expired, and {exc}")
                raise
            self._session_gen += 1
            self._signed_in_again = True
            self._inbox_cursor = None
            if not self._failing:  # else the recovering feed counts the reconnect
                self.counters.reconnects += 1
            for room in list(self._rooms):
                await self._join_room(room, renew=False)

    async def _join_room(self, room: str, renew: bool = True) -> None:
        key = self.keys.get(room)
        body = await self._api(self._ctl, "POST", f"/api/rooms/{room}/join",
                               {"key": key} if key else None, renew=renew)
        last_id = int(body.get("last_id") or 0)
        cursor = self.cursors.get(room)
        if cursor is None:
            self.cursors.set(room, last_id)
        elif last_id < cursor:  # our cursor is ahead of the room: a new server run
            self.cursors.restarted()
            self._notice("the server restarted: replaying from its start")
        elif self._handed_over and self._alone(body.get("members")):
            # We were its last member: our leaving (the /mode switch) dropped the room and
            # this join made it again.  Only our own leaving is gone from its history.
            self.cursors.set(room, max(cursor, last_id - 1))

    # --- public API ---------------------------------------------------------------------------
    async def start(self) -> None:
        self._set_state("connecting")
        try:
            self.token = await self._create_session(self.nick)
            for room in list(self._rooms):
                await self._join_room(room)
        except (OSError, ConnectionError, TimeoutError) as exc:
            await self._abandon()
            raise TransportError(f"cannot reach {self.host}:{self.http_port}: "
                                 f"{error_reason(exc)}") from None
        except TransportError:
            await self._abandon()
            raise
        finally:
            self._handed_over = False
        self._set_state("connected")
        self._start_feeds()

    async def _abandon(self) -> None:
        """A start that failed half way (a room refused us): end the session it made, so
        that its nick is free again (a /mode switch goes back to the old mode with it)."""
        if self.token is not None:
            await self._delete(self.token)
            self.token = None
        self._ctl.close()
        self._set_state("closed")

    async def join(self, room: str, key: str | None = None) -> None:
        room = self.check_room(room)
        if room in self._rooms:
            return
        if key:
            self.keys[room] = key
        try:
            await self._command(self._join_room(room))
        except TransportError:
            if key:
                self.keys.pop(room, None)
            raise
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
        path = f"/api/rooms/{room}/messages"
        await self._send_pieces(split_text(text, text_limit(self.nick, "#" + room)),
                                lambda piece: self._api(self._ctl, "POST", path,
                                                        {"text": piece}))

    async def msg(self, nick: str, text: str) -> None:
        path = f"/api/users/{quote(nick, safe='')}/messages"

        async def post(piece: str) -> None:
            body = await self._api(self._ctl, "POST", path, {"text": piece})
            if casefold(nick) == casefold(self.nick) and self.inbox:
                return  # a note to self comes back through the inbox
            now = self.now()
            self._deliver(ChatEvent(room="", id=int(body.get("id") or 0),
                                    ts=float(body.get("ts") or now), kind="message",
                                    nick=self.nick, text=piece, received=now, to=nick))

        await self._send_pieces(split_text(text, text_limit(self.nick, nick)), post)

    async def _send_pieces(self, pieces: list[str],
                           post: Callable[[str], Awaitable[Any]]) -> None:
        """Post each piece in turn; on failure, what was not sent goes with the error."""
        for sent, piece in enumerate(pieces):
            try:
                await self._command(post(piece))
            except TransportError as exc:
                raise TransportError(str(exc), unsent="".join(pieces[sent:])) from None

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
                       f"{m.get('transport', '?')}, idle {float(m.get('idle_s') or 0):.0f} s",
                       m.get("op") is True)
                for m in body.get("members", [])]

    async def topic(self, room: str, text: str | None = None) -> str:
        room = self.check_room(room)
        try:
            if text is not None:
                body = await self._command(self._api(
                    self._ctl, "POST", f"/api/rooms/{room}/topic",
                    {"topic": split_text(text, text_limit(self.nick, "#" + room))[0]}))
                return str(body.get("topic", text))
            body = await self._command(self._api(self._ctl, "GET", "/api/rooms"))
        except TransportError as exc:
            raise TransportError(f"topic of #{room}: {exc}") from None
        for entry in body.get("rooms", []):
            if casefold(str(entry.get("room"))) == casefold(room):
                return str(entry.get("topic") or "")
        raise TransportError(f"topic of #{room}: no such room")

    async def settle(self) -> bool:
        """Stop the feeds, then fetch each room (and the inbox) once more on the control
        connection: what was on its way is shown, and the cursors are exact."""
        connected = self.state == "connected"
        await self._stop_feeds()
        if not connected or self.token is None:
            return False
        try:
            for key in [*self._rooms, *([INBOX] if self.inbox else [])]:
                await self._poll(self._ctl, key, 0.0, key)
        except (OSError, ConnectionError, TimeoutError, TransportError, Restarted):
            return False
        return True

    async def close(self) -> None:
        if self._closing:
            if self._ending is not None:
                await self._ending
            return
        self._closing = True
        await self._stop_feeds()
        if self.token is not None:
            await self._delete(self.token)
        self._ctl.close()
        self._set_state("closed")

    async def _stop_feeds(self) -> None:
        feeds = [task for task in self._feeds.values() if task is not asyncio.current_task()]
        self._feeds.clear()
        for task in feeds:
            task.cancel()
        await asyncio.gather(*feeds, return_exceptions=True)

    async def _give_up(self, reason: str) -> None:
        """The server will not have us back: stop every feed and stay closed."""
        self._closing = True
        self._finish(reason)
        await self._stop_feeds()
        self._ctl.close()

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
                except NotJoined as exc:
                    self._not_joined(key, exc)
                    break
                except (OSError, ConnectionError, TimeoutError, TransportError) as exc:
                    slot.close()
                    if self._closing or (key != INBOX and key not in self._rooms):
                        break  # closed, or parted while its request was on the way
                    self._feed_failed(key, exc)
                    await asyncio.sleep(max(backoff.next_delay(), self._retry_floor()))
                    continue
                except Restarted:
                    continue
                backoff.reset()
                self._feed_ok(key)
        finally:
            slot.close()
            if self._feeds.get(key) is asyncio.current_task():
                del self._feeds[key]  # (a join of the room again spawns a new one)

    async def _fetch(self, slot: Slot, key: str) -> None:
        """One round of fetching for ``key`` (subclasses)."""
        raise NotImplementedError

    def _retry_floor(self) -> float:
        """The least delay before fetching again after a failure (sse: the server's retry)."""
        return 0.0

    def _not_joined(self, key: str, exc: NotJoined) -> None:
        """A feed of a room the server says we are not in: out of it (and no retrying)."""
        if key != INBOX and key in self._rooms:
            self._left(key, f"removed from #{key} (kicked while no request waited: the server "
                                f"says \"{exc}\")")
        self._failing.discard(key)
        self._feed_ok(key)

    def _deliver(self, event: ChatEvent) -> bool:
        """As Transport's; and our own QUIT ``Killed (...)`` replayed after a 401 made us a
        new session means the 401 was a kill whose event we could not fetch (a short
        poll's token is dead at once): then end the new session, as a kill."""
        if self.ended is not None:  # killed: what came with the kill is not shown after it
            return False
        shown = super()._deliver(event)
        if (shown and self._signed_in_again and event.kind == "quit"
                and casefold(event.nick) == casefold(self.nick)
                and event.text.startswith("Killed (")):
            self._killed(event.text)
        return shown

    def _killed(self, reason: str) -> None:
        """An operator killed our session: nothing signs in again; every feed stops."""
        token, self.token = self.token, None
        self._closing = True
        self._finish(reason)
        for task in self._feeds.values():
            if task is not asyncio.current_task():
                task.cancel()
        self._feeds.clear()
        if token is not None and self._signed_in_again:  # (else the kill ended it)
            self._ending = asyncio.get_running_loop().create_task(self._end_session(token))
        else:
            self._ctl.close()

    async def _end_session(self, token: str) -> None:
        await self._delete(token)
        self._ctl.close()

    def _feed_failed(self, key: str, exc: BaseException) -> None:
        if self._closing:
            return
        if not self._failing:
            self._notice(f"disconnected: {error_reason(exc)}; retrying")
        self._failing.add(key)
        self._set_state("reconnecting")

    def _feed_ok(self, key: str) -> None:
        if self._closing:
            return
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
                    self._deliver(event)
            if isinstance(nxt, int):
                self._inbox_cursor = nxt
            return
        for data in events:
            self._deliver(event_from_json(key, data, now))
        if isinstance(nxt, int) and nxt > (self.cursors.get(key) or 0):
            self.cursors.set(key, nxt)

    def _deliver_pushed(self, key: str, data: dict[str, Any], now: float) -> None:
        """Show one event pushed for ``key`` (a room, or the inbox: only past its cursor,
        which it then moves, as pushed private messages come one by one)."""
        if key == INBOX:
            event = event_from_json("", data, now, to=self.nick)
            if event.id > (self._inbox_cursor or 0):
                self._inbox_cursor = event.id
                self._deliver(event)
        else:
            self._deliver(event_from_json(key, data, now))

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
