"""$filter for the simulator: tokenizer, recursive-descent parser and evaluator (pure functions).

Supported as documented for F&O (reference d365-fo-odata.md section 3): eq ne gt ge lt le, and or not,
parentheses, string literals with doubled quotes, '*' wildcards inside eq/ne string literals, enum
literals `Microsoft.Dynamics.DataEntities.NoYes'Yes'` (eq/ne only), numbers, true/false/null and
DateTimeOffset literals. `has`/`in` are not supported by F&O and are rejected like it does.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation

from connector.dev.sandbox.d365.metadata import NAMESPACE, EntitySet


class ODataQueryError(ValueError):
    """A query option the service cannot parse or bind; answered with 400 and the message."""


@dataclass(frozen=True)
class Field:
    name: str


@dataclass(frozen=True)
class Literal:
    value: object  # str, Decimal, bool, None, datetime
    enum_type: str | None = None


@dataclass(frozen=True)
class Compare:
    op: str
    left: Field | Literal
    right: Field | Literal


@dataclass(frozen=True)
class BoolOp:
    op: str  # "and" | "or"
    left: Node
    right: Node


@dataclass(frozen=True)
class Not:
    operand: Node


Node = Compare | BoolOp | Not
COMPARISONS = {"eq", "ne", "gt", "ge", "lt", "le"}
UNSUPPORTED = {"has", "in", "add", "sub", "mul", "div", "divby", "mod"}

_TOKEN = re.compile(
    r"""\s*(?:
    (?P<enum>[A-Za-z_][\w.]*'(?:[^']|'')*')          # Namespace.Type'Member'
  | (?P<string>'(?:[^']|'')*')                      # 'text' with '' escapes
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2}))
  | (?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?[mMdDfFlL]?)
  | (?P<paren>[()])
  | (?P<comma>,)
  | (?P<word>[A-Za-z_][\w.]*)
  | (?P<bad>\S)
    )""",
    re.X,
)


def tokenize(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            break
        kind = match.lastgroup or "bad"
        value = match.group(kind)
        if kind == "bad":
            raise ODataQueryError(f"Syntax error at position {match.start(kind)} in '{text}'.")
        tokens.append((kind, value))
        pos = match.end()
    return tokens


def _unquote(literal: str) -> str:
    return literal[1:-1].replace("''", "'")


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.pos = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise ODataQueryError(f"Expression expected at the end of '{self.text}'.")
        self.pos += 1
        return token

    def keyword(self, word: str) -> bool:
        token = self.peek()
        if token and token[0] == "word" and token[1] == word:
            self.pos += 1
            return True
        return False

    def parse(self) -> Node:
        node = self.or_expr()
        if self.peek() is not None:
            raise ODataQueryError(f"Syntax error: unexpected '{self.peek()[1]}' in '{self.text}'.")  # type: ignore[index]
        return node

    def or_expr(self) -> Node:
        node = self.and_expr()
        while self.keyword("or"):
            node = BoolOp("or", node, self.and_expr())
        return node

    def and_expr(self) -> Node:
        node = self.not_expr()
        while self.keyword("and"):
            node = BoolOp("and", node, self.not_expr())
        return node

    def not_expr(self) -> Node:
        if self.keyword("not"):
            return Not(self.not_expr())
        return self.comparison()

    def comparison(self) -> Node:
        token = self.peek()
        if token == ("paren", "("):
            self.take()
            node = self.or_expr()
            if self.peek() != ("paren", ")"):
                raise ODataQueryError(f"')' expected in '{self.text}'.")
            self.take()
            return node
        left = self.operand()
        kind, op = self.take()
        if kind != "word" or op not in COMPARISONS:
            if op in UNSUPPORTED:
                raise ODataQueryError(f"The operator '{op}' is not supported.")
            raise ODataQueryError(f"Comparison operator expected after '{left}', found '{op}'.")
        return Compare(op, left, self.operand())

    def operand(self) -> Field | Literal:
        kind, value = self.take()
        if kind == "string":
            return Literal(_unquote(value))
        if kind == "enum":
            type_name, _, member = value.partition("'")
            return Literal(_unquote("'" + member), enum_type=type_name)
        if kind == "number":
            try:
                return Literal(Decimal(value.rstrip("mMdDfFlL")))
            except InvalidOperation as exc:
                raise ODataQueryError(f"Bad number literal '{value}'.") from exc
        if kind == "datetime":
            return Literal(datetime.fromisoformat(value.replace("Z", "+00:00")))
        if kind == "word":
            if value in ("true", "false"):
                return Literal(value == "true")
            if value == "null":
                return Literal(None)
            if self.peek() == ("paren", "("):
                raise ODataQueryError(f"Unknown function '{value}'.")
            return Field(value)
        raise ODataQueryError(f"Operand expected, found '{value}' in '{self.text}'.")


def parse_filter(text: str, entity: EntitySet, enums: Mapping[str, Collection[str]]) -> Node:
    """Parse and bind: unknown properties, enum misuse and type clashes fail here, before any row is read."""
    node = _Parser(text).parse()
    _bind(node, entity, enums)
    return node


def _bind(node: Node, entity: EntitySet, enums: Mapping[str, Collection[str]]) -> None:
    if isinstance(node, BoolOp):
        _bind(node.left, entity, enums)
        _bind(node.right, entity, enums)
    elif isinstance(node, Not):
        _bind(node.operand, entity, enums)
    else:
        for side in (node.left, node.right):
            if isinstance(side, Field) and side.name not in entity.properties:
                raise ODataQueryError(
                    f"Could not find a property named '{side.name}' on type '{NAMESPACE}.{entity.entity_type}'."
                )
        field = next((s for s in (node.left, node.right) if isinstance(s, Field)), None)
        literal = next((s for s in (node.left, node.right) if isinstance(s, Literal)), None)
        if field is None or literal is None:
            return
        prop = entity.properties[field.name]
        if prop.is_enum:
            _bind_enum(node.op, field.name, prop.type, literal, enums)
        elif literal.enum_type is not None:
            raise _incompatible(prop.type, literal.enum_type, node.op)
        elif literal.value is not None and _literal_type(literal) not in _ACCEPTS.get(prop.type, ()):
            # ODataLib binds types before any row is read: a quoted date or number, or a number against a
            # string, is refused (no implicit conversion), so the simulator refuses it too.
            raise _incompatible(prop.type, _literal_type(literal), node.op)


# Property type -> literal types ODataLib promotes to it (numbers promote among themselves).
_ACCEPTS = {
    "Edm.String": ("Edm.String",),
    "Edm.Decimal": ("Edm.Int32", "Edm.Int64", "Edm.Decimal"),
    "Edm.Int32": ("Edm.Int32",),
    "Edm.Int64": ("Edm.Int32", "Edm.Int64"),
    "Edm.DateTimeOffset": ("Edm.DateTimeOffset",),
}
_OPERATOR_KIND = {"eq": "Equal", "ne": "NotEqual", "gt": "GreaterThan", "ge": "GreaterThanOrEqual",
                  "lt": "LessThan", "le": "LessThanOrEqual"}  # fmt: skip


def _literal_type(literal: Literal) -> str:
    value = literal.value
    if isinstance(value, bool):
        return "Edm.Boolean"
    if isinstance(value, str):
        return "Edm.String"
    if isinstance(value, datetime):
        return "Edm.DateTimeOffset"
    if isinstance(value, Decimal):
        if value != value.to_integral_value():
            return "Edm.Decimal"
        return "Edm.Int32" if abs(value) < 2**31 else "Edm.Int64"
    return type(value).__name__


def _incompatible(left: str, right: str, op: str) -> ODataQueryError:
    return ODataQueryError(
        f"A binary operator with incompatible types was detected. Found operand types '{left}' and '{right}' "
        f"for operator kind '{_OPERATOR_KIND.get(op, op)}'."
    )


def _bind_enum(op: str, field: str, enum_type: str, literal: Literal, enums: Mapping[str, Collection[str]]) -> None:
    if op not in ("eq", "ne"):
        raise ODataQueryError(f"Only eq and ne are supported on enum property '{field}'.")
    if literal.value is None:
        return
    if literal.enum_type is None:
        # F&O documents the qualified form; plain strings are refused like ODataLib's type check.
        raise _incompatible(f"{NAMESPACE}.{enum_type}", "Edm.String", op)
    given = literal.enum_type.rsplit(".", 1)[-1]
    if _enum_key(given) != _enum_key(enum_type):
        raise ODataQueryError(f"The enum type '{literal.enum_type}' does not match property '{field}' ({enum_type}).")
    if literal.value not in enums.get(enum_type, ()):
        raise ODataQueryError(f"The string '{literal.value}' is not a valid enumerated type constant of {given}.")


def _enum_key(name: str) -> str:
    """The reference's enum names were PascalCased by a code generator (CompanyType_MX -> CompanyTypeMx)."""
    return name.replace("_", "").lower()


