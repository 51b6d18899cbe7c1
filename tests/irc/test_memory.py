"""What an idle IRC user costs: the objects and strings a connection keeps once registered
and joined (the figures are in benchmarks/idle.py; these check the sharing behind them)."""

from __future__ import annotations

import asyncio

from chat.core.bucket import FULL
from chat.core.sharing import Shared
from tests.conftest import MakeServer
from tests.irc.conftest import Connect


def test_shared_keeps_the_first_of_equal_values_and_stays_bounded() -> None:
    """Equal values come back as the first one seen; a full table forgets, never grows."""
    table = Shared(limit=3)
    first = "".join(["gate", "way"])
    again = "".join(["gate", "way"])
    assert first is not again and table(first) is first and table(again) is first
    for n in range(10):
        table(f"host{n}")
        assert len(table.seen) <= 3
    assert table(("x",)) == ("x",)  # tuples too (a JOIN's (realname,))


async def test_users_share_equal_strings_and_keep_no_registration_state(
        make_server: MakeServer, irc: Connect) -> None:
    """Two users from one address with one realname share the host, realname and JOIN
    args strings; USER's name equal to the nick is the nick's string; a registered
    session drops what registration needed, and a quiet one holds no flood float."""
    app = await make_server()
    clients = [await irc(app) for _ in range(2)]
    for k, client in enumerate(clients):
        client.send(f"NICK twin{k}", f"USER twin{k} 0 * :Same Client", "JOIN #room")
        await client.expect(" 366 ")
    hub = app.engine.hub
    a, b = hub.users["twin0"], hub.users["twin1"]
    assert a.host is b.host and a.realname is b.realname
    assert a.user is a.nick and b.user is b.nick
    joins = [e for e in hub.rooms["#room"].log.events if e.kind == "join"]
    assert len(joins) == 2 and joins[0].args is joins[1].args
    conns = {c.session.nick: c for c in app.irc.connections}
    for conn in conns.values():
        assert conn.session.registration is None
        assert conn.ip is conns["twin0"].ip
    clients[0].send("PASS late")
    assert " 462 " in await clients[0].expect(" 462 ")


async def test_a_user_in_two_rooms_leaves_one(make_server: MakeServer,
                                              irc: Connect) -> None:
    """The rooms tuple follows JOIN and PART in order (and QUIT empties the rooms)."""
    app = await make_server()
    alice = await irc(app, "alice")
    alice.send("JOIN #one", "JOIN #two", "JOIN #three")
    await alice.expect(" 366 alice #three ")
    user = app.engine.hub.users["alice"]
    assert [room.name for room in user.rooms] == ["#one", "#two", "#three"]
    alice.send("PART #two")
    await alice.expect(" PART #two")
    assert [room.name for room in user.rooms] == ["#one", "#three"]
    assert user.room("#two") is None and user.room("#three") is not None
    alice.send("QUIT :bye")
    await alice.until_closed()
    assert user.rooms == ()


async def test_now_is_read_once_per_loop_turn(make_server: MakeServer) -> None:
    """Two readings in one callback are one object (uvloop's clock stands still in a turn;
    the stock loop's moves, and then so does now()); a later turn reads the clock again."""
    app = await make_server()
    state = app.state
    first, second = state.now(), state.now()
    assert (first is second) == (first.mono == second.mono)
    await asyncio.sleep(0.01)
    later = state.now()
    assert later.mono > first.mono and later.wall >= first.wall and later is not first


async def test_a_quiet_connection_gives_its_flood_float_back(make_server: MakeServer,
                                                             irc: Connect) -> None:
    """After registration the budget is spent in part (a float); once refilled, the next
    PING makes it FULL again, the one float every quiet connection shares."""
    app = await make_server(flood_burst=4, flood_rate=50.0, ping_interval=0.2,
                            ping_timeout=5)
    client = await irc(app, "quiet")
    (conn,) = app.irc.connections
    assert conn.flood_full_at > 0
    await client.expect(" PING ")
    assert conn.flood_full_at is FULL
