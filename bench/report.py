"""Plain-text tables: the figures must read the same in a terminal, a CI log and a pasted issue."""

from __future__ import annotations

from collections.abc import Sequence


def table(title: str, headers: Sequence[str], rows: Sequence[Sequence[object]], notes: Sequence[str] = ()) -> str:
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: list[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))

    rule = "-" * len(line(cells[0]))
    out = [f"\n{title}", rule, line(cells[0]), rule, *(line(r) for r in cells[1:]), rule]
    out += [f"  {n}" for n in notes]
    return "\n".join(out)
