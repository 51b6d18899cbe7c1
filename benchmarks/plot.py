#!/usr/bin/env python3
"""plot: draw run_matrix results as PNGs (the latency/CPU trade-off and the growth curve).

    python benchmarks/plot.py tradeoff benchmarks/results-curve.json -o benchmarks/tradeoff.png
    python benchmarks/plot.py growth benchmarks/results-growth.json -o benchmarks/growth.png

``tradeoff``: for every ``fanout-<users>`` row, server CPU per delivery against p99 latency
of each fixed flush window (the ``ours+w<ms>`` variants of ``run_matrix.py --windows``), the
default adaptive window (``ours``) and the C servers, medians over the rounds.
``growth``: CPU per delivery, p99 and the share of its core the server used, against the
users (one room, or ``UxR`` users over R rooms), one line per server/transport.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - after the backend is chosen

CPU = "server_cpu_us_per_delivery"
MARKERS = {"inspircd": ("*", "tab:red"), "ngircd": ("s", "tab:purple"),
           "ours": ("o", "tab:green")}


def _medians(path: str) -> tuple[dict[str, Any], dict[str, Any]]:
    data = json.loads(Path(path).read_text())
    return data["medians"], data.get("machine", {})


def tradeoff(path: str, out: str) -> None:
    """One panel per fan-out size: the fixed windows as a curve, the others as points."""
    med, info = _medians(path)
    keys = sorted((k for k in med if k.startswith("fanout-")),
                  key=lambda k: int(k.split("-")[1].split("x")[0]))
    fig, axes = plt.subplots(1, len(keys), figsize=(6.5 * len(keys), 5), squeeze=False)
    for ax, key in zip(axes[0], keys, strict=True):
        rows = med[key]
        windows = sorted(((int(m.group(1)), v) for s, v in rows.items()
                          if (m := re.fullmatch(r"ours\+w(\d+)", s)) and CPU in v),
                         key=lambda t: t[0])
        if windows:
            xs = [v["p99_ms"] for _ms, v in windows]
            ys = [v[CPU] for _ms, v in windows]
            ax.plot(xs, ys, "-o", color="tab:blue", label="chat serve, fixed window")
            for (ms, _v), x, y in zip(windows, xs, ys, strict=True):
                ax.annotate(f"{ms} ms", (x, y), textcoords="offset points", xytext=(6, 4),
                            fontsize=8, color="tab:blue")
        for server, (marker, color) in MARKERS.items():
            v = rows.get(server)
            if not v or CPU not in v:
                continue
            label = "chat serve, adaptive (default)" if server == "ours" else server
            ax.plot([v["p99_ms"]], [v[CPU]], marker, color=color, markersize=13 if
                    marker == "*" else 9, label=label, linestyle="none")
        ax.set_title(f"{key.split('-')[1]} users in one channel, 1 msg/s each")
        ax.set_xlabel("p99 latency, ms (lower is better)")
        ax.set_ylabel("server CPU per delivery, µs (lower is better)")
        ax.set_ylim(bottom=0)
        ax.set_xlim(left=0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"Flush window: latency vs CPU (medians; {info.get('cpu', '')[:40]})",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    print(f"wrote {out}")


def _users(key: str) -> int:
    return int(key.split("-")[1].split("x")[0])


def growth(paths: list[str], out: str, title: str = "") -> None:
    """CPU per delivery, p99 and core share against users, one line per server."""
    series: dict[str, list[tuple[int, str, dict[str, Any]]]] = {}
    for path in paths:
        med, _info = _medians(path)
        for key, rows in med.items():
            if not re.match(r"(fanout|push)", key):
                continue
            for server, v in rows.items():
                if CPU not in v or "+" in server:  # variants belong to the trade-off plot
                    continue
                if key.startswith("push"):
                    label = {"ours-ws": "chat serve WebSocket", "ours-sse": "chat serve SSE",
                             "aiohttp-ws": "aiohttp WebSocket"}.get(server, server)
                else:
                    label = "chat serve IRC" if server == "ours" else f"{server} IRC"
                series.setdefault(label, []).append((_users(key), key, v))
    fig, axes = plt.subplots(1, 3, figsize=(17, 5))
    for name, points in sorted(series.items()):
        points.sort(key=lambda p: p[0])
        xs = [p[0] for p in points]
        for ax, metric in zip(axes, (CPU, "p99_ms", "server_cpu_pct"), strict=True):
            ys = [p[2].get(metric) for p in points]
            ax.plot(xs, ys, "-o", label=name)
            for x, (_u, key, _v), y in zip(xs, points, ys, strict=True):
                if "x" in key.split("-")[1] and y is not None:
                    ax.annotate(key.split("-")[1], (x, y), fontsize=7)
    for ax, panel in zip(axes, ("server CPU per delivery, µs", "p99 latency, ms",
                                "server CPU, % of one core"), strict=True):
        ax.set_xscale("log")
        ax.set_xlabel("users (one room; UxR: over R rooms)")
        ax.set_title(panel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[0].set_yscale("log")
    axes[1].set_yscale("log")
    axes[2].axhline(100, color="grey", linestyle="--", linewidth=1)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    print(f"wrote {out}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("kind", choices=("tradeoff", "growth"))
    ap.add_argument("results", nargs="+", help="run_matrix.py JSON output(s)")
    ap.add_argument("-o", "--out", required=True)
    ap.add_argument("--title", default="", help="a line above the growth panels")
    args = ap.parse_args(argv)
    if args.kind == "tradeoff":
        tradeoff(args.results[0], args.out)
    else:
        growth(args.results, args.out, args.title)
    return 0


if __name__ == "__main__":
    sys.exit(main())
