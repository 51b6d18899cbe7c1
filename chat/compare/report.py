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
)


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


def cell(measured: str, theory: str | None) -> Text:
    """A measured figure with the model's figure dimmed on the line below."""
    text = Text(measured)
    if theory is not None:
        text.append("\n≈" + theory, style="dim")
    return text


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
    """Two tables, one row per mode each: delivery and latency; what it cost."""
    opts = result["options"]
    delivery = _table(f"Delivery: {opts['clients']} clients per mode, {opts['rate']:g} msg/s "
                      f"for {opts['duration']:g} s, poll interval {opts['interval']:g} s "
                      "(latency from the intended send time; dim ≈ = model)")
    delivery.add_column("mode", style="bold", no_wrap=True, min_width=10)
    delivery.add_column("delivered", justify="right")
    delivery.add_column("lost/dup/ooo", justify="right")
    for key in LATENCY_KEYS:
        delivery.add_column(key.replace("_ms", "") + " ms", justify="right")
    sequential = bool(opts.get("sequential"))
    cost = _table("Cost: per client during the run (conns: including setup), "
                  "or per delivered message",
                  caption(result))
    cost.add_column("mode", style="bold", no_wrap=True, min_width=10)
    for name in ("req", "empty", "conns", "req/msg", "B in/msg", "B out/msg",
                 "CPU") + (("server",) if sequential else ()):
        cost.add_column(name, justify="right")
    for mode, fig in result["modes"].items():
        th, lat = fig["theory"], fig["latency"]
        bad = fig["lost"] or fig["duplicates"] or fig["out_of_order"]
        delivery.add_row(
            mode, f"{fig['delivered']}/{fig['expected']}",
            Text(f"{fig['lost']}/{fig['duplicates']}/{fig['out_of_order']}",
                 style="bold red" if bad else "green"),
            *(cell(fmt_ms(lat[k]), fmt_ms(th[k])) for k in LATENCY_KEYS))
        row: list[Text | str] = [
            mode,
            cell(fmt_num(fig["requests_per_client"]), fmt_num(th["requests"])),
            cell(fmt_num(fig["empty_polls_per_client"]), fmt_num(th["empty_polls"])),
            cell(fmt_num(fig["connections_per_client"]), fmt_num(th["connections"])),
            fmt_num(fig["requests_per_msg"]), fmt_num(fig["bytes_in_per_msg"]),
            fmt_num(fig["bytes_out_per_msg"]), f"{fig['client_cpu_pct']:.1f}%"]
        if sequential:
            srv = fig.get("server") or {}
            row.append("-" if srv.get("cpu_pct") is None else f"{srv['cpu_pct']:.1f}%")
        cost.add_row(*row)
    return [delivery, cost]


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
    if push:
        out.append(f"Pushed messages arrived at once: median {_names(push)}.")
    if poll:
        half = opts["interval"] * 500
        medians = _names([(m, fmt_ms(modes[m]["latency"]["p50_ms"]) + " ms") for m in poll])
        p99 = _names([(m, fmt_ms(modes[m]["latency"]["p99_ms"]) + " ms") for m in poll])
        out.append(f"Polling every {opts['interval']:g} s made each message wait for the next "
                   f"poll: median {medians}, against the model's half interval "
                   f"({fmt_ms(half)} ms); p99 {p99}.")
    out.extend(cost_sentences(modes))
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
        rows.append(row)
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
