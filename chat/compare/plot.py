"""``--plot FILE.png``: the scenario's panels, drawn with matplotlib.

* throughput (four panels): the latency CDF per mode with the model's as a dashed line;
  header and payload bytes per delivered message; requests and TCP connections per
  delivered message (bars); connections, handshakes and the TIME_WAIT sockets left;
* nat: per mode and round, how long each side took to notice, and what was lost and
  recovered;
* dead-peer: how long each vanished probe took to be noticed against its bound, and what
  keeping the live clients alive cost;
* idle: bytes per idle client per minute (measured and at the default heartbeats), and the
  server's memory and heartbeat traffic over the hold.

matplotlib is optional; :func:`check_available` and :func:`check_format` tell before a run
whether the plot can be drawn, so the lab refuses ``--plot`` up front instead of failing
after the run.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any


class PlotUnavailable(RuntimeError):
    """matplotlib is not installed."""


def install_hint() -> str:
    """How to get matplotlib into the Python running the lab (the checkout when known)."""
    root = Path(__file__).resolve().parents[2]
    what = f"'{root}[plot]'" if (root / "pyproject.toml").is_file() else "matplotlib"
    return f"{Path(sys.executable).name} -m pip install {what}"


def check_available() -> None:
    """Raise :class:`PlotUnavailable` (with how to install it) if matplotlib is missing."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise PlotUnavailable(f"--plot needs matplotlib, which {sys.executable} cannot "
                              f"import; install it with: {install_hint()}") from None


def check_format(path: str) -> None:
    """Raise :class:`PlotUnavailable` if matplotlib cannot write ``path``'s format.

    A name without a suffix is drawn as PNG (matplotlib's default).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    suffix = Path(path).suffix.lower()
    formats = FigureCanvasAgg.get_supported_filetypes()
    if suffix and suffix[1:] not in formats:
        raise PlotUnavailable(f"--plot {path}: matplotlib cannot write {suffix!r} files; "
                              f"name it .png (or {', '.join(sorted(formats))})")


def write_plot(result: dict[str, Any], path: str) -> None:
    """Draw the panels of ``result``'s scenario into the PNG ``path``."""
    check_available()
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    draw: dict[str, Callable[[Any, Any, dict[str, Any]], str]] = {
        "dead-peer": draw_dead_peer, "idle": draw_idle, "nat": draw_nat}
    four = result["scenario"] == "throughput"
    fig, axes = plt.subplots(2 if four else 1, 2, figsize=(13, 9 if four else 4.5))
    try:
        if four:
            fig.suptitle(draw_throughput(axes.flat, result))
        else:
            left, right = axes
            fig.suptitle(draw[result["scenario"]](left, right, result))
        fig.tight_layout()
        fig.savefig(path, dpi=110)
    finally:
        plt.close(fig)


MODEL_STEPS = 40  # points between two of the model's percentiles


def model_cdf(th: dict[str, Any]) -> list[tuple[float, float]]:
    """The model's CDF as ``(ms, percentile)`` points, dense enough to draw on a log axis.

    Its distributions are uniform or a point, so p0 extrapolates p50..p90, and the CDF is
    straight in latency between its percentiles: a log axis would bend two points far
    apart into a line the model never drew, hence the points in between.
    """
    start = max(0.0, th["p50_ms"] - (th["p90_ms"] - th["p50_ms"]) * 1.25)
    corners = [(start, 0.0)] + [(th[k], 100 * share) for k, share in
                                (("p50_ms", 0.5), ("p90_ms", 0.9), ("p99_ms", 0.99),
                                 ("max_ms", 1.0))]
    points = corners[:1]
    for (ms0, p0), (ms1, p1) in zip(corners, corners[1:], strict=False):
        points += [(ms0 + (ms1 - ms0) * i / MODEL_STEPS, p0 + (p1 - p0) * i / MODEL_STEPS)
                   for i in range(1, MODEL_STEPS + 1)]
    return points


