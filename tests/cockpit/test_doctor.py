"""`doctor` against the simulators: the demo setup is healthy, and each seeded misconfiguration fails
exactly its row, with a fix that names what to change."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.fernet import Fernet

from connector.dev.sandbox.stack import DEMO_MAPPING
from connector.doctor import DoctorReport, run_doctor
from connector.runtime import Runtime
from connector.secrets import LocalSecretStore, SecretNames
from connector.settings import load_settings
from tests.e2e.test_cli import cli
from tests.fixtures.stack import E2E

Mapping = dict[str, Any]


async def doctor(
    e2e: E2E,
    tmp_path: Path,
    *,
    mapping: Callable[[Mapping], None] | None = None,
    secrets: dict[str, str] | None = None,
    app_url: str | None = "",
) -> DoctorReport:
    """Run the doctor with the stack's settings, a changed copy of the demo mapping and/or other secrets."""
    data = yaml.safe_load(DEMO_MAPPING.read_text())
    if mapping is not None:
        mapping(data)
    path = tmp_path / "mapping.yaml"
    path.write_text(yaml.safe_dump(data))
    rt = Runtime.open(load_settings(mapping_file=str(path)))
    if secrets is not None:
        base = {
            SecretNames.PIPEDRIVE_API_TOKEN: e2e.stack.pipedrive.api_token,
            SecretNames.PIPEDRIVE_WEBHOOK_PASSWORD: e2e.stack.webhook_password,
            SecretNames.D365_CLIENT_SECRET: e2e.stack.d365.client_secret,
        }
        store = LocalSecretStore(tmp_path / "other-secrets.enc", Fernet.generate_key())
        for name, value in {**base, **secrets}.items():
            if value is not None:
                await store.set(name, value)
        await rt.secrets.close()
        rt.secrets = store
    try:
        return await run_doctor(
            rt, app_url=e2e.host.base_url if app_url == "" else app_url, function_key=e2e.host.admin_key
        )
    finally:
        await rt.close()


def failed(report: DoctorReport) -> dict[str, str]:
    return {c.name: c.fix for c in report.checks if c.status == "fail"}


async def test_the_demo_setup_passes_every_check_it_can_verify(e2e: E2E, tmp_path: Path) -> None:
    await e2e.register_webhook()
    report = await doctor(e2e, tmp_path)
    assert report.ok, failed(report)
    status = {c.name: c.status for c in report.checks}
    for name in (
        "mapping.file", "secret pipedrive-api-token", "pipedrive.auth", "pipedrive.webhook", "pipedrive.rate_limit",
        "pipedrive.field pipedrive_fields.org_customer_account", "pipedrive.field dimensions.sources.CostCenter",
        "d365.auth", "d365.legal_entity usmf", "d365.legal_entity demf", "d365.customer_group demf",
        "d365.currency usmf", "app.d365_events",
    ):  # fmt: skip
        assert status[name] == "pass", name
    # What the simulator (like many real environments) does not expose is a warning with a manual check.
    assert status["d365.dimension_format"] == "warn"
    assert "Financial dimension configuration" in report.find("d365.dimension_format").fix  # type: ignore[union-attr]
    assert any(
        c.area == "storage" and c.name.startswith("queue ") and c.name.endswith("-poison") for c in report.checks
    )


def _drop_group(m: Mapping) -> None:
    m["customer"]["defaults_by_legal_entity"]["demf"]["customer_group"] = "99"


def _bad_currency(m: Mapping) -> None:
    m["customer"]["defaults"]["currency"] = "XYZ"


def _bad_company(m: Mapping) -> None:
    m["legal_entity"]["by_pipeline"][3] = "ukmf"


def _missing_field(m: Mapping) -> None:
    m["pipedrive_fields"]["org_customer_account"] = "D365 account no"


def _wrong_type(m: Mapping) -> None:
    m["dimensions"]["sources"]["CostCenter"] = {"source": "deal_field", "field": "Value"}


def _unknown_option(m: Mapping) -> None:
    m["dimensions"]["sources"]["CostCenter"]["values"] = {"North": "011", "Nord": "022"}


def _unprefixed_number(m: Mapping) -> None:
    m["order"].update(numbering="from_deal", number_template="{deal_id}")


def _long_number(m: Mapping) -> None:
    m["order"].update(numbering="from_deal", number_template="PIPEDRIVE-DEAL-{deal_id}")


