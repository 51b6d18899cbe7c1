"""Showing a throughput run: the rich table, the plain-words paragraph, --json and --csv.

Every measured figure in the table has the model's figure under it, dimmed (``≈``), so a
reader sees at a glance where the model holds and where it breaks.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import orjson
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from .theory import POLL_MODES, PUSH_MODES

LATENCY_KEYS = ("p50_ms", "p90_ms", "p99_ms", "max_ms")
CSV_COLUMNS = (
    "mode", "clients", "expected", "delivered", "lost", "clients_with_loss", "duplicates",
    "out_of_order", "latency_mean_ms", "latency_p50_ms", "latency_p90_ms", "latency_p99_ms",
    "latency_max_ms", "theory_mean_ms", "theory_p50_ms", "theory_p90_ms", "theory_p99_ms",
    "theory_max_ms", "requests", "requests_per_client", "theory_requests_per_client",
    "requests_per_msg", "empty_polls", "empty_polls_per_client",
    "theory_empty_polls_per_client", "connections", "connections_lifetime",
    "connections_per_client", "theory_connections_per_client", "bytes_in", "bytes_out",
    "bytes_in_per_msg", "bytes_out_per_msg", "events", "reconnects", "client_cpu_s",
    "client_cpu_pct", "server_scope", "server_cpu_s", "server_cpu_pct",
    "request_ms", "theory_request_ms", "header_bytes_per_msg", "payload_bytes_per_msg",
    "connections_per_msg", "connections_per_s", "latency_samples", "p99_reliable",
    "link_connections", "link_client_ports", "link_fins_from_client", "link_fins_from_server",
    "link_client_closed_first", "link_server_closed_first", "link_handshakes",
    "link_late_segments", "time_wait_server_side", "time_wait_client_side",
    "port_budget_share", "udp_datagrams_in", "udp_lost", "udp_reordered", "udp_recovered",
    "udp_late", "udp_recovered_p50_ms", "udp_recovered_p99_ms",
)
NOT_APPLICABLE = "n/a"  # a CSV cell for a figure the mode does not have
FEW_SAMPLES = ("?: too few samples for that percentile (it needs ten beyond it: p50 20, "
               "p90 100, p99 1000).")


def server_line(server: dict[str, Any]) -> str:
    """Which server was measured; for one the lab started, how it differs from the defaults."""
    where = f"{server['host']} (IRC {server['irc_port']}, HTTP {server['http_port']})"
    differs = server.get("differs_from_defaults")
    if not server.get("launched") or differs is None:
        return f"Server: {where}, not started by the lab; its settings are its own."
    if not differs:
        return f"Server started by the lab on {where} with `chat serve`'s defaults."
    changes = ", ".join(f"{name}={setting(value)} (default {setting(default)})"
                        for name, (value, default) in differs.items())
    return (f"Server started by the lab on {where}; unlike `chat serve`'s defaults: "
            f"{changes}.")


def setting(value: Any) -> str:
    """A setting as ``chat serve`` would take it: ``25`` rather than ``25.0``."""
    return f"{value:g}" if isinstance(value, float) else str(value)


def fmt_ms(value: float | None) -> str:
    """Milliseconds with as many decimals as make sense for the magnitude."""
    if value is None:
        return "-"
    if value == 0:
        return "0"
    if value < 1:
        return f"{value:.2f}"
    if value < 10:
        return f"{value:.1f}"
    return f"{value:.0f}"


def fmt_num(value: float | None) -> str:
    if value is None:
        return "-"
    if float(value).is_integer():
        return f"{int(value)}"
    if abs(value) < 1:
        return f"{value:.2f}"
    return f"{value:.1f}" if abs(value) < 100 else f"{value:.0f}"


def pace(seconds: float | None) -> str:
    """What paces a mode's idle traffic: ``5 s``; ``off`` (0); ``?`` if the lab cannot know."""
    if seconds is None:
        return "?"
    return "off" if seconds == 0 else f"{seconds:g} s"


def plural(count: float, noun: str) -> str:
    """``1 request``, ``0.21 requests``."""
    return f"{count:g} {noun}" + ("" if count == 1 else "s")


