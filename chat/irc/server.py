"""The IRC adapter: one ``asyncio.Protocol`` per TCP connection around a pure Session.

The adapter owns the socket and the clock:

* Output: the session queues bytes and calls ``wakeup`` on the first queued line; one
  ``call_soon`` (or ``call_later(flush_interval)``) flushes every dirty connection with one
  write each, taking the bytes through :meth:`Session.take_pending`.
  ``pause_writing``/``resume_writing`` stop and restart flushing; more than ``--sendq``
  bytes waiting for a reader closes it (``SendQ exceeded``).
* Input: lines over the length limit get 417; flood control delays lines over the token
  bucket and closes a client holding more than ``--recvq`` bytes (``Excess Flood``); while
  the session waits for the engine, further lines are held the same way.
* Time: ONE sweep timer for the whole server looks at each connection's lazily moved
  heartbeat deadline and its close deadline (no timer or task per connection), on the
  loop's monotonic clock.  It sends PINGs, reaps timeouts and aborts connections that did
  not finish closing within ``--close-timeout``.  One connection failing in the sweep is
  closed and logged; the sweep goes on for everyone else.
* Admission: the server state's counts (``--max-clients`` over every transport,
  ``--max-clients-per-ip``) refuse a connection with an ERROR line.
* Slow pure work a session asks for (an OPER password hash) runs in the loop's default
  thread pool (``ServerInfo.offload``), at most :data:`MAX_OFFLOADED` at once.

Every close sends ``ERROR :Closing Link: <reason>`` and a QUIT with the reason to the
client's channels, and is counted in ``stats.irc.reaps`` (and ``timeouts`` for timeouts).
"""

from __future__ import annotations

import asyncio
import enum
import logging
import ssl
import time
from functools import partial
from typing import cast

from ..core.bucket import FULL, is_full, spend, wait_for
from ..core.clock import Now
from ..core.heartbeat import NEVER, Beat, Heartbeat, HeartbeatPolicy
from ..core.pacing import FlushPacer
from ..core.sharing import shared
from ..core.text import clean_text, line_needs_cleaning
from ..logs import disconnect
from ..runtime import HeldInput, Offloader, drain
from ..state import REFUSE_FULL, ServerState
from .caps import ServerInfo
from .commands import receive
from .message import MAX_LINE, LineSplitter, decode, encode, is_pong
from .session import Session, State

log = logging.getLogger(__name__)

MIN_TICK = 0.01    # seconds: the sweep never runs more often than this...
MAX_TICK = 1.0     # ...nor less often than this
BACKLOG = 4096     # listen backlog: bursts of thousands of connects per second
QUIET_CLOSES = frozenset({"quit", "shutdown"})  # logged at debug; reaps are logged at info
MAX_OFFLOADED = 8  # password checks running at once; more are refused (a flood of OPERs)
REFUSALS = {REFUSE_FULL: "Too many connections",
            "per_ip": "Too many connections from your address"}


class Phase(enum.Enum):
    """Where a connection is; CLOSING means ERROR was written and the socket is closing."""

    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


def _held_size(raw: bytes | None) -> int:
    """Bytes a held line counts for against --recvq (an overlong one: a whole line)."""
    return MAX_LINE if raw is None else len(raw) + 2


