"""`chat serve` as a process: clean one-line errors, and graceful shutdown on SIGTERM."""

from __future__ import annotations

import asyncio
import re
import signal
import socket
import subprocess
import sys

SERVE = [sys.executable, "-m", "chat", "serve"]


def run_serve(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SERVE, *args], capture_output=True, text=True, timeout=30)


def test_port_in_use_is_a_one_line_error() -> None:
    """A taken port exits non-zero with one line on stderr and no traceback."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        for args in (("--irc-port", port, "--http-port", "0"),
                     ("--irc-port", "0", "--http-port", port)):
            result = run_serve(*args)
            assert result.returncode != 0
            assert "Traceback" not in result.stderr
            assert result.stderr.count("\n") == 1 and "address already in use" in result.stderr


def test_bad_options_are_usage_errors() -> None:
    """Bad option values exit 2 with click's usage message, no traceback."""
    for args in (("--irc-port", "abc"), ("--irc-port", "70000"), ("--ping-timeout", "-1"),
                 ("--no-such-option",), ("--server-name", "bad name"),
                 ("--server-name", ":x"), ("--network", "My Net"),
                 ("--cors-origin", "bad origin"), ("--cors-origin", "https://a.example/path")):
        result = run_serve(*args)
        assert result.returncode == 2
        assert "Error:" in result.stderr and "Traceback" not in result.stderr


async def test_sigterm_shuts_down_gracefully() -> None:
    """SIGTERM: connected clients get 'ERROR :Server shutting down' and the process exits 0."""
    proc = await asyncio.create_subprocess_exec(
        *SERVE, "--irc-port", "0", "--http-port", "0", "--log-level", "info",
        stderr=asyncio.subprocess.PIPE)
    assert proc.stderr is not None
    try:
        port = 0
        while not port:
            line = (await asyncio.wait_for(proc.stderr.readline(), 10)).decode()
            assert line, "server exited before listening"
            match = re.search(r"IRC on [\d.]+:(\d+)", line)
            port = int(match.group(1)) if match else 0
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"NICK term\r\nUSER term 0 * :t\r\n")
        while b" 376 " not in await asyncio.wait_for(reader.readline(), 5):
            pass
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(reader.readline(), 5) == b"ERROR :Server shutting down\r\n"
        assert await asyncio.wait_for(reader.read(), 5) == b""
        writer.close()
        assert await asyncio.wait_for(proc.wait(), 10) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
