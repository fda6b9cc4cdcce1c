"""Static checks of infra/ against the connector's own configuration model. No Azure, no bicep CLI.

What would break if someone changed one side without the other: a required setting missing from the
app, a typo in a setting name, a secret in an app setting, a role wider than the table allows, queues
or tables that differ from the connector's defaults, host.json retries that disagree with
MAX_DEQUEUE_COUNT.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pycep
import pytest
from pydantic import AliasChoices

from connector.settings import Settings, load_settings
from tests.infra import bicep_text as bt
from tests.infra.scripts import load

params = load("params")

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
MAIN = bt.strip_comments((INFRA / "main.bicep").read_text())
FUNCAPP = bt.strip_comments((INFRA / "modules" / "functionapp.bicep").read_text())
RBAC = bt.strip_comments((INFRA / "modules" / "rbac.bicep").read_text())
DEPLOY_SH = (INFRA / "deploy.sh").read_text()
PARAMETERS = INFRA / "azd" / "main.parameters.json"  # the one parameter file (azd and deploy.sh)
# The environment of the docs' deploy.sh example (docs/deploy-azure.md), AZURE_* as deploy.sh exports them.
EXAMPLE_ENVIRONMENT = {
    "AZURE_ENV_NAME": "prod",
    "AZURE_LOCATION": "westeurope",
    "PIPEDRIVE_COMPANY_DOMAIN": "acme",
    "PIPEDRIVE_AUTH_MODE": "api_token",
    "D365_ENVIRONMENT_URL": "https://contoso.operations.dynamics.com",
    "D365_CLIENT_ID": "00000000-0000-0000-0000-000000000000",
    "D365_DEFAULT_LEGAL_ENTITY": "usmf",
}

# Built-in role ids the deployment may use, with the scope each may be assigned on. Documented in
# infra/README.md and docs/deploy-azure.md ("RBAC"). Anything else fails the test.
ALLOWED_ROLES: dict[str, tuple[str, str, set[str]]] = {
    # key in rbac.bicep `roles` -> (role name, role definition id, allowed scopes)
    "storageBlobDataOwner": ("Storage Blob Data Owner", "b7e6dc6d-f1e8-4753-8033-0f276bb0955b", {"storage"}),
    "storageQueueDataContributor": (
        "Storage Queue Data Contributor",
        "974c5e8b-45b9-4653-ba55-5f855dd0fb88",
        {"storage"},
    ),
    "storageTableDataContributor": (
        "Storage Table Data Contributor",
        "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",
        {"storage"},
    ),
    "keyVaultSecretsOfficer": ("Key Vault Secrets Officer", "b86a8fe4-44ce-4948-aee5-eccb2c155cd7", {"vault"}),
    "monitoringMetricsPublisher": (
        "Monitoring Metrics Publisher",
        "3913510d-42f4-4e42-8a64-420c390055eb",
        {"appInsights"},
    ),
}
# Broad roles that must never appear (Owner, Contributor, User Access Administrator, Key Vault
# Administrator, Storage Account Contributor).
FORBIDDEN_ROLE_IDS = {
    "8e3af657-a8ff-443c-a75c-2fe8c4bcb635",
    "b24988ac-6180-42a0-ab88-20f7382dd24c",
    "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9",
    "00482a5a-887f-4fb3-b363-3b7fe8e74483",
    "17d1049b-9a84-46fb-8f53-869881c3d3ab",
}

# App settings the platform (not connector.settings) reads; allowed in addition to Settings names.
PLATFORM_SETTINGS = {
    "AzureWebJobsStorage__blobServiceUri",
    "AzureWebJobsStorage__credential",
    "AZURE_CLIENT_ID",
    "APPLICATIONINSIGHTS_CONNECTION_STRING",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
}
# Deprecated on Flex Consumption (docs/api-facts.md, Azure Functions §1): must not be emitted.
FLEX_DEPRECATED = {
    "FUNCTIONS_WORKER_RUNTIME",
    "FUNCTIONS_EXTENSION_VERSION",
    "WEBSITE_RUN_FROM_PACKAGE",
    "WEBSITE_CONTENTSHARE",
    "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING",
    "SCM_DO_BUILD_DURING_DEPLOYMENT",
    "ENABLE_ORYX_BUILD",
}


def env_names() -> dict[str, str]:
    """Settings field -> its app-setting (env) name."""
    names = {}
    for field, info in Settings.model_fields.items():
        alias = info.validation_alias
        assert isinstance(alias, AliasChoices), f"Settings.{field} has no env alias"
        names[field] = str(alias.choices[0])
    return names


def connector_settings() -> dict[str, str]:
    """The connectorSettings object main.bicep passes to the function app module."""
    return bt.entries(bt.block_after(MAIN, r"connectorSettings\s*:"))


def platform_settings() -> dict[str, str]:
    return bt.entries(bt.block_after(FUNCAPP, r"var\s+platformSettings\s*="))


def app_settings() -> dict[str, str]:
    return {**connector_settings(), **platform_settings()}


def deploy_sh_documented() -> set[str]:
    """Settings deploy.sh declares it sets itself, via `# app-setting: NAME` lines."""
    return set(re.findall(r"^#\s*app-setting:\s*(\S+)", DEPLOY_SH, re.MULTILINE))


def test_every_required_setting_is_set_by_bicep_or_deploy_sh() -> None:
    provided = set(app_settings()) | deploy_sh_documented()
    required = {env_names()[f] for f, info in Settings.model_fields.items() if info.is_required()}
    assert required, "Settings has no required fields: did the model change shape?"
    missing = sorted(required - provided)
    assert not missing, f"required settings not set by infra: {missing}"


def test_storage_is_identity_based_and_complete() -> None:
    settings = app_settings()
    for suffix in ("accountName", "queueServiceUri", "tableServiceUri", "blobServiceUri", "clientId"):
        assert f"AzureWebJobsStorage__{suffix}" in settings
    assert bt.string_literal(settings["AzureWebJobsStorage__credential"]) == "managedidentity"
    assert "AzureWebJobsStorage" not in settings, "a connection string means shared keys: use the identity"
    assert "AZURE_CLIENT_ID" in settings, "DefaultAzureCredential needs it to pick the user-assigned identity"


def test_every_app_setting_name_is_known() -> None:
    known = set(env_names().values()) | PLATFORM_SETTINGS
    unknown = sorted(set(app_settings()) - known)
    assert not unknown, f"app settings nobody reads (typo?): {unknown}"
    deprecated = sorted(set(app_settings()) & FLEX_DEPRECATED)
    assert not deprecated, f"settings deprecated on Flex Consumption: {deprecated}"


SECRET_NAME = re.compile(r"(SECRET|PASSWORD|PASSWD|TOKEN|APIKEY|API_KEY|ACCESS_KEY|PRIVATE)", re.IGNORECASE)
SECRET_VALUE = re.compile(
    r"(AccountKey=|SharedAccessSignature|SharedAccessKey|sig=|[?&]code=|password|secret|"
    r"listKeys\(|listSecrets\(|[A-Za-z0-9+/]{40,}={0,2}|\b[0-9a-f]{40,}\b)",
    re.IGNORECASE,
)


def test_no_app_setting_looks_like_a_secret() -> None:
    settings = app_settings()
    assert settings
    for name, expr in settings.items():
        if name != "PIPEDRIVE_AUTH_MODE":  # its values are 'api_token'|'oauth', a mode not a token
            assert not SECRET_NAME.search(name), f"{name}: secret-like name in app settings"
        assert not SECRET_VALUE.search(expr), f"{name}: value looks like a secret: {expr}"
    # Values that come from parameters must not come from @secure() parameters.
    secure = set(re.findall(r"@secure\(\)\s*param\s+(\w+)", MAIN))
    for name, expr in settings.items():
        assert expr.strip() not in secure, f"{name} is fed by a secure parameter"
    # Nothing in infra reads keys out of a resource.
    for path in INFRA.rglob("*.bicep"):
        assert "listKeys(" not in path.read_text(), f"{path.name} reads account keys"
    # And the parameter file carries no secret, nor reads one from the environment.
    for name, entry in json.loads(PARAMETERS.read_text())["parameters"].items():
        assert not SECRET_NAME.search(name), f"main.parameters.json: {name}"
        for variable in params.variables(entry["value"]):
            assert not SECRET_NAME.search(variable), f"main.parameters.json: {name} reads {variable}"


def test_only_documented_built_in_roles_on_narrow_scopes() -> None:
    roles = bt.entries(bt.block_after(RBAC, r"var\s+roles\s*="))
    assert roles, "rbac.bicep must define its role ids in `var roles = {...}`"
    for key, expr in roles.items():
        assert key in ALLOWED_ROLES, f"role {key} is not in the documented table"
        assert bt.string_literal(expr) == ALLOWED_ROLES[key][1], f"role {key} has the wrong id {expr}"
    for path in INFRA.rglob("*.bicep"):
        text = path.read_text().lower()
        for role_id in FORBIDDEN_ROLE_IDS:
            assert role_id not in text, f"{path.name} uses a broad role {role_id}"
    # The table: one row per assignment, each a documented role on a scope that role may have.
    table = pycep.BicepParser().parse(file_path=INFRA / "modules" / "rbac.bicep")["variables"]["assignments"]["value"]
    assert len(table) >= 5
    for row in table:
        assert row["role"] in ALLOWED_ROLES, f"role {row['role']} is not in the documented table"
        assert row["scope"] in ALLOWED_ROLES[row["role"]][2], f"{row['role']} assigned on {row['scope']}"
        assert row["principal"] == "app" or row["role"] == "keyVaultSecretsOfficer", "the deployer only writes secrets"
    used = {row["role"] for row in table}
    assert used == set(ALLOWED_ROLES), f"roles declared but not assigned: {set(ALLOWED_ROLES) - used}"
    # Every role assignment resource is a loop over that table, for the scope it is written on.
    loops = list(bt.blocks(RBAC, r"resource\s+\w+\s+'Microsoft\.Authorization/roleAssignments@[\w-]+'[^{]*"))
    scopes = set()
    for match, body in loops:
        head = re.search(r"for\s+(\w+)\s+in\s+filter\(assignments,\s*(\w+)\s*=>\s*\2\.scope\s*==\s*'(\w+)'", match[0])
        assert head, f"a role assignment outside the `assignments` table: {match[0]}"
        item, scope = head[1], head[3]
        fields = bt.entries(body)
        props = bt.entries(bt.block_after(body, r"properties\s*:"))
        assert fields["scope"] == scope, f"rows for {scope} assigned on {fields['scope']}"
        role = f"roles[{item}.role]"
        assert props["roleDefinitionId"] == f"subscriptionResourceId('Microsoft.Authorization/roleDefinitions', {role})"
        assert fields["name"] == f"guid({scope}.id, {item}.principal.id, {role})", "name = guid(scope, principal, role)"
        assert props["principalId"] == f"{item}.principal.id"
        scopes.add(scope)
    assert {row["scope"] for row in table} <= scopes, "a scope in the table has no assignment loop"
    for path in INFRA.rglob("*.bicep"):
        if path.name != "rbac.bicep":
            assert "roleAssignments@" not in path.read_text(), f"{path.name} assigns roles outside rbac.bicep"


def test_role_table_is_documented() -> None:
    for doc in (INFRA / "README.md", ROOT / "docs" / "deploy-azure.md"):
        text = doc.read_text()
        for name, role_id, _scopes in ALLOWED_ROLES.values():
            assert name in text and role_id in text, f"{doc.name} lacks {name} {role_id}"


def test_queues_and_tables_match_connector_defaults() -> None:
    storage = bt.block_after(MAIN, r"var\s+queueNames\s*=")
    variables = {m.group(1): m.group(2) for m in re.finditer(r"^var\s+(\w+)\s*=\s*'([^'$]*)'$", MAIN, re.MULTILINE)}
    queues = set()
    for item in storage.split():
        literal = bt.string_literal(item)
        if literal is not None:
            queues.add(literal)
        elif item in variables:
            queues.add(variables[item])
        else:
            poison = re.fullmatch(r"'\$\{(\w+)\}-poison'", item)
            assert poison, f"unexpected queue expression {item}"
            queues.add(variables[poison.group(1)] + "-poison")
    defaults = {f: info.default for f, info in Settings.model_fields.items()}
    expected = {defaults["order_queue"], defaults["master_queue"]}
    assert queues == expected | {f"{q}-poison" for q in expected}
    settings = connector_settings()
    assert settings["ORDER_QUEUE"] in variables and variables[settings["ORDER_QUEUE"]] == defaults["order_queue"]
    assert settings["MASTER_QUEUE"] in variables and variables[settings["MASTER_QUEUE"]] == defaults["master_queue"]
    tables = {bt.string_literal(t) for t in bt.block_after(MAIN, r"var\s+tableNames\s*=").split()}
    assert "TABLE_PREFIX" not in settings, "tables are created unprefixed; a prefix would need new tables"
    assert tables == _default_tables()


def _default_tables() -> set[str]:
    from connector.settings import TableNames

    return set(TableNames().model_dump().values())


def test_bicep_defaults_make_valid_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Resolve each app setting from the parameter file (the documented example environment) / param
    defaults and validate with Settings."""
    for env in env_names().values():
        monkeypatch.delenv(env, raising=False)
        monkeypatch.delenv(env.lower(), raising=False)
    param_defaults = bt.params(MAIN)
    parameters = json.loads(PARAMETERS.read_text())["parameters"]
    assert set(parameters) <= set(param_defaults), "main.parameters.json sets unknown parameters"
    param_values = params.resolve(parameters, (INFRA / "main.bicep").read_text(), EXAMPLE_ENVIRONMENT)
    values: dict[str, object] = {}
    for name, expr in app_settings().items():
        if expr in param_values:
            values[name] = param_values[expr]
        elif expr in param_defaults and param_defaults[expr] and bt.string_literal(param_defaults[expr] or ""):
            values[name] = bt.string_literal(param_defaults[expr] or "")
        elif bt.string_literal(expr) is not None:
            values[name] = bt.string_literal(expr)
        elif name.endswith("ServiceUri") or name == "KEY_VAULT_URL":
            values[name] = "https://example.invalid"  # a resource output at deploy time
        else:
            values[name] = "placeholder"
    settings = load_settings(**values)
    assert settings.storage.connection_string is None, "must resolve to identity-based storage"
    assert settings.key_vault_url


