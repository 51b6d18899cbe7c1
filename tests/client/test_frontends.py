"""The two front ends: the prompt_toolkit UI (pipe input) and the JSON CLI (subprocess)."""

from __future__ import annotations

import asyncio
import sys

import orjson
from prompt_toolkit.application import create_app_session
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput

from chat.client.model import ChatEvent
from chat.client.session import ChatSession
from chat.client.ui import TerminalOutput, run_interactive

from ..conftest import MakeServer
from .conftest import MakeClient, wait_until


class RecordingTerminal(TerminalOutput):
    """The real terminal output, also keeping what it showed."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def event(self, event: ChatEvent, me: str) -> None:
        self.lines.append(f"event {event.nick}: {event.text}")
        super().event(event, me)

    def info(self, text: str) -> None:
        self.lines.append("info " + text)
        super().info(text)

    def error(self, text: str) -> None:
        self.lines.append("error " + text)
        super().error(text)


async def test_interactive_prompt(make_server: MakeServer, make_client: MakeClient) -> None:
    """Typed lines are sent, bad commands print one error line, /quit ends the prompt."""
    app = await make_server(flood_burst=0)
    peer, peer_got = await make_client(app, "irc", "bob")
    out = RecordingTerminal()
    session = ChatSession(out, mode="poll", host="127.0.0.1", irc_port=app.irc_port,
                          http_port=app.http_port, nick="alice", interval=0.05)
    with create_pipe_input() as pipe, create_app_session(input=pipe, output=DummyOutput()):
        task = asyncio.get_running_loop().create_task(run_interactive(session, "lobby"))
        await wait_until(lambda: session.transport.state == "connected", what="connected")
        await asyncio.sleep(0.1)
        await peer.send("lobby", "hi alice")
        pipe.send_text("hello from the prompt\r")
        await wait_until(lambda: "hello from the prompt" in peer_got.texts(), what="sent")
        await wait_until(lambda: "event bob: hi alice" in out.lines, what="received")
        pipe.send_text("/frobnicate\r")
        await wait_until(lambda: any(line.startswith("error") for line in out.lines),
                         what="error line")
        pipe.send_text("/quit\r")
        assert await asyncio.wait_for(task, 5.0) == 0
    assert [line for line in out.lines if line.startswith("error")] == [
        "error unknown command /frobnicate; /help lists the commands"]
    assert not session.running


async def _run_cli(*args: str, stdin: bytes) -> tuple[int, bytes, bytes]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "chat", "connect", *args, stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    stdout, stderr = await asyncio.wait_for(proc.communicate(stdin), 20.0)
    assert proc.returncode is not None
    return proc.returncode, stdout, stderr


async def test_json_mode_cli(make_server: MakeServer, make_client: MakeClient) -> None:
    """`chat connect` with piped stdin sends each line and prints events as JSON lines."""
    app = await make_server(flood_burst=0)
    peer, peer_got = await make_client(app, "irc", "bob")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "chat", "connect", "--mode", "longpoll", "--nick", "carol",
        "--room", "lobby", "--linger", "0.5", "--http-port", str(app.http_port),
        "--irc-port", str(app.irc_port), stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(b"first line\nsecond line\n/msg bob psst\n")
    await proc.stdin.drain()
    await wait_until(lambda: "second line" in peer_got.texts()
                     and ("carol", "bob", "psst") in peer_got.private(),
                     timeout=15.0, what="carol's lines")
    await peer.send("lobby", "welcome carol")
    first = orjson.loads(await asyncio.wait_for(proc.stdout.readline(), 10.0))
    proc.stdin.close()  # end of input: the client lingers, then exits
    stdout, stderr = await asyncio.wait_for(proc.communicate(), 10.0)
    assert proc.returncode == 0, stderr
    assert b"Traceback" not in stderr
    records = [first] + [orjson.loads(line) for line in stdout.splitlines()]
    for record in records:
        assert {"id", "ts", "kind", "nick", "text", "delay_ms"} <= set(record)
        assert isinstance(record["delay_ms"], float) and isinstance(record["id"], int)
    texts = [(r["nick"], r["text"]) for r in records
             if r["kind"] == "message" and r["room"] == "lobby"]
    assert texts == [("carol", "first line"), ("carol", "second line"),
                     ("bob", "welcome carol")]
    assert [(r["nick"], r["to"], r["text"]) for r in records if "to" in r] == [
        ("carol", "bob", "psst")]
    assert peer_got.texts() == ["first line", "second line", "welcome carol"]


async def test_cli_unreachable_server_is_one_line() -> None:
    """An unreachable server: exit status 1 and a single error line, no traceback."""
    code, stdout, stderr = await _run_cli("--json", "--nick", "dave", "--mode", "irc",
                                          "--irc-port", "1", stdin=b"")
    assert code == 1
    errors = [line for line in stderr.decode().splitlines() if "error" in line]
    assert len(errors) == 1 and "cannot reach" in errors[0]
    assert b"Traceback" not in stderr and stdout == b""


async def test_cli_usage_error() -> None:
    """A bad option is a click usage message (exit 2), not a traceback."""
    code, _, stderr = await _run_cli("--nick", "x", "--mode", "pigeon", stdin=b"")
    assert code == 2 and b"Invalid value for '--mode'" in stderr
