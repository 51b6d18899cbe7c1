"""The WebSocket adapter: the ``websockets`` library's sans-I/O protocol in a raw asyncio Protocol.

The HTTP adapter parses ``GET /api/ws``, the API authenticates it, and the connection hands
its socket over (:meth:`WsServer.upgrade`, uvicorn's pattern): ``websockets``'
:class:`~websockets.server.ServerProtocol` checks the handshake and negotiates extensions;
on success the socket's protocol becomes a :class:`WsConnection`, which embeds a second
``ServerProtocol`` created in the OPEN state (the handshake was parsed by httptools, so the
library's own request parser is not run) and feeds it the bytes that followed the head.

The adapter owns the socket and time; the chat is :class:`chat.ws.session.WsSession`'s:

* Output: the session queues frames and calls ``wakeup``; one ``call_soon`` (under load,
  once per adaptive window, as on the IRC side: :mod:`chat.core.pacing`) flushes every
  dirty connection with one write each.  ``pause_writing`` stops flushing; more than
  ``--sendq`` bytes waiting for a reader closes it (1008 ``SendQ exceeded``) while the
  room keeps flowing for everyone else.
* Input: messages over ``--ws-max-message`` fail the connection (1009, the library's check
  before the payload is read); flood control delays messages over the token bucket
  (``--flood-burst``/``--flood-rate``) and closes a client holding more than ``--recvq``
  bytes (1008 ``Excess Flood``); while the session waits for the engine, input is held too.
* Time: ONE sweep timer for all WebSocket connections over their lazily moved heartbeat
  deadlines (:mod:`chat.core.heartbeat`): a Ping frame after ``--ping-interval`` of silence,
  1011 ``Ping timeout`` when nothing comes back within ``--ping-timeout``, 1008 ``Idle
  timeout`` after ``--idle-timeout`` without a command; and the close deadline: a peer that
  does not finish the closing handshake within ``--close-timeout`` is aborted.
* Sessions: the connection is its session's hold (the session cannot expire) and its user's
  sink.  Its close ends the session (the rooms see a QUIT with the close reason) and with it
  the session's other holds; a second WebSocket on the same session replaces the first
  (4000 ``Replaced by a new connection``) without ending it.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import struct
from typing import cast

from websockets.datastructures import Headers
from websockets.extensions.base import ServerExtensionFactory
from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory
from websockets.frames import Frame, Opcode
from websockets.http11 import Request as WsRequest
from websockets.protocol import OPEN
from websockets.server import ServerProtocol

from ..core.bucket import TokenBucket
from ..core.clock import Now
from ..core.heartbeat import NEVER, Beat, Heartbeat, HeartbeatPolicy
from ..core.hub import EventLog
from ..core.text import clean_text
from ..http.api import Api
from ..http.connection import HttpConnection
from ..http.sessions import HttpSession
from ..http.wire import Request
from ..logs import disconnect
from ..runtime import HeldInput, PacedFlusher, drain
from ..state import ServerState
from .session import WsSession

log = logging.getLogger(__name__)
PROTOCOL_LOG = logging.getLogger("chat.ws.protocol")

MIN_TICK = 0.01
MAX_TICK = 1.0
# Close codes (RFC 6455 section 7.4) and this server's own (4000-4999).
NORMAL, GOING_AWAY, UNSUPPORTED, INVALID_DATA, POLICY = 1000, 1001, 1003, 1007, 1008
INTERNAL, REPLACED = 1011, 4000


class Phase(enum.Enum):
    OPEN = "open"
    CLOSING = "closing"  # our close frame is out (or the peer's came): waiting for TCP close
    CLOSED = "closed"


class PlainFramer:
    """Unmasked, uncompressed text frames: the same bytes for every connection."""

    shared = True

    @staticmethod
    def text(payload: bytes) -> bytes:
        return Frame(Opcode.TEXT, payload).serialize(mask=False)


class DeflateFramer:
    """Frames through the connection's protocol object (its compression context)."""

    __slots__ = ("proto",)
    shared = False

    def __init__(self, proto: ServerProtocol) -> None:
        self.proto = proto

    def text(self, payload: bytes) -> bytes:
        self.proto.send_text(payload)
        return b"".join(self.proto.data_to_send())


