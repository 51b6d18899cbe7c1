"""Host and Origin (issue 13 item 10): --allowed-host, ?token= only where a browser cannot
send a header, and the WebSocket handshake's Origin check."""

from __future__ import annotations

from chat.http.cors import Cors, HostCheck, host_name
from tests.conftest import MakeServer

from .util import Conn, build, call, new_session

WS_HEADERS = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
              "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}


def test_host_names() -> None:
    """Host headers are compared by name, without port and case."""
    assert host_name(b"LocalHost:8080") == "localhost"
    assert host_name(b"[::1]:80") == "::1" and host_name(b"example.com") == "example.com"
    check = HostCheck((), "127.0.0.1")
    assert check.allowed(b"localhost:1") and check.allowed(b"127.0.0.1") \
        and check.allowed(b"[::1]:8080")
    assert not check.allowed(b"evil.example") and not check.allowed(b"127.0.0.1.evil.example")
    assert HostCheck(("*",), "x").allowed(b"anything")
    assert HostCheck(("chat.example other.example",), "x").allowed(b"other.example:443")


def test_websocket_origin_rule() -> None:
    """The page's own origin or a --cors-origin may open a WebSocket; no Origin is fine."""
    cors = Cors(("https://app.example",))
    assert cors.websocket_allowed(None, b"localhost:8080")
    assert cors.websocket_allowed(b"http://localhost:8080", b"localhost:8080")
    assert cors.websocket_allowed(b"https://app.example", b"localhost:8080")
    assert not cors.websocket_allowed(b"http://evil.example", b"localhost:8080")
    assert not cors.websocket_allowed(b"null", b"localhost:8080")


async def test_unknown_host_gets_421(make_server: MakeServer) -> None:
    """A request for a name the server does not serve (DNS rebinding) gets 421; probes are
    answered whatever the Host."""
    app = await make_server()
    conn = await Conn.open(app.http_port)
    await conn.send(build("POST", "/api/sessions", body={"nick": "x"})
                    .replace(b"Host: 127.0.0.1", b"Host: rebind.evil.example"))
    resp = await conn.response()
    assert resp.status == 421 and resp.json()["error"] == "host_not_allowed"
    await conn.send(build("GET", "/healthz").replace(b"Host: 127.0.0.1", b"Host: 10.1.2.3"))
    assert (await conn.response()).status == 200
    await conn.send(build("GET", "/").replace(b"Host: 127.0.0.1", b"Host: localhost:8080"))
    assert (await conn.response()).status == 200


async def test_allowed_host_option(make_server: MakeServer) -> None:
    """--allowed-host names the served hosts ('*': any)."""
    app = await make_server(allowed_host=("chat.example",))
    conn = await Conn.open(app.http_port)
    await conn.send(build("GET", "/api/stats").replace(b"Host: 127.0.0.1",
                                                       b"Host: chat.example:8080"))
    assert (await conn.response()).status == 200
    await conn.send(build("GET", "/api/stats"))  # 127.0.0.1 is no longer in the list
    assert (await conn.response()).status == 421


async def test_query_token_only_for_streams_and_websocket(make_server: MakeServer) -> None:
    """?token= is refused (401) on ordinary routes and POSTs, accepted for SSE."""
    app = await make_server()
    port = app.http_port
    token = await new_session(port, "browser", "web")
    resp = await call(port, "GET", f"/api/sessions/me?token={token}")
    assert resp.status == 401
    resp = await call(port, "POST", f"/api/rooms/web/messages?token={token}",
                      body={"text": "hi"})
    assert resp.status == 401
    resp = await call(port, "GET", f"/api/rooms/web/messages?token={token}")
    assert resp.status == 401
    conn = await Conn.open(port)
    await conn.send(build("GET", f"/api/rooms/web/events?token={token}"))
    assert b"retry: 1000" in await conn.stream_until(b"retry: 1000")


async def test_websocket_handshake_checks_origin(make_server: MakeServer) -> None:
    """A WebSocket handshake from a foreign page is 403; the page's own origin and a
    --cors-origin are let in."""
    app = await make_server(cors_origin=("https://app.example",))
    port = app.http_port
    token = await new_session(port, "dave")
    foreign = await call(port, "GET", f"/api/ws?token={token}",
                         headers={**WS_HEADERS, "Origin": "http://evil.example"})
    assert foreign.status == 403 and foreign.json()["error"] == "origin_not_allowed"
    for i, origin in enumerate(("http://127.0.0.1", "https://app.example")):
        token = await new_session(port, f"ok{i}")
        conn = await Conn.open(port)
        await conn.send(build("GET", f"/api/ws?token={token}",
                              headers={**WS_HEADERS, "Origin": origin}))
        status, _headers, _rest = await conn.head_response()
        assert status == 101, origin
        conn.close()
