"""The kernel's socket table, read for the lab's ports: TIME_WAIT, and the port budget.

A TCP socket is its five-tuple (protocol, local address and port, remote address and
port).  The side that closes a connection first keeps its socket in TIME_WAIT for a while
(60 s on Linux, ``TCP_TIMEWAIT_LEN``), so that a late segment of the old connection cannot
be taken for one of a new connection on the same tuple.  If that side is the client, the
ephemeral port stays taken meanwhile: one client address opening connections to one server
port faster than ``ports / TIME_WAIT`` a second runs out of ports.

:func:`time_wait` reads ``/proc/net/tcp`` and ``/proc/net/tcp6`` (no ``ss`` needed) and
counts, for each listening port of interest and the client ports known to have connected
to it, the TIME_WAIT sockets whose *local* port is the listening one (the listening side
closed first) and those whose *remote* port is (the client closed first).  On a system
without ``/proc`` the figures are None.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

TABLES = ("/proc/net/tcp", "/proc/net/tcp6")
PORT_RANGE = "/proc/sys/net/ipv4/ip_local_port_range"
TIME_WAIT_STATE = "06"
TIME_WAIT_S = 60.0  # Linux's TCP_TIMEWAIT_LEN; fixed, not a setting
DEFAULT_RANGE = (32768, 60999)


def parse_table(text: str) -> list[tuple[int, int, str]]:
    """``(local port, remote port, state)`` of every socket in a ``/proc/net/tcp`` text."""
    rows = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 4:
            continue
        try:
            local = int(fields[1].rsplit(":", 1)[1], 16)
            remote = int(fields[2].rsplit(":", 1)[1], 16)
        except (IndexError, ValueError):
            continue
        rows.append((local, remote, fields[3].upper()))
    return rows


def read_table() -> list[tuple[int, int, str]] | None:
    """Every TCP socket of this network namespace; None without ``/proc``."""
    rows: list[tuple[int, int, str]] = []
    found = False
    for name in TABLES:
        try:
            text = Path(name).read_text()
        except OSError:
            continue
        found = True
        rows += parse_table(text)
    return rows if found else None


def time_wait(peers: dict[int, Iterable[int]],
              table: list[tuple[int, int, str]] | None = None) -> dict[int, dict[str, int]] | None:
    """Per listening port: its TIME_WAIT sockets on the listening side and on the client
    side, counting only connections from the client ports in ``peers[port]`` (the same
    port numbers may be in use by anyone else on the machine)."""
    rows = read_table() if table is None else table
    if rows is None:
        return None
    known = {port: set(clients) for port, clients in peers.items()}
    out = {port: {"server_side": 0, "client_side": 0} for port in known}
    for local, remote, state in rows:
        if state != TIME_WAIT_STATE:
            continue
        if local in known and remote in known[local]:
            out[local]["server_side"] += 1
        elif remote in known and local in known[remote]:
            out[remote]["client_side"] += 1
    return out


def port_range() -> tuple[int, int]:
    """The kernel's ephemeral port range (the default if it cannot be read)."""
    try:
        low, high = Path(PORT_RANGE).read_text().split()[:2]
        return int(low), int(high)
    except (OSError, ValueError):
        return DEFAULT_RANGE


def port_budget() -> dict[str, Any]:
    """How fast one client address may open connections to one server port when it keeps
    the TIME_WAIT itself: ephemeral ports / TIME_WAIT duration."""
    low, high = port_range()
    ports = high - low + 1
    return {"range": [low, high], "ports": ports, "time_wait_s": TIME_WAIT_S,
            "max_new_per_s": round(ports / TIME_WAIT_S, 1)}
