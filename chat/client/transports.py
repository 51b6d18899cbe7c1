"""The client transport layer shared by ``chat connect`` and ``chat compare``.

Seven modes reach the same server: ``irc`` (push over one persistent socket), ``ws`` (push
over one WebSocket), ``sse`` (push over a long HTTP response), ``longpoll``, ``poll`` (a
request every ``interval`` seconds over a keep-alive connection), ``poll-close`` (a fresh
TCP connection per request) and ``udp`` (each event a datagram, no delivery guarantee:
losses fetched over HTTP).
Each is a :class:`Transport`; :func:`make_transport` builds one by mode name::

    t = make_transport("poll", host="127.0.0.1", irc_port=6667, http_port=8080,
                       nick="alice", interval=1.0, on_event=print)
    await t.start(); await t.join("lobby"); await t.send("lobby", "hi"); await t.close()

Every transport counts what it costs in :class:`Counters` (requests, empty polls, bytes
in/out with headers, TCP connections opened, reconnects, heartbeat round trip, events),
reconnects with exponential backoff and jitter, and resumes from the last event id seen:
no event lost, none delivered twice.
"""

from __future__ import annotations

from typing import Any

from .base import Transport
from .httpmodes import LongPollTransport, PollCloseTransport, PollTransport, SseTransport
from .ircclient import IrcTransport
from .model import MODES, STATES, ChatEvent, Counters, Member, TransportError
from .udpclient import UdpTransport
from .wsclient import WsTransport

__all__ = ["MODES", "STATES", "ChatEvent", "Counters", "Member", "Transport", "TransportError",
           "make_transport"]

_CLASSES: dict[str, type[Transport]] = {
    "irc": IrcTransport,
    "sse": SseTransport,
    "longpoll": LongPollTransport,
    "poll": PollTransport,
    "poll-close": PollCloseTransport,
    "ws": WsTransport,
    "udp": UdpTransport,
}


# Keyword arguments only udp mode takes (the others are given them, and leave them).
UDP_OPTIONS = frozenset({"udp_port", "keepalive", "reorder", "rcvbuf"})


def make_transport(mode: str, **kwargs: Any) -> Transport:
    """A transport for ``mode`` (one of :data:`MODES`); keyword arguments as Transport's,
    plus udp mode's :data:`UDP_OPTIONS` (ignored by the other modes)."""
    try:
        cls = _CLASSES[mode]
    except KeyError:
        raise ValueError(f"unknown mode {mode!r}; choose from {', '.join(_CLASSES)}") from None
    if cls is not UdpTransport:
        kwargs = {k: v for k, v in kwargs.items() if k not in UDP_OPTIONS}
    return cls(**kwargs)
