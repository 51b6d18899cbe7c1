"""The udp lane's datagrams, both ways (pure: bytes in, bytes out).

Every datagram is one JSON object.  From the client (each carries the HTTP session token,
so a datagram from a new address, after a NAT forgot the old one, still proves who sent it):

* ``{"type": "register", "token": T, "pad": "..."}``: make this address the session's
  endpoint (a second registration of the session replaces the first: one per session).
  Answered with ``{"type": "registered", "reg": R, "seq": S, "timeout": X}``: ``reg`` names
  the registration (a new one starts its ``seq`` at 0), ``timeout`` is how long it lives
  without a keepalive.
* ``{"type": "keepalive", "token": T, "pad": "..."}``: refresh it (and keep a NAT mapping
  open).  Answered with ``{"type": "ack", "reg": R, "seq": S}``: ``seq`` is the number of
  the last event datagram sent, so a client learns it lost the last ones too.

``pad`` is optional filler: an answer is never larger than the datagram it answers (no
amplification), so a client pads its requests to leave room for the answer.

From the server:

* ``{"seq": S, "prev": P, "event": {...}}``: one event (the API's event object).  ``seq``
  counts this registration's event datagrams from 1: a gap is a loss, a smaller one than
  before a reordering.  ``prev`` is the id of the previous event this registration was
  sent for the same room (private messages: their own chain), 0 for the first: if the
  client's last id there is not ``prev``, it missed something and fetches it over HTTP.
* ``{"seq": S, "prev": P, "room": R, "id": N, "big": true}``: an event too large for one
  datagram; fetch it over HTTP (``room`` null: a private message).
* ``{"type": "error", "error": CODE}`` (``unauthorized``, ``not_registered``,
  ``bad_request``) and ``{"type": "end", "reason": TEXT}`` (the registration is over: the
  session ended, it expired, the server is shutting down).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import orjson

from ..core.events import Event

REQUEST_TYPES = ("register", "keepalive")
MAX_TOKEN = 128


class Malformed(ValueError):
    """A datagram that is no request of this protocol."""


class UdpRequest(NamedTuple):
    kind: str   # "register" or "keepalive"
    token: str


def parse_request(data: bytes) -> UdpRequest:
    """The request in ``data``; :class:`Malformed` if it is none."""
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise Malformed("not JSON") from None
    if not isinstance(value, dict):
        raise Malformed("not a JSON object")
    kind, token = value.get("type"), value.get("token")
    if kind not in REQUEST_TYPES:
        raise Malformed(f"type must be one of {', '.join(REQUEST_TYPES)}")
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN:
        raise Malformed("token must be a session token")
    return UdpRequest(str(kind), token)


def registered(reg: int, seq: int, timeout: float) -> bytes:
    return orjson.dumps({"type": "registered", "reg": reg, "seq": seq, "timeout": timeout})


def ack(reg: int, seq: int) -> bytes:
    return orjson.dumps({"type": "ack", "reg": reg, "seq": seq})


def error(code: str) -> bytes:
    return orjson.dumps({"type": "error", "error": code})


def end(reason: str) -> bytes:
    return orjson.dumps({"type": "end", "reason": reason[:200]})


def answer_fits(answer: bytes, request: bytes) -> bool:
    """The amplification rule: an answer is sent only if it is no larger than its request."""
    return len(answer) <= len(request)


def event_datagram(seq: int, prev: int, event: Event, cap: int) -> tuple[bytes, bool]:
    """One event as a datagram, or (True) its ``big`` marker if it would exceed ``cap``.

    The event's JSON is encoded once per event (:meth:`Event.to_json`) and shared by every
    registration; only the small ``seq``/``prev`` head is per recipient.
    """
    body = event.to_json()
    data = b'{"seq":%d,"prev":%d,"event":%s}' % (seq, prev, body)
    if len(data) <= cap:
        return data, False
    room: Any = None if event.private else event.target[1:]
    return orjson.dumps({"seq": seq, "prev": prev, "room": room, "id": event.id,
                         "big": True}), True
