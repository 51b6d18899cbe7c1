"""Bounded fuzzing of both parsers over real sockets (issue 13, "kept as tests").

Hypothesis generates IRC lines and HTTP requests and sends them to a server running in a
thread of its own (its own event loop), over loopback.  Each test fails on any traceback or
error the server logs and on a server that stops answering (every example ends by checking
that a fresh connection is still served).  CI runs a few thousand lines and requests;
``CHAT_FUZZ_EXAMPLES`` sets the number of examples per test for a longer run.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chat.app import ChatServer
from chat.config import Config
from chat.runtime import new_event_loop

SCALE = os.environ.get("CHAT_FUZZ_EXAMPLES")  # examples per test; else the CI sizes below
IRC_EXAMPLES = int(SCALE or 250)     # about 10 lines each: a few thousand lines
HTTP_EXAMPLES = int(SCALE or 700)    # about 3.5 requests each: a few thousand requests
HEALTH = [HealthCheck.too_slow, HealthCheck.data_too_large]


class Trouble(logging.Handler):
    """Keeps every record at ERROR or above, or with a traceback."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR or record.exc_info:
            self.records.append(record)


class ThreadedServer:
    """A ChatServer on its own loop in a thread, so that blocking test code can hit it."""

    def __init__(self, **options: Any) -> None:
        config = Config(host="127.0.0.1", irc_port=0, http_port=0, shutdown_timeout=1.0,
                        **options)
        self.loop = new_event_loop()
        self.trouble = Trouble()
        self.loop.set_exception_handler(self._loop_error)
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(self.loop)
            self.app = ChatServer(config)
            self.loop.run_until_complete(self.app.start())
            ready.set()
            self.loop.run_forever()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        assert ready.wait(10)

    def _loop_error(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        self.trouble.records.append(logging.LogRecord(
            "loop", logging.ERROR, "", 0, str(context.get("message")), None, None))

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.app.shutdown(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()

    def problems(self) -> list[str]:
        return [f"{r.name}: {r.getMessage()}" for r in self.trouble.records]


@pytest.fixture(scope="module")
def fuzz_server() -> Iterator[ThreadedServer]:
    server = ThreadedServer(flood_burst=0, http_rate=0, session_rate=0, max_clients_per_ip=0,
                            registration_timeout=5, header_timeout=2, close_timeout=0.5)
    trouble = server.trouble
    for name in ("chat", "asyncio"):
        logging.getLogger(name).addHandler(trouble)
    try:
        yield server
    finally:
        for name in ("chat", "asyncio"):
            logging.getLogger(name).removeHandler(trouble)
        server.stop()
    assert server.problems() == []


def _drain(sock: socket.socket, until: bytes = b"", limit: float = 1.0) -> bytes:
    """Read until ``until`` shows, EOF, or ``limit`` seconds of silence."""
    sock.settimeout(limit)
    got = b""
    try:
        while not until or until not in got:
            data = sock.recv(65536)
            if not data:
                break
            got += data
    except (TimeoutError, ConnectionResetError):
        pass
    return got


def _still_serving(server: ThreadedServer) -> None:
    """Both ports answer a fresh client, and nothing went wrong in the server's log."""
    with socket.create_connection(("127.0.0.1", server.app.http_port), timeout=3) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        assert _drain(sock, b"}", 3).startswith(b"HTTP/1.1 200 ")
    with socket.create_connection(("127.0.0.1", server.app.irc_port), timeout=3) as sock:
        sock.sendall(b"PING :alive\r\n")
        assert b"alive" in _drain(sock, b"alive", 3)
    assert server.problems() == []


def test_the_harness_sees_a_traceback(fuzz_server: ThreadedServer) -> None:
    """A traceback logged inside the server is what the fuzz tests would fail on."""
    def fail() -> None:
        try:
            raise RuntimeError("planted")
        except RuntimeError:
            logging.getLogger("chat.test").exception("planted failure")
    done = threading.Event()
    fuzz_server.loop.call_soon_threadsafe(lambda: (fail(), done.set()))
    assert done.wait(3)
    assert fuzz_server.problems() == ["chat.test: planted failure"]
    fuzz_server.trouble.records.clear()


# --- IRC lines -----------------------------------------------------------------------------
COMMANDS = ["PRIVMSG", "NOTICE", "JOIN", "PART", "TOPIC", "NAMES", "MODE", "WHO", "WHOIS",
            "WHOWAS", "NICK", "USER", "PASS", "CAP", "PING", "PONG", "AWAY", "LIST", "ISON",
            "USERHOST", "LUSERS", "MOTD", "VERSION", "TIME", "TAGMSG", "CHATHISTORY", "KICK",
            "INVITE", "QUIT", "OPER", "KILL"]
WORD = st.one_of(st.sampled_from(["#fuzz", "#a,#b", "*", "0", ":", "fuzzer", "LS", "REQ",
                                  "END", "302", "LATEST", "AFTER", "msgid=1", "+o", "-b",
                                  "timestamp=2026-01-01T00:00:00.000Z", "message-tags"]),
                 st.text(st.characters(blacklist_characters="\r\n\0 "), max_size=30))
LINE = st.one_of(
    st.builds(lambda tags, cmd, params, trailing: (tags + cmd + "".join(" " + p for p in params)
                                                   + (" :" + trailing if trailing else "")),
              st.sampled_from(["", "@msgid=1 ", "@+x=y;z ", "@a=\\s\\:\\ ", ":src "]),
              st.one_of(st.sampled_from(COMMANDS), st.text(max_size=10)),
              st.lists(WORD, max_size=6), st.text(max_size=600)),
    st.binary(max_size=700).map(lambda b: b.decode("latin-1")))


@settings(max_examples=IRC_EXAMPLES, deadline=None, suppress_health_check=HEALTH)
@given(lines=st.lists(LINE, min_size=1, max_size=20), register=st.booleans())
def test_fuzzed_irc_lines(fuzz_server: ThreadedServer, lines: list[str],
                          register: bool) -> None:
    """Any sequence of IRC lines leaves the server answering, with nothing in its log."""
    with socket.create_connection(("127.0.0.1", fuzz_server.app.irc_port), timeout=3) as sock:
        head = "NICK fz\r\nUSER fz 0 * :fz\r\nJOIN #fuzz\r\n" if register else ""
        data = head.encode() + b"".join(
            line.replace("\n", " ").encode("utf-8", "surrogatepass") + b"\r\n"
            for line in lines)
        try:
            sock.sendall(data + b"PING :probe\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        _drain(sock, b"probe", 1.0)
    _still_serving(fuzz_server)


# --- HTTP requests -------------------------------------------------------------------------
PATHS = ["/", "/healthz", "/readyz", "/metrics", "/api/stats", "/api/sessions",
         "/api/sessions/me", "/api/rooms", "/api/rooms/fuzz/join", "/api/rooms/fuzz/messages",
         "/api/rooms/fuzz/events", "/api/rooms/fuzz/members", "/api/me/messages", "/api/ws",
         "/api/openapi.json", "/static/app.js", "/api/users/x/messages", "/%ff", "/?a=%",
         "/api/rooms/fuzz/messages?since=1_0&wait=nan&limit=-1", "*"]
HEADER = st.tuples(
    st.one_of(st.sampled_from(["Host", "Content-Length", "Transfer-Encoding", "Connection",
                               "Authorization", "Last-Event-ID", "Origin", "Upgrade",
                               "Expect", "Sec-WebSocket-Key", "Sec-WebSocket-Version",
                               "Access-Control-Request-Method", "If-None-Match"]),
              st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1,
                      max_size=20)),
    st.one_of(st.sampled_from(["127.0.0.1", "0", "5", "-1", "chunked", "close",
                               "keep-alive", "Bearer x", "websocket", "100-continue", "13",
                               "1_0", "http://evil.example", "GET", "99999999999999999999"]),
              st.text(max_size=40)))
REQUEST = st.builds(
    lambda method, path, version, headers, body: (
        f"{method} {path} {version}\r\n"
        + "".join(f"{name}: {value}\r\n" for name, value in headers) + "\r\n").encode(
            "utf-8", "surrogatepass") + body,
    st.one_of(st.sampled_from(["GET", "POST", "HEAD", "DELETE", "OPTIONS", "PUT", "PRI"]),
              st.text(max_size=8)),
    st.one_of(st.sampled_from(PATHS), st.text(max_size=60)),
    st.sampled_from(["HTTP/1.1", "HTTP/1.0", "HTTP/2.0", "HTTP/0.9", "HTTP/1.x", ""]),
    st.lists(HEADER, max_size=8),
    st.one_of(st.just(b""), st.binary(max_size=300),
              st.sampled_from([b'{"nick":"fz"}', b"5\r\nhello\r\n0\r\nX: y\r\n\r\n",
                               b'{"text":"\\u0001x\\u001b"}', b"0\r\n\r\n"])))


@settings(max_examples=HTTP_EXAMPLES, deadline=None, suppress_health_check=HEALTH)
@given(requests=st.lists(REQUEST, min_size=1, max_size=6), raw=st.binary(max_size=200))
def test_fuzzed_http_requests(fuzz_server: ThreadedServer, requests: list[bytes],
                              raw: bytes) -> None:
    """Any pipeline of (mostly malformed) HTTP requests gets answers, never a 5xx other
    than 503/505, and leaves the server answering with nothing in its log."""
    with socket.create_connection(("127.0.0.1", fuzz_server.app.http_port), timeout=3) as sock:
        try:
            sock.sendall(b"".join(requests) + raw)
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = _drain(sock, limit=0.3)
    for status in (b"HTTP/1.1 500 ", b"HTTP/1.1 501 ", b"HTTP/1.1 502 "):
        assert status not in answer
    _still_serving(fuzz_server)
