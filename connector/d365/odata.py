"""OData v4 URL pieces for D365 F&O: literals, key segments, `$filter` clauses, query strings.

Escaping rules (docs/api-facts.md, D365 §3 and §9):
- string literals double the single quote (`'O''Brien'`), then the URL is percent-encoded;
- `*` inside an `eq` value is a wildcard in F&O and there is no documented escape, so an exact
  match on a value containing `*` is a superset: callers re-check with `same_key_value`.
- We build the query string ourselves so spaces become `%20` (not `+`) and `$` stays literal.

Records are looked up by `$filter` on their key fields, never by a key segment in the path: F&O's
web host decodes the path once before routing, so a key value with `/` or a backslash answers 404 ("No HTTP
resource was found"), and `+ & : % * ? #` need a second encoding that only public write-ups, not
Microsoft, describe. In a query string one ordinary encoding is enough. `key_segment` (PATCH and
DELETE have no other way) refuses those characters instead of guessing. Values are never trimmed:
`" RFI-TEST-001"` is a real item number.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from urllib.parse import quote

from connector.d365.base import date_as_odata_noon_utc

NAMESPACE = "Microsoft.Dynamics.DataEntities"
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# encodeURIComponent's unreserved set, as used by real F&O clients ([NANGO]).
_SAFE = "!~*'()-_."


@dataclass(frozen=True)
class EnumValue:
    """An F&O enum literal, e.g. `Microsoft.Dynamics.DataEntities.NoYes'Yes'` (only eq/ne are supported)."""

    enum_type: str
    member: str

    def __post_init__(self) -> None:
        _check_ident(self.enum_type, "enum type")
        _check_ident(self.member, "enum member")


Scalar = str | int | Decimal | float | bool | date | datetime | EnumValue | None


def _check_ident(name: str, what: str = "property name") -> str:
    if not _IDENT.match(name):
        raise ValueError(f"invalid OData {what}: {name!r}")
    return name


def quote_string(value: str) -> str:
    """`O'Brien` -> `'O''Brien'` (unencoded; the query builder encodes the whole value)."""
    return "'" + value.replace("'", "''") + "'"


def literal(value: Scalar) -> str:
    """Render a Python value as an OData literal."""
    if value is None:
        return "null"
    if isinstance(value, EnumValue):
        return f"{NAMESPACE}.{value.enum_type}'{value.member}'"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | Decimal):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return date_as_odata_noon_utc(value)
    return quote_string(value)


def needs_exact_recheck(value: object) -> bool:
    """True when an `eq` on this value also matches other rows (`*` is a wildcard in F&O)."""
    return isinstance(value, str) and "*" in value


def same_key_value(found: object, wanted: object) -> bool:
    """Key values compare as F&O's SQL collation does: case-insensitive, otherwise exact (never trimmed)."""
    if isinstance(found, str) and isinstance(wanted, str):
        return found.casefold() == wanted.casefold()
    return str(found) == str(wanted)


# Characters a key value cannot carry in a URL path segment on F&O (see the module docstring).
PATH_UNSAFE = frozenset("/\\+&:%*?#<>")


def key_segment(key: Mapping[str, Scalar]) -> str:
    """`(dataAreaId='dat',ItemNumber='%20X')`: all key fields, named, percent-encoded.

    Only for PATCH/DELETE: reads use `key_filter`. Raises ValueError for values F&O cannot route.
    """
    if not key:
        raise ValueError("an OData key needs at least one field")
    for name, value in key.items():
        unsafe = sorted({ch for ch in value if ch in PATH_UNSAFE}) if isinstance(value, str) else []
        if unsafe:
            raise ValueError(
                f"key {name} {value!r} contains {' '.join(unsafe)}, which F&O cannot take in a URL path; "
                "change the record in D365 itself"
            )
    parts = [f"{_check_ident(name)}={quote(literal(value), safe=_SAFE)}" for name, value in key.items()]
    return "(" + ",".join(parts) + ")"


def key_filter(key: Mapping[str, Scalar]) -> str:
    """The `$filter` that finds one record by its full key (`dataAreaId eq 'dat' and ItemNumber eq 'A/B'`)."""
    if not key:
        raise ValueError("an OData key needs at least one field")
    return and_(*(eq(name, value) for name, value in key.items()))


