"""The server state every adapter shares, below all of them (no sockets, no listeners).

:class:`ServerState` holds the config, the engine, the counters, the two clocks and the
admission counts.  ``chat.app`` builds one and hands it to each transport adapter; the
adapters never see each other or the assembler.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
import time
from collections.abc import Callable

from .config import Config
from .core.clock import Now
from .core.stats import Stats
from .engine import Engine

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
REFUSE_FULL = "server_full"
REFUSE_PER_IP = "per_ip"


def is_loopback(ip: str) -> bool:
    """True for 127.0.0.0/8, ::1 and their IPv4-mapped forms."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def parse_networks(cidrs: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    """The ``--per-ip-exempt`` networks (ValueError names a bad one)."""
    networks = []
    for cidr in cidrs:
        for part in cidr.split():
            try:
                networks.append(ipaddress.ip_network(part, strict=False))
            except ValueError:
                raise ValueError(f"not a network (CIDR): {part!r}") from None
    return tuple(networks)


class Exemptions:
    """Addresses exempt from every per-address limit: loopback and ``--per-ip-exempt``."""

    __slots__ = ("networks", "known")

    def __init__(self, networks: tuple[IPNetwork, ...] = ()) -> None:
        self.networks = networks
        self.known: dict[str, bool] = {}  # answers by address (bounded below)

    def __call__(self, ip: str) -> bool:
        answer = self.known.get(ip)
        if answer is None:
            answer = is_loopback(ip) or self._in_networks(ip)
            if len(self.known) >= 4096:
                self.known.clear()
            self.known[ip] = answer
        return answer

    def _in_networks(self, ip: str) -> bool:
        if not self.networks:
            return False
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in net for net in self.networks)


class Admission:
    """Open connections of every transport against ``max_clients`` and a per-address limit.

    Loopback addresses (and ``--per-ip-exempt`` networks) are exempt from the per-address
    limit (the lab and the tests open thousands of connections from 127.0.0.1).
    """

    __slots__ = ("max_clients", "per_ip_limit", "open", "per_ip", "exempt")

    def __init__(self, max_clients: int, per_ip_limit: int,
                 exempt: Exemptions | None = None) -> None:
        self.max_clients = max_clients
        self.per_ip_limit = per_ip_limit
        self.open = 0
        self.per_ip: dict[str, int] = {}
        self.exempt = exempt or Exemptions()

    def admit(self, ip: str, per_ip: bool) -> tuple[str | None, bool]:
        """Count a new connection in: ``(refusal, counted_per_ip)``.

        ``refusal`` is None when admitted, else REFUSE_FULL or REFUSE_PER_IP.  With
        ``per_ip`` the connection also counts against its address's limit; pass the
        returned flag back to :meth:`leave`.
        """
        if self.open >= self.max_clients:
            return REFUSE_FULL, False
        counted = False
        if per_ip:
            if not self.admit_ip(ip):
                return REFUSE_PER_IP, False
            counted = self.counts_ip(ip)
        self.open += 1
        return None, counted

    def counts_ip(self, ip: str) -> bool:
        """True if connections from ``ip`` count against the per-address limit."""
        return self.per_ip_limit > 0 and not self.exempt(ip)

    def admit_ip(self, ip: str) -> bool:
        """Count one more connection from ``ip`` against its limit only (a WebSocket upgrade,
        whose TCP connection is already admitted); False if over it.  Undo with
        :meth:`leave_ip` when :meth:`counts_ip` says it counted."""
        if not self.counts_ip(ip):
            return True
        count = self.per_ip.get(ip, 0)
        if count >= self.per_ip_limit:
            return False
        self.per_ip[ip] = count + 1
        return True

    def leave(self, ip: str, counted_per_ip: bool) -> None:
        """An admitted connection closed: undo :meth:`admit`."""
        self.open -= 1
        if counted_per_ip:
            self.leave_ip(ip)

    def leave_ip(self, ip: str) -> None:
        """Undo a per-address count of :meth:`admit_ip` (or of :meth:`admit`)."""
        left = self.per_ip[ip] - 1
        if left:
            self.per_ip[ip] = left
        else:
            del self.per_ip[ip]


class Cloak:
    """What IRC shows of a user's address: a stable keyed hash of it (HMAC-SHA256), so that
    the same address always gets the same cloak (bans and recognising a returning user
    still work) but nobody can tell the address.  ``mode`` is ``auto`` (every address but
    loopback), ``all`` or ``off``."""

    __slots__ = ("mode", "key", "cache")

    def __init__(self, mode: str, secret: str | None) -> None:
        self.mode = mode
        self.key = secret.encode() if secret else secrets.token_bytes(32)
        self.cache: dict[str, str] = {}

    def __call__(self, ip: str) -> str:
        """The host to show for ``ip``."""
        if self.mode == "off" or (self.mode == "auto" and is_loopback(ip)):
            return "0" + ip if ip.startswith(":") else ip  # a host may not start with ':'
        host = self.cache.get(ip)
        if host is None:
            digest = hmac.new(self.key, ip.encode(), hashlib.sha256).hexdigest()
            host = f"{digest[:8]}.{digest[8:16]}.cloak"
            if len(self.cache) >= 4096:
                self.cache.clear()
            self.cache[ip] = host
        return host


class ServerState:
    """Config, engine, counters, clocks and admission of one server process.

    ``wall`` stamps events; ``mono`` drives every deadline (the assembler points it at
    the running loop's ``time``).  Both are injectable, so a test can step the wall clock.
    """

    def __init__(self, config: Config, engine: Engine, *, max_clients: int,
                 wall: Callable[[], float] = time.time,
                 mono: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.engine = engine
        self.wall = wall
        self.mono = mono
        self.started = wall()
        self.started_mono = mono()
        self.stats = Stats()
        self.exempt = Exemptions(parse_networks(config.per_ip_exempt))
        self.cloak = Cloak(config.cloak, config.cloak_secret)
        self.admission = Admission(max_clients, config.max_clients_per_ip, self.exempt)
        self.draining = False  # shutdown has begun: refuse new work
        self._now = Now(0.0, -1.0)  # the last reading of now()

    def now(self) -> Now:
        """Both clocks, read once per turn of the loop: uvloop's clock stands still while
        a turn runs its callbacks, and they all get the same reading (its two floats are
        shared by whatever keeps them: 48 bytes less per connection set up in that turn,
        and one ``time.time()`` instead of one per callback)."""
        mono = self.mono()
        last = self._now
        if last.mono == mono:
            return last
        now = self._now = Now(self.wall(), mono)
        return now

    def uptime(self) -> float:
        return self.mono() - self.started_mono
