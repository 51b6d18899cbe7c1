"""One client-side HTTP/1.1 connection: an ``asyncio.Protocol`` around httptools' parser.

Requests go one at a time (no pipelining): :meth:`HttpConnection.request` writes one request
and returns its :class:`Response`; :meth:`HttpConnection.stream` returns the status of a
response whose body is handed chunk by chunk to a callback (SSE).  Every byte read and
written, every request and every TCP connect is counted in the shared
:class:`~chat.client.model.Counters`, headers included, because those numbers are what the
compare lab shows.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from typing import Any, NamedTuple, cast

import httptools
import orjson

from .model import Counters


class Response(NamedTuple):
    status: int
    headers: dict[str, str]  # lower-cased names
    body: bytes

    def json(self) -> Any:
        """The body as JSON ({} if empty or not JSON)."""
        if not self.body:
            return {}
        try:
            return orjson.loads(self.body)
        except orjson.JSONDecodeError:
            return {}

    def error_text(self) -> str:
        """The server's one-line error message (``{"error", "message"}`` bodies)."""
        data = self.json()
        if isinstance(data, dict) and (data.get("message") or data.get("error")):
            return str(data.get("message") or data.get("error"))
        return f"HTTP {self.status}"


class HttpConnection(asyncio.Protocol):
    """A keep-alive (or, with ``close=True`` requests, single-use) client connection."""

    __slots__ = ("counters", "host_header", "parser", "transport", "closed", "responses",
                 "last_rx", "keep_alive", "_waiter", "_status", "_headers", "_body",
                 "_on_chunk", "_done", "_rx_current")

    def __init__(self, counters: Counters, host_header: str) -> None:
        self.counters = counters
        self.host_header = host_header
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.responses = 0          # responses completed on this connection
        self.last_rx = 0.0          # loop time of the last byte read
        self.keep_alive = True
        self._waiter: asyncio.Future[Response] | None = None
        self._status = 0
        self._headers: dict[str, str] = {}
        self._body: list[bytes] = []
        self._on_chunk: Callable[[bytes], None] | None = None
        self._done: asyncio.Future[None] | None = None  # a stream's end
        self._rx_current = False    # any byte of the current response read yet

    # --- opening --------------------------------------------------------------------------
    @classmethod
    async def open(cls, host: str, port: int, counters: Counters, within: float = 10.0,
                   tls: ssl.SSLContext | None = None) -> HttpConnection:
        """Connect (one TCP handshake, counted; ``tls``: HTTPS); raises OSError/TimeoutError
        on failure."""
        loop = asyncio.get_running_loop()
        host_header = f"{host}:{port}"
        async with asyncio.timeout(within):
            _, proto = await loop.create_connection(lambda: cls(counters, host_header),
                                                    host, port, ssl=tls,
                                                    server_hostname=host if tls else None)
        counters.connections_opened += 1
        return proto

    @property
    def usable(self) -> bool:
        """True if another request may be sent on this connection."""
        return not self.closed and self.keep_alive and self._waiter is None

    # --- requests -------------------------------------------------------------------------
    def _write_request(self, method: str, target: str, token: str | None, body: bytes | None,
                       close: bool, extra: str = "") -> None:
        if self.closed or self.transport is None:
            raise ConnectionResetError("connection closed")
        head = [f"{method} {target} HTTP/1.1\r\nHost: {self.host_header}\r\n"]
        if token:
            head.append(f"Authorization: Bearer {token}\r\n")
        if body is not None:
            head.append(f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n")
        if close:
            head.append("Connection: close\r\n")
        head.append(extra)
        head.append("\r\n")
        data = "".join(head).encode("latin-1")
        if body:
            data += body
        self._status, self._headers, self._body = 0, {}, []
        self._rx_current = False
        self.transport.write(data)
        self.counters.bytes_out += len(data)
        self.counters.requests += 1

    async def request(self, method: str, target: str, *, token: str | None = None,
                      body: bytes | None = None, close: bool = False,
                      within: float = 30.0) -> Response:
        """Send one request and wait for its whole response.

        Raises ConnectionError (the connection is then closed) if the server closes it or
        nothing complete arrives within ``within`` seconds; ``answered`` tells a caller whether any
        byte of a response came back (a request never answered may safely be retried).
        """
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[Response] = loop.create_future()
        self._waiter = waiter
        try:
            self._write_request(method, target, token, body, close)
            async with asyncio.timeout(within):
                return await waiter
        except TimeoutError:
            self.abort()
            raise ConnectionError(f"no answer to {method} within {within:g} s") from None
        finally:
            self._waiter = None

    async def stream(self, target: str, on_chunk: Callable[[bytes], None], *,
                     token: str | None = None, extra_headers: str = "",
                     within: float = 10.0) -> Response:
        """GET ``target`` and return once the response head is in.

        For a 200 the body is then passed to ``on_chunk`` as it arrives (the returned
        response has an empty body; await :meth:`finished` for the end).  Any other status
        is returned whole.
        """
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[Response] = loop.create_future()
        self._waiter = waiter
        self._done = loop.create_future()
        self._on_chunk = on_chunk
        try:
            self._write_request("GET", target, token, None, False, extra_headers)
            async with asyncio.timeout(within):
                return await waiter
        except TimeoutError:
            self.abort()
            raise ConnectionError("no answer to the stream request") from None
        finally:
            self._waiter = None

    async def finished(self) -> None:
        """Wait until a streamed response ends or the connection closes."""
        if self._done is not None and not self.closed:
            await asyncio.shield(self._done)

    @property
    def answered(self) -> bool:
        return self._rx_current

    def close(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.abort()
        self.closed = True

    # --- asyncio callbacks ----------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        self.counters.bytes_in += len(data)
        self.last_rx = asyncio.get_running_loop().time()
        self._rx_current = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(ConnectionError(f"bad HTTP response: {exc}"))
            self.abort()

    def eof_received(self) -> bool | None:
        return None  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(ConnectionResetError("connection closed by the server"))
        if self._done is not None and not self._done.done():
            self._done.set_result(None)

    def _fail(self, exc: Exception) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(exc)

    # --- httptools callbacks --------------------------------------------------------------
    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        self._status = self.parser.get_status_code()
        self.keep_alive = bool(self.parser.should_keep_alive())
        if self._on_chunk is not None and self._status == 200:
            if self._waiter is not None and not self._waiter.done():
                self._waiter.set_result(Response(200, self._headers, b""))

    def on_body(self, body: bytes) -> None:
        if self._on_chunk is not None and self._status == 200:
            self._on_chunk(body)
        else:
            self._body.append(body)

    def on_message_complete(self) -> None:
        self.responses += 1
        response = Response(self._status, self._headers, b"".join(self._body))
        self._body = []
        self._on_chunk = None
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(response)
        if self._done is not None and not self._done.done():
            self._done.set_result(None)
        if not self.keep_alive:
            self.close()