def draw_throughput(axes: Any, result: dict[str, Any]) -> str:
    """Four panels: latency CDF (with the model), bytes, requests and connections per
    message, and what the connections left behind."""
    cdf, data, calls, sockets = axes
    modes: dict[str, Any] = result["modes"]
    names = list(modes)
    colors = {m: f"C{i}" for i, m in enumerate(names)}
    for mode, figures in modes.items():
        points = figures["cdf"]
        if points:
            cdf.plot([max(ms, 0.001) for ms, _ in points], [p for _, p in points],
                     color=colors[mode], label=mode)
        model = model_cdf(figures["theory"])
        cdf.plot([max(ms, 0.001) for ms, _ in model], [p for _, p in model], "--",
                 color=colors[mode], alpha=0.6)
    cdf.set_xscale("log")
    cdf.set_xlabel("delivery latency (ms, from intended send time); dashed: the model")
    cdf.set_ylabel("percentile")
    cdf.set_title("Latency CDF")
    cdf.grid(True, which="both", alpha=0.3)
    cdf.legend(fontsize="small")
    xs = list(range(len(names)))
    header = [modes[m].get("header_bytes_per_msg") or 0 for m in names]
    payload = [modes[m].get("payload_bytes_per_msg") or 0 for m in names]
    data.bar(xs, header, label="headers, framing, empty answers")
    data.bar(xs, payload, bottom=header, label="the message text")
    data.set_xticks(xs, names)
    data.set_ylabel("bytes per delivered message (per client)")
    data.set_title("What a message costs on the wire")
    data.legend(fontsize="small")
    paired_bars(calls, names, [modes[m]["requests_per_msg"] for m in names],
                [modes[m].get("connections_per_msg") or 0 for m in names],
                "requests / msg", "new TCP connections / msg")
    calls.set_ylabel("per delivered message (per client)")
    calls.set_title("Requests and connections per message")
    calls.legend(fontsize="small")
    draw_sockets(sockets, result)
    opts = result["options"]
    return (f"chat compare: {opts['clients']} clients/mode, {opts['rate']:g} msg/s, "
            f"{opts['duration']:g} s, poll interval {opts['interval']:g} s; link: "
            f"{(result.get('link') or {}).get('describe', 'none')}")


