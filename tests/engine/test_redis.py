"""Several nodes on one real redis-server behave as one chat (loopback, tiny timeouts)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from typing import Any

from chat.app import ChatServer
from chat.irc.message import parse
from chat.runtime import free_ports
from tests.conftest import MakeServer, eventually
from tests.engine.conftest import RedisServer
from tests.http.util import Irc, call, new_session


async def node(make_server: MakeServer, redis: RedisServer, **options: Any) -> ChatServer:
    # The nodes of a test share this process, and Redis drops a node's key node_timeout
    # after its last refresh by Redis's own clock: a timeout a stalled loop could outlast
    # would let one node give the other up for lost ("Node lost").  Only the test of a
    # lost node needs it short, and says so.
    settings: dict[str, Any] = {"engine": redis.url, "node_timeout": 2.0,
                                "flood_burst": 0, "http_rate": 0}
    settings.update(options)
    return await make_server(**settings)


async def test_two_nodes_are_one_chat(redis_server: RedisServer,
                                      make_server: MakeServer) -> None:
    """IRC and HTTP users on two nodes see each other's messages, joins and topics, with the
    same id everywhere; NAMES lists users of both nodes."""
    a, b = await node(make_server, redis_server), await node(make_server, redis_server)
    alice = await Irc.connect(a.irc_port, "alice", "message-tags")
    bob = await Irc.connect(b.irc_port, "bob", "message-tags")
    await alice.send("JOIN #one")
    await alice.expect(" 366 ")
    await bob.send("JOIN #one")
    await bob.expect(" 366 ")
    await alice.expect("bob!", "JOIN")
    carol = await new_session(b.http_port, "carol")
    assert (await call(a.http_port, "POST", "/api/rooms/one/join", token=carol)).status == 200

    async def names_on_b() -> set[str]:
        await bob.send("NAMES #one")
        return set((await bob.expect(" 353 ")).split(":")[-1].split())

    await eventually(lambda: b.engine.find_user("carol") is not None, "carol known on B")
    await eventually(lambda: "carol" in b.engine.find_room("#one").members,  # type: ignore[union-attr]
                     "carol's join applied on B")
    assert await names_on_b() == {"@alice", "bob", "carol"}
    await bob.send("PRIVMSG #one :hello from b")
    line = parse(await alice.expect("PRIVMSG #one :hello from b"))
    assert line.tags is not None
    poll = await call(a.http_port, "GET", "/api/rooms/one/messages?limit=10", token=carol)
    last = poll.json()["events"][-1]
    assert (last["nick"], last["text"], last["id"]) == ("bob", "hello from b",
                                                       int(line.tags["msgid"]))
    posted = await call(b.http_port, "POST", "/api/rooms/one/messages", token=carol,
                        body={"text": "from http on b"})
    seen = parse(await alice.expect("PRIVMSG #one :from http on b"))
    assert seen.tags is not None and int(seen.tags["msgid"]) == posted.json()["id"]
    await alice.send("TOPIC #one :shared topic")
    await bob.expect("TOPIC #one :shared topic")


async def test_nicks_are_global(redis_server: RedisServer, make_server: MakeServer) -> None:
    """A nick taken on one node is refused on the other: 433 on IRC, 409 over HTTP; a nick
    given up on one node can be taken on the other."""
    a, b = await node(make_server, redis_server), await node(make_server, redis_server)
    alice = await Irc.connect(a.irc_port, "alice")
    taker = await Irc.connect(b.irc_port, "taker")
    await taker.send("NICK ALICE")
    assert " 433 " in await taker.expect(" 433 ")
    resp = await call(b.http_port, "POST", "/api/sessions", body={"nick": "alice"})
    assert resp.status == 409 and resp.json()["error"] == "nick_in_use"
    await alice.send("NICK alicia")
    # The rename's own line: a bare "NICK" is already matched by the ISUPPORT line left
    # unread since registration (NICKLEN=...), and taking "alice" on B before A's rename
    # has reached Redis is refused, rightly.
    await alice.expect(" NICK ", "alicia")
    await taker.send("NICK alice")
    await taker.expect("NICK", "alice")


async def test_poller_moves_between_nodes(redis_server: RedisServer,
                                          make_server: MakeServer) -> None:
    """A session made on A polls on B; a long poll held on B is woken by a message on A."""
    a, b = await node(make_server, redis_server), await node(make_server, redis_server)
    token = await new_session(a.http_port, "poller", "lobby")
    talker = await new_session(b.http_port, "talker", "lobby")
    first = await call(b.http_port, "GET", "/api/rooms/lobby/messages", token=token)
    cursor = first.json()["next"]
    held = asyncio.create_task(call(b.http_port, "GET",
                                    f"/api/rooms/lobby/messages?since={cursor}&wait=5",
                                    token=token))
    await eventually(lambda: b.stats.http.long_polls_open == 1, "the long poll held on B")
    await call(a.http_port, "POST", "/api/rooms/lobby/messages", token=talker,
               body={"text": "wake up"})
    answer = (await held).json()
    assert [e["text"] for e in answer["events"]] == ["wake up"]


async def test_ids_increase_across_nodes(redis_server: RedisServer,
                                         make_server: MakeServer) -> None:
    """Messages sent alternately on two nodes get strictly increasing ids, in the same order
    on both nodes."""
    a, b = await node(make_server, redis_server), await node(make_server, redis_server)
    token = await new_session(a.http_port, "counter", "count")
    for i in range(10):
        port = (a, b)[i % 2].http_port
        assert (await call(port, "POST", "/api/rooms/count/messages", token=token,
                           body={"text": str(i)})).status == 201

    async def seen(app: ChatServer) -> list[tuple[int, str]]:
        resp = await call(app.http_port, "GET", "/api/rooms/count/messages?since=0",
                          token=token)
        return [(e["id"], e["text"]) for e in resp.json()["events"] if e["kind"] == "message"]

    await eventually(lambda: len(b.engine.find_room("#count").log.events) >= 11,  # type: ignore[union-attr]
                     "B has every message")
    on_a, on_b = await seen(a), await seen(b)
    assert on_a == on_b and [t for _, t in on_a] == [str(i) for i in range(10)]
    ids = [i for i, _ in on_a]
    assert ids == sorted(ids) and len(set(ids)) == 10


async def test_a_killed_node_is_given_up(redis_server: RedisServer,
                                         make_server: MakeServer) -> None:
    """kill -9 of a node: its users QUIT with a reason on the other nodes within the node
    timeout, and their nicks are free again."""
    a = await node(make_server, redis_server, node_timeout=0.5)
    irc_port, http_port = free_ports(2)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "chat", "serve", "--engine", redis_server.url,
        "--irc-port", str(irc_port), "--http-port", str(http_port), "--node-timeout", "0.5",
        "--log-level", "warning", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        doomed: Irc | None = None

        async def connect() -> bool:
            nonlocal doomed
            try:
                doomed = await Irc.connect(irc_port, "doomed")
            except OSError:
                return False
            return True

        await eventually(connect, "the second node to listen")
        assert doomed is not None
        watcher = await Irc.connect(a.irc_port, "watcher")
        await watcher.send("JOIN #shared")
        await watcher.expect(" 366 ")
        await doomed.send("JOIN #shared")
        await watcher.expect("doomed!", "JOIN")
        os.kill(proc.pid, signal.SIGKILL)
        quit_line = await watcher.expect("doomed!", "QUIT")
        assert quit_line.endswith(":Node lost")
        again = await Irc.connect(a.irc_port, "doomed")
        await again.send("WHOIS doomed")
        assert "127.0.0.1" in await again.expect(" 311 ")
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()


async def test_redis_restart(redis_server: RedisServer, make_server: MakeServer) -> None:
    """With Redis gone, writes get a clear refusal (HTTP 503 engine_unavailable, IRC 440);
    once it is back the node reconnects and messages flow with no false gap."""
    a = await node(make_server, redis_server)
    token = await new_session(a.http_port, "patient", "wait")
    talker = await Irc.connect(a.irc_port, "talker")
    await talker.send("JOIN #wait")
    await talker.expect(" 366 ")
    goner = await Irc.connect(a.irc_port, "goner")
    await goner.send("JOIN #wait")
    await goner.expect(" 366 ")
    cursor = (await call(a.http_port, "GET", "/api/rooms/wait/messages",
                         token=token)).json()["next"]
    redis_server.stop()
    await eventually(lambda: not a.engine.snapshot()["connected"], "the node to notice")
    goner.close()  # leaves while Redis is away: the QUIT must not be lost
    resp = await call(a.http_port, "POST", "/api/rooms/wait/messages", token=token,
                      body={"text": "lost?"})
    assert resp.status == 503 and resp.json()["error"] == "engine_unavailable"
    await talker.send("PRIVMSG #wait :anyone?")
    assert " 440 " in await talker.expect(" 440 ")
    redis_server.start()
    await eventually(lambda: a.engine.snapshot()["connected"], "the node to reconnect")
    await talker.expect("goner!", "QUIT")
    assert a.engine.find_user("goner") is None
    assert (await call(a.http_port, "POST", "/api/rooms/wait/messages", token=token,
                       body={"text": "back"})).status == 201
    await talker.expect("PRIVMSG #wait :back")
    poll = (await call(a.http_port, "GET", f"/api/rooms/wait/messages?since={cursor}",
                       token=token)).json()
    assert [(e["kind"], e["nick"]) for e in poll["events"]] == [("quit", "goner"),
                                                                ("message", "patient")]
    assert poll["gap"] is False
    assert a.engine.snapshot()["reconnects"] >= 1


async def test_full_restart_keeps_history_ids_and_sessions(
        redis_server: RedisServer, make_server: MakeServer) -> None:
    """Stop every node (and Redis, which persists): new nodes serve the same history and
    session; a client resumes from its cursor with no loss and no false gap; ids go on."""
    a = await node(make_server, redis_server)
    token = await new_session(a.http_port, "keeper", "kept")
    for text in ("one", "two", "three"):
        await call(a.http_port, "POST", "/api/rooms/kept/messages", token=token,
                   body={"text": text})
    events = (await call(a.http_port, "GET", "/api/rooms/kept/messages?since=0",
                         token=token)).json()
    epoch, cursor = events["epoch"], events["events"][1]["id"]  # after "one"
    await a.shutdown()
    redis_server.stop()
    redis_server.start()
    b = await node(make_server, redis_server)
    resumed = (await call(b.http_port, "GET", f"/api/rooms/kept/messages?since={cursor}",
                          token=token)).json()
    assert [e["text"] for e in resumed["events"]] == ["two", "three"]
    assert resumed["gap"] is False and resumed["epoch"] == epoch
    posted = await call(b.http_port, "POST", "/api/rooms/kept/messages", token=token,
                        body={"text": "four"})
    assert posted.json()["id"] > resumed["next"]


async def test_workers_share_the_ports(redis_server: RedisServer) -> None:
    """--workers 2: two processes on the same ports, one chat; users reach each other
    whichever worker the kernel gives them."""
    irc_port, http_port = free_ports(2)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "chat", "serve", "--engine", redis_server.url, "--workers", "2",
        "--irc-port", str(irc_port), "--http-port", str(http_port), "--flood-burst", "0",
        "--log-level", "warning", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        nodes: set[str] = set()

        async def two_nodes_answer() -> bool:
            try:
                resp = await call(http_port, "GET", "/api/stats")
            except OSError:
                return False
            nodes.add(resp.json()["hub"]["node"])
            return len(nodes) == 2

        await eventually(two_nodes_answer, "both workers to answer")
        clients = [await Irc.connect(irc_port, f"w{i}") for i in range(6)]
        for client in clients:
            await client.send("JOIN #w")
            await client.expect(" 366 ")
        await clients[0].send("PRIVMSG #w :to every worker")
        for client in clients[1:]:
            await client.expect("PRIVMSG #w :to every worker")
    finally:
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 10) == 0


def test_workers_need_a_shared_engine() -> None:
    """--workers 2 with the memory engine is refused with a usage message."""
    result = subprocess.run([sys.executable, "-m", "chat", "serve", "--workers", "2"],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "needs a shared engine" in result.stderr


async def test_history_and_sessions_span_nodes(redis_server: RedisServer,
                                               make_server: MakeServer) -> None:
    """CHATHISTORY on B returns what was said on A; a session kept busy on B is not expired
    by the leader, an idle one is, with a QUIT seen on IRC."""
    a = await node(make_server, redis_server, session_timeout=1.0)
    b = await node(make_server, redis_server, session_timeout=1.0)
    busy = await new_session(a.http_port, "busy", "hist")
    await new_session(a.http_port, "idler", "hist")
    for text in ("first", "second"):
        await call(a.http_port, "POST", "/api/rooms/hist/messages", token=busy,
                   body={"text": text})
    reader = await Irc.connect(b.irc_port, "reader", "batch draft/chathistory message-tags")
    await reader.send("JOIN #hist")
    await reader.expect(" 366 ")
    await reader.send("CHATHISTORY LATEST #hist * 10")
    await reader.expect("PRIVMSG #hist :first")
    await reader.expect("PRIVMSG #hist :second")
    quit_line = ""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 4  # the idle session passes its timeout; the busy one polls on B
    while loop.time() < deadline:
        assert (await call(b.http_port, "GET", "/api/rooms/hist/messages",
                           token=busy)).status == 200
        if a.engine.find_user("idler") is None:
            quit_line = await reader.expect("idler!", "QUIT")
            break
        await asyncio.sleep(0.05)
    assert quit_line.endswith(":Session timeout")
    assert a.engine.find_user("busy") is not None and b.engine.find_user("busy") is not None