def cell(measured: str, theory: str | None, reliable: bool = True) -> Text:
    """A measured figure (``?`` when too few samples back it) with the model's figure
    dimmed on the line below."""
    text = Text(measured)
    if not reliable and measured != "-":
        text.append("?", style="yellow")
    if theory is not None:
        text.append("\n≈" + theory, style="dim")
    return text


def link_line(result: dict[str, Any]) -> str:
    """The emulated path, said once at the top."""
    link = result.get("link") or {}
    if link.get("direct", True):
        return ("Link: none (--direct): the clients dial the server itself, so the "
                "connection figures of the modes cannot be told apart.")
    return (f"Link: {link['describe']}; between each mode's clients and the server (one "
            "relay per mode); the sender talks to the server directly.")


def server_of(result: dict[str, Any], mode: str) -> dict[str, Any]:
    """The server figures that apply to ``mode`` (its own phase, or the shared one)."""
    own = result["modes"][mode].get("server")
    if own:
        return dict(own)
    return dict(result["phases"][0]) if result["phases"] else {}


def _table(title: str, caption_text: str | None = None) -> Table:
    return Table(title=title, caption=caption_text, caption_justify="left",
                 box=box.SIMPLE_HEAD, title_justify="left", pad_edge=False)


def build_tables(result: dict[str, Any]) -> list[Table]:
    """One row per mode in each: delivery and latency; what it cost; the connections and
    sockets; the udp lane's datagrams."""
    tables = [delivery_table(result), cost_table(result)]
    if any(f.get("link") for f in result["modes"].values()):
        tables.append(sockets_table(result))
    if "udp" in result["modes"]:
        tables.append(udp_table(result))
    return tables


def delivery_table(result: dict[str, Any]) -> Table:
    opts = result["options"]
    extra = f", then {opts.get('quiet', 0):g} s quiet" if opts.get("quiet") else ""
    burst = f", a burst of {opts['burst']} half way" if opts.get("burst") else ""
    flagged = any(not ok for f in result["modes"].values()
                  for k, ok in (f.get("reliable") or {}).items() if k != "max_ms")
    table = _table(f"Delivery: {opts['clients']} clients per mode, {opts['rate']:g} msg/s "
                   f"for {opts['duration']:g} s{burst}{extra}, poll interval "
                   f"{opts['interval']:g} s (latency from the intended send time; "
                   "dim ≈ = model)",
                   FEW_SAMPLES + " max is always one sample." if flagged else None)
    table.add_column("mode", style="bold", no_wrap=True, min_width=10)
    table.add_column("delivered", justify="right")
    table.add_column("lost/dup/ooo", justify="right")
    for key in LATENCY_KEYS:
        table.add_column(key.replace("_ms", "") + " ms", justify="right")
    for mode, fig in result["modes"].items():
        th, lat = fig["theory"], fig["latency"]
        reliable = fig.get("reliable") or {}
        bad = fig["lost"] or fig["duplicates"] or fig["out_of_order"]
        table.add_row(
            mode, f"{fig['delivered']}/{fig['expected']}",
            Text(f"{fig['lost']}/{fig['duplicates']}/{fig['out_of_order']}",
                 style="bold red" if bad else "green"),
            *(cell(fmt_ms(lat[k]), fmt_ms(th[k]), reliable.get(k, True) or k == "max_ms")
              for k in LATENCY_KEYS))
    return table


def cost_table(result: dict[str, Any]) -> Table:
    sequential = bool(result["options"].get("sequential"))
    table = _table("Cost: per client during the run (conns: including setup), "
                   "or per delivered message", caption(result))
    table.add_column("mode", style="bold", no_wrap=True, min_width=10)
    for name in ("req", "empty", "conns", "req/msg", "req ms", "hdr B/msg", "data B/msg",
                 "CPU") + (("server",) if sequential else ()):
        table.add_column(name, justify="right")
    for mode, fig in result["modes"].items():
        th = fig["theory"]
        row: list[Text | str] = [
            mode,
            cell(fmt_num(fig["requests_per_client"]), fmt_num(th["requests"])),
            cell(fmt_num(fig["empty_polls_per_client"]), fmt_num(th["empty_polls"])),
            cell(fmt_num(fig["connections_per_client"]), fmt_num(th["connections"])),
            fmt_num(fig["requests_per_msg"]),
            cell(fmt_ms(fig.get("request_ms")),
                 None if th.get("request_ms") is None else fmt_ms(th["request_ms"])),
            fmt_num(fig.get("header_bytes_per_msg")), fmt_num(fig.get("payload_bytes_per_msg")),
            f"{fig['client_cpu_pct']:.1f}%"]
        if sequential:
            srv = fig.get("server") or {}
            row.append("-" if srv.get("cpu_pct") is None else f"{srv['cpu_pct']:.1f}%")
        table.add_row(*row)
    return table


