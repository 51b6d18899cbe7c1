"""A hub's presence state as plain data, and back (pure).

Users (with their user modes), token hashes, rooms with their members in joining order,
operators, voices, topics, modes, key, limit and bans, pending invitations, what WHOWAS
remembers, and where dropped rooms ended: everything an engine needs to bring a new node
up to date before it applies the Ops that came after the snapshot.  Room histories are not
in it (a shared store keeps those); ``seq`` is the last event id the hub had seen.
:func:`restore` also reads the shorter rows of snapshots written before modes existed.
"""

from __future__ import annotations

from typing import Any

from .hub import EventLog, Hub, Room, User
from .model import Ban, WhoWas


def snapshot(hub: Hub) -> dict[str, Any]:
    """The hub's state as JSON-ready data."""
    return {
        "seq": hub.seq,
        "users": [[u.nick, u.user, u.host, u.realname, u.transport, u.node, u.created,
                   u.last_active, u.away, u.modes] for u in hub.users.values()],
        "tokens": dict(hub.tokens),
        "rooms": [[r.name, r.created, r.topic, r.topic_by, r.topic_ts, r.modes,
                   list(r.members), sorted(r.ops), sorted(r.voices), r.password, r.limit,
                   [[b.mask, b.by, b.ts] for b in r.bans]] for r in hub.rooms.values()],
        "dropped": dict(hub._dropped),
        "messages": dict(hub.messages),
        "invites": {key: list(rooms) for key, rooms in hub.invites.items()},
        "whowas": [list(entry) for entry in hub.whowas],
        "max_users": hub.max_users,
    }


def restore(hub: Hub, data: dict[str, Any]) -> None:
    """Replace ``hub``'s presence state with ``data`` (room logs start empty)."""
    hub.users.clear()
    hub.rooms.clear()
    hub.invisible = hub.opers = 0
    hub.seq = int(data["seq"])
    for row in data["users"]:
        nick, user, host, realname, transport, node, created, active, away = row[:9]
        inbox = EventLog(hub.history, 0) if transport == "http" else hub.pushed_inbox
        member = User(nick, user, host, realname, transport, None, created, inbox, node)
        member.last_active = active
        member.away = away
        hub.users[member.key] = member
        hub._set_modes(member, str(row[9]) if len(row) > 9 else "")
    hub.tokens = {str(k): str(v) for k, v in data["tokens"].items()}
    for row in data["rooms"]:
        _restore_room(hub, row)
    hub._dropped = {str(k): int(v) for k, v in data["dropped"].items()}
    hub.messages = {str(k): int(v) for k, v in data["messages"].items()}
    hub.invites = {str(k): dict.fromkeys(map(str, rooms))
                   for k, rooms in data.get("invites", {}).items()}
    hub.whowas.clear()
    hub.whowas.extend(WhoWas(*entry) for entry in data.get("whowas", []))
    hub.max_users = max(int(data.get("max_users", 0)), len(hub.users))


def _restore_room(hub: Hub, row: list[Any]) -> None:
    name, created, topic, topic_by, topic_ts, modes, members, ops = row[:8]
    room = Room(name, created, EventLog(hub.history, 0))
    room.topic, room.topic_by, room.topic_ts, room.modes = topic, topic_by, topic_ts, modes
    for key in members:
        member = hub.users[key]
        room.members[key] = member
        member.add_room(room)
    room.ops = set(ops)
    if len(row) > 8:
        voices, password, limit, bans = row[8:12]
        room.voices = set(voices)
        room.password, room.limit = str(password), int(limit)
        room.bans = [Ban(mask, by, float(ts)) for mask, by, ts in bans]
    hub.rooms[room.key] = room
