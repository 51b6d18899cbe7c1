"""The IRC adapter over real loopback sockets: chat, heartbeats, limits, shutdown."""

from __future__ import annotations

import asyncio
import itertools
import socket

import psutil
import pytest

from chat.core.heartbeat import Beat
from chat.irc.message import parse
from chat.irc.session import LAZY_LINES
from chat.state import is_loopback
from tests.conftest import MakeServer, eventually, missing
from tests.irc.conftest import Connect, IrcClient


async def test_registration(make_server: MakeServer, irc: Connect) -> None:
    """NICK/USER over a socket give the 001-005 burst and the MOTD."""
    app = await make_server()
    client = await irc(app)
    lines = await client.register("alice")
    commands = [parse(line).command for line in lines]
    assert commands[:5] == ["001", "002", "003", "004", "005"]
    assert commands[-1] == "376"
    assert app.stats.irc.connections_open == 1
    assert app.engine.find_user("alice") is not None


async def test_two_clients_chat(make_server: MakeServer, irc: Connect) -> None:
    """Two clients in a channel and in private see each other's messages."""
    app = await make_server()
    alice, bob = await irc(app, "alice"), await irc(app, "bob")
    alice.send("JOIN #lobby")
    await alice.expect(" 366 ")
    bob.send("JOIN #lobby")
    await alice.expect(r"^:bob!\S+ JOIN #lobby$")
    bob.send("PRIVMSG #lobby :hello alice")
    assert await alice.expect("PRIVMSG") == ":bob!bob@127.0.0.1 PRIVMSG #lobby :hello alice"
    alice.send("PRIVMSG bob :hi bob, privately")
    assert await bob.expect("PRIVMSG") == ":alice!alice@127.0.0.1 PRIVMSG bob :hi bob, privately"
    assert app.stats.irc.messages == 2


async def test_echo_message_msgid_and_server_time(make_server: MakeServer, irc: Connect) -> None:
    """echo-message returns our line tagged with time and msgid = the hub event id."""
    app = await make_server()
    caps = ["message-tags", "server-time", "echo-message"]
    alice, bob = await irc(app, "alice", caps), await irc(app, "bob", caps[:2])
    alice.send("JOIN #t")
    await alice.expect(" 366 ")
    bob.send("JOIN #t")
    await bob.expect(" 366 ")
    alice.send("PRIVMSG #t :tagged")
    echo = parse(await alice.expect("PRIVMSG"))
    seen = parse(await bob.expect("PRIVMSG"))
    room = app.engine.find_room("#t")
    assert room is not None
    assert echo.tags is not None and seen.tags is not None
    assert echo.tags["msgid"] == seen.tags["msgid"] == str(room.log.last_id)
    assert echo.tags["time"] == seen.tags["time"] and echo.tags["time"].endswith("Z")
    assert echo.params == ["#t", "tagged"]


async def test_message_flushes_the_presence_lines_before_it(make_server: MakeServer,
                                                             irc: Connect) -> None:
    """With a long presence tick, a message still arrives at once, after the JOIN it follows."""
    app = await make_server(presence_interval=60)
    alice = await irc(app, "alice")
    alice.send("JOIN #r")
    await alice.expect(" 366 ")
    bob = await irc(app, "bob")
    bob.send("JOIN #r", "PRIVMSG #r :after my join")
    first = await alice.expect("bob")
    assert " JOIN #r" in first
    assert "after my join" in await alice.expect("PRIVMSG")


async def test_presence_lines_past_the_bound_do_not_wait_for_the_tick(
        make_server: MakeServer, irc: Connect) -> None:
    """With a presence tick of a minute, a member holding LAZY_LINES presence lines gets
    them with the next flush: what each member holds under a join storm is bounded."""
    app = await make_server(presence_interval=60, presence_max=60)
    alice = await irc(app, "alice")
    alice.send("JOIN #storm")
    await alice.expect(" 366 ")
    joiners = [await irc(app, f"j{i}") for i in range(LAZY_LINES)]
    for client in joiners:
        client.send("JOIN #storm")
        await client.expect(" 366 ")
    for i in range(LAZY_LINES):
        assert f"j{i}!" in await alice.expect(" JOIN #storm")


