"""Host-neutral HTTP request/response types for the function bodies."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class HttpIn:
    method: str
    path: str
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    params: Mapping[str, str] = field(default_factory=dict)

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == wanted), None)


@dataclass(frozen=True)
class HttpOut:
    status: int
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def json(self) -> Any:
        return json.loads(self.body)


def json_response(status: int, payload: Any, headers: Mapping[str, str] | None = None) -> HttpOut:
    return HttpOut(
        status,
        json.dumps(payload, default=str).encode(),
        {"Content-Type": "application/json", **(headers or {})},
    )


def json_error(status: int, message: str, headers: Mapping[str, str] | None = None, **extra: Any) -> HttpOut:
    return json_response(status, {"error": message, **extra}, headers)
