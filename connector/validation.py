"""What pydantic refused, said one way everywhere: a `where: what` line per problem.

The input is left out unless a caller asks for it: what was refused may be a secret (a setting, a
token response), and error texts reach logs, audit rows and HTTP answers.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError


@dataclass(frozen=True)
class Problem:
    loc: tuple[int | str, ...]
    kind: str  # pydantic's error type: "missing", "int_parsing", ...
    message: str  # pydantic's message, without the "Value error, " of a validator's ValueError
    input: Any = None

    def where(self, *, root: str = "body", skip: Collection[str] = ()) -> str:
        """The dotted field path (`lines.0.price`), `root` for the whole object; `skip` drops union tags."""
        return ".".join(str(part) for part in self.loc if part not in skip) or root


def problems(exc: ValidationError, *, with_input: bool = False) -> list[Problem]:
    return [
        Problem(
            tuple(err["loc"]),
            err["type"],
            str(err["msg"]).removeprefix("Value error, "),
            err.get("input") if with_input else None,
        )
        for err in exc.errors(include_url=False, include_input=with_input)
    ]


def problem_lines(
    exc: ValidationError,
    *,
    root: str = "body",
    skip: Collection[str] = (),
    missing: str | None = None,
    with_input: bool = False,
) -> list[str]:
    """`where: what` per problem; `missing` replaces pydantic's text for an absent field; `with_input`
    adds the first 40 characters of the refused value (only for data that can hold no secret)."""
    lines = []
    for problem in problems(exc, with_input=with_input):
        what = missing if missing is not None and problem.kind == "missing" else problem.message
        if with_input:
            what += f" (got {problem.input!r:.40})"
        lines.append(f"{problem.where(root=root, skip=skip)}: {what}")
    return lines
