"""Structured logs: one JSON object per line, level from LOG_LEVEL.

Callers put their fields in `extra={"fields": {...}}`; the formatter adds `ts`, `level`,
`logger` and `msg`. Never log request bodies, headers or tokens.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any

import orjson

_HANDLER_MARK = "_hooks_json"


class JsonFormatter(logging.Formatter):
    """Render a record as one JSON line."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            line.update(fields)
        if record.exc_info and "traceback" not in line:
            line["traceback"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


def level_from(value: str | None, default: int = logging.INFO) -> int:
    """Parse LOG_LEVEL (`debug`, `INFO`, `warning`, ...); unknown values mean the default."""
    if not value:
        return default
    level = logging.getLevelName(value.strip().upper())
    return level if isinstance(level, int) else default


def configure(level: str | None = None, stream: Any = None) -> logging.Logger:
    """Send the `hooks` loggers to `stream` (stderr) as JSON lines; idempotent."""
    logger = logging.getLogger("hooks")
    logger.setLevel(level_from(level))
    for handler in list(logger.handlers):
        if getattr(handler, _HANDLER_MARK, False):
            logger.removeHandler(handler)
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter())
    setattr(handler, _HANDLER_MARK, True)
    logger.addHandler(handler)
    logger.propagate = False
    return logger
