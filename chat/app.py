"""The assembler: one server state; the IRC, HTTP (with WebSocket) and UDP listeners; one loop.

:class:`ChatServer` is what ``chat serve``, the tests and the lab start.  It builds the
:class:`~chat.state.ServerState` (config, engine, counters, clocks, admission) and hands it
to each transport adapter; nothing imports this module but the CLI and the tests.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Callable
from contextlib import suppress

from .config import Config
from .core.stats import Stats
from .engine import Engine, open_engine
from .http.server import HttpServer
from .irc.server import IrcServer
from .runtime import default_max_clients
from .state import ServerState
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
        self.udp = UdpServer(self.state, self.http.api)
        self.irc_port = 0
        self.http_port = 0
        self.udp_port = 0  # 0 with --no-udp
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
            self.irc_port = await self.irc.start(cfg.host, cfg.irc_port, self.reuse_port)
            self.http_port = await self.http.start(cfg.host, cfg.http_port, self.reuse_port)
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
        log.info("IRC on %s:%d, HTTP on %s:%d, UDP on %s (max clients %d)", cfg.host,
                 self.irc_port, cfg.host, self.http_port,
                 f"{cfg.host}:{self.udp_port}" if self.udp_port else "off",
                 self.state.admission.max_clients)

    async def shutdown(self) -> None:
        """Stop accepting, tell every client, flush, and close within ``shutdown_timeout``."""
        if self._closed.is_set():
            return
        self.state.draining = True
        self.irc.close_listener()
        self.http.close_listener()
        timeout = self.config.shutdown_timeout
        await asyncio.gather(self.irc.shutdown(timeout), self.http.shutdown(timeout),
                             self.ws.shutdown(timeout), self.udp.shutdown(timeout))
        await self.state.engine.close()
        self._closed.set()
        log.info("server stopped")

    async def wait_closed(self) -> None:
        await self._closed.wait()

    async def serve_until_signal(self) -> None:
        """Start, then run until SIGINT or SIGTERM, then shut down gracefully."""
        await self.start()
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        log.info("signal received, shutting down")
        await self.shutdown()