@pytest.mark.parametrize("share", [0.5, 0.0])
async def test_costly_presence_ticks_spread_out(make_server: MakeServer, irc: Connect,
                                                share: float) -> None:
    """The presence tick is paced by its cost: when every flush costs a lot of CPU (a fake
    CPU clock) the tick after a costly one waits --presence-max, within --flush-share of
    the core; with --flush-share 0 it stays --presence-interval.  JOINs still arrive."""
    app = await make_server(presence_interval=0.02, presence_max=0.4, flush_share=share)
    ticks = itertools.count()
    app.irc.cpu_clock = lambda: float(next(ticks))  # every flush "costs" one second
    alice = await irc(app, "alice")
    alice.send("JOIN #p")
    await alice.expect(" 366 ")
    for nick in ("bob", "carol"):
        client = await irc(app, nick)
        client.send("JOIN #p")
        await client.expect(" 366 ")
        assert f"{nick}!" in await alice.expect(" JOIN #p")
    assert app.irc.presence_pacer.window == (0.4 if share else 0.02)


@pytest.mark.parametrize("share", [0.5, 0.0])
async def test_costly_flushes_widen_the_flush_window(make_server: MakeServer, irc: Connect,
                                                      share: float) -> None:
    """Adaptive coalescing is wired in: when every flush costs a lot of CPU (a fake CPU
    clock), the window grows to --flush-max and ten lines sent 10 ms apart reach a member in
    at most two writes (the first at once, the rest together); with --flush-share 0 the
    1 ms --flush-interval stays the window and the lines go out (nearly) one write each."""
    app = await make_server(flush_interval=0.001, flush_share=share, flush_max=0.5,
                            presence_interval=0, flood_burst=0)
    ticks = itertools.count()
    app.irc.cpu_clock = lambda: float(next(ticks))  # every flush "costs" one second
    reader, sender = await irc(app, "reader"), await irc(app, "sender")
    for client in (reader, sender):
        client.send("JOIN #w")
        await client.expect(" 366 ")
    await reader.expect("sender!.* JOIN")
    await asyncio.sleep(0.6)  # a quiet spell longer than any window
    writes, flushes = app.stats.irc.writes, app.stats.irc.flushes
    for i in range(10):
        sender.send(f"PRIVMSG #w :line {i}")
        await asyncio.sleep(0.01)
    await reader.expect("PRIVMSG #w :line 9")
    writes, flushes = app.stats.irc.writes - writes, app.stats.irc.flushes - flushes
    if share:
        assert app.irc.pacer.window == 0.5
        assert 1 <= writes <= 2 and 1 <= flushes <= 2
    else:
        assert app.irc.pacer.window == 0.001
        assert writes >= 5 and flushes >= 5


async def test_quit_reaches_channel_and_closes(make_server: MakeServer, irc: Connect) -> None:
    """QUIT sends ERROR to the quitter, a QUIT with the reason to the channel, then EOF."""
    app = await make_server()
    alice, bob = await irc(app, "alice"), await irc(app, "bob")
    for client in (alice, bob):
        client.send("JOIN #q")
        await client.expect(" 366 ")
    bob.send("QUIT :see you")
    assert await bob.until_closed() == ["ERROR :Closing Link: Quit: see you"]
    assert await alice.expect("QUIT") == ":bob!bob@127.0.0.1 QUIT :Quit: see you"
    await eventually(lambda: app.stats.irc.connections_open == 1)
    assert app.stats.irc.reaps["quit"] == 1


async def test_registration_timeout(make_server: MakeServer, irc: Connect) -> None:
    """A client that never completes NICK/USER is closed with a reason."""
    app = await make_server(registration_timeout=0.2)
    client = await irc(app)
    client.send("NICK slow")
    assert await client.until_closed() == ["ERROR :Closing Link: Registration timeout"]
    assert app.stats.irc.timeouts["registration"] == 1
    assert app.stats.irc.reaps["registration_timeout"] == 1


