"""The IRC adapter's lingering close: the ERROR line reaches a client that is still sending."""

from __future__ import annotations

import asyncio
import socket

from tests.conftest import MakeServer


def _flood_then_read(port: int, total: int) -> bytes:
    """Register, send ``total`` bytes of PRIVMSG lines in one go, then read to EOF."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.settimeout(3)
    got = b""
    try:
        sock.sendall(b"NICK flooder\r\nUSER f 0 * :f\r\n")
        line = b"PRIVMSG flooder :" + b"x" * 400 + b"\r\n"
        sock.sendall(line * (total // len(line)))  # a client writes before it reads
        while True:
            data = sock.recv(65536)
            if not data:
                return got
            got += data
    except (BrokenPipeError, ConnectionResetError):
        return got + b"<RESET>"
    finally:
        sock.close()


async def test_flooder_still_reads_its_error_line(make_server: MakeServer) -> None:
    """A client cut for Excess Flood while megabytes of its input are still on the way gets
    ``ERROR :Closing Link: Excess Flood`` and an orderly end, not a reset."""
    app = await make_server(flood_burst=5, flood_rate=1.0, recvq=2000)
    for _ in range(3):
        got = await asyncio.to_thread(_flood_then_read, app.irc_port, 2_000_000)
        assert b"<RESET>" not in got
        assert got.rstrip().endswith(b"ERROR :Closing Link: Excess Flood"), got[-200:]


async def test_quit_then_more_input_still_gets_error(make_server: MakeServer) -> None:
    """Lines pipelined after QUIT are drained; the client reads its ERROR line."""
    app = await make_server()

    def run() -> bytes:
        sock = socket.create_connection(("127.0.0.1", app.irc_port))
        sock.settimeout(3)
        got = b""
        try:
            sock.sendall(b"NICK q\r\nUSER q 0 * :q\r\nQUIT :bye\r\n"
                         + b"PING :x\r\n" * 100_000)
            while data := sock.recv(65536):
                got += data
            return got
        except (BrokenPipeError, ConnectionResetError):
            return got + b"<RESET>"
        finally:
            sock.close()

    got = await asyncio.to_thread(run)
    assert b"<RESET>" not in got and b"ERROR :Closing Link" in got