def entity_path(entity_set: str, key: Mapping[str, Scalar] | None = None) -> str:
    _check_ident(entity_set, "entity set")
    return entity_set + (key_segment(key) if key is not None else "")


# --- $filter ---------------------------------------------------------------------------------


def _cmp(op: str, name: str, value: Scalar) -> str:
    return f"{_check_ident(name)} {op} {literal(value)}"


def eq(name: str, value: Scalar) -> str:
    return _cmp("eq", name, value)


def ne(name: str, value: Scalar) -> str:
    return _cmp("ne", name, value)


def gt(name: str, value: Scalar) -> str:
    return _cmp("gt", name, value)


def ge(name: str, value: Scalar) -> str:
    return _cmp("ge", name, value)


def lt(name: str, value: Scalar) -> str:
    return _cmp("lt", name, value)


def le(name: str, value: Scalar) -> str:
    return _cmp("le", name, value)


def contains(name: str, text: str) -> str:
    """F&O has no contains(): a wildcard `eq '*text*'` does it (docs/api-facts.md, D365 §3)."""
    if "*" in text:
        raise ValueError("contains() text must not itself contain '*'")
    return eq(name, f"*{text}*")


def and_(*clauses: str | None) -> str:
    present = [c for c in clauses if c]
    return " and ".join(f"({c})" if len(present) > 1 else c for c in present)


def or_(*clauses: str | None) -> str:
    present = [c for c in clauses if c]
    return " or ".join(f"({c})" if len(present) > 1 else c for c in present)


def not_(clause: str) -> str:
    return f"not ({clause})"


def eq_any_chunks(name: str, values: Sequence[str], fits: Callable[[str], bool]) -> Iterator[tuple[list[str], str]]:
    """(values, `name eq a or name eq b ...`) groups, each as large as `fits` (the whole URL's length) allows.

    A real F&O front end refuses long URLs, so the split goes by encoded length, not by a clause count.
    """

    def clause(group: list[str]) -> str:
        return or_(*(eq(name, v) for v in group))

    chunk: list[str] = []
    for value in values:
        if fits(clause([*chunk, value])):
            chunk.append(value)
            continue
        if chunk:
            yield chunk, clause(chunk)
        if not fits(clause([value])):
            raise ValueError(f"{name} {value[:40]!r}: this one value makes the URL too long")
        chunk = [value]
    if chunk:
        yield chunk, clause(chunk)


# --- query string -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Query:
    """System query options for one GET; `to_query_string()` gives the encoded `?...` part."""

    filter: str | None = None
    select: Sequence[str] = field(default_factory=tuple)
    orderby: Sequence[str] = field(default_factory=tuple)
    expand: Sequence[str] = field(default_factory=tuple)
    top: int | None = None
    skip: int | None = None
    count: bool = False
    cross_company: bool = False

    def params(self) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        if self.filter:
            out.append(("$filter", self.filter))
        if self.select:
            out.append(("$select", ",".join(_check_ident(s) for s in self.select)))
        if self.expand:
            out.append(("$expand", ",".join(_check_ident(s) for s in self.expand)))
        if self.orderby:
            out.append(("$orderby", ",".join(_orderby_item(s) for s in self.orderby)))
        if self.top is not None:
            if self.top < 0:
                raise ValueError("$top must not be negative")
            out.append(("$top", str(self.top)))
        if self.skip is not None:
            if self.skip < 0:
                raise ValueError("$skip must not be negative")
            out.append(("$skip", str(self.skip)))
        if self.count:
            out.append(("$count", "true"))
        if self.cross_company:
            out.append(("cross-company", "true"))
        return out

    def to_query_string(self) -> str:
        pairs = self.params()
        if not pairs:
            return ""
        return "?" + "&".join(f"{k}={quote(v, safe=_SAFE + ',:')}" for k, v in pairs)


def _orderby_item(item: str) -> str:
    name, _, direction = item.partition(" ")
    _check_ident(name)
    if direction and direction not in ("asc", "desc"):
        raise ValueError(f"invalid $orderby direction in {item!r}")
    return item
