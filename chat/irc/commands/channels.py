"""Channels: JOIN, PART, TOPIC and NAMES (pure).  MODE, KICK and INVITE are in
:mod:`chat.irc.commands.modes`; LIST is with WHO in :mod:`chat.irc.commands.who`."""

from __future__ import annotations

from ...core.clock import Now
from ...core.hub import Room, User
from ...engine.base import Joined
from .. import numerics as N
from ..caps import CAP_MULTI_PREFIX, CAP_USERHOST_IN_NAMES
from ..message import Message
from ..session import Session
from .table import Command

NAMES_WIDTH = 400  # bytes of nicks per 353 line, well under the 512-byte line limit


def cmd_join(s: Session, msg: Message, now: Now) -> None:
    """``JOIN #a,#b [key1,key2]`` (keys in channel order); ``JOIN 0`` parts all."""
    user = s.user
    assert user is not None
    if msg.params[0] == "0":  # leave every channel
        for room in user.rooms:  # a tuple: leaving replaces it, not changes it
            s.expect(s.engine.part(user, room.name, "Left all channels", now.wall), s.echo)
        return
    keys = msg.params[1].split(",") if len(msg.params) > 1 else []
    for index, channel in enumerate(msg.params[0].split(",")):
        if channel:
            key = keys[index] if index < len(keys) else ""
            s.expect(s.engine.join(user, channel, now.wall, key), lambda j: _joined(s, j))


def _joined(s: Session, joined: Joined) -> None:
    room, event = joined
    if event is None:
        return  # already there: nothing to say
    s.echo(event)
    if room.topic:
        send_topic(s, room)
    send_names(s, room)


def send_topic(s: Session, room: Room) -> None:
    s.reply(N.RPL_TOPIC, room.name, room.topic)
    s.reply(N.RPL_TOPICWHOTIME, room.name, room.topic_by, str(int(room.topic_ts)))


def visible_members(s: Session, room: Room) -> list[User]:
    """The members of ``room`` ``s`` may see: all to a member, the non-invisible to others."""
    if s.user is not None and s.user.key in room.members:
        return list(room.members.values())
    return [m for m in room.members.values() if "i" not in m.modes]


def send_names(s: Session, room: Room) -> None:
    """353 lines (split to fit) and 366 for ``room``; nothing but 366 for a secret
    channel the client is not in."""
    if room.secret and not (s.user is not None and s.user.key in room.members):
        s.reply(N.RPL_ENDOFNAMES, room.name, "End of /NAMES list")
        return
    full = s.caps & CAP_USERHOST_IN_NAMES
    multi = bool(s.caps & CAP_MULTI_PREFIX)
    symbol = "@" if room.secret else "="
    line: list[str] = []
    width = 0
    for member in visible_members(s, room):
        name = room.nick_with_prefix(member, multi)
        if full:
            name = f"{name}!{member.userhost}"
        if line and width + len(name) > NAMES_WIDTH:
            s.reply(N.RPL_NAMREPLY, symbol, room.name, " ".join(line), trailing=True)
            line, width = [], 0
        line.append(name)
        width += len(name) + 1
    if line:
        s.reply(N.RPL_NAMREPLY, symbol, room.name, " ".join(line), trailing=True)
    s.reply(N.RPL_ENDOFNAMES, room.name, "End of /NAMES list")


def cmd_part(s: Session, msg: Message, now: Now) -> None:
    user = s.user
    assert user is not None
    reason = msg.params[1] if len(msg.params) > 1 else ""
    for channel in msg.params[0].split(","):
        if channel:
            s.expect(s.engine.part(user, channel, reason, now.wall), s.echo)


def cmd_topic(s: Session, msg: Message, now: Now) -> None:
    user = s.user
    assert user is not None
    channel = msg.params[0]
    room = s.engine.find_room(channel)
    if room is None:
        s.reply(N.ERR_NOSUCHCHANNEL, channel, "No such channel")
    elif len(msg.params) > 1:
        s.expect(s.engine.set_topic(user, channel, msg.params[1], now.wall), s.echo)
    elif room.secret and user.key not in room.members:
        s.reply(N.ERR_NOTONCHANNEL, room.name, "You're not on that channel")
    elif room.topic:
        send_topic(s, room)
    else:
        s.reply(N.RPL_NOTOPIC, room.name, "No topic is set")


def cmd_names(s: Session, msg: Message, now: Now) -> None:
    """``NAMES #a,#b``: the names of each channel, each list ended by its own 366."""
    if not msg.params:
        s.reply(N.RPL_ENDOFNAMES, "*", "End of /NAMES list")
        return
    for channel in msg.params[0].split(","):
        if not channel:
            continue
        room = s.engine.find_room(channel)
        if room is None:
            s.reply(N.RPL_ENDOFNAMES, channel, "End of /NAMES list")
        else:
            send_names(s, room)


COMMANDS = {
    "JOIN": Command(cmd_join, 1),
    "PART": Command(cmd_part, 1),
    "TOPIC": Command(cmd_topic, 1),
    "NAMES": Command(cmd_names),
}
