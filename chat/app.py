"""The assembler: one server state; the IRC, HTTP (with WebSocket) and UDP listeners; one loop.

:class:`ChatServer` is what ``chat serve``, the tests and the lab start.  It builds the
:class:`~chat.state.ServerState` (config, engine, counters, clocks, admission) and hands it
to each transport adapter; nothing imports this module but the CLI and the tests.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import ssl
import time
from collections.abc import Callable
from contextlib import suppress

from .config import Config
from .core.stats import Stats
from .engine import Engine, open_engine
from .http.server import HttpServer
from .irc.server import IrcServer
from .runtime import default_max_clients, freeze_startup_heap
from .state import ServerState
from .tls import reload, server_context
from .udp.server import UdpServer
from .ws.server import WsServer

log = logging.getLogger(__name__)


class ChatServer:
    """Both listeners around one engine.  ``await start()``, later ``await shutdown()``.

    ``wall`` replaces ``time.time`` for event timestamps (tests step it to show that no
    deadline depends on it); deadlines run on the event loop's monotonic clock.
    """

    def __init__(self, config: Config, *, wall: Callable[[], float] = time.time,
                 reuse_port: bool = False) -> None:
        self.config = config
        self.reuse_port = reuse_port  # a worker among several on the same ports
        engine = open_engine(config, epoch=int(wall() * 1000))
        self.state = ServerState(config, engine,
                                 max_clients=config.max_clients or default_max_clients(),
                                 wall=wall)
        self.irc = IrcServer(self.state)
        self.http = HttpServer(self.state)
        self.ws = WsServer(self.state, self.http.api)
        self.http.upgrader = self.ws.upgrade  # GET /api/ws hands its socket over
        self.irc_port = 0      # plain IRC (0: none, with --no-plain-irc)
        self.ircs_port = 0     # IRC over TLS (0: no TLS)
        self.http_port = 0     # HTTP (HTTPS itself when TLS is on without --https-port)
        self.https_port = 0    # HTTPS and WSS (0: no TLS)
        self.tls: ssl.SSLContext | None = None
        self.udp = UdpServer(self.state, self.http.api)
        self.udp_port = 0      # the udp lane (0: none, with --no-udp)
        self._closed = asyncio.Event()

    # Shortcuts for tests and the lab's in-process use.
    @property
    def engine(self) -> Engine:
        return self.state.engine

    @property
    def stats(self) -> Stats:
        return self.state.stats

    async def start(self) -> None:
        """Bind both listeners (raises OSError if a port is taken; nothing stays bound)."""
        cfg = self.config
        self.state.mono = asyncio.get_running_loop().time
        self.state.started_mono = self.state.mono()
        try:
            await self.state.engine.start()
        except Exception as exc:
            raise OSError(f"engine {cfg.engine}: {exc}") from exc
        try:
            if cfg.tls_cert:
                self.tls = server_context(cfg.tls_cert, cfg.tls_key)
            await self._listen()
            self.ws.start()
            if cfg.udp:
                self.udp_port = await self.udp.start(cfg.host, cfg.udp_port, self.http_port,
                                                     self.reuse_port)
        except BaseException:
            self.irc.close_listener()
            self.http.close_listener()
            await self.udp.shutdown(0)
            await self.state.engine.close()
            raise
        irc = f"IRC on {cfg.host}:{self.irc_port}" if self.irc_port else "no plain IRC"
        http = f"HTTP on {cfg.host}:{self.http_port}" if self.http_port else "no plain HTTP"
        udp = f"UDP on {cfg.host}:{self.udp_port}" if self.udp_port else "no UDP"
        log.info("%s, %s, %s (max clients %d)", irc, http, udp,
                 self.state.admission.max_clients)
        if self.tls is not None:
            log.info("TLS: IRC on %s:%d, HTTPS and WSS on %s:%d", cfg.host, self.ircs_port,
                     cfg.host, self.https_port)

    async def _listen(self) -> None:
        """Bind the listeners: plain IRC and HTTP, and with TLS, IRC over TLS beside (or
        instead of) plain IRC and HTTPS on the HTTP port (or on --https-port beside it)."""
        cfg, tls, reuse = self.config, self.tls, self.reuse_port
        if tls is None or cfg.plain_irc:
            self.irc_port = await self.irc.start(cfg.host, cfg.irc_port, reuse)
        if tls is not None:
            self.ircs_port = await self.irc.start(cfg.host, cfg.ircs_port, reuse, tls)
        if tls is not None and cfg.https_port is None:
            self.http_port = self.https_port = await self.http.start(
                cfg.host, cfg.http_port, reuse, tls)
            return
        self.http_port = await self.http.start(cfg.host, cfg.http_port, reuse)
        if tls is not None and cfg.https_port is not None:
            self.https_port = await self.http.start(cfg.host, cfg.https_port, reuse, tls)

    def reload_tls(self) -> bool:
        """SIGHUP: load the certificate files again (new handshakes use them)."""
        cfg = self.config
        if self.tls is None or cfg.tls_cert is None:
            log.info("SIGHUP: no TLS certificate to reload")
            return False
        return reload(self.tls, cfg.tls_cert, cfg.tls_key)

    async def shutdown(self) -> None:
        """A lame duck first, then closed, within ``shutdown_timeout``.

        1. Refuse what is new: no new connections; every write but leaving is refused with
           a clear answer (HTTP 503 ``shutting_down``, IRC 400, a WebSocket error frame),
           so nothing is acknowledged that no reader would get.
        2. Deliver what was accepted: wake the long polls and streams it concerns, write out
           every connection's queued lines.
        3. Close every connection with the reason (``Server shutting down``).
        """
        if self._closed.is_set():
            return
        self.state.draining = True
        self.state.engine.draining = True
        self.irc.close_listener()
        self.http.close_listener()
        for _ in range(2):  # long polls answer, and streams write, on the next loop turns
            await asyncio.sleep(0)
        self.irc.flush_all()
        timeout = self.config.shutdown_timeout
        await asyncio.gather(self.irc.shutdown(timeout), self.http.shutdown(timeout),
                             self.ws.shutdown(timeout), self.udp.shutdown(timeout))
        await self.state.engine.close()
        self._closed.set()
        log.info("server stopped")

    async def wait_closed(self) -> None:
        await self._closed.wait()

    async def serve_until_signal(self) -> None:
        """Start, then run until SIGINT or SIGTERM, then shut down gracefully.

        The handlers come first: a signal while starting (the ports already accept) is a
        request to stop once started, not the default action (SIGTERM would kill us)."""
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        with suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGHUP, self.reload_tls)
        await self.start()
        freeze_startup_heap()  # a process that serves: start-up objects live as long
        await stop.wait()
        log.info("signal received, shutting down")
        await self.shutdown()