async def test_ping_timeout(make_server: MakeServer, irc: Connect) -> None:
    """A silent client gets PING; no answer closes it and its channel sees the QUIT."""
    # alice answers within ping_timeout, also on a machine that stalls for a while
    app = await make_server(ping_interval=0.2, ping_timeout=0.6)
    alice, mute = await irc(app, "alice"), await irc(app, "mute")
    for client in (alice, mute):
        client.send("JOIN #p")
        await client.expect(" 366 ")

    async def alice_waits_for_the_quit() -> str:
        while True:  # answering her own PINGs meanwhile
            line = await alice.line()
            if line.startswith(":chat.local PING"):
                alice.send("PONG :chat.local")
            elif line.startswith(":mute!") and " QUIT " in line:
                return line

    waiting = asyncio.create_task(alice_waits_for_the_quit())
    assert await mute.expect("^PING|^:chat.local PING") == ":chat.local PING chat.local"
    error = (await mute.until_closed())[-1]
    assert error.startswith("ERROR :Closing Link: Ping timeout: ") and error.endswith(" seconds")
    quit_line = await waiting
    assert quit_line.split(" :", 1)[1] == error.split("Closing Link: ", 1)[1]
    assert app.stats.irc.timeouts["ping"] >= 1 and app.stats.irc.pings_sent >= 2


async def test_answered_pings_then_idle_timeout(make_server: MakeServer, irc: Connect) -> None:
    """A client that only answers PINGs stays past ping timeouts but is reaped as idle."""
    # ping_timeout is ten ping intervals: the answers count, not how fast they come
    app = await make_server(ping_interval=0.1, ping_timeout=1.0, idle_timeout=1.5)
    client = await irc(app, "idler")
    pings = 0
    while True:
        line = await client.line()
        if line.startswith("ERROR"):
            break
        if parse(line).command == "PING":
            pings += 1
            client.send("PONG :" + parse(line).params[-1])
    assert line == "ERROR :Closing Link: Idle timeout"
    assert pings >= 2
    assert app.stats.irc.timeouts["idle"] == 1 and app.stats.irc.timeouts["ping"] == 0
    assert app.stats.irc.pongs_received >= 2


async def test_long_line_417_and_connection_survives(make_server: MakeServer,
                                                     irc: Connect) -> None:
    """A line over 512 bytes gets 417 and is dropped; so is an endless one; then all is well."""
    app = await make_server()
    client = await irc(app, "longwinded")
    client.send("PRIVMSG #x :" + "y" * 600)
    assert " 417 longwinded " in await client.expect(" 417 ")
    client.send_raw(b"z" * 20_000)
    await client.expect(" 417 ")
    client.send("", "PING :still-here")
    assert await client.expect("PONG") == ":chat.local PONG chat.local still-here"
    assert app.stats.irc.errors["417"] == 2


async def test_invalid_utf8_is_decoded_leniently(make_server: MakeServer,
                                                 irc: Connect) -> None:
    """Invalid UTF-8 does not hurt: the text arrives with replacement characters."""
    app = await make_server()
    alice, bob = await irc(app, "alice"), await irc(app, "bob")
    alice.send("JOIN #u")
    await alice.expect(" 366 ")
    bob.send("JOIN #u")
    await bob.expect(" 366 ")
    bob.send_raw(b"PRIVMSG #u :caf\xe9 \xff ok\r\n")
    assert await alice.expect("PRIVMSG") == ":bob!bob@127.0.0.1 PRIVMSG #u :caf\ufffd \ufffd ok"


async def test_flood_lines_are_delayed_not_dropped(make_server: MakeServer,
                                                   irc: Connect) -> None:
    """Lines over the burst are held and answered later, in order, none lost."""
    app = await make_server(flood_burst=3, flood_rate=20.0)
    client = await irc(app)
    client.send("NICK f", "USER f 0 * :f")  # two lines of the burst of three
    await client.expect(" 376 ")
    client.send(*(f"PING :n{i}" for i in range(8)))
    pongs = [parse(await client.expect("PONG")).params[-1] for _ in range(8)]
    assert pongs == [f"n{i}" for i in range(8)]
    assert app.stats.irc.lines_delayed >= 6