def draw_sockets(ax: Any, result: dict[str, Any]) -> None:
    """Connections opened, handshakes, and TIME_WAIT sockets left (each side), per mode."""
    modes = {m: f for m, f in result["modes"].items() if f.get("link")}
    if not modes:
        ax.text(0.5, 0.5, "no link (--direct): the modes' sockets\ncannot be told apart",
                ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return
    names = list(modes)
    xs = list(range(len(names)))
    width = 0.2
    series = [("connections", [f["link"]["connections"] for f in modes.values()]),
              ("handshakes waited", [f["link"]["handshakes"] for f in modes.values()]),
              ("TIME_WAIT, server side",
               [(f["link"]["time_wait"] or {}).get("server_side", 0) for f in modes.values()]),
              ("TIME_WAIT, client side",
               [(f["link"]["time_wait"] or {}).get("client_side", 0) for f in modes.values()])]
    for i, (label, values) in enumerate(series):
        ax.bar([x + (i - 1.5) * width for x in xs], values, width, label=label)
    ax.set_yscale("symlog", linthresh=1)
    ax.set_xticks(xs, names)
    rtt = float(((result.get("link") or {}).get("settings") or {}).get("rtt") or 0)
    spent = sum(f["link"]["handshakes"] for f in modes.values()) * rtt
    ax.set_title("Connections, handshakes, TIME_WAIT left"
                 + (f" ({spent:.1f} s in handshakes)" if rtt else ""))
    ax.set_ylabel("count over the run (log scale)")
    ax.legend(fontsize="small")


def draw_nat(timing: Any, losses: Any, result: dict[str, Any]) -> str:
    """Per mode: when each side noticed the NAT's black hole (slow heartbeats); per mode
    and round: the deliveries that missed their moment."""
    rounds = result["rounds"]
    names = [row["mode"] for row in rounds[0]["modes"]]
    xs = list(range(len(names)))
    slow_nat = {row["mode"]: row for row in rounds[0]["modes"]}
    paired_bars(timing, names,
                [slow_nat[m]["server_noticed_s"] or 0 for m in names],
                [slow_nat[m]["client_noticed_s"] or 0 for m in names],
                "server noticed", "client noticed")
    timing.set_ylabel("seconds after the NAT forgot the flow (0: never, or not hit)")
    timing.set_title(f"{rounds[0]['describe']}, heartbeats every "
                     f"{rounds[0]['heartbeat_s']:g} s", fontsize="small")
    timing.legend(fontsize="small")
    width = 0.8 / len(rounds)
    for i, r in enumerate(rounds):
        rows = {row["mode"]: row for row in r["modes"]}
        losses.bar([x + (i - (len(rounds) - 1) / 2) * width for x in xs],
                   [rows[m]["missed_live"] for m in names], width,
                   label=f"{r['kind']}, heartbeats every {r['heartbeat_s']:g} s")
    losses.set_xticks(xs, names)
    losses.set_ylabel("deliveries that came late (by resume)")
    losses.set_title("What the silence cost (none was lost)" if result["verdict"]["ok"]
                     else "What the silence cost (some were lost)", fontsize="small")
    losses.legend(fontsize="small")
    return f"chat compare --scenario nat: {result['describe']}"


def draw_dead_peer(probes: Any, cost: Any, result: dict[str, Any]) -> str:
    """Time until each probe was noticed, next to its bound; keep-alive cost per mode."""
    rows = result["probes"]
    ys = range(len(rows))
    watched = result["watched_s"]
    probes.barh(list(ys), [p["noticed_after_s"] if p["noticed"] else watched for p in rows],
                color=["tab:blue" if p["noticed"] else "lightgrey" for p in rows])
    for y, p in zip(ys, rows, strict=True):
        if p["bound_s"]:
            probes.plot([p["bound_s"]], [y], "k|", markersize=24)
        if not p["noticed"]:
            probes.text(watched / 2, y, f"not noticed in {watched:g} s", ha="center",
                        va="center")
    probes.set_yticks(list(ys), [p["mode"] for p in rows])
    probes.set_xlabel("seconds until the server noticed (|: configured bound)")
    probes.set_title("Vanished clients")
    keep = result["keepalive"]
    names = [c["mode"] for c in keep]
    paired_bars(cost, names, [c["bytes_in_per_min"] for c in keep],
                [c["bytes_out_per_min"] for c in keep], "bytes in / min", "bytes out / min")
    cost.set_ylabel("bytes per live client per minute")
    cost.set_title("Keeping the live clients alive")
    if keep:
        line_on_twin(cost, [c["requests_per_min"] for c in keep], "requests / min")
    return "chat compare --scenario dead-peer"


def draw_idle(cost: Any, timeline: Any, result: dict[str, Any]) -> str:
    """Bytes per idle client per minute per mode; server memory and traffic over time."""
    modes = result["modes"]
    names = [c["mode"] for c in modes]
    paired_bars(cost, names, [c["bytes_in_per_min"] + c["bytes_out_per_min"] for c in modes],
                [c["bytes_per_min_at_defaults"] for c in modes], "measured",
                "at the default heartbeats")
    cost.set_ylabel("bytes per idle client per minute")
    cost.set_title("What staying connected costs")
    cost.legend(loc="upper left")
    points = result["timeline"]
    ts = [t["t_s"] for t in points]
    timeline.plot(ts, [(t["rss_bytes"] or 0) / 2**20 for t in points], "k-", label="RSS MiB")
    timeline.set_xlabel("seconds into the hold")
    timeline.set_ylabel("server RSS (MiB)")
    timeline.set_title("Server over time")
    traffic = timeline.twinx()
    for key, label in (("irc_pings_sent", "IRC PINGs"), ("http_requests", "HTTP requests")):
        traffic.plot(ts, [t[key] or 0 for t in points], "--", label=label)
    traffic.set_ylabel("count since the hold began")
    merge_legends(timeline, traffic)
    opts = result["options"]
    return (f"chat compare --scenario idle: {opts['clients']} clients/mode, "
            f"{opts['duration']:g} s")


def paired_bars(ax: Any, names: list[str], first: list[float], second: list[float],
                first_label: str, second_label: str) -> None:
    """Two bars per name, side by side."""
    xs = range(len(names))
    width = 0.4
    ax.bar([x - width / 2 for x in xs], first, width, label=first_label)
    ax.bar([x + width / 2 for x in xs], second, width, label=second_label)
    ax.set_xticks(list(xs), names)


def line_on_twin(ax: Any, values: list[float], label: str) -> None:
    """``values`` as a black line on a second y axis, with one legend for both axes."""
    twin = ax.twinx()
    twin.plot(list(range(len(values))), values, "ko-", label=label)
    twin.set_ylabel(label)
    merge_legends(ax, twin)


def merge_legends(ax: Any, twin: Any) -> None:
    handles, labels = ax.get_legend_handles_labels()
    more, more_labels = twin.get_legend_handles_labels()
    ax.legend(handles + more, labels + more_labels, loc="upper left")
