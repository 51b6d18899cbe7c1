"""HTTP wire pieces for the polling API (pure: no sockets, no clock).

* :class:`Request` - the small per-request object the connection fills from httptools'
  callbacks and hands to :mod:`chat.http.api`;
* response encoding with pre-encoded status lines and header blocks, so that the common
  answers (an empty poll above all) cost one ``bytes %`` formatting;
* poll bodies and SSE blocks built from each event's one JSON encoding
  (:meth:`Event.to_json`), the SSE block cached per publish, so a room event is serialized
  once however many pollers and streams fetch it;
* query-string and parameter parsing with a fast path for plain ``a=1&b=2``.
"""

from __future__ import annotations

import re
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl

import orjson

from ..core.events import Cache, Event
from .sessions import Meter

JSON_TYPE = b"application/json"
SSE_TYPE = b"text/event-stream"

# The Connection header for each outcome: HTTP/1.1 is persistent by default, HTTP/1.0
# must be told that the connection stays open, and every closing response says so.
CONN_KEEP = b""
CONN_KEEP_10 = b"connection: keep-alive\r\n"
CONN_CLOSE = b"connection: close\r\n"

CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"

_DECIMAL = re.compile(r"[0-9]{1,9}(?:\.[0-9]{1,9})?")  # seconds as clients write them
_SSE = "sse"  # this adapter's key in a publish's encoding cache


class Request:
    """One request as parsed so far: only what the API reads is kept (no header dict)."""

    __slots__ = ("method", "url", "authorization", "last_event_id", "expect_continue",
                 "content_length", "has_body", "body", "keep_alive", "http10", "error",
                 "origin", "preflight", "upgrade", "ws_headers", "meter", "if_none_match",
                 "host", "hosts", "ip")

    def __init__(self) -> None:
        self.method = ""
        self.url = b""
        self.authorization: bytes | None = None
        self.last_event_id: bytes | None = None
        self.expect_continue = False
        self.content_length = -1         # -1: no Content-Length header
        self.has_body = False            # Content-Length or Transfer-Encoding was sent
        self.body = b""
        self.keep_alive = True
        self.http10 = False
        self.error: tuple[int, str, str] | None = None  # (status, code, message) to answer
        self.origin: bytes | None = None     # Origin (CORS, WebSocket)
        self.preflight: bytes | None = None  # Access-Control-Request-Method (CORS preflight)
        self.upgrade: bytes | None = None    # Upgrade (a WebSocket handshake says websocket)
        self.ws_headers: list[tuple[str, str]] | None = None  # what a handshake needs
        self.meter: Meter | None = None      # the session this request is charged to
        self.if_none_match: bytes | None = None  # a cached page file's ETag
        self.host: bytes | None = None       # the Host header (checked by --allowed-host)
        self.hosts = 0                       # how many Host headers came (one is right)
        self.ip = ""                         # the client's address (per-address budgets)

    def keep_header(self, name: bytes, value: bytes) -> None:
        """Keep a header a WebSocket handshake needs (Connection, Sec-WebSocket-*)."""
        headers = self.ws_headers
        pair = (name.decode("latin-1"), value.decode("latin-1"))
        if headers is None:
            self.ws_headers = [pair]
        else:
            headers.append(pair)

    @property
    def head(self) -> bool:
        return self.method == "HEAD"

    def __repr__(self) -> str:
        return f"Request({self.method} {self.url!r})"


# --- responses ---------------------------------------------------------------------------

def _reason(status: int) -> bytes:
    try:
        return HTTPStatus(status).phrase.encode("ascii")
    except ValueError:
        return b"Unknown"


_PREFIXES: dict[tuple[int, bytes, bytes], bytes] = {}


def _prefix(status: int, content_type: bytes, conn: bytes) -> bytes:
    """Status line + fixed headers, built once per (status, type, connection) and reused."""
    key = (status, content_type, conn)
    prefix = _PREFIXES.get(key)
    if prefix is None:
        prefix = b"HTTP/1.1 %d %s\r\nserver: chatlab\r\n" % (status, _reason(status))
        if content_type:
            prefix += b"content-type: %s\r\n" % content_type
        prefix = _PREFIXES[key] = prefix + conn
    return prefix


def encode_response(status: int, body: bytes, conn: bytes, date: bytes, *,
                    extra: bytes = b"", content_type: bytes = JSON_TYPE,
                    head: bool = False) -> bytes:
    """A complete response. ``head`` keeps Content-Length but drops the body (HEAD)."""
    if status == 204 or status == 304:
        return b"%s%s%s\r\n" % (_prefix(status, b"", conn), date, extra)
    return b"%s%s%scontent-length: %d\r\n\r\n%s" % (
        _prefix(status, content_type, conn), date, extra, len(body), b"" if head else body)


