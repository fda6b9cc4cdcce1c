"""Financial dimensions of an order: each dimension's value from its configured source.

The result is a display string in the active *Default dimension format* of the D365 environment:
the configured dimension order joined by the chart-of-accounts delimiter, one segment per
dimension, blank segments kept in place (docs/api-facts.md, D365 §7; blank middle segments as
`a--b` are UNCONFIRMED for display values, so the order and delimiter are configuration).
"""

from __future__ import annotations

from connector.d365.dimensions import format_dimensions
from connector.mapping.config import MappingConfig
from connector.mapping.errors import MappingError
from connector.mapping.fields import FieldValueError, ResolvedFields, field_text
from connector.mapping.sections import (
    ConstantSource,
    DealFieldSource,
    DimensionsConfig,
    DimensionSource,
    OrgFieldSource,
    OwnerSource,
    PipelineSource,
)
from connector.pipedrive.models import Deal, Organization


def resolve_dimensions(
    deal: Deal, org: Organization | None, cfg: MappingConfig, resolved_fields: ResolvedFields
) -> str:
    """The display string for the deal's order; "" when no dimension has a value (D365 defaults apply).

    Every dimension is resolved before raising, so one MappingError lists all problems.
    """
    dims = cfg.dimensions
    values: dict[str, str] = {}
    problems: list[str] = []
    for name in dims.order:
        src = dims.sources.get(name)
        if src is None:
            continue  # in the format but not mapped: a blank segment on purpose
        try:
            value = _resolve(name, src, deal, org, resolved_fields)
        except _Problem as exc:
            problems.append(f"deal {deal.id}: dimension {name} ({_describe(src)}): {exc}")
            continue
        if value and dims.delimiter in value:
            problems.append(
                f"deal {deal.id}: dimension {name} ({_describe(src)}): value {value!r} contains the "
                f"dimension delimiter {dims.delimiter!r}; D365 would split it into two segments"
            )
            continue
        if value:
            values[name] = value
    if problems:
        raise MappingError(problems, deal_id=deal.id)
    return format_display_value(values, dims)


def format_display_value(values: dict[str, str], dims: DimensionsConfig) -> str:
    """Join in the configured order; all-blank gives "" so the order takes D365's own defaults."""
    if not dims.order:
        return ""
    return format_dimensions(values, dims.order, dims.delimiter)


class _Problem(Exception):
    pass


def _resolve(
    name: str, src: DimensionSource, deal: Deal, org: Organization | None, fields: ResolvedFields
) -> str | None:
    if isinstance(src, ConstantSource):
        return src.value or None
    raw: str | None
    mapped: dict[str, str] | None
    if isinstance(src, PipelineSource | OwnerSource):
        key = deal.pipeline_id if isinstance(src, PipelineSource) else deal.owner_id
        what = "pipeline" if isinstance(src, PipelineSource) else "owner"
        if key is None:
            raw = None
        elif key in src.values:
            return src.values[key] or None
        elif src.default is not None:
            return src.default or None
        else:
            raise _Problem(
                f"{what} {key} has no value; add it under dimensions.sources.{name}.values in the mapping file"
            )
        mapped = None
    else:
        raw = _field_value(src, org, fields)
        mapped = src.values
    if raw is None:
        if src.default is not None and src.default != "":
            return src.default
        if src.required:
            raise _Problem(f"{_holder(src)} is empty; fill it in Pipedrive (this dimension is required)")
        return None
    if mapped is None:
        return raw
    if raw in mapped:
        return mapped[raw] or None
    raise _Problem(
        f"{raw!r} has no value; add it under dimensions.sources.{name}.values in the mapping file"
        f" (known: {', '.join(repr(k) for k in mapped) or 'none'})"
    )


def _field_value(src: DealFieldSource | OrgFieldSource, org: Organization | None, fields: ResolvedFields) -> str | None:
    if isinstance(src, DealFieldSource):
        value = fields.deal_value(src.field)
    elif org is None:
        return None  # a deal without organization: the value is simply absent
    else:
        value = fields.org_value(src.field)
    try:
        return field_text(value)
    except FieldValueError as exc:
        raise _Problem(f"{_holder(src)} {exc}") from None


def _holder(src: DimensionSource) -> str:
    if isinstance(src, DealFieldSource):
        return f"deal field {src.field!r}"
    if isinstance(src, OrgFieldSource):
        return f"organization field {src.field!r}"
    return "the deal's pipeline" if isinstance(src, PipelineSource) else "the deal's owner"


def _describe(src: DimensionSource) -> str:
    if isinstance(src, DealFieldSource | OrgFieldSource):
        return f"source {src.source} {src.field!r}"
    return f"source {src.source}"
