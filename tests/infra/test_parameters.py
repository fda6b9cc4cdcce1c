"""One parameter source for both deployment paths: infra/azd/main.parameters.json, read by azd and resolved by
infra/params.py for deploy.sh. Checked statically (every parameter mapped once, the azd wrapper mirrors
main.bicep) and by running deploy.sh against a recording stand-in for `az` (no Azure here)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.infra import bicep_text as bt
from tests.infra.scripts import load

params = load("params")

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
MAIN_TEXT = (INFRA / "main.bicep").read_text()
MAIN = bt.strip_comments(MAIN_TEXT)
WRAPPER = bt.strip_comments((INFRA / "azd" / "main.bicep").read_text())
PARAMETERS: dict[str, Any] = json.loads(params.PARAMETERS.read_text())["parameters"]
# Set by the azd wrapper itself (its resource group tag), not by the operator.
NOT_MAPPED = {"tags"}


def mapped_variable(name: str) -> str:
    (variable,) = params.variables(PARAMETERS[name]["value"])
    return str(variable)


def test_every_parameter_of_main_bicep_is_mapped_once_without_a_second_default() -> None:
    assert params.PARAMETERS == INFRA / "azd" / "main.parameters.json", "azd reads it beside its entry template"
    assert set(PARAMETERS) == set(bt.params(MAIN)) - NOT_MAPPED
    variables = [mapped_variable(name) for name in PARAMETERS]
    assert len(set(variables)) == len(variables), "two parameters read the same variable"
    for name, entry in PARAMETERS.items():
        # Defaults live in main.bicep only: an unset variable leaves the parameter out.
        assert re.fullmatch(r"\$\{[A-Z0-9_]+\}", entry["value"]), f"{name}: {entry['value']}"


def test_a_parameter_feeding_an_app_setting_reads_the_variable_of_that_name() -> None:
    settings = bt.entries(bt.block_after(MAIN, r"connectorSettings\s*:"))
    fed = {expr: setting for setting, expr in settings.items() if expr in PARAMETERS}
    assert len(fed) >= 10
    for parameter, setting in fed.items():
        assert mapped_variable(parameter) == setting, f"{parameter} feeds {setting}"


def test_the_azd_wrapper_declares_passes_and_defaults_every_parameter_as_main_does() -> None:
    main, wrapper = bt.params(MAIN), bt.params(WRAPPER)
    assert set(wrapper) == set(PARAMETERS), "azd's parameters are the file's"
    passed = bt.entries(bt.block_after(WRAPPER, r"module\s+app\s+'\.\./main\.bicep'\s*=\s*\{[^}]*?params\s*:"))
    for name in wrapper:
        assert passed.get(name) == name, f"the wrapper does not pass {name} through"
        if name != "location":  # main.bicep defaults to its group's region; the wrapper makes the group there
            assert wrapper[name] == main[name], f"{name}: default {wrapper[name]} in the wrapper, {main[name]} in main"
    for name, line in re.findall(r"^param\s+(\w+)\s+(\w+)", WRAPPER, re.MULTILINE):
        assert re.search(rf"^param\s+{name}\s+{line}\b", MAIN, re.MULTILINE), f"{name}: another type than main.bicep"


def test_deploy_sh_keeps_no_list_of_bicep_parameters() -> None:
    script = (INFRA / "deploy.sh").read_text()
    named = sorted(name for name in bt.params(MAIN) if re.search(rf"\b{name}\s*[=:]", script))
    assert not named, f"deploy.sh names Bicep parameters itself: {named}"
    assert "params.py" in script


def test_every_variable_is_documented() -> None:
    docs = (ROOT / "docs" / "deploy-azure.md").read_text()
    missing = sorted(mapped_variable(n) for n in PARAMETERS if f"`{mapped_variable(n)}`" not in docs)
    assert not missing, f"docs/deploy-azure.md does not name {missing}"


# ---- the resolver: azd's rules --------------------------------------------------------------------------

TEMPLATE = """
param name string
param size int = 2
param flag bool = true
param extra object = {}
param region string = resourceGroup().location
"""


def resolve(parameters: dict[str, str], env: dict[str, str]) -> dict[str, Any]:
    return params.resolve({k: {"value": v} for k, v in parameters.items()}, TEMPLATE, env)  # type: ignore[no-any-return]


def test_unset_variables_leave_the_template_default_and_values_are_typed() -> None:
    file = {"name": "${NAME}", "size": "${SIZE}", "flag": "${FLAG}", "extra": "${EXTRA}", "region": "${REGION}"}
    assert resolve(file, {"NAME": "x"}) == {"name": "x"}
    assert resolve(file, {"NAME": "x", "SIZE": "8", "FLAG": "False", "EXTRA": '{"a": 1}', "REGION": ""}) == {
        "name": "x",
        "size": 8,
        "flag": False,
        "extra": {"a": 1},
        "region": "",  # set, even to empty, is a value (as in azd)
    }
    assert resolve({"name": "${NAME=fallback}", "region": "eu-${ZONE}"}, {}) == {"name": "fallback", "region": "eu-"}
    assert resolve({"name": "plain", "size": 3}, {}) == {"name": "plain", "size": 3}  # type: ignore[dict-item]


@pytest.mark.parametrize(
    ("file", "env", "message"),
    [
        ({"name": "${NAME}", "size": "${SIZE}"}, {"NAME": "x", "SIZE": "ten"}, r"size must be a whole number.*SIZE"),
        ({"name": "${NAME}", "flag": "${FLAG}"}, {"NAME": "x", "FLAG": "yes"}, r"flag must be true or false.*FLAG"),
        ({"name": "${NAME}", "nope": "${NOPE}"}, {"NAME": "x"}, r"does not declare: nope"),
        ({"name": "${NAME}"}, {}, r"without a value: name \(NAME\)"),
        ({"name": "${NAME:-x}"}, {}, r"only \$\{NAME\} and \$\{NAME=default\}"),
    ],
)
def test_resolution_errors_name_the_parameter_and_its_variable(
    file: dict[str, str], env: dict[str, str], message: str
) -> None:
    with pytest.raises(params.ParameterError, match=message):
        resolve(file, env)


# ---- deploy.sh against a recording `az` -----------------------------------------------------------------

FAKE_AZ = r"""#!/usr/bin/env bash
printf '%s\n' "$*" >>"$AZ_LOG"
n=0
for arg in "$@"; do  # keep every @file parameter set: deploy.sh deletes its own when it ends
  if [[ "$arg" == @* ]]; then n=$((n + 1)); cp "${arg#@}" "$AZ_LOG.parameters-$n.json"; fi
