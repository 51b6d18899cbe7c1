"""A hub's presence state as plain data, and back (pure).

Users, token hashes, rooms with their members, operators, topics and modes, and where
dropped rooms ended: everything an engine needs to bring a new node up to date before it
applies the Ops that came after the snapshot.  Room histories are not in it (a shared
store keeps those); ``seq`` is the last event id the hub had seen.
"""

from __future__ import annotations

from typing import Any

from .hub import EventLog, Hub, Room, User


def snapshot(hub: Hub) -> dict[str, Any]:
    """The hub's state as JSON-ready data."""
    return {
        "seq": hub.seq,
        "users": [[u.nick, u.user, u.host, u.realname, u.transport, u.node, u.created,
                   u.last_active, u.away] for u in hub.users.values()],
        "tokens": dict(hub.tokens),
        "rooms": [[r.name, r.created, r.topic, r.topic_by, r.topic_ts, r.modes,
                   list(r.members), sorted(r.ops)] for r in hub.rooms.values()],
        "dropped": dict(hub._dropped),
        "messages": dict(hub.messages),
    }


def restore(hub: Hub, data: dict[str, Any]) -> None:
    """Replace ``hub``'s presence state with ``data`` (room logs start empty)."""
    hub.users.clear()
    hub.rooms.clear()
    hub.seq = int(data["seq"])
    for nick, user, host, realname, transport, node, created, active, away in data["users"]:
        inbox = EventLog(hub.history, 0) if transport == "http" else hub.pushed_inbox
        member = User(nick, user, host, realname, transport, None, created, inbox, node)
        member.last_active = active
        member.away = away
        hub.users[member.key] = member
    hub.tokens = {str(k): str(v) for k, v in data["tokens"].items()}
    for name, created, topic, topic_by, topic_ts, modes, members, ops in data["rooms"]:
        room = Room(name, created, EventLog(hub.history, 0))
        room.topic, room.topic_by, room.topic_ts, room.modes = topic, topic_by, topic_ts, modes
        for key in members:
            member = hub.users[key]
            room.members[key] = member
            member.rooms[room.key] = room
        room.ops = set(ops)
        hub.rooms[room.key] = room
    hub._dropped = {str(k): int(v) for k, v in data["dropped"].items()}
    hub.messages = {str(k): int(v) for k, v in data["messages"].items()}
