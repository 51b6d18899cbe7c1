"""Engines: where the chat state lives (this process's memory by default).

:func:`open_engine` turns a ``--engine`` URL into an engine; :mod:`.base` is the interface.
"""

from __future__ import annotations

from ..config import Config
from .base import Engine, Joined
from .memory import MemoryEngine

__all__ = ["Engine", "Joined", "MemoryEngine", "open_engine"]


def open_engine(config: Config, epoch: int) -> Engine:
    """The engine ``config`` asks for (only ``memory`` so far)."""
    return MemoryEngine(history=config.history, nicklen=config.nicklen,
                        channellen=config.channellen, topiclen=config.topiclen,
                        max_channels=config.max_channels, epoch=epoch,
                        server_name=config.server_name)
