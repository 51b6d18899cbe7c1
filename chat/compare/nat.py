"""``--scenario nat``: middleboxes that drop idle flows, and the heartbeats that keep them.

Four rounds, each with its own server and link, ``--clients`` clients per mode (2 by
default here) sitting idle behind the link, each client in a room of its own (so that one
client's reconnect, a QUIT and a JOIN, is no traffic that keeps another's flow alive):

1. a **NAT** that forgets a flow idle for ``T`` (``--nat-timeout``, 2 s by default), with
   every heartbeat *slower* than ``T``: the server's PINGs and Ping frames and SSE comments
   every ``1.5 T``, long polls waiting ``1.5 T``, udp keepalives every ``1.5 T``.  The flows
   go silent, the NAT forgets them: a half-open connection, no FIN, no RST.  Then the
   sender (on the server's side of the NAT) says three things.  Nobody behind the NAT
   gets them live; each side notices on its own clock: the server when a PING goes
   unanswered (ping interval + ping timeout), the client when its own heartbeat does (irc
   and ws: a ping of their own after ``2 T`` of silence; sse: no byte for ``3 T``;
   longpoll: an answer overdue by ``T``; udp: its next keepalive makes a new mapping and
   its ack shows the numbers it missed).  Then it reconnects and resumes after its last id.
2. the same NAT with heartbeats *faster* than ``T`` (every ``T / 2``): nothing is lost.
3. and 4. the same with a **proxy** that closes flows idle for ``--proxy-timeout`` (2 s):
   a cut is loud (a FIN both ways), so both sides notice at once and reconnect.

Pollers poll every ``--interval`` (1 s): their requests are their heartbeat.  For every
mode and round the report gives the flows the middlebox hit, when each side noticed (from
the link's records: when the server's and the client's FIN or reset reached it, or the
client's new mapping), the reconnects, the messages that missed their live delivery (came
over a second later, by resume), and those still missing at the end.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

from .options import RUN_SETTINGS, LabOptions, WorkerSpec, client_room
from .procs import LabError, ServerTarget, WorkerHandle
from .runner import NICK_PREFIX, Lanes, run_tag, spawn_receivers

DEFAULT_TIMEOUT = 2.0
MESSAGES = 3            # said while the flows are broken, one every half second
MESSAGE_RATE = 2.0
LATE_S = 1.0            # a delivery this much later than intended did not come live
#                        (half a timeout when timeouts are shorter than two seconds)
ROUNDS = (("nat", "slow"), ("nat", "fast"), ("proxy", "slow"), ("proxy", "fast"))
PACE = {"slow": 1.5, "fast": 0.5}  # heartbeat interval, in timeouts


def round_settings(kind: str, pace: str, timeout: float) -> dict[str, Any]:
    """The server of one round: its heartbeats at ``PACE[pace]`` timeouts."""
    beat = PACE[pace] * timeout
    return {**RUN_SETTINGS, "ping_interval": beat, "ping_timeout": timeout,
            "sse_heartbeat": beat, "close_timeout": 0.2, "max_wait": max(30.0, beat)}


def client_options(opts: LabOptions, pace: str, timeout: float) -> dict[str, dict[str, Any]]:
    """Each mode's client heartbeats: their own, slower than the server's."""
    beat = PACE[pace] * timeout
    common = {"backoff": 0.2, "backoff_max": 1.0, "timeout": timeout}
    return {"irc": {**common, "ping_interval": 2 * timeout, "ping_timeout": timeout},
            "ws": {**common, "ping_interval": 2 * timeout, "ping_timeout": timeout},
            "sse": {**common, "stream_timeout": 3 * timeout},
            "longpoll": {**common, "wait": beat},
            "poll": common, "poll-close": common,
            "udp": {**common, "keepalive": beat}}


def describe(kind: str, timeout: float) -> str:
    return (f"a NAT forgets flows idle for {timeout:g} s (a black hole)" if kind == "nat"
            else f"a proxy closes flows idle for {timeout:g} s (a FIN both ways)")


async def run_round(opts: LabOptions, kind: str, pace: str, limit: float,
                    console: Console) -> dict[str, Any]:
    """One round (see the module docstring): its rows, one per mode."""
    tag = run_tag()
    modes = tuple(opts.modes)
    room = f"nat{tag}"
    target = await ServerTarget.launch(opts.server_settings(round_settings(kind, pace,
                                                                           limit)))
    over = {"nat_timeout": limit if kind == "nat" else 0.0,
            "proxy_timeout": limit if kind == "proxy" else 0.0}
    workers: list[WorkerHandle] = []
    sender: WorkerHandle | None = None
    try:
        lanes = await Lanes.open(opts, target, modes, **over)
        try:
            options = client_options(opts, pace, limit)
            # A room per client: one client's reconnect (a QUIT, a JOIN) must not be
            # traffic that keeps another client's idle flow alive.
            spawned = await asyncio.gather(*(spawn_receivers(
                target, (mode,), opts.clients, f"{room}{NICK_PREFIX[mode]}", tag,
                opts.interval, lanes=lanes, options=options, timeline=True, own_room=True)
                for mode in modes), return_exceptions=True)
            for outcome in spawned:
                if not isinstance(outcome, BaseException):
                    workers += outcome[0]
            for outcome in spawned:
                if isinstance(outcome, BaseException):
                    raise outcome
            rooms = [client_room(f"{room}{NICK_PREFIX[m]}", i) for m in modes
                     for i in range(opts.clients)]
            sender = await WorkerHandle.spawn(WorkerSpec(
                role="send", mode="irc", clients=1, host=target.host,
                password=target.password,
                irc_port=target.irc_port, http_port=target.http_port,
                room=rooms[0], rooms=tuple(rooms[1:]),
                nick_prefix="", sender_nick=f"send{tag}", rate=MESSAGE_RATE,
                duration=MESSAGES / MESSAGE_RATE))
            await sender.expect("ready", 30.0)
            everyone = [*workers, sender]
            # Idle for a slow heartbeat's period and a timeout more: every flow whose
            # heartbeat is slower than the timeout has gone quiet long enough by then.
            quiet = PACE["slow"] * limit + limit + 0.5
            with console.status(f"{describe(kind, limit)}; heartbeats every "
                                f"{PACE[pace] * limit:g} s: idle {quiet:g} s, then "
                                f"{MESSAGES} messages"):
                t0 = time.time() + quiet
                for worker in everyone:
                    worker.command("go", t0=t0)
                await asyncio.gather(*(w.expect("mark", 10.0) for w in everyone))
                sent = await sender.expect("sent", quiet + 60.0)
                deadline = time.time() + 8 * limit + 10.0
                for worker in workers:
                    worker.command("drain", sent=sent["sent"], failed=sent["failed"],
                                   deadline=deadline)
                results = await asyncio.gather(*(w.expect("result", 8 * limit + 40.0)
                                                 for w in workers))
                await asyncio.sleep(0.3)
                stats = await lanes.link.stats() if lanes.link is not None else {}
        finally:
            await asyncio.gather(*(w.close() for w in [*workers,
                                                        *([sender] if sender else [])]))
            await lanes.close()
    finally:
        await target.close()
    return {"kind": kind, "pace": pace, "timeout": limit,
            "heartbeat_s": PACE[pace] * limit, "describe": describe(kind, limit),
            "t0": t0, "modes": [mode_row(r, stats.get(r["mode"], {}), t0, kind, pace, limit)
                                for r in results]}


def mode_row(result: dict[str, Any], lane: dict[str, Any], t0: float, kind: str,
             pace: str, limit: float) -> dict[str, Any]:
    """One mode in one round: who noticed when, what was missed, what was lost."""
    server, client, hit = noticed(lane)
    late_s = min(LATE_S, limit / 2)
    late = sum(1 for _client, seq, received, _rec in result.get("timeline", [])
               if received - (t0 + seq / MESSAGE_RATE) > late_s)
    counters = (result.get("window") or {}).get("counters", {})
    return {"mode": result["mode"], "round": f"{kind}, {pace}", "kind": kind, "pace": pace,
            "clients": result["clients"], "expected": result["expected"],
            "delivered": result["delivered"], "flows_hit": hit,
            "server_noticed_s": median(server), "server_noticed_all": len(server),
            "client_noticed_s": median(client), "client_noticed_all": len(client),
            "reconnects": int(counters.get("reconnects", 0)),
            "clients_reconnected": len({index for index, state, _when in
                                        result.get("states", []) if state == "reconnecting"}),
            "missed_live": late,
            "recovered": int(counters.get("recovered", 0)), "lost": int(result["lost"])}


def noticed(lane: dict[str, Any]) -> tuple[list[float], list[float], int]:
    """From the relays' records: seconds until the server and the client noticed, per flow
    the middlebox hit (a cut is noticed at once), and how many it hit."""
    server: list[float] = []
    client: list[float] = []
    hit = 0
    for name, relay in lane.items():
        for rec in relay.get("records", []):
            if name == "udp":  # the client's next keepalive made a new mapping
                hit += 1
                gap = rec["remapped"] - rec["blackholed"]
                server.append(gap)
                client.append(gap)
                continue
            hit += 1
            if rec.get("cut_s") is not None:
                server.append(0.0)
                client.append(0.0)
                continue
            start = rec.get("blackholed_s")
            if start is None:
                continue
            if rec.get("server_closed_s") is not None:
                server.append(max(0.0, rec["server_closed_s"] - start))
            if rec.get("client_closed_s") is not None:
                client.append(max(0.0, rec["client_closed_s"] - start))
    return server, client, hit


def median(values: list[float]) -> float | None:
    return round(statistics.median(values), 2) if values else None


async def run_nat(opts: LabOptions, console: Console) -> dict[str, Any]:
    """Every round; the --json document."""
    if opts.server is not None:
        raise LabError("--scenario nat starts its own servers (one per round): "
                       "not with --server")
    if opts.direct:
        raise LabError("--scenario nat needs the link: not with --direct")
    nat = opts.link.nat_timeout or DEFAULT_TIMEOUT
    proxy = opts.link.proxy_timeout or DEFAULT_TIMEOUT
    rounds = [await run_round(opts, kind, pace, nat if kind == "nat" else proxy, console)
              for kind, pace in ROUNDS]
    rows = [row for r in rounds for row in r["modes"]]
    return {"scenario": "nat",
            "options": {"clients": opts.clients, "interval": opts.interval,
                        "modes": list(opts.modes), "settings": dict(opts.settings),
                        "nat_timeout": nat, "proxy_timeout": proxy},
            "server": {"host": "127.0.0.1", "irc_port": 0, "http_port": 0, "launched": True,
                       "differs_from_defaults": None, "per_round": True},
            "link": {"direct": False, "settings": opts.link.as_dict(),
                     "describe": f"{opts.link.describe()}; per round: "
                                 f"{describe('nat', nat)}, then {describe('proxy', proxy)}"},
            "describe": f"{describe('nat', nat)}; {describe('proxy', proxy)}",
            "rounds": rounds, "rows": [{"kind": "mode", **row} for row in rows],
            "verdict": {"ok": all(row["lost"] == 0 for row in rows),
                        "lost": sum(row["lost"] for row in rows)}}


def _secs(value: float | None, hit: int, count: int) -> str:
    if not hit:
        return "-"
    if value is None:
        return "never"
    return f"{value:.1f} s" + ("" if count >= hit else f" ({count}/{hit})")


def show_nat(result: dict[str, Any], console: Console) -> None:
    """A table per round, then a paragraph."""
    for r in result["rounds"]:
        than = "slower" if r["pace"] == "slow" else "faster"
        title = r["describe"][0].upper() + r["describe"][1:]
        table = Table(title=f"{title}; heartbeats every "
                            f"{r['heartbeat_s']:g} s ({than} than that)",
                      box=box.SIMPLE_HEAD, title_justify="left")
        for name in ("mode", "flows hit", "server noticed", "client noticed", "reconnects",
                     "missed live", "lost"):
            table.add_column(name, justify="right", no_wrap=name == "mode")
        for row in r["modes"]:
            hit = row["flows_hit"]
            table.add_row(row["mode"], str(hit),
                          _secs(row["server_noticed_s"], hit, row["server_noticed_all"]),
                          _secs(row["client_noticed_s"], hit, row["client_noticed_all"]),
                          str(row["reconnects"]), f"{row['missed_live']}/{row['expected']}",
                          str(row["lost"]))
        console.print(table)
    console.print(
        "flows hit: connections (udp: mappings) the middlebox black-holed or cut; noticed: "
        "seconds from the moment the NAT forgot the flow until that side closed it (a "
        "proxy's cut is noticed at once; udp: until the client's next keepalive made a new "
        "mapping; never: still open at the end; (n/m): n of the m flows); missed live: "
        "deliveries that came over a second late (half a timeout, for timeouts under 2 s), "
        "through a resume or a fetch over HTTP; "
        "lost: never delivered.", style="dim")
    console.print(nat_paragraph(result))


def nat_paragraph(result: dict[str, Any]) -> str:
    """Each round in a sentence or two."""
    out = []
    for r in result["rounds"]:
        rows = r["modes"]
        broken = [row for row in rows if row["missed_live"] or row["reconnects"]]
        idle_only = [row["mode"] for row in rows if row["flows_hit"] and row not in broken]
        untouched = [row["mode"] for row in rows if not row["flows_hit"]]
        missed = sum(row["missed_live"] for row in rows)
        expected = sum(row["expected"] for row in rows)
        lost = sum(row["lost"] for row in rows)
        head = f"With heartbeats every {r['heartbeat_s']:g} s and {r['describe']}"
        if broken:
            names = ", ".join(row["mode"] for row in broken)
            out.append(f"{head}, {names} lost their connection (udp: its mapping) "
                       f"{'silently' if r['kind'] == 'nat' else 'at once, noisily'}: "
                       f"{missed} of {expected} deliveries came late, by a resume or a fetch, "
                       + ("and none was lost." if not lost else f"and {lost} never came."))
        else:
            out.append(f"{head}, every heartbeat crossed in time: nothing came late"
                       + (", nothing was lost." if not lost else f", yet {lost} never came."))
        if idle_only:
            out.append(f"The idle command connections of {', '.join(idle_only)} were "
                       f"{'forgotten' if r['kind'] == 'nat' else 'closed'} all the same: "
                       "they have no heartbeat, and their next request finds out.")
        if untouched and r["pace"] == "slow":
            out.append(f"{', '.join(untouched)}: the requests are the heartbeat.")
    return " ".join(out)
