"""Hub events and their one canonical JSON form (pure).

Every room event (message, notice, join, part, quit, nick, topic, mode, kick) and private
message is an :class:`Event` with an id from one sequence.  :meth:`Event.to_json` is the
event object of the HTTP API, SSE ``data:`` and WebSocket frames (and what a remote engine
stores): encoded once per event, on first use, and kept with the event for as long as the
history keeps it.

Some kinds are *transient*: pushed to whoever is connected and wants them, never stored in
a room's history (:data:`TRANSIENT_KINDS`): typing notices and other TAGMSGs, away and
realname/host changes, invitations, WALLOPS.

Push encodings (an IRC line per tag variant, an SSE block) are not kept here: the hub hands
each publish a fresh :data:`Cache` dict that every sink of that publish shares, and drops it
when the push is over.
"""

from __future__ import annotations

from typing import Any

import orjson

from .names import casefold

KINDS = ("message", "notice", "join", "part", "quit", "nick", "topic", "mode", "kick",
         "tagmsg", "invite", "away", "setname", "chghost", "wallops", "kill")
# Lines that may wait for the presence tick (they never carry a conversation).
PRESENCE_KINDS = frozenset({"join", "part", "quit", "nick", "away", "setname", "chghost"})
TRANSIENT_KINDS = frozenset({"tagmsg", "invite", "away", "setname", "chghost", "wallops"})

Cache = dict[Any, bytes]  # per-publish encodings, keyed by the encoder's own keys


class Event:
    """One room (or private) event.  ``target`` is ``#room`` or the recipient's nick.

    ``args`` holds what some kinds need besides ``text``: the mode parameters (mode), the
    kicked nick (kick), the channel of an invitation (invite, whose target is the invited
    user), the new user and host (chghost), the realname of who joined (join).  ``tags`` are
    the client-only tags (``+typing``...) a message or TAGMSG carried, or None.  An event
    made by the server itself (an operator handed on) has an empty ``userhost`` and the
    server's name as ``nick``.
    """

    __slots__ = ("target", "id", "ts", "kind", "nick", "userhost", "text", "args", "tags",
                 "_json")

    def __init__(self, target: str, id: int, ts: float, kind: str, nick: str,
                 userhost: str, text: str, args: tuple[str, ...] = (),
                 tags: dict[str, str] | None = None) -> None:
        self.target = target
        self.id = id
        self.ts = ts              # wall-clock seconds at the server
        self.kind = kind
        self.nick = nick          # who caused it
        self.userhost = userhost  # 'user@host' of ``nick`` (the IRC prefix)
        self.text = text          # message text, reason, topic, new nick, mode string
        self.args = args
        self.tags = tags
        self._json: bytes | None = None

    @property
    def private(self) -> bool:
        return not self.target.startswith("#")

    def leaver(self) -> str | None:
        """The casefolded nick this event takes out of its room (part, quit, kick), or None."""
        kind = self.kind
        if kind == "kick":
            return casefold(self.args[0])
        if kind in ("part", "quit"):
            return casefold(self.nick)
        return None

    def to_dict(self) -> dict[str, Any]:
        """The API's event object: room events name their room, private ones their ``to``."""
        out: dict[str, Any] = {"id": self.id, "ts": self.ts, "kind": self.kind}
        if self.kind == "invite":  # to a user, about a room
            out["room"] = self.args[0][1:]
            out["to"] = self.target
        elif self.private:
            out["room"] = None
            out["to"] = self.target
        else:
            out["room"] = self.target[1:]
        out["nick"] = self.nick
        out["text"] = self.text
        kind = self.kind
        if kind == "mode":
            out["args"] = list(self.args)
        elif kind == "kick":
            out["target"] = self.args[0]
        elif kind == "chghost":
            out["user"], out["host"] = self.args
        if self.tags:
            out["tags"] = self.tags
        return out

    def to_json(self) -> bytes:
        """:meth:`to_dict` as JSON bytes, encoded once."""
        data = self._json
        if data is None:
            data = self._json = orjson.dumps(self.to_dict())
        return data

    def __repr__(self) -> str:
        return f"Event({self.target!r}, {self.id}, {self.kind!r}, {self.nick!r}, {self.text!r})"
