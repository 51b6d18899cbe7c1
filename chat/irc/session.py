"""One IRC client's session: registration, capabilities and commands (pure: no I/O, no clock).

The adapter (:mod:`chat.irc.server`) feeds each received line to :meth:`Session.receive`
with the current time and writes out :attr:`Session.pending` (bytes the session queued)
when the session calls its ``wakeup`` callback.  The session is also the hub
:class:`~chat.hub.Sink` of its user: :meth:`Session.deliver` appends an event's cached wire
bytes to the same buffer.  The session never closes anything itself: after
:meth:`Session.end` (or a QUIT / bad password) its state is CLOSED and the adapter flushes
and closes the socket.

States (``State``): REGISTERING -> REGISTERED -> CLOSED, or REGISTERING -> CLOSED;
:data:`TRANSITIONS` is the whole table and :meth:`Session._move` refuses anything else.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from datetime import UTC, datetime
from typing import NamedTuple

from ..core.heartbeat import Heartbeat
from ..core.hub import Event, Hub, HubError, NickInUse, NickInvalid, User
from ..core.stats import TransportStats
from . import numerics as N
from . import queries
from .caps import (
    CAP_ECHO_MESSAGE,
    CAP_LS,
    CAP_MESSAGE_TAGS,
    CAP_SERVER_TIME,
    CAPABILITIES,
    MAX_TARGETS,
    USERLEN,
    VERSION,
    ServerInfo,
)
from .events import TAG_MSGID, TAG_TIME, WIRE_KEYS, encode_event
from .message import Message, ParseError, decode, encode, format_line, parse

PRESENCE_KINDS = frozenset({"join", "part", "quit", "nick"})  # flushed lazily when alone


class State(enum.Enum):
    REGISTERING = "registering"
    REGISTERED = "registered"
    CLOSED = "closed"


TRANSITIONS = {
    State.REGISTERING: frozenset({State.REGISTERED, State.CLOSED}),
    State.REGISTERED: frozenset({State.CLOSED}),
    State.CLOSED: frozenset(),
}


Handler = Callable[["Session", Message, float], None]


class Command(NamedTuple):
    """How a command is dispatched: its handler and the checks made before calling it."""

    handler: Handler
    min_params: int = 0      # fewer -> 461
    registered: bool = True  # before registration -> 451
    active: bool = True      # counts as activity for the idle timeout


class Session:
    """The protocol state of one connection (see the module docstring for the contract)."""

    __slots__ = ("hub", "info", "stats", "host", "heartbeat", "wakeup", "sendq", "state",
                 "nick", "username", "realname", "password", "negotiating", "caps",
                 "variant", "wire_key", "user", "pending", "pending_size", "umodes", "batches",
                 "close_reason", "lazy_wakeup", "pending_lazy")

    def __init__(self, hub: Hub, info: ServerInfo, stats: TransportStats, host: str,
                 heartbeat: Heartbeat, wakeup: Callable[[], None], sendq: int,
                 lazy_wakeup: Callable[[], None] | None = None) -> None:
        self.hub = hub
        self.info = info
        self.stats = stats
        self.host = host
        self.heartbeat = heartbeat
        self.wakeup = wakeup      # called when pending goes from empty to not, or overflows
        # Presence lines (JOIN/PART/QUIT/NICK) alone only need a lazy flush: a set-up burst
        # into big channels then costs one write per member per presence tick, not per join.
        self.lazy_wakeup = lazy_wakeup or wakeup
        self.pending_lazy = False  # pending holds presence lines only, awaiting a lazy flush
        self.sendq = sendq
        self.state = State.REGISTERING
        self.nick: str | None = None
        self.username: str | None = None
        self.realname = ""
        self.password: str | None = None
        self.negotiating = False  # CAP LS/REQ seen, CAP END not yet
        self.caps = 0
        self.variant = 0          # tag variant: TAG_TIME | TAG_MSGID bits
        self.wire_key = WIRE_KEYS[0]  # this variant's key into Event.wire
        self.user: User | None = None
        self.pending: list[bytes] | None = None  # queued bytes (None when empty: idle is cheap)
        self.pending_size = 0
        self.umodes = ""
        self.batches = 0          # batch reference counter
        self.close_reason: str | None = None

    # --- output --------------------------------------------------------------------------
    def deliver(self, event: Event) -> None:
        """Queue ``event`` (the hub's push).

        The broadcast hot path (called once per member per message): one dict lookup
        for bytes formatted once per tag variant, one append, and a wakeup only for the
        first line of a flush (or past the send queue limit).
        """
        wire = event.wire
        if wire is None:
            wire = event.wire = {}
        try:
            data = wire[self.wire_key]
        except KeyError:
            data = wire[self.wire_key] = encode_event(event, self.variant)
        pending = self.pending
        if pending is None:
            self.pending = [data]
            if event.kind in PRESENCE_KINDS:
                self.pending_lazy = True
                self.lazy_wakeup()
            else:
                self.wakeup()
        else:
            pending.append(data)
            if self.pending_lazy and event.kind not in PRESENCE_KINDS:
                self.pending_lazy = False
                self.wakeup()  # a message does not wait for the presence lines before it
        size = self.pending_size + len(data)
        self.pending_size = size
        self.stats.deliveries += 1
        if size > self.sendq:
            self.wakeup()

    def send_bytes(self, data: bytes) -> None:
        """Queue already encoded bytes."""
        pending = self.pending
        if pending is None:
            self.pending = [data]
            self.wakeup()
        else:
            pending.append(data)
            if self.pending_lazy:
                self.pending_lazy = False
                self.wakeup()
        size = self.pending_size + len(data)
        self.pending_size = size
        if size > self.sendq:
            self.wakeup()

    def send_line(self, line: str) -> None:
        """Queue one formatted line (CR LF is added)."""
        self.send_bytes(encode(line))

    def send(self, command: str, *params: str) -> None:
        """Queue a line from the server: ``:<server> COMMAND params``."""
        self.send_line(format_line(command, *params, source=self.info.name))

    def reply(self, code: str, *params: str, trailing: bool = False) -> None:
        """Queue a numeric to this client; error numerics are counted in stats.errors.

        ``trailing`` forces ``:`` on the last parameter (for lists, which may be one word).
        """
        if code[0] in "45":
            self.stats.errors[code] += 1
        middle = [_safe_param(p) for p in params[:-1]]
        self.send_line(format_line(code, self.nick or "*", *middle, *params[-1:],
                                   source=self.info.name, trailing=trailing))

    def take_pending(self) -> list[bytes]:
        """Hand the queued bytes to the adapter and start a new buffer."""
        pending = self.pending
        self.pending = None
        self.pending_size = 0
        self.pending_lazy = False
        return pending or []

    # --- input ---------------------------------------------------------------------------
    def receive(self, raw: bytes, now: float) -> None:
        """Handle one received line (without CR LF, already checked for length)."""
        if self.state is State.CLOSED:
            return
        self.stats.requests += 1
        try:
            msg = parse(decode(raw))
        except ParseError:
            return  # an empty or prefix-only line: ignored, as servers do
        command = COMMANDS.get(msg.command)
        if command is None:
            self.reply(N.ERR_UNKNOWNCOMMAND, msg.command[:32], "Unknown command")
            return
        if command.active:
            self.heartbeat.active(now)
        if command.registered and self.state is not State.REGISTERED:
            self.reply(N.ERR_NOTREGISTERED, "You have not registered")
            return
        if len(msg.params) < command.min_params:
            self.reply(N.ERR_NEEDMOREPARAMS, msg.command, "Not enough parameters")
            return
        command.handler(self, msg, now)

    def line_too_long(self) -> None:
        """The adapter dropped a line over the length limit: tell the client (417)."""
        self.reply(N.ERR_INPUTTOOLONG, "Input line was too long")

    def end(self, reason: str, now: float, error: str | None = None,
            quit_hub: bool = True) -> None:
        """Queue the ERROR line and leave the hub (QUIT with ``reason`` to shared channels).

        ``error`` replaces the default ``Closing Link: <reason>`` text.  With ``quit_hub``
        False the caller calls :meth:`leave_hub` later (server shutdown tells everybody
        first).  Idempotent.
        """
        if self.state is State.CLOSED:
            return
        self._move(State.CLOSED)
        self.close_reason = reason
        self.send_line(format_line("ERROR", error if error is not None else
                                   f"Closing Link: {reason}"))
        if quit_hub:
            self.leave_hub(reason, now)

    def leave_hub(self, reason: str, now: float) -> None:
        """Quit the hub (without queueing anything); safe to call more than once."""
        user, self.user = self.user, None
        if user is not None:
            self.hub.quit(user, reason, now)

    def send_ping(self) -> None:
        """The heartbeat asks for a PING."""
        self.send("PING", self.info.name)

    def _move(self, new: State) -> None:
        if new not in TRANSITIONS[self.state]:
            raise RuntimeError(f"illegal session transition {self.state} -> {new}")
        self.state = new

    # --- registration --------------------------------------------------------------------
    def cmd_cap(self, msg: Message, now: float) -> None:
        sub = msg.params[0].upper()
        if sub == "LS":
            if self.state is State.REGISTERING:
                self.negotiating = True
            self._send_cap("LS", CAP_LS)
        elif sub == "LIST":
            enabled = " ".join(name for name, bit in CAPABILITIES.items() if self.caps & bit)
            self._send_cap("LIST", enabled)
        elif sub == "REQ":
            if self.state is State.REGISTERING:
                self.negotiating = True
            self._cap_req(msg.params[1] if len(msg.params) > 1 else "")
        elif sub == "END":
            self.negotiating = False
            self._try_register(now)
        else:
            self.reply(N.ERR_INVALIDCAPCMD, sub[:32], "Invalid CAP command")

    def _cap_req(self, text: str) -> None:
        caps = self.caps
        for token in text.split():
            bit = CAPABILITIES.get(token.removeprefix("-"))
            if bit is None:
                self._send_cap("NAK", text)
                return
            caps = caps & ~bit if token.startswith("-") else caps | bit
        self.caps = caps
        self.variant = ((TAG_TIME if caps & CAP_SERVER_TIME else 0)
                        | (TAG_MSGID if caps & CAP_MESSAGE_TAGS else 0))
        self.wire_key = WIRE_KEYS[self.variant]
        self._send_cap("ACK", text)

    def _send_cap(self, sub: str, text: str) -> None:
        self.send_line(format_line("CAP", self.nick or "*", sub, text, source=self.info.name,
                                   trailing=True))

    def cmd_pass(self, msg: Message, now: float) -> None:
        if self.state is not State.REGISTERING:
            self.reply(N.ERR_ALREADYREGISTERED, "You may not reregister")
            return
        self.password = msg.params[0]

    def cmd_nick(self, msg: Message, now: float) -> None:
        new = msg.params[0] if msg.params else ""
        if not new:
            self.reply(N.ERR_NONICKNAMEGIVEN, "No nickname given")
            return
        if self.user is None:
            try:
                self.hub.check_nick(new)
            except HubError as exc:
                self._nick_error(exc)
                return
            self.nick = new
            self._try_register(now)
            return
        self._rename(self.user, new, now)

    def _rename(self, user: User, new: str, now: float) -> None:
        old_prefix = user.prefix
        try:
            events = self.hub.rename(user, new, now)
        except HubError as exc:
            self._nick_error(exc)
            return
        if user.nick == self.nick:
            return  # no change at all
        self.nick = user.nick
        if events:
            self._echo(events[0])  # the echo carries the same msgid as the others got
        else:
            self.send_line(format_line("NICK", user.nick, source=old_prefix, trailing=True))

    def _nick_error(self, exc: HubError) -> None:
        if isinstance(exc, NickInUse):
            self.reply(N.ERR_NICKNAMEINUSE, exc.subject, "Nickname is already in use")
        else:
            self.reply(N.ERR_ERRONEUSNICKNAME, exc.subject, "Erroneous nickname")

    def cmd_user(self, msg: Message, now: float) -> None:
        if self.state is not State.REGISTERING or self.username is not None:
            self.reply(N.ERR_ALREADYREGISTERED, "You may not reregister")
            return
        name = "".join(ch for ch in msg.params[0] if ch.isalnum() or ch in "-_.~")
        self.username = name[:USERLEN] or "user"
        self.realname = msg.params[3]
        self._try_register(now)

    def _try_register(self, now: float) -> None:
        if (self.state is not State.REGISTERING or self.negotiating or self.nick is None
                or self.username is None):
            return
        if self.info.password is not None and self.password != self.info.password:
            self.reply(N.ERR_PASSWDMISMATCH, "Password incorrect")
            self.end("Bad password", now)
            return
        try:
            self.user = self.hub.register(self.nick, self.username, self.host, self.realname,
                                          "irc", self, now)
        except (NickInUse, NickInvalid) as exc:  # taken while we negotiated
            self._nick_error(exc)
            self.nick = None
            return
        self._move(State.REGISTERED)
        self.heartbeat.register(now)
        self._welcome()

    def _welcome(self) -> None:
        info, user = self.info, self.user
        assert user is not None
        created = datetime.fromtimestamp(info.created, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        self.reply(N.RPL_WELCOME, f"Welcome to the {info.network} IRC Network {user.prefix}")
        self.reply(N.RPL_YOURHOST, f"Your host is {info.name}, running version {VERSION}")
        self.reply(N.RPL_CREATED, f"This server was created {created}")
        self.reply(N.RPL_MYINFO, info.name, VERSION, "iw", "bnot", "bo")
        self.send_isupport()
        queries.send_lusers(self)
        queries.send_motd(self)

    def send_isupport(self) -> None:
        for tokens in self.info.isupport:
            self.reply(N.RPL_ISUPPORT, *tokens, "are supported by this server")

    # --- connection ----------------------------------------------------------------------
    def cmd_ping(self, msg: Message, now: float) -> None:
        if not msg.params or not msg.params[0]:
            self.reply(N.ERR_NOORIGIN, "No origin specified")
            return
        self.send("PONG", self.info.name, msg.params[0])

    def cmd_pong(self, msg: Message, now: float) -> None:
        self.stats.pongs_received += 1  # the adapter already counted the line as an answer

    def cmd_quit(self, msg: Message, now: float) -> None:
        text = msg.params[0] if msg.params else ""
        self.end(f"Quit: {text}" if text else "Client Quit", now)

    # --- channels ------------------------------------------------------------------------
    def cmd_join(self, msg: Message, now: float) -> None:
        user = self.user
        assert user is not None
        if msg.params[0] == "0":
            for room in list(user.rooms.values()):
                self._echo(self.hub.part(user, room.name, "Left all channels", now))
            return
        for channel in msg.params[0].split(","):
            if not channel:
                continue
            try:
                room, event = self.hub.join(user, channel, now)
            except HubError as exc:
                code = N.ERR_TOOMANYCHANNELS if exc.code == "too_many_channels" else \
                    N.ERR_NOSUCHCHANNEL
                self.reply(code, channel, exc.message)
                continue
            if event is None:
                continue  # already there: nothing to say
            self._echo(event)
            if room.topic:
                self.reply(N.RPL_TOPIC, room.name, room.topic)
                self.reply(N.RPL_TOPICWHOTIME, room.name, room.topic_by, str(int(room.topic_ts)))
            queries.send_names(self, room)

    def cmd_part(self, msg: Message, now: float) -> None:
        user = self.user
        assert user is not None
        reason = msg.params[1] if len(msg.params) > 1 else ""
        for channel in msg.params[0].split(","):
            if not channel:
                continue
            try:
                self._echo(self.hub.part(user, channel, reason, now))
            except HubError as exc:
                code = N.ERR_NOTONCHANNEL if exc.code == "not_on_channel" else \
                    N.ERR_NOSUCHCHANNEL
                self.reply(code, channel, exc.message)

    def cmd_topic(self, msg: Message, now: float) -> None:
        user = self.user
        assert user is not None
        channel = msg.params[0]
        room = self.hub.find_room(channel)
        if room is None:
            self.reply(N.ERR_NOSUCHCHANNEL, channel, "No such channel")
        elif len(msg.params) == 1:
            if room.topic:
                self.reply(N.RPL_TOPIC, room.name, room.topic)
                self.reply(N.RPL_TOPICWHOTIME, room.name, room.topic_by, str(int(room.topic_ts)))
            else:
                self.reply(N.RPL_NOTOPIC, room.name, "No topic is set")
        else:
            try:
                self._echo(self.hub.set_topic(user, channel, msg.params[1], now))
            except HubError as exc:
                code = N.ERR_CHANOPRIVSNEEDED if exc.code == "not_chanop" else \
                    N.ERR_NOTONCHANNEL
                self.reply(code, room.name, exc.message)

    # --- messages ------------------------------------------------------------------------
    def cmd_privmsg(self, msg: Message, now: float) -> None:
        """PRIVMSG and NOTICE.  NOTICE never gets an error reply (RFC 2812 3.3.2)."""
        user = self.user
        assert user is not None
        notice = msg.command == "NOTICE"
        kind = "notice" if notice else "message"
        params = msg.params
        if not params or not params[0]:
            if not notice:
                self.reply(N.ERR_NORECIPIENT, f"No recipient given ({msg.command})")
            return
        if len(params) < 2 or not params[1]:
            if not notice:
                self.reply(N.ERR_NOTEXTTOSEND, "No text to send")
            return
        targets = params[0].split(",")
        if len(targets) > MAX_TARGETS:
            if not notice:
                self.reply(N.ERR_TOOMANYTARGETS, params[0], "Too many recipients")
            return
        user.last_active = now
        for target in targets:
            self._send_to(user, target, params[1], kind, now)

    def _send_to(self, user: User, target: str, text: str, kind: str, now: float) -> None:
        notice = kind == "notice"
        if target.startswith("#"):
            try:
                event = self.hub.say(user, target, text, now, kind)
            except HubError as exc:
                if not notice:
                    code = N.ERR_CANNOTSENDTOCHAN if exc.code == "not_on_channel" else \
                        N.ERR_NOSUCHCHANNEL
                    text = "Cannot send to channel" if code == N.ERR_CANNOTSENDTOCHAN else \
                        "No such channel"
                    self.reply(code, target, text)
                return
            self.stats.messages += 1
            if self.caps & CAP_ECHO_MESSAGE:
                self._echo(event)
            return
        recipient = self.hub.find_user(target)
        if recipient is None:
            if not notice:
                self.reply(N.ERR_NOSUCHNICK, target, "No such nick/channel")
            return
        event = self.hub.tell(user, target, text, now, kind)
        self.stats.messages += 1
        if self.caps & CAP_ECHO_MESSAGE and recipient is not user:
            self._echo(event)  # (to ourselves the hub delivered it already)
        if recipient.away is not None and not notice:
            self.reply(N.RPL_AWAY, recipient.nick, recipient.away)

    def _echo(self, event: Event) -> None:
        """Send our own event (JOIN, PART, NICK, TOPIC, echo-message) back to us.

        Encoded here, not through :meth:`deliver`'s cache: the hub has finished its push, and
        a cache refilled now would stay in the room history for as long as the event does.
        """
        self.send_bytes(encode_event(event, self.variant))

    def cmd_tagmsg(self, msg: Message, now: float) -> None:
        """TAGMSG (client-only tags, e.g. typing notices): accepted and not relayed."""


def _safe_param(param: str) -> str:
    """A client-supplied value made safe as a middle parameter of a reply."""
    if not param:
        return "*"
    if " " in param or param[0] == ":":
        return param.replace(" ", "_").lstrip(":") or "*"
    return param


COMMANDS: dict[str, Command] = {
    "CAP": Command(Session.cmd_cap, 1, registered=False),
    "PASS": Command(Session.cmd_pass, 1, registered=False),
    "NICK": Command(Session.cmd_nick, 0, registered=False),
    "USER": Command(Session.cmd_user, 4, registered=False),
    "PING": Command(Session.cmd_ping, 0, registered=False, active=False),
    "PONG": Command(Session.cmd_pong, 0, registered=False, active=False),
    "QUIT": Command(Session.cmd_quit, 0, registered=False),
    "JOIN": Command(Session.cmd_join, 1),
    "PART": Command(Session.cmd_part, 1),
    "TOPIC": Command(Session.cmd_topic, 1),
    "PRIVMSG": Command(Session.cmd_privmsg),
    "NOTICE": Command(Session.cmd_privmsg),
    "TAGMSG": Command(Session.cmd_tagmsg, 1),
    "NAMES": Command(queries.cmd_names),
    "WHO": Command(queries.cmd_who),
    "WHOIS": Command(queries.cmd_whois),
    "WHOWAS": Command(queries.cmd_whowas),
    "USERHOST": Command(queries.cmd_userhost, 1),
    "ISON": Command(queries.cmd_ison, 1),
    "AWAY": Command(queries.cmd_away),
    "MODE": Command(queries.cmd_mode, 1),
    "LIST": Command(queries.cmd_list),
    "MOTD": Command(queries.cmd_motd),
    "LUSERS": Command(queries.cmd_lusers),
    "VERSION": Command(queries.cmd_version),
    "TIME": Command(queries.cmd_time),
    "CHATHISTORY": Command(queries.cmd_chathistory, 1),
}
