"""Claims the README makes about `chat serve`, each checked the way a user would meet it."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import trustme
from click.testing import CliRunner

from chat import workers
from chat.cli import main
from chat.config import MINIMUMS, Config, config_fields
from chat.core.passwords import hash_password
from chat.runtime import free_ports
from tests.conftest import MakeServer
from tests.http.util import Conn, Irc, call, new_session


def _other_value(field: dataclasses.Field[Any]) -> tuple[str, Any]:
    """An environment string for ``field`` and the value it must give (never the default)."""
    default = field.default
    if field.name == "log_level":
        return "debug", "debug"
    if field.name == "engine":
        return "redis://127.0.0.1:1/0", "redis://127.0.0.1:1/0"
    if field.name == "oper":  # NAME:HASH entries, space-separated
        entries = (f"a:{hash_password('x', n=2)}", f"b:{hash_password('y', n=2)}")
        return " ".join(entries), entries
    if field.name == "https_port":
        return "8443", 8443
    if field.name == "log_format":
        return "json", "json"
    if field.name == "cloak":
        return "all", "all"
    if field.name == "per_ip_exempt":
        return "10.0.0.0/8 192.168.0.0/16", ("10.0.0.0/8", "192.168.0.0/16")
    if field.name == "allowed_host":
        return "chat.example other.example", ("chat.example", "other.example")
    if isinstance(default, bool):
        return ("0", False) if default else ("1", True)
    if isinstance(default, tuple):
        return "https://a.example https://b.example", ("https://a.example", "https://b.example")
    if isinstance(default, int):
        value = max(default, int(MINIMUMS.get(field.name, 0))) + 1
        return str(value), value
    if isinstance(default, float):
        value = max(default, MINIMUMS.get(field.name, 0)) + 0.5
        return str(value), value
    return "value-from-env", "value-from-env"


def test_every_option_reads_its_environment_variable(monkeypatch: pytest.MonkeyPatch,
                                                     tmp_path: Path) -> None:
    """Every Config field can be set as CHAT_<NAME>: the server gets that value."""
    env: dict[str, str] = {}
    expected: dict[str, Any] = {}
    for field in config_fields():
        env[f"CHAT_{field.name.upper()}"], expected[field.name] = _other_value(field)
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"  # TLS files are loaded at start
    server_cert = trustme.CA().issue_cert("localhost")
    server_cert.cert_chain_pems[0].write_to_path(str(cert))
    server_cert.private_key_pem.write_to_path(str(key))
    for name, path in (("tls_cert", cert), ("tls_key", key)):
        env[f"CHAT_{name.upper()}"] = expected[name] = str(path)
    env["CHAT_WORKERS"], expected["workers"] = "1", 1  # one process, so no fork here
    seen: list[Config] = []
    monkeypatch.setattr(workers, "run_server", lambda config, **_: seen.append(config) or 0)
    result = CliRunner().invoke(main, ["serve"], env=env)
    assert result.exit_code == 0, result.output
    assert {name: getattr(seen[0], name) for name in expected} == expected


def test_zero_is_accepted_wherever_the_help_says_it_disables(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Every option whose help promises "0 disables" (or "0: ...") takes 0 on the command line."""
    seen: list[Config] = []
    monkeypatch.setattr(workers, "run_server", lambda config, **_: seen.append(config) or 0)
    zeroable = [f.name for f in config_fields()
                if re.search(r"\(0 disables|\(0: |; 0 disables|, 0 disables", f.metadata["help"])]
    assert "ping_timeout" in zeroable and "idle_timeout" in zeroable
    for name in zeroable:
        result = CliRunner().invoke(main, ["serve", f"--{name.replace('_', '-')}", "0"])
        assert result.exit_code == 0, (name, result.output)
        assert getattr(seen[-1], name) == 0


