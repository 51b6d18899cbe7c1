"""The two front ends: the prompt_toolkit UI (pipe input) and the JSON CLI (subprocess)."""

from __future__ import annotations

import asyncio
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time

import orjson
import pytest
from prompt_toolkit.application import create_app_session, get_app
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput
from prompt_toolkit.shortcuts import PromptSession

from chat.client.model import ChatEvent
from chat.client.session import ChatSession
from chat.client.ui import Handback, TerminalOutput, run_interactive

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


def _prompting(session: ChatSession, room: str) -> bool:
    """The interactive client has joined ``room`` and its prompt is up."""
    return session.room == room and get_app().is_running


async def test_interactive_prompt(make_server: MakeServer, make_client: MakeClient) -> None:
    """Typed lines are sent, bad commands print one error line, /quit ends the prompt."""
    app = await make_server(flood_burst=0)
    peer, peer_got = await make_client(app, "irc", "bob")
    out = RecordingTerminal()
    session = ChatSession(out, mode="poll", host="127.0.0.1", irc_port=app.irc_port,
                          http_port=app.http_port, nick="alice", interval=0.05)
    with create_pipe_input() as pipe, create_app_session(input=pipe, output=DummyOutput()):
        task = asyncio.get_running_loop().create_task(run_interactive(session, "lobby"))
        await wait_until(lambda: _prompting(session, "lobby"), what="the prompt in #lobby")
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


async def _cli(app_ports: tuple[int, int], *args: str,
               stdin: bytes = b"") -> tuple[int, str, str]:
    irc_port, http_port = app_ports
    code, out, err = await _run_cli("--irc-port", str(irc_port), "--http-port", str(http_port),
                                    *args, stdin=stdin)
    return code, out.decode(), err.decode()


@pytest.mark.parametrize("nick", ["taken", "9bad"])
async def test_cli_refused_nick_is_one_line(make_server: MakeServer, make_client: MakeClient,
                                            nick: str) -> None:
    """A taken or invalid nick in irc mode: one error line, no asyncio noise, exit status 1."""
    app = await make_server()
    await make_client(app, "irc", "taken")
    code, out, err = await _cli((app.irc_port, app.http_port), "--json", "--nick", nick)
    assert code == 1
    assert err.splitlines() == [err.splitlines()[0]] and "server refused" in err, err
    assert "Traceback" not in err and "Future" not in err and out == ""


async def test_cli_failed_line_sets_the_exit_status(make_server: MakeServer) -> None:
    """Scriptable mode carries on after a refused line, but exits 1 so a script can tell."""
    app = await make_server()
    code, out, err = await _cli((app.irc_port, app.http_port), "--json", "--mode", "longpoll",
                                "--nick", "carol", "--linger", "0.5",
                                stdin=b"/msg nobody psst\nstill here\n")
    assert code == 1, err
    assert "No such nick" in err
    assert [orjson.loads(line)["text"] for line in out.splitlines()
            if orjson.loads(line)["kind"] == "message"] == ["still here"]


@pytest.mark.parametrize(("mode", "signum", "reason"), [
    ("irc", signal.SIGTERM, "Quit: Leaving"), ("irc", signal.SIGINT, "Quit: Leaving"),
    ("longpoll", signal.SIGTERM, "Client quit"), ("sse", signal.SIGINT, "Client quit")])
async def test_cli_signal_leaves_properly(make_server: MakeServer, make_client: MakeClient,
                                          mode: str, signum: int, reason: str) -> None:
    """SIGTERM or Ctrl-C (SIGINT) in scriptable mode: a proper QUIT, then exit 128+signal."""
    app = await make_server(flood_burst=0)
    _peer, peer_got = await make_client(app, "irc", "bob")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "chat", "connect", "--json", "--mode", mode, "--nick", "carol",
        "--irc-port", str(app.irc_port), "--http-port", str(app.http_port),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    await wait_until(lambda: any(e.kind == "join" and e.nick == "carol"
                                 for e in peer_got.events), timeout=15.0, what="carol joined")
    proc.send_signal(signum)
    _out, err = await asyncio.wait_for(proc.communicate(), 10.0)
    assert proc.returncode == 128 + signum, err
    await wait_until(lambda: any(e.kind == "quit" for e in peer_got.events), what="the quit")
    assert [(e.nick, e.text) for e in peer_got.events if e.kind == "quit"] == [
        ("carol", reason)]
    assert b"Traceback" not in err


async def test_cli_final_close_exits(make_server: MakeServer) -> None:
    """Scriptable mode reaped on purpose (Idle timeout): says why, exits 1, no reconnect."""
    app = await make_server(idle_timeout=0.5)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "chat", "connect", "--json", "--nick", "idler",
        "--irc-port", str(app.irc_port), "--http-port", str(app.http_port),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    try:
        _out, err = await asyncio.wait_for(proc.communicate(), 15.0)  # stdin stays open
    finally:
        if proc.returncode is None:
            proc.kill()
    assert proc.returncode == 1
    assert b"error: the server closed the connection: Idle timeout" in err
    assert b"[reconnecting]" not in err and app.stats.irc.connections_accepted == 1


