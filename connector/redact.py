"""Keep secrets out of audit rows and logs: one list of what looks secret, used by both."""

from __future__ import annotations

import re
from typing import Any

REDACTED = "***"
_SECRET_KEY = re.compile(
    r"(secret|password|passwd|token|authorization|api[_-]?key|cookie|credential|signature|private[_-]?key|"
    r"accountkey|connection[_-]?string|sig)$|^(auth|key)$",
    re.IGNORECASE,
)
# key=value / key: value pairs and bearer tokens inside free text (URLs, exception texts).
_TEXT_PATTERNS = [
    re.compile(
        r"(?i)\b(api_token|access_token|refresh_token|client_secret|password|accountkey|sig|code)=([^&\s;\"']+)"
    ),
    re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+"),
]


def is_secret_key(key: str) -> bool:
    return bool(_SECRET_KEY.search(key.replace("-", "_").replace(" ", "_")))


def scrub(value: Any) -> Any:
    """A copy of `value` with secret-looking keys masked and secret-looking text fragments redacted."""
    if isinstance(value, dict):
        return {k: (REDACTED if is_secret_key(str(k)) else scrub(v)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(item) for item in value]
    if isinstance(value, str):
        return scrub_text(value)
    return value


def scrub_text(text: str) -> str:
    for pattern in _TEXT_PATTERNS:
        if pattern.groups >= 2:
            text = pattern.sub(lambda m: f"{m.group(1)}={REDACTED}", text)
        else:
            text = pattern.sub(lambda m: f"{m.group(1)} {REDACTED}", text)
    return text
