"""HTTP and IRC users in the same rooms: presence, messages, ids, expiry (raw IRC lines)."""

from __future__ import annotations

import asyncio

from tests.conftest import MakeServer

from .util import Conn, Irc, build, call, new_session


async def test_irc_sees_http_user_and_their_messages(make_server: MakeServer) -> None:
    """NAMES lists the HTTP user; their message arrives from nick!nick@http with msgid = id."""
    app = await make_server()
    alice = await new_session(app.http_port, "alice", "mix")
    bob = await Irc.connect(app.irc_port, "bob", caps="message-tags")
    await bob.send("JOIN #mix")
    names = await bob.expect(" 353 ", "#mix")
    assert "alice" in names.split(":")[-1].replace("@", "").split()
    await bob.expect(" 366 ")
    resp = await call(app.http_port, "POST", "/api/rooms/mix/messages", token=alice,
                      body={"text": "hello irc"})
    line = await bob.expect("PRIVMSG #mix :hello irc")
    assert f"msgid={resp.json()['id']}" in line
    assert ":alice!alice@http PRIVMSG" in line


async def test_long_poll_woken_by_irc_message(make_server: MakeServer) -> None:
    """An HTTP long poll answers when an IRC user speaks, with the IRC msgid as its id."""
    app = await make_server()
    port = app.http_port
    alice = await new_session(port, "alice", "mix")
    bob = await Irc.connect(app.irc_port, "bob", caps="message-tags")
    carol = await Irc.connect(app.irc_port, "carol", caps="message-tags")
    for irc in (bob, carol):
        await irc.send("JOIN #mix")
        await irc.expect(" 366 ")
    since = (await call(port, "GET", "/api/rooms/mix/messages", token=alice)).json()["next"]
    poller = await Conn.open(port)
    await poller.send(build("GET", f"/api/rooms/mix/messages?since={since}&wait=10",
                            token=alice))
    await asyncio.sleep(0.05)
    await bob.send("PRIVMSG #mix :from irc")
    seen = await carol.expect("PRIVMSG #mix :from irc")
    [event] = (await poller.response()).json()["events"]
    assert (event["kind"], event["nick"], event["text"]) == ("message", "bob", "from irc")
    assert f"msgid={event['id']}" in seen


async def test_members_show_both_transports(make_server: MakeServer) -> None:
    """/members lists IRC and HTTP members with their transport."""
    app = await make_server()
    alice = await new_session(app.http_port, "alice", "mix")
    bob = await Irc.connect(app.irc_port, "bob")
    await bob.send("JOIN #mix")
    await bob.expect(" 366 ")
    members = (await call(app.http_port, "GET", "/api/rooms/mix/members",
                          token=alice)).json()["members"]
    assert {(m["nick"], m["transport"]) for m in members} == {("alice", "http"), ("bob", "irc")}


async def test_session_expiry_is_a_quit_on_irc(make_server: MakeServer) -> None:
    """An expired session QUITs with 'Session timeout' for IRC users; the nick is free."""
    app = await make_server(session_timeout=0.3)
    await new_session(app.http_port, "sleepy", "mix")
    bob = await Irc.connect(app.irc_port, "bob")
    await bob.send("JOIN #mix")
    await bob.expect(" 366 ")
    line = await bob.expect("QUIT")
    assert line.startswith(":sleepy!sleepy@http QUIT") and "Session timeout" in line
    await bob.send("NICK sleepy")
    await bob.expect("NICK", "sleepy")


async def test_nicks_are_shared_across_transports(make_server: MakeServer) -> None:
    """A nick held on IRC is 409 for HTTP, and an HTTP nick is 433 on IRC."""
    app = await make_server()
    bob = await Irc.connect(app.irc_port, "bob")
    resp = await call(app.http_port, "POST", "/api/sessions", body={"nick": "BOB"})
    assert resp.status == 409 and resp.json()["error"] == "nick_in_use"
    await new_session(app.http_port, "webby")
    await bob.send("NICK webby")
    await bob.expect(" 433 ")


async def test_private_messages_cross_transports(make_server: MakeServer) -> None:
    """IRC PRIVMSG reaches the HTTP inbox; an HTTP private message reaches IRC."""
    app = await make_server()
    port = app.http_port
    alice = await new_session(port, "alice")
    bob = await Irc.connect(app.irc_port, "bob")
    poller = await Conn.open(port)
    await poller.send(build("GET", "/api/me/messages?since=0&wait=10", token=alice))
    await asyncio.sleep(0.05)
    await bob.send("PRIVMSG alice :psst")
    [event] = (await poller.response()).json()["events"]
    assert (event["nick"], event["text"]) == ("bob", "psst")
    resp = await call(port, "POST", "/api/users/bob/messages", token=alice, body={"text": "hi"})
    assert resp.status == 201
    await bob.expect(":alice!alice@http PRIVMSG bob :hi")


async def test_http_quit_seen_on_irc(make_server: MakeServer) -> None:
    """DELETE /api/sessions/me is a QUIT with the given reason on IRC."""
    app = await make_server()
    alice = await new_session(app.http_port, "alice", "mix")
    bob = await Irc.connect(app.irc_port, "bob")
    await bob.send("JOIN #mix")
    await bob.expect(" 366 ")
    await call(app.http_port, "DELETE", "/api/sessions/me", token=alice,
               body={"reason": "gone fishing"})
    assert "gone fishing" in await bob.expect(":alice!alice@http QUIT")
