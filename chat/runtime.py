"""Process plumbing every entry point shares: the event loop, descriptors, ports, drains.

uvloop when importable; the open-file limit lifted to its hard cap; free loopback ports for
the lab and the tests; one helper that waits for a set of connections to close and aborts
the rest at a deadline (both listeners' shutdown uses it); :class:`Offloader`, slow pure
work (an OPER password hash) run in the default thread pool; :class:`HeldInput`, the input
a long connection (IRC, WebSocket) has read but may not process yet; :class:`PacedFlusher`,
the coalesced flush of the WebSocket and SSE adapters.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import gc
import logging
import resource
import socket
import time
from collections import deque
from collections.abc import Callable, Collection
from contextlib import suppress
from typing import Any, Generic, Protocol, TypeVar

from .core.bucket import Budget
from .core.clock import Now
from .core.pacing import FlushPacer
from .core.pending import Pending
from .core.stats import TransportStats

log = logging.getLogger(__name__)

FD_RESERVE = 100  # descriptors kept back from --max-clients for listeners, logs, the loop

T = TypeVar("T")


class HeldInput(Generic[T]):
    """Input one connection has read but may not process yet: its flood budget is spent, or
    its session waits for the engine to settle a write.  Items go through ``process`` in
    order, as the budget refills (one timer) and when the engine settles (:meth:`resume`);
    ``process`` answers False once the connection has closed.  Made on first use, so a
    connection that never floods pays nothing for it.
    """

    __slots__ = ("loop", "flood", "limit", "size_of", "process", "waiting", "clock",
                 "items", "size", "handle")

    def __init__(self, loop: asyncio.AbstractEventLoop, flood: Budget | None,
                 limit: int, size_of: Callable[[T], int],
                 process: Callable[[T, Now], bool], waiting: Callable[[], bool],
                 clock: Callable[[], Now]) -> None:
        self.loop = loop
        self.flood = flood
        self.limit = limit        # bytes held before the caller cuts the connection
        self.size_of = size_of
        self.process = process
        self.waiting = waiting    # the session waits for the engine: release on resume()
        self.clock = clock
        self.items: deque[T] = deque()
        self.size = 0
        self.handle: asyncio.Handle | None = None

    def __bool__(self) -> bool:
        return bool(self.items)

    def hold(self, item: T, mono: float) -> bool:
        """Queue ``item`` behind the others; False once more than ``limit`` bytes wait."""
        self.items.append(item)
        self.size += self.size_of(item)
        if self.size > self.limit:
            return False
        if self.handle is None and not self.waiting():
            self._schedule(mono)
        return True

    def resume(self) -> None:
        """The session's engine writes have settled: go on with what is held."""
        if self.items and self.handle is None:
            self.handle = self.loop.call_soon(self._release)

    def cancel(self) -> None:
        """The connection closes: drop what is held and the timer."""
        if self.handle is not None:
            self.handle.cancel()
            self.handle = None
        self.items.clear()
        self.size = 0

    def _schedule(self, mono: float) -> None:
        delay = self.flood.wait(mono) if self.flood is not None else 0.0
        self.handle = self.loop.call_later(delay, self._release)

    def _release(self) -> None:
        """Process as many items as the flood budget (and the engine) allow now."""
        self.handle = None
        items, flood = self.items, self.flood
        now = self.clock()
        while items and not self.waiting() and (flood is None or flood.take(now.mono)):
            item = items.popleft()
            self.size -= self.size_of(item)
            if not self.process(item, now):
                return
        if items and not self.waiting():  # out of tokens; else resume() calls us again
            self._schedule(now.mono)


class Flushable(Protocol):
    def flush(self) -> None:
        """Write out what is queued, in one write."""


