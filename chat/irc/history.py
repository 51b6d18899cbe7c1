"""IRCv3 ``draft/chathistory`` queries over a room's bounded event log (pure).

Message references are ``msgid=<event id>``, ``timestamp=<YYYY-MM-DDThh:mm:ss.sssZ>`` or
``*`` (LATEST only).  Event ids are strictly increasing per room, so a ``msgid`` that has
already left the history still positions the query correctly.  Every result is in
ascending order, as the specification requires.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NamedTuple

from ..core.events import Event
from .message import parse_server_time

SUBCOMMANDS = ("BEFORE", "AFTER", "LATEST", "AROUND", "BETWEEN", "TARGETS")
PLAIN_KINDS = frozenset({"message", "notice"})  # all a client gets without event-playback


class HistoryError(ValueError):
    """A malformed query; ``code`` is the standard-reply code for ``FAIL CHATHISTORY``."""

    def __init__(self, code: str, description: str) -> None:
        super().__init__(description)
        self.code = code
        self.description = description


class Ref(NamedTuple):
    """A parsed message reference: ``kind`` is ``msgid``, ``timestamp`` or ``*``."""

    kind: str
    value: float

    def key(self, event: Event) -> float:
        return event.id if self.kind == "msgid" else event.ts


MAX_DIGITS = 18  # the largest id is far below 10**18; longer digit strings are nonsense


def _number(text: str) -> int | None:
    """A non-negative decimal made of ASCII digits only (``str.isdigit`` also accepts
    superscripts and circled digits, which ``int`` refuses), or None."""
    if text.isascii() and text.isdigit() and len(text) <= MAX_DIGITS:
        return int(text)
    return None


def parse_ref(text: str, *, star: bool = False) -> Ref:
    """Parse ``msgid=N`` / ``timestamp=T`` (and ``*`` when ``star``)."""
    if star and text == "*":
        return Ref("*", 0.0)
    kind, sep, value = text.partition("=")
    if not sep:
        raise HistoryError("INVALID_PARAMS", f"Invalid message reference {text[:32]!r}")
    if kind == "msgid":
        number = _number(value)
        if number is None:
            raise HistoryError("INVALID_MSGREFTYPE", f"Unknown msgid {value[:32]!r}")
        return Ref("msgid", float(number))
    if kind == "timestamp":
        when = parse_server_time(value)
        if when is None:
            raise HistoryError("INVALID_PARAMS", f"Invalid timestamp {value[:32]!r}")
        return Ref("timestamp", when)
    raise HistoryError("INVALID_MSGREFTYPE", f"Unsupported reference type {kind[:32]!r}")


def parse_limit(text: str, maximum: int) -> int:
    """A positive limit, capped at ``maximum`` (0 = no cap)."""
    limit = _number(text)
    if limit is None or limit <= 0:
        raise HistoryError("INVALID_PARAMS", f"Invalid limit {text[:32]!r}")
    return min(limit, maximum) if maximum > 0 else limit


def select(events: Iterable[Event], subcommand: str, refs: Sequence[Ref], limit: int,
           kinds: frozenset[str] | None = PLAIN_KINDS) -> list[Event]:
    """The events a BEFORE/AFTER/LATEST/AROUND/BETWEEN query returns, oldest first.

    ``refs`` holds one reference (two for BETWEEN); ``kinds`` filters event kinds
    (None keeps all, for event-playback).
    """
    pool = [e for e in events if kinds is None or e.kind in kinds]
    ref = refs[0]
    if subcommand == "LATEST":
        if ref.kind != "*":
            pool = [e for e in pool if ref.key(e) > ref.value]
        return pool[-limit:]
    if subcommand == "BEFORE":
        return [e for e in pool if ref.key(e) < ref.value][-limit:]
    if subcommand == "AFTER":
        return [e for e in pool if ref.key(e) > ref.value][:limit]
    if subcommand == "AROUND":
        before = [e for e in pool if ref.key(e) < ref.value][-(limit // 2):] if limit > 1 else []
        after = [e for e in pool if ref.key(e) >= ref.value][: limit - len(before)]
        return before + after
    if subcommand == "BETWEEN":
        first, second = refs[0], refs[1]
        forward = [e for e in pool
                   if first.key(e) > first.value and second.key(e) < second.value]
        if forward:
            return forward[:limit]
        backward = [e for e in pool
                    if first.key(e) < first.value and second.key(e) > second.value]
        return backward[-limit:]
    raise HistoryError("UNKNOWN_COMMAND", f"Unknown subcommand {subcommand!r}")
