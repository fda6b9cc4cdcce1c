"""The one error the mapping raises: data that cannot become a correct D365 record."""

from __future__ import annotations

from connector.errors import PermanentError


class MappingError(PermanentError):
    """Permanent until a person fixes the Pipedrive data or the mapping file.

    `problems` lists every reason found (all lines of a deal are checked before raising), each
    naming the deal and line and saying what to change.
    """

    def __init__(self, problems: list[str] | str, *, deal_id: int | None = None) -> None:
        items = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("; ".join(items), detail=items)
        self.problems = items
        self.deal_id = deal_id
