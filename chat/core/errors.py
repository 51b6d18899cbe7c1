"""Refusals of hub and engine operations, each with a stable ``code`` (pure).

Adapters map a code to their own answer through one table each: an IRC numeric
(:data:`chat.irc.numerics.HUB_ERRORS`) or an HTTP status (:data:`chat.http.api.HUB_STATUS`).
"""

from __future__ import annotations


class HubError(Exception):
    """A refused operation.

    ``subject`` is the nick or channel it is about ("" for errors about no one, such as
    501); ``params`` is every parameter an IRC numeric puts before the message (the
    subject, then e.g. the channel of a 441).
    """

    code = "error"

    def __init__(self, subject: str, message: str, *more: str) -> None:
        super().__init__(message)
        self.subject = subject
        self.message = message
        self.params = (subject, *more) if subject else more


class NickInvalid(HubError):
    code = "nick_invalid"


class NickInUse(HubError):
    code = "nick_in_use"


class NoSuchNick(HubError):
    code = "no_such_nick"


class ChannelInvalid(HubError):
    code = "channel_invalid"


class NoSuchChannel(HubError):
    code = "no_such_channel"


class NotOnChannel(HubError):
    code = "not_on_channel"


class CannotSend(HubError):
    """A message the channel's modes refuse (+n outsider, +m without voice, banned)."""

    code = "cannot_send"


class TooManyChannels(HubError):
    code = "too_many_channels"


class NotChanOp(HubError):
    code = "not_chanop"


class UserNotInChannel(HubError):
    """The nick a MODE or KICK names is not in the channel: ``(nick, channel)``."""

    code = "user_not_in_channel"


class UserOnChannel(HubError):
    """INVITE of someone who is in the channel already: ``(nick, channel)``."""

    code = "user_on_channel"


class ChannelFull(HubError):
    code = "channel_full"


class InviteOnly(HubError):
    code = "invite_only"


class Banned(HubError):
    code = "banned"


class BadChannelKey(HubError):
    code = "bad_key"


class UnknownMode(HubError):
    """A mode letter this server does not know; the subject is the letter."""

    code = "unknown_mode"


class InvalidModeParam(HubError):
    """A mode parameter that is not valid: ``(target, mode letter, parameter)``."""

    code = "invalid_mode_param"


class ListFull(HubError):
    """The ban list is at its limit: ``(channel, mode letter)``."""

    code = "list_full"


class UnknownUserMode(HubError):
    code = "unknown_umode"


class UsersDontMatch(HubError):
    code = "users_dont_match"


class NotOper(HubError):
    """A command for server operators only (KILL, WALLOPS, CHGHOST)."""

    code = "no_privileges"


class InvalidRealname(HubError):
    code = "invalid_realname"


class ShuttingDown(HubError):
    """The server is draining before it stops: nothing new is accepted (leaving still is)."""

    code = "shutting_down"


class EngineUnavailable(HubError):
    """The engine cannot take the operation now (its store is unreachable); retry later."""

    code = "engine_unavailable"


class InvalidHost(HubError):
    """A CHGHOST user or host that cannot be one."""

    code = "invalid_host"