MAPPING_CASES = [
    ("customer group", _drop_group, "d365.customer_group demf", "set customer.defaults_by_legal_entity.demf.customer_group to one of 10"),
    ("currency", _bad_currency, "d365.currency usmf", "set customer.defaults.currency to a currency D365 has"),
    ("legal entity", _bad_company, "d365.legal_entity ukmf", "correct legal_entity in the mapping file (companies here: demf, usmf)"),
    ("missing field", _missing_field, "pipedrive.field pipedrive_fields.org_customer_account", "create a organization custom field named 'D365 account no'"),
    ("field type", _wrong_type, "pipedrive.field dimensions.sources.CostCenter", "use a deal field of type enum or text or varchar or varchar_auto"),
    ("option label", _unknown_option, "pipedrive.field dimensions.sources.CostCenter", "rename the keys under dimensions.sources.CostCenter.values"),
    ("number prefix", _unprefixed_number, "d365.numbering", "give order.number_template a prefix of its own"),
    ("number length", _long_number, "d365.numbering", "a sales order number holds at most 20 characters"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "change", "row", "fix"), MAPPING_CASES, ids=[c[0] for c in MAPPING_CASES])
async def test_a_mapping_name_that_does_not_exist_fails_its_row(
    e2e: E2E, tmp_path: Path, case: str, change: Callable[[Mapping], None], row: str, fix: str
) -> None:
    await e2e.register_webhook()
    report = await doctor(e2e, tmp_path, mapping=change)
    assert list(failed(report)) == [row], report.as_json()
    assert fix in failed(report)[row]


SECRET_CASES = [
    ("pipedrive token", {SecretNames.PIPEDRIVE_API_TOKEN: "0" * 40}, "pipedrive.auth", "store a valid API token"),
    ("d365 secret", {SecretNames.D365_CLIENT_SECRET: "wrong-secret"}, "d365.auth", "check D365_TENANT_ID, D365_CLIENT_ID"),
    ("missing secret", {SecretNames.PIPEDRIVE_WEBHOOK_PASSWORD: None}, "secret pipedrive-webhook-password", "ml-connector secrets set pipedrive-webhook-password"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "secrets", "row", "fix"), SECRET_CASES, ids=[c[0] for c in SECRET_CASES])
async def test_a_bad_or_missing_secret_fails_its_row_and_never_shows_a_value(
    e2e: E2E, tmp_path: Path, case: str, secrets: dict[str, str], row: str, fix: str
) -> None:
    await e2e.register_webhook()
    report = await doctor(e2e, tmp_path, secrets=secrets)
    assert row in failed(report), report.as_json()
    assert fix in failed(report)[row]
    text = str(report.as_json())
    for value in (
        e2e.stack.pipedrive.api_token,
        e2e.stack.d365.client_secret,
        e2e.stack.webhook_password,
        "wrong-secret",
    ):
        assert value not in text


async def test_webhook_missing_or_without_basic_auth(e2e: E2E, tmp_path: Path) -> None:
    report = await doctor(e2e, tmp_path)
    assert list(failed(report)) == ["pipedrive.webhook"]
    assert f"ml-connector register-webhook {e2e.webhook_url}" in failed(report)["pipedrive.webhook"]

    client = await e2e.rt.pipedrive()
    await client.ensure_webhook(e2e.webhook_url, "someone-else", "pw-pw-pw-pw", "change", "deal")
    report = await doctor(e2e, tmp_path)
    assert "does not send Basic auth user 'pipedrive-hook'" in report.find("pipedrive.webhook").detail  # type: ignore[union-attr]


async def test_without_the_app_url_the_app_rows_warn(e2e: E2E, tmp_path: Path) -> None:
    await e2e.register_webhook()
    report = await doctor(e2e, tmp_path, app_url=None)
    assert report.ok
    assert report.find("app.d365_events").status == "warn"  # type: ignore[union-attr]
    assert report.find("pipedrive.webhook").status == "warn"  # type: ignore[union-attr]


async def test_an_invalid_mapping_fails_and_the_systems_are_still_checked(e2e: E2E, tmp_path: Path) -> None:
    report = await doctor(e2e, tmp_path, mapping=lambda m: m["customer"]["defaults"].pop("currency"))
    assert "mapping.file" in failed(report)
    assert report.find("d365.auth").status == "pass"  # type: ignore[union-attr]
    assert report.find("pipedrive.auth").status == "pass"  # type: ignore[union-attr]


async def test_cli_doctor_json_and_exit_code(e2e: E2E, tmp_path: Path) -> None:
    code, result, text = await cli(
        e2e, "doctor", "--json", "--app-url", e2e.host.base_url, "--function-key", e2e.host.admin_key
    )
    assert code == 1, text  # no webhook registered yet
    assert [c["name"] for c in result["checks"] if c["status"] == "fail"] == ["pipedrive.webhook"]
    await e2e.register_webhook()
    code, result, text = await cli(e2e, "doctor", "--app-url", e2e.host.base_url, "--function-key", e2e.host.admin_key)
    assert code == 0, text
    assert "pipedrive.webhook" in text and "failed" in text
