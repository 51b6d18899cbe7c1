"""Engines: where the chat state lives (this process's memory by default).

:func:`open_engine` turns a ``--engine`` URL into an engine; :mod:`.base` is the interface.
"""

from __future__ import annotations

from ..config import Config
from .base import Engine, Joined
from .memory import MemoryEngine

__all__ = ["Engine", "Joined", "MemoryEngine", "open_engine"]


REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


def open_engine(config: Config, epoch: int) -> Engine:
    """The engine ``config.engine`` names: ``memory`` or a Redis URL (ValueError else)."""
    limits = {"history": config.history, "nicklen": config.nicklen,
              "channellen": config.channellen, "topiclen": config.topiclen,
              "max_channels": config.max_channels}
    if config.engine == "memory":
        return MemoryEngine(epoch=epoch, server_name=config.server_name, **limits)
    if config.engine.startswith(REDIS_SCHEMES):
        from .redis import RedisEngine  # only a Redis deployment needs redis-py loaded

        return RedisEngine(config.engine, prefix=config.engine_prefix,
                           node_timeout=config.node_timeout,
                           session_timeout=config.session_timeout,
                           server_name=config.server_name, **limits)
    raise ValueError(f"unknown engine {config.engine!r}: use 'memory' or redis://HOST:PORT/DB")
