"""Connection semantics of the HTTP adapter on raw loopback sockets.

Server-side connection counts come from ``/api/stats`` (read on a separate connection, so
each stats read adds one accepted connection of its own).
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import socket
import time

import pytest

from tests.conftest import MakeServer, eventually

from .util import Conn, build, cursor, http_stats, new_session


async def test_http11_keeps_the_connection_open(make_server: MakeServer) -> None:
    """HTTP/1.1 without Connection: close serves several requests on one connection."""
    app = await make_server()
    conn = await Conn.open(app.http_port)
    for _ in range(3):
        resp = await conn.request("GET", "/healthz")
        assert resp.status == 200 and "connection" not in resp.headers
    assert await conn.still_open()
    stats = await http_stats(app.http_port)
    assert stats["connections_accepted"] == 2  # the kept connection + this stats call
    assert stats["connections_open"] == 2
    assert stats["requests"] == 4
    conn.close()


async def test_connection_close_closes_after_the_response(make_server: MakeServer) -> None:
    """HTTP/1.1 with Connection: close gets its answer, then the server closes."""
    app = await make_server()
    conn = await Conn.open(app.http_port)
    resp = await conn.request("GET", "/healthz", headers={"Connection": "close"})
    assert resp.status == 200 and resp.headers["connection"] == "close"
    assert await conn.closed()
    stats = await http_stats(app.http_port)
    assert stats["connections_open"] == 1  # only the stats call's own connection


async def test_a_closed_connection_is_freed_without_the_cyclic_collector(
        make_server: MakeServer) -> None:
    """With the cyclic collector off, twenty ``Connection: close`` requests leave no
    connection object behind: a closed one breaks its cycles and refcounting frees it."""
    from chat.http.connection import HttpConnection

    app = await make_server()
    gc.collect()
    gc.disable()
    try:
        for _ in range(20):
            reader, writer = await asyncio.open_connection("127.0.0.1", app.http_port)
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            assert (await reader.read()).startswith(b"HTTP/1.1 200 ")
            writer.close()
        await eventually(lambda: not app.http.connections)
        left = [o for o in gc.get_objects() if isinstance(o, HttpConnection)]
        assert left == []
    finally:
        gc.enable()


async def test_http10_closes_by_default(make_server: MakeServer) -> None:
    """HTTP/1.0 without Connection: keep-alive is answered and closed."""
    app = await make_server()
    conn = await Conn.open(app.http_port)
    resp = await conn.request("GET", "/healthz", version="1.0")
    assert resp.status == 200 and resp.headers["connection"] == "close"
    assert await conn.closed()


async def test_http10_keep_alive_stays_open(make_server: MakeServer) -> None:
    """HTTP/1.0 with Connection: keep-alive is told keep-alive and can send another request."""
    app = await make_server()
    conn = await Conn.open(app.http_port)
    for _ in range(2):
        resp = await conn.request("GET", "/healthz", version="1.0",
                                  headers={"Connection": "keep-alive"})
        assert resp.status == 200 and resp.headers["connection"] == "keep-alive"
    assert await conn.still_open()
    assert (await http_stats(app.http_port))["connections_accepted"] == 2
    conn.close()


async def test_pipelined_requests_are_answered_in_order(make_server: MakeServer) -> None:
    """Requests sent in one write come back in order, each with its own status."""
    app = await make_server()
    conn = await Conn.open(app.http_port)
    await conn.send(build("GET", "/healthz") + build("GET", "/nope")
                    + build("POST", "/api/sessions", body={"nick": "pipe"})
                    + build("DELETE", "/healthz"))
    statuses = [(await conn.response()).status for _ in range(4)]
    assert statuses == [200, 404, 201, 405]
    conn.close()


async def test_pipelined_request_waits_behind_a_long_poll(make_server: MakeServer) -> None:
    """A request pipelined behind a held long poll is answered after it, not before."""
    app = await make_server()
    token = await new_session(app.http_port, "waiter", "pipes")
    since = await cursor(app.http_port, token, "pipes")
    conn = await Conn.open(app.http_port)
    poll = build("GET", f"/api/rooms/pipes/messages?since={since}&wait=0.3", token=token)
    post = build("POST", "/api/rooms/pipes/messages", token=token, body={"text": "after"})
    await conn.send(poll + post)
    first, second = await conn.response(), await conn.response()
    assert first.status == 200 and first.json()["events"] == []  # expired, not woken by post
    assert second.status == 201
    conn.close()


async def test_requests_after_connection_close_are_ignored(make_server: MakeServer) -> None:
    """Nothing pipelined after a Connection: close request is answered."""
    app = await make_server()
    conn = await Conn.open(app.http_port)
    await conn.send(build("GET", "/healthz", headers={"Connection": "close"})
                    + build("GET", "/healthz"))
    assert await conn.closed()
    assert conn.raw.count(b"HTTP/1.1 200") == 1


async def test_head_sends_headers_without_body(make_server: MakeServer) -> None:
    """HEAD gets GET's status and Content-Length but no body; the connection stays usable."""
    app = await make_server()
    conn = await Conn.open(app.http_port)
    await conn.send(build("HEAD", "/healthz"))
    status, headers, rest = await conn.head_response()
    assert status == 200 and int(headers["content-length"]) > 0 and rest == b""
    resp = await conn.request("GET", "/healthz")
    assert resp.status == 200 and len(resp.body) == int(headers["content-length"])
    conn.close()