PLAIN = PlainFramer()


class WsConnection(asyncio.Protocol):
    """One upgraded socket: bytes <-> the library's protocol <-> the chat session."""

    __slots__ = ("server", "transport", "proto", "session", "http", "heartbeat", "flood",
                 "held", "paused", "queued", "phase", "ip",
                 "counted_ip", "close_at", "partial", "ends_session", "reason")
    log: EventLog | None = None  # as a session hold it waits on no one log

    def __init__(self, server: WsServer, transport: asyncio.Transport, proto: ServerProtocol,
                 http: HttpSession, ip: str, counted_ip: bool) -> None:
        self.server = server
        self.transport = transport
        self.proto = proto
        self.http = http
        self.ip = ip
        self.counted_ip = counted_ip
        now = server.state.now()
        self.heartbeat = Heartbeat(server.policy, now.mono)
        self.heartbeat.register(now.mono)  # authenticated already: the ping clock runs
        cfg = server.config
        self.flood = TokenBucket(cfg.flood_burst, cfg.flood_rate, now.mono) \
            if cfg.flood_burst > 0 else None
        framer = DeflateFramer(proto) if proto.extensions else PLAIN
        self.session = WsSession(server.state.engine, http, server.stats, framer,
                                 self, cfg.ping_interval)  # we are its Owner
        self.session.member_limit = cfg.join_members
        self.held: HeldInput[str] | None = None  # messages delayed (lazily made)
        self.paused = False
        self.queued = False
        self.phase = Phase.OPEN
        self.close_at = NEVER
        self.partial: list[bytes] | None = None  # fragments of a message in progress
        self.ends_session = True  # False when replaced: the session lives on
        self.reason = ""

    def start(self, response: bytes, tail: bytes) -> None:
        """Send the 101 answer, become the user's sink and the session's hold, say hello."""
        self._write(response)
        user = self.http.user
        user.sink = self.session
        self.http.holds.add(self)
        self.session.hello()
        if tail:
            self.data_received(tail)

    # --- asyncio callbacks -------------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        if self.phase is Phase.CLOSED:
            return
        self.server.stats.bytes_in += len(data)
        self.http.meter.bytes_in += len(data)
        now = self.server.state.now()
        self.heartbeat.received(now.mono)
        proto = self.proto
        proto.receive_data(data)
        for frame in proto.events_received():
            if isinstance(frame, Frame) and self.phase is Phase.OPEN:
                self._receive_frame(frame, now)
        self._pump()
        if proto.parser_exc is not None and self.phase is Phase.OPEN:
            close = proto.close_sent
            code, reason = (close.code, close.reason) if close else (1002, "Protocol error")
            category = "message_too_big" if code == 1009 else f"close_{code}"
            self._finish(reason or f"Protocol error ({code})", category)

    def eof_received(self) -> bool | None:
        return False  # close our side too; connection_lost does the rest

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        if self.session.pending_size and self.phase is Phase.OPEN:
            self.wakeup()

    def connection_lost(self, exc: Exception | None) -> None:
        was = self.phase
        self.phase = Phase.CLOSED
        self._cancel_release()
        if was is Phase.OPEN:
            self.server.stats.reaps["connection_lost" if exc is None else "connection_error"] \
                += 1
            self._leave("Connection closed" if exc is None else f"Read error: {exc}")
        self.server.forget(self)

    # --- frames in ---------------------------------------------------------------------------
    def _receive_frame(self, frame: Frame, now: Now) -> None:
        opcode = frame.opcode
        if opcode is Opcode.TEXT or opcode is Opcode.CONT:
            data = bytes(frame.data)
            if not frame.fin:
                self.partial = (self.partial or []) + [data]
                return
            if self.partial is not None:
                data = b"".join([*self.partial, data])
                self.partial = None
            self._receive_message(data, now)
        elif opcode is Opcode.BINARY:
            self.close(UNSUPPORTED, "Binary frames are not supported: send JSON text",
                       "binary_frame")
        elif opcode is Opcode.PONG:
            stats = self.server.stats
            stats.pongs_received += 1
            if len(frame.data) == 8:  # our Ping's payload: the loop time it was sent at
                sent = struct.unpack("!d", frame.data)[0]
                if 0 <= now.mono - sent < 3600:
                    stats.heartbeat_rtt.observe(now.mono - sent)
        elif opcode is Opcode.CLOSE:  # the library has queued its answer (data_to_send)
            close = self.proto.close_rcvd
            text = clean_text(close.reason, lines=True) if close is not None else ""
            self._finish(f"Quit: {text}" if text else "Client Quit", "quit", quiet=True)

    def _receive_message(self, data: bytes, now: Now) -> None:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            self.close(INVALID_DATA, "Invalid UTF-8 in a text frame", "invalid_utf8")
            return
        flood = self.flood
        if self.held or self.session.waiting \
                or (flood is not None and not flood.take(now.mono)):
            self._hold(text, now.mono)
        else:
            self._process(text, now)

    def _process(self, text: str, now: Now) -> bool:
        """One message through the session; False once the connection is closing."""
        if self.session.receive(text, now):
            self.heartbeat.active(now.mono)
        return self.phase is Phase.OPEN

    def _hold(self, text: str, mono: float) -> None:
        held = self.held
        if held is None:
            server = self.server
            held = self.held = HeldInput(server.loop, self.flood, server.config.recvq, len,
                                         self._process, lambda: self.session.waiting > 0,
                                         server.state.now)
        self.server.stats.lines_delayed += 1
        if not held.hold(text, mono):
            self.close(POLICY, "Excess Flood", "excess_flood")

    def resume(self) -> None:
        """The session's engine writes have settled: go on with the held messages."""
        if self.held is not None and self.phase is Phase.OPEN:
            self.held.resume()

    def _cancel_release(self) -> None:
        if self.held is not None:
            self.held.cancel()

    # --- frames out --------------------------------------------------------------------------
    def wakeup(self) -> None:
        if not self.queued:
            self.queued = True
            self.server.flusher.add(self, self.server.loop)

    def _pump(self) -> None:
        """Move what the library wants sent (pongs, close frames) into our outbox, in order;
        its end-of-stream mark means: close the TCP connection after it."""
        for data in self.proto.data_to_send():
            if data:
                self.session.send_bytes(data)
            elif self.phase is not Phase.CLOSED:
                self._flush()
                self.transport.close()

    def flush(self) -> None:
        """The server's flush turn: write the outbox in one call, enforce the send queue."""
        self.queued = False
        if self.phase is not Phase.OPEN:
            return
        limit = self.server.config.sendq
        if self.paused:
            if self.session.pending_size + self.transport.get_write_buffer_size() > limit:
                self.close(POLICY, "SendQ exceeded", "sendq_exceeded", flush=False)
            return
        size = self.session.pending_size
        self._flush()
        if size > limit and self.transport.get_write_buffer_size() > limit:
            self.close(POLICY, "SendQ exceeded", "sendq_exceeded", flush=False)

    def _flush(self) -> None:
        pending = self.session.take_pending()
        if pending:
            self.server.stats.writes += 1  # pushed output: one write per flush turn
            self._write(b"".join(pending) if len(pending) > 1 else pending[0])

    def _write(self, data: bytes) -> None:
        self.server.stats.bytes_out += len(data)
        self.http.meter.bytes_out += len(data)
        self.transport.write(data)

    # --- heartbeats and closing --------------------------------------------------------------
    def beat(self, now: Now) -> None:
        """The sweep found one of this connection's deadlines due."""
        if self.phase is not Phase.OPEN:  # did not finish closing within close_timeout
            if now.mono >= self.close_at:
                self.close_at = NEVER
                self.transport.abort()
            return
        beat = self.heartbeat.check(now.mono)
        stats = self.server.stats
        if beat is Beat.SEND_PING:
            self.proto.send_ping(struct.pack("!d", now.mono))
            stats.pings_sent += 1
            self.http.meter.heartbeats += 1
            self._pump()
        elif beat is Beat.PING_TIMEOUT:
            stats.timeouts["ping"] += 1
            self.close(INTERNAL, "Ping timeout", "ping_timeout", flush=False)
        elif beat is Beat.IDLE_TIMEOUT:
            stats.timeouts["idle"] += 1
            self.close(POLICY, "Idle timeout", "idle_timeout")

    def close(self, code: int, reason: str, category: str, flush: bool = True) -> None:
        """Send a close frame (after the queued frames, if ``flush``) and leave the rooms
        with ``reason``; the peer has ``--close-timeout`` to answer before it is aborted."""
        if self.phase is not Phase.OPEN:
            return
        if flush:
            self._flush()
        self.session.take_pending()
        self.proto.send_close(code, reason)
        self._finish(reason, category)

    def _finish(self, reason: str, category: str, quiet: bool = False) -> None:
        """The closing handshake is under way: write what the library queued, leave."""
        self.phase = Phase.CLOSING
        self.server.stats.reaps[category] += 1
        level = logging.DEBUG if quiet or category == "shutdown" else logging.INFO
        log.log(level, "%s %s WebSocket closed: %s", self.ip, self.http.user.nick, reason,
                extra=disconnect("ws", self.ip, self.http.user.nick, reason, category))
        self._cancel_release()
        self.session.take_pending()
        for data in self.proto.data_to_send():
            if data:
                self._write(data)
            else:
                self.transport.close()
        self.heartbeat.deadline = NEVER
        self.close_at = self.server.state.mono() + self.server.config.close_timeout
        self._leave(reason)

    def _leave(self, reason: str) -> None:
        """Stop being the sink and the hold; end the session (a QUIT with ``reason``)."""
        if self.reason:
            return
        self.reason = reason
        self.session.close()
        http = self.http
        if http.user.sink is self.session:
            http.user.sink = None
        http.holds.discard(self)
        self.server.detach(self)
        if self.ends_session:
            self.server.api.end_session(http, reason, self.server.state.now())

    def dropped(self, reason: str) -> None:
        """Our user was removed elsewhere (a kill, a session expired on another node)."""
        self.ends_session = False  # there is no user left to quit
        self.close(POLICY, reason, "killed" if reason.startswith("Killed (") else "dropped")

    def end(self) -> None:
        """The session ended elsewhere (``DELETE /api/sessions/me``): close normally."""
        self.ends_session = False
        self.close(NORMAL, "Session ended", "session_ended")

    def replace(self) -> None:
        """Another WebSocket takes this session over; the session goes on there."""
        self.ends_session = False
        self.close(REPLACED, "Replaced by a new connection", "replaced")

    def shutdown(self) -> None:
        """The server stops: close with 1001 after the queued frames."""
        self.close(GOING_AWAY, "Server shutting down", "shutdown")


