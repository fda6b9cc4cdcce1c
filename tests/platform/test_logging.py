import json
import logging
import subprocess
import sys
from pathlib import Path

from connector.logging_setup import JsonFormatter

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import logging
from connector.logging_setup import configure_logging
configure_logging(); configure_logging()  # the second call is a no-op: one handler
log = logging.getLogger("connector.test")
log.info("GET https://acme.pipedrive.com/api/v2/deals?api_token=%s&limit=5", "tok-123456")
log.warning("header Authorization: Bearer eyJ.abc.def", extra={"deal_id": 7, "client_secret": "cs-999"})
log.debug("hidden at INFO")
print(len(logging.getLogger().handlers))
"""


def test_logs_are_json_lines_once_and_scrubbed() -> None:
    env = {"PATH": "/usr/bin:/bin", "LOG_LEVEL": "INFO"}
    out = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, env=env, check=True)
    lines = [json.loads(line) for line in out.stderr.strip().splitlines()]
    assert len(lines) == 2 and out.stdout.strip() == "1"
    assert lines[0]["level"] == "info" and lines[0]["logger"] == "connector.test"
    assert "api_token=***" in lines[0]["msg"] and "tok-123456" not in out.stderr
    assert lines[1]["deal_id"] == 7 and lines[1]["client_secret"] == "***"
    assert "eyJ.abc.def" not in out.stderr and "cs-999" not in out.stderr


def test_formatter_includes_exception() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, "f", 1, "failed", (), sys.exc_info())
    payload = json.loads(JsonFormatter().format(record))
    assert payload["msg"] == "failed" and "ValueError: boom" in payload["exc"]
