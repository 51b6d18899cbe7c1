"""udp mode: events pushed as datagrams, commands and recovery over HTTP.

The client is an HTTP session (sign-in, joins, messages and every command go over one
keep-alive connection, as in poll mode) that registers a UDP socket with its token: from
then on the server pushes each event as one datagram (:mod:`chat.udp.datagrams`), with no
connection and no delivery guarantee.  A keepalive datagram every ``keepalive`` seconds
refreshes the registration and keeps a NAT mapping open; its ``ack`` carries the number of
the last event datagram sent, so a lost last datagram is noticed too.  No answer to three
keepalives in a row: the path is taken for dead, a new socket (a new port) registers again.

Loss and reordering are found from the numbers: every datagram has a ``seq`` (per
registration: a gap is a loss, a smaller one than before a reordering) and a ``prev`` (the
previous event id this registration was sent for the same room).  A datagram whose
``prev`` is not the last id of its room's chain waits up to ``reorder`` seconds for the
missing one (a reordered datagram comes late, not never); then the room is fetched over
HTTP after its cursor (``GET .../messages?since=N``), the events found are shown marked
``recovered``, and the chain goes on from there.  While a room is being fetched its
datagrams are held, so nothing shows out of order or twice.  After every (re)registration
each room is fetched once: what was said while no registration existed is not lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import socket
from typing import Any

import orjson

from .httpclient import INBOX, HttpTransport, Restarted
from .model import ChatEvent, TransportError, error_reason

MISSES_BEFORE_DEAD = 3   # keepalives without an answer before the path is taken for dead
REGISTER_RETRY = 0.5     # seconds before a registration without answer is sent again
PAD_TO = 96              # bytes: room for any answer (the server never answers with more)
EARLY_KEPT = 1000        # datagrams of a room whose join is still on its way


class _Chain:
    """One room's (or the inbox's) chain of event datagrams."""

    __slots__ = ("last", "seq", "pending", "since", "fetching", "held", "early")

    def __init__(self) -> None:
        self.last = 0          # the last id of this registration's chain accounted for
        self.seq = 0           # the highest seq accounted for here
        self.pending: dict[int, tuple[int, int, dict[str, Any]]] = {}  # prev -> datagram
        self.since: float | None = None   # when the oldest pending one arrived
        self.fetching = False
        self.held: list[tuple[int, int, dict[str, Any]]] = []  # arrived during a fetch
        self.early: list[dict[str, Any]] = []  # events of a room not joined yet


class _Socket(asyncio.DatagramProtocol):
    def __init__(self, owner: UdpTransport) -> None:
        self.owner = owner
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if self.owner._socket is self:
            self.owner._datagram(data)

    def error_received(self, exc: Exception) -> None:
        pass  # an ICMP error (the server's port closed): the keepalives will tell

    def send(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(data)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class UdpTransport(HttpTransport):
    """The ``udp`` mode (see the module docstring)."""

    mode = "udp"

    def __init__(self, *, udp_port: int = 0, keepalive: float = 15.0, reorder: float = 0.05,
                 rcvbuf: int = 0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.udp_port = udp_port  # 0: ask the server (GET /api/stats, udp.port)
        self.keepalive = keepalive
        self.reorder = reorder
        self.rcvbuf = rcvbuf      # SO_RCVBUF of the socket (0: the system's default)
        self._socket: _Socket | None = None
        self._loop_task: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._answered = asyncio.Event()
        self._lapsed = asyncio.Event()  # the registration is gone: register again now
        self._reg: int | None = None
        self._highest = 0                      # the highest seq seen (or acknowledged)
        self._missing: dict[int, float] = {}   # seq -> when it was found missing
        self._chains: dict[str, _Chain] = {}
        self._recovering: set[str] = set()     # keys fetched after a loss (marked recovered)
        self._tasks: set[asyncio.Task[None]] = set()

    # --- the feeds: one socket and its keepalive loop instead of a request per room ---------
    def _start_feeds(self) -> None:
        if self._loop_task is None and not self._closing:
            self._loop_task = asyncio.get_running_loop().create_task(self._run())

    def _room_added(self, room: str) -> None:
        chain = self._chain(room)
        early, chain.early = chain.early, []
        for frame in early:  # what came before the join's answer
            self._show(room, frame)

    async def _stop_feeds(self) -> None:
        await super()._stop_feeds()
        task, self._loop_task = self._loop_task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        tasks = [t for t in self._tasks if t is not asyncio.current_task()]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    async def _run(self) -> None:
        """Register, then keep the registration alive; a dead path starts over."""
        try:
            if not self.udp_port:
                self.udp_port = await self._ask_udp_port()
            while not self._closing:
                await self._open_socket()
                await self._register()
                await self._keep_alive()
        except asyncio.CancelledError:
            raise
        except TransportError as exc:
            if not self._closing:
                self._notice(str(exc))
                await self._give_up(str(exc))

    async def _ask_udp_port(self) -> int:
        """The server's udp port; the number this client dials for HTTP when the server's
        lane has its HTTP port's number (so a relay of both on one number stays in the
        path, as ``chat link --protocol both`` does)."""
        body = await self._api(self._ctl, "GET", "/api/stats")
        udp = body.get("udp") or {}
        port = int(udp.get("port") or 0)
        if not port:
            raise TransportError("the server has no udp lane (--no-udp)")
        return self.http_port if udp.get("same_port") else port

    async def _open_socket(self) -> None:
        if self._socket is not None:
            self._socket.close()
        sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET,
                             socket.SOCK_DGRAM)
        if self.rcvbuf:  # a small buffer overflows under a burst: the kernel drops the rest
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)
        sock.setblocking(False)
        sock.connect((self.host, self.udp_port))
        proto = _Socket(self)
        self._socket = proto
        await asyncio.get_running_loop().create_datagram_endpoint(lambda: proto, sock=sock)

    def _send(self, kind: str) -> None:
        assert self._socket is not None and self.token is not None
        frame = orjson.dumps({"type": kind, "token": self.token})
        pad = max(0, PAD_TO - len(frame) - 10)
        data = frame[:-1] + b',"pad":"' + b"." * pad + b'"}'
        self.counters.bytes_out += len(data)
        self.counters.datagrams_out += 1
        self._socket.send(data)

    async def _register(self) -> None:
        """Send ``register`` until it is answered (backing off); the chains start over."""
        backoff = self._new_backoff()
        delay = REGISTER_RETRY
        self._reg = None
        while self._reg is None and not self._closing:
            self._answered.clear()
            self._send("register")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._answered.wait(), delay)
            if self._reg is None:
                self._set_state("reconnecting")
                if self._answered.is_set():  # refused (a session being renewed): wait
                    await asyncio.sleep(delay)
                delay = max(REGISTER_RETRY, backoff.next_delay())

    async def _keep_alive(self) -> None:
        """A keepalive every ``keepalive`` seconds until three go unanswered."""
        misses = 0
        reg = self._reg
        self._lapsed.clear()
        while not self._closing and misses < MISSES_BEFORE_DEAD and self._reg == reg:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._lapsed.wait(), self.keepalive)
            if self._reg != reg:
                return  # the server ended it, or forgot it: register again at once
            self._answered.clear()
            self._send("keepalive")
            try:
                await asyncio.wait_for(self._answered.wait(), min(self.keepalive, 5.0))
                misses = 0
            except TimeoutError:
                misses += 1
        if misses >= MISSES_BEFORE_DEAD and not self._closing:
            self._notice(f"no answer to {misses} keepalives: registering a new socket")
            self._set_state("reconnecting")
            self.counters.reconnects += 1

    # --- datagrams in ------------------------------------------------------------------------
    def _datagram(self, data: bytes) -> None:
        self.counters.bytes_in += len(data)
        self.counters.datagrams_in += 1
        try:
            frame = orjson.loads(data)
        except orjson.JSONDecodeError:
            return
        if not isinstance(frame, dict):
            return
        kind = frame.get("type")
        if kind is None and "seq" in frame:
            self._event_datagram(frame)
        elif kind == "registered":
            self._registered(int(frame.get("reg") or 0), int(frame.get("seq") or 0))
        elif kind == "ack":
            self._answered.set()
            if frame.get("reg") != self._reg:
                self._lapse()  # not ours any more: register again
            else:
                self._seen_seq(int(frame.get("seq") or 0), counted=False)
        elif kind == "error":
            self._answered.set()
            self._error(str(frame.get("error")))
        elif kind == "end" and not self._closing:
            self._notice(f"the server ended the registration: {frame.get('reason')}")
            self._lapse()
            self._answered.set()

    def _registered(self, reg: int, seq: int) -> None:
        first = self._reg is None
        self._reg = reg
        self._answered.set()
        if not first:
            return
        self._highest = seq
        self._missing.clear()
        keys = [*self._rooms, *([INBOX] if self.inbox else [])]
        for key in keys:  # a new registration: its chains start at 0
            chain = self._chain(key)
            chain.last, chain.seq, chain.pending, chain.since = 0, seq, {}, None
        self._set_state("connected")
        for key in keys:  # and what was said while none existed is fetched once
            self._spawn_fetch(key, loss=False)

    def _lapse(self) -> None:
        self._reg = None
        self._lapsed.set()

    def _error(self, code: str) -> None:
        if code == "not_registered":
            self._lapse()
        elif code == "unauthorized" and not self._closing:
            self._lapse()  # the session is gone: sign in again, then register
            gen = self._session_gen
            self._track(self._renew(gen))

    async def _renew(self, gen: int) -> None:
        with contextlib.suppress(TransportError, OSError, ConnectionError, TimeoutError):
            await self._renew_session(gen)

    def _seen_seq(self, seq: int, counted: bool) -> None:
        """Bookkeeping of the numbers: reorderings, and the ones found missing."""
        now = self._clock()
        if seq in self._missing:
            del self._missing[seq]
        if counted and seq < self._highest:
            self.counters.reordered += 1
        if seq > self._highest:
            for missing in range(max(self._highest + 1, seq - 10_000), seq + (0 if counted
                                                                               else 1)):
                self._missing[missing] = now
            self._highest = seq
            self._arm()

    def _event_datagram(self, frame: dict[str, Any]) -> None:
        seq, prev = int(frame.get("seq") or 0), int(frame.get("prev") or 0)
        self._seen_seq(seq, counted=True)
        if frame.get("big"):
            key = INBOX if frame.get("room") is None else str(frame.get("room"))
        else:
            event = frame.get("event") or {}
            key = INBOX if event.get("room") is None else str(event.get("room"))
        if key == INBOX and not self.inbox:
            return
        chain = self._chain(key)
        if chain.fetching:
            chain.held.append((seq, prev, frame))
            return
        self._step(key, chain, seq, prev, frame)

    def _step(self, key: str, chain: _Chain, seq: int, prev: int,
              frame: dict[str, Any]) -> None:
        """One datagram of ``key``'s chain: shown if it follows, kept if something before it
        is missing, dropped if it was recovered already."""
        ident = int(frame.get("id") or (frame.get("event") or {}).get("id") or 0)
        if ident <= chain.last:
            self.counters.late += 1  # recovered over HTTP before it came
            return
        if prev > chain.last:
            chain.pending[prev] = (seq, prev, frame)
            if chain.since is None:
                chain.since = self._clock()
                self._arm()
            return
        chain.last, chain.seq = ident, max(chain.seq, seq)
        if frame.get("big"):
            self._spawn_fetch(key, loss=False)  # too large for a datagram: fetch it
        else:
            self._show(key, frame["event"])
        while chain.last in chain.pending and not chain.fetching:
            nseq, nprev, nframe = chain.pending.pop(chain.last)
            self._step(key, chain, nseq, nprev, nframe)
        if not chain.pending:
            chain.since = None

    def _show(self, key: str, data: dict[str, Any]) -> None:
        if key != INBOX and key not in self._rooms:
            chain = self._chain(key)
            if len(chain.early) < EARLY_KEPT:
                chain.early.append(data)
            return
        self._deliver_pushed(key, data, self.now())

    def _deliver(self, event: ChatEvent) -> bool:
        key = INBOX if event.to else event.room
        if key in self._recovering and event.id not in self._came(key):
            event = dataclasses.replace(event, recovered=True)  # it had been lost
        shown = super()._deliver(event)
        if shown and event.recovered:
            self.counters.recovered += 1
        return shown

    def _came(self, key: str) -> set[int]:
        """Ids of ``key``'s events that did arrive and wait (a fetch shows them first)."""
        chain = self._chain(key)
        return {int((f.get("event") or {}).get("id") or f.get("id") or 0)
                for _s, _p, f in [*chain.pending.values(), *chain.held]}

    def _chain(self, key: str) -> _Chain:
        chain = self._chains.get(key)
        if chain is None:
            chain = self._chains[key] = _Chain()
        return chain

    # --- losses: one timer for the earliest reorder window ------------------------------------
    @staticmethod
    def _clock() -> float:
        return asyncio.get_running_loop().time()

    def _arm(self) -> None:
        """One timer, at the end of the earliest reorder window still open."""
        starts = [c.since for c in self._chains.values() if c.since is not None]
        starts += list(self._missing.values())[:1]  # oldest first (insertion order)
        if not starts or self._closing:
            return
        when = min(starts) + self.reorder
        if self._timer is not None:
            if self._timer.when() <= when:
                return
            self._timer.cancel()
        self._timer = asyncio.get_running_loop().call_at(when, self._windows_passed)

    def _windows_passed(self) -> None:
        """Reorder windows that passed: fetch the rooms whose chain has a hole, and those
        that could hold a datagram that never came."""
        self._timer = None
        now = self._clock()
        for key, chain in list(self._chains.items()):
            if chain.since is not None and now - chain.since >= self.reorder \
                    and not chain.fetching:
                self._spawn_fetch(key, loss=True)
        keys = [*self._rooms, *([INBOX] if self.inbox else [])]
        for seq, found in list(self._missing.items()):
            if now - found < self.reorder:
                continue
            del self._missing[seq]
            self.counters.lost += 1
            for key in keys:  # a room whose chain went on past ``seq`` did not lose it
                chain = self._chain(key)
                if chain.seq < seq and not chain.fetching and not chain.pending:
                    self._spawn_fetch(key, loss=True)
        self._arm()

    def _spawn_fetch(self, key: str, loss: bool) -> None:
        chain = self._chain(key)
        if chain.fetching:
            return
        chain.fetching = True  # from now on this room's datagrams wait for the answer
        self._track(self._fetch_room(key, chain, loss))

    def _track(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _fetch_room(self, key: str, chain: _Chain, loss: bool) -> None:
        """Fetch ``key`` after its cursor over HTTP, then let its held datagrams through."""
        issued = self._highest
        if loss:
            self._recovering.add(key)
        try:
            await self._poll(self._ctl, key, 0.0, key)
        except (OSError, ConnectionError, TimeoutError, TransportError) as exc:
            self._notice(f"could not fetch {key or 'private messages'}: {error_reason(exc)}")
            chain.since = chain.since or self._clock()  # try again after another window
        except Restarted:  # the cursors start over; the next window fetches again
            chain.since = chain.since or self._clock()
        else:
            cursor = self._inbox_cursor if key == INBOX else self.cursors.get(key)
            chain.last = max(chain.last, cursor or 0)
            chain.seq = max(chain.seq, issued)
            chain.since = None
        finally:
            self._recovering.discard(key)
            chain.fetching = False
        waiting = sorted([*chain.pending.values(), *chain.held], key=lambda d: d[0])
        chain.pending, chain.held = {}, []
        for seq, prev, frame in waiting:
            if not chain.fetching:
                self._step(key, chain, seq, prev, frame)
            else:
                chain.held.append((seq, prev, frame))
        self._arm()

    async def part(self, room: str) -> None:
        self._chains.pop(self.check_room(room), None)
        await super().part(room)
