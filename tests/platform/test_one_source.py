"""One place per fact: a secret name, a job kind or the way a pydantic error is told is written in one
module and used everywhere else through it, so a change lands in every use at once."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from connector.secret_names import SecretNames

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted(p for p in (ROOT / "connector").rglob("*.py") if "sandbox" not in p.parts)


def spelled(pattern: str, *, owner: str) -> list[str]:
    """`file:line` of every connector line matching `pattern` outside the module `owner` that holds it."""
    found = []
    for path in SOURCES:
        rel = path.relative_to(ROOT).as_posix()
        if rel == owner:
            continue
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if re.search(pattern, line):
                found.append(f"{rel}:{number}: {line.strip()}")
    return found


@pytest.mark.parametrize("name", SecretNames.all())
def test_a_secret_name_is_spelled_only_in_secret_names(name: str) -> None:
    assert spelled(re.escape(name), owner="connector/secret_names.py") == []


def test_pydantic_errors_are_told_by_the_one_helper() -> None:
    """`connector.validation` turns a ValidationError into lines; mapping/config.py words mapping errors itself."""
    lines = spelled(r"\.errors\(", owner="connector/validation.py")
    assert [line for line in lines if not line.startswith("connector/mapping/config.py")] == []


@pytest.mark.parametrize(
    "pattern",
    [
        r"[\"']master-(product|customer)",  # a master push's kind: master_job(entity)
        r"[\"'](pd-create|d365-event)[\"']",  # the lock and event-receipt kinds
        r"\bjobs\.\w+\(\s*[\"']",  # a kind spelled as a literal in a job-store call
        r"\bjob\.kind\s*==\s*[\"']",  # a job's kind compared with a literal
        r"\b(wait_for|claim|run|guard_enqueue)\(\s*[\"']",  # a kind handed to the runner as a literal
    ],
)
def test_a_job_kind_is_spelled_only_in_the_job_store(pattern: str) -> None:
    assert spelled(pattern, owner="connector/state/jobs.py") == []
