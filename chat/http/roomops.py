"""Routes for running a room and for typing notices (pure: no sockets, no clock).

What an IRC channel operator does with MODE, KICK and INVITE, a room operator on HTTP
does here, through the same engine writes and the same mode parser
(:func:`chat.core.modes.parse_channel_modes`):

* ``GET  /api/rooms/{room}/mode``   modes, key and limit (to members), ban list
* ``POST /api/rooms/{room}/mode``   ``{"modes": "+o-v", "args": ["bob", "carol"]}``
* ``POST /api/rooms/{room}/kick``   ``{"nick", "reason"?}``
* ``POST /api/rooms/{room}/invite`` ``{"nick"}``
* ``POST /api/rooms/{room}/typing`` and ``/api/users/{nick}/typing``
  ``{"state": "active" | "paused" | "done"}``: an IRCv3 ``+typing`` TAGMSG, relayed and
  never stored.

Each route is a plain function of the :class:`Routes` it runs in (the :class:`Api`), so
these sit apart from the core routes of :mod:`chat.http.api`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

from ..core.clock import Now
from ..core.errors import HubError
from ..core.events import Event
from ..core.hub import Room
from ..core.model import ModeResult
from ..core.modes import parse_channel_modes
from ..core.names import channel_to_room
from ..core.pending import Pending
from ..engine.base import Engine
from .answers import Answer, Reply
from .inputs import ApiError, find_room, hub_message, joined_room, string_field, typing_tags
from .sessions import HttpSession
from .wire import Request, json_body

T = TypeVar("T")


class Routes(Protocol):
    """What these routes use of :class:`chat.http.api.Api`."""

    engine: Engine

    def _body(self, request: Request, required: bool = True) -> dict[str, Any]: ...
    def _settle(self, pending: Pending[T], then: Callable[[T], Reply]) -> Answer: ...
    def hub_error(self, exc: HubError) -> Reply: ...


def get_mode(api: Routes, request: Request, session: HttpSession, arg: str,
             query: dict[str, str], now: Now) -> Answer:
    room = find_room(api.engine, arg)
    if room.secret and session.user.key not in room.members:
        raise ApiError(404, "no_such_room", f"No such room: {arg[:60]!r}")
    return Reply(200, json_body(_mode_state(room, session)))


def _mode_state(room: Room, session: HttpSession) -> dict[str, Any]:
    member = session.user.key in room.members
    params = room.mode_params(member)
    state: dict[str, Any] = {"room": channel_to_room(room.name), "modes": params[0],
                             "created": room.created}
    if member:
        state["key"] = room.password or None
        state["limit"] = room.limit or None
    if member or not room.secret:
        state["bans"] = [{"mask": b.mask, "by": b.by, "ts": b.ts} for b in room.bans]
    return state


def post_mode(api: Routes, request: Request, session: HttpSession, arg: str,
              query: dict[str, str], now: Now) -> Answer:
    """Apply ``modes`` with ``args``; 400 for an unknown letter or a bad parameter."""
    body = api._body(request)
    modes = string_field(body, "modes")
    args = body.get("args", [])
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise ApiError(400, "bad_request", "'args' must be a list of strings")
    room = find_room(api.engine, arg)
    parsed = parse_channel_modes(room.name, modes, args)
    if not parsed.changes:  # nothing to apply: the first refusal, or the modes as they are
        if parsed.errors:
            return api.hub_error(parsed.errors[0])
        return Reply(200, json_body(_mode_state(room, session)))
    # As IRC MODE does: the letters that parse are applied, the others listed as refused.
    return api._settle(api.engine.set_mode(session.user, room.name, parsed.changes, now.wall),
                       lambda result: _mode_changed(api, arg, result, parsed.errors))


def _mode_changed(api: Routes, room: str, result: ModeResult,
                  unparsed: Sequence[HubError] = ()) -> Reply:
    event = result.event
    errors = [*unparsed, *result.refused]
    if event is None and errors:
        return api.hub_error(errors[0])
    refused = [{"error": e.code, "message": hub_message(e), "subject": e.subject}
               for e in errors]
    return Reply(200, json_body({
        "room": room, "modes": event.text if event else "",
        "args": list(event.args) if event else [], "id": event.id if event else None,
        "refused": refused}))


def post_kick(api: Routes, request: Request, session: HttpSession, arg: str,
              query: dict[str, str], now: Now) -> Answer:
    body = api._body(request)
    nick = string_field(body, "nick")
    reason = string_field(body, "reason", "")[:255]
    room = find_room(api.engine, arg)
    return api._settle(api.engine.kick(session.user, room.name, nick, reason, now.wall),
                       lambda event: _targeted(arg, event.args[0], event))


def post_invite(api: Routes, request: Request, session: HttpSession, arg: str,
                query: dict[str, str], now: Now) -> Answer:
    nick = string_field(api._body(request), "nick")
    room = find_room(api.engine, arg)
    return api._settle(api.engine.invite(session.user, nick, room.name, now.wall),
                       lambda event: _targeted(arg, event.target, event))


def _targeted(room: str, nick: str, event: Event) -> Reply:
    return Reply(200, json_body({"room": room, "nick": nick, "id": event.id}))


def post_room_typing(api: Routes, request: Request, session: HttpSession, arg: str,
                     query: dict[str, str], now: Now) -> Answer:
    tags = _typing(api, request)
    room = joined_room(api.engine, session.user, arg)
    return api._settle(api.engine.say(session.user, room.name, "", now.wall, "tagmsg", tags),
                       _typed)


def post_user_typing(api: Routes, request: Request, session: HttpSession, arg: str,
                     query: dict[str, str], now: Now) -> Answer:
    tags = _typing(api, request)
    target = api.engine.find_user(arg)
    if target is None:
        raise ApiError(404, "no_such_nick", f"No such nick: {arg[:60]!r}")
    return api._settle(api.engine.tell(session.user, target.nick, "", now.wall, "tagmsg",
                                       tags), _typed)


def _typing(api: Routes, request: Request) -> tuple[str, ...]:
    return typing_tags(api._body(request, required=False))


def _typed(event: Event) -> Reply:
    return Reply(200, json_body({"id": event.id, "ts": event.ts}))
