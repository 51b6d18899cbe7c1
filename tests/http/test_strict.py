"""HTTP strictness and bounded memory (issue 13, items 2 and 9) on raw loopback sockets."""

from __future__ import annotations

import asyncio
import socket

from tests.conftest import MakeServer

from .util import Conn, build, new_session


async def test_endless_chunked_trailer_is_cut_off(make_server: MakeServer) -> None:
    """A chunked body whose trailer never ends is refused once it passes max_header."""
    app = await make_server(max_header=1024)
    conn = await Conn.open(app.http_port)
    await conn.send(b"POST /api/sessions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                    b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\nX-Trailer: ")
    await conn.trickle([b"t" * 512] * 20, 0.02)
    resp = await conn.response()
    assert resp.status == 431 and resp.json()["error"] == "headers_too_large"
    assert await conn.closed()


async def test_endless_chunk_extension_is_cut_off(make_server: MakeServer) -> None:
    """A chunk-size line whose extension never ends counts against max_header too."""
    app = await make_server(max_header=1024)
    conn = await Conn.open(app.http_port)
    await conn.send(b"POST /api/sessions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                    b"Transfer-Encoding: chunked\r\n\r\n2;ext=")
    await conn.trickle([b"e" * 512] * 20, 0.02)
    resp = await conn.response()
    assert resp.status == 431


async def test_chunked_body_with_short_trailer_is_accepted(make_server: MakeServer) -> None:
    """A chunked body with a small trailer is still fine."""
    app = await make_server(max_header=1024)
    conn = await Conn.open(app.http_port)
    body = b'{"nick": "trailing"}'
    await conn.send(b"POST /api/sessions HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked"
                    b"\r\n\r\n%x\r\n%s\r\n0\r\nX-Sum: 1\r\n\r\n" % (len(body), body))
    assert (await conn.response()).status == 201


async def test_http2_request_line_gets_505(make_server: MakeServer) -> None:
    """HTTP/2.0 (and other majors) on this HTTP/1 port: 505, then close."""
    app = await make_server()
    for version in (b"2.0", b"3.1"):
        conn = await Conn.open(app.http_port)
        await conn.send(b"GET /healthz HTTP/" + version + b"\r\nHost: 127.0.0.1\r\n\r\n")
        resp = await conn.response()
        assert resp.status == 505, version
        assert resp.json()["error"] == "http_version_not_supported"
        assert await conn.closed()


async def test_http09_gets_400(make_server: MakeServer) -> None:
    """An HTTP/0.9 request (no version, or 0.9) is no request: 400, then close."""
    app = await make_server()
    for line in (b"GET /healthz\r\n\r\n", b"GET /healthz HTTP/0.9\r\n\r\n"):
        conn = await Conn.open(app.http_port)
        await conn.send(line)
        resp = await conn.response()
        assert resp.status == 400, line
        assert await conn.closed()


async def test_http11_needs_exactly_one_host(make_server: MakeServer) -> None:
    """HTTP/1.1 without Host, or with two, is 400 (RFC 9112 3.2); HTTP/1.0 may omit it."""
    app = await make_server()
    conn = await Conn.open(app.http_port)
    await conn.send(b"GET /healthz HTTP/1.1\r\n\r\n")
    assert (await conn.response()).status == 400
    assert await conn.closed()
    conn = await Conn.open(app.http_port)
    await conn.send(b"GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
    assert (await conn.response()).status == 400
    conn = await Conn.open(app.http_port)
    await conn.send(b"GET /healthz HTTP/1.0\r\n\r\n")
    assert (await conn.response()).status == 200


async def test_last_event_id_must_be_plain_digits(make_server: MakeServer) -> None:
    """Last-Event-ID and since are ASCII digits: 1_0, +1 and the like are 400."""
    app = await make_server()
    token = await new_session(app.http_port, "strict", "lobby")
    conn = await Conn.open(app.http_port)
    for value in ("1_0", "+1", "-1", "0x1"):
        resp = await conn.request("GET", "/api/rooms/lobby/events", token=token,
                                  headers={"Last-Event-ID": value})
        assert resp.status == 400, value
    for since in ("1_0", "%2B1", "%201", "1e3"):
        resp = await conn.request("GET", f"/api/rooms/lobby/messages?since={since}",
                                  token=token)
        assert resp.status == 400, since
    resp = await conn.request("GET", "/api/rooms/lobby/messages?wait=1_0", token=token)
    assert resp.status == 400
    resp = await conn.request("GET", "/api/rooms/lobby/messages?since=" + "9" * 20,
                              token=token)
    assert (resp.status, resp.json()["message"]) == (400, "since is too large: '" + "9" * 20 + "'")


def _blast(port: int, head: bytes, total: int) -> bytes:
    """Send ``head`` then keep sending junk up to ``total`` bytes; return what was read."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.settimeout(3)
    got = b""
    try:
        sock.sendall(head)
        sent = len(head)
        junk = b"X-Junk: " + b"j" * 8000 + b"\r\n"
        while sent < total:
            sock.sendall(junk)  # a client sends its whole request before reading (curl)
            sent += len(junk)
        while True:
            data = sock.recv(65536)
            if not data:
                return got
            got += data
    except (BrokenPipeError, ConnectionResetError):
        return got + b"<RESET>"
    finally:
        sock.close()


async def test_lingering_close_delivers_431_to_a_client_still_sending(
        make_server: MakeServer) -> None:
    """A client that keeps sending after its head was refused still reads its 431 (the
    server half-closes and drains instead of resetting the connection)."""
    app = await make_server(max_header=1024)
    head = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    for _ in range(5):
        got = await asyncio.to_thread(_blast, app.http_port, head, 400_000)
        assert got.startswith(b"HTTP/1.1 431 "), got[:80]
        assert b"<RESET>" not in got


async def test_lingering_close_ends_after_close_timeout(make_server: MakeServer) -> None:
    """A refused client that neither reads nor closes is let go after close_timeout."""
    app = await make_server(close_timeout=0.2)
    conn = await Conn.open(app.http_port)
    await conn.send(b"GET /healthz HTTP/2.0\r\nHost: 127.0.0.1\r\n\r\n")
    resp = await conn.response()
    assert resp.status == 505
    assert await conn.closed()
    await asyncio.sleep(0.4)
    assert app.http.connections == set()
    conn.writer.write(build("GET", "/healthz"))  # the server's socket is gone