class IrcConnection(Heartbeat, asyncio.Protocol):
    """One client socket.  All protocol decisions are the Session's; this moves bytes.

    It is its own :class:`~chat.core.heartbeat.Heartbeat` (the pure deadlines, inherited
    rather than owned: one object less, 40 bytes per connection)."""

    __slots__ = ("server", "transport", "session", "splitter", "flood_full_at", "held",
                 "paused", "queued", "lazy_queued", "phase",
                 "ip", "counted_ip", "close_at")

    def __init__(self, server: IrcServer) -> None:
        self.server = server
        self.phase = Phase.OPEN
        self.paused = False
        self.queued = False      # in server.dirty, waiting for the next flush
        self.lazy_queued = False  # in server.lazy, waiting for the next presence flush
        self.counted_ip: bool | None = None  # None: not admitted (yet); else per-IP counted
        self.held: HeldInput[bytes | None] | None = None  # delayed lines (lazily made)
        self.close_at = NEVER    # monotonic deadline for a closing socket to be gone

    # --- asyncio callbacks ---------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        server = self.server
        peer = transport.get_extra_info("peername")
        self.ip = shared(str(peer[0])) if peer else "unknown"  # users share their host
        server.stats.connections_accepted += 1
        refusal, counted_ip = server.state.admission.admit(self.ip, per_ip=True)
        if refusal is not None:
            server.stats.connections_refused += 1
            self.phase = Phase.CLOSED
            log.info("refused %s: %s", self.ip, REFUSALS[refusal],
                     extra=disconnect("irc", self.ip, None, REFUSALS[refusal], refusal))
            self.transport.write(encode(f"ERROR :Closing Link: {REFUSALS[refusal]}"))
            self.transport.close()
            return
        self.counted_ip = counted_ip
        server.connections.add(self)
        server.stats.connections_open += 1
        now = server.state.now()
        Heartbeat.__init__(self, server.policy, now.mono)
        # The line splitter is made when needed and dropped when it holds no partial line;
        # the flood budget is one float (core.bucket), FULL again once it has refilled: an
        # idle connection pays for neither (48 and 24 bytes).
        self.splitter: LineSplitter | None = None
        self.flood_full_at = FULL
        host = server.state.cloak(self.ip)  # what everyone sees (WHOIS, prefixes)
        self.session = server.session_class(host, self, self)  # its Heartbeat and Owner

    def data_received(self, data: bytes) -> None:
        if self.phase is not Phase.OPEN:
            return
        server = self.server
        server.stats.bytes_in += len(data)
        now = server.state.now()
        ping_sent = self.ping_sent
        answering = ping_sent is not None  # the first PONG now answers our PING
        if ping_sent is not None:  # any line answers a PING: its round trip, for /metrics
            server.stats.heartbeat_rtt.observe(now.mono - ping_sent)
        self.received(now.mono)
        session = self.session
        splitter = self.splitter
        if splitter is None:
            splitter = self.splitter = LineSplitter()
        lines = splitter.feed(data)
        if splitter.empty:
            self.splitter = None
        for raw in lines:
            if answering and raw is not None and is_pong(raw):
                answering = False   # the answer to our own PING spends no flood budget
                free = True
            else:
                free = False
            if self.held or session.waiting or not (free or self.take(now.mono)):
                self._hold(raw, now.mono)
                if self.phase is not Phase.OPEN:
                    return
                continue
            if not self._process(raw, now):
                return

    # --- the flood budget (a core.bucket.Budget over the one float) ------------------------
    def take(self, mono: float) -> bool:
        """Take one token of the flood budget (True if there is one, or no flood control)."""
        server = self.server
        if not server.flood_burst:
            return True
        full_at = spend(self.flood_full_at, mono, server.flood_burst, server.flood_rate)
        if full_at is None:
            return False
        self.flood_full_at = full_at
        return True

    def wait(self, mono: float) -> float:
        """Seconds until the flood budget has a token again."""
        server = self.server
        return wait_for(self.flood_full_at, mono, server.flood_burst, server.flood_rate)

    def _process(self, raw: bytes | None, now: Now) -> bool:
        """Run one line through the session; False once the session has closed."""
        session = self.session
        if raw is None:
            session.line_too_long()
        else:
            if line_needs_cleaning(raw):  # the text rule of every transport (core.text)
                raw = clean_text(decode(raw), lines=True).encode()
            receive(session, raw, now)
            if session.state is State.CLOSED:
                self._session_closed()
                return False
        return True

    def eof_received(self) -> bool | None:
        return False  # close our side too; connection_lost does the rest

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        if self.session.pending_size and self.phase is Phase.OPEN:
            self.wakeup()

    def connection_lost(self, exc: Exception | None) -> None:
        server = self.server
        was = self.phase
        self.phase = Phase.CLOSED
        self._cancel_release()
        if self.counted_ip is None:  # refused
            return
        server.forget(self)
        if was is not Phase.OPEN:
            return
        reason = "Connection closed" if exc is None else f"Read error: {exc}"
        session = self.session
        session.end(reason, server.state.wall())
        session.take_pending()  # the ERROR line has nowhere to go
        server.stats.reaps["connection_lost" if exc is None else "connection_error"] += 1
        log.debug("%s %s lost: %s", self.ip, session.nick or "*", reason,
                  extra=disconnect("irc", self.ip, session.nick, reason, "connection_lost"))

    # --- output --------------------------------------------------------------------------
    def wakeup(self) -> None:
        """The session queued its first bytes (or overflowed): flush on the next turn."""
        if not self.queued:
            self.queued = True
            server = self.server
            server.dirty.append(self)
            if server.flush_handle is None:
                server.schedule_flush()

    def lazy_wakeup(self) -> None:
        """The session queued presence lines only: flush them on the next presence tick."""
        if self.server.config.presence_interval <= 0:
            self.wakeup()
            return
        if not self.lazy_queued:
            self.lazy_queued = True
            server = self.server
            server.lazy.append(self)
            if server.lazy_handle is None:
                server.schedule_presence()

    def flush_paused(self) -> None:
        """Writing is paused: only enforce the send queue limit."""
        session = self.session
        if session.pending_size + self.transport.get_write_buffer_size() > \
                self.server.config.sendq:
            session.take_pending()
            self.close("SendQ exceeded", "sendq_exceeded")

    # --- input held by flood control or by a write the engine has not settled ------------
    def _hold(self, raw: bytes | None, mono: float) -> None:
        held = self.held
        if held is None:
            server = self.server
            held = self.held = HeldInput(server.loop, self if server.flood_burst else None,
                                         server.config.recvq, _held_size, self._process,
                                         lambda: self.session.waiting > 0, server.state.now)
        self.server.stats.lines_delayed += 1
        if not held.hold(raw, mono):
            self.close("Excess Flood", "excess_flood")

    def resume(self) -> None:
        """The session's engine writes have settled: go on with the held lines."""
        if self.held is not None and self.phase is Phase.OPEN:
            self.held.resume()

    def dropped(self, reason: str) -> None:
        """Our user was removed elsewhere (KILL, or our node was given up for lost)."""
        if reason.startswith("Killed ("):  # modern.ircdocs: Closing Link: <server> (<why>)
            self.close(reason, "killed", f"Closing Link: {self.server.info.name} ({reason})")
        else:
            self.close(reason, "dropped")

    def _cancel_release(self) -> None:
        if self.held is not None:
            self.held.cancel()

    # --- heartbeats and closing ----------------------------------------------------------
    def beat(self, now: Now) -> None:
        """The sweep found one of this connection's deadlines due."""
        if self.phase is not Phase.OPEN:  # did not finish closing within close_timeout
            if now.mono >= self.close_at:
                self.close_at = NEVER
                if self.transport.get_write_buffer_size():
                    self.transport.abort()  # it never took our last lines
                else:
                    self.transport.close()  # it took them but never closed its side
            return
        beat = self.check(now.mono)
        if beat is Beat.NOTHING:
            return
        stats = self.server.stats
        if beat is Beat.SEND_PING:
            if is_full(self.flood_full_at, now.mono, self.server.flood_rate):
                self.flood_full_at = FULL  # quiet since it refilled: no float of its own
            self.session.send_ping()
            stats.pings_sent += 1
            return
        stats.timeouts[beat.value.removesuffix("_timeout")] += 1
        if beat is Beat.PING_TIMEOUT:
            reason = f"Ping timeout: {self.silent_for(now.mono)} seconds"
        elif beat is Beat.IDLE_TIMEOUT:
            reason = "Idle timeout"
        else:
            reason = "Registration timeout"
        self.close(reason, beat.value)

    def close(self, reason: str, category: str, error: str | None = None) -> None:
        """Send ERROR, QUIT the hub with ``reason``, flush and close the socket."""
        if self.phase is not Phase.OPEN:
            return
        self.session.end(reason, self.server.state.wall(), error)
        self.finish(category)

    def _session_closed(self) -> None:
        """The session ended itself (QUIT, bad password)."""
        reason = self.session.close_reason or ""
        self.finish("bad_password" if reason == "Bad password" else "quit")

    def finish(self, category: str) -> None:
        """Write the session's last lines, close gracefully, start the close deadline.

        Gracefully (a lingering close): the last lines are flushed, then our side is
        half-closed (FIN) and input is read and dropped until the peer closes.  Closing at
        once with unread input (a flooder, a client that pipelined after QUIT) makes the
        kernel send a reset, which can destroy the ERROR line before the client read it.
        At shutdown the socket is simply closed (everyone is told at once, nobody waits).
        """
        self.phase = Phase.CLOSING
        server = self.server
        server.stats.reaps[category] += 1
        session = self.session
        level = logging.DEBUG if category in QUIET_CLOSES else logging.INFO
        log.log(level, "%s %s closed: %s", self.ip, session.nick or "*", session.close_reason,
                extra=disconnect("irc", self.ip, session.nick, session.close_reason or "",
                                 category))
        self._cancel_release()
        pending = session.take_pending()
        if pending:
            server.stats.bytes_out += sum(map(len, pending))
            self.transport.writelines(pending)
        if category != "shutdown" and self.transport.can_write_eof():
            self.transport.write_eof()  # sent after the last lines; eof_received closes
        else:
            self.transport.close()
        # The sweep aborts the socket if the peer does not take our last lines in time.
        self.deadline = NEVER
        self.close_at = server.state.mono() + server.config.close_timeout

    def abort(self, reason: str) -> None:
        """Drop the connection now, without the session's help (it failed)."""
        self.server.stats.reaps["internal_error"] += 1
        log.error("%s %s aborted: %s", self.ip, getattr(self, "session", None), reason)
        self.phase = Phase.CLOSING
        self.transport.abort()