done
case "$1 $2" in
  "ad signed-in-user") echo 11111111-2222-3333-4444-555555555555 ;;
  "deployment group") [[ "$3" == show ]] && echo "out-$(sed 's/.*outputs\.\([A-Z_]*\).*/\1/' <<<"$*")" ;;
  "functionapp keys") echo not-shown ;;
esac
exit 0
"""
REQUIRED = {
    "RESOURCE_GROUP": "rg-test",
    "PIPEDRIVE_COMPANY_DOMAIN": "acme",
    "D365_ENVIRONMENT_URL": "https://contoso.operations.dynamics.com/",
    "D365_CLIENT_ID": "00000000-0000-0000-0000-000000000000",
    "D365_DEFAULT_LEGAL_ENTITY": "usmf",
}


def run_deploy(tmp_path: Path, env: dict[str, str]) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "az").write_text(FAKE_AZ)
    (bin_dir / "az").chmod(0o755)
    log = tmp_path / "az.log"
    base = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "HOME": str(tmp_path), "AZ_LOG": str(log)}
    result = subprocess.run(
        ["bash", str(INFRA / "deploy.sh"), "--skip-secrets", "--skip-code"],
        env={**base, **env},
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    return result, log.read_text().splitlines() if log.exists() else []


def deployed_parameters(tmp_path: Path, calls: list[str]) -> dict[str, Any]:
    (create,) = [c for c in calls if c.startswith("deployment group create")]
    assert "--template-file" in create and create.count("--parameters") == 1
    resolved = json.loads((tmp_path / "az.log.parameters-1.json").read_text())
    return {name: entry["value"] for name, entry in resolved["parameters"].items()}


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash not available")
def test_deploy_sh_deploys_main_bicep_with_the_parameter_file_resolved_from_the_environment(tmp_path: Path) -> None:
    result, calls = run_deploy(tmp_path, {**REQUIRED, "POLL_SCHEDULE": "0 */10 * * * *", "INSTANCE_MEMORY_MB": "4096"})
    assert result.returncode == 0, result.stderr
    sent = deployed_parameters(tmp_path, calls)
    assert sent == {
        "environmentName": "prod",  # deploy.sh's default, through AZURE_ENV_NAME
        "pipedriveCompanyDomain": "acme",
        "pipedriveAuthMode": "api_token",
        "d365EnvironmentUrl": "https://contoso.operations.dynamics.com",  # trailing slash dropped
        "d365ClientId": "00000000-0000-0000-0000-000000000000",
        "d365DefaultLegalEntity": "usmf",
        "d365Credential": "client_secret",
        "pollSchedule": "0 */10 * * * *",
        "instanceMemoryMB": 4096,
        "deployerPrincipalId": "11111111-2222-3333-4444-555555555555",  # the signed-in user
        "deployerPrincipalType": "User",
    }
    # Every other parameter (location included: the group's) is left to the template's default.
    assert "Pipedrive webhook URL" in result.stdout and "https://out-FUNCTION_APP_HOSTNAME/" in result.stdout


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash not available")
def test_deploy_sh_names_of_its_own_feed_the_azd_variables(tmp_path: Path) -> None:
    own = {"ENVIRONMENT_NAME": "test", "LOCATION": "westeurope", "DEPLOYER_PRINCIPAL_ID": "abc"}
    stale = {"AZURE_ENV_NAME": "other", "AZURE_PRINCIPAL_ID": "stale"}  # e.g. left over from azd in the shell
    result, calls = run_deploy(tmp_path, {**REQUIRED, **stale, **own, "DEPLOYER_PRINCIPAL_TYPE": "ServicePrincipal"})
    assert result.returncode == 0, result.stderr
    sent = deployed_parameters(tmp_path, calls)
    assert sent["environmentName"] == "test" and sent["location"] == "westeurope"
    assert sent["deployerPrincipalId"] == "abc" and sent["deployerPrincipalType"] == "ServicePrincipal"
    assert not any(c.startswith("ad signed-in-user") for c in calls)


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash not available")
def test_deploy_sh_stops_before_touching_azure_when_a_required_variable_is_missing(tmp_path: Path) -> None:
    env = {k: v for k, v in REQUIRED.items() if k != "D365_DEFAULT_LEGAL_ENTITY"}
    result, calls = run_deploy(tmp_path, env)
    assert result.returncode != 0
    assert "d365DefaultLegalEntity (D365_DEFAULT_LEGAL_ENTITY)" in result.stderr
    assert not any(c.startswith(("group create", "deployment group create")) for c in calls)


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash not available")
def test_deploy_sh_applies_an_extra_parameters_file_first_so_the_environment_wins(tmp_path: Path) -> None:
    own = tmp_path / "prod.parameters.json"
    own.write_text(json.dumps(params.document({"pollSchedule": "0 0 * * * *", "alertEmail": "ops@example.com"})))
    result, calls = run_deploy(tmp_path, {**REQUIRED, "PARAMETERS_FILE": str(own), "POLL_SCHEDULE": "0 */2 * * * *"})
    assert result.returncode == 0, result.stderr
    (create,) = [c for c in calls if c.startswith("deployment group create")]
    assert create.index(f"@{own}") < create.rindex("--parameters @")
    assert json.loads((tmp_path / "az.log.parameters-2.json").read_text())["parameters"]["pollSchedule"] == {
        "value": "0 */2 * * * *"
    }
