"""The udp lane's adapter: one datagram socket, the registrations, one expiry sweep.

Datagrams are parsed by :mod:`chat.udp.datagrams`; a registration or keepalive carries an
HTTP session token, checked through the API's session table (so a UDP client is an HTTP
session whose pushed events travel as datagrams); :mod:`chat.udp.registry` keeps who is
where.  This module owns the socket and the clock: one ``call_later`` sweep for the whole
server ends registrations without a keepalive for ``--udp-timeout`` (never a timer per
registration).  There is no flow control to respect: when the kernel's send buffer is full
(``pause_writing``) event datagrams are dropped and counted (``send_dropped``), the client
sees the gap in ``seq`` and fetches what it missed over HTTP, as after any loss.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from contextlib import suppress
from typing import Any

from ..http.api import Api
from ..state import ServerState
from .datagrams import Malformed, ack, answer_fits, error, parse_request, registered
from .registry import Address, Registry

log = logging.getLogger(__name__)

MAX_TICK = 1.0


class _Protocol(asyncio.DatagramProtocol):
    __slots__ = ("server",)

    def __init__(self, server: UdpServer) -> None:
        self.server = server

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.server.received(data, (str(addr[0]), int(addr[1])))

    def error_received(self, exc: Exception) -> None:
        # An ICMP error for an earlier datagram (a client gone, a port closed): nothing to
        # do, the registration expires on its own.
        log.debug("udp: %s", exc)

    def pause_writing(self) -> None:
        self.server.paused = True

    def resume_writing(self) -> None:
        self.server.paused = False


class UdpServer:
    """The udp lane of one server process (``start`` once, ``shutdown`` once)."""

    def __init__(self, state: ServerState, api: Api) -> None:
        self.state = state
        self.config = cfg = state.config
        self.api = api
        self.stats = state.stats.udp
        self.registry = Registry(cfg.udp_timeout, cfg.udp_max_datagram, self.stats, self.send)
        self.transport: asyncio.DatagramTransport | None = None
        self.paused = False
        self.port = 0
        self._tick: asyncio.TimerHandle | None = None

    async def start(self, host: str, port: int, http_port: int,
                    reuse_port: bool = False) -> int:
        """Bind the socket (``port`` 0: ``http_port``'s number, else a free one); the port."""
        sock = self._bind(host, port, http_port, reuse_port)
        loop = asyncio.get_running_loop()
        self.transport, _ = await loop.create_datagram_endpoint(lambda: _Protocol(self),
                                                                sock=sock)
        self.port = self.stats.port = int(sock.getsockname()[1])
        self.stats.same_port = self.port == http_port
        self._schedule_tick()
        return self.port

    @staticmethod
    def _bind(host: str, port: int, http_port: int, reuse_port: bool) -> socket.socket:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        for candidate in ([port] if port else [http_port, 0]):
            sock = socket.socket(family, socket.SOCK_DGRAM)
            try:
                if reuse_port:  # workers share the port; a client's datagrams hash to one
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                sock.bind((host, candidate))
            except OSError:
                sock.close()
                if candidate == 0 or port:
                    raise
                continue
            sock.setblocking(False)
            return sock
        raise OSError("no UDP port")  # pragma: no cover - the loop returns or raises

    # --- datagrams in ---------------------------------------------------------------------------
    def received(self, data: bytes, addr: Address) -> None:
        stats = self.stats
        stats.datagrams_in += 1
        stats.bytes_in += len(data)
        if len(data) > self.config.udp_max_datagram:
            stats.oversize += 1
            return
        try:
            request = parse_request(data)
        except Malformed:
            stats.malformed += 1
            self.answer(error("bad_request"), data, addr)
            return
        if self.state.draining:
            return
        now = self.state.now()
        session = self.api.session_of(request.token, now.mono)
        if session is None:
            stats.refused += 1
            self.answer(error("unauthorized"), data, addr)
            return
        if request.kind == "register":
            reg, how = self.registry.register(session, addr, now.mono)
            if how == "new":
                log.debug("udp: %s registered from %s:%d", session.user.nick, *addr)
            self.answer(registered(reg.id, reg.seq, self.config.udp_timeout), data, addr)
            return
        stats.keepalives += 1
        found = self.registry.refresh(session, addr, now.mono)
        if found is None:
            self.answer(error("not_registered"), data, addr)
        else:
            self.answer(ack(found.id, found.seq), data, addr)

    def answer(self, reply: bytes, request: bytes, addr: Address) -> None:
        """Answer a request, but never with more bytes than it had (no amplification)."""
        if answer_fits(reply, request):
            self.send(reply, addr)
        else:
            self.stats.unanswered += 1

    # --- datagrams out -------------------------------------------------------------------------
    def send(self, data: bytes, addr: Address) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if self.paused:
            self.stats.send_dropped += 1
            return
        transport.sendto(data, addr)
        self.stats.datagrams_out += 1
        self.stats.bytes_out += len(data)

    # --- time: one sweep ------------------------------------------------------------------------
    def _schedule_tick(self) -> None:
        interval = MAX_TICK
        if self.config.udp_timeout > 0:
            interval = max(0.01, min(interval, self.config.udp_timeout / 4))
        self._tick = asyncio.get_running_loop().call_later(interval, self._on_tick)

    def _on_tick(self) -> None:
        try:
            for reg in self.registry.expired(self.state.mono()):
                log.debug("udp: registration of %s expired", reg.session.user.nick)
                self.registry.end(reg, "UDP timeout")
        except Exception:  # a bug here must not stop the sweep
            log.exception("udp sweep failed")
        self._schedule_tick()

    # --- the end -------------------------------------------------------------------------------
    def close_listener(self) -> None:
        """Stop the sweep (the socket stays until :meth:`shutdown`: it tells clients)."""
        if self._tick is not None:
            self._tick.cancel()
            self._tick = None

    async def shutdown(self, timeout: float) -> None:  # noqa: ASYNC109 (the assembler's call)
        """Tell every registered client the server is going, then close the socket."""
        self.close_listener()
        self.registry.end_all("Server shutting down")
        if self.transport is not None:
            with suppress(Exception):
                self.transport.close()
            await asyncio.sleep(0)
