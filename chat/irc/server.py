"""The IRC adapter: one ``asyncio.Protocol`` per TCP connection around a pure Session.

The adapter owns the socket and the clock:

* Output: sessions queue bytes; the first queued line marks the connection dirty and one
  ``call_soon`` (or ``call_later(flush_interval)``) per loop iteration flushes every dirty
  connection with one ``writelines``.  ``pause_writing``/``resume_writing`` stop and restart
  flushing; more than ``--sendq`` bytes waiting for a reader closes it (``SendQ exceeded``).
* Input: lines over the length limit get 417; flood control delays lines over the token
  bucket and closes a client holding more than ``--recvq`` bytes (``Excess Flood``).
* Time: ONE sweep timer for the whole server looks at each connection's lazily moved
  heartbeat deadline (no timer or task per connection); it sends PINGs, reaps timeouts and
  aborts connections that did not finish closing within ``--close-timeout``.
* Admission: ``--max-clients`` (both transports) and ``--max-clients-per-ip`` (loopback
  exempt) refuse a connection with an ERROR line.

Every close sends ``ERROR :Closing Link: <reason>`` and a QUIT with the reason to the
client's channels, and is counted in ``stats.irc.reaps`` (and ``timeouts`` for timeouts).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections import deque
from functools import partial
from typing import TYPE_CHECKING, cast

from ..core.heartbeat import NEVER, Beat, Heartbeat, HeartbeatPolicy
from .caps import ServerInfo
from .flood import FloodBudget
from .message import MAX_LINE, LineSplitter, encode
from .session import Session, State

if TYPE_CHECKING:
    from ..app import ChatServer

log = logging.getLogger(__name__)

MIN_TICK = 0.01    # seconds: the sweep never runs more often than this...
MAX_TICK = 1.0     # ...nor less often than this
BACKLOG = 4096     # listen backlog: bursts of thousands of connects per second
QUIET_CLOSES = frozenset({"quit", "shutdown"})  # logged at debug; reaps are logged at info


def is_loopback(ip: str) -> bool:
    """True for 127.0.0.0/8, ::1 and their IPv4-mapped forms."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


