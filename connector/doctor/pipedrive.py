"""Doctor checks on Pipedrive: auth and scopes, the custom fields the mapping names, the webhook, the plan's limits."""

from __future__ import annotations

from typing import TYPE_CHECKING

from connector import telemetry
from connector.doctor.report import Check, fail, ok, warn
from connector.errors import AuthError, ConnectorError, PermanentError
from connector.mapping.config import MappingConfig
from connector.mapping.sections import DealFieldSource, OrgFieldSource
from connector.pipedrive.auth import OAuth2RefreshAuth
from connector.secret_names import SecretNames

if TYPE_CHECKING:
    from connector.pipedrive.client import PipedriveClient
    from connector.pipedrive.models import FieldDefinition
    from connector.runtime import Runtime

AREA = "pipedrive"
WEBHOOK_PATH = "/api/pipedrive/webhook"
# OAuth scopes the connector uses (Pipedrive Developer Hub names): reads and writes of deals (order
# number write-back), products and organizations (master push, account write-back), webhooks (admin).
# `admin` implies none of the others (each operation's `security` in Pipedrive's specs lists its scopes).
NEEDED_SCOPES = ("deals:full", "products:full", "contacts:full")
# Only for registering and checking the webhook (`/v1/webhooks`); an admin may register it in the UI instead.
WEBHOOK_SCOPE = "admin"
NO_WEBHOOK_SCOPE = (
    "without the admin scope the connector can neither register nor check its webhook: register it in "
    "Pipedrive (Settings > Tools and apps > Webhooks, docs/admin-pipedrive.md) and check it there"
)
TEXT_TYPES = {"varchar", "varchar_auto", "text"}
# Types a dimension can be read from: an option label or a text (mapping/dimensions.py).
DIMENSION_TYPES = TEXT_TYPES | {"enum"}


async def pipedrive_checks(rt: Runtime, cfg: MappingConfig | None, app_url: str | None) -> list[Check]:
    try:
        client = await rt.pipedrive()
    except ConnectorError as exc:
        return [fail(AREA, "pipedrive.auth", f"cannot open the Pipedrive client: {exc}", _auth_fix(rt))]
    checks = [await _auth(rt, client)]
    if checks[0].status == "fail":
        return checks
    if cfg is not None:
        checks += await _fields(client, cfg)
    checks.append(await _webhook(rt, client, app_url))
    checks.append(_rate_limit())
    return checks


def _auth_fix(rt: Runtime) -> str:
    if rt.settings.pipedrive_auth_mode == "oauth":
        return (
            "re-authorize the app in Pipedrive and store the new refresh token as secret "
            f"{SecretNames.PIPEDRIVE_OAUTH_REFRESH_TOKEN}."
        )
    return (
        f"store a valid API token (Pipedrive: Personal preferences > API) as secret {SecretNames.PIPEDRIVE_API_TOKEN}."
    )


