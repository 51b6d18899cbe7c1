"""The link emulator: a real network's costs put between a client and the server.

:mod:`.model` (pure: per-connection state machine, delays, handshake, NAT and proxy idle
timers, datagram loss), :mod:`.relay` (the asyncio TCP and UDP relays that apply it),
:mod:`.service` (``chat link`` and the lab's relay process), :mod:`.units` (``50ms``,
``10mbit``, ``1%``).
"""

from __future__ import annotations

from .model import Direction, Flow, FlowState, LinkSettings

__all__ = ["Direction", "Flow", "FlowState", "LinkSettings"]
