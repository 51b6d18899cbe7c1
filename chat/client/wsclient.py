"""ws mode: push over one WebSocket (``GET /api/ws``), with the ``websockets`` asyncio client.

Sign-in is one HTTP request (``POST /api/sessions``); everything after it is JSON frames on
one TCP connection: commands with a ``ref`` answered by ack/joined/resumed/error frames,
and the room events pushed as the API's event objects.  Our own room messages come back
like everyone else's.  Every byte on the socket is counted (the library's connection class
is subclassed to count), so the status line and the compare lab see what it costs.

Heartbeat: the library's keepalive (a Ping every ``ping_interval`` seconds, the connection
failed after ``ping_timeout`` without a Pong); the server's Pings are answered by the library.

Resume: after a drop, the client first reopens the WebSocket on the *same* session (the
server swaps the new connection in, so the rooms see nothing) and resumes every room after
its cursor.  If the session is gone (401: it was closed, expired, or the server restarted)
it signs in again and joins each room with ``after`` = its cursor, so what was said
meanwhile is replayed before live events: nothing lost, nothing twice.  A new ``epoch`` in
the hello frame means a new server run: cursors start over.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from ..core.names import casefold
from .base import Transport
from .httpconn import HttpConnection
from .ircline import split_text, text_limit
from .model import (
    RESTARTED,
    ChatEvent,
    Counters,
    Member,
    TransportError,
    error_reason,
    event_from_json,
)

Frame = dict[str, Any]


def counting_connection(counters: Counters) -> type[ClientConnection]:
    """A :class:`ClientConnection` that counts its connect and every byte in ``counters``,
    and times every Ping it sends (the keepalive's too) into ``heartbeat_rtt_ms``."""

    class CountingConnection(ClientConnection):
        # The library times pings with loop.time(), which uvloop ticks in whole ms: a
        # loopback round trip read 0.00 ms.  perf_counter, as irc mode's Keepalive.
        ping_clocks: dict[bytes, float]

        async def ping(self, data: Any = None) -> Any:
            before = set(self.pending_pings)
            started = time.perf_counter()
            waiter = await super().ping(data)
            clocks = self.__dict__.setdefault("ping_clocks", {})
            for payload in self.pending_pings.keys() - before:
                clocks[payload] = started
            return waiter

        def acknowledge_pings(self, data: bytes) -> None:
            started = self.__dict__.get("ping_clocks", {}).get(data)
            if started is not None and data in self.pending_pings:
                counters.heartbeat_rtt_ms = (time.perf_counter() - started) * 1000.0
            super().acknowledge_pings(data)
            clocks = self.__dict__.get("ping_clocks", {})
            for payload in clocks.keys() - self.pending_pings.keys():
                del clocks[payload]

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            counters.connections_opened += 1
            super().connection_made(transport)

        def data_received(self, data: bytes) -> None:
            counters.bytes_in += len(data)
            super().data_received(data)

        def send_data(self) -> None:  # the library's loop, counting what it writes
            for data in self.protocol.data_to_send():
                if data:
                    counters.bytes_out += len(data)
                    self.transport.write(data)
                elif self.transport.can_write_eof():
                    with contextlib.suppress(Exception):
                        self.transport.write_eof()
                else:
                    self.transport.close()

    return CountingConnection


class WsTransport(Transport):
    """The ``ws`` mode."""

    mode = "ws"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.token: str | None = None
        self._ws: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._reconnect_task: asyncio.Task[None] | None = None
        self._answers: dict[int, asyncio.Future[Frame]] = {}
        self._refs = itertools.count(1)
        self._inbox_cursor: int | None = None
        self._kill_reason = ""  # an operator killed us: the server closes next, for good
        self._connection_class = counting_connection(self.counters)

    # --- connecting --------------------------------------------------------------------------
    async def start(self) -> None:
        self._set_state("connecting")
        try:
            await self._connect()
        except TransportError:
            await self._abandon()
            raise
        except (OSError, ConnectionError, TimeoutError, InvalidHandshake) as exc:
            await self._abandon()
            raise TransportError(f"cannot reach {self.host}:{self.http_port}: "
                                 f"{error_reason(exc)}") from None
        finally:
            self._handed_over = False
        self._set_state("connected")

    async def _connect(self) -> None:
        """Open the WebSocket (on the old session if it still exists) and resume."""
        ws = None
        if self.token is not None:
            try:
                ws = await self._open(self.token)
            except InvalidStatus as exc:
                if exc.response.status_code != 401:
                    raise
                self.token = None
        same_session = ws is not None
        if ws is None:
            self.token = await self._sign_in()
            ws = await self._open(self.token)
        hello = orjson.loads(await asyncio.wait_for(ws.recv(), self.timeout))
        if self.cursors.see_epoch(hello.get("epoch")):
            self._inbox_cursor = None
            self._notice(RESTARTED)
        self.nick = str(hello.get("nick") or self.nick)
        self._ws = ws
        self._reader = asyncio.get_running_loop().create_task(self._read(ws))
        with contextlib.suppress(TimeoutError):  # a first round trip for the status line
            async with asyncio.timeout(self.timeout):
                await (await ws.ping())
        await self._resume(set(hello.get("rooms") or ()), same_session)

    async def _resume(self, member_of: set[str], same_session: bool = False) -> None:
        """Subscribe every room (and the inbox) after its cursor.

        On the same session, a room it is no longer in was taken from us meanwhile (a
        kick): it is not joined again behind the user's back.
        """
        for room in list(self._rooms):
            if same_session and room not in member_of:
                self._left(room, f"no longer in #{room} (removed while disconnected)")
                continue
            kind = "resume" if room in member_of else "join"
            frame: Frame = {"type": kind, "room": room, "after": self.cursors.get(room)}
            if kind == "join" and self.keys.get(room):
                frame["key"] = self.keys[room]
            answer = await self._call(frame)
            self._subscribed(room, answer)
        if self.inbox:
            await self._call({"type": "resume", "room": None, "after": self._inbox_cursor})

    def _subscribed(self, room: str, answer: Frame) -> None:
        if self.cursors.get(room) is None:
            self.cursors.set(room, int(answer.get("last_id") or answer.get("next") or 0))
        if answer.get("gap") and not (self._handed_over and self._alone(answer.get("members"))):
            # (Alone after a /mode switch, our own leaving dropped the room and our join
            # made it again: only that leaving is gone from its history.)
            self._notice(f"#{room}: some events had already left the server's history")

    async def _sign_in(self) -> str:
        conn = await HttpConnection.open(self.host, self.http_port, self.counters,
                                         within=self.timeout, tls=self.tls)
        try:
            response = await conn.request("POST", "/api/sessions", close=True,
                                          body=orjson.dumps(
                                              {"nick": self.nick, "password": self.password}
                                              if self.password else {"nick": self.nick}),
                                          within=self.timeout)
        finally:
            conn.close()
        body = response.json()
        if response.status != 201 or not isinstance(body, dict) or "token" not in body:
            raise TransportError(f"server refused {self.nick}: {response.error_text()}")
        return str(body["token"])

    async def _open(self, token: str) -> ClientConnection:
        return await connect(
            f"{'wss' if self.tls else 'ws'}://{self.host}:{self.http_port}/api/ws?token={token}",
            create_connection=self._connection_class, proxy=None, compression=None,
            ssl=self.tls,
            open_timeout=self.timeout, ping_interval=self.ping_interval,
            ping_timeout=self.ping_timeout, close_timeout=min(self.ping_timeout, 2.0))

    async def _drop(self) -> None:
        """Close a connection that failed half way through :meth:`_connect` (quietly)."""
        ws, self._ws = self._ws, None
        if ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(), 2.0)

    async def _abandon(self) -> None:
        """A start that failed half way (a room refused us): close the WebSocket and end
        the session it signed in, so that its nick is free again (a /mode switch then goes
        back to the old mode under it)."""
        await self._drop()
        token, self.token = self.token, None
        if token is not None:
            with contextlib.suppress(OSError, ConnectionError, TimeoutError):
                conn = await HttpConnection.open(self.host, self.http_port, self.counters,
                                                 within=2.0, tls=self.tls)
                try:
                    await conn.request("DELETE", "/api/sessions/me", token=token, close=True,
                                       within=2.0)
                finally:
                    conn.close()
        self._set_state("closed")

    async def _reconnect(self) -> None:
        backoff = self._new_backoff()
        self._set_state("reconnecting")
        last_failure = ""
        while not self._closing:
            await asyncio.sleep(backoff.next_delay())
            try:
                await self._connect()
            except (OSError, ConnectionError, TimeoutError, InvalidHandshake,
                    TransportError) as exc:
                if error_reason(exc) != last_failure:  # say it once, not on every retry
                    last_failure = error_reason(exc)
                    self._notice(f"reconnect failed: {last_failure}; still trying")
                await self._drop()
                continue
            self.counters.reconnects += 1
            self._notice("reconnected")
            self._set_state("connected")
            return

    # --- frames --------------------------------------------------------------------------------
    async def _read(self, ws: ClientConnection) -> None:
        try:
            async for message in ws:
                self._receive(orjson.loads(message))
        except ConnectionClosed:
            pass
        except orjson.JSONDecodeError:
            self._notice("the server sent a frame that is not JSON")
        self._lost(ws)

    def _receive(self, frame: Frame) -> None:
        if "kind" in frame:
            self._receive_event(frame)
            return
        waiter = self._answers.pop(frame.get("ref"), None)  # type: ignore[arg-type]
        if waiter is not None and not waiter.done():
            waiter.set_result(frame)
        elif frame.get("type") == "error":
            self._notice(str(frame.get("message")))

    def _receive_event(self, frame: Frame) -> None:
        now = self.now()
        room = frame.get("room")
        if room is None or frame.get("kind") == "invite":  # private (an invite names a room)
            event = event_from_json("", frame, now, to=str(frame.get("to") or self.nick))
            if event.id > (self._inbox_cursor or 0):
                self._inbox_cursor = event.id
                self._deliver(event)
            return
        self._deliver(event_from_json(str(room), frame, now))
        if frame.get("kind") == "nick" and frame.get("nick") == self.nick:
            self.nick = str(frame.get("text"))

    def _lost(self, ws: ClientConnection) -> None:
        for waiter in self._answers.values():
            if not waiter.done():
                waiter.set_exception(ConnectionResetError("connection lost"))
        self._answers.clear()
        if ws is not self._ws or self._closing:
            return
        self._ws = None
        sent = ws.protocol.close_sent  # ours, e.g. the library's "keepalive ping timeout"
        reason = ws.close_reason or (sent.reason if sent is not None else "") or (
            f"code {ws.close_code}" if ws.close_code else "")
        if self._kill_reason or reason.startswith("Killed ("):
            self._finish(self._kill_reason or reason)  # an operator's KILL: final
            return
        self._notice(f"disconnected: {reason or 'connection closed'}")
        self._reconnect_task = asyncio.get_running_loop().create_task(self._reconnect())

    async def _call(self, frame: Frame) -> Frame:
        """Send ``frame`` and wait for its answer; an error frame raises TransportError."""
        ws = self._ws
        if ws is None:
            raise TransportError(f"not connected ({self.state}); not sent")
        ref = next(self._refs)
        frame["ref"] = ref
        waiter: asyncio.Future[Frame] = asyncio.get_running_loop().create_future()
        self._answers[ref] = waiter
        try:
            await ws.send(orjson.dumps(frame).decode())
            self.counters.requests += 1
            async with asyncio.timeout(self.timeout):
                answer = await waiter
        except TimeoutError:
            raise TransportError("no answer from the server") from None
        except (ConnectionError, ConnectionClosed):
            raise TransportError("connection lost") from None
        finally:
            self._answers.pop(ref, None)
        if answer.get("type") == "error":
            raise TransportError(str(answer.get("message") or answer.get("error")))
        return answer

    # --- the public operations -----------------------------------------------------------------
    async def join(self, room: str, key: str | None = None) -> None:
        room = self.check_room(room)
        if room in self._rooms:
            return
        answer = await self._call({"type": "join", "room": room, **({"key": key} if key
                                                                      else {})})
        self._rooms[room] = None
        if key:
            self.keys[room] = key
        self._subscribed(room, answer)

    def _killed(self, reason: str) -> None:
        """The kill event comes just before the server closes the WebSocket: then stay
        closed (see :meth:`_lost`)."""
        self._kill_reason = reason

    async def part(self, room: str) -> None:
        room = self.check_room(room)
        try:
            await self._call({"type": "part", "room": room})
        finally:
            self._rooms.pop(room, None)
            self.cursors.forget(room)

    async def send(self, room: str, text: str) -> None:
        room = self.check_room(room)
        if room not in self._rooms:
            raise TransportError(f"not in #{room}: /join it first", unsent=text)
        for sent, piece in enumerate(pieces := split_text(text, text_limit(self.nick,
                                                                           "#" + room))):
            try:
                await self._call({"type": "say", "room": room, "text": piece})
            except TransportError as exc:
                raise TransportError(str(exc), unsent="".join(pieces[sent:])) from None

    async def msg(self, nick: str, text: str) -> None:
        pieces = split_text(text, text_limit(self.nick, nick))
        for sent, piece in enumerate(pieces):
            try:
                answer = await self._call({"type": "msg", "to": nick, "text": piece})
            except TransportError as exc:
                raise TransportError(str(exc), unsent="".join(pieces[sent:])) from None
            target = str(answer.get("to") or nick)
            if casefold(target) == casefold(self.nick) and self.inbox:
                continue  # a note to self comes back as a private event
            now = self.now()
            self._emit(ChatEvent(room="", id=int(answer.get("id") or 0),
                                 ts=float(answer.get("ts") or now), kind="message",
                                 nick=self.nick, text=piece, received=now, to=target))

    async def set_nick(self, nick: str) -> None:
        answer = await self._call({"type": "nick", "nick": nick})
        self.nick = str(answer.get("nick") or nick)

    async def who(self, room: str) -> list[Member]:
        room = self.check_room(room)
        answer = await self._call({"type": "members", "room": room})
        return [Member(str(m.get("nick")),
                       f"{m.get('transport', '?')}, idle {float(m.get('idle_s') or 0):.0f} s",
                       m.get("op") is True)
                for m in answer.get("members", [])]

    async def topic(self, room: str, text: str | None = None) -> str:
        """Set the topic with a ``topic`` frame; read it with ``GET /api/rooms`` (there is
        no frame that reads a topic)."""
        room = self.check_room(room)
        try:
            if text is not None:
                piece = split_text(text, text_limit(self.nick, "#" + room))[0]
                answer = await self._call({"type": "topic", "room": room, "topic": piece})
                return str(answer.get("topic", piece))
            rooms = await self._get("/api/rooms")
        except TransportError as exc:
            raise TransportError(f"topic of #{room}: {exc}") from None
        for entry in rooms.get("rooms", []):
            if casefold(str(entry.get("room"))) == casefold(room):
                return str(entry.get("topic") or "")
        raise TransportError(f"topic of #{room}: no such room")

    async def _get(self, path: str) -> Frame:
        """One ``GET`` with our token on a short connection of its own."""
        try:
            conn = await HttpConnection.open(self.host, self.http_port, self.counters,
                                             within=self.timeout, tls=self.tls)
            try:
                response = await conn.request("GET", path, token=self.token, close=True,
                                              within=self.timeout)
            finally:
                conn.close()
        except (OSError, ConnectionError, TimeoutError) as exc:
            raise TransportError(error_reason(exc)) from None
        body = response.json()
        if response.status != 200 or not isinstance(body, dict):
            raise TransportError(response.error_text())
        return body

    async def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        if self._reconnect_task is not None:
            self._reconnect_task.cancel()
        ws = self._ws
        if ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(1000, "Leaving"), 2.0)
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)
        self._set_state("closed")