async def _auth(rt: Runtime, client: PipedriveClient) -> Check:
    mode = rt.settings.pipedrive_auth_mode
    try:
        if mode == "api_token":
            me = await client.request("GET", "/v1/users/me")
            who = (me.get("data") or {}).get("email") or "the token's user"
            return ok(
                AREA, "pipedrive.auth", f"API token accepted for {who} (company {rt.settings.pipedrive_company_domain})"
            )
        if not isinstance(client.auth, OAuth2RefreshAuth):
            raise AuthError(f"PIPEDRIVE_AUTH_MODE is oauth but the client holds {type(client.auth).__name__}")
        token = await client.auth.current_token()
        granted = set((token.scope or "").replace(" ", ",").split(","))
        missing = [s for s in NEEDED_SCOPES if s not in granted and s.replace(":full", ":read") not in granted]
        partial = [s for s in NEEDED_SCOPES if s not in granted and s.replace(":full", ":read") in granted]
        if missing or partial:
            names = ", ".join(missing + partial)
            return fail(
                AREA,
                "pipedrive.auth",
                f"OAuth token refreshed but the app lacks scope(s) {names}",
                f"add {names} to the app's scopes in Pipedrive Developer Hub and re-authorize it.",
            )
        if WEBHOOK_SCOPE not in granted:
            return warn(
                AREA,
                "pipedrive.auth",
                "OAuth token refreshed with every scope the order and master flows use, but not admin",
                f"{NO_WEBHOOK_SCOPE}; or add admin to the app's scopes and re-authorize it.",
            )
        return ok(AREA, "pipedrive.auth", "OAuth token refreshed with every scope the connector uses")
    except AuthError as exc:
        return fail(AREA, "pipedrive.auth", f"Pipedrive refused the credentials: {exc}", _auth_fix(rt))
    except ConnectorError as exc:
        return fail(
            AREA,
            "pipedrive.auth",
            f"Pipedrive did not answer: {exc}",
            "check PIPEDRIVE_COMPANY_DOMAIN and the network path to Pipedrive.",
        )


def _field_uses(cfg: MappingConfig) -> list[tuple[str, str, str, set[str], dict[str, str] | None]]:
    """(what, entity, field name, usable types, option labels the mapping expects) for every field named."""
    uses: list[tuple[str, str, str, set[str], dict[str, str] | None]] = []
    pf = cfg.pipedrive_fields
    if pf.org_customer_account:
        uses.append(
            ("pipedrive_fields.org_customer_account", "organization", pf.org_customer_account, TEXT_TYPES, None)
        )
    if pf.deal_order_number:
        uses.append(("pipedrive_fields.deal_order_number", "deal", pf.deal_order_number, TEXT_TYPES, None))
    for dim, src in cfg.dimensions.sources.items():
        if isinstance(src, DealFieldSource | OrgFieldSource):
            entity = "deal" if isinstance(src, DealFieldSource) else "organization"
            uses.append((f"dimensions.sources.{dim}", entity, src.field, DIMENSION_TYPES, src.values))
    return uses


async def _fields(client: PipedriveClient, cfg: MappingConfig) -> list[Check]:
    defs: dict[str, list[FieldDefinition]] = {}
    checks: list[Check] = []
    for what, entity, name, usable, values in _field_uses(cfg):
        row = f"pipedrive.field {what}"
        if entity not in defs:
            try:
                defs[entity] = [d async for d in client.iter_field_definitions(entity)]  # type: ignore[arg-type]
            except ConnectorError as exc:
                checks.append(
                    fail(
                        AREA,
                        row,
                        f"cannot read {entity} fields: {exc}",
                        "give the Pipedrive user or app read access to custom fields.",
                    )
                )
                continue
        found = _by_name(defs[entity], name)
        if found is None:
            checks.append(
                fail(AREA, row, f"no {entity} field named {name!r}",
                     f"create a {entity} custom field named {name!r} in Pipedrive, or correct {what} in the mapping file.")
            )  # fmt: skip
            continue
        if found.field_type not in usable:
            checks.append(
                fail(AREA, row, f"{entity} field {name!r} is of type {found.field_type!r}",
                     f"use a {entity} field of type {' or '.join(sorted(usable))} for {what}.")
            )  # fmt: skip
            continue
        checks.append(_options(row, entity, name, found, values))
    return checks


def _by_name(definitions: list[FieldDefinition], name: str) -> FieldDefinition | None:
    """The field the connector's resolver would pick for `name` (custom fields first, then any)."""
    folded = " ".join(name.split()).casefold()
    same = [d for d in definitions if " ".join(d.name.split()).casefold() == folded or d.code == name]
    custom = [d for d in same if d.is_custom] or same
    return custom[0] if len(custom) == 1 else None