class PacedFlusher:
    """Coalesced output for the connections of one adapter (WebSocket, SSE streams).

    :meth:`add` a connection whose outbox went from empty to not (once until it is
    flushed); one flush per window (:class:`~chat.core.pacing.FlushPacer`: the next loop
    turn after a quiet spell, under load late enough that writing takes at most
    ``--flush-share`` of the core) calls every added connection's ``flush()`` once.  The
    IRC adapter inlines the same loop: it is its hot path.
    """

    __slots__ = ("pacer", "dirty", "handle", "loop", "cpu_clock", "stats")

    def __init__(self, interval: float, share: float, longest: float,
                 stats: TransportStats) -> None:
        self.pacer = FlushPacer(interval, share, longest)
        self.dirty: list[Flushable] = []
        self.handle: asyncio.Handle | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.cpu_clock = time.thread_time  # what a flush costs (tests pass a fake)
        self.stats = stats

    def add(self, conn: Flushable, loop: asyncio.AbstractEventLoop) -> None:
        """``conn`` has output: flush it when the pacer allows."""
        self.dirty.append(conn)
        if self.handle is None:
            self.loop = loop
            delay = self.pacer.delay(loop.time())
            self.handle = (loop.call_later(delay, self.flush_all) if delay > 0
                           else loop.call_soon(self.flush_all))

    def flush_all(self) -> None:
        """Flush every added connection once; the CPU it took sizes the next window."""
        self.handle = None
        assert self.loop is not None
        began, cpu = self.loop.time(), self.cpu_clock()
        dirty, self.dirty = self.dirty, []
        for conn in dirty:
            conn.flush()  # each counts its own write (stats.writes)
        self.stats.flushes += 1
        self.pacer.flushed(began, self.cpu_clock() - cpu)


class Offloader:
    """``offloader(work)``: run ``work`` in the running loop's default thread pool and get a
    Pending settled on the loop with its result.  Over ``limit`` at once, or if ``work``
    raises, the result is False: a flood of OPER attempts queues no threads."""

    __slots__ = ("limit", "running")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.running = 0

    def __call__(self, work: Callable[[], Any]) -> Pending[Any]:
        if self.running >= self.limit:
            return Pending.ok(False)
        self.running += 1
        pending: Pending[Any] = Pending()
        future = asyncio.get_running_loop().run_in_executor(None, work)
        future.add_done_callback(lambda done: self._done(pending, done))
        return pending

    def _done(self, pending: Pending[Any], done: asyncio.Future[Any]) -> None:
        self.running -= 1
        if done.cancelled():
            return
        error = done.exception()
        if error is not None:
            log.error("offloaded work failed: %r", error)
        pending.resolve(False if error is not None else done.result())


def new_event_loop() -> asyncio.AbstractEventLoop:
    """A uvloop loop, or the stock one if uvloop cannot be imported."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency
        return asyncio.new_event_loop()
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop


def raise_fd_limit() -> int:
    """Lift the soft open-file limit to the hard limit; return the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        with suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return soft


def default_max_clients() -> int:
    """The soft open-file limit minus :data:`FD_RESERVE` (at least 1)."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        soft = 65536
    return max(1, soft - FD_RESERVE)


def freeze_startup_heap() -> None:
    """Put everything alive once the server has started (modules, classes, functions, the
    server's own tables) out of the cyclic collector's reach (``gc.freeze``): its full
    collections then walk only what was made since, not tens of thousands of start-up
    objects every time (about 8 % of the CPU of a ``Connection: close`` poll)."""
    gc.collect()
    gc.freeze()


def trim_memory() -> bool:
    """Collect garbage and hand the heap's free pages back to the system (glibc's
    ``malloc_trim``): after thousands of sessions expired at once, CPython's freed blocks
    would otherwise keep the process as large as at its peak.  False where unsupported."""
    gc.collect()
    global _malloc_trim
    if _malloc_trim is None:
        try:
            _malloc_trim = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
        except (OSError, AttributeError):
            _malloc_trim = False
    if _malloc_trim is False:
        return False
    _malloc_trim(0)
    return True


_malloc_trim: Any = None


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """``count`` distinct ports free on ``host`` right now (held open together, then freed)."""
    socks = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((host, 0))
            socks.append(sock)
        return [s.getsockname()[1] for s in socks]
    finally:
        for sock in socks:
            sock.close()


async def drain(open_now: Callable[[], Collection[object]], closed: asyncio.Future[None],
                timeout: float, abort_all: Callable[[], None], what: str) -> None:  # noqa: ASYNC109
    """Wait up to ``timeout`` s for ``closed``; then ``abort_all()`` what is still open.

    ``open_now()`` tells what is still open (nothing: return at once); ``closed`` is set
    by the caller when the last connection goes.
    """
    if not open_now():
        return
    try:
        await asyncio.wait_for(asyncio.shield(closed), timeout)
    except TimeoutError:
        log.info("aborting %d %s connections at shutdown", len(open_now()), what)
        abort_all()
        await asyncio.sleep(0)  # let connection_lost run