async def test_the_answer_to_our_ping_spends_no_flood_budget(make_server: MakeServer,
                                                             irc: Connect) -> None:
    """PONGs to server PINGs never run the budget dry: the next command is not held."""
    app = await make_server(flood_burst=3, flood_rate=0.5, ping_interval=0.05, ping_timeout=5)
    client = await irc(app)
    client.send("NICK p", "USER p 0 * :p")
    await client.expect(" 376 ")
    for _ in range(6):  # six PINGs answered: twice the burst
        client.send("PONG :" + parse(await client.expect(" PING ")).params[-1])
    client.send("PING :after")
    assert (await client.expect("PONG")).endswith(" after")
    assert app.stats.irc.lines_delayed == 0
    client.send(*["PONG :unasked"] * 5)  # beyond the one answering a PING: these count
    await eventually(lambda: app.stats.irc.lines_delayed > 0)


async def test_a_quiet_clients_bucket_goes_and_flood_control_still_holds(
        make_server: MakeServer, irc: Connect) -> None:
    """A client quiet until its budget refilled gives its bucket back at the next PING (an
    idle connection keeps none); when it floods afterwards, a new one holds the excess."""
    app = await make_server(flood_burst=3, flood_rate=20.0, ping_interval=0.2, ping_timeout=5)
    client = await irc(app)
    client.send("NICK q", "USER q 0 * :q")
    await client.expect(" 376 ")
    (conn,) = app.irc.connections
    assert conn.flood_full_at > 0  # it spent two of its three tokens
    client.send("PONG :" + parse(await client.expect(" PING ")).params[-1])
    await eventually(lambda: app.stats.irc.heartbeat_rtt.count > 0)  # the PONG was read
    assert conn.flood_full_at == 0 and conn.splitter is None  # FULL, and no float made
    client.send(*(f"PING :n{i}" for i in range(8)))
    pongs = [parse(await client.expect("PONG")).params[-1] for _ in range(8)]
    assert pongs == [f"n{i}" for i in range(8)]
    assert app.stats.irc.lines_delayed >= 5  # three went at once, the rest waited


async def test_excess_flood(make_server: MakeServer, irc: Connect) -> None:
    """A client far over the budget is cut with 'Excess Flood'; others keep chatting."""
    app = await make_server(flood_burst=5, flood_rate=1.0, recvq=2000)
    calm, flooder = await irc(app, "calm"), await irc(app, "flooder")
    for client in (calm, flooder):
        client.send("JOIN #f")
        await client.expect(" 366 ")
    flooder.send(*(f"PRIVMSG #f :flood line number {i}" for i in range(200)))
    lines = await flooder.until_closed()
    assert lines[-1] == "ERROR :Closing Link: Excess Flood"
    assert (await calm.expect(r"^:flooder!\S+ QUIT")).endswith(":Excess Flood")
    assert app.stats.irc.reaps["excess_flood"] == 1
    other = await irc(app, "other")
    other.send("JOIN #f", "PRIVMSG #f :still flowing")
    assert (await calm.expect("still flowing")).endswith("PRIVMSG #f :still flowing")


async def test_slow_consumer_sendq_exceeded(make_server: MakeServer, irc: Connect) -> None:
    """A member that stops reading is cut with 'SendQ exceeded'; the room keeps flowing."""
    app = await make_server(sendq=64 * 1024, flood_burst=0, close_timeout=0.2)
    sender, watcher = await irc(app, "sender"), await irc(app, "watcher")
    slow = await irc(app, "slow", rcvbuf=4096)
    for client in (sender, watcher, slow):
        client.send("JOIN #s")
        await client.expect(" 366 ")
    text = "x" * 400
    sent = 0
    while app.stats.irc.reaps["sendq_exceeded"] == 0:
        assert sent < 40_000, "the slow reader was never cut"
        sender.send(*(f"PRIVMSG #s :{sent + i} {text}" for i in range(200)))
        sent += 200
        for _ in range(200):  # the watcher keeps up
            await watcher.expect("PRIVMSG #s")
    quit_line = await watcher.expect(r"^:slow!\S+ QUIT")
    assert quit_line.endswith(":SendQ exceeded")
    sender.send("PRIVMSG #s :after the cut")
    await watcher.expect("after the cut")
    await eventually(lambda: app.stats.irc.connections_open == 2)  # aborted, not lingering


