"""Financial dimension display strings (`DefaultLedgerDimensionDisplayValue`, `DefaultDimensionDisplayValue`).

F&O parses the string by position against the active "Default dimension format" (docs/api-facts.md, D365 §7):
segments in the configured order, joined by the chart-of-accounts delimiter. A blank segment is
kept as an empty slot (`001--022`) so later segments stay in place; a value containing the
delimiter would shift every following segment, so it is rejected.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from connector.errors import ValidationError

#: DimensionLedgerAccountDelimiter options in F&O: hyphen, period, underscore, bar.
DELIMITERS = ("-", ".", "_", "|")


def format_dimensions(values: Mapping[str, str | None], order: Sequence[str], delimiter: str = "-") -> str:
    """Display string for `values` in `order`; "" when no dimension has a value."""
    problems: list[str] = []
    if delimiter not in DELIMITERS:
        problems.append(f"delimiter {delimiter!r} is not one of {' '.join(DELIMITERS)}")
    if not order:
        problems.append("the dimension order is empty")
    if len(set(order)) != len(order):
        problems.append("the dimension order names a dimension twice")
    unknown = sorted(set(values) - set(order))
    if unknown:
        problems.append(f"unknown dimension(s) {', '.join(unknown)}; configured order is {', '.join(order)}")
    segments = []
    for name in order:
        value = (values.get(name) or "").strip()
        if delimiter in value:
            problems.append(f"dimension {name} value {value!r} contains the delimiter {delimiter!r}")
        segments.append(value)
    if problems:
        raise ValidationError("invalid financial dimensions: " + "; ".join(problems), lines=problems)
    if not any(segments):
        return ""
    return delimiter.join(segments)
