"""What the server advertises: IRCv3 capabilities, protocol limits (005) and ServerInfo."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .. import __version__
from ..config import Config
from ..core.model import PREFIX_TOKEN
from ..core.modes import CHANMODES, KEYLEN, MAX_BANS, MAX_MODES
from ..core.pending import Pending
from ..core.people import REALNAME_LEN

VERSION = f"chatlab-{__version__}"
USERLEN = 16
AWAYLEN = 200
KICKLEN = 255
MAX_TARGETS = 4          # PRIVMSG/NOTICE/TAGMSG/KICK targets per command (005 TARGMAX)
CHATHISTORY_MAX = 1000   # most events one CHATHISTORY command returns (005 CHATHISTORY)

# Capabilities offered in CAP LS, as bits of Session.caps.
CAP_MESSAGE_TAGS = 1
CAP_SERVER_TIME = 2
CAP_ECHO_MESSAGE = 4
CAP_BATCH = 8
CAP_CHATHISTORY = 16
CAP_EVENT_PLAYBACK = 32
CAP_MULTI_PREFIX = 64
CAP_USERHOST_IN_NAMES = 128
CAP_AWAY_NOTIFY = 256
CAP_EXTENDED_JOIN = 512
CAP_CHGHOST = 1024
CAP_SETNAME = 2048
CAP_CAP_NOTIFY = 4096
CAP_LABELED_RESPONSE = 8192
CAP_STANDARD_REPLIES = 16384
CAP_INVITE_NOTIFY = 32768
CAPABILITIES = {
    "message-tags": CAP_MESSAGE_TAGS,
    "server-time": CAP_SERVER_TIME,
    "echo-message": CAP_ECHO_MESSAGE,
    "batch": CAP_BATCH,
    "draft/chathistory": CAP_CHATHISTORY,
    "draft/event-playback": CAP_EVENT_PLAYBACK,
    "multi-prefix": CAP_MULTI_PREFIX,
    "userhost-in-names": CAP_USERHOST_IN_NAMES,
    "away-notify": CAP_AWAY_NOTIFY,
    "extended-join": CAP_EXTENDED_JOIN,
    "chghost": CAP_CHGHOST,
    "setname": CAP_SETNAME,
    "cap-notify": CAP_CAP_NOTIFY,
    "labeled-response": CAP_LABELED_RESPONSE,
    "standard-replies": CAP_STANDARD_REPLIES,
    "invite-notify": CAP_INVITE_NOTIFY,
}
CAP_LS = " ".join(CAPABILITIES)
# Transient events a client gets only with a cap (see Session.offer).
OFFERED = {"tagmsg": CAP_MESSAGE_TAGS, "away": CAP_AWAY_NOTIFY, "setname": CAP_SETNAME,
           "chghost": CAP_CHGHOST, "invite": CAP_INVITE_NOTIFY}

Offload = Callable[[Callable[[], Any]], Pending[Any]]


def run_here(work: Callable[[], Any]) -> Pending[Any]:
    """Run ``work`` now (pure tests; the adapter runs it in a worker thread instead)."""
    return Pending.ok(work())


class ServerInfo:
    """What every session of one server shares: names, MOTD, password, operators, 005.

    ``offload`` runs slow pure work (an OPER password hash) and settles a Pending with
    its result; the adapter points it at a worker thread so the loop never waits on it.
    """

    __slots__ = ("name", "network", "created", "motd", "password", "opers", "isupport",
                 "offload")

    def __init__(self, config: Config, created: float) -> None:
        self.name = config.server_name
        self.network = config.network
        self.created = created
        self.motd = config.motd.split("\n") if config.motd else []
        self.password = config.password
        self.opers = dict(entry.split(":", 1) for entry in config.oper)
        self.offload: Offload = run_here
        targets = ",".join(f"{c}:{MAX_TARGETS}" for c in ("PRIVMSG", "NOTICE", "TAGMSG", "KICK"))
        tokens = [
            f"AWAYLEN={AWAYLEN}", "CASEMAPPING=rfc1459", f"CHANLIMIT=#:{config.max_channels}",
            f"CHANMODES={CHANMODES}", f"CHANNELLEN={config.channellen}", "CHANTYPES=#",
            f"CHATHISTORY={CHATHISTORY_MAX}", "ELIST=CMNTU", f"KEYLEN={KEYLEN}",
            f"KICKLEN={KICKLEN}", f"MAXLIST=b:{MAX_BANS}", f"MAXTARGETS={MAX_TARGETS}",
            f"MODES={MAX_MODES}", "MSGREFTYPES=msgid,timestamp", f"NAMELEN={REALNAME_LEN}",
            f"NETWORK={config.network}", f"NICKLEN={config.nicklen}", f"PREFIX={PREFIX_TOKEN}",
            "SAFELIST", f"TARGMAX={targets},JOIN:,PART:,NAMES:,LIST:,WHOIS:1",
            f"TOPICLEN={config.topiclen}", f"USERLEN={USERLEN}", "WHOX",
        ]
        self.isupport = [tokens[i:i + 12] for i in range(0, len(tokens), 12)]
