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
    """/mode through every mode while a peer talks: every message shown exactly once."""
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
    for mode in ("irc", "ws", "sse", "udp", "longpoll", "poll-close", "ws", "udp", "poll",
                 "irc"):
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


SWITCHES = ["sse", "irc", "longpoll", "irc", "poll", "irc", "poll-close", "irc", "ws", "irc",
            "udp", "irc", "poll", "ws", "udp", "sse", "longpoll", "ws", "poll-close", "udp",
            "sse"]


async def test_mode_switches_show_each_quit_and_nick_once(
        make_server: MakeServer, make_client: MakeClient) -> None:
    """/mode through every mode while peers sharing two rooms rename and quit: every QUIT and
    NICK is shown exactly once, however the events reached us before the switch."""
    app = await make_server(flood_burst=0)
    keeper, _ = await make_client(app, "irc", "keeper")  # keeps both rooms alive
    await keeper.join("side")
    session, out = new_session(app, "irc")
    await session.start("lobby")
    await session.handle("/join side")
    expected: list[tuple[str, str, str]] = []
    for step, mode in enumerate(SWITCHES):
        peer_mode = "irc" if step % 2 == 0 else "poll"
        peer, _ = await make_client(app, peer_mode, f"p{step}")
        await peer.join("side")
        await peer.send("lobby", f"hello {step}")
        if peer_mode == "irc":
            await peer.set_nick(f"q{step}")
            expected.append(("nick", f"p{step}", f"q{step}"))
        await peer.close()
        expected.append(("quit", peer.nick,
                         "Quit: Leaving" if peer_mode == "irc" else "Client quit"))
        await wait_until(lambda n=peer.nick: any(e.kind == "quit" and e.nick == n
                                                 for e in out.events), what="the quit")
        await session.handle(f"/mode {mode}")
        assert session.mode == mode, out.errors
    await keeper.send("side", "the end")
    await wait_until(lambda: "the end" in out.texts("side"), what="the last message")
    await asyncio.sleep(0.2)  # room for a late duplicate to show up, if any
    presence = [(e.kind, e.nick, e.text) for e in out.events
                if e.kind in ("quit", "nick") and e.nick[0] in "pq"]
    assert presence == expected
    assert out.texts() == [f"hello {step}" for step in range(len(SWITCHES))]
    assert out.errors == []
    assert not [i for i in out.infos if "restarted" in i or "history" in i], out.infos
    await session.close()


async def test_restart_seen_in_irc_mode_is_not_reported_again(
        make_server: MakeServer, make_client: MakeClient) -> None:
    """HTTP mode, then irc mode across a server restart, then sse: the restart is told once,
    and no false "restarted" or "history" notice follows the switch."""
    app = await make_server(flood_burst=0)
    peer, _ = await make_client(app, "irc", "bob")
    session, out = new_session(app, "poll")
    await session.start("lobby")
    for i in range(5):
        await peer.send("lobby", f"old {i}")
    await wait_until(lambda: "old 4" in out.texts(), what="the old run's messages")
    await session.handle("/mode irc")
    await app.shutdown()
    await make_server(flood_burst=0, irc_port=app.irc_port, http_port=app.http_port)
    await wait_until(lambda: peer.state == "connected" and peer.counters.reconnects == 1
                     and session.transport.counters.reconnects == 1, what="both back")
    for _ in range(100):  # both rejoined (the restart notice comes with alice's rejoin)
        if len(await peer.who("lobby")) == 2:
            break
        await asyncio.sleep(0.05)
    await peer.send("lobby", "new 0")
    await wait_until(lambda: "new 0" in out.texts(), what="a message of the new run")
    await session.handle("/mode sse")
    await peer.send("lobby", "new 1")
    await wait_until(lambda: "new 1" in out.texts(), what="a message after the switch")
    await asyncio.sleep(0.2)
    assert out.texts() == [f"old {i}" for i in range(5)] + ["new 0", "new 1"]
    assert len([i for i in out.infos if "restarted" in i]) == 1, out.infos
    assert not [i for i in out.infos if "history" in i], out.infos
    await session.close()


@pytest.mark.parametrize(("first", "second"), [("irc", "sse"), ("irc", "poll"),
                                               ("poll", "longpoll"), ("sse", "poll-close"),
                                               ("ws", "irc"), ("poll", "ws"), ("udp", "irc"),
                                               ("sse", "udp")])
async def test_switching_alone_loses_nothing_and_says_so(make_server: MakeServer, first: str,
                                                         second: str) -> None:
    """Alone in a room, a switch drops the room and makes it again: no event was lost, so
    no "history" notice."""
    app = await make_server(flood_burst=0)
    session, out = new_session(app, first)
    await session.start("lobby")
    await session.handle("before")
    await wait_until(lambda: "before" in out.texts(), what="our first message")
    await session.handle(f"/mode {second}")
    await session.handle("after")
    await wait_until(lambda: "after" in out.texts(), what="our message after the switch")
    assert out.texts() == ["before", "after"]
    assert not [i for i in out.infos if "history" in i or "restarted" in i], out.infos
    await session.close()


async def test_topic_command(make_server: MakeServer) -> None:
    """/topic shows the current topic, /topic <text> sets it (irc mode)."""
    app = await make_server(flood_burst=0)
    session, out = new_session(app, "irc")
    await session.start("lobby")
    await session.handle("/topic")
    assert out.infos[-1] == "#lobby has no topic"
    await session.handle("/topic  all about polling")
    await wait_until(lambda: any(e.kind == "topic" for e in out.events), what="topic event")
    await session.handle("/topic")
    assert out.infos[-1] == "topic of #lobby: all about polling"
    assert out.errors == []
    await session.close()


@pytest.mark.parametrize("mode", ["irc", "poll"])
async def test_unsent_text_is_given_back(make_server: MakeServer, mode: str) -> None:
    """A chat line that cannot be sent is handed back to the front end, not dropped."""
    app = await make_server(flood_burst=0)
    session, out = new_session(app, mode)
    await session.start("lobby")
    await app.shutdown()
    await wait_until(lambda: session.transport.state == "reconnecting"
                     or mode == "poll", what="cut off")
    assert await session.handle("hello, is this thing on?") == "hello, is this thing on?"
    assert await session.handle("/msg bob are you there?") == "/msg bob are you there?"
    assert len(out.errors) == 2
    assert await session.handle("/who") is None
    await session.close()


async def test_final_close_is_an_error_and_reconnect_resumes(make_server: MakeServer,
                                                             make_client: MakeClient) -> None:
    """Reaped on purpose, the session says why in an error line; /reconnect comes back."""
    app = await make_server(flood_burst=0, idle_timeout=0.3)
    peer, _ = await make_client(app, "poll", "bob")
    session, out = new_session(app, "irc")
    await session.start("lobby")
    await wait_until(lambda: session.transport.state == "closed", what="reaped")
    assert [e for e in out.errors if "Idle timeout" in e], out.errors
    assert "closed" in out.states and "reconnecting" not in out.states
    await peer.send("lobby", "while you were away")
    await session.handle("/reconnect")
    await wait_until(lambda: "while you were away" in out.texts(), what="the missed message")
    await session.close()
