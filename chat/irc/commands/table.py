"""How a command is dispatched: its handler and the checks made before calling it (pure)."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from ...core.clock import Now
from ..message import Message
from ..session import Session

Handler = Callable[[Session, Message, Now], None]


class Command(NamedTuple):
    handler: Handler
    min_params: int = 0      # fewer -> 461
    registered: bool = True  # before registration -> 451
    active: bool = True      # counts as activity for the idle timeout