def _options(row: str, entity: str, name: str, found: FieldDefinition, values: dict[str, str] | None) -> Check:
    if found.field_type != "enum" or not values:
        return ok(AREA, row, f"{entity} field {name!r} exists ({found.field_type})")
    labels = {o.label.casefold() for o in found.options if o.label}
    unknown = [label for label in values if label.casefold() not in labels]
    unmapped = [o.label for o in found.options if o.label and o.label.casefold() not in {v.casefold() for v in values}]
    if unknown:
        return fail(
            AREA, row, f"mapping names option(s) {', '.join(map(repr, unknown))} that field {name!r} does not have",
            f"rename the keys under {row.split(' ', 1)[1]}.values to the field's option labels, or add the options in Pipedrive.",
        )  # fmt: skip
    if unmapped:
        return warn(
            AREA, row, f"option(s) {', '.join(map(repr, unmapped))} of {name!r} have no dimension value",
            "add them under values (or set a default), or a deal with that option fails its build.",
        )  # fmt: skip
    return ok(AREA, row, f"{entity} field {name!r} exists (enum) and every option maps to a dimension value")


async def _webhook(rt: Runtime, client: PipedriveClient, app_url: str | None) -> Check:
    row = "pipedrive.webhook"
    try:
        hooks = await client.list_webhooks()
    except PermanentError as exc:
        if rt.settings.pipedrive_auth_mode == "oauth":
            return warn(AREA, row, f"cannot list webhooks: {exc}", f"{NO_WEBHOOK_SCOPE}.")
        return fail(
            AREA,
            row,
            f"cannot list webhooks: {exc}",
            "use an admin user's API token (or the admin scope) so the connector can see its webhook.",
        )
    user = rt.settings.pipedrive_webhook_user
    deal_hooks = [h for h in hooks if h.event_object in ("deal", "*") and h.event_action in ("change", "updated", "*")]
    ours = [h for h in deal_hooks if h.subscription_url.rstrip("/").endswith(WEBHOOK_PATH)]
    if app_url:
        target = app_url.rstrip("/") + WEBHOOK_PATH
        ours = [h for h in ours if h.subscription_url.rstrip("/").split("?")[0] == target]
    else:
        target = f"<app>{WEBHOOK_PATH}"
    fix_register = f"run `ml-connector register-webhook {target if app_url else 'https://<app>' + WEBHOOK_PATH}`."
    if not ours:
        return fail(AREA, row, f"no deal-change webhook points to {target}", fix_register)
    if not any(h.http_auth_user == user for h in ours):
        return fail(
            AREA, row, f"the webhook to {target} does not send Basic auth user {user!r}",
            f"delete it in Pipedrive and {fix_register}",
        )  # fmt: skip
    if all(h.is_active in (0, False) for h in ours):
        return fail(AREA, row, f"the webhook to {target} is inactive (Pipedrive turned it off)", fix_register)
    if not app_url:
        return warn(AREA, row, f"a deal webhook with Basic auth points to …{WEBHOOK_PATH}, but this app's URL is unknown",
                    "pass --app-url (CLI) so the doctor can tell it is this app's.")  # fmt: skip
    return ok(AREA, row, f"deal-change webhook #{ours[0].id} -> {target} with Basic auth user {user!r}")


def _rate_limit() -> Check:
    op = telemetry.current()
    calls = op.apis.get("pipedrive") if op is not None else None
    if calls is None or calls.limit is None:
        return warn(AREA, "pipedrive.rate_limit", "Pipedrive sent no x-ratelimit-limit header",
                    "nothing to do unless builds are throttled; docs/operations.md explains the 429 alert.")  # fmt: skip
    detail = f"{calls.limit} requests per window for this token ({calls.remaining} left now)"
    if calls.limit < 20:
        return warn(AREA, "pipedrive.rate_limit", detail,
                    "a plan this small throttles parallel builds: lower host.json batchSize or upgrade the plan.")  # fmt: skip
    return ok(AREA, "pipedrive.rate_limit", detail)
