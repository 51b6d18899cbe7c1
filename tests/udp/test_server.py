"""The udp lane's server side over loopback: registrations, numbered pushes, the limits."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from chat.app import ChatServer

from ..conftest import MakeServer, eventually
from ..http.util import Irc, call, new_session

READ = 3.0


class Socket(asyncio.DatagramProtocol):
    """A client UDP socket that keeps every datagram it gets."""

    def __init__(self) -> None:
        self.got: asyncio.Queue[Any] = asyncio.Queue()
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.got.put_nowait(orjson.loads(data))

    def send(self, frame: dict[str, Any] | bytes, pad: int = 60) -> None:
        assert self.transport is not None
        if isinstance(frame, dict):
            frame = orjson.dumps({**frame, "pad": "." * pad} if pad else frame)
        self.transport.sendto(frame)

    async def next(self, timeout: float = READ) -> Any:  # noqa: ASYNC109
        return await asyncio.wait_for(self.got.get(), timeout)

    async def nothing(self, seconds: float = 0.3) -> bool:
        try:
            await asyncio.wait_for(self.got.get(), seconds)
        except TimeoutError:
            return True
        return False

    @property
    def port(self) -> int:
        assert self.transport is not None
        return int(self.transport.get_extra_info("sockname")[1])


@pytest.fixture
async def sockets() -> AsyncIterator[Any]:
    made: list[Socket] = []

    async def make(app: ChatServer) -> Socket:
        _t, sock = await asyncio.get_running_loop().create_datagram_endpoint(
            Socket, remote_addr=("127.0.0.1", app.udp_port))
        made.append(sock)
        return sock

    yield make
    for sock in made:
        if sock.transport is not None:
            sock.transport.close()


async def registered(app: ChatServer, sock: Socket, nick: str, *rooms: str) -> str:
    token = await new_session(app.http_port, nick, *rooms)
    sock.send({"type": "register", "token": token})
    answer = await sock.next()
    assert answer["type"] == "registered" and answer["seq"] == 0, answer
    return token


async def members(app: ChatServer, token: str, room: str = "lobby") -> dict[str, str]:
    resp = await call(app.http_port, "GET", f"/api/rooms/{room}/members", token=token)
    return {m["nick"]: m["transport"] for m in resp.json()["members"]}


def udp_stats(app: ChatServer) -> dict[str, Any]:
    stats: dict[str, Any] = app.stats.udp.snapshot()
    return stats


async def test_events_come_numbered_with_their_room_chain(make_server: MakeServer,
                                                          sockets: Any) -> None:
    """An IRC user's messages arrive as datagrams with seq 1, 2 and the room's chain of
    ids in prev; our own messages (posted over HTTP) come back in the same chain."""
    app = await make_server(flood_burst=0)
    irc = await Irc.connect(app.irc_port, "bob")
    await irc.send("JOIN #lobby")
    await irc.expect("366")
    sock = await sockets(app)
    token = await registered(app, sock, "alice", "lobby")
    assert (await members(app, token))["alice"] == "udp"
    await irc.send("PRIVMSG #lobby :one", "PRIVMSG #lobby :two")
    first, second = await sock.next(), await sock.next()
    assert (first["seq"], first["prev"], first["event"]["text"]) == (1, 0, "one")
    assert (second["seq"], second["prev"]) == (2, first["event"]["id"])
    resp = await call(app.http_port, "POST", "/api/rooms/lobby/messages", token=token,
                      body={"text": "mine"})
    own = await sock.next()
    assert own["event"]["text"] == "mine" and own["event"]["id"] == resp.json()["id"]
    assert (own["seq"], own["prev"]) == (3, second["event"]["id"])
    sock.send({"type": "keepalive", "token": token})
    assert await sock.next() == {"type": "ack", "reg": 1, "seq": 3}
    assert udp_stats(app)["deliveries"] == 3


async def test_no_answer_is_larger_than_its_request(make_server: MakeServer,
                                                    sockets: Any) -> None:
    """A short datagram from an unregistered address gets nothing back (its answer would
    be larger); a padded one gets its error; garbage gets nothing at all."""
    app = await make_server()
    sock = await sockets(app)
    sock.send({"type": "register", "token": "nope"}, pad=0)   # 33 bytes; the error is 39
    sock.send(b"x")
    assert await sock.nothing()
    sock.send({"type": "register", "token": "nope"}, pad=20)
    assert await sock.next() == {"type": "error", "error": "unauthorized"}
    stats = udp_stats(app)
    assert stats["refused"] == 2 and stats["unanswered"] == 2 and stats["malformed"] == 1
    assert stats["registrations"] == 0 and stats["datagrams_out"] == 1


async def test_one_registration_per_session_moves_with_its_address(
        make_server: MakeServer, sockets: Any) -> None:
    """Registering again from another socket moves the registration (a NAT rebinding):
    events go to the new address only, the numbering goes on."""
    app = await make_server(flood_burst=0)
    irc = await Irc.connect(app.irc_port, "bob")
    await irc.send("JOIN #lobby")
    await irc.expect("366")
    old, new = await sockets(app), await sockets(app)
    token = await registered(app, old, "alice", "lobby")
    await irc.send("PRIVMSG #lobby :before")
    assert (await old.next())["seq"] == 1
    new.send({"type": "keepalive", "token": token})   # a keepalive from a new port
    assert await new.next() == {"type": "ack", "reg": 1, "seq": 1}
    await irc.send("PRIVMSG #lobby :after")
    moved = await new.next()
    assert moved["seq"] == 2 and moved["event"]["text"] == "after"
    assert await old.nothing()
    stats = udp_stats(app)
    assert (stats["registrations"], stats["registrations_open"], stats["rebinds"]) == (1, 1, 1)


async def test_keepalive_without_registration_says_so(make_server: MakeServer,
                                                      sockets: Any) -> None:
    """A valid session that never registered is told ``not_registered``."""
    app = await make_server()
    sock = await sockets(app)
    token = await new_session(app.http_port, "alice", "lobby")
    sock.send({"type": "keepalive", "token": token})
    assert await sock.next() == {"type": "error", "error": "not_registered"}


async def test_a_registration_without_keepalives_ends(make_server: MakeServer,
                                                      sockets: Any) -> None:
    """No keepalive for --udp-timeout: the registration ends (an end datagram says why),
    the user is a plain poller again, and the session then expires as pollers do."""
    # The session outlives the registration by a second: the members request below (itself
    # activity) must find it alive however late a loaded machine gets to it.
    app = await make_server(udp_timeout=0.3, session_timeout=1.3)
    sock = await sockets(app)
    token = await registered(app, sock, "alice", "lobby")
    assert await sock.next(2.0) == {"type": "end", "reason": "UDP timeout"}
    assert (await members(app, token))["alice"] == "http"
    stats = udp_stats(app)
    assert stats["ended"] == {"UDP timeout": 1} and stats["registrations_open"] == 0
    await eventually(lambda: app.engine.find_user("alice") is None, "the session expired")


async def test_keepalives_keep_the_session_alive(make_server: MakeServer,
                                                 sockets: Any) -> None:
    """While its client sends keepalives, a session that makes no HTTP request lives on."""
    # Keepalives every 0.1 s for over twice the session timeout; the timeouts leave a
    # stalled loop half a second between two keepalives before either would end anything.
    app = await make_server(udp_timeout=0.7, session_timeout=0.6)
    sock = await sockets(app)
    token = await registered(app, sock, "alice", "lobby")
    for _ in range(14):
        await asyncio.sleep(0.1)
        sock.send({"type": "keepalive", "token": token})
        assert (await sock.next())["type"] == "ack"
    assert app.engine.find_user("alice") is not None


async def test_ending_the_session_ends_the_registration(make_server: MakeServer,
                                                        sockets: Any) -> None:
    """DELETE /api/sessions/me: the client is told with an end datagram."""
    app = await make_server()
    sock = await sockets(app)
    token = await registered(app, sock, "alice", "lobby")
    await call(app.http_port, "DELETE", "/api/sessions/me", token=token)
    assert await sock.next() == {"type": "end", "reason": "Session ended"}
    assert udp_stats(app)["registrations_open"] == 0


async def test_datagram_size_cap_both_ways(make_server: MakeServer, sockets: Any) -> None:
    """A datagram over --udp-max-datagram is dropped unread; an event that would not fit
    in one is sent as a 'big' marker to fetch over HTTP."""
    app = await make_server(udp_max_datagram=256, flood_burst=0)
    sock = await sockets(app)
    token = await registered(app, sock, "alice", "lobby")
    sock.send({"type": "keepalive", "token": token}, pad=400)
    assert await sock.nothing()
    text = "x" * 300
    resp = await call(app.http_port, "POST", "/api/rooms/lobby/messages", token=token,
                      body={"text": text})
    marker = await sock.next()
    assert marker == {"seq": 1, "prev": 0, "room": "lobby", "id": resp.json()["id"],
                      "big": True}
    stats = udp_stats(app)
    assert stats["oversize"] == 1 and stats["too_big"] == 1


async def test_shutdown_tells_registered_clients(make_server: MakeServer,
                                                 sockets: Any) -> None:
    """At shutdown every registration is ended with the reason."""
    app = await make_server()
    sock = await sockets(app)
    await registered(app, sock, "alice", "lobby")
    await app.shutdown()
    assert await sock.next() == {"type": "end", "reason": "Server shutting down"}


async def test_udp_port_follows_the_http_port_and_can_be_off(make_server: MakeServer) -> None:
    """By default UDP listens on the HTTP port's number (or a free one); --no-udp: none.
    /api/stats says where."""
    app = await make_server()
    assert app.udp_port > 0
    stats = (await call(app.http_port, "GET", "/api/stats")).json()
    assert stats["udp"]["port"] == app.udp_port
    off = await make_server(udp=False)
    assert off.udp_port == 0
