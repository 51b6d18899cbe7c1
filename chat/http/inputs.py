"""What the API and the WebSocket frames check in a client's input, with the same answers (pure).

One place for the rules both JSON front ends apply (:mod:`chat.http.api` and
:mod:`chat.ws.session`): fields that must be one-line strings, message text that must fit one
relayed IRC line, client-only tags and typing states, room names, and the room a session has
to have joined.  A violation is an
:class:`ApiError` with the API's status and stable code; the WebSocket side sends the same
code in an error frame.
"""

from __future__ import annotations

from itertools import islice
from typing import Any

from ..core.errors import HubError
from ..core.hub import Room, User
from ..core.names import CLIENT_TAG_DATA, room_to_channel, valid_client_tag
from ..core.text import TextRefused, clean_text, fit_utf8
from ..engine.base import Engine

IRC_LINE = 510  # bytes of an IRC line without CR LF: a relayed message must fit in one
TYPING_STATES = ("active", "paused", "done")  # IRCv3 +typing values

# One table from hub error codes (chat.core.errors) to HTTP statuses.
HUB_STATUS = {"nick_invalid": 400, "nick_in_use": 409, "no_such_nick": 404,
              "channel_invalid": 400, "no_such_channel": 404, "not_on_channel": 403,
              "cannot_send": 403, "too_many_channels": 403, "not_chanop": 403,
              "engine_unavailable": 503, "shutting_down": 503,
              # running a room (chat.http.roomops)
              "user_not_in_channel": 404, "user_on_channel": 409, "channel_full": 403,
              "invite_only": 403, "banned": 403, "bad_key": 403, "unknown_mode": 400,
              "invalid_mode_param": 400, "list_full": 409}


class ApiError(Exception):
    """An error answer: status, stable code, human message, extra header lines."""

    def __init__(self, status: int, code: str, message: str, extra: bytes = b"") -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra


def string_field(body: dict[str, Any], name: str, default: str | None = None) -> str:
    """``body[name]``: a string of one line (no CR, LF or NUL; 400 otherwise), cleaned by
    the text rule of :mod:`chat.core.text` (other controls become spaces)."""
    value = body.get(name, default)
    if value is None:
        raise ApiError(400, "bad_request", f"'{name}' is missing")
    if not isinstance(value, str):
        raise ApiError(400, "bad_request", f"'{name}' must be a string")
    try:
        return clean_text(value)
    except TextRefused:
        raise ApiError(400, "bad_request",
                       f"'{name}' must be one line (no CR, LF or NUL)") from None


def reason_field(body: dict[str, Any], name: str, default: str, user: User, command: str,
                 target: str = "") -> str:
    """A part or quit reason, or a topic: ``string_field``, then cut (never refused) to fit
    the IRC line it is relayed in, ``:<prefix> <command> [<target>] :<reason>``."""
    text = string_field(body, name, default)
    head = f":{user.prefix} {command} {target} :" if target else f":{user.prefix} {command} :"
    return fit_utf8(text, IRC_LINE - len(head.encode()))


def message_text(body: dict[str, Any], user: User, target: str) -> str:
    """The ``text`` field: one non-empty line that fits one relayed IRC PRIVMSG to ``target``."""
    text = string_field(body, "text")
    if not text:
        raise ApiError(400, "bad_request", "'text' must not be empty")
    room = IRC_LINE - len(f":{user.prefix} PRIVMSG {target} :".encode())
    if len(text.encode()) > room:
        raise ApiError(400, "text_too_long", f"Text longer than {room} bytes (UTF-8)")
    return text


def client_tags(body: dict[str, Any]) -> tuple[str, ...]:
    """The ``tags`` object of a message post as ``(name, value, ...)`` (400 if invalid).

    Names are client-only tags (``+draft/reply``); values are strings; together they
    must fit the 4,094 bytes IRCv3 allows a client, escaped as on IRC.
    """
    tags = body.get("tags")
    if tags is None:
        return ()
    if not isinstance(tags, dict):
        raise ApiError(400, "bad_request", "'tags' must be an object")
    flat: list[str] = []
    size = 0
    for name, value in tags.items():
        if not valid_client_tag(name):
            raise ApiError(400, "bad_request",
                           f"Tag {name[:40]!r} is not a client tag ('+name' or '+vendor/name')")
        if not isinstance(value, str) or "\0" in value:
            raise ApiError(400, "bad_request", f"Tag {name[:40]!r} must have a string value")
        size += len(name) + 2 + 2 * len(value.encode())  # escaping doubles at most
        flat += (name, value)
    if size > CLIENT_TAG_DATA:
        raise ApiError(400, "tags_too_long", f"Tags longer than {CLIENT_TAG_DATA} bytes")
    return tuple(flat)


def typing_tags(body: dict[str, Any]) -> tuple[str, ...]:
    """``("+typing", state)`` for a typing notice; ``state`` defaults to active (400 else)."""
    state = string_field(body, "state", "active")
    if state not in TYPING_STATES:
        raise ApiError(400, "bad_request", "'state' must be active, paused or done")
    return ("+typing", state)


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
    """The room ``name`` if ``user`` is in it; else 404 (also for a secret room, whose
    existence only its members learn) or 403 ``not_joined``."""
    room = find_room(engine, name)
    if user.key not in room.members:
        if room.secret:
            raise ApiError(404, "no_such_room", f"No such room: {name[:60]!r}")
        raise ApiError(403, "not_joined", f"Join {name} first")
    return room


def members_of(room: Room, wall: float, offset: int = 0,
               limit: int | None = None) -> list[dict[str, Any]]:
    """The member list of ``room`` as the API shows it (``transport`` ws for an HTTP session
    with a WebSocket attached on this server): ``limit`` of them from ``offset`` on."""
    members = room.members.values()
    stop = None if limit is None else offset + limit
    return [{"nick": u.nick, "transport": transport_of(u), "op": room.is_op(u),
             "voice": room.is_voiced(u), "away": u.away,
             "idle_s": round(max(0.0, wall - u.last_active), 1)}
            for u in islice(members, offset, stop)]


def member_nicks(room: Room, limit: int) -> list[str]:
    """The first ``limit`` nicks of ``room`` (a join answer; the members route has the
    rest), so that joining a room of thousands does not cost an answer of hundreds of KB."""
    return [u.nick for u in islice(room.members.values(), limit)]


def hub_message(exc: HubError) -> str:
    """A refusal's text for an API answer: an IRC-style continuation ("is unknown mode char
    to me", written to follow the subject in a numeric) gets its subject in front."""
    message = exc.message
    if exc.subject and message[:1].islower():
        return f"{exc.subject[:60]!r} {message}"
    return message


def transport_of(user: User) -> str:
    """``irc``, ``http``, ``ws`` or ``udp``: an API session whose user has a push sink here
    (a WebSocket, or a UDP registration, which says so)."""
    if user.transport == "http" and user.sink is not None:
        return str(getattr(user.sink, "transport", "ws"))
    return user.transport
