"""Per-address limits on HTTP too, and host cloaking on IRC (issue 13 item 12)."""

from __future__ import annotations

import asyncio

import pytest

from chat.state import Cloak, Exemptions, parse_networks
from tests.conftest import MakeServer

from .test_hosts import WS_HEADERS
from .util import Conn, Irc, build, new_session


def test_cloak_is_stable_keyed_and_hides_the_address() -> None:
    """The same address gets the same cloak under one key, another under another key; the
    address is not in it; loopback is shown as it is in auto mode."""
    one, two = Cloak("auto", "k1"), Cloak("auto", "k2")
    assert one("192.0.2.7") == one("192.0.2.7") != two("192.0.2.7")
    assert "192" not in one("192.0.2.7") and one("192.0.2.7").endswith(".cloak")
    assert one("192.0.2.7") != one("192.0.2.8")
    assert one("127.0.0.1") == "127.0.0.1" and one("::1") == "0::1"
    assert Cloak("all", "k")("127.0.0.1").endswith(".cloak")
    assert Cloak("off", None)("192.0.2.7") == "192.0.2.7"


def test_per_ip_exempt_networks() -> None:
    """--per-ip-exempt networks are exempt like loopback; a bad CIDR is an error."""
    exempt = Exemptions(parse_networks(("172.17.0.0/16", "10.9.0.0/24 fd00::/8")))
    assert exempt("172.17.0.1") and exempt("::ffff:172.17.3.4") and exempt("127.0.0.1")
    assert exempt("10.9.0.200") and exempt("fd00::1")
    assert not exempt("172.18.0.1") and not exempt("192.0.2.1")
    with pytest.raises(ValueError):
        parse_networks(("not-a-net",))


async def test_irc_hosts_are_cloaked(make_server: MakeServer) -> None:
    """With cloaking, WHOIS (311) and message prefixes show the cloak, never the address."""
    app = await make_server(cloak="all", cloak_secret="s")
    alice = await Irc.connect(app.irc_port, "alice")
    bob = await Irc.connect(app.irc_port, "bob")
    await bob.send("WHOIS alice")
    whois = await bob.expect(" 311 ")
    assert "127.0.0.1" not in whois and Cloak("all", "s")("127.0.0.1") in whois
    for irc in (alice, bob):
        await irc.send("JOIN #c")
        await irc.expect(" 366 ")
    await alice.send("PRIVMSG #c :hi")
    line = await bob.expect("PRIVMSG #c :hi")
    assert "127.0.0.1" not in line and ".cloak PRIVMSG" in line


async def test_http_connections_count_per_address(make_server: MakeServer) -> None:
    """HTTP connections count against --max-clients-per-ip like IRC ones: one more gets
    429 too_many_connections; a WebSocket upgrade keeps its connection's one place."""
    app = await make_server(max_clients_per_ip=2)
    token = await new_session(app.http_port, "dave")
    app.state.admission.exempt = lambda ip: False  # loopback counts from here on
    ws = await Conn.open(app.http_port)
    await ws.send(build("GET", f"/api/ws?token={token}", headers=WS_HEADERS))
    assert (await ws.head_response())[0] == 101
    other = await Conn.open(app.http_port)
    assert (await other.request("GET", "/healthz")).status == 200
    assert app.state.admission.per_ip == {"127.0.0.1": 2}
    third = await Conn.open(app.http_port)
    resp = await third.response()
    assert resp.status == 429 and resp.json()["error"] == "too_many_connections"
    assert await third.closed()
    ws.close()
    other.close()
    for _ in range(100):
        if not app.state.admission.per_ip:
            break
        await asyncio.sleep(0.02)
    assert app.state.admission.per_ip == {}
