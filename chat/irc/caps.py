"""What the server advertises: IRCv3 capabilities, protocol limits (005) and ServerInfo."""

from __future__ import annotations

from .. import __version__
from ..config import Config

VERSION = f"chatlab-{__version__}"
USERLEN = 16
AWAYLEN = 200
MAX_TARGETS = 4          # PRIVMSG/NOTICE targets per command (005 TARGMAX)
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
CAPABILITIES = {
    "message-tags": CAP_MESSAGE_TAGS,
    "server-time": CAP_SERVER_TIME,
    "echo-message": CAP_ECHO_MESSAGE,
    "batch": CAP_BATCH,
    "draft/chathistory": CAP_CHATHISTORY,
    "draft/event-playback": CAP_EVENT_PLAYBACK,
    "multi-prefix": CAP_MULTI_PREFIX,
    "userhost-in-names": CAP_USERHOST_IN_NAMES,
}
CAP_LS = " ".join(CAPABILITIES)


class ServerInfo:
    """What every session of one server shares: names, MOTD, password, 005 tokens."""

    __slots__ = ("name", "network", "created", "motd", "password", "isupport")

    def __init__(self, config: Config, created: float) -> None:
        self.name = config.server_name
        self.network = config.network
        self.created = created
        self.motd = config.motd.split("\n") if config.motd else []
        self.password = config.password
        tokens = [
            f"AWAYLEN={AWAYLEN}", "CASEMAPPING=rfc1459", f"CHANLIMIT=#:{config.max_channels}",
            "CHANMODES=b,,,nt", f"CHANNELLEN={config.channellen}", "CHANTYPES=#",
            f"CHATHISTORY={CHATHISTORY_MAX}", "MSGREFTYPES=msgid,timestamp",
            f"NETWORK={config.network}", f"NICKLEN={config.nicklen}", "PREFIX=(o)@",
            f"TARGMAX=PRIVMSG:{MAX_TARGETS},NOTICE:{MAX_TARGETS},JOIN:,PART:,NAMES:,WHOIS:1",
            f"TOPICLEN={config.topiclen}", f"USERLEN={USERLEN}", f"MAXTARGETS={MAX_TARGETS}",
        ]
        self.isupport = [tokens[i:i + 12] for i in range(0, len(tokens), 12)]
