"""The HTTP/1.1 listener: connections (:mod:`chat.http.connection`), one housekeeping tick for
the whole server (Date header, session expiry sweep) and graceful shutdown: stop accepting,
answer held requests, close idle connections, let requests in flight finish, abort what
remains at the timeout.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from email.utils import formatdate

from ..runtime import PacedFlusher, drain, trim_memory
from ..state import ServerState
from .api import Api
from .connection import HttpConnection, Upgrader
from .static import load

log = logging.getLogger(__name__)

MAX_TICK = 1.0         # seconds between housekeeping ticks (the Date header's resolution)
TRIM_AFTER = 1000      # sessions expired that make it worth trimming the heap...
TRIM_EVERY = 5.0       # ...at most once per this many seconds
YOUNG_DELAY = 0.05     # seconds a new connection's first deadline waits to be timed

__all__ = ["HttpConnection", "HttpServer", "Upgrader"]


class HttpServer:
    """The HTTP listener, its connections and the housekeeping tick."""

    def __init__(self, state: ServerState) -> None:
        self.state = state
        self.config = state.config
        self.stats = state.stats.http
        self.api = Api(state, load())
        self.upgrader: Upgrader | None = None
        cfg = state.config  # SSE output coalesced like IRC's and the WebSocket's
        self.streams = PacedFlusher(cfg.flush_interval, cfg.flush_share, cfg.flush_max,
                                     self.stats)
        self.connections: set[HttpConnection] = set()
        self.closing = False
        self.probes = 0                # connections over --max-clients waiting to probe
        self._expired_since_trim = 0
        self._next_trim = 0.0
        self.date = b""                # "date: ...\r\n", refreshed by the tick
        self.loop: asyncio.AbstractEventLoop | None = None
        self.connection_class: type[HttpConnection] | None = None  # made by start()
        self._servers: list[asyncio.Server] = []  # plain and/or TLS
        self._tick: asyncio.TimerHandle | None = None
        self._all_closed: asyncio.Future[None] | None = None
        # New connections whose header deadline is not timed yet, and the one timer that
        # times them (see time_later).
        self.young: set[HttpConnection] = set()  # a closed one leaves at once (freed)
        self._young: asyncio.TimerHandle | None = None
        timeout = self.config.header_timeout
        self._young_delay = min(YOUNG_DELAY, timeout / 4) if timeout > 0 else YOUNG_DELAY
        self._refresh_date()

    async def start(self, host: str, port: int, reuse_port: bool = False,
                    tls: ssl.SSLContext | None = None) -> int:
        """Listen on ``host:port`` (0: a free port; ``tls``: HTTPS and WSS); returns the
        bound port.  Call once per listener; the housekeeping tick starts with the first."""
        self.loop = asyncio.get_running_loop()
        timeout = self.config.header_timeout or 10.0
        if self.connection_class is None:
            self.connection_class = HttpConnection.of_server(self)
        server = await self.loop.create_server(
            self.connection_class, host, port, backlog=2048, reuse_address=True,
            reuse_port=reuse_port, ssl=tls, ssl_handshake_timeout=timeout if tls else None)
        self._servers.append(server)
        if self._tick is None:
            self._schedule_tick()
        bound: int = server.sockets[0].getsockname()[1]
        return bound

    def close_listener(self) -> None:
        """Stop accepting (idempotent, safe before start)."""
        for server in self._servers:
            server.close()

    async def shutdown(self, timeout: float) -> None:  # noqa: ASYNC109 (the assembler calls it)
        """Answer held requests, close idle connections, abort the rest after ``timeout``."""
        self.closing = True
        self.close_listener()
        if self._tick is not None:
            self._tick.cancel()
            self._tick = None
        self._all_closed = asyncio.get_running_loop().create_future()
        for conn in list(self.connections):
            conn.begin_shutdown()
        await drain(lambda: self.connections, self._all_closed, timeout, self._abort_all,
                    "HTTP")
        if self._young is not None:
            self._young.cancel()
            self._young = None
        self.young.clear()

    def _abort_all(self) -> None:
        for conn in list(self.connections):
            conn.abort("shutdown")

    def connection_closed(self, conn: HttpConnection) -> None:
        self.connections.discard(conn)
        self.young.discard(conn)
        if not self.connections and self._all_closed is not None \
                and not self._all_closed.done():
            self._all_closed.set_result(None)

    def time_later(self, conn: HttpConnection) -> None:
        """Start ``conn``'s header timer in a little while (at most a quarter of the
        timeout), together with every connection accepted meanwhile.  A connection that
        has its answer before (a ``Connection: close`` request: closed; a keep-alive one:
        its keep-alive deadline timed on answering) never makes a timer of its own: a
        uvloop timer made and cancelled costs about 2 µs, a few per cent of such a request.
        """
        self.young.add(conn)
        if self._young is None:
            assert self.loop is not None
            self._young = self.loop.call_later(self._young_delay, self._time_young)

    def _time_young(self) -> None:
        self._young = None
        young, self.young = self.young, set()
        for conn in young:
            conn.start_timer()

    # --- housekeeping: one timer for the whole server -----------------------------------------
    def _schedule_tick(self) -> None:
        interval = MAX_TICK
        if self.config.session_timeout > 0:  # sweep often enough to be 25 % late at worst
            interval = max(0.01, min(interval, self.config.session_timeout / 4))
        assert self.loop is not None
        self._tick = self.loop.call_later(interval, self._on_tick)

    def _on_tick(self) -> None:
        self._refresh_date()
        try:
            expired = self.api.sweep(self.state.now())
        except Exception:  # a bug here must not stop the tick (sessions would never expire)
            log.exception("session sweep failed")
        else:
            self._expired_since_trim += expired
            now = self.state.mono()
            if self._expired_since_trim >= TRIM_AFTER and now >= self._next_trim:
                # A mass expiry: give the freed memory back (a full collection and a heap
                # trim cost tens of ms, so not more often than every TRIM_EVERY seconds).
                self._expired_since_trim = 0
                self._next_trim = now + TRIM_EVERY
                trim_memory()
        self._schedule_tick()

    def _refresh_date(self) -> None:
        self.date = b"date: %s\r\n" % formatdate(usegmt=True).encode("ascii")