def sockets_table(result: dict[str, Any]) -> Table:
    budget = result.get("port_budget") or {}
    lossy = bool(((result.get("link") or {}).get("settings") or {}).get("loss"))
    table = _table(
        "Connections and sockets: the whole run, setup and close included (as the link "
        "and the kernel saw them)",
        "conns: TCP connections opened; ports: distinct client ports they came from (a "
        "socket is protocol, local address and port, remote address and port: a new "
        "connection needs a port no other socket to that server port holds, TIME_WAIT "
        "included); FIN c/s: FINs sent by the clients / by the server; "
        "TIME_WAIT srv/cli: sockets still waiting at the end on the "
        "server's side / the clients' (the side that closed first keeps it, "
        f"{budget.get('time_wait_s', 60):g} s); hs: connections whose first bytes waited "
        "for the handshake; conns/s: new connections a second from one address, and the "
        f"share of the {fmt_num(budget.get('max_new_per_s'))}/s one address can sustain "
        f"when it keeps the TIME_WAIT itself ({budget.get('ports', '?')} ephemeral ports / "
        f"{budget.get('time_wait_s', 60):g} s)" + ("; late: segments retransmitted (each "
                                                    "holds up what follows)" if lossy
                                                    else "") + ".")
    table.add_column("mode", style="bold", no_wrap=True, min_width=10)
    for name in ("conns", "ports", "FIN c/s", "TIME_WAIT srv/cli", "hs",
                 "conns/s") + (("late",) if lossy else ()):
        table.add_column(name, justify="right")
    for mode, fig in result["modes"].items():
        link = fig.get("link")
        if not link:
            continue
        waiting = link.get("time_wait")
        share = link.get("port_budget_share")
        rate = fmt_num(fig.get("connections_per_s"))
        row = [mode, str(link["connections"]), str(link["client_ports"]),
               f"{link['fins_from_client']}/{link['fins_from_server']}",
               "-" if waiting is None else
               f"{waiting['server_side']}/{waiting['client_side']}",
               str(link["handshakes"]),
               rate + (f" ({100 * share:.1f}%)" if share else "")]
        if lossy:
            row.append(str(link["late_segments"]))
        table.add_row(*row)
    return table


def udp_table(result: dict[str, Any]) -> Table:
    fig = result["modes"]["udp"]
    udp = fig.get("udp") or {}
    link = (fig.get("link") or {}).get("datagrams") or {}
    lat = udp.get("recovered_latency") or {}
    reliable = udp.get("recovered_reliable") or {}
    table = _table("udp: datagrams, and what was fetched over HTTP",
                   "sent: event and control datagrams towards the clients (the link's "
                   "count); dropped: lost on the link (or in a full receive buffer, "
                   "counted by the clients only); lost: event datagrams a client never got "
                   "within its reorder window; reordered: came after a later one; "
                   "recovered: events fetched over HTTP after a loss, and how late they "
                   "were; late: datagrams that came after their event was fetched."
                   + (f" {FEW_SAMPLES}" if any(not ok and lat.get(k) is not None
                                                for k, ok in reliable.items()) else ""))
    for name in ("sent", "dropped", "lost", "reordered", "recovered", "late",
                 "recovered p50 ms", "p99 ms"):
        table.add_column(name, justify="right")
    table.add_row(fmt_num(link.get("down")), fmt_num(link.get("lost_down")),
                  str(udp.get("lost", 0)), str(udp.get("reordered", 0)),
                  str(udp.get("recovered", 0)), str(udp.get("late", 0)),
                  cell(fmt_ms(lat.get("p50_ms")), None, reliable.get("p50_ms", True)),
                  cell(fmt_ms(lat.get("p99_ms")), None, reliable.get("p99_ms", True)))
    return table


