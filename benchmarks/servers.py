#!/usr/bin/env python3
"""Start the servers the benchmarks compare, in the foreground, optionally pinned to a core.

    python benchmarks/servers.py inspircd --port 16667 --cpu 0   # runs until Ctrl-C

Names: ``ours`` (``chat serve``: IRC on --port, HTTP on --http-port), ``ngircd``,
``inspircd``, ``aiohttp`` (benchmarks/aiohttp_ref.py), ``nginx`` (a static file holding
the empty-poll answer) and ``floor-irc``/``floor-http`` (benchmarks/floor.py: uvloop's
transports with no server behind them, the floor under ours).  The C servers' configs
live in benchmarks/servers/ with ``@PORT@`` and ``@DIR@`` placeholders; they are rendered
into a fresh temporary directory per start.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
CONFIGS = HERE / "servers"
NAMES = ("ours", "ngircd", "inspircd", "aiohttp", "nginx", "websockets", "aiohttp-ws",
         "floor-irc", "floor-http")
IRC_NAMES = ("ours", "ngircd", "inspircd", "floor-irc")
HTTP_NAMES = ("ours", "aiohttp", "nginx", "floor-http")
# `chat serve` runs with its defaults (flood control, heartbeats, send queues, per-address
# limits; loopback is exempt from the per-address ones as for any local client), quieter logs.
OURS_BENCH_OPTIONS = ["--log-level", "warning"]
# The HTTP benchmark hammers ONE session with wrk: the per-session request budget would
# (correctly) answer 429 after 50/s, so that one limit is off there (and only there).
OURS_HTTP_OPTIONS = ["--http-rate", "0"]
EMPTY_POLL = b'{"events":[],"next":0,"gap":false}'


@dataclass
class Server:
    """A running server process and the temporary directory holding its config."""

    name: str
    proc: subprocess.Popen[bytes]
    workdir: str
    port: int
    http_port: int | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.workdir, ignore_errors=True)


def _render(name: str, workdir: Path, port: int) -> Path:
    text = (CONFIGS / f"{name}.conf").read_text()
    out = workdir / f"{name}.conf"
    out.write_text(text.replace("@PORT@", str(port)).replace("@DIR@", str(workdir)))
    return out


def command(name: str, port: int, http_port: int | None, workdir: Path,
            extra: list[str] | None = None) -> list[str]:
    """The argv that runs ``name`` in the foreground with its config under ``workdir``.

    ``extra`` is appended to ``chat serve``'s options (e.g. ``--flush-interval 0.005``).
    """
    if name == "ours":
        return [sys.executable, "-m", "chat", "serve", "--host", "127.0.0.1",
                "--irc-port", str(port), "--http-port", str(http_port or port + 1),
                *OURS_BENCH_OPTIONS, *(extra or [])]
    if name == "ngircd":
        return ["ngircd", "--nodaemon", "--config", str(_render(name, workdir, port))]
    if name == "inspircd":
        (workdir / "motd.txt").write_text("benchmark\n")
        return ["inspircd", "--nofork", "--nolog", "--runasroot",
                "--config", str(_render(name, workdir, port))]
    if name == "aiohttp":
        return [sys.executable, str(HERE / "aiohttp_ref.py"), "--port", str(port)]
    if name in ("websockets", "aiohttp-ws"):  # the WebSocket broadcast references
        return [sys.executable, str(HERE / "ws_ref.py"), "--impl", name.removesuffix("-ws"),
                "--port", str(port)]
    if name in ("floor-irc", "floor-http"):  # uvloop's transports alone (floor.py)
        return [sys.executable, str(HERE / "floor.py"), name.removeprefix("floor-"),
                "--port", str(port)]
    if name == "nginx":
        (workdir / "www").mkdir()
        (workdir / "tmp").mkdir()
        (workdir / "www" / "empty.json").write_bytes(EMPTY_POLL)
        return ["nginx", "-p", str(workdir), "-c", str(_render(name, workdir, port))]
    raise ValueError(f"unknown server {name!r}; one of {', '.join(NAMES)}")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def check_free(port: int) -> None:
    """Raise if 127.0.0.1:``port`` is taken (so we never benchmark someone else's server)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError as exc:
            raise RuntimeError(f"port {port} is taken: {exc.strerror}") from None


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    """Return once 127.0.0.1:``port`` accepts; raise if the process died or time ran out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with status {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on 127.0.0.1:{port} after {timeout} s")


def start(name: str, port: int, *, http_port: int | None = None, cpu: int | None = None,
          quiet: bool = True, extra: list[str] | None = None) -> Server:
    """Start ``name`` (pinned to ``cpu`` with taskset if given) and wait until it listens."""
    for p in (port, http_port):
        if p:
            check_free(p)
    workdir = Path(tempfile.mkdtemp(prefix=f"bench-{name}-"))
    workdir.chmod(0o777)  # ngircd drops root for 'nobody' and still writes its pid file here
    argv = command(name, port, http_port, workdir, extra)
    if cpu is not None:
        argv = ["taskset", "-c", str(cpu), *argv]
    out = subprocess.DEVNULL if quiet else None
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = subprocess.Popen(argv, stdout=out, stderr=out if quiet else None, env=env,
                            cwd=workdir, start_new_session=True)
    server = Server(name, proc, str(workdir), port, http_port)
    try:
        wait_port(port, proc)
        if name == "ours" and http_port:
            wait_port(http_port, proc)
    except BaseException:
        server.stop()
        raise
    return server


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("name", choices=NAMES)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--http-port", type=int, default=None, help="ours only")
    ap.add_argument("--cpu", type=int, default=None, help="pin to this core with taskset")
    ap.add_argument("extra", nargs="*", help="more `chat serve` options (ours only; after --)")
    args = ap.parse_args()
    server = start(args.name, args.port, http_port=args.http_port, cpu=args.cpu, quiet=False,
                   extra=args.extra)
    print(f"{args.name} pid {server.pid} on 127.0.0.1:{args.port}"
          + (f" (http {args.http_port})" if args.http_port else ""), flush=True)
    try:
        server.proc.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
