"""One mode's figures from what its worker, the link and the kernel reported (pure).

:func:`mode_figures` turns a worker's result (counters over the measured window, latency
histograms, payload bytes) into figures per client and per delivered message, next to the
model's; :func:`link_figures` adds what the mode's relays saw (connections, distinct client
ports, FINs and who closed first, handshakes, late segments, datagrams) and the TIME_WAIT
sockets the kernel still holds on the lane's ports; :func:`udp_figures` the udp lane's
losses, reorderings and recoveries.
"""

from __future__ import annotations

from typing import Any

from .metrics import cdf_points, decode_histogram, latency_summary
from .theory import PERCENTILES, enough_samples, predict

TCP_RELAYS = ("irc", "http")


def reliability(count: int) -> dict[str, bool]:
    """Which latency percentiles ``count`` samples are enough for."""
    return {name: enough_samples(count, share) for name, share in PERCENTILES.items()}


def mode_figures(opts: Any, mode: str, result: dict[str, Any]) -> dict[str, Any]:
    """Every figure of one mode, normalised per client and per delivered message."""
    hist = decode_histogram(result["histogram"])
    clients = max(int(result["clients"]), 1)
    delivered = int(result["delivered"])
    window = result.get("window") or {}
    counters = window.get("counters", {})
    lifetime = result.get("lifetime", {})
    per_msg = max(delivered, 1)
    wall = float(window.get("wall_s") or 0) or 1e-9
    requests = int(counters.get("requests", 0))
    link = opts.link
    theory = predict(mode, rate=opts.rate, duration=opts.duration, interval=opts.interval,
                     window=window.get("wall_s"), rtt=link.rtt, jitter=link.jitter,
                     quiet=opts.quiet, loss=link.loss).as_dict()
    if theory["connections"] is None:  # poll-close: one handshake per request
        theory["connections"] = round(lifetime.get("requests", 0) / clients, 2)
    latency = latency_summary(hist)
    payload = float(result.get("payload_bytes") or 0) / per_msg
    traffic = (counters.get("bytes_in", 0) + counters.get("bytes_out", 0)) / per_msg
    timed = int(counters.get("timed_requests", 0))
    return {
        "clients": int(result["clients"]), "expected": int(result["expected"]),
        "delivered": delivered, "lost": int(result["lost"]),
        "clients_with_loss": int(result["clients_with_loss"]),
        "duplicates": int(result["duplicates"]), "out_of_order": int(result["out_of_order"]),
        "latency": latency, "reliable": reliability(int(latency["count"] or 0)),
        "cdf": cdf_points(hist),
        "requests": requests, "requests_per_client": round(requests / clients, 2),
        "requests_per_msg": round(requests / per_msg, 3),
        "request_ms": round(counters.get("request_time_ms", 0) / timed, 2) if timed else None,
        "empty_polls": int(counters.get("empty_polls", 0)),
        "empty_polls_per_client": round(counters.get("empty_polls", 0) / clients, 2),
        "connections": int(counters.get("connections_opened", 0)),
        "connections_lifetime": int(lifetime.get("connections_opened", 0)),
        "connections_per_client": round(lifetime.get("connections_opened", 0) / clients, 2),
        "connections_per_msg": round(counters.get("connections_opened", 0) / per_msg, 3),
        "connections_per_s": round(counters.get("connections_opened", 0) / wall, 2),
        "requests_lifetime": int(lifetime.get("requests", 0)),
        "bytes_in": int(counters.get("bytes_in", 0)),
        "bytes_out": int(counters.get("bytes_out", 0)),
        "bytes_in_per_msg": round(counters.get("bytes_in", 0) / per_msg, 1),
        "bytes_out_per_msg": round(counters.get("bytes_out", 0) / per_msg, 1),
        "payload_bytes_per_msg": round(payload, 1),
        "header_bytes_per_msg": round(max(0.0, traffic - payload), 1),
        "events": int(counters.get("events", 0)),
        "reconnects": int(counters.get("reconnects", 0)),
        "client_cpu_s": window.get("cpu_s"),
        "client_cpu_pct": round(100 * float(window.get("cpu_s") or 0) / wall, 1),
        "wall_s": window.get("wall_s"),
        "theory": theory,
    }


def udp_figures(result: dict[str, Any]) -> dict[str, Any]:
    """The udp lane's own figures: datagrams lost, reordered, recovered over HTTP."""
    counters = (result.get("window") or {}).get("counters", {})
    recovered = decode_histogram(result.get("recovered_histogram") or "")
    latency = latency_summary(recovered)
    return {"datagrams_in": int(counters.get("datagrams_in", 0)),
            "lost": int(counters.get("lost", 0)),
            "reordered": int(counters.get("reordered", 0)),
            "recovered": int(counters.get("recovered", 0)),
            "late": int(counters.get("late", 0)),
            "recovered_latency": latency,
            "recovered_reliable": reliability(int(latency["count"] or 0))}


def link_figures(lane: dict[str, Any], time_wait: dict[int, dict[str, int]] | None,
                 ports: dict[str, int], budget: dict[str, Any],
                 connections_per_s: float) -> dict[str, Any]:
    """What the relays of one lane saw, and the TIME_WAIT sockets left on its ports."""
    tcp = [lane[name] for name in TCP_RELAYS if name in lane]

    def total(key: str) -> int:
        return sum(int(stats.get(key, 0)) for stats in tcp)

    out: dict[str, Any] = {
        "connections": total("connections"), "client_ports": total("client_ports"),
        "handshakes": total("handshakes"), "fins_from_client": total("fins_from_client"),
        "fins_from_server": total("fins_from_server"),
        "client_closed_first": total("client_closed_first"),
        "server_closed_first": total("server_closed_first"), "resets": total("resets"),
        "late_segments": total("late_segments"), "blackholed": total("blackholed"),
        "proxy_cuts": total("proxy_cuts"),
        "port_budget_share": (round(connections_per_s / budget["max_new_per_s"], 4)
                              if budget.get("max_new_per_s") else None)}
    if time_wait is None:
        out["time_wait"] = None
    else:
        tcp_ports = [ports[name] for name in TCP_RELAYS if name in ports]
        out["time_wait"] = {side: sum(time_wait.get(p, {}).get(side, 0) for p in tcp_ports)
                            for side in ("server_side", "client_side")}
    udp = lane.get("udp")
    if udp is not None:
        out["datagrams"] = {"down": int(udp.get("datagrams_down", 0)),
                            "up": int(udp.get("datagrams_up", 0)),
                            "lost_down": int(udp.get("lost_down", 0)),
                            "lost_up": int(udp.get("lost_up", 0)),
                            "reordered_down": int(udp.get("reordered_down", 0)),
                            "mappings": int(udp.get("mappings", 0))}
    return out
