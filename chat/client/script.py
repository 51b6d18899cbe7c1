"""Scriptable mode: lines from stdin are sent, every received event is one JSON line.

Used when stdin is not a terminal, or with ``--json``.  Each event is printed to stdout as
``{"id", "ts", "kind", "nick", "text", "delay_ms", "room"}`` (plus ``"to"`` for private
messages); notices and errors go to stderr, one line each.  At end of input the client
waits ``--linger`` seconds for late events, leaves the server and exits 0, or 1 if any
line failed (later lines still ran) or the server closed the connection for good.  A
SIGTERM or SIGINT leaves at once, properly (QUIT / session deleted).  Input lines may be
slash commands too (``/join``, ``/msg`` ...).
"""

from __future__ import annotations

import asyncio
import sys
import threading
from typing import Any, TextIO

import orjson

from .model import ChatEvent, TransportError
from .session import ChatSession


class JsonOutput:
    """Events as JSON lines on ``stdout``; everything else on ``stderr``."""

    def __init__(self, stdout: Any = None, stderr: TextIO | None = None) -> None:
        self.stdout = stdout if stdout is not None else sys.stdout.buffer
        self.stderr = stderr if stderr is not None else sys.stderr

    def event(self, event: ChatEvent, me: str) -> None:
        self.stdout.write(orjson.dumps(event.to_json()) + b"\n")
        self.stdout.flush()

    def info(self, text: str) -> None:
        print(f"chat: {text}", file=self.stderr, flush=True)

    def error(self, text: str) -> None:
        print(f"chat: error: {text}", file=self.stderr, flush=True)

    def state(self, state: str) -> None:
        print(f"chat: [{state}]", file=self.stderr, flush=True)


def _read_lines(stream: TextIO, loop: asyncio.AbstractEventLoop,
                queue: asyncio.Queue[str | None]) -> None:
    """Thread body: blocking reads of ``stream`` handed to the loop (None at EOF)."""
    try:
        for line in stream:
            loop.call_soon_threadsafe(queue.put_nowait, line)
    except (OSError, ValueError):
        pass
    finally:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, None)
        except RuntimeError:  # the loop is already closed: we are exiting anyway
            pass


async def run_script(session: ChatSession, room: str | None, linger: float,
                     stdin: TextIO | None = None) -> int:
    """Drive ``session`` from ``stdin`` until EOF (or /quit); the exit status."""
    out = session.out
    try:
        await session.start(room)
    except TransportError as exc:
        out.error(str(exc))
        return 1
    queue: asyncio.Queue[str | None] = asyncio.Queue()
    session.on_ended = session.on_interrupt = lambda: queue.put_nowait(None)
    # A daemon thread, not run_in_executor: a read blocked on a terminal must not keep the
    # process alive at exit.
    threading.Thread(target=_read_lines, args=(stdin or sys.stdin,
                                                asyncio.get_running_loop(), queue),
                     daemon=True, name="stdin").start()
    try:
        while session.running:
            line = await queue.get()
            if line is None:
                break
            await session.handle(line)
        ended = session.transport.ended is not None
        if session.running and linger > 0 and not (ended or session.interrupted):
            await asyncio.sleep(linger)
    finally:
        if session.running:
            await session.close()
    return 1 if session.failures or session.transport.ended is not None else 0
