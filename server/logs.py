"""Logging set-up for `twin serve`: uvicorn's format or one JSON object a line
(``TWIN_LOG_FORMAT=json``), with access tokens redacted (a WebSocket's ``?token=`` would
otherwise reach the log in uvicorn's connection lines)."""

from __future__ import annotations

import copy
import json
import logging
import re
from datetime import UTC, datetime
from typing import Any

from uvicorn.config import LOGGING_CONFIG

_TOKEN = re.compile(r"(token=)[^&\s\"']+", re.IGNORECASE)
_PLAIN = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "color_message"}


def redact(text: str) -> str:
    """`text` with every ``token=...`` value replaced by ``***``."""
    return _TOKEN.sub(r"\1***", text)


class RedactTokens(logging.Filter):
    """Rewrites a record's message so no token value is written."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line: ``time`` (UTC ISO), ``level``, ``logger``, ``message``, the
    record's extra fields (an access line's route, status, latency_ms, role) and
    ``exception`` when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update((k, v) for k, v in vars(record).items() if k not in _PLAIN)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def log_config(log_format: str = "text") -> dict[str, Any]:
    """uvicorn's logging config with `RedactTokens` on every handler, the ``twin`` loggers at
    INFO, and every line a JSON object when `log_format` is ``json``."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["redact_tokens"] = {"()": RedactTokens}
    if log_format == "json":
        config["formatters"] = {"json": {"()": JsonFormatter}}
        for handler in config["handlers"].values():
            handler["formatter"] = "json"
    for handler in config["handlers"].values():
        handler.setdefault("filters", []).append("redact_tokens")
    config["loggers"]["twin"] = {
        "handlers": ["default"],
        "level": "INFO",
        "propagate": False,
    }
    return config
