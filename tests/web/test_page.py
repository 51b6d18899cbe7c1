"""The page in a real browser: loads clean, races five lanes, chats, survives a restart, escapes."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest

from ..conftest import MakeServer
from ..http.util import Irc, call, new_session

LANES = ["ws", "sse", "longpoll", "poll", "poll-close"]
LANE_STATE = ("window.chatlab.race.lanes.map(l => ({key: l.key, state: l.paused ? 'paused' : "
              "l.state, received: l.received, counters: l.counters, "
              "reconnects: l.feed ? l.feed.reconnects : 0}))")


async def wait_for(page: Any, expression: str, timeout: float = 20.0) -> None:  # noqa: ASYNC109
    """Poll ``expression`` in the page until it is true.  (Playwright's wait_for_function
    evaluates strings in the page, which the page's CSP forbids, rightly; evaluate() runs
    through the DevTools protocol instead.)"""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await page.evaluate(expression):
        assert loop.time() < deadline, f"timed out waiting for {expression}"
        await asyncio.sleep(0.05)


async def eventually_members(app: Any, count: int) -> None:
    """Wait until #lobby of ``app`` has ``count`` members (the lanes rejoined)."""
    def enough() -> bool:
        room = app.engine.find_room("#lobby")
        return room is not None and len(room.members) >= count
    for _ in range(300):
        if enough():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the lanes did not rejoin")


async def lanes(page: Any) -> dict[str, Any]:
    return {lane["key"]: lane for lane in await page.evaluate(LANE_STATE)}


async def start_race(page: Any, port: int, interval_ms: int = 200) -> None:
    await page.goto(f"http://127.0.0.1:{port}/")
    await page.evaluate(f"document.getElementById('race-interval').value = '{interval_ms}'")
    await page.click("#tab-race")
    await wait_for(page,
        "window.chatlab.race.lanes.length == 5 && "
        "window.chatlab.race.lanes.every(l => l.state == 'live')")


async def irc_in(port: int, nick: str, room: str = "lobby") -> Irc:
    irc = await Irc.connect(port, nick)
    await irc.send(f"JOIN #{room}")
    await irc.expect(" 366 ")
    return irc


async def test_page_loads_clean_with_security_headers(make_server: MakeServer,
                                                      browser_page: Any) -> None:
    """The page loads with no console error, under a CSP that allows only its own scripts."""
    page, errors = browser_page
    app = await make_server()
    response = await page.goto(f"http://127.0.0.1:{app.http_port}/")
    assert response.status == 200 and await page.title() == "ChatLab: push against polling"
    headers = response.headers
    assert "script-src 'self'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"
    await page.click("#tab-race")
    await wait_for(page, "window.chatlab.race.lanes.every(l => l.state == 'live')")
    await page.click("#tab-chat")
    assert errors == []


async def test_race_every_lane_with_delays_and_costs(make_server: MakeServer,
                                                    browser_page: Any) -> None:
    """A raw IRC message reaches every lane with its delay; idle polls count empty answers
    while the WebSocket lane makes no request at all."""
    page, errors = browser_page
    app = await make_server()
    await start_race(page, app.http_port)
    irc = await irc_in(app.irc_port, "irssi")
    for i in range(3):
        await irc.send(f"PRIVMSG #lobby :race message {i}")
        await asyncio.sleep(0.3)
    await wait_for(page,
        "window.chatlab.race.lanes.every(l => l.received == 3)")
    await wait_for(page,   # the table shows a delay in every lane's column
        "[...document.querySelectorAll('#msg-rows tr')].length == 3 && "
        "[...document.querySelectorAll('#msg-rows td')].every(td => td.textContent != '–')")
    before = await lanes(page)
    await wait_for(page,   # idle: the poll lanes keep asking, and get nothing
        "(() => { const l = window.chatlab.race.lanes; return l[3].counters && "
        f"l[3].counters.empty >= {before['poll']['counters']['empty']} + 3 && "
        f"l[4].counters.empty >= {before['poll-close']['counters']['empty']} + 3; }})()")
    after = await lanes(page)
    assert after["ws"]["counters"]["requests"] == 0 and after["ws"]["received"] == 3
    assert after["poll-close"]["counters"]["connections"] >= 3  # a handshake per request
    assert after["poll"]["counters"]["connections"] <= 2        # keep-alive
    assert all(after[k]["received"] == 3 for k in LANES)
    shot = Path(os.environ.get("CHAT_SCREENSHOT", "")) if os.environ.get("CHAT_SCREENSHOT") \
        else None
    if shot is not None:
        await page.screenshot(path=str(shot), full_page=True)
    assert errors == []