def test_platform_shape() -> None:
    assert re.search(r"runtime\s*:\s*\{\s*name:\s*'python'\s*version:\s*pythonVersion", FUNCAPP)
    assert re.search(r"param\s+pythonVersion\s+string\s*=\s*'3\.11'", FUNCAPP)
    assert "'FlexConsumption'" in FUNCAPP and "'FC1'" in FUNCAPP
    assert re.search(r"type:\s*'UserAssignedIdentity'", FUNCAPP)
    kv = bt.strip_comments((INFRA / "modules" / "keyvault.bicep").read_text())
    for flag in ("enableRbacAuthorization", "enableSoftDelete", "enablePurgeProtection"):
        assert re.search(rf"{flag}\s*:\s*true", kv), flag
    storage = bt.strip_comments((INFRA / "modules" / "storage.bicep").read_text())
    assert re.search(r"allowSharedKeyAccess\s*:\s*false", storage)
    assert re.search(r"allowBlobPublicAccess\s*:\s*false", storage)
    for module in re.findall(r"module\s+\w+\s+'([^']+)'", MAIN):
        assert (INFRA / module).is_file(), f"missing module {module}"


def test_host_json_max_dequeue_count_matches_settings_default() -> None:
    host = ROOT / "host.json"
    if not host.exists():
        pytest.skip("host.json not in the tree yet (owned by the platform area)")
    queues = json.loads(host.read_text())["extensions"]["queues"]
    assert queues["maxDequeueCount"] == Settings.model_fields["max_dequeue_count"].default
    # deploy/bicep must not override MAX_DEQUEUE_COUNT away from host.json
    assert "MAX_DEQUEUE_COUNT" not in app_settings()