async def test_max_clients(make_server: MakeServer, irc: Connect) -> None:
    """Past --max-clients a connection is refused with an ERROR line; a slot frees on close."""
    app = await make_server(max_clients=2)
    first, _second = await irc(app, "first"), await irc(app, "second")
    third = await irc(app)
    assert await third.until_closed() == ["ERROR :Closing Link: Too many connections"]
    assert app.stats.irc.connections_refused == 1
    first.send("QUIT")
    await first.until_closed()
    await eventually(lambda: app.stats.irc.connections_open == 1)
    await irc(app, "fourth")


async def test_max_clients_per_ip_exempts_loopback(make_server: MakeServer,
                                                   irc: Connect) -> None:
    """Loopback clients are not limited per address."""
    app = await make_server(max_clients_per_ip=1)
    for nick in ("a", "b", "c"):
        await irc(app, nick)
    assert app.stats.irc.connections_refused == 0


def _local_non_loopback_ipv4() -> str | None:
    for addresses in psutil.net_if_addrs().values():
        for address in addresses:
            if address.family == socket.AF_INET and not is_loopback(address.address):
                return str(address.address)
    return None


async def test_max_clients_per_ip(make_server: MakeServer) -> None:
    """From a non-loopback address, the connection over --max-clients-per-ip is refused."""
    host = _local_non_loopback_ipv4()
    if host is None:
        missing("no local non-loopback IPv4 address")
    app = await make_server(host=host, max_clients_per_ip=2)
    clients = []
    for _ in range(3):
        reader, writer = await asyncio.open_connection(host, app.irc_port)
        clients.append(IrcClient(reader, writer))
    assert await clients[2].until_closed() == [
        "ERROR :Closing Link: Too many connections from your address"]
    clients[0].send("NICK ok", "USER ok 0 * :ok")
    await clients[0].expect(" 001 ")
    for client in clients:
        await client.close()


def test_is_loopback() -> None:
    """127/8, ::1 and IPv4-mapped loopback are exempt; others are not."""
    assert is_loopback("127.0.0.1") and is_loopback("127.8.9.1") and is_loopback("::1")
    assert is_loopback("::ffff:127.0.0.1")
    assert not is_loopback("192.0.2.1") and not is_loopback("::ffff:10.0.0.1")
    assert not is_loopback("unknown")


async def test_shutdown_tells_clients(make_server: MakeServer, irc: Connect) -> None:
    """Shutdown sends 'ERROR :Server shutting down' and closes; no QUIT noise first."""
    app = await make_server()
    alice, bob = await irc(app, "alice"), await irc(app, "bob")
    for client in (alice, bob):
        client.send("JOIN #z")
        await client.expect(" 366 ")
    await alice.expect(r"^:bob!\S+ JOIN")
    await app.shutdown()
    assert await alice.until_closed() == ["ERROR :Server shutting down"]
    assert await bob.until_closed() == ["ERROR :Server shutting down"]
    assert app.stats.irc.connections_open == 0
    assert app.stats.irc.reaps["shutdown"] == 2
    with pytest.raises(OSError):
        await IrcClient.connect(app.irc_port)


