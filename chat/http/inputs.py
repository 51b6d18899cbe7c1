"""What the API and the WebSocket frames check in a client's input, with the same answers (pure).

One place for the rules both JSON front ends apply (:mod:`chat.http.api` and
:mod:`chat.ws.session`): fields that must be one-line strings, message text that must fit one
relayed IRC line, room names, and the room a session has to have joined.  A violation is an
:class:`ApiError` with the API's status and stable code; the WebSocket side sends the same
code in an error frame.
"""

from __future__ import annotations

from typing import Any

from ..core.hub import Room, User
from ..core.names import room_to_channel
from ..engine.base import Engine

IRC_LINE = 510  # bytes of an IRC line without CR LF: a relayed message must fit in one

# One table from hub error codes (chat.core.errors) to HTTP statuses.
HUB_STATUS = {"nick_invalid": 400, "nick_in_use": 409, "no_such_nick": 404,
              "channel_invalid": 400, "no_such_channel": 404, "not_on_channel": 403,
              "cannot_send": 403, "too_many_channels": 403, "not_chanop": 403,
              "engine_unavailable": 503}


class ApiError(Exception):
    """An error answer: status, stable code, human message, extra header lines."""

    def __init__(self, status: int, code: str, message: str, extra: bytes = b"") -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra


def string_field(body: dict[str, Any], name: str, default: str | None = None) -> str:
    """``body[name]``: a string of one line (no CR, LF or NUL); 400 otherwise."""
    value = body.get(name, default)
    if value is None:
        raise ApiError(400, "bad_request", f"'{name}' is missing")
    if not isinstance(value, str):
        raise ApiError(400, "bad_request", f"'{name}' must be a string")
    if "\r" in value or "\n" in value or "\0" in value:
        raise ApiError(400, "bad_request", f"'{name}' must be one line (no CR, LF or NUL)")
    return value


def message_text(body: dict[str, Any], user: User, target: str) -> str:
    """The ``text`` field: one non-empty line that fits one relayed IRC PRIVMSG to ``target``."""
    text = string_field(body, "text")
    if not text:
        raise ApiError(400, "bad_request", "'text' must not be empty")
    room = IRC_LINE - len(f":{user.prefix} PRIVMSG {target} :".encode())
    if len(text.encode()) > room:
        raise ApiError(400, "text_too_long", f"Text longer than {room} bytes (UTF-8)")
    return text


def room_channel(name: str) -> str:
    """The channel of room ``name`` (400 ``room_invalid`` if it is not a legal room name)."""
    channel = room_to_channel(name)
    if channel is None:
        raise ApiError(400, "room_invalid", "Room names are 1 to 50 of A-Z a-z 0-9 _ -")
    return channel


def find_room(engine: Engine, name: str) -> Room:
    """The room ``name`` (404 if there is none)."""
    channel = room_to_channel(name)
    room = engine.find_room(channel) if channel is not None else None
    if room is None:
        raise ApiError(404, "no_such_room", f"No such room: {name[:60]!r}")
    return room


def joined_room(engine: Engine, user: User, name: str) -> Room:
    """The room ``name`` if ``user`` is in it; else 404 or 403 ``not_joined``."""
    room = find_room(engine, name)
    if user.key not in room.members:
        raise ApiError(403, "not_joined", f"Join {name} first")
    return room


def members_of(room: Room, wall: float) -> list[dict[str, Any]]:
    """The member list of ``room`` as the API shows it (``transport`` ws for an HTTP session
    with a WebSocket attached on this server)."""
    return [{"nick": u.nick, "transport": transport_of(u), "op": room.is_op(u),
             "idle_s": round(max(0.0, wall - u.last_active), 1)}
            for u in room.members.values()]


def transport_of(user: User) -> str:
    """``irc``, ``http``, ``ws`` or ``udp``: an API session whose user has a push sink here
    (a WebSocket, or a UDP registration, which says so)."""
    if user.transport == "http" and user.sink is not None:
        return str(getattr(user.sink, "transport", "ws"))
    return user.transport
