"""The short-connection side: an HTTP/1.1 JSON polling API (and SSE) on the shared hub.

:mod:`.server` is the asyncio/httptools adapter (connections, keep-alive, limits, timeouts),
:mod:`.api` maps routes to hub calls and keeps the polling sessions, :mod:`.streams` holds
long polls and SSE streams, :mod:`.wire` encodes responses and events (pure).
"""

from __future__ import annotations

from .server import HttpServer

__all__ = ["HttpServer"]