class WsServer:
    """Every WebSocket connection: the upgrade, the flush turn, the sweep, shutdown."""

    def __init__(self, state: ServerState, api: Api) -> None:
        self.state = state
        self.api = api
        self.config = cfg = state.config
        self.stats = state.stats.ws
        self.policy = HeartbeatPolicy(0.0, cfg.ping_interval, cfg.ping_timeout,
                                      cfg.idle_timeout)
        shortest = min(self.policy.shortest(), cfg.close_timeout or NEVER)
        self.tick = min(MAX_TICK, max(MIN_TICK, shortest / 4))
        self.extensions: list[ServerExtensionFactory] | None = [
            # RFC 7692 with websockets' memory-conscious defaults (its docs/topics/memory).
            ServerPerMessageDeflateFactory(server_max_window_bits=12,
                                           client_max_window_bits=12,
                                           compress_settings={"memLevel": 5})
        ] if cfg.ws_deflate else None
        self.connections: set[WsConnection] = set()
        self.by_token: dict[str, WsConnection] = {}
        # The IRC side's adaptive coalescing (chat.core.pacing), its own window and clock.
        self.flusher = PacedFlusher(cfg.flush_interval, cfg.flush_share, cfg.flush_max,
                                    self.stats)
        self.sweep_handle: asyncio.TimerHandle | None = None
        self.closing = False
        self.all_closed: asyncio.Future[None] | None = None
        self.loop = cast(asyncio.AbstractEventLoop, None)  # set by start()

    def start(self) -> None:
        """Start the sweep (in the running loop)."""
        self.loop = asyncio.get_running_loop()
        self.sweep_handle = self.loop.call_later(self.tick, self._sweep)

    # --- the handoff from HTTP ---------------------------------------------------------------
    def upgrade(self, conn: HttpConnection, request: Request, session: HttpSession,
                tail: bytes) -> None:
        """Complete (or refuse, with the API's JSON error) an authenticated handshake."""
        stats = self.stats
        if self.closing:
            stats.connections_refused += 1
            conn.refuse(request, 503, "shutting_down", "The server is shutting down")
            return
        # The TCP connection was counted against its address (--max-clients-per-ip) when
        # the HTTP side accepted it; that place goes with the socket.
        counted_ip = conn.counted_ip
        handshake = ServerProtocol(extensions=self.extensions, logger=PROTOCOL_LOG)
        response = handshake.accept(WsRequest(request.url.decode("latin-1"),
                                              Headers(request.ws_headers or [])))
        if response.status_code != 101:
            stats.connections_refused += 1
            text = response.body.decode("utf-8", "replace").strip().split("\n")[0]
            # RFC 6455 4.4: tell the client which version we speak.
            conn.refuse(request, response.status_code, "bad_handshake", text,
                        b"sec-websocket-version: 13\r\n")
            return
        proto = ServerProtocol(state=OPEN, max_size=self.config.ws_max_message or None,
                               logger=PROTOCOL_LOG)
        proto.extensions = handshake.extensions  # negotiated by accept(), used from now on
        self._take_over(conn, proto, session, counted_ip, response.serialize(), tail)

    def _take_over(self, conn: HttpConnection, proto: ServerProtocol, session: HttpSession,
                   counted_ip: bool, response: bytes, tail: bytes) -> None:
        old = self.by_token.get(session.token)
        if old is not None:
            old.replace()
        transport = conn.detach()
        ws = WsConnection(self, transport, proto, session, conn.ip, counted_ip)
        transport.set_protocol(ws)
        self.connections.add(ws)
        self.by_token[session.token] = ws
        self.stats.connections_accepted += 1
        self.stats.connections_open += 1
        ws.start(response, tail)

    def detach(self, ws: WsConnection) -> None:
        """``ws`` no longer speaks for its session."""
        if self.by_token.get(ws.http.token) is ws:
            del self.by_token[ws.http.token]

    def forget(self, ws: WsConnection) -> None:
        """``ws``'s socket is gone: give back its admission."""
        if ws not in self.connections:
            return
        self.connections.discard(ws)
        self.stats.connections_open -= 1
        self.state.admission.leave(ws.ip, ws.counted_ip)
        if not self.connections and self.all_closed is not None \
                and not self.all_closed.done():
            self.all_closed.set_result(None)

    # --- flushing, the sweep, shutdown -------------------------------------------------------
    def _sweep(self) -> None:
        """The one heartbeat timer; a connection that fails in it is aborted and logged."""
        try:
            now = self.state.now()
            due = [ws for ws in self.connections
                   if ws.heartbeat.deadline <= now.mono or ws.close_at <= now.mono]
            for ws in due:
                try:
                    ws.beat(now)
                except Exception:
                    log.exception("heartbeat of WebSocket %s failed", ws.ip)
                    ws.transport.abort()
        finally:
            self.sweep_handle = self.loop.call_later(self.tick, self._sweep)

    async def shutdown(self, timeout: float) -> None:  # noqa: ASYNC109 - the assembler's call
        """Close every connection with 1001, then abort what is left after ``timeout``."""
        self.closing = True
        if self.sweep_handle is not None:
            self.sweep_handle.cancel()
            self.sweep_handle = None
        open_now = [ws for ws in self.connections if ws.phase is Phase.OPEN]
        for ws in open_now:  # first nobody gets more frames, so nobody sees the others quit
            ws.session.closed = True
        for ws in open_now:
            ws.shutdown()
        if not self.connections:
            return
        self.all_closed = self.loop.create_future()
        await drain(lambda: self.connections, self.all_closed, timeout, self._abort_all,
                    "WebSocket")

    def _abort_all(self) -> None:
        for ws in list(self.connections):
            ws.transport.abort()
