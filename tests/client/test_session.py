"""The session layer: slash commands, one-line errors, and /mode switches mid-stream."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from chat.app import ChatServer
from chat.client.model import ChatEvent
from chat.client.session import ChatSession

from ..conftest import MakeServer
from .conftest import MakeClient, wait_until


class Recorder:
    """An Output that keeps everything."""

    def __init__(self) -> None:
        self.events: list[ChatEvent] = []
        self.infos: list[str] = []
        self.errors: list[str] = []
        self.states: list[str] = []

    def event(self, event: ChatEvent, me: str) -> None:
        self.events.append(event)

    def info(self, text: str) -> None:
        self.infos.append(text)

    def error(self, text: str) -> None:
        self.errors.append(text)

    def state(self, state: str) -> None:
        self.states.append(state)

    def texts(self, room: str = "lobby") -> list[str]:
        return [e.text for e in self.events if e.room == room and e.kind == "message"]


def new_session(app: ChatServer, mode: str, nick: str = "alice",
                **options: Any) -> tuple[ChatSession, Recorder]:
    out = Recorder()
    settings: dict[str, Any] = {"interval": 0.05, "wait": 2.0, "backoff": 0.05,
                                "backoff_max": 0.3, "timeout": 3.0}
    settings.update(options)
    session = ChatSession(out, mode=mode, host="127.0.0.1", irc_port=app.irc_port,
                          http_port=app.http_port, nick=nick, **settings)
    return session, out


async def test_mode_switch_mid_stream(make_server: MakeServer, make_client: MakeClient) -> None:
    """/mode through all five modes while a peer talks: every message shown exactly once."""
    app = await make_server(flood_burst=0)
    peer, _ = await make_client(app, "irc", "bob")
    session, out = new_session(app, "poll")
    await session.start("lobby")
    sent = [f"m{i}" for i in range(40)]

    async def talk() -> None:
        for text in sent:
            await peer.send("lobby", text)
            await asyncio.sleep(0.01)

    talker = asyncio.get_running_loop().create_task(talk())
    for mode in ("irc", "sse", "longpoll", "poll-close", "poll", "irc"):
        await asyncio.sleep(0.06)
        await session.handle(f"/mode {mode}")
        assert session.mode == mode, out.errors
    await talker
    await wait_until(lambda: "m39" in out.texts(), what="the last message")
    await asyncio.sleep(0.1)
    assert out.texts() == sent
    assert out.errors == []
    await session.close()


async def test_commands(make_server: MakeServer, make_client: MakeClient) -> None:
    """/join /part /who /nick /msg /stats /help act, and bad input is one error line each."""
    app = await make_server(flood_burst=0)
    peer, peer_got = await make_client(app, "irc", "bob")
    session, out = new_session(app, "longpoll")
    await session.start("lobby")
    await session.handle("hello lobby")
    await session.handle("/join side")
    assert session.room == "side"
    await session.handle("hello side")
    await session.handle("/who lobby")
    assert any("alice" in line and "bob" in line for line in out.infos)
    await session.handle("/msg bob hi bob")
    await session.handle("/nick alicia")
    assert session.nick == "alicia"
    await session.handle("/part")
    assert session.room == "lobby"
    await session.handle("/stats")
    assert any(line.startswith("requests:") for line in out.infos)
    await session.handle("/help")
    assert any(line.startswith("/mode") for line in out.infos)
    await wait_until(lambda: "hello lobby" in peer_got.texts()
                     and ("alice", "bob", "hi bob") in peer_got.private(), what="peer")
    assert out.errors == []
    for bad in ("/bogus", "/join", "/join no spaces here", "/msg bob", "/mode carrier-pigeon",
                "/part nowhere", "/nick bob", "/msg nobody hello", "/nick 9bad"):
        await session.handle(bad)
    assert len(out.errors) == 9, out.errors
    assert all("\n" not in e and "Traceback" not in e for e in out.errors)
    await session.handle("/quit")
    assert not session.running
    await wait_until(lambda: app.engine.find_user("alicia") is None, what="session gone")


@pytest.mark.parametrize("mode", ["irc", "poll"])
async def test_say_without_room(make_server: MakeServer, mode: str) -> None:
    """Typing text with no current room asks to /join first."""
    app = await make_server()
    session, out = new_session(app, mode)
    await session.start(None)
    await session.handle("anyone?")
    assert out.errors and "/join" in out.errors[0]
    await session.close()
