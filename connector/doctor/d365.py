"""Doctor checks on D365 F&O: the token, and every company, group, currency, term, site, warehouse, unit,
dimension and numbering choice the mapping names, each looked up in its company.

Reads only, a handful of queries in all. Entity sets outside our reference (payment terms, sites,
warehouses, units, dimension formats and values) are asked for by their usual F&O names; where an
environment does not expose one (404), the row is a warning naming where to check by hand, never a
guess.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from connector.api_auth import RefreshingAuth
from connector.doctor.report import Check, fail, ok, warn
from connector.errors import AuthError, NotFoundError
from connector.mapping.config import MappingConfig
from connector.mapping.sections import literal_values
from connector.secret_names import SecretNames

if TYPE_CHECKING:
    from connector.d365.client import D365Client
    from connector.runtime import Runtime

AREA = "d365"
# UNCONFIRMED entity sets (not in the recorded metadata, connector/dev/sandbox/d365/schema.json): usual
# F&O public collection names, with the key field the doctor filters on and where an admin finds the record
# in the F&O client.
PAYMENT_TERMS = ("PaymentTerms", "Name", "Accounts receivable > Payments setup > Terms of payment")
SITES = ("OperationalSites", "SiteId", "Inventory management > Setup > Inventory breakdown > Sites")
WAREHOUSES = ("Warehouses", "WarehouseId", "Inventory management > Setup > Inventory breakdown > Warehouses")
UNITS = ("UnitsOfMeasure", "UnitSymbol", "Organization administration > Setup > Units > Units")
# docs/api-facts.md, D365 §7: formats are global; values keyed by FinancialDimension + DimensionValue.
DIMENSION_FORMATS = "DimensionIntegrationFormats"
DIMENSION_VALUES = "FinancialDimensionValues"
DIMENSION_PAGE = (
    "General ledger > Chart of accounts > Dimensions > Financial dimension configuration for integrating applications"
)
# SalesId is 20 characters in a standard F&O (EDT SalesIdBase; UNCONFIRMED for customised environments).
SALES_ID_MAX = 20
_LONGEST_ID = 10**12 - 1  # a 12-digit Pipedrive id: room for growth when checking the number's length


def legal_entities(rt: Runtime, cfg: MappingConfig) -> list[str]:
    """Every company the mapping can send an order to, default first."""
    found = [cfg.legal_entity.default, *cfg.legal_entity.by_pipeline.values()]
    return list(dict.fromkeys(le.lower() for le in found))


async def d365_checks(rt: Runtime, cfg: MappingConfig | None) -> list[Check]:
    try:
        d365 = await rt.d365()
        if isinstance(d365.auth, RefreshingAuth):
            await d365.auth.current_token()
    except Exception as exc:  # azure-identity raises its own classes; every one means "no token"
        return [
            fail(AREA, "d365.auth", f"no token for {rt.settings.d365_environment_url}: {_short(exc)}",
                 f"check D365_TENANT_ID, D365_CLIENT_ID and secret {SecretNames.D365_CLIENT_SECRET}, and that the app is registered "
                 "in F&O (System administration > Microsoft Entra applications).")
        ]  # fmt: skip
    checks = [ok(AREA, "d365.auth", f"token issued for {rt.settings.d365_environment_url}")]
    if cfg is None:
        return checks
    try:
        companies = {
            r["LegalEntityId"].lower() async for r in d365.iter_entities("LegalEntities", select=["LegalEntityId"])
        }
    except AuthError as exc:
        return [*checks, fail(AREA, "d365.access", f"D365 refused to read legal entities: {exc}",
                              "give the F&O user mapped to this app a role that can read sales, customer and product data.")]  # fmt: skip
    for le in legal_entities(rt, cfg):
        if le in companies:
            checks.append(ok(AREA, f"d365.legal_entity {le}", f"company {le} exists"))
        else:
            checks.append(fail(AREA, f"d365.legal_entity {le}", f"company {le} does not exist in D365",
                               f"correct legal_entity in the mapping file (companies here: {', '.join(sorted(companies))})."))  # fmt: skip
    present = [le for le in legal_entities(rt, cfg) if le in companies]
    checks += await _customer_defaults(d365, cfg, present)
    checks += await _lines(d365, cfg, present)
    checks += await _dimensions(d365, cfg)
    checks += await _numbering(d365, cfg, present)
    return checks


async def _customer_defaults(d365: D365Client, cfg: MappingConfig, companies: list[str]) -> list[Check]:
    checks: list[Check] = []
    currencies = {r["CurrencyCode"].upper() async for r in d365.iter_entities("Currencies", select=["CurrencyCode"])}
    for le in companies:
        defaults = cfg.customer.defaults_for(le)
        where = (
            f"customer.defaults_by_legal_entity.{le}"
            if le in cfg.customer.defaults_by_legal_entity
            else "customer.defaults"
        )
        groups = {
            r["CustomerGroupId"]
            async for r in d365.iter_entities("CustomerGroups", select=["CustomerGroupId"], legal_entity=le)
        }
        row = f"d365.customer_group {le}"
        if defaults.customer_group in groups:
            checks.append(ok(AREA, row, f"customer group {defaults.customer_group!r} exists in {le}"))
        else:
            checks.append(fail(AREA, row, f"customer group {defaults.customer_group!r} does not exist in {le}",
                               f"set {where}.customer_group to one of {', '.join(sorted(groups)) or '(none)'} or create it in D365."))  # fmt: skip
        row = f"d365.currency {le}"
        if defaults.currency in currencies:
            checks.append(ok(AREA, row, f"currency {defaults.currency} exists"))
        else:
            checks.append(fail(AREA, row, f"currency {defaults.currency} does not exist in D365",
                               f"set {where}.currency to a currency D365 has (General ledger > Currencies)."))  # fmt: skip
        if defaults.payment_terms:
            checks.append(
                await _lookup(
                    d365,
                    f"d365.payment_terms {le}",
                    PAYMENT_TERMS,
                    defaults.payment_terms,
                    le,
                    f"{where}.payment_terms",
                )
            )
    return checks


async def _lines(d365: D365Client, cfg: MappingConfig, companies: list[str]) -> list[Check]:
    checks: list[Check] = []
    lines = cfg.lines
    for le in companies:
        if lines.site:
            checks.append(await _lookup(d365, f"d365.site {le}", SITES, lines.site, le, "lines.site"))
        if lines.warehouse:
            checks.append(
                await _lookup(d365, f"d365.warehouse {le}", WAREHOUSES, lines.warehouse, le, "lines.warehouse")
            )
    if lines.unit:
        checks.append(await _lookup(d365, "d365.unit", UNITS, lines.unit, None, "lines.unit"))
    return checks


async def _lookup(
    d365: D365Client, row: str, entity: tuple[str, str, str], value: str, le: str | None, key: str
) -> Check:
    entity_set, field, page = entity
    where = f" in {le}" if le else ""
    try:
        rows = [
            r async for r in d365.iter_entities(entity_set, filter=f"{field} eq '{_q(value)}'", top=1, legal_entity=le)
        ]
    except NotFoundError:
        return warn(AREA, row, f"cannot verify {value!r}: this environment does not expose {entity_set} over OData",
                    f"check by hand that {value!r} exists{where} ({page}).")  # fmt: skip
    if rows:
        return ok(AREA, row, f"{value!r} exists{where}")
    return fail(
        AREA, row, f"{value!r} does not exist{where}", f"correct {key} in the mapping file or create it ({page})."
    )


def _dimension_values(cfg: MappingConfig) -> list[tuple[str, str, str]]:
    """(dimension, value, key path) for every literal value the mapping can put in a display value."""
    out: list[tuple[str, str, str]] = []
    for name, src in cfg.dimensions.sources.items():
        base = f"dimensions.sources.{name}"
        out.extend((name, value, f"{base}.{where}") for where, value in literal_values(src))
    return out


async def _dimensions(d365: D365Client, cfg: MappingConfig) -> list[Check]:
    dims = cfg.dimensions
    if not dims.order:
        return []
    expected = dims.delimiter.join(dims.order)
    checks: list[Check] = []
    try:
        formats = [r async for r in d365.iter_entities(DIMENSION_FORMATS)]
    except NotFoundError:
        checks.append(warn(AREA, "d365.dimension_format", f"cannot verify the format {expected!r}: {DIMENSION_FORMATS} is not exposed",
                           f"check that the active Default dimension format is {expected!r} ({DIMENSION_PAGE})."))  # fmt: skip
    else:
        active = [
            str(r.get("FinancialDimensionFormat", ""))
            for r in formats
            if str(r.get("IsActive")) in ("Yes", "1", "True", "true")
            and "default" in str(r.get("DimensionFormatType", "")).lower()
        ]
        if expected in active:
            checks.append(ok(AREA, "d365.dimension_format", f"the active Default dimension format is {expected!r}"))
        else:
            checks.append(fail(AREA, "d365.dimension_format", f"mapping expects {expected!r}, D365's active Default format is {', '.join(active) or 'none'}",
                               f"make dimensions.order and dimensions.delimiter match D365's format, or activate {expected!r} ({DIMENSION_PAGE})."))  # fmt: skip
    for name, value, key in _dimension_values(cfg):
        row = f"d365.dimension {name}={value}"
        query = f"FinancialDimension eq '{_q(name)}' and DimensionValue eq '{_q(value)}'"
        try:
            rows = [r async for r in d365.iter_entities(DIMENSION_VALUES, filter=query, top=1, cross_company=True)]
        except NotFoundError:
            checks.append(warn(AREA, "d365.dimension_values", f"cannot verify dimension values: {DIMENSION_VALUES} is not exposed",
                               "check by hand that every value in dimensions.sources exists (General ledger > Chart of accounts > Dimensions)."))  # fmt: skip
            break
        if rows:
            checks.append(ok(AREA, row, f"{name} value {value!r} exists"))
        else:
            checks.append(
                fail(
                    AREA,
                    row,
                    f"{name} has no value {value!r}",
                    f"correct {key} or add the value in D365 (Financial dimensions).",
                )
            )
    return checks


async def _numbering(d365: D365Client, cfg: MappingConfig, companies: list[str]) -> list[Check]:
    row = "d365.numbering"
    if cfg.order.numbering != "from_deal" or not cfg.order.number_template:
        return [ok(AREA, row, "order numbers come from D365's number sequence (d365_sequence)")]
    template = cfg.order.number_template
    longest = template.format(deal_id=_LONGEST_ID, pipeline_id=999, org_id=_LONGEST_ID, owner_id=_LONGEST_ID)
    if len(longest) > SALES_ID_MAX:
        return [fail(AREA, row, f"order.number_template makes numbers up to {len(longest)} characters ({longest!r})",
                     f"shorten order.number_template: a sales order number holds at most {SALES_ID_MAX} characters.")]  # fmt: skip
    if not re.fullmatch(r"[A-Za-z0-9_\-/.]+", longest):
        return [fail(AREA, row, f"order.number_template makes {longest!r}, with characters an order number should not have",
                     "use only letters, digits and - _ / . in order.number_template.")]  # fmt: skip
    sample = template.format(deal_id=123, pipeline_id=1, org_id=1, owner_id=1)
    ours = _prefix(sample)
    if not ours:
        return [fail(AREA, row, f"order.number_template makes numbers without a prefix ({sample!r})",
                     "give order.number_template a prefix of its own (e.g. PD{deal_id}) so it never collides with the sequence.")]  # fmt: skip
    seen: list[str] = []
    for le in companies:
        async for r in d365.iter_entities(
            "SalesOrderHeadersV2",
            select=["SalesOrderNumber"],
            orderby=["SalesOrderNumber desc"],
            top=20,
            legal_entity=le,
        ):
            number = str(r.get("SalesOrderNumber", ""))
            if not (number.startswith(ours) and number[len(ours) :].isdigit()):
                seen.append(number)  # one of D365's own numbers (not made from a deal)
    if any(_prefix(n) == ours for n in seen):
        return [fail(AREA, row, f"numbers from the deal ({sample!r}) share the prefix {ours!r} with D365's own numbers",
                     "give order.number_template a prefix D365's number sequence does not use.")]  # fmt: skip
    looks = f"; D365's own numbers look like {seen[0]!r}" if seen else ""
    return [
        warn(AREA, row, f"from_deal: numbers like {sample!r} (at most {len(longest)} characters){looks}",
             "make sure the sales order number sequence allows manual numbers (Organization administration > Number sequences).")
    ]  # fmt: skip


def _prefix(number: str) -> str:
    m = re.match(r"^\D*", number)
    return m.group(0) if m else ""


def _q(value: str) -> str:
    return value.replace("'", "''")


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:300]
