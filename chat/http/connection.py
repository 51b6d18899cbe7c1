"""One HTTP/1.1 connection: a raw ``asyncio.Protocol`` around the httptools parser.

It owns sockets and time for the short-connection side; what a request means is decided by
:class:`chat.http.api.Api`, which returns an answer value; the connection writes it, or
creates and owns the held request it describes (:mod:`chat.http.holds`).  Per connection:

* keep-alive exactly as HTTP says: 1.1 is persistent unless ``Connection: close``, 1.0
  closes unless ``Connection: keep-alive``; pipelined requests are queued and answered in
  order, also behind a held long poll; HEAD answers the GET headers without a body;
* limits from :class:`chat.config.Config`: header size (431) and body size (413), the
  header/body read deadline against slowloris (408, then close), the keep-alive idle
  timeout; unparsable input gets 400 and the connection closes;
* one lazily moved deadline: a single ``call_at`` per connection that only reschedules
  itself when it fires early, so a request costs no timer churn (see :meth:`_arm`);
* flow control: ``pause_writing`` stops answering queued requests; a long pipeline pauses
  reading; a peer that stops reading is dropped after the keep-alive timeout;
* metering: the bytes, and the TCP connection, of each request are charged to its session's
  :class:`~chat.http.sessions.Meter` (the API charges requests and empty answers);
* CORS: responses to an allowed ``Origin`` carry its headers (:mod:`chat.http.cors`);
* the WebSocket handoff: an ``Upgrade`` request that the API accepts (``SwitchProtocols``)
  goes, with the bytes after its head, to the server's ``upgrader`` (the WebSocket adapter,
  wired by the assembler), which takes the transport over (:meth:`HttpConnection.detach`)
  or refuses the handshake with a JSON error (:meth:`HttpConnection.refuse`).  Any other
  ``Upgrade`` request gets a normal answer, then the connection closes.

The listener, the housekeeping tick and shutdown are :mod:`chat.http.server`'s.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import math
from collections import deque
from typing import ClassVar, Protocol, cast

import httptools

from ..config import Config
from ..core.sharing import per_server
from ..core.stats import TransportStats
from ..logs import disconnect
from ..runtime import PacedFlusher
from ..state import REFUSE_FULL, REFUSE_PER_IP, ServerState
from .answers import Answer, Later, Reply, StreamEvents, SwitchProtocols, WaitForEvents
from .api import Api
from .cors import Cors
from .holds import Awaiting, EventStream, Held, LongPoll
from .sessions import HttpSession, Meter
from .wire import (
    CONN_CLOSE,
    CONN_KEEP,
    CONN_KEEP_10,
    CONTINUE,
    JSON_TYPE,
    Request,
    encode_response,
    encode_stream_head,
    error_body,
)

log = logging.getLogger(__name__)

MAX_PIPELINE = 32      # queued requests per connection before reading pauses
MAX_TAIL = 65536       # bytes after an Upgrade head kept until the handshake is decided
PROBE_SLOTS = 16       # connections over --max-clients let in at once for /healthz, /readyz
PROBE_TIMEOUT = 2.0    # seconds such a connection has to send its request
PROBE_PATHS = frozenset({b"/healthz", b"/readyz"})
INF = math.inf


class Phase(enum.Enum):
    """What a connection is doing; decides what its one deadline means when it passes."""

    READING = "reading"  # a request (or the first one) has begun: header/body deadline
    IDLE = "idle"        # between requests: keep-alive deadline (or a stalled reader)
    HELD = "held"        # a long poll or event stream owns the connection: its deadline
    CLOSED = "closed"


class _StopParsing(Exception):
    """Raised from a parser callback once a request is refused (413, 431)."""


class Upgrader(Protocol):
    """Takes an authenticated WebSocket handshake over (the WebSocket adapter)."""

    def __call__(self, conn: HttpConnection, request: Request, session: HttpSession,
                 tail: bytes) -> None: ...


class Listener(Protocol):
    """What a connection needs of its server (:class:`chat.http.server.HttpServer`)."""

    api: Api
    config: Config
    stats: TransportStats
    state: ServerState
    loop: asyncio.AbstractEventLoop | None
    connections: set[HttpConnection]
    closing: bool
    probes: int
    date: bytes
    upgrader: Upgrader | None
    streams: PacedFlusher

    def connection_closed(self, conn: HttpConnection) -> None: ...

    def time_later(self, conn: HttpConnection) -> None: ...


class HttpConnection(asyncio.Protocol):
    """One client connection: parse, queue, answer in order, time out, close."""

    __slots__ = ("transport", "parser", "phase", "request", "queue", "held", "deadline",
                 "timer", "timer_at", "head_raw", "head_exact", "in_head", "counted",
                 "counted_ip", "write_paused", "read_paused", "discard", "ip", "tail",
                 "unclaimed", "framing", "read_body", "lingering", "probe_only", "owner")

    # What every connection of one server shares: class attributes of the subclass that
    # :meth:`of_server` makes once per server (the listener's protocol factory), not eight
    # slots to fill per connection (64 bytes, and a few per cent of a one-request one).
    server: ClassVar[Listener]
    api: ClassVar[Api]
    config: ClassVar[Config]
    stats: ClassVar[TransportStats]
    loop: ClassVar[asyncio.AbstractEventLoop]
    max_header: ClassVar[int]
    max_body: ClassVar[int]
    cors: ClassVar[Cors | None]

    @classmethod
    def of_server(cls, server: Listener) -> type[HttpConnection]:
        """The connection class of one server: its listeners' protocol factory."""
        assert server.loop is not None
        cfg, api = server.config, server.api
        return per_server(cls, server=server, api=api, config=cfg, stats=server.stats,
                          loop=server.loop, max_header=cfg.max_header, max_body=cfg.max_body,
                          cors=api.cors if api.cors.enabled else None)

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.phase = Phase.READING
        self.request: Request | None = None     # the request being parsed
        self.queue: deque[Request] = deque()    # parsed, not answered yet (pipelining)
        self.held: Held | None = None
        self.deadline = INF
        self.timer: asyncio.TimerHandle | None = None
        self.timer_at = INF
        self.head_raw = 0      # bytes of whole reads that arrived inside one request head
        self.head_exact = 0    # bytes of the head as parsed (URL and headers)
        self.in_head = False
        self.counted = False   # admitted: holds a place in the server state's admission
        self.counted_ip = False  # ...and one of its address's (--max-clients-per-ip)
        self.ip = ""
        self.write_paused = False
        self.read_paused = False
        self.discard = False   # ignore further input (after a closing request or an error)
        self.tail: bytes | None = None   # bytes after an Upgrade request's head
        self.unclaimed = 0               # bytes read, not yet charged to a session
        self.owner: Meter | None = None  # the session whose metered request came first
        self.framing = 0       # bytes of a body's chunk framing and trailers so far
        self.read_body = 0     # body bytes decoded from the current read
        self.lingering = False  # answered and half-closed: reading until the peer closes
        self.probe_only = False  # over --max-clients: only /healthz and /readyz answered

    # --- asyncio callbacks ----------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        server, stats = self.server, self.stats
        server.connections.add(self)
        stats.connections_accepted += 1
        peer = transport.get_extra_info("peername")
        self.ip = str(peer[0]) if peer else "unknown"
        refusal: str | None = "closing"
        if not server.closing:
            refusal, self.counted_ip = server.state.admission.admit(self.ip, per_ip=True)
        if refusal == REFUSE_FULL and server.probes < PROBE_SLOTS:
            # Orchestrators probe a full server too: it is alive, and not ready.
            server.probes += 1
            self.probe_only = True
            self._arm(self.loop.time() + min(PROBE_TIMEOUT, self.config.header_timeout
                                             or PROBE_TIMEOUT))
            return
        if refusal is not None:
            stats.connections_refused += 1
            if refusal == REFUSE_PER_IP:
                status, code, text = (429, "too_many_connections",
                                      "Too many connections from your address")
            else:
                status, code, text = 503, "server_full", "Too many connections, try again later"
            stats.errors[code] += 1
            self._write(encode_response(status, error_body(code, text), CONN_CLOSE,
                                        server.date, extra=b"retry-after: 1\r\n"))
            self._close(linger=True)
            return
        stats.connections_open += 1
        self.counted = True
        if self.config.header_timeout > 0:
            # The first request's deadline, timed later by the server for a whole batch
            # (time_later): most connections have their answer by then and need no timer.
            self.deadline = self.loop.time() + self.config.header_timeout
            server.time_later(self)

    def data_received(self, data: bytes) -> None:
        self.stats.bytes_in += len(data)
        self.unclaimed += len(data)
        if self.tail is not None:  # an upgrade waits for its answer: keep what follows
            if len(self.tail) + len(data) <= MAX_TAIL:
                self.tail += data
            return
        if self.discard:
            return
        if self.in_head:  # the whole read belongs to a head that has not ended
            self.head_raw += len(data)
        in_body = self.request if not self.in_head else None
        self.read_body = 0
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            # httptools stops after an Upgrade request's head.  A WebSocket handshake the
            # API accepts switches protocols with the bytes that followed; anything else
            # is answered and the connection closes.
            self.discard = True
            if self.queue:
                self.queue[-1].keep_alive = False
                self.tail = data[exc.args[0]:] if exc.args else b""
            elif self.held is None:
                self._close()
                return
        except httptools.HttpParserError as exc:
            if not self.discard:  # not a refusal of ours, nor data after a closing request
                if "HTTP version" in str(exc):
                    self._refuse(505, "http_version_not_supported",
                                 "Only HTTP/1.0 and HTTP/1.1 are spoken here")
                else:
                    self._refuse(400, "bad_request", f"Malformed HTTP request: {exc}")
        if self.in_head and self.head_raw > self.max_header:
            self._refuse(431, "headers_too_large",
                         f"Request head larger than {self.max_header} bytes")
        elif in_body is not None and in_body is self.request:
            # The whole read fell inside one body: what was not body is chunk framing,
            # chunk extensions or trailers, which httptools buffers without a limit of
            # its own (a trailer value that never ends).  They count like a head.
            self.framing += len(data) - self.read_body
            if self.framing > self.max_header:
                self._refuse(431, "headers_too_large",
                             f"Chunk framing and trailers larger than {self.max_header} bytes")
        self._run()

    def connection_lost(self, exc: Exception | None) -> None:
        self.phase = Phase.CLOSED
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        held, self.held = self.held, None
        if held is not None:
            held.abandon()
        self.queue.clear()
        if self.counted:
            self.counted = False
            self.stats.connections_open -= 1
            self.server.state.admission.leave(self.ip, self.counted_ip)
        if self.probe_only:
            self.probe_only = False
            self.server.probes -= 1
        self.server.connection_closed(self)
        # Break the cycles through the transport and the parser (whose callbacks are our
        # bound methods): refcounting frees a closed connection at once, not the cyclic
        # collector later (about ten objects per connection, a ``Connection: close``
        # request's every time).
        self.transport = None
        del self.parser

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        self._run()

    # --- httptools callbacks -------------------------------------------------------------------
    def on_message_begin(self) -> None:
        self.request = Request()
        self.request.ip = self.ip
        self.in_head = True
        self.head_raw = 0
        self.head_exact = 0
        self.framing = 0

    def on_url(self, url: bytes) -> None:
        assert self.request is not None
        self.request.url += url
        self.head_exact += len(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self.head_exact += len(name) + len(value) + 4
        request = self.request
        assert request is not None
        name = name.lower()
        if name == b"authorization":
            request.authorization = value
        elif name == b"content-length":
            request.has_body = True
            request.content_length = int(value)  # llhttp has checked the digits
        elif name == b"transfer-encoding":
            request.has_body = True
        elif name == b"last-event-id":
            request.last_event_id = value
        elif name == b"expect":
            request.expect_continue = value.lower() == b"100-continue"
        elif name == b"origin":
            request.origin = value
        elif name == b"upgrade":
            request.upgrade = value
            request.keep_header(name, value)
        elif name == b"connection" or name.startswith(b"sec-websocket-"):
            request.keep_header(name, value)
        elif name == b"access-control-request-method":
            request.preflight = value
        elif name == b"if-none-match":
            request.if_none_match = value
        elif name == b"host":
            request.host = value
            request.hosts += 1

    def on_headers_complete(self) -> None:
        self.in_head = False
        request = self.request
        assert request is not None
        parser = self.parser
        request.method = parser.get_method().decode("ascii", "replace")
        request.keep_alive = parser.should_keep_alive()
        version = parser.get_http_version()
        request.http10 = version == "1.0"
        if self.head_exact > self.max_header:
            self._stop(request, 431, "headers_too_large",
                       f"Request head larger than {self.max_header} bytes")
        if version != "1.1" and version != "1.0":  # as nginx: 0.9 is no request, 2+ is 505
            if version.startswith("0."):
                self._stop(request, 400, "bad_request", "HTTP/0.9 is not spoken here")
            self._stop(request, 505, "http_version_not_supported",
                       "Only HTTP/1.0 and HTTP/1.1 are spoken here")
        if request.hosts > 1 or (request.hosts == 0 and not request.http10):
            self._stop(request, 400, "bad_request",  # RFC 9112 3.2
                       "An HTTP/1.1 request needs exactly one Host header")
        if request.content_length > self.max_body:
            self._stop(request, 413, "body_too_large",
                       f"Request body larger than {self.max_body} bytes")
        if request.expect_continue and not self.queue and self.held is None:
            self._write(CONTINUE)

    def on_body(self, body: bytes) -> None:
        request = self.request
        assert request is not None
        request.body += body
        self.read_body += len(body)
        if len(request.body) > self.max_body:  # chunked bodies have no Content-Length
            self._stop(request, 413, "body_too_large",
                       f"Request body larger than {self.max_body} bytes")

    def on_message_complete(self) -> None:
        request = self.request
        assert request is not None
        self.request = None
        self.queue.append(request)
        if self.phase is Phase.READING:  # the next request's deadline starts when it begins
            self.phase = Phase.IDLE
        if not request.keep_alive:
            self.discard = True  # whatever follows a closing request is never answered

    # --- answering ----------------------------------------------------------------------------
    def _run(self) -> None:
        """Answer queued requests in order until one is held or writing is paused."""
        queue = self.queue
        while queue and self.held is None and not self.write_paused \
                and self.phase is not Phase.CLOSED:
            request = queue.popleft()
            self.stats.requests += 1
            if request.error is not None:
                status, code, message = request.error
                self.respond(request, status, error_body(code, message), close=True,
                             linger=True)
                break
            if self.probe_only:
                self._probe(request)
                break
            answer = self.api.handle(request, self.server.state.now())
            if request.meter is not None:
                self._claim(request.meter)
            else:  # unmetered (a meter reading, a sign-in): its bytes are nobody's
                self.unclaimed = 0
            self._answer(request, answer)
        self._settle()

    def _probe(self, request: Request) -> None:
        """A connection over ``--max-clients``: a probe gets its answer, anything else 503;
        then the connection closes."""
        self.stats.connections_refused += 1
        path = request.url.partition(b"?")[0]
        if path in PROBE_PATHS:
            answer = self.api.handle(request, self.server.state.now())
            if isinstance(answer, Reply):
                self.respond(request, answer.status, answer.body, answer.headers,
                             answer.content_type, close=True, linger=True)
                return
        self.stats.errors["server_full"] += 1
        self.respond(request, 503, error_body("server_full", "Too many connections, try "
                                              "again later"), b"retry-after: 1\r\n",
                     close=True, linger=True)

    def _claim(self, meter: Meter) -> None:
        """Charge the bytes read so far to ``meter``, and the connection if this is its first
        metered request: the session opened it (an unmetered sign-in before does not claim
        it; a browser's pooled connection belongs to whichever session used it first)."""
        meter.bytes_in += self.unclaimed
        self.unclaimed = 0
        if self.owner is None:
            self.owner = meter
            meter.connections += 1

    def _answer(self, request: Request, answer: Answer) -> None:
        """Write a reply, or create the held request the answer describes."""
        if isinstance(answer, Reply):
            self.respond(request, answer.status, answer.body, answer.headers,
                         answer.content_type)
        elif isinstance(answer, WaitForEvents):
            LongPoll(self.api, self, request, answer.session, answer.log, answer.since,
                     answer.limit, answer.timeout)
        elif isinstance(answer, StreamEvents):
            EventStream(self.api, self, request, answer.session, answer.log, answer.since,
                        self.server.streams)
        elif isinstance(answer, Later):
            Awaiting(self, request, answer)
        elif isinstance(answer, SwitchProtocols):
            upgrader = self.server.upgrader
            if upgrader is None:
                self.refuse(request, 501, "not_implemented", "No WebSocket support here")
            else:
                upgrader(self, request, answer.session, self.tail or b"")

    def _settle(self) -> None:
        """Pick the phase (and so the deadline) after answering; apply reading back-pressure."""
        if self.phase is Phase.CLOSED or self.held is not None:
            return
        transport = self.transport
        assert transport is not None
        if len(self.queue) >= MAX_PIPELINE:
            if not self.read_paused:
                self.read_paused = True
                transport.pause_reading()
        elif self.read_paused:
            self.read_paused = False
            transport.resume_reading()
        if self.write_paused and self.queue:  # the peer is not reading our answers
            self.phase = Phase.IDLE
            self._arm(self.loop.time() + self.config.keepalive_timeout)
        elif self.request is not None:
            if self.phase is not Phase.READING:  # a request began in this read
                self.phase = Phase.READING
                timeout = self.config.header_timeout
                self._arm(self.loop.time() + timeout if timeout > 0 else INF)
        else:
            self.phase = Phase.IDLE
            self._arm(self.loop.time() + self.config.keepalive_timeout)

    def respond(self, request: Request, status: int, body: bytes, extra: bytes = b"",
                content_type: bytes = JSON_TYPE, close: bool = False,
                linger: bool = False) -> None:
        """Write one complete response to ``request``; close afterwards if it must
        (``linger``: the peer may still be sending, so close gracefully, see
        :meth:`_close`)."""
        keep = (request.keep_alive and not close and not self.server.closing
                and self.config.keepalive_timeout > 0)
        conn = (CONN_KEEP_10 if request.http10 else CONN_KEEP) if keep else CONN_CLOSE
        if self.cors is not None:
            extra += self.cors.headers(request.origin)
        data = encode_response(status, body, conn, self.server.date, extra=extra,
                               content_type=content_type, head=request.method == "HEAD")
        self._write(data)
        if request.meter is not None:
            request.meter.bytes_out += len(data)
        if not keep:
            self._close(linger)

    def refuse(self, request: Request, status: int, code: str, message: str,
               extra: bytes = b"") -> None:
        """Answer a refused WebSocket handshake with the API's JSON error, then close."""
        self.stats.errors[code] += 1
        self.respond(request, status, error_body(code, message), extra, close=True)

    def detach(self) -> asyncio.Transport:
        """Hand the socket to another protocol (a WebSocket); this object is done with it.

        The connection's admission places go with the socket: the new owner gives them
        back (``state.admission.leave(ip, counted_ip)``, ``counted_ip`` read before this
        call) when the socket closes.
        """
        transport = self.transport
        assert transport is not None
        self.phase = Phase.CLOSED
        self.discard = True
        self.queue.clear()
        self.tail = None
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.counted:
            self.counted = False
            self.counted_ip = False  # the new owner took it over
            self.stats.connections_open -= 1
        if self.read_paused:
            self.read_paused = False
            transport.resume_reading()
        self.server.connection_closed(self)
        return transport

    def hold(self, held: Held, deadline: float) -> None:
        """Let ``held`` own the connection; its ``expire`` runs at loop time ``deadline``."""
        self.held = held
        self.phase = Phase.HELD
        self._arm(deadline)

    def rearm(self, deadline: float) -> None:
        """Move the held request's deadline (an SSE stream's next heartbeat)."""
        self._arm(deadline)

    def release(self, request: Request, reply: Reply) -> None:
        """The held request finishes with ``reply``; go on with the pipeline."""
        self.held = None
        if self.phase is Phase.CLOSED:
            return
        self.phase = Phase.IDLE
        self.respond(request, reply.status, reply.body, reply.headers, reply.content_type)
        self._run()

    def resume(self, request: Request, answer: Answer) -> None:
        """A request that waited for the engine has its answer: carry it out, go on."""
        self.held = None
        if self.phase is Phase.CLOSED:
            return
        self.phase = Phase.IDLE
        self._answer(request, answer)
        self._run()

    def start_stream(self, request: Request, held: Held) -> bool:
        """Write an SSE head and let ``held`` own the connection. True if chunked (1.1)."""
        chunked = not request.http10
        keep = request.keep_alive and chunked and not self.server.closing
        cors = self.cors.headers(request.origin) if self.cors is not None else b""
        head = encode_stream_head(CONN_KEEP if keep else CONN_CLOSE, self.server.date + cors,
                                  chunked)
        self._write(head)
        if request.meter is not None:
            request.meter.bytes_out += len(head)
        if not keep:
            request.keep_alive = False
        self.hold(held, INF)
        return chunked

    def end_stream(self, request: Request, tail: bytes) -> None:
        """Finish a stream with ``tail``; a chunked one leaves the connection reusable."""
        self.held = None
        if self.phase is Phase.CLOSED:
            return
        self._write(tail)
        if request.meter is not None:
            request.meter.bytes_out += len(tail)
        if not request.keep_alive or self.server.closing:
            self._close()
            return
        self.phase = Phase.IDLE
        self._run()

    def write(self, data: bytes) -> None:
        """Write part of a streamed response."""
        if self.phase is not Phase.CLOSED:
            self._write(data)

    def buffered(self) -> int:
        """Bytes written but not yet taken by the peer."""
        return self.transport.get_write_buffer_size() if self.transport is not None else 0

    def abort(self, reason: str) -> None:
        """Drop the connection at once (no flush), counting ``reason``."""
        self.stats.reaps[reason] += 1
        log.debug("HTTP connection aborted: %s", reason,
                  extra=disconnect("http", self.ip, None, reason, reason))
        self.phase = Phase.CLOSED
        if self.transport is not None:
            self.transport.abort()

    def begin_shutdown(self) -> None:
        """Server stopping: idle connections close now, busy ones after their answer."""
        if self.phase is Phase.CLOSED:
            return
        if self.held is not None:
            self.held.shutdown()
        elif self.request is None and not self.queue:
            self._close()

    # --- internals ------------------------------------------------------------------------------
    def _write(self, data: bytes) -> None:
        transport = self.transport
        if transport is None:  # closed: nobody to write to
            return
        self.stats.bytes_out += len(data)
        transport.write(data)

    def _close(self, linger: bool = False) -> None:
        """Close after the buffered output is flushed; no more input is processed.

        With ``linger`` (an error answer to a peer that may still be sending) the close is
        graceful, as nginx's lingering close: closing a socket with unread input makes the
        kernel send a reset, which can destroy our answer before the peer has read it.  So
        the answer is flushed, then our side half-closed (FIN), and input is read and
        thrown away until the peer closes or ``--close-timeout`` has passed.
        """
        self.phase = Phase.CLOSED
        self.discard = True
        self.queue.clear()
        transport = self.transport
        if transport is None:
            return
        timeout = self.config.close_timeout
        if not linger or timeout <= 0 or self.lingering or not transport.can_write_eof():
            transport.close()
            return
        self.lingering = True
        self.tail = None
        transport.write_eof()  # sent once the answer is out
        if self.read_paused:
            self.read_paused = False
            transport.resume_reading()
        self._arm(self.loop.time() + timeout)

    def _end_linger(self) -> None:
        """The peer neither closed nor took our answer within ``--close-timeout``."""
        self.lingering = False
        transport = self.transport
        if transport is None:
            return
        if transport.get_write_buffer_size():
            transport.abort()
        else:
            transport.close()

    def _refuse(self, status: int, code: str, message: str) -> None:
        """Queue an error answer after the requests already parsed, then stop reading."""
        request = self.request or Request()
        self.request = None
        self.in_head = False
        request.error = (status, code, message)
        request.keep_alive = False
        self.queue.append(request)
        self.discard = True
        self.stats.errors[code] += 1

    def _stop(self, request: Request, status: int, code: str, message: str) -> None:
        self._refuse(status, code, message)
        raise _StopParsing(code)

    def _arm(self, deadline: float) -> None:
        """Move the one deadline; reschedule the timer only if it would fire too late.

        Activity moves the deadline later almost always, and then nothing happens here: the
        timer fires early, sees the later deadline and reschedules itself once (the aiohttp
        approach).  That keeps call_at/cancel off the per-request path.
        """
        self.deadline = deadline
        if deadline < self.timer_at:
            if self.timer is not None:
                self.timer.cancel()
            self.timer = self.loop.call_at(deadline, self._on_timer)
            self.timer_at = deadline

    def start_timer(self) -> None:
        """Time the deadline set without a timer at connection_made (if nothing has timed a
        later one meanwhile, and the connection is still open)."""
        if self.timer is None and self.phase is not Phase.CLOSED and self.deadline < INF:
            self._arm(self.deadline)

    def _on_timer(self) -> None:
        self.timer = None
        self.timer_at = INF
        if self.phase is Phase.CLOSED:
            if self.lingering and self.deadline <= self.loop.time():
                self._end_linger()
            elif self.lingering:
                self._arm(self.deadline)
            return
        if self.deadline > self.loop.time():
            if self.deadline < INF:
                self._arm(self.deadline)
            return
        self.deadline = INF
        if self.phase is Phase.HELD and self.held is not None:
            self.held.expire()
        elif self.phase is Phase.READING:
            self.stats.timeouts["header"] += 1
            self.stats.reaps["header_timeout"] += 1
            self.stats.errors["request_timeout"] += 1
            self._write(encode_response(
                408, error_body("request_timeout", "Request not received in time"),
                CONN_CLOSE, self.server.date))
            self._close(linger=True)
        elif self.write_paused:
            self.abort("write_stall")
        else:
            self.stats.timeouts["keepalive"] += 1
            self.stats.reaps["keepalive_timeout"] += 1
            self._close()
