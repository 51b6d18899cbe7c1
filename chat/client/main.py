"""``chat connect``: build a session from the command-line options and run a front end."""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import Any

from ..runtime import new_event_loop as _new_loop
from .session import ChatSession


def connect(*, host: str, irc_port: int, http_port: int, nick: str, room: str, mode: str,
            interval: float, json_mode: bool, linger: float, password: str | None = None
            ) -> int:
    """Run the client until the user quits (or stdin ends); the process exit status."""
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="chat: %(levelname)s %(name)s: %(message)s")
    scripted = json_mode or not sys.stdin.isatty()
    loop = _new_loop()
    asyncio.set_event_loop(loop)
    try:
        return loop.run_until_complete(
            _run(scripted, host=host, irc_port=irc_port, http_port=http_port, nick=nick,
                 room=room, mode=mode, interval=interval, linger=linger, password=password))
    except KeyboardInterrupt:
        return 130
    finally:
        loop.close()


async def _run(scripted: bool, *, room: str, linger: float, **options: Any) -> int:
    if scripted:
        from .script import JsonOutput, run_script
        return await run_script(ChatSession(JsonOutput(), **options), room or None, linger)
    from .ui import TerminalOutput, run_interactive
    return await run_interactive(ChatSession(TerminalOutput(), **options), room or None)


