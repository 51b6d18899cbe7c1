"""floor: the least a uvloop server can do per connection, to measure what is left for Python.

Two servers on uvloop's transports with one-slot protocols and no state of their own:

- ``irc``: answers a ``NICK``/``USER`` pair with a ``001`` line, a ``JOIN`` with ``366`` and a
  ``PING`` with ``PONG``, ignores everything else; enough for ``idle.py`` to register, join
  and hold its connections, so that its RSS per connection is uvloop's own cost.
- ``http``: answers every request head with a fixed 200 JSON body (the empty poll's size),
  keep-alive unless the request says ``Connection: close``; enough for ``http_poll.py
  --static /`` (wrk), so that its requests/s is what uvloop's accept, read, write and close
  allow one core.

Neither parses more than it must (a substring test, not an HTTP or IRC parser: the point is
to leave out everything but the transport).  Both are benchmarks only, not servers to use.

    taskset -c 0 python benchmarks/floor.py irc --port 6699
    taskset -c 1 python benchmarks/idle.py 127.0.0.1:6699 -n 19000 --hold 30 --pid <pid>
    taskset -c 0 python benchmarks/floor.py http --port 8099
    taskset -c 1 python benchmarks/http_poll.py 127.0.0.1:8099 --static / --mode both
"""

from __future__ import annotations

import argparse
import asyncio

import uvloop

from chat.runtime import raise_fd_limit

BODY = b'{"events":[],"next":0,"gap":false}'  # servers.EMPTY_POLL, nginx's file
KEEP = (b"HTTP/1.1 200 OK\r\nserver: floor\r\ncontent-type: application/json\r\n"
        b"content-length: %d\r\n\r\n%s" % (len(BODY), BODY))
CLOSE = (b"HTTP/1.1 200 OK\r\nserver: floor\r\ncontent-type: application/json\r\n"
         b"connection: close\r\ncontent-length: %d\r\n\r\n%s" % (len(BODY), BODY))


class IrcFloor(asyncio.Protocol):
    __slots__ = ("transport",)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        out = []
        if b"USER " in data:
            out.append(b":floor 001 u :Welcome\r\n")
        if b"JOIN " in data:
            out.append(b":floor 366 u #c :End of /NAMES list.\r\n")
        if b"PING " in data:
            out.append(b":floor PONG floor :x\r\n")
        if out:
            self.transport.write(b"".join(out))


class HttpFloor(asyncio.Protocol):
    __slots__ = ("transport",)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if not data.endswith(b"\r\n\r\n"):
            return  # wrk sends each request whole; a benchmark needs no more
        if b"onnection: close" in data or b"onnection: Close" in data:
            self.transport.write(CLOSE)
            self.transport.close()
        else:
            self.transport.write(KEEP)


async def serve(kind: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    factory = IrcFloor if kind == "irc" else HttpFloor
    server = await loop.create_server(factory, "127.0.0.1", port, backlog=4096)
    print(f"floor {kind} on 127.0.0.1:{server.sockets[0].getsockname()[1]}", flush=True)
    await server.serve_forever()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("kind", choices=("irc", "http"))
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args()
    raise_fd_limit()
    try:
        uvloop.run(serve(args.kind, args.port))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