def _serve(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "chat", "serve", "--log-level", "warning",
                             *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_and_terminate_exit_0(signum: int) -> None:
    """SIGINT (Ctrl-C) and SIGTERM both shut the server down gracefully with status 0."""
    for _ in range(5):  # ports picked free may be taken by another process before the
        irc_port, http_port = free_ports(2)  # server binds them: it exits, try others
        proc = _serve("--irc-port", str(irc_port), "--http-port", str(http_port))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", http_port), 0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        if proc.poll() is None:
            break
        proc.communicate()
    proc.send_signal(signum)
    _out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0 and b"Traceback" not in err


async def test_connections_still_open_after_the_shutdown_timeout_are_aborted(
        make_server: MakeServer, caplog: pytest.LogCaptureFixture) -> None:
    """A client that never reads keeps its socket from closing: at --shutdown-timeout the
    server aborts it instead of waiting for ever."""
    app = await make_server(shutdown_timeout=0.3, sendq=64 << 20, flood_burst=0)
    stuck = socket.socket()
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stuck.setblocking(False)
    await asyncio.get_running_loop().sock_connect(stuck, ("127.0.0.1", app.irc_port))
    stuck.send(b"NICK stuck\r\nUSER s 0 * :s\r\nJOIN #full\r\n")
    talker = await Irc.connect(app.irc_port, "talker")
    await talker.send("JOIN #full")
    await talker.expect(" 366 ")
    def buffered() -> int:  # what the server holds for the client beyond the kernel's buffer
        conns = [c for c in app.irc.connections if c.session.nick == "stuck"]
        return conns[0].transport.get_write_buffer_size() if conns else 0

    for _ in range(400):
        if buffered() > 0:
            break
        await talker.send(*["PRIVMSG #full :" + "x" * 400] * 50)
        await asyncio.sleep(0.01)
    assert buffered() > 0
    caplog.set_level(logging.INFO, "chat.runtime")
    loop = asyncio.get_running_loop()
    started = loop.time()
    await app.shutdown()
    assert loop.time() - started < 5  # bounded, whatever the client does
    assert any("aborting" in r.getMessage() and "IRC" in r.getMessage()
               for r in caplog.records)
    assert not app.irc.connections
    stuck.close()


async def test_max_clients_counts_irc_and_http_together(make_server: MakeServer) -> None:
    """--max-clients 2 with one IRC and one HTTP connection open refuses both kinds."""
    app = await make_server(max_clients=2)
    irc = await Irc.connect(app.irc_port, "first")
    http = await Conn.open(app.http_port)
    assert (await http.request("GET", "/healthz")).status == 200
    refused = await Conn.open(app.http_port)  # a probe would still be answered: ask for more
    resp = await refused.request("GET", "/api/rooms")
    assert (resp.status, resp.json()["error"], resp.headers["retry-after"]) == \
        (503, "server_full", "1")
    reader, writer = await asyncio.open_connection("127.0.0.1", app.irc_port)
    assert (await reader.readline()).startswith(b"ERROR :Closing Link: Too many connections")
    writer.close()
    irc.close()


async def test_sse_is_close_delimited_on_http_10(make_server: MakeServer) -> None:
    """An SSE stream asked for with HTTP/1.0 is not chunked and ends by closing."""
    app = await make_server()
    token = await new_session(app.http_port, "old", "sse10")
    conn = await Conn.open(app.http_port)
    await conn.send(f"GET /api/rooms/sse10/events HTTP/1.0\r\nHost: 127.0.0.1\r\n"
                    f"Authorization: Bearer {token}\r\n\r\n".encode())
    status, headers, rest = await conn.head_response()
    assert status == 200 and "transfer-encoding" not in headers
    assert headers.get("connection") == "close"
    assert (await call(app.http_port, "POST", "/api/rooms/sse10/part", token=token)).status \
        == 204
    body = rest
    while data := await asyncio.wait_for(conn.reader.read(65536), 3):  # until the server closes
        body += data
    assert body.startswith(b"retry: 1000") and b"event: part" in body


async def test_text_with_nul_is_refused(make_server: MakeServer) -> None:
    """A message holding NUL gets 400 bad_request and reaches nobody."""
    app = await make_server()
    token = await new_session(app.http_port, "nul", "z")
    resp = await call(app.http_port, "POST", "/api/rooms/z/messages", token=token,
                      body={"text": "a\u0000b"})
    assert resp.status == 400 and resp.json()["error"] == "bad_request"
    poll = await call(app.http_port, "GET", "/api/rooms/z/messages", token=token)
    assert [e["kind"] for e in poll.json()["events"]] == ["join"]


@pytest.mark.parametrize("interval,most", [(0.5, 2), (0.0, 10)])
async def test_flush_interval_coalesces_writes(make_server: MakeServer, interval: float,
                                               most: int) -> None:
    """With --flush-interval, ten lines arriving within the interval reach a member in at
    most two writes (the first at once, the rest together); without it, one each."""
    app = await make_server(flush_interval=interval, presence_interval=0, flood_burst=0)
    reader = await Irc.connect(app.irc_port, "reader")
    sender = await Irc.connect(app.irc_port, "sender")
    for client in (reader, sender):
        await client.send("JOIN #c")
        await client.expect(" 366 ")
    await reader.expect("sender!", "JOIN")
    await asyncio.sleep(max(interval, 0.05) * 2)  # a quiet spell
    before = app.stats.irc.writes
    for i in range(10):
        await sender.send(f"PRIVMSG #c :line {i}")
        await asyncio.sleep(0.02)
    await reader.expect("PRIVMSG #c :line 9")
    writes = app.stats.irc.writes - before
    assert 1 <= writes <= most if interval else writes == most


async def test_ids_never_repeat_across_restarts(make_server: MakeServer) -> None:
    """A restarted memory-engine server gives ids above the last run's, so an old cursor
    reads the new run's events and never skips or names a different one."""
    first = await make_server()
    token = await new_session(first.http_port, "early", "r")
    old_ids = [(await call(first.http_port, "POST", "/api/rooms/r/messages", token=token,
                           body={"text": t})).json()["id"] for t in ("a", "b", "c")]
    epoch = first.engine.epoch
    await first.shutdown()
    await asyncio.sleep(0.01)  # a restart takes longer than a millisecond
    second = await make_server(irc_port=first.irc_port, http_port=first.http_port)
    token = await new_session(second.http_port, "late", "r")
    new_id = (await call(second.http_port, "POST", "/api/rooms/r/messages", token=token,
                         body={"text": "d"})).json()["id"]
    assert second.engine.epoch > epoch and new_id > max(old_ids)
    resumed = (await call(second.http_port, "GET", f"/api/rooms/r/messages?since={old_ids[1]}",
                          token=token)).json()
    assert [e["text"] for e in resumed["events"] if e["kind"] == "message"] == ["d"]
