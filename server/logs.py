"""Logging set-up for `twin serve`: uvicorn's format, with access tokens redacted (a WebSocket's
``?token=`` would otherwise reach the log in uvicorn's connection lines)."""

from __future__ import annotations

import copy
import logging
import re
from typing import Any

from uvicorn.config import LOGGING_CONFIG

_TOKEN = re.compile(r"(token=)[^&\s\"']+", re.IGNORECASE)


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


def log_config() -> dict[str, Any]:
    """uvicorn's logging config with `RedactTokens` on every handler."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["redact_tokens"] = {"()": RedactTokens}
    for handler in config["handlers"].values():
        handler.setdefault("filters", []).append("redact_tokens")
    config["loggers"]["twin"] = {
        "handlers": ["default"],
        "level": "INFO",
        "propagate": False,
    }
    return config
