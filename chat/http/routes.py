"""The API's paths: a split path to a route name, and each route's path template (pure).

:func:`route_of` is the one place a URL path is matched (a ``match`` over its parts);
:data:`ROUTE_PATHS` names the same routes in OpenAPI's template form, and the tests check
that each template leads :func:`route_of` back to its route, so the OpenAPI description
(:mod:`chat.http.openapi`) and the README's endpoint table describe the routes that exist.
"""

from __future__ import annotations


def route_of(parts: list[str]) -> tuple[str, str]:
    """(route name, path argument) for the split path, ("", "") if unknown."""
    match parts:
        case ["", "api", "rooms", room, "messages"]:
            return "room_messages", room
        case ["", "api", "rooms", room, "events"]:
            return "room_events", room
        case ["", "api", "rooms", room, "members"]:
            return "room_members", room
        case ["", "api", "rooms", room, "join"]:
            return "room_join", room
        case ["", "api", "rooms", room, "part"]:
            return "room_part", room
        case ["", "api", "rooms", room, "topic"]:
            return "room_topic", room
        case ["", "api", "rooms", room, ("mode" | "kick" | "invite" | "typing") as what]:
            return f"room_{what}", room
        case ["", "api", "users", nick, "typing"]:
            return "user_typing", nick
        case ["", "api", "rooms"]:
            return "rooms", ""
        case ["", "api", "me", "messages"]:
            return "me_messages", ""
        case ["", "api", "me", "events"]:
            return "me_events", ""
        case ["", "api", "users", nick, "messages"]:
            return "user_messages", nick
        case ["", "api", "sessions", "me"]:
            return "session_me", ""
        case ["", "api", "sessions"]:
            return "sessions", ""
        case ["", "api", "stats"]:
            return "stats", ""
        case ["", "api", "ws"]:
            return "ws", ""
        case ["", "api", "openapi.json"]:
            return "openapi", ""
        case ["", "healthz"]:
            return "healthz", ""
        case ["", "readyz"]:
            return "readyz", ""
        case ["", "metrics"]:
            return "metrics", ""
        case ["", ""]:
            return "page", "index.html"
        case ["", "static", name]:
            return "static", name
        case ["", "favicon.ico"]:
            return "static", "favicon.svg"
    return "", ""


# Every route's path template (OpenAPI's form); tests check each against _route.
ROUTE_PATHS = {
    "sessions": "/api/sessions", "session_me": "/api/sessions/me", "rooms": "/api/rooms",
    "room_join": "/api/rooms/{room}/join", "room_part": "/api/rooms/{room}/part",
    "room_topic": "/api/rooms/{room}/topic", "room_messages": "/api/rooms/{room}/messages",
    "room_events": "/api/rooms/{room}/events", "room_members": "/api/rooms/{room}/members",
    "user_messages": "/api/users/{nick}/messages", "me_messages": "/api/me/messages",
    "me_events": "/api/me/events", "ws": "/api/ws", "stats": "/api/stats",
    "openapi": "/api/openapi.json", "healthz": "/healthz", "readyz": "/readyz",
    "metrics": "/metrics", "page": "/",
    "static": "/static/{file}",
    "room_mode": "/api/rooms/{room}/mode", "room_kick": "/api/rooms/{room}/kick",
    "room_invite": "/api/rooms/{room}/invite", "room_typing": "/api/rooms/{room}/typing",
    "user_typing": "/api/users/{nick}/typing",
}
