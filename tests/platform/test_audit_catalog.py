"""docs/audit-events.md against the code: every audit event the deployed code (`connector/`, not
`connector/dev/`) can write is in the catalog with its level and detail fields, and every name in the
catalog is one the code writes, so the catalog cannot go stale in either direction.

Event names are read with `ast` from `<flow context>.audit(name, ...)`, `<audit store>.append(subject,
name, ...)` and the readers' own `AuditEntry(event=...)`: a string constant is a name, an f-string a
pattern whose every `{...}` stands for one name segment. Any other event argument is refused, unless its
call site is one of `PASSED_IN` (a variable whose possible names are listed there), so a new call site
cannot slip past the catalog.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CATALOG = ROOT / "docs" / "audit-events.md"
SOURCES = sorted(p for p in (ROOT / "connector").rglob("*.py") if "dev" not in p.relative_to(ROOT).parts[1:2])
LEVELS = ("debug", "info", "warning", "error")
SEGMENT = "([a-z0-9_]+)"  # what one `{...}` of an f-string event name can be


@dataclass(frozen=True)
class Passed:
    """A call site whose event argument is a variable: the names (and levels) it can write."""

    names: tuple[str, ...] = ()
    levels: tuple[str, ...] = ()


PASSED_IN = {
    # FlowContext.audit forwards its callers' names: those are read at each `.audit(...)` call.
    ("connector/flows/context.py", "audit"): Passed(),
    # Parsing a stored row back: writes nothing.
    ("connector/state/audit.py", "_parse"): Passed(),
    # The queue worker's re-queue row, named by its callers' `requeued_event=` (debug when only busy or early).
    ("connector/functions/worker.py", "_requeue"): Passed(("build.requeued", "push.requeued"), ("debug", "warning")),
}


class Unreadable(AssertionError):
    """An event argument the extractor cannot read: list its call site in PASSED_IN."""


@dataclass(frozen=True)
class Site:
    where: str
    name: str | None  # a constant name, or
    pattern: str | None  # a regex made from an f-string
    levels: frozenset[str]
    fields: frozenset[str]

    def names(self, name: str) -> bool:
        return name == self.name if self.pattern is None else re.fullmatch(self.pattern, name) is not None

    def fills(self, name: str) -> tuple[str, ...]:
        """What `name` puts in the pattern's `{...}` places."""
        match = re.fullmatch(self.pattern or "", name)
        return match.groups() if match else ()


def _last(node: ast.expr) -> str:
    return node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) else ""


def _arg(call: ast.Call, index: int | None, keyword: str) -> ast.expr | None:
    if index is not None and len(call.args) > index:
        return call.args[index]
    return next((k.value for k in call.keywords if k.arg == keyword), None)


def _event_arg(call: ast.Call) -> tuple[bool, ast.expr | None]:
    """(is an audit write, its event argument)."""
    func = call.func
    if isinstance(func, ast.Attribute) and func.attr == "audit":
        return True, _arg(call, 0, "event")
    if isinstance(func, ast.Attribute) and func.attr == "append" and _last(func.value) in ("audit", "audit_log"):
        return True, _arg(call, 1, "event")
    if _last(func) in ("cls", "AuditEntry") and any(k.arg == "event" for k in call.keywords):
        return True, _arg(call, None, "event")
    return False, None


def _levels(call: ast.Call, passed: Passed | None, where: str) -> frozenset[str]:
    value = _arg(call, None, "level")
    if value is None:
        return frozenset({"info"})
    options = [value.body, value.orelse] if isinstance(value, ast.IfExp) else [value]
    if all(isinstance(o, ast.Constant) and isinstance(o.value, str) for o in options):
        return frozenset(str(o.value) for o in options if isinstance(o, ast.Constant))
    if passed is not None and passed.levels:
        return frozenset(passed.levels)
    raise Unreadable(f"{where}: cannot read the level {ast.unparse(value)}")


def _fields(call: ast.Call) -> frozenset[str]:
    """Detail keys spelled at the call (a `**splat` or a detail built elsewhere is not checked)."""
    if isinstance(call.func, ast.Attribute) and call.func.attr == "audit":
        return frozenset(k.arg for k in call.keywords if k.arg not in (None, "level"))
    detail = _arg(call, None, "detail")
    if isinstance(detail, ast.Dict):
        return frozenset(k.value for k in detail.keys if isinstance(k, ast.Constant) and isinstance(k.value, str))
    return frozenset()


def _site(call: ast.Call, rel: str, function: str, used: set[tuple[str, str]]) -> list[Site]:
    where = f"{rel}:{call.lineno}"
    passed = PASSED_IN.get((rel, function))
    _, event = _event_arg(call)
    if isinstance(event, ast.Constant) and isinstance(event.value, str):
        return [Site(where, event.value, None, _levels(call, passed, where), _fields(call))]
    if isinstance(event, ast.JoinedStr):
        parts = [re.escape(str(p.value)) if isinstance(p, ast.Constant) else SEGMENT for p in event.values]
        if all(part == SEGMENT for part in parts):
            raise Unreadable(f"{where}: the f-string {ast.unparse(event)} has no literal part")
        return [Site(where, None, "".join(parts), _levels(call, passed, where), _fields(call))]
    if passed is None:
        shown = ast.unparse(event) if event is not None else "(none)"
        raise Unreadable(f"{where} (in {function}): cannot read the event name {shown}; add the site to PASSED_IN")
    used.add((rel, function))
    if not passed.names:
        return []
    levels, fields = _levels(call, passed, where), _fields(call)
    return [Site(where, name, None, levels, fields) for name in passed.names]


