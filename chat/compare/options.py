"""The lab's options (what ``chat compare`` parses) and the server settings each run uses."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import orjson

from ..client.transports import MODES
from ..config import Config
from ..link.model import LinkSettings

SCENARIOS = ("throughput", "dead-peer", "idle", "nat")

# Settings for a server the lab launches for a throughput run: the sender may publish
# faster than IRC flood control or the HTTP request budget allow one user.
RUN_SETTINGS: dict[str, Any] = {"flood_burst": 0, "http_rate": 0, "log_level": "warning"}
# dead-peer: heartbeats and session expiry scaled down so the scenario ends in seconds.
DEAD_PEER_SETTINGS: dict[str, Any] = {**RUN_SETTINGS, "ping_interval": 1.0,
                                      "ping_timeout": 1.0, "session_timeout": 3.0,
                                      "sse_heartbeat": 1.0, "udp_timeout": 1.0}
# idle: heartbeats every few seconds, so a 20 s run shows several of them.
IDLE_SETTINGS: dict[str, Any] = {**RUN_SETTINGS, "ping_interval": 5.0, "ping_timeout": 5.0,
                                 "sse_heartbeat": 5.0}
IDLE_CLIENTS = 100
NAT_CLIENTS = 2



def client_room(room: str, index: int) -> str:
    """The room of one client when each has its own (``own_room``)."""
    return f"{room}c{index}"


class OptionError(ValueError):
    """A bad option value; the message is fit for a usage error."""


@dataclass(slots=True)
class LabOptions:
    """Everything one ``chat compare`` run needs."""

    clients: int = 20
    rate: float = 5.0
    duration: float = 20.0
    modes: tuple[str, ...] = MODES
    interval: float = 1.0
    server: str | None = None
    irc_port: int = 6667
    http_port: int = 8080
    scenario: str = "throughput"
    sequential: bool = False
    sender: str | None = None          # "irc" or "http"; None: irc for a launched server
    settings: dict[str, Any] = field(default_factory=dict)   # --set NAME=VALUE
    json_path: str | None = None
    csv_path: str | None = None
    plot_path: str | None = None
    progress: bool = True
    room: str | None = None
    link: LinkSettings = field(default_factory=LinkSettings)  # the emulated path
    direct: bool = False       # no relay at all: clients dial the server itself
    quiet: float = 5.0         # seconds without a message after the sending
    burst: int = 0             # messages sent at once half way through
    udp_rcvbuf: int = 0        # SO_RCVBUF of the udp lane's sockets (0: the default)

    def server_settings(self, base: dict[str, Any]) -> dict[str, Any]:
        """``base`` overridden by the user's ``--set`` values, checked against Config."""
        merged = {**base, **self.settings}
        try:
            Config(**merged)
        except TypeError as exc:
            raise OptionError(str(exc)) from None
        return merged

    def sender_mode(self) -> str:
        """The transport the sender uses: IRC for a launched server, HTTP for another one."""
        kind = self.sender or ("irc" if self.server is None else "http")
        return "irc" if kind == "irc" else "poll"


def parse_modes(text: str) -> tuple[str, ...]:
    """``"irc,poll"`` -> ``("irc", "poll")`` in the canonical order; OptionError if unknown."""
    wanted = [m.strip() for m in text.split(",") if m.strip()]
    unknown = [m for m in wanted if m not in MODES]
    if unknown or not wanted:
        raise OptionError(f"unknown mode {', '.join(unknown) or '(none)'}; "
                          f"choose from {', '.join(MODES)}")
    return tuple(m for m in MODES if m in wanted)


def parse_settings(pairs: tuple[str, ...]) -> dict[str, Any]:
    """``("ping_interval=2", ...)`` -> typed Config values; OptionError for a bad pair."""
    fields = {f.name: f for f in dataclasses.fields(Config)}
    out: dict[str, Any] = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or name not in fields:
            raise OptionError(f"--set {pair!r}: expected NAME=VALUE with NAME a "
                              f"`chat serve` option (e.g. ping_interval=2)")
        if name in ("host", "irc_port", "http_port", "udp_port"):
            raise OptionError(f"--set {name}: the lab picks the address and ports itself")
        kind = fields[name].type
        if kind in ("bool", bool):
            if raw.lower() not in ("1", "0", "true", "false", "on", "off", "yes", "no"):
                raise OptionError(f"--set {pair!r}: {raw!r} is not true or false")
            out[name] = raw.lower() in ("1", "true", "on", "yes")
            continue
        try:
            value: Any = (int(raw) if kind in ("int", int) else
                          float(raw) if kind in ("float", float) else raw)
        except ValueError:
            raise OptionError(f"--set {pair!r}: {raw!r} is not a number") from None
        if isinstance(value, int | float) and value < 0:
            raise OptionError(f"--set {pair!r}: must not be negative")
        out[name] = value
    return out


def link_lanes(modes: tuple[str, ...], host: str, irc_port: int, http_port: int,
               udp_port: int) -> dict[str, dict[str, list[Any]]]:
    """The relays each mode's clients go through: ``{mode: {"irc"|"http"|"udp": [host,
    port]}}`` (udp needs its HTTP connection relayed too; a server without a udp lane
    gives the udp mode no UDP relay)."""
    lanes: dict[str, dict[str, list[Any]]] = {}
    for mode in modes:
        if mode == "irc":
            lanes[mode] = {"irc": [host, irc_port]}
        else:
            lanes[mode] = {"http": [host, http_port]}
            if mode == "udp" and udp_port:
                lanes[mode]["udp"] = [host, udp_port]
    return lanes


@dataclass(frozen=True, slots=True)
class WorkerSpec:
    """What one worker runs (serialised to JSON on its command line)."""

    role: str                 # "receive" or "send"
    mode: str                 # transport mode of every client in this worker
    clients: int
    host: str
    irc_port: int
    http_port: int
    room: str
    nick_prefix: str
    sender_nick: str
    interval: float = 1.0
    rate: float = 0.0
    duration: float = 0.0
    connect_concurrency: int = 50
    wait: float | None = None  # long-poll wait; None: the transport's default
    stagger: float = 0.0       # spread client starts uniformly over this many seconds
    udp_port: int = 0
    quiet: float = 0.0         # the sender: seconds of silence after the sending
    burst: int = 0             # the sender: messages sent at once half way through
    options: dict[str, Any] = field(default_factory=dict)  # more transport keywords
    timeline: bool = False     # receivers: keep each delivery's time (the nat scenario)
    rooms: tuple[str, ...] = ()  # more rooms to join (the sender says everything in each)
    own_room: bool = False     # receivers: client i joins only ``client_room(room, i)``
    password: str | None = None  # the server's --password, sent by every client

    def to_json(self) -> str:
        return orjson.dumps(dataclasses.asdict(self)).decode()

    @classmethod
    def from_json(cls, text: str) -> WorkerSpec:
        data = orjson.loads(text)
        data["rooms"] = tuple(data.get("rooms") or ())
        return cls(**data)