class IrcConnection(asyncio.Protocol):
    """One client socket.  All protocol decisions are the Session's; this moves bytes."""

    __slots__ = ("server", "transport", "session", "heartbeat", "splitter", "flood", "held",
                 "held_size", "release_handle", "paused", "queued", "lazy_queued", "closing",
                 "ip", "counted_ip", "admitted")

    def __init__(self, server: IrcServer) -> None:
        self.server = server
        self.paused = False
        self.queued = False      # in server.dirty, waiting for the next flush
        self.lazy_queued = False  # in server.lazy, waiting for the next presence flush
        self.closing = False
        self.admitted = False
        self.counted_ip = False
        self.held: deque[bytes | None] | None = None  # flood-delayed lines (lazily made)
        self.held_size = 0
        self.release_handle: asyncio.TimerHandle | None = None

    # --- asyncio callbacks ---------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        server = self.server
        peer = transport.get_extra_info("peername")
        self.ip = str(peer[0]) if peer else "unknown"
        server.stats.connections_accepted += 1
        refusal = server.admit(self)
        if refusal is not None:
            server.stats.connections_refused += 1
            self.closing = True
            log.info("refused %s: %s", self.ip, refusal)
            self.transport.write(encode(f"ERROR :Closing Link: {refusal}"))
            self.transport.close()
            return
        now = server.clock()
        self.heartbeat = Heartbeat(server.policy, now)
        self.splitter = LineSplitter()
        cfg = server.config
        self.flood = FloodBudget(cfg.flood_burst, cfg.flood_rate, now) \
            if cfg.flood_burst > 0 else None
        host = "0" + self.ip if self.ip.startswith(":") else self.ip
        self.session = Session(server.app.hub, server.info, server.stats, host,
                               self.heartbeat, self._wakeup, cfg.sendq,
                               self._lazy_wakeup if cfg.presence_interval > 0 else None)

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        server = self.server
        server.stats.bytes_in += len(data)
        now = server.clock()
        self.heartbeat.received(now)
        session = self.session
        flood = self.flood
        for raw in self.splitter.feed(data):
            if self.held is not None or (flood is not None and not flood.take(now)):
                self._hold(raw, now)
                if self.closing:
                    return
                continue
            if raw is None:
                session.line_too_long()
            else:
                session.receive(raw, now)
                if session.state is State.CLOSED:
                    self._session_closed()
                    return

    def eof_received(self) -> bool | None:
        return False  # close our side too; connection_lost does the rest

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        if self.session.pending_size and not self.closing:
            self._wakeup()

    def connection_lost(self, exc: Exception | None) -> None:
        server = self.server
        server.forget(self)
        if self.release_handle is not None:
            self.release_handle.cancel()
            self.release_handle = None
        if not self.admitted or self.closing:
            return
        self.closing = True
        reason = "Connection closed" if exc is None else f"Read error: {exc}"
        session = self.session
        session.end(reason, server.clock())
        session.take_pending()  # the ERROR line has nowhere to go
        server.stats.reaps["connection_lost" if exc is None else "connection_error"] += 1
        log.debug("%s %s lost: %s", self.ip, session.nick, reason)

    # --- output --------------------------------------------------------------------------
    def _wakeup(self) -> None:
        """The session queued its first bytes (or overflowed): flush on the next turn."""
        if not self.queued:
            self.queued = True
            server = self.server
            server.dirty.append(self)
            if server.flush_handle is None:
                server.schedule_flush()

    def _lazy_wakeup(self) -> None:
        """The session queued presence lines only: flush them on the next presence tick."""
        if not self.lazy_queued:
            self.lazy_queued = True
            server = self.server
            server.lazy.append(self)
            if server.lazy_handle is None:
                server.lazy_handle = server.loop.call_later(server.config.presence_interval,
                                                            server.flush_lazy)

    def flush_paused(self) -> None:
        """Writing is paused: only enforce the send queue limit."""
        session = self.session
        if session.pending_size + self.transport.get_write_buffer_size() > \
                self.server.config.sendq:
            session.take_pending()
            self.close("SendQ exceeded", "sendq_exceeded")

    # --- input held by flood control -----------------------------------------------------
    def _hold(self, raw: bytes | None, now: float) -> None:
        held = self.held
        if held is None:
            held = self.held = deque()
        held.append(raw)
        self.held_size += MAX_LINE if raw is None else len(raw) + 2
        self.server.stats.lines_delayed += 1
        if self.held_size > self.server.config.recvq:
            self.close("Excess Flood", "excess_flood")
        elif self.release_handle is None:
            self._schedule_release(now)

    def _schedule_release(self, now: float) -> None:
        assert self.flood is not None
        delay = self.flood.wait(now)
        self.release_handle = self.server.loop.call_later(delay, self._release)

    def _release(self) -> None:
        """Process as many held lines as the flood budget allows now."""
        self.release_handle = None
        held, flood, session = self.held, self.flood, self.session
        if self.closing or held is None or flood is None:
            return
        now = self.server.clock()
        while held and flood.take(now):
            raw = held.popleft()
            self.held_size -= MAX_LINE if raw is None else len(raw) + 2
            if raw is None:
                session.line_too_long()
                continue
            session.receive(raw, now)
            if session.state is State.CLOSED:
                self._session_closed()
                return
        if held:
            self._schedule_release(now)
        else:
            self.held = None
            self.held_size = 0

    # --- heartbeats and closing ----------------------------------------------------------
    def beat(self, now: float) -> None:
        """The sweep found this connection's deadline due."""
        if self.closing:  # did not finish closing within close_timeout
            self.heartbeat.deadline = NEVER
            self.transport.abort()
            return
        beat = self.heartbeat.check(now)
        if beat is Beat.NOTHING:
            return
        stats = self.server.stats
        if beat is Beat.SEND_PING:
            self.session.send_ping()
            stats.pings_sent += 1
            return
        stats.timeouts[beat.value.removesuffix("_timeout")] += 1
        if beat is Beat.PING_TIMEOUT:
            reason = f"Ping timeout: {self.heartbeat.silent_for(now)} seconds"
        elif beat is Beat.IDLE_TIMEOUT:
            reason = "Idle timeout"
        else:
            reason = "Registration timeout"
        self.close(reason, beat.value)

    def close(self, reason: str, category: str, error: str | None = None) -> None:
        """Send ERROR, QUIT the hub with ``reason``, flush and close the socket."""
        if self.closing:
            return
        self.session.end(reason, self.server.clock(), error)
        self.finish(category)

    def _session_closed(self) -> None:
        """The session ended itself (QUIT, bad password)."""
        reason = self.session.close_reason or ""
        self.finish("bad_password" if reason == "Bad password" else "quit")

    def finish(self, category: str) -> None:
        self.closing = True
        server = self.server
        server.stats.reaps[category] += 1
        session = self.session
        if category in QUIET_CLOSES:
            log.debug("%s %s closed: %s", self.ip, session.nick, session.close_reason)
        else:
            log.info("%s %s closed: %s", self.ip, session.nick, session.close_reason)
        if self.release_handle is not None:
            self.release_handle.cancel()
            self.release_handle = None
        self.held = None
        pending = session.take_pending()
        if pending:
            server.stats.bytes_out += sum(map(len, pending))
            self.transport.writelines(pending)
        self.transport.close()
        # The sweep aborts the socket if the peer does not take our last lines in time.
        self.heartbeat.deadline = server.clock() + server.config.close_timeout


