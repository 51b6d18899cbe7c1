"""Running the server: one process, or ``--workers N`` processes sharing the ports.

With several workers each process is a node of the shared engine, listening on the same
ports with SO_REUSEPORT so the kernel spreads new connections over them.  The parent only
starts them, passes SIGINT/SIGTERM on, and exits when they have all exited.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
from types import FrameType

from .app import ChatServer
from .config import Config
from .runtime import free_ports, new_event_loop

log = logging.getLogger(__name__)


def run_server(config: Config, reuse_port: bool = False) -> int:
    """Serve on this process until SIGINT/SIGTERM; the exit status (OSError if a port is
    taken)."""
    loop = new_event_loop()
    try:
        server = ChatServer(config, reuse_port=reuse_port)
        loop.run_until_complete(server.serve_until_signal())
    except KeyboardInterrupt:
        pass
    finally:
        loop.close()
    return 0


def run_workers(config: Config) -> int:
    """Fork ``config.workers`` servers on the same ports; wait for them all."""
    if 0 in (config.irc_port, config.http_port, config.ircs_port, config.https_port):
        # every worker must pick the same ports
        irc, http, ircs, https = free_ports(4, config.host)
        config = dataclasses.replace(
            config, irc_port=config.irc_port or irc, http_port=config.http_port or http,
            ircs_port=config.ircs_port or ircs,
            https_port=https if config.https_port == 0 else config.https_port)
    children: list[int] = []
    for _ in range(config.workers):
        pid = os.fork()
        if pid == 0:  # the worker: a whole server of its own
            os._exit(_worker(config))
        children.append(pid)
    log.info("%d workers on IRC :%d and HTTP :%d", len(children), config.irc_port,
             config.http_port)

    def forward(signum: int, frame: FrameType | None) -> None:
        for child in children:
            try:
                os.kill(child, signum)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGHUP, forward)  # each worker reloads its TLS certificate
    worst = 0
    for child in children:
        _pid, status = os.waitpid(child, 0)
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            log.error("worker %d exited with %d", child, code)
            worst = max(worst, 1)
    return worst


def _worker(config: Config) -> int:
    try:
        return run_server(config, reuse_port=True)
    except OSError as exc:
        log.error("worker cannot listen on %s: %s", config.host, exc.strerror or exc)
        return 1
    except Exception:
        log.exception("worker failed")
        return 1