async def test_keepalive_timeout_closes_an_idle_connection(make_server: MakeServer) -> None:
    """An idle keep-alive connection is closed after keepalive_timeout."""
    app = await make_server(keepalive_timeout=0.2)
    conn = await Conn.open(app.http_port)
    assert (await conn.request("GET", "/healthz")).status == 200
    assert await conn.closed()
    assert (await http_stats(app.http_port))["timeouts"]["keepalive"] == 1


async def test_keepalive_timer_restarts_with_each_request(make_server: MakeServer) -> None:
    """Requests spaced below the keep-alive timeout keep one connection alive past it."""
    app = await make_server(keepalive_timeout=0.8)
    conn = await Conn.open(app.http_port)
    for _ in range(9):  # 9 x 0.2 s: over twice the timeout, each gap 0.6 s short of it
        assert (await conn.request("GET", "/healthz")).status == 200
        await asyncio.sleep(0.2)
    assert (await conn.request("GET", "/healthz")).status == 200
    assert "keepalive" not in (await http_stats(app.http_port))["timeouts"]
    conn.close()


async def test_keepalive_zero_disables_persistence(make_server: MakeServer) -> None:
    """keepalive_timeout=0 answers every request with Connection: close."""
    app = await make_server(keepalive_timeout=0)
    conn = await Conn.open(app.http_port)
    resp = await conn.request("GET", "/healthz")
    assert resp.headers["connection"] == "close"
    assert await conn.closed()


async def test_slowloris_head_gets_408_and_close(make_server: MakeServer) -> None:
    """A head trickled in slower than header_timeout is cut off with 408, however active."""
    app = await make_server(header_timeout=0.3)
    conn = await Conn.open(app.http_port)
    await conn.send(b"GET /healthz HTTP/1.1\r\n")
    # A header line every 0.05 s: activity that never ends the head.
    await conn.trickle([b"X-Slow-%d: y\r\n" % i for i in range(40)], 0.05)
    resp = await conn.response()
    assert resp.status == 408 and resp.json()["error"] == "request_timeout"
    assert await conn.closed()
    stats = await http_stats(app.http_port)
    assert stats["timeouts"]["header"] == 1


async def test_silent_connection_times_out(make_server: MakeServer) -> None:
    """A connection that never sends a byte is closed after header_timeout."""
    app = await make_server(header_timeout=0.2)
    conn = await Conn.open(app.http_port)
    assert await conn.closed()


