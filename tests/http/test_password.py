"""--password applies to every transport (issue 13 item 4)."""

from __future__ import annotations

import pytest

from chat.client.transports import make_transport
from tests.conftest import MakeServer

from .util import call


async def test_http_session_needs_the_server_password(make_server: MakeServer) -> None:
    """With --password, POST /api/sessions without it or with a wrong one is 401."""
    app = await make_server(password="s3cret")
    port = app.http_port
    resp = await call(port, "POST", "/api/sessions", body={"nick": "eve"})
    assert resp.status == 401 and resp.json()["error"] == "password_required"
    resp = await call(port, "POST", "/api/sessions", body={"nick": "eve", "password": "guess"})
    assert resp.status == 401 and resp.json()["error"] == "bad_password"
    resp = await call(port, "POST", "/api/sessions", body={"nick": "eve", "password": 1})
    assert resp.status == 401
    assert app.engine.find_user("eve") is None
    resp = await call(port, "POST", "/api/sessions",
                      body={"nick": "alice", "password": "s3cret"})
    assert resp.status == 201


async def test_no_password_no_field_needed(make_server: MakeServer) -> None:
    """Without --password a password field is ignored."""
    app = await make_server()
    resp = await call(app.http_port, "POST", "/api/sessions",
                      body={"nick": "alice", "password": "whatever"})
    assert resp.status == 201


@pytest.mark.parametrize("mode", ["poll", "ws"])
async def test_client_sends_the_password_in_http_modes(make_server: MakeServer,
                                                       mode: str) -> None:
    """chat connect --password signs in over HTTP (and so WebSocket) too."""
    app = await make_server(password="s3cret")
    transport = make_transport(mode, host="127.0.0.1", irc_port=app.irc_port,
                               http_port=app.http_port, nick="carol", on_event=lambda e: None,
                               password="s3cret", inbox=False)
    await transport.start()
    try:
        await transport.join("lobby")
        assert app.engine.find_user("carol") is not None
    finally:
        await transport.close()