def caption(result: dict[str, Any]) -> str:
    """Under the table: how to read it, and the server's share."""
    lines = ["req: requests (irc: lines) sent; empty: polls answered with nothing new; "
             "conns: TCP connections opened; CPU: the clients' processes, % of one core."]
    sender = result["sender"]
    lines.append(f"Sender: {sender['mode']}, {sender['sent']} messages, "
                 f"{sender['failed']} refused.")
    if not result["options"].get("sequential") and result["phases"]:
        srv = result["phases"][0]
        if srv.get("cpu_pct") is not None:
            rss = srv.get("rss_bytes") or 0
            lines.append(f"Server (all modes together): {srv['cpu_s']:.2f} s CPU, "
                         f"{srv['cpu_pct']:.1f}% of a core over {srv['wall_s']:.1f} s; "
                         f"RSS {rss / 2**20:.1f} MiB.")
        else:
            lines.append("Server CPU: unknown (not a local process the lab can see).")
    return "\n".join(lines)


def _names(items: list[tuple[str, str]]) -> str:
    """``a (x), b (y) and c (z)``."""
    parts = [f"{m} {v}" for m, v in items]
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def paragraph(result: dict[str, Any]) -> str:
    """The figures read back in plain words (a few sentences, only for the modes run)."""
    modes: dict[str, Any] = result["modes"]
    opts = result["options"]
    out: list[str] = []
    sent = max((f["expected"] // max(f["clients"], 1) for f in modes.values()), default=0)
    total_clients = sum(f["clients"] for f in modes.values())
    lost = {m: f for m, f in modes.items() if f["lost"]}
    if lost:
        out.append("MESSAGES WERE LOST: " + "; ".join(
            f"{m} missed {f['lost']} of {f['expected']} deliveries "
            f"({f['clients_with_loss']} clients)" for m, f in lost.items()) + ".")
    else:
        out.append(f"All {total_clients} clients received all {sent} messages"
                   + (" with no duplicate and in order." if not any(
                       f["duplicates"] or f["out_of_order"] for f in modes.values())
                      else ", but some arrived twice or out of order (see the table)."))
    push = [(m, fmt_ms(modes[m]["latency"]["p50_ms"]) + " ms") for m in modes
            if m in PUSH_MODES + ("longpoll",)]
    poll = [m for m in modes if m in POLL_MODES]
    rtt_ms = float(((result.get("link") or {}).get("settings") or {}).get("rtt") or 0) * 1000
    if push and rtt_ms:
        out.append(f"Pushed messages took one trip from the server: median {_names(push)}, "
                   f"against the model's half round trip ({fmt_ms(rtt_ms / 2)} ms).")
    elif push:
        out.append(f"Pushed messages arrived at once: median {_names(push)}.")
    out.extend(rtt_sentences(modes, rtt_ms, opts))
    if poll:
        half = opts["interval"] * 500 + rtt_ms / 2
        medians = _names([(m, fmt_ms(modes[m]["latency"]["p50_ms"]) + " ms") for m in poll])
        p99 = _names([(m, fmt_ms(modes[m]["latency"]["p99_ms"]) + " ms") for m in poll])
        model = "half interval and half a round trip" if rtt_ms else "half interval"
        out.append(f"Polling every {opts['interval']:g} s made each message wait for the next "
                   f"poll: median {medians}, against the model's {model} "
                   f"({fmt_ms(half)} ms); p99 {p99}.")
    out.extend(cost_sentences(modes))
    out.extend(socket_sentences(result))
    out.extend(udp_sentences(result))
    srv = result["phases"][0] if result["phases"] else {}
    if not opts.get("sequential") and srv.get("cpu_pct") is not None:
        out.append(f"The server spent {srv['cpu_s']:.2f} s of CPU on the whole run "
                   f"({srv['cpu_pct']:.1f}% of one core).")
    elif opts.get("sequential"):
        per = [(m, f"{f['server']['cpu_pct']:.1f}%") for m, f in modes.items()
               if (f.get("server") or {}).get("cpu_pct") is not None]
        if per:
            out.append(f"Server CPU, each mode on its own: {_names(per)} of one core.")
    out.extend(result.get("lab_warnings", []))
    return " ".join(out)


def rtt_sentences(modes: dict[str, Any], rtt_ms: float, opts: dict[str, Any]) -> list[str]:
    """What the round trip did to long polling and to a new connection per request."""
    out: list[str] = []
    if not rtt_ms:
        return out
    if "longpoll" in modes:
        gap = 1000 / opts["rate"]
        waits = ("so messages found no request waiting and queued for up to a round trip"
                 if gap < rtt_ms else "but at this rate (one message every "
                 f"{fmt_ms(gap)} ms) the next request was back in time for most")
        out.append(f"After each delivery a long poller holds no request for one round trip "
                   f"({fmt_ms(rtt_ms)} ms), {waits}; p99 "
                   f"{fmt_ms(modes['longpoll']['latency']['p99_ms'])} ms.")
    if "poll" in modes and "poll-close" in modes:
        keep, close = modes["poll"].get("request_ms"), modes["poll-close"].get("request_ms")
        if keep and close:
            out.append(f"A request took {fmt_ms(keep)} ms over a kept-alive connection and "
                       f"{fmt_ms(close)} ms on a new one: the handshake's round trip comes "
                       "first (the model: one round trip, two).")
    return out


def socket_sentences(result: dict[str, Any]) -> list[str]:
    """TIME_WAIT and the port budget, for the mode that opened the most connections."""
    modes = {m: f for m, f in result["modes"].items() if f.get("link")}
    if not modes:
        return []
    mode, fig = max(modes.items(), key=lambda item: item[1]["link"]["connections"])
    link, budget = fig["link"], result.get("port_budget") or {}
    waiting = link.get("time_wait")
    out = [f"{mode} opened {link['connections']} TCP connections from "
           f"{link['client_ports']} distinct client ports"]
    if waiting is not None:
        out[0] += (f" and left sockets in TIME_WAIT on the side that closed first: "
                   f"{waiting['server_side']} on the server's side, "
                   f"{waiting['client_side']} on the clients'")
    share = link.get("port_budget_share")
    if share is not None:
        out[0] += (f"; at {fmt_num(fig['connections_per_s'])} new connections a second it "
                   f"used {100 * share:.1f}% of what one client address can sustain when it "
                   f"keeps the TIME_WAIT itself ({fmt_num(budget.get('max_new_per_s'))}/s)")
    return [out[0] + "."]


def udp_sentences(result: dict[str, Any]) -> list[str]:
    """What the udp lane lost and recovered, and what the TCP lanes did instead."""
    fig = result["modes"].get("udp")
    if not fig or not fig.get("udp"):
        return []
    udp = fig["udp"]
    lat = udp["recovered_latency"]
    out = [f"udp lost {udp['lost']} event datagrams and saw {udp['reordered']} out of order; "
           f"{udp['recovered']} events came over HTTP instead"
           + (f" (median {fmt_ms(lat['p50_ms'])} ms late)" if lat["count"] else "")
           + (", none missing in the end." if not fig["lost"] else
              f", yet {fig['lost']} deliveries were missing at the end.")]
    tcp = {m: f for m, f in result["modes"].items() if m != "udp" and f.get("link")}
    late = sum(f["link"]["late_segments"] for f in tcp.values())
    if late:
        out.append(f"The TCP lanes lost nothing: their {late} lost segments were sent again "
                   "and held up what followed them (head-of-line blocking), which shows in "
                   "their p99.")
    return out


def cost_sentences(modes: dict[str, Any]) -> list[str]:
    """What one delivered message cost each mode in requests, bytes and handshakes."""
    out = []
    costs = [(m, f"{plural(f['requests_per_msg'], 'request')} and "
                 f"{f['bytes_in_per_msg'] + f['bytes_out_per_msg']:.0f} bytes")
             for m, f in modes.items()]
    if costs:
        out.append(f"Per delivered message: {_names(costs)}.")
    if "poll-close" in modes:
        f = modes["poll-close"]
        out.append(f"poll-close opened {f['connections']} TCP connections for its "
                   f"{f['requests']} requests: one handshake each.")
    for mode in POLL_MODES:
        if mode in modes:
            f, th = modes[mode], modes[mode]["theory"]
            share = 100 * f["empty_polls"] / f["requests"] if f["requests"] else 0.0
            model = 100 * th["empty_polls"] / th["requests"] if th["requests"] else 0.0
            out.append(f"{f['empty_polls']} of {mode}'s {f['requests']} polls came back "
                       f"empty ({share:.0f}%; model {model:.0f}%).")
            break
    return out


def show(result: dict[str, Any], console: Console) -> None:
    """Print the table and the paragraph."""
    for table in build_tables(result):
        console.print(table)
    style = "bold red" if not result["verdict"]["ok"] else None
    console.print(paragraph(result), style=style, soft_wrap=False)


def show_link(result: dict[str, Any], console: Console) -> None:
    """The link line, under the server line."""
    console.print(link_line(result), markup=False, highlight=False)


def write_json(result: dict[str, Any], path: str) -> None:
    """Every figure, as indented JSON."""
    Path(path).write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2 |
                                        orjson.OPT_NON_STR_KEYS) + b"\n")


