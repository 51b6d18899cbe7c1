"""The interactive terminal client: a prompt that incoming messages never break.

prompt_toolkit keeps the line being typed at the bottom; events are printed above it
(``print_formatted_text`` redraws the prompt), each with how long it took to arrive.  The
bottom toolbar shows mode, connection state, requests, empty polls, bytes in/out, TCP
connections opened and the last heartbeat round trip, refreshed twice a second.  Input
lines are queued to a worker, so a slow server never freezes typing; a chat line that
could not be sent is put back into the input line.  Ctrl-Z suspends the client like any
terminal program.
"""

from __future__ import annotations

import asyncio
import contextlib

from prompt_toolkit import PromptSession, print_formatted_text
from prompt_toolkit.application import get_app_or_none
from prompt_toolkit.formatted_text import FormattedText
from prompt_toolkit.history import InMemoryHistory
from prompt_toolkit.patch_stdout import patch_stdout
from prompt_toolkit.styles import Style

from .commands import UsageError, parse_input
from .model import ChatEvent, TransportError
from .render import event_fragments, status_line
from .session import ChatSession, Output

STYLE = Style.from_dict({
    "time": "#888888",
    "room": "ansicyan",
    "nick": "ansigreen bold",
    "self": "ansiyellow bold",
    "private": "ansimagenta bold",
    "info": "#888888",
    "delay": "#888888 italic",
    "error": "ansired bold",
    "state": "ansiblue",
    "bottom-toolbar": "noreverse bg:#303030 #d0d0d0",
})


class TerminalOutput:
    """Prints above the prompt (and asks the toolbar to redraw on state changes)."""

    def event(self, event: ChatEvent, me: str) -> None:
        print_formatted_text(FormattedText(event_fragments(event, me)), style=STYLE)

    def info(self, text: str) -> None:
        print_formatted_text(FormattedText([("class:info", "-- " + text)]), style=STYLE)

    def error(self, text: str) -> None:
        print_formatted_text(FormattedText([("class:error", "!! " + text)]), style=STYLE)

    def state(self, state: str) -> None:
        print_formatted_text(FormattedText([("class:state", f"-- [{state}]")]), style=STYLE)
        app = get_app_or_none()
        if app is not None:
            app.invalidate()


async def run_interactive(session: ChatSession, room: str | None) -> int:
    """Run the prompt until /quit, Ctrl-D or Ctrl-C; the exit status."""
    out: Output = session.out
    # erase_when_done: a sent line is shown once, as the event the server echoes back.
    prompt: PromptSession[str] = PromptSession(history=InMemoryHistory(),
                                               erase_when_done=True, enable_suspend=True)

    def message() -> FormattedText:
        where = f"#{session.room}" if session.room else "no room"
        return FormattedText([("class:room", f"[{where}] ")])

    def toolbar() -> str:
        t = session.transport
        return status_line(t.mode, t.state, session.room, t.nick, t.counters)

    with patch_stdout(raw=True):
        out.info(f"ChatLab client, {session.mode} mode, connecting as {session.nick} "
                 "... (/help for commands)")
        try:
            await session.start(room)
        except TransportError as exc:
            out.error(str(exc))
            return 1
        lines: asyncio.Queue[str] = asyncio.Queue()
        session.on_interrupt = lambda: _leave(prompt)
        handback = Handback(prompt)
        worker = asyncio.get_running_loop().create_task(_work(session, lines, handback))
        try:
            while session.running:
                try:
                    line = await prompt.prompt_async(  # resets its buffer before it awaits
                        message, bottom_toolbar=toolbar, refresh_interval=0.5, style=STYLE,
                        default=handback.take())
                except (EOFError, KeyboardInterrupt):
                    line = "/quit"
                finally:
                    handback.live = False
                if session.running:
                    lines.put_nowait(line)
                if _is_quit(line):
                    await worker  # it ends once the session has quit
        finally:
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker
            if session.running:
                await session.close()
    return 0


async def _work(session: ChatSession, lines: asyncio.Queue[str], handback: Handback) -> None:
    """Run queued input lines in order; end the prompt once the session quits."""
    while session.running:
        line = await lines.get()
        unsent = await session.handle(line)
        if unsent is not None:
            handback.give(unsent)
    _leave(handback.prompt)


def _leave(prompt: PromptSession[str]) -> None:
    """End the prompt as Ctrl-D would (the main loop then quits)."""
    if prompt.app.is_running and not prompt.app.is_done:
        prompt.app.exit(exception=EOFError())


class Handback:
    """Unsent lines on their way back into the input line (if the user has not started
    another; it is in the history too, one Up away).

    A line can fail between two prompts: it then waits here and the next prompt starts
    with it (its ``default``), so it is never written into a buffer about to be reset.  The
    same in a dumb terminal (``TERM=dumb``), where prompt_toolkit runs another
    application around the same buffer."""

    __slots__ = ("prompt", "live", "text")

    def __init__(self, prompt: PromptSession[str]) -> None:
        self.prompt = prompt
        self.live = False        # a prompt has started (buffer reset) and not returned yet
        self.text = ""           # a line for the next prompt to start with

    def give(self, text: str) -> None:
        if self.live:
            self._put(text)
        elif not self.text:
            self.text = text

    def take(self) -> str:
        """The next prompt's default: called right before it starts, which resets its
        buffer before anything else runs, so from here on a line goes straight in."""
        self.live = True
        text, self.text = self.text, ""
        return text

    def _put(self, text: str) -> None:
        buffer = self.prompt.default_buffer
        if not buffer.text:
            buffer.text = text
            buffer.cursor_position = len(text)


def _is_quit(line: str) -> bool:
    try:
        command = parse_input(line)
    except UsageError:
        return False
    return command is not None and command.name == "quit"
