#!/usr/bin/env python3
"""http-poll: empty polls under ``wrk -c50``, keep-alive and ``Connection: close``.

Sets up a session on the target (``POST /api/sessions``, ``POST /api/rooms/{room}/join``),
checks that ``GET /api/rooms/{room}/messages?since=<latest>`` answers 200 with no events, then
lets wrk hammer exactly that request.  ``--static`` skips the set-up and polls a plain path
(nginx serving the same JSON from a file: the ceiling).  Non-2xx answers and socket errors
are reported, and a run with any is marked invalid.

    python benchmarks/http_poll.py 127.0.0.1:8080 --pid $(pgrep -n -f 'chat serve')
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import resource
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any

from benchlib import ServerWatch, cpu_count_note, emit, parse_target

TIME_WAIT_CALM = 5000  # TIME_WAIT sockets below which a run may start

WRK_SCRIPT = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '\nWRKJSON {"requests":%d,"duration_us":%d,"bytes":%d,"connect_errors":%d,' ..
    '"read_errors":%d,"write_errors":%d,"non2xx":%d,"timeouts":%d,' ..
    '"p50_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write,
    e.status, e.timeout, latency:percentile(50), latency:percentile(99), latency.max))
end
"""


def _request(host: str, port: int, method: str, path: str, body: dict[str, Any] | None = None,
             token: str | None = None) -> tuple[int, dict[str, Any]]:
    conn = http.client.HTTPConnection(host, port, timeout=10)
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    conn.request(method, path, body=json.dumps(body) if body is not None else None,
                 headers=headers)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, (json.loads(data) if data else {})


def set_up(host: str, port: int, room: str) -> tuple[str, str]:
    """A session joined to ``room``: ``(token, path of the empty poll)``; exits on failure."""
    nick = "poll" + secrets.token_hex(4)
    status, body = _request(host, port, "POST", "/api/sessions", {"nick": nick})
    if status != 201:
        sys.exit(f"POST /api/sessions -> {status} {body}")
    token = body["token"]
    status, body = _request(host, port, "POST", f"/api/rooms/{room}/join", token=token)
    if status != 200:
        sys.exit(f"POST /api/rooms/{room}/join -> {status} {body}")
    path = f"/api/rooms/{room}/messages?since={body['last_id']}"
    status, body = _request(host, port, "GET", path, token=token)
    if status != 200 or body.get("events") != []:
        sys.exit(f"GET {path} is not an empty poll: {status} {body}")
    return token, path