class IrcServer:
    """The IRC listener: connections, the flush scheduler and the heartbeat sweep."""

    def __init__(self, state: ServerState) -> None:
        self.state = state
        self.config = cfg = state.config
        self.stats = state.stats.irc
        self.info = ServerInfo(cfg, state.started)
        self.session_class = Session.of_server(state.engine, self.info, self.stats, cfg.sendq)
        self.policy = HeartbeatPolicy(cfg.registration_timeout, cfg.ping_interval,
                                      cfg.ping_timeout, cfg.idle_timeout)
        self.flood_burst = float(cfg.flood_burst)  # the flood budget of each connection (0: off)
        self.flood_rate = cfg.flood_rate
        shortest = min(self.policy.shortest(), cfg.close_timeout or NEVER)
        self.tick = min(MAX_TICK, max(MIN_TICK, shortest / 4))
        self.connections: set[IrcConnection] = set()
        self.dirty: list[IrcConnection] = []
        self.lazy: list[IrcConnection] = []  # holding presence lines only
        self.lazy_handle: asyncio.TimerHandle | None = None
        self.listeners: list[asyncio.AbstractServer] = []  # plain and/or TLS
        self.flush_handle: asyncio.Handle | None = None
        self.pacer = FlushPacer(cfg.flush_interval, cfg.flush_share, cfg.flush_max)
        # The presence tick, paced the same way: a join storm of thousands writes to every
        # member on every tick, so the ticks spread out until that is --flush-share.
        self.presence_pacer = FlushPacer(cfg.presence_interval, cfg.flush_share,
                                         cfg.presence_max)
        self.cpu_clock = time.thread_time  # what a flush costs (tests pass a fake)
        self.sweep_handle: asyncio.TimerHandle | None = None
        self.all_closed: asyncio.Future[None] | None = None
        self.info.offload = Offloader(MAX_OFFLOADED)  # password checks, off the loop

    async def start(self, host: str, port: int, reuse_port: bool = False,
                    tls: ssl.SSLContext | None = None) -> int:
        """Listen on ``host:port`` (0 = a free port; ``tls``: IRC over TLS) and start the
        sweep once; the bound port.  Call once per listener (plain, TLS)."""
        self.loop = asyncio.get_running_loop()
        listener = await self.loop.create_server(
            partial(IrcConnection, self), host, port, backlog=BACKLOG, reuse_address=True,
            reuse_port=reuse_port, ssl=tls,
            ssl_handshake_timeout=self._handshake_timeout() if tls else None)
        self.listeners.append(listener)
        if self.sweep_handle is None:
            self.sweep_handle = self.loop.call_later(self.tick, self._sweep)
        bound: int = listener.sockets[0].getsockname()[1]
        return bound

    def _handshake_timeout(self) -> float:
        """A TLS handshake must end within the registration timeout (10 s if that is off)."""
        return self.config.registration_timeout or 10.0

    def close_listener(self) -> None:
        """Stop accepting connections (idempotent, safe before start)."""
        for listener in self.listeners:
            listener.close()

    async def shutdown(self, timeout: float) -> None:  # noqa: ASYNC109 - the assembler's call
        """Send ``ERROR :Server shutting down`` to everyone, flush, close within ``timeout``."""
        self.close_listener()
        if not self.listeners:
            return  # never started: nothing to tell anyone
        if self.sweep_handle is not None:
            self.sweep_handle.cancel()
            self.sweep_handle = None
        self.flush_all()
        wall = self.state.wall()
        closing = [c for c in self.connections if c.phase is Phase.OPEN]
        for conn in closing:  # first tell everybody, so nobody sees the others' QUITs
            conn.session.end("Server shutting down", wall, "Server shutting down", False)
            conn.finish("shutdown")
        for conn in closing:
            conn.session.leave_hub("Server shutting down", wall)
            conn.session.take_pending()
        self.all_closed = self.loop.create_future()
        await drain(lambda: self.connections, self.all_closed, timeout, self._abort_all, "IRC")
        for handle in (self.flush_handle, self.lazy_handle):
            if handle is not None:
                handle.cancel()
        self.flush_handle = self.lazy_handle = None

    def _abort_all(self) -> None:
        for conn in list(self.connections):
            conn.transport.abort()

    def forget(self, conn: IrcConnection) -> None:
        """``conn`` is gone: give back its admission."""
        if conn not in self.connections:
            return
        self.connections.discard(conn)
        self.stats.connections_open -= 1
        self.state.admission.leave(conn.ip, bool(conn.counted_ip))
        if not self.connections and self.all_closed is not None and not self.all_closed.done():
            self.all_closed.set_result(None)

    # --- flushing and the sweep --------------------------------------------------------
    def schedule_flush(self) -> None:
        """Run :meth:`flush_all` on the next loop iteration, or later if the pacer says so:
        no sooner than ``flush_interval`` after the previous flush began, and (adaptive
        coalescing, :mod:`chat.core.pacing`) late enough that writing takes at most
        ``flush_share`` of the core, within ``flush_max``.

        So a lone line after a quiet spell goes out at once, while under sustained load
        each member gets one write per window carrying many lines: fewer, larger
        ``send`` calls, which on a busy server cost more than the Python around them.
        """
        delay = self.pacer.delay(self.loop.time())
        if delay > 0:
            self.flush_handle = self.loop.call_later(delay, self.flush_all)
        else:
            self.flush_handle = self.loop.call_soon(self.flush_all)

    def flush_all(self) -> float:
        """Write out every dirty connection: one write per connection per flush.

        Hot path (once per member per flush).  Past ``--sendq`` bytes not taken by the
        kernel, close.  Its CPU time (the system calls included) sizes the next window;
        it is also returned, for the presence tick's pacer.
        """
        self.flush_handle = None
        began, cpu = self.loop.time(), self.cpu_clock()
        dirty, self.dirty = self.dirty, []
        sendq = self.config.sendq
        written = writes = 0
        for conn in dirty:
            conn.queued = False
            if conn.phase is not Phase.OPEN:
                continue  # its last lines were written when it closed
            if conn.paused:
                conn.flush_paused()
                continue
            session = conn.session
            size = session.pending_size
            pending = session.take_pending()
            if not pending:
                continue
            transport = conn.transport
            # One buffer, not writelines: uvloop then skips its per-buffer bookkeeping and
            # iovec set-up (about 0.2 µs less per write, measured; the join is a memcpy).
            transport.write(pending[0] if len(pending) == 1 else b"".join(pending))
            written += size
            writes += 1
            if size > sendq and transport.get_write_buffer_size() > sendq:
                conn.close("SendQ exceeded", "sendq_exceeded")
        self.stats.bytes_out += written
        self.stats.writes += writes
        self.stats.flushes += 1
        cost = self.cpu_clock() - cpu
        self.pacer.flushed(began, cost)
        return cost

    def schedule_presence(self) -> None:
        """Run the presence tick :meth:`flush_lazy` ``--presence-interval`` from now, or
        later if the last one was costly: no sooner than its CPU cost over
        ``--flush-share`` after it began, within ``--presence-max``."""
        delay = max(self.config.presence_interval, self.presence_pacer.delay(self.loop.time()))
        self.lazy_handle = self.loop.call_later(delay, self.flush_lazy)

    def flush_lazy(self) -> None:
        """The presence tick: write out every connection still holding presence lines."""
        self.lazy_handle = None
        began = self.loop.time()
        lazy, self.lazy = self.lazy, []
        dirty = self.dirty
        for conn in lazy:
            conn.lazy_queued = False
            if not conn.queued:
                conn.queued = True
                dirty.append(conn)
        self.presence_pacer.flushed(began, self.flush_all())

    def _sweep(self) -> None:
        """The one heartbeat timer: act on every connection whose deadline has come.

        A connection whose handling raises is closed with a logged reason; the others go
        on, and the sweep always reschedules itself.
        """
        try:
            now = self.state.now()
            mono = now.mono
            due = [conn for conn in self.connections
                   if conn.deadline <= mono or conn.close_at <= mono]
            for conn in due:
                try:
                    conn.beat(now)
                except Exception:
                    log.exception("heartbeat of %s %s failed", conn.ip, conn.session)
                    self._fail(conn)
        finally:
            self.sweep_handle = self.loop.call_later(self.tick, self._sweep)

    def _fail(self, conn: IrcConnection) -> None:
        """Close a connection whose own handling failed, as gently as still possible."""
        try:
            conn.close("Internal error", "internal_error")
        except Exception:
            conn.abort("internal error while closing")
