"""Channels: JOIN, PART, TOPIC, NAMES, LIST and MODE (pure)."""

from __future__ import annotations

from ...core.clock import Now
from ...core.hub import Room
from ...engine.base import Joined
from .. import numerics as N
from ..caps import CAP_USERHOST_IN_NAMES
from ..message import Message, format_line
from ..session import Session
from .table import Command

NAMES_WIDTH = 400  # bytes of nicks per 353 line, well under the 512-byte line limit


def cmd_join(s: Session, msg: Message, now: Now) -> None:
    user = s.user
    assert user is not None
    if msg.params[0] == "0":  # leave every channel
        for room in list(user.rooms.values()):
            s.expect(s.engine.part(user, room.name, "Left all channels", now.wall), s.echo)
        return
    for channel in msg.params[0].split(","):
        if channel:
            s.expect(s.engine.join(user, channel, now.wall), lambda j: _joined(s, j))


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


def send_names(s: Session, room: Room) -> None:
    """353 lines (split to fit) and 366 for ``room``."""
    full = s.caps & CAP_USERHOST_IN_NAMES
    line: list[str] = []
    width = 0
    for member in room.members.values():
        name = room.nick_with_prefix(member)
        if full:
            name = f"{name}!{member.userhost}"
        if line and width + len(name) > NAMES_WIDTH:
            s.reply(N.RPL_NAMREPLY, "=", room.name, " ".join(line), trailing=True)
            line, width = [], 0
        line.append(name)
        width += len(name) + 1
    if line:
        s.reply(N.RPL_NAMREPLY, "=", room.name, " ".join(line), trailing=True)
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
    elif len(msg.params) == 1:
        if room.topic:
            send_topic(s, room)
        else:
            s.reply(N.RPL_NOTOPIC, room.name, "No topic is set")
    else:
        s.expect(s.engine.set_topic(user, channel, msg.params[1], now.wall), s.echo)


def cmd_names(s: Session, msg: Message, now: Now) -> None:
    if not msg.params:
        s.reply(N.RPL_ENDOFNAMES, "*", "End of /NAMES list")
        return
    for channel in msg.params[0].split(","):
        room = s.engine.find_room(channel)
        if room is None:
            s.reply(N.RPL_ENDOFNAMES, channel, "End of /NAMES list")
        else:
            send_names(s, room)


def cmd_list(s: Session, msg: Message, now: Now) -> None:
    wanted = set(msg.params[0].split(",")) if msg.params else None
    s.reply(N.RPL_LISTSTART, "Channel", "Users  Name")
    for room in s.engine.rooms():
        if wanted is None or room.name in wanted:
            s.reply(N.RPL_LIST, room.name, str(len(room.members)), room.topic)
    s.reply(N.RPL_LISTEND, "End of /LIST")


def cmd_mode(s: Session, msg: Message, now: Now) -> None:
    target = msg.params[0]
    if target.startswith("#"):
        _channel_mode(s, msg, target)
        return
    assert s.user is not None
    found = s.engine.find_user(target)
    if found is not s.user:
        if found is None:
            s.reply(N.ERR_NOSUCHNICK, target, "No such nick/channel")
        else:
            s.reply(N.ERR_USERSDONTMATCH, "Can't change mode for other users")
        return
    if len(msg.params) == 1:
        s.reply(N.RPL_UMODEIS, "+" + s.umodes)
        return
    _user_mode(s, msg.params[1])


def _user_mode(s: Session, changes: str) -> None:
    """Apply +i/-i/+w/-w (the only user modes), echo what changed, 501 for the rest."""
    assert s.user is not None
    adding = True
    modes = set(s.umodes)
    unknown = False
    for ch in changes:
        if ch in "+-":
            adding = ch == "+"
        elif ch in "iw":
            if adding:
                modes.add(ch)
            else:
                modes.discard(ch)
        else:
            unknown = True
    new = "".join(sorted(modes))
    if unknown:
        s.reply(N.ERR_UMODEUNKNOWNFLAG, "Unknown MODE flag")
    added = "".join(m for m in new if m not in s.umodes)
    removed = "".join(m for m in s.umodes if m not in new)
    s.umodes = new
    if added or removed:
        text = (f"+{added}" if added else "") + (f"-{removed}" if removed else "")
        s.send_line(format_line("MODE", s.user.nick, text, source=s.user.prefix))


def _channel_mode(s: Session, msg: Message, channel: str) -> None:
    room = s.engine.find_room(channel)
    if room is None:
        s.reply(N.ERR_NOSUCHCHANNEL, channel, "No such channel")
        return
    if len(msg.params) == 1:
        s.reply(N.RPL_CHANNELMODEIS, room.name, "+" + room.modes)
        s.reply(N.RPL_CREATIONTIME, room.name, str(int(room.created)))
        return
    changes = msg.params[1]
    if changes.lstrip("+") == "b" and len(msg.params) == 2:  # ban list query: always empty
        s.reply(N.RPL_ENDOFBANLIST, room.name, "End of channel ban list")
        return
    assert s.user is not None
    if not room.is_op(s.user):
        s.reply(N.ERR_CHANOPRIVSNEEDED, room.name, "You're not channel operator")
        return
    adding = True
    for ch in changes:  # +n and +t are always set; nothing else can be changed
        if ch in "+-":
            adding = ch == "+"
        elif not (adding and ch in room.modes):
            s.reply(N.ERR_UNKNOWNMODE, ch, "is not a mode this server can change")
            return


COMMANDS = {
    "JOIN": Command(cmd_join, 1),
    "PART": Command(cmd_part, 1),
    "TOPIC": Command(cmd_topic, 1),
    "NAMES": Command(cmd_names),
    "LIST": Command(cmd_list),
    "MODE": Command(cmd_mode, 1),
}
