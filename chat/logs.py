"""Log output: ``--log-format text`` (one human line per record) or ``json`` (one JSON object
per line, for log collectors), and the fields every disconnect carries.

Adapters log each disconnect with ``extra=disconnect(...)``: in JSON these become fields
(``event: "disconnect"``, ``transport``, ``ip``, ``nick``, ``reason``, ``category``), so a
collector can count reaps by reason without parsing messages; the text format shows the
message as before.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import orjson

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# LogRecord's own attributes: everything else on a record came from ``extra``.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message",
                                                                               "asctime"}


def disconnect(transport: str, ip: str, nick: str | None, reason: str,
               category: str) -> dict[str, Any]:
    """The ``extra`` of a disconnect's log record."""
    return {"event": "disconnect", "transport": transport, "ip": ip, "nick": nick or None,
            "reason": reason, "category": category}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts (unix seconds), level, logger, message, the extra
    fields, and the traceback as ``exc`` when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {"ts": round(record.created, 6), "level": record.levelname,
                               "logger": record.name, "message": record.getMessage()}
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(out, default=str).decode()


def setup_logging(level: str, fmt: str = "text") -> None:
    """Send the server's logs to stderr at ``level`` in format ``fmt`` (text or json)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(getattr(logging, level.upper()))