def run_wrk(url: str, headers: list[str], connections: int, threads: int, duration: float,
            watch: ServerWatch) -> dict[str, Any]:
    """One wrk run; returns its figures plus server and wrk CPU."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(WRK_SCRIPT)
        script = f.name
    argv = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{max(1, round(duration))}s",
            "--timeout", "5s", "-s", script]
    for h in headers:
        argv += ["-H", h]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu0 = watch.cpu()
    t0 = time.monotonic()
    try:
        proc = subprocess.run([*argv, url], capture_output=True, text=True,
                              timeout=duration + 30)
    finally:
        os.unlink(script)
    elapsed = time.monotonic() - t0
    cpu = watch.cpu() - cpu0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("WRKJSON ")]
    if proc.returncode != 0 or not lines:
        sys.exit(f"wrk failed ({proc.returncode}): {proc.stderr.strip() or proc.stdout[-500:]}")
    w = json.loads(lines[-1][len("WRKJSON "):])
    secs = w["duration_us"] / 1e6
    errors = w["connect_errors"] + w["read_errors"] + w["write_errors"] + w["timeouts"]
    wrk_cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return {
        "requests": w["requests"], "requests_per_s": round(w["requests"] / secs, 1),
        "non2xx": w["non2xx"], "socket_errors": errors,
        "valid": w["non2xx"] == 0 and errors == 0 and w["requests"] > 0,
        "latency_p50_ms": round(w["p50_us"] / 1000, 3),
        "latency_p99_ms": round(w["p99_us"] / 1000, 3),
        "latency_max_ms": round(w["max_us"] / 1000, 3),
        "server_cpu_pct": round(100 * cpu / elapsed, 1) if watch.proc else None,
        "server_cpu_us_per_request": (round(cpu * 1e6 / w["requests"], 2)
                                      if watch.proc and w["requests"] else None),
        "wrk_cpu_pct": round(100 * wrk_cpu / elapsed, 1),
    }


def time_wait_sockets() -> int:
    """TCP sockets in TIME_WAIT on this machine: the kernel's count (``tw`` on the ``TCP:``
    line of /proc/net/sockstat, IPv4 and IPv6 together); 0 where it cannot be read."""
    try:
        with open("/proc/net/sockstat") as fh:
            for line in fh:
                if line.startswith("TCP:"):
                    fields = line.split()
                    return int(fields[fields.index("tw") + 1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def drain_time_wait(below: int = TIME_WAIT_CALM, within: float = 90.0) -> tuple[float, int]:
    """Wait until fewer than ``below`` sockets are in TIME_WAIT (at most ``within`` s): a
    previous ``Connection: close`` run leaves up to ~130,000 for 60 s, and every connect()
    of the next run then searches past them for a free 4-tuple, which would charge one
    server for its predecessor.  Returns (seconds waited, sockets left)."""
    start = time.monotonic()
    left = time_wait_sockets()
    while left >= below and time.monotonic() - start < within:
        time.sleep(2.0)
        left = time_wait_sockets()
    return round(time.monotonic() - start, 1), left


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("target", help="HTTP server as host:port")
    ap.add_argument("--mode", choices=("keepalive", "close", "both"), default="both")
    ap.add_argument("--connections", "-c", type=int, default=50)
    ap.add_argument("--threads", "-t", type=int, default=1, help="wrk threads")
    ap.add_argument("--duration", type=float, default=10.0, help="seconds per mode")
    ap.add_argument("--room", default="bench")
    ap.add_argument("--static", default=None, metavar="PATH",
                    help="poll this path without a session (nginx serving a file)")
    ap.add_argument("--pid", type=int, default=None, help="server pid (for CPU)")
    ap.add_argument("--json", default=None, help="also write the JSON result here")
    args = ap.parse_args(argv)
    host, port = parse_target(args.target)
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (apt-get install wrk)")
    watch = ServerWatch(args.pid)
    drain_time_wait()  # before the session exists: a long wait must not expire it
    headers: list[str] = []
    if args.static:
        path = args.static
    else:
        token, path = set_up(host, port, args.room)
        headers.append(f"Authorization: Bearer {token}")
    url = f"http://{host}:{port}{path}"
    modes = ("keepalive", "close") if args.mode == "both" else (args.mode,)
    result: dict[str, Any] = {"bench": "http-poll", "target": args.target, "path": path,
                              "connections": args.connections, "duration_s": args.duration,
                              **cpu_count_note()}
    for mode in modes:
        extra = ["Connection: close"] if mode == "close" else []
        waited, left = drain_time_wait()
        result[mode] = run_wrk(url, headers + extra, args.connections, args.threads,
                               args.duration, watch)
        result[mode]["time_wait_before"] = left
        result[mode]["time_wait_waited_s"] = waited
    if watch.proc:
        result["server_rss_mib"] = round(watch.rss() / 2**20, 1)
    parts = []
    for mode in modes:
        r = result[mode]
        flag = "" if r["valid"] else f" INVALID(non2xx={r['non2xx']} err={r['socket_errors']})"
        cpu = (f", {r['server_cpu_us_per_request']} µs CPU/req"
               if r["server_cpu_us_per_request"] is not None else "")
        parts.append(f"{mode} {r['requests_per_s']:,.0f} req/s (p99 {r['latency_p99_ms']} ms"
                     f"{cpu}){flag}")
    emit(result, f"http-poll {args.target} -c{args.connections}: " + "; ".join(parts),
         args.json)
    return 0 if all(result[m]["valid"] for m in modes) else 2


if __name__ == "__main__":
    sys.exit(main())
