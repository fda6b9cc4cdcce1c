"""Every setting the connector reads is documented, with the default the code has, where a user looks.

README's configuration tables hold one row per setting, `| `NAME` | default | meaning |`. A Settings
field added without its row, a row whose default differs from the code's, a row for a name nothing reads,
a default stated in docs/deploy-azure.md that the code does not have, or a local.settings.json.example
entry that nothing reads (or that quietly tunes a setting away from its default) fails here.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from pydantic_core import PydanticUndefined

from connector.host_json import OVERRIDE_PREFIX
from connector.settings import Settings, env_names, load_settings

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
CONFIGURATION = README[
    README.index("\n## Configuration\n") : README.index("\n## ", README.index("\n## Configuration\n") + 1)
]
DEPLOY = (ROOT / "docs" / "deploy-azure.md").read_text()
EXAMPLE: dict[str, str] = json.loads((ROOT / "local.settings.json.example").read_text())["Values"]
ROW = re.compile(r"^\| `([A-Za-z0-9_]+)` \| ([^|]+?) \|", re.MULTILINE)
DOCUMENTED = dict(ROW.findall(CONFIGURATION))
DEFAULTS: dict[str, Any] = {
    name: Settings.model_fields[field].default for field, name in zip(Settings.model_fields, env_names(), strict=True)
}
SOURCES = "\n".join(path.read_text() for path in (ROOT / "connector").rglob("*.py"))


def plain(value: Any) -> str:
    """A default as the docs write it."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def cell(value: Any) -> str:
    """The default column's text: *required*, unset, empty, or the value in backticks."""
    if value is PydanticUndefined:
        return "*required*"
    if value is None:
        return "unset"
    return f"`{plain(value)}`" if plain(value) else "empty"


@pytest.mark.parametrize("name", env_names())
def test_every_setting_has_a_row_with_the_codes_default(name: str) -> None:
    assert name in DOCUMENTED, f"README 'Configuration' has no row for {name}"
    assert DOCUMENTED[name].startswith(cell(DEFAULTS[name])), f"{name}: README says {DOCUMENTED[name]!r}"


def test_every_row_is_a_setting_something_reads() -> None:
    unread = [name for name in DOCUMENTED if name not in DEFAULTS and f'"{name}"' not in SOURCES]
    assert unread == []


def test_the_host_settings_host_json_reads_are_named() -> None:
    assert "`AzureWebJobsScriptRoot`" in CONFIGURATION
    assert f"`{OVERRIDE_PREFIX}<path>`" in CONFIGURATION


def test_defaults_stated_in_the_deployment_guide_are_the_codes() -> None:
    stated = re.findall(r"`([A-Z][A-Z0-9_]+)` \(([^()`\s]+)\)", DEPLOY)
    stated = [(name, value) for name, value in stated if name in DEFAULTS]
    assert stated, "docs/deploy-azure.md states no default any more: did its wording change?"
    assert [(n, v) for n, v in stated if v != plain(DEFAULTS[n])] == []


def test_the_example_lists_only_read_settings_and_tunes_none_away_from_its_default() -> None:
    unknown = set(EXAMPLE) - set(DEFAULTS) - {"FUNCTIONS_WORKER_RUNTIME"}
    assert unknown == set()
    tuned = {
        name: value
        for name, value in EXAMPLE.items()
        if DEFAULTS.get(name) not in (None, PydanticUndefined) and value != plain(DEFAULTS[name])
    }
    assert tuned == {}
    load_settings(**{name: value for name, value in EXAMPLE.items() if value and name in DEFAULTS})