def encode_stream_head(conn: bytes, date: bytes, chunked: bool) -> bytes:
    """The head of an SSE response: chunked on HTTP/1.1, close-delimited on HTTP/1.0."""
    return b"%s%scache-control: no-cache\r\nx-accel-buffering: no\r\n%s\r\n" % (
        _prefix(200, SSE_TYPE, conn), date,
        b"transfer-encoding: chunked\r\n" if chunked else b"")


def encode_chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


LAST_CHUNK = b"0\r\n\r\n"


def error_body(code: str, message: str) -> bytes:
    return orjson.dumps({"error": code, "message": message})


def json_body(value: Any) -> bytes:
    return orjson.dumps(value)


# --- events ------------------------------------------------------------------------------

def poll_body(events: list[Event], next_id: int, gap: bool, epoch: int) -> bytes:
    """The body of a poll answer: the cached event encodings joined, plus cursor and gap."""
    return b'{"events":[%s],"next":%d,"gap":%s,"epoch":%d}' % (
        b",".join([e.to_json() for e in events]), next_id, b"true" if gap else b"false",
        epoch)


def sse_block(event: Event, cache: Cache | None = None) -> bytes:
    """One ``id:``/``event:``/``data:`` block; with ``cache``, built once per publish."""
    if cache is not None:
        data = cache.get(_SSE)
        if data is None:
            data = cache[_SSE] = sse_block(event)
        return data
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (event.id, event.kind.encode("ascii"),
                                                   event.to_json())


def sse_gap(since: int, next_id: int, epoch: int) -> bytes:
    """Tells a stream that events after ``since`` were lost from the bounded history (or
    belong to another run: ``epoch``, as poll answers carry it); ``next`` is where the log
    goes on."""
    return b'event: gap\ndata: {"since":%d,"next":%d,"epoch":%d}\n\n' % (since, next_id,
                                                                          epoch)


SSE_HEARTBEAT = b": heartbeat\n\n"
SSE_RETRY = b"retry: 1000\n\n"


# --- query strings and parameters -----------------------------------------------------------

def parse_query(query: str) -> dict[str, str]:
    """``a=1&b=2`` -> dict (the last of repeated names wins); percent-decoding when needed."""
    if "%" in query or "+" in query:
        return dict(parse_qsl(query, keep_blank_values=True, errors="strict"))
    out: dict[str, str] = {}
    for pair in query.split("&"):
        if pair:
            name, _, value = pair.partition("=")
            out[name] = value
    return out


class BadParam(ValueError):
    """A query parameter that is not a number in range; the message names it."""


def strict_int(value: str | bytes) -> int | None:
    """``value`` as a non-negative integer written in ASCII digits only, else None.

    Python's ``int`` also takes ``1_0``, ``+1``, `` 1 `` and non-ASCII digits; a cursor or
    a count on the wire is plain digits (at most 18 of them), as every client writes it.
    """
    if isinstance(value, bytes):
        if not (0 < len(value) <= 18 and value.isdigit()):  # bytes.isdigit is ASCII-only
            return None
        return int(value)
    if not (0 < len(value) <= 18 and value.isascii() and value.isdigit()):
        return None
    return int(value)


def int_param(query: dict[str, str], name: str, default: int, minimum: int = 0) -> int:
    number = opt_int_param(query, name, minimum)
    return default if number is None else number


def opt_int_param(query: dict[str, str], name: str, minimum: int = 0) -> int | None:
    """The integer ``name`` (at least ``minimum``), or None if absent."""
    value = query.get(name)
    if value is None or value == "":
        return None
    number = strict_int(value)
    if number is None:
        if value.isascii() and value.isdigit():  # digits, but past what strict_int takes
            raise BadParam(f"{name} is too large: {value[:40]!r}")
        raise BadParam(f"{name} must be an integer, not {value[:40]!r}")
    if number < minimum:
        raise BadParam(f"{name} must be at least {minimum}")
    return number


def float_param(query: dict[str, str], name: str, default: float) -> float:
    value = query.get(name)
    if value is None or value == "":
        return default
    try:
        if not _DECIMAL.fullmatch(value):
            raise ValueError(value)
        number = float(value)
    except ValueError:
        raise BadParam(f"{name} must be a number of seconds, not {value[:40]!r}") from None
    if not number >= 0.0 or number == float("inf"):  # also rejects NaN
        raise BadParam(f"{name} must be a non-negative number of seconds")
    return number
