"""Hub events and their one canonical JSON form (pure).

Every room event (message, notice, join, part, quit, nick, topic) and private message is an
:class:`Event` with an id from one sequence.  :meth:`Event.to_json` is the event object of
the HTTP API, SSE ``data:`` and WebSocket frames (and what a remote engine stores): encoded
once per event, on first use, and kept with the event for as long as the history keeps it.

Push encodings (an IRC line per tag variant, an SSE block) are not kept here: the hub hands
each publish a fresh :data:`Cache` dict that every sink of that publish shares, and drops it
when the push is over.
"""

from __future__ import annotations

from typing import Any

import orjson

KINDS = ("message", "notice", "join", "part", "quit", "nick", "topic")
PRESENCE_KINDS = frozenset({"join", "part", "quit", "nick"})

Cache = dict[Any, bytes]  # per-publish encodings, keyed by the encoder's own keys


class Event:
    """One room (or private) event.  ``target`` is ``#room`` or the recipient's nick."""

    __slots__ = ("target", "id", "ts", "kind", "nick", "userhost", "text", "_json")

    def __init__(self, target: str, id: int, ts: float, kind: str, nick: str,
                 userhost: str, text: str) -> None:
        self.target = target
        self.id = id
        self.ts = ts              # wall-clock seconds at the server
        self.kind = kind
        self.nick = nick          # who caused it
        self.userhost = userhost  # 'user@host' of ``nick`` (the IRC prefix)
        self.text = text          # message text, part/quit reason, topic, or the new nick
        self._json: bytes | None = None

    @property
    def private(self) -> bool:
        return not self.target.startswith("#")

    def to_dict(self) -> dict[str, Any]:
        """The API's event object: room events name their room, private ones their ``to``."""
        out: dict[str, Any] = {"id": self.id, "ts": self.ts, "kind": self.kind}
        if self.private:
            out["room"] = None
            out["to"] = self.target
        else:
            out["room"] = self.target[1:]
        out["nick"] = self.nick
        out["text"] = self.text
        return out

    def to_json(self) -> bytes:
        """:meth:`to_dict` as JSON bytes, encoded once."""
        data = self._json
        if data is None:
            data = self._json = orjson.dumps(self.to_dict())
        return data

    def __repr__(self) -> str:
        return f"Event({self.target!r}, {self.id}, {self.kind!r}, {self.nick!r}, {self.text!r})"
