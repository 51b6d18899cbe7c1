"""Running a channel: MODE (channel and user modes), KICK and INVITE (pure).

Mode strings are parsed by :mod:`chat.core.modes` (the same parser the HTTP API uses);
the engine applies what the parser let through and answers with the MODE line everyone
saw, which is echoed here, plus the changes it had to skip (401, 441, 478).
"""

from __future__ import annotations

from ...core.clock import Now
from ...core.hub import Room, User
from ...core.model import ModeResult
from ...core.modes import parse_channel_modes, parse_user_modes
from .. import numerics as N
from ..caps import KICKLEN, MAX_TARGETS
from ..message import Message, format_line
from ..session import Session
from .table import Command


def cmd_mode(s: Session, msg: Message, now: Now) -> None:
    target = msg.params[0]
    if target.startswith("#"):
        _channel_mode(s, msg, target, now)
        return
    user = s.user
    assert user is not None
    found = s.engine.find_user(target)
    if found is not user:
        if found is None:
            s.reply(N.ERR_NOSUCHNICK, target, "No such nick/channel")
        else:
            s.reply(N.ERR_USERSDONTMATCH, "Can't change mode for other users")
        return
    if len(msg.params) == 1:
        s.reply(N.RPL_UMODEIS, "+" + user.modes)
        return
    added, removed, errors = parse_user_modes(user.modes, msg.params[1])
    for exc in errors:
        s.hub_error(exc)
    s.expect(s.engine.set_user_modes(user, added, removed, now.wall),
             lambda change: _user_mode_changed(s, user, change))


def _user_mode_changed(s: Session, user: User, change: str) -> None:
    if change:
        s.send_line(format_line("MODE", user.nick, change, source=user.prefix))


def _channel_mode(s: Session, msg: Message, channel: str, now: Now) -> None:
    user = s.user
    assert user is not None
    room = s.engine.find_room(channel)
    if room is None:
        s.reply(N.ERR_NOSUCHCHANNEL, channel, "No such channel")
        return
    member = user.key in room.members
    if len(msg.params) == 1:
        s.reply(N.RPL_CHANNELMODEIS, room.name, *room.mode_params(member))
        s.reply(N.RPL_CREATIONTIME, room.name, str(int(room.created)))
        return
    parsed = parse_channel_modes(room.name, msg.params[1], msg.params[2:])
    if "b" in parsed.lists:
        _ban_list(s, room, member)
    for exc in parsed.errors:
        s.hub_error(exc)
    if parsed.changes:
        s.expect(s.engine.set_mode(user, room.name, parsed.changes, now.wall),
                 lambda result: _mode_changed(s, result))


def _ban_list(s: Session, room: Room, member: bool) -> None:
    """367 per ban and 368 (nothing but 368 for a secret channel one is not in)."""
    if member or not room.secret:
        for ban in room.bans:
            s.reply(N.RPL_BANLIST, room.name, ban.mask, ban.by, str(int(ban.ts)))
    s.reply(N.RPL_ENDOFBANLIST, room.name, "End of channel ban list")


def _mode_changed(s: Session, result: ModeResult) -> None:
    for exc in result.refused:
        s.hub_error(exc)
    if result.event is not None:
        s.echo(result.event)


def cmd_kick(s: Session, msg: Message, now: Now) -> None:
    """``KICK #c nick[,nick...] [:reason]`` (also ``KICK #a,#b n1,n2`` pairwise); one
    KICK line per user; at most MAX_TARGETS users, the rest silently dropped."""
    user = s.user
    assert user is not None
    channels = [c for c in msg.params[0].split(",") if c]
    nicks = [n for n in msg.params[1].split(",") if n][:MAX_TARGETS]
    reason = msg.params[2][:KICKLEN] if len(msg.params) > 2 else ""
    if not channels or not nicks:
        s.reply(N.ERR_NEEDMOREPARAMS, "KICK", "Not enough parameters")
        return
    pairs = zip(channels, nicks, strict=False) if len(channels) == len(nicks) > 1 \
        else ((channels[0], nick) for nick in nicks)
    for channel, nick in pairs:
        s.expect(s.engine.kick(user, channel, nick, reason, now.wall), s.echo)


def cmd_invite(s: Session, msg: Message, now: Now) -> None:
    """``INVITE nick #chan`` (341 to us, INVITE to them); ``INVITE`` alone lists ours."""
    user = s.user
    assert user is not None
    if not msg.params:
        for name in s.engine.invited_to(user):
            s.reply(N.RPL_INVITELIST, name)
        s.reply(N.RPL_ENDOFINVITELIST, "End of /INVITE list")
        return
    if len(msg.params) < 2:
        s.reply(N.ERR_NEEDMOREPARAMS, "INVITE", "Not enough parameters")
        return
    s.expect(s.engine.invite(user, msg.params[0], msg.params[1], now.wall),
             lambda event: s.reply(N.RPL_INVITING, event.target, event.args[0]))


COMMANDS = {
    "MODE": Command(cmd_mode, 1),
    "KICK": Command(cmd_kick, 2),
    "INVITE": Command(cmd_invite),
}