@pytest.mark.parametrize("transport", ["ws", "poll"])
async def test_chat_view_reaches_irc_and_a_poller(make_server: MakeServer, browser_page: Any,
                                                  transport: str) -> None:
    """What the chat view sends reaches an IRC client and an HTTP poller; members show all."""
    page, errors = browser_page
    app = await make_server()
    irc = await irc_in(app.irc_port, "carol")
    poller = await new_session(app.http_port, "poller", "lobby")
    await page.goto(f"http://127.0.0.1:{app.http_port}/")
    await page.fill("#nick", "webby")
    await page.select_option("#transport", transport)
    await page.click("#connect")
    await wait_for(page, "document.querySelector('#members').textContent"
                                 ".includes('carol')")
    await page.fill("#say", f"hello from the page over {transport}")
    await page.click("#say-form button")
    line = await irc.expect(f"hello from the page over {transport}")
    assert line.startswith(":webby!webby@http PRIVMSG #lobby")
    polled = await call(app.http_port, "GET", "/api/rooms/lobby/messages", token=poller)
    assert f"hello from the page over {transport}" in [e["text"] for e in polled.json()["events"]]
    await irc.send("PRIVMSG #lobby :hi webby")
    await wait_for(page, "document.querySelector('#log').textContent"
                                 ".includes('<carol> hi webby')")
    members = await page.inner_text("#members")
    assert "carol irc" in members and "poller http" in members
    assert ("webby ws" if transport == "ws" else "webby http") in members
    assert errors == []


async def test_every_lane_survives_a_restart_without_duplicates(make_server: MakeServer,
                                                                browser_page: Any) -> None:
    """Restart the server on the same ports: every lane comes back, nothing shown twice."""
    page, _errors = browser_page
    app = await make_server(flood_burst=0)
    await start_race(page, app.http_port)
    irc = await irc_in(app.irc_port, "irssi")
    await irc.send("PRIVMSG #lobby :before the restart")
    await wait_for(page, "window.chatlab.race.lanes.every(l => l.received == 1)")
    await app.shutdown()
    app2 = await make_server(flood_burst=0, irc_port=app.irc_port, http_port=app.http_port)
    await wait_for(page,   # every lane signed in again and is in the new room
        "window.chatlab.race.lanes.every(l => l.state == 'live')", timeout=15.0)
    await asyncio.sleep(0.5)
    await eventually_members(app2, 5)
    irc2 = await irc_in(app2.irc_port, "irssi")
    for i in range(2):
        await irc2.send(f"PRIVMSG #lobby :after the restart {i}")
    await wait_for(page, "window.chatlab.race.lanes.every(l => l.received == 3)",
                                 timeout=15.0)
    await asyncio.sleep(1.0)  # room for a duplicate to show up, if any
    state = await lanes(page)
    assert {k: state[k]["received"] for k in LANES} == {k: 3 for k in LANES}
    assert all(state[k]["reconnects"] >= 1 for k in ("ws", "longpoll", "poll", "poll-close"))
    texts = await page.eval_on_selector_all("#msg-rows td.text",
                                            "tds => tds.map(t => t.textContent)")
    assert sorted(texts) == ["after the restart 0", "after the restart 1", "before the restart"]


async def test_html_in_text_is_shown_as_text(make_server: MakeServer, browser_page: Any) -> None:
    """A <script> or <img onerror> in a message or topic is shown literally, never run."""
    page, errors = browser_page
    app = await make_server()
    irc = await irc_in(app.irc_port, "x[y]{z}|")
    await page.goto(f"http://127.0.0.1:{app.http_port}/")
    await page.click("#connect")
    await wait_for(page, "document.querySelector('#members').textContent"
                                 ".includes('x[y]{z}|')")
    script = "<script>window.pwned = 1</script>"
    img = '<img src=x onerror="window.pwned = 2">'
    await irc.send(f"PRIVMSG #lobby :{script}", f"PRIVMSG #lobby :{img}",
                   f"TOPIC #lobby :{img}")
    await wait_for(page, "document.querySelector('#log').textContent.includes('onerror')")
    log = await page.inner_text("#log")
    assert script in log and img in log and "<x[y]{z}|>" in log
    assert await page.evaluate("window.pwned") is None
    assert await page.eval_on_selector_all("#log img, #log script, #topic img",
                                           "nodes => nodes.length") == 0
    assert errors == []
