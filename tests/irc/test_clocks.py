"""Deadlines run on the monotonic clock: stepping the wall clock an hour reaps nobody early
and keeps nobody late, on IRC and HTTP alike (the wall clock is injected into the server)."""

from __future__ import annotations

import asyncio
import time

from tests.conftest import MakeServer
from tests.http.util import call, new_session
from tests.irc.conftest import Connect, IrcClient

HOUR = 3600.0


class SteppedClock:
    """``time.time`` plus an offset the test moves."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


async def keep_answering(client: IrcClient, stop: asyncio.Event) -> None:
    """Answer PINGs and say something now and then, like a live client."""
    while not stop.is_set():
        try:
            line = await client.line(0.1)
        except TimeoutError:
            client.send("PRIVMSG #c :still here")
            continue
        if line.startswith(":chat.local PING"):
            client.send("PONG :chat.local")


async def test_wall_clock_jumps_reap_nobody_early(make_server: MakeServer,
                                                  irc: Connect) -> None:
    """+1 h: a live IRC client and an active poller stay; their deadlines never moved."""
    clock = SteppedClock()
    app = await make_server(wall=clock, ping_interval=0.2, ping_timeout=0.5,
                            idle_timeout=0.8, session_timeout=0.8)
    live = await irc(app, "live")
    live.send("JOIN #c")
    token = await new_session(app.http_port, "poller", "c")
    stop = asyncio.Event()
    answering = asyncio.create_task(keep_answering(live, stop))
    clock.offset = HOUR
    for _ in range(12):  # 1.2 s: longer than every limit, had they run on the wall clock
        assert (await call(app.http_port, "GET", "/api/sessions/me", token=token)).status == 200
        await asyncio.sleep(0.1)
    stop.set()
    await answering
    assert app.engine.find_user("live") is not None
    assert app.stats.irc.timeouts == {} and app.stats.http.reaps == {}


async def test_wall_clock_going_back_keeps_nobody_late(make_server: MakeServer,
                                                       irc: Connect) -> None:
    """-1 h: a silent IRC client is still pinged out, an unregistered one and an idle
    session still reaped, within their limits."""
    clock = SteppedClock()
    app = await make_server(wall=clock, ping_interval=0.2, ping_timeout=0.3,
                            registration_timeout=0.5, session_timeout=0.5)
    silent = await irc(app, "silent")
    unregistered = await irc(app)
    token = await new_session(app.http_port, "idle")
    clock.offset = -HOUR
    assert (await unregistered.until_closed())[-1] == "ERROR :Closing Link: Registration timeout"
    assert (await silent.until_closed())[-1].startswith("ERROR :Closing Link: Ping timeout")
    for _ in range(20):
        if app.stats.http.reaps["session_timeout"]:
            break
        await asyncio.sleep(0.1)
    assert (await call(app.http_port, "GET", "/api/sessions/me", token=token)).status == 401
