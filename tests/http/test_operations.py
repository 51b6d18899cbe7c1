"""Operations (issue 13): /metrics in Prometheus format, /healthz and /readyz (exempt from
--max-clients), JSON logs with reason fields on every disconnect."""

from __future__ import annotations

import asyncio
import logging

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from chat.core.passwords import hash_password
from chat.logs import JsonFormatter, disconnect
from tests.conftest import MakeServer
from tests.ws.util import open_ws

from .util import Conn, Irc, call, new_session


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


async def test_metrics_in_prometheus_text_format(make_server: MakeServer) -> None:
    """/metrics parses as Prometheus text and reads the live counters per transport."""
    app = await make_server()
    token = await new_session(app.http_port, "poller", "m")
    last = (await call(app.http_port, "GET", "/api/rooms/m/messages", token=token)).json()
    await call(app.http_port, "GET", f"/api/rooms/m/messages?since={last['next']}", token=token)
    irc = await Irc.connect(app.irc_port, "ircer")
    await irc.send("JOIN #m", "PRIVMSG #m :hello")
    await irc.expect(" 366 ")
    resp = await call(app.http_port, "GET", "/metrics")
    assert resp.status == 200 and resp.headers["content-type"].startswith("text/plain")
    samples = _samples(resp.body.decode())
    assert samples[("chat_connections_open", (("transport", "irc"),))] == 1
    assert samples[("chat_connections_accepted_total", (("transport", "http"),))] >= 3
    assert samples[("chat_polls_total", (("result", "empty"),))] == 1
    assert samples[("chat_sessions_open", (("transport", "http"),))] == 1
    assert ("chat_heartbeat_rtt_seconds_count", (("transport", "irc"),)) in samples
    assert samples[("chat_users", ())] == 2
    # a count of events (two joins, perhaps the message already), not the last id
    assert 2 <= samples[("chat_events_total", ())] <= 3


async def test_metrics_heartbeat_round_trips_and_reaps(make_server: MakeServer) -> None:
    """A server PING answered by the client lands in the RTT histogram; a ping timeout is
    a reap by reason."""
    app = await make_server(ping_interval=0.05, ping_timeout=0.5)
    irc = await Irc.connect(app.irc_port, "pinged")
    await irc.expect(" PING ")
    await irc.send("PONG :chat.local", "VERSION")
    await irc.expect(" 351 ")
    samples = _samples((await call(app.http_port, "GET", "/metrics")).body.decode())
    count = samples[("chat_heartbeat_rtt_seconds_count", (("transport", "irc"),))]
    assert count >= 1
    assert samples[("chat_heartbeat_rtt_seconds_bucket", (("le", "+Inf"),
                                                          ("transport", "irc")))] == count
    irc.close()  # it would time out too if the loop were slow: leave only the silent one
    reader, writer = await asyncio.open_connection("127.0.0.1", app.irc_port)
    writer.write(b"NICK quiet\r\nUSER q 0 * :q\r\n")
    try:
        for _ in range(100):
            if app.stats.irc.reaps["ping_timeout"]:
                break
            await asyncio.sleep(0.02)
        samples = _samples((await call(app.http_port, "GET", "/metrics")).body.decode())
        assert samples[("chat_reaps_total", (("reason", "ping_timeout"),
                                             ("transport", "irc")))] == 1
        assert await reader.read() != b""  # the ERROR line, then EOF
    finally:
        writer.close()
        await writer.wait_closed()


async def test_readyz_false_while_draining(make_server: MakeServer) -> None:
    """/readyz is 200 while accepting and 503 (accepting: false) while draining."""
    app = await make_server()
    ready = await call(app.http_port, "GET", "/readyz")
    assert ready.status == 200 and ready.json()["accepting"] is True
    app.state.draining = True
    resp = await call(app.http_port, "GET", "/readyz")
    assert resp.status == 503 and resp.json() == {"status": "not_ready", "accepting": False,
                                                  "reason": "draining"}
    app.state.draining = False


