"""``chat connect``: build a session from the command-line options and run a front end.

Exit status: 0, or 1 if it could not connect (scriptable mode: also if a line failed or
the server closed the connection for good), 128 + the signal number after a SIGTERM (or a
SIGINT outside the prompt), having left the server properly first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from typing import Any

from ..runtime import new_event_loop as _new_loop
from .session import ChatSession

SIGNALS = (signal.SIGTERM, signal.SIGINT)


def connect(*, host: str, irc_port: int, http_port: int, nick: str, room: str, mode: str,
            interval: float, json_mode: bool, linger: float, password: str | None = None,
            udp_port: int = 0, keepalive: float = 15.0, tls: bool = False,
            insecure: bool = False) -> int:
    """Run the client until the user quits (or stdin ends); the process exit status."""
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="chat: %(levelname)s %(name)s: %(message)s")
    scripted = json_mode or not sys.stdin.isatty()
    loop = _new_loop()
    asyncio.set_event_loop(loop)
    try:
        return loop.run_until_complete(
            _run(scripted, host=host, irc_port=irc_port, http_port=http_port, nick=nick,
                 room=room, mode=mode, interval=interval, linger=linger, password=password,
                 udp_port=udp_port, keepalive=keepalive, tls=tls, insecure=insecure))
    except KeyboardInterrupt:
        return 130
    finally:
        loop.close()


async def _run(scripted: bool, *, room: str, linger: float, **options: Any) -> int:
    if scripted:
        from .script import JsonOutput, run_script
        session = ChatSession(JsonOutput(), **options)
        front = run_script(session, room or None, linger)
    else:
        from .ui import TerminalOutput, run_interactive
        session = ChatSession(TerminalOutput(), **options)
        front = run_interactive(session, room or None)
    task = asyncio.ensure_future(front)
    loop = asyncio.get_running_loop()
    for signum in SIGNALS:
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not on Windows
            loop.add_signal_handler(signum, _interrupt, session, task, signum)
    try:
        status = await task
    except asyncio.CancelledError:
        status = 1
        if session.running:  # interrupted while connecting: leave what was reached
            with contextlib.suppress(Exception):
                await asyncio.wait_for(session.close(), 3.0)
    finally:
        for signum in SIGNALS:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(signum)
    return 128 + session.interrupted if session.interrupted else status


def _interrupt(session: ChatSession, task: asyncio.Future[int], signum: int) -> None:
    """Leave properly on a signal: through the front end once it runs, else at once."""
    if session.on_interrupt is not None and not session.interrupted:
        session.interrupt(signum)
    else:  # still connecting, or a second signal: stop waiting
        session.interrupted = signum
        task.cancel()


