"""Structured logging, configured once per process, with secrets scrubbed from every record.

Under the Functions host the Python worker already owns the root handler (it ships records to the host
and Application Insights), so we only set levels and scrubbing there; elsewhere (CLI, local runner,
demo) we add one JSON-lines handler on stderr. Stdlib only: this module is imported at cold start.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
from datetime import UTC, datetime
from typing import Any

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime", "taskName"}
_lock = threading.Lock()
_configured = False
# Chatty SDK loggers: their request logs hold URLs and headers we do not need at INFO.
_QUIET = ("azure.core.pipeline.policies.http_logging_policy", "azure.identity", "azure.storage", "httpx", "httpcore")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and any `extra=` fields."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        from connector.redact import REDACTED, is_secret_key, scrub

        # `extra=` fields are attached after the record factory runs, so they are scrubbed here.
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                payload[key] = REDACTED if is_secret_key(key) else scrub(value)
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str)


def _scrubbing_factory(previous: Any) -> Any:
    from connector.redact import scrub_text  # stdlib-only module

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record: logging.LogRecord = previous(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not lose the record
            message = str(record.msg)
        record.msg, record.args = scrub_text(message), ()
        return record

    return factory


def in_functions_host() -> bool:
    return bool(os.environ.get("FUNCTIONS_WORKER_RUNTIME") or os.environ.get("AZURE_FUNCTIONS_ENVIRONMENT"))


def configure_logging(level: str | None = None, *, force_handler: bool = False) -> None:
    """Idempotent: the first call wins. LOG_LEVEL (default INFO) sets our level."""
    global _configured
    with _lock:
        if _configured:
            return
        root = logging.getLogger()
        logging.setLogRecordFactory(_scrubbing_factory(logging.getLogRecordFactory()))
        resolved = (level or os.environ.get("LOG_LEVEL") or "INFO").upper()
        logging.getLogger("connector").setLevel(resolved)
        for name in _QUIET:
            logging.getLogger(name).setLevel(logging.WARNING)
        if force_handler or not in_functions_host():
            handler = logging.StreamHandler(sys.stderr)
            handler.setFormatter(JsonFormatter())
            root.addHandler(handler)
            if root.level > logging.getLevelName(resolved) or root.level == logging.NOTSET:
                root.setLevel(resolved)
        _configured = True
