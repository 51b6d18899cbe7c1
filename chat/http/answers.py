"""What the API answers a request with: small immutable values, no I/O (h11's manner).

:meth:`chat.http.api.Api.handle` returns one of these; the HTTP adapter turns it into bytes
on the socket and owns whatever has to wait:

* :class:`Reply` - a complete response now;
* :class:`WaitForEvents` - a long poll: hold the request until the log has events after
  ``since`` or ``timeout`` seconds pass, then answer with :meth:`Api.poll_answer`;
* :class:`StreamEvents` - an SSE stream: send the backlog after ``since``, then every
  event of the log, until the session or the membership ends;
* :class:`Later` - the engine has not settled a write yet: when ``pending`` settles,
  answer with ``then(value)`` (or the error's reply), which may itself be any answer;
* :class:`SwitchProtocols` - an authenticated WebSocket handshake (``GET /api/ws``): hand
  the connection to the WebSocket adapter, which completes (or refuses) the handshake.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from ..core.hub import EventLog
from ..core.pending import Pending
from .sessions import HttpSession
from .wire import JSON_TYPE


class Reply(NamedTuple):
    status: int
    body: bytes
    headers: bytes = b""          # extra header lines, each ending in CR LF
    content_type: bytes = JSON_TYPE


class WaitForEvents(NamedTuple):
    session: HttpSession
    log: EventLog
    since: int
    limit: int
    timeout: float


class StreamEvents(NamedTuple):
    session: HttpSession
    log: EventLog
    since: int | None


class Later(NamedTuple):
    pending: Pending[Any]
    then: Callable[[Any], Answer]
    error: Callable[[Any], Answer]


class SwitchProtocols(NamedTuple):
    session: HttpSession


Answer = Reply | WaitForEvents | StreamEvents | Later | SwitchProtocols
