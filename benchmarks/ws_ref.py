#!/usr/bin/env python3
"""ws_ref: the WebSocket reference servers, one room, every text frame broadcast to the others.

* ``--impl websockets``: the ``websockets`` library's asyncio server, its keepalive on
  (``ping_interval`` 25 s, ``ping_timeout`` 20 s: the same heartbeat as ``chat serve``), and
  ``websockets.broadcast()`` for the fan-out, the way its documentation recommends.
* ``--impl aiohttp``: aiohttp's ``WebSocketResponse`` (heartbeat 25 s), a loop of
  ``send_str`` per other member (aiohttp has no broadcast helper).

Both on uvloop.  A frame ``{"type": "say", ...}`` goes out as is to every other member;
other frames (a join) are ignored.  Used by ``ws_idle.py --server`` and ``push_fanout.py``.

    python benchmarks/ws_ref.py --impl websockets --port 9100
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

import uvloop

MEMBERS: set[Any] = set()


async def serve_websockets(port: int) -> None:
    from websockets.asyncio.server import broadcast, serve
    from websockets.exceptions import ConnectionClosed

    async def handler(ws: Any) -> None:
        MEMBERS.add(ws)
        try:
            async for message in ws:
                if isinstance(message, str) and message.startswith('{"type":"say"'):
                    broadcast([m for m in MEMBERS if m is not ws], message)
        except ConnectionClosed:
            pass  # the load aborts its sockets at the end
        finally:
            MEMBERS.discard(ws)

    async with serve(handler, "127.0.0.1", port, ping_interval=25, ping_timeout=20,
                     compression=None, backlog=4096):
        await asyncio.Future()


async def serve_aiohttp(port: int) -> None:
    from aiohttp import WSMsgType, web

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=25, compress=False)
        await ws.prepare(request)
        MEMBERS.add(ws)
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT and msg.data.startswith('{"type":"say"'):
                    for other in list(MEMBERS):
                        if other is not ws and not other.closed:
                            await other.send_str(msg.data)
        finally:
            MEMBERS.discard(ws)
        return ws

    app = web.Application()
    app.router.add_get("/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, backlog=4096).start()
    await asyncio.Future()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--impl", choices=("websockets", "aiohttp"), default="websockets")
    ap.add_argument("--port", type=int, required=True)
    args = ap.parse_args()
    from chat.runtime import raise_fd_limit
    raise_fd_limit()
    run = serve_websockets if args.impl == "websockets" else serve_aiohttp
    try:
        uvloop.run(run(args.port))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
