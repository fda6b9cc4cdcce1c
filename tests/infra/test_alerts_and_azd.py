"""Static checks of the alerts/workbook module, the KQL behind it and `azd up` (no Azure here).

Templates are parsed with pycep (the Bicep parser checkov uses); the KQL files are the one source of
each query (Bicep loads them, docs/operations.md shows them), and every telemetry field a query reads
is one the code writes.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

pycep = pytest.importorskip("pycep", reason="pycep-parser (requirements-dev.txt) parses the Bicep templates")

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
KQL = INFRA / "kql"
ALERT_RULES = {"failed-job", "poison-message", "no-successful-poll", "function-failures", "throttled"}
WORKBOOK_VIEWS = ("Orders per hour", "Failures with reasons", "Latency from won", "Queue and poison depths")


def parse(path: Path) -> dict[str, Any]:
    return pycep.BicepParser().parse(file_path=path)  # type: ignore[no-any-return]


def loaded_file(expr: Any) -> str | None:
    """The file a `loadTextContent(...)` (possibly inside replace(...)) reads."""
    text = json.dumps(expr)
    m = re.search(r'"load_text_content", "parameters": \{"file_path": "([^"]+)"', text)
    return m.group(1) if m else None


@pytest.fixture(scope="module")
def alerts() -> dict[str, Any]:
    return parse(INFRA / "modules" / "alerts.bicep")


def test_every_template_parses() -> None:
    for path in [INFRA / "main.bicep", INFRA / "azd" / "main.bicep", *sorted((INFRA / "modules").glob("*.bicep"))]:
        parsed = parse(path)
        assert parsed["parameters"] or parsed.get("resources") or parsed.get("modules"), path


def test_each_alert_rule_is_present_runs_a_query_file_and_notifies_the_action_group(alerts: dict[str, Any]) -> None:
    rules = {rule["name"]: rule for rule in alerts["variables"]["rules"]["value"]}
    assert set(rules) == ALERT_RULES
    for name, rule in rules.items():
        path = loaded_file(rule["query"])
        assert path is not None and (INFRA / "modules" / path).resolve().is_file(), name
    assert rules["no-successful-poll"]["operator"] == "LessThan" and rules["no-successful-poll"]["threshold"] == 1
    assert "pollWindowMinutes" in json.dumps(rules["no-successful-poll"]["window"])
    assert "throttledPercentThreshold" in json.dumps(rules["throttled"]["query"])

    rule_resource = alerts["resources"]["alertRules"]
    text = json.dumps(rule_resource)
    assert "Microsoft.Insights/scheduledQueryRules" in text
    assert '"operand_1": "actionGroup", "operand_2": "id"' in text
    assert '"enabled": "alertsEnabled"' in text
    group = alerts["resources"]["actionGroup"]["config"]
    assert group["properties"]["emailReceivers"] == "receivers"
    assert "alertEmail" in json.dumps(alerts["variables"]["receivers"])


def test_the_alert_parameters_flow_from_main_to_the_module() -> None:
    main = parse(INFRA / "main.bicep")
    module = main["modules"]["alerts"]
    params = module["config"]["params"]
    for name in ("alertEmail", "pollIntervalMinutes", "throttledPercentThreshold", "alertsEnabled"):
        assert name in main["parameters"], name
        assert params[name] == name, name
    assert "appInsightsId" in json.dumps(params["appInsightsId"]) and "monitoring" in json.dumps(
        params["appInsightsId"]
    )
    assert main["parameters"]["alertEmail"]["default"] == ""


def test_the_workbook_has_the_operational_views(alerts: dict[str, Any]) -> None:
    tiles = alerts["variables"]["tiles"]["value"]
    titles = [tile["title"] for tile in tiles]
    for view in WORKBOOK_VIEWS:
        assert any(t.startswith(view) for t in titles), view
    for tile in tiles:
        assert (INFRA / "modules" / str(loaded_file(tile["query"]))).resolve().is_file()
    workbook = alerts["resources"]["workbook"]
    assert workbook["type"] == "Microsoft.Insights/workbooks"
    assert "workbookContent" in json.dumps(workbook["config"]["properties"]["serializedData"])
    assert workbook["config"]["properties"]["sourceId"] == "appInsightsId"


def test_docs_show_every_query_file_verbatim() -> None:
    docs = (ROOT / "docs" / "operations.md").read_text()
    for path in sorted(KQL.glob("*.kql")):
        body = "\n".join(line for line in path.read_text().splitlines() if not line.startswith("//"))
        assert body.strip() in docs, f"docs/operations.md lacks the query of {path.name}"


def test_queries_read_only_what_the_telemetry_writes() -> None:
    written = (ROOT / "connector" / "telemetry.py").read_text() + (
        ROOT / "connector" / "functions" / "traced.py"
    ).read_text()
    for path in sorted(KQL.glob("*.kql")):
        text = path.read_text()
        for op in re.findall(r'"([a-z]+(?:\.[a-z]+)?)"', text):
            if op in ("order.build", "master.push", "poll", "queues", "webhook"):
                assert f'"{op}"' in written, f"{path.name}: op {op} is never emitted"
        for field in set(re.findall(r"\bt\.([a-z_]+)", text)):
            assert f'"{field}"' in written or f"{field}=" in written, f"{path.name}: field {field} is never written"


def test_azure_yaml_deploys_the_function_app_through_the_azd_wrapper() -> None:
    spec = yaml.safe_load((ROOT / "azure.yaml").read_text())
    infra = ROOT / spec["infra"]["path"]
    assert spec["infra"]["provider"] == "bicep"
    assert (infra / f"{spec['infra']['module']}.bicep").is_file()
    assert (infra / f"{spec['infra']['module']}.parameters.json").is_file()
    (name, service), *more = spec["services"].items()
    assert not more and service == {"project": ".", "language": "python", "host": "function"}
    # azd finds the app to deploy by this tag.
    assert f"'azd-service-name': '{name}'" in (INFRA / "modules" / "functionapp.bicep").read_text()
    for hook in spec["hooks"].values():
        script = ROOT / hook["run"]
        assert script.is_file() and os.access(script, os.X_OK), hook["run"]


def test_the_azd_wrapper_passes_every_required_parameter_and_azd_sets_every_wrapper_parameter() -> None:
    main = parse(INFRA / "main.bicep")
    wrapper = parse(INFRA / "azd" / "main.bicep")
    passed = wrapper["modules"]["app"]["config"]["params"]
    required = {name for name, p in main["parameters"].items() if "default" not in p}
    assert required <= set(passed), f"not passed to main.bicep: {required - set(passed)}"
    assert set(passed) <= set(main["parameters"]), "the wrapper passes a parameter main.bicep lacks"
    assert wrapper["modules"]["app"]["config"]["name"].startswith("ml-connector-")  # deploy.sh --skip-infra finds it

    values = json.loads((INFRA / "azd" / "main.parameters.json").read_text())["parameters"]
    assert set(values) == set(wrapper["parameters"])
    for name, entry in values.items():
        assert re.fullmatch(r"\$\{[A-Z0-9_]+(=[^}]*)?\}", entry["value"]), name
    outputs = set(wrapper["outputs"])
    assert {"AZURE_RESOURCE_GROUP", "FUNCTION_APP_NAME", "KEY_VAULT_NAME"} <= outputs
    assert set(parse(INFRA / "main.bicep")["outputs"]) >= {
        "KEY_VAULT_NAME",
        "FUNCTION_APP_NAME",
        "FUNCTION_APP_HOSTNAME",
    }
