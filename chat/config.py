"""Every limit, timeout and address of the server, in one frozen dataclass.

Each field carries its help text in ``metadata`` so that ``chat serve --help`` (built from
this class in :mod:`chat.cli`) shows every limit with its default, and so that each is also
readable from the environment as ``CHAT_<NAME>``.  Seconds are floats; ``0`` disables a
timeout where the help says so.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from .core.passwords import parse_hash


def _opt(default: Any, help: str, group: str) -> Any:
    return field(default=default, metadata={"help": help, "group": group})


@dataclass(frozen=True, slots=True)
class Config:
    """Server configuration. Build it with keyword arguments; unknown names are errors."""

    # --- addresses and identity -------------------------------------------------------
    host: str = _opt("127.0.0.1", "Address to listen on (both ports).", "server")
    irc_port: int = _opt(6667, "TCP port for IRC (0 picks a free port).", "server")
    http_port: int = _opt(8080, "TCP port for the HTTP API (0 picks a free port).", "server")
    tls_cert: str | None = _opt(
        None, "PEM certificate chain: turns TLS on (IRC on --ircs-port, HTTPS and WSS on the "
        "HTTP port or --https-port); reloaded on SIGHUP.", "server")
    tls_key: str | None = _opt(None, "PEM private key of --tls-cert (default: in that file).",
                               "server")
    ircs_port: int = _opt(6697, "TCP port for IRC over TLS (with --tls-cert; 0 picks a free "
                          "port).", "server")
    plain_irc: bool = _opt(True, "With --tls-cert, also serve plain IRC on --irc-port "
                           "(--no-plain-irc: IRC over TLS only).", "server")
    https_port: int | None = _opt(
        None, "With --tls-cert, a separate TCP port for HTTPS and WSS, plain HTTP staying on "
        "--http-port (default: the HTTP port itself speaks TLS).", "server")
    server_name: str = _opt("chat.local", "Server name shown to IRC clients.", "server")
    network: str = _opt("ChatLab", "Network name advertised in 005 NETWORK.", "server")
    password: str | None = _opt(
        None, "Connection password every client must give (IRC: PASS; HTTP and WebSocket: "
        "the 'password' field of POST /api/sessions).", "server")
    motd: str = _opt("Welcome to ChatLab: long connections vs short ones, measured.",
                     "Message of the day (lines split on '\\n'; empty sends 422).", "server")
    log_level: str = _opt("info", "Logging level: debug, info, warning, error.", "server")
    oper: tuple[str, ...] = _opt(
        (), "A server operator as NAME:HASH, the hash from `chat oper-hash` (repeatable; "
        "never a plain password).", "server")
    log_format: str = _opt("text", "Log lines as text, or json: one object per line, with "
                           "reason fields on every disconnect.", "server")
    engine: str = _opt(
        "memory", "Where the chat state lives: 'memory' (this process only) or "
        "redis://HOST:PORT/DB (several nodes share rooms, ids, history and sessions).", "server")
    engine_prefix: str = _opt("chat", "Prefix of every Redis key (several chats can share one "
                              "Redis).", "server")
    node_timeout: float = _opt(
        10.0, "Seconds after which a node that stopped refreshing its key in Redis is given "
        "up for lost: its users QUIT and their nicks are free (redis engine).", "server")
    workers: int = _opt(
        1, "Processes sharing the listening ports (SO_REUSEPORT), each a node on the engine "
        "(needs --engine redis://...).", "server")

    # --- hub -----------------------------------------------------------------------------
    history: int = _opt(1000, "Events kept per room (bounded history).", "hub")
    nicklen: int = _opt(30, "Longest nick (005 NICKLEN).", "hub")
    channellen: int = _opt(64, "Longest channel name incl. '#' (005 CHANNELLEN).", "hub")
    topiclen: int = _opt(390, "Longest topic (005 TOPICLEN).", "hub")
    max_channels: int = _opt(50, "Channels one user may be in (005 CHANLIMIT).", "hub")

    # --- IRC heartbeats and reaping --------------------------------------------------------
    registration_timeout: float = _opt(
        30.0, "Seconds to complete NICK/USER before the connection is closed (0 disables).",
        "irc")
    ping_interval: float = _opt(
        25.0, "Seconds of silence from a client before the server sends PING (IRC) or a Ping frame "
        "(WebSocket) (0 disables).", "irc")
    ping_timeout: float = _opt(
        20.0, "Seconds to wait for any reply to a PING (IRC) or Ping frame (WebSocket) before "
        "closing (0 disables: pings are still sent, and never time out).", "irc")
    idle_timeout: float = _opt(
        3600.0, "Seconds without a command other than PING/PONG before reaping IRC and WebSocket "
        "connections (0 disables).",
        "irc")

    # --- IRC abuse limits ----------------------------------------------------------------------
    flood_burst: int = _opt(
        10, "Lines (IRC) or frames (WebSocket) a client may send in a burst (0 disables flood "
        "control).", "irc")
    flood_rate: float = _opt(2.0, "Sustained lines or frames per second once the burst is spent.",
                             "irc")
    recvq: int = _opt(16384, "Bytes of delayed (flood-held) input before 'Excess Flood'.", "irc")
    sendq: int = _opt(1 << 20, "Bytes queued to a slow reader (IRC, SSE, WebSocket) before "
                      "'SendQ exceeded'.", "irc")
    max_clients: int = _opt(
        0, "Most connections at once, every transport together (0: the open-file limit "
        "minus a reserve of 100).",
        "irc")
    max_clients_per_ip: int = _opt(
        20, "Most IRC, HTTP and WebSocket connections from one address, together (loopback "
        "and --per-ip-exempt exempt, 0 disables).", "irc")
    cloak: str = _opt(
        "auto", "Hide IRC users' addresses behind a keyed hash (WHOIS, prefixes): 'auto' "
        "cloaks every address but loopback, 'all' every one, 'off' none.", "irc")
    cloak_secret: str | None = _opt(
        None, "Key of the cloaks, so that an address keeps its cloak across restarts and "
        "nodes (default: a random key per process).", "irc")
    per_ip_exempt: tuple[str, ...] = _opt(
        (), "A network (CIDR, e.g. 172.17.0.0/16: Docker's bridge, where every host client "
        "seems to come from) exempt, like loopback, from the per-address limits "
        "(repeatable; env: space-separated).", "irc")
    flush_interval: float = _opt(
        0.01, "Under load, coalesce each IRC or WebSocket connection's output into one write "
        "per this many seconds; a line after a quiet spell still goes out at once (0: every "
        "loop turn).",
        "irc")
    flush_share: float = _opt(
        0.25, "Adaptive coalescing: under load the flush window grows past --flush-interval "
        "until the writes take at most this share of the core (0: a fixed window).", "irc")
    flush_max: float = _opt(
        0.05, "Seconds the adaptive flush window may grow to at most.", "irc")
    presence_interval: float = _opt(
        0.25, "Seconds JOIN/PART/QUIT/NICK lines alone may wait to share one write per client "
        "(a message flushes them at once; 0: flush them like messages).", "irc")
    presence_max: float = _opt(
        2.0, "Seconds the presence tick may grow to at most: under a join storm it waits "
        "until its writes take at most --flush-share of the core.", "irc")
    shutdown_timeout: float = _opt(
        5.0, "Seconds to flush and close connections on SIGINT/SIGTERM.", "server")
    close_timeout: float = _opt(
        2.0, "Seconds a closing IRC, WebSocket or HTTP connection may take to flush its last "
        "lines (or finish the closing handshake, or stop sending after an error answer) "
        "before it is aborted.", "irc")

    # --- HTTP ------------------------------------------------------------------------------
    keepalive_timeout: float = _opt(
        15.0, "Seconds an idle HTTP keep-alive connection stays open (0 disables keep-alive).",
        "http")
    header_timeout: float = _opt(
        10.0, "Seconds to receive a request's headers and body (slowloris guard; 0 disables).",
        "http")
    max_header: int = _opt(16384, "Largest request head in bytes (431 above).", "http")
    max_body: int = _opt(16384, "Largest request body in bytes (413 above).", "http")
    max_wait: float = _opt(30.0, "Longest long-poll wait a client may ask for, in seconds.",
                           "http")
    sse_heartbeat: float = _opt(15.0, "Seconds between SSE comment heartbeats (0 disables).",
                                "http")
    session_timeout: float = _opt(
        60.0, "Seconds without a request before a polling session expires (0 disables).",
        "http")
    http_rate: float = _opt(50.0, "Sustained requests per second per session (0 disables).",
                            "http")
    http_burst: int = _opt(100, "Requests a session may make in a burst before 429.", "http")
    max_sessions: int = _opt(
        20000, "Most HTTP sessions at once; one more is refused with 503 too_many_sessions "
        "(0: no limit).", "http")
    session_rate: float = _opt(
        20.0, "Sessions one address may create per second, sustained, once its burst is "
        "spent (429 beyond; 0 disables; --per-ip-exempt networks are exempt).", "http")
    session_burst: int = _opt(1000, "Sessions one address may create in a burst.", "http")
    join_members: int = _opt(
        1000, "Most members listed in a join answer (HTTP and WebSocket); the members route "
        "pages through the rest.", "http")

    allowed_host: tuple[str, ...] = _opt(
        (), "A Host name the HTTP port answers (repeatable; '*' allows any; default: the "
        "listen address, localhost, 127.0.0.1 and ::1); others get 421 (DNS rebinding "
        "guard).", "http")
    cors_origin: tuple[str, ...] = _opt(
        (), "An origin (scheme://host[:port]) whose pages may call the API (repeatable; '*' "
        "allows any; none by default).", "http")

    # --- WebSocket ---------------------------------------------------------------------------
    ws_max_message: int = _opt(
        65536, "Largest WebSocket message (all its fragments) in bytes; bigger closes the "
        "connection with 1009.", "ws")
    ws_deflate: bool = _opt(
        False, "Offer permessage-deflate (RFC 7692) to WebSocket clients (costs memory per "
        "connection; see README).", "ws")

    # --- UDP -------------------------------------------------------------------------------
    udp: bool = _opt(True, "Accept the udp lane's datagrams (registrations with an HTTP "
                     "session token, events pushed one datagram each).", "udp")
    udp_port: int = _opt(
        0, "UDP port of the udp lane (0: the same number as the HTTP port, UDP ports being "
        "a space of their own, or a free one if that is taken).", "udp")
    udp_timeout: float = _opt(
        45.0, "Seconds a UDP registration lives without a keepalive (0 disables).", "udp")
    udp_max_datagram: int = _opt(
        1200, "Largest datagram either way, in bytes: a bigger one in is dropped unread; an "
        "event that would not fit goes out as a marker to fetch over HTTP.", "udp")

    def __post_init__(self) -> None:
        # Both names go into IRC lines as one word (the source of every line, 005 NETWORK=).
        if not SERVER_NAME.fullmatch(self.server_name):
            raise ValueError(f"--server-name wants a host name (letters, digits, '.', '-', "
                             f"at most 63), not {self.server_name[:40]!r}")
        if not NETWORK_NAME.fullmatch(self.network):
            raise ValueError(f"--network wants one word of letters, digits, '.', '-', '_' "
                             f"(at most 63), not {self.network[:40]!r}")
        for origin in self.cors_origin:
            if origin != "*" and not _is_origin(origin):
                raise ValueError(f"--cors-origin wants scheme://host[:port] or '*', "
                                 f"not {origin[:60]!r}")
        for entry in self.oper:
            name, sep, stored = entry.partition(":")
            if not sep or not name or any(ch in name for ch in " ,") \
                    or parse_hash(stored) is None:
                raise ValueError(f"--oper wants NAME:HASH with a hash from `chat oper-hash`, "
                                 f"not {entry[:40]!r}")

    def replace(self, **changes: Any) -> Config:
        """A copy with ``changes`` applied (a convenience for tests)."""
        return dataclasses.replace(self, **changes)


# Lower bounds of the sizes and counts that make no sense at 0 (the CLI enforces them;
# every other number only has to be non-negative, and 0 disables where the help says so).
MINIMUMS: dict[str, float] = {
    "history": 1, "nicklen": 1, "channellen": 2, "topiclen": 1, "max_channels": 1,
    "workers": 1, "recvq": 512, "sendq": 512, "max_header": 256, "max_body": 64,
    "http_burst": 1, "node_timeout": 0.05, "session_burst": 1,
    "join_members": 1, "udp_max_datagram": 256,
}


SERVER_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,61}[A-Za-z0-9])?")
NETWORK_NAME = re.compile(r"[A-Za-z0-9._-]{1,63}")


def _is_origin(value: str) -> bool:
    """``scheme://host[:port]`` and nothing else (an Origin header's form, RFC 6454)."""
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        return False
    return (parts.scheme in ("http", "https") and bool(parts.hostname)
            and not (parts.path or parts.query or parts.fragment or parts.username)
            and " " not in value)


def config_fields() -> list[dataclasses.Field[Any]]:
    """The fields of :class:`Config` in declaration order (used to build CLI options)."""
    return list(dataclasses.fields(Config))