async def test_slow_body_counts_against_header_timeout(make_server: MakeServer) -> None:
    """A body that never completes is cut off by the same deadline as the head."""
    app = await make_server(header_timeout=0.3)
    conn = await Conn.open(app.http_port)
    await conn.send(b"POST /api/sessions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                    b"Content-Length: 100\r\n\r\n{")
    resp = await conn.response()
    assert resp.status == 408
    assert await conn.closed()


async def test_oversized_head_gets_431(make_server: MakeServer) -> None:
    """A head over max_header gets 431 and the connection closes."""
    app = await make_server(max_header=1024)
    conn = await Conn.open(app.http_port)
    resp = await conn.request("GET", "/healthz", headers={"X-Big": "a" * 2000})
    assert resp.status == 431 and resp.json()["error"] == "headers_too_large"
    assert await conn.closed()


async def test_endless_header_line_gets_431(make_server: MakeServer) -> None:
    """A header line that never ends is refused once it passes max_header (bounded memory)."""
    app = await make_server(max_header=1024)
    conn = await Conn.open(app.http_port)
    await conn.send(b"GET /healthz HTTP/1.1\r\nX-Endless: ")
    await conn.trickle([b"b" * 512] * 10, 0.02)
    resp = await conn.response()
    assert resp.status == 431
    assert await conn.closed()


async def test_oversized_body_gets_413(make_server: MakeServer) -> None:
    """A Content-Length over max_body gets 413 before the body is read, then close."""
    app = await make_server(max_body=1024)
    conn = await Conn.open(app.http_port)
    await conn.send(b"POST /api/sessions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                    b"Content-Length: 5000\r\n\r\n")
    resp = await conn.response()
    assert resp.status == 413 and resp.json()["error"] == "body_too_large"
    assert await conn.closed()


async def test_oversized_chunked_body_gets_413(make_server: MakeServer) -> None:
    """A chunked body growing past max_body gets 413."""
    app = await make_server(max_body=1024)
    conn = await Conn.open(app.http_port)
    chunk = b"400\r\n" + b"x" * 1024 + b"\r\n"
    await conn.send(b"POST /api/sessions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                    b"Transfer-Encoding: chunked\r\n\r\n"
                    + chunk * 2)
    resp = await conn.response()
    assert resp.status == 413
    assert await conn.closed()


async def test_chunked_body_within_limit_is_accepted(make_server: MakeServer) -> None:
    """A small chunked JSON body is decoded and used."""
    app = await make_server()
    conn = await Conn.open(app.http_port)
    body = b'{"nick": "chunky"}'
    await conn.send(b"POST /api/sessions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                    b"Transfer-Encoding: chunked\r\n\r\n"
                    + b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))
    resp = await conn.response()
    assert resp.status == 201 and resp.json()["nick"] == "chunky"
    conn.close()


async def test_expect_100_continue(make_server: MakeServer) -> None:
    """Expect: 100-continue gets an interim 100 before the body is sent."""
    app = await make_server()
    conn = await Conn.open(app.http_port)
    body = b'{"nick": "patient"}'
    await conn.send(b"POST /api/sessions HTTP/1.1\r\nHost: 127.0.0.1\r\nExpect: 100-continue\r\n"
                    b"Content-Length: %d\r\n\r\n" % len(body))
    interim = await asyncio.wait_for(conn.reader.readuntil(b"\r\n\r\n"), 2)
    assert interim.startswith(b"HTTP/1.1 100 Continue")
    await conn.send(body)
    assert (await conn.response()).status == 201
    conn.close()


async def test_garbage_gets_400_and_close(make_server: MakeServer) -> None:
    """Unparsable input after a good pipelined request: 200, then 400, then close."""
    app = await make_server()
    other = await Conn.open(app.http_port)
    conn = await Conn.open(app.http_port)
    await conn.send(build("GET", "/healthz") + b"\x00\x01 NOT HTTP\r\n\r\n")
    assert (await conn.response()).status == 200
    bad = await conn.response()
    assert bad.status == 400 and bad.json()["error"] == "bad_request"
    assert await conn.closed()
    assert (await other.request("GET", "/healthz")).status == 200  # others undisturbed
    other.close()


async def test_upgrade_request_is_answered_then_closed(make_server: MakeServer) -> None:
    """A request asking to upgrade protocols gets a normal answer and the connection closes."""
    app = await make_server()
    conn = await Conn.open(app.http_port)
    resp = await conn.request("GET", "/healthz",
                              headers={"Connection": "upgrade", "Upgrade": "websocket"})
    assert resp.status == 200
    assert await conn.closed()


async def test_connections_over_max_clients_get_503(make_server: MakeServer) -> None:
    """Past max_clients a new connection's request (unless a probe) gets 503 with
    Retry-After and the connection is closed."""
    app = await make_server(max_clients=2)
    first, second = await Conn.open(app.http_port), await Conn.open(app.http_port)
    for conn in (first, second):
        assert (await conn.request("GET", "/healthz")).status == 200
    third = await Conn.open(app.http_port)
    resp = await third.request("GET", "/api/rooms")
    assert resp.status == 503 and resp.headers["retry-after"] == "1"
    assert await third.closed()
    first.close()
    # Only once the server has seen the close is a slot free for the stats call's own
    # connection (over --max-clients it would be a probe, and /api/stats refused).
    await eventually(lambda: app.stats.http.connections_open == 1, "the first connection gone")
    stats = await http_stats(app.http_port)  # a slot is free again
    assert stats["connections_refused"] == 1
    second.close()


async def test_shutdown_answers_a_held_long_poll(make_server: MakeServer) -> None:
    """Shutdown answers a held long poll (empty, Connection: close) and closes idle ones."""
    app = await make_server()
    token = await new_session(app.http_port, "stopper", "halt")
    idle = await Conn.open(app.http_port)
    assert (await idle.request("GET", "/healthz")).status == 200
    since = await cursor(app.http_port, token, "halt")
    conn = await Conn.open(app.http_port)
    await conn.send(build("GET", f"/api/rooms/halt/messages?since={since}&wait=10",
                          token=token))
    await eventually(lambda: app.stats.http.long_polls_open == 1, "the long poll held")
    await app.shutdown()
    resp = await conn.response()
    assert resp.status == 200 and resp.json()["events"] == []
    assert resp.headers["connection"] == "close"
    assert await conn.closed() and await idle.closed()


async def test_pipelining_client_that_never_reads_is_dropped(make_server: MakeServer) -> None:
    """Answers stop at the write high-water mark, reading pauses, the stall is reaped."""
    app = await make_server(keepalive_timeout=0.3, http_rate=0, history=1000)
    token = await new_session(app.http_port, "hoarder", "big")
    user = app.engine.find_user("hoarder")
    assert user is not None
    for _ in range(1000):
        app.engine.say(user, "#big", "q" * 400, time.time())
    conn = await Conn.open(app.http_port, rcvbuf=4096)
    poll = build("GET", "/api/rooms/big/messages?since=0&limit=1000", token=token)
    await conn.send(poll * 100)  # ~45 MB of answers that are never read
    for _ in range(100):
        if app.stats.http.reaps["write_stall"]:
            break
        await asyncio.sleep(0.05)
    assert app.stats.http.reaps["write_stall"] == 1
    assert app.stats.http.requests < 100  # most of the pipeline was never answered


async def test_slow_sse_reader_is_cut_off(make_server: MakeServer) -> None:
    """An SSE client that stops reading is disconnected once sendq bytes are buffered."""
    app = await make_server(sendq=4096, http_rate=0)
    token = await new_session(app.http_port, "sloth", "flood")
    speaker = await new_session(app.http_port, "speaker", "flood")
    conn = await Conn.open(app.http_port, rcvbuf=4096)
    conn.writer.transport.get_extra_info("socket").setsockopt(
        socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    await conn.send(build("GET", "/api/rooms/flood/events", token=token))
    # The events below are said without yielding: the stream must be open before them.
    await eventually(lambda: app.stats.http.sse_streams_open == 1, "the SSE stream open")
    user = app.engine.find_user("speaker")
    assert user is not None and speaker
    for _ in range(20000):  # ~8 MB of events, far beyond the socket buffers
        app.engine.say(user, "#flood", "z" * 380, time.time())
        if app.stats.http.reaps["sse_slow"]:
            break
    else:
        raise AssertionError("slow SSE reader was never cut off")
    assert app.stats.http.reaps["sse_slow"] == 1
    assert app.stats.http.sse_streams_open == 0


async def test_shutdown_ends_an_sse_stream(make_server: MakeServer) -> None:
    """Shutdown finishes an open SSE stream with its last chunk and closes the connection."""
    app = await make_server()
    token = await new_session(app.http_port, "streamer", "halt")
    conn = await Conn.open(app.http_port)
    await conn.send(build("GET", "/api/rooms/halt/events", token=token))
    await conn.stream_until(b"retry:")
    await app.shutdown()
    ended = await conn.response()
    assert ended.status == 200 and ended.complete
    assert await conn.closed()


@pytest.mark.parametrize("share", [0.5, 0.0])
async def test_sse_output_is_paced_like_irc(make_server: MakeServer, share: float) -> None:
    """SSE streams are coalesced by the same pacer: when every flush costs a lot of CPU (a
    fake CPU clock) ten events 10 ms apart reach the stream in at most two flushes; with
    --flush-share 0 the 1 ms window stays and they go out (nearly) one flush each."""
    app = await make_server(flush_interval=0.001, flush_share=share, flush_max=0.5)
    ticks = itertools.count()
    app.http.streams.cpu_clock = lambda: float(next(ticks))  # every flush "costs" 1 s
    token = await new_session(app.http_port, "reader", "paced")
    await new_session(app.http_port, "speaker", "paced")
    conn = await Conn.open(app.http_port)
    await conn.send(build("GET", "/api/rooms/paced/events", token=token))
    await conn.stream_until(b"retry:")
    await asyncio.sleep(0.6)  # a quiet spell longer than any window
    user = app.engine.find_user("speaker")
    assert user is not None
    flushes = app.stats.http.flushes
    for i in range(10):
        app.engine.say(user, "#paced", f"line {i}", time.time())
        await asyncio.sleep(0.01)
    await conn.stream_until(b"line 9")
    flushes = app.stats.http.flushes - flushes
    if share:
        assert app.http.streams.pacer.window == 0.5 and 1 <= flushes <= 2
    else:
        assert app.http.streams.pacer.window == 0.001 and flushes >= 5