async def test_interactive_unsent_line_goes_back_to_the_prompt(make_server: MakeServer) -> None:
    """A line typed while the server is gone is not lost: it is put back in the input line."""
    app = await make_server(flood_burst=0)
    out = RecordingTerminal()
    session = ChatSession(out, mode="irc", host="127.0.0.1", irc_port=app.irc_port,
                          http_port=app.http_port, nick="alice", backoff=0.05,
                          backoff_max=0.3)
    with create_pipe_input() as pipe, create_app_session(input=pipe, output=DummyOutput()):
        task = asyncio.get_running_loop().create_task(run_interactive(session, "lobby"))
        # in the room first: a server gone during the first JOIN ends the client instead
        await wait_until(lambda: _prompting(session, "lobby"), what="the prompt in #lobby")
        await app.shutdown()
        await wait_until(lambda: session.transport.state == "reconnecting", what="cut off")
        pipe.send_text("a carefully worded reply\r")
        await wait_until(lambda: any(line.startswith("error") for line in out.lines),
                         what="error line")
        await wait_until(lambda: get_app().current_buffer.text == "a carefully worded reply",
                         what="the line back in the prompt")
        pipe.send_text("\x04")  # Ctrl-D on a non-empty line does nothing: clear it first
        get_app().current_buffer.text = ""
        pipe.send_text("/quit\r")
        assert await asyncio.wait_for(task, 5.0) == 0


def _read_until(fd: int, marker: bytes, timeout: float = 10.0) -> bytes:
    """Read a pty until ``marker`` shows up; fail after ``timeout`` seconds."""
    seen = b""
    deadline = time.monotonic() + timeout
    while marker not in seen:
        left = deadline - time.monotonic()
        ready, _, _ = select.select([fd], [], [], max(0.0, left))
        if not ready:
            raise AssertionError(f"timed out waiting for {marker!r}; saw {seen[-300:]!r}")
        seen += os.read(fd, 65536)
    return seen


def _stopped(pid: int, timeout: float = 5.0) -> bool:
    """True once process ``pid`` is stopped (by a signal); False after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WUNTRACED | os.WNOHANG)
        if done and os.WIFSTOPPED(status):
            return True
        time.sleep(0.02)
    return False


def test_ctrl_z_suspends_the_interactive_client() -> None:
    """Ctrl-Z stops ``chat connect`` like any terminal program (a later ``fg`` is not text)."""
    server = subprocess.Popen([sys.executable, "-m", "chat", "serve", "--irc-port", "0",
                               "--http-port", "0"], stderr=subprocess.PIPE, text=True)
    try:
        assert server.stderr is not None
        found = None
        while found is None:
            line = server.stderr.readline()
            assert line, "the server exited"
            found = re.search(r"IRC on [^:]+:(\d+)", line)
        master, slave = pty.openpty()
        # Its own process group, so the SIGTSTP it sends itself stops only the client.
        proc = subprocess.Popen(
            [sys.executable, "-m", "chat", "connect", "--nick", "zed", "--irc-port",
             found.group(1)], stdin=slave, stdout=slave, stderr=slave,
            env=dict(os.environ, TERM="xterm"), process_group=0)
        os.close(slave)
        try:
            _read_until(master, b"[#lobby]")  # the prompt is up (the terminal in raw mode)
            os.write(master, b"\x1a")  # Ctrl-Z
            assert _stopped(proc.pid), "Ctrl-Z did not suspend the client"
            os.kill(proc.pid, signal.SIGCONT)
            os.write(master, b"/quit\r")
            assert proc.wait(10) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)
            os.close(master)
    finally:
        server.terminate()
        server.wait(10)
        if server.stderr is not None:
            server.stderr.close()


async def test_a_line_given_back_between_two_prompts_waits_for_the_next() -> None:
    """An unsent line that comes back while no prompt runs (the last one returned, the
    next has not reset its buffer yet) is not lost: the next prompt starts with it."""
    with create_pipe_input() as pipe, create_app_session(input=pipe, output=DummyOutput()):
        prompt: PromptSession[str] = PromptSession()
        handback = Handback(prompt)
        handback.give("a carefully worded reply")  # no prompt yet: it waits
        task = asyncio.get_running_loop().create_task(
            prompt.prompt_async("> ", default=handback.take()))
        await wait_until(lambda: handback.live and get_app().is_running, what="prompt")
        assert prompt.default_buffer.text == "a carefully worded reply"
        handback.give("another")  # the user's line is there: a second one does not replace it
        assert prompt.default_buffer.text == "a carefully worded reply"
        pipe.send_text("\r")
        assert await task == "a carefully worded reply"
