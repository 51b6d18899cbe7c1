"""Refusals of hub and engine operations, each with a stable ``code`` (pure).

Adapters map a code to their own answer through one table each: an IRC numeric
(:data:`chat.irc.numerics.HUB_ERRORS`) or an HTTP status (:data:`chat.http.api.HUB_STATUS`).
"""

from __future__ import annotations


class HubError(Exception):
    """A refused operation.  ``subject`` is the nick or channel it is about."""

    code = "error"

    def __init__(self, subject: str, message: str) -> None:
        super().__init__(message)
        self.subject = subject
        self.message = message


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
    """A message to a channel the sender may not speak in (not a member: +n)."""

    code = "cannot_send"


class TooManyChannels(HubError):
    code = "too_many_channels"


class NotChanOp(HubError):
    code = "not_chanop"


class EngineUnavailable(HubError):
    """The engine cannot take the operation now (its store is unreachable); retry later."""

    code = "engine_unavailable"