async def test_chathistory_resume_after_reconnect(make_server: MakeServer,
                                                  irc: Connect) -> None:
    """A client reconnects and gets exactly what it missed with CHATHISTORY AFTER."""
    app = await make_server()
    caps = ["message-tags", "server-time", "batch", "draft/chathistory"]
    bob = await irc(app, "bob")
    bob.send("JOIN #r")
    await bob.expect(" 366 ")
    alice = await irc(app, "alice", caps)
    alice.send("JOIN #r")
    await alice.expect(" 366 ")
    bob.send("PRIVMSG #r :before")
    last = parse(await alice.expect("PRIVMSG")).tags["msgid"]  # type: ignore[index]
    alice.send("QUIT")
    await alice.until_closed()
    bob.send(*(f"PRIVMSG #r :missed {i}" for i in range(3)), "PING :sync")
    await bob.expect("PONG")  # bob's lines are in the hub before alice comes back
    again = await irc(app, "alice", caps)
    again.send("JOIN #r", f"CHATHISTORY AFTER #r msgid={last} 100")
    lines = await again.lines_until("BATCH -")
    texts = [parse(line).params[-1] for line in lines if " PRIVMSG " in line]
    assert texts == ["missed 0", "missed 1", "missed 2"]
    start = next(line for line in lines if " BATCH +" in line)
    assert parse(start).params[1:] == ["chathistory", "#r"]


async def test_one_failing_heartbeat_stops_nobody_elses(make_server: MakeServer, irc: Connect,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    """A connection whose heartbeat raises is closed with a logged reason; the sweep goes on
    pinging and reaping everyone else on time."""
    from chat.irc.server import IrcConnection  # its heartbeat is itself: subclassed below

    class Broken(IrcConnection):
        __slots__ = ()

        def check(self, now: float) -> Beat:
            raise RuntimeError("heartbeat bug")

    app = await make_server(ping_interval=0.1, ping_timeout=0.3)
    doomed = await irc(app, "doomed")
    silent = await irc(app, "silent")
    live = await irc(app, "live")
    conn = next(c for c in app.irc.connections if c.session.nick == "doomed")
    conn.__class__ = Broken  # the same slots: this one connection's check() now raises
    conn.deadline = 0.0
    assert (await doomed.until_closed())[-1] == "ERROR :Closing Link: Internal error"
    pings = 0
    while pings < 3:  # the sweep still runs: live keeps being pinged...
        line = await live.line()
        if parse(line).command == "PING":
            pings += 1
            live.send("PONG :chat.local")
    # ...and silent, who never answers, is still reaped.
    assert (await silent.until_closed())[-1].startswith("ERROR :Closing Link: Ping timeout")
    assert any("heartbeat of" in r.getMessage() and r.exc_info for r in caplog.records)
    assert app.stats.irc.reaps["internal_error"] == 1


@pytest.mark.parametrize("held", [False, True])
async def test_numbers_int_refuses_get_fail_and_keep_the_connection(
        make_server: MakeServer, irc: Connect, held: bool) -> None:
    """CHATHISTORY with digits int() refuses (superscripts, circled digits, 400 nines) gets
    FAIL; the client stays, nothing leaks to the room; also when flood control held it."""
    app = await make_server(flood_burst=1 if held else 0, flood_rate=20.0)
    watcher = await irc(app, "watcher")
    watcher.send("JOIN #x")
    await watcher.expect(" 366 ")
    client = await irc(app, "odd", caps=["draft/chathistory", "batch"])
    client.send("JOIN #x")
    await client.expect(" 366 ")
    for bad in ("CHATHISTORY LATEST #x * \u00b2", "CHATHISTORY AFTER #x msgid=\u2460 10",
                "CHATHISTORY LATEST #x * \u278d", "CHATHISTORY AFTER #x msgid=" + "9" * 400 + " 5"):
        client.send(bad)
        assert (await client.expect("FAIL CHATHISTORY")).split()[3] in (
            "INVALID_PARAMS", "INVALID_MSGREFTYPE")
    client.send("PING :still-here")
    await client.expect("PONG .* :?still-here")
    client.send("PRIVMSG #x :fine")
    assert (await watcher.expect("PRIVMSG #x")).endswith(":fine")
    assert not any(" QUIT " in line for line in watcher.seen)
