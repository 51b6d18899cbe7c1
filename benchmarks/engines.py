#!/usr/bin/env python3
"""engines: the same fan-out on the memory engine, the Redis engine on 1 node, and on 2.

Each round starts a fresh ``redis-server`` (no persistence: the benchmark measures the
engine, not the disk) and the servers pinned to ``--server-cpu``, runs ``fanout.py`` with
the load pinned to ``--load-cpu`` (users spread over the nodes), and charges the CPU of
every ``chat serve`` process *and* of redis-server to the deliveries.  Prints one JSON line
per round, then a table of medians.

    python benchmarks/engines.py --users 300 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import servers  # noqa: E402 - after the path insert
from benchlib import ServerWatch  # noqa: E402

SETUPS = ("memory", "redis-1", "redis-2")


def start_redis(port: int, cpu: int) -> tuple[subprocess.Popen[bytes], str]:
    workdir = tempfile.mkdtemp(prefix="bench-redis-")
    proc = subprocess.Popen(["taskset", "-c", str(cpu), "redis-server", "--port", str(port),
                             "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", workdir], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    servers.wait_port(port, proc)
    return proc, workdir


def one_round(setup: str, args: argparse.Namespace) -> dict[str, Any]:
    redis_proc: subprocess.Popen[bytes] | None = None
    workdir = ""
    nodes: list[servers.Server] = []
    try:
        extra: list[str] = []
        if setup != "memory":
            redis_port = servers.free_port()
            redis_proc, workdir = start_redis(redis_port, args.server_cpu)
            extra = ["--engine", f"redis://127.0.0.1:{redis_port}/0"]
        for _ in range(2 if setup == "redis-2" else 1):
            port, http_port = servers.free_port(), servers.free_port()
            nodes.append(servers.start("ours", port, http_port=http_port,
                                       cpu=args.server_cpu, extra=extra))
        pids = [n.pid for n in nodes] + ([redis_proc.pid] if redis_proc else [])
        out = subprocess.run(
            ["taskset", "-c", str(args.load_cpu), sys.executable, str(HERE / "fanout.py"),
             ",".join(f"127.0.0.1:{n.port}" for n in nodes), "--users", str(args.users),
             "--duration", str(args.duration), "--warmup", str(args.warmup),
             "--pid", ",".join(map(str, pids))],
            capture_output=True, text=True, timeout=600, check=True)
        result: dict[str, Any] = json.loads(out.stdout.splitlines()[0])
        result["setup"] = setup
        if redis_proc is not None:
            result["redis_cpu_s"] = round(ServerWatch(redis_proc.pid).cpu(), 3)
        return result
    finally:
        for node in nodes:
            node.stop()
        if redis_proc is not None:
            redis_proc.terminate()
            redis_proc.wait(10)
        if workdir:
            shutil.rmtree(workdir, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--users", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=float, default=8.0)
    ap.add_argument("--warmup", type=float, default=2.0)
    ap.add_argument("--server-cpu", type=int, default=0)
    ap.add_argument("--load-cpu", type=int, default=1)
    ap.add_argument("--setups", default=",".join(SETUPS))
    ap.add_argument("--json", default=None, help="write every round's result here")
    args = ap.parse_args()
    rounds: dict[str, list[dict[str, Any]]] = {s: [] for s in args.setups.split(",")}
    for _ in range(args.rounds):
        for setup in rounds:  # interleaved, so drift hits every setup alike
            result = one_round(setup, args)
            rounds[setup].append(result)
            print(json.dumps(result), flush=True)
            time.sleep(0.5)
    print(f"\n{'setup':<10} {'µs CPU/delivery':>16} {'p50 ms':>8} {'p99 ms':>8} "
          f"{'delivered %':>12}  (medians of {args.rounds}, {args.users} users)")
    for setup, results in rounds.items():
        med = {key: statistics.median(r[key] for r in results)
               for key in ("server_cpu_us_per_delivery", "p50_ms", "p99_ms", "delivered_pct")}
        print(f"{setup:<10} {med['server_cpu_us_per_delivery']:>16.3f} {med['p50_ms']:>8.2f} "
              f"{med['p99_ms']:>8.2f} {med['delivered_pct']:>12.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(rounds, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