def sites_in(source: str, rel: str, used: set[tuple[str, str]] | None = None) -> list[Site]:
    """Every audit write in one module."""
    used = used if used is not None else set()
    found: list[Site] = []

    def walk(node: ast.AST, function: str) -> None:
        for child in ast.iter_child_nodes(node):
            inner = child.name if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) else function
            if isinstance(child, ast.Call) and _event_arg(child)[0]:
                found.extend(_site(child, rel, function, used))
            walk(child, inner)

    walk(ast.parse(source), "")
    return found


@dataclass(frozen=True)
class Row:
    line: int
    names: tuple[str, ...]
    levels: frozenset[str]
    fields: frozenset[str]


def catalog_rows(text: str) -> Iterator[Row]:
    """The rows of every table whose header starts with `event`; a first cell may name several events."""
    header: list[str] | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.startswith("|"):
            header = None
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if cells[0] == "event":
            header = cells
        elif header is not None and not set(cells[0]) <= set("-: "):
            level, detail = cells[header.index("level")], cells[header.index("detail")]
            yield Row(
                number,
                tuple(re.findall(r"`([^`]+)`", cells[0])),
                frozenset(re.findall(r"\b(" + "|".join(LEVELS) + r")\b", level)),
                frozenset(re.findall(r"`([a-z_]+)`", detail)),
            )


@pytest.fixture(scope="module")
def sites() -> list[Site]:
    used: set[tuple[str, str]] = set()
    found = [s for path in SOURCES for s in sites_in(path.read_text(), path.relative_to(ROOT).as_posix(), used)]
    assert used == set(PASSED_IN), f"PASSED_IN lists call sites that no longer exist: {set(PASSED_IN) - used}"
    return found


@pytest.fixture(scope="module")
def rows() -> list[Row]:
    found = list(catalog_rows(CATALOG.read_text()))
    names = [name for row in found for name in row.names]
    assert names and all(row.names for row in found)
    assert sorted({n for n in names if names.count(n) > 1}) == [], "an event is in the catalog twice"
    return found


def _writers(name: str, sites: list[Site]) -> list[Site]:
    """The sites that write `name`: its constants, else the patterns it matches."""
    return [s for s in sites if s.name == name] or [s for s in sites if s.pattern and s.names(name)]


def test_every_event_the_code_writes_is_in_the_catalog(sites: list[Site], rows: list[Row]) -> None:
    catalog = {name for row in rows for name in row.names}
    assert sorted({f"{s.name} ({s.where})" for s in sites if s.name and s.name not in catalog}) == []


def test_every_f_string_event_matches_a_catalog_name(sites: list[Site], rows: list[Row]) -> None:
    catalog = [name for row in rows for name in row.names]
    assert [f"{s.pattern} ({s.where})" for s in sites if s.pattern and not any(map(s.names, catalog))] == []


def test_every_catalog_name_is_written_by_the_code(sites: list[Site], rows: list[Row]) -> None:
    """A name only an f-string writes must fill each `{...}` with a word its module spells, or with the first
    word of a constant event name (`build` of `build.done`): a stale or misspelt `master.deleted` is caught."""
    prefixes = {s.name.split(".")[0] for s in sites if s.name}

    def spelled(site: Site) -> set[str]:
        tree = ast.parse((ROOT / site.where.split(":")[0]).read_text())
        return prefixes | {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}

    stale = [
        f"line {row.line}: {name}"
        for row in rows
        for name in row.names
        if not (writers := _writers(name, sites))
        or any(not set(s.fills(name)) <= spelled(s) for s in writers if s.pattern)
    ]
    assert stale == []


def test_the_catalog_gives_each_event_its_level_and_fields(sites: list[Site], rows: list[Row]) -> None:
    wrong = []
    for row in rows:
        for name in row.names:
            writers = _writers(name, sites)
            levels = frozenset().union(*(s.levels for s in writers))
            fields = frozenset().union(*(s.fields for s in writers))
            if writers and levels != row.levels:
                wrong.append(
                    f"line {row.line}: {name} is written at {sorted(levels)}, the catalog says {sorted(row.levels)}"
                )
            if fields - row.fields:
                wrong.append(f"line {row.line}: {name} carries {sorted(fields - row.fields)}, not in the catalog")
    assert wrong == []


def test_the_passed_in_names_are_spelled_in_their_module() -> None:
    for (rel, _), passed in PASSED_IN.items():
        constants = {n.value for n in ast.walk(ast.parse((ROOT / rel).read_text())) if isinstance(n, ast.Constant)}
        assert set(passed.names) <= constants, rel


@pytest.mark.parametrize(
    "call",
    ["await ctx.audit(name)", "await rt.state.audit.append(subject, kinds[0], correlation_id='')", "await ctx.audit()"],
)
def test_an_event_argument_it_cannot_read_fails_loudly(call: str) -> None:
    source = f"async def new_step(ctx, rt, name, subject, kinds):\n    {call}\n"
    with pytest.raises(Unreadable, match=r"connector/flows/new\.py:2 \(in new_step\)"):
        sites_in(source, "connector/flows/new.py")


def test_the_catalog_is_linked_and_its_links_into_operations_resolve() -> None:
    text = CATALOG.read_text()
    operations = (ROOT / "docs" / "operations.md").read_text()
    slugs = {
        re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        for heading in re.findall(r"^#+ (.+)$", operations, flags=re.M)
    }
    anchors = set(re.findall(r"\(operations\.md#([^)]+)\)", text))
    assert anchors and anchors <= slugs, anchors - slugs
    assert "audit-events.md" in operations and "docs/audit-events.md" in (ROOT / "README.md").read_text()