async def test_probes_are_exempt_from_max_clients(make_server: MakeServer) -> None:
    """At --max-clients, /healthz still answers 200 and /readyz 503 full; other requests
    get 503 server_full."""
    app = await make_server(max_clients=1)
    held = await Conn.open(app.http_port)
    assert (await held.request("GET", "/healthz")).status == 200  # it holds the one place
    health = await call(app.http_port, "GET", "/healthz")
    assert health.status == 200
    ready = await call(app.http_port, "GET", "/readyz")
    assert ready.status == 503 and ready.json()["reason"] == "full"
    other = await call(app.http_port, "GET", "/api/stats")
    assert other.status == 503 and other.json()["error"] == "server_full"
    held.close()


def test_json_log_lines_carry_disconnect_fields() -> None:
    """--log-format json: one object per line, with the disconnect's reason fields."""
    record = logging.LogRecord("chat.irc.server", logging.INFO, __file__, 1,
                               "%s closed: %s", ("bob", "Ping timeout"), None)
    for key, value in disconnect("irc", "192.0.2.1", "bob", "Ping timeout: 20 seconds",
                                 "ping_timeout").items():
        setattr(record, key, value)
    line = JsonFormatter().format(record)
    assert "\n" not in line
    data = orjson.loads(line)
    assert data["message"] == "bob closed: Ping timeout" and data["level"] == "INFO"
    assert {k: data[k] for k in ("event", "transport", "ip", "nick", "reason", "category")} \
        == {"event": "disconnect", "transport": "irc", "ip": "192.0.2.1", "nick": "bob",
            "reason": "Ping timeout: 20 seconds", "category": "ping_timeout"}


async def test_every_disconnect_log_has_reason_fields(make_server: MakeServer,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    """IRC and WebSocket disconnects are logged with reason and category fields."""
    app = await make_server(registration_timeout=0.1)
    with caplog.at_level(logging.DEBUG, logger="chat"):
        reader, writer = await asyncio.open_connection("127.0.0.1", app.irc_port)
        assert b"Registration timeout" in await asyncio.wait_for(reader.read(1000), 2)
        writer.close()
        irc = await Irc.connect(app.irc_port, "leaver")
        await irc.send("QUIT :bye")
        await irc.expect("ERROR")
    records = [r for r in caplog.records if getattr(r, "event", None) == "disconnect"]
    reasons = {(r.transport, r.category, r.reason) for r in records}  # type: ignore[attr-defined]
    assert ("irc", "registration_timeout", "Registration timeout") in reasons
    assert ("irc", "quit", "Quit: bye") in reasons


async def test_expired_and_killed_sessions_log_their_disconnect(
        make_server: MakeServer, caplog: pytest.LogCaptureFixture) -> None:
    """An expired HTTP session and a killed WebSocket each leave a disconnect record with
    their own category (a kill is "killed" on every transport, not "dropped")."""
    caplog.set_level(logging.INFO)
    app = await make_server(session_timeout=0.2, oper=("boss:" + hash_password("pw", n=2),))
    await new_session(app.http_port, "sleeper", "ops")
    victim = await new_session(app.http_port, "victim", "ops")
    ws = await open_ws(app.http_port, victim)
    irc = await Irc.connect(app.irc_port, "tina")
    await irc.send("OPER boss pw")
    await irc.expect(" 381 ")
    await irc.send("KILL victim :bye")
    for _ in range(100):
        records = {(r.nick, r.category) for r in caplog.records  # type: ignore[attr-defined]
                   if getattr(r, "event", None) == "disconnect"}
        if {("sleeper", "session_timeout"), ("victim", "killed")} <= records:
            break
        await asyncio.sleep(0.02)
    assert ("sleeper", "session_timeout") in records and ("victim", "killed") in records
    assert app.stats.ws.reaps["killed"] == 1
    await ws.close()
