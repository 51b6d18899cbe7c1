"""Whole-process checks of ``chat serve``: options, errors, signals, both ports on one hub."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from click.testing import CliRunner

from chat.cli import main
from chat.config import config_fields
from chat.runtime import free_ports


def _wait_port(port: int, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"port {port} never opened")


def _serve(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "chat", "serve", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, **(env or {})})


@pytest.fixture
def ports() -> Iterator[tuple[int, int]]:
    irc_port, http_port = free_ports(2)
    yield irc_port, http_port


def test_help_lists_every_limit_with_default_and_env() -> None:
    """--help names every Config field, its CHAT_ variable and the defaults."""
    result = CliRunner().invoke(main, ["serve", "--help"], terminal_width=200)
    assert result.exit_code == 0
    text = " ".join(result.output.split())  # help wraps lines
    for f in config_fields():
        assert "--" + f.name.replace("_", "-") in text
        assert "CHAT_" + f.name.upper() in text
    assert "default: 25.0" in text and "default: 1048576" in text


def test_bad_option_is_a_usage_error() -> None:
    """A negative timeout is refused with a usage message, not a traceback."""
    result = CliRunner().invoke(main, ["serve", "--ping-timeout", "-1"])
    assert result.exit_code == 2
    assert "Traceback" not in result.output and "--ping-timeout" in result.output


def test_port_in_use_is_one_line_and_nonzero(ports: tuple[int, int]) -> None:
    """Starting on a taken port prints one error line and exits 1, nothing left bound."""
    irc_port, http_port = ports
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", http_port))
        taken.listen()
        proc = _serve("--irc-port", str(irc_port), "--http-port", str(http_port))
        _out, err = proc.communicate(timeout=20)
    assert proc.returncode == 1
    lines = [line for line in err.decode().splitlines() if line.startswith("Error")]
    assert len(lines) == 1 and "Traceback" not in err.decode()
    with socket.socket() as again:  # the IRC port was released on the way out
        again.bind(("127.0.0.1", irc_port))


def test_env_vars_configure_and_sigterm_shuts_down(ports: tuple[int, int]) -> None:
    """CHAT_* variables set the ports and server name; SIGTERM closes IRC clients cleanly."""
    irc_port, http_port = ports
    proc = _serve(env={"CHAT_IRC_PORT": str(irc_port), "CHAT_HTTP_PORT": str(http_port),
                       "CHAT_SERVER_NAME": "env.example"})
    try:
        _wait_port(irc_port, time.monotonic() + 15)
        _wait_port(http_port, time.monotonic() + 5)
        with socket.create_connection(("127.0.0.1", irc_port), timeout=5) as irc:
            irc.sendall(b"NICK envy\r\nUSER envy 0 * :Envy\r\n")
            data = b""
            while b" 001 " not in data:
                data += irc.recv(4096)
            assert data.startswith(b":env.example ")
            proc.send_signal(signal.SIGTERM)
            while True:
                chunk = irc.recv(4096)
                data += chunk
                if not chunk:
                    break
            assert b"ERROR :Server shutting down" in data
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