class IrcServer:
    """The IRC listener of a :class:`~chat.app.ChatServer` (interface in the team brief)."""

    def __init__(self, app: ChatServer) -> None:
        self.app = app
        self.config = cfg = app.config
        self.stats = app.stats.irc
        self.clock = app.clock
        self.info = ServerInfo(cfg, app.started)
        self.policy = HeartbeatPolicy(cfg.registration_timeout, cfg.ping_interval,
                                      cfg.ping_timeout, cfg.idle_timeout)
        shortest = min(self.policy.shortest(), cfg.close_timeout or NEVER)
        self.tick = min(MAX_TICK, max(MIN_TICK, shortest / 4))
        self.connections: set[IrcConnection] = set()
        self.per_ip: dict[str, int] = {}
        self.dirty: list[IrcConnection] = []
        self.lazy: list[IrcConnection] = []  # holding presence lines only
        self.lazy_handle: asyncio.TimerHandle | None = None
        self.listener: asyncio.AbstractServer | None = None
        self.flush_handle: asyncio.Handle | None = None
        self.last_flush = 0.0  # loop.time() of the last flush_all
        self.sweep_handle: asyncio.TimerHandle | None = None
        self.all_closed: asyncio.Future[None] | None = None

    async def start(self, host: str, port: int) -> int:
        """Listen on ``host:port`` (0 = a free port) and start the sweep; the bound port."""
        self.loop = asyncio.get_running_loop()
        self.listener = await self.loop.create_server(
            partial(IrcConnection, self), host, port, backlog=BACKLOG, reuse_address=True)
        self.sweep_handle = self.loop.call_later(self.tick, self._sweep)
        bound: int = self.listener.sockets[0].getsockname()[1]
        return bound

    def close_listener(self) -> None:
        """Stop accepting connections (idempotent, safe before start)."""
        if self.listener is not None:
            self.listener.close()

    async def shutdown(self, timeout: float) -> None:  # noqa: ASYNC109 - the brief's interface
        """Send ``ERROR :Server shutting down`` to everyone, flush, close within ``timeout``."""
        self.close_listener()
        if self.listener is None:
            return  # never started: nothing to tell anyone
        if self.sweep_handle is not None:
            self.sweep_handle.cancel()
            self.sweep_handle = None
        self.flush_all()
        now = self.clock()
        closing = [c for c in self.connections if not c.closing]
        for conn in closing:  # first tell everybody, so nobody sees the others' QUITs
            conn.session.end("Server shutting down", now, "Server shutting down", False)
            conn.finish("shutdown")
        for conn in closing:
            conn.session.leave_hub("Server shutting down", now)
            conn.session.take_pending()
        if self.connections:
            self.all_closed = self.loop.create_future()
            try:
                await asyncio.wait_for(asyncio.shield(self.all_closed), timeout)
            except TimeoutError:
                for conn in list(self.connections):
                    conn.transport.abort()
                await asyncio.sleep(0)
        for handle in (self.flush_handle, self.lazy_handle):
            if handle is not None:
                handle.cancel()
        self.flush_handle = self.lazy_handle = None

    # --- connection bookkeeping --------------------------------------------------------
    def admit(self, conn: IrcConnection) -> str | None:
        """Count ``conn`` in, or return why it is refused."""
        if self.app.connection_count >= self.app.max_clients:
            return "Too many connections"
        limit = self.config.max_clients_per_ip
        if limit > 0 and not is_loopback(conn.ip):
            count = self.per_ip.get(conn.ip, 0)
            if count >= limit:
                return "Too many connections from your address"
            self.per_ip[conn.ip] = count + 1
            conn.counted_ip = True
        conn.admitted = True
        self.connections.add(conn)
        self.stats.connections_open += 1
        return None

    def forget(self, conn: IrcConnection) -> None:
        """``conn`` is gone: undo :meth:`admit`."""
        if not conn.admitted or conn not in self.connections:
            return
        self.connections.discard(conn)
        self.stats.connections_open -= 1
        if conn.counted_ip:
            left = self.per_ip[conn.ip] - 1
            if left:
                self.per_ip[conn.ip] = left
            else:
                del self.per_ip[conn.ip]
        if not self.connections and self.all_closed is not None and not self.all_closed.done():
            self.all_closed.set_result(None)

    # --- flushing and the sweep --------------------------------------------------------
    def schedule_flush(self) -> None:
        """Run :meth:`flush_all` on the next loop iteration, but with ``flush_interval`` set,
        no sooner than that long after the previous flush.

        So a lone line after a quiet spell goes out at once, while under sustained load
        each member gets one write per interval carrying many lines: fewer, larger
        ``send`` calls, which on a busy server cost more than the Python around them.
        """
        interval = self.config.flush_interval
        delay = self.last_flush + interval - self.loop.time() if interval > 0 else 0.0
        if delay > 0:
            self.flush_handle = self.loop.call_later(delay, self.flush_all)
        else:
            self.flush_handle = self.loop.call_soon(self.flush_all)

    def flush_all(self) -> None:
        """Write out every dirty connection: one write per connection per flush.

        Hot path (once per member per flush), kept inline: no per-connection method call
        in the common case.  Past ``--sendq`` bytes not taken by the kernel, close.
        """
        self.flush_handle = None
        self.last_flush = self.loop.time()
        dirty, self.dirty = self.dirty, []
        sendq = self.config.sendq
        written = 0
        for conn in dirty:
            conn.queued = False
            if conn.closing:
                continue  # its last lines were written when it closed
            if conn.paused:
                conn.flush_paused()
                continue
            session = conn.session
            pending = session.pending
            if pending is None:
                continue
            size = session.pending_size
            session.pending = None
            session.pending_size = 0
            session.pending_lazy = False
            transport = conn.transport
            if len(pending) == 1:
                transport.write(pending[0])
            else:
                transport.writelines(pending)
            written += size
            if size > sendq and transport.get_write_buffer_size() > sendq:
                conn.close("SendQ exceeded", "sendq_exceeded")
        self.stats.bytes_out += written

    def flush_lazy(self) -> None:
        """The presence tick: write out every connection still holding presence lines."""
        self.lazy_handle = None
        lazy, self.lazy = self.lazy, []
        dirty = self.dirty
        for conn in lazy:
            conn.lazy_queued = False
            if not conn.queued:
                conn.queued = True
                dirty.append(conn)
        self.flush_all()

    def _sweep(self) -> None:
        """The one heartbeat timer: act on every connection whose deadline has come."""
        now = self.clock()
        due = [conn for conn in self.connections if conn.heartbeat.deadline <= now]
        for conn in due:
            conn.beat(now)
        self.sweep_handle = self.loop.call_later(self.tick, self._sweep)
