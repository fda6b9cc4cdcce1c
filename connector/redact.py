"""Keep secrets out of audit rows and logs: one list of what looks secret, used by both.

Two nets: patterns (secret-looking keys, `key=value` pairs, `Bearer`/`Basic` tokens, credential headers)
and the values themselves: every secret the stores hand out, and the keys and credentials the app builds
from them, are remembered here, so a value that turns up in a form no pattern knows (a malformed header,
an exception text) is still masked.
"""

from __future__ import annotations

import base64
import re
import threading
from typing import Any

REDACTED = "***"
MIN_REMEMBERED = 6  # shorter values would mask ordinary words
_SECRET_KEY = re.compile(
    r"(secret|password|passwd|token|authorization|api[_-]?key|cookie|credential|signature|private[_-]?key|"
    r"accountkey|connection[_-]?string|sig|functions[_-]key)$|^(auth|key)$",
    re.IGNORECASE,
)
# key=value / key: value pairs and bearer tokens inside free text (URLs, exception texts, header dumps).
_TEXT_PATTERNS = [
    re.compile(
        r"(?i)\b(api_token|access_token|refresh_token|client_secret|password|accountkey|sig|code)=([^&\s;\"']+)"
    ),
    re.compile(r"(?i)\b((?:proxy-)?authorization|x-functions-key|x-pipedrive-signature)(\s*[:=]\s*)[^\r\n'\",}]+"),
    re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+"),
]
_known: frozenset[str] = frozenset()
_lock = threading.Lock()


def remember(*values: str) -> None:
    """Mask these exact values wherever they appear from now on (secrets read, keys made)."""
    global _known
    fresh = {v for v in values if isinstance(v, str) and len(v) >= MIN_REMEMBERED}
    if fresh - _known:
        with _lock:
            _known = _known | fresh


def remember_basic(user: str, password: str) -> None:
    """The password and the `Authorization: Basic` token a client builds from the pair."""
    remember(password, base64.b64encode(f"{user}:{password}".encode()).decode())


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
    for known in _known:
        if known in text:
            text = text.replace(known, REDACTED)
    text = _TEXT_PATTERNS[0].sub(lambda m: f"{m.group(1)}={REDACTED}", text)
    text = _TEXT_PATTERNS[1].sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
    return _TEXT_PATTERNS[2].sub(lambda m: f"{m.group(1)} {REDACTED}", text)