def csv_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    """One flat row per mode with every column of :data:`CSV_COLUMNS`."""
    rows = []
    for mode, fig in result["modes"].items():
        th, lat = fig["theory"], fig["latency"]
        srv = server_of(result, mode)
        row: dict[str, Any] = {k: fig.get(k) for k in CSV_COLUMNS if k in fig}
        row["mode"] = mode
        row.update({f"latency_{k}": lat[k] for k in ("mean_ms", *LATENCY_KEYS)})
        row.update({f"theory_{k}": th[k] for k in ("mean_ms", *LATENCY_KEYS)})
        row["theory_requests_per_client"] = th["requests"]
        row["theory_empty_polls_per_client"] = th["empty_polls"]
        row["theory_connections_per_client"] = th["connections"]
        row["server_scope"] = "+".join(srv.get("modes", [])) or "unknown"
        row["server_cpu_s"] = srv.get("cpu_s")
        row["server_cpu_pct"] = srv.get("cpu_pct")
        row["theory_request_ms"] = th.get("request_ms")
        row["latency_samples"] = lat["count"]
        row["p99_reliable"] = (fig.get("reliable") or {}).get("p99_ms")
        link = fig.get("link") or {}
        for key in ("connections", "client_ports", "fins_from_client", "fins_from_server",
                    "client_closed_first", "server_closed_first", "handshakes",
                    "late_segments"):
            row[f"link_{key}"] = link.get(key)
        waiting = link.get("time_wait") or {}
        row["time_wait_server_side"] = waiting.get("server_side")
        row["time_wait_client_side"] = waiting.get("client_side")
        row["port_budget_share"] = link.get("port_budget_share")
        udp = fig.get("udp") or {}
        for key in ("datagrams_in", "lost", "reordered", "recovered", "late"):
            row[f"udp_{key}"] = udp.get(key)
        recovered = udp.get("recovered_latency") or {}
        row["udp_recovered_p50_ms"] = recovered.get("p50_ms")
        row["udp_recovered_p99_ms"] = recovered.get("p99_ms")
        rows.append({k: NOT_APPLICABLE if v is None else v for k, v in row.items()})
    return rows


def csv_table(result: dict[str, Any]) -> tuple[list[str], list[dict[str, Any]]]:
    """The columns and rows ``--csv`` writes for any scenario.

    A throughput run has a fixed set of columns (:data:`CSV_COLUMNS`); the heartbeat
    scenarios write their ``rows`` (each with a ``kind``: probe, keepalive, mode, sample),
    with the union of their keys as columns.
    """
    if result["scenario"] == "throughput":
        return list(CSV_COLUMNS), csv_rows(result)
    rows = [{k: csv_value(v) for k, v in row.items()} for row in result["rows"]]
    return list(dict.fromkeys(k for row in rows for k in row)), rows


def csv_value(value: Any) -> Any:
    """A value fit for one CSV cell: lists joined with ``; ``, mappings as JSON."""
    if isinstance(value, list | tuple):
        return "; ".join(str(v) for v in value)
    if isinstance(value, dict):
        return orjson.dumps(value).decode()
    return value


def write_csv(result: dict[str, Any], path: str) -> None:
    """One row per line of the scenario's tables (see :func:`csv_table`)."""
    columns, rows = csv_table(result)
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: "" if row.get(k) is None else row[k] for k in columns})