def evaluate(node: Node, record: dict[str, object]) -> bool:
    if isinstance(node, BoolOp):
        if node.op == "and":
            return evaluate(node.left, record) and evaluate(node.right, record)
        return evaluate(node.left, record) or evaluate(node.right, record)
    if isinstance(node, Not):
        return not evaluate(node.operand, record)
    left = _value(node.left, record)
    right = _value(node.right, record)
    return _compare(node.op, left, right, wildcard=isinstance(node.right, Literal))


def _value(side: Field | Literal, record: dict[str, object]) -> object:
    return record.get(side.name) if isinstance(side, Field) else side.value


def _compare(op: str, left: object, right: object, *, wildcard: bool) -> bool:
    if op in ("eq", "ne") and wildcard and isinstance(right, str) and "*" in right and isinstance(left, str):
        matched = _wildcard(right).fullmatch(left) is not None
        return matched if op == "eq" else not matched
    a, b = _comparable(left), _comparable(right)
    if op == "eq":
        return a == b
    if op == "ne":
        return a != b
    if a is None or b is None:
        return False
    try:
        return {"gt": a > b, "ge": a >= b, "lt": a < b, "le": a <= b}[op]  # type: ignore[operator]
    except TypeError as exc:
        raise ODataQueryError(f"Cannot compare {a!r} and {b!r} with '{op}'.") from exc


def _wildcard(pattern: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in pattern.split("*")), re.I | re.S)


def _comparable(value: object) -> object:
    """Strings compare case-insensitively: F&O runs on SQL Server's case-insensitive collation (UNCONFIRMED)."""
    if isinstance(value, str):
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z", value):
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        return value.casefold()
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return Decimal(str(value))
    return value
