"""Running a channel across nodes on one real redis-server: modes, bans, kicks, kills and
the operator hand-over agree on every node; a KILL frees the nick everywhere."""

from __future__ import annotations

from chat.core.passwords import hash_password
from tests.conftest import MakeServer
from tests.engine.conftest import RedisServer
from tests.engine.test_redis import eventually, node
from tests.http.util import Irc, call, new_session

OPER = "admin:" + hash_password("hunter2", n=2)


async def test_modes_and_kicks_span_nodes(redis_server: RedisServer,
                                          make_server: MakeServer) -> None:
    """An op on node A bans and keys #c; a user on node B is refused (474, 475); a KICK on A
    reaches the kicked user on B; B's hub has the same modes, bans and operators."""
    a = await node(make_server, redis_server, presence_interval=0)
    b = await node(make_server, redis_server, presence_interval=0)
    op = await Irc.connect(a.irc_port, "op")
    await op.send("JOIN #c")
    await op.expect(" 366 ")
    member = await Irc.connect(b.irc_port, "member")
    await member.send("JOIN #c")
    await member.expect(" 366 ")
    await op.send("MODE #c +vk-t member sesame")
    await member.expect("MODE #c +vk-t member sesame")
    room_b = b.engine.find_room("#c")
    assert room_b is not None and (room_b.password, room_b.modes) == ("sesame", "n")
    assert room_b.voices == {"member"}
    guest = await Irc.connect(b.irc_port, "guest")
    await guest.send("JOIN #c")
    await guest.expect(" 475 guest #c ")
    await op.send("MODE #c +b guest")
    await member.expect("MODE #c +b guest!*@*")
    await guest.send("JOIN #c sesame")
    await guest.expect(" 474 guest #c ")
    await op.send("KICK #c member :out")
    assert await member.expect("KICK #c member") == ":op!op@127.0.0.1 KICK #c member :out"
    await eventually(lambda: "member" not in room_b.members, "B to apply the kick")


async def test_kill_and_handover_span_nodes(redis_server: RedisServer,
                                            make_server: MakeServer) -> None:
    """An operator on A kills the only op of #c, who is on B: B closes that connection,
    the next member becomes op on both nodes, and the nick can be taken again on A."""
    a = await node(make_server, redis_server, oper=(OPER,), presence_interval=0)
    b = await node(make_server, redis_server, oper=(OPER,), presence_interval=0)
    victim = await Irc.connect(b.irc_port, "victim")
    await victim.send("JOIN #c")
    await victim.expect(" 366 ")
    heir = await new_session(a.http_port, "heir", "c")
    oper = await Irc.connect(a.irc_port, "oper")
    await oper.send("OPER admin hunter2")
    await oper.expect(" 381 ")
    await oper.send("KILL victim :spam")
    assert (await victim.expect("KILL")).endswith("KILL victim :spam")
    await victim.expect("ERROR :Closing Link:")
    for app in (a, b):
        await eventually(lambda app=app: (app.engine.find_room("#c") is not None
                                          and app.engine.find_room("#c").ops == {"heir"}),
                         "the hand-over on every node")
    members = (await call(a.http_port, "GET", "/api/rooms/c/members", token=heir)).json()
    assert [(m["nick"], m["op"]) for m in members["members"]] == [("heir", True)]
    again = await Irc.connect(a.irc_port, "victim")  # the nick was released in Redis
    await again.send("WHOWAS victim")
    await again.expect(" 314 victim victim ")
