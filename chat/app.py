"""The server process: one hub, an IRC listener and an HTTP listener on one event loop.

:class:`ChatServer` is what ``chat serve``, the tests and ``chat compare`` start.  It owns
the clock (``time.time``), the hub and the counters, and hands itself to the two transport
adapters, which reach the hub, config and stats through it.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import signal
import time
from contextlib import suppress

from .config import Config
from .core.hub import Hub
from .core.stats import Stats
from .http.server import HttpServer
from .irc.server import IrcServer

log = logging.getLogger(__name__)

FD_RESERVE = 100  # descriptors kept back from --max-clients for listeners, logs, the loop


class ChatServer:
    """Both listeners around one :class:`Hub`.  ``await start()``, later ``await shutdown()``."""

    def __init__(self, config: Config) -> None:
        self.config = config
        now = time.time()
        self.hub = Hub(history=config.history, nicklen=config.nicklen,
                       channellen=config.channellen, topiclen=config.topiclen,
                       max_channels=config.max_channels, epoch=int(now * 1000))
        self.stats = Stats(started=now)
        self.started = now
        self.max_clients = config.max_clients or default_max_clients()
        self.irc = IrcServer(self)
        self.http = HttpServer(self)
        self.irc_port = 0
        self.http_port = 0
        self._closed = asyncio.Event()

    clock = staticmethod(time.time)

    @property
    def connection_count(self) -> int:
        """Open connections on both transports (checked against ``max_clients``)."""
        return self.stats.irc.connections_open + self.stats.http.connections_open

    async def start(self) -> None:
        """Bind both listeners (raises OSError if a port is taken; nothing stays bound)."""
        cfg = self.config
        try:
            self.irc_port = await self.irc.start(cfg.host, cfg.irc_port)
            self.http_port = await self.http.start(cfg.host, cfg.http_port)
        except BaseException:
            self.irc.close_listener()
            self.http.close_listener()
            raise
        log.info("IRC on %s:%d, HTTP on %s:%d (max clients %d)",
                 cfg.host, self.irc_port, cfg.host, self.http_port, self.max_clients)

    async def shutdown(self) -> None:
        """Stop accepting, tell every client, flush, and close within ``shutdown_timeout``."""
        if self._closed.is_set():
            return
        self.irc.close_listener()
        self.http.close_listener()
        timeout = self.config.shutdown_timeout
        await asyncio.gather(self.irc.shutdown(timeout), self.http.shutdown(timeout))
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


def default_max_clients() -> int:
    """The soft open-file limit minus :data:`FD_RESERVE` (at least 1)."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        soft = 65536
    return max(1, soft - FD_RESERVE)


def raise_fd_limit() -> None:
    """Lift the soft open-file limit to the hard limit, so max_clients can use it all."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        with suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


