"""Structured logging, configured once per process, with secrets scrubbed from every record.

Under the Functions host the Python worker already owns the root handler (it ships records to the host
and Application Insights), so we only set levels and scrubbing there; elsewhere (CLI, `serve`, demo) we
add one JSON-lines handler on stderr. Scrubbing happens where every record is made (the record factory:
message, exception text and stack of any logger, ours, aiohttp's or an Azure SDK's) and again in a
filter on every root handler (fields passed with `extra=`). Stdlib only: imported at cold start.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import traceback
from datetime import UTC, datetime
from typing import Any

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime", "taskName"}
_lock = threading.Lock()
_configured = False
# Chatty SDK loggers: their request logs hold URLs and headers we do not need at INFO.
_QUIET = (
    "azure.core.pipeline.policies.http_logging_policy",
    "azure.identity",
    "azure.storage",
    "azure.data.tables",
    "azure.keyvault",
    "httpx",
    "httpcore",
    "aiohttp.access",
)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and any `extra=` fields."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        from connector.redact import REDACTED, is_secret_key, scrub, scrub_text

        # `extra=` fields are attached after the record factory runs, so they are scrubbed here.
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                payload[key] = REDACTED if is_secret_key(key) else scrub(value)
        if record.exc_info or record.exc_text:
            payload["exc"] = scrub_text(record.exc_text or self.formatException(record.exc_info))  # type: ignore[arg-type]
        if record.stack_info:
            payload["stack"] = scrub_text(record.stack_info)
        return json.dumps(payload, default=str)


class ScrubFilter(logging.Filter):
    """Masks secret-looking `extra=` fields on a handler we do not format ourselves (the Functions host's)."""

    def filter(self, record: logging.LogRecord) -> bool:
        from connector.redact import REDACTED, is_secret_key, scrub, scrub_text

        record.msg = scrub_text(record.getMessage()) if record.args else scrub_text(str(record.msg))
        record.args = ()
        for key, value in list(record.__dict__.items()):
            if key not in _STANDARD and not key.startswith("_"):
                setattr(record, key, REDACTED if is_secret_key(key) else scrub(value))
        return True


def _scrubbing_factory(previous: Any) -> Any:
    from connector.redact import scrub_text  # stdlib-only module

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record: logging.LogRecord = previous(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not lose the record
            message = str(record.msg)
        record.msg, record.args = scrub_text(message), ()
        if record.exc_info and record.exc_info[0] is not None:
            # Rendered now, scrubbed, and cached where every Formatter looks first (exc_text).
            record.exc_text = scrub_text("".join(traceback.format_exception(*record.exc_info)).rstrip("\n"))
        if record.stack_info:
            record.stack_info = scrub_text(record.stack_info)
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
        for existing in root.handlers:  # the Functions host's own, which we do not format
            existing.addFilter(ScrubFilter())
        if force_handler or not in_functions_host():
            handler = logging.StreamHandler(sys.stderr)
            handler.setFormatter(JsonFormatter())
            root.addHandler(handler)
            if root.level > logging.getLevelName(resolved) or root.level == logging.NOTSET:
                root.setLevel(resolved)
        _configured = True
