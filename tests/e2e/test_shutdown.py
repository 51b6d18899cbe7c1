"""Shutdown is a lame duck: nothing is acknowledged that no reader gets (issue 13, item 3)."""

from __future__ import annotations

import asyncio

import orjson

from tests.conftest import MakeServer
from tests.http.util import Conn, Irc, build, new_session


async def test_shutdown_acknowledges_only_what_readers_get(make_server: MakeServer) -> None:
    """Requests in flight when the server starts shutting down are refused (503
    shutting_down) or acknowledged and delivered to the IRC reader before its ERROR line:
    never acknowledged and lost."""
    app = await make_server(shutdown_timeout=2.0, http_rate=0)
    reader = await Irc.connect(app.irc_port, "reader")
    await reader.send("JOIN #r")
    await reader.expect(" 366 ")
    token = await new_session(app.http_port, "poster", "r")
    await reader.expect("poster!", "JOIN")
    conns = [await Conn.open(app.http_port) for _ in range(10)]
    requests = [build("POST", "/api/rooms/r/messages", token=token,
                      body={"text": f"m{i}"}) for i in range(10)]
    for conn, request in zip(conns, requests, strict=True):  # everything but the last byte
        await conn.send(request[:-1])
    await asyncio.sleep(0.05)
    stopping = asyncio.create_task(app.shutdown())
    await asyncio.sleep(0)  # the shutdown has begun...
    for conn, request in zip(conns, requests, strict=True):  # ...when the requests complete
        await conn.send(request[-1:])
    answers = []
    for conn in conns:
        try:
            answers.append(await conn.response())
        except ConnectionError:
            answers.append(None)
    received: list[str] = []
    while True:
        line = await reader.expect("")
        if " PRIVMSG #r :" in line:
            received.append(line.rsplit(":", 1)[1])
        if line.startswith("ERROR"):
            assert line == "ERROR :Server shutting down"
            break
    await stopping
    acked = [orjson.loads(r.body)["id"] for r in answers if r is not None and r.status == 201]
    refused = [r.json()["error"] for r in answers if r is not None and r.status == 503]
    assert len(acked) <= len(received)  # every acknowledged message was delivered
    assert refused and set(refused) == {"shutting_down"}
