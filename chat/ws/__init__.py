"""The web's long connection: WebSocket (RFC 6455) on the HTTP port, at ``GET /api/ws``.

:mod:`.session` is the pure chat protocol of one connection (JSON frames in, engine calls,
frames out); :mod:`.server` is the asyncio adapter around the ``websockets`` library's
sans-I/O protocol object (the handoff from HTTP, flow control, heartbeats, limits).
"""
