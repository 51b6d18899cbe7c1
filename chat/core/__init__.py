"""The core: rules and state with no I/O (no asyncio, no socket, no clock).

Names, the hub, heartbeat deadlines, token buckets and counters.  Every function that
depends on time takes ``now`` from its caller; the adapters in :mod:`chat.irc` and
:mod:`chat.http` own sockets and clocks.
"""
