"""host.json as the connector reads it: the Functions host's queue rules and timeout, from the one file.

The host moves a message to `<queue>-poison` after `maxDequeueCount` attempts, fetches `batchSize`
messages at a time, makes a failed message visible again after `visibilityTimeout`, and stops a run at
`functionTimeout`. The connector's poison handling and the local runner must agree with the host, so
they read these values here instead of keeping copies. App settings named
`AzureFunctionsJobHost__<path>` (e.g. `AzureFunctionsJobHost__extensions__queues__maxDequeueCount`)
override host.json in Azure, so they do here too. Absent values are the host's documented defaults.
"""

from __future__ import annotations

import json
import os
import re
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from connector.errors import ConfigError
from connector.validation import problem_lines

OVERRIDE_PREFIX = "AzureFunctionsJobHost__"
# .NET TimeSpan text as host.json writes it: [-][d.]hh:mm[:ss[.fffffff]]
_TIMESPAN = re.compile(r"^(-)?(?:(\d+)\.)?(\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,7}))?)?$")


def parse_timespan(value: object) -> timedelta | None:
    """A host.json TimeSpan; "-1" (no limit, where a plan allows it) is None."""
    text = str(value).strip()
    if text == "-1":
        return None
    match = _TIMESPAN.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a TimeSpan like 00:10:00")
    sign, days, hours, minutes, seconds, fraction = match.groups()
    span = timedelta(
        days=int(days or 0),
        hours=int(hours),
        minutes=int(minutes),
        seconds=int(seconds or 0),
        microseconds=int((fraction or "0").ljust(7, "0")) / 10,
    )
    return -span if sign else span


class QueueRules(BaseModel):
    """`extensions.queues`: how the host runs a queue trigger (defaults: the host's own)."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")

    batch_size: int = Field(16, ge=1, le=32, alias="batchSize")
    max_dequeue_count: int = Field(5, ge=1, alias="maxDequeueCount")
    visibility_timeout: timedelta = Field(timedelta(0), alias="visibilityTimeout")
    max_polling_interval: timedelta = Field(timedelta(minutes=1), alias="maxPollingInterval")
    message_encoding: Literal["base64", "none"] = Field("base64", alias="messageEncoding")

    @field_validator("visibility_timeout", "max_polling_interval", mode="before")
    @classmethod
    def parse_queue_timespans(cls, value: object) -> object:
        if isinstance(value, timedelta):
            return value
        span = parse_timespan(value)
        if span is None or span < timedelta(0):
            raise ValueError("must be a non-negative TimeSpan like 00:00:30")
        return span

    @property
    def retry_delay_seconds(self) -> int:
        """Seconds until a message whose run failed is visible again (the host's `visibilityTimeout`)."""
        return int(self.visibility_timeout.total_seconds())


class HostJson(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")

    function_timeout: timedelta | None = Field(timedelta(minutes=30), alias="functionTimeout")  # None: no limit
    queues: QueueRules = Field(default_factory=QueueRules)

    @field_validator("function_timeout", mode="before")
    @classmethod
    def parse_function_timeout(cls, value: object) -> object:
        return value if value is None or isinstance(value, timedelta) else parse_timespan(value)


def app_root() -> Path:
    """The function app's folder: the host's script root in Azure, else the folder around `connector/`."""
    root = os.environ.get("AzureWebJobsScriptRoot")  # noqa: SIM112 (the host's own spelling)
    return Path(root) if root else Path(__file__).resolve().parents[1]


def read_host_json(path: Path | None = None, env: dict[str, str] | None = None) -> HostJson:
    """host.json at `path` (default: the app's) with `AzureFunctionsJobHost__*` overrides from `env`."""
    path = path or app_root() / "host.json"
    try:
        raw: Any = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path} cannot be read as JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path} must hold a JSON object")
    for name, value in (os.environ if env is None else env).items():
        if name.lower().startswith(OVERRIDE_PREFIX.lower()):
            _set_path(raw, name[len(OVERRIDE_PREFIX) :].split("__"), value)
    extensions = raw.get("extensions")
    fields: dict[str, Any] = {"queues": (extensions.get("queues") if isinstance(extensions, dict) else None) or {}}
    if "functionTimeout" in raw:
        fields["functionTimeout"] = raw["functionTimeout"]
    try:
        return HostJson.model_validate(fields)
    except ValidationError as exc:
        raise ConfigError(f"{path}: " + "; ".join(problem_lines(exc))) from None


def _set_path(tree: dict[str, Any], parts: list[str], value: str) -> None:
    """Set `value` at `parts`, matching existing keys case-insensitively (as the host's configuration does)."""
    node = tree
    for index, part in enumerate(parts):
        key = next((k for k in node if k.lower() == part.lower()), part)
        if index == len(parts) - 1:
            node[key] = value
            return
        child = node.get(key)
        if not isinstance(child, dict):
            child = node[key] = {}
        node = child


@lru_cache(maxsize=1)
def host_json() -> HostJson:
    """The app's host.json, read once per process (it does not change while the app runs)."""
    return read_host_json()
